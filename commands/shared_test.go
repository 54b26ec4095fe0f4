package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/postgres"
	"github.com/seatledger/seatledger/tenantstream"
)

// sharedStores opens two PostgreSQL stores on one fresh schema, as two
// nodes would, or skips when no server answers.
func sharedStores(t *testing.T) (a, b *postgres.Store) { return sharedStoresB(t) }

func sharedStoresB(t testing.TB) (a, b *postgres.Store) {
	t.Helper()
	url := os.Getenv("SEATLEDGER_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	schema := "slt_cmd_" + hex.EncodeToString(raw[:])
	open := func() *postgres.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := postgres.OpenOptions(ctx, url, postgres.Options{Schema: schema})
		if err != nil {
			t.Skipf("PostgreSQL at %s is not reachable (%v): skipping the shared-store tests", url, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a = open()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := postgres.DropSchema(ctx, url, schema); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return a, open()
}

// twoNodes returns two Handlers, each on its own Store of one shared
// database, with a tenant t1 (admin, u0, u1) holding one SPB subscription
// of 2 licenses, and node a's cache holding the tenant.
func twoNodes(t *testing.T) (a, b *Handler, store eventstore.Store) {
	sa, sb := sharedStores(t)
	if eventstore.IsExclusive(sa) {
		t.Fatal("the PostgreSQL store says it is exclusive; several processes share it")
	}
	a, b = newHandler(sa, nil, time.Now), newHandler(sb, nil, time.Now)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	createTenant(t, a, "t1", "u0", "u1")
	must(t, a, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 2})
	return a, b, sa
}

func head(t *testing.T, s eventstore.Store) uint64 {
	t.Helper()
	v, err := s.StreamVersion(context.Background(), tenantstream.Name("t1"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Issue 16, reproduction 1: node a's cache predates b's assign; a's
// unassign must remove the license, not answer a no-op on its old state.
func TestANoOpIsDecidedOnTheStreamHead(t *testing.T) {
	a, b, store := twoNodes(t)
	assigned := must(t, b, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u0"}})
	r := must(t, a, &domain.UnassignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u0"}})
	if len(r.Events) == 0 || r.Version != assigned.Version+uint64(len(r.Events)) || r.Events[0].Type != "LicenseUnassigned" {
		t.Fatalf("unassign on a stale node answered version %d with %d events; the head was %d: want the unassign written", r.Version, len(r.Events), assigned.Version)
	}
	if h := head(t, store); h != r.Version {
		t.Fatalf("stream head %d, answer %d", h, r.Version)
	}
	// A true no-op (b gave u1 the license a's cache does not know of)
	// answers the head, not a's old version.
	must(t, b, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u1"}})
	noop := must(t, a, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u1"}})
	if len(noop.Events) != 0 || noop.Version != head(t, store) {
		t.Fatalf("no-op answered version %d with %d events; head %d", noop.Version, len(noop.Events), head(t, store))
	}
}

// Issue 16, reproduction 2: a refusal is made on the head. Node a thinks
// the pool is full; b frees a license; a's assign must succeed.
func TestARefusalIsDecidedOnTheStreamHead(t *testing.T) {
	a, b, _ := twoNodes(t)
	must(t, a, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u0", "u1"}})
	must(t, b, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "u2", UserPrincipalName: "u2@x.com", UsageLocation: "US"}})
	must(t, b, &domain.UnassignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u0"}})
	r, err := a.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u2"}})
	if err != nil {
		t.Fatalf("a free license exists in the store, but the stale node answered %v", err)
	}
	if len(r.Events) == 0 {
		t.Fatalf("assign answered %+v with no events", r)
	}
	// And a refusal that stands on the head is still a refusal.
	_, err = a.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u0"}})
	if !errors.Is(err, domain.ErrInsufficientLicenses) {
		t.Fatalf("want insufficient_licenses on the head, got %v", err)
	}
}

// Issue 16, reproduction 3: a role change made through one node is seen by
// the other node's very next role check (View), revoke and grant alike.
func TestRoleChecksSeeTheStreamHead(t *testing.T) {
	a, b, _ := twoNodes(t)
	isLicenseAdmin := func(h *Handler) bool {
		var ok bool
		if err := h.View(context.Background(), "t1", func(st *domain.Tenant) error {
			u := st.Users["u1"]
			ok = u != nil && !u.Deleted && u.HasRole(domain.RoleLicenseAdmin)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if isLicenseAdmin(a) {
		t.Fatal("u1 has no role yet")
	}
	must(t, b, &domain.SetAdminRoles{CommandMeta: meta("t1", admin), UserID: "u1", Roles: []domain.Role{domain.RoleLicenseAdmin}})
	if !isLicenseAdmin(a) {
		t.Fatal("a role granted through b is refused by a")
	}
	must(t, b, &domain.SetAdminRoles{CommandMeta: meta("t1", admin), UserID: "u1", Roles: nil})
	if isLicenseAdmin(a) {
		t.Fatal("a role revoked through b is still honoured by a")
	}
	// The same through the command path: u1's command on a is refused.
	_, err := a.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", domain.Actor{UserID: "u1"}), SkuID: "SPB", Users: []string{"u0"}})
	if !errors.Is(err, domain.ErrNotAllowedForRole) {
		t.Fatalf("revoked admin's command: %v", err)
	}
}

// An exclusive store is trusted: a cached tenant is not read again before
// a no-op (the fast path of the embedded store).
func TestAnExclusiveStoreAnswersNoOpsFromTheCache(t *testing.T) {
	store := &countingStore{Store: openStore(t)}
	if !eventstore.IsExclusive(openStore(t)) {
		t.Fatal("the embedded store must say it is exclusive")
	}
	h := newHandler(exclusive{store}, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1", "u0")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 2})
	assign := func() domain.Command {
		return &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u0"}}
	}
	must(t, h, assign())
	reads := store.reads.Load()
	must(t, h, assign()) // u0 holds it: a no-op
	if n := store.reads.Load() - reads; n != 0 {
		t.Fatalf("a no-op on an exclusive store read the stream %d times", n)
	}
	// The same store, not declared exclusive, reads the head once.
	h2 := newHandler(store, nil, time.Now)
	defer h2.Close()
	must(t, h2, assign()) // loads: fresh
	reads = store.reads.Load()
	must(t, h2, assign())
	if n := store.reads.Load() - reads; n != 1 {
		t.Fatalf("a no-op from the cache of a shared store read the stream %d times, want 1", n)
	}
}

// exclusive declares a wrapped store exclusive.
type exclusive struct{ *countingStore }

func (exclusive) Exclusive() bool { return true }

// BenchmarkRoleCheckOnASharedStore is the price of issue 16's freshness
// rule for a query: View (the role check) of a cached tenant on the
// PostgreSQL store, trusted as exclusive (the old behaviour: no read) and
// as shared (one read of the stream after the cached version).
func BenchmarkRoleCheckOnASharedStore(b *testing.B) {
	for _, mode := range []string{"trusted", "shared"} {
		b.Run(mode, func(b *testing.B) {
			sa, _ := sharedStoresB(b)
			var store eventstore.Store = sa
			if mode == "trusted" {
				store = trusted{sa}
			}
			h := newHandler(store, nil, time.Now)
			defer h.Close()
			createTenant(b, h, "t1", "u0", "u1")
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if err := h.View(ctx, "t1", func(st *domain.Tenant) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// trusted declares a shared store exclusive, as the handler treated every
// store before issue 16.
type trusted struct{ *postgres.Store }

func (trusted) Exclusive() bool { return true }
