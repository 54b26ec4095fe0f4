package projections

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/rebuild"
	"github.com/seatledger/seatledger/render"
)

// eachWritePath runs fn once with one script call per flush (one Redis
// node), once with one per tenant (Config.PerTenantWrites), once on the test
// Redis Cluster (where New forces per-tenant writes), each on a fresh
// prefix, and once on an in-process Redis that runs the flush in Go
// (ServeFlushNatively), each with a store holding contoso's and fabrikam's
// scenarios with the given seeds: every path must write the same read
// models.
func eachWritePath(t *testing.T, seedA, seedB uint64, fn func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string)) {
	eachWritePathWith(t, seedA, seedB, nil, fn)
}

// eachWritePathWith is eachWritePath with more commands run on each tenant
// after its scenario (nil: none).
func eachWritePathWith(t *testing.T, seedA, seedB uint64, more func(t testing.TB, h *commands.Handler, tenant string),
	fn func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string)) {
	for _, path := range []struct {
		name      string
		kind      redistest.Kind // "": the in-process Redis
		perTenant bool
	}{
		{"single/oneCall", redistest.Single, false},
		{"single/perTenant", redistest.Single, true},
		{"cluster/perTenant", redistest.Cluster, true},
		{"inProcessNative", "", false},
	} {
		t.Run(path.name, func(t *testing.T) {
			perTenant := path.perTenant
			var rdb redis.UniversalClient
			var prefix string
			if path.kind == "" {
				rdb, prefix = inProcessRedis(t), "sl:test:"
			} else {
				rdb, prefix = testRedisOn(t, path.kind)
			}
			store := openStore(t)
			h := newHandler(store)
			defer h.Close()
			runScenario(t, h, "contoso", seedA)
			runScenario(t, h, "fabrikam", seedB)
			if more != nil {
				more(t, h, "contoso")
				more(t, h, "fabrikam")
			}
			fn(t, perTenant, store, rdb, prefix)
		})
	}
}

// inProcessRedis starts StartEmbeddedRedis's in-process Redis for the test.
func inProcessRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	url, stop, err := StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	rdb, err := OpenRedis(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	if n, _ := render.NativeFlusherFor(rdb); n == nil {
		t.Fatal("the in-process Redis does not run the flush in Go")
	}
	return rdb
}

func TestProjectionMatchesTheFold(t *testing.T) {
	eachWritePath(t, 1, 2, func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string) {
		rp := startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Snapshots: store, Redis: rdb, Prefix: prefix})
		rp.waitFor(t, lastPosition(t, store))
		rep := verifyClean(t, store, rdb, prefix)
		if rep.Tenants != 2 || rep.Keys < 10 {
			t.Fatalf("report %+v", rep)
		}
		if st := rp.p.Status(); st.Status == StatusStopped || st.EventsApplied == 0 {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestProjectionOneEventAtATimeMatchesTheFold renders every event in a
// batch of its own: what an event touches must be rendered by that event,
// not by a later one of the same batch (a deleted group's members, say).
func TestProjectionOneEventAtATimeMatchesTheFold(t *testing.T) {
	eachWritePathWith(t, 1, 2, runGroupLifecycle, func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string) {
		rp := startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Snapshots: store, Redis: rdb, Prefix: prefix, BatchSize: 1})
		rp.waitFor(t, lastPosition(t, store))
		verifyClean(t, store, rdb, prefix)
	})
}

