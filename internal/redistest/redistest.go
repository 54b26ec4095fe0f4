// Package redistest gives the read side's tests the Redis deployments
// seatledger runs on: one server (127.0.0.1:6379) and a Redis Cluster of
// three masters. The cluster is the one SEATLEDGER_TEST_REDIS_CLUSTER names
// (.ci/run starts one), else one this package starts from the redis-server
// on PATH, once per test process, and stops in Main. Tests run on both with
// Each; a test that needs a cluster of its own (to kill a master) starts one
// with NewCluster.
package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/readmodel"
)

// EnvCluster names the environment variable holding the URL of a Redis
// Cluster for the tests, in SEATLEDGER_REDIS_URL's cluster form:
// redis://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003.
const EnvCluster = "SEATLEDGER_TEST_REDIS_CLUSTER"

// SingleAddr is the one Redis server of the tests.
const SingleAddr = "127.0.0.1:6379"

// Kind is a Redis deployment.
type Kind string

const (
	Single  Kind = "single"  // one Redis server
	Cluster Kind = "cluster" // a Redis Cluster of three masters
)

// Kinds are the deployments Each runs a test on.
var Kinds = []Kind{Single, Cluster}

// Each runs fn as a subtest on each Kind ("single", "cluster").
func Each(t *testing.T, fn func(t *testing.T, k Kind)) {
	t.Helper()
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) { fn(t, k) })
	}
}

// Open returns a client of a Redis of kind k, closed when t ends: for
// Single the server at SingleAddr, database db; for Cluster the shared
// cluster (database 0: a cluster has no other; db is ignored). It skips t
// when that Redis is not there.
func Open(t testing.TB, k Kind, db int) redis.UniversalClient {
	t.Helper()
	var rdb redis.UniversalClient
	switch k {
	case Single:
		rdb = redis.NewClient(&redis.Options{Addr: SingleAddr, DB: db})
	case Cluster:
		url := sharedClusterURL(t)
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			t.Fatalf("%s: %v", EnvCluster, err)
		}
		rdb = redis.NewClusterClient(opts)
	default:
		t.Fatalf("redistest: unknown kind %q", k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Skipf("the %s Redis is not reachable (%v): skipping", k, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

var shared struct {
	mu      sync.Mutex
	url     string
	err     error
	started *LocalCluster
}

// sharedClusterURL is $SEATLEDGER_TEST_REDIS_CLUSTER, else the URL of the
// cluster this process started (on first use). It skips t when there is
// neither the variable nor a redis-server to start.
func sharedClusterURL(t testing.TB) string {
	t.Helper()
	if url := os.Getenv(EnvCluster); url != "" {
		return url
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.url == "" && shared.err == nil {
		if _, err := exec.LookPath("redis-server"); err != nil {
			shared.err = fmt.Errorf("%s is unset and there is no redis-server on PATH to start one", EnvCluster)
		} else if c, err := StartCluster(ClusterOptions{NodeTimeout: 5 * time.Second}); err != nil {
			shared.err = fmt.Errorf("%s is unset and a cluster could not be started: %w", EnvCluster, err)
		} else {
			shared.started, shared.url = c, c.URL
		}
	}
	if shared.err != nil {
		t.Skipf("no Redis Cluster: %v", shared.err)
	}
	return shared.url
}

// Main runs the tests (m.Run) and then stops the cluster they started, if
// any. Use it in TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.started != nil {
		shared.started.Stop()
		shared.started = nil
	}
	return code
}

// NewCluster starts a cluster of opts.Masters masters for t alone (a test
// that kills a master must not share it), stopped when t ends. It skips t
// when there is no redis-server on PATH.
func NewCluster(t testing.TB, opts ClusterOptions) *LocalCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("no redis-server on PATH: skipping the test that needs a cluster of its own")
	}
	c, err := StartCluster(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Prefix returns a fresh key prefix for a test's read models.
func Prefix(name string) string { return fmt.Sprintf("sltest:%s%x:", name, rand.Uint64()) }

// Exclusive gives t, until it ends, the keys a deployment has once (the
// active prefix, the replay lock, the purge command stream): on one server
// the tests keep them apart with database numbers; a cluster has only
// database 0, so a test of another process using the same cluster waits
// for a lock on it. Nothing is done on one server.
func Exclusive(t testing.TB, rdb redis.UniversalClient) {
	t.Helper()
	if !readmodel.IsCluster(rdb) {
		return
	}
	const key = "redistest:{exclusive}"
	token := fmt.Sprintf("%s:%x", t.Name(), rand.Uint64())
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ok, err := rdb.SetNX(ctx, key, token, 3*time.Minute).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s is held by %s", key, rdb.Get(ctx, key).Val())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if rdb.Get(context.Background(), key).Val() == token {
			rdb.Del(context.Background(), key)
		}
	})
}

// Keys returns every key matching the SCAN pattern match, of every master
// on a cluster.
func Keys(ctx context.Context, rdb redis.UniversalClient, match string) ([]string, error) {
	var out []string
	err := readmodel.ScanEach(ctx, rdb, match, func(ks []string) error {
		out = append(out, ks...)
		return nil
	})
	return out, err
}

// Delete removes every key matching the SCAN pattern match, of every
// master on a cluster (one DEL per key, pipelined).
func Delete(ctx context.Context, rdb redis.UniversalClient, match string) error {
	return readmodel.ScanEach(ctx, rdb, match, func(ks []string) error {
		pipe := rdb.Pipeline()
		for _, k := range ks {
			pipe.Del(ctx, k)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}
