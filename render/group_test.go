package render

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestScriptSinkGroupsOpsPerKey: the writes of one kind to one key go in
// one op (one command), a field or member written twice only as its last
// write, a key's index only where the key is not the one after the last
// op's, a member scored 0 without its score.
func TestScriptSinkGroupsOpsPerKey(t *testing.T) {
	ss := NewScriptSink(func(s string) string { return "p:" + s })
	ss.ZAdd("idx", 0, "m2")
	ss.HSet("users", "u1", []byte("A"))
	ss.ZAdd("idx", 0, "m1")
	ss.ZRem("idx", "m3")
	ss.HSet("users", "u2", []byte("B"))
	ss.HSet("users", "u1", []byte("A2")) // overrides A
	ss.HDel("users", "u3")
	ss.ZAdd("due", 5, "x")
	ss.ZRem("due", "x") // cancels the ZADD: only the ZREM is sent
	ss.HSet("meta", "name", []byte("N"))
	ss.ZAdd("one", 0, "m")
	ss.Finish()
	want := []any{
		"hs", "1", "name", []byte("N"), // the meta hash: named
		">za*", "2", "0", "m1", "0", "m2", "zr", "2", "m3", // idx (KEYS[2]): its ZADDs, then its ZREM
		">hs*", "2", "u1", []byte("A2"), "u2", []byte("B"), "hd", "3", "u3", // users
		">zr", "x", // due
		">z0", "m", // one
	}
	if !reflect.DeepEqual(ss.Args, want) {
		t.Fatalf("args\n%q\nwant\n%q", ss.Args, want)
	}
	if w := []string{"p:meta", "p:idx", "p:users", "p:due", "p:one"}; !reflect.DeepEqual(ss.Keys, w) {
		t.Fatalf("keys %q, want %q", ss.Keys, w)
	}
	if got := ss.ApplyArgs(3, 2); !reflect.DeepEqual(got[2:], want) {
		t.Fatalf("ApplyArgs encoded again: %q", got)
	}
}

// TestScriptSinkRepeatsTheLastMember: a member written to the key after
// the last op's, where that op was one item on the key after its own
// last, is not sent again (">z0=", ">zr="): an index move writes one
// member to several keys in turn.
func TestScriptSinkRepeatsTheLastMember(t *testing.T) {
	ss := NewScriptSink(func(s string) string { return "p:" + s })
	m := "Ann\x00u1\x00ann@x.example"
	ss.HSet("users", "u1", []byte("A"))
	ss.ZRem("by:name:unlicensed", m)
	ss.ZRem("by:upn:unlicensed", m)
	ss.ZAdd("by:name:licensed", 0, m)
	ss.ZAdd("by:upn:licensed", 0, m)
	ss.ZAdd("due", 5, m)   // scored: sent with its member
	ss.ZAdd("after", 0, m) // after a scored ZADD: repeated too
	ss.ZAdd("lic:users", 0, "u1")
	ss.ZAdd("lic:users2", 0, "u1")
	ss.ZAdd("lic:users2", 0, "u2") // two items: an op of several
	ss.ZRem("idx", "u2")           // after an op of several: sent
	ss.HDel("held", "u1|Exchange")
	ss.ZRem("held:index", "u1|Exchange")
	ss.ZAdd("held:due", 0, "u1|Exchange")
	ss.Finish()
	want := []any{
		">hs", "u1", []byte("A"),
		">zr", m, ">zr=", ">z0=", ">z0=",
		">za", "5", m, ">z0=",
		">z0", "u1", ">za*", "2", "0", "u1", "0", "u2",
		">zr", "u2",
		">hd", "u1|Exchange", ">zr=", ">z0=",
	}
	if !reflect.DeepEqual(ss.Args, want) {
		t.Fatalf("args\n%q\nwant\n%q", ss.Args, want)
	}
	ss.Reset(func(s string) string { return "q:" + s })
	ss.ZAdd("a", 0, "u1") // another tenant: nothing to repeat
	ss.Finish()
	if want := []any{">z0", "u1"}; !reflect.DeepEqual(ss.Args, want) {
		t.Fatalf("after Reset: args %q, want %q", ss.Args, want)
	}
}

