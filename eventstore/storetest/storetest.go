// Package storetest is the contract test suite every eventstore.Store
// implementation passes. It makes no assumption about the engine beyond the
// contract: stream names are unique per test (a shared server is fine) and
// global positions are compared relative to events the test appended.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

// Factory opens the stores the suite tests.
type Factory interface {
	// Open returns a ready store; the suite closes it (t.Cleanup is fine too,
	// Close must be safe to call twice).
	Open(t *testing.T) eventstore.Store
	// Reopen closes old and opens the same data again. Return nil if the
	// implementation cannot (the persistence test is then skipped).
	Reopen(t *testing.T, old eventstore.Store) eventstore.Store
}

type funcFactory func(t *testing.T) eventstore.Store

func (f funcFactory) Open(t *testing.T) eventstore.Store { return f(t) }
func (f funcFactory) Reopen(*testing.T, eventstore.Store) eventstore.Store {
	return nil
}

// Run runs the contract suite without the reopen test.
func Run(t *testing.T, open func(t *testing.T) eventstore.Store) {
	RunFactory(t, funcFactory(open))
}

// RunFactory runs the whole contract suite.
func RunFactory(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"AppendAndRead", testAppendAndRead},
		{"ExpectedVersion", testExpectedVersion},
		{"ConflictError", testConflictError},
		{"AtomicAppend", testAtomicAppend},
		{"Idempotent", testIdempotent},
		{"ReadStreamForward", testReadStreamForward},
		{"ReadStreamBackward", testReadStreamBackward},
		{"StreamVersion", testStreamVersion},
		{"OtherWriters", testOtherWriters},
		{"ReadAll", testReadAll},
		{"SubscribeBurst", testSubscribeBurst},
		{"SubscribeResume", testSubscribeResume},
		{"SubscribeCancel", testSubscribeCancel},
		{"SubscribeClose", testSubscribeClose},
		{"StoreCloseEndsSubscription", testStoreClose},
		{"ConcurrentSameStream", testConcurrentSameStream},
		{"ConcurrentStreams", testConcurrentStreams},
		{"Reopen", testReopen},
		{"Snapshots", testSnapshots},
		{"Ping", testPing},
		{"QueuedAppends", testQueuedAppends},
		{"ReturnedPositions", testReturnedPositions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// ---- helpers

var (
	prefixOnce sync.Once
	runPrefix  string
)

// streamName returns a stream name unique to this test run and test.
func streamName(t *testing.T, suffix string) string {
	prefixOnce.Do(func() { runPrefix = "st" + strings.ReplaceAll(uuid.NewString()[:8], "-", "") })
	n := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%s-%s", runPrefix, n, suffix)
}

func newEvents(n int, typ string) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		id := uuid.NewString()
		evs[i] = eventstore.EventData{ID: id, Type: typ, Data: fmt.Appendf(nil, `{"n":%d,"id":%q}`, i, id)}
	}
	return evs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, f Factory) eventstore.Store {
	s := f.Open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	r, err := s.Append(ctxT(t), stream, exp, evs)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d events): %v", stream, exp, len(evs), err)
	}
	return r
}

func mustRead(t *testing.T, s eventstore.Store, stream string, from uint64, limit int) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(ctxT(t), stream, from, limit)
	if err != nil {
		t.Fatalf("ReadStream(%q, %d, %d): %v", stream, from, limit, err)
	}
	return evs
}

func versions(evs []eventstore.RecordedEvent) []uint64 {
	v := make([]uint64, len(evs))
	for i, e := range evs {
		v[i] = e.Version
	}
	return v
}

func equalU(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func seq(from, to uint64) []uint64 {
	var v []uint64
	if from <= to {
		for i := from; i <= to; i++ {
			v = append(v, i)
		}
	} else {
		for i := from; i >= to && i > 0; i-- {
			v = append(v, i)
		}
	}
	return v
}

// checkSame checks that got is data appended as want to stream at versions
// first, first+1, ...
func checkSame(t *testing.T, got []eventstore.RecordedEvent, want []eventstore.EventData, stream string, first uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.ID != w.ID || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) || g.Stream != stream || g.Version != first+uint64(i) {
			t.Fatalf("event %d = {%s %s %s v%d %s}, want {%s %s %s v%d %s}", i, g.ID, g.Type, g.Stream, g.Version, g.Data, w.ID, w.Type, stream, first+uint64(i), w.Data)
		}
	}
}

func conflict(t *testing.T, err error) *eventstore.ConflictError {
	t.Helper()
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConflictError", err)
	}
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("errors.Is(%v, ErrConflict) = false", err)
	}
	return ce
}

// ---- tests

