package render

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestFlushRepeatedTenantIsApplyScriptInTurn: a tenant given twice in one
// flush is written as two ApplyScript calls in turn would write it (what
// FlushScript says it does, and what it did before it checked bases): the
// second entry sees the version the first wrote. A re-delivered older
// version after a newer one is skipped, not written over it with the
// version going back.
func TestFlushRepeatedTenantIsApplyScriptInTurn(t *testing.T) {
	const p = "sl:"
	keys := []string{p + "{t}:meta", p + "{t}:users", p + "{t}:meta", p + "{t}:users", p + "tenants", p + "checkpoint:readmodels"}
	args := []any{uint64(9), 2,
		2, uint64(3), uint64(1), "t", 4, "hs", "2", "u1", []byte("A"), // versions 2-3 from 1
		2, uint64(2), uint64(1), "t", 4, "hs", "2", "u1", []byte("B"), // version 2 again: stale
	}
	// A third entry from version 3 to 4 (base 3, what the first wrote):
	// in turn, it is on its base.
	keys2 := []string{p + "{t}:meta", p + "{t}:users", p + "{t}:meta", p + "{t}:users", p + "tenants", p + "checkpoint:readmodels"}
	args2 := []any{uint64(10), 2,
		2, uint64(5), uint64(3), "t", 4, "hs", "2", "u1", []byte("C"),
		2, uint64(6), uint64(5), "", 4, "hs", "2", "u2", []byte("D"),
	}
	want := map[string]string{}
	check := func(name string, rdb redis.UniversalClient, flush func(keys []string, args []any) error) {
		t.Helper()
		ctx := context.Background()
		if err := rdb.HSet(ctx, p+"{t}:meta", "version", "1").Err(); err != nil {
			t.Fatal(err)
		}
		if err := flush(keys, args); err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		got := map[string]string{}
		got["v1"] = rdb.HGet(ctx, p+"{t}:meta", "version").Val()
		got["u1"] = rdb.HGet(ctx, p+"{t}:users", "u1").Val()
		if err := flush(keys2, args2); err != nil {
			t.Errorf("%s: second flush (from the version the first wrote): %v", name, err)
		}
		got["v2"] = rdb.HGet(ctx, p+"{t}:meta", "version").Val()
		got["u1b"] = rdb.HGet(ctx, p+"{t}:users", "u1").Val()
		got["u2"] = rdb.HGet(ctx, p+"{t}:users", "u2").Val()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got[k], v)
			}
		}
	}
	want = map[string]string{"v1": "3", "u1": "A", "v2": "6", "u1b": "C", "u2": "D"}

	lua := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer lua.Close()
	check("script", lua, func(k []string, a []any) error { return lua.Eval(context.Background(), FlushScript, k, a...).Err() })

	native := inProcessRedis(t)
	n, db := NativeFlusherFor(native)
	if n == nil {
		t.Fatal("the in-process Redis has no native flusher")
	}
	check("native", native, func(k []string, a []any) error { return n.Flush(db, k, a) })
}
