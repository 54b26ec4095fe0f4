package render

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/readmodel"
)

// flushCase is one call of the flush script: its KEYS and ARGV as
// flushOnce builds them.
type flushCase struct {
	keys []string
	args []any
}

// randomFlushes builds flushes over a few tenants of prefix: each with
// random ops on the tenant's keys (hs/hd/za/zr, or as a ScriptSink groups
// random writes: ops of several items, ops on the next key), and versions that are
// sometimes stale (the ops must then be skipped), bases that are sometimes
// off the version written (the flush must then be refused), and
// checkpoints that sometimes go back (they must not move). applied models
// the versions the flushes leave, so that most bases are right.
func randomFlushes(prefix string, seed uint64, n int) []flushCase {
	r := rand.New(rand.NewPCG(seed, 3))
	version, applied := map[string]uint64{}, map[string]uint64{}
	type entry struct {
		tid     string
		v, base uint64
	}
	var out []flushCase
	for f := 0; f < n; f++ {
		var entries []entry
		var keys []string
		inTurn := maps.Clone(applied) // the versions as each place leaves them
		args := []any{uint64(r.IntN(100) + 1), 0}
		nt := r.IntN(4) + 1
		for range nt {
			tid := fmt.Sprint("t", r.IntN(5))
			tkeys := []string{prefix + "{" + tid + "}:meta", prefix + "{" + tid + "}:users", prefix + "{" + tid + "}:users:index", prefix + "{" + tid + "}:held:due"}
			prev := version[tid]
			v := prev + 1
			if r.IntN(4) == 0 && v > 2 {
				v -= 2 // a re-delivery: stale
			}
			base := inTurn[tid]
			inTurn[tid] = max(inTurn[tid], v)
			if r.IntN(12) == 0 {
				base = uint64(r.IntN(int(v))) // off the read model's version: refused unless stale
			}
			version[tid] = max(version[tid], v)
			entries = append(entries, entry{tid, v, base})
			var ops []any
			for range r.IntN(6) {
				field := fmt.Sprint("u", r.IntN(4))
				switch r.IntN(4) {
				case 0:
					ops = append(ops, "hs", "2", field, []byte(fmt.Sprintf(`{"id":%q,"n":%d}`, field, r.IntN(1000))))
				case 1:
					ops = append(ops, "hd", "2", field)
				case 2:
					k, score := "3", "0"
					if r.IntN(2) == 0 {
						k, score = "4", fmt.Sprint(r.IntN(1e9))
					}
					ops = append(ops, "za", k, score, field)
				case 3:
					ops = append(ops, "zr", strconv3or4(r), field)
				}
			}
			if r.IntN(2) == 0 { // the ops as a ScriptSink groups them
				ss := NewScriptSink(func(s string) string { return prefix + "{" + tid + "}:" + s })
				randomWrites(r, r.IntN(12), ss)
				ss.Finish()
				tkeys, ops = ss.Keys, ss.Args
			}
			keys = append(keys, tkeys...)
			add := tid
			if r.IntN(3) == 0 {
				add = "" // added to the tenant set before
			}
			args = append(args, len(tkeys), v, base, add, len(ops))
			args = append(args, ops...)
		}
		args[1] = nt
		// A tenant given twice in a flush is checked against what its
		// earlier place leaves, as ApplyScript calls in turn would be.
		refused, after := false, maps.Clone(applied)
		for _, e := range entries {
			if c := after[e.tid]; c < e.v && c != e.base {
				refused = true
			}
			after[e.tid] = max(after[e.tid], e.v)
		}
		if !refused {
			applied = after
		}
		keys = append(keys, prefix+"tenants", prefix+"checkpoint:readmodels")
		out = append(out, flushCase{keys: keys, args: args})
	}
	return out
}

func strconv3or4(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return "3"
	}
	return "4"
}

// runFlushes applies the flushes through the Lua script (native nil) or
// the native flusher and returns the error of each call ("" if none, a
// BaseError's text for a tenant off its base, else "error").
func runFlushes(t *testing.T, rdb redis.UniversalClient, native *NativeFlusher, db int, flushes []flushCase) []string {
	t.Helper()
	ctx := context.Background()
	var errs []string
	for _, f := range flushes {
		var err error
		if native != nil {
			err = native.Flush(db, f.keys, f.args)
		} else {
			err = rdb.Eval(ctx, FlushScript, f.keys, f.args...).Err()
		}
		e := ""
		if be, ok := AsBaseError(err); ok {
			e = be.Error()
		} else if err != nil {
			e = "error"
		}
		errs = append(errs, e)
	}
	return errs
}

