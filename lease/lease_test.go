package lease

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testRedis(t *testing.T) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Skipf("Redis at 127.0.0.1:6379 is not reachable (%v): skipping", err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Three nodes campaign; one holds the job at a time; killing the holder
// (cancelling its campaign without release, as a crash would) hands the job
// to another within the TTL, with a larger fencing token.
func TestOneHolderAndTakeOverWithLargerToken(t *testing.T) {
	rdb := testRedis(t)
	name := fmt.Sprintf("test-%x", rand.Uint64())
	holder, tokenKey := keys(name)
	t.Cleanup(func() { rdb.Del(context.Background(), holder, tokenKey) })
	var running atomic.Int32
	var maxRunning atomic.Int32
	var mu sync.Mutex
	var tokens []int64
	holders := make(chan string, 16)
	start := func(owner string) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		go Run(ctx, Config{Redis: rdb, Name: name, Owner: owner, TTL: 300 * time.Millisecond}, func(jctx context.Context, token int64) error {
			n := running.Add(1)
			if n > maxRunning.Load() {
				maxRunning.Store(n)
			}
			mu.Lock()
			tokens = append(tokens, token)
			mu.Unlock()
			holders <- owner
			<-jctx.Done()
			running.Add(-1)
			return nil
		})
		return cancel
	}
	cancels := map[string]context.CancelFunc{}
	for _, o := range []string{"a", "b", "c"} {
		cancels[o] = start(o)
	}
	first := <-holders
	time.Sleep(500 * time.Millisecond) // others keep campaigning
	if maxRunning.Load() != 1 {
		t.Fatalf("%d holders at once", maxRunning.Load())
	}
	// Crash: stop renewing without releasing.
	if err := rdb.Set(context.Background(), holder, "crashed", 200*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	cancels[first]()
	var second string
	select {
	case second = <-holders:
	case <-time.After(3 * time.Second):
		t.Fatal("no node took over")
	}
	if second == first {
		t.Fatalf("the dead node %s holds the job again", first)
	}
	mu.Lock()
	if len(tokens) < 2 || tokens[len(tokens)-1] <= tokens[0] {
		t.Fatalf("fencing tokens did not grow: %v", tokens)
	}
	mu.Unlock()
	for _, c := range cancels {
		c()
	}
	if maxRunning.Load() != 1 {
		t.Fatalf("%d holders at once", maxRunning.Load())
	}
}
