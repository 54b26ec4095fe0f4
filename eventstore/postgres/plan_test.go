package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatledger/seatledger/eventstore"
)

// TestAppendEventsReadsNoWholeTable: append_events looks up stored event
// IDs on every call. PL/pgSQL caches a generic plan of that lookup after
// five calls; written as EXISTS, whose plan stops at the first match, the
// planner chose a sequential scan, which reads the whole events table when
// no ID is stored (every fresh append): half the server's CPU under load.
// The lookups must go through the indexes, whatever the call count.
func TestAppendEventsReadsNoWholeTable(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	ctx := t.Context()
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
	n := newNames(schema)
	q := "SELECT o_outcome FROM " + n.appendFn + "($1, $2, $3, $4, $5, $6)"
	idx := 0
	seqScans := func() int64 {
		var scans int64
		if err := tx.QueryRow(ctx, "SELECT coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = $1::regclass), 0)", n.events).Scan(&scans); err != nil {
			t.Fatal(err)
		}
		return scans
	}
	var before int64
	for call := range 24 {
		if call == 12 {
			// The plans are cached (made on an empty table); the table
			// grows, as a fresh schema's does under load.
			if _, err := tx.Exec(ctx, "INSERT INTO "+n.events+" (position, stream, version, id, type, recorded_at, data)"+
				" SELECT -g, 'filler-' || g, 1, gen_random_uuid(), 'T', now(), '' FROM generate_series(1, 20000) g"); err != nil {
				t.Fatal(err)
			}
			before = seqScans()
		}
		events := 1 + call%2 // one event (the INSERT checks its ID) or two
		ids := make([]pgtype.UUID, events)
		types := make([]string, events)
		data := make([][]byte, events)
		for i := range ids {
			ids[i] = pgtype.UUID{Bytes: uuid.New(), Valid: true}
			types[i], data[i] = "T", payload
		}
		var outcome int32
		if err := tx.QueryRow(ctx, q, fmt.Sprintf("fresh-%d", call), int64(-1), ids, types, data, int32(idx)).Scan(&outcome); err != nil {
			t.Fatal(err)
		}
		if outcome != outcomeWritten {
			t.Fatalf("call %d: outcome %d, want %d (written)", call, outcome, outcomeWritten)
		}
		idx += events
	}
	if scans := seqScans() - before; scans != 0 {
		t.Fatalf("12 calls of append_events on 20,000 events made %d sequential scans of them, want none", scans)
	}
}

// TestACommittedClearGroupReleasesOlderWaiters: a group that commits with
// no older transaction running (clear) shows that every transaction id up
// to its own has ended, so appends of this Store waiting for an older
// transaction to enter the global log are released on the spot, without
// asking the server. (The waiting transaction's id here is one the server
// will not reach: only that knowledge can release it before VisibleWait.)
func TestACommittedClearGroupReleasesOlderWaiters(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{VisibleWait: time.Hour})
	defer s.Close()
	const far = int64(1) << 40
	waiting := &appendReq{done: make(chan struct{})}
	s.settle([]*appendReq{waiting}, far, false)
	select {
	case <-waiting.done:
		t.Fatal("released before any transaction at or after its own ended")
	default:
	}
	s.settle([]*appendReq{{done: make(chan struct{})}}, far+1, true)
	select {
	case <-waiting.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a clear commit of a later transaction did not release the waiting append")
	}
}

// TestGroupWithStoredIDs: the group statement does not look up stored
// event IDs; an append that reuses one (a retry with Any, an ID of another
// stream, the same new ID twice in the group) makes the group fail on the
// unique index and run again one append at a time. Each append still gets
// the answer it would get alone.
func TestGroupWithStoredIDs(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{})
	defer s.Close()
	ctx := t.Context()
	old := events(2, "Old")
	first, err := s.Append(ctx, "tenant-old", eventstore.NoStream, old)
	if err != nil {
		t.Fatal(err)
	}
	twice := events(1, "Twice")
	group := []*appendReq{
		newReq(ctx, "tenant-a", eventstore.NoStream, events(2, "A")), // 0 written
		newReq(ctx, "tenant-old", eventstore.Any, old),               // 1 retry
		newReq(ctx, "tenant-other", eventstore.Any, old[1:]),         // 2 conflict: another stream's ID
		newReq(ctx, "tenant-t1", eventstore.NoStream, twice),         // 3 written
		newReq(ctx, "tenant-t2", eventstore.NoStream, twice),         // 4 conflict: 3 took the ID
		newReq(ctx, "tenant-b", eventstore.Any, events(1, "B")),      // 5 written
	}
	runGroup(t, s, group, []groupOutcome{{false, 2}, {false, 2}, {true, 0}, {false, 1}, {true, 0}, {false, 1}})
	if group[1].res != first {
		t.Fatalf("retry answered %+v, the original %+v", group[1].res, first)
	}
	all, err := s.ReadAll(ctx, first.Position, 0)
	if err != nil || len(all) != 2+1+1 {
		t.Fatalf("ReadAll after the group: %d events %v, want 4", len(all), err)
	}
}

