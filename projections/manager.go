package projections

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
)

// Manager supervises the live Projection: it runs it on the active prefix
// and keeps the read models it writes whole. serve runs one Manager on the
// node holding the projection's lease.
//
//   - It follows the active prefix: when a Replay swaps it, the projection on
//     the old prefix is stopped and runs again on the new one, from the new
//     prefix's checkpoint. It checks every poll interval, or at once when
//     Refresh is called (ReplayConfig.OnSwap in the same process).
//   - It rebuilds what Redis lost. A prefix whose Present marker is missing
//     (a first start, or Redis lost its data) is cleared with its checkpoint
//     before the projection starts, so the projection builds it from the
//     first event under the Building marker rather than trusting a half-lost
//     read model; it marks the prefix Present once caught up. While it runs,
//     a prefix that has lost both markers (FLUSHALL, a restart of a Redis
//     without persistence; a checkpoint alone would not show it: the
//     projection would write it again and never rebuild what was lost) is
//     rebuilt the same way. Queries answer 503 while the active prefix has
//     no Present marker. Keys found in a prefix without markers may be the
//     late writes of a former lease holder: the Manager waits
//     Config.FormerWriterGrace and clears the prefix again before it builds.
//   - On a Redis Cluster, a master can lose its data alone (restarted
//     without persistence): the prefix then keeps its markers but loses the
//     tenants of that master's slots, and the slot markers with them
//     (readmodel.MarkSlots). The Manager looks at one slot marker per range
//     of slots every poll, and treats a prefix missing any as lost: it
//     removes its Present marker first (queries answer 503 from then on),
//     then clears and rebuilds it.
//   - A Redis it cannot reach (a master of a cluster down) is waited for,
//     not given up on: the Manager retries every poll.
type Manager struct {
	p    *Projection
	poll time.Duration
	kick chan struct{}
}

// NewManager returns a Manager of a projection configured by cfg;
// cfg.Prefix must be empty (the manager follows the active prefix). poll is
// how often the active prefix and the markers are read (default 1 s).
func NewManager(cfg Config, poll time.Duration) (*Manager, error) {
	if cfg.Prefix != "" {
		return nil, errors.New("projections: a Manager follows the active prefix: leave Config.Prefix empty")
	}
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if poll <= 0 {
		poll = time.Second
	}
	return &Manager{p: p, poll: poll, kick: make(chan struct{}, 1)}, nil
}

// Projection is the managed projection (Status, WaitFor, Prefix, Name).
func (m *Manager) Projection() *Projection { return m.p }

// Refresh makes the manager read the active prefix now.
func (m *Manager) Refresh() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// errPrefixMoved is the cause of a run stopped because a replay swapped the
// active prefix.
var errPrefixMoved = errors.New("projections: the active prefix moved")

// Run runs the projection on the active prefix until ctx is done (it then
// returns nil) or the projection stops on an event it cannot apply (a
// *StoppedError), following every change of the active prefix and
// rebuilding read models Redis lost. An error of Redis before the
// projection starts is returned.
func (m *Manager) Run(ctx context.Context) error {
	log := m.p.cfg.Logger
	for {
		prefix, err := readmodel.ActivePrefix(ctx, m.p.cfg.Redis)
		if err != nil { // Redis unreachable: wait for it
			log.Warn("projection manager: cannot read the active prefix; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(m.poll):
			}
			continue
		}
		if err := m.clearIfIncomplete(ctx, prefix); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if redisUnavailable(err) {
				log.Warn("projection manager: Redis cannot be reached; retrying", "err", err)
				m.pause(ctx)
				continue
			}
			return err
		}
		runCtx, cancel := context.WithCancelCause(ctx)
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			m.watch(runCtx, prefix, cancel)
		}()
		err = m.p.run(runCtx, prefix)
		cause := context.Cause(runCtx)
		cancel(nil)
		<-watchDone
		if ctx.Err() != nil {
			return nil
		}
		var se *StoppedError
		switch {
		case errors.As(err, &se):
			return err
		case errors.Is(cause, errPrefixMoved):
			continue
		case errors.Is(cause, ErrReadModelsLost) || errors.Is(err, ErrReadModelsLost):
			log.Warn("Redis lost the read models; the projection restarts from the first event", "projection", m.p.cfg.Name, "prefix", prefix)
			continue
		case redisUnavailable(err):
			log.Warn("projection manager: Redis cannot be reached; retrying", "err", err)
			m.pause(ctx)
			continue
		}
		return err
	}
}

