package scheduler

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/tenantstream"
)

const day = 24 * time.Hour

// clock is the injected clock of a test: nobody sleeps for 30 days.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func newClock() *clock                   { return &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)} }

// world is one seatledger node in a test: store, command side, projection
// into a private Redis prefix, and the purge command bus.
type world struct {
	t      *testing.T
	ctx    context.Context
	store  *embedded.Store
	h      *commands.Handler
	rdb    redis.UniversalClient
	prefix string
	proj   *projections.Projection
	clock  *clock
	bus    *cqrs.CommandBus
	seq    int
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// newWorldOn makes a world on a Redis of kind k.
func newWorldOn(t *testing.T, k redistest.Kind) *world { return newWorldWith(t, worldOpts{kind: k}) }

// newWorldOpts makes a world; durable syncs every append as in production.
func newWorldOpts(t *testing.T, durable bool) *world {
	return newWorldWith(t, worldOpts{durable: durable})
}

type worldOpts struct {
	durable  bool
	kind     redistest.Kind // default redistest.Single
	redisBus *RedisBus      // non-nil: purge commands travel on it (its Client is set here)
}

func newWorldWith(t *testing.T, o worldOpts) *world {
	t.Helper()
	if o.kind == "" {
		o.kind = redistest.Single
	}
	rdb := redistest.Open(t, o.kind, 0)
	prefix := redistest.Prefix("sched:")
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: !o.durable})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := newClock()
	w := &world{t: t, ctx: ctx, store: store, rdb: rdb, prefix: prefix, clock: c}
	w.h = commands.New(commands.Config{Store: store, Snapshots: store, Clock: c.Now,
		Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())})
	w.proj, err = projections.New(projections.Config{Name: "readmodels", Store: store, Redis: rdb, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	projDone := make(chan struct{})
	go func() { defer close(projDone); _ = w.proj.Run(ctx) }()

	var pub message.Publisher
	var newSub func(string) (message.Subscriber, error)
	if rb := o.redisBus; rb != nil {
		rb.Client = rdb
		if pub, err = rb.Publisher(); err != nil {
			t.Fatal(err)
		}
		newSub = rb.Subscriber
	} else {
		pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
		pub = pubsub
		newSub = func(string) (message.Subscriber, error) { return pubsub, nil }
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if err := AddProcessor(router, newSub, w.h, nil); err != nil {
		t.Fatal(err)
	}
	routerDone := make(chan struct{})
	go func() { defer close(routerDone); _ = router.Run(ctx) }()
	<-router.Running()
	if w.bus, err = NewBus(pub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-projDone
		<-routerDone
		w.h.Close()
		store.Close()
		_ = redistest.Delete(context.Background(), rdb, readmodel.GlobEscape(prefix)+"*")
	})
	return w
}

func (w *world) scheduler() *Scheduler {
	return New(Config{Schedule: RedisSchedule{RDB: w.rdb, Prefix: w.prefix}, Bus: w.bus, Clock: w.clock.Now, Interval: 20 * time.Millisecond, BatchSize: benchInt("SEATLEDGER_BENCH_BATCH"), MaxRate: float64(benchInt("SEATLEDGER_BENCH_RATE"))})
}

func (w *world) do(tenant string, c domain.Command) {
	w.t.Helper()
	m := domain.Meta(c)
	w.seq++
	m.TenantID, m.CommandID = tenant, fmt.Sprint("c", w.seq)
	if m.Actor.UserID == "" && !m.Actor.Operator && m.Actor.System == "" {
		m.Actor = domain.Actor{UserID: "admin"}
	}
	if _, err := w.h.Handle(w.ctx, c); err != nil {
		w.t.Fatalf("%s: %v", c.CommandName(), err)
	}
}

// tenant creates a tenant with users licensed with Business Premium.
func (w *world) tenant(id string, users ...string) {
	w.do(id, &domain.CreateTenant{CommandMeta: domain.CommandMeta{Actor: domain.Actor{Operator: true}}, Name: id,
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@x.com", UsageLocation: "US"}})
	w.do(id, &domain.PurchaseSubscription{SubscriptionID: "s", SkuID: "SPB", Quantity: 100})
	for _, u := range users {
		w.do(id, &domain.AddUser{User: domain.NewUser{ID: u, UserPrincipalName: u + "@x.com", UsageLocation: "US"}})
	}
	w.do(id, &domain.AssignLicenses{SkuID: "SPB", Users: users})
}

// synced waits until the projection has applied everything in the store.
func (w *world) synced() {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.proj.WaitFor(ctx, w.store.LastPosition()); err != nil {
		w.t.Fatalf("projection did not catch up: %v (%+v)", err, w.proj.Status())
	}
}

// tick runs one scheduler tick on synced read models and waits until the
// purges it sent are in the log.
func (w *world) tick(s *Scheduler) int {
	w.t.Helper()
	w.synced()
	before := w.purges("")
	n, err := s.Tick(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	w.waitPurges(before, n)
	return n
}

func (w *world) waitPurges(before, sent int) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sent > 0 && w.purges("") < before+sent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// purges counts HeldDataPurged events (of one tenant, or all: "").
func (w *world) purges(tenant string) int {
	recs, err := w.store.ReadAll(w.ctx, 0, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Type == domain.TypeHeldDataPurged && (tenant == "" || r.Stream == tenantstream.Name(tenant)) {
			n++
		}
	}
	return n
}

func (w *world) held(tenant, user, workload string) bool {
	var ok bool
	_ = w.h.View(w.ctx, tenant, func(t *domain.Tenant) error {
		ok = t.Users[user] != nil && t.Users[user].Holds[workload] != nil
		return nil
	})
	return ok
}

func TestLicenseRemovedIsHeldAndPurgedAtDay30NotDay29(t *testing.T) {
	redistest.Each(t, testLicenseRemovedIsHeldAndPurgedAtDay30NotDay29)
}

func testLicenseRemovedIsHeldAndPurgedAtDay30NotDay29(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	s := w.scheduler()
	w.tenant("t1", "alice")
	w.do("t1", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"alice"}})
	if !w.held("t1", "alice", domain.WorkloadExchange) {
		t.Fatal("removing the license holds the mailbox")
	}
	start := w.clock.Now()
	w.clock.Advance(29 * day)
	if n := w.tick(s); n != 0 || w.purges("t1") != 0 {
		t.Fatalf("purged on day 29 (%d sent)", n)
	}
	w.clock.Set(start.Add(30 * day))
	if n := w.tick(s); n != 1 || w.purges("t1") != 1 {
		t.Fatalf("day 30: %d sent, %d purged", n, w.purges("t1"))
	}
	w.synced()
	if n := w.tick(s); n != 0 || w.purges("t1") != 1 {
		t.Fatal("a purged hold is not purged again")
	}
}

func TestReassignedOnDay10IsNeverPurged(t *testing.T) {
	redistest.Each(t, testReassignedOnDay10IsNeverPurged)
}

func testReassignedOnDay10IsNeverPurged(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	s := w.scheduler()
	w.tenant("t1", "alice")
	w.do("t1", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"alice"}})
	w.clock.Advance(10 * day)
	w.do("t1", &domain.AssignLicenses{SkuID: "SPB", Users: []string{"alice"}})
	w.clock.Advance(50 * day)
	if n := w.tick(s); n != 0 || w.purges("t1") != 0 {
		t.Fatalf("a released hold was purged (%d sent)", n)
	}
}

