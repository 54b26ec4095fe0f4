package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/internal/lru"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/render"
	"github.com/seatledger/seatledger/tenantstream"
)

// Config configures a Projection. Store, Redis are required.
type Config struct {
	// Name names the projection (checkpoint key, metrics label, Watermill
	// handler). Default "readmodels".
	Name      string
	Store     eventstore.Store
	Snapshots eventstore.SnapshotStore // nil: fold misses from the events only
	Upcasters domain.Upcasters
	Catalog   *domain.Catalog // default domain.DefaultCatalog()
	Redis     redis.UniversalClient
	// Prefix of the keys written. Empty: the active prefix (readmodel.ActivePrefix).
	Prefix string
	// BatchSize is the most events written per Redis round trip while
	// catching up (default 512).
	BatchSize int
	// PerTenantWrites writes each tenant of a flush with its own script
	// call (in one pipeline) and then the checkpoint, instead of one script
	// call for the whole flush. It is forced on unless Redis is a
	// *redis.Client (one node): on a Redis Cluster (or any sharded client)
	// one call may only touch one slot, and each tenant's keys share a
	// slot, not the tenants. The pipeline is split by master; each script
	// call is atomic for its tenant and guarded by its applied version, so a
	// flush that fails half-way on some masters is written again whole, and
	// the checkpoint moves only once every master took its part.
	PerTenantWrites bool
	// CacheSize bounds the tenant states kept in memory (default 1024).
	CacheSize int
	// Retry of a failing event: attempts after the first (default 5) and the
	// backoff between them (default 100ms doubling up to 2s).
	MaxRetries      int
	RetryInitial    time.Duration
	RetryMax        time.Duration
	StatusInterval  time.Duration // how often lag is measured (default 500ms)
	Logger          *slog.Logger
	Registerer      prometheus.Registerer // nil: no metrics
	SubscriberNack  time.Duration         // pause before a Nacked event is redelivered (default 100ms)
	PrefetchEvents  int                   // events read ahead of the projector (default 1024)
	WatermillLogger watermill.LoggerAdapter
	// FormerWriterGrace is, for a Manager, how long a former writer of the
	// prefix may go on writing: a node that held the projection's lease and
	// has not yet noticed that it lost it (the lease's TTL). A Manager that
	// finds a prefix without its Present marker waits this long and clears
	// it again before it rebuilds, so that late writes cannot make the
	// rebuild skip the events whose versions they carry. 0: no wait (a
	// Redis no other node writes, such as the in-process one).
	FormerWriterGrace time.Duration
}

// Projection statuses.
const (
	StatusStarting   = "starting"
	StatusCatchingUp = "catching-up"
	StatusRunning    = "running"
	StatusStopped    = "stopped"
	StatusIdle       = "idle" // not running (never started or shut down)
)

