package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/scheduler"
)

func init() { serveHooks = append(serveHooks, heldDataScheduler) }

// heldDataScheduler runs the purge scheduler and the purge command
// processor. With an in-process Redis (one node) purge commands travel on an
// in-memory channel; with a Redis server they travel on a Redis Stream read
// by a consumer group, so with several nodes each command is handled once.
func heldDataScheduler(ctx context.Context, d *serveDeps) ([]func(api.RouteGroups), func(), error) {
	wlog := projections.NewWatermillLogger(d.Logger.With("component", "scheduler-bus"), nil)
	var (
		pub    message.Publisher
		newSub func(string) (message.Subscriber, error)
		closer func()
	)
	if d.Config.RedisURL == "" {
		ch := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, wlog)
		pub, newSub, closer = ch, func(string) (message.Subscriber, error) { return ch, nil }, func() { _ = ch.Close() }
	} else {
		p, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: d.Redis, DefaultMaxlen: 100_000}, wlog)
		if err != nil {
			return nil, nil, fmt.Errorf("purge command bus: %w", err)
		}
		pub = p
		newSub = func(group string) (message.Subscriber, error) {
			return redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client: d.Redis, ConsumerGroup: group, Consumer: d.Config.NodeID,
			}, wlog)
		}
		closer = func() { _ = p.Close() }
	}
	router, err := message.NewRouter(message.RouterConfig{}, wlog)
	if err != nil {
		return nil, nil, err
	}
	if err := scheduler.AddProcessor(router, newSub, d.Commands, d.Logger.With("component", "purge")); err != nil {
		return nil, nil, err
	}
	bus, err := scheduler.NewBus(pub)
	if err != nil {
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	routerDone := make(chan struct{})
	go func() {
		defer close(routerDone)
		if err := router.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.Logger.Error("purge command processor stopped", "err", err)
		}
	}()
	<-router.Running()
	s := scheduler.New(scheduler.Config{
		Schedule: scheduler.RedisSchedule{RDB: d.Redis}, Bus: bus,
		Interval: d.Config.SchedulerInterval, MaxRate: d.Config.PurgeRate,
		Logger: d.Logger.With("component", "scheduler"),
	})
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); _ = s.Run(runCtx) }()
	stop := func() {
		cancel()
		<-schedDone
		<-routerDone
		closer()
	}
	return nil, stop, nil
}
