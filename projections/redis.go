package projections

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/render"
)

// StartEmbeddedRedis starts an in-process Redis (miniredis) for the
// zero-setup run, set up to run the projection's flushes in Go
// (ServeFlushNatively), and returns its URL. It starts empty, so a projection over
// it rebuilds from position 0. stop shuts it down.
func StartEmbeddedRedis() (url string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return "", nil, fmt.Errorf("projections: start in-process redis: %w", err)
	}
	release, err := render.ServeFlushNatively(m)
	if err != nil {
		m.Close()
		return "", nil, err
	}
	return "redis://" + m.Addr(), func() { release(); m.Close() }, nil
}

// OpenRedis connects to a redis:// (or rediss://) URL, one server or a
// Redis Cluster (readmodel.ParseURL), and pings it.
func OpenRedis(ctx context.Context, url string) (redis.UniversalClient, error) {
	c, err := readmodel.NewClient(url)
	if err != nil {
		return nil, fmt.Errorf("projections: redis url: %w", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("projections: redis: %w", err)
	}
	if err := readmodel.CheckNotCluster(ctx, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("projections: redis: %w", err)
	}
	return c, nil
}
