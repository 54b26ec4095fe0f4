package projections

import (
	"context"
	"errors"
	"time"

	"github.com/seatledger/seatledger/readmodel"
)

// Manager runs a Projection on the active prefix and moves it when the
// active prefix changes (a Replay swapped it): the projection on the old
// prefix is stopped and runs again on the new one, from the new prefix's
// checkpoint. It checks the active prefix every PollInterval, or at once
// when Refresh is called (ReplayConfig.OnSwap in the same process).
type Manager struct {
	p    *Projection
	poll time.Duration
	kick chan struct{}
}

// NewManager returns a Manager of a projection configured by cfg;
// cfg.Prefix must be empty (the manager follows the active prefix). poll is
// how often the active prefix is read (default 1 s).
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

// Run runs the projection on the active prefix until ctx is done (it then
// returns nil) or the projection stops on an event it cannot apply (a
// *StoppedError), following every change of the active prefix.
func (m *Manager) Run(ctx context.Context) error {
	for {
		prefix, err := readmodel.ActivePrefix(ctx, m.p.cfg.Redis)
		if err != nil { // Redis unreachable: wait for it
			m.p.cfg.Logger.Warn("projection manager: cannot read the active prefix; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(m.poll):
			}
			continue
		}
		runCtx, cancel := context.WithCancel(ctx)
		moved := make(chan string, 1)
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			m.watch(runCtx, prefix, moved, cancel)
		}()
		err = m.p.run(runCtx, prefix)
		cancel()
		<-watchDone
		if ctx.Err() != nil {
			return nil
		}
		select {
		case next := <-moved:
			var se *StoppedError
			if errors.As(err, &se) {
				return err
			}
			m.p.cfg.Logger.Info("active prefix changed: the projection follows it", "projection", m.p.cfg.Name, "from", prefix, "to", next)
			continue
		default:
		}
		return err
	}
}

// watch cancels the run when the active prefix is no longer prefix.
func (m *Manager) watch(ctx context.Context, prefix string, moved chan<- string, cancel context.CancelFunc) {
	t := time.NewTicker(m.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		cur, err := m.p.cfg.Redis.Get(ctx, readmodel.ActivePrefixKey).Result()
		if err != nil || cur == "" || cur == prefix {
			continue // unreadable (Redis down): keep going; the projection retries its writes
		}
		moved <- cur
		cancel()
		return
	}
}
