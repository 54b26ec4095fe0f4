// Package projections keeps seatledger's Redis read models up to date from
// the event store's global log.
//
// A Watermill router reads the log through Subscriber (ordered, at-least-once,
// resumable from a checkpoint Position). The projector folds each event into
// an in-memory domain.Tenant (a bounded LRU; a miss is folded from the store)
// and re-renders, from that state and with the domain's views, every read
// model entity the event touched. A tenant's changes and its applied version
// are written in one Lua call that does nothing when the tenant's applied
// version is already at or past the change: re-delivery is a no-op.
//
// Key layout (P is the active prefix, default "sl:"; every key of a tenant
// carries the Redis Cluster hash tag {tenantID}) — see docs/READMODELS.md.
package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix of the read models when no replay has
// swapped in another one.
const DefaultPrefix = "sl:"

// ActivePrefixKey holds the prefix queries read from. A replay builds into a
// fresh prefix and then swaps this key (SetActivePrefix).
const ActivePrefixKey = "sl:active-prefix"

// Keys names the Redis keys of the read models under one prefix.
type Keys struct{ Prefix string }

// Tenant returns the common beginning of every key of a tenant: P{t}:.
func (k Keys) Tenant(t string) string { return k.Prefix + "{" + t + "}:" }

// Key returns the full key of a tenant key suffix (e.g. "users").
func (k Keys) Key(t, suffix string) string { return k.Tenant(t) + suffix }

// Tenants is the set of tenant ids the projection has seen.
func (k Keys) Tenants() string { return k.Prefix + "tenants" }

// Checkpoint is the global position projection name has durably applied.
func (k Keys) Checkpoint(name string) string { return k.Prefix + "checkpoint:" + name }

// Present marks a prefix whose read models are complete up to its
// checkpoint (the serve command rebuilds a prefix whose marker is gone: Redis
// lost its data). Replay sets it on the prefix it built before swapping.
func (k Keys) Present() string { return k.Prefix + markerTag + "present" }

// Building marks a prefix a projection builds from the first event: the
// projection sets Present (and removes Building) once it has caught up, if
// Building is still there — if it is not, Redis lost the prefix meanwhile.
func (k Keys) Building() string { return k.Prefix + markerTag + "building" }

// markerTag puts the Present and Building markers in one hash slot, so that
// one script can check the one and set the other on a Redis Cluster.
const markerTag = "{marker}:"

// Tenant key suffixes.
const (
	// SufMeta is a hash: id, name, version (the tenant stream version applied).
	SufMeta = "meta"
	// SufLicenses is a hash skuId -> LicenseRow JSON (the Licenses page, R5).
	SufLicenses = "licenses"
	// SufSubscriptions is a hash subscriptionId -> SubscriptionRow JSON ("Your products").
	SufSubscriptions = "subscriptions"
	// SufApps is a hash skuId -> domain.Product JSON of the tenant's ISV apps.
	SufApps = "apps"
	// SufUsers is a hash userId -> UserView JSON.
	SufUsers = "users"
	// SufUsersIndex is a sorted set (score 0, lexical) of user ids.
	SufUsersIndex = "users:index"
	// SufGroups is a hash groupId -> GroupView JSON.
	SufGroups = "groups"
	// SufHeld is a hash "<userId>|<workload>" -> HeldRow JSON.
	SufHeld = "held"
	// SufHeldIndex is a sorted set (score 0, lexical) of "<userId>|<workload>".
	SufHeldIndex = "held:index"
	// SufHeldDue is a sorted set of "<userId>|<workload>" scored by purgeAfter
	// (Unix seconds); retained data is left out (R10). The scheduler reads it.
	SufHeldDue = "held:due"
)

// SufLicenseUsers is a sorted set (score 0, lexical) of the users holding sku.
func SufLicenseUsers(sku string) string { return "license:" + sku + ":users" }

// SufGroupMembers is a sorted set (score 0, lexical) of a group's members.
func SufGroupMembers(g string) string { return "group:" + g + ":members" }

// SufGroupErrors is a hash userId -> []MemberError JSON: the members a group
// could not license (R11).
func SufGroupErrors(g string) string { return "group:" + g + ":errors" }

// HeldMember is the member naming held data in SufHeld, SufHeldIndex and SufHeldDue.
func HeldMember(userID, workload string) string { return userID + "|" + workload }

// SplitHeldMember splits a HeldMember.
func SplitHeldMember(m string) (userID, workload string, ok bool) {
	return strings.Cut(m, "|")
}

// ActivePrefix returns the prefix queries should read, setting it to
// DefaultPrefix when no prefix was ever chosen.
func ActivePrefix(ctx context.Context, rdb redis.UniversalClient) (string, error) {
	p, err := rdb.Get(ctx, ActivePrefixKey).Result()
	if err == nil && p != "" {
		return p, nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("read active prefix: %w", err)
	}
	if err := rdb.SetNX(ctx, ActivePrefixKey, DefaultPrefix, 0).Err(); err != nil {
		return "", fmt.Errorf("set active prefix: %w", err)
	}
	p, err = rdb.Get(ctx, ActivePrefixKey).Result()
	if err != nil {
		return "", fmt.Errorf("read active prefix: %w", err)
	}
	return p, nil
}

// SetActivePrefix swaps the prefix queries read from (atomically: one SET).
func SetActivePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	if prefix == "" {
		return errors.New("projections: empty prefix")
	}
	return rdb.Set(ctx, ActivePrefixKey, prefix, 0).Err()
}
