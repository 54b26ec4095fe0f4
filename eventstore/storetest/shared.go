package storetest

import (
	"testing"

	"github.com/seatledger/seatledger/eventstore"
)

// SecondOpener is implemented by the Factory of a store that several
// processes can share (PostgreSQL, KurrentDB). OpenSecond opens another
// Store on the same data as s, as a second node would; the suite closes it.
type SecondOpener interface {
	OpenSecond(t *testing.T, s eventstore.Store) eventstore.Store
}

// testOtherWriters checks what a node needs to answer on the store's truth
// when another node appends behind its back: every read of the first Store
// sees the second's appends as soon as they return, and its appends are
// checked against them. A store that cannot be opened twice must declare
// itself eventstore.Exclusive, so that the command handler may trust the
// states it appended itself; a store that can must not.
func testOtherWriters(t *testing.T, f Factory) {
	a := open(t, f)
	so, ok := f.(SecondOpener)
	if !ok {
		if !eventstore.IsExclusive(a) {
			t.Fatal("the factory cannot open a second Store on the same data, and the store does not declare itself eventstore.Exclusive: " +
				"implement storetest.SecondOpener for a shared store, or Exclusive for one only this process can append to")
		}
		t.Skip("an exclusive store: no other process appends while it is open")
	}
	if eventstore.IsExclusive(a) {
		t.Fatal("a store that can be opened twice on the same data declares itself eventstore.Exclusive")
	}
	b := so.OpenSecond(t, a)
	t.Cleanup(func() { _ = b.Close() })
	ctx := ctxT(t)
	stream := streamName(t, "shared")

	mustAppend(t, a, stream, eventstore.NoStream, newEvents(2, "A"))
	if v, err := a.StreamVersion(ctx, stream); err != nil || v != 2 {
		t.Fatalf("a.StreamVersion = %d %v, want 2", v, err)
	}
	// b appends behind a's back.
	behind := newEvents(3, "B")
	mustAppend(t, b, stream, eventstore.Exactly(2), behind)

	if v, err := a.StreamVersion(ctx, stream); err != nil || v != 5 {
		t.Fatalf("after another Store appended, a.StreamVersion = %d %v, want 5", v, err)
	}
	checkSame(t, mustRead(t, a, stream, 3, 10), behind, stream, 3)
	back, err := a.ReadStreamBackward(ctx, stream, 0, 1)
	if err != nil || len(back) != 1 || back[0].Version != 5 || back[0].ID != behind[2].ID {
		t.Fatalf("a.ReadStreamBackward from the end = %v %v, want b's last event at version 5", versions(back), err)
	}
	_, err = a.Append(ctx, stream, eventstore.Exactly(2), newEvents(1, "A"))
	if ce := conflict(t, err); ce.Actual != 5 {
		t.Fatalf("a's append on its old version: conflict with actual %d, want 5", ce.Actual)
	}
	// An empty append checks the condition against the head too.
	if r, err := a.Append(ctx, stream, eventstore.Exactly(5), nil); err != nil || r.Version != 5 {
		t.Fatalf("empty append at the head: %+v %v", r, err)
	}
	// And a's appends are b's reads.
	mine := newEvents(1, "A")
	mustAppend(t, a, stream, eventstore.Exactly(5), mine)
	checkSame(t, mustRead(t, b, stream, 6, 10), mine, stream, 6)
}
