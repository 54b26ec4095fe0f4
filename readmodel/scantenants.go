package readmodel

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
)

// SplitTenantKey splits a key of the layout P{t}:suffix under k.Prefix into
// its tenant and suffix. ok is false for any other key: another prefix,
// Ptenants, the checkpoints, and the Present and Building markers (which
// look like the keys of a tenant named "marker"), and a cluster's slot
// markers P{slot:<n>}:marker, whose tag is no valid tenant id.
func (k Keys) SplitTenantKey(key string) (tenant, suffix string, ok bool) {
	rest, found := strings.CutPrefix(key, k.Prefix+"{")
	if !found {
		return "", "", false
	}
	tenant, suffix, found = strings.Cut(rest, "}:")
	if !found || !domain.ValidID(tenant) || key == k.Present() || key == k.Building() {
		return "", "", false
	}
	return tenant, suffix, true
}

// ScanTenantKeys calls fn with batches of the tenant keys under prefix
// (P{t}:… for a valid tenant id t, the markers left out): one pass over the
// keyspace, through the same scan as DeletePrefix, so every master of a
// cluster is covered. A key may be handed over twice (SCAN's guarantee),
// and keys written meanwhile may or may not be. fn must not keep ks.
func ScanTenantKeys(ctx context.Context, rdb redis.UniversalClient, prefix string, fn func(ks []string) error) error {
	k := Keys{Prefix: prefix}
	return prefixKeys(ctx, rdb, prefix, func(ks []string) error {
		j := 0
		for _, key := range ks {
			if _, _, ok := k.SplitTenantKey(key); ok {
				ks[j] = key
				j++
			}
		}
		if j == 0 {
			return nil
		}
		return fn(ks[:j])
	})
}
