package rebuild

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
)

// replayDB is the Redis database of the tests that read or swap the active
// prefix (a single key, readmodel.ActivePrefixKey): kept away from database 0, which
// other packages' tests and a local server use.
const replayDB = 3 // its own: cmd/seatledger's multi-node test flushes database 13

// testRedisReplay is testRedis on replayDB; the active-prefix key is removed
// at the end too.
func testRedisReplay(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	return testRedisReplayOn(t, redistest.Single)
}

// testRedisReplayOn is testRedisReplay on a Redis of kind k; on the
// cluster, which has database 0 only, the test holds redistest.Exclusive.
func testRedisReplayOn(t testing.TB, k redistest.Kind) (redis.UniversalClient, string) {
	t.Helper()
	rdb := redistest.Open(t, k, replayDB)
	redistest.Exclusive(t, rdb)
	prefix := redistest.Prefix("")
	t.Cleanup(func() {
		deletePrefix(rdb, prefix)
		rdb.Del(context.Background(), readmodel.ActivePrefixKey)
		rdb.Del(context.Background(), ReplayLockKey)
	})
	return rdb, prefix
}

// churn runs n random commands on tenants t00…, days apart (so that held
// data can be purged): every kind of change the read models show.
func churn(t testing.TB, h *commands.Handler, tenants, n int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 9))
	now := time.Now().UTC()
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	users := []string{"u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09", "u10", "u11", "u12", "admin"}
	skus := []string{"SPE_E3", "POWER_BI_PRO", "EXCHANGESTANDARD", "VISIOCLIENT", "SPB"}
	for i := 0; i < n; i++ {
		now = now.Add(time.Duration(rng.IntN(72)) * time.Hour)
		s := &scenario{t: t, h: h, tenant: fmt.Sprintf("t%02d", rng.IntN(tenants)), rng: rng, admin: domain.Actor{UserID: "admin"}}
		m := s.meta()
		m.Now = now
		u, g, sku := pick(users...), pick("g1", "g2", "g3"), pick(skus...)
		var c domain.Command
		switch rng.IntN(20) {
		case 0:
			c = &domain.AssignLicenses{CommandMeta: m, SkuID: sku, Users: []string{u, pick(users...)}}
		case 1:
			c = &domain.UnassignLicenses{CommandMeta: m, SkuID: sku, Users: []string{u}}
		case 2:
			c = &domain.AddGroupMember{CommandMeta: m, GroupID: g, UserID: u}
		case 3:
			c = &domain.RemoveGroupMember{CommandMeta: m, GroupID: g, UserID: u}
		case 4:
			c = &domain.AssignGroupLicenses{CommandMeta: m, GroupID: g, Add: []domain.LicenseRequest{{SkuID: sku}}}
		case 5:
			c = &domain.AssignGroupLicenses{CommandMeta: m, GroupID: g, Remove: []string{sku}}
		case 6:
			c = &domain.CreateGroup{CommandMeta: m, GroupID: g, DisplayName: "Group " + g}
		case 7:
			c = &domain.DeleteUser{CommandMeta: m, UserID: u}
		case 8:
			c = &domain.RestoreUser{CommandMeta: m, UserID: u}
		case 9:
			c = &domain.SetRetentionHold{CommandMeta: m, UserID: u, Enabled: rng.IntN(2) == 0}
		case 10:
			c = &domain.ChangeLicensePlans{CommandMeta: m, UserID: u, SkuID: sku, DisabledPlans: []string{pick("SWAY", "FORMS_PLAN_E3", "EXCHANGE_S_ENTERPRISE")}}
		case 11:
			c = &domain.UpdateUser{CommandMeta: m, UserID: u, DisplayName: fmt.Sprint("Renamed <", i, "> & \"u00e9"), UsageLocation: pick("US", "FR", "")}
		case 12:
			c = &domain.ChangeSubscriptionQuantity{CommandMeta: m, SubscriptionID: pick("s1", "s2", "s3", "s4", "s6"), Quantity: rng.IntN(12)}
		case 13:
			c = &domain.ChangeSubscriptionStatus{CommandMeta: m, SubscriptionID: pick("s1", "s2", "s3", "s4", "s5", "s6"),
				Status: pick(domain.StatusEnabled, domain.StatusWarning, domain.StatusSuspended, domain.StatusDeleted)}
		case 14:
			c = &domain.PurchaseSubscription{CommandMeta: m, SubscriptionID: fmt.Sprint("p", i), SkuID: sku, Quantity: 1 + rng.IntN(5)}
		case 15:
			m.Actor = domain.Actor{System: "scheduler"}
			c = &domain.PurgeHeldData{CommandMeta: m, UserID: u, Workload: pick("Exchange", "OneDrive")}
		case 16:
			c = &domain.ManageLicenses{CommandMeta: m, Users: []string{u}, Mode: pick(domain.ModeAssignMore, domain.ModeReplace, domain.ModeUnassignAll),
				Add: []domain.LicenseRequest{{SkuID: sku}}}
		case 17:
			c = &domain.SetAdminRoles{CommandMeta: m, UserID: u, Roles: []domain.Role{domain.RoleLicenseAdmin}}
		case 18:
			c = &domain.AddUser{CommandMeta: m, User: domain.NewUser{ID: fmt.Sprint("n", i), UserPrincipalName: fmt.Sprint("n", i, "@x.example"),
				DisplayName: "New", UsageLocation: "US"}}
		default:
			c = &domain.UpdateUserLicenses{CommandMeta: m, UserID: u, Add: []domain.LicenseRequest{{SkuID: sku}}, Remove: []string{pick(skus...)}}
		}
		s.do(c)
	}
}

