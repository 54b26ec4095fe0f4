package readmodel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
)

// TenantKeys lists every key of tenant t under keys.Prefix (SCAN P{t}:*),
// whatever its suffix: the rendered ones and any left behind. On a cluster
// only the master of the tenant's slot is scanned: it holds them all.
func TenantKeys(ctx context.Context, rdb redis.UniversalClient, keys Keys, t string) ([]string, error) {
	match := GlobEscape(keys.Tenant(t)) + "*"
	if c, ok := rdb.(*redis.ClusterClient); ok {
		node, err := c.MasterForKey(ctx, keys.Tenant(t))
		if err != nil {
			return nil, fmt.Errorf("readmodel: the master of tenant %s: %w", t, err)
		}
		return scanKeys(ctx, node, match)
	}
	return scanKeys(ctx, rdb, match)
}

// scanKeys returns the keys matching the SCAN pattern match, of every
// master on a cluster (ScanEach).
func scanKeys(ctx context.Context, rdb redis.UniversalClient, match string) ([]string, error) {
	var out []string
	err := ScanEach(ctx, rdb, match, func(ks []string) error {
		out = append(out, ks...)
		return nil
	})
	return out, err
}

// prefixKeys calls fn with batches of the read-model keys under prefix: the
// tenant keys P{t}:… (t a valid tenant id), Ptenants, Pcheckpoint:…, the
// markers P{marker}:present and :building, and on a cluster the slot
// markers P{slot:…}:marker. Other keys that merely start with prefix —
// another prefix nested in it (sl:r…: in sl:), the active-prefix key, leases
// ({lease:…}) — are not read-model keys of this prefix and are left out.
// On a cluster every master is scanned, one after the other; the keys of a
// batch all come from one master but not from one slot.
func prefixKeys(ctx context.Context, rdb redis.UniversalClient, prefix string, fn func([]string) error) error {
	if prefix == "" {
		return errors.New("readmodel: empty prefix")
	}
	layoutKey := func(k string) bool {
		rest := strings.TrimPrefix(k, prefix)
		if isSlotMarker(rest) {
			return true
		}
		if rest == markerTag+"present" || rest == markerTag+"building" {
			return false // listed below, once
		}
		t, _, ok := strings.Cut(strings.TrimPrefix(rest, "{"), "}:")
		return ok && domain.ValidID(t)
	}
	for _, pat := range []string{GlobEscape(prefix) + "{*", GlobEscape(prefix) + "checkpoint:*"} {
		tenants := strings.HasSuffix(pat, "{*")
		err := ScanEach(ctx, rdb, pat, func(ks []string) error {
			if tenants {
				ks = slices.DeleteFunc(ks, func(k string) bool { return !layoutKey(k) })
			}
			if len(ks) == 0 {
				return nil
			}
			return fn(ks)
		})
		if err != nil {
			return err
		}
	}
	k := Keys{Prefix: prefix}
	var fixed []string
	for _, key := range []string{k.Tenants(), k.Present(), k.Building()} {
		n, err := rdb.Exists(ctx, key).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			fixed = append(fixed, key)
		}
	}
	if len(fixed) > 0 {
		return fn(fixed)
	}
	return nil
}

// DeletePrefix removes the read-model keys under prefix (SCAN + UNLINK in
// batches) and returns how many it removed. Only keys of the read-model
// layout go (see docs/READMODELS.md): deleting "sl:" leaves "sl:r…:" prefixes,
// sl:active-prefix and leases alone.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	n := 0
	err := prefixKeys(ctx, rdb, prefix, func(ks []string) error {
		if err := unlink(ctx, rdb, ks); err != nil {
			return fmt.Errorf("readmodel: delete prefix %s: %w", prefix, err)
		}
		n += len(ks)
		return nil
	})
	return n, err
}

