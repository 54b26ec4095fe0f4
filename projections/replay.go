package projections

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/tenantstream"
)

// ReplayConfig configures Replay. Store and Redis are required.
type ReplayConfig struct {
	// Name of the projection whose checkpoint the replay writes under the
	// new prefix (default "readmodels", the live projection's).
	Name      string
	Store     eventstore.Store
	Snapshots eventstore.SnapshotStore // used to fold a tenant (Tenant mode, evicted tenants, the tail)
	Redis     redis.UniversalClient
	Catalog   *domain.Catalog // default domain.DefaultCatalog()
	Upcasters domain.Upcasters

	// NewPrefix is the prefix built (default "sl:r<unix-nanos>:"). It must
	// not be the active prefix; read-model keys left under it are deleted
	// first.
	NewPrefix string
	// Tenant is the tenant RebuildTenant rebuilds in place, under the
	// active prefix (no new prefix, no swap). Replay refuses it.
	Tenant string
	// NoSwap builds and catches up NewPrefix but leaves the active prefix
	// alone (an audit: compare it with the active prefix, ComparePrefixes).
	NoSwap bool
	// KeepOld keeps the previous prefix's keys after the swap (default: they
	// are deleted in the background, DeleteOldAfter after the swap).
	KeepOld bool
	// DeleteOldAfter is the pause between the swap and the deletion of the
	// old prefix, so that readers that cached it (queries cache the active
	// prefix for 1 s) and the projection still writing it (a Manager notices
	// a swap within its poll interval) are done with it. Default 5 s.
	DeleteOldAfter time.Duration
	// OnSwap is called right after the active prefix changed (e.g. the
	// in-process Manager's Refresh, so it follows at once).
	OnSwap func(oldPrefix, newPrefix string)

	// Progress, if set, is called about every ProgressInterval (default 1 s)
	// during long phases, and once at the end of each phase.
	Progress         func(ReplayProgress)
	ProgressInterval time.Duration

	// BatchSize is how many events one ReadAll returns (default 8192).
	BatchSize int
	// Workers fold tenants in parallel, each tenant in one worker (default
	// GOMAXPROCS).
	Workers int
	// MaxTenants bounds the tenant states held in memory (0: no bound, every
	// tenant of the log is kept until the end of the pass). When a worker's
	// share is exceeded, it writes its tenants and forgets them; a tenant
	// seen again is folded from the store and written again at the end.
	MaxTenants int
	Logger     *slog.Logger
}

// Replay phases (ReplayProgress.Phase).
const (
	PhaseBulk    = "bulk"     // reading and folding the log
	PhaseWrite   = "write"    // writing the final states into the new prefix
	PhaseCatchUp = "catch-up" // projecting the events appended meanwhile
	PhaseSwapped = "swapped"  // the active prefix changed
	PhaseTenant  = "tenant"   // one tenant rebuilt (Tenant mode)
)

// ReplayProgress is what Replay reports while it runs.
type ReplayProgress struct {
	Phase        string              `json:"phase"`
	Events       uint64              `json:"events"`   // events read from the log so far
	Tenants      int                 `json:"tenants"`  // tenants folded (bulk) or written (write)
	Position     eventstore.Position `json:"position"` // last global position read (bulk) or projected (catch-up)
	Head         eventstore.Position `json:"head"`     // last global position of the store (0: unknown)
	EventsPerSec float64             `json:"eventsPerSec"`
	ETA          time.Duration       `json:"eta"` // estimated time to reach Head (0: unknown)
}

