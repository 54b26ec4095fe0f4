package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/scheduler"
)

// startPurges runs the scheduler (held-data purges and subscription
// lifecycles) and its command processor, and returns the check /readyz adds
// (nil: none) and the function that stops them. With an in-process Redis
// (one node) commands travel on an in-memory channel; with a Redis server
// they travel on a Redis Stream read by a consumer group per handler, so
// with several nodes each command is handled once.
func startPurges(ctx context.Context, d *serveDeps) (func(context.Context) error, func(), error) {
	wlog := projections.NewWatermillLogger(d.Logger.With("component", "scheduler-bus"), nil)
	var (
		pub    message.Publisher
		newSub func(string) (message.Subscriber, error)
		closer func()
		rb     *scheduler.RedisBus
		ready  func(context.Context) error
	)
	if d.Config.RedisURL == "" {
		ch := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, wlog)
		pub, newSub, closer = ch, func(string) (message.Subscriber, error) { return ch, nil }, func() { _ = ch.Close() }
	} else {
		// Redis losing its data deletes the stream and its consumer group:
		// the bus recreates them, and /readyz says not ready while the group
		// is missing (purges sent then would never be handled).
		rb = &scheduler.RedisBus{Client: d.Redis, Consumer: d.Config.NodeID,
			Logger: d.Logger.With("component", "scheduler-bus"), WatermillLogger: wlog}
		p, err := rb.Publisher()
		if err != nil {
			return nil, nil, fmt.Errorf("purge command bus: %w", err)
		}
		pub, newSub = p, rb.Subscriber
		closer = func() { _ = p.Close() }
		ready = rb.Ready
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
		Schedule: scheduler.RedisSchedule{RDB: d.Redis}, Lifecycle: scheduler.RedisSchedule{RDB: d.Redis}, Bus: bus,
		Interval: d.Config.SchedulerInterval, MaxRate: d.Config.PurgeRate,
		Logger: d.Logger.With("component", "scheduler"),
	})
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); _ = s.Run(runCtx) }()
	keepDone := make(chan struct{})
	go func() {
		defer close(keepDone)
		if rb != nil {
			rb.Keep(runCtx, time.Second)
		}
	}()
	stop := func() {
		cancel()
		<-schedDone
		<-keepDone
		<-routerDone
		closer()
	}
	return ready, stop, nil
}
