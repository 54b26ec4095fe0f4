// Package scheduler purges held data when its hold period is over (R10),
// and moves subscriptions along their lifecycle when a term or a stage of
// it ends (R17, lifecycle.go).
//
// The held-data schedule is a projection (readmodel.HeldDue: a sorted
// set per tenant of "<user>|<workload>" by purge time). Every interval the
// scheduler takes the due entries and sends one PurgeCommand per tenant (in
// batches) on a Watermill CQRS command bus; the command processor runs it as
// domain.PurgeHeldData through the command side. With several nodes the bus
// is a consumer group, so each command is handled by one node. The domain
// refuses a purge that is early, already done, released or retained, so a
// duplicate or stale schedule entry appends nothing: nothing is purged twice.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/seatledger/seatledger/domain"
)

// Due is held data whose purge time has come.
type Due struct {
	TenantID   string
	UserID     string
	Workload   string
	PurgeAfter time.Time
}

// Schedule finds due held data (implemented over Redis by RedisSchedule).
type Schedule interface {
	// Due returns up to limit entries with purgeAfter <= now, oldest first.
	Due(ctx context.Context, now time.Time, limit int) ([]Due, error)
}

// PurgeCommand asks the command side to purge held data of one tenant. It is
// what travels on the command bus.
type PurgeCommand struct {
	TenantID string               `json:"tenantId"`
	Holds    []domain.HeldDataRef `json:"holds"`
	// CommandID is derived from the holds and their purge times, so the same
	// due entries sent twice (two schedulers, a restart) are one command.
	CommandID string `json:"commandId"`
}

// Config configures a Scheduler.
type Config struct {
	Schedule Schedule
	// Lifecycle is the subscriptions' schedule (nil: no lifecycle work).
	Lifecycle LifecycleSchedule
	Bus       *cqrs.CommandBus
	Clock     func() time.Time // default time.Now
	Interval  time.Duration    // default 1m
	// BatchSize bounds the holds (subscriptions) of one command (default 500).
	BatchSize int
	// MaxPerTick bounds the entries one tick takes of each schedule
	// (default 100,000); the rest waits for the next tick.
	MaxPerTick int
	// MaxRate paces the holds (subscriptions) sent per second (default
	// 5,000), so a mass of holds falling due at once does not starve live
	// commands of CPU and disk: 100,000 holds take about 20 s.
	MaxRate float64
	Logger  *slog.Logger
}

// Scheduler sends purge commands for due held data.
type Scheduler struct {
	cfg Config
}

// New returns a Scheduler.
func New(cfg Config) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxPerTick <= 0 {
		cfg.MaxPerTick = 100_000
	}
	if cfg.MaxRate <= 0 {
		cfg.MaxRate = 5000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg}
}

// Run ticks at once (what fell due while seatledger was down is purged at
// start) and then every interval, until ctx is done.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if n, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("scheduler tick failed; retrying at the next tick", "err", err)
		} else if n > 0 {
			s.cfg.Logger.Info("scheduler sent purges", "holds", n)
		}
		if n, err := s.TickSubscriptions(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("scheduler tick of subscription lifecycles failed; retrying at the next tick", "err", err)
		} else if n > 0 {
			s.cfg.Logger.Info("scheduler sent subscription lifecycle steps", "subscriptions", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Tick sends purge commands for every entry due now and returns how many
// holds it asked to purge.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	due, err := s.cfg.Schedule.Due(ctx, s.cfg.Clock(), s.cfg.MaxPerTick)
	if err != nil {
		return 0, fmt.Errorf("read the held-data schedule: %w", err)
	}
	byTenant := map[string][]Due{}
	for _, d := range due {
		byTenant[d.TenantID] = append(byTenant[d.TenantID], d)
	}
	tenants := make([]string, 0, len(byTenant))
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	sent := 0
	var errs []error
	began := time.Now()
	for _, t := range tenants {
		entries := byTenant[t]
		for len(entries) > 0 {
			n := min(len(entries), s.cfg.BatchSize)
			cmd := NewPurgeCommand(t, entries[:n])
			if err := s.cfg.Bus.Send(ctx, cmd); err != nil {
				errs = append(errs, fmt.Errorf("send purge for tenant %s: %w", t, err))
				break
			}
			sent += n
			entries = entries[n:]
			if err := s.pace(ctx, sent, began); err != nil {
				return sent, err
			}
		}
	}
	return sent, errors.Join(errs...)
}

// pace waits until sent entries since began no longer run ahead of MaxRate.
func (s *Scheduler) pace(ctx context.Context, sent int, began time.Time) error {
	if ahead := time.Duration(float64(sent)/s.cfg.MaxRate*float64(time.Second)) - time.Since(began); ahead > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(ahead):
		}
	}
	return nil
}

// NewPurgeCommand builds the command purging entries of one tenant.
func NewPurgeCommand(tenantID string, entries []Due) *PurgeCommand {
	c := &PurgeCommand{TenantID: tenantID, Holds: make([]domain.HeldDataRef, len(entries))}
	var id strings.Builder
	for i, e := range entries {
		c.Holds[i] = domain.HeldDataRef{UserID: e.UserID, Workload: e.Workload}
		fmt.Fprintf(&id, "%s|%s|%d;", e.UserID, e.Workload, e.PurgeAfter.Unix())
	}
	c.CommandID = "purge-" + domain.EventID(tenantID, id.String(), 0)
	return c
}
