package commands

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// keyed returns the metadata of a request with an Idempotency-Key: a fixed
// command id (derived from the key) and the request's hash.
func keyed(tenant, commandID, hash string) domain.CommandMeta {
	return domain.CommandMeta{TenantID: tenant, CommandID: commandID, RequestHash: hash, Actor: admin}
}

// The same Idempotency-Key with another body, decided on a node whose
// cached state predates the first request, must be refused: the first
// request's events are in the stream, not the second's.
func TestAKeyReusedWithAnotherBodyOnAStaleNodeIsRefused(t *testing.T) {
	a, b, store := twoNodes(t)
	bothAtHead(t, a, b)
	first := must(t, a, &domain.AssignLicenses{CommandMeta: keyed("t1", "idem-k", "h1"), SkuID: "SPB", Users: []string{"u0"}})
	_, err := b.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: keyed("t1", "idem-k", "h2"), SkuID: "SPB", Users: []string{"u1"}})
	if !errors.Is(err, domain.ErrIdempotencyKeyReused) {
		t.Errorf("the key's second body on a stale node answered %v, want idempotency_key_reused", err)
	}
	assertStream(t, store, first)
	// And b holds the truth: u0 licensed, u1 not.
	err = b.View(context.Background(), "t1", func(st *domain.Tenant) error {
		if len(st.Users["u0"].Licenses) != 1 || len(st.Users["u1"].Licenses) != 0 {
			return fmt.Errorf("node b v%d: u0 %+v, u1 %+v: it took the refused body's events for written", st.Version, st.Users["u0"].Licenses, st.Users["u1"].Licenses)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// A retry with the same key and body on a stale node replays the first
// answer: the events it answers are the ones stored.
func TestARetryOnAStaleNodeAnswersTheStoredEvents(t *testing.T) {
	a, b, store := twoNodes(t)
	bothAtHead(t, a, b)
	m := keyed("t1", "idem-r", "h1")
	m.CorrelationID = "req-1"
	first := must(t, a, &domain.AssignLicenses{CommandMeta: m, SkuID: "SPB", Users: []string{"u0"}})
	m.CorrelationID = "req-2"
	again := must(t, b, &domain.AssignLicenses{CommandMeta: m, SkuID: "SPB", Users: []string{"u0"}})
	if !again.Replayed || again.Version != first.Version || len(again.Events) != len(first.Events) {
		t.Fatalf("retry on a stale node answered replayed=%v version %d with %d events; first: version %d, %d events",
			again.Replayed, again.Version, len(again.Events), first.Version, len(first.Events))
	}
	for i := range first.Events {
		if string(again.Raw[i]) != string(first.Raw[i]) {
			t.Errorf("retry answered event %d as\n%s\nthe first answer was\n%s", i, again.Raw[i], first.Raw[i])
		}
	}
	assertStream(t, store, first)
}

// assertStream checks that the stream holds r's events as r answered them.
func assertStream(t *testing.T, store eventstore.Store, r Result) {
	t.Helper()
	first := r.Version - uint64(len(r.Events)) + 1
	recs, err := store.ReadStream(context.Background(), tenantstream.Name("t1"), first, len(r.Events))
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		if string(rec.Data) != string(r.Raw[i]) {
			t.Errorf("stored event %d:\n%s\nanswered:\n%s", rec.Version, rec.Data, r.Raw[i])
		}
	}
}

// bothAtHead makes both nodes hold the stream's head in their caches, so
// that the next command decided on either is decided at the same version.
func bothAtHead(t *testing.T, a, b *Handler) {
	t.Helper()
	for _, h := range []*Handler{a, b} {
		if err := h.View(context.Background(), "t1", func(*domain.Tenant) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
}