// TestNativeFlushOneCommandPerKey: the in-process flush of a tenant with
// many writes to one key runs one command for them.
func TestNativeFlushOneCommandPerKey(t *testing.T) {
	rdb := inProcessRedis(t)
	n, db := NativeFlusherFor(rdb)
	ss := NewScriptSink(func(s string) string { return "sl:{t}:" + s })
	for i := range 50 {
		ss.ZAdd("users:by:name", 0, fmt.Sprint("m", i))
		ss.HSet("users", fmt.Sprint("u", i), []byte("v"))
	}
	ss.Finish()
	keys := append(append([]string{}, ss.Keys...), "sl:tenants", "sl:checkpoint:readmodels")
	args := append([]any{uint64(1), 1, len(ss.Keys), uint64(1), uint64(0), "", len(ss.Args)}, ss.Args...)
	before := n.commands
	if err := n.Flush(db, keys, args); err != nil {
		t.Fatal(err)
	}
	// HGET and HSET of the version, GET and SET of the checkpoint, and one
	// command per key.
	if got := n.commands - before; got != 4+2 {
		t.Fatalf("%d commands for 100 writes to 2 keys, want 6", got)
	}
	if c := rdb.ZCard(context.Background(), "sl:{t}:users:by:name").Val(); c != 50 {
		t.Fatalf("%d members written", c)
	}
}

// randomWrites writes n random writes to a few keys of a tenant into
// sinks: few fields and members, so that many are written several times
// over, and sometimes more than MaxOpItems to one key.
func randomWrites(r *rand.Rand, n int, sinks ...Sink) {
	hashes, zsets := []string{"meta", "users", "held"}, []string{"idx:a", "idx:b", "due"}
	if r.IntN(8) == 0 {
		n += MaxOpItems + r.IntN(MaxOpItems)
	}
	members := 3 + r.IntN(10)
	if n > MaxOpItems {
		members = 2 * n
	}
	for range n {
		m := fmt.Sprint("m", r.IntN(members))
		switch r.IntN(5) {
		case 4: // one member to several keys in turn, as an index move
			if r.IntN(2) == 0 {
				k := hashes[r.IntN(len(hashes))]
				for _, s := range sinks {
					s.HDel(k, m)
				}
			}
			for _, k := range zsets {
				if r.IntN(4) == 0 {
					continue
				}
				add := r.IntN(2) == 0
				for _, s := range sinks {
					if add {
						s.ZAdd(k, 0, m)
					} else {
						s.ZRem(k, m)
					}
				}
			}
		case 0:
			k, v := hashes[r.IntN(len(hashes))], []byte(fmt.Sprint("v", r.IntN(1000)))
			for _, s := range sinks {
				s.HSet(k, m, v)
			}
		case 1:
			k := hashes[r.IntN(len(hashes))]
			for _, s := range sinks {
				s.HDel(k, m)
			}
		case 2:
			k, score := zsets[r.IntN(len(zsets))], 0.0
			if r.IntN(3) == 0 {
				score = float64(r.IntN(1e9)) + 0.5*float64(r.IntN(2))
			}
			for _, s := range sinks {
				s.ZAdd(k, score, m)
			}
		case 3:
			k := zsets[r.IntN(len(zsets))]
			for _, s := range sinks {
				s.ZRem(k, m)
			}
		}
	}
}

// oneByOne sends each write as its own command, in the order given: what
// the grouped ops must leave.
type oneByOne struct {
	ctx    context.Context
	rdb    redis.UniversalClient
	prefix string
	err    error
}

func (o *oneByOne) check(err error) {
	if err != nil && o.err == nil {
		o.err = err
	}
}
func (o *oneByOne) HSet(key, field string, value []byte) {
	o.check(o.rdb.HSet(o.ctx, o.prefix+key, field, value).Err())
}
func (o *oneByOne) HDel(key, field string) { o.check(o.rdb.HDel(o.ctx, o.prefix+key, field).Err()) }
func (o *oneByOne) ZAdd(key string, score float64, member string) {
	o.check(o.rdb.ZAdd(o.ctx, o.prefix+key, redis.Z{Score: score, Member: member}).Err())
}
func (o *oneByOne) ZRem(key, member string) { o.check(o.rdb.ZRem(o.ctx, o.prefix+key, member).Err()) }

