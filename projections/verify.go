package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/tenantstream"
)

// Difference is one place where Redis does not hold what the events say.
type Difference struct {
	Tenant string `json:"tenant"`
	Key    string `json:"key"`
	Field  string `json:"field,omitempty"` // hash field or sorted-set member
	Want   string `json:"want"`            // "" when the field should not exist
	Got    string `json:"got"`             // "" when it is missing
}

func (d Difference) String() string {
	return fmt.Sprintf("tenant %s: %s %s: want %q, got %q", d.Tenant, d.Key, d.Field, d.Want, d.Got)
}

// Report is the outcome of Verify.
type Report struct {
	Tenants     int          `json:"tenants"`
	Keys        int          `json:"keys"`
	Differences []Difference `json:"differences"`
	Truncated   bool         `json:"truncated,omitempty"`
}

// OK reports whether no difference was found.
func (r Report) OK() bool { return len(r.Differences) == 0 }

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	Snapshots eventstore.SnapshotStore
	Upcasters domain.Upcasters
	Catalog   *domain.Catalog // default domain.DefaultCatalog()
	// Tenants limits the check (default: every tenant of the store's log
	// and of the Redis tenant set).
	Tenants []string
	// MaxDifferences stops the report after this many (default 1000).
	MaxDifferences int
}

// Verify folds every tenant from the event store, renders its read models
// with the projection's own code and compares them with what Redis holds
// under prefix, reporting each difference. Run it when the projection has
// caught up (a lagging projection shows as differences).
func Verify(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, prefix string, opts VerifyOptions) (Report, error) {
	if opts.Catalog == nil {
		opts.Catalog = domain.DefaultCatalog()
	}
	if opts.MaxDifferences <= 0 {
		opts.MaxDifferences = 1000
	}
	keys := readmodel.Keys{Prefix: prefix}
	tenants := opts.Tenants
	if len(tenants) == 0 {
		var err error
		if tenants, err = discoverTenants(ctx, store, rdb, keys); err != nil {
			return Report{}, err
		}
	}
	var rep Report
	add := func(d Difference) bool {
		if len(rep.Differences) >= opts.MaxDifferences {
			rep.Truncated = true
			return false
		}
		rep.Differences = append(rep.Differences, d)
		return true
	}
	for _, tid := range tenants {
		rep.Tenants++
		st, err := tenantstream.Fold(ctx, store, opts.Snapshots, opts.Upcasters, tid, 0)
		if err != nil {
			return rep, err
		}
		want := newMapSink()
		if st.Version > 0 {
			(&renderer{cat: opts.Catalog, t: st, out: want}).all()
			want.hset(readmodel.Meta, "version", []byte(strconv.FormatUint(st.Version, 10)))
		}
		got, err := dumpTenant(ctx, rdb, keys, tid)
		if err != nil {
			return rep, err
		}
		rep.Keys += len(got.hashes) + len(got.zsets)
		if !compareTenant(tid, keys, want, got, add) {
			break
		}
	}
	return rep, nil
}

func discoverTenants(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, keys readmodel.Keys) ([]string, error) {
	set := map[string]bool{}
	after := eventstore.Start
	for {
		evs, err := store.ReadAll(ctx, after, 4096)
		if err != nil {
			return nil, fmt.Errorf("verify: read the log: %w", err)
		}
		for _, e := range evs {
			if t, ok := tenantstream.TenantID(e.Stream); ok {
				set[t] = true
			}
			after = e.Position
		}
		if len(evs) < 4096 {
			break
		}
	}
	inRedis, err := rdb.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return nil, fmt.Errorf("verify: read tenants: %w", err)
	}
	for _, t := range inRedis {
		set[t] = true
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// dumpTenant reads every key of a tenant (readmodel.TenantKeys: a SCAN of
// its prefix, on a cluster of the master of its slot).
func dumpTenant(ctx context.Context, rdb redis.UniversalClient, keys readmodel.Keys, tid string) (*mapSink, error) {
	base := keys.Tenant(tid)
	out := newMapSink()
	ks, err := readmodel.TenantKeys(ctx, rdb, keys, tid)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, k := range ks {
		suffix := strings.TrimPrefix(k, base)
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		switch typ {
		case "hash":
			h, err := rdb.HGetAll(ctx, k).Result()
			if err != nil {
				return nil, err
			}
			out.hashes[suffix] = h
		case "zset":
			zs, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				return nil, err
			}
			m := map[string]float64{}
			for _, z := range zs {
				m[z.Member.(string)] = z.Score
			}
			out.zsets[suffix] = m
		default:
			out.hashes[suffix] = map[string]string{"<type>": typ}
		}
	}
	return out, nil
}

func compareTenant(tid string, keys readmodel.Keys, want, got *mapSink, add func(Difference) bool) bool {
	hk := map[string]bool{}
	for k := range want.hashes {
		hk[k] = true
	}
	for k := range got.hashes {
		hk[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(hk)) {
		w, g := want.hashes[k], got.hashes[k]
		fields := map[string]bool{}
		for f := range w {
			fields[f] = true
		}
		for f := range g {
			fields[f] = true
		}
		for _, f := range slices.Sorted(maps.Keys(fields)) {
			if w[f] != g[f] {
				if !add(Difference{Tenant: tid, Key: keys.Key(tid, k), Field: f, Want: w[f], Got: g[f]}) {
					return false
				}
			}
		}
	}
	zk := map[string]bool{}
	for k := range want.zsets {
		zk[k] = true
	}
	for k := range got.zsets {
		zk[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(zk)) {
		w, g := want.zsets[k], got.zsets[k]
		members := map[string]bool{}
		for m := range w {
			members[m] = true
		}
		for m := range g {
			members[m] = true
		}
		for _, m := range slices.Sorted(maps.Keys(members)) {
			ws, wok := w[m]
			gs, gok := g[m]
			if wok != gok || ws != gs {
				if !add(Difference{Tenant: tid, Key: keys.Key(tid, k), Field: m, Want: score(ws, wok), Got: score(gs, gok)}) {
					return false
				}
			}
		}
	}
	return true
}

func score(s float64, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatFloat(s, 'f', -1, 64)
}
