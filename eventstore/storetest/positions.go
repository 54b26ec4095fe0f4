package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/seatledger/seatledger/eventstore"
)

// testReturnedPositions checks the positions contract (see
// eventstore.Position): every position the store returns (an append's
// result, an event read back) is one ReadAll and Subscribe accept, and
// reading after it gives exactly the events that follow it.
func testReturnedPositions(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	a, b := streamName(t, "a"), streamName(t, "b")
	head, err := lastPosition(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var results []eventstore.AppendResult
	results = append(results, mustAppend(t, s, a, eventstore.NoStream, newEvents(3, "P")))
	results = append(results, mustAppend(t, s, b, eventstore.NoStream, newEvents(1, "P")))
	results = append(results, mustAppend(t, s, a, eventstore.Exactly(3), newEvents(2, "P")))
	all, err := s.ReadAll(ctx, head, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mine []eventstore.RecordedEvent
	for _, e := range all {
		if e.Stream == a || e.Stream == b {
			mine = append(mine, e)
		}
	}
	if len(mine) != 6 {
		t.Fatalf("read %d of the 6 events appended", len(mine))
	}
	// An append's result is its last event's position.
	for _, r := range results {
		found := false
		for _, e := range mine {
			if e.Position == r.Position {
				found = true
			}
		}
		if !found {
			t.Fatalf("append result position %d is no event's position", r.Position)
		}
	}
	for i, e := range mine[:len(mine)-1] {
		next := mine[i+1]
		got, err := s.ReadAll(ctx, e.Position, 1)
		if err != nil {
			t.Fatalf("ReadAll after returned position %d: %v", e.Position, err)
		}
		if len(got) != 1 || got[0].ID != next.ID {
			t.Fatalf("ReadAll after position %d: %+v, want the event %s", e.Position, got, next.ID)
		}
	}
	// Subscribe from an append's result starts with the next event.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sub, err := s.Subscribe(sctx, results[0].Position)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for {
		e, err := sub.Next(sctx)
		if err != nil {
			t.Fatalf("Subscribe after returned position %d: %v", results[0].Position, err)
		}
		if e.Position <= results[0].Position {
			t.Fatalf("Subscribe after %d delivered position %d", results[0].Position, e.Position)
		}
		if e.Stream == a || e.Stream == b {
			if e.ID != mine[3].ID {
				t.Fatalf("Subscribe after %d: first of mine is %s, want %s", results[0].Position, e.ID, mine[3].ID)
			}
			return
		}
	}
}

// lastPosition returns the position of the store's last event (Start if
// none), reading the log from the start: a position the store returned.
func lastPosition(ctx context.Context, s eventstore.Store) (eventstore.Position, error) {
	pos := eventstore.Start
	for {
		evs, err := s.ReadAll(ctx, pos, 4096)
		if err != nil || len(evs) == 0 {
			return pos, err
		}
		pos = evs[len(evs)-1].Position
	}
}
