package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/seatledger/seatledger/eventstore"
)

// TestDiskRecovery: the disk fails under load (ENOSPC or EROFS), appends
// fail with ErrUnavailable (fast while the store waits for its next
// recovery attempt), then the disk works again and the same Store — no
// restart — accepts appends again: nothing acknowledged is lost, retried
// in-doubt appends land once, the global log stays contiguous, and a
// subscription opened before the failure delivers every event once, in
// order.
func TestDiskRecovery(t *testing.T) {
	t.Run("disk full", func(t *testing.T) { testDiskRecovery(t, false) })
	t.Run("WAL fails", func(t *testing.T) { testDiskRecovery(t, true) })
}

// faultFS injects ENOSPC. walOnly: every write or sync of a write-ahead log
// fails (the probe write passes, so the store reopens, which fails until
// the fault ends; reads are unavailable meanwhile and subscriptions wait).
// Otherwise the disk is full: files that need new space (created while the
// fault is on: the next WAL, tables, the probe) cannot be written. (A fault that hits the WAL Pebble
// is closing at a rotation makes Pebble panic; no test can recover from
// that.)
type faultFS struct {
	walOnly bool
	mu      sync.Mutex
	on      bool
	newFile map[string]bool
}

func (f *faultFS) set(on bool) {
	f.mu.Lock()
	f.on = on
	f.newFile = map[string]bool{}
	f.mu.Unlock()
}

func (f *faultFS) MaybeError(op errorfs.Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return nil
	}
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpReuseForWrite:
		f.newFile[op.Path] = true
		return nil
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFilePreallocate, errorfs.OpFileFlush:
	default:
		return nil
	}
	if f.walOnly && strings.HasSuffix(op.Path, ".log") || !f.walOnly && f.newFile[op.Path] {
		return syscall.ENOSPC
	}
	return nil
}

func (f *faultFS) String() string { return "faultFS" }

