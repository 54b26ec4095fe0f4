package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

// Benchmarks use 300-byte events. Next to each store figure they report the
// raw Pebble figure for the same keys written (or read) directly, measured
// in the same run, and the store/engine ratio.

const eventSize = 300

var payload = func() []byte {
	b := make([]byte, eventSize)
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

// runWriters runs total operations spread over writers goroutines; op gets
// the writer index and its operation number.
func runWriters(writers int, total int, op func(w, i int)) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				if next.Add(1) > int64(total) {
					return
				}
				op(w, i)
			}
		}(w)
	}
	wg.Wait()
	return time.Since(start)
}

// rawPebble writes the same keys as the store (a record per event, then
// one stream chunk and one event-ID entry per append, and the meta record)
// straight into Pebble with synced batches from `writers` goroutines
// (Pebble's own commit pipeline shares fsyncs between them), and returns
// events/s.
func rawPebble(b *testing.B, writers, ops, perOp int) float64 {
	db, err := pebble.Open(b.TempDir(), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, MemTableSize: 64 << 20, Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var pos atomic.Uint64
	d := runWriters(writers, ops, func(w, i int) {
		batch := db.NewBatch()
		stream := fmt.Sprintf("tenant-%d", w)
		var rec []byte
		first := pos.Add(uint64(perOp)) - uint64(perOp) + 1
		var firstID [16]byte
		for j := 0; j < perOp; j++ {
			p := first + uint64(j)
			id := uuid.New()
			if j == 0 {
				firstID = id
			}
			rec = encodeRecord(rec[:0], p, uint64(i*perOp+j+1), time.Now().UnixNano(), id, stream, "SeatAssigned", payload)
			_ = batch.Set(globalKey(p), rec, nil)
		}
		var v [16]byte
		putChunkValue(v[:], first, uint64(perOp))
		_ = batch.Set(streamKey(prefixStream, stream, uint64(i*perOp+1)), v[:chunkValueLen], nil)
		binary.BigEndian.PutUint64(v[:], first)
		binary.BigEndian.PutUint64(v[8:], uint64(i*perOp+1))
		_ = batch.Set(idKey(firstID), v[:], nil)
		_ = batch.Set(metaLastKey, make([]byte, 8), nil)
		if err := batch.Commit(pebble.Sync); err != nil {
			b.Error(err)
		}
		batch.Close()
	})
	return float64(ops*perOp) / d.Seconds()
}

func benchAppend(b *testing.B, writers, perOp int) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Prepare events outside the timer.
	evs := make([][]eventstore.EventData, b.N)
	for i := range evs {
		evs[i] = benchEvents(perOp)
	}
	var idx atomic.Int64
	b.SetBytes(int64(perOp * eventSize))
	b.ResetTimer()
	d := runWriters(writers, b.N, func(w, i int) {
		e := evs[idx.Add(1)-1]
		if _, err := s.Append(ctx, fmt.Sprintf("tenant-%d", w), eventstore.Exactly(uint64(i*perOp)), e); err != nil {
			b.Error(err)
		}
	})
	b.StopTimer()
	st := s.Stats()
	store := float64(b.N*perOp) / d.Seconds()
	s.Close() // so that its compactions do not slow the raw run
	raw := rawPebble(b, writers, b.N, perOp)
	b.ReportMetric(store, "events/s")
	b.ReportMetric(raw, "pebble-events/s")
	b.ReportMetric(store/raw, "store/pebble")
	b.ReportMetric(float64(st.Appends)/float64(max(st.Commits, 1)), "appends/fsync")
}

// BenchmarkAppend: durable appends of one event each.
func BenchmarkAppend(b *testing.B) {
	for _, w := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) { benchAppend(b, w, 1) })
	}
}

// BenchmarkAppendBatch100: durable appends of 100 events each, one writer.
func BenchmarkAppendBatch100(b *testing.B) {
	benchAppend(b, 1, 100)
}

// BenchmarkReadAll reads the whole global log in pages of 1000.
func BenchmarkReadAll(b *testing.B) {
	const n = 200_000
	dir := b.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < n/1000; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("tenant-%d", i%50), eventstore.Any, benchEvents(1000)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	// Let compactions finish so they do not compete for the 2 cores.
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n * eventSize)
	b.ResetTimer()
	var total int
	cpu0 := cpuTime()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		passStart := time.Now()
		var pos eventstore.Position
		for {
			evs, err := s.ReadAll(ctx, pos, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			total += len(evs)
			pos = evs[len(evs)-1].Position
		}
		if os.Getenv("PASSES") != "" {
			fmt.Println("pass", i, time.Since(passStart))
		}
	}
	d := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	// Raw: iterate the same keys with a Pebble iterator, copying values.
	rawStart := time.Now()
	rawCPU0 := cpuTime()
	var rawN int
	for i := 0; i < b.N; i++ {
		it, _ := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGlobal}, UpperBound: []byte{prefixGlobal + 1}})
		var sink []byte
		for ok := it.First(); ok; ok = it.Next() {
			v, _ := it.ValueAndErr()
			sink = append(sink[:0], v...)
			rawN++
		}
		it.Close()
	}
	rawD := time.Since(rawStart)
	rawCPU := cpuTime() - rawCPU0
	store := float64(total) / d.Seconds()
	// CPU time (all threads, GC included) per event: less sensitive than
	// events/s to other work on the machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/event")
	b.ReportMetric(float64(rawCPU.Nanoseconds())/float64(rawN), "pebble-cpu-ns/event")
	raw := float64(rawN) / rawD.Seconds()
	b.ReportMetric(store, "events/s")
	b.ReportMetric(raw, "pebble-events/s")
	b.ReportMetric(store/raw, "store/pebble")
}

// BenchmarkSubscriptionLag: 64 writers append single events while a
// subscriber follows the log; lag is delivery time minus RecordedAt (taken
// when the writer forms the commit group), so it includes the fsync.
func BenchmarkSubscriptionLag(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sub, err := s.Subscribe(ctx, s.LastPosition())
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	lags := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(lags) < b.N {
			e, err := sub.Next(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			lags = append(lags, time.Since(e.RecordedAt))
		}
	}()
	evs := make([][]eventstore.EventData, b.N)
	for i := range evs {
		evs[i] = benchEvents(1)
	}
	var idx atomic.Int64
	b.ResetTimer()
	d := runWriters(64, b.N, func(w, i int) {
		if _, err := s.Append(ctx, fmt.Sprintf("tenant-%d", w), eventstore.Exactly(uint64(i)), evs[idx.Add(1)-1]); err != nil {
			b.Error(err)
		}
	})
	<-done
	b.StopTimer()
	slices.Sort(lags)
	pct := func(p float64) float64 {
		if len(lags) == 0 {
			return 0
		}
		return float64(lags[int(p*float64(len(lags)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/d.Seconds(), "events/s")
	b.ReportMetric(pct(0.50), "p50-lag-ms")
	b.ReportMetric(pct(0.99), "p99-lag-ms")
	b.ReportMetric(pct(1), "max-lag-ms")
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
