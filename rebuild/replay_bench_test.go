package rebuild

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/benchdata"
	"github.com/seatledger/seatledger/readmodel"
)

// BenchmarkReplay1M replays SEATLEDGER_REPLAY_EVENTS events (default
// 1,000,000) over SEATLEDGER_REPLAY_TENANTS tenants (default 1,000; each a
// benchdata.WriteLongTenant of 50 users: licenses assigned and unassigned
// over and over, data held and released) from an embedded store into the
// real Redis, into a fresh prefix (no swap). Run it with -benchtime=1x:
// writing the log takes longer than replaying it.
//
//	go test -run '^$' -bench Replay1M -benchtime=1x ./projections/
func BenchmarkReplay1M(b *testing.B) {
	events, tenants := 1_000_000, 1_000
	if s := os.Getenv("SEATLEDGER_REPLAY_EVENTS"); s != "" {
		events, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("SEATLEDGER_REPLAY_TENANTS"); s != "" {
		tenants, _ = strconv.Atoi(s)
	}
	rdb, prefix := testRedisReplay(b)
	store, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { store.Close() }()
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < tenants; i += 2 {
				if err := benchdata.WriteLongTenant(ctx, store, fmt.Sprintf("r%05d", i), events/tenants, 50); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	head := store.LastPosition()
	b.Logf("wrote %d events over %d tenants in %s", head, tenants, time.Since(start).Round(time.Millisecond))
	// Replay a store at rest, as a server's would be: reopen it and let
	// Pebble finish the compactions the writing started.
	dir := store.Dir()
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	if store, err = embedded.Open(dir, embedded.Options{NoSync: true}); err != nil {
		b.Fatal(err)
	}
	b.Logf("store settled after %s", settle(5*time.Second, 30*time.Second).Round(time.Millisecond))
	b.ResetTimer()
	var bulk time.Duration
	for i := 0; i < b.N; i++ {
		p := fmt.Sprintf("%sb%d:", prefix, i)
		if path := os.Getenv("SEATLEDGER_REPLAY_CPUPROFILE"); path != "" && i == 0 {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
		}
		res, err := replay(ctx, ReplayConfig{Store: store, Redis: rdb, NewPrefix: p, NoSwap: true,
			Progress: func(p ReplayProgress) {
				b.Logf("%-8s events %8d position %8d/%d %8.0f events/s eta %s", p.Phase, p.Events, p.Position, p.Head, p.EventsPerSec, p.ETA.Round(time.Millisecond))
			}})
		if err != nil {
			b.Fatal(err)
		}
		if res.Position != head || res.Tenants != tenants {
			b.Fatalf("result %+v", res)
		}
		bulk += res.BulkDuration
		if os.Getenv("SEATLEDGER_REPLAY_CPUPROFILE") != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		b.StopTimer()
		if i == 0 {
			keys, _ := readmodel.DumpPrefix(ctx, rdb, p)
			b.Logf("replay: %+v; %d keys", res, len(keys))
		}
		deletePrefix(rdb, p)
		b.StartTimer()
	}
	b.ReportMetric(float64(uint64(head)*uint64(b.N))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(uint64(head)*uint64(b.N))/bulk.Seconds(), "bulk-events/s")
}

// settle waits until this process used less than a tenth of a core for a
// second (Pebble's compactions are done), at least min and at most max.
func settle(min, max time.Duration) time.Duration {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := time.Now()
	time.Sleep(min)
	for time.Since(start) < max {
		c := cpu()
		time.Sleep(time.Second)
		if cpu()-c < 100*time.Millisecond {
			break
		}
	}
	return time.Since(start)
}
