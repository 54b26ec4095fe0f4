package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/benchdata"
)

// liveRate runs single-user assign/unassign commands on tenant "live" for d
// and returns commands per second.
func (w *world) liveRate(d time.Duration) float64 {
	var n atomic.Int64
	stop := time.Now().Add(d)
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			u := fmt.Sprint("l", g)
			for i := 0; time.Now().Before(stop); i++ {
				var c domain.Command = &domain.AssignLicenses{SkuID: "SPB", Users: []string{u}}
				if i%2 == 1 {
					c = &domain.UnassignLicenses{SkuID: "SPB", Users: []string{u}}
				}
				m := domain.Meta(c)
				m.TenantID, m.CommandID, m.Actor = "live", fmt.Sprint("live-", g, "-", i), domain.Actor{UserID: "admin"}
				if _, err := w.h.Handle(context.Background(), c); err != nil {
					w.t.Error(err)
					return
				}
				n.Add(1)
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	return float64(n.Load()) / d.Seconds()
}

// TestPurge100kHoldsDueAtOnce is the scheduler's load figure: 100,000 holds
// falling due at once (200 tenants × 500 users) are purged, while live
// commands run on another tenant. The store is durable (fsync).
// It runs with SEATLEDGER_BENCH=1 (about a minute): go test -run Purge100k ./scheduler/ with the variable set.
func TestPurge100kHoldsDueAtOnce(t *testing.T) {
	if testing.Short() || !benchEnabled() {
		t.Skip("set SEATLEDGER_BENCH=1 to run the 100k-purge benchmark")
	}
	w := newWorldOpts(t, true)
	w.tenant("live", "l0", "l1", "l2", "l3")
	start := w.clock.Now()
	if err := benchdata.WriteHeldTenants(w.ctx, w.store, 200, 500, start, start.Add(day)); err != nil {
		t.Fatal(err)
	}
	w.synced()
	baseline := w.liveRate(3 * time.Second)
	w.clock.Advance(2 * day)
	s := w.scheduler()
	began := time.Now()
	liveDuring := make(chan float64, 1)
	go func() { time.Sleep(time.Second); liveDuring <- w.liveRate(5 * time.Second) }()
	sent, err := s.Tick(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.waitPurgesFor(100_000, 60*time.Second)
	took := time.Since(began)
	during := <-liveDuring
	t.Logf("100k purges: %d sent, %d purged in %v (%.0f holds/s); live commands %.0f/s before, %.0f/s during (%.0f%% slower)",
		sent, w.purges(""), took.Round(time.Millisecond), 100_000/took.Seconds(), baseline, during, 100*(1-during/baseline))
	if w.purges("") != 100_000 {
		t.Fatalf("%d purged", w.purges(""))
	}
}

func (w *world) waitPurgesFor(n int, max time.Duration) {
	deadline := time.Now().Add(max)
	for w.purges("") < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}
