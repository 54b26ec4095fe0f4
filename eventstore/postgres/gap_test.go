package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatledger/seatledger/eventstore"
)

// heldAppend runs s's append of evs to stream inside tx, which the caller
// commits or rolls back: an append that stays in flight as long as the test
// wants.
func heldAppend(t *testing.T, s *Store, tx pgx.Tx, stream string, evs []eventstore.EventData) answer {
	t.Helper()
	r := &appendReq{stream: stream, expected: eventstore.Any}
	for _, e := range evs {
		r.ids = append(r.ids, pgtype.UUID{Bytes: uuid.MustParse(e.ID), Valid: true})
		r.types = append(r.types, e.Type)
		r.data = append(r.data, e.Data)
	}
	var a answer
	if err := tx.QueryRow(t.Context(), s.qAppend, s.args(r, 0)...).Scan(a.dest()...); err != nil {
		t.Fatal(err)
	}
	if a.outcome != outcomeWritten || a.xid == 0 {
		t.Fatalf("held append: %+v", a)
	}
	return a
}

// nothingMore checks that sub delivers nothing within d.
func nothingMore(t *testing.T, sub eventstore.Subscription, d time.Duration, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	if e, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: subscription delivered %s@%d (position %d), err %v", why, e.Stream, e.Version, e.Position, err)
	}
}