// TestTenantSetIsWrittenOncePerRun: a flush on one Redis node adds a
// tenant to the tenant set only the first time the run writes it (the
// per-tenant path adds it at every write); a new run adds it again.
func TestTenantSetIsWrittenOncePerRun(t *testing.T) {
	eachWritePath(t, 11, 12, func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		tenants := readmodel.Keys{Prefix: prefix}.Tenants()
		h := newHandler(store)
		defer h.Close()
		hold := false
		assign := func() { // a write of contoso: its retention hold flipped
			t.Helper()
			before := store.LastPosition()
			for range 2 {
				hold = !hold
				s := &scenario{t: t, h: h, tenant: "contoso", admin: domain.Actor{UserID: "admin"}}
				s.do(&domain.SetRetentionHold{CommandMeta: s.meta(), UserID: "u02", Enabled: hold})
				if store.LastPosition() > before {
					return
				}
			}
			t.Fatal("no write of contoso")
		}
		rp := startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Redis: rdb, Prefix: prefix})
		rp.waitFor(t, lastPosition(t, store))
		if !rdb.SIsMember(ctx, tenants, "contoso").Val() {
			t.Fatal("contoso is not in the tenant set")
		}
		rdb.SRem(ctx, tenants, "contoso")
		assign()
		rp.waitFor(t, lastPosition(t, store))
		if got := rdb.SIsMember(ctx, tenants, "contoso").Val(); got != perTenant {
			t.Fatalf("after a later write of the same run: contoso in the tenant set %v, want %v", got, perTenant)
		}
		if err := rp.shutdown(); err != nil {
			t.Fatal(err)
		}
		rp = startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Redis: rdb, Prefix: prefix})
		assign()
		rp.waitFor(t, lastPosition(t, store))
		if !rdb.SIsMember(ctx, tenants, "contoso").Val() {
			t.Fatal("a new run's write did not add contoso to the tenant set")
		}
	})
}

func TestRedeliveryChangesNothing(t *testing.T) {
	eachWritePath(t, 3, 4, func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string) {
		rp := startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Redis: rdb, Prefix: prefix, BatchSize: 16})
		rp.waitFor(t, lastPosition(t, store))
		if err := rp.shutdown(); err != nil {
			t.Fatal(err)
		}
		before := dumpPrefix(t, rdb, prefix)

		// Deliver every event again, twice: from position 0 with a cold cache
		// (states are folded at each event's version - 1, so the writes are
		// stale and must be refused by the version check).
		for round := 0; round < 2; round++ {
			if err := rdb.Del(context.Background(), readmodel.Keys{Prefix: prefix}.Checkpoint("readmodels")).Err(); err != nil {
				t.Fatal(err)
			}
			rp2 := startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Redis: rdb, Prefix: prefix, BatchSize: 7, CacheSize: 1})
			rp2.waitFor(t, lastPosition(t, store))
			if err := rp2.shutdown(); err != nil {
				t.Fatal(err)
			}
			after := dumpPrefix(t, rdb, prefix)
			if !reflect.DeepEqual(before, after) {
				for k, v := range after {
					if before[k] != v {
						t.Errorf("round %d: %s changed:\nbefore %s\nafter  %s", round, k, before[k], v)
					}
				}
				t.FailNow()
			}
		}
		verifyClean(t, store, rdb, prefix)
	})
}

// stopThenConverge projects six scenarios through a Redis client whose
// writes start failing (hook), expects the projection to stop with an error
// that survived the retries, hands its status to check, then restarts it on
// a healthy connection and expects it to resume from the checkpoint and
// converge.
func stopThenConverge(t *testing.T, kind redistest.Kind, hook redis.Hook, perTenantWrites bool, check func(st Status, store *embedded.Store, rdb redis.UniversalClient, prefix string)) {
	t.Helper()
	rdb, prefix := testRedisOn(t, kind)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	for i := 0; i < 6; i++ {
		runScenario(t, h, fmt.Sprint("t", i), uint64(i))
	}
	failing := redistest.Open(t, kind, 0)
	failing.AddHook(hook)
	p, err := New(Config{Store: store, Redis: failing, Prefix: prefix, BatchSize: 50, MaxRetries: 2, RetryInitial: time.Millisecond,
		PerTenantWrites: perTenantWrites})
	if err != nil {
		t.Fatal(err)
	}
	runErr := p.Run(context.Background())
	var se *StoppedError
	if !errors.As(runErr, &se) {
		t.Fatalf("Run: %v", runErr)
	}
	check(p.Status(), store, rdb, prefix)
	rp := startProjection(t, Config{Store: store, Redis: rdb, Prefix: prefix, BatchSize: 50})
	rp.waitFor(t, lastPosition(t, store))
	verifyClean(t, store, rdb, prefix)
}

func TestKilledMidBatchConverges(t *testing.T) { redistest.Each(t, testKilledMidBatchConverges) }

