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
	"github.com/seatledger/seatledger/tenantstream"
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

// countingStore counts stream reads (and the events they return, and where
// each began) and append attempts, and can refuse appends with a conflict.
// It embeds the Store interface, so it hides the embedded store's
// AsyncAppender: a handler over it takes the plain (unqueued) path.
type countingStore struct {
	eventstore.Store
	reads      atomic.Int64
	readEvents atomic.Int64
	appends    atomic.Int64
	conflictOn atomic.Bool

	mu    sync.Mutex
	froms []uint64 // the first version asked by each read, in order
}

func (c *countingStore) ReadStream(ctx context.Context, s string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	c.reads.Add(1)
	c.mu.Lock()
	c.froms = append(c.froms, from)
	c.mu.Unlock()
	recs, err := c.Store.ReadStream(ctx, s, from, limit)
	c.readEvents.Add(int64(len(recs)))
	return recs, err
}

// readsSince returns the first versions asked by the reads after the first n.
func (c *countingStore) readsSince(n int) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.froms[n:]...)
}

func (c *countingStore) Append(ctx context.Context, s string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	c.appends.Add(1)
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
	if v, _ := store.StreamVersion(context.Background(), tenantstream.Name("t1")); v != 6 {
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
	if v, _ := store.StreamVersion(context.Background(), tenantstream.Name("t1")); v != first.Version+1 {
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
	missed := must(t, b, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u1"}}).Version // b loads
	before, appends := int(store.reads.Load()), store.appends.Load()
	r := must(t, a, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"u2"}}) // a is stale: conflict, catch up, retry
	// a read only the event it missed, once, and appended twice: the
	// refused attempt and the retry on the caught-up state.
	if got := store.readsSince(before); len(got) != 1 || got[0] != missed {
		t.Fatalf("a's reads after the conflict began at %v, want one read from version %d", got, missed)
	}
	if n := store.appends.Load() - appends; n != 2 || r.Version != missed+1 {
		t.Fatalf("%d append attempts, version %d; want 2 attempts and version %d", n, r.Version, missed+1)
	}
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
	version, _ := store.StreamVersion(context.Background(), tenantstream.Name("t1"))
	store.conflictOn.Store(true)
	appends := store.appends.Load()
	_, err := h.Handle(context.Background(), &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "x", UserPrincipalName: "x@y.z"}})
	if !errors.Is(err, ErrConcurrencyConflict) {
		t.Fatalf("err %v", err)
	}
	// The first attempt and MaxRetries (8 by default) more, then it gives up.
	if n := store.appends.Load() - appends; n != 9 {
		t.Fatalf("%d append attempts, want 1 + 8 retries", n)
	}
	if v, _ := store.StreamVersion(context.Background(), tenantstream.Name("t1")); v != version {
		t.Fatalf("stream version %d after a command that gave up, want %d", v, version)
	}
}

// TestRetryDelayIsJitteredAndBounded: the back-off before retry n is random
// in [b/2, 3b/2) with b = 1 ms doubled n times, capped at 64 ms.
func TestRetryDelayIsJitteredAndBounded(t *testing.T) {
	for attempt := 0; attempt < 10; attempt++ {
		base := min(retryBase<<attempt, retryCap)
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			d := retryDelay(attempt)
			if d < base/2 || d >= base*3/2 {
				t.Fatalf("attempt %d: delay %v outside [%v, %v)", attempt, d, base/2, base*3/2)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Fatalf("attempt %d: only %d distinct delays in 200: not jittered", attempt, len(seen))
		}
	}
}

