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

// applyDuringRead is a Redis hook that runs apply once, just before the
// first pipeline that reads a tenant's summary (HMGET of its meta): the
// projection applying an event between a query's begin and its reads.
type applyDuringRead struct {
	apply func()
	done  atomic.Bool
}

func (h *applyDuringRead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *applyDuringRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *applyDuringRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if strings.EqualFold(c.Name(), "hmget") && h.done.CompareAndSwap(false, true) {
				h.apply()
			}
		}
		return next(ctx, cmds)
	}
}

// TestNoReadGoesBackBehindWhatItRead: an answer may hold what the
// projection applied while the query read (it reads after begin saw the
// version); the Service remembers the version the read models had when
// the reads were done, not the one before. So a replay's prefix swapped
// in at the version begin saw, one event behind what was answered, is
// not answered from (503 after StaleWait) until it has caught up. Before,
// the Service remembered begin's version, and the next answer went back
// in time: a user the first answer counted was gone from the second.
func TestNoReadGoesBackBehindWhatItRead(t *testing.T) {
	ctx := context.Background()
	// Two complete prefixes of tenant contoso at version 5, no users.
	oldKeys, newKeys := readmodel.Keys{Prefix: "sl:r1:"}, readmodel.Keys{Prefix: "sl:r2:"}
	mr, setup := contosoAt(t, 5, oldKeys, newKeys)
	must(t, readmodel.SetActivePrefix(ctx, setup, oldKeys.Prefix))

	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	// Version 6 adds a user, applied to the live prefix while the first
	// query reads.
	rdb.AddHook(&applyDuringRead{apply: func() {
		must(t, setup.ZAdd(ctx, oldKeys.Key("contoso", readmodel.UsersIndex), redis.Z{Member: "alice"}).Err())
		must(t, setup.HSet(ctx, oldKeys.Key("contoso", readmodel.Meta), "version", 6).Err())
	}})
	svc := New(Config{Redis: rdb, PrefixTTL: time.Nanosecond, StaleWait: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	first, err := svc.Tenant(ctx, "contoso", Options{})
	must(t, err)
	if first.Value.Users != 1 {
		t.Fatalf("the first answer should hold what was applied during its read: %+v", first)
	}

	// A replay swaps in its prefix, caught up to version 5 only.
	must(t, readmodel.SetActivePrefix(ctx, setup, newKeys.Prefix))
	second, err := svc.Tenant(ctx, "contoso", Options{})
	if err == nil {
		t.Fatalf("answered %d users at version %d after answering %d users: back in time", second.Value.Users, second.Version, first.Value.Users)
	}
	wantErr(t, err, kindUnavailable)

	// The new prefix catches up: answered again.
	must(t, setup.ZAdd(ctx, newKeys.Key("contoso", readmodel.UsersIndex), redis.Z{Member: "alice"}).Err())
	must(t, setup.HSet(ctx, newKeys.Key("contoso", readmodel.Meta), "version", 6).Err())
	third, err := svc.Tenant(ctx, "contoso", Options{})
	must(t, err)
	if third.Value.Users != 1 || third.Version != 6 {
		t.Fatalf("after catching up: %+v", third)
	}
}

// TestTenantListGoesNotBackInTime: the operator's tenant list answers
// each tenant's applied version and counts; it is an answer of each of
// those tenants. A row older than what the Service answered for its
// tenant is not answered (503 after StaleWait), and what a row showed is
// remembered, so GET /tenants/{t} after it is not older either. Before,
// the list neither checked nor remembered: after a replay swapped in a
// prefix one event behind, the list and the tenant's own answer could
// each go back behind the other.
func TestTenantListGoesNotBackInTime(t *testing.T) {
	mr := miniredis.RunT(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ahead, behind := readmodel.Keys{Prefix: "sl:r1:"}, readmodel.Keys{Prefix: "sl:r2:"}
	for k, v := range map[readmodel.Keys]int{ahead: 6, behind: 5} {
		must(t, rdb.Set(ctx, k.Present(), "x", 0).Err())
		must(t, rdb.SAdd(ctx, k.Tenants(), "contoso").Err())
		must(t, rdb.HSet(ctx, k.Key("contoso", readmodel.Meta), "id", "contoso", "name", "Contoso", "version", v).Err())
	}
	must(t, rdb.ZAdd(ctx, ahead.Key("contoso", readmodel.UsersIndex), redis.Z{Member: "alice"}).Err())
	newService := func() *Service {
		return New(Config{Redis: rdb, PrefixTTL: time.Nanosecond, StaleWait: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	}

	// The tenant's answer, then the list.
	svc := newService()
	must(t, readmodel.SetActivePrefix(ctx, rdb, ahead.Prefix))
	if a, err := svc.Tenant(ctx, "contoso", Options{}); err != nil || a.Value.Users != 1 {
		t.Fatalf("the tenant at version 6: %+v %v", a, err)
	}
	must(t, readmodel.SetActivePrefix(ctx, rdb, behind.Prefix))
	if l, err := svc.Tenants(ctx, Options{}); err == nil {
		t.Fatalf("the list answered %+v after the tenant was answered at version 6", l.Value)
	} else {
		wantErr(t, err, kindUnavailable)
	}

	// The list, then the tenant's answer.
	svc = newService()
	must(t, readmodel.SetActivePrefix(ctx, rdb, ahead.Prefix))
	if l, err := svc.Tenants(ctx, Options{}); err != nil || len(l.Value) != 1 || l.Value[0].Version != 6 {
		t.Fatalf("the list at version 6: %+v %v", l, err)
	}
	must(t, readmodel.SetActivePrefix(ctx, rdb, behind.Prefix))
	if a, err := svc.Tenant(ctx, "contoso", Options{}); err == nil {
		t.Fatalf("the tenant answered at version %d (%d users) after the list showed version 6", a.Version, a.Value.Users)
	} else {
		wantErr(t, err, kindUnavailable)
	}

	// Caught up: both answer.
	must(t, rdb.HSet(ctx, behind.Key("contoso", readmodel.Meta), "version", 6).Err())
	if _, err := svc.Tenants(ctx, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Tenant(ctx, "contoso", Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestNotFoundWaitsForTheCheckedVersion: with Options.Checked (a version
// the caller saw on the command side), "not found" is answered only from
// read models that have applied it: a user missing from read models
// behind it is unavailable, not absent; once they have caught up, the
// user, or "not found" for one the tenant does not have. What is found
// is answered without waiting.
func TestNotFoundWaitsForTheCheckedVersion(t *testing.T) {
	mr := miniredis.RunT(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	k := readmodel.Keys{Prefix: readmodel.DefaultPrefix}
	must(t, rdb.Set(ctx, k.Present(), "x", 0).Err())
	must(t, rdb.HSet(ctx, k.Key("contoso", readmodel.Meta), "id", "contoso", "name", "Contoso", "version", 5).Err())
	svc := New(Config{Redis: rdb, StaleWait: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond})

	// The tenant is found at version 5, though the caller checked 7.
	if a, err := svc.Tenant(ctx, "contoso", Options{Checked: 7}); err != nil || a.Version != 5 {
		t.Fatalf("found: %+v %v", a, err)
	}
	_, err := svc.User(ctx, "contoso", "bob", Options{Checked: 7})
	wantErr(t, err, kindUnavailable)
	// Without Checked, the read models' answer stands.
	_, err = svc.User(ctx, "contoso", "bob", Options{})
	wantErr(t, err, kindNotFound)
	// A tenant the read models do not have, which the caller saw.
	_, err = svc.Tenant(ctx, "fabrikam", Options{Checked: 2})
	wantErr(t, err, kindUnavailable)

	must(t, rdb.HSet(ctx, k.Key("contoso", readmodel.Meta), "version", 7).Err())
	_, err = svc.User(ctx, "contoso", "bob", Options{Checked: 7})
	wantErr(t, err, kindNotFound)
}