func testAppendAndRead(t *testing.T, f Factory) {
	s := open(t, f)
	stream := streamName(t, "a")
	evs := newEvents(3, "Created")
	before := time.Now().Add(-time.Minute)
	r := mustAppend(t, s, stream, eventstore.NoStream, evs)
	if r.Version != 3 || r.Position == 0 {
		t.Fatalf("append result %+v, want version 3 and a position", r)
	}
	got := mustRead(t, s, stream, 1, 100)
	checkSame(t, got, evs, stream, 1)
	for i, g := range got {
		if g.RecordedAt.Before(before) || g.RecordedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("event %d RecordedAt %v is not about now", i, g.RecordedAt)
		}
		if i > 0 && g.Position <= got[i-1].Position {
			t.Errorf("positions not increasing: %d then %d", got[i-1].Position, g.Position)
		}
	}
	if got[2].Position != r.Position {
		t.Errorf("last event position %d, append result position %d", got[2].Position, r.Position)
	}
	r2 := mustAppend(t, s, stream, eventstore.Exactly(3), newEvents(1, "Renamed"))
	if r2.Version != 4 || r2.Position <= r.Position {
		t.Fatalf("second append %+v after %+v", r2, r)
	}
	// Empty data round-trips.
	e := []eventstore.EventData{{ID: uuid.NewString(), Type: "Empty", Data: []byte("{}")}}
	mustAppend(t, s, stream, eventstore.Any, e)
	if got := mustRead(t, s, stream, 5, 1); len(got) != 1 || string(got[0].Data) != "{}" {
		t.Fatalf("read back %+v", got)
	}
}

func testExpectedVersion(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	a := streamName(t, "any")
	if r := mustAppend(t, s, a, eventstore.Any, newEvents(2, "T")); r.Version != 2 {
		t.Fatalf("Any on new stream: %+v", r)
	}
	if r := mustAppend(t, s, a, eventstore.Any, newEvents(1, "T")); r.Version != 3 {
		t.Fatalf("Any on existing stream: %+v", r)
	}
	_, err := s.Append(ctx, a, eventstore.NoStream, newEvents(1, "T"))
	if ce := conflict(t, err); ce.Actual != 3 || ce.Stream != a || ce.Expected != eventstore.NoStream {
		t.Fatalf("NoStream on existing stream: %+v", ce)
	}
	_, err = s.Append(ctx, a, eventstore.Exactly(2), newEvents(1, "T"))
	if ce := conflict(t, err); ce.Actual != 3 {
		t.Fatalf("stale version: %+v", ce)
	}
	_, err = s.Append(ctx, a, eventstore.Exactly(7), newEvents(1, "T"))
	if ce := conflict(t, err); ce.Actual != 3 {
		t.Fatalf("future version: %+v", ce)
	}
	if r := mustAppend(t, s, a, eventstore.Exactly(3), newEvents(2, "T")); r.Version != 5 {
		t.Fatalf("exact version: %+v", r)
	}
	m := streamName(t, "missing")
	_, err = s.Append(ctx, m, eventstore.Exactly(1), newEvents(1, "T"))
	if ce := conflict(t, err); ce.Actual != 0 {
		t.Fatalf("exact version on missing stream: %+v", ce)
	}
	if r := mustAppend(t, s, m, eventstore.NoStream, newEvents(1, "T")); r.Version != 1 {
		t.Fatalf("NoStream on missing stream: %+v", r)
	}
	// Appending nothing checks the condition and reports the version.
	if r, err := s.Append(ctx, a, eventstore.Exactly(5), nil); err != nil || r.Version != 5 {
		t.Fatalf("empty append with right version: %+v %v", r, err)
	}
	if r, err := s.Append(ctx, a, eventstore.Any, nil); err != nil || r.Version != 5 {
		t.Fatalf("empty append with Any: %+v %v", r, err)
	}
	_, err = s.Append(ctx, a, eventstore.Exactly(4), nil)
	if ce := conflict(t, err); ce.Actual != 5 {
		t.Fatalf("empty append with wrong version: %+v", ce)
	}
	if r, err := s.Append(ctx, streamName(t, "none"), eventstore.NoStream, nil); err != nil || r.Version != 0 {
		t.Fatalf("empty append on missing stream: %+v %v", r, err)
	}
	if v, _ := s.StreamVersion(ctx, a); v != 5 {
		t.Fatalf("version %d after all that, want 5", v)
	}
}

