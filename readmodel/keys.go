// Package readmodel is the contract between the projector, which writes
// seatledger's Redis read models, and their readers (queries, the
// scheduler, the serve command's supervisor): the key layout, the rows
// stored under it, and the rules of the active prefix, the presence markers
// and the checkpoint; and, since it knows which keys make up a prefix, the
// tools that list, dump, compare and delete them (prefixes.go). See
// docs/READMODELS.md for the layout in full.
//
// Invariants:
//   - every key of a tenant begins with Keys.Tenant: the prefix, then the
//     Redis Cluster hash tag {tenantID}, so a tenant's keys share one slot
//     and one script call can update them all;
//   - a tenant's Meta hash holds, in its "version" field, the tenant-stream
//     version the read model applied, written in the same call as the change;
//   - queries read the prefix named by ActivePrefixKey; a replay builds into
//     a fresh prefix and swaps that key in one SET;
//   - a prefix's read models are complete up to its checkpoint only while its
//     Present marker exists; Redis losing its data loses the marker too.
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/eventstore"
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

// Key returns the full key of a tenant key suffix (e.g. Users).
func (k Keys) Key(t, suffix string) string { return k.Prefix + "{" + t + "}:" + suffix } // one allocation

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

// The keys of one tenant, as suffixes for Keys.Key.
const (
	// Meta is a hash: id, name, version (the tenant stream version applied).
	Meta = "meta"
	// Licenses is a hash skuId -> LicenseRow JSON (the Licenses page, R5).
	Licenses = "licenses"
	// Subscriptions is a hash subscriptionId -> SubscriptionRow JSON ("Your products").
	Subscriptions = "subscriptions"
	// Apps is a hash skuId -> domain.Product JSON of the tenant's ISV apps.
	Apps = "apps"
	// Users is a hash userId -> UserView JSON.
	Users = "users"
	// UsersIndex is a sorted set (score 0, lexical) of user ids.
	UsersIndex = "users:index"
	// Groups is a hash groupId -> GroupView JSON.
	Groups = "groups"
	// Held is a hash HeldMember -> HeldRow JSON.
	Held = "held"
	// HeldIndex is a sorted set (score 0, lexical) of HeldMember.
	HeldIndex = "held:index"
	// HeldDue is a sorted set of HeldMember scored by purgeAfter (Unix
	// seconds); retained data is left out (R10). The scheduler reads it.
	HeldDue = "held:due"
	// SubscriptionsDue is a sorted set of subscription ids scored by the
	// next step of their lifecycle (domain.Subscription.NextLifecycle, Unix
	// seconds rounded up); deleted subscriptions are left out (R17). The
	// scheduler reads it.
	SubscriptionsDue = "subscriptions:due"
)

// LicenseUsers is the key suffix of a sorted set (score 0, lexical) of the
// users holding sku.
func LicenseUsers(sku string) string { return "license:" + sku + ":users" }

// GroupMembers is the key suffix of a sorted set (score 0, lexical) of a
// group's members.
func GroupMembers(g string) string { return "group:" + g + ":members" }

// GroupErrors is the key suffix of a hash userId -> []MemberError JSON: the
// members a group could not license (R11).
func GroupErrors(g string) string { return "group:" + g + ":errors" }

// HeldMember is the member naming held data in Held, HeldIndex and HeldDue:
// "<userId>|<workload>".
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
		return errors.New("readmodel: empty prefix")
	}
	return rdb.Set(ctx, ActivePrefixKey, prefix, 0).Err()
}

// ReadCheckpoint returns the global position stored at key (a
// Keys.Checkpoint), eventstore.Start if there is none.
func ReadCheckpoint(ctx context.Context, rdb redis.UniversalClient, key string) (eventstore.Position, error) {
	s, err := rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return eventstore.Start, nil
	}
	if err != nil {
		return 0, fmt.Errorf("readmodel: read checkpoint: %w", err)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("readmodel: checkpoint %q: %w", s, err)
	}
	return eventstore.Position(n), nil
}
