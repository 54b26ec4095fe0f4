package postgres

import (
	"context"
	"fmt"
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
