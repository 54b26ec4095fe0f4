package kurrentdb

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

func openT(t *testing.T, url string, o Options) *Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := OpenOptions(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(typ string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.NewString(), Type: typ, Data: []byte(`{}`)}
}

// eventually retries f until it succeeds or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Defect 1: the client closes itself for good after one failed discovery.
// An outage longer than the discovery window must end when the server is
// back, without a restart of the Store.
func TestRecoversAfterOutageLongerThanDiscovery(t *testing.T) {
	f := startFake(t, newFakeLog(), "")
	p := startProxy(t, f.addr)
	s := openT(t, p.url(), Options{})
	ctx := t.Context()
	if _, err := s.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{ev("A")}); err != nil {
		t.Fatal(err)
	}
	p.set("refuse")
	for i := 0; i < 3; i++ { // several discoveries fail, each closing a client
		if _, err := s.ReadStream(ctx, "tenant-a", 1, 0); !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("read while refused: %v, want ErrUnavailable", err)
		}
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health during an outage: %v (the store can still recover)", err)
	}
	p.set("pass")
	eventually(t, 10*time.Second, "append after the server is back", func() error {
		_, err := s.Append(ctx, "tenant-a", eventstore.Exactly(1), []eventstore.EventData{ev("B")})
		return err
	})
	got, err := s.ReadStream(ctx, "tenant-a", 1, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("after recovery: %d events, %v", len(got), err)
	}
	if s.Stats().Rebuilds == 0 {
		t.Error("no client was rebuilt")
	}
}

// Defect 1: the server restarts (every connection cut) for longer than the
// discovery window; a subscription resumes after it without a gap.
func TestSubscriptionSurvivesServerRestart(t *testing.T) {
	f := startFake(t, newFakeLog(), "")
	s := openT(t, f.url(), Options{})
	ctx := t.Context()
	sub, err := s.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := s.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{ev("A")}); err != nil {
		t.Fatal(err)
	}
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if e, err := sub.Next(nctx); err != nil || e.Type != "A" {
		t.Fatalf("first event: %+v %v", e, err)
	}
	f.restart(1500 * time.Millisecond) // longer than maxDiscoverAttempts*gossipTimeout
	eventually(t, 10*time.Second, "append after the restart", func() error {
		_, err := s.Append(ctx, "tenant-a", eventstore.Exactly(1), []eventstore.EventData{ev("B")})
		return err
	})
	nctx, cancel = context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if e, err := sub.Next(nctx); err != nil || e.Type != "B" || e.Version != 2 {
		t.Fatalf("event after the restart: %+v %v", e, err)
	}
}

// Defect 1 and 5: a server that accepts and says nothing, or accepts and
// drops, never holds a call past its ctx; a cancelled ctx answers
// context.Canceled, not ErrUnavailable; Close with calls in flight neither
// panics nor hangs.
func TestStalledOrDroppedServerBoundedByCtx(t *testing.T) {
	for _, mode := range []string{"stall", "drop", "refuse"} {
		t.Run(mode, func(t *testing.T) {
			f := startFake(t, newFakeLog(), "")
			p := startProxy(t, f.addr)
			s := openT(t, p.url(), Options{})
			p.set(mode)
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := s.ReadStream(ctx, "tenant-a", 1, 0)
			if time.Since(start) > 2*time.Second {
				t.Fatalf("read took %v past a 300ms ctx", time.Since(start))
			}
			if err == nil {
				t.Fatal("read succeeded")
			}
			if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read ended by its deadline answered %v", err)
			}

			cctx, ccancel := context.WithCancel(t.Context())
			done := make(chan error, 4)
			for range 4 {
				go func() {
					_, err := s.Append(cctx, "tenant-a", eventstore.Any, []eventstore.EventData{ev("A")})
					done <- err
				}()
			}
			time.Sleep(100 * time.Millisecond)
			ccancel()
			for range 4 {
				select {
				case err := <-done:
					if err == nil {
						t.Fatal("append succeeded")
					}
					if errors.Is(err, context.Canceled) == errors.Is(err, eventstore.ErrUnavailable) && mode == "stall" {
						t.Fatalf("cancelled append: %v, want context.Canceled", err)
					}
				case <-time.After(3 * time.Second):
					t.Fatal("append not ended by its cancelled ctx")
				}
			}
			if _, err := s.ReadStream(cctx, "tenant-a", 1, 0); !errors.Is(err, context.Canceled) || errors.Is(err, eventstore.ErrUnavailable) {
				t.Fatalf("read with a cancelled ctx: %v, want context.Canceled", err)
			}
			sub, err := s.Subscribe(t.Context(), eventstore.Start)
			if err != nil {
				t.Fatal(err)
			}
			closed := make(chan error, 1)
			go func() { closed <- s.Close() }()
			select {
			case <-closed:
			case <-time.After(3 * time.Second):
				t.Fatal("Close hung")
			}
			if _, err := sub.Next(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
				t.Fatalf("Next after Close: %v", err)
			}
		})
	}
}

