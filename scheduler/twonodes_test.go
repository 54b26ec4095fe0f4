package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/tenantstream"
)

// sharedStore hides the embedded store's queue and exclusivity: handlers
// over it behave as nodes of a shared store (PostgreSQL, KurrentDB), each
// with its own cached states.
type sharedStore struct{ eventstore.Store }

// One purge command handled by two nodes whose cached states are at the
// same version (the bus redelivered it, or two schedulers sent it): one
// purge is written, the other node's copy is acknowledged as nothing to
// purge, and that node's state is the stream's, not its own decision.
func TestAPurgeHandledOnTwoNodesAtOneVersionIsWrittenOnce(t *testing.T) {
	es, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	store := sharedStore{es}
	c := newClock()
	node := func(skew time.Duration) *commands.Handler {
		return commands.New(commands.Config{Store: store, Clock: func() time.Time { return c.Now().Add(skew) },
			Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())})
	}
	a, b := node(0), node(time.Second) // two nodes, two clocks
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	seq := 0
	do := func(cmd domain.Command) {
		t.Helper()
		m := domain.Meta(cmd)
		seq++
		m.TenantID, m.CommandID = "t1", fmt.Sprint("c", seq)
		if m.Actor.String() == "" {
			m.Actor = domain.Actor{UserID: "admin"}
		}
		if _, err := a.Handle(ctx, cmd); err != nil {
			t.Fatalf("%s: %v", cmd.CommandName(), err)
		}
	}
	do(&domain.CreateTenant{CommandMeta: domain.CommandMeta{Actor: domain.Actor{Operator: true}}, Name: "t1",
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@x.com", UsageLocation: "US"}})
	do(&domain.PurchaseSubscription{SubscriptionID: "s", SkuID: "SPB", Quantity: 10})
	do(&domain.AddUser{User: domain.NewUser{ID: "alice", UserPrincipalName: "alice@x.com", UsageLocation: "US"}})
	do(&domain.AssignLicenses{SkuID: "SPB", Users: []string{"alice"}})
	do(&domain.UnassignLicenses{SkuID: "SPB", Users: []string{"alice"}})
	var due []Due
	err = a.View(ctx, "t1", func(st *domain.Tenant) error {
		for w, h := range st.Users["alice"].Holds {
			due = append(due, Due{TenantID: "t1", UserID: "alice", Workload: w, PurgeAfter: h.PurgeAfter})
		}
		return nil
	})
	if err != nil || len(due) == 0 {
		t.Fatalf("no held data to purge (%v)", err)
	}
	c.Advance(31 * day)
	for _, h := range []*commands.Handler{a, b} { // both nodes hold the head
		if err := h.View(ctx, "t1", func(*domain.Tenant) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	cmd := NewPurgeCommand("t1", due)
	log := slog.New(slog.DiscardHandler)
	for _, h := range []*commands.Handler{a, b} {
		if err := Purge(ctx, h, cmd, log); err != nil {
			t.Fatalf("purge: %v", err)
		}
	}
	recs, err := store.ReadStream(ctx, tenantstream.Name("t1"), 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	fold, purges := domain.NewTenant(), 0
	for _, r := range recs {
		e, err := eventcodec.Decode(r.Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		domain.Evolve(fold, e)
		if r.Type == domain.TypeHeldDataPurged {
			purges++
		}
	}
	if purges != len(due) {
		t.Fatalf("%d purge events for %d holds", purges, len(due))
	}
	want, _ := fold.MarshalSnapshot()
	for i, h := range []*commands.Handler{a, b} {
		err := h.View(ctx, "t1", func(st *domain.Tenant) error {
			if got, _ := st.MarshalSnapshot(); string(got) != string(want) {
				t.Errorf("node %d's state (version %d, last event at %v) is not the stream's (version %d, last event at %v)",
					i, st.Version, st.LastOccurredAt, fold.Version, fold.LastOccurredAt)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
