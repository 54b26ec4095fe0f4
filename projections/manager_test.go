package projections

import (
	"context"
	"testing"
	"time"

	"github.com/seatledger/seatledger/readmodel"
)

// TestManagerRebuildsWhatRedisLost: when the prefix it runs on loses every
// key, markers and checkpoint included (a FLUSHALL, a Redis restarted
// without persistence), the Manager builds it again from the first event
// and marks it present. A projection alone would go on from memory and
// never write the tenants that do not change.
func TestManagerRebuildsWhatRedisLost(t *testing.T) {
	rdb, prefix := testRedisReplay(t)
	ctx := context.Background()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 21)
	runScenario(t, h, "fabrikam", 22)
	if err := readmodel.SetActivePrefix(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	mgr, err := NewManager(Config{Store: store, Snapshots: store, Redis: rdb}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(mctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	keys := readmodel.Keys{Prefix: prefix}
	whole := func() bool {
		if rdb.Exists(ctx, keys.Present()).Val() != 1 {
			return false
		}
		rep, err := Verify(ctx, store, rdb, prefix, VerifyOptions{Tenants: []string{"contoso", "fabrikam"}})
		return err == nil && rep.OK()
	}
	waitWhole := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !whole() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the read models under %s are not whole and present", what, prefix)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitWhole("first build")

	n, err := readmodel.DeletePrefix(ctx, rdb, prefix)
	if err != nil || n == 0 {
		t.Fatalf("readmodel.DeletePrefix = %d, %v", n, err)
	}
	waitWhole("after Redis lost the prefix")
}
