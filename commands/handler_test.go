package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
)

func openStore(t testing.TB) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// countingStore counts stream reads, and can refuse appends with a conflict.
type countingStore struct {
	eventstore.Store
	reads      atomic.Int64
	conflictOn atomic.Bool
}

func (c *countingStore) ReadStream(ctx context.Context, s string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	c.reads.Add(1)
	return c.Store.ReadStream(ctx, s, from, limit)
}

func (c *countingStore) Append(ctx context.Context, s string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	if c.conflictOn.Load() {
		return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: s, Expected: exp, Actual: 999}
	}
	return c.Store.Append(ctx, s, exp, evs)
}

func newHandler(store eventstore.Store, snaps eventstore.SnapshotStore, clock func() time.Time) *Handler {
	return New(Config{Store: store, Snapshots: snaps, Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy()),
		Clock: clock, SnapshotEvery: 50})
}

var admin = domain.Actor{UserID: "admin"}

func meta(tenant string, actor domain.Actor) domain.CommandMeta {
	return domain.CommandMeta{TenantID: tenant, CommandID: fmt.Sprint("c-", seq.Add(1)), Actor: actor}
}

var seq atomic.Int64

func createTenant(t testing.TB, h *Handler, id string, users ...string) {
	t.Helper()
	ctx := context.Background()
	must(t, h, &domain.CreateTenant{CommandMeta: meta(id, domain.Actor{Operator: true}), Name: id,
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@" + id + ".com", UsageLocation: "US"}})
	for _, u := range users {
		must(t, h, &domain.AddUser{CommandMeta: meta(id, admin), User: domain.NewUser{ID: u, UserPrincipalName: u + "@x.com", UsageLocation: "US"}})
	}
	_ = ctx
}

func must(t testing.TB, h *Handler, c domain.Command) Result {
	t.Helper()
	r, err := h.Handle(context.Background(), c)
	if err != nil {
		t.Fatalf("%s: %v", c.CommandName(), err)
	}
	return r
}

func TestHandleAppendsAndCachesTheTenant(t *testing.T) {
	store := &countingStore{Store: openStore(t)}
	h := newHandler(store, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1", "alice")
	r := must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 5})
	if r.Version != 5 || len(r.Events) != 1 || r.Events[0].Version != 5 {
		t.Fatalf("result %+v", r)
	}
	reads := store.reads.Load()
	must(t, h, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"alice"}})
	if store.reads.Load() != reads {
		t.Fatal("a cached tenant was read from the store again")
	}
	if v, _ := store.StreamVersion(context.Background(), StreamName("t1")); v != 6 {
		t.Fatalf("stream version %d", v)
	}
	// A refused command appends nothing and says why.
	_, err := h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", domain.Actor{UserID: "alice"}), SkuID: "SPB", Users: []string{"alice"}})
	if !errors.Is(err, domain.ErrNotAllowedForRole) {
		t.Fatalf("err %v", err)
	}
	if _, err := h.Handle(context.Background(), &domain.AddUser{CommandMeta: meta("nope", admin), User: domain.NewUser{ID: "x", UserPrincipalName: "x@y.z"}}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}
}

func TestSameCommandIDReturnsTheFirstAnswerAndAppendsNothing(t *testing.T) {
	store := openStore(t)
	h := newHandler(store, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1", "alice")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 5})
	cmd := func() domain.Command {
		m := meta("t1", admin)
		m.CommandID, m.RequestHash = "idem-1", "hash"
		return &domain.AssignLicenses{CommandMeta: m, SkuID: "SPB", Users: []string{"alice"}}
	}
	first := must(t, h, cmd())
	must(t, h, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "bob", UserPrincipalName: "b@x.com"}})
	again := must(t, h, cmd())
	if !again.Replayed || again.Version != first.Version || len(again.Events) != 1 || again.Events[0].EventID != first.Events[0].EventID {
		t.Fatalf("first %+v again %+v", first, again)
	}
	if v, _ := store.StreamVersion(context.Background(), StreamName("t1")); v != first.Version+1 {
		t.Fatalf("replay appended: version %d", v)
	}
	// A fresh handler (a restart) gives the same answer from the log.
	h2 := newHandler(store, nil, time.Now)
	defer h2.Close()
	if r := must(t, h2, cmd()); !r.Replayed || r.Version != first.Version {
		t.Fatalf("after restart %+v", r)
	}
}

