package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
)

// Tail is the live projector (a projections.Projection) on the prefix a
// Replay built: it projects the events after the bulk pass. Replay runs it
// until it has written the log's head, swaps the active prefix, then
// stops it.
type Tail interface {
	Run(ctx context.Context) error
	// Written is the last position durably written (its checkpoint).
	Written() eventstore.Position
}

// ReplayConfig configures Replay. Store and Redis are required, and
// NewTail for Replay.
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
	// Tenant is the tenant rebuild.Tenant rebuilds in place, under the
	// active prefix (no new prefix, no swap). Replay refuses it.
	Tenant string
	// NewTail makes the Tail of a Replay: the live projector
	// (projections.New) with this config's Name, Store, Snapshots,
	// Upcasters, Catalog, Redis and Logger on the prefix NewPrefix. It is
	// passed in so that the rebuild tools do not import the live projector.
	NewTail func(cfg ReplayConfig) (Tail, error)
	// NoSwap builds and catches up NewPrefix but leaves the active prefix
	// alone (an audit: compare it with the active prefix, readmodel.ComparePrefixes).
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
	// MaxHeap bounds the memory the tenant states of the bulk pass take: when
	// the Go heap live after a collection exceeds it, each worker writes its
	// tenants and forgets them, as for MaxTenants (at most once a
	// collection). Default: a quarter of the Go memory limit (GOMEMLIMIT;
	// serve sets one) when there is one, else 1 GiB; negative: no bound.
	MaxHeap int64
	Logger  *slog.Logger
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
	// Evictions counts the times a worker of the bulk pass wrote its tenants
	// early and forgot them (MaxTenants, MaxHeap).
	Evictions int `json:"evictions,omitempty"`
}

// Replay rebuilds every read model from the start of the global log into a
// fresh key prefix while the active prefix keeps serving, catches the new
// prefix up with the events appended meanwhile, and then swaps the active
// prefix to it (one SET). The bulk pass does not go through Watermill: it
// reads the log in large batches, decodes and folds each tenant in memory
// (tenants spread over Workers) and writes each tenant's final state once,
// in pipelines, each tenant in one script call with its applied version. The
// checkpoint of the new prefix is written at the bulk pass's last position,
// and the live projector on the new prefix (cfg.NewTail) projects the tail
// from there.
//
// cfg.Tenant must be empty: one tenant is rebuilt in place by Tenant.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayResult, error) {
	if cfg.Store == nil || cfg.Redis == nil || cfg.NewTail == nil {
		return ReplayResult{}, errors.New("projections: replay: Store, Redis and NewTail are required")
	}
	if cfg.Tenant != "" {
		return ReplayResult{}, fmt.Errorf("projections: replay rebuilds every tenant into a new prefix, but Tenant is %q: call rebuild.Tenant to rebuild one tenant in place", cfg.Tenant)
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
			if _, err := readmodel.DeletePrefix(dctx, rdb, cfg.NewPrefix); err != nil {
				cfg.Logger.Warn("replay: cannot delete the unfinished prefix", "prefix", cfg.NewPrefix, "err", err)
			}
		}
	}()
	if _, err := readmodel.DeletePrefix(ctx, rdb, cfg.NewPrefix); err != nil {
		return res, err
	}
	// On a cluster, slot markers: checked before the marker below.
	if err := readmodel.MarkSlots(ctx, rdb, cfg.NewPrefix); err != nil {
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
	res.Evictions = int(b.evictions.Load())
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
	if missing, err := readmodel.MissingSlots(ctx, rdb, cfg.NewPrefix, true); err != nil || missing > 0 {
		return res, fmt.Errorf("projections: replay: a Redis Cluster master lost %d slots of the new prefix during the replay (%v); run it again", missing, err)
	}
	if err := rdb.Set(ctx, keys.Present(), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return res, fmt.Errorf("projections: replay: write marker: %w", err)
	}
	cfg.Logger.Info("replay: bulk pass done", "prefix", cfg.NewPrefix, "events", res.Events, "tenants", res.Tenants,
		"position", uint64(res.BulkPosition), "seconds", res.BulkDuration.Seconds(), "events_per_s", res.EventsPerSec)

	// Catch up the tail with an ordinary projection on the new prefix.
	tail, err := cfg.NewTail(cfg)
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
	res.Position = tail.Written()

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
	res.Position = tail.Written()
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
			n, err := readmodel.DeletePrefix(dctx, rdb, old)
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
	if cfg.MaxHeap == 0 {
		cfg.MaxHeap = 1 << 30
		if limit := debug.SetMemoryLimit(-1); limit > 0 && limit < math.MaxInt64 {
			cfg.MaxHeap = limit / 4
		}
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
func (cfg *ReplayConfig) waitTail(ctx context.Context, tail Tail, done <-chan error, events uint64, head eventstore.Position) error {
	t := time.NewTicker(cfg.ProgressInterval)
	defer t.Stop()
	start := time.Now()
	from := uint64(tail.Written())
	for {
		pos := uint64(tail.Written())
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

// headPositioner is implemented by stores that know their last position
// cheaply (the embedded store).
type headPositioner interface {
	LastPosition() eventstore.Position
}