func testKilledMidBatchConverges(t *testing.T, kind redistest.Kind) {
	// A failure of one attempt is retried; make every pipeline from the
	// third on fail (half written) until the projection stops.
	stopThenConverge(t, kind, &failAfterHook{after: 2}, true, func(st Status, store *embedded.Store, rdb redis.UniversalClient, prefix string) {
		if st.Status != StatusStopped || st.LastError == "" || st.ErrorPosition == 0 || st.Position >= uint64(lastPosition(t, store)) {
			t.Fatalf("status after the crash: %+v", st)
		}
		if rep, _ := rebuild.Verify(context.Background(), store, rdb, prefix, rebuild.VerifyOptions{}); rep.OK() {
			t.Fatal("a half-written projection verifies clean: the test crashed nothing")
		}
	})
}

// With one script call per flush: every flush call from the third on is
// lost (the connection fails before Redis runs it), the projection stops
// before its checkpoint moves past what was written, and a restart
// converges. (An error inside the script would leave the tenants before
// it written, as the per-tenant pipeline does: the version check makes
// writing them again a no-op.)
func TestFailedFlushScriptStopsAndConverges(t *testing.T) {
	redistest.Each(t, testFailedFlushScriptStopsAndConverges)
}

func testFailedFlushScriptStopsAndConverges(t *testing.T, kind redistest.Kind) {
	stopThenConverge(t, kind, &failEvalAfterHook{after: 2}, false, func(st Status, store *embedded.Store, _ redis.UniversalClient, _ string) {
		if st.Status != StatusStopped || st.ErrorPosition == 0 || st.ErrorPosition <= st.Position || st.Position >= uint64(lastPosition(t, store)) {
			t.Fatalf("status after the failures: %+v", st)
		}
	})
}

// failEvalAfterHook fails every EVALSHA after the first `after` ones
// without sending it.
type failEvalAfterHook struct {
	after int64
	n     atomic.Int64
}

func (h *failEvalAfterHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failEvalAfterHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" && h.n.Add(1) > h.after {
			err := errors.New("injected: connection lost")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (h *failEvalAfterHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// failAfterHook writes half of every pipeline of script calls after the
// first `after` ones and fails the rest. (Other pipelines, such as the
// slot markers a build lays on a cluster, go through.)
type failAfterHook struct {
	after int64
	n     atomic.Int64
}

func (h *failAfterHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *failAfterHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *failAfterHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) < 2 || cmds[0].Name() != "evalsha" || h.n.Add(1) <= h.after {
			return next(ctx, cmds)
		}
		if err := next(ctx, cmds[:len(cmds)/2]); err != nil {
			return err
		}
		err := errors.New("injected: connection lost mid-batch")
		for _, c := range cmds[len(cmds)/2:] {
			c.SetErr(err)
		}
		return err
	}
}

func TestConcurrentTenantsWhileCatchingUp(t *testing.T) {
	redistest.Each(t, testConcurrentTenantsWhileCatchingUp)
}

func testConcurrentTenantsWhileCatchingUp(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisOn(t, kind)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	// Some history before the projection starts, the rest while it runs.
	runScenario(t, h, "early", 99)
	rp := startProjection(t, Config{Store: store, Snapshots: store, Redis: rdb, Prefix: prefix, BatchSize: 64, CacheSize: 5})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runScenario(t, h, fmt.Sprintf("tenant%02d", i), uint64(100+i))
		}()
	}
	wg.Wait()
	rp.waitFor(t, lastPosition(t, store))
	rep := verifyClean(t, store, rdb, prefix)
	if rep.Tenants != 21 {
		t.Fatalf("tenants: %d", rep.Tenants)
	}
	st := rp.p.Status()
	if st.LagEvents != 0 || st.Status != StatusRunning || st.EventsApplied != uint64(lastPosition(t, store)) {
		t.Fatalf("status %+v", st)
	}
}

func TestVerifyDetectsTampering(t *testing.T) { redistest.Each(t, testVerifyDetectsTampering) }

