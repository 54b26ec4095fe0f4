package readmodel_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster []string // nil: one server
		addr    string
		db      int
		bad     bool
	}{
		{url: "redis://127.0.0.1:6379/3", addr: "127.0.0.1:6379", db: 3},
		{url: "redis://h1:7001?addr=h2:7002&addr=h3:7003", cluster: []string{"h1:7001", "h2:7002", "h3:7003"}},
		{url: "redis://u:p@h1:7001/0?addr=h2:7002", cluster: []string{"h1:7001", "h2:7002"}},
		{url: "redis://h1:7001/2?addr=h2:7002", bad: true}, // a cluster has database 0 only
		{url: "redis://h1:7001?addr=nope", bad: true},
		{url: "http://h1:7001", bad: true},
	} {
		one, cluster, err := readmodel.ParseURL(tc.url)
		switch {
		case tc.bad:
			if err == nil {
				t.Errorf("%s: no error", tc.url)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.cluster != nil:
			if one != nil || cluster == nil || len(cluster.Addrs) != len(tc.cluster) {
				t.Errorf("%s: %+v %+v", tc.url, one, cluster)
				continue
			}
			for i, a := range tc.cluster {
				if cluster.Addrs[i] != a {
					t.Errorf("%s: addrs %v", tc.url, cluster.Addrs)
				}
			}
		default:
			if cluster != nil || one == nil || one.Addr != tc.addr || one.DB != tc.db {
				t.Errorf("%s: %+v %+v", tc.url, one, cluster)
			}
		}
	}
	if c, err := readmodel.NewClient("redis://h1:7001?addr=h2:7002"); err != nil || !readmodel.IsCluster(c) {
		t.Errorf("NewClient of a cluster URL: %T %v", c, err)
	}
	if c, err := readmodel.NewClient("redis://h1:7001"); err != nil || readmodel.IsCluster(c) {
		t.Errorf("NewClient of a one-server URL: %T %v", c, err)
	}
}

// TestCheckNotCluster: a one-server client pointed at a node of a cluster
// is told so; a cluster client and a plain server pass.
func TestCheckNotCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.Open(t, redistest.Cluster, 0).(*redis.ClusterClient)
	var (
		mu   sync.Mutex // ForEachMaster calls fn on every master at once
		addr string
	)
	if err := cl.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		addr = m.Options().Addr
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	plain := redis.NewClient(&redis.Options{Addr: addr})
	defer plain.Close()
	if err := readmodel.CheckNotCluster(ctx, plain); !errors.Is(err, readmodel.ErrClusterNode) {
		t.Errorf("a plain client of a cluster node: %v", err)
	}
	if err := readmodel.CheckNotCluster(ctx, cl); err != nil {
		t.Errorf("a cluster client: %v", err)
	}
	if err := readmodel.CheckNotCluster(ctx, redistest.Open(t, redistest.Single, 0)); err != nil {
		t.Errorf("one server: %v", err)
	}
}
