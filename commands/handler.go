// Package commands runs domain commands against the event store: it loads a
// tenant (from a bounded in-memory cache, else snapshot + tail of its
// stream), decides, appends with the expected version, and retries on a
// concurrency conflict after reading only the events it missed.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
)

// ErrConcurrencyConflict is returned when the tenant kept changing under a
// command until the retries ran out. The client may retry the request.
var ErrConcurrencyConflict = errors.New("commands: concurrency conflict: the tenant changed while the command was decided; retry")

// StreamName is the event stream of a tenant.
func StreamName(tenantID string) string { return "tenant-" + tenantID }

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
	cfg    Config
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
	h := &Handler{cfg: cfg, cache: newTenantCache(cfg.CacheSize), snaps: make(chan snapRequest, 64), closed: make(chan struct{})}
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

// tenantLocks gives each tenant in use a mutex of its own, so commands of
// different tenants never wait for each other (a fixed array of striped
// mutexes made ~1 in 5 commands wait for another tenant's fsync at 64
// concurrent commands).
type tenantLocks struct {
	mu    sync.Mutex
	locks map[string]*tenantLock
}

type tenantLock struct {
	sync.Mutex
	users int // commands holding or waiting for it; guarded by tenantLocks.mu
}

// lock locks tenantID's mutex and returns its unlock.
func (l *tenantLocks) lock(tenantID string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*tenantLock{}
	}
	tl := l.locks[tenantID]
	if tl == nil {
		tl = &tenantLock{}
		l.locks[tenantID] = tl
	}
	tl.users++
	l.mu.Unlock()
	tl.Lock()
	return func() {
		tl.Unlock()
		l.mu.Lock()
		if tl.users--; tl.users == 0 {
			delete(l.locks, tenantID)
		}
		l.mu.Unlock()
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
	var de *domain.Error
	switch {
	case err == nil:
		return "ok"
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
		return Result{}, domain.ErrNotFound
	}
	defer h.locks.lock(m.TenantID)()

	st, err := h.load(ctx, m.TenantID)
	if err != nil {
		return Result{}, err
	}
	for attempt := 0; ; attempt++ {
		m.Now = h.cfg.Clock()
		events, err := h.cfg.Decider.Decide(st, cmd)
		if err != nil {
			return Result{}, err
		}
		if len(events) == 0 {
			return h.answerWithoutEvents(ctx, st, m.CommandID)
		}
		res, raw, err := h.append(ctx, st, events)
		if err == nil {
			for _, e := range events {
				domain.Evolve(st, e)
			}
			h.cache.put(m.TenantID, st)
			h.maybeSnapshot(m.TenantID, res.Version, uint64(len(events)))
			return Result{Version: res.Version, Events: events, Raw: raw}, nil
		}
		var conflict *eventstore.ConflictError
		if !errors.As(err, &conflict) {
			return Result{}, err
		}
		if attempt >= h.cfg.MaxRetries {
			return Result{}, fmt.Errorf("%w (after %d attempts)", ErrConcurrencyConflict, attempt+1)
		}
		// Another writer (another node) appended: read only what we missed.
		if err := h.catchUp(ctx, st); err != nil {
			return Result{}, err
		}
		h.cache.put(m.TenantID, st)
		if err := sleepJitter(ctx, attempt); err != nil {
			return Result{}, err
		}
	}
}

// answerWithoutEvents answers a command that decided nothing: either a
// replay of a known command id (the first answer) or a no-op.
func (h *Handler) answerWithoutEvents(ctx context.Context, st *domain.Tenant, commandID string) (Result, error) {
	rec, ok := st.CommandRecord(commandID)
	if !ok {
		return Result{Version: st.Version}, nil
	}
	recs, err := h.cfg.Store.ReadStream(ctx, StreamName(st.ID), rec.FirstVersion, int(rec.LastVersion-rec.FirstVersion+1))
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

func (h *Handler) append(ctx context.Context, st *domain.Tenant, events []domain.Event) (eventstore.AppendResult, [][]byte, error) {
	data := make([]eventstore.EventData, len(events))
	raw := make([][]byte, len(events))
	for i, e := range events {
		b, err := eventcodec.Encode(e)
		if err != nil {
			return eventstore.AppendResult{}, nil, err
		}
		data[i], raw[i] = eventstore.EventData{ID: e.EventID, Type: e.Type, Data: b}, b
	}
	tenantID := st.ID
	if tenantID == "" {
		tenantID = events[0].TenantID
	}
	start := time.Now()
	res, err := h.cfg.Store.Append(ctx, StreamName(tenantID), eventstore.Exactly(st.Version), data)
	if h.cfg.Observer != nil {
		h.cfg.Observer.AppendDone(len(data), time.Since(start), err)
	}
	return res, raw, err
}

func sleepJitter(ctx context.Context, attempt int) error {
	base := time.Millisecond << min(attempt, 6)
	d := base/2 + time.Duration(rand.Int64N(int64(base)))
	t := time.NewTimer(d)
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
	defer h.locks.lock(tenantID)()
	st, err := h.load(ctx, tenantID)
	if err != nil {
		return err
	}
	return fn(st)
}
