// Package commands runs domain commands against the event store: it loads a
// tenant (from a bounded in-memory cache, else snapshot + tail of its
// stream), decides, appends with the expected version, and retries on a
// concurrency conflict after reading only the events it missed. On a store
// that queues appends (the embedded one) the commands of a tenant pipeline:
// each decides on the state its predecessors' queued events make and waits
// for its own fsync without holding the tenant (see tenantLock).
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// ErrConcurrencyConflict is returned when the tenant kept changing under a
// command until the retries ran out. The client may retry the request.
var ErrConcurrencyConflict = errors.New("commands: concurrency conflict: the tenant changed while the command was decided; retry")

// Config configures a Handler. Store and Decider are required.
type Config struct {
	Store     eventstore.Store
	Snapshots eventstore.SnapshotStore // nil: no snapshots
	Decider   *domain.Decider
	Upcasters domain.Upcasters
	Clock     func() time.Time // default time.Now
	Logger    *slog.Logger
	// CacheSize bounds the tenants kept in memory (default 1024).
	CacheSize int
	// SnapshotEvery is K: a snapshot is written each time a tenant's
	// version crosses a multiple of K (default 1000; negative: never).
	SnapshotEvery int
	// MaxRetries bounds the attempts after a conflict (default 8).
	MaxRetries int
	// Observer receives timings and outcomes (metrics); nil: none.
	Observer Observer
}

// Observer is told about every command and append, for metrics.
type Observer interface {
	CommandDone(name string, outcome string, d time.Duration)
	AppendDone(events int, d time.Duration, err error)
}

// Result is the answer to a command.
type Result struct {
	// Version is the tenant stream's version after the command.
	Version uint64
	// Events are the events the command appended (or, for a replayed
	// command id, the events its first run appended).
	Events []domain.Event
	// Replayed is true when the command id had already been decided: nothing
	// was appended and the first answer is returned.
	Replayed bool
	// Raw are the events' JSON envelopes as stored, one per event.
	Raw [][]byte
}

// Handler executes commands. It is safe for concurrent use: commands of one
// tenant are serialized, different tenants run in parallel.
type Handler struct {
	cfg Config
	// shared is set when other processes may append to the store (it is
	// not eventstore.Exclusive): a cached state may then be behind the
	// stream's head, and is caught up before any answer that is not an
	// append (see atHead).
	shared bool
	locks  tenantLocks
	cache  *tenantCache
	snaps  chan snapRequest
	wg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once
}

// New returns a Handler. Call Close to stop its background snapshotter.
func New(cfg Config) *Handler {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1024
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 1000
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 8
	}
	h := &Handler{cfg: cfg, shared: !eventstore.IsExclusive(cfg.Store), cache: newTenantCache(cfg.CacheSize), snaps: make(chan snapRequest, 64), closed: make(chan struct{})}
	if cfg.Snapshots != nil && cfg.SnapshotEvery > 0 {
		h.wg.Add(1)
		go h.snapshotter()
	}
	return h
}

// Close stops background work; in-flight commands finish first if the
// caller waits for them.
func (h *Handler) Close() {
	h.once.Do(func() { close(h.closed) })
	h.wg.Wait()
}

// tenantLocks gives each tenant in use a lock of its own, so commands of
// different tenants never wait for each other (a fixed array of striped
// mutexes made ~1 in 5 commands wait for another tenant's fsync at 64
// concurrent commands).
type tenantLocks struct {
	mu    sync.Mutex
	locks map[string]*tenantLock
}