// TestGroupedOpsLeaveWhatOneByOneLeaves: random writes, sent one by one,
// and grouped by a ScriptSink through the flush script (miniredis's Lua,
// a real Redis), ApplyScript and the in-process Go flush leave the same
// keys and values.
func TestGroupedOpsLeaveWhatOneByOneLeaves(t *testing.T) {
	ctx := context.Background()
	mini := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer mini.Close()
	native := inProcessRedis(t)
	n, db := NativeFlusherFor(native)
	real, realPrefix := testRedis(t)
	type target struct {
		name   string
		rdb    redis.UniversalClient
		prefix string
		write  func(keys []string, args []any) error
	}
	flush := func(rdb redis.UniversalClient) func([]string, []any) error {
		return func(k []string, a []any) error { return rdb.Eval(ctx, FlushScript, k, a...).Err() }
	}
	targets := []target{
		{"flush script, miniredis", mini, "g:flush:", flush(mini)},
		{"flush script, Redis", real, realPrefix + "flush:", flush(real)},
		{"apply script, Redis", real, realPrefix + "apply:", nil},
		{"native flush", native, "g:native:", func(k []string, a []any) error { return n.Flush(db, k, a) }},
	}
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 7))
		nw := 1 + r.IntN(40)
		ref := &oneByOne{ctx: ctx, rdb: mini, prefix: fmt.Sprintf("g:ref%d:{t}:", seed)}
		sinks := make([]*ScriptSink, len(targets))
		all := []Sink{ref}
		for i, tg := range targets {
			p := fmt.Sprintf("%s%d:{t}:", tg.prefix, seed)
			sinks[i] = NewScriptSink(func(s string) string { return p + s })
			all = append(all, sinks[i])
		}
		randomWrites(r, nw, all...)
		if ref.err != nil {
			t.Fatal(ref.err)
		}
		want := map[string]string{}
		for k, v := range dumpPrefix(t, mini, ref.prefix) {
			want[strings.TrimPrefix(k, ref.prefix)] = v
		}
		for i, tg := range targets {
			ss := sinks[i]
			p := fmt.Sprintf("%s%d:{t}:", tg.prefix, seed)
			var err error
			if tg.write == nil {
				err = tg.rdb.Eval(ctx, ApplyScript, ss.Keys, ss.ApplyArgs(1, 0)...).Err()
			} else {
				ss.Finish()
				keys := append(append([]string{}, ss.Keys...), p+"tenants", p+"checkpoint")
				err = tg.write(keys, append([]any{uint64(1), 1, len(ss.Keys), uint64(1), uint64(0), "", len(ss.Args)}, ss.Args...))
			}
			if err != nil {
				t.Fatalf("seed %d, %s: %v", seed, tg.name, err)
			}
			got := map[string]string{}
			for k, v := range dumpPrefix(t, tg.rdb, p) {
				k = strings.TrimPrefix(k, p)
				if k == "tenants" || k == "checkpoint" {
					continue
				}
				if k == "meta" { // the version the script adds
					v = strings.Replace(strings.Replace(v, "\nversion=1", "", 1), "version=1", "", 1)
					if v == "hash:" {
						continue
					}
				}
				got[k] = v
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d (%d writes), %s:\n%v\nwant (one by one)\n%v", seed, nw, tg.name, got, want)
			}
		}
	}
}

// TestOpOfManyItemsIsSplit: thousands of writes to one key are split into
// ops of at most MaxOpItems (Lua unpacks an op's items onto a stack of a
// few thousand values), through both scripts and the in-process flush.
func TestOpOfManyItemsIsSplit(t *testing.T) {
	ctx := context.Background()
	const items = 5000
	mini := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer mini.Close()
	real, prefix := testRedis(t)
	native := inProcessRedis(t)
	n, db := NativeFlusherFor(native)
	for _, c := range []struct {
		name string
		rdb  redis.UniversalClient
	}{{"miniredis", mini}, {"Redis", real}, {"native", native}} {
		p := prefix + c.name + ":{t}:"
		ss := NewScriptSink(func(s string) string { return p + s })
		for i := range items {
			ss.ZAdd("due", float64(i+1), fmt.Sprint("m", i))
			ss.HSet("held", fmt.Sprint("m", i), []byte("v"))
		}
		var err error
		if c.name == "native" {
			ss.Finish()
			keys := append(append([]string{}, ss.Keys...), p+"tenants", p+"checkpoint")
			err = n.Flush(db, keys, append([]any{uint64(1), 1, len(ss.Keys), uint64(1), uint64(0), "", len(ss.Args)}, ss.Args...))
		} else {
			err = c.rdb.Eval(ctx, ApplyScript, ss.Keys, ss.ApplyArgs(1, 0)...).Err()
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if z, h := c.rdb.ZCard(ctx, p+"due").Val(), c.rdb.HLen(ctx, p+"held").Val(); z != items || h != items {
			t.Fatalf("%s: %d members, %d fields written, want %d", c.name, z, h, items)
		}
	}
}
