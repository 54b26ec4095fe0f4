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

// RedisSchedule reads the held-data schedule the projection keeps in Redis:
// for every tenant, the sorted set P{t}:held:due of "<user>|<workload>"
// scored by purge time (Unix seconds).
type RedisSchedule struct {
	RDB redis.UniversalClient
	// Prefix of the read models; empty: the active prefix (follows replays).
	Prefix string
}

// Due implements Schedule: it asks every tenant's schedule for the entries
// due at now, in pipelines of 256 tenants.
func (r RedisSchedule) Due(ctx context.Context, now time.Time, limit int) ([]Due, error) {
	prefix := r.Prefix
	if prefix == "" {
		var err error
		if prefix, err = readmodel.ActivePrefix(ctx, r.RDB); err != nil {
			return nil, err
		}
	}
	keys := readmodel.Keys{Prefix: prefix}
	tenants, err := r.RDB.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	sort.Strings(tenants)
	max := strconv.FormatInt(now.Unix(), 10)
	var out []Due
	for len(tenants) > 0 && len(out) < limit {
		n := min(len(tenants), 256)
		pipe := r.RDB.Pipeline()
		cmds := make([]*redis.ZSliceCmd, n)
		for i, t := range tenants[:n] {
			cmds[i] = pipe.ZRangeByScoreWithScores(ctx, keys.Key(t, readmodel.HeldDue),
				&redis.ZRangeBy{Min: "-inf", Max: max, Count: int64(limit - len(out))})
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("read held-data schedule: %w", err)
		}
		for i, t := range tenants[:n] {
			for _, z := range cmds[i].Val() {
				user, workload, ok := readmodel.SplitHeldMember(fmt.Sprint(z.Member))
				if !ok {
					continue
				}
				out = append(out, Due{TenantID: t, UserID: user, Workload: workload, PurgeAfter: time.Unix(int64(z.Score), 0).UTC()})
			}
		}
		tenants = tenants[n:]
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PurgeAfter.Before(out[j].PurgeAfter) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
