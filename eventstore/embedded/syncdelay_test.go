package embedded_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
)

// appendN appends n events to stream one at a time, pausing think between
// two appends.
func appendN(ctx context.Context, s *embedded.Store, stream string, n int, think time.Duration) error {
	for v := 0; v < n; v++ {
		if v > 0 && think > 0 {
			time.Sleep(think)
		}
		ev := eventstore.EventData{ID: uuid.NewString(), Type: "T", Data: []byte(`{}`)}
		if _, err := s.Append(ctx, stream, eventstore.Exactly(uint64(v)), []eventstore.EventData{ev}); err != nil {
			return fmt.Errorf("%s append %d: %w", stream, v+1, err)
		}
	}
	return nil
}

// openWithSyncDelay opens a store with SyncDelay d (closed at the end of
// the test) and a context that bounds the test to a minute.
func openWithSyncDelay(t *testing.T, d time.Duration) (*embedded.Store, context.Context) {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Options{SyncDelay: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return s, ctx
}

// A writer alone never waits for company, however long SyncDelay is: with
// a delay of an hour, its appends still complete one after the other.
func TestSyncDelayLoneWriterNeverWaits(t *testing.T) {
	s, ctx := openWithSyncDelay(t, time.Hour)
	if err := appendN(ctx, s, "lone", 50, 0); err != nil {
		t.Fatalf("a lone writer waited for company: %v", err)
	}
	if st := s.Stats(); st.Commits != 50 || st.Appends != 50 {
		t.Fatalf("stats %+v, want 50 commits of one append", st)
	}
}

// Concurrent writers share commits: 8 writers appending one event at a
// time end up in commits of several appends each, and every append is
// stored once, in order.
func TestSyncDelayGroupsConcurrentWriters(t *testing.T) {
	const writers, each = 8, 40
	s, ctx := openWithSyncDelay(t, 50*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer pauses 0.1–1.5 ms between appends (the rest of
			// a command's work): without waiting, most commits would
			// carry only the one or two appends that happen to be queued.
			if err := appendN(ctx, s, fmt.Sprint("w", w), each, time.Duration(100+200*w)*time.Microsecond); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Appends != writers*each {
		t.Fatalf("%d appends stored, want %d", st.Appends, writers*each)
	}
	// Without the wait this gives 1.6–1.8 appends per commit; with it ~8
	// on an idle machine, 3.9 once under CI load (a writer starved for
	// longer than the delay shrinks the next groups until all catch up).
	if per := float64(st.Appends) / float64(st.Commits); per < 3 {
		t.Fatalf("%.1f appends per commit (%+v): concurrent appends did not share commits", per, st)
	}
	for w := 0; w < writers; w++ {
		evs, err := s.ReadStream(ctx, fmt.Sprint("w", w), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != each || evs[each-1].Version != each {
			t.Fatalf("stream w%d holds %d events", w, len(evs))
		}
	}
}

// With SyncDelay negative commits never wait: the same writers still
// complete (the option turns the waiting off, nothing else).
func TestSyncDelayOff(t *testing.T) {
	s, ctx := openWithSyncDelay(t, -1)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := appendN(ctx, s, fmt.Sprint("w", w), 20, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st := s.Stats(); st.Appends != 80 {
		t.Fatalf("stats %+v, want 80 appends", st)
	}
}