func testConflictError(t *testing.T, f Factory) {
	s := open(t, f)
	stream := streamName(t, "c")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(4, "T"))
	_, err := s.Append(ctxT(t), stream, eventstore.Exactly(2), newEvents(1, "T"))
	ce := conflict(t, err)
	if ce.Stream != stream || ce.Expected != eventstore.Exactly(2) || ce.Actual != 4 {
		t.Fatalf("conflict %+v, want stream %q expected 2 actual 4", ce, stream)
	}
	if ce.Error() == "" {
		t.Fatal("empty message")
	}
}

func testAtomicAppend(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	stream := streamName(t, "atomic")
	first := newEvents(5, "T")
	mustAppend(t, s, stream, eventstore.NoStream, first)
	// A refused multi-event append writes none of its events.
	if _, err := s.Append(ctx, stream, eventstore.Exactly(3), newEvents(3, "T")); err == nil {
		t.Fatal("append with stale version succeeded")
	}
	got := mustRead(t, s, stream, 1, 100)
	checkSame(t, got, first, stream, 1)
	// The events of one append are contiguous in the stream and in order in
	// the global log even with concurrent appends to other streams.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		o := streamName(t, "noise")
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, o, eventstore.Any, newEvents(1, "N")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	big := newEvents(50, "Big")
	r := mustAppend(t, s, stream, eventstore.Exactly(5), big)
	close(stop)
	wg.Wait()
	if r.Version != 55 {
		t.Fatalf("result %+v", r)
	}
	got = mustRead(t, s, stream, 6, 100)
	checkSame(t, got, big, stream, 6)
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatal("positions of one append not increasing")
		}
	}
	// Read from the position of the event before the append (positions
	// passed to ReadAll must be ones the store returned).
	before := mustRead(t, s, stream, 5, 1)[0].Position
	all, err := s.ReadAll(ctx, before, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Between the first and last event of the append there is nothing else.
	var inside []eventstore.RecordedEvent
	for _, e := range all {
		if e.Position >= got[0].Position && e.Position <= got[len(got)-1].Position {
			inside = append(inside, e)
		}
	}
	checkSame(t, inside, big, stream, 6)
}

func testIdempotent(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	stream := streamName(t, "idem")
	ab := newEvents(2, "T")
	r1 := mustAppend(t, s, stream, eventstore.NoStream, ab)
	// Same events, same expected version: success, same result, nothing written.
	r2 := mustAppend(t, s, stream, eventstore.NoStream, ab)
	if r2 != r1 {
		t.Fatalf("retry result %+v, first result %+v", r2, r1)
	}
	c := newEvents(1, "T")
	r3 := mustAppend(t, s, stream, eventstore.Exactly(2), c)
	if r3.Version != 3 {
		t.Fatalf("append after retry: %+v", r3)
	}
	// Retrying an older append after later ones succeeds too.
	if r, err := s.Append(ctx, stream, eventstore.NoStream, ab); err != nil || r != r1 {
		t.Fatalf("late retry: %+v %v, want %+v", r, err, r1)
	}
	if r, err := s.Append(ctx, stream, eventstore.Exactly(2), c); err != nil || r != r3 {
		t.Fatalf("retry of last append: %+v %v, want %+v", r, err, r3)
	}
	// With Any.
	if r, err := s.Append(ctx, stream, eventstore.Any, c); err != nil || r != r3 {
		t.Fatalf("retry with Any: %+v %v, want %+v", r, err, r3)
	}
	// Partial overlap: some IDs stored, others new -> conflict, nothing written.
	partial := []eventstore.EventData{ab[1], newEvents(1, "T")[0]}
	if _, err := s.Append(ctx, stream, eventstore.Exactly(1), partial); err == nil {
		t.Fatal("partial overlap succeeded")
	} else {
		conflict(t, err)
	}
	got := mustRead(t, s, stream, 1, 100)
	checkSame(t, got, append(append([]eventstore.EventData{}, ab...), c...), stream, 1)
	if v, _ := s.StreamVersion(ctx, stream); v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
}

func testReadStreamForward(t *testing.T, f Factory) {
	s := open(t, f)
	stream := streamName(t, "fwd")
	evs := newEvents(10, "T")
	mustAppend(t, s, stream, eventstore.NoStream, evs[:4])
	mustAppend(t, s, stream, eventstore.Exactly(4), evs[4:])
	cases := []struct {
		from  uint64
		limit int
		want  []uint64
	}{
		{1, 3, seq(1, 3)},
		{0, 3, seq(1, 3)},
		{4, 100, seq(4, 10)},
		{10, 5, seq(10, 10)},
		{11, 5, nil},
		{3, 1, seq(3, 3)},
	}
	for _, c := range cases {
		got := mustRead(t, s, stream, c.from, c.limit)
		if !equalU(versions(got), c.want) {
			t.Errorf("ReadStream(from %d, limit %d) = %v, want %v", c.from, c.limit, versions(got), c.want)
		}
		if len(got) > 0 {
			checkSame(t, got, evs[got[0].Version-1:got[len(got)-1].Version], stream, got[0].Version)
		}
	}
	if got := mustRead(t, s, streamName(t, "missing"), 1, 10); len(got) != 0 {
		t.Errorf("missing stream read %d events", len(got))
	}
}

