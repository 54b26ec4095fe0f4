package readmodel

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ParseURL reads the URL of the Redis holding the read models. One server:
// redis://[user:password@]host:port[/db] (rediss:// for TLS), the
// go-redis URL form. A Redis Cluster: the same with more nodes as addr
// parameters, redis://host1:port1?addr=host2:port2&addr=host3:port3
// (go-redis's cluster URL form; any node is enough to find the others, and
// a cluster of one seed is redis://host:port?addr=host:port). Exactly one
// of the two options is returned.
func ParseURL(rawURL string) (*redis.Options, *redis.ClusterOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if !u.Query().Has("addr") {
		opts, err := redis.ParseURL(rawURL)
		return opts, nil, err
	}
	if u.Path != "" && u.Path != "/" && u.Path != "/0" {
		return nil, nil, fmt.Errorf("a Redis Cluster has only database 0, not %s (the addr parameters make this a cluster URL)", u.Path)
	}
	opts, err := redis.ParseClusterURL(rawURL)
	return nil, opts, err
}

// NewClient returns a client of the Redis at rawURL (see ParseURL): a
// *redis.ClusterClient for a cluster, else a *redis.Client. It does not
// connect.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	one, cluster, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if cluster != nil {
		return redis.NewClusterClient(cluster), nil
	}
	return redis.NewClient(one), nil
}

// ErrClusterNode says a one-server URL names a node of a Redis Cluster.
var ErrClusterNode = errors.New("this Redis is a node of a Redis Cluster: name the cluster in the URL with addr parameters, e.g. redis://host1:port1?addr=host2:port2&addr=host3:port3")

// CheckNotCluster returns ErrClusterNode if rdb is a one-server client
// talking to a node of a Redis Cluster: it would be answered MOVED for most
// keys and could not follow. The URL must then name the cluster
// (ParseURL). Other errors say the server could not be asked.
func CheckNotCluster(ctx context.Context, rdb redis.UniversalClient) error {
	if _, ok := rdb.(*redis.Client); !ok {
		return nil
	}
	info, err := rdb.Info(ctx, "cluster").Result()
	var reply redis.Error
	if errors.As(err, &reply) {
		return nil // a server without the section (an in-process one) is no cluster
	}
	if err != nil {
		return err
	}
	if strings.Contains(info, "cluster_enabled:1") {
		return ErrClusterNode
	}
	return nil
}

// eachNode calls fn with the client of every node holding keys: the one
// server, or each master of a cluster, one after the other. A SCAN only
// sees the keys of the node it runs on; scanning every master sees them all
// (keys moved by a resharding meanwhile may be missed or seen twice).
func eachNode(ctx context.Context, rdb redis.UniversalClient, fn func(*redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.Client:
		return fn(c)
	case *redis.ClusterClient:
		var mu sync.Mutex
		var masters []*redis.Client
		err := c.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
			mu.Lock()
			masters = append(masters, m)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return fmt.Errorf("readmodel: list the cluster's masters: %w", err)
		}
		for _, m := range masters {
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("readmodel: cannot scan the keys of a %T (one server or a cluster only)", rdb)
	}
}

// ScanEach calls fn with the keys matching the SCAN pattern match, page by
// page, on every node holding keys (every master of a cluster).
func ScanEach(ctx context.Context, rdb redis.UniversalClient, match string, fn func([]string) error) error {
	return eachNode(ctx, rdb, func(node *redis.Client) error {
		var cursor uint64
		for {
			ks, next, err := node.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return fmt.Errorf("readmodel: scan %s: %w", match, err)
			}
			if len(ks) > 0 {
				if err := fn(ks); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	})
}