func TestRetentionHoldKeepsDataPastThePeriod(t *testing.T) {
	redistest.Each(t, testRetentionHoldKeepsDataPastThePeriod)
}

func testRetentionHoldKeepsDataPastThePeriod(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	s := w.scheduler()
	w.tenant("t1", "alice")
	w.do("t1", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"alice"}})
	w.do("t1", &domain.SetRetentionHold{UserID: "alice", Enabled: true})
	w.clock.Advance(90 * day)
	if n := w.tick(s); n != 0 || w.purges("t1") != 0 {
		t.Fatalf("retained data was purged (%d sent)", n)
	}
	// The schedule shows it as retained.
	raw, err := w.rdb.HGet(w.ctx, readmodel.Keys{Prefix: w.prefix}.Key("t1", readmodel.Held), readmodel.HeldMember("alice", domain.WorkloadExchange)).Result()
	if err != nil || !strings.Contains(raw, `"retained":true`) {
		t.Fatalf("held row %q %v", raw, err)
	}
	// Lifting the hold starts the clock again from now.
	w.do("t1", &domain.SetRetentionHold{UserID: "alice", Enabled: false})
	w.clock.Advance(29 * day)
	if n := w.tick(s); n != 0 {
		t.Fatal("purged before a full period after the retention hold was lifted")
	}
	w.clock.Advance(day)
	if n := w.tick(s); n != 1 || w.purges("t1") != 1 {
		t.Fatalf("%d sent, %d purged", n, w.purges("t1"))
	}
}

func TestUserDeletedHoldsExchangeAndOneDriveAndPurgesBoth(t *testing.T) {
	redistest.Each(t, testUserDeletedHoldsExchangeAndOneDriveAndPurgesBoth)
}