// unlink deletes keys: in one UNLINK on one server; on a cluster, where one
// command may only name keys of one slot, one UNLINK per slot, pipelined.
func unlink(ctx context.Context, rdb redis.UniversalClient, keys []string) error {
	if !IsCluster(rdb) {
		return rdb.Unlink(ctx, keys...).Err()
	}
	bySlot := map[int][]string{}
	for _, k := range keys {
		s := Slot(k)
		bySlot[s] = append(bySlot[s], k)
	}
	pipe := rdb.Pipeline()
	for _, ks := range bySlot {
		pipe.Unlink(ctx, ks...)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// PrefixDifference is a key whose content differs between two prefixes.
type PrefixDifference struct {
	Key string `json:"key"` // without the prefix
	A   string `json:"a"`   // canonical content under prefix A ("" when missing)
	B   string `json:"b"`
}

// ComparePrefixes compares the read models under two prefixes key by key
// (type, fields or members and their values or scores, byte for byte),
// ignoring the markers (IsMarker). It returns at most max differences (0: 1000).
// An audit: replay into a scratch prefix (rebuild.ReplayConfig.NoSwap) and compare
// it with the active one.
func ComparePrefixes(ctx context.Context, rdb redis.UniversalClient, a, b string, max int) ([]PrefixDifference, error) {
	if max <= 0 {
		max = 1000
	}
	da, err := DumpPrefix(ctx, rdb, a)
	if err != nil {
		return nil, err
	}
	db, err := DumpPrefix(ctx, rdb, b)
	if err != nil {
		return nil, err
	}
	all := map[string]bool{}
	for k := range da {
		all[k] = true
	}
	for k := range db {
		all[k] = true
	}
	var out []PrefixDifference
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if IsMarker(k) || da[k] == db[k] {
			continue
		}
		if len(out) == max {
			break
		}
		out = append(out, PrefixDifference{Key: k, A: da[k], B: db[k]})
	}
	return out, nil
}

// DumpPrefix returns every read-model key under prefix (the prefix
// stripped) with a canonical text of its content: its type, then its
// fields, members or value sorted, each on a line (hash: field=value, sorted
// set: member=score). The slot markers of a cluster (16,384 keys that say
// nothing of the content) are left out. Keys are read a batch at a time,
// pipelined.
func DumpPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (map[string]string, error) {
	out := map[string]string{}
	err := prefixKeys(ctx, rdb, prefix, func(ks []string) error {
		ks = slices.DeleteFunc(slices.Clone(ks), func(k string) bool { return isSlotMarker(strings.TrimPrefix(k, prefix)) })
		pipe := rdb.Pipeline()
		types := make([]*redis.StatusCmd, len(ks))
		for i, k := range ks {
			types[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		pipe = rdb.Pipeline()
		reads := make([]redis.Cmder, len(ks))
		for i, k := range ks {
			switch types[i].Val() {
			case "hash":
				reads[i] = pipe.HGetAll(ctx, k)
			case "zset":
				reads[i] = pipe.ZRangeWithScores(ctx, k, 0, -1)
			case "set":
				reads[i] = pipe.SMembers(ctx, k)
			case "string":
				reads[i] = pipe.Get(ctx, k)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, k := range ks {
			typ := types[i].Val()
			var parts []string
			switch c := reads[i].(type) {
			case *redis.MapStringStringCmd:
				for f, v := range c.Val() {
					parts = append(parts, f+"="+v)
				}
			case *redis.ZSliceCmd:
				for _, z := range c.Val() {
					parts = append(parts, fmt.Sprint(z.Member)+"="+strconv.FormatFloat(z.Score, 'g', -1, 64))
				}
			case *redis.StringSliceCmd:
				parts = c.Val()
			case *redis.StringCmd:
				parts = []string{c.Val()}
			default:
				if typ == "none" { // gone meanwhile
					continue
				}
				parts = []string{"<" + typ + ">"}
			}
			sort.Strings(parts)
			out[strings.TrimPrefix(k, prefix)] = typ + "\n" + strings.Join(parts, "\n")
		}
		return nil
	})
	return out, err
}

// GlobEscape escapes the glob characters of s for a SCAN MATCH pattern.
func GlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
