package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seatledger/seatledger/readmodel"
)

// RedisSchedule reads the schedules the projection keeps in Redis: for
// every tenant, the sorted set P{t}:held:due of "<user>|<workload>" scored
// by purge time, and P{t}:subscriptions:due of subscription ids scored by
// their next lifecycle step (Unix seconds).
type RedisSchedule struct {
	RDB redis.UniversalClient
	// Prefix of the read models; empty: the active prefix (follows replays).
	Prefix string
}

// Due implements Schedule: it asks every tenant's schedule for the entries
// due at now, in pipelines of 256 tenants.
func (r RedisSchedule) Due(ctx context.Context, now time.Time, limit int) ([]Due, error) {
	var out []Due
	err := r.scan(ctx, readmodel.HeldDue, now, limit, func(t string, z redis.Z) bool {
		user, workload, ok := readmodel.SplitHeldMember(fmt.Sprint(z.Member))
		if ok {
			out = append(out, Due{TenantID: t, UserID: user, Workload: workload, PurgeAfter: time.Unix(int64(z.Score), 0).UTC()})
		}
		return ok
	})
	if err != nil {
		return nil, fmt.Errorf("read held-data schedule: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PurgeAfter.Before(out[j].PurgeAfter) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DueSubscriptions implements LifecycleSchedule over the sorted sets
// P{t}:subscriptions:due of subscription ids scored by their next
// lifecycle step (Unix seconds).
func (r RedisSchedule) DueSubscriptions(ctx context.Context, now time.Time, limit int) ([]SubscriptionDue, error) {
	var out []SubscriptionDue
	err := r.scan(ctx, readmodel.SubscriptionsDue, now, limit, func(t string, z redis.Z) bool {
		out = append(out, SubscriptionDue{TenantID: t, SubscriptionID: fmt.Sprint(z.Member), At: time.Unix(int64(z.Score), 0).UTC()})
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read subscription lifecycle schedule: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// scan reads the members scored up to now of every tenant's sorted set
// suffix, in pipelines of 256 tenants, until limit members were added (add
// reports whether it took one).
func (r RedisSchedule) scan(ctx context.Context, suffix string, now time.Time, limit int, add func(tenant string, z redis.Z) bool) error {
	prefix := r.Prefix
	if prefix == "" {
		var err error
		if prefix, err = readmodel.ActivePrefix(ctx, r.RDB); err != nil {
			return err
		}
	}
	keys := readmodel.Keys{Prefix: prefix}
	tenants, err := r.RDB.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	sort.Strings(tenants)
	max := strconv.FormatInt(now.Unix(), 10)
	taken := 0
	for len(tenants) > 0 && taken < limit {
		n := min(len(tenants), 256)
		pipe := r.RDB.Pipeline()
		cmds := make([]*redis.ZSliceCmd, n)
		for i, t := range tenants[:n] {
			cmds[i] = pipe.ZRangeByScoreWithScores(ctx, keys.Key(t, suffix),
				&redis.ZRangeBy{Min: "-inf", Max: max, Count: int64(limit - taken)})
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
		for i, t := range tenants[:n] {
			for _, z := range cmds[i].Val() {
				if add(t, z) {
					taken++
				}
			}
		}
		tenants = tenants[n:]
	}
	return nil
}
