package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seatledger/seatledger/eventstore"
)

// knownGroup runs group through appendKnown and reports whether it was
// committed there; an error fails the test.
func knownGroup(t *testing.T, s *Store, group []*appendReq) bool {
	t.Helper()
	done, err := s.appendKnown(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	if done {
		for _, r := range group {
			<-r.done
		}
	}
	return done
}

// TestKnownGroupIsOneInsert: a group whose every append has a head the
// Store knows, one per stream, is committed by append_known (revision 6):
// each append gets the next version, the group's events are contiguous
// in group order, and the Store then knows the new heads.
func TestKnownGroupIsOneInsert(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{})
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, events(1, "First")); err != nil {
		t.Fatal(err)
	}
	group := []*appendReq{
		newReq(ctx, "a", eventstore.Exactly(1), events(2, "Known")),
		newReq(ctx, "b", eventstore.NoStream, events(1, "Known")),
		newReq(ctx, "c", eventstore.NoStream, events(3, "Known")),
	}
	if !knownGroup(t, s, group) {
		t.Fatal("a group of known heads was not committed by append_known")
	}
	wantVersion := []uint64{3, 1, 3}
	for i, r := range group {
		if r.err != nil || r.res.Version != wantVersion[i] {
			t.Fatalf("append %d: %+v %v, want version %d", i, r.res, r.err, wantVersion[i])
		}
		if !s.heads.known(r.stream, eventstore.Exactly(r.res.Version)).Valid {
			t.Fatalf("the Store does not know %s's new head", r.stream)
		}
	}
	if group[1].res.Position != group[0].res.Position+1 || group[2].res.Position != group[1].res.Position+3 {
		t.Fatalf("positions %d %d %d: not contiguous in group order", group[0].res.Position, group[1].res.Position, group[2].res.Position)
	}
	all, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range all[1:] {
		got = append(got, e.Stream)
	}
	if want := []string{"a", "a", "b", "c", "c", "c"}; !slices.Equal(got, want) {
		t.Fatalf("global log after the first event: %v, want %v", got, want)
	}
	evs, err := s.ReadStream(ctx, "a", 1, 0)
	if err != nil || len(evs) != 3 || evs[1].Type != "Known" || evs[1].Position != group[0].res.Position-1 {
		t.Fatalf("stream a: %d events %v", len(evs), err)
	}
}

