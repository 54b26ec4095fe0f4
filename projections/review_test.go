package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
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

// partialHook holds the first pipeline of script calls to both tag's
// tenant and with's until release is closed, then sends it without the calls of one tenant
// (its keys hold tag), which fail unsent: a pipeline a cluster master
// failed part of.
type partialHook struct {
	armed   atomic.Bool
	tag     string
	with    string // held only with this tenant's calls too
	held    chan struct{}
	release chan struct{}
	once    atomic.Bool
}

func (h *partialHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *partialHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *partialHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		all := fmt.Sprint(cmds)
		if !h.armed.Load() || len(cmds) == 0 || cmds[0].Name() != "evalsha" || !strings.Contains(all, h.tag) || !strings.Contains(all, h.with) ||
			!h.once.CompareAndSwap(false, true) {
			return next(ctx, cmds)
		}
		close(h.held)
		<-h.release
		var sent, dropped []redis.Cmder
		for _, c := range cmds {
			if strings.Contains(fmt.Sprint(c.Args()...), h.tag) {
				dropped = append(dropped, c)
			} else {
				sent = append(sent, c)
			}
		}
		err := next(ctx, sent)
		lost := errors.New("injected: the master of " + h.tag + " failed")
		for _, c := range dropped {
			c.SetErr(lost)
		}
		if err == nil {
			err = lost
		}
		return err
	}
}

// gate holds the first decoding of the event adding a user (by marker)
// until open is closed; entered is closed when it begins.
type gate struct {
	marker        string
	entered, open chan struct{}
	once          atomic.Bool
}

func newGate(marker string) *gate {
	return &gate{marker: marker, entered: make(chan struct{}), open: make(chan struct{})}
}

// gatedUpcasters are spy's upcasters, held at gates.
func gatedUpcasters(spy *decodeSpy, gates ...*gate) domain.Upcasters {
	ups := spy.upcasters()
	look := ups[len(ups)-1].Upgrade // the spy's
	ups[len(ups)-1].Upgrade = func(data json.RawMessage) (json.RawMessage, error) {
		for _, g := range gates {
			if bytes.Contains(data, []byte(`"`+g.marker+`"`)) && g.once.CompareAndSwap(false, true) {
				close(g.entered)
				<-g.open
			}
		}
		return look(data)
	}
	return ups
}

// TestPartlyWrittenFlightWithBothTenantsStagedAgain: a per-tenant flight
// of two tenants, held while both are staged again, fails for one of them
// only (its master failed): the one written keeps its next changes as a
// diff from the flight's version, the other has them rebased onto the
// flight's base, and the read models are those of a fresh projection.
// (A wrong base would be refused (SLBASE) and healed by a rebase anyway:
// the log, which names each tenant rebased, is what shows that the tenant
// written was not taken for unwritten.)
func TestPartlyWrittenFlightWithBothTenantsStagedAgain(t *testing.T) {
	hook := &partialHook{tag: "{fabrikam}", with: "{contoso}", held: make(chan struct{}), release: make(chan struct{})}
	var freed atomic.Bool
	free := func() {
		if freed.CompareAndSwap(false, true) {
			close(hook.release)
		}
	}
	t.Cleanup(free)
	rdb, plain, prefix, fresh, _ := overlapRedis(t, overlapPath{"single/perTenant", redistest.Single, true}, hook)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 71)
	runScenario(t, h, "fabrikam", 72)
	spy := newDecodeSpy("zz-a", "zz-b", "zz-c", "zz-d")
	g0, gb := newGate("zz-0"), newGate("zz-b")
	for _, g := range []*gate{g0, gb} {
		t.Cleanup(func() {
			select {
			case <-g.open:
			default:
				close(g.open)
			}
		})
	}
	var log syncBuffer
	rp := startProjection(t, Config{PerTenantWrites: true, Store: store, Redis: rdb, Prefix: prefix,
		Upcasters: gatedUpcasters(spy, g0, gb), RetryInitial: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	rp.waitFor(t, lastPosition(t, store))
	waitWaiting := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); rp.p.sub.Waiting() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d events were not read ahead", n)
			}
		}
	}
	// The handler held in decoding zz-0 while zz-a and zz-b are read
	// ahead: they are one message, one flight (held); held in decoding
	// zz-b while zz-c and zz-d are read ahead: they are the next message,
	// staged while that flight is held.
	hook.armed.Store(true)
	addUser(t, h, "contoso", "zz-0")
	waitClosed(t, g0.entered, "zz-0 decoded")
	addUser(t, h, "contoso", "zz-a")
	addUser(t, h, "fabrikam", "zz-b")
	waitWaiting(2)
	close(g0.open)
	waitClosed(t, gb.entered, "zz-b decoded")
	addUser(t, h, "contoso", "zz-c")
	addUser(t, h, "fabrikam", "zz-d")
	waitWaiting(2)
	close(gb.open)
	waitClosed(t, hook.held, "the flight held")
	spy.wait(t, "zz-d", "while the flight is held")
	free()
	rp.waitFor(t, lastPosition(t, store))
	if st := rp.p.Status(); st.Status == StatusStopped {
		t.Fatalf("status %+v", st)
	}
	if err := rp.shutdown(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "tenant=fabrikam") || strings.Contains(log.String(), "tenant=contoso") {
		t.Errorf("want fabrikam rebased (its write failed), contoso not (written); log:\n%s", log.String())
	}
	checkLikeAFreshProjection(t, store, plain, true, prefix, fresh)
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: did not happen", what)
	}
}
