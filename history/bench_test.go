package history

import (
	"context"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/benchdata"
	"github.com/seatledger/seatledger/tenantstream"
)

// BenchmarkTimeTravel works on one tenant of 1,000,000 events with snapshots
// every 1,000: the state at a random point, and the diff of two points
// 10,000 events apart. Each reports its p99 (ms) over the run.
func BenchmarkTimeTravel(b *testing.B) {
	const n, k = 1_000_000, 1000
	ctx := context.Background()
	store, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if err := benchdata.WriteLongTenant(ctx, store, "long", n, 200); err != nil {
		b.Fatal(err)
	}
	if err := tenantstream.BackfillSnapshots(ctx, store, store, nil, "long", k, nil); err != nil {
		b.Fatal(err)
	}
	svc := &Service{Store: store, Snapshots: store, Catalog: domain.DefaultCatalog()}
	r := rand.New(rand.NewSource(1))
	p99 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)*99/100].Microseconds()) / 1000
	}
	b.Run("state-at-random-point", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			v := 1 + uint64(r.Int63n(n))
			start := time.Now()
			st, err := svc.StateAt(ctx, "long", v)
			if err != nil || st.Version != v {
				b.Fatal(err)
			}
			_ = Render(svc.Catalog, st)
			ds = append(ds, time.Since(start))
		}
		b.ReportMetric(p99(ds), "p99-ms")
	})
	b.Run("state-at-random-time", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			at := benchdata.Start.Add(time.Duration(1+r.Int63n(n)) * time.Second)
			start := time.Now()
			v, err := svc.VersionAt(ctx, "long", at)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := svc.StateAt(ctx, "long", v); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		b.ReportMetric(p99(ds), "p99-ms")
	})
	b.Run("diff-10k-apart", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			from := uint64(r.Int63n(n - 10_000))
			start := time.Now()
			d, err := svc.DiffBetween(ctx, "long", from, from+10_000)
			if err != nil || len(d.Changes) == 0 {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		b.ReportMetric(p99(ds), "p99-ms")
	})
}
