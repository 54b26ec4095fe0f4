package rebuild

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/render"
	"github.com/seatledger/seatledger/tenantstream"
)

// bulk is the bulk pass: one reader, Workers folders.
type bulk struct {
	cfg      *ReplayConfig
	keys     readmodel.Keys
	applySHA string
	seed     maphash.Seed
	workers  []*bulkWorker

	events    atomic.Uint64 // events read
	pos       atomic.Uint64 // last position read
	tenants   atomic.Int64  // distinct tenants folded (first time)
	written   atomic.Int64  // tenants written in the write phase
	evictions atomic.Int64  // early writes of a worker's tenants (MaxTenants, MaxHeap)
}

type bulkItem struct {
	tenant string
	rec    *eventstore.RecordedEvent
}

type bulkTenant struct {
	st *domain.Tenant
	tc *render.Touched // nil: never written, the whole state is written
}

type bulkWorker struct {
	b       *bulk
	in      chan []bulkItem
	states  map[string]*bulkTenant
	written map[string]bool // tenants written and forgotten (MaxTenants, MaxHeap)
	limit   int
	gcCycle uint64 // the collection after which the worker last evicted for MaxHeap
}

func newBulk(ctx context.Context, cfg *ReplayConfig, keys readmodel.Keys) (*bulk, error) {
	sha, err := cfg.Redis.ScriptLoad(ctx, render.ApplyScript).Result()
	if err != nil {
		return nil, fmt.Errorf("projections: replay: load script: %w", err)
	}
	b := &bulk{cfg: cfg, keys: keys, applySHA: sha, seed: maphash.MakeSeed()}
	for range cfg.Workers {
		w := &bulkWorker{b: b, in: make(chan []bulkItem, 4), states: map[string]*bulkTenant{}, written: map[string]bool{}}
		if cfg.MaxTenants > 0 {
			w.limit = max(1, cfg.MaxTenants/cfg.Workers)
		}
		b.workers = append(b.workers, w)
	}
	return b, nil
}

func (b *bulk) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, w := range b.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx); err != nil {
				cancel(err)
				for range w.in { // let the reader finish
				}
			}
		}()
	}
	progressDone := make(chan struct{})
	progressStop := make(chan struct{})
	go func() {
		defer close(progressDone)
		b.progress(progressStop)
	}()
	readErr := b.read(ctx)
	for _, w := range b.workers {
		close(w.in)
	}
	wg.Wait()
	close(progressStop)
	<-progressDone
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	// The final states, written in parallel by their workers.
	werrs := make([]error, len(b.workers))
	for i, w := range b.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			werrs[i] = w.flush(ctx)
		}()
	}
	wgDone := make(chan struct{})
	go func() { wg.Wait(); close(wgDone) }()
	t := time.NewTicker(b.cfg.ProgressInterval)
	defer t.Stop()
	start := time.Now()
	for waiting := true; waiting; {
		select {
		case <-wgDone:
			waiting = false
		case <-t.C:
		}
		n := b.written.Load()
		p := ReplayProgress{Phase: PhaseWrite, Events: b.events.Load(), Tenants: int(n), Position: eventstore.Position(b.pos.Load())}
		p.Head = p.Position
		var eta time.Duration
		if total := b.tenants.Load(); n > 0 && total > n {
			eta = time.Duration(float64(time.Since(start)) / float64(n) * float64(total-n))
		}
		p.ETA = eta
		b.cfg.report(p)
	}
	return errors.Join(werrs...)
}