// ReplayResult reports a finished replay.
type ReplayResult struct {
	Prefix       string              `json:"prefix"`              // the prefix built (Tenant mode: the active prefix)
	OldPrefix    string              `json:"oldPrefix,omitempty"` // the prefix active before the swap
	Swapped      bool                `json:"swapped"`
	Tenant       string              `json:"tenant,omitempty"`
	Version      uint64              `json:"version,omitempty"` // Tenant mode: the stream version written
	Tenants      int                 `json:"tenants"`
	Events       uint64              `json:"events"`       // events of the bulk pass
	BulkPosition eventstore.Position `json:"bulkPosition"` // where the bulk pass stopped
	Position     eventstore.Position `json:"position"`     // where the new prefix was caught up to before the swap
	BulkDuration time.Duration       `json:"bulkDuration"` // reading, folding and writing the final states
	Duration     time.Duration       `json:"duration"`
	EventsPerSec float64             `json:"eventsPerSec"` // Events / BulkDuration
	// OldDeleted receives the outcome of the background deletion of
	// OldPrefix (nil when KeepOld, NoSwap or Tenant mode); it is buffered.
	OldDeleted <-chan error `json:"-"`
}

// Replay rebuilds every read model from the start of the global log into a
// fresh key prefix while the active prefix keeps serving, catches the new
// prefix up with the events appended meanwhile, and then swaps the active
// prefix to it (one SET). The bulk pass does not go through Watermill: it
// reads the log in large batches, decodes and folds each tenant in memory
// (tenants spread over Workers) and writes each tenant's final state once,
// in pipelines, each tenant in one script call with its applied version. The
// checkpoint of the new prefix is written at the bulk pass's last position,
// and an ordinary Projection on the new prefix projects the tail from there.
//
// cfg.Tenant must be empty: one tenant is rebuilt in place by RebuildTenant.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayResult, error) {
	if cfg.Store == nil || cfg.Redis == nil {
		return ReplayResult{}, errors.New("projections: replay: Store and Redis are required")
	}
	if cfg.Tenant != "" {
		return ReplayResult{}, fmt.Errorf("projections: replay rebuilds every tenant into a new prefix, but Tenant is %q: call RebuildTenant to rebuild one tenant in place", cfg.Tenant)
	}
	cfg.defaults()
	start := time.Now()
	rdb := cfg.Redis
	active, err := readmodel.ActivePrefix(ctx, rdb)
	if err != nil {
		return ReplayResult{}, err
	}
	if cfg.NewPrefix == "" {
		cfg.NewPrefix = fmt.Sprintf("%sr%d:", readmodel.DefaultPrefix, time.Now().UnixNano())
	}
	if cfg.NewPrefix == active {
		return ReplayResult{}, fmt.Errorf("projections: replay: %q is the active prefix", cfg.NewPrefix)
	}
	unlock, err := lockReplay(ctx, rdb, cfg.NewPrefix)
	if err != nil {
		return ReplayResult{}, err
	}
	defer unlock()
	keys := readmodel.Keys{Prefix: cfg.NewPrefix}
	res := ReplayResult{Prefix: cfg.NewPrefix}
	ok := false
	defer func() {
		if !ok { // leave nothing half-built behind
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if _, err := DeletePrefix(dctx, rdb, cfg.NewPrefix); err != nil {
				cfg.Logger.Warn("replay: cannot delete the unfinished prefix", "prefix", cfg.NewPrefix, "err", err)
			}
		}
	}()
	if _, err := DeletePrefix(ctx, rdb, cfg.NewPrefix); err != nil {
		return res, err
	}
	cfg.Logger.Info("replay starting", "prefix", cfg.NewPrefix, "active", active)

	b, err := newBulk(ctx, &cfg, keys)
	if err != nil {
		return res, err
	}
	if err := b.run(ctx); err != nil {
		return res, err
	}
	res.Events = b.events.Load()
	res.Tenants = int(b.tenants.Load())
	res.BulkPosition = eventstore.Position(b.pos.Load())
	res.BulkDuration = time.Since(start)
	if s := res.BulkDuration.Seconds(); s > 0 {
		res.EventsPerSec = float64(res.Events) / s
	}
	// The checkpoint says where the tail starts; the marker says the prefix
	// is complete up to it.
	if err := rdb.Set(ctx, keys.Checkpoint(cfg.Name), uint64(res.BulkPosition), 0).Err(); err != nil {
		return res, fmt.Errorf("projections: replay: write checkpoint: %w", err)
	}
	if err := rdb.Set(ctx, keys.Present(), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return res, fmt.Errorf("projections: replay: write marker: %w", err)
	}
	cfg.Logger.Info("replay: bulk pass done", "prefix", cfg.NewPrefix, "events", res.Events, "tenants", res.Tenants,
		"position", uint64(res.BulkPosition), "seconds", res.BulkDuration.Seconds(), "events_per_s", res.EventsPerSec)

	// Catch up the tail with an ordinary projection on the new prefix.
	tail, err := New(Config{Name: cfg.Name, Store: cfg.Store, Snapshots: cfg.Snapshots, Upcasters: cfg.Upcasters,
		Catalog: cfg.Catalog, Redis: rdb, Prefix: cfg.NewPrefix, Logger: cfg.Logger})
	if err != nil {
		return res, err
	}
	tctx, stopTail := context.WithCancel(ctx)
	tailDone := make(chan error, 1)
	go func() { tailDone <- tail.Run(tctx) }()
	stop := func() error {
		stopTail()
		err := <-tailDone
		if errors.Is(err, context.Canceled) && ctx.Err() == nil {
			err = nil // stopped while starting
		}
		return err
	}
	head, err := headPosition(ctx, cfg.Store, res.BulkPosition)
	if err != nil {
		stop()
		return res, err
	}
	if err := cfg.waitTail(ctx, tail, tailDone, res.Events, head); err != nil {
		stop()
		return res, err
	}
	res.Position = eventstore.Position(tail.flushed.Load())

	if cfg.NoSwap {
		if err := stop(); err != nil {
			return res, err
		}
		ok = true
		res.Duration = time.Since(start)
		return res, nil
	}
	old, err := rdb.SetArgs(ctx, readmodel.ActivePrefixKey, cfg.NewPrefix, redis.SetArgs{Get: true}).Result()
	if errors.Is(err, redis.Nil) {
		old, err = readmodel.DefaultPrefix, nil
	}
	if err != nil {
		stop()
		return res, fmt.Errorf("projections: replay: swap the active prefix: %w", err)
	}
	ok = true
	res.Swapped = true
	res.OldPrefix = old
	res.Position = eventstore.Position(tail.flushed.Load())
	cfg.Logger.Info("replay: active prefix swapped", "old", old, "new", cfg.NewPrefix, "position", uint64(res.Position))
	if cfg.OnSwap != nil {
		cfg.OnSwap(old, cfg.NewPrefix)
	}
	cfg.report(ReplayProgress{Phase: PhaseSwapped, Events: res.Events, Tenants: res.Tenants, Position: res.Position, Head: res.Position})
	if err := stop(); err != nil {
		cfg.Logger.Warn("replay: the tail projection stopped with an error after the swap", "err", err)
	}
	if !cfg.KeepOld && old != cfg.NewPrefix {
		done := make(chan error, 1)
		res.OldDeleted = done
		go func() {
			dctx := context.WithoutCancel(ctx)
			select {
			case <-time.After(cfg.DeleteOldAfter):
			case <-dctx.Done():
			}
			n, err := DeletePrefix(dctx, rdb, old)
			cfg.Logger.Info("replay: old prefix deleted", "prefix", old, "keys", n, "err", err)
			done <- err
		}()
	}
	res.Duration = time.Since(start)
	return res, nil
}