func TestTwoNodesConflictAndRetryWithOnlyTheNewEvents(t *testing.T) {
	store := &countingStore{Store: openStore(t)}
	a := newHandler(store, nil, time.Now)
	b := newHandler(store, nil, time.Now)
	defer a.Close()
	defer b.Close()
	createTenant(t, a, "t1", "u1", "u2", "u3")
	must(t, a, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 2})
	must(t, b, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u1"}}) // b loads
	must(t, a, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u2"}}) // a is stale: conflict, catch up, retry
	// b is now stale and the product full: the retry must see a's event and refuse.
	_, err := b.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u3"}})
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInsufficientLicenses || de.Missing != 1 {
		t.Fatalf("want insufficient_licenses after catching up, got %v", err)
	}
	var st *domain.Tenant
	if err := b.View(context.Background(), "t1", func(t *domain.Tenant) error { st = t.Clone(); return nil }); err != nil {
		t.Fatal(err)
	}
	if p := st.Pool(mustSku(t, "SPB")); p.Assigned != 2 {
		t.Fatalf("pool %+v", p)
	}
}

func mustSku(t testing.TB, part string) string {
	p, ok := domain.DefaultCatalog().Lookup(part)
	if !ok {
		t.Fatal(part)
	}
	return p.SkuID
}

func TestRetriesRunOutIntoConcurrencyConflict(t *testing.T) {
	store := &countingStore{Store: openStore(t)}
	h := newHandler(store, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1")
	store.conflictOn.Store(true)
	_, err := h.Handle(context.Background(), &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "x", UserPrincipalName: "x@y.z"}})
	if !errors.Is(err, ErrConcurrencyConflict) {
		t.Fatalf("err %v", err)
	}
}

func TestConcurrentCommandsOfOneTenantAreSerializedAndTenantsRunInParallel(t *testing.T) {
	store := openStore(t)
	h := newHandler(store, store, time.Now)
	defer h.Close()
	const tenants, users = 4, 30
	for i := 0; i < tenants; i++ {
		id := fmt.Sprint("t", i)
		createTenant(t, h, id)
		must(t, h, &domain.PurchaseSubscription{CommandMeta: meta(id, admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 10})
	}
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := 0; i < tenants; i++ {
		for u := 0; u < users; u++ {
			wg.Add(1)
			go func(tid string, uid string) {
				defer wg.Done()
				ctx := context.Background()
				if _, err := h.Handle(ctx, &domain.AddUser{CommandMeta: meta(tid, admin), User: domain.NewUser{ID: uid, UserPrincipalName: uid + "@x.com", UsageLocation: "US"}}); err != nil {
					t.Error(err)
					return
				}
				_, err := h.Handle(ctx, &domain.AssignLicenses{CommandMeta: meta(tid, admin), SkuID: "SPB", Users: []string{uid}})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, domain.ErrInsufficientLicenses):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}(fmt.Sprint("t", i), fmt.Sprint("u", u))
		}
	}
	wg.Wait()
	if ok.Load() != tenants*10 || refused.Load() != tenants*(users-10) {
		t.Fatalf("ok %d refused %d", ok.Load(), refused.Load())
	}
	// The log agrees: exactly 10 assignments per tenant, versions contiguous.
	for i := 0; i < tenants; i++ {
		recs, err := store.ReadStream(context.Background(), StreamName(fmt.Sprint("t", i)), 1, 10000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for j, r := range recs {
			if r.Version != uint64(j+1) {
				t.Fatalf("gap at %d", j)
			}
			if r.Type == domain.TypeLicenseAssigned {
				n++
			}
		}
		if n != 10 {
			t.Fatalf("tenant %d: %d assignments", i, n)
		}
	}
}

func TestEventsNeverGoBackInTimeWhenTheClockDoes(t *testing.T) {
	store := openStore(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHandler(store, nil, clock)
	defer h.Close()
	createTenant(t, h, "t1")
	mu.Lock()
	now = now.Add(-time.Hour)
	mu.Unlock()
	r := must(t, h, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "x", UserPrincipalName: "x@y.z"}})
	if r.Events[0].OccurredAt.Before(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("occurredAt went back: %v", r.Events[0].OccurredAt)
	}
}