// read reads the log from the start until it has caught up, handing each
// tenant's events to its worker.
func (b *bulk) read(ctx context.Context) error {
	after := eventstore.Start
	nw := len(b.workers)
	for {
		evs, err := b.cfg.Store.ReadAll(ctx, after, b.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("projections: replay: read the log after %d: %w", after, err)
		}
		if len(evs) == 0 {
			return nil
		}
		parts := make([][]bulkItem, nw)
		for i := range evs {
			e := &evs[i]
			tid, ok := tenantstream.TenantID(e.Stream)
			if !ok {
				continue // not a tenant stream: nothing to project
			}
			k := 0
			if nw > 1 {
				k = int(maphash.String(b.seed, tid) % uint64(nw))
			}
			if parts[k] == nil {
				parts[k] = make([]bulkItem, 0, len(evs)/nw+len(evs)/8)
			}
			parts[k] = append(parts[k], bulkItem{tenant: tid, rec: e})
		}
		for k, p := range parts {
			if len(p) == 0 {
				continue
			}
			select {
			case b.workers[k].in <- p:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		after = evs[len(evs)-1].Position
		b.events.Add(uint64(len(evs)))
		b.pos.Store(uint64(after))
		if len(evs) < b.cfg.BatchSize {
			return nil // caught up: the tail projection does the rest
		}
	}
}

func (b *bulk) progress(stop <-chan struct{}) {
	t := time.NewTicker(b.cfg.ProgressInterval)
	defer t.Stop()
	start := time.Now()
	var hp headPositioner
	if h, ok := b.cfg.Store.(headPositioner); ok {
		hp = h
	}
	for {
		final := false
		select {
		case <-stop:
			final = true
		case <-t.C:
		}
		p := ReplayProgress{Phase: PhaseBulk, Events: b.events.Load(), Tenants: int(b.tenants.Load()), Position: eventstore.Position(b.pos.Load())}
		if hp != nil {
			p.Head = max(hp.LastPosition(), p.Position)
		}
		p.EventsPerSec, _ = rate(p.Events, time.Since(start), 0)
		if p.Head > 0 {
			// Positions need not be event counts (KurrentDB): estimate the
			// time left from how fast positions went by.
			_, p.ETA = rate(uint64(p.Position), time.Since(start), uint64(p.Head-p.Position))
		}
		b.cfg.report(p)
		if final {
			return
		}
	}
}

func (w *bulkWorker) run(ctx context.Context) error {
	for items := range w.in {
		for _, it := range items {
			if err := w.apply(ctx, it); err != nil {
				return err
			}
		}
		if (w.limit > 0 && len(w.states) > w.limit) || w.overHeap() {
			if err := w.flush(ctx); err != nil {
				return err
			}
			w.b.evictions.Add(1)
		}
	}
	return nil
}

// overHeap reports whether the heap live after the last collection is over
// MaxHeap, once a collection: the states the worker forgets are freed only
// by the next one.
func (w *bulkWorker) overHeap() bool {
	if w.b.cfg.MaxHeap <= 0 || len(w.states) == 0 {
		return false
	}
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 || s[1].Value.Kind() != rtmetrics.KindUint64 {
		return false
	}
	cycle := s[1].Value.Uint64()
	if cycle == w.gcCycle || s[0].Value.Uint64() <= uint64(w.b.cfg.MaxHeap) {
		return false
	}
	w.gcCycle = cycle
	return true
}

func (w *bulkWorker) apply(ctx context.Context, it bulkItem) error {
	cfg := w.b.cfg
	rec := it.rec
	v := rec.Version
	ts := w.states[it.tenant]
	if ts != nil && ts.st.Version >= v {
		return nil // a duplicate
	}
	if ts == nil || ts.st.Version != v-1 {
		var st *domain.Tenant
		if v == 1 {
			st = domain.NewTenant()
		} else {
			// A tenant written and forgotten (MaxTenants), or a log that does
			// not start at the tenant's first event.
			var err error
			st, err = tenantstream.Fold(ctx, cfg.Store, cfg.Snapshots, cfg.Upcasters, it.tenant, v-1)
			if err != nil {
				return fmt.Errorf("projections: replay: fold tenant %s to version %d: %w", it.tenant, v-1, err)
			}
			if st.Version != v-1 {
				return fmt.Errorf("projections: replay: fold tenant %s: got version %d, want %d", it.tenant, st.Version, v-1)
			}
		}
		if ts == nil {
			ts = &bulkTenant{}
			if w.written[it.tenant] {
				ts.tc = render.NewTouched() // what is in Redis is rewritten where it changed
			} else {
				w.b.tenants.Add(1)
			}
			w.states[it.tenant] = ts
		}
		ts.st = st
	}
	e, err := eventcodec.Decode(rec.Data, cfg.Upcasters)
	if err != nil {
		return fmt.Errorf("projections: replay: %s version %d: %w", rec.Stream, v, err)
	}
	e.Version = v
	if ts.tc != nil {
		ts.tc.Event(ts.st, e)
	}
	domain.Evolve(ts.st, e)
	return nil
}

// replayPipeline bounds one round trip of the write phase.
const (
	replayPipeTenants = 256
	replayPipeArgs    = 64 << 10
)

// flush writes every state of the worker (each tenant in one apply-script
// call with its version, many tenants per pipeline) and forgets them.
func (w *bulkWorker) flush(ctx context.Context) error {
	b := w.b
	rdb := b.cfg.Redis
	pipe := rdb.Pipeline()
	n, nargs := 0, 0
	var batch []string
	exec := func() error {
		if n == 0 {
			return nil
		}
		_, err := pipe.Exec(ctx)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return fmt.Errorf("projections: replay: the apply script vanished from Redis (SCRIPT FLUSH?): %w", err)
		}
		if err != nil {
			return fmt.Errorf("projections: replay: write read models: %w", err)
		}
		b.written.Add(int64(n))
		for _, tid := range batch {
			w.written[tid] = true
		}
		batch = batch[:0]
		n, nargs = 0, 0
		return nil
	}
	for tid, ts := range w.states {
		ss := render.NewScriptSink(func(suffix string) string { return b.keys.Key(tid, suffix) })
		r := render.NewRenderer(b.cfg.Catalog, ts.st, ss, nil)
		var base uint64 // never written: nothing in Redis
		if ts.tc == nil {
			r.All()
		} else {
			ts.tc.Render(r)
			base = ts.tc.Base()
		}
		args := ss.ApplyArgs(ts.st.Version, base)
		pipe.EvalSha(ctx, b.applySHA, ss.Keys, args...)
		pipe.SAdd(ctx, b.keys.Tenants(), tid)
		batch = append(batch, tid)
		n++
		nargs += len(args)
		if n >= replayPipeTenants || nargs >= replayPipeArgs {
			if err := exec(); err != nil {
				return err
			}
		}
	}
	if err := exec(); err != nil {
		return err
	}
	clear(w.states)
	return nil
}