// TestKnownGroupRefused: groups append_known must not commit, and then
// writes nothing of: a stream twice, a head the Store does not know, a
// version another Store took since, an event ID already stored, a
// replaced events table. The group then goes through append_batch and
// every append gets the answer it would get alone.
func TestKnownGroupRefused(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	other := openSchema(t, schema, Options{})
	defer other.Close()
	ctx := t.Context()
	for _, st := range []string{"a", "b"} {
		if _, err := s.Append(ctx, st, eventstore.NoStream, events(1, "First")); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(what string, group []*appendReq) {
		t.Helper()
		if knownGroup(t, s, group) {
			t.Fatalf("%s: committed by append_known", what)
		}
		for _, st := range []string{"a", "b"} {
			if v, err := s.StreamVersion(ctx, st); err != nil || v != 1 {
				t.Fatalf("%s: stream %s at version %d (%v): append_known wrote something", what, st, v, err)
			}
		}
	}
	refused("a stream twice", []*appendReq{
		newReq(ctx, "a", eventstore.Exactly(1), events(1, "Twice")),
		newReq(ctx, "a", eventstore.Exactly(2), events(1, "Twice")),
	})
	refused("any version", []*appendReq{
		newReq(ctx, "a", eventstore.Any, events(1, "Any")),
		newReq(ctx, "b", eventstore.Exactly(1), events(1, "Any")),
	})
	stored := events(1, "Stored")
	if _, err := s.Append(ctx, "d", eventstore.NoStream, stored); err != nil {
		t.Fatal(err)
	}
	retry := newReq(ctx, "b", eventstore.Exactly(1), stored)
	refused("a stored ID", []*appendReq{newReq(ctx, "a", eventstore.Exactly(1), events(1, "ID")), retry})

	// Another Store takes b's next version: s's knowledge is stale.
	if _, err := other.Append(ctx, "b", eventstore.Exactly(1), events(1, "Other")); err != nil {
		t.Fatal(err)
	}
	group := []*appendReq{
		newReq(ctx, "a", eventstore.Exactly(1), events(1, "Stale")),
		newReq(ctx, "b", eventstore.Exactly(1), events(1, "Stale")),
	}
	if knownGroup(t, s, group) {
		t.Fatal("a stale head: committed by append_known")
	}
	if v, err := s.StreamVersion(ctx, "a"); err != nil || v != 1 {
		t.Fatalf("a stale head: stream a at version %d (%v): append_known wrote something", v, err)
	}
	runGroup(t, s, group, []groupOutcome{{false, 2}, {true, 2}})

	// A restored backup: the events table is another one.
	n := newNames(schema)
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE "+n.schema+".older (LIKE "+n.events+" INCLUDING ALL);"+
		" INSERT INTO "+n.schema+".older SELECT * FROM "+n.events+";"+
		" DROP TABLE "+n.events+"; ALTER TABLE "+n.schema+".older RENAME TO events", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if !s.heads.known("a", eventstore.Exactly(2)).Valid {
		t.Fatal("the Store does not know a's head")
	}
	if knownGroup(t, s, []*appendReq{newReq(ctx, "a", eventstore.Exactly(2), events(1, "Restored"))}) {
		t.Fatal("a replaced table: committed by append_known")
	}
	if v, err := s.StreamVersion(ctx, "a"); err != nil || v != 2 {
		t.Fatalf("a replaced table: stream a at version %d (%v)", v, err)
	}
}

// TestKnownHeadsContended: writers of two Stores append to the same
// streams (one writer of each Store per stream), each expecting the version it last saw (its own result, or
// the actual version of a conflict), so that the Stores' known heads go
// stale all the time and groups of known heads race each other and the
// other Store's. Every acknowledged event must be stored exactly once, at
// the version it was acknowledged with, each stream's versions
// contiguous with growing positions, and the global log in strictly
// increasing positions.
func TestKnownHeadsContended(t *testing.T) {
	requirePG(t)
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	schema := freshSchema(t)
	stores := []*Store{openSchema(t, schema, Options{}), openSchema(t, schema, Options{})}
	defer stores[0].Close()
	defer stores[1].Close()
	ctx := t.Context()
	const streams = 16
	type ack struct {
		stream  string
		version uint64
	}
	var (
		mu    sync.Mutex
		acked = map[string]ack{}
	)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			stream := fmt.Sprintf("contended-%d", w/2%streams)
			var v uint64
			for done := 0; done < rounds; {
				evs := events(1+w%2, "Contended")
				r, err := s.Append(ctx, stream, eventstore.Exactly(v), evs)
				var ce *eventstore.ConflictError
				if errors.As(err, &ce) {
					v = ce.Actual
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i, e := range evs {
					acked[e.ID] = ack{stream, r.Version - uint64(len(evs)-1-i)}
				}
				mu.Unlock()
				v = r.Version
				done++
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stored := 0
	for i := range streams {
		stream := fmt.Sprintf("contended-%d", i)
		evs, err := stores[0].ReadStream(ctx, stream, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for j, e := range evs {
			if e.Version != uint64(j+1) {
				t.Fatalf("%s: version %d at index %d", stream, e.Version, j)
			}
			if j > 0 && e.Position <= evs[j-1].Position {
				t.Fatalf("%s: version %d at position %d after %d", stream, e.Version, e.Position, evs[j-1].Position)
			}
			a, ok := acked[e.ID]
			if !ok || a.stream != stream || a.version != e.Version {
				t.Fatalf("%s version %d: event %s acknowledged as %+v (%v)", stream, e.Version, e.ID, a, ok)
			}
		}
		stored += len(evs)
	}
	if stored != len(acked) {
		t.Fatalf("%d events stored, %d acknowledged", stored, len(acked))
	}
	// The global log holds them all once older transactions of the
	// server (other tests, other applications) have ended.
	var all []eventstore.RecordedEvent
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if all, err = stores[1].ReadAll(ctx, eventstore.Start, 0); err != nil {
			t.Fatal(err)
		}
		if len(all) >= stored || time.Now().After(deadline) {
			break
		}
	}
	if len(all) != stored {
		t.Fatalf("global log: %d events, %d stored", len(all), stored)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatalf("global log: position %d after %d", all[i].Position, all[i-1].Position)
		}
	}
	t.Logf("%d events on %d streams from 32 writers on two Stores", stored, streams)
}

// TestOwnEndsReleaseWaiters: a transaction that told which older
// transactions were running at its end enters the global log as soon as
// this Store has seen each of them end (its own commits), whether they
// ended before or after it; one that did not tell waits for the horizon.
// (The ids are ones the server will not reach: nothing else releases
// them before VisibleWait.)
func TestOwnEndsReleaseWaiters(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{VisibleWait: time.Hour})
	defer s.Close()
	const far = int64(1) << 40
	released := func(r *appendReq) bool {
		select {
		case <-r.done:
			return true
		default:
			return false
		}
	}
	req := func() *appendReq { return &appendReq{done: make(chan struct{})} }

	waiting := req()
	s.settleOlder([]*appendReq{waiting}, far, false, []int64{far - 2, far - 1})
	untold := req()
	s.settle([]*appendReq{untold}, far+1, false)
	if released(waiting) {
		t.Fatal("released while both older transactions run")
	}
	s.settle([]*appendReq{req()}, far-2, false)
	if released(waiting) {
		t.Fatal("released while one older transaction runs")
	}
	s.settle([]*appendReq{req()}, far-1, false)
	if !released(waiting) {
		t.Fatal("not released when the last older transaction ended")
	}

	// An older transaction that ended before.
	s.settle([]*appendReq{req()}, far+10, false)
	later := req()
	s.settleOlder([]*appendReq{later}, far+11, false, []int64{far + 10})
	if !released(later) {
		t.Fatal("not released though its older transaction had ended")
	}
	if released(untold) {
		t.Fatal("an append that did not tell its older transactions was released by this Store's commits")
	}
}

// TestKnownGroupTellsOlderTransactions: append_known names the older
// transactions still running at its end; the group waits for them, and
// enters the global log once they end.
func TestKnownGroupTellsOlderTransactions(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{VisibleWait: time.Hour})
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, events(1, "First")); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var held int64
	if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&held); err != nil {
		t.Fatal(err)
	}
	group := []*appendReq{
		newReq(ctx, "a", eventstore.Exactly(1), events(1, "Known")),
		newReq(ctx, "b", eventstore.NoStream, events(1, "Known")),
	}
	if done, err := s.appendKnown(ctx, group); !done || err != nil {
		t.Fatalf("appendKnown: %v %v", done, err)
	}
	s.visMu.Lock()
	var older []int64
	for _, p := range s.pending {
		if len(p.reqs) > 0 && p.reqs[0] == group[0] {
			older = slices.Clone(p.older)
		}
	}
	s.visMu.Unlock()
	if !slices.Contains(older, held) {
		t.Fatalf("the group waits for %v, not for the held transaction %d", older, held)
	}
	select {
	case <-group[0].done:
		t.Fatal("released while an older transaction runs")
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-group[0].done:
	case <-time.After(30 * time.Second):
		t.Fatal("not released after the older transaction ended")
	}
	if group[0].err != nil || group[1].err != nil {
		t.Fatal(group[0].err, group[1].err)
	}
}