func testReadStreamBackward(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	stream := streamName(t, "bwd")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(10, "T"))
	cases := []struct {
		from  uint64
		limit int
		want  []uint64
	}{
		{0, 3, seq(10, 8)},
		{10, 1, seq(10, 10)},
		{5, 2, seq(5, 4)},
		{5, 10, seq(5, 1)},
		{1, 10, seq(1, 1)},
		{20, 2, seq(10, 9)},
	}
	for _, c := range cases {
		got, err := s.ReadStreamBackward(ctx, stream, c.from, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !equalU(versions(got), c.want) {
			t.Errorf("ReadStreamBackward(from %d, limit %d) = %v, want %v", c.from, c.limit, versions(got), c.want)
		}
		for _, e := range got {
			if e.Stream != stream {
				t.Errorf("event of stream %q", e.Stream)
			}
		}
	}
	got, err := s.ReadStreamBackward(ctx, streamName(t, "missing"), 0, 10)
	if err != nil || len(got) != 0 {
		t.Errorf("missing stream: %d events, %v", len(got), err)
	}
}

func testStreamVersion(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	stream := streamName(t, "v")
	if v, err := s.StreamVersion(ctx, stream); err != nil || v != 0 {
		t.Fatalf("missing stream: %d %v", v, err)
	}
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(3, "T"))
	mustAppend(t, s, stream, eventstore.Any, newEvents(4, "T"))
	if v, err := s.StreamVersion(ctx, stream); err != nil || v != 7 {
		t.Fatalf("StreamVersion = %d %v, want 7", v, err)
	}
}

// own filters events to the streams of this test.
func own(t *testing.T, evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
	p := streamName(t, "")
	var out []eventstore.RecordedEvent
	for _, e := range evs {
		if strings.HasPrefix(e.Stream, p) {
			out = append(out, e)
		}
	}
	return out
}

func marker(t *testing.T, s eventstore.Store) eventstore.Position {
	t.Helper()
	return mustAppend(t, s, streamName(t, "marker")+uuid.NewString()[:8], eventstore.NoStream, newEvents(1, "Marker")).Position
}

func testReadAll(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	p0 := marker(t, s)
	var want []string
	streams := []string{streamName(t, "x"), streamName(t, "y"), streamName(t, "z")}
	var lastR eventstore.AppendResult
	for i := 0; i < 12; i++ {
		evs := newEvents(1+i%3, "T")
		lastR = mustAppend(t, s, streams[i%3], eventstore.Any, evs)
		for _, e := range evs {
			want = append(want, e.ID)
		}
	}
	all, err := s.ReadAll(ctx, p0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkGlobalOrder(t, all, p0)
	mine := own(t, all)
	if len(mine) < len(want) {
		t.Fatalf("ReadAll returned %d of our %d events", len(mine), len(want))
	}
	mine = mine[:len(want)]
	for i, e := range mine {
		if e.ID != want[i] {
			t.Fatalf("ReadAll event %d is %s, want %s", i, e.ID, want[i])
		}
	}
	if mine[len(mine)-1].Position != lastR.Position {
		t.Fatalf("last position %d, append said %d", mine[len(mine)-1].Position, lastR.Position)
	}
	// Strictly after: reading after an event's position starts after it.
	after, err := s.ReadAll(ctx, mine[4].Position, 1)
	if err != nil || len(after) != 1 {
		t.Fatalf("ReadAll(after, 1): %d events, %v", len(after), err)
	}
	if after[0].Position <= mine[4].Position || after[0].Position > mine[5].Position {
		t.Fatalf("ReadAll after %d returned position %d (next of ours is %d)", mine[4].Position, after[0].Position, mine[5].Position)
	}
	// Paging with a small limit sees the same sequence.
	var paged []eventstore.RecordedEvent
	pos := p0
	for pos < lastR.Position {
		page, err := s.ReadAll(ctx, pos, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 || len(page) > 5 {
			t.Fatalf("page of %d events after %d", len(page), pos)
		}
		paged = append(paged, page...)
		pos = page[len(page)-1].Position
	}
	checkGlobalOrder(t, paged, p0)
	pm := own(t, paged)
	if len(pm) != len(want) {
		t.Fatalf("paged read found %d of our %d events", len(pm), len(want))
	}
	for i := range pm {
		if pm[i].ID != want[i] || pm[i].Position != mine[i].Position {
			t.Fatalf("paged event %d differs", i)
		}
	}
	// After the end: nothing of ours.
	if rest, err := s.ReadAll(ctx, lastR.Position, 100); err != nil || len(own(t, rest)) != 0 {
		t.Fatalf("ReadAll after the last event: %d of ours, %v", len(own(t, rest)), err)
	}
}

func checkGlobalOrder(t *testing.T, evs []eventstore.RecordedEvent, after eventstore.Position) {
	t.Helper()
	prev := after
	for _, e := range evs {
		if e.Position <= prev {
			t.Fatalf("global order broken: position %d after %d", e.Position, prev)
		}
		prev = e.Position
	}
}

// collect reads from sub until it has n events of this test's streams.
func collect(t *testing.T, sub eventstore.Subscription, n int, after eventstore.Position) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := streamName(t, "")
	var out []eventstore.RecordedEvent
	prev := after
	for len(out) < n {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d events: %v", len(out), n, err)
		}
		if e.Position <= prev {
			t.Fatalf("subscription went backwards or repeated: %d after %d", e.Position, prev)
		}
		prev = e.Position
		if strings.HasPrefix(e.Stream, p) && !strings.Contains(e.Stream, "marker") {
			out = append(out, e)
		}
	}
	return out
}