func testUserDeletedHoldsExchangeAndOneDriveAndPurgesBoth(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	s := w.scheduler()
	w.tenant("t1", "alice")
	w.do("t1", &domain.DeleteUser{UserID: "alice"})
	if !w.held("t1", "alice", domain.WorkloadExchange) || !w.held("t1", "alice", domain.WorkloadOneDrive) {
		t.Fatal("deleting a user holds Exchange and OneDrive")
	}
	w.clock.Advance(30 * day)
	if n := w.tick(s); n != 2 || w.purges("t1") != 2 {
		t.Fatalf("%d sent, %d purged", n, w.purges("t1"))
	}
}

func TestSchedulerDownOverTheDueTimePurgesOnceAtRestart(t *testing.T) {
	redistest.Each(t, testSchedulerDownOverTheDueTimePurgesOnceAtRestart)
}

func testSchedulerDownOverTheDueTimePurgesOnceAtRestart(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	w.tenant("t1", "alice", "bob")
	w.do("t1", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"alice", "bob"}})
	w.clock.Advance(45 * day) // nobody ran while the holds fell due
	w.synced()
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.scheduler().Run(ctx) }() // ticks at start, then every 20ms
	w.waitPurges(0, 2)
	time.Sleep(200 * time.Millisecond) // several more ticks
	cancel()
	<-done
	if got := w.purges("t1"); got != 2 {
		t.Fatalf("%d purge events, want exactly 2", got)
	}
}

func TestTwoSchedulersAtOnceGiveOnePurgeEvent(t *testing.T) {
	redistest.Each(t, testTwoSchedulersAtOnceGiveOnePurgeEvent)
}

func testTwoSchedulersAtOnceGiveOnePurgeEvent(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	w.tenant("t1", "alice")
	w.tenant("t2", "carol")
	w.do("t1", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"alice"}})
	w.do("t2", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"carol"}})
	w.clock.Advance(31 * day)
	w.synced()
	a, b := w.scheduler(), w.scheduler()
	var wg sync.WaitGroup
	for _, s := range []*Scheduler{a, b, a, b} {
		wg.Add(1)
		go func(s *Scheduler) {
			defer wg.Done()
			if _, err := s.Tick(w.ctx); err != nil {
				t.Error(err)
			}
		}(s)
	}
	wg.Wait()
	w.waitPurges(0, 2)
	time.Sleep(100 * time.Millisecond) // let any duplicate through
	if w.purges("t1") != 1 || w.purges("t2") != 1 {
		t.Fatalf("purges t1=%d t2=%d, want 1 each", w.purges("t1"), w.purges("t2"))
	}
}

func benchEnabled() bool { return os.Getenv("SEATLEDGER_BENCH") == "1" }

// benchInt reads a knob of the benchmark (0: the default).
func benchInt(name string) int {
	n := 0
	fmt.Sscan(os.Getenv(name), &n)
	return n
}

// TestPurgesTravelOnTheStreamOfARedisCluster: with a Redis Cluster the
// purge commands travel on the Redis Stream (RedisBus) through a cluster
// client: one key, so one master, whatever the cluster's size. When that
// master loses the stream (restarted empty), the stream and group are
// recreated (by the subscriber's next read, or Ensure), Ready agrees, and
// purges flow again.
func TestPurgesTravelOnTheStreamOfARedisCluster(t *testing.T) {
	admin := redistest.Open(t, redistest.Cluster, 0)
	redistest.Exclusive(t, admin) // the stream is one key of the whole cluster
	ctx := context.Background()
	admin.Del(ctx, Topic)
	t.Cleanup(func() { admin.Del(context.Background(), Topic) })
	rb := &RedisBus{Consumer: "test"}
	w := newWorldWith(t, worldOpts{kind: redistest.Cluster, redisBus: rb})
	s := w.scheduler()
	w.tenant("t1", "alice", "bob")
	w.do("t1", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"alice", "bob"}})
	w.clock.Advance(31 * day)
	if n := w.tick(s); n != 2 || w.purges("t1") != 2 {
		t.Fatalf("%d sent, %d purged", n, w.purges("t1"))
	}
	if err := rb.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	// The stream's master loses it. The subscriber's next read (every
	// 100 ms) says NOGROUP and recreates it, or Ensure does.
	if err := admin.Del(ctx, Topic).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rb.Ready(ctx); err != nil {
		t.Fatalf("Ready after Ensure: %v", err)
	}
	w.tenant("t2", "carol")
	w.do("t2", &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"carol"}})
	w.clock.Advance(31 * day)
	if n := w.tick(s); n != 1 || w.purges("t2") != 1 {
		t.Fatalf("after the stream was recreated: %d sent, %d purged", n, w.purges("t2"))
	}
}