func TestSnapshotsAreOnlyACache(t *testing.T) {
	store := openStore(t)
	h := newHandler(store, store, time.Now)
	createTenant(t, h, "t1")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 500})
	for i := 0; i < 120; i++ {
		uid := fmt.Sprint("u", i)
		must(t, h, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: uid, UserPrincipalName: uid + "@x.com", UsageLocation: "US"}})
		if i%2 == 0 {
			must(t, h, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{uid}})
		}
	}
	h.Close() // waits for the snapshotter
	ctx := context.Background()
	if err := h.Snapshot(ctx, "t1", 150); err != nil {
		t.Fatal(err)
	}
	snap, ok, err := store.LoadSnapshot(ctx, StreamName("t1"), 0)
	if err != nil || !ok || snap.Version%50 != 0 {
		t.Fatalf("no snapshot at a multiple of K: %+v %v %v", snap.Version, ok, err)
	}
	withSnap, err := Fold(ctx, store, store, nil, "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	at150, _ := Fold(ctx, store, store, nil, "t1", 150)
	if err := store.DeleteSnapshots(ctx, ""); err != nil {
		t.Fatal(err)
	}
	without, _ := Fold(ctx, store, store, nil, "t1", 0)
	at150b, _ := Fold(ctx, store, nil, nil, "t1", 150)
	a, _ := withSnap.MarshalSnapshot()
	b, _ := without.MarshalSnapshot()
	if string(a) != string(b) {
		t.Fatal("deleting snapshots changed the state")
	}
	a, _ = at150.MarshalSnapshot()
	b, _ = at150b.MarshalSnapshot()
	if string(a) != string(b) || at150.Version != 150 {
		t.Fatal("state at version 150 differs with and without snapshots")
	}
}

