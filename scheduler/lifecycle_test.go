package scheduler

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/tenantstream"
)

// lifecycleScheduler is w.scheduler with the subscriptions' schedule.
func (w *world) lifecycleScheduler() *Scheduler {
	rs := RedisSchedule{RDB: w.rdb, Prefix: w.prefix}
	return New(Config{Schedule: rs, Lifecycle: rs, Bus: w.bus, Clock: w.clock.Now, Interval: 20 * time.Millisecond})
}

// events counts the events of a type in tenant's stream.
func (w *world) events(tenant, typ string) int {
	w.t.Helper()
	recs, err := w.store.ReadStream(w.ctx, tenantstream.Name(tenant), 1, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

// status reads a subscription's status from the command side.
func (w *world) status(tenant, sub string) string {
	var st string
	_ = w.h.View(w.ctx, tenant, func(t *domain.Tenant) error {
		if s := t.Subscriptions[sub]; s != nil {
			st = s.Status
		}
		return nil
	})
	return st
}

// tickSubs runs one lifecycle tick on synced read models and waits until
// the command side reaches version want of tenant (0: do not wait).
func (w *world) tickSubs(s *Scheduler, tenant string, want uint64) int {
	w.t.Helper()
	w.synced()
	n, err := s.TickSubscriptions(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for want > 0 && w.version(tenant) < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

func (w *world) version(tenant string) uint64 {
	var v uint64
	_ = w.h.View(w.ctx, tenant, func(t *domain.Tenant) error { v = t.Version; return nil })
	return v
}

func TestATermWithoutRecurringBillingExpiresThenIsDisabledThenDeletedOnSchedule(t *testing.T) {
	redistest.Each(t, testATermWithoutRecurringBillingExpiresThenIsDisabledThenDeletedOnSchedule)
}

func testATermWithoutRecurringBillingExpiresThenIsDisabledThenDeletedOnSchedule(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	s := w.lifecycleScheduler()
	w.tenant("t1", "alice")
	off := false
	w.do("t1", &domain.PurchaseSubscription{SubscriptionID: "m", SkuID: "SPB", Quantity: 2, Term: domain.TermMonthly, RecurringBilling: &off})
	start := w.clock.Now()
	end := start.AddDate(0, 1, 0) // 1 June + a month

	w.clock.Set(end.Add(-time.Minute))
	if n := w.tickSubs(s, "t1", 0); n != 0 {
		t.Fatalf("%d subscriptions sent before the end of the term", n)
	}
	v := w.version("t1")
	w.clock.Set(end)
	if n := w.tickSubs(s, "t1", v+1); n != 1 || w.status("t1", "m") != domain.StatusExpired {
		t.Fatalf("at the end of the term: %d sent, status %s", n, w.status("t1", "m"))
	}
	// The schedule moved to the disable time: nothing more is sent now.
	if n := w.tickSubs(s, "t1", 0); n != 0 {
		t.Fatalf("an Expired subscription sent again before its disable time (%d)", n)
	}
	w.clock.Set(end.Add(30 * day))
	w.tickSubs(s, "t1", v+2)
	if w.status("t1", "m") != domain.StatusDisabled {
		t.Fatalf("30 days after: %s", w.status("t1", "m"))
	}
	w.clock.Set(end.Add(120 * day))
	w.tickSubs(s, "t1", v+3)
	if w.status("t1", "m") != domain.StatusDeleted {
		t.Fatalf("90 days after: %s", w.status("t1", "m"))
	}
	w.synced()
	zs := w.rdb.ZRange(w.ctx, readmodel.Keys{Prefix: w.prefix}.Key("t1", readmodel.SubscriptionsDue), 0, -1).Val()
	if len(zs) != 1 || zs[0] != "s" {
		t.Fatalf("the schedule keeps only the annual subscription: %v", zs)
	}
	for typ, want := range map[string]int{domain.TypeSubscriptionExpired: 1, domain.TypeSubscriptionDisabled: 1} {
		if got := w.events("t1", typ); got != want {
			t.Errorf("%d %s events, want %d", got, typ, want)
		}
	}
}

func TestRecurringBillingRenewsAtTheEndOfTheTermOnce(t *testing.T) {
	redistest.Each(t, testRecurringBillingRenewsAtTheEndOfTheTermOnce)
}

func testRecurringBillingRenewsAtTheEndOfTheTermOnce(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	w.tenant("t1", "alice")
	w.tenant("t2", "carol")
	w.do("t1", &domain.PurchaseSubscription{SubscriptionID: "m", SkuID: "SPB", Quantity: 2, Term: domain.TermMonthly})
	w.do("t2", &domain.PurchaseSubscription{SubscriptionID: "m", SkuID: "SPB", Quantity: 2, Term: domain.TermMonthly})
	w.clock.Advance(31 * day)
	w.synced()
	// Two schedulers at once, twice each: one renewal per subscription.
	a, b := w.lifecycleScheduler(), w.lifecycleScheduler()
	v1, v2 := w.version("t1"), w.version("t2")
	var wg sync.WaitGroup
	for _, s := range []*Scheduler{a, b, a, b} {
		wg.Add(1)
		go func(s *Scheduler) {
			defer wg.Done()
			if _, err := s.TickSubscriptions(w.ctx); err != nil {
				t.Error(err)
			}
		}(s)
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for (w.version("t1") == v1 || w.version("t2") == v2) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let any duplicate through
	for _, tn := range []string{"t1", "t2"} {
		if n := w.events(tn, domain.TypeSubscriptionRenewed); n != 1 {
			t.Errorf("%s: %d renewals, want 1", tn, n)
		}
		var end time.Time
		_ = w.h.View(w.ctx, tn, func(t *domain.Tenant) error { end = t.Subscriptions["m"].TermEnd; return nil })
		if want := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC); !end.Equal(want) {
			t.Errorf("%s: the renewed term ends %v, want %v", tn, end, want)
		}
	}
}

func TestAStaleLifecycleEntryAppendsNothing(t *testing.T) {
	redistest.Each(t, testAStaleLifecycleEntryAppendsNothing)
}

func testAStaleLifecycleEntryAppendsNothing(t *testing.T, kind redistest.Kind) {
	w := newWorldOn(t, kind)
	s := w.lifecycleScheduler()
	w.tenant("t1", "alice")
	w.do("t1", &domain.PurchaseSubscription{SubscriptionID: "m", SkuID: "SPB", Quantity: 2, Term: domain.TermMonthly})
	w.synced()
	// An entry the projection did not write (a stale one, as a replay or
	// a lost write could leave): sent, refused as not due, acknowledged.
	keys := readmodel.Keys{Prefix: w.prefix}
	if err := w.rdb.ZAdd(w.ctx, keys.Key("t1", readmodel.SubscriptionsDue), redisZ(w.clock.Now().Add(-day), "s")).Err(); err != nil {
		t.Fatal(err)
	}
	v := w.version("t1")
	if n, err := s.TickSubscriptions(w.ctx); err != nil || n != 1 {
		t.Fatalf("%d sent, %v", n, err)
	}
	// A due one after it: once it is handled, the stale one was too (the
	// handler takes the bus's commands in order).
	w.clock.Advance(31 * day)
	w.tickSubs(s, "t1", v+1)
	if got := w.version("t1"); got != v+1 || w.events("t1", domain.TypeSubscriptionRenewed) != 1 {
		t.Fatalf("version %d (want %d), %d renewals", got, v+1, w.events("t1", domain.TypeSubscriptionRenewed))
	}
}

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.Unix()), Member: member}
}
