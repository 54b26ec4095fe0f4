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
// whatever its suffix: the rendered ones and any left behind.
func TenantKeys(ctx context.Context, rdb redis.UniversalClient, keys Keys, t string) ([]string, error) {
	return scanKeys(ctx, rdb, GlobEscape(keys.Tenant(t))+"*")
}

func scanKeys(ctx context.Context, rdb redis.UniversalClient, match string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		ks, next, err := rdb.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("readmodel: scan %s: %w", match, err)
		}
		out = append(out, ks...)
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// prefixKeys calls fn with batches of the read-model keys under prefix: the
// tenant keys P{t}:… (t a valid tenant id), Ptenants, Pcheckpoint:… and
// P{marker}:present. Other keys that merely start with prefix — another prefix nested
// in it (sl:r…: in sl:), the active-prefix key, leases ({lease:…}) — are
// not read-model keys of this prefix and are left out.
func prefixKeys(ctx context.Context, rdb redis.UniversalClient, prefix string, fn func([]string) error) error {
	if prefix == "" {
		return errors.New("readmodel: empty prefix")
	}
	tenantKey := func(k string) bool {
		rest := strings.TrimPrefix(k, prefix+"{")
		t, _, ok := strings.Cut(rest, "}:")
		return ok && domain.ValidID(t)
	}
	for _, pat := range []string{GlobEscape(prefix) + "{*", GlobEscape(prefix) + "checkpoint:*"} {
		tenants := strings.HasSuffix(pat, "{*")
		var cursor uint64
		for {
			ks, next, err := rdb.Scan(ctx, cursor, pat, 1000).Result()
			if err != nil {
				return fmt.Errorf("readmodel: scan %s: %w", pat, err)
			}
			if tenants {
				j := 0
				for _, k := range ks {
					if tenantKey(k) {
						ks[j] = k
						j++
					}
				}
				ks = ks[:j]
			}
			if len(ks) > 0 {
				if err := fn(ks); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
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
		if err := rdb.Unlink(ctx, ks...).Err(); err != nil {
			return fmt.Errorf("readmodel: delete prefix %s: %w", prefix, err)
		}
		n += len(ks)
		return nil
	})
	return n, err
}

// PrefixDifference is a key whose content differs between two prefixes.
type PrefixDifference struct {
	Key string `json:"key"` // without the prefix
	A   string `json:"a"`   // canonical content under prefix A ("" when missing)
	B   string `json:"b"`
}

// ComparePrefixes compares the read models under two prefixes key by key
// (type, fields or members and their values or scores, byte for byte),
// ignoring the Present marker. It returns at most max differences (0: 1000).
// An audit: replay into a scratch prefix (projections.ReplayConfig.NoSwap) and compare
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
	unprefixed := Keys{} // the markers' keys without a prefix
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if k == unprefixed.Present() || k == unprefixed.Building() || da[k] == db[k] {
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
// set: member=score).
func DumpPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (map[string]string, error) {
	out := map[string]string{}
	err := prefixKeys(ctx, rdb, prefix, func(ks []string) error {
		for _, k := range ks {
			typ, err := rdb.Type(ctx, k).Result()
			if err != nil {
				return err
			}
			var parts []string
			switch typ {
			case "hash":
				h, err := rdb.HGetAll(ctx, k).Result()
				if err != nil {
					return err
				}
				for f, v := range h {
					parts = append(parts, f+"="+v)
				}
			case "zset":
				zs, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
				if err != nil {
					return err
				}
				for _, z := range zs {
					parts = append(parts, fmt.Sprint(z.Member)+"="+strconv.FormatFloat(z.Score, 'g', -1, 64))
				}
			case "set":
				if parts, err = rdb.SMembers(ctx, k).Result(); err != nil {
					return err
				}
			case "string":
				s, err := rdb.Get(ctx, k).Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				parts = []string{s}
			case "none": // gone meanwhile
				continue
			default:
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