// Defect 2: client panics (a read answer the client has no case for, an
// event without a stream in a subscription) are errors, never crashes; the
// subscription resubscribes and goes on once the server behaves.
func TestClientPanicsAreErrors(t *testing.T) {
	f := startFake(t, newFakeLog(), "")
	s := openT(t, f.url(), Options{})
	ctx := t.Context()
	if _, err := s.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{ev("A")}); err != nil {
		t.Fatal(err)
	}
	f.readPanic.Store(true)
	if _, err := s.ReadStream(ctx, "tenant-a", 1, 0); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("read through a client panic: %v, want ErrUnavailable", err)
	}
	if _, err := s.Append(ctx, "tenant-a", eventstore.Any, []eventstore.EventData{ev("B")}); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("append (its tail check panics): %v, want ErrUnavailable", err)
	}
	f.readPanic.Store(false)

	f.subPanic.Store(true)
	sub, err := s.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the pump panics and resubscribes
	f.subPanic.Store(false)
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if e, err := sub.Next(nctx); err != nil || e.Type != "A" {
		t.Fatalf("subscription after panics: %+v %v", e, err)
	}
	if s.Stats().Panics < 3 {
		t.Errorf("panics recovered: %d", s.Stats().Panics)
	}
	// Close after an outage with the subscription open.
	f.stop()
	time.Sleep(200 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSnapshots(ctx, "tenant-a"); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("delete after Close: %v", err)
	}
}

// Defect 3: every read and write asks for the leader (requires-leader is
// sent), and a follower's not-leader answer is followed to the leader.
func TestLeaderReadsAndNotLeaderRedirect(t *testing.T) {
	log := newFakeLog()
	leader := startFake(t, log, "")
	follower := startFake(t, log, "")
	follower.leader = leader.addr
	s := openT(t, follower.url(), Options{})
	ctx := t.Context()
	follower.notLeader.Store(1)
	r, err := s.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{ev("A"), ev("B")})
	if err != nil {
		t.Fatalf("append redirected to the leader: %v", err)
	}
	if r.Version != 2 || r.Position == 0 {
		t.Fatalf("append result %+v", r)
	}
	if leader.appends.Load() != 1 {
		t.Fatalf("leader took %d appends", leader.appends.Load())
	}
	if _, err := s.ReadStream(ctx, "tenant-a", 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAll(ctx, eventstore.Start, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if c, l := leader.calls.Load(), leader.leaderRequired.Load(); c == 0 || c != l {
		t.Fatalf("%d calls reached the leader, %d asked for the leader", c, l)
	}
}

// Defect 5: a read whose first call fails Unavailable is retried.
func TestReadRetriesAnUnavailableFirstCall(t *testing.T) {
	f := startFake(t, newFakeLog(), "")
	s := openT(t, f.url(), Options{})
	ctx := t.Context()
	if _, err := s.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{ev("A")}); err != nil {
		t.Fatal(err)
	}
	f.unavailable.Store(1)
	if got, err := s.ReadStream(ctx, "tenant-a", 1, 0); err != nil || len(got) != 1 {
		t.Fatalf("read after one Unavailable: %d events, %v", len(got), err)
	}
	f.unavailable.Store(1)
	if got, err := s.ReadAll(ctx, eventstore.Start, 0); err != nil || len(got) != 1 {
		t.Fatalf("ReadAll after one Unavailable: %d events, %v", len(got), err)
	}
}