func testSubscribeBurst(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	p0 := marker(t, s)
	before, err := s.Subscribe(ctx, p0)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	const writers, perWriter = 4, 60
	total := writers * perWriter
	var wg sync.WaitGroup
	var during eventstore.Subscription
	var duringOnce sync.Once
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream := streamName(t, fmt.Sprintf("w%d", w))
			for i := 0; i < perWriter; {
				n := 1 + i%3
				if i+n > perWriter {
					n = perWriter - i
				}
				if _, err := s.Append(ctx, stream, eventstore.Exactly(uint64(i)), newEvents(n, "T")); err != nil {
					t.Error(err)
					return
				}
				i += n
				if w == 0 && i >= perWriter/2 {
					duringOnce.Do(func() {
						sub, err := s.Subscribe(ctx, p0)
						if err != nil {
							t.Error(err)
							return
						}
						during = sub
					})
				}
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	defer during.Close()
	after, err := s.Subscribe(ctx, p0)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()

	all, err := s.ReadAll(ctx, p0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := own(t, all)
	if len(want) != total {
		t.Fatalf("ReadAll found %d events, appended %d", len(want), total)
	}
	for name, sub := range map[string]eventstore.Subscription{"before": before, "during": during, "after": after} {
		got := collect(t, sub, total, p0)
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Position != want[i].Position || got[i].Version != want[i].Version || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("subscription %s: event %d is %s@%d, want %s@%d", name, i, got[i].ID, got[i].Position, want[i].ID, want[i].Position)
			}
		}
	}
	// Live: an event appended now reaches a caught-up subscription.
	late := newEvents(1, "Late")
	mustAppend(t, s, streamName(t, "late"), eventstore.NoStream, late)
	for _, sub := range []eventstore.Subscription{before, during, after} {
		if got := collect(t, sub, 1, want[len(want)-1].Position); got[0].ID != late[0].ID {
			t.Fatalf("live event %s, want %s", got[0].ID, late[0].ID)
		}
	}
}

func testSubscribeResume(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	p0 := marker(t, s)
	stream := streamName(t, "r")
	evs := newEvents(20, "T")
	mustAppend(t, s, stream, eventstore.NoStream, evs[:10])
	sub, err := s.Subscribe(ctx, p0)
	if err != nil {
		t.Fatal(err)
	}
	first := collect(t, sub, 7, p0)
	sub.Close()
	checkpoint := first[6].Position
	mustAppend(t, s, stream, eventstore.Exactly(10), evs[10:])
	sub2, err := s.Subscribe(ctx, checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	rest := collect(t, sub2, 13, checkpoint)
	checkSame(t, append(first, rest...), evs, stream, 1)
}

func testSubscribeCancel(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	p := marker(t, s)
	sub, err := s.Subscribe(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Next's ctx: a deadline ends the wait with ctx.Err().
	nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	for {
		_, err := sub.Next(nctx)
		if err == nil {
			continue // events of other tests on a shared server
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next with expired ctx: %v", err)
		}
		break
	}
	// The subscription still works after a cancelled Next.
	e := newEvents(1, "T")
	mustAppend(t, s, streamName(t, "c"), eventstore.NoStream, e)
	if got := collect(t, sub, 1, p); got[0].ID != e[0].ID {
		t.Fatalf("got %s, want %s", got[0].ID, e[0].ID)
	}
	// A cancelled Next returns promptly while blocked.
	cctx, ccancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		for {
			_, err := sub.Next(cctx)
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	ccancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after cancel")
	}
	// Cancelling Subscribe's ctx ends the subscription.
	sctx, scancel := context.WithCancel(ctx)
	sub2, err := s.Subscribe(sctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	scancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-deadline:
			t.Fatal("subscription did not end after its ctx was cancelled")
		default:
		}
		_, err := sub2.Next(ctx)
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) && !errors.Is(err, eventstore.ErrClosed) {
			t.Fatalf("Next after Subscribe ctx cancel: %v", err)
		}
		break
	}
}

