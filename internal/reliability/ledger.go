// Package reliability proves that seatledger loses nothing and lets no one
// in: a client that records what it was told (Ledger, Client), and an
// invariant checker (Check) run after every scenario of the package's tests
// — load, contention, crashes (SIGKILL of the real binary), Redis faults and
// disk faults. docs/RELIABILITY.md has the table of what they found.
package reliability

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
)

// Outcome is what a client was told about a command.
type Outcome int

const (
	// InDoubt: the connection dropped or the server answered 5xx; the
	// command may or may not be in the log until it is retried with its
	// Idempotency-Key.
	InDoubt Outcome = iota
	// Acked: 2xx with {"version","events"}.
	Acked
	// Refused: 4xx; nothing may be written.
	Refused
)

func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Refused:
		return "refused"
	}
	return "in-doubt"
}

// Entry is one command a client sent (and maybe retried), by its command id
// (api.CommandID of tenant, actor and Idempotency-Key).
type Entry struct {
	CommandID string
	Tenant    string
	Actor     domain.Actor
	Key       string
	Method    string
	Path      string
	Body      []byte
	Token     string

	Outcome Outcome
	Status  int
	Code    string // problem code of a refusal
	Version uint64
	// EventIDs are the eventIds of the acknowledged answer, in order.
	EventIDs []string
	// Answer is the raw body of the first 2xx.
	Answer []byte
	Sends  int
}

// Ledger records every command the clients of a scenario sent and what they
// were told. Safe for concurrent use.
type Ledger struct {
	mu         sync.Mutex
	entries    map[string]*Entry
	violations []string
	noop       []string
}

// NoopIdempotency explains the known issue the ledger and Check report
// apart from violations: a command acknowledged without events (a no-op:
// assigning a license the user already has) leaves no trace in the log, so
// the tenant cannot remember its command id; resent with the same
// Idempotency-Key later, it is decided again and may answer another
// version, be refused, or even append events.
const NoopIdempotency = "no-op commands (acknowledged with 0 events) are not remembered for idempotent replay"

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{entries: map[string]*Entry{}} }

// record merges the result of one send of e's command.
func (l *Ledger) record(e Entry, status int, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.entries[e.CommandID]
	if cur == nil {
		cp := e
		cp.Outcome = InDoubt
		cur = &cp
		l.entries[e.CommandID] = cur
	}
	cur.Sends++
	switch {
	case status >= 200 && status < 300:
		var a api.CommandAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			l.violations = append(l.violations, fmt.Sprintf("%s %s: 2xx that is not a command answer: %s", e.Method, e.Path, body))
			return
		}
		ids := make([]string, 0, len(a.Events))
		for _, raw := range a.Events {
			var env struct {
				EventID string `json:"eventId"`
			}
			_ = json.Unmarshal(raw, &env)
			ids = append(ids, env.EventID)
		}
		if cur.Outcome == Acked {
			// A retry of an acknowledged command must get the same answer.
			if a.Version != cur.Version || fmt.Sprint(ids) != fmt.Sprint(cur.EventIDs) {
				l.note(cur, fmt.Sprintf("%s %s key %s: retry answered version %d events %v, first answer version %d events %v",
					e.Method, e.Path, e.Key, a.Version, ids, cur.Version, cur.EventIDs))
			}
			return
		}
		if cur.Outcome == Refused {
			l.violations = append(l.violations, fmt.Sprintf("%s %s key %s: refused (%d %s) then acknowledged", e.Method, e.Path, e.Key, cur.Status, cur.Code))
		}
		cur.Outcome, cur.Status, cur.Version, cur.EventIDs, cur.Answer = Acked, status, a.Version, ids, body
	case status >= 400 && status < 500:
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(body, &p)
		if cur.Outcome == Acked {
			l.note(cur, fmt.Sprintf("%s %s key %s: acknowledged then refused %d %s", e.Method, e.Path, e.Key, status, p.Code))
			return
		}
		cur.Outcome, cur.Status, cur.Code = Refused, status, p.Code
	default:
		// 5xx or no answer: stays in doubt unless an earlier send settled it.
		if cur.Outcome == InDoubt {
			cur.Status = status
		}
	}
}

// note records a contradiction: a known issue when the first answer was a
// no-op, else a violation. l.mu is held.
func (l *Ledger) note(first *Entry, msg string) {
	if len(first.EventIDs) == 0 {
		l.noop = append(l.noop, msg)
		return
	}
	l.violations = append(l.violations, msg)
}

// NoopIssues are contradictions of no-op commands (see NoopIdempotency).
func (l *Ledger) NoopIssues() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.noop...)
}

// Entries returns a copy of every entry, sorted by command id.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CommandID < out[j].CommandID })
	return out
}

// InDoubt returns the entries still in doubt.
func (l *Ledger) InDoubt() []Entry {
	var out []Entry
	for _, e := range l.Entries() {
		if e.Outcome == InDoubt {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many entries have each outcome.
func (l *Ledger) Count() map[Outcome]int {
	m := map[Outcome]int{}
	for _, e := range l.Entries() {
		m[e.Outcome]++
	}
	return m
}

// Violations are contradictions between answers to the same command.
func (l *Ledger) Violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.violations...)
}