// TestGapHeldTransaction is the gap problem of a global order taken from a
// sequence: an append that took its position and has not committed yet
// must hold back every later one, or a subscriber that goes past them skips
// it for good when it commits. Here an append stays in flight (an open
// transaction at a low position) while later appends of both Stores commit:
// neither ReadAll nor a subscription delivers anything past it; once it
// commits, a subscriber gets it and then every later event, each once, in
// strictly increasing positions, and a subscriber resuming from any of
// the positions delivered before gets exactly the rest.
func TestGapHeldTransaction(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	// A short VisibleWait: the later appends return while held back.
	a := openSchema(t, schema, Options{VisibleWait: 20 * time.Millisecond})
	defer a.Close()
	b := openSchema(t, schema, Options{VisibleWait: 20 * time.Millisecond, PollInterval: 50 * time.Millisecond})
	defer b.Close()
	ctx := t.Context()

	first, err := a.Append(ctx, "tenant-first", eventstore.NoStream, events(1, "First"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := follow(t, sub, eventstore.Start, 1); got[0].Position != first.Position {
		t.Fatalf("first event at %d, appended at %d", got[0].Position, first.Position)
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
	low := events(2, "Low")
	held := heldAppend(t, a, tx, "tenant-low", low)

	// Later appends commit meanwhile, from both Stores.
	var later []eventstore.AppendResult
	for i := range 12 {
		s := []*Store{a, b}[i%2]
		r, err := s.Append(ctx, fmt.Sprintf("tenant-later-%d", i%3), eventstore.Any, events(1+i%3, "Later"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Position <= eventstore.Position(held.position) {
			t.Fatalf("later append at position %d, not after the held one's %d", r.Position, held.position)
		}
		later = append(later, r)
	}
	laterEvents := 0
	for i := range 12 {
		laterEvents += 1 + i%3
	}
	// They are committed (stream reads see them) but not in the global log.
	if v, err := b.StreamVersion(ctx, "tenant-later-0"); err != nil || v == 0 {
		t.Fatalf("later stream version %d %v: not committed?", v, err)
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		all, err := s.ReadAll(ctx, eventstore.Start, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].Position != first.Position {
			t.Fatalf("ReadAll on %s while an earlier append is in flight: %d events, want only the first", name, len(all))
		}
		if evs, err := s.ReadAll(ctx, first.Position, 0); err != nil || len(evs) != 0 {
			t.Fatalf("ReadAll on %s after the first event: %d events %v, want none", name, len(evs), err)
		}
	}
	nothingMore(t, sub, 300*time.Millisecond, "while an earlier append is in flight")
	resumed, err := a.Subscribe(ctx, first.Position)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	nothingMore(t, resumed, 100*time.Millisecond, "resumed while an earlier append is in flight")

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	total := len(low) + laterEvents
	got := follow(t, sub, first.Position, total)
	for i, e := range low {
		if got[i].ID != e.ID || got[i].Stream != "tenant-low" || got[i].Version != uint64(i+1) {
			t.Fatalf("event %d after the commit: %s %s@%d, want the held append's %s", i, got[i].ID, got[i].Stream, got[i].Version, e.ID)
		}
	}
	if got[len(low)-1].Position != eventstore.Position(held.position) {
		t.Fatalf("held append's last event at %d, its result said %d", got[len(low)-1].Position, held.position)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
	}
	var last eventstore.Position
	for _, r := range later {
		last = max(last, r.Position)
	}
	if got[total-1].Position != last {
		t.Fatalf("last delivered position %d, last append's %d", got[total-1].Position, last)
	}
	nothingMore(t, sub, 200*time.Millisecond, "after everything was delivered")
	follow(t, resumed, first.Position, total)

	// ReadAll gives the same sequence, and resuming after any position
	// delivered gives exactly the rest.
	all, err := a.ReadAll(ctx, first.Position, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != total {
		t.Fatalf("ReadAll after the commit: %d events, want %d", len(all), total)
	}
	for i := range all {
		if all[i].ID != got[i].ID || all[i].Position != got[i].Position {
			t.Fatalf("ReadAll event %d differs from the subscription's", i)
		}
	}
	for i := range got {
		rest, err := b.ReadAll(ctx, got[i].Position, 0)
		if err != nil || len(rest) != total-i-1 {
			t.Fatalf("ReadAll after delivered position %d: %d events %v, want %d", got[i].Position, len(rest), err, total-i-1)
		}
	}
}

// TestWritersTwoStoresExactlyOnce is the acceptance test of the global log
// under load: 64 writers on two Stores (two processes' worth of pools and
// group commits) append to their own streams and to a few shared ones
// while a consumer on a third Store follows the log, checkpointing and
// resuming from its last position every few events. It must count every
// acknowledged event exactly once, in strictly increasing positions.
func TestWritersTwoStoresExactlyOnce(t *testing.T) {
	requirePG(t)
	rounds := 30
	if testing.Short() {
		rounds = 6
	}
	schema := freshSchema(t)
	stores := []*Store{openSchema(t, schema, Options{}), openSchema(t, schema, Options{})}
	defer stores[0].Close()
	defer stores[1].Close()
	reader := openSchema(t, schema, Options{})
	defer reader.Close()
	ctx := t.Context()

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	consumed := make(chan map[string]eventstore.Position, 1)
	stop := make(chan struct{})
	go func() {
		got := map[string]eventstore.Position{}
		defer func() { consumed <- got }()
		pos := eventstore.Start
		idle := 0
		for {
			// A fresh subscription from the checkpoint every 50 events.
			sub, err := reader.Subscribe(ctx, pos)
			if err != nil {
				t.Error(err)
				return
			}
			for range 50 {
				nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				e, err := sub.Next(nctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					select {
					case <-stop:
						idle++
						if idle >= 3 { // caught up with writers done
							sub.Close()
							return
						}
					default:
					}
					continue
				}
				if err != nil {
					t.Error(err)
					sub.Close()
					return
				}
				idle = 0
				if e.Position <= pos {
					t.Errorf("position %d delivered after %d", e.Position, pos)
				}
				if p, dup := got[e.ID]; dup {
					t.Errorf("event %s delivered twice (positions %d and %d)", e.ID, p, e.Position)
				}
				got[e.ID] = e.Position
				pos = e.Position
			}
			sub.Close()
		}
	}()

	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			own := fmt.Sprintf("tenant-w%d", w)
			var v uint64
			for i := range rounds {
				evs := events(1+i%3, "Own")
				r, err := s.Append(ctx, own, eventstore.Exactly(v), evs)
				if err != nil {
					t.Error(err)
					return
				}
				v = r.Version
				mu.Lock()
				for _, e := range evs {
					acked[e.ID] = true
				}
				mu.Unlock()
				if i%4 == 0 { // contended streams
					evs := events(1, "Shared")
					if _, err := s.Append(ctx, fmt.Sprintf("tenant-shared-%d", i%3), eventstore.Any, evs); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acked[evs[0].ID] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	got := <-consumed
	if t.Failed() {
		return
	}
	for id := range acked {
		if _, ok := got[id]; !ok {
			t.Errorf("acknowledged event %s never delivered", id)
		}
	}
	for id := range got {
		if !acked[id] {
			t.Errorf("delivered event %s was never acknowledged", id)
		}
	}
	if len(got) != len(acked) {
		t.Fatalf("consumer counted %d events, %d acknowledged", len(got), len(acked))
	}
	t.Logf("%d events from 64 writers on two Stores, each delivered once", len(got))
}

// TestMigrateV1 opens a schema made by the previous version (one advisory
// lock per append, positions 1, 2, 3, ...): the store migrates it in place,
// the old events keep their positions, new ones come after them, a
// subscriber resumes from an old position, and an older seatledger still
// running finds its append function retired with a clear error.
func TestMigrateV1(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	ctx := t.Context()
	n := newNames(schema)
	conn := loadOldSchema(t, "testdata/schema_v1.sql", strings.NewReplacer(
		"{schema}", n.schema, "{events}", n.events, "{head}", n.schema+".head",
		"{snaps}", n.snaps, "{append}", n.appendFn, "{channel}", n.channel,
		"{lock}", fmt.Sprint(n.v1LockKey),
	))
	v1Append := "SELECT o_outcome, o_version, o_position FROM " + n.appendFn + "($1, $2, $3, $4, $5)"
	var oldIDs []string
	for i := range 3 {
		evs := events(2, "Old")
		var ids []pgtype.UUID
		for _, e := range evs {
			ids = append(ids, pgtype.UUID{Bytes: uuid.MustParse(e.ID), Valid: true})
			oldIDs = append(oldIDs, e.ID)
		}
		var outcome int32
		var version, position int64
		if err := conn.QueryRow(ctx, v1Append, "tenant-old", int64(2*i), ids, []string{"Old", "Old"},
			[][]byte{evs[0].Data, evs[1].Data}).Scan(&outcome, &version, &position); err != nil {
			t.Fatal(err)
		}
		if outcome != 0 || position != int64(2*i+2) {
			t.Fatalf("v1 append: outcome %d position %d", outcome, position)
		}
	}

	s := openSchema(t, schema, Options{})
	defer s.Close()
	all, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("after migration ReadAll has %d events, want the 6 old ones", len(all))
	}
	for i, e := range all {
		if e.ID != oldIDs[i] || e.Position != eventstore.Position(i+1) {
			t.Fatalf("old event %d: %s at %d, want %s at %d", i, e.ID, e.Position, oldIDs[i], i+1)
		}
	}
	sub, err := s.Subscribe(ctx, all[3].Position)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r, err := s.Append(ctx, "tenant-old", eventstore.Exactly(6), events(1, "New"))
	if err != nil || r.Version != 7 || r.Position <= all[5].Position {
		t.Fatalf("append after migration: %+v %v", r, err)
	}
	got := follow(t, sub, all[3].Position, 3)
	if got[0].ID != oldIDs[4] || got[1].ID != oldIDs[5] || got[2].Position != r.Position {
		t.Fatal("subscriber resuming from an old position did not get the rest of the old events, then the new one")
	}

	// An older seatledger: it checks its mark (and so runs no DDL), and its
	// append is refused with a message that says why.
	var marked bool
	if err := conn.QueryRow(ctx, `SELECT strpos(prosrc, $2) > 0 FROM pg_proc WHERE oid = to_regprocedure($1)`,
		n.appendFn+appendSigV1, migrationMarkV1).Scan(&marked); err != nil || !marked {
		t.Fatalf("v1 signature keeps v1's mark: %v %v", marked, err)
	}
	var outcome int32
	var version, position int64
	id := pgtype.UUID{Bytes: uuid.New(), Valid: true}
	err = conn.QueryRow(ctx, v1Append, "tenant-old", int64(7), []pgtype.UUID{id}, []string{"Old"}, [][]byte{{}}).
		Scan(&outcome, &version, &position)
	if err == nil || !strings.Contains(err.Error(), "upgraded to v2") {
		t.Fatalf("v1 append on a migrated schema: %v, want a refusal", err)
	}
	// Opening again changes nothing.
	s2 := openSchema(t, schema, Options{})
	defer s2.Close()
	if all2, err := s2.ReadAll(ctx, eventstore.Start, 0); err != nil || len(all2) != 7 {
		t.Fatalf("after a second open: %d events %v", len(all2), err)
	}
}

// TestRestoredIntoNewCluster: positions stored above what the server's
// transaction ids give (a dump restored into another cluster) make appends
// refuse until the store is opened again, which moves positions above them.
func TestRestoredIntoNewCluster(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Append(ctx, "tenant-r", eventstore.NoStream, events(1, "T")); err != nil {
		t.Fatal(err)
	}
	// Pretend the ids were a million transactions further on the old server.
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "UPDATE "+s.n.events+" SET position = position + ((1000000::bigint) << 16)"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(ctx, "tenant-r", eventstore.Exactly(1), events(1, "T"))
	if err == nil || !strings.Contains(err.Error(), "behind the positions") {
		t.Fatalf("append with ids behind the stored positions: %v, want a refusal", err)
	}
	s2 := openSchema(t, schema, Options{})
	defer s2.Close()
	old, err := s2.ReadAll(ctx, eventstore.Start, 0)
	if err != nil || len(old) != 1 {
		t.Fatalf("ReadAll after reopening: %d events %v", len(old), err)
	}
	r, err := s2.Append(ctx, "tenant-r", eventstore.Exactly(1), events(1, "T"))
	if err != nil || r.Position <= old[0].Position {
		t.Fatalf("append after reopening: %+v %v, want a position after %d", r, err, old[0].Position)
	}
	if evs, err := s2.ReadAll(ctx, old[0].Position, 0); err != nil || len(evs) != 1 {
		t.Fatalf("ReadAll after the old event: %d events %v", len(evs), err)
	}
}

// newReq builds an append request as Append would, for tests that drive
// appendGroup directly.
func newReq(ctx context.Context, stream string, expected eventstore.ExpectedVersion, evs []eventstore.EventData) *appendReq {
	r := &appendReq{ctx: ctx, stream: stream, expected: expected, done: make(chan struct{})}
	for _, e := range evs {
		r.ids = append(r.ids, pgtype.UUID{Bytes: uuid.MustParse(e.ID), Valid: true})
		r.types = append(r.types, e.Type)
		r.data = append(r.data, e.Data)
	}
	return r
}

// TestGroupMixed runs one group (one append_batch statement) holding every
// kind of append: plain ones, two chained appends of one stream, a wrong
// expected version, an idempotent retry, a partial overlap of IDs and an
// empty append. Each gets the answer it would get alone.
func TestGroupMixed(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{})
	defer s.Close()
	ctx := t.Context()
	old := events(2, "Old")
	first, err := s.Append(ctx, "tenant-old", eventstore.NoStream, old)
	if err != nil {
		t.Fatal(err)
	}
	chainA, chainB := events(2, "A"), events(1, "B")
	group := []*appendReq{
		newReq(ctx, "tenant-new", eventstore.NoStream, events(3, "New")),                                    // 0 written
		newReq(ctx, "tenant-chain", eventstore.NoStream, chainA),                                            // 1 written
		newReq(ctx, "tenant-chain", eventstore.Exactly(2), chainB),                                          // 2 written after 1
		newReq(ctx, "tenant-old", eventstore.Exactly(5), events(1, "X")),                                    // 3 conflict
		newReq(ctx, "tenant-old", eventstore.NoStream, old),                                                 // 4 retry
		newReq(ctx, "tenant-old", eventstore.Exactly(1), []eventstore.EventData{old[1], events(1, "Y")[0]}), // 5 partial: conflict
		newReq(ctx, "tenant-old", eventstore.Exactly(2), nil),                                               // 6 empty: version 2
		newReq(ctx, "tenant-any", eventstore.Any, events(1, "Any")),                                         // 7 written
	}
	runGroup(t, s, group, []groupOutcome{{false, 3}, {false, 2}, {false, 3}, {true, 2}, {false, 2}, {true, 2}, {false, 2}, {false, 1}})
	if group[4].res != first {
		t.Fatalf("retry answered %+v, the original %+v", group[4].res, first)
	}
	chain, err := s.ReadStream(ctx, "tenant-chain", 1, 0)
	if err != nil || len(chain) != 3 || chain[0].ID != chainA[0].ID || chain[2].ID != chainB[0].ID {
		t.Fatalf("chained stream: %d events %v", len(chain), err)
	}
	for i := 1; i < len(chain); i++ {
		if chain[i].Position <= chain[i-1].Position {
			t.Fatal("positions of one stream do not grow with its versions")
		}
	}
	if chain[2].Position != group[2].res.Position {
		t.Fatalf("second chained append at %d, answered %d", chain[2].Position, group[2].res.Position)
	}
	all, err := s.ReadAll(ctx, first.Position, 0)
	if err != nil || len(all) != 3+2+1+1 {
		t.Fatalf("ReadAll after the group: %d events %v, want 7", len(all), err)
	}
}

// TestEarlierRevisionsFindTheirMark: nodes of earlier v2 revisions may run
// beside this one on the same schema. Each checks the batch function for
// its own mark before running its DDL, so the current function must carry
// theirs, or every such node would put its own functions back on open.
func TestEarlierRevisionsFindTheirMark(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	n := newNames(schema)
	for _, c := range []struct{ fn, sig, mark string }{
		{"append_known", knownSig, migrationMark},
		{"append_batch", batchSig, migrationMark},
		{"append_batch", batchSig, "-- seatledger schema v2, revision 5"},
		{"append_batch", batchSigRev4, "-- seatledger schema v2, revision 4"},
		{"append_batch", batchSigRev4, "-- seatledger schema v2, revision 3"},
		{"append_batch", batchSigRev4, "-- seatledger schema v2"},
	} {
		var found bool
		if err := conn.QueryRow(ctx, `SELECT coalesce((SELECT strpos(prosrc, $2) > 0 FROM pg_proc WHERE oid = to_regprocedure($1)), false)`,
			n.schema+"."+c.fn+c.sig, c.mark).Scan(&found); err != nil || !found {
			t.Errorf("%s%s does not carry the mark %q (%v): nodes of that revision would replace it", c.fn, c.sig, c.mark, err)
		}
	}
}

// groupOutcome is what an append of a group should get: a conflict at
// version, or success at version.
type groupOutcome struct {
	conflict bool
	version  uint64
}

// runGroup runs group as one group and checks each append's answer.
func runGroup(t *testing.T, s *Store, group []*appendReq, want []groupOutcome) {
	t.Helper()
	s.appendGroup(group)
	for _, r := range group {
		<-r.done
	}
	for i, w := range want {
		r := group[i]
		if w.conflict {
			var ce *eventstore.ConflictError
			if !errors.As(r.err, &ce) || ce.Actual != w.version {
				t.Fatalf("append %d: %v, want a conflict at version %d", i, r.err, w.version)
			}
			continue
		}
		if r.err != nil || r.res.Version != w.version {
			t.Fatalf("append %d: %+v %v, want version %d", i, r.res, r.err, w.version)
		}
	}
}

// TestMigrateRevision4: a schema made by a node of revision 4 (its DDL in
// testdata) is brought to this revision when this build opens it, keeps
// its events, and a revision 4 node still running beside it (which calls
// append_batch with six arguments) gets the answers it got before.
func TestMigrateRevision4(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	ctx := t.Context()
	n := newNames(schema)
	conn := loadOldSchema(t, "testdata/schema_v2_rev4.sql", strings.NewReplacer("{schema}", n.schema, "{v1lock}", fmt.Sprint(n.v1LockKey)))
	// A revision 4 node's group: two streams.
	rev4Batch := "SELECT o_outcome, o_version, o_position FROM " + n.batchFn + "($1, $2, $3, $4, $5, $6)"
	batch := func(streams []string, expected []int64) ([]int32, []int64, []int64) {
		t.Helper()
		counts := make([]int32, len(streams))
		var ids []pgtype.UUID
		var types []string
		var data [][]byte
		for i := range streams {
			counts[i] = 1
			ids = append(ids, pgtype.UUID{Bytes: uuid.New(), Valid: true})
			types, data = append(types, "Rev4"), append(data, []byte{})
		}
		var (
			outcomes            []int32
			versions, positions []int64
		)
		if err := conn.QueryRow(ctx, rev4Batch, streams, expected, counts, ids, types, data).Scan(&outcomes, &versions, &positions); err != nil {
			t.Fatal(err)
		}
		return outcomes, versions, positions
	}
	if out, ver, _ := batch([]string{"a", "b"}, []int64{0, 0}); out[0] != 0 || out[1] != 0 || ver[0] != 1 || ver[1] != 1 {
		t.Fatalf("revision 4 group on its own schema: %v %v", out, ver)
	}

	s := openSchema(t, schema, Options{})
	defer s.Close()
	var current bool
	if err := conn.QueryRow(ctx, `SELECT coalesce((SELECT strpos(prosrc, $2) > 0 FROM pg_proc WHERE oid = to_regprocedure($1)), false)`,
		n.batchFn+batchSig, migrationMark).Scan(&current); err != nil || !current {
		t.Fatalf("after open, append_batch%s with this revision's mark: %v %v", batchSig, current, err)
	}
	r, err := s.Append(ctx, "a", eventstore.Exactly(1), events(1, "New"))
	if err != nil || r.Version != 2 {
		t.Fatalf("append after migration: %+v %v", r, err)
	}
	// This Store knows a's head now; a group through the new signature.
	runGroup(t, s, []*appendReq{
		newReq(ctx, "a", eventstore.Exactly(2), events(1, "New")),
		newReq(ctx, "b", eventstore.Exactly(1), events(1, "New")),
	}, []groupOutcome{{false, 3}, {false, 2}})

	// The revision 4 node, still running: right answers, conflicts too.
	out, ver, pos := batch([]string{"a", "b", "c"}, []int64{3, 1, 0})
	if out[0] != 0 || ver[0] != 4 || out[1] != 2 || ver[1] != 2 || out[2] != 0 || ver[2] != 1 {
		t.Fatalf("revision 4 group after the migration: outcomes %v versions %v", out, ver)
	}
	all, err := s.ReadStream(ctx, "a", 1, 0)
	if err != nil || len(all) != 4 || all[3].Position != eventstore.Position(pos[0]) {
		t.Fatalf("stream a: %d events %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatal("positions of one stream do not grow with its versions")
		}
	}
	// Opening again runs no DDL and changes nothing.
	s2 := openSchema(t, schema, Options{})
	defer s2.Close()
	if v, err := s2.StreamVersion(ctx, "c"); err != nil || v != 1 {
		t.Fatalf("after a second open: c at %d %v", v, err)
	}
}

// TestMigrateRevision5: a schema made by revision 5's DDL (append_batch
// with known heads, no append_known) is migrated when a node of this
// revision opens it; that node commits groups of known heads through
// append_known, and a revision 5 node still running gets the same answers
// from append_batch, conflicts included, with positions that grow with
// every stream's versions.
func TestMigrateRevision5(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	ctx := t.Context()
	n := newNames(schema)
	conn := loadOldSchema(t, "testdata/schema_v2_rev5.sql", strings.NewReplacer("{schema}", n.schema, "{v1lock}", fmt.Sprint(n.v1LockKey)))
	var rel uint32
	if err := conn.QueryRow(ctx, "SELECT $1::regclass::oid", n.events).Scan(&rel); err != nil {
		t.Fatal(err)
	}
	// A revision 5 node's group, every head unknown to it.
	rev5Batch := "SELECT o_outcome, o_version, o_position FROM " + n.batchFn + "($1, $2, $3, $4, $5, $6, $7, $8)"
	batch := func(streams []string, expected []int64) ([]int32, []int64, []int64) {
		t.Helper()
		counts := make([]int32, len(streams))
		known := make([]pgtype.Int8, len(streams))
		var ids []pgtype.UUID
		var types []string
		var data [][]byte
		for i := range streams {
			counts[i] = 1
			ids = append(ids, pgtype.UUID{Bytes: uuid.New(), Valid: true})
			types, data = append(types, "Rev5"), append(data, []byte{})
		}
		var (
			outcomes            []int32
			versions, positions []int64
		)
		if err := conn.QueryRow(ctx, rev5Batch, streams, expected, counts, ids, types, data, known, rel).Scan(&outcomes, &versions, &positions); err != nil {
			t.Fatal(err)
		}
		return outcomes, versions, positions
	}
	if out, ver, _ := batch([]string{"a", "b"}, []int64{0, 0}); out[0] != 0 || out[1] != 0 || ver[0] != 1 || ver[1] != 1 {
		t.Fatalf("revision 5 group on its own schema: %v %v", out, ver)
	}

	s := openSchema(t, schema, Options{})
	defer s.Close()
	var current bool
	if err := conn.QueryRow(ctx, `SELECT coalesce((SELECT strpos(prosrc, $2) > 0 FROM pg_proc WHERE oid = to_regprocedure($1)), false)`,
		n.knownFn+knownSig, migrationMark).Scan(&current); err != nil || !current {
		t.Fatalf("after open, append_known%s with this revision's mark: %v %v", knownSig, current, err)
	}
	for _, st := range []string{"a", "b"} {
		if r, err := s.Append(ctx, st, eventstore.Exactly(1), events(1, "New")); err != nil || r.Version != 2 {
			t.Fatalf("append to %s after migration: %+v %v", st, r, err)
		}
	}
	group := []*appendReq{
		newReq(ctx, "a", eventstore.Exactly(2), events(1, "New")),
		newReq(ctx, "b", eventstore.Exactly(2), events(1, "New")),
	}
	if !knownGroup(t, s, group) || group[0].res.Version != 3 || group[1].res.Version != 3 {
		t.Fatalf("a group of known heads after migration: %+v %v, %+v %v", group[0].res, group[0].err, group[1].res, group[1].err)
	}

	// The revision 5 node, still running: right answers, conflicts too.
	out, ver, pos := batch([]string{"a", "b", "c"}, []int64{3, 1, 0})
	if out[0] != 0 || ver[0] != 4 || out[1] != 2 || ver[1] != 3 || out[2] != 0 || ver[2] != 1 {
		t.Fatalf("revision 5 group after the migration: outcomes %v versions %v", out, ver)
	}
	all, err := s.ReadStream(ctx, "a", 1, 0)
	if err != nil || len(all) != 4 || all[3].Position != eventstore.Position(pos[0]) {
		t.Fatalf("stream a: %d events %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatal("positions of one stream do not grow with its versions")
		}
	}
	// This node's stale head of a (the revision 5 node appended since):
	// a conflict at the real version.
	runGroup(t, s, []*appendReq{
		newReq(ctx, "a", eventstore.Exactly(3), events(1, "Stale")),
		newReq(ctx, "b", eventstore.Exactly(3), events(1, "New")),
	}, []groupOutcome{{true, 4}, {false, 4}})
}

// loadOldSchema runs the DDL of an earlier schema revision from testdata
// (file, its placeholders replaced by r), as a node of that revision
// would have made it, and returns the connection it used (closed when the
// test ends).
func loadOldSchema(t *testing.T, file string, r *strings.Replacer) *pgx.Conn {
	t.Helper()
	ddl, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), testURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), r.Replace(string(ddl)), pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	return conn
}
