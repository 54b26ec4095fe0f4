package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// RedisBus carries purge commands on the Redis Stream Topic, read by one
// consumer group per handler (so with several nodes each command is handled
// once), and keeps those groups alive.
//
// Redis losing its data (FLUSHDB, a restart without persistence) deletes the
// stream and its groups; a subscriber reading a group that is gone gets
// NOGROUP on every read and never handles a command again. RedisBus
// recreates the stream and group at once when a read says NOGROUP, and Keep
// checks them on a timer as well. A recreated group reads the stream from its
// first entry: commands sent after the loss are handled, and a command handled
// twice is refused by the domain (already purged), so nothing is purged twice.
// Commands sent before the loss are gone with it; the scheduler sends them
// again from the rebuilt schedule.
type RedisBus struct {
	Client   redis.UniversalClient
	Consumer string // this node's consumer name in every group
	// Logger receives a warning per recreated group; WatermillLogger is the
	// subscribers' own logger. Both may be nil.
	Logger          *slog.Logger
	WatermillLogger watermill.LoggerAdapter

	mu     sync.Mutex
	groups []string // the consumer groups of the subscribers made
}

// Publisher returns the publisher of the bus (streams capped at 100,000 entries).
func (b *RedisBus) Publisher() (message.Publisher, error) {
	return redisstream.NewPublisher(redisstream.PublisherConfig{Client: b.Client, DefaultMaxlen: 100_000}, b.wlog())
}

// Subscriber returns a subscriber reading the bus as consumer group group
// (AddProcessor's newSubscriber).
func (b *RedisBus) Subscriber(group string) (message.Subscriber, error) {
	b.mu.Lock()
	if !slices.Contains(b.groups, group) {
		b.groups = append(b.groups, group)
	}
	b.mu.Unlock()
	return redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client: b.Client, ConsumerGroup: group, Consumer: b.Consumer,
		// A first read that blocks forever would not notice the group
		// vanish; every read blocks at most BlockTime (100 ms).
		DisableIndefiniteInitialBlock: true,
		ShouldStopOnReadErrors: func(err error) bool {
			if isNoGroup(err) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := b.ensure(ctx, group); err != nil {
					b.logger().Warn("cannot recreate the purge command consumer group; retrying", "group", group, "err", err)
				}
			}
			return false // keep reading: the subscriber retries after 500 ms
		},
	}, b.wlog())
}

// isNoGroup reports whether err says the stream or consumer group is gone.
func isNoGroup(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "NOGROUP") || strings.HasPrefix(s, "UNBLOCKED")
}

// Ensure creates the stream and consumer group of every subscriber made that
// is missing; it returns how many groups it created.
func (b *RedisBus) Ensure(ctx context.Context) (int, error) {
	created := 0
	var errs []error
	for _, g := range b.groupList() {
		ok, err := b.ensure(ctx, g)
		if ok {
			created++
		}
		errs = append(errs, err)
	}
	return created, errors.Join(errs...)
}

// ensure creates group (and the stream) if missing, reading from the start.
func (b *RedisBus) ensure(ctx context.Context, group string) (created bool, err error) {
	err = b.Client.XGroupCreateMkStream(ctx, Topic, group, "0").Err()
	if err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create consumer group %s of %s: %w", group, Topic, err)
	}
	b.logger().Warn("purge command consumer group was missing (Redis lost its data?): recreated it", "group", group, "stream", Topic)
	return true, nil
}

// Ready returns nil when the stream has every subscriber's consumer group,
// that is, when purge commands sent now would be handled.
func (b *RedisBus) Ready(ctx context.Context) error {
	groups := b.groupList()
	if len(groups) == 0 {
		return nil
	}
	infos, err := b.Client.XInfoGroups(ctx, Topic).Result()
	if err != nil && !strings.Contains(err.Error(), "no such key") {
		return fmt.Errorf("purge command bus: %w", err)
	}
	for _, g := range groups {
		if !slices.ContainsFunc(infos, func(i redis.XInfoGroup) bool { return i.Name == g }) {
			return fmt.Errorf("purge command bus: consumer group %s of %s is missing (Redis lost its data?); recreating it", g, Topic)
		}
	}
	return nil
}

// Keep runs Ensure every interval until ctx is done, so a group lost while
// no read notices (a subscriber blocked in a read) is recreated too.
func (b *RedisBus) Keep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := b.Ensure(ctx); err != nil && ctx.Err() == nil {
			b.logger().Warn("cannot check the purge command consumer groups", "err", err)
		}
	}
}

func (b *RedisBus) groupList() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.groups)
}

func (b *RedisBus) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

func (b *RedisBus) wlog() watermill.LoggerAdapter {
	if b.WatermillLogger == nil {
		return watermill.NopLogger{}
	}
	return b.WatermillLogger
}
