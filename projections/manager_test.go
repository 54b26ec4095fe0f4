package projections

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/rebuild"
)

// TestManagerRebuildsWhatRedisLost: when the prefix it runs on loses every
// key, markers and checkpoint included (a FLUSHALL, a Redis restarted
// without persistence), the Manager builds it again from the first event
// and marks it present. A projection alone would go on from memory and
// never write the tenants that do not change.
func TestManagerRebuildsWhatRedisLost(t *testing.T) {
	redistest.Each(t, testManagerRebuildsWhatRedisLost)
}

func testManagerRebuildsWhatRedisLost(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 21)
	runScenario(t, h, "fabrikam", 22)
	if err := readmodel.SetActivePrefix(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	mgr, err := NewManager(Config{Store: store, Snapshots: store, Redis: rdb}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(mctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	keys := readmodel.Keys{Prefix: prefix}
	whole := func() bool {
		if rdb.Exists(ctx, keys.Present()).Val() != 1 {
			return false
		}
		rep, err := rebuild.Verify(ctx, store, rdb, prefix, rebuild.VerifyOptions{Tenants: []string{"contoso", "fabrikam"}})
		return err == nil && rep.OK()
	}
	waitWhole := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !whole() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the read models under %s are not whole and present", what, prefix)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitWhole("first build")

	n, err := readmodel.DeletePrefix(ctx, rdb, prefix)
	if err != nil || n == 0 {
		t.Fatalf("readmodel.DeletePrefix = %d, %v", n, err)
	}
	waitWhole("after Redis lost the prefix")
}

// TestManagerRebuildsWhatOneMasterLost: on a Redis Cluster, one master
// comes back empty (restarted without persistence) while the others keep
// everything, the markers of the prefix included. Every key of its slots
// is gone — here deleted, range by range as CLUSTER SLOTS says — and the
// Manager must notice (the slot markers went too), clear and rebuild the
// prefix; the Present marker alone would have it go on for ever without
// the lost tenants.
func TestManagerRebuildsWhatOneMasterLost(t *testing.T) {
	rdb, prefix := testRedisReplayOn(t, redistest.Cluster)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	tenants := []string{"contoso", "fabrikam", "northwind", "tailspin", "adatum", "litware"}
	for i, tn := range tenants {
		runScenario(t, h, tn, uint64(40+i))
	}
	if err := readmodel.SetActivePrefix(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	mgr, err := NewManager(Config{Store: store, Snapshots: store, Redis: rdb}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(mctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	keys := readmodel.Keys{Prefix: prefix}
	waitWhole := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if rdb.Exists(ctx, keys.Present()).Val() == 1 {
				rep, err := rebuild.Verify(ctx, store, rdb, prefix, rebuild.VerifyOptions{Tenants: tenants})
				if err == nil && rep.OK() {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the read models under %s are not whole and present", what, prefix)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitWhole("first build")

	// The master to lose: one without the markers' slot, with a tenant.
	ranges, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	marker := readmodel.Slot(keys.Present())
	var lost *redis.ClusterSlot
	for _, r := range ranges {
		in := func(s int) bool { return int(r.Start) <= s && s <= int(r.End) }
		if !in(marker) && slices.ContainsFunc(tenants, func(tn string) bool { return in(readmodel.Slot(keys.Tenant(tn))) }) {
			lost = &r
			break
		}
	}
	if lost == nil {
		t.Fatalf("no range of %v holds a tenant but not the markers", ranges)
	}
	all, err := redistest.Keys(ctx, rdb, readmodel.GlobEscape(prefix)+"*")
	if err != nil {
		t.Fatal(err)
	}
	deleted, tenantKeys := 0, 0
	for _, k := range all {
		if s := readmodel.Slot(k); int(lost.Start) <= s && s <= int(lost.End) {
			if err := rdb.Del(ctx, k).Err(); err != nil {
				t.Fatal(err)
			}
			deleted++
			if _, _, ok := keys.SplitTenantKey(k); ok {
				tenantKeys++
			}
		}
	}
	// The tenants' keys are gone: only a rebuild brings them back (no
	// event is written meanwhile). The Manager, polling every 20 ms, may
	// already be at it, so the loss is counted, not verified afterwards.
	if tenantKeys == 0 {
		t.Fatalf("deleting %d keys of slots %d-%d lost no tenant's read model", deleted, lost.Start, lost.End)
	}
	waitWhole("after a master lost its slots")
}

// TestManagerWaitsOutAFormerWriterBeforeRebuilding: after Redis lost its
// data (here: an empty prefix without its marker, nothing to remove), a
// former lease holder may still write for a moment — a tenant's applied
// version and a checkpoint far ahead. The Manager waits FormerWriterGrace,
// clears again and rebuilds, so those writes cannot make the rebuild skip
// events (found by review: the wait used to happen only when keys were
// removed, and a FLUSHDB leaves none).
func TestManagerWaitsOutAFormerWriterBeforeRebuilding(t *testing.T) {
	redistest.Each(t, testManagerWaitsOutAFormerWriterBeforeRebuilding)
}

func testManagerWaitsOutAFormerWriterBeforeRebuilding(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisReplayOn(t, kind)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 31)
	if err := readmodel.SetActivePrefix(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	keys := readmodel.Keys{Prefix: prefix}
	mgr, err := NewManager(Config{Store: store, Snapshots: store, Redis: rdb, FormerWriterGrace: 600 * time.Millisecond}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(mctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// The former holder's late writes, within the grace.
	time.Sleep(150 * time.Millisecond)
	rdb.HSet(ctx, keys.Key("contoso", readmodel.Meta), "version", 1_000_000)
	rdb.Set(ctx, keys.Checkpoint("readmodels"), 1_000_000, 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if rdb.Exists(ctx, keys.Present()).Val() == 1 {
			rep, err := rebuild.Verify(ctx, store, rdb, prefix, rebuild.VerifyOptions{Tenants: []string{"contoso"}})
			if err == nil && rep.OK() {
				return
			}
			if time.Now().After(deadline) {
				first := ""
				if len(rep.Differences) > 0 {
					first = fmt.Sprint(rep.Differences[0])
				}
				t.Fatalf("the rebuilt read models differ from the log (%v): %d differences, the first: %.300s", err, len(rep.Differences), first)
			}
		} else if time.Now().After(deadline) {
			t.Fatal("the read models were never marked present")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
