package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
)

// The second kind of due work: subscriptions whose term ended, or whose
// Expired or Disabled stage did (R17). The projection keeps the schedule
// (readmodel.SubscriptionsDue: a sorted set per tenant of subscription ids
// by the time of their next step); every interval the scheduler takes the
// due entries and sends one LifecycleCommand per tenant (in batches) on the
// same command bus as the purges; the command processor runs it as
// domain.AdvanceSubscriptions. The domain takes a step only when it is due,
// so a duplicate or stale entry appends nothing.

// SubscriptionDue is a subscription whose next lifecycle step has come.
type SubscriptionDue struct {
	TenantID       string
	SubscriptionID string
	At             time.Time
}

// LifecycleSchedule finds subscriptions whose lifecycle step is due
// (implemented over Redis by RedisSchedule).
type LifecycleSchedule interface {
	// DueSubscriptions returns up to limit entries due at or before now,
	// oldest first.
	DueSubscriptions(ctx context.Context, now time.Time, limit int) ([]SubscriptionDue, error)
}

// LifecycleCommand asks the command side to move subscriptions of one
// tenant along their lifecycle. It travels on the command bus.
type LifecycleCommand struct {
	TenantID      string   `json:"tenantId"`
	Subscriptions []string `json:"subscriptions"`
	// CommandID is derived from the entries and their due times, so the
	// same entries sent twice are one command.
	CommandID string `json:"commandId"`
}

// LifecycleHandlerName names the lifecycle command handler: on Redis
// Streams its consumer group, beside HandlerName's on the same stream.
const LifecycleHandlerName = "subscription-lifecycle"

// NewLifecycleCommand builds the command for due entries of one tenant.
func NewLifecycleCommand(tenantID string, entries []SubscriptionDue) *LifecycleCommand {
	c := &LifecycleCommand{TenantID: tenantID, Subscriptions: make([]string, len(entries))}
	var id strings.Builder
	for i, e := range entries {
		c.Subscriptions[i] = e.SubscriptionID
		fmt.Fprintf(&id, "%s|%d;", e.SubscriptionID, e.At.Unix())
	}
	c.CommandID = "lifecycle-" + domain.EventID(tenantID, id.String(), 0)
	return c
}

// TickSubscriptions sends lifecycle commands for every subscription due now
// and returns how many subscriptions it named. Without a Lifecycle schedule
// it does nothing.
func (s *Scheduler) TickSubscriptions(ctx context.Context) (int, error) {
	if s.cfg.Lifecycle == nil {
		return 0, nil
	}
	due, err := s.cfg.Lifecycle.DueSubscriptions(ctx, s.cfg.Clock(), s.cfg.MaxPerTick)
	if err != nil {
		return 0, err
	}
	byTenant := map[string][]SubscriptionDue{}
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
			if err := s.cfg.Bus.Send(ctx, NewLifecycleCommand(t, entries[:n])); err != nil {
				errs = append(errs, fmt.Errorf("send lifecycle command for tenant %s: %w", t, err))
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

// Advance runs one lifecycle command through the command side. A refusal
// because nothing is due (a duplicate or stale entry) or the subscription
// is gone is acknowledged; other errors are retried by the router.
func Advance(ctx context.Context, h *commands.Handler, c *LifecycleCommand, logger *slog.Logger) error {
	res, err := h.Handle(ctx, &domain.AdvanceSubscriptions{
		CommandMeta:   domain.CommandMeta{TenantID: c.TenantID, CommandID: c.CommandID, Actor: domain.Actor{System: "scheduler"}},
		Subscriptions: c.Subscriptions,
	})
	var de *domain.Error
	switch {
	case err == nil:
		if !res.Replayed {
			logger.Info("subscriptions moved along their terms", "tenant", c.TenantID, "events", len(res.Events), "version", res.Version)
		}
		return nil
	case errors.As(err, &de) && (de.Code == domain.CodeLifecycleNotDue || de.Code == domain.CodeNotFound):
		logger.Debug("lifecycle step not needed", "tenant", c.TenantID, "reason", de.Code)
		return nil
	}
	return err
}