func testDiskRecovery(t *testing.T, walOnly bool) {
	ctx := context.Background()
	mem := vfs.NewCrashableMem()
	toggle := &faultFS{walOnly: walOnly}
	readsDuring := !walOnly
	const interval = 30 * time.Millisecond
	s, err := Open("/db", Options{FS: errorfs.Wrap(mem, toggle), RecoveryInterval: interval, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// A subscriber from the start, running through the whole test.
	sub, err := s.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var subMu sync.Mutex
	var delivered []eventstore.RecordedEvent
	subErr := make(chan error, 1)
	go func() {
		for {
			e, err := sub.Next(ctx)
			if err != nil {
				subErr <- err
				return
			}
			subMu.Lock()
			delivered = append(delivered, e)
			subMu.Unlock()
		}
	}()

	type acked struct {
		id      string
		stream  string
		version uint64
		pos     uint64
	}
	var mu sync.Mutex
	var acks []acked
	record := func(stream string, e []eventstore.EventData, r eventstore.AppendResult) {
		mu.Lock()
		defer mu.Unlock()
		for j, x := range e {
			back := uint64(len(e) - 1 - j)
			acks = append(acks, acked{x.ID, stream, r.Version - back, uint64(r.Position) - back})
		}
	}

	// Writers: each appends to its stream with exact expected versions and
	// retries an append that failed (same events, same expected version)
	// until it is acknowledged, as a client would.
	const writers = 4
	var phase struct {
		sync.Mutex
		faultOn     bool
		failures    int
		fastFails   int
		successOn   int // successes while the fault is on (must be 0)
		lastFailure error
	}
	stop := make(chan struct{})
	faultOn := make(chan struct{})
	var ready sync.WaitGroup
	ready.Add(writers)
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			stream := fmt.Sprintf("r%d", g)
			var v uint64
			var pending []eventstore.EventData
			for i := 0; ; i++ {
				if i == 25 {
					// Few enough events before the fault that Pebble
					// does not rotate its first WAL.
					ready.Done()
					<-faultOn
				}
				select {
				case <-stop:
					if pending == nil {
						return
					}
				default:
				}
				if pending == nil {
					pending = evs(1 + (i+g)%3)
				}
				start := time.Now()
				r, err := s.Append(ctx, stream, eventstore.Exactly(v), pending)
				took := time.Since(start)
				phase.Lock()
				on := phase.faultOn
				switch {
				case err == nil:
					if on {
						phase.successOn++
					}
				case errors.Is(err, eventstore.ErrUnavailable):
					phase.failures++
					phase.lastFailure = err
					if took < 5*time.Millisecond {
						phase.fastFails++
					}
				default:
					phase.Unlock()
					t.Errorf("append: %v", err)
					return
				}
				phase.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond)
					continue // retry the same append
				}
				record(stream, pending, r)
				v = r.Version
				pending = nil
			}
		}(g)
	}

	ready.Wait()
	phase.Lock()
	toggle.set(true)
	phase.faultOn = true
	phase.Unlock()
	close(faultOn)
	// Wait for failures (on a full disk Pebble keeps appending to its
	// current WAL until it needs a new one), then let several recovery
	// attempts fail.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		phase.Lock()
		n := phase.failures
		phase.Unlock()
		if n >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no append failed while the disk failed")
		}
	}
	time.Sleep(10 * interval)
	if err := s.Ping(ctx); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Ping during the fault: %v", err)
	}
	_, err = s.ReadAll(ctx, 0, 10)
	t.Logf("ReadAll during the fault: %v", err)
	if readsDuring && err != nil {
		t.Errorf("ReadAll during the fault: %v", err)
	} else if err != nil && !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("ReadAll during the fault: %v", err)
	}
	phase.Lock()
	toggle.set(false)
	phase.faultOn = false
	failures, fast, successOn, lastFailure := phase.failures, phase.fastFails, phase.successOn, phase.lastFailure
	phase.Unlock()
	if failures == 0 {
		t.Fatal("no append failed while the disk failed")
	}
	if walOnly && successOn != 0 {
		t.Errorf("%d appends succeeded while the WAL failed", successOn)
	}
	if fast < failures/2 {
		t.Errorf("only %d of %d failed appends answered within 5 ms", fast, failures)
	}
	t.Logf("during the fault %d appends succeeded (before Pebble needed new space), %d failed (%d fast), last: %v", successOn, failures, fast, lastFailure)

	// The disk works again: appends resume without a restart.
	mu.Lock()
	before := len(acks)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n >= before+50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends did not resume after the disk recovered (%d acknowledged since)", n-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if s.Recoveries() == 0 {
		t.Fatal("no recovery counted")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}

	check := func(st *Store, what string) []eventstore.RecordedEvent {
		t.Helper()
		if err := st.Verify(ctx); err != nil {
			t.Fatalf("%s: Verify: %v", what, err)
		}
		all, err := st.ReadAll(ctx, 0, 0)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		seen := make(map[string]bool, len(all))
		for i, e := range all {
			if e.Position != eventstore.Position(i+1) {
				t.Fatalf("%s: global log not contiguous at %d (position %d)", what, i+1, e.Position)
			}
			if seen[e.ID] {
				t.Fatalf("%s: event %s stored twice", what, e.ID)
			}
			seen[e.ID] = true
		}
		for _, a := range acks {
			if a.pos == 0 || a.pos > uint64(len(all)) {
				t.Fatalf("%s: acknowledged event %+v lost (log has %d)", what, a, len(all))
			}
			e := all[a.pos-1]
			if e.ID != a.id || e.Stream != a.stream || e.Version != a.version {
				t.Fatalf("%s: position %d holds %s %s v%d, acknowledged %+v", what, a.pos, e.ID, e.Stream, e.Version, a)
			}
		}
		for g := 0; g < writers; g++ {
			evs, err := st.ReadStream(ctx, fmt.Sprintf("r%d", g), 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range evs {
				if e.Version != uint64(i+1) {
					t.Fatalf("%s: stream r%d: event %d has version %d", what, g, i, e.Version)
				}
			}
		}
		return all
	}
	all := check(s, "after recovery")

	// The subscription delivered the whole log once, in order.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		subMu.Lock()
		n := len(delivered)
		subMu.Unlock()
		if n >= len(all) {
			break
		}
		select {
		case err := <-subErr:
			t.Fatalf("subscription ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription delivered %d of %d events", n, len(all))
		}
	}
	subMu.Lock()
	for i, e := range delivered {
		if i >= len(all) || e.Position != all[i].Position || e.ID != all[i].ID {
			t.Fatalf("subscription event %d: position %d %s", i, e.Position, e.ID)
		}
	}
	subMu.Unlock()
	t.Logf("%d events, %d acknowledged, %d recoveries", len(all), len(acks), s.Recoveries())

	// Power loss now: everything acknowledged survives.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(3, 4))})
	s2, err := Open("/db", Options{FS: crashed, VerifyOnOpen: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open after power loss: %v", err)
	}
	defer s2.Close()
	check(s2, "after power loss")
}

// TestQueuedAfterDuringRecovery: appends queued after a failed one while
// the store keeps failing to reopen (its database closed) fail cleanly —
// the chain check must not read the closed database (found in review: it
// panicked) — and appends work again once the disk does.
func TestQueuedAfterDuringRecovery(t *testing.T) {
	ctx := context.Background()
	toggle := &faultFS{walOnly: true}
	s, err := Open("/db", Options{FS: errorfs.Wrap(vfs.NewCrashableMem(), toggle), RecoveryInterval: time.Microsecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(i int) []eventstore.EventData {
		return []eventstore.EventData{{ID: fmt.Sprintf("00000000-0000-4000-8000-%012x", i), Type: "T", Data: []byte("x")}}
	}
	if _, err := s.Append(ctx, "warm", eventstore.NoStream, ev(1)); err != nil {
		t.Fatal(err)
	}
	toggle.set(true)
	for i := 0; i < 300; i++ {
		stream := fmt.Sprint("cold-", i) // a head the store has not cached: reading it needs the database
		a := s.QueueAppend(ctx, stream, eventstore.NoStream, ev(1000+2*i), nil)
		b := s.QueueAppend(ctx, stream, eventstore.Exactly(1), ev(1001+2*i), a)
		if _, err := a.Wait(); err == nil {
			t.Fatalf("round %d: an append succeeded on a failing disk", i)
		}
		if _, err := b.Wait(); err == nil {
			t.Fatalf("round %d: an append queued after a failed one succeeded", i)
		}
	}
	toggle.set(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Append(ctx, "after", eventstore.NoStream, ev(5000))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends did not resume: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
