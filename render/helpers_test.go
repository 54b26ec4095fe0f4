package render

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// testRedis connects to the real Redis (one server) and returns a unique
// key prefix whose keys are deleted when the test ends.
func testRedis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	return testRedisOn(t, redistest.Single)
}

// testRedisOn is testRedis on a Redis of kind k (one server, database 0,
// or the test cluster).
func testRedisOn(t testing.TB, k redistest.Kind) (redis.UniversalClient, string) {
	t.Helper()
	rdb := redistest.Open(t, k, 0)
	prefix := redistest.Prefix("")
	t.Cleanup(func() { deletePrefix(rdb, prefix) })
	return rdb, prefix
}

// deletePrefix deletes every key that begins with prefix, on every master
// of a cluster.
func deletePrefix(rdb redis.UniversalClient, prefix string) {
	_ = redistest.Delete(context.Background(), rdb, readmodel.GlobEscape(prefix)+"*")
}

// dumpPrefix returns every key under prefix with a canonical text of its
// value, the markers of a cluster's slots left out.
func dumpPrefix(t testing.TB, rdb redis.UniversalClient, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	ks, err := redistest.Keys(ctx, rdb, readmodel.GlobEscape(prefix)+"*")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if strings.HasSuffix(k, "}:marker") && strings.Contains(k, "{slot:") {
			continue
		}
		typ := rdb.Type(ctx, k).Val()
		var parts []string
		switch typ {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				parts = append(parts, f+"="+v)
			}
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				parts = append(parts, fmt.Sprint(z.Member, "=", z.Score))
			}
		case "set":
			parts = rdb.SMembers(ctx, k).Val()
		case "string":
			parts = []string{rdb.Get(ctx, k).Val()}
		}
		sort.Strings(parts)
		out[k] = typ + ":" + strings.Join(parts, "\n")
	}
	return out
}

// embeddedRedis starts an in-process Redis set up with ServeFlushNatively,
// as the zero-setup run does, and returns its URL.
func embeddedRedis(t testing.TB) string {
	t.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	release, err := ServeFlushNatively(m)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { release(); m.Close() })
	return "redis://" + m.Addr()
}

// inProcessRedis connects to embeddedRedis's Redis.
func inProcessRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb, err := readmodel.NewClient(embeddedRedis(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	if n, _ := NativeFlusherFor(rdb); n == nil {
		t.Fatal("the in-process Redis does not run the flush in Go")
	}
	return rdb
}
