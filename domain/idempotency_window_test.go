package domain

import (
	"fmt"
	"testing"
)

// A tenant remembers at least its last CommandHistory keyed commands (up to
// twice as many), the same whether folded from its first event or from a
// snapshot taken anywhere on the way; docs/API.md states the window.
func TestIdempotencyWindowKeepsTheLastCommandHistoryCommands(t *testing.T) {
	keyed := func(i int) Event {
		return Event{Envelope: Envelope{Version: uint64(i + 1), CommandID: fmt.Sprint("k", i), RequestHash: "h"}, Payload: NothingChanged{Command: "X"}}
	}
	const n = 3*CommandHistory + 7
	whole := NewTenant()
	var fromSnap *Tenant
	for i := range n {
		Evolve(whole, keyed(i))
		if i == CommandHistory+CommandHistory/2 {
			b, err := whole.MarshalSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			if fromSnap, err = UnmarshalSnapshot(b); err != nil {
				t.Fatal(err)
			}
		} else if fromSnap != nil {
			Evolve(fromSnap, keyed(i))
		}
		if i%997 == 0 || i == n-1 {
			// Every one of the last CommandHistory keys is remembered.
			for j := max(0, i-CommandHistory+1); j <= i; j++ {
				if _, ok := whole.CommandRecord(fmt.Sprint("k", j)); !ok {
					t.Fatalf("after %d commands, key %d (of the last %d) is forgotten", i+1, j, CommandHistory)
				}
			}
			if len(whole.Commands) >= 2*CommandHistory {
				t.Fatalf("after %d commands the tenant remembers %d", i+1, len(whole.Commands))
			}
		}
	}
	if len(fromSnap.Commands) != len(whole.Commands) || len(fromSnap.CommandLog) != len(whole.CommandLog) {
		t.Fatalf("from a snapshot the tenant remembers %d commands, from scratch %d", len(fromSnap.Commands), len(whole.Commands))
	}
	for id := range whole.Commands {
		if _, ok := fromSnap.Commands[id]; !ok {
			t.Fatalf("key %s remembered from scratch, not from a snapshot", id)
		}
	}
	// The oldest keys are forgotten: their request would be decided anew.
	if _, ok := whole.CommandRecord("k0"); ok {
		t.Fatal("key 0 is remembered after three windows")
	}
}