// tenantLock serializes the commands of one tenant. With a store that
// queues appends (eventstore.AsyncAppender) a command holds it while it
// decides and queues its append, not while the append is made durable: the
// next command decides on the state with the queued events applied and
// queues its append after it. The store commits queued appends in order and
// fails one queued after an append that was not committed (a conflict,
// whatever the versions say), so no decision made on events that never
// became durable is ever stored. A command waits for its append's final
// outcome even when its context ends, and a state is loaded again from the
// store only once every queued append of the tenant has its final outcome.
type tenantLock struct {
	sync.Mutex
	users int // commands holding or waiting for it; guarded by tenantLocks.mu

	// Guarded by the Mutex:
	st   *domain.Tenant // the state with every queued append applied; nil: load it
	tail *pendingAppend // the newest queued append; nil: none since st was loaded

	// failed is set (before its pendingAppend is done) by a command whose
	// queued append failed: st holds events that are not in the log, and
	// the next command must not decide on it. Cleared when st is loaded.
	failed atomic.Bool
}

// pendingAppend is a command's queued append. done is closed once its
// outcome and the outcomes of every append queued before it are final.
type pendingAppend struct {
	q    eventstore.QueuedAppend
	done chan struct{}
	err  error // set before done is closed
}

// errAbandoned ends a pendingAppend whose command stopped before its
// outcome was known (a panic).
var errAbandoned = errors.New("commands: the command stopped before its append's outcome was known")

// end records the append's outcome once (later calls do nothing). On a
// failure st holds events that are not in the log: it is forgotten, and the
// tenant marked, before anyone who waits for this append can load it again.
func (p *pendingAppend) end(tl *tenantLock, cache *tenantCache, tenantID string, st *domain.Tenant, err error) {
	select {
	case <-p.done:
		return
	default:
	}
	if err != nil {
		cache.evict(tenantID, st)
		tl.failed.Store(true)
	}
	p.err = err
	close(p.done)
}

// acquire registers a user of tenantID's lock (it does not lock it).
func (l *tenantLocks) acquire(tenantID string) *tenantLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = map[string]*tenantLock{}
	}
	tl := l.locks[tenantID]
	if tl == nil {
		tl = &tenantLock{}
		l.locks[tenantID] = tl
	}
	tl.users++
	return tl
}

// release ends a use; the last one forgets the lock.
func (l *tenantLocks) release(tenantID string, tl *tenantLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tl.users--; tl.users == 0 {
		delete(l.locks, tenantID)
	}
}

// lock locks tenantID's mutex and returns its unlock.
func (l *tenantLocks) lock(tenantID string) (unlock func()) {
	tl := l.acquire(tenantID)
	tl.Lock()
	return func() {
		tl.Unlock()
		l.release(tenantID, tl)
	}
}

// Handle decides cmd on its tenant and appends the events. Errors are a
// *domain.Error (the command was refused), ErrConcurrencyConflict, or a
// store error (errors.Is(err, eventstore.ErrUnavailable) for a retryable
// outage).
func (h *Handler) Handle(ctx context.Context, cmd domain.Command) (Result, error) {
	start := time.Now()
	res, err := h.handle(ctx, cmd)
	if h.cfg.Observer != nil {
		h.cfg.Observer.CommandDone(cmd.CommandName(), Outcome(err), time.Since(start))
	}
	return res, err
}