func testVerifyDetectsTampering(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisOn(t, kind)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 5)
	rp := startProjection(t, Config{Store: store, Redis: rdb, Prefix: prefix})
	rp.waitFor(t, lastPosition(t, store))
	verifyClean(t, store, rdb, prefix)
	rp.shutdown()

	ctx := context.Background()
	k := readmodel.Keys{Prefix: prefix}
	lic := k.Key("contoso", readmodel.Licenses)
	fields := rdb.HKeys(ctx, lic).Val()
	if len(fields) == 0 {
		t.Fatal("no license rows")
	}
	rdb.HSet(ctx, lic, fields[0], `{"total":9999}`)
	rdb.ZRem(ctx, k.Key("contoso", readmodel.UsersIndex), "u01")
	rdb.HSet(ctx, k.Key("contoso", readmodel.Users), "ghost", `{}`)
	rep, err := rebuild.Verify(ctx, store, rdb, prefix, rebuild.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{lic + " " + fields[0]: false, k.Key("contoso", readmodel.UsersIndex) + " u01": false, k.Key("contoso", readmodel.Users) + " ghost": false}
	for _, d := range rep.Differences {
		if _, ok := want[d.Key+" "+d.Field]; ok {
			want[d.Key+" "+d.Field] = true
		}
		if d.Tenant != "contoso" {
			t.Errorf("difference of another tenant: %s", d)
		}
	}
	for k, found := range want {
		if !found {
			t.Errorf("tampered %s not reported; report %+v", k, rep.Differences)
		}
	}
	if len(rep.Differences) != 3 {
		t.Errorf("differences: %v", rep.Differences)
	}
}

func TestInProcessRedis(t *testing.T) {
	url, stop, err := StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rdb, err := OpenRedis(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 1)
	runScenario(t, h, "fabrikam", 2)
	// No prefix: the active prefix (set to the default on first use).
	rp := startProjection(t, Config{Store: store, Redis: rdb, BatchSize: 10})
	rp.waitFor(t, lastPosition(t, store))
	if got := rp.p.Prefix(); got != readmodel.DefaultPrefix {
		t.Fatalf("prefix %q", got)
	}
	verifyClean(t, store, rdb, readmodel.DefaultPrefix)
	// Re-delivery is a no-op there too.
	before := dumpPrefix(t, rdb, readmodel.DefaultPrefix)
	rp.shutdown()
	rdb.Del(context.Background(), readmodel.Keys{Prefix: readmodel.DefaultPrefix}.Checkpoint("readmodels"))
	rp2 := startProjection(t, Config{Store: store, Redis: rdb})
	rp2.waitFor(t, lastPosition(t, store))
	if after := dumpPrefix(t, rdb, readmodel.DefaultPrefix); !reflect.DeepEqual(before, after) {
		t.Fatal("re-delivery changed the in-process read models")
	}
}

func TestStopsOnAnEventItCannotApply(t *testing.T) {
	redistest.Each(t, testStopsOnAnEventItCannotApply)
}

func testStopsOnAnEventItCannotApply(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisOn(t, kind)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 1)
	ctx := context.Background()
	v, _ := store.StreamVersion(ctx, "tenant-contoso")
	bad, err := store.Append(ctx, "tenant-contoso", eventstore.Exactly(v), []eventstore.EventData{
		{ID: "7d444840-9dc0-11d1-b245-5ffdce74fad2", Type: "UserAdded", Data: []byte(`{"type":"UserAdded","data":{"userId":`)}})
	if err != nil {
		t.Fatal(err)
	}
	runScenario(t, h, "fabrikam", 2) // after the poison: must not be applied
	reg := prometheus.NewRegistry()
	p, err := New(Config{Store: store, Redis: rdb, Prefix: prefix, MaxRetries: 2, RetryInitial: time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = p.Run(runCtx)
	var se *StoppedError
	if !errors.As(err, &se) || se.Position != bad.Position || se.Stream != "tenant-contoso" {
		t.Fatalf("Run: %v", err)
	}
	st := p.Status()
	if st.Status != StatusStopped || st.ErrorPosition != uint64(bad.Position) || st.Position >= uint64(bad.Position) || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
	if n, _ := rdb.Exists(ctx, readmodel.Keys{Prefix: prefix}.Key("fabrikam", readmodel.Meta)).Result(); n != 0 {
		t.Fatal("an event after the poison was applied")
	}
	var m dto.Metric
	if err := p.metrics.stopped.WithLabelValues("readmodels").Write(&m); err != nil || m.GetGauge().GetValue() != 1 {
		got := m.GetGauge().GetValue()
		t.Fatalf("stopped gauge %v", got)
	}
}

// TestSubscriberReusesAckedPayloads: with ReusePayloads a message is built
// in the payload of one already Acked (and only then), and every event
// still arrives once, in order, as the store holds it; without it no
// payload is shared.
func TestSubscriberReusesAckedPayloads(t *testing.T) {
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 1)
	head := lastPosition(t, store)
	want, err := store.ReadAll(context.Background(), eventstore.Start, int(head))
	if err != nil {
		t.Fatal(err)
	}
	for _, reuse := range []bool{true, false} {
		sub := NewSubscriber(store, SubscriberConfig{MaxBatch: 4, ReusePayloads: reuse})
		ch, err := sub.Subscribe(context.Background(), "$all")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[*byte]bool{} // the backing arrays of the acked payloads
		shared, next := 0, 0
		for next < len(want) {
			m := <-ch
			if seen[unsafe.SliceData(m.Payload)] {
				shared++
			}
			evs, err := DecodeBatch(m.Payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				w := want[next]
				if ev.Position != w.Position || ev.Stream != w.Stream || ev.Version != w.Version || ev.ID != w.ID ||
					ev.Type != w.Type || string(ev.Data) != string(w.Data) || !ev.RecordedAt.Equal(w.RecordedAt) {
					t.Fatalf("reuse %v: event %d is %+v, the store has %+v", reuse, next, ev, w)
				}
				next++
			}
			seen[unsafe.SliceData(m.Payload)] = true
			m.Ack()
		}
		sub.Close()
		for range ch {
		}
		sub.Wait()
		if reuse && shared == 0 {
			t.Errorf("ReusePayloads: no message was built in an acked one's payload")
		}
		if !reuse && shared != 0 {
			t.Errorf("without ReusePayloads %d messages shared a payload", shared)
		}
	}
}

