package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
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
// after arm() is made to fail (queued with an expected version the stream
// cannot have), and its outcome is only reported once the next append has
// been queued after it.
type failFirstQueued struct {
	*embedded.Store
	mu      sync.Mutex
	armed   bool
	failing chan struct{} // closed when the next append is queued
}

type heldQueued struct {
	eventstore.QueuedAppend
	release <-chan struct{}
}

func (q heldQueued) Wait() (eventstore.AppendResult, error) {
	<-q.release
	return q.QueuedAppend.Wait()
}

func (f *failFirstQueued) arm() {
	f.mu.Lock()
	f.armed, f.failing = true, make(chan struct{})
	f.mu.Unlock()
}

func (f *failFirstQueued) QueueAppend(ctx context.Context, s string, exp eventstore.ExpectedVersion, evs []eventstore.EventData, after eventstore.QueuedAppend) eventstore.QueuedAppend {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := after.(heldQueued); ok {
		after = h.QueuedAppend
	}
	if f.armed {
		f.armed = false
		return heldQueued{f.Store.QueueAppend(ctx, s, eventstore.Exactly(1<<40), evs, after), f.failing}
	}
	q := f.Store.QueueAppend(ctx, s, exp, evs, after)
	if f.failing != nil {
		close(f.failing)
		f.failing = nil
	}
	return q
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
	sku := mustSku(t, "SPB")

	// u1's first append fails once a second command (adding u3) has been
	// decided on its state and queued after it: both are decided again on
	// the durable state and land.
	store.arm()
	errs := make(chan error, 2)
	go func() {
		_, err := h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u1"}})
		errs <- err
	}()
	waitQueued(t, h, "t1", func(st *domain.Tenant) bool { return st.Users["u1"].Licenses[sku] != nil })
	go func() {
		_, err := h.Handle(context.Background(), &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "u3", UserPrincipalName: "u3@x.com", UsageLocation: "US"}})
		errs <- err
	}()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if _, err := h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u2"}}); !errors.Is(err, domain.ErrInsufficientLicenses) {
		t.Fatalf("u2 with the only license taken by u1: %v", err)
	}
	checkHandlerMatchesLog(t, h, store, "t1")
	durable, _ := Fold(context.Background(), store, nil, nil, "t1", 0)
	if durable.Users["u1"].Licenses[sku] == nil || durable.Users["u3"] == nil || durable.Pool(sku).Assigned != 1 {
		t.Fatalf("log: u1 licensed %v, u3 %v, pool %+v", durable.Users["u1"].Licenses[sku] != nil, durable.Users["u3"] != nil, durable.Pool(sku))
	}
}

// walGate holds the embedded store's write-ahead-log writes while armed.
type walGate struct {
	armed   atomic.Bool
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func (g *walGate) String() string { return "walGate" }
func (g *walGate) MaybeError(op errorfs.Op) error {
	if !g.armed.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		g.once.Do(func() { close(g.blocked) })
		<-g.release
	}
	return nil
}

// TestQueuedCommandWhoseClientLeftMidWriteStillCounts: a command whose
// context ends while its append is being written waits for the store's
// final outcome, so the commands after it decide on a state that has its
// events (found in review: they reloaded the state without them, and a
// later append whose version happened to match was stored).
func TestQueuedCommandWhoseClientLeftMidWriteStillCounts(t *testing.T) {
	g := &walGate{blocked: make(chan struct{}), release: make(chan struct{})}
	store, err := embedded.Open(t.TempDir(), embedded.Options{FS: errorfs.Wrap(vfs.Default, g), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := newHandler(store, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1", "u1", "u2")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 1})
	sku := mustSku(t, "SPB")

	g.armed.Store(true)
	ctxX, cancelX := context.WithCancel(context.Background())
	xDone := make(chan error, 1)
	go func() {
		_, err := h.Handle(ctxX, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u1"}})
		xDone <- err
	}()
	<-g.blocked // X is in the write-ahead log
	cancelX()
	res := make(chan error, 2)
	go func() {
		_, err := h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u2"}})
		res <- err
	}()
	go func() {
		_, err := h.Handle(context.Background(), &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "u9", UserPrincipalName: "u9@x.com", UsageLocation: "US"}})
		res <- err
	}()
	time.Sleep(50 * time.Millisecond) // let them queue behind X if they would
	g.armed.Store(false)
	close(g.release)
	if err := <-xDone; err != nil {
		t.Fatalf("X was written; its command says %v", err)
	}
	var refused, ok int
	for i := 0; i < 2; i++ {
		switch err := <-res; {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrInsufficientLicenses):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("ok %d refused %d: u2 must be refused (u1 holds the only license), u9 added", ok, refused)
	}
	checkHandlerMatchesLog(t, h, store, "t1")
	durable, _ := Fold(context.Background(), store, nil, nil, "t1", 0)
	if durable.Users["u1"].Licenses[sku] == nil || durable.Users["u2"].Licenses[sku] != nil || durable.Users["u9"] == nil {
		t.Fatalf("log: u1 %v u2 %v u9 %v", durable.Users["u1"].Licenses[sku] != nil, durable.Users["u2"].Licenses[sku] != nil, durable.Users["u9"] != nil)
	}
}

// waitQueued waits until the tenant's held state satisfies cond (a command
// has queued its append).
func waitQueued(t *testing.T, h *Handler, tenant string, cond func(*domain.Tenant) bool) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		h.locks.mu.Lock()
		tl := h.locks.locks[tenant]
		h.locks.mu.Unlock()
		ok := false
		if tl != nil {
			tl.Lock()
			ok = tl.st != nil && cond(tl.st)
			tl.Unlock()
		}
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the command never queued its append")
}

// checkHandlerMatchesLog: the handler's state of the tenant is the fold of
// its log.
func checkHandlerMatchesLog(t *testing.T, h *Handler, store eventstore.Store, tenant string) {
	t.Helper()
	var held *domain.Tenant
	if err := h.View(context.Background(), tenant, func(s *domain.Tenant) error { held = s.Clone(); return nil }); err != nil {
		t.Fatal(err)
	}
	durable, err := Fold(context.Background(), store, nil, nil, tenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := eventcodec.Marshal(held) // map keys sorted
	b, _ := eventcodec.Marshal(durable)
	if string(a) != string(b) {
		t.Fatalf("handler state (version %d) differs from the log's fold (version %d)", held.Version, durable.Version)
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
