package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/rebuild"
	"github.com/seatledger/seatledger/tenantstream"
)

// ReadSide names the Redis read models to compare with the log.
type ReadSide struct {
	Redis  redis.UniversalClient
	Prefix string
}

// Report is the outcome of Check.
type Report struct {
	Tenants, Events       int
	Acked, Refused, Doubt int
	ReadModelKeys         int
	Violations            []string
	// KnownIssues are findings of NoopIdempotency: not counted as
	// violations until it is fixed (see the tests' strict mode).
	KnownIssues []string
}

// OK reports whether no invariant was violated.
func (r Report) OK() bool { return len(r.Violations) == 0 }

func (r Report) String() string {
	return fmt.Sprintf("%d tenants, %d events, commands: %d acked, %d refused, %d in doubt; %d read-model keys; %d violations; %d known issues",
		r.Tenants, r.Events, r.Acked, r.Refused, r.Doubt, r.ReadModelKeys, len(r.Violations), len(r.KnownIssues))
}

// maxViolations bounds a report.
const maxViolations = 50

// Check verifies, over the whole event log:
//
//   - every tenant's every product has 0 ≤ assigned ≤ total (also for the
//     self-service pool), from the fold of the log (tenantstream.Fold);
//   - every acknowledged command of l is in the log exactly once: the events
//     carrying its command id are exactly the answer's, at the versions the
//     answer gave, in the tenant's stream;
//   - no event in the log belongs to a command no client was acknowledged:
//     a refused command wrote nothing, a command still in doubt wrote
//     nothing (retry in-doubt commands before Check, see Client.Send), and
//     no command id is unknown (foreign, if given, accepts command ids that
//     clients outside l wrote, e.g. the scheduler);
//   - the ledger's answers never contradict each other (Ledger.Violations);
//   - rs, if given, holds exactly what the fold renders
//     (rebuild.Verify): call it when the projection has caught up
//     (WaitProjection).
//
// l may be nil: only the fold and the read models are checked.
func Check(ctx context.Context, store eventstore.Store, l *Ledger, rs *ReadSide, foreign func(commandID string) bool) (Report, error) {
	var rep Report
	violate := func(format string, args ...any) {
		if len(rep.Violations) < maxViolations {
			rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
		}
	}
	type loc struct {
		stream  string
		version uint64
		eventID string
	}
	byCommand := map[string][]loc{}
	tenants := map[string]bool{}
	after := eventstore.Start
	for {
		evs, err := store.ReadAll(ctx, after, 4096)
		if err != nil {
			return rep, fmt.Errorf("read the log: %w", err)
		}
		for _, e := range evs {
			after = e.Position
			rep.Events++
			t, ok := tenantstream.TenantID(e.Stream)
			if !ok {
				continue
			}
			tenants[t] = true
			var env struct {
				EventID   string `json:"eventId"`
				CommandID string `json:"commandId"`
				Version   uint64 `json:"version"`
			}
			if err := json.Unmarshal(e.Data, &env); err != nil {
				violate("%s v%d: envelope does not decode: %v", e.Stream, e.Version, err)
				continue
			}
			if env.Version != e.Version {
				violate("%s v%d: envelope says version %d", e.Stream, e.Version, env.Version)
			}
			byCommand[env.CommandID] = append(byCommand[env.CommandID], loc{e.Stream, e.Version, env.EventID})
		}
		if len(evs) < 4096 {
			break
		}
	}
	rep.Tenants = len(tenants)

	// Pools, from the fold.
	names := make([]string, 0, len(tenants))
	for t := range tenants {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		st, err := tenantstream.Fold(ctx, store, nil, nil, t, 0)
		if err != nil {
			return rep, fmt.Errorf("fold %s: %w", t, err)
		}
		for sku, p := range st.Pools {
			if p.Assigned < 0 || p.Assigned > p.Total {
				violate("tenant %s product %s: assigned %d of total %d", t, sku, p.Assigned, p.Total)
			}
			if p.SelfServiceAssigned < 0 || p.SelfServiceAssigned > p.SelfServiceTotal {
				violate("tenant %s product %s: self-service assigned %d of %d", t, sku, p.SelfServiceAssigned, p.SelfServiceTotal)
			}
		}
	}

	// The ledger against the log.
	if l != nil {
		for _, v := range l.Violations() {
			violate("answers: %s", v)
		}
		for _, v := range l.NoopIssues() {
			rep.KnownIssues = append(rep.KnownIssues, "answers: "+v)
		}
		known := map[string]bool{}
		for _, e := range l.Entries() {
			known[e.CommandID] = true
			got := byCommand[e.CommandID]
			switch e.Outcome {
			case Acked:
				rep.Acked++
				stream := tenantstream.Name(e.Tenant)
				if len(got) != len(e.EventIDs) {
					if len(e.EventIDs) == 0 && e.Sends > 1 {
						rep.KnownIssues = append(rep.KnownIssues, fmt.Sprintf("%s %s key %s: acknowledged as a no-op at version %d, resent, the log now has %d of its events",
							e.Method, e.Path, e.Key, e.Version, len(got)))
						continue
					}
					violate("%s %s key %s: acknowledged %d events at version %d, the log has %d", e.Method, e.Path, e.Key, len(e.EventIDs), e.Version, len(got))
					continue
				}
				first := e.Version + 1 - uint64(len(got))
				for i, g := range got {
					if g.stream != stream || g.version != first+uint64(i) || g.eventID != e.EventIDs[i] {
						violate("%s %s key %s: event %d is %s v%d %s, acknowledged %s v%d %s", e.Method, e.Path, e.Key, i,
							g.stream, g.version, g.eventID, stream, first+uint64(i), e.EventIDs[i])
						break
					}
				}
			case Refused:
				rep.Refused++
				if len(got) > 0 {
					violate("%s %s key %s: refused (%d %s) but the log has %d of its events", e.Method, e.Path, e.Key, e.Status, e.Code, len(got))
				}
			default:
				rep.Doubt++
				if len(got) > 0 {
					violate("%s %s key %s: in doubt (status %d) but the log has %d of its events: retry it", e.Method, e.Path, e.Key, e.Status, len(got))
				}
			}
		}
		for id, locs := range byCommand {
			if !known[id] && (foreign == nil || !foreign(id)) {
				violate("command %s: %d events (%s v%d) that no client was told about", id, len(locs), locs[0].stream, locs[0].version)
			}
		}
	}

	if rs != nil {
		vr, err := rebuild.Verify(ctx, store, rs.Redis, rs.Prefix, rebuild.VerifyOptions{MaxDifferences: 20})
		if err != nil {
			return rep, fmt.Errorf("verify read models: %w", err)
		}
		rep.ReadModelKeys = vr.Keys
		for _, d := range vr.Differences {
			violate("read model: %s", d)
		}
	}
	return rep, nil
}

// WaitProjection waits until the projection name's checkpoint under prefix
// reaches the store's last position (the embedded store tells it).
func WaitProjection(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, prefix, name string, timeout time.Duration) error {
	h, ok := store.(interface{ LastPosition() eventstore.Position })
	if !ok {
		return errors.New("the store does not tell its last position")
	}
	head := h.LastPosition()
	key := readmodel.Keys{Prefix: prefix}.Checkpoint(name)
	deadline := time.Now().Add(timeout)
	for {
		v, err := rdb.Get(ctx, key).Uint64()
		if (err == nil || errors.Is(err, redis.Nil)) && eventstore.Position(v) >= head {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("projection %s at %d, head %d after %s (last error: %v)", name, v, head, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