func testSubscribeClose(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	p := marker(t, s)
	sub, err := s.Subscribe(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for {
			_, err := sub.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Fatalf("blocked Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	if _, err := sub.Next(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testStoreClose(t *testing.T, f Factory) {
	s := f.Open(t)
	ctx := ctxT(t)
	p := marker(t, s)
	sub, err := s.Subscribe(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for {
			_, err := sub.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Fatalf("Next after store Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after store Close")
	}
	if _, err := s.Append(ctx, streamName(t, "x"), eventstore.Any, newEvents(1, "T")); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.ReadStream(ctx, streamName(t, "x"), 1, 1); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("ReadStream after Close: %v", err)
	}
	if _, err := s.Subscribe(ctx, 0); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testConcurrentSameStream(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	stream := streamName(t, "hot")
	const goroutines, each = 50, 3
	type win struct {
		version uint64
		id      string
	}
	wins := make(chan win, goroutines*each)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				v, err := s.StreamVersion(ctx, stream)
				if err != nil {
					t.Error(err)
					return
				}
				e := newEvents(1, "T")
				r, err := s.Append(ctx, stream, eventstore.Exactly(v), e)
				if errors.Is(err, eventstore.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if r.Version != v+1 {
					t.Errorf("appended at %d, result version %d", v, r.Version)
				}
				wins <- win{r.Version, e[0].ID}
				done++
			}
		}()
	}
	wg.Wait()
	close(wins)
	byVersion := map[uint64]string{}
	for w := range wins {
		if prev, dup := byVersion[w.version]; dup {
			t.Fatalf("version %d won twice (%s and %s)", w.version, prev, w.id)
		}
		byVersion[w.version] = w.id
	}
	n := uint64(goroutines * each)
	got := mustRead(t, s, stream, 1, 0)
	if uint64(len(got)) != n || uint64(len(byVersion)) != n {
		t.Fatalf("stream has %d events, %d acknowledged, want %d", len(got), len(byVersion), n)
	}
	for i, e := range got {
		if e.Version != uint64(i+1) || byVersion[e.Version] != e.ID {
			t.Fatalf("event %d: version %d id %s, acknowledged %s", i, e.Version, e.ID, byVersion[e.Version])
		}
	}
}

func testConcurrentStreams(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	p0 := marker(t, s)
	const goroutines, each = 50, 10
	sent := make([][]eventstore.EventData, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			stream := streamName(t, fmt.Sprintf("s%02d", g))
			for i := 0; i < each; i++ {
				e := newEvents(1, "T")
				if _, err := s.Append(ctx, stream, eventstore.Exactly(uint64(i)), e); err != nil {
					t.Error(err)
					return
				}
				sent[g] = append(sent[g], e[0])
			}
		}(g)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for g := 0; g < goroutines; g++ {
		checkSame(t, mustRead(t, s, streamName(t, fmt.Sprintf("s%02d", g)), 1, 0), sent[g], streamName(t, fmt.Sprintf("s%02d", g)), 1)
	}
	all, err := s.ReadAll(ctx, p0, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkGlobalOrder(t, all, p0)
	mine := own(t, all)
	if len(mine) != goroutines*each {
		t.Fatalf("global log has %d of our %d events", len(mine), goroutines*each)
	}
	seen := map[string]bool{}
	for _, e := range mine {
		if seen[e.ID] {
			t.Fatalf("event %s twice in the global log", e.ID)
		}
		seen[e.ID] = true
	}
}

func testReopen(t *testing.T, f Factory) {
	s := f.Open(t)
	ctx := ctxT(t)
	p0 := marker(t, s)
	streams := []string{streamName(t, "a"), streamName(t, "b")}
	for i := 0; i < 6; i++ {
		mustAppend(t, s, streams[i%2], eventstore.Any, newEvents(1+i%2, "T"))
	}
	if ss, ok := s.(eventstore.SnapshotStore); ok {
		if err := ss.SaveSnapshot(ctx, eventstore.Snapshot{Stream: streams[0], Version: 2, Schema: 3, Data: []byte(`{"s":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.ReadAll(ctx, p0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s2 := f.Reopen(t, s)
	if s2 == nil {
		_ = s.Close()
		t.Skip("store cannot be reopened")
	}
	t.Cleanup(func() { _ = s2.Close() })
	after, err := s2.ReadAll(ctx, p0, 0)
	if err != nil {
		t.Fatal(err)
	}
	before, after = own(t, before), own(t, after)
	if len(after) != len(before) {
		t.Fatalf("after reopen %d events, before %d", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.ID != b.ID || a.Type != b.Type || a.Stream != b.Stream || a.Version != b.Version || a.Position != b.Position || !a.RecordedAt.Equal(b.RecordedAt) || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("event %d changed across reopen: %+v vs %+v", i, a, b)
		}
	}
	v, err := s2.StreamVersion(ctx, streams[0])
	if err != nil || v != 3 {
		t.Fatalf("StreamVersion after reopen %d %v, want 3", v, err)
	}
	r := mustAppend(t, s2, streams[0], eventstore.Exactly(3), newEvents(1, "T"))
	if r.Version != 4 || r.Position <= before[len(before)-1].Position {
		t.Fatalf("append after reopen: %+v", r)
	}
	// Idempotency survives the reopen.
	first := mustRead(t, s2, streams[1], 1, 2)
	if len(first) != 2 {
		t.Fatalf("read %d", len(first))
	}
	redo := []eventstore.EventData{{ID: first[0].ID, Type: first[0].Type, Data: first[0].Data}, {ID: first[1].ID, Type: first[1].Type, Data: first[1].Data}}
	if rr, err := s2.Append(ctx, streams[1], eventstore.NoStream, redo); err != nil || rr.Version != 2 || rr.Position != first[1].Position {
		t.Fatalf("idempotent retry after reopen: %+v %v", rr, err)
	}
	if ss, ok := s2.(eventstore.SnapshotStore); ok {
		snap, found, err := ss.LoadSnapshot(ctx, streams[0], 0)
		if err != nil || !found || snap.Version != 2 || snap.Schema != 3 || string(snap.Data) != `{"s":1}` {
			t.Fatalf("snapshot after reopen: %+v %v %v", snap, found, err)
		}
	}
	sub, err := s2.Subscribe(ctx, p0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := collect(t, sub, len(before)+1, p0)
	for i := range before {
		if got[i].ID != before[i].ID {
			t.Fatalf("subscription after reopen: event %d differs", i)
		}
	}
}

func testSnapshots(t *testing.T, f Factory) {
	s := open(t, f)
	ss, ok := s.(eventstore.SnapshotStore)
	if !ok {
		t.Skip("store does not implement SnapshotStore")
	}
	ctx := ctxT(t)
	a, b := streamName(t, "a"), streamName(t, "b")
	if _, found, err := ss.LoadSnapshot(ctx, a, 0); err != nil || found {
		t.Fatalf("no snapshot yet: found=%v err=%v", found, err)
	}
	for _, v := range []uint64{5, 10, 15} {
		if err := ss.SaveSnapshot(ctx, eventstore.Snapshot{Stream: a, Version: v, Schema: 1, Data: fmt.Appendf(nil, `{"v":%d}`, v)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.SaveSnapshot(ctx, eventstore.Snapshot{Stream: b, Version: 7, Schema: 2, Data: []byte(`{"b":7}`)}); err != nil {
		t.Fatal(err)
	}
	load := func(stream string, max uint64) (eventstore.Snapshot, bool) {
		t.Helper()
		snap, found, err := ss.LoadSnapshot(ctx, stream, max)
		if err != nil {
			t.Fatal(err)
		}
		return snap, found
	}
	for _, c := range []struct {
		max, want uint64
	}{{0, 15}, {100, 15}, {15, 15}, {14, 10}, {10, 10}, {9, 5}, {5, 5}, {4, 0}} {
		snap, found := load(a, c.max)
		if c.want == 0 {
			if found {
				t.Errorf("LoadSnapshot(max %d) found version %d, want none", c.max, snap.Version)
			}
			continue
		}
		if !found || snap.Version != c.want || snap.Stream != a || snap.Schema != 1 || string(snap.Data) != fmt.Sprintf(`{"v":%d}`, c.want) {
			t.Errorf("LoadSnapshot(max %d) = %+v found=%v, want version %d", c.max, snap, found, c.want)
		}
	}
	// Same version again replaces it.
	if err := ss.SaveSnapshot(ctx, eventstore.Snapshot{Stream: a, Version: 10, Schema: 4, Data: []byte(`{"v":"new"}`)}); err != nil {
		t.Fatal(err)
	}
	if snap, found := load(a, 12); !found || snap.Schema != 4 || string(snap.Data) != `{"v":"new"}` {
		t.Fatalf("replaced snapshot: %+v", snap)
	}
	if err := ss.DeleteSnapshots(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, found := load(a, 0); found {
		t.Fatal("snapshot survived DeleteSnapshots")
	}
	if snap, found := load(b, 0); !found || snap.Version != 7 || snap.Schema != 2 {
		t.Fatalf("other stream's snapshot: %+v %v", snap, found)
	}
	// A new snapshot after deletion works.
	if err := ss.SaveSnapshot(ctx, eventstore.Snapshot{Stream: a, Version: 3, Schema: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if snap, found := load(a, 0); !found || snap.Version != 3 {
		t.Fatalf("snapshot after delete: %+v %v", snap, found)
	}
	if err := ss.DeleteSnapshots(ctx, ""); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{a, b} {
		if _, found := load(st, 0); found {
			t.Fatalf("snapshot of %s survived DeleteSnapshots(\"\")", st)
		}
	}
}

func testPing(t *testing.T, f Factory) {
	s := open(t, f)
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// testQueuedAppends: a store that queues appends (eventstore.AsyncAppender)
// commits appends queued one after another in order, each expecting the
// version the previous one makes; one queued after an append that failed
// fails with a conflict and writes nothing, even when its expected version
// matches the stream.
func testQueuedAppends(t *testing.T, f Factory) {
	s := open(t, f)
	qa, ok := s.(eventstore.AsyncAppender)
	if !ok {
		t.Skip("the store does not queue appends (eventstore.AsyncAppender); Append alone is used")
	}
	ctx := ctxT(t)
	stream := streamName(t, "q")
	var queued []eventstore.QueuedAppend
	var want []eventstore.EventData
	var prev eventstore.QueuedAppend
	for i := 0; i < 50; i++ {
		evs := newEvents(1+i%3, "Q")
		want = append(want, evs...)
		if i%2 == 1 {
			prev = nil // half of them chained to the one before
		}
		prev = qa.QueueAppend(ctx, stream, eventstore.Exactly(uint64(len(want)-len(evs))), evs, prev)
		queued = append(queued, prev)
	}
	var last eventstore.AppendResult
	for i, q := range queued {
		res, err := q.Wait()
		if err != nil {
			t.Fatalf("queued append %d: %v", i, err)
		}
		if res.Version <= last.Version || res.Position <= last.Position {
			t.Fatalf("queued append %d: %+v after %+v: not in queue order", i, res, last)
		}
		last = res
	}
	checkSame(t, mustRead(t, s, stream, 1, len(want)+10), want, stream, 1)

	// A wrong expected version; an append queued after it whose own
	// expected version is right fails too; one that only expects the same
	// version (not after it) lands.
	v := uint64(len(want))
	bad := qa.QueueAppend(ctx, stream, eventstore.Exactly(v+5), newEvents(2, "Q"), nil)
	onBad := qa.QueueAppend(ctx, stream, eventstore.Exactly(v), newEvents(1, "Q"), bad)
	if _, err := bad.Wait(); conflict(t, err).Actual != v {
		t.Fatalf("bad append: %v", err)
	}
	if _, err := onBad.Wait(); conflict(t, err).Actual != v {
		t.Fatalf("append queued after a failed one: %v", err)
	}
	// Queued after an append already known to have failed: refused at once.
	if _, err := qa.QueueAppend(ctx, stream, eventstore.Exactly(v), newEvents(1, "Q"), bad).Wait(); conflict(t, err).Actual != v {
		t.Fatalf("append queued after a failed one: %v", err)
	}
	if got := mustRead(t, s, stream, 1, 1000); len(got) != len(want) {
		t.Fatalf("%d events after the failed appends, want %d", len(got), len(want))
	}
	ok2 := qa.QueueAppend(ctx, stream, eventstore.Exactly(v), newEvents(1, "Q"), queued[len(queued)-1])
	if res, err := ok2.Wait(); err != nil || res.Version != v+1 {
		t.Fatalf("append after a committed one: %+v %v", res, err)
	}
	// Errors found before queueing are the outcome.
	if _, err := qa.QueueAppend(ctx, "", eventstore.Any, newEvents(1, "Q"), nil).Wait(); err == nil {
		t.Fatal("empty stream name accepted")
	}
	// A cancelled context before the store takes the append fails it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := qa.QueueAppend(cctx, stream, eventstore.Exactly(v+1), newEvents(1, "Q"), nil).Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: %v", err)
	}
}