// ReplayLockKey is held (with a TTL, refreshed) while a Replay runs: one
// replay at a time per Redis. Its value is the prefix being built.
const ReplayLockKey = "sl:replay-lock"

// ErrReplayRunning is returned by Replay while another replay holds ReplayLockKey.
var ErrReplayRunning = errors.New("projections: a replay is already running")

var unlockScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// lockReplay takes ReplayLockKey for the replay into prefix.
func lockReplay(ctx context.Context, rdb redis.UniversalClient, prefix string) (func(), error) {
	const ttl = 30 * time.Second
	ok, err := rdb.SetNX(ctx, ReplayLockKey, prefix, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("projections: replay lock: %w", err)
	}
	if !ok {
		other, _ := rdb.Get(ctx, ReplayLockKey).Result()
		return nil, fmt.Errorf("%w (building %s)", ErrReplayRunning, other)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rdb.Expire(context.WithoutCancel(ctx), ReplayLockKey, ttl)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		unlockScript.Run(context.WithoutCancel(ctx), rdb, []string{ReplayLockKey}, prefix)
	}, nil
}

func (cfg *ReplayConfig) defaults() {
	if cfg.Name == "" {
		cfg.Name = "readmodels"
	}
	if cfg.Catalog == nil {
		cfg.Catalog = domain.DefaultCatalog()
	}
	if cfg.DeleteOldAfter <= 0 {
		cfg.DeleteOldAfter = 5 * time.Second
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 8192
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
}

func (cfg *ReplayConfig) report(p ReplayProgress) {
	if cfg.Progress != nil {
		cfg.Progress(p)
	}
}

// waitTail waits until the tail projection has written head, reporting progress.
func (cfg *ReplayConfig) waitTail(ctx context.Context, tail *Projection, done <-chan error, events uint64, head eventstore.Position) error {
	t := time.NewTicker(cfg.ProgressInterval)
	defer t.Stop()
	start := time.Now()
	from := tail.flushed.Load()
	for {
		pos := tail.flushed.Load()
		if pos >= uint64(head) {
			cfg.report(ReplayProgress{Phase: PhaseCatchUp, Events: events, Position: eventstore.Position(pos), Head: head})
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("projections: replay: catching up the tail: %w", err)
		case <-t.C:
			p := ReplayProgress{Phase: PhaseCatchUp, Events: events, Position: eventstore.Position(pos), Head: head}
			p.EventsPerSec, p.ETA = rate(pos-from, time.Since(start), uint64(head)-pos)
			cfg.report(p)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// rate returns done/elapsed per second and the time left for left more.
func rate(done uint64, elapsed time.Duration, left uint64) (float64, time.Duration) {
	s := elapsed.Seconds()
	if s <= 0 || done == 0 {
		return 0, 0
	}
	r := float64(done) / s
	return r, time.Duration(float64(left) / r * float64(time.Second))
}

// headPosition returns the store's last global position (at least after).
func headPosition(ctx context.Context, store eventstore.Store, after eventstore.Position) (eventstore.Position, error) {
	if hp, ok := store.(headPositioner); ok {
		return max(hp.LastPosition(), after), nil
	}
	for {
		evs, err := store.ReadAll(ctx, after, 4096)
		if err != nil {
			return 0, fmt.Errorf("projections: replay: read the log: %w", err)
		}
		if len(evs) == 0 {
			return after, nil
		}
		after = evs[len(evs)-1].Position
	}
}

// bulk is the bulk pass: one reader, Workers folders.
type bulk struct {
	cfg      *ReplayConfig
	keys     readmodel.Keys
	applySHA string
	seed     maphash.Seed
	workers  []*bulkWorker

	events  atomic.Uint64 // events read
	pos     atomic.Uint64 // last position read
	tenants atomic.Int64  // distinct tenants folded (first time)
	written atomic.Int64  // tenants written in the write phase
}

type bulkItem struct {
	tenant string
	rec    *eventstore.RecordedEvent
}

type bulkTenant struct {
	st *domain.Tenant
	tc *touched // nil: never written, the whole state is written
}

type bulkWorker struct {
	b       *bulk
	in      chan []bulkItem
	states  map[string]*bulkTenant
	written map[string]bool // tenants written and forgotten (MaxTenants)
	limit   int
}

func newBulk(ctx context.Context, cfg *ReplayConfig, keys readmodel.Keys) (*bulk, error) {
	sha, err := cfg.Redis.ScriptLoad(ctx, applyScript).Result()
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
		if w.limit > 0 && len(w.states) > w.limit {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
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
				ts.tc = newTouched() // what is in Redis is rewritten where it changed
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
		ts.tc.event(ts.st, e)
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
		ss := newScriptSink(func(suffix string) string { return b.keys.Key(tid, suffix) })
		r := &renderer{cat: b.cfg.Catalog, t: ts.st, out: ss}
		if ts.tc == nil {
			r.all()
		} else {
			ts.tc.render(r)
		}
		args := ss.applyArgs(ts.st.Version)
		pipe.EvalSha(ctx, b.applySHA, ss.keys, args...)
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

// rebuildScript replaces one tenant's read model: KEYS are the tenant's keys
// (KEYS[1] its meta hash), all deleted, then the ops of applyScript are
// applied and the version set. ARGV[1] is the applied version seen when the
// keys were listed (nothing is done, -1, if it changed meanwhile: a key may
// have appeared), ARGV[2] the version written, ARGV[3] "1" to overwrite a
// read model ahead of it (else -2).
var rebuildScript = luaScript("rebuild.lua")

var rebuildTenantScript = redis.NewScript(rebuildScript)

// RebuildTenant rebuilds one tenant's read model (cfg.Tenant) in place under
// the active prefix: it folds the tenant from its stream, then deletes every
// key of the tenant and writes the rendered state with the stream version
// as the applied version, in one script call (the tenant's keys share a
// hash tag). The live projection continues from there: its later events
// have higher versions, and a write of an older version is ignored. If the
// live projection wrote the tenant meanwhile, the rebuild starts again.
func RebuildTenant(ctx context.Context, cfg ReplayConfig) (ReplayResult, error) {
	if cfg.Store == nil || cfg.Redis == nil || cfg.Tenant == "" {
		return ReplayResult{}, errors.New("projections: rebuild: Store, Redis and Tenant are required")
	}
	cfg.defaults()
	start := time.Now()
	rdb := cfg.Redis
	prefix, err := readmodel.ActivePrefix(ctx, rdb)
	if err != nil {
		return ReplayResult{}, err
	}
	keys := readmodel.Keys{Prefix: prefix}
	tid := cfg.Tenant
	res := ReplayResult{Prefix: prefix, Tenant: tid, Tenants: 1}
	fail := func(err error) (ReplayResult, error) {
		return res, fmt.Errorf("projections: rebuild tenant %s: %w", tid, err)
	}
	st, err := tenantstream.Fold(ctx, cfg.Store, cfg.Snapshots, cfg.Upcasters, tid, 0)
	if err != nil {
		return fail(err)
	}
	force := false
	var ss *scriptSink
	for attempt := 0; ; attempt++ {
		if attempt == 200 {
			return fail(errors.New("the read model kept changing"))
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if ss == nil { // (re)render the state
			ss = newScriptSink(func(suffix string) string { return keys.Key(tid, suffix) })
			if st.Version > 0 {
				(&renderer{cat: cfg.Catalog, t: st, out: ss}).all()
			}
		}
		// The applied version is read before the keys are listed: a write
		// in between changes it, and the script then does nothing.
		cur, err := rdb.HGet(ctx, keys.Key(tid, readmodel.Meta), "version").Result()
		if errors.Is(err, redis.Nil) {
			cur, err = "", nil
		}
		if err != nil {
			return fail(err)
		}
		existing, err := scanKeys(ctx, rdb, globEscape(keys.Tenant(tid))+"*")
		if err != nil {
			return res, err
		}
		ks := ss.keys
		for _, k := range existing {
			if _, ok := ss.index[strings.TrimPrefix(k, keys.Tenant(tid))]; !ok {
				ks = append(ks, k)
			}
		}
		f := "0"
		if force {
			f = "1"
		}
		args := make([]any, 0, len(ss.args)+3)
		args = append(args, cur, st.Version, f)
		args = append(args, ss.args...)
		n, err := rebuildTenantScript.Run(ctx, rdb, ks, args...).Int()
		if err != nil {
			return fail(err)
		}
		switch n {
		case -1: // written meanwhile: list the keys again, after a pause that
			// grows, so a busy tenant's live writes cannot starve the rebuild
			select {
			case <-ctx.Done():
				return fail(ctx.Err())
			case <-time.After(time.Duration(min(attempt, 50)) * time.Millisecond):
			}
			continue
		case -2: // the read model is ahead of the state: catch the state up
			before := st.Version
			if err := catchUpTenant(ctx, cfg, st); err != nil {
				return fail(err)
			}
			if st.Version == before { // no new event: the stored version is wrong
				force = true
			}
			ss = nil
			continue
		}
		if st.Version > 0 {
			err = rdb.SAdd(ctx, keys.Tenants(), tid).Err()
		} else {
			err = rdb.SRem(ctx, keys.Tenants(), tid).Err()
		}
		if err != nil {
			return fail(err)
		}
		res.Version = st.Version
		res.Duration = time.Since(start)
		res.BulkDuration = res.Duration
		cfg.report(ReplayProgress{Phase: PhaseTenant, Tenants: 1})
		cfg.Logger.Info("tenant read model rebuilt", "tenant", tid, "prefix", prefix, "version", st.Version,
			"keys_deleted", len(existing), "attempts", attempt+1)
		return res, nil
	}
}

// catchUpTenant applies the events of the tenant's stream after st.Version.
func catchUpTenant(ctx context.Context, cfg ReplayConfig, st *domain.Tenant) error {
	stream := tenantstream.Name(cfg.Tenant)
	for {
		recs, err := cfg.Store.ReadStream(ctx, stream, st.Version+1, 4096)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Version != st.Version+1 {
				return fmt.Errorf("%s: expected version %d, got %d", stream, st.Version+1, r.Version)
			}
			e, err := eventcodec.Decode(r.Data, cfg.Upcasters)
			if err != nil {
				return fmt.Errorf("%s version %d: %w", stream, r.Version, err)
			}
			e.Version = r.Version
			domain.Evolve(st, e)
		}
		if len(recs) < 4096 {
			return nil
		}
	}
}

func scanKeys(ctx context.Context, rdb redis.UniversalClient, match string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		ks, next, err := rdb.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("projections: scan %s: %w", match, err)
		}
		out = append(out, ks...)
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// prefixKeys calls fn with batches of the read-model keys under prefix: the
// tenant keys P{t}:… (t a valid tenant id), Ptenants, Pcheckpoint:… and
// P{marker}:present. Other keys that merely start with prefix — another prefix nested
// in it (sl:r…: in sl:), the active-prefix key, leases ({lease:…}) — are
// not read-model keys of this prefix and are left out.
func prefixKeys(ctx context.Context, rdb redis.UniversalClient, prefix string, fn func([]string) error) error {
	if prefix == "" {
		return errors.New("projections: empty prefix")
	}
	tenantKey := func(k string) bool {
		rest := strings.TrimPrefix(k, prefix+"{")
		t, _, ok := strings.Cut(rest, "}:")
		return ok && domain.ValidID(t)
	}
	for _, pat := range []string{globEscape(prefix) + "{*", globEscape(prefix) + "checkpoint:*"} {
		tenants := strings.HasSuffix(pat, "{*")
		var cursor uint64
		for {
			ks, next, err := rdb.Scan(ctx, cursor, pat, 1000).Result()
			if err != nil {
				return fmt.Errorf("projections: scan %s: %w", pat, err)
			}
			if tenants {
				j := 0
				for _, k := range ks {
					if tenantKey(k) {
						ks[j] = k
						j++
					}
				}
				ks = ks[:j]
			}
			if len(ks) > 0 {
				if err := fn(ks); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	k := readmodel.Keys{Prefix: prefix}
	var fixed []string
	for _, key := range []string{k.Tenants(), k.Present(), k.Building()} {
		n, err := rdb.Exists(ctx, key).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			fixed = append(fixed, key)
		}
	}
	if len(fixed) > 0 {
		return fn(fixed)
	}
	return nil
}

// DeletePrefix removes the read-model keys under prefix (SCAN + UNLINK in
// batches) and returns how many it removed. Only keys of the read-model
// layout go (see docs/READMODELS.md): deleting "sl:" leaves "sl:r…:" prefixes,
// sl:active-prefix and leases alone.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	n := 0
	err := prefixKeys(ctx, rdb, prefix, func(ks []string) error {
		if err := rdb.Unlink(ctx, ks...).Err(); err != nil {
			return fmt.Errorf("projections: delete prefix %s: %w", prefix, err)
		}
		n += len(ks)
		return nil
	})
	return n, err
}

// PrefixDifference is a key whose content differs between two prefixes.
type PrefixDifference struct {
	Key string `json:"key"` // without the prefix
	A   string `json:"a"`   // canonical content under prefix A ("" when missing)
	B   string `json:"b"`
}

// ComparePrefixes compares the read models under two prefixes key by key
// (type, fields or members and their values or scores, byte for byte),
// ignoring the Present marker. It returns at most max differences (0: 1000).
// An audit: replay into a scratch prefix (ReplayConfig.NoSwap) and compare
// it with the active one.
func ComparePrefixes(ctx context.Context, rdb redis.UniversalClient, a, b string, max int) ([]PrefixDifference, error) {
	if max <= 0 {
		max = 1000
	}
	da, err := DumpPrefix(ctx, rdb, a)
	if err != nil {
		return nil, err
	}
	db, err := DumpPrefix(ctx, rdb, b)
	if err != nil {
		return nil, err
	}
	all := map[string]bool{}
	for k := range da {
		all[k] = true
	}
	for k := range db {
		all[k] = true
	}
	var out []PrefixDifference
	unprefixed := readmodel.Keys{} // the markers' keys without a prefix
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if k == unprefixed.Present() || k == unprefixed.Building() || da[k] == db[k] {
			continue
		}
		if len(out) == max {
			break
		}
		out = append(out, PrefixDifference{Key: k, A: da[k], B: db[k]})
	}
	return out, nil
}

// DumpPrefix returns every read-model key under prefix (the prefix
// stripped) with a canonical text of its content: its type, then its
// fields, members or value sorted, each on a line (hash: field=value, sorted
// set: member=score).
func DumpPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (map[string]string, error) {
	out := map[string]string{}
	err := prefixKeys(ctx, rdb, prefix, func(ks []string) error {
		for _, k := range ks {
			typ, err := rdb.Type(ctx, k).Result()
			if err != nil {
				return err
			}
			var parts []string
			switch typ {
			case "hash":
				h, err := rdb.HGetAll(ctx, k).Result()
				if err != nil {
					return err
				}
				for f, v := range h {
					parts = append(parts, f+"="+v)
				}
			case "zset":
				zs, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
				if err != nil {
					return err
				}
				for _, z := range zs {
					parts = append(parts, fmt.Sprint(z.Member)+"="+strconv.FormatFloat(z.Score, 'g', -1, 64))
				}
			case "set":
				if parts, err = rdb.SMembers(ctx, k).Result(); err != nil {
					return err
				}
			case "string":
				s, err := rdb.Get(ctx, k).Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				parts = []string{s}
			case "none": // gone meanwhile
				continue
			default:
				parts = []string{"<" + typ + ">"}
			}
			sort.Strings(parts)
			out[strings.TrimPrefix(k, prefix)] = typ + "\n" + strings.Join(parts, "\n")
		}
		return nil
	})
	return out, err
}
