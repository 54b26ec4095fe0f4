// Package lease elects one holder of a named job among seatledger nodes with
// a Redis lease: the holder renews it; when it dies, the lease expires and
// another node takes over. Each acquisition gets a fencing token that grows,
// so work done under an older token can be recognised as stale.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys of a lease share the hash tag {lease:<name>} (Redis Cluster: one slot).
func keys(name string) (holder, token string) {
	tag := "{lease:" + name + "}"
	return "sl:" + tag + ":holder", "sl:" + tag + ":token"
}

var acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0`)

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Config configures a lease.
type Config struct {
	Redis redis.UniversalClient
	Name  string // the job, e.g. "projection:readmodels"
	// Owner names this process; it must differ between processes (e.g.
	// node id + a random suffix).
	Owner  string
	TTL    time.Duration // default 5s: how long a dead holder blocks others
	Logger *slog.Logger
}

// ErrLost is the cause of a job context cancelled because the lease could
// not be renewed (another node may now hold it).
var ErrLost = errors.New("lease: lost")

// Run campaigns for the lease until ctx is done. Each time it is acquired,
// job runs with a context that is cancelled (cause ErrLost) as soon as the
// lease cannot be renewed; when job returns, the lease is released and the
// campaign starts again. Run returns when ctx is done.
func Run(ctx context.Context, cfg Config, job func(ctx context.Context, token int64) error) error {
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	holder, tokenKey := keys(cfg.Name)
	ttlMS := cfg.TTL.Milliseconds()
	retry := time.NewTicker(cfg.TTL / 5)
	defer retry.Stop()
	for {
		token, err := acquireScript.Run(ctx, cfg.Redis, []string{holder, tokenKey}, cfg.Owner, ttlMS).Int64()
		if err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("lease: cannot reach Redis; retrying", "lease", cfg.Name, "err", err)
		}
		if err == nil && token > 0 {
			cfg.Logger.Info("lease acquired", "lease", cfg.Name, "owner", cfg.Owner, "token", token)
			hold(ctx, cfg, holder, ttlMS, token, job)
			// Let go so another node can take over at once.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = releaseScript.Run(rctx, cfg.Redis, []string{holder}, cfg.Owner).Err()
			cancel()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
		}
	}
}

// hold runs job while renewing the lease.
func hold(ctx context.Context, cfg Config, holder string, ttlMS int64, token int64, job func(context.Context, int64) error) {
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- job(jctx, token) }()
	tick := time.NewTicker(cfg.TTL / 3)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				cfg.Logger.Error("lease job stopped", "lease", cfg.Name, "token", token, "err", err)
			}
			return
		case <-tick.C:
			rctx, rcancel := context.WithTimeout(ctx, cfg.TTL/3)
			n, err := renewScript.Run(rctx, cfg.Redis, []string{holder}, cfg.Owner, ttlMS).Int64()
			rcancel()
			if err != nil || n == 0 {
				cfg.Logger.Warn("lease lost; stopping the job", "lease", cfg.Name, "token", token, "err", fmt.Sprint(err))
				cancel(ErrLost)
				<-done
				return
			}
		}
	}
}

// Holder returns the current holder of a lease ("" when free).
func Holder(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
	holder, _ := keys(name)
	v, err := rdb.Get(ctx, holder).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}
