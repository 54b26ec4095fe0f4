package queries

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/readmodel"
)

// pipelineHook runs before (or after) each pipeline of the client it is
// added to, with the pipeline's commands.
type pipelineHook struct {
	before, after func(cmds []redis.Cmder)
}

func (h *pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.before != nil {
			h.before(cmds)
		}
		err := next(ctx, cmds)
		if h.after != nil {
			h.after(cmds)
		}
		return err
	}
}

// isApplied reports whether cmds are applied's pipeline (the Present
// marker, then the tenant's applied version).
func isApplied(cmds []redis.Cmder) bool {
	return len(cmds) == 2 && strings.EqualFold(cmds[0].Name(), "exists") && strings.EqualFold(cmds[1].Name(), "hget")
}

// contosoAt starts an in-process Redis holding complete read models of
// tenant contoso, with no users, at version under each of prefixes, and
// returns it with a client for the test's own writes.
func contosoAt(t *testing.T, version int, prefixes ...readmodel.Keys) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	ctx := context.Background()
	setup := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = setup.Close() })
	for _, k := range prefixes {
		must(t, setup.Set(ctx, k.Present(), "x", 0).Err())
		must(t, setup.SAdd(ctx, k.Tenants(), "contoso").Err())
		must(t, setup.HSet(ctx, k.Key("contoso", readmodel.Meta), "id", "contoso", "name", "Contoso", "version", version).Err())
	}
	return mr, setup
}

// TestCheckedWaitSharesTheQueryBound: a query that waited for ?minVersion
// and then read "not found" from read models behind Options.Checked waits
// for Checked only within what is left of the one bound docs/API.md gives
// (≤ 5 s with ?minVersion, ≤ 1 s without), not a second bound of its own.
// Here the read models reach minVersion only once MaxWait has passed: the
// query answers 503 at once rather than waiting (up to MaxWait again) for
// Checked. Before, answer's second begin started a fresh deadline, and a
// query could wait twice the documented bound.
func TestCheckedWaitSharesTheQueryBound(t *testing.T) {
	ctx := context.Background()
	k := readmodel.Keys{Prefix: readmodel.DefaultPrefix}
	mr, setup := contosoAt(t, 5, k)
	setVersion := func(v int) {
		must(t, setup.HSet(ctx, k.Key("contoso", readmodel.Meta), "version", v).Err())
	}

	const maxWait = 50 * time.Millisecond
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	// The projection: version 6 once the query's MaxWait has passed (the
	// first poll is after its deadline was set), then version 8 at the
	// second poll after that, should the query still poll.
	var (
		first  time.Time
		phase  atomic.Int32
		polled int
	)
	rdb.AddHook(&pipelineHook{before: func(cmds []redis.Cmder) {
		if !isApplied(cmds) {
			return
		}
		switch phase.Load() {
		case 0:
			if first.IsZero() {
				first = time.Now()
			}
			if time.Since(first) > maxWait {
				setVersion(6)
				phase.Store(1)
			}
		case 1:
			if polled++; polled == 2 { // the wait for Checked polls a second time
				setVersion(8)
				phase.Store(2)
			}
		}
	}})
	svc := New(Config{Redis: rdb, MaxWait: maxWait, StaleWait: maxWait, PollInterval: time.Millisecond})
	_, err := svc.User(ctx, "contoso", "bob", Options{MinVersion: 6, Checked: 8})
	wantErr(t, err, kindUnavailable)
}

// TestTenantListKeepsUpWithABusyTenant: the tenant list holds each row to
// what the Service answered for its tenant before the list read it, as a
// tenant's own queries do (begin reads the version answered before its
// reads). Answers of the tenant that end while the list reads, at
// versions the projection applied meanwhile, are not "before" it. Here
// every time the list reads, the projection applies an event of contoso
// and a query of contoso answers it: the list answers at once. Before,
// it compared its rows with what was answered after it read them, found
// each row "behind" and read again, until StaleWait ran out: 503 for as
// long as the tenant was busy.
func TestTenantListKeepsUpWithABusyTenant(t *testing.T) {
	ctx := context.Background()
	k := readmodel.Keys{Prefix: readmodel.DefaultPrefix}
	mr, setup := contosoAt(t, 5, k)

	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	svc := New(Config{Redis: rdb, StaleWait: 50 * time.Millisecond, PollInterval: time.Millisecond})
	var inside atomic.Bool
	rdb.AddHook(&pipelineHook{after: func(cmds []redis.Cmder) {
		// After the list's summaries pipeline (HMGET of a meta), not the
		// tenant query's own.
		if len(cmds) == 0 || !strings.EqualFold(cmds[0].Name(), "hmget") || !inside.CompareAndSwap(false, true) {
			return
		}
		defer inside.Store(false)
		must(t, setup.HIncrBy(ctx, k.Key("contoso", readmodel.Meta), "version", 1).Err())
		if _, err := svc.Tenant(ctx, "contoso", Options{}); err != nil {
			t.Errorf("the tenant's own query: %v", err)
		}
	}})
	l, err := svc.Tenants(ctx, Options{})
	must(t, err)
	if len(l.Value) != 1 || l.Value[0].Version < 5 {
		t.Fatalf("the list: %+v", l.Value)
	}
}

// TestTenantListFailsOnAFailedCount: a count the tenant list could not
// read fails the page (503), as before the list read each row's version
// again. That HGET answers redis.Nil for a tenant in the set without read
// models; the pipeline's error is its first command's, so the list took
// the page's error for that Nil and answered a failed count as 0 users.
func TestTenantListFailsOnAFailedCount(t *testing.T) {
	mr := miniredis.RunT(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	k := readmodel.Keys{Prefix: readmodel.DefaultPrefix}
	must(t, rdb.Set(ctx, k.Present(), "x", 0).Err())
	// "adatum" is in the set only; contoso's users index cannot be counted.
	must(t, rdb.SAdd(ctx, k.Tenants(), "adatum", "contoso").Err())
	must(t, rdb.HSet(ctx, k.Key("contoso", readmodel.Meta), "id", "contoso", "name", "Contoso", "version", 5).Err())
	must(t, rdb.Set(ctx, k.Key("contoso", readmodel.UsersIndex), "not a sorted set", 0).Err())
	svc := New(Config{Redis: rdb, StaleWait: 10 * time.Millisecond, PollInterval: time.Millisecond})
	l, err := svc.Tenants(ctx, Options{})
	if err == nil {
		t.Fatalf("the list answered %+v", l.Value)
	}
	wantErr(t, err, kindUnavailable)
}
