package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/seatledger/seatledger/eventstore"
)

// Message metadata keys set by Subscriber.
const (
	MetaStream     = "stream"
	MetaVersion    = "version"
	MetaPosition   = "position"
	MetaType       = "type"
	MetaRecordedAt = "recordedAt"
	// MetaMore is "1" when the next event is already waiting: a consumer may
	// batch its writes and flush on the first message with "0".
	MetaMore = "more"
)

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// From returns the position to resume after, read at each Subscribe
	// (nil: eventstore.Start).
	From func(ctx context.Context) (eventstore.Position, error)
	// Prefetch is how many events are read ahead of the consumer (default 1024).
	Prefetch int
	// NackDelay is the pause before a Nacked message is sent again (default 100ms).
	NackDelay time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
}

// Subscriber is a Watermill message.Subscriber over the event store's global
// log. It is ordered: the next message is sent only after the previous one
// was Acked, and a Nacked message is sent again. The topic is ignored: every
// event of the log is delivered. Message UUID is the event id, the payload is
// the event's envelope (JSON), and the metadata carries stream, version,
// position, type, recordedAt and more.
type Subscriber struct {
	store eventstore.Store
	cfg   SubscriberConfig

	mu      sync.Mutex
	cancels []context.CancelFunc
	closed  bool
	wg      sync.WaitGroup

	seen atomic.Uint64 // highest position read from the store
}

// NewSubscriber returns a Subscriber over store.
func NewSubscriber(store eventstore.Store, cfg SubscriberConfig) *Subscriber {
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 1024
	}
	if cfg.NackDelay <= 0 {
		cfg.NackDelay = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Subscriber{store: store, cfg: cfg}
}

// Seen is the highest global position the subscriber has read from the store.
func (s *Subscriber) Seen() eventstore.Position { return eventstore.Position(s.seen.Load()) }

// Subscribe starts delivering the log after the From position. The channel
// is closed when ctx is done or Close is called.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("projections: subscriber is closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancels = append(s.cancels, cancel)
	s.mu.Unlock()

	after := eventstore.Start
	if s.cfg.From != nil {
		p, err := s.cfg.From(ctx)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("projections: resume position: %w", err)
		}
		after = p
	}
	buf := make(chan eventstore.RecordedEvent, s.cfg.Prefetch)
	out := make(chan *message.Message)
	s.wg.Add(2)
	go s.read(ctx, after, buf)
	go s.send(ctx, buf, out)
	return out, nil
}

// read follows the log into buf, resubscribing with backoff after a failure.
func (s *Subscriber) read(ctx context.Context, after eventstore.Position, buf chan<- eventstore.RecordedEvent) {
	defer s.wg.Done()
	defer close(buf)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sub, err := s.store.Subscribe(ctx, after)
		if err == nil {
			for {
				var ev eventstore.RecordedEvent
				ev, err = sub.Next(ctx)
				if err != nil {
					break
				}
				backoff = 100 * time.Millisecond
				select {
				case buf <- ev:
					after = ev.Position
					if uint64(ev.Position) > s.seen.Load() {
						s.seen.Store(uint64(ev.Position))
					}
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
			}
			sub.Close()
		}
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) {
			return
		}
		s.cfg.Logger.Warn("projections: event store subscription failed; resubscribing",
			"after", uint64(after), "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// send delivers buf in order, one message in flight at a time.
func (s *Subscriber) send(ctx context.Context, buf <-chan eventstore.RecordedEvent, out chan<- *message.Message) {
	defer s.wg.Done()
	defer close(out)
	for {
		var ev eventstore.RecordedEvent
		var ok bool
		select {
		case ev, ok = <-buf:
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
		for {
			msg := newMessage(ev, len(buf) > 0)
			msg.SetContext(ctx)
			select {
			case out <- msg:
			case <-ctx.Done():
				return
			}
			select {
			case <-msg.Acked():
			case <-msg.Nacked():
				select {
				case <-time.After(s.cfg.NackDelay):
				case <-ctx.Done():
					return
				}
				continue
			case <-ctx.Done():
				return
			}
			break
		}
	}
}

func newMessage(ev eventstore.RecordedEvent, more bool) *message.Message {
	msg := message.NewMessage(ev.ID, ev.Data)
	msg.Metadata.Set(MetaStream, ev.Stream)
	msg.Metadata.Set(MetaVersion, strconv.FormatUint(ev.Version, 10))
	msg.Metadata.Set(MetaPosition, strconv.FormatUint(uint64(ev.Position), 10))
	msg.Metadata.Set(MetaType, ev.Type)
	msg.Metadata.Set(MetaRecordedAt, ev.RecordedAt.UTC().Format(time.RFC3339Nano))
	if more {
		msg.Metadata.Set(MetaMore, "1")
	} else {
		msg.Metadata.Set(MetaMore, "0")
	}
	return msg
}

// Close stops every subscription of the subscriber and closes their
// channels. It is idempotent and does not wait for a handler to finish.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancels := s.cancels
	s.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	return nil
}

// Wait blocks until the subscriber's goroutines have ended (after Close or
// the cancellation of every Subscribe context).
func (s *Subscriber) Wait() { s.wg.Wait() }
