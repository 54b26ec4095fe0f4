package projections

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/seatledger/seatledger/eventstore"
)

// Message metadata keys set by Subscriber.
const (
	// MetaFirst is the global position of the batch's first event.
	MetaFirst = "first"
	// MetaPosition is the global position of the batch's last event.
	MetaPosition = "position"
	// MetaCount is the number of events in the batch.
	MetaCount = "count"
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
	// MaxBatch bounds the events of one message (default 256). A message
	// carries the events already waiting when it is sent: under load one
	// message per few dozen events instead of one per event.
	MaxBatch int
	// ReusePayloads has the payload of an Acked message reused for a later
	// message. Set it only when the handler keeps nothing of a payload
	// (DecodeBatch's Data slices point into it) once it returned: the
	// projection decodes the events it keeps into their own memory.
	ReusePayloads bool
	// Logger (default: discard).
	Logger *slog.Logger
}

// Subscriber is a Watermill message.Subscriber over the event store's global
// log. It is ordered: the next message is sent only after the previous one
// was Acked, and a Nacked message is sent again, with the same events. The
// topic is ignored: every event of the log is delivered.
//
// A message carries a batch of consecutive events of the log: the first
// event and those already read behind it, up to MaxBatch (a message per
// event would cost a goroutine, a retry and a metadata map each — most of
// the projection's overhead at a few thousand events per second). The
// payload is the batch in the framing of AppendBatchEvent (DecodeBatch reads
// it back), the UUID is the first event's id, and the metadata carries
// first, position (the last event's), count and more.
type Subscriber struct {
	store eventstore.Store
	cfg   SubscriberConfig

	mu      sync.Mutex
	cancels []context.CancelFunc
	closed  bool
	wg      sync.WaitGroup

	seen atomic.Uint64 // highest position read from the store

	// buf is the read-ahead of the last subscription (guarded by mu);
	// arrived gets a token when an event enters it.
	buf     chan eventstore.RecordedEvent
	arrived chan struct{}
}

// NewSubscriber returns a Subscriber over store.
func NewSubscriber(store eventstore.Store, cfg SubscriberConfig) *Subscriber {
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 1024
	}
	if cfg.NackDelay <= 0 {
		cfg.NackDelay = 100 * time.Millisecond
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Subscriber{store: store, cfg: cfg, arrived: make(chan struct{}, 1)}
}

// Waiting is the number of events read ahead and not yet sent in a
// message: while the handler works on a message, events that the next
// message will carry once this one is Acked.
func (s *Subscriber) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// Arrived gets a token when an event is read ahead (at most one waits: a
// token may be older than the last look at Waiting).
func (s *Subscriber) Arrived() <-chan struct{} { return s.arrived }

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
	s.mu.Lock()
	s.buf = buf
	s.mu.Unlock()
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
					select {
					case s.arrived <- struct{}{}:
					default:
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
	batch := make([]eventstore.RecordedEvent, 0, s.cfg.MaxBatch)
	var spare []byte // an Acked message's payload, with ReusePayloads
	for {
		batch = batch[:0]
		select {
		case ev, ok := <-buf:
			if !ok {
				return
			}
			batch = append(batch, ev)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case ev, ok := <-buf:
				if !ok {
					break drain
				}
				batch = append(batch, ev)
			default:
				break drain
			}
		}
		msg := newBatchMessage(batch, len(buf) > 0, spare[:0])
		spare = nil
		for {
			msg.SetContext(ctx)
			select {
			case out <- msg:
			case <-ctx.Done():
				return
			}
			select {
			case <-msg.Acked():
				if s.cfg.ReusePayloads && cap(msg.Payload) <= maxKeptPayload {
					spare = msg.Payload
				}
			case <-msg.Nacked():
				select {
				case <-time.After(s.cfg.NackDelay):
				case <-ctx.Done():
					return
				}
				msg = msg.Copy() // a Nacked message cannot be Acked: send a fresh one
				continue
			case <-ctx.Done():
				return
			}
			break
		}
	}
}

// maxKeptPayload bounds the payload kept for reuse (a batch of events of a
// few KiB each fits).
const maxKeptPayload = 4 << 20

// newBatchMessage frames batch into a message whose payload is appended to
// buf (empty; nil: a new buffer).
func newBatchMessage(batch []eventstore.RecordedEvent, more bool, buf []byte) *message.Message {
	size := 0
	for i := range batch {
		size += len(batch[i].Data) + len(batch[i].Stream) + len(batch[i].ID) + len(batch[i].Type) + 40
	}
	payload := slices.Grow(buf[:0], size)
	for i := range batch {
		payload = AppendBatchEvent(payload, &batch[i])
	}
	msg := message.NewMessage(batch[0].ID, payload)
	msg.Metadata.Set(MetaFirst, strconv.FormatUint(uint64(batch[0].Position), 10))
	msg.Metadata.Set(MetaPosition, strconv.FormatUint(uint64(batch[len(batch)-1].Position), 10))
	msg.Metadata.Set(MetaCount, strconv.Itoa(len(batch)))
	if more {
		msg.Metadata.Set(MetaMore, "1")
	} else {
		msg.Metadata.Set(MetaMore, "0")
	}
	return msg
}

// AppendBatchEvent appends ev to a batch payload: position, version and
// recordedAt (Unix nanoseconds) as varints, then stream, id, type and data,
// each a uvarint length and its bytes.
func AppendBatchEvent(b []byte, ev *eventstore.RecordedEvent) []byte {
	b = binary.AppendUvarint(b, uint64(ev.Position))
	b = binary.AppendUvarint(b, ev.Version)
	b = binary.AppendVarint(b, ev.RecordedAt.UnixNano())
	b = appendField(b, ev.Stream)
	b = appendField(b, ev.ID)
	b = appendField(b, ev.Type)
	return appendField(b, ev.Data)
}

func appendField[T string | []byte](b []byte, v T) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// ErrBadBatch is returned by DecodeBatch for a payload that is not a batch.
var ErrBadBatch = errors.New("projections: malformed event batch")

// DecodeBatch appends the events of a batch payload to into and returns it.
// The events' Data alias payload.
func DecodeBatch(payload []byte, into []eventstore.RecordedEvent) ([]eventstore.RecordedEvent, error) {
	r := batchReader{b: payload}
	for len(r.b) > 0 {
		var ev eventstore.RecordedEvent
		ev.Position = eventstore.Position(r.uvarint())
		ev.Version = r.uvarint()
		ev.RecordedAt = time.Unix(0, r.varint()).UTC()
		ev.Stream = string(r.field())
		ev.ID = string(r.field())
		ev.Type = string(r.field())
		ev.Data = r.field()
		if r.bad {
			return into, ErrBadBatch
		}
		into = append(into, ev)
	}
	return into, nil
}

type batchReader struct {
	b   []byte
	bad bool
}

func (r *batchReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	r.skip(n)
	return v // 0 when n <= 0
}

func (r *batchReader) varint() int64 {
	v, n := binary.Varint(r.b)
	r.skip(n)
	return v
}

// skip consumes n bytes, or marks the batch bad when n <= 0 (binary's
// varint readers' "too short" and "overflow").
func (r *batchReader) skip(n int) {
	if n <= 0 {
		r.bad, r.b = true, nil
		return
	}
	r.b = r.b[n:]
}

func (r *batchReader) field() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	f := r.b[:n:n]
	r.b = r.b[n:]
	return f
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