// TestANotifiedHorizonReleasesWaiters: a Store's notification carries the
// horizon it knows; another Store's appends waiting for that horizon are
// released by it, without asking the server.
func TestANotifiedHorizonReleasesWaiters(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{VisibleWait: time.Hour})
	defer s.Close()
	ctx := t.Context()
	const far = int64(1) << 40
	waiting := &appendReq{done: make(chan struct{})}
	s.settle([]*appendReq{waiting}, far, false) // starts the listener
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Again until the listener, started in the background, hears one.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", newNames(schema).channel, fmt.Sprintf("another-store %d", far+1)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-waiting.done:
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("a notified horizon past the waiting transaction did not release it")
		}
	}
}

// TestKnownHeadsAreNotRead: append_batch reads no head of a stream whose
// event at the expected version the caller knows, and inserts with no
// arbiter probe when nothing conflicts (revision 5). The same group of
// appends, once with unknown heads and once with known ones, each in its
// own transaction: with known heads, no index scan of the events table.
func TestKnownHeadsAreNotRead(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	ctx := t.Context()
	const k = 8
	streams := make([]string, k)
	for i := range streams {
		streams[i] = fmt.Sprintf("known-%d", i)
		if _, err := s.Append(ctx, streams[i], eventstore.NoStream, events(1, "First")); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	n := newNames(schema)
	// A table of some size, so that the planner reads heads through the
	// index (it scans a tiny table whole).
	if _, err := conn.Exec(ctx, "INSERT INTO "+n.events+" (position, stream, version, id, type, recorded_at, data)"+
		" SELECT -g, 'filler-' || g, 1, gen_random_uuid(), 'T', now(), '' FROM generate_series(1, 20000) g; ANALYZE "+n.events); err != nil {
		t.Fatal(err)
	}
	q := "SELECT o_outcome, o_version, o_position FROM " + n.batchFn + "($1, $2, $3, $4, $5, $6, $7, $8)"
	// Index scans of the events table counted by this backend (the
	// counts of earlier transactions not yet sent to the statistics
	// included: compare before and after).
	scans := func(tx pgx.Tx) int64 {
		var n64 int64
		if err := tx.QueryRow(ctx, "SELECT coalesce((SELECT idx_scan FROM pg_stat_xact_user_tables WHERE relid = $1::regclass), 0)", n.events).Scan(&n64); err != nil {
			t.Fatal(err)
		}
		return n64
	}
	// group appends one event to every stream expecting version v, with
	// the given known positions, and returns the index scans of the
	// events table its transaction made and the positions written.
	group := func(v int64, known []pgtype.Int8) (int64, []int64) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		expected := make([]int64, k)
		counts := make([]int32, k)
		ids := make([]pgtype.UUID, k)
		types := make([]string, k)
		data := make([][]byte, k)
		for i := range k {
			expected[i], counts[i] = v, 1
			ids[i] = pgtype.UUID{Bytes: uuid.New(), Valid: true}
			types[i], data[i] = "T", payload
		}
		var (
			outcomes            []int32
			versions, positions []int64
		)
		before := scans(tx)
		if err := tx.QueryRow(ctx, q, streams, expected, counts, ids, types, data, known, s.eventsRel).Scan(&outcomes, &versions, &positions); err != nil {
			t.Fatal(err)
		}
		for i := range k {
			if outcomes[i] != outcomeWritten || versions[i] != v+1 {
				t.Fatalf("append %d expecting %d: outcome %d version %d", i, v, outcomes[i], versions[i])
			}
		}
		made := scans(tx) - before
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return made, positions
	}
	unknownScans, positions := group(1, make([]pgtype.Int8, k))
	known := make([]pgtype.Int8, k)
	for i, p := range positions {
		known[i] = pgtype.Int8{Int64: p, Valid: true}
	}
	knownScans, _ := group(2, known)
	t.Logf("index scans of a group of %d: %d with unknown heads, %d with known ones", k, unknownScans, knownScans)
	if unknownScans < k || knownScans != 0 {
		t.Fatalf("a group of %d appends made %d index scans with unknown heads, %d with known ones: want at least %d and none", k, unknownScans, knownScans, k)
	}
}

