package rebuild

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/benchdata"
	"github.com/seatledger/seatledger/internal/redistest"
)

// verifyBenchDB is the Redis database of BenchmarkVerifyReplay (flushed
// before and after: nothing else uses it).
const verifyBenchDB = 9

// BenchmarkVerifyReplay measures Verify and Replay of the same data:
// SEATLEDGER_VERIFY_TENANTS tenants (comma-separated sizes, default
// "10000,100000"; the 100,000 one is skipped under -short), each a
// benchdata.WriteLongTenant of SEATLEDGER_VERIFY_EVENTS events (default 20)
// with 4 users (8 read-model keys), in an embedded store; the read models
// are replayed into Redis database 9 once, then each sub-benchmark runs:
// "replay" rebuilds them into a fresh prefix (no swap), "verify" compares
// them with the log. Run it once:
//
//	go test -run '^$' -bench VerifyReplay -benchtime=1x -timeout 60m ./projections/
//
// It reports the peak Go heap (heap-MB) seen while the operation ran and
// the process's CPU time (cpu-s: less disturbed than the wall time by other
// work on the machine; Redis's own is not in it);
// SEATLEDGER_VERIFY_CPUPROFILE=file profiles the first verify.
func BenchmarkVerifyReplay(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if s := os.Getenv("SEATLEDGER_VERIFY_TENANTS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("SEATLEDGER_VERIFY_TENANTS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	events := 20
	if s := os.Getenv("SEATLEDGER_VERIFY_EVENTS"); s != "" {
		events, _ = strconv.Atoi(s)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			if n > 10_000 && testing.Short() {
				b.Skip("more than 10,000 tenants: skipped under -short")
			}
			benchVerifyReplay(b, n, events)
		})
	}
}

func benchVerifyReplay(b *testing.B, tenants, events int) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.SingleAddr, DB: verifyBenchDB})
	if err := rdb.Ping(ctx).Err(); err != nil {
		b.Skipf("Redis at %s is not reachable: %v", redistest.SingleAddr, err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		rdb.FlushDB(context.Background())
		rdb.Close()
	})
	store, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < tenants; i += 2 {
				if err := benchdata.WriteLongTenant(ctx, store, fmt.Sprintf("v%06d", i), events, 4); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d events of %d tenants in %s", store.LastPosition(), tenants, time.Since(start).Round(time.Millisecond))
	const prefix = "vb:"
	start = time.Now()
	res, err := replay(ctx, ReplayConfig{Store: store, Redis: rdb, NewPrefix: prefix, NoSwap: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("read models written in %s; Redis holds %d keys", time.Since(start).Round(time.Millisecond), rdb.DBSize(ctx).Val())
	settle(2*time.Second, 20*time.Second)

	b.Run("replay", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p := fmt.Sprintf("vb%d:", i)
			stop := watchHeap(b)
			res, err := replay(ctx, ReplayConfig{Store: store, Redis: rdb, NewPrefix: p, NoSwap: true})
			stop()
			if err != nil {
				b.Fatal(err)
			}
			if res.Tenants != tenants {
				b.Fatalf("replayed %d tenants, want %d", res.Tenants, tenants)
			}
			if i == 0 {
				b.Logf("replay: bulk pass %s, %d evictions, whole %s", res.BulkDuration.Round(time.Millisecond), res.Evictions, res.Duration.Round(time.Millisecond))
			}
			b.StopTimer()
			deletePrefix(rdb, p)
			b.StartTimer()
		}
		b.ReportMetric(float64(tenants*b.N)/b.Elapsed().Seconds(), "tenants/s")
	})
	_ = res
	b.Run("verify", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if path := os.Getenv("SEATLEDGER_VERIFY_CPUPROFILE"); path != "" && i == 0 {
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					b.Fatal(err)
				}
				defer pprof.StopCPUProfile()
			}
			stop := watchHeap(b)
			var phases []string
			rep, err := Verify(ctx, store, rdb, prefix, VerifyOptions{ProgressInterval: 50 * time.Millisecond, Progress: func(p VerifyProgress) {
				if i == 0 && (len(phases) == 0 || !strings.HasPrefix(phases[len(phases)-1], p.Phase+" ")) {
					phases = append(phases, fmt.Sprintf("%s from %s", p.Phase, p.Elapsed.Round(time.Millisecond)))
				}
			}})
			stop()
			if err != nil {
				b.Fatal(err)
			}
			if !rep.OK() || rep.Tenants != tenants {
				b.Fatalf("verify: %d tenants, %d keys, %d differences (first %v)", rep.Tenants, rep.Keys, len(rep.Differences), rep.Differences[:min(1, len(rep.Differences))])
			}
			if i == 0 {
				b.Logf("verify: %d tenants, %d keys; phases (as reported every 50 ms): %s", rep.Tenants, rep.Keys, strings.Join(phases, ", "))
			}
		}
		b.ReportMetric(float64(tenants*b.N)/b.Elapsed().Seconds(), "tenants/s")
	})
}

// watchHeap samples the Go heap every 20 ms until stop is called, and then
// reports the peak above the heap it started with as heap-MB, and the CPU
// time the process used meanwhile (all its threads; not Redis's) as cpu-s.
func watchHeap(b *testing.B) (stop func()) {
	runtime.GC()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	cpuStart := cpu()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "heap-MB")
		b.ReportMetric((cpu() - cpuStart).Seconds(), "cpu-s")
	}
}