// Status is what GET /v1/projections shows of a projection.
type Status struct {
	Name          string    `json:"name"`
	Prefix        string    `json:"prefix"`
	Status        string    `json:"status"`
	Position      uint64    `json:"position"`     // last global position written (checkpoint)
	HeadPosition  uint64    `json:"headPosition"` // last global position of the store
	LagEvents     uint64    `json:"lagEvents"`    // events not yet written (counted up to lagCountCap where positions are not dense)
	LagSeconds    float64   `json:"lagSeconds"`   // age of the oldest event not yet written
	EventsApplied uint64    `json:"eventsApplied"`
	LastError     string    `json:"lastError,omitempty"`
	ErrorPosition uint64    `json:"errorPosition,omitempty"` // the event that could not be applied
	ErrorStream   string    `json:"errorStream,omitempty"`
	ErrorVersion  uint64    `json:"errorVersion,omitempty"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// StoppedError is what Run returns when an event could not be applied after
// the retries: the projection stopped there and skipped nothing.
type StoppedError struct {
	Position eventstore.Position
	Stream   string
	Version  uint64
	Err      error
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("projection stopped at position %d (%s version %d): %v", e.Position, e.Stream, e.Version, e.Err)
}

func (e *StoppedError) Unwrap() error { return e.Err }

// Projection projects the event store into the Redis read models.
type Projection struct {
	cfg     Config
	metrics *metrics

	running atomic.Bool
	// building is true while the prefix is built from the first event and
	// not yet marked complete (markWhenCaughtUp); WaitFor waits for the mark.
	building atomic.Bool

	mu     sync.Mutex
	status Status
	keys   readmodel.Keys
	// redisWait: status.LastError says the projection waits for Redis
	// (guarded by mu); redisWaiting mirrors it for the flush's fast path.
	redisWait    bool
	redisWaiting atomic.Bool

	// Handler state: touched only by the handler (messages are sequential).
	cache *lru.Cache[string, *domain.Tenant]
	// inSet holds tenants this run added to the tenant set (a flush of one
	// Redis node adds only the others).
	inSet    *lru.Cache[string, struct{}]
	pending  map[string]*pendingTenant
	order    []string
	nPending int
	staged   eventstore.Position // last position folded in memory
	flushed  atomic.Uint64       // last position durably written (checkpoint)
	applied  atomic.Uint64
	applySHA string
	ckSHA    string
	flushSHA string
	native   *render.NativeFlusher // the in-process Redis's, if set up (ServeFlushNatively)
	nativeDB int
	sub      *Subscriber
	stopErr  *StoppedError
	stopOnce sync.Once
	failed   failedEvent                     // the event the handler is (or was last) working on
	batch    []eventstore.RecordedEvent      // reused by handle
	sink     render.ScriptSink               // one tenant's writes, reused by render
	tkeys    *lru.Cache[string, *tenantKeys] // render's keys of recent tenants
	spare    []*pendingTenant                // emptied by resetPending, for reuse
	// The flush in the air (nil: none) and the two buffers flushes are
	// rendered into, one for it and one for the next (see flight).
	inflight *flight
	bufs     [2]flushBuf
	// The run's guard of its handler (see runGuard), and how long the
	// router waits for a running handler when it closes (tests shorten it).
	guard        *runGuard
	closeTimeout time.Duration
	refusals     int               // flights refused by Redis in a row
	toRebase     map[string]uint64 // merged back, to rebase from that version (mergeBack)
	remerged     bool              // land gave a refused flight's tenants back: render again
	// A landed flight's map and order, for the next flight.
	spareMap   map[string]*pendingTenant
	spareOrder []string
}

type failedEvent struct {
	position eventstore.Position
	stream   string
	version  uint64
}

type pendingTenant struct {
	st *domain.Tenant
	tc *render.Touched
}

// New returns a projection; Run starts it.
func New(cfg Config) (*Projection, error) {
	if cfg.Store == nil || cfg.Redis == nil {
		return nil, errors.New("projections: Store and Redis are required")
	}
	if cfg.Name == "" {
		cfg.Name = "readmodels"
	}
	if cfg.Catalog == nil {
		cfg.Catalog = domain.DefaultCatalog()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 512
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1024
	}
	if _, oneNode := cfg.Redis.(*redis.Client); !oneNode {
		cfg.PerTenantWrites = true
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 5
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 2 * time.Second
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WatermillLogger == nil {
		cfg.WatermillLogger = NewWatermillLogger(cfg.Logger, map[slog.Level]slog.Level{
			slog.LevelInfo: slog.LevelDebug, // the router's start/stop chatter
		})
	}
	p := &Projection{cfg: cfg, metrics: newMetrics(cfg.Registerer)}
	p.status = Status{Name: cfg.Name, Prefix: cfg.Prefix, Status: StatusIdle}
	return p, nil
}

// Name is the projection's name.
func (p *Projection) Name() string { return p.cfg.Name }

// Written is the last position durably written (the checkpoint): every
// event up to it is in the read models. Safe to call while Run runs.
func (p *Projection) Written() eventstore.Position { return eventstore.Position(p.flushed.Load()) }

// Prefix is the key prefix the projection writes (known once Run started;
// before that, the configured one).
func (p *Projection) Prefix() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys.Prefix
}

// Status reports position, lag and health.
func (p *Projection) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status
	s.Position = p.flushed.Load()
	s.EventsApplied = p.applied.Load()
	if hp, ok := p.cfg.Store.(headPositioner); ok && s.Status != StatusIdle {
		s.HeadPosition = max(uint64(hp.LastPosition()), s.Position)
	}
	if s.HeadPosition < s.Position {
		s.HeadPosition = s.Position
	}
	switch {
	case s.HeadPosition == s.Position:
		s.LagEvents = 0
	case eventstore.IsDense(p.cfg.Store):
		s.LagEvents = s.HeadPosition - s.Position
	}
	// Else LagEvents is what measure counted last.
	if s.LagEvents == 0 {
		s.LagSeconds = 0
		if s.Status == StatusCatchingUp || s.Status == StatusStarting {
			s.Status = StatusRunning
		}
	}
	return s
}

// Run projects until ctx is done (it then returns nil) or an event cannot
// be applied after the retries (it returns a *StoppedError; Status says
// "stopped"). Run may be called again after it returned.
func (p *Projection) Run(ctx context.Context) error { return p.run(ctx, p.cfg.Prefix) }

// ProfileLabel is the pprof label key of the projection's goroutines (every
// goroutine a run starts inherits it), with the value ProfileProjection: a
// CPU profile, and `seatledger bench`, tell the projection's CPU by it.
// ProfileInProcessRedis is the value of the in-process Redis's work: its
// server's goroutines (set by serve) and the flushes it runs in Go for the
// projection (ServeFlushNatively).
const (
	ProfileLabel          = "seatledger"
	ProfileProjection     = "projection"
	ProfileInProcessRedis = "redis"
)

// run is Run on prefix ("" = the active prefix, read now). Manager runs the
// projection on the prefix it watches.
func (p *Projection) run(ctx context.Context, prefix string) (err error) {
	pprof.Do(ctx, pprof.Labels(ProfileLabel, ProfileProjection), func(ctx context.Context) { err = p.runLabelled(ctx, prefix) })
	return err
}

func (p *Projection) runLabelled(ctx context.Context, prefix string) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("projections: already running")
	}
	defer p.running.Store(false)

	if prefix == "" {
		var err error
		if prefix, err = readmodel.ActivePrefix(ctx, p.cfg.Redis); err != nil {
			return err
		}
	}
	keys := readmodel.Keys{Prefix: prefix}
	var err error
	if p.applySHA, err = p.cfg.Redis.ScriptLoad(ctx, render.ApplyScript).Result(); err != nil {
		return fmt.Errorf("projections: load script: %w", err)
	}
	if p.ckSHA, err = p.cfg.Redis.ScriptLoad(ctx, checkpointScript).Result(); err != nil {
		return fmt.Errorf("projections: load script: %w", err)
	}
	if p.flushSHA, err = p.cfg.Redis.ScriptLoad(ctx, render.FlushScript).Result(); err != nil {
		return fmt.Errorf("projections: load script: %w", err)
	}
	p.native = nil
	if !p.cfg.PerTenantWrites {
		p.native, p.nativeDB = render.NativeFlusherFor(p.cfg.Redis)
	}
	ck, err := readmodel.ReadCheckpoint(ctx, p.cfg.Redis, keys.Checkpoint(p.cfg.Name))
	if err != nil {
		return err
	}
	present, err := p.cfg.Redis.Exists(ctx, keys.Present()).Result()
	if err != nil {
		return fmt.Errorf("projections: read the present marker: %w", err)
	}
	// From the first event into a prefix without its marker: build, and
	// mark the prefix complete once caught up (markWhenCaughtUp).
	building := present == 0 && ck == 0
	p.building.Store(building)
	defer p.building.Store(false)
	if building {
		created, err := p.cfg.Redis.SetNX(ctx, keys.Building(), time.Now().UTC().Format(time.RFC3339), 0).Result()
		if err != nil {
			return fmt.Errorf("projections: write the building marker: %w", err)
		}
		// A build that begins here lays, on a cluster, a marker in every
		// slot, checked before the prefix is marked complete: a master that
		// loses its data meanwhile loses its markers too. (A Manager lays
		// them with the building marker; a build resumed finds them.)
		if created {
			if err := readmodel.MarkSlots(ctx, p.cfg.Redis, prefix); err != nil {
				return fmt.Errorf("projections: %w", err)
			}
		}
	}
	p.cache = lru.New[string, *domain.Tenant](p.cfg.CacheSize)
	p.inSet = lru.New[string, struct{}](4 * p.cfg.CacheSize)
	p.tkeys = lru.New[string, *tenantKeys](p.cfg.CacheSize)
	p.inflight, p.refusals = nil, 0
	p.resetPending()
	p.staged = ck
	p.flushed.Store(uint64(ck))
	p.stopOnce = sync.Once{}
	p.mu.Lock()
	p.stopErr = nil
	p.keys = keys
	p.status = Status{Name: p.cfg.Name, Prefix: prefix, Status: StatusStarting, UpdatedAt: time.Now().UTC()}
	p.mu.Unlock()
	p.metrics.stopped.WithLabelValues(p.cfg.Name).Set(0)

	sub := NewSubscriber(p.cfg.Store, SubscriberConfig{
		From:      func(context.Context) (eventstore.Position, error) { return ck, nil },
		Prefetch:  p.cfg.PrefetchEvents,
		NackDelay: p.cfg.SubscriberNack,
		Logger:    p.cfg.Logger,
		// handle keeps nothing of a payload: eventcodec.Decode copies
		// what it decodes, failedAt copies the stream name.
		ReusePayloads: true,
	})
	p.sub = sub
	closeTimeout := p.closeTimeout
	if closeTimeout == 0 {
		closeTimeout = 10 * time.Second
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: closeTimeout}, p.cfg.WatermillLogger)
	if err != nil {
		return err
	}
	guard := &runGuard{}
	p.guard = guard
	router.AddMiddleware(
		guard.middleware,
		p.stopOnFailure,
		middleware.Retry{
			MaxRetries:          p.cfg.MaxRetries,
			InitialInterval:     p.cfg.RetryInitial,
			MaxInterval:         p.cfg.RetryMax,
			Multiplier:          2,
			RandomizationFactor: 0.2,
			ResetContextOnRetry: true,
			OnRetryHook: func(n int, d time.Duration) {
				p.metrics.retries.WithLabelValues(p.cfg.Name).Inc()
			},
		}.Middleware,
		middleware.Recoverer,
	)
	router.AddConsumerHandler(p.cfg.Name, "$all", sub, p.handle)

	runCtx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		p.monitor(runCtx)
	}()
	markDone := make(chan struct{})
	go func() {
		defer close(markDone)
		if building {
			p.markWhenCaughtUp(runCtx, keys, cancelCause)
		}
	}()
	p.cfg.Logger.Info("projection starting", "projection", p.cfg.Name, "prefix", prefix, "checkpoint", uint64(ck), "building", building)
	runErr := router.Run(runCtx)
	cancel()
	sub.Close()
	sub.Wait()
	guard.close()                  // from here on, the handler's state is the teardown's
	if f := p.inflight; f != nil { // the last flush, if the run ended while it ran
		<-f.done
		p.inflight = nil
		f.buf.release()
	}
	<-monitorDone
	<-markDone
	if cause := context.Cause(runCtx); errors.Is(cause, ErrReadModelsLost) {
		p.mu.Lock()
		p.status.Status = StatusIdle
		p.mu.Unlock()
		return cause
	}

	p.mu.Lock()
	stopErr := p.stopErr
	if stopErr == nil {
		p.status.Status = StatusIdle
	}
	p.mu.Unlock()
	if stopErr != nil {
		return stopErr
	}
	if runErr != nil && ctx.Err() == nil {
		return runErr
	}
	return nil
}

func (p *Projection) resetPending() {
	if p.pending == nil {
		p.pending = map[string]*pendingTenant{}
	}
	for _, pt := range p.pending { // reused by the next flushes
		pt.st = nil
		pt.tc.Reset()
		p.spare = append(p.spare, pt)
	}
	clear(p.pending)
	p.order = p.order[:0]
	p.nPending = 0
	if p.toRebase == nil {
		p.toRebase = map[string]uint64{}
	}
	clear(p.toRebase)
}

// runGuard keeps a run's handler off the projection's state once the run
// tears down. Watermill's Router.Run can return while a handler still
// works: Close waits for running handlers only up to CloseTimeout, and a
// message the handler loop took from the subscriber as the router closed
// starts its handler after that wait. The teardown (after the subscriber
// has stopped delivering) closes the guard: that waits for the handler
// working now, if any, and every later one finds the guard closed and
// gives its message back untouched.
type runGuard struct {
	mu     sync.Mutex // held by a handler for its whole call
	closed bool
}

// middleware is the outermost middleware of a run's router.
func (g *runGuard) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.closed {
			msg.Nack()
			return nil, nil
		}
		return h(msg)
	}
}

// close waits for the handler working now (if any) and bars the others.
func (g *runGuard) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// stopOnFailure is the outermost middleware but one (runGuard's): an error that survived the
// retries stops the projection at that event — unless it is Redis that
// cannot be reached (a write failing with a connection error, CLUSTERDOWN,
// TRYAGAIN…): that is no fault of the event, so the message is Nacked and
// written again after SubscriberNack, for as long as it takes. On one
// Redis server the projection's lease is lost with it anyway; on a
// cluster, a master down while the lease's master answers would otherwise
// stop the projection for good.
func (p *Projection) stopOnFailure(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil && msg.Context().Err() == nil {
			var ue *redisUnavailableError
			if errors.As(err, &ue) {
				p.waitRedis(err)
			} else {
				p.fail(msg, err)
			}
		}
		return out, err
	}
}

// redisUnavailableError marks an error of a write to Redis that says Redis
// (or the master of a slot) cannot be reached: retried without end.
type redisUnavailableError struct{ err error }

func (e *redisUnavailableError) Error() string { return e.err.Error() }
func (e *redisUnavailableError) Unwrap() error { return e.err }

// redisUnavailable reports whether err says Redis cannot be reached now
// rather than that a command is wrong: a network error, the end of a
// connection, a pool timeout, or a Redis (Cluster) state that passes.
func redisUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	for _, prefix := range []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "MOVED", "ASK"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}

// waitRedis notes that a write waits for Redis (Status.LastError, one log
// line per outage); the next flush that succeeds clears it.
func (p *Projection) waitRedis(err error) {
	p.mu.Lock()
	first := !p.redisWait
	p.redisWait = true
	p.status.LastError = "waiting for Redis: " + err.Error()
	p.status.UpdatedAt = time.Now().UTC()
	p.mu.Unlock()
	p.redisWaiting.Store(true)
	if first {
		p.cfg.Logger.Warn("projection: Redis cannot be reached; writing again until it answers",
			"projection", p.cfg.Name, "checkpoint", p.flushed.Load(), "err", err)
	}
}

func (p *Projection) fail(msg *message.Message, err error) {
	p.stopOnce.Do(func() {
		// The first event not durably written is where a restart resumes;
		// report the event that failed.
		f := p.failed
		if f.position == 0 { // the batch itself was unreadable
			last, _ := strconv.ParseUint(msg.Metadata.Get(MetaPosition), 10, 64)
			f.position = eventstore.Position(last)
		}
		pos, ver := uint64(f.position), f.version
		se := &StoppedError{Position: f.position, Stream: f.stream, Version: ver, Err: err}
		p.mu.Lock()
		p.stopErr = se
		p.status.Status = StatusStopped
		p.status.LastError = err.Error()
		p.status.ErrorPosition = pos
		p.status.ErrorStream = se.Stream
		p.status.ErrorVersion = ver
		p.status.UpdatedAt = time.Now().UTC()
		p.mu.Unlock()
		p.metrics.stopped.WithLabelValues(p.cfg.Name).Set(1)
		p.metrics.errors.WithLabelValues(p.cfg.Name).Inc()
		p.cfg.Logger.Error("projection stopped: an event could not be applied after retries; nothing after it is applied",
			"projection", p.cfg.Name, "position", pos, "stream", se.Stream, "version", ver,
			"checkpoint", p.flushed.Load(), "err", err)
		// In-memory states may be ahead of Redis: a restart folds them again.
		p.cache = lru.New[string, *domain.Tenant](p.cfg.CacheSize)
		p.inSet = lru.New[string, struct{}](4 * p.cfg.CacheSize)
		p.resetPending()
		p.staged = eventstore.Position(p.flushed.Load())
		go p.sub.Close()
	})
}

// handle folds a batch of events in memory and writes them when the
// subscriber has nothing more waiting or the pending events fill BatchSize.
// The write runs while the next batch is staged (see flight); a handler
// that fails has landed it first, so that no flight outlives a failure.
func (p *Projection) handle(msg *message.Message) error {
	err := p.handleBatch(msg)
	if err != nil {
		_ = p.land(msg.Context()) // its error is err's, or the retry's
	}
	return err
}

func (p *Projection) handleBatch(msg *message.Message) error {
	p.mu.Lock()
	stopErr := p.stopErr
	p.mu.Unlock()
	if stopErr != nil {
		return stopErr
	}
	ctx := msg.Context()
	p.failed = failedEvent{}
	evs, err := DecodeBatch(msg.Payload, p.batch[:0])
	p.batch = evs[:0]
	if err != nil {
		return fmt.Errorf("message %s: %w", msg.UUID, err)
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Position <= p.staged { // a retry or re-delivery: folded already
			continue
		}
		p.failedAt(ev) // what a failure (or a panic) here is about
		if err := p.stage(ctx, ev); err != nil {
			return err
		}
		// Flush only right after staging: a retry of a failed flush then
		// happens at the next event staged (or at the message's end), and
		// a failure names an event that was not written.
		if p.nPending >= p.cfg.BatchSize {
			if err := p.flush(ctx); err != nil {
				return err
			}
		}
	}
	if len(evs) > 0 {
		p.failedAt(&evs[len(evs)-1])
	}
	// At the end of what is waiting, or when a retry found the batch
	// full (its flush failed), write.
	end := msg.Metadata.Get(MetaMore) != "1"
	if p.nPending > 0 && (end || p.nPending >= p.cfg.BatchSize) {
		if err := p.flush(ctx); err != nil {
			return err
		}
	}
	if end {
		return p.settle(ctx)
	}
	return nil
}

// failedAt notes the event the handler is working on: StoppedError names
// it if the handler fails there after the retries.
func (p *Projection) failedAt(ev *eventstore.RecordedEvent) {
	p.failed = failedEvent{position: ev.Position, stream: ev.Stream, version: ev.Version}
}

func (p *Projection) stage(ctx context.Context, ev *eventstore.RecordedEvent) error {
	stream, version, pos := ev.Stream, ev.Version, ev.Position
	tenantID, ok := tenantstream.TenantID(stream)
	if !ok { // not a tenant stream: nothing to project
		p.staged = pos
		p.nPending++
		return nil
	}
	pt := p.pending[tenantID]
	var st *domain.Tenant
	if pt != nil {
		st = pt.st
	} else {
		st, _ = p.cache.Get(tenantID)
	}
	if st != nil && st.Version >= version { // a re-delivery already folded
		p.staged = pos
		p.nPending++
		return nil
	}
	e, err := eventcodec.Decode(ev.Data, p.cfg.Upcasters)
	if err != nil {
		return fmt.Errorf("%s version %d: %w", stream, version, err)
	}
	e.Version = version
	if st == nil || st.Version != version-1 {
		if version == 1 {
			st = domain.NewTenant()
		} else {
			st, err = tenantstream.Fold(ctx, p.cfg.Store, p.cfg.Snapshots, p.cfg.Upcasters, tenantID, version-1)
			if err != nil {
				return fmt.Errorf("fold tenant %s to version %d: %w", tenantID, version-1, err)
			}
			if st.Version != version-1 {
				return fmt.Errorf("fold tenant %s: got version %d, want %d", tenantID, st.Version, version-1)
			}
		}
	}
	if pt == nil {
		if n := len(p.spare); n > 0 {
			pt, p.spare = p.spare[n-1], p.spare[:n-1]
		} else {
			pt = &pendingTenant{tc: render.NewTouched()}
		}
		p.pending[tenantID] = pt
		p.order = append(p.order, tenantID)
	}
	pt.st = st
	pt.tc.Event(st, e)
	domain.Evolve(st, e)
	p.cache.Put(tenantID, st)
	p.staged = pos
	p.nPending++
	return nil
}

// checkpointScript moves a checkpoint forward only.
var checkpointScript = render.Script("checkpoint.lua")

// A flush is rendered and sent by the handler, and runs in a goroutine of
// its own (a flight) while the handler stages the next batch: a flush
// script runs for milliseconds in Redis (or in Go in-process), and a
// projection that waited for each one fell seconds behind under a full
// load (issue #22). At most one flight is in the air, so the writes, and
// the checkpoints, keep the log's order. The next flush is rendered while
// the flight runs, into the other of two buffers, and sent once the flight
// landed.
//
// A tenant staged again while its flight runs starts its pending changes
// from the version the flight writes (its base). A flight that fails, or
// that Redis refuses (a tenant off its base, NOSCRIPT), gives its tenants
// back to the pending ones (mergeBack): a tenant staged again meanwhile is
// rebased to the flight's base, a refused one to its read model's version,
// a tenant the flight did write stays as it is; then the whole is written
// again with the checkpoint of the latest event staged.

// flight is a flush in the air: its pending tenants (the handler's no
// longer), its buffers, and, once done is closed, its outcome.
type flight struct {
	pending  map[string]*pendingTenant
	order    []string
	nPending int
	staged   eventstore.Position // the checkpoint it writes
	buf      *flushBuf
	start    time.Time
	done     chan struct{}
	// Set by the flight before done is closed.
	err     error
	refused bool              // Redis refused it (a tenant off its base, NOSCRIPT): written again at once
	stale   map[string]uint64 // refused tenants: the version their read model holds
	written []bool            // per-tenant writes: which tenants' script calls succeeded
}

// flushBuf is what one flush is rendered into; a projection has two, one
// for the flight, one for the flush rendered meanwhile.
type flushBuf struct {
	views   render.JSONArena // the encoded views of the flush
	key     []string         // the flush script's KEYS
	arg     []any            // its ARGV
	cmd     []any            // its command
	pipe    redis.Pipeliner  // the per-tenant writes' pipeline
	applies []*redis.Cmd     // their script calls
	sadds   []*redis.IntCmd  // and their tenants' SADDs
}

// flush renders the pending tenants and sends them, once the flight in
// the air (if any) has landed, as a flight of their own; it does not wait
// for it. An error is the earlier flight's: its tenants are pending again.
func (p *Projection) flush(ctx context.Context) error {
	if err := p.rebaseMerged(ctx); err != nil {
		return err
	}
	if p.inflight == nil {
		p.send(ctx, p.prepare(ctx))
		return nil
	}
	// Render meanwhile, into the other buffer.
	buf := p.prepare(ctx)
	if err := p.land(ctx); err != nil {
		buf.release()
		return err
	}
	if p.nPending == 0 { // an earlier flight's checkpoint only: written
		buf.release()
		return nil
	}
	if p.remerged {
		// The earlier flight came back (refused): render again, its
		// tenants with the others.
		buf.release()
		buf = p.prepare(ctx)
	}
	p.send(ctx, buf)
	return nil
}

// settle waits for the flight in the air to land, or for the subscriber
// to have events waiting (the next message then stages them while the
// flight runs, and its flush lands it). Called at the end of what was
// waiting, so that a flight is landed, and its error returned, even if no
// event follows.
func (p *Projection) settle(ctx context.Context) error {
	for p.inflight != nil {
		if p.sub != nil && p.sub.Waiting() > 0 {
			return nil
		}
		var arrived <-chan struct{}
		if p.sub != nil {
			arrived = p.sub.Arrived()
		}
		select {
		case <-p.inflight.done:
			if err := p.land(ctx); err != nil {
				return err
			}
			if p.nPending > 0 { // a refused flight's tenants: send them again
				if err := p.flush(ctx); err != nil {
					return err
				}
			}
		case <-arrived:
		}
	}
	return nil
}

// land waits for the flight in the air (if any) and takes its outcome in:
// its buffers and tenants back for reuse if it succeeded; else its tenants
// pending again (mergeBack), and its error unless Redis only refused it
// (then p.remerged is set and the caller writes them again).
func (p *Projection) land(ctx context.Context) error {
	p.remerged = false
	f := p.inflight
	if f == nil {
		return nil
	}
	<-f.done
	p.inflight = nil
	f.buf.release()
	if f.err == nil {
		if !p.cfg.PerTenantWrites {
			for _, tid := range f.order {
				p.inSet.Put(tid, struct{}{})
			}
		}
		p.refusals = 0
		p.recycle(f)
		return nil
	}
	refused := f.refused && p.refusals < maxRebases
	if err := p.mergeBack(ctx, f); err != nil {
		return err
	}
	if !refused {
		err := f.err
		if redisUnavailable(err) {
			err = &redisUnavailableError{err}
		}
		return err
	}
	p.refusals++
	if p.cfg.PerTenantWrites { // the script calls may have met NOSCRIPT
		var err error
		if p.applySHA, err = p.cfg.Redis.ScriptLoad(ctx, render.ApplyScript).Result(); err != nil {
			return fmt.Errorf("projections: load script: %w", err)
		}
	}
	p.remerged = true
	return nil
}

// mergeBack makes a failed flight's tenants pending again, with the
// tenants staged since it left, so that the next flush writes both.
func (p *Projection) mergeBack(ctx context.Context, f *flight) error {
	for i, tid := range f.order {
		pt := f.pending[tid]
		if f.written != nil && f.written[i] {
			// Its read model is at the flight's version, which is where
			// a tenant staged again meanwhile starts from.
			p.recycleTenant(pt)
			continue
		}
		from, stale := f.stale[tid]
		if cur := p.pending[tid]; cur != nil {
			// Staged again meanwhile, as a diff from the version the
			// flight did not write: make it one from the flight's base.
			if !stale {
				from = pt.tc.Base()
			}
			p.recycleTenant(pt)
			p.toRebase[tid] = from
			continue
		}
		p.pending[tid] = pt
		p.order = append(p.order, tid)
		if stale {
			p.toRebase[tid] = from
		}
	}
	p.nPending += f.nPending
	clear(f.pending)
	p.spareMap, p.spareOrder = f.pending, f.order[:0]
	return p.rebaseMerged(ctx)
}

// rebaseMerged rebases the tenants mergeBack left to rebase. A tenant
// stays to rebase until its rebase succeeded (a retry of the handler, or
// its next flush, does it again).
func (p *Projection) rebaseMerged(ctx context.Context) error {
	for tid, from := range p.toRebase {
		if err := p.rebase(ctx, tid, from); err != nil {
			return err
		}
		delete(p.toRebase, tid)
	}
	return nil
}

// recycle keeps a landed flight's tenants, map and order for reuse.
func (p *Projection) recycle(f *flight) {
	for _, pt := range f.pending {
		p.recycleTenant(pt)
	}
	clear(f.pending)
	clear(f.order)
	p.spareMap, p.spareOrder = f.pending, f.order[:0]
}

func (p *Projection) recycleTenant(pt *pendingTenant) {
	pt.st = nil
	pt.tc.Reset()
	p.spare = append(p.spare, pt)
}

// prepare renders the pending tenants into the free buffer: the flush
// script's KEYS and ARGV, or the per-tenant writes' pipeline.
func (p *Projection) prepare(ctx context.Context) *flushBuf {
	buf := &p.bufs[0]
	if p.inflight != nil && p.inflight.buf == buf {
		buf = &p.bufs[1]
	}
	buf.views.Reset()
	if p.cfg.PerTenantWrites {
		p.preparePerTenant(ctx, buf)
	} else {
		p.prepareOnce(buf)
	}
	return buf
}

// send hands the pending tenants, rendered into buf, to a flight.
func (p *Projection) send(ctx context.Context, buf *flushBuf) {
	f := &flight{pending: p.pending, order: p.order, nPending: p.nPending, staged: p.staged, buf: buf,
		start: time.Now(), done: make(chan struct{})}
	p.pending, p.order, p.nPending = p.spareMap, p.spareOrder, 0
	if p.pending == nil {
		p.pending = map[string]*pendingTenant{}
	}
	p.spareMap, p.spareOrder = nil, nil
	p.inflight = f
	go p.fly(ctx, f)
}

// fly writes a flight and, if it succeeded, moves the written position.
func (p *Projection) fly(ctx context.Context, f *flight) {
	defer close(f.done)
	defer func() {
		// A panic in the write (the client, a hook, the flush in Go) is
		// the flight's error, as Watermill's Recoverer made it the
		// handler's when the handler wrote: not a crash of the process.
		// What it wrote is unknown: its tenants are all pending again.
		if r := recover(); r != nil {
			f.err = fmt.Errorf("write read models: panic: %v\n%s", r, debug.Stack())
			f.refused, f.written = false, nil
		}
	}()
	if p.cfg.PerTenantWrites {
		f.err = p.flyPerTenant(ctx, f)
	} else {
		f.err = p.flyOnce(ctx, f)
	}
	if f.err != nil {
		return
	}
	if p.redisWaiting.Load() {
		p.redisWaiting.Store(false)
		p.mu.Lock()
		if p.redisWait {
			p.redisWait = false
			p.status.LastError = ""
		}
		p.mu.Unlock()
		p.cfg.Logger.Info("projection: Redis answers again", "projection", p.cfg.Name)
	}
	p.applied.Add(uint64(f.nPending))
	p.metrics.events.WithLabelValues(p.cfg.Name).Add(float64(f.nPending))
	p.metrics.flush.WithLabelValues(p.cfg.Name).Observe(time.Since(f.start).Seconds())
	p.flushed.Store(uint64(f.staged))
	p.metrics.position.WithLabelValues(p.cfg.Name).Set(float64(f.staged))
}

// render renders tenant tid's pending changes as apply script arguments
// into p.sink, which stays valid until the next render (views into
// views): copy out what is kept (go-redis's EvalSha copies its keys and
// arguments).
func (p *Projection) render(tid string, views *render.JSONArena) *render.ScriptSink {
	pt := p.pending[tid]
	ss := &p.sink
	tk, ok := p.tkeys.Get(tid)
	if !ok {
		tk = newTenantKeys(p.keys, tid)
		p.tkeys.Put(tid, tk)
	}
	ss.Reset(tk.of)
	pt.tc.Render(render.NewRenderer(p.cfg.Catalog, pt.st, ss, views))
	return ss
}

// tenantKeys are a tenant's Redis keys by suffix, as the renders of its
// flushes name them: a bench command names about twelve, each a
// concatenation and an allocation (a tenth of a live flush's) when it
// was made anew by every render. The projection keeps them for its
// CacheSize most recently rendered tenants: as many as the tenant states
// it keeps, so a tenant whose keys were dropped was, mostly, folded from
// the store again too, which costs far more than making its keys anew.
type tenantKeys struct {
	tenant string // Keys.Tenant: what every key begins with
	keys   map[string]string
	of     func(suffix string) string // key, for ScriptSink.Reset
}

// maxTenantKeys bounds the keys kept per tenant (a tenant has keys per
// group and per product; past the bound they are made anew each time).
const maxTenantKeys = 64

func newTenantKeys(k readmodel.Keys, tid string) *tenantKeys {
	tk := &tenantKeys{tenant: k.Tenant(tid), keys: map[string]string{}}
	tk.of = tk.key
	return tk
}

// key is Keys.Key of the tenant and suffix.
func (tk *tenantKeys) key(suffix string) string {
	if k, ok := tk.keys[suffix]; ok {
		return k
	}
	k := tk.tenant + suffix
	if len(tk.keys) < maxTenantKeys {
		tk.keys[suffix] = k
	}
	return k
}

// prepareOnce renders the pending tenants and the checkpoint as KEYS and
// ARGV of one call of the flush script, in buffers reused from flush to
// flush (they were a twentieth of the process's allocations, twice over
// with go-redis's own copy in EvalSha).
func (p *Projection) prepareOnce(buf *flushBuf) {
	keys := buf.key[:0]
	// ARGV: the checkpoint's position, the tenant count, then per tenant
	// its key count, version, base, id (empty: in the tenant set already),
	// op count and ops.
	args := buf.arg[:0]
	args = append(args, uint64(p.staged), len(p.order))
	for _, tid := range p.order {
		ss := p.render(tid, &buf.views)
		keys = append(keys, ss.Keys...)
		add := tid
		if _, ok := p.inSet.Peek(tid); ok {
			add = ""
		} else if f := p.inflight; f != nil && f.pending[tid] != nil {
			add = "" // the flight adds it (if it fails, this flush is rendered again)
		}
		pt := p.pending[tid]
		args = append(args, len(ss.Keys), pt.st.Version, pt.tc.Base(), add, len(ss.Args))
		args = append(args, ss.Args...)
	}
	keys = append(keys, p.keys.Tenants(), p.keys.Checkpoint(p.cfg.Name))
	buf.key, buf.arg = keys, args
}

// flyOnce writes a flight with one call of the flush script. A tenant
// whose read model is off its pending changes' base refuses the whole
// call (f.stale says which).
func (p *Projection) flyOnce(ctx context.Context, f *flight) error {
	keys, args := f.buf.key, f.buf.arg
	var err error
	if p.native != nil { // an in-process Redis: the flush in Go
		pprof.Do(ctx, pprof.Labels(ProfileLabel, ProfileInProcessRedis), func(context.Context) {
			err = p.native.Flush(p.nativeDB, keys, args)
		})
	} else {
		err = p.evalFlush(ctx, f.buf, "evalsha", p.flushSHA, keys, args)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			err = p.evalFlush(ctx, f.buf, "eval", render.FlushScript, keys, args)
		}
	}
	if err == nil {
		return nil
	}
	if be, ok := render.AsBaseError(err); ok {
		stale := map[string]uint64{}
		for _, s := range be.Stale {
			if s.Place < 1 || s.Place > len(f.order) {
				return fmt.Errorf("write read models: %w (no tenant at place %d)", err, s.Place)
			}
			stale[f.order[s.Place-1]] = s.Version
		}
		f.stale, f.refused = stale, true
	}
	return fmt.Errorf("write read models: %w", err)
}

// release lets go of what a flush's buffers point to (views in the arena,
// strings, commands), and of the buffers themselves after a rebuild-sized
// flush, as render.JSONArena.reset does.
func (b *flushBuf) release() {
	clear(b.key)
	clear(b.arg)
	clear(b.cmd)
	clear(b.applies)
	clear(b.sadds)
	b.applies, b.sadds = b.applies[:0], b.sadds[:0]
	b.pipe = nil
	if cap(b.cmd) > maxKeptFlushArgs || cap(b.arg) > maxKeptFlushArgs {
		b.key, b.arg, b.cmd = nil, nil, nil
	}
}

// maxKeptFlushArgs bounds the flush buffers kept between flushes (a live
// flush of 512 events has a few thousand arguments).
const maxKeptFlushArgs = 1 << 16

// maxRebases bounds the refusals of flushes in a row: a tenant rebased
// once is on its read model's version, which only this projection moves.
const maxRebases = 3

// evalFlush sends `verb script len(keys) keys... args...` (EVALSHA or EVAL)
// built in buf.cmd.
func (p *Projection) evalFlush(ctx context.Context, buf *flushBuf, verb, script string, keys []string, args []any) error {
	cmd := append(buf.cmd[:0], verb, script, len(keys))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, args...)
	buf.cmd = cmd
	return p.cfg.Redis.Do(ctx, cmd...).Err()
}

// preparePerTenant queues one apply script call per pending tenant (and
// its SADD to the tenant set) in a pipeline of buf.
func (p *Projection) preparePerTenant(ctx context.Context, buf *flushBuf) {
	pipe := p.cfg.Redis.Pipeline()
	applies, sadds := buf.applies[:0], buf.sadds[:0]
	tenants := p.keys.Tenants()
	for _, tid := range p.order {
		ss := p.render(tid, &buf.views)
		pt := p.pending[tid]
		applies = append(applies, pipe.EvalSha(ctx, p.applySHA, ss.Keys, ss.ApplyArgs(pt.st.Version, pt.tc.Base())...))
		sadds = append(sadds, pipe.SAdd(ctx, tenants, tid))
	}
	buf.pipe, buf.applies, buf.sadds = pipe, applies, sadds
}

// flyPerTenant writes a flight's tenants, one script call each in one
// pipeline, then its checkpoint. If the pipeline fails, f.written says
// which tenants were written, f.stale which were refused.
func (p *Projection) flyPerTenant(ctx context.Context, f *flight) error {
	if len(f.order) > 0 {
		if _, err := f.buf.pipe.Exec(ctx); err != nil {
			f.written = make([]bool, len(f.order))
			f.refused = true
			for i, c := range f.buf.applies {
				cerr := c.Err()
				f.written[i] = cerr == nil && f.buf.sadds[i].Err() == nil
				be, ok := render.AsBaseError(cerr)
				switch {
				case ok && len(be.Stale) == 1:
					if f.stale == nil {
						f.stale = map[string]uint64{}
					}
					f.stale[f.order[i]] = be.Stale[0].Version
				case cerr != nil && !redis.HasErrorPrefix(cerr, "NOSCRIPT"), f.buf.sadds[i].Err() != nil:
					f.refused = false // a failure, not only a refusal
				}
			}
			return fmt.Errorf("write read models: %w", err)
		}
	}
	keys := p.keys
	err := p.cfg.Redis.EvalSha(ctx, p.ckSHA, []string{keys.Checkpoint(p.cfg.Name)}, uint64(f.staged)).Err()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = p.cfg.Redis.Eval(ctx, checkpointScript, []string{keys.Checkpoint(p.cfg.Name)}, uint64(f.staged)).Err()
	}
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// rebase makes tenant tid's pending changes a diff from version from, the
// version its read model holds, rather than from the state before the
// pending events: it folds the tenant to from and marks again what each
// event after it touches, up to the pending state's version. Needed when
// a write failed after some tenants were written (their read models are
// past the checkpoint the events are staged again from) or when Redis
// lost a tenant's keys (version 0).
func (p *Projection) rebase(ctx context.Context, tid string, from uint64) error {
	pt := p.pending[tid]
	to := pt.st.Version
	p.cfg.Logger.Info("projection: a tenant's read model is not at the version its pending changes start from; writing them from its version",
		"projection", p.cfg.Name, "tenant", tid, "read_model_version", from, "base", pt.tc.Base(), "version", to)
	st := domain.NewTenant()
	if from > 0 {
		var err error
		st, err = tenantstream.Fold(ctx, p.cfg.Store, p.cfg.Snapshots, p.cfg.Upcasters, tid, from)
		if err != nil {
			return fmt.Errorf("fold tenant %s to version %d: %w", tid, from, err)
		}
		if st.Version != from {
			return fmt.Errorf("fold tenant %s: got version %d, want %d", tid, st.Version, from)
		}
	}
	pt.tc.Reset()
	stream := tenantstream.Name(tid)
	for st.Version < to {
		recs, err := p.cfg.Store.ReadStream(ctx, stream, st.Version+1, int(min(to-st.Version, 512)))
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if len(recs) == 0 {
			return fmt.Errorf("read %s: it ends at version %d, the projection staged %d", stream, st.Version, to)
		}
		for i := range recs {
			r := &recs[i]
			if r.Version != st.Version+1 {
				return fmt.Errorf("read %s: expected version %d, got %d: the stream has a gap", stream, st.Version+1, r.Version)
			}
			e, err := eventcodec.Decode(r.Data, p.cfg.Upcasters)
			if err != nil {
				return fmt.Errorf("%s version %d: %w", stream, r.Version, err)
			}
			e.Version = r.Version
			pt.tc.Event(st, e)
			domain.Evolve(st, e)
		}
	}
	return nil
}

// headPositioner is implemented by stores that know their last position
// cheaply (the embedded store).
type headPositioner interface {
	LastPosition() eventstore.Position
}

// ErrReadModelsLost is returned by Run when Redis lost the prefix being built
// from the first event (its building marker vanished): what was written
// before the loss is gone, so the prefix must be cleared and built again.
var ErrReadModelsLost = errors.New("projections: Redis lost the read models being built")

// markScript sets the Present marker (KEYS[2]) and removes the building
// marker (KEYS[1]) if the building marker is still there; 0 if it is not.
var markScript = render.Script("mark.lua")

// markWhenCaughtUp marks the prefix being built complete (readmodel.Keys.Present) as
// soon as the projection has written every event the store had at some
// moment after the build began: the store's head when it knows it cheaply,
// else one read of the log after the written position that finds nothing.
// Readers answer 503 until then, never an older or half-built read model.
// If the building marker vanished (Redis lost its data meanwhile) the run
// is cancelled with ErrReadModelsLost.
func (p *Projection) markWhenCaughtUp(ctx context.Context, keys readmodel.Keys, cancel context.CancelCauseFunc) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		pos := eventstore.Position(p.flushed.Load())
		var caught bool
		// A head of Start is unknown (KurrentDB's LastPosition when it
		// cannot read the log): only an empty read after pos tells then.
		if hp, ok := p.cfg.Store.(headPositioner); ok && hp.LastPosition() != eventstore.Start {
			caught = pos >= hp.LastPosition()
		} else if evs, err := p.cfg.Store.ReadAll(ctx, pos, 1); err == nil {
			caught = len(evs) == 0
		}
		if caught {
			// On a cluster every slot must still hold its marker: a master
			// that lost its data since the build began lost what the build
			// wrote there.
			missing, err := readmodel.MissingSlots(ctx, p.cfg.Redis, keys.Prefix, true)
			if err == nil && missing > 0 {
				p.cfg.Logger.Warn("a Redis Cluster master lost the read models being built; building them again",
					"projection", p.cfg.Name, "prefix", keys.Prefix, "slots_lost", missing)
				cancel(ErrReadModelsLost)
				return
			}
			n := 0
			if err == nil {
				n, err = p.cfg.Redis.Eval(ctx, markScript, []string{keys.Building(), keys.Present()}, time.Now().UTC().Format(time.RFC3339)).Int()
			}
			switch {
			case err == nil && n == 1:
				p.building.Store(false)
				p.cfg.Logger.Info("read models built: marked complete", "projection", p.cfg.Name, "prefix", keys.Prefix, "position", uint64(pos))
				return
			case err == nil:
				p.cfg.Logger.Warn("Redis lost the read models being built; building them again", "projection", p.cfg.Name, "prefix", keys.Prefix)
				cancel(ErrReadModelsLost)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// monitor measures lag and refreshes the status and gauges.
func (p *Projection) monitor(ctx context.Context) {
	t := time.NewTicker(p.cfg.StatusInterval)
	defer t.Stop()
	for {
		p.measure(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Projection) measure(ctx context.Context) {
	pos := p.flushed.Load()
	var head uint64
	if hp, ok := p.cfg.Store.(headPositioner); ok {
		head = uint64(hp.LastPosition())
	} else if p.sub != nil {
		head = uint64(p.sub.Seen())
	}
	if head < pos {
		head = pos
	}
	lag := p.lagEvents(ctx, pos, head)
	var lagSec float64
	if lag > 0 {
		if evs, err := p.cfg.Store.ReadAll(ctx, eventstore.Position(pos), 1); err == nil && len(evs) > 0 {
			lagSec = max(0, time.Since(evs[0].RecordedAt).Seconds())
		}
	}
	p.mu.Lock()
	p.status.Position = pos
	p.status.HeadPosition = head
	p.status.LagEvents = lag
	p.status.LagSeconds = lagSec
	p.status.UpdatedAt = time.Now().UTC()
	if p.status.Status != StatusStopped {
		if lag > uint64(p.cfg.BatchSize) || lagSec > 2 || (p.status.Status == StatusStarting && lag > 0) {
			p.status.Status = StatusCatchingUp
		} else {
			p.status.Status = StatusRunning
		}
	}
	p.mu.Unlock()
	n := p.cfg.Name
	p.metrics.position.WithLabelValues(n).Set(float64(pos))
	p.metrics.head.WithLabelValues(n).Set(float64(head))
	p.metrics.lagEvents.WithLabelValues(n).Set(float64(lag))
	p.metrics.lagSeconds.WithLabelValues(n).Set(lagSec)
}

// lagCountCap bounds how many events lagEvents counts on a store whose
// positions are not dense (one read of up to that many events, each
// measure, only while the projection is behind).
const lagCountCap = 10_000

// lagEvents is the number of events after pos up to head. Positions are
// event numbers only on a store that says so (eventstore.DensePositions);
// elsewhere (KurrentDB's byte offsets, PostgreSQL's transaction ids) the
// events after pos are counted, up to lagCountCap.
func (p *Projection) lagEvents(ctx context.Context, pos, head uint64) uint64 {
	if head <= pos {
		return 0
	}
	if eventstore.IsDense(p.cfg.Store) {
		return head - pos
	}
	evs, err := p.cfg.Store.ReadAll(ctx, eventstore.Position(pos), lagCountCap)
	if err != nil {
		// Unknown: keep what was counted last rather than claim none.
		p.mu.Lock()
		defer p.mu.Unlock()
		return max(p.status.LagEvents, 1)
	}
	n := uint64(0)
	for _, e := range evs {
		if uint64(e.Position) > head {
			break
		}
		n++
	}
	return n
}

// WaitFor blocks until the projection has written position pos (or ctx is
// done, or the projection stopped); while it builds a prefix from the first
// event, also until it marked the prefix complete (queries answer 503 before).
func (p *Projection) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		if p.flushed.Load() >= uint64(pos) && !p.building.Load() {
			return nil
		}
		p.mu.Lock()
		se := p.stopErr
		p.mu.Unlock()
		if se != nil {
			return se
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