// Outcome names the result of a command for metrics: "ok", a domain error
// code, "conflict", "unavailable" or "error".
func Outcome(err error) string {
	if err == nil {
		return "ok" // without the allocation of de below, which escapes
	}
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		return string(de.Code)
	case errors.Is(err, ErrConcurrencyConflict):
		return "conflict"
	case errors.Is(err, eventstore.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

func (h *Handler) handle(ctx context.Context, cmd domain.Command) (Result, error) {
	m := domain.Meta(cmd)
	if !domain.ValidID(m.TenantID) {
		// No tenant has such an id: the answer is not_found, but for a
		// create, which the domain refuses with its own reason (who may
		// create tenants, what an id must look like) without a state.
		if _, ok := cmd.(*domain.CreateTenant); ok {
			m.Now = h.cfg.Clock()
			if _, err := h.cfg.Decider.Decide(domain.NewTenant(), cmd); err != nil {
				return Result{}, err
			}
		}
		return Result{}, domain.ErrNotFound
	}
	if qa, ok := h.cfg.Store.(eventstore.AsyncAppender); ok {
		return h.handleQueued(ctx, qa, cmd, m)
	}
	defer h.locks.lock(m.TenantID)()

	st, fresh, err := h.load(ctx, m.TenantID)
	if err != nil {
		return Result{}, err
	}
	for attempt := 0; ; attempt++ {
		m.Now = h.cfg.Clock()
		events, err := h.cfg.Decider.Decide(st, cmd)
		if err != nil || len(events) == 0 {
			// An append is checked by its expected version; a refusal or
			// a no-op is not, so it is made on the head.
			if !fresh {
				fresh = true
				if advanced, herr := h.atHead(ctx, st); herr != nil {
					return Result{}, herr
				} else if advanced {
					continue
				}
			}
			if err != nil {
				return Result{}, err
			}
			return h.answerWithoutEvents(ctx, st, m.CommandID)
		}
		data, raw, err := encodeEvents(events)
		if err != nil {
			return Result{}, err
		}
		start := time.Now()
		res, err := h.cfg.Store.Append(ctx, tenantstream.Name(m.TenantID), eventstore.Exactly(st.Version), data)
		h.appendDone(len(data), start, err)
		if err == nil {
			for _, e := range events {
				domain.Evolve(st, e)
			}
			h.cache.put(m.TenantID, st)
			h.maybeSnapshot(m.TenantID, res.Version, uint64(len(events)))
			return Result{Version: res.Version, Events: events, Raw: raw}, nil
		}
		if err := h.giveUp(err, attempt); err != nil {
			return Result{}, err
		}
		// Another writer (another node) appended. Back off first, then read
		// only what we missed: what the other writer appends meanwhile is
		// read too, rather than causing the next conflict.
		if err := sleepJitter(ctx, attempt); err != nil {
			return Result{}, err
		}
		if err := h.catchUp(ctx, st, m.TenantID); err != nil {
			h.cache.evict(m.TenantID, st)
			return Result{}, err
		}
		fresh = true
		h.cache.put(m.TenantID, st)
	}
}

// handleQueued runs a command on a store that queues appends: the tenant's
// lock is held while the command decides and queues its append, and
// released while the append waits for its fsync (see tenantLock).
//
// A failed append here is not caught up on like the plain path's conflict:
// the state it was decided on already holds its own events (and those of
// the appends queued before it), and a state cannot be rolled back, so the
// tenant is loaded again (newest snapshot and tail). On the embedded store,
// the one that queues, this is the rare path: one process owns the store,
// its commands go through one Handler that orders a tenant's appends, so an
// append fails only when one queued before it did (or the store failed),
// not because another writer got in first.
func (h *Handler) handleQueued(ctx context.Context, qa eventstore.AsyncAppender, cmd domain.Command, m *domain.CommandMeta) (Result, error) {
	tl := h.locks.acquire(m.TenantID)
	tl.Lock()
	locked := true
	// p is the attempt's queued append, pst the state it was decided on.
	// Whatever happens below (even a panic), p ends, or every later
	// command of the tenant would wait for it forever. (An attempt ends
	// its p before the next one queues; one deferred call, rather than a
	// defer per attempt, keeps the function's defers open-coded.)
	var (
		p   *pendingAppend
		pst *domain.Tenant
	)
	defer func() {
		if p != nil {
			p.end(tl, h.cache, m.TenantID, pst, errAbandoned)
		}
		if locked {
			tl.Unlock()
		}
		h.locks.release(m.TenantID, tl)
	}()
	for attempt := 0; ; attempt++ {
		st, err := h.current(ctx, tl, m.TenantID)
		if err != nil {
			return Result{}, err
		}
		m.Now = h.cfg.Clock()
		events, err := h.cfg.Decider.Decide(st, cmd)
		if err != nil || len(events) == 0 {
			// A refusal or an answer read from the log stands only on
			// durable events: wait for the queued ones, and decide again
			// if one of them failed.
			if reloaded, serr := h.settle(ctx, tl, m.TenantID); serr != nil {
				return Result{}, serr
			} else if reloaded {
				continue
			}
			if advanced, herr := h.atHead(ctx, tl.st); herr != nil {
				return Result{}, herr
			} else if advanced {
				continue
			}
			if err != nil {
				return Result{}, err
			}
			return h.answerWithoutEvents(ctx, st, m.CommandID)
		}
		data, raw, err := encodeEvents(events)
		if err != nil {
			return Result{}, err
		}
		start := time.Now()
		// Queued after the previous command's append: the store fails this
		// one unless that one is committed, whatever the versions say.
		prev := tl.tail
		var after eventstore.QueuedAppend
		if prev != nil {
			after = prev.q
		}
		p = &pendingAppend{q: qa.QueueAppend(ctx, tenantstream.Name(m.TenantID), eventstore.Exactly(st.Version), data, after), done: make(chan struct{})}
		pst = st
		for _, e := range events {
			domain.Evolve(st, e)
		}
		tl.st, tl.tail = st, p
		h.cache.put(m.TenantID, st)
		tl.Unlock()
		locked = false

		// Wait returns the final outcome, even if ctx ends meanwhile: a
		// command that stopped waiting while its append was being written
		// must not let the next one load a state without it.
		res, err := p.q.Wait()
		h.appendDone(len(data), start, err)
		if prev != nil {
			<-prev.done // an append that failed fast was never queued: its predecessors may still be
		}
		p.end(tl, h.cache, m.TenantID, st, err)
		if err == nil {
			h.maybeSnapshot(m.TenantID, res.Version, uint64(len(events)))
			return Result{Version: res.Version, Events: events, Raw: raw}, nil
		}
		if err := h.giveUp(err, attempt); err != nil {
			return Result{}, err
		}
		if err := sleepJitter(ctx, attempt); err != nil {
			return Result{}, err
		}
		tl.Lock()
		locked = true
	}
}

// current returns the state to decide on (tl locked): the state with every
// queued append applied, unless one of them failed; then, once the queue has
// drained, the durable state.
func (h *Handler) current(ctx context.Context, tl *tenantLock, tenantID string) (*domain.Tenant, error) {
	if tl.st != nil && !tl.failed.Load() {
		return tl.st, nil
	}
	if _, err := h.settle(ctx, tl, tenantID); err != nil {
		return nil, err
	}
	return tl.st, nil
}

// settle waits (tl locked) until the tenant's queued appends have their
// outcome, and loads the durable state if one failed or none is held. It
// reports whether it loaded a state.
func (h *Handler) settle(ctx context.Context, tl *tenantLock, tenantID string) (reloaded bool, err error) {
	if t := tl.tail; t != nil {
		select {
		case <-t.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		tl.tail = nil
	}
	// Every queued append of the tenant has its final outcome now (a
	// pendingAppend is done only after its predecessors).
	if tl.failed.Load() {
		tl.st = nil
	}
	if tl.st != nil {
		return false, nil
	}
	st, _, err := h.load(ctx, tenantID)
	if err != nil {
		return false, err
	}
	tl.st = st
	tl.failed.Store(false)
	return true, nil
}

func encodeEvents(events []domain.Event) ([]eventstore.EventData, [][]byte, error) {
	data := make([]eventstore.EventData, len(events))
	raw := make([][]byte, len(events))
	for i, e := range events {
		b, err := eventcodec.Encode(e)
		if err != nil {
			return nil, nil, err
		}
		data[i], raw[i] = eventstore.EventData{ID: e.EventID, Type: e.Type, Data: b}, b
	}
	return data, raw, nil
}

func (h *Handler) appendDone(events int, start time.Time, err error) {
	if h.cfg.Observer != nil {
		h.cfg.Observer.AppendDone(events, time.Since(start), err)
	}
}

// answerWithoutEvents answers a command that decided nothing: either a
// replay of a known command id (the first answer) or a no-op.
func (h *Handler) answerWithoutEvents(ctx context.Context, st *domain.Tenant, commandID string) (Result, error) {
	rec, ok := st.CommandRecord(commandID)
	if !ok {
		return Result{Version: st.Version}, nil
	}
	recs, err := h.cfg.Store.ReadStream(ctx, tenantstream.Name(st.ID), rec.FirstVersion, int(rec.LastVersion-rec.FirstVersion+1))
	if err != nil {
		return Result{}, err
	}
	events := make([]domain.Event, 0, len(recs))
	raw := make([][]byte, 0, len(recs))
	for _, r := range recs {
		raw = append(raw, r.Data)
		e, err := eventcodec.Decode(r.Data, h.cfg.Upcasters)
		if err != nil {
			return Result{}, fmt.Errorf("tenant %s version %d: %w", st.ID, r.Version, err)
		}
		events = append(events, e)
	}
	return Result{Version: rec.LastVersion, Events: events, Raw: raw, Replayed: true}, nil
}

// giveUp says whether a failed append is final: nil for a conflict with
// attempts left (decide again), else the error to answer.
func (h *Handler) giveUp(err error, attempt int) error {
	var conflict *eventstore.ConflictError
	if !errors.As(err, &conflict) {
		return err
	}
	if attempt >= h.cfg.MaxRetries {
		return fmt.Errorf("%w (after %d attempts)", ErrConcurrencyConflict, attempt+1)
	}
	return nil
}

// Retry back-off: attempt n waits a random time in [b/2, 3b/2), where b is
// retryBase doubled n times up to retryCap, so writers that conflicted
// once do not meet again in lockstep.
const (
	retryBase = time.Millisecond
	retryCap  = 64 * time.Millisecond
)

// retryDelay is how long to wait before retry attempt+1.
func retryDelay(attempt int) time.Duration {
	base := retryCap
	if attempt < 6 {
		base = retryBase << attempt
	}
	return base/2 + time.Duration(rand.Int64N(int64(base)))
}

func sleepJitter(ctx context.Context, attempt int) error {
	t := time.NewTimer(retryDelay(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// View runs fn on the tenant's current state under the tenant's lock, for
// reads that need the command side (the actor's roles, say). fn must not
// keep or change the state. A tenant that does not exist is given empty
// (Exists() is false).
func (h *Handler) View(ctx context.Context, tenantID string, fn func(*domain.Tenant) error) error {
	if !domain.ValidID(tenantID) {
		return fn(domain.NewTenant())
	}
	if _, ok := h.cfg.Store.(eventstore.AsyncAppender); !ok {
		defer h.locks.lock(tenantID)()
		st, fresh, err := h.load(ctx, tenantID)
		if err != nil {
			return err
		}
		if !fresh {
			if _, err := h.atHead(ctx, st); err != nil {
				return err
			}
		}
		return fn(st)
	}
	tl := h.locks.acquire(tenantID)
	defer h.locks.release(tenantID, tl)
	tl.Lock()
	defer tl.Unlock()
	// Only durable events count for a read: wait for queued appends.
	if _, err := h.settle(ctx, tl, tenantID); err != nil {
		return err
	}
	if _, err := h.atHead(ctx, tl.st); err != nil {
		return err
	}
	return fn(tl.st)
}

// atHead brings a state this Handler held in memory up to the stream's
// head on a shared store (the caller holds the tenant's lock), with one
// read of the stream after st.Version, and reports whether it advanced.
// On an exclusive store the held state is the head and nothing is read.
//
// A state folded from the store after the request arrived needs no call:
// it is already at least as new as the head the request could see.
func (h *Handler) atHead(ctx context.Context, st *domain.Tenant) (advanced bool, err error) {
	if !h.shared || st == nil || !st.Exists() {
		return false, nil
	}
	before := st.Version
	if err := h.catchUp(ctx, st, st.ID); err != nil {
		// st may hold part of what was read: still a true state, but
		// forget it so the next command folds the tenant again.
		h.cache.evict(st.ID, st)
		return false, err
	}
	return st.Version > before, nil
}
