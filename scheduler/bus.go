package scheduler

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
)

// Topic is the command bus topic of purge commands, and of lifecycle
// commands: one stream, one consumer group per handler, each handler
// acknowledging the other's commands unread (Watermill's CQRS processor
// skips a command of another type). The name stays: renaming it would
// orphan the commands pending on a running system.
const Topic = "seatledger.commands.purge-held-data"

// HandlerName names the purge command handler; on Redis Streams it is the
// consumer group, so renaming it would re-consume every pending command.
const HandlerName = "purge-held-data"

var marshaler = cqrs.JSONMarshaler{}

// NewBus returns the command bus purge commands are sent on.
func NewBus(pub message.Publisher) (*cqrs.CommandBus, error) {
	return cqrs.NewCommandBusWithConfig(pub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(cqrs.CommandBusGeneratePublishTopicParams) (string, error) { return Topic, nil },
		Marshaler:            marshaler,
	})
}

// AddProcessor registers the purge and lifecycle command handlers on
// router. newSubscriber gives the subscriber of the bus for a handler (a
// gochannel in one process, a Redis Streams consumer group across nodes).
// The purge handler runs each command as domain.PurgeHeldData with the
// scheduler as actor; a refusal because the data is already purged,
// released, retained or not due is the expected fate of a duplicate and is
// acknowledged. The lifecycle handler runs domain.AdvanceSubscriptions
// likewise (Advance).
func AddProcessor(router *message.Router, newSubscriber func(handlerName string) (message.Subscriber, error),
	h *commands.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) { return Topic, nil },
		SubscriberConstructor: func(p cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return newSubscriber(p.HandlerName)
		},
		Marshaler: marshaler,
	})
	if err != nil {
		return err
	}
	return p.AddHandlers(
		cqrs.NewCommandHandler(HandlerName, func(ctx context.Context, c *PurgeCommand) error {
			return Purge(ctx, h, c, logger)
		}),
		cqrs.NewCommandHandler(LifecycleHandlerName, func(ctx context.Context, c *LifecycleCommand) error {
			return Advance(ctx, h, c, logger)
		}))
}

// Purge runs one purge command through the command side.
func Purge(ctx context.Context, h *commands.Handler, c *PurgeCommand, logger *slog.Logger) error {
	res, err := h.Handle(ctx, &domain.PurgeHeldData{
		CommandMeta: domain.CommandMeta{TenantID: c.TenantID, CommandID: c.CommandID, Actor: domain.Actor{System: "scheduler"}},
		Batch:       c.Holds,
	})
	var de *domain.Error
	switch {
	case err == nil:
		if !res.Replayed {
			logger.Info("held data purged", "tenant", c.TenantID, "holds", len(res.Events), "version", res.Version)
		}
		return nil
	case errors.As(err, &de) && (de.Code == domain.CodeNoHeldData || de.Code == domain.CodePurgeNotDue ||
		de.Code == domain.CodeDataRetained || de.Code == domain.CodeNotFound):
		logger.Debug("purge not needed", "tenant", c.TenantID, "reason", de.Code)
		return nil
	}
	return err // retried by the router
}
