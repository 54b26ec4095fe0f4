package commands

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
)

// firstAppendAfter runs before (once) just before its first append: another
// node's command lands between this node's decision and its append.
type firstAppendAfter struct {
	eventstore.Store
	once   sync.Once
	before func()
}

func (f *firstAppendAfter) Append(ctx context.Context, s string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	f.once.Do(f.before)
	return f.Store.Append(ctx, s, exp, evs)
}

// createTenantCmd is the operator's creation of tenant t1 under m.
func createTenantCmd(m domain.CommandMeta) *domain.CreateTenant {
	m.TenantID, m.Actor = "t1", domain.Actor{Operator: true}
	return &domain.CreateTenant{CommandMeta: m, Name: "t1",
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@t1.com", UsageLocation: "US"}}
}

// Two nodes create one tenant at once; b decided on the empty tenant, and
// a's creation landed before b's append. b's append conflicts and b must
// decide again on what the stream holds: the tenant a created, not the
// empty tenant again until its retries run out.
func TestACreateThatLostTheRaceIsDecidedOnTheCreatedTenant(t *testing.T) {
	for name, c := range map[string]struct {
		m    func(node string) domain.CommandMeta
		want func(t *testing.T, first, r Result, err error)
	}{
		// The same keyed request through two nodes: b replays a's answer.
		"same key": {
			m: func(node string) domain.CommandMeta {
				return domain.CommandMeta{CommandID: "idem-create", RequestHash: "h1", CorrelationID: "req-" + node}
			},
			want: func(t *testing.T, first, r Result, err error) {
				if err != nil {
					t.Fatalf("the create's copy on node b answered %v, want a's answer replayed", err)
				}
				if !r.Replayed || r.Version != first.Version || len(r.Raw) != len(first.Raw) || string(r.Raw[0]) != string(first.Raw[0]) {
					t.Fatalf("node b answered replayed=%v version %d; a answered version %d", r.Replayed, r.Version, first.Version)
				}
			},
		},
		// Two creates of one tenant id: b's is refused, the tenant exists.
		"no key": {
			m: func(node string) domain.CommandMeta { return domain.CommandMeta{CommandID: "create-" + node} },
			want: func(t *testing.T, _ Result, _ Result, err error) {
				var de *domain.Error
				if !errors.As(err, &de) || de.Code != domain.CodeAlreadyExists {
					t.Fatalf("the second create answered %v, want already_exists", err)
				}
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			store := &countingStore{Store: openStore(t)}
			a := newHandler(store, nil, time.Now)
			defer a.Close()
			var first Result
			bs := &firstAppendAfter{Store: store, before: func() { first = must(t, a, createTenantCmd(c.m("a"))) }}
			b := newHandler(bs, nil, time.Now)
			defer b.Close()
			r, err := b.Handle(context.Background(), createTenantCmd(c.m("b")))
			c.want(t, first, r, err)
			if v := head(t, store); v != first.Version {
				t.Fatalf("stream at version %d, want a's create only (version %d)", v, first.Version)
			}
		})
	}
}