func TestSubscriberOrderAndRedelivery(t *testing.T) {
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 1)
	head := lastPosition(t, store)
	sub := NewSubscriber(store, SubscriberConfig{NackDelay: time.Millisecond, MaxBatch: 10,
		From: func(context.Context) (eventstore.Position, error) { return 3, nil }})
	ch, err := sub.Subscribe(context.Background(), "$all")
	if err != nil {
		t.Fatal(err)
	}
	events := func(m *message.Message) []eventstore.RecordedEvent {
		t.Helper()
		evs, err := DecodeBatch(m.Payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := strconv.Itoa(len(evs)); m.Metadata.Get(MetaCount) != n {
			t.Fatalf("count %q, the payload holds %s events", m.Metadata.Get(MetaCount), n)
		}
		return evs
	}
	m := <-ch
	first := events(m)
	// The first message carries what the reader had read when it was sent:
	// at least the first event.
	last := first[len(first)-1].Position
	if len(first) > 10 || first[0].Position != 4 || first[0].Stream != "tenant-contoso" || first[0].Version != 4 || m.UUID != first[0].ID {
		t.Fatalf("first message %v: %d events, first %+v", m.Metadata, len(first), first[0])
	}
	for i, ev := range first {
		if ev.Position != eventstore.Position(4+i) {
			t.Fatalf("event %d of the batch at position %d", i, ev.Position)
		}
	}
	if m.Metadata.Get(MetaFirst) != "4" || m.Metadata.Get(MetaPosition) != strconv.FormatUint(uint64(last), 10) {
		t.Fatalf("first message's metadata %v", m.Metadata)
	}
	select {
	case m2 := <-ch:
		t.Fatalf("a second message before the ack: %v", m2.Metadata)
	case <-time.After(50 * time.Millisecond):
	}
	m.Nack()
	again := <-ch
	if again.UUID != m.UUID || string(again.Payload) != string(m.Payload) {
		t.Fatalf("redelivery of %s gave %s (same events: %v)", m.UUID, again.UUID, string(again.Payload) == string(m.Payload))
	}
	again.Ack()
	// By now the reader has read the whole log: the next message is full
	// and says more is waiting.
	next := <-ch
	if want := strconv.FormatUint(uint64(last)+1, 10); next.Metadata.Get(MetaFirst) != want ||
		next.Metadata.Get(MetaCount) != "10" || next.Metadata.Get(MetaMore) != "1" {
		t.Fatalf("after the ack: %v, want first %s, count 10, more 1", next.Metadata, want)
	}
	// The rest of the log arrives in order, each event once.
	want := last + 1
	for m := next; ; m = <-ch {
		for _, ev := range events(m) {
			if ev.Position != want {
				t.Fatalf("event at position %d, want %d", ev.Position, want)
			}
			want++
		}
		m.Ack()
		if want > head {
			break
		}
	}
	sub.Close()
	sub.Close() // idempotent
	for range ch {
	}
	sub.Wait()
}