// TestNativeFlushMatchesTheScript: the in-process Redis's Go flush leaves
// what the Lua flush script leaves, on miniredis and on a real Redis: the
// same keys and values after random flushes with stale versions and
// checkpoints, and the same failures (an op on a key of another type).
func TestNativeFlushMatchesTheScript(t *testing.T) {
	const prefix = "sl:native:"
	flushes := randomFlushes(prefix, 1, 300)
	// A key of the wrong type: the op fails, the flush stops there.
	bad := flushCase{keys: []string{prefix + "{t9}:meta", prefix + "tenants", prefix + "tenants", prefix + "checkpoint:readmodels"},
		args: []any{uint64(500), 1, 2, uint64(1), uint64(0), "t9", 4, "hs", "2", "f", []byte("v")}}
	flushes = append(flushes, bad)

	lua := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer lua.Close()
	wantErrs := runFlushes(t, lua, nil, 0, flushes)
	want := dumpPrefix(t, lua, prefix)
	if len(want) < 10 || wantErrs[len(wantErrs)-1] != "error" {
		t.Fatalf("the flushes wrote %d keys, last error %q: not a test", len(want), wantErrs[len(wantErrs)-1])
	}
	refused := 0
	for _, e := range wantErrs {
		if strings.HasPrefix(e, "SLBASE ") {
			refused++
		}
	}
	if refused == 0 || refused > len(flushes)/2 {
		t.Fatalf("%d of %d flushes refused for a tenant off its base: not a test of both outcomes", refused, len(flushes))
	}

	native := inProcessRedis(t)
	n, db := NativeFlusherFor(native)
	if n == nil {
		t.Fatal("the in-process Redis has no native flusher")
	}
	gotErrs := runFlushes(t, native, n, db, flushes)
	if got := dumpPrefix(t, native, prefix); !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: native %q, script %q", k, got[k], v)
			}
		}
		t.Fatalf("native flush: %d keys, script %d", len(got), len(want))
	}
	if !reflect.DeepEqual(gotErrs, wantErrs) {
		t.Fatalf("errors: native %v, script %v", gotErrs, wantErrs)
	}

	// The script on a real Redis, as the projection runs it there.
	real, realPrefix := testRedis(t)
	realFlushes := randomFlushes(realPrefix, 1, 300)
	runFlushes(t, real, nil, 0, realFlushes)
	gotReal := map[string]string{}
	for k, v := range dumpPrefix(t, real, realPrefix) {
		gotReal[prefix+strings.TrimPrefix(k, realPrefix)] = v
	}
	want = dumpPrefix(t, lua, prefix)
	delete(want, prefix+"{t9}:meta") // the failing flush was not run there
	if !reflect.DeepEqual(gotReal, want) {
		t.Fatalf("Redis: %d keys, miniredis %d", len(gotReal), len(want))
	}
}

// TestNativeFlushIsAtomic: a script reading two keys that every flush
// writes together never sees one written and not the other.
func TestNativeFlushIsAtomic(t *testing.T) {
	rdb := inProcessRedis(t)
	n, db := NativeFlusherFor(rdb)
	ctx := context.Background()
	const a, b = "sl:{t}:meta", "sl:{t}:users"
	read := redis.NewScript(`return {redis.call('HGET', KEYS[1], 'f') or '', redis.call('HGET', KEYS[2], 'f') or ''}`)
	var stop atomic.Bool
	var torn atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			v, err := read.Run(ctx, rdb, []string{a, b}).StringSlice()
			if err == nil && v[0] != v[1] {
				torn.Add(1)
			}
		}
	}()
	for i := 1; i <= 300; i++ {
		val := []byte(fmt.Sprint(i))
		// a's field, many others between (a wide window), b's field.
		ops := []any{"hs", "1", "f", val}
		for j := range 100 {
			ops = append(ops, "hs", "2", fmt.Sprint("filler", j), val)
		}
		ops = append(ops, "hs", "2", "f", val)
		args := append([]any{uint64(i), 1, 2, uint64(i), uint64(i - 1), "t", len(ops)}, ops...)
		if err := n.Flush(db, []string{a, b, "sl:tenants", "sl:checkpoint:readmodels"}, args); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if torn.Load() > 0 {
		t.Fatalf("%d reads saw one key of a flush written and not the other", torn.Load())
	}
}

// TestNativeFlushUsesTheClientsDatabase: the flush writes where the
// projection's client reads, and only a script run's state is used.
func TestNativeFlushUsesTheClientsDatabase(t *testing.T) {
	url := embeddedRedis(t)
	ctx := context.Background()
	db3, err := readmodel.NewClient(url + "/3")
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	n, db := NativeFlusherFor(db3)
	if n == nil || db != 3 {
		t.Fatalf("flusher %v, database %d", n, db)
	}
	keys := []string{"sl:{t}:meta", "sl:{t}:users", "sl:tenants", "sl:checkpoint:readmodels"}
	args := []any{uint64(7), 1, 2, uint64(1), uint64(0), "t", 4, "hs", "2", "u1", []byte(`{"id":"u1"}`)}
	if err := n.Flush(db, keys, args); err != nil {
		t.Fatal(err)
	}
	if v := db3.HGet(ctx, "sl:{t}:users", "u1").Val(); v != `{"id":"u1"}` {
		t.Fatalf("database 3 holds %q", v)
	}
	if ck := db3.Get(ctx, "sl:checkpoint:readmodels").Val(); ck != "7" {
		t.Fatalf("checkpoint %q", ck)
	}
	db0, err := readmodel.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db0.Close()
	if k := db0.Keys(ctx, "*").Val(); len(k) != 0 {
		t.Fatalf("database 0 holds %v", k)
	}

	// A connection's state (not a script's) is refused: used as a
	// script's, its commands would take the lock the flush holds.
	conn := server.NewPeer(n.writer())
	n.mu.Lock()
	_, _ = n.reply(conn, "PING") // gives conn a connection state
	connLike, scriptLike := n.scriptLike(conn.Ctx), n.scriptLike(n.states[3])
	n.mu.Unlock()
	if connLike || !scriptLike {
		t.Fatalf("a connection's state taken for a script's: %v; a script's: %v", connLike, scriptLike)
	}
}