// pause waits a poll interval (or until ctx is done).
func (m *Manager) pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(m.poll):
	}
}

// clearIfIncomplete clears prefix, checkpoint included, and sets its
// Building marker if it is not complete (readmodel.Complete: no Present
// marker, or on a cluster a slot marker missing): its read models are
// missing or may be partly lost.
func (m *Manager) clearIfIncomplete(ctx context.Context, prefix string) error {
	rdb, keys := m.p.cfg.Redis, readmodel.Keys{Prefix: prefix}
	complete, err := readmodel.Complete(ctx, rdb, prefix, true)
	if err != nil || complete {
		return err
	}
	// Queries answer 503 from here on, before any key goes (on a cluster
	// the marker may have survived what was lost).
	if err := rdb.Del(ctx, keys.Present()).Err(); err != nil {
		return err
	}
	removed, err := readmodel.DeletePrefix(ctx, rdb, prefix)
	if err != nil {
		return err
	}
	if grace := m.p.cfg.FormerWriterGrace; grace > 0 {
		// No marker: a first start, a build that stopped half-way, or a
		// Redis that lost its data — and with it the lease, so a former
		// holder may still be writing until its next renewal fails, even
		// if nothing was left to remove just now. Wait out its lease,
		// then clear again: its late writes (versions, a checkpoint) would
		// make the rebuild skip the events they carry.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(grace):
		}
		more, err := readmodel.DeletePrefix(ctx, rdb, prefix)
		if err != nil {
			return err
		}
		removed += more
	}
	m.p.cfg.Logger.Warn("read models missing or incomplete (Redis lost data, or a first start): rebuilding them from the first event; reads answer 503 until done",
		"prefix", prefix, "keys_removed", removed)
	if err := rdb.Set(ctx, keys.Building(), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return err
	}
	return readmodel.MarkSlots(ctx, rdb, prefix)
}

// watch stops the run (cancel) with errPrefixMoved when the active prefix
// is no longer prefix, or with ErrReadModelsLost when prefix has lost both
// its markers (Present once built, Building while it is built: neither
// means Redis lost them). A Redis it cannot read stops nothing: the
// projection retries its own writes.
func (m *Manager) watch(ctx context.Context, prefix string, cancel context.CancelCauseFunc) {
	rdb, keys := m.p.cfg.Redis, readmodel.Keys{Prefix: prefix}
	t := time.NewTicker(m.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		cur, err := rdb.Get(ctx, readmodel.ActivePrefixKey).Result()
		if err == nil && cur != "" && cur != prefix {
			m.p.cfg.Logger.Info("active prefix changed: the projection follows it", "projection", m.p.cfg.Name, "from", prefix, "to", cur)
			cancel(errPrefixMoved)
			return
		}
		if n, err := rdb.Exists(ctx, keys.Present(), keys.Building()).Result(); err == nil && n == 0 {
			cancel(ErrReadModelsLost)
			return
		}
		if missing, err := readmodel.MissingSlots(ctx, rdb, prefix, false); err == nil && missing > 0 {
			m.p.cfg.Logger.Warn("a Redis Cluster master lost its part of the read models; rebuilding them", "prefix", prefix, "slot_ranges_lost", missing)
			// Queries answer 503 at once, not only after the rebuild cleared.
			if err := rdb.Del(ctx, keys.Present()).Err(); err != nil {
				m.p.cfg.Logger.Warn("cannot remove the present marker", "prefix", prefix, "err", err)
			}
			cancel(ErrReadModelsLost)
			return
		}
	}
}

// WaitCheckpoint waits until the projection's checkpoint in Redis reaches
// pos. The checkpoint is the one of the prefix the projection runs on, or,
// on a node not running it (another holds its lease), of the active prefix:
// it waits for whichever node writes the read models.
func (m *Manager) WaitCheckpoint(ctx context.Context, pos eventstore.Position) error {
	rdb := m.p.cfg.Redis
	prefix := m.p.Prefix()
	if prefix == "" {
		var err error
		if prefix, err = readmodel.ActivePrefix(ctx, rdb); err != nil {
			return err
		}
	}
	key := readmodel.Keys{Prefix: prefix}.Checkpoint(m.p.Name())
	for {
		v, err := rdb.Get(ctx, key).Uint64()
		if (err == nil || errors.Is(err, redis.Nil)) && eventstore.Position(v) >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