// TestTenantLocksSerializeOneTenantOnly: while a tenant's lock is held,
// another tenant's lock is free and the same tenant's waits; the map keeps no
// entry once nobody uses a tenant.
func TestTenantLocksSerializeOneTenantOnly(t *testing.T) {
	var l tenantLocks
	unlockA := l.lock("a")
	got := make(chan string, 2)
	go func() { defer l.lock("b")(); got <- "b" }()
	if g := <-got; g != "b" {
		t.Fatalf("got %s", g)
	}
	go func() { defer l.lock("a")(); got <- "a again" }()
	select {
	case g := <-got:
		t.Fatalf("%s while a was held", g)
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	if g := <-got; g != "a again" {
		t.Fatalf("got %s", g)
	}
	// The goroutine's deferred unlock runs after its send: wait for it.
	for i := 0; ; i++ {
		l.mu.Lock()
		n := len(l.locks)
		l.mu.Unlock()
		if n == 0 {
			break
		}
		if i > 1000 {
			t.Fatalf("%d tenant locks left with no user", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// failFirstQueued is the embedded store, except that its first queued append
// after arm() never reaches the store and fails with ErrUnavailable, once the
// next append has been queued on top of it.
type failFirstQueued struct {
	*embedded.Store
	mu      sync.Mutex
	armed   bool
	failing chan struct{} // closed when the next append is queued
}

func (f *failFirstQueued) arm() {
	f.mu.Lock()
	f.armed, f.failing = true, make(chan struct{})
	f.mu.Unlock()
}

func (f *failFirstQueued) QueueAppend(ctx context.Context, s string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) func() (eventstore.AppendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed {
		f.armed = false
		failing := f.failing
		return func() (eventstore.AppendResult, error) {
			<-failing
			return eventstore.AppendResult{}, fmt.Errorf("injected: %w", eventstore.ErrUnavailable)
		}
	}
	w := f.Store.QueueAppend(ctx, s, exp, evs)
	if f.failing != nil {
		close(f.failing)
		f.failing = nil
	}
	return w
}

// TestQueuedCommandsNeverKeepADecisionOnAFailedAppend: a command decided on
// the state of a queued append that then fails is decided again on the
// durable state; the handler's state and the log agree afterwards.
func TestQueuedCommandsNeverKeepADecisionOnAFailedAppend(t *testing.T) {
	store := &failFirstQueued{Store: openStore(t)}
	h := newHandler(store, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1", "u1", "u2")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 1})

	// u1 takes the only license in an append that will fail once a second
	// command (adding u3) has been decided on its state and queued behind
	// it. That one must be decided again on the durable state, and u2 must
	// then find the license free.
	store.arm()
	errs := make(chan error, 2)
	go func() {
		_, err := h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u1"}})
		errs <- err
	}()
	for { // wait until u1's append is queued (its events applied)
		var assigned int
		h.locks.mu.Lock()
		tl := h.locks.locks["t1"]
		h.locks.mu.Unlock()
		if tl != nil {
			tl.Lock()
			if tl.st != nil {
				assigned = tl.st.Pool(mustSku(t, "SPB")).Assigned
			}
			tl.Unlock()
		}
		if assigned == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	go func() {
		_, err := h.Handle(context.Background(), &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "u3", UserPrincipalName: "u3@x.com", UsageLocation: "US"}})
		errs <- err
	}()
	var failed, added int
	for i := 0; i < 2; i++ {
		switch err := <-errs; {
		case errors.Is(err, eventstore.ErrUnavailable):
			failed++
		case err == nil:
			added++
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	if failed != 1 || added != 1 {
		t.Fatalf("failed %d added %d", failed, added)
	}
	r := must(t, h, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u2"}})
	if len(r.Events) == 0 {
		t.Fatal("u2 got no license: the failed append's assignment was kept")
	}
	var held *domain.Tenant
	if err := h.View(context.Background(), "t1", func(t *domain.Tenant) error { held = t.Clone(); return nil }); err != nil {
		t.Fatal(err)
	}
	durable, err := Fold(context.Background(), store, nil, nil, "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	sku := mustSku(t, "SPB")
	if held.Version != durable.Version || held.Pool(sku) != durable.Pool(sku) || durable.Pool(sku).Assigned != 1 ||
		durable.Users["u1"].Licenses[sku] != nil || durable.Users["u2"].Licenses[sku] == nil || durable.Users["u3"] == nil {
		t.Fatalf("handler %d %+v, log %d %+v", held.Version, held.Pool(sku), durable.Version, durable.Pool(sku))
	}
}

// TestQueuedCommandsOfOneTenantPipeline: many commands of one tenant in
// flight at once all land, in order, and the handler's state is the log's.
func TestQueuedCommandsOfOneTenantPipeline(t *testing.T) {
	store := openStore(t)
	h := newHandler(store, store, time.Now)
	defer h.Close()
	createTenant(t, h, "t1")
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprint("p", i)
			if _, err := h.Handle(context.Background(), &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: id, UserPrincipalName: id + "@x.com"}}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	durable, err := Fold(context.Background(), store, nil, nil, "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var held *domain.Tenant
	if err := h.View(context.Background(), "t1", func(t *domain.Tenant) error { held = t.Clone(); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(durable.Users) != 201 || held.Version != durable.Version || len(held.Users) != len(durable.Users) {
		t.Fatalf("log: %d users at %d; handler: %d users at %d", len(durable.Users), durable.Version, len(held.Users), held.Version)
	}
}
