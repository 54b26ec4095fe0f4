package domain

import (
	"strings"
	"testing"
	"time"
)

// A decided event's id costs one allocation, its string, whoever decided:
// the scheduler's purges and lifecycle steps (a system actor) write up to
// a batch of events per command.
func TestADecidedEventIDCostsOneAllocationForEveryActor(t *testing.T) {
	actors := []Actor{{UserID: "admin"}, {System: "scheduler"}, {UserID: "Operator"}, {Operator: true}}
	for _, a := range actors {
		if got := string(a.appendString([]byte("x"))); got != "x"+a.String() {
			t.Errorf("%+v appended as %q, its String is %q", a, got, a.String())
		}
	}
	if raceEnabled {
		return
	}
	for _, a := range actors {
		m := &CommandMeta{TenantID: strings.Repeat("t", 64), CommandID: "cmd-" + strings.Repeat("c", 60), Actor: a,
			Now: time.Date(2026, 12, 8, 1, 2, 3, 456789012, time.UTC), CorrelationID: strings.Repeat("r", 36), RequestHash: strings.Repeat("h", 64)}
		if n := testing.AllocsPerRun(100, func() { _ = decisionEventID(m.TenantID, m, 7) }); n != 1 {
			t.Errorf("decided by %s: %v allocations per event id, want 1", a, n)
		}
	}
}