// Defect 5: an append over MaxAppendSize fails with ErrTooLarge, found
// before sending, or from the server's refusal; snapshots larger than one
// append are written in parts and load whole; a failed snapshot is counted.
func TestAppendSizeAndLargeSnapshots(t *testing.T) {
	f := startFake(t, newFakeLog(), "")
	f.maxAppend = 1 << 20
	s := openT(t, f.url(), Options{})
	ctx := t.Context()
	big := eventstore.EventData{ID: uuid.NewString(), Type: "Big", Data: bytes.Repeat([]byte("x"), 1<<20+1)}
	if _, err := s.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{big}); !errors.Is(err, eventstore.ErrTooLarge) {
		t.Fatalf("oversize append: %v, want ErrTooLarge", err)
	}
	if n := f.appends.Load(); n != 0 {
		t.Fatalf("oversize append reached the server (%d)", n)
	}
	lax := openT(t, f.url(), Options{MaxAppendSize: 8 << 20}) // thinks the server takes more
	if _, err := lax.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{big}); !errors.Is(err, eventstore.ErrTooLarge) {
		t.Fatalf("append refused by the server for its size: %v, want ErrTooLarge", err)
	}

	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{Stream: "tenant-a", Version: 5, Schema: 2, Data: data}); err != nil {
		t.Fatalf("3 MiB snapshot: %v", err)
	}
	got, ok, err := s.LoadSnapshot(ctx, "tenant-a", 0)
	if err != nil || !ok || got.Version != 5 || got.Schema != 2 || !bytes.Equal(got.Data, data) {
		t.Fatalf("load: ok=%v v=%d len=%d err=%v", ok, got.Version, len(got.Data), err)
	}
	if err := lax.SaveSnapshot(ctx, eventstore.Snapshot{Stream: "tenant-a", Version: 6, Data: data}); err == nil {
		t.Fatal("snapshot refused by the server succeeded")
	}
	if n := lax.Stats().SnapshotFailures; n != 1 {
		t.Fatalf("snapshot failures counted: %d", n)
	}
	// A snapshot missing parts (the failed one above) is never loaded.
	if got, _, _ := s.LoadSnapshot(ctx, "tenant-a", 0); got.Version != 5 {
		t.Fatalf("loaded version %d", got.Version)
	}
}

// Defect 5: a tombstoned stream, and one whose first versions were
// soft-deleted, fail with ErrStreamDeleted rather than a 500 or a gap.
func TestDeletedStreams(t *testing.T) {
	log := newFakeLog()
	f := startFake(t, log, "")
	s := openT(t, f.url(), Options{})
	ctx := t.Context()
	log.deleted["tenant-t"] = true
	if _, err := s.ReadStream(ctx, "tenant-t", 1, 0); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("read tombstoned: %v", err)
	}
	if _, err := s.Append(ctx, "tenant-t", eventstore.Exactly(3), []eventstore.EventData{ev("A")}); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("append tombstoned: %v", err)
	}
	log.offset["tenant-s"] = 2 // versions 1 and 2 were soft-deleted
	if _, err := s.Append(ctx, "tenant-s", eventstore.Any, []eventstore.EventData{ev("C")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadStream(ctx, "tenant-s", 1, 0); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("read soft-deleted: %v, want ErrStreamDeleted", err)
	}
}

func TestFollowerPreferenceRefused(t *testing.T) {
	_, err := Open("kurrentdb://127.0.0.1:1?tls=false&nodePreference=follower")
	if err == nil {
		t.Fatal("nodePreference=follower accepted")
	}
	if !strings.Contains(err.Error(), "nodePreference") {
		t.Fatalf("error does not name the setting: %v", err)
	}
}

// Defect 5: LastPosition is the position of the newest event a
// subscription delivers (snapshots are skipped), and Start, not a hang,
// when the server does not answer.
func TestLastPositionSkipsSnapshotsAndFailsFast(t *testing.T) {
	f := startFake(t, newFakeLog(), "")
	s := openT(t, f.url(), Options{})
	ctx := t.Context()
	if p := s.LastPosition(); p != eventstore.Start {
		t.Fatalf("empty log: LastPosition %d", p)
	}
	r, err := s.Append(ctx, "tenant-a", eventstore.NoStream, []eventstore.EventData{ev("A"), ev("B")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{Stream: "tenant-a", Version: 2, Schema: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if p := s.LastPosition(); p != r.Position {
		t.Fatalf("LastPosition %d, want the last appended event's %d (not the snapshot's)", p, r.Position)
	}
	f.stop()
	done := make(chan eventstore.Position, 1)
	go func() { done <- s.LastPosition() }()
	select {
	case p := <-done:
		if p != eventstore.Start {
			t.Fatalf("server down: LastPosition %d, want Start", p)
		}
	case <-time.After(2 * lastPositionTimeout):
		t.Fatal("LastPosition hung with the server down")
	}
}