// TestOwnEndsForgottenOrAborted: a transaction waits for older ones of
// this Store that it cannot see end (one that committed so long ago that
// 64 later commits pushed it out of the ring, one that aborted and was
// never recorded): it is not released by the Store's later commits, and
// is released once the horizon passes it (not VisibleWait: an hour).
// The ids are ones the server will not reach.
func TestOwnEndsForgottenOrAborted(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{VisibleWait: time.Hour})
	defer s.Close()
	const far = int64(1) << 40
	req := func() *appendReq { return &appendReq{done: make(chan struct{})} }
	released := func(r *appendReq) bool {
		select {
		case <-r.done:
			return true
		default:
			return false
		}
	}
	s.settle([]*appendReq{req()}, far, false) // committed, then forgotten
	for i := range int64(len(s.ended)) {
		s.settle([]*appendReq{req()}, far+1+i, false)
	}
	const aborted = far + 100 // took an id, never committed
	forgotten := req()
	s.settleOlder([]*appendReq{forgotten}, far+200, false, []int64{far})
	abortedOlder := req()
	s.settleOlder([]*appendReq{abortedOlder}, far+201, false, []int64{aborted})
	for i := range int64(len(s.ended)) {
		s.settle([]*appendReq{req()}, far+300+i, false)
	}
	if released(forgotten) || released(abortedOlder) {
		t.Fatal("released by commits that are not the older transactions it waits for")
	}
	// Every id up to both has ended.
	s.seeHorizon(far + 202)
	select {
	case s.visKick <- struct{}{}:
	default:
	}
	for _, r := range []*appendReq{forgotten, abortedOlder} {
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatal("not released once the horizon passed it")
		}
	}
}