func TestDecodeBatchReadsWhatWasFramed(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	in := []eventstore.RecordedEvent{
		{ID: "e1", Type: "UserAdded", Stream: "tenant-a", Version: 1, Position: 7, RecordedAt: at, Data: []byte(`{"x":1}`)},
		{ID: "", Type: "", Stream: "other", Version: 1 << 40, Position: 1 << 50, RecordedAt: at.Add(-time.Hour), Data: nil},
	}
	var payload []byte
	for i := range in {
		payload = AppendBatchEvent(payload, &in[i])
	}
	out, err := DecodeBatch(payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d events back, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.ID != b.ID || a.Type != b.Type || a.Stream != b.Stream || a.Version != b.Version || a.Position != b.Position ||
			!a.RecordedAt.Equal(b.RecordedAt) || string(a.Data) != string(b.Data) {
			t.Fatalf("event %d: framed %+v, read %+v", i, a, b)
		}
	}
	// Every truncation of a valid payload is refused, never misread.
	for n := 1; n < len(payload); n++ {
		if evs, err := DecodeBatch(payload[:n], nil); err == nil && len(evs) != 1 {
			t.Fatalf("payload cut at %d bytes: %d events, no error", n, len(evs))
		}
	}
	if _, err := DecodeBatch([]byte{0xff}, nil); !errors.Is(err, ErrBadBatch) {
		t.Fatalf("garbage: %v, want ErrBadBatch", err)
	}
}

// TestUnreachableRedisIsWaitedFor: writes failing because Redis cannot be
// reached (a refused connection, as from a master of a cluster that is
// down) are retried for as long as it takes, well past MaxRetries: the
// projection does not stop, says so in its status, and converges when
// Redis answers again. (A stop would last: on a cluster the lease's master
// may keep answering, so nothing would restart the projection.)
func TestUnreachableRedisIsWaitedFor(t *testing.T) {
	redistest.Each(t, testUnreachableRedisIsWaitedFor)
}

func testUnreachableRedisIsWaitedFor(t *testing.T, kind redistest.Kind) {
	rdb, prefix := testRedisOn(t, kind)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 7)
	rp := startProjection(t, Config{Store: store, Redis: rdb, Prefix: prefix})
	rp.waitFor(t, lastPosition(t, store))

	hook := &refuseHook{}
	hook.down.Store(true)
	flaky := redistest.Open(t, kind, 0)
	flaky.AddHook(hook)
	rp.shutdown()
	rp = startProjection(t, Config{Store: store, Redis: flaky, Prefix: prefix, MaxRetries: 2, RetryInitial: time.Millisecond,
		RetryMax: 5 * time.Millisecond, SubscriberNack: 10 * time.Millisecond})
	runScenario(t, h, "fabrikam", 8)
	deadline := time.Now().Add(10 * time.Second)
	for hook.refused.Load() < 20 { // MaxRetries is 2: these are many rounds of retries
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes refused; status %+v", hook.refused.Load(), rp.p.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := rp.p.Status()
	if st.Status == StatusStopped || !strings.Contains(st.LastError, "waiting for Redis") {
		t.Fatalf("status while Redis is unreachable: %+v", st)
	}
	hook.down.Store(false)
	rp.waitFor(t, lastPosition(t, store))
	if st := rp.p.Status(); st.LastError != "" || st.Status == StatusStopped {
		t.Fatalf("status once Redis answers: %+v", st)
	}
	verifyClean(t, store, rdb, prefix)
}

// refuseHook fails every script call (alone or pipelined) with a refused
// connection while down is set.
type refuseHook struct {
	down    atomic.Bool
	refused atomic.Int64
}

func (h *refuseHook) refuse(cmds []redis.Cmder) error {
	if !h.down.Load() || len(cmds) == 0 || !strings.HasPrefix(cmds[0].Name(), "eval") {
		return nil
	}
	h.refused.Add(1)
	err := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range cmds {
		c.SetErr(err)
	}
	return err
}