// TestTheCacheKeepsTheMostRecentlyUsedTenantsOnly: with room for two, the
// third tenant used pushes out the least recently used one, which the next
// command reads from the store again; the others are not read.
func TestTheCacheKeepsTheMostRecentlyUsedTenantsOnly(t *testing.T) {
	store := &countingStore{Store: openStore(t)}
	h := New(Config{Store: store, Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy()), CacheSize: 2})
	defer h.Close()
	for _, id := range []string{"a", "b", "c"} { // a is the least recently used
		createTenant(t, h, id)
	}
	addUser := func(tenant, user string) (reads int64) {
		before := store.reads.Load()
		must(t, h, &domain.AddUser{CommandMeta: meta(tenant, admin), User: domain.NewUser{ID: user, UserPrincipalName: user + "@x.com"}})
		return store.reads.Load() - before
	}
	if n := addUser("c", "u1"); n != 0 {
		t.Fatalf("cached tenant c read %d times", n)
	}
	if n := addUser("b", "u1"); n != 0 {
		t.Fatalf("cached tenant b read %d times", n)
	}
	if n := addUser("a", "u1"); n == 0 {
		t.Fatal("tenant a was not read again: the cache holds more than 2 tenants")
	}
	// Loading a pushed out c (b and a are now the most recent).
	if n := addUser("b", "u2"); n != 0 {
		t.Fatalf("cached tenant b read %d times", n)
	}
	if n := addUser("c", "u2"); n == 0 {
		t.Fatal("tenant c was not read again after a was loaded")
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
		recs, err := store.ReadStream(context.Background(), tenantstream.Name(fmt.Sprint("t", i)), 1, 10000)
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
	ctx := context.Background()
	// The handler wrote snapshots by itself, off the command path.
	waitForHandlersSnapshot(t, store, "t1", 50)
	h.Close()
	if err := h.Snapshot(ctx, "t1", 150); err != nil {
		t.Fatal(err)
	}
	withSnap, err := tenantstream.Fold(ctx, store, store, nil, "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	at150, _ := tenantstream.Fold(ctx, store, store, nil, "t1", 150)
	if err := store.DeleteSnapshots(ctx, ""); err != nil {
		t.Fatal(err)
	}
	without, _ := tenantstream.Fold(ctx, store, store, nil, "t1", 0)
	at150b, _ := tenantstream.Fold(ctx, store, nil, nil, "t1", 150)
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

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitForHandlersSnapshot waits until the tenant's newest snapshot is the
// one a handler with SnapshotEvery k writes at the last multiple of k at or
// below the stream's head, and returns the head and that version.
func waitForHandlersSnapshot(t *testing.T, store *embedded.Store, tenant string, k uint64) (head, newest uint64) {
	t.Helper()
	ctx := context.Background()
	head, err := store.StreamVersion(ctx, tenantstream.Name(tenant))
	if err != nil {
		t.Fatal(err)
	}
	newest = head / k * k
	waitFor(t, fmt.Sprintf("the handler's snapshot at version %d", newest), func() bool {
		snap, ok, err := store.LoadSnapshot(ctx, tenantstream.Name(tenant), 0)
		return err == nil && ok && snap.Version == newest
	})
	return head, newest
}

// TestAColdTenantLoadsFromItsNewestSnapshotAndReadsOnlyTheTail: a handler
// that has never seen a tenant reads the snapshot the first one wrote and
// then only the events after it, however long the stream is.
func TestAColdTenantLoadsFromItsNewestSnapshotAndReadsOnlyTheTail(t *testing.T) {
	raw := openStore(t)
	h := newHandler(raw, raw, time.Now) // K = 50
	createTenant(t, h, "t1")
	for i := 0; i < 180; i++ {
		uid := fmt.Sprint("u", i)
		must(t, h, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: uid, UserPrincipalName: uid + "@x.com"}})
	}
	head, newest := waitForHandlersSnapshot(t, raw, "t1", 50)
	h.Close()

	store := &countingStore{Store: raw}
	cold := newHandler(store, raw, time.Now)
	defer cold.Close()
	r := must(t, cold, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "late", UserPrincipalName: "late@x.com"}})
	if got, want := store.readEvents.Load(), int64(head-newest); got != want {
		t.Fatalf("the cold load read %d events, want the %d after the snapshot at %d", got, want, newest)
	}
	if r.Version != head+1 {
		t.Fatalf("version %d, want %d", r.Version, head+1)
	}
}

// TestCommandsOfDifferentTenantsRunAtTheSameTime: two tenants' commands,
// each stopped inside its load until the other's load has begun, both
// finish; were they serialized, neither could. On both command paths.
func TestCommandsOfDifferentTenantsRunAtTheSameTime(t *testing.T) {
	for _, queued := range []bool{false, true} {
		t.Run(fmt.Sprint("queued=", queued), func(t *testing.T) {
			raw := openStore(t)
			h := newHandler(raw, nil, time.Now)
			createTenant(t, h, "a")
			createTenant(t, h, "b")
			h.Close()

			meet := &meetingStore{Store: raw, waiting: map[string]chan struct{}{"tenant-a": make(chan struct{}), "tenant-b": make(chan struct{})}}
			var store eventstore.Store = meet
			if queued {
				store = struct {
					*meetingStore
					eventstore.AsyncAppender
				}{meet, raw}
			}
			if _, ok := store.(eventstore.AsyncAppender); ok != queued {
				t.Fatalf("the store queues appends: %v, want %v", ok, queued)
			}
			cold := newHandler(store, nil, time.Now) // neither tenant cached: both load
			defer cold.Close()
			var wg sync.WaitGroup
			for _, tenant := range []string{"a", "b"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := cold.Handle(context.Background(), &domain.AddUser{CommandMeta: meta(tenant, admin), User: domain.NewUser{ID: "x", UserPrincipalName: "x@y.z"}}); err != nil {
						t.Errorf("tenant %s: %v", tenant, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// meetingStore stops the first read of each stream in waiting until every
// one of them has begun (or 5 s have passed: then the read fails).
type meetingStore struct {
	eventstore.Store
	mu      sync.Mutex
	waiting map[string]chan struct{} // closed when that stream's read began
}

func (m *meetingStore) ReadStream(ctx context.Context, s string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	m.mu.Lock()
	ch, first := m.waiting[s]
	if first {
		delete(m.waiting, s)
	}
	others := make([]chan struct{}, 0, 1)
	for _, o := range m.waiting {
		others = append(others, o)
	}
	m.mu.Unlock()
	if first {
		close(ch)
		for _, o := range others {
			select {
			case <-o:
			case <-time.After(5 * time.Second):
				return nil, fmt.Errorf("read of %s waited 5 s for another tenant's: commands of different tenants do not run at the same time", s)
			}
		}
	}
	return m.Store.ReadStream(ctx, s, from, limit)
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
	durable, _ := tenantstream.Fold(context.Background(), store, nil, nil, "t1", 0)
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
	durable, _ := tenantstream.Fold(context.Background(), store, nil, nil, "t1", 0)
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
	durable, err := tenantstream.Fold(context.Background(), store, nil, nil, tenant, 0)
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
	durable, err := tenantstream.Fold(context.Background(), store, nil, nil, "t1", 0)
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
