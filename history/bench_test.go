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
// 10,000 events apart. Each reports its p99 (ms) over the run and, because
// absolute times do not compare across machines or loads, its ratio to a
// baseline measured right after each query in the same run (issue #21):
//
//   - state/baseline-x: the state at v (snapshot, tail, render) ÷ reading
//     and folding the tail, the events from the nearest snapshot to v, onto
//     the snapshot's state (decoded before the clock starts);
//   - diff/baseline-x: the diff of from and from+10,000 ÷ reading and
//     folding those 10,000 events onto the state at from (folded before
//     the clock starts);
//   - diff/read-x: the same diff ÷ only reading those 10,000 events from
//     the store (no decoding, no folding): the "7×" of issue #21.
//
// blame-at-random-point blames the state at a random point of another
// tenant, of 100,000 events (blame folds from the first event, so a point
// of the long tenant would cost a second): blame/fold-x is its ratio to
// reading and folding the same events from the first. blame-one-user asks
// for one user's values (path=users/u7), which the fold fingerprints alone.

// Each baseline runs right after its query, on the same events; a ratio is
// the median over the run of query ÷ its baseline. Before each query, its
// snapshot and events are read once off the clock, so that the query and
// its baselines read from an equally warm store (the first read of a
// range costs up to twice the next: the store's block cache); the p99s
// are of warm queries too.
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
	const nb = 100_000
	if err := benchdata.WriteLongTenant(ctx, store, "blame", nb, 200); err != nil {
		b.Fatal(err)
	}
	svc := &Service{Store: store, Snapshots: store, Catalog: domain.DefaultCatalog()}
	r := rand.New(rand.NewSource(1))
	p99 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)*99/100].Microseconds()) / 1000
	}
	// foldBetween times reading and folding the events (from, to] onto the
	// state at from, which it folds first, off the clock.
	foldBetween := func(b *testing.B, from, to uint64) time.Duration {
		st, err := svc.StateAt(ctx, "long", from)
		if err != nil || st.Version != from {
			b.Fatal(err)
		}
		start := time.Now()
		if err := tenantstream.FoldFrom(ctx, store, nil, st, "long", to); err != nil || st.Version != to {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	// readRange times reading the events (from, to] without decoding them.
	readRange := func(b *testing.B, tenant string, from, to uint64) time.Duration {
		start := time.Now()
		for next := from + 1; next <= to; {
			recs, err := store.ReadStream(ctx, tenantstream.Name(tenant), next, int(min(to+1-next, 4096)))
			if err != nil || len(recs) == 0 {
				b.Fatal(err)
			}
			next = recs[len(recs)-1].Version + 1
		}
		return time.Since(start)
	}
	// warm reads the snapshot below from and the events up to to, off the
	// clock, before a query and its baseline: the first read of a range
	// costs far more than the next (the store's block cache), so without
	// it the baseline, which runs second, would read for less.
	warm := func(b *testing.B, from, to uint64) {
		snap, ok, err := store.LoadSnapshot(ctx, tenantstream.Name("long"), from)
		if err != nil || !ok {
			b.Fatal("no snapshot below ", from, err)
		}
		readRange(b, "long", snap.Version, to)
	}
	// ratio is the median of the per-query ratios: other processes share
	// the cores, and a query or a baseline they stall would sway a mean.
	ratio := func(ds, base []time.Duration) float64 {
		rs := make([]float64, len(ds))
		for i := range ds {
			rs[i] = float64(ds[i]) / float64(base[i])
		}
		slices.Sort(rs)
		return rs[len(rs)/2]
	}
	b.Run("state-at-random-point", func(b *testing.B) {
		var ds, base []time.Duration
		for i := 0; i < b.N; i++ {
			v := 1 + uint64(r.Int63n(n))
			warm(b, v, v)
			start := time.Now()
			st, err := svc.StateAt(ctx, "long", v)
			if err != nil || st.Version != v {
				b.Fatal(err)
			}
			_ = Render(svc.Catalog, st)
			ds = append(ds, time.Since(start))
			snap, ok, err := store.LoadSnapshot(ctx, tenantstream.Name("long"), v)
			if err != nil || !ok {
				b.Fatal("no snapshot below ", v, err)
			}
			base = append(base, foldBetween(b, snap.Version, v))
		}
		b.ReportMetric(p99(ds), "p99-ms")
		b.ReportMetric(ratio(ds, base), "state/baseline-x")
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
		var ds, base, reads []time.Duration
		for i := 0; i < b.N; i++ {
			from := 1 + uint64(r.Int63n(n-10_001))
			warm(b, from, from+10_000)
			start := time.Now()
			d, err := svc.DiffBetween(ctx, "long", from, from+10_000)
			// No change is possible: the data's users go through cycles of
			// 800 events (assign, unassign, hold, release).
			if err != nil || d.To != from+10_000 {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			base = append(base, foldBetween(b, from, from+10_000))
			reads = append(reads, readRange(b, "long", from, from+10_000))
		}
		b.ReportMetric(p99(ds), "p99-ms")
		b.ReportMetric(ratio(ds, base), "diff/baseline-x")
		b.ReportMetric(ratio(ds, reads), "diff/read-x")
	})
	// Blame of the whole state at a random point, and of one user's
	// values at a point past the first 1,000 events, each against folding
	// the same events from the first.
	for _, bc := range []struct {
		name, path string
		lo, span   int64 // versions drawn from lo to lo+span-1
	}{{"blame-at-random-point", "", 1, nb}, {"blame-one-user", "users/u7", 1000, nb - 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			var ds, base []time.Duration
			for i := 0; i < b.N; i++ {
				v := uint64(bc.lo + r.Int63n(bc.span))
				readRange(b, "blame", 0, v)
				start := time.Now()
				bl, err := svc.BlameAt(ctx, "blame", v, bc.path)
				if err != nil || (bc.path == "" && bl.Version != v) || len(bl.Entries) == 0 {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
				start = time.Now()
				st := domain.NewTenant()
				if err := tenantstream.FoldFrom(ctx, store, nil, st, "blame", v); err != nil || st.Version != v {
					b.Fatal(err)
				}
				base = append(base, time.Since(start))
			}
			b.ReportMetric(p99(ds), "p99-ms")
			b.ReportMetric(ratio(ds, base), "blame/fold-x")
		})
	}
}