func (h *refuseHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *refuseHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.refuse([]redis.Cmder{cmd}); err != nil {
			return err
		}
		return next(ctx, cmd)
	}
}
func (h *refuseHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.refuse(cmds); err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

// TestUsersIndexesFollowEachEvent: written one event at a time (so every
// rename, delete, license and group change moves users already indexed),
// the users list's indexes still match the fold (Verify compares them
// member by member).
func TestUsersIndexesFollowEachEvent(t *testing.T) {
	eachWritePath(t, 5, 6, func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string) {
		rp := startProjection(t, Config{PerTenantWrites: perTenant, Store: store, Snapshots: store, Redis: rdb, Prefix: prefix, BatchSize: 1})
		rp.waitFor(t, lastPosition(t, store))
		verifyClean(t, store, rdb, prefix)
		n, err := rdb.ZCard(context.Background(), readmodel.Keys{Prefix: prefix}.Key("contoso", readmodel.UsersByFilter(readmodel.OrderDisplayName, readmodel.FilterLicensed))).Result()
		if err != nil || n == 0 {
			t.Fatalf("licensed users of contoso: %d, %v", n, err)
		}
	})
}

// A flush that wrote its tenants but not its checkpoint (the connection
// lost in between, or a cluster's per-tenant pipeline half written) leaves
// read models past the checkpoint. Staged again from the checkpoint, a
// tenant's pending changes are a diff from an older state than its read
// model holds, and the users list's indexes are written as a diff.
// Given x01 unlicensed, and its read model written with x01 licensed while
// the checkpoint stayed before that, when x01 loses the license and the
// projection writes both events at once, then the read models verify
// clean: x01 is in the unlicensed indexes and not in the licensed ones.
func TestDiffOntoAReadModelPastTheCheckpoint(t *testing.T) {
	eachWritePath(t, 21, 22, func(t *testing.T, perTenant bool, store *embedded.Store, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		h := newHandler(store)
		defer h.Close()
		s := &scenario{t: t, h: h, tenant: "contoso", admin: domain.Actor{UserID: "admin"}}
		must := func(c domain.Command) {
			t.Helper()
			if _, err := h.Handle(ctx, c); err != nil {
				t.Fatalf("%s: %v", c.CommandName(), err)
			}
		}
		must(&domain.AddUser{CommandMeta: s.meta(), User: domain.NewUser{ID: "x01", UserPrincipalName: "x01@contoso.example",
			DisplayName: "User x01", UserType: domain.UserTypeMember, UsageLocation: "US"}})
		must(&domain.PurchaseSubscription{CommandMeta: s.meta(), SubscriptionID: "sx", SkuID: "VISIOCLIENT", Quantity: 5})
		cfg := Config{Store: store, Redis: rdb, Prefix: prefix, PerTenantWrites: perTenant}
		rp := startProjection(t, cfg)
		rp.waitFor(t, lastPosition(t, store))
		checkpoint := lastPosition(t, store)

		must(&domain.AssignLicenses{CommandMeta: s.meta(), SkuID: "VISIOCLIENT", Users: []string{"x01"}})
		rp.waitFor(t, lastPosition(t, store))
		if err := rp.shutdown(); err != nil {
			t.Fatal(err)
		}
		licensed := readmodel.Keys{Prefix: prefix}.Key("contoso", readmodel.UsersByFilter(readmodel.OrderDisplayName, readmodel.FilterLicensed))
		members, err := rdb.ZRange(ctx, licensed, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(members, func(m string) bool { _, id, _, _ := readmodel.SplitMember(m); return id == "x01" }) {
			t.Fatalf("x01 is not in %s after its license: not the state this test needs", licensed)
		}
		// The checkpoint as a flush that did not write it leaves it.
		if err := rdb.Set(ctx, readmodel.Keys{Prefix: prefix}.Checkpoint("readmodels"), uint64(checkpoint), 0).Err(); err != nil {
			t.Fatal(err)
		}

		must(&domain.UnassignLicenses{CommandMeta: s.meta(), SkuID: "VISIOCLIENT", Users: []string{"x01"}})
		rp = startProjection(t, cfg)
		rp.waitFor(t, lastPosition(t, store))
		if rep := verifyClean(t, store, rdb, prefix); !rep.OK() {
			t.Fatal("the read models differ from the events")
		}
	})
}