// TestStaleKnownHead: a Store remembers the last event it appended to a
// stream, and another Store appends to the stream since. An append of the
// first Store expecting the version it remembers must still conflict at
// the stream's real version, and one expecting that version succeeds with
// positions above the other Store's.
func TestStaleKnownHead(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	a := openSchema(t, schema, Options{})
	defer a.Close()
	b := openSchema(t, schema, Options{})
	defer b.Close()
	ctx := t.Context()
	if _, err := a.Append(ctx, "stale", eventstore.NoStream, events(1, "A")); err != nil {
		t.Fatal(err)
	}
	if !a.heads.known("stale", eventstore.Exactly(1)).Valid {
		t.Fatal("the Store does not remember the event it appended")
	}
	other, err := b.Append(ctx, "stale", eventstore.Exactly(1), events(1, "B"))
	if err != nil {
		t.Fatal(err)
	}
	runGroup(t, a, []*appendReq{
		newReq(ctx, "stale", eventstore.Exactly(1), events(1, "Stale")),
		newReq(ctx, "fresh", eventstore.NoStream, events(1, "Fresh")),
	}, []groupOutcome{{true, 2}, {false, 1}})
	group := []*appendReq{
		newReq(ctx, "stale", eventstore.Exactly(2), events(2, "Next")),
		newReq(ctx, "fresh", eventstore.Exactly(1), events(1, "Fresh")),
	}
	runGroup(t, a, group, []groupOutcome{{false, 4}, {false, 2}})
	if group[0].res.Position <= other.Position {
		t.Fatalf("appended at %d after the other Store's event at %d", group[0].res.Position, other.Position)
	}
	evs, err := a.ReadStream(ctx, "stale", 1, 0)
	if err != nil || len(evs) != 4 || evs[1].Type != "B" || evs[2].Type != "Next" {
		t.Fatalf("stream: %d events %v", len(evs), err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Position <= evs[i-1].Position {
			t.Fatal("positions of one stream do not grow with its versions")
		}
	}
}

// TestGroupStatementsAreNotCompiled: the planner guesses 1,000 rows per
// set-returning function over append_batch's arrays, so the INSERT of a
// group's events looked costly enough for JIT compilation, which took
// hundreds of microseconds of the server on every call (jit is on by
// default). append_batch and append_known run with jit off.
func TestGroupStatementsAreNotCompiled(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	ctx := t.Context()
	n := newNames(schema)
	for _, fn := range []string{n.batchFn + batchSig, n.knownFn + knownSig} {
		var config []string
		if err := s.pool.QueryRow(ctx, "SELECT coalesce(proconfig, '{}') FROM pg_proc WHERE oid = to_regprocedure($1)",
			fn).Scan(&config); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(config, "jit=off") {
			t.Fatalf("%s runs with settings %v, want jit=off", fn, config)
		}
	}
}

// TestRestoredTableIgnoresKnownHeads: a Store remembers the last event it
// appended to a stream; then an older backup of the schema is restored
// (the events table is recreated with fewer events). An append expecting
// the version the Store remembers must not write after a version that no
// longer exists: it gets a conflict at the restored stream's version.
func TestRestoredTableIgnoresKnownHeads(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	ctx := t.Context()
	for v := range 3 {
		if _, err := s.Append(ctx, "restored", eventstore.Exactly(uint64(v)), events(1, "Before")); err != nil {
			t.Fatal(err)
		}
	}
	n := newNames(schema)
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The backup held version 1 only; pg_restore recreates the table.
	if _, err := conn.Exec(ctx, "CREATE TABLE "+n.schema+".older (LIKE "+n.events+" INCLUDING ALL);"+
		" INSERT INTO "+n.schema+".older SELECT * FROM "+n.events+" WHERE version <= 1;"+
		" DROP TABLE "+n.events+"; ALTER TABLE "+n.schema+".older RENAME TO events", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	runGroup(t, s, []*appendReq{
		newReq(ctx, "other", eventstore.NoStream, events(1, "After")),
		newReq(ctx, "restored", eventstore.Exactly(3), events(1, "After")),
	}, []groupOutcome{{false, 1}, {true, 1}})
	if v, err := s.StreamVersion(ctx, "restored"); err != nil || v != 1 {
		t.Fatalf("restored stream at version %d (%v), want 1", v, err)
	}
}
