package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

// Benchmarks use 300-byte events (as the embedded store's do), each in a
// fresh schema.

var payload = func() []byte {
	b := make([]byte, 300)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

func benchEvents(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{ID: uuid.NewString(), Type: "SeatAssigned", Data: payload}
	}
	return out
}

func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct{ writers, perAppend int }{{1, 1}, {64, 1}, {1, 100}} {
		b.Run(fmt.Sprintf("writers=%d/events=%d", c.writers, c.perAppend), func(b *testing.B) {
			requirePG(b)
			s := openSchema(b, freshSchema(b), Options{})
			defer s.Close()
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < c.writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stream := "tenant-" + uuid.NewString()
					var v uint64
					for next.Add(1) <= int64(b.N) {
						r, err := s.Append(ctx, stream, eventstore.Exactly(v), benchEvents(c.perAppend))
						if err != nil {
							b.Error(err)
							return
						}
						v = r.Version
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.ReportMetric(float64(b.N*c.perAppend)/el.Seconds(), "events/s")
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	requirePG(b)
	const total, page = 50_000, 1000
	s := openSchema(b, freshSchema(b), Options{})
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < total/500; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("tenant-%d", i%50), eventstore.Any, benchEvents(500)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	read := 0
	start := time.Now()
	for i := 0; i < b.N; i++ {
		pos := eventstore.Start
		for {
			evs, err := s.ReadAll(ctx, pos, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			read += len(evs)
			pos = evs[len(evs)-1].Position
		}
	}
	b.ReportMetric(float64(read)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkSubscribeLag appends from 4 writers, each pausing 2 ms between
// appends (a moderate load, well below saturation), while a subscriber on a
// second Store (another pool, as another process would) follows; it reports
// the delivery lag from RecordedAt.
func BenchmarkSubscribeLag(b *testing.B) {
	requirePG(b)
	schema := freshSchema(b)
	w := openSchema(b, schema, Options{})
	defer w.Close()
	r := openSchema(b, schema, Options{})
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := r.Subscribe(ctx, eventstore.Start)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := "tenant-" + uuid.NewString()
			for next.Add(1) <= int64(b.N) {
				if _, err := w.Append(ctx, stream, eventstore.Any, benchEvents(1)); err != nil {
					b.Error(err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	lags := make([]time.Duration, 0, b.N)
	for len(lags) < b.N {
		e, err := sub.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		lags = append(lags, time.Since(e.RecordedAt))
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkAppendTwoStores: 32 writers on each of two Stores sharing the
// schema (two processes' worth of group commits contending for the lock).
func BenchmarkAppendTwoStores(b *testing.B) {
	requirePG(b)
	schema := freshSchema(b)
	stores := []*Store{openSchema(b, schema, Options{}), openSchema(b, schema, Options{})}
	defer stores[0].Close()
	defer stores[1].Close()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			stream := "tenant-" + uuid.NewString()
			var v uint64
			for next.Add(1) <= int64(b.N) {
				r, err := s.Append(ctx, stream, eventstore.Exactly(v), benchEvents(1))
				if err != nil {
					b.Error(err)
					return
				}
				v = r.Version
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkLoad: 64 writers (1 event per append, each on its own stream)
// at full speed on one Store or split over two (as two processes), while a
// subscriber on a further Store follows the global log. It reports the
// append rate and the subscriber's delivery lag (from RecordedAt) under
// that load. It uses only what the store of commit 611acb1 has too, so the
// file can be copied there for paired runs.
func BenchmarkLoad(b *testing.B) {
	for _, nStores := range []int{1, 2} {
		b.Run(fmt.Sprintf("stores=%d/writers=64", nStores), func(b *testing.B) {
			requirePG(b)
			schema := freshSchema(b)
			var stores []*Store
			for range nStores {
				s := openSchema(b, schema, Options{})
				defer s.Close()
				stores = append(stores, s)
			}
			r := openSchema(b, schema, Options{})
			defer r.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sub, err := r.Subscribe(ctx, eventstore.Start)
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := stores[w%nStores]
					stream := "tenant-" + uuid.NewString()
					var v uint64
					for next.Add(1) <= int64(b.N) {
						res, err := s.Append(ctx, stream, eventstore.Exactly(v), benchEvents(1))
						if err != nil {
							b.Error(err)
							return
						}
						v = res.Version
					}
				}()
			}
			lags := make([]time.Duration, 0, b.N)
			var appended time.Duration
			done := make(chan struct{})
			go func() {
				wg.Wait()
				appended = time.Since(start)
				close(done)
			}()
			for len(lags) < b.N {
				e, err := sub.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				lags = append(lags, time.Since(e.RecordedAt))
			}
			<-done
			b.StopTimer()
			slices.Sort(lags)
			b.ReportMetric(float64(b.N)/appended.Seconds(), "events/s")
			b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "lag-p50-ms")
			b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "lag-p99-ms")
			b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "lag-max-ms")
		})
	}
}