func requireSame(t *testing.T, rdb redis.UniversalClient, a, b string) {
	t.Helper()
	diffs, err := readmodel.ComparePrefixes(context.Background(), rdb, a, b, 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s differs:\n  %s: %q\n  %s: %q", d.Key, a, d.A, b, d.B)
	}
	da, err := readmodel.DumpPrefix(context.Background(), rdb, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(da) < 20 {
		t.Fatalf("only %d keys under %s", len(da), a)
	}
}

// TestReplayMatchesLiveByteForByte is the audit: the live projection's read
// models and a bulk replay's are the same bytes, key by key.
func TestReplayMatchesLiveByteForByte(t *testing.T) {
	redistest.Each(t, testReplayMatchesLiveByteForByte)
}

func testReplayMatchesLiveByteForByte(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	for i := range 6 {
		runScenario(t, h, fmt.Sprintf("t%02d", i), uint64(100+i))
	}
	a := prefix + "a:"
	rp := startProjection(t, projections.Config{Store: store, Snapshots: store, Redis: rdb, Prefix: a, BatchSize: 16, CacheSize: 2})
	// More random commands while the live projection runs (it sees them in
	// small batches, the replay all at once).
	churn(t, h, 6, 600, 42)
	rp.waitFor(t, lastPosition(t, store))
	if err := rp.shutdown(); err != nil {
		t.Fatal(err)
	}
	verifyClean(t, store, rdb, a)

	for _, tc := range []struct {
		name string
		cfg  ReplayConfig
	}{
		{"all-in-memory", ReplayConfig{}},
		{"one-worker-small-batches", ReplayConfig{Workers: 1, BatchSize: 7}},
		{"evicting", ReplayConfig{Workers: 2, BatchSize: 33, MaxTenants: 2}},
		{"heap-bounded", ReplayConfig{Workers: 2, BatchSize: 33, MaxHeap: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := prefix + tc.name + ":"
			cfg := tc.cfg
			cfg.Store, cfg.Snapshots, cfg.Redis, cfg.NewPrefix, cfg.NoSwap = store, store, rdb, b, true
			if cfg.MaxHeap > 0 {
				runtime.GC() // a live heap measured
			}
			res, err := replay(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Swapped || res.Tenants != 6 || res.Position != lastPosition(t, store) {
				t.Fatalf("result %+v", res)
			}
			if evicting := cfg.MaxTenants > 0 || cfg.MaxHeap > 0; evicting != (res.Evictions > 0) {
				t.Fatalf("%d evictions", res.Evictions)
			}
			requireSame(t, rdb, a, b)
			verifyClean(t, store, rdb, b)
		})
	}
}

// TestReplayTailAndEmptyLog: events appended during the bulk pass are
// projected before the result; an empty log replays to an empty prefix.
func TestReplayTailAndEmptyLog(t *testing.T) { redistest.Each(t, testReplayTailAndEmptyLog) }

func testReplayTailAndEmptyLog(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	store := openStore(t)
	b := prefix + "empty:"
	res, err := replay(ctx, ReplayConfig{Store: store, Redis: rdb, NewPrefix: b, NoSwap: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 0 || res.Tenants != 0 {
		t.Fatalf("result %+v", res)
	}
	// One replay at a time.
	if err := rdb.Set(ctx, ReplayLockKey, "someone", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := replay(ctx, ReplayConfig{Store: store, Redis: rdb, NewPrefix: b, NoSwap: true}); !errors.Is(err, ErrReplayRunning) {
		t.Fatalf("second replay: %v", err)
	}
	rdb.Del(ctx, ReplayLockKey)

	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "first", 1)
	var once sync.Once
	done := make(chan struct{})
	b = prefix + "tail:"
	res, err = replay(ctx, ReplayConfig{Store: store, Snapshots: store, Redis: rdb, NewPrefix: b, NoSwap: true, BatchSize: 16,
		ProgressInterval: time.Millisecond,
		Progress: func(p ReplayProgress) {
			if p.Phase == PhaseBulk {
				once.Do(func() {
					// Appended while the bulk pass runs: the tail projection
					// or the pass itself picks them up.
					runScenario(t, h, "second", 2)
					close(done)
				})
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if res.Position != lastPosition(t, store) {
		t.Fatalf("caught up to %d, head %d", res.Position, lastPosition(t, store))
	}
	if rep := verifyClean(t, store, rdb, b); rep.Tenants != 2 {
		t.Fatalf("report %+v", rep)
	}
	ck, err := readmodel.ReadCheckpoint(ctx, rdb, readmodel.Keys{Prefix: b}.Checkpoint("readmodels"))
	if err != nil || ck != lastPosition(t, store) {
		t.Fatalf("checkpoint %d, %v", ck, err)
	}
}

// TestReplayRefusesOneTenant: Replay rebuilds everything into a new prefix;
// a config naming one tenant is a mistake for rebuild.Tenant, refused
// without writing anything rather than quietly turned into an in-place
// rebuild.
func TestReplayRefusesOneTenant(t *testing.T) { redistest.Each(t, testReplayRefusesOneTenant) }

func testReplayRefusesOneTenant(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 11)
	if err := readmodel.SetActivePrefix(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	res, err := replay(ctx, ReplayConfig{Store: store, Snapshots: store, Redis: rdb, Tenant: "contoso"})
	if err == nil || !strings.Contains(err.Error(), "rebuild.Tenant") {
		t.Fatalf("Replay with Tenant set = %+v, %v; want an error naming rebuild.Tenant", res, err)
	}
	if keys := dumpPrefix(t, rdb, prefix); len(keys) != 0 {
		t.Fatalf("Replay wrote %d keys under the active prefix: %v", len(keys), keys)
	}
}

// TestRebuildTenant corrupts a tenant's keys and rebuilds it in place.
func TestRebuildTenant(t *testing.T) { redistest.Each(t, testRebuildTenant) }

func testRebuildTenant(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 11)
	runScenario(t, h, "fabrikam", 12)
	runScenario(t, h, "northwind", 13)
	if err := readmodel.SetActivePrefix(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	rp := startProjection(t, projections.Config{Store: store, Snapshots: store, Redis: rdb})
	rp.waitFor(t, lastPosition(t, store))
	verifyClean(t, store, rdb, prefix)
	k := readmodel.Keys{Prefix: prefix}
	dumpTenant := func(tid string) map[string]string {
		all := dumpPrefix(t, rdb, k.Tenant(tid))
		return all
	}
	others := map[string]map[string]string{"fabrikam": dumpTenant("fabrikam"), "northwind": dumpTenant("northwind")}

	// Corrupt contoso: a lost user, a wrong row, a key that should not be,
	// a missing zset and an applied version from the future.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.HDel(ctx, k.Key("contoso", readmodel.Users), "u02").Err())
	must(rdb.HSet(ctx, k.Key("contoso", readmodel.Licenses), "SPE_E3", `{"bogus":true}`).Err())
	must(rdb.ZAdd(ctx, k.Key("contoso", readmodel.GroupMembers("ghost")), redis.Z{Member: "u01"}).Err())
	must(rdb.Del(ctx, k.Key("contoso", readmodel.UsersIndex)).Err())
	must(rdb.HSet(ctx, k.Key("contoso", readmodel.Meta), "version", "99999").Err())
	rep, err := Verify(ctx, store, rdb, prefix, VerifyOptions{Tenants: []string{"contoso"}})
	must(err)
	if len(rep.Differences) < 5 {
		t.Fatalf("corruption not seen: %+v", rep)
	}

	var phases []string
	res, err := Tenant(ctx, ReplayConfig{Store: store, Snapshots: store, Redis: rdb, Tenant: "contoso",
		Progress: func(p ReplayProgress) { phases = append(phases, p.Phase) }})
	must(err)
	v, _ := store.StreamVersion(ctx, "tenant-contoso")
	if res.Tenant != "contoso" || res.Version != v || res.Prefix != prefix || res.Swapped || len(phases) == 0 {
		t.Fatalf("result %+v, phases %v", res, phases)
	}
	verifyClean(t, store, rdb, prefix)
	for tid, before := range others {
		if after := dumpTenant(tid); !reflect.DeepEqual(before, after) {
			t.Errorf("tenant %s changed", tid)
		}
	}
	if active, _ := readmodel.ActivePrefix(ctx, rdb); active != prefix {
		t.Fatalf("active prefix %q", active)
	}

	// The live projection goes on from the rebuilt version.
	s := &scenario{t: t, h: h, tenant: "contoso", admin: domain.Actor{UserID: "admin"}}
	s.do(&domain.AddUser{CommandMeta: s.meta(), User: domain.NewUser{ID: "late", UserPrincipalName: "late@contoso.example", UsageLocation: "US"}})
	s.do(&domain.AssignLicenses{CommandMeta: s.meta(), SkuID: "POWER_BI_PRO", Users: []string{"late"}})
	rp.waitFor(t, lastPosition(t, store))
	if rep := verifyClean(t, store, rdb, prefix); rep.Tenants != 3 {
		t.Fatalf("report %+v", rep)
	}
	if !rdb.HExists(ctx, k.Key("contoso", readmodel.Users), "late").Val() {
		t.Fatal("the live projection did not continue after the rebuild")
	}

	// Rebuilding a tenant while its commands run converges too.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	defer halt()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 400; i++ {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(3 * time.Millisecond)
			u := fmt.Sprintf("c%03d", i)
			s.do(&domain.AddUser{CommandMeta: s.meta(), User: domain.NewUser{ID: u, UserPrincipalName: u + "@contoso.example", UsageLocation: "US"}})
		}
	}()
	for range 5 {
		if _, err := Tenant(ctx, ReplayConfig{Store: store, Redis: rdb, Tenant: "contoso"}); err != nil {
			t.Fatal(err)
		}
	}
	halt()
	rp.waitFor(t, lastPosition(t, store))
	verifyClean(t, store, rdb, prefix)
}

// TestReplaySwap: queries read the old prefix until the replay swaps, then
// the new one; the Manager's projection follows the swap, and the old
// prefix is deleted.
func TestReplaySwap(t *testing.T) { redistest.Each(t, testReplaySwap) }

func testReplaySwap(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	for i := range 4 {
		runScenario(t, h, fmt.Sprintf("t%02d", i), uint64(200+i))
	}
	oldP, newP := prefix+"old:", prefix+"new:"
	if err := readmodel.SetActivePrefix(ctx, rdb, oldP); err != nil {
		t.Fatal(err)
	}
	mgr, err := projections.NewManager(projections.Config{Store: store, Snapshots: store, Redis: rdb}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan error, 1)
	go func() { mdone <- mgr.Run(mctx) }()
	defer func() {
		mcancel()
		if err := <-mdone; err != nil {
			t.Error(err)
		}
	}()
	wait := func(prefix string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for mgr.Projection().Prefix() != prefix {
			if time.Now().After(deadline) {
				t.Fatalf("the manager runs on %q, not %q", mgr.Projection().Prefix(), prefix)
			}
			time.Sleep(5 * time.Millisecond)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := mgr.Projection().WaitFor(wctx, lastPosition(t, store)); err != nil {
			t.Fatal(err)
		}
	}
	wait(oldP)
	verifyClean(t, store, rdb, oldP)

	// Readers: every read of the active prefix finds a complete read model
	// (the meta of each tenant), old or new, never a half-built one.
	var reads, bad atomic.Int64
	seen := sync.Map{}
	rstop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-rstop:
				return
			default:
			}
			p, err := readmodel.ActivePrefix(ctx, rdb)
			if err != nil {
				bad.Add(1)
				continue
			}
			seen.Store(p, true)
			for i := range 4 {
				if rdb.HGet(ctx, readmodel.Keys{Prefix: p}.Key(fmt.Sprintf("t%02d", i), readmodel.Meta), "version").Val() == "" {
					bad.Add(1)
				}
			}
			reads.Add(1)
		}
	}()
	// Commands keep coming during the replay.
	var wwg sync.WaitGroup
	wstop := make(chan struct{})
	wwg.Add(1)
	go func() {
		defer wwg.Done()
		s := &scenario{t: t, h: h, tenant: "t00", admin: domain.Actor{UserID: "admin"}}
		for i := 0; ; i++ {
			select {
			case <-wstop:
				return
			default:
			}
			u := fmt.Sprintf("w%03d", i)
			s.do(&domain.AddUser{CommandMeta: s.meta(), User: domain.NewUser{ID: u, UserPrincipalName: u + "@t00.example", UsageLocation: "US"}})
			time.Sleep(time.Millisecond)
		}
	}()

	var during atomic.Int64
	var wrong atomic.Value
	res, err := replay(ctx, ReplayConfig{Store: store, Snapshots: store, Redis: rdb, NewPrefix: newP, BatchSize: 16,
		DeleteOldAfter: 200 * time.Millisecond, OnSwap: func(_, _ string) { mgr.Refresh() }, ProgressInterval: time.Millisecond,
		Progress: func(p ReplayProgress) {
			if p.Phase == PhaseSwapped {
				return
			}
			during.Add(1)
			if a, _ := readmodel.ActivePrefix(ctx, rdb); a != oldP {
				wrong.Store(p.Phase + ": active prefix " + a)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	close(wstop)
	wwg.Wait()
	close(rstop)
	rwg.Wait()
	if w := wrong.Load(); w != nil {
		t.Fatalf("the active prefix changed before the end: %v", w)
	}
	if during.Load() == 0 || reads.Load() == 0 || bad.Load() != 0 {
		t.Fatalf("progress calls %d, reads %d, bad reads %d", during.Load(), reads.Load(), bad.Load())
	}
	if !res.Swapped || res.OldPrefix != oldP || res.Prefix != newP {
		t.Fatalf("result %+v", res)
	}
	if a, _ := readmodel.ActivePrefix(ctx, rdb); a != newP {
		t.Fatalf("active prefix %q", a)
	}
	if _, ok := seen.Load(newP); !ok {
		t.Log("the readers did not see the new prefix before they stopped")
	}

	// The manager follows; events after the swap land under the new prefix.
	wait(newP)
	s := &scenario{t: t, h: h, tenant: "t01", admin: domain.Actor{UserID: "admin"}}
	s.do(&domain.AddUser{CommandMeta: s.meta(), User: domain.NewUser{ID: "after-swap", UserPrincipalName: "after-swap@t01.example", UsageLocation: "US"}})
	wait(newP)
	if !rdb.HExists(ctx, readmodel.Keys{Prefix: newP}.Key("t01", readmodel.Users), "after-swap").Val() {
		t.Fatal("an event appended after the swap is not under the new prefix")
	}
	verifyClean(t, store, rdb, newP)

	select {
	case err := <-res.OldDeleted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the old prefix was not deleted")
	}
	if left, err := readmodel.DumpPrefix(ctx, rdb, oldP); err != nil || len(left) != 0 {
		t.Fatalf("%d keys left under the old prefix (%v)", len(left), err)
	}
	if n, _ := rdb.Exists(ctx, readmodel.Keys{Prefix: newP}.Present()).Result(); n != 1 {
		t.Fatal("the new prefix has no present marker")
	}
}

// TestDeletePrefixKeepsOtherKeys: deleting "P" leaves nested prefixes, the
// active-prefix key and lease keys alone.
func TestDeletePrefixKeepsOtherKeys(t *testing.T) { redistest.Each(t, testDeletePrefixKeepsOtherKeys) }

func testDeletePrefixKeepsOtherKeys(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	keep := []string{prefix + "r1:{t1}:meta", prefix + "{lease:projection:readmodels}:holder", prefix + "active-prefix"}
	gone := []string{prefix + "{t1}:meta", prefix + "{t1}:users", prefix + "tenants", prefix + "checkpoint:readmodels", prefix + "{marker}:present"}
	for _, k := range append(append([]string{}, keep...), gone...) {
		if err := rdb.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := readmodel.DeletePrefix(ctx, rdb, prefix)
	if err != nil || n != len(gone) {
		t.Fatalf("deleted %d, %v", n, err)
	}
	for _, k := range keep {
		if rdb.Exists(ctx, k).Val() != 1 {
			t.Errorf("%s deleted", k)
		}
	}
	for _, k := range gone {
		if rdb.Exists(ctx, k).Val() != 0 {
			t.Errorf("%s kept", k)
		}
	}
}
