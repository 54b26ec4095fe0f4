package rebuild

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
)

// Keys that no event accounts for are reported, of a tenant the log knows
// and of one it does not (in no tenant set either: only the keys say it
// exists), as is a key of another type than the one rendered.
func TestVerifyReportsKeysNoEventAccountsFor(t *testing.T) {
	rdb, prefix := testRedis(t)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	for i := range 3 {
		runScenario(t, h, fmt.Sprintf("t%d", i), uint64(i+1))
	}
	rp := startProjection(t, projections.Config{Store: store, Redis: rdb, Prefix: prefix})
	rp.waitFor(t, lastPosition(t, store))
	rp.shutdown()
	verifyClean(t, store, rdb, prefix)

	ctx := context.Background()
	k := readmodel.Keys{Prefix: prefix}
	// A tenant the log does not know, absent from Ptenants: two keys.
	rdb.HSet(ctx, k.Key("ghost", readmodel.Users), "u1", `{"id":"u1"}`)
	rdb.ZAdd(ctx, k.Key("ghost", readmodel.UsersIndex), redis.Z{Member: "u1"})
	if rdb.SIsMember(ctx, k.Tenants(), "ghost").Val() {
		t.Fatal("ghost is in the tenant set")
	}
	// A known tenant: a left-over index of a product it does not have, a
	// key of a type the layout never uses, and a rendered hash turned into a
	// sorted set.
	rdb.ZAdd(ctx, k.Key("t1", readmodel.LicenseUsers("NOSUCHSKU")), redis.Z{Member: "u01"})
	rdb.Set(ctx, k.Key("t1", "junk"), "x", 0)
	subs := k.Key("t2", readmodel.Subscriptions)
	fields := rdb.HKeys(ctx, subs).Val()
	if len(fields) == 0 {
		t.Fatal("t2 has no subscription rows")
	}
	rdb.Del(ctx, subs)
	rdb.ZAdd(ctx, subs, redis.Z{Member: "m", Score: 2})

	rep, err := Verify(ctx, store, rdb, prefix, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Difference{}
	for _, d := range rep.Differences {
		got[d.Key+" "+d.Field] = d
	}
	want := map[string]Difference{
		k.Key("ghost", readmodel.Users) + " u1":                   {Tenant: "ghost", Got: `{"id":"u1"}`},
		k.Key("ghost", readmodel.UsersIndex) + " u1":              {Tenant: "ghost", Got: "0"},
		k.Key("t1", readmodel.LicenseUsers("NOSUCHSKU")) + " u01": {Tenant: "t1", Got: "0"},
		k.Key("t1", "junk") + " <type>":                           {Tenant: "t1", Got: "string"},
		subs + " m":                                               {Tenant: "t2", Got: "2"},
	}
	for _, f := range fields {
		want[subs+" "+f] = Difference{Tenant: "t2"} // Want: the row; Got: ""
	}
	for key, w := range want {
		d, ok := got[key]
		if !ok {
			t.Errorf("not reported: %s", key)
			continue
		}
		if d.Tenant != w.Tenant || d.Got != w.Got || (w.Got != "" && d.Want != "") || (w.Got == "" && d.Want == "") {
			t.Errorf("%s: reported %+v", key, d)
		}
	}
	if len(rep.Differences) != len(want) {
		t.Errorf("%d differences, want %d: %v", len(rep.Differences), len(want), rep.Differences)
	}
	// One tenant's differences together, tenants in order.
	var order []string
	for _, d := range rep.Differences {
		if len(order) == 0 || order[len(order)-1] != d.Tenant {
			order = append(order, d.Tenant)
		}
	}
	if !slices.Equal(order, []string{"ghost", "t1", "t2"}) {
		t.Errorf("tenants in the report: %v", order)
	}
	if rep.Tenants != 4 {
		t.Errorf("tenants checked: %d, want 4 (3 of the log, 1 of the keys)", rep.Tenants)
	}

	// Limited to the tenants asked for, the others' keys are not read.
	rep, err = Verify(ctx, store, rdb, prefix, VerifyOptions{Tenants: []string{"t0", "t1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Differences {
		if d.Tenant != "t1" {
			t.Errorf("difference of a tenant not asked for: %s", d)
		}
	}
	if len(rep.Differences) != 2 || rep.Tenants != 2 {
		t.Errorf("t0, t1: %d tenants, differences %v", rep.Tenants, rep.Differences)
	}

	// A full report stops.
	rep, err = Verify(ctx, store, rdb, prefix, VerifyOptions{MaxDifferences: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 2 || !rep.Truncated {
		t.Errorf("MaxDifferences 2: truncated %v, %v", rep.Truncated, rep.Differences)
	}
}

// Progress reports the phases in order, the tenants checked of the total
// (never going back), and at the end what the report says.
func TestVerifyReportsProgress(t *testing.T) {
	rdb, prefix := testRedis(t)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	const n = 40
	for i := range n {
		runScenario(t, h, fmt.Sprintf("p%02d", i), uint64(i+1))
	}
	rp := startProjection(t, projections.Config{Store: store, Redis: rdb, Prefix: prefix})
	rp.waitFor(t, lastPosition(t, store))
	rp.shutdown()
	ctx := context.Background()
	k := readmodel.Keys{Prefix: prefix}
	rdb.HSet(ctx, k.Key("p07", readmodel.Users), "ghost", `{}`)
	rdb.Set(ctx, k.Key("p03", "junk"), "x", 0) // a stray key: the stray phase runs

	var mu sync.Mutex
	var seen []VerifyProgress
	rep, err := Verify(ctx, store, rdb, prefix, VerifyOptions{Workers: 2, ProgressInterval: time.Millisecond,
		Progress: func(p VerifyProgress) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, p)
		}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 {
		t.Fatalf("progress reported %d times: %+v", len(seen), seen)
	}
	last := seen[len(seen)-1]
	if last.Phase != VerifyPhaseDone || last.Tenants != n || last.Total != n || last.Keys != rep.Keys ||
		last.Differences != 2 || len(rep.Differences) != 2 || last.ETA != 0 || last.Elapsed <= 0 {
		t.Errorf("last progress %+v; report %d tenants, %d keys, %v", last, rep.Tenants, rep.Keys, rep.Differences)
	}
	phases := []string{VerifyPhaseKeys, VerifyPhaseLog, VerifyPhaseTenants, VerifyPhaseStray, VerifyPhaseDone}
	prev, prevTenants := 0, 0
	var tenantsSeen bool
	for _, p := range seen {
		i := slices.Index(phases, p.Phase)
		if i < prev {
			t.Fatalf("phase %q after %q", p.Phase, phases[prev])
		}
		if p.Tenants < prevTenants || p.Tenants > n || (p.Total != 0 && p.Total != n) {
			t.Fatalf("progress %+v after %d tenants", p, prevTenants)
		}
		if p.Phase == VerifyPhaseTenants {
			tenantsSeen = true
			if p.Total != n || (p.Tenants > 0 && p.TenantsPerSec <= 0) {
				t.Errorf("tenants phase: %+v", p)
			}
		}
		prev, prevTenants = i, p.Tenants
	}
	if !tenantsSeen {
		var names []string
		for _, p := range seen {
			names = append(names, fmt.Sprintf("%s:%d/%d", p.Phase, p.Tenants, p.Total))
		}
		t.Errorf("no report during the tenants phase: %s", strings.Join(names, " "))
	}
}
