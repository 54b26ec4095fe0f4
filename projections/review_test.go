package projections

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/internal/redistest"
)

// panicOnceHook panics in the first script call (alone or pipelined) it
// sees: a bug in the write path (the client, a hook, the flush in Go).
type panicOnceHook struct{ panicked atomic.Bool }

func (h *panicOnceHook) check(cmds []redis.Cmder) {
	if len(cmds) > 0 && (cmds[0].Name() == "evalsha" || cmds[0].Name() == "eval") && h.panicked.CompareAndSwap(false, true) {
		panic("injected: a bug in the write path")
	}
}

func (h *panicOnceHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *panicOnceHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}
func (h *panicOnceHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.check(cmds)
		return next(ctx, cmds)
	}
}

// TestPanicInAWriteIsRecovered: a panic while a flush is written is
// recovered as Watermill's Recoverer recovered it when the handler wrote
// (doc.go: "panic recovery"), not a crash of the process now that the
// write runs in a flight: the write fails, is written again, and the read
// models verify.
func TestPanicInAWriteIsRecovered(t *testing.T) {
	for _, perTenant := range []bool{false, true} {
		name := "oneCall"
		if perTenant {
			name = "perTenant"
		}
		t.Run(name, func(t *testing.T) {
			rdb, prefix := testRedis(t)
			store := openStore(t)
			h := newHandler(store)
			defer h.Close()
			runScenario(t, h, "contoso", 61)
			hook := &panicOnceHook{}
			hooked := redistest.Open(t, redistest.Single, 0)
			hooked.AddHook(hook)
			rp := startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Redis: hooked, Prefix: prefix,
				RetryInitial: time.Millisecond})
			rp.waitFor(t, lastPosition(t, store))
			if !hook.panicked.Load() {
				t.Fatal("no write panicked: the test tested nothing")
			}
			if st := rp.p.Status(); st.Status == StatusStopped {
				t.Fatalf("status %+v", st)
			}
			if err := rp.shutdown(); err != nil {
				t.Fatal(err)
			}
			verifyClean(t, store, rdb, prefix)
		})
	}
}
