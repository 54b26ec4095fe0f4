package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/seatledger/seatledger/eventstore"
)

// Subscribe implements eventstore.Store. A pump goroutine reads the server
// subscription into a bounded buffer (the server, not the appenders, is
// slowed by a slow subscriber). When the server drops the subscription or
// becomes unavailable, or the client panics, the pump backs off and
// resubscribes after the last position it delivered; it never delivers an
// event twice or goes backwards. after must be Start or a position the
// store returned (see eventstore.Position).
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position) (eventstore.Subscription, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.rootCtx, cancel)
	sub := &subscription{
		s:      s,
		ctx:    ctx,
		pctx:   pctx,
		cancel: func() { stop(); cancel() },
		ch:     make(chan eventstore.RecordedEvent, 256),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
	go sub.pump(uint64(after))
	return sub, nil
}

type subscription struct {
	s      *Store
	ctx    context.Context // Subscribe's ctx
	pctx   context.Context // the pump's ctx
	cancel func()
	ch     chan eventstore.RecordedEvent
	done   chan struct{} // closed when the pump exits
	err    error         // why the pump exited (read after done)
	once   sync.Once
	closed chan struct{} // closed by Close
}

func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	closed := sub.closed
	select {
	case <-closed:
		return eventstore.RecordedEvent{}, eventstore.ErrClosed
	case <-sub.s.closed:
		return eventstore.RecordedEvent{}, eventstore.ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return eventstore.RecordedEvent{}, err
	}
	select {
	case e := <-sub.ch:
		return e, nil
	case <-ctx.Done():
		return eventstore.RecordedEvent{}, ctx.Err()
	case <-closed:
		return eventstore.RecordedEvent{}, eventstore.ErrClosed
	case <-sub.s.closed:
		return eventstore.RecordedEvent{}, eventstore.ErrClosed
	case <-sub.done:
		// Deliver what the pump queued before it stopped.
		select {
		case e := <-sub.ch:
			return e, nil
		default:
		}
		if sub.s.isClosed() {
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		}
		if err := sub.ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		return eventstore.RecordedEvent{}, sub.err
	}
}

func (sub *subscription) Close() error {
	sub.once.Do(func() {
		close(sub.closed)
		sub.cancel()
	})
	return nil
}

func permanent(err error) bool {
	c, ok := code(err)
	return ok && (c == kdb.ErrorCodeUnauthenticated || c == kdb.ErrorCodeAccessDenied)
}

const maxBackoff = 5 * time.Second

func (sub *subscription) pump(last uint64) {
	defer close(sub.done)
	defer sub.cancel()
	backoff := 100 * time.Millisecond
	for {
		if sub.pctx.Err() != nil {
			sub.err = eventstore.ErrClosed
			return
		}
		delivered, err := sub.once1(&last)
		if sub.pctx.Err() != nil {
			sub.err = eventstore.ErrClosed
			return
		}
		if permanent(err) {
			sub.err = fmt.Errorf("eventstore: kurrentdb subscription: %w", err)
			return
		}
		if delivered {
			backoff = 100 * time.Millisecond
		}
		// Dropped, unavailable or panicked: back off and resubscribe
		// after `last`.
		if !sleep(sub.pctx, backoff) {
			sub.err = eventstore.ErrClosed
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// once1 runs one server subscription until it drops, under a recover
// guard; a client that closed itself is rebuilt. delivered says whether
// the server confirmed the subscription (the back-off then starts over).
func (sub *subscription) once1(last *uint64) (delivered bool, err error) {
	s := sub.s
	c, gen, err := s.current()
	if err != nil {
		return false, err
	}
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("KurrentDB client panicked in a subscription; resubscribing", "panic", fmt.Sprint(r))
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
		if clientClosed(err) {
			s.renew(gen)
		}
	}()
	var from kdb.AllPosition = kdb.Start{}
	if *last > 0 {
		from = kdb.Position{Commit: *last, Prepare: *last}
	}
	es, err := c.SubscribeToAll(sub.pctx, kdb.SubscribeToAllOptions{From: from, Filter: kdb.ExcludeSystemEventsFilter(), RequiresLeader: true})
	if err != nil {
		return false, err
	}
	defer es.Close()
	return true, sub.receive(es, last)
}

// receive forwards events until the subscription drops.
func (sub *subscription) receive(es *kdb.Subscription, last *uint64) error {
	for {
		ev := es.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			if ev.SubscriptionDropped.Error == nil {
				return errors.New("subscription dropped")
			}
			return ev.SubscriptionDropped.Error
		case ev.EventAppeared != nil:
			e := ev.EventAppeared.OriginalEvent()
			if e == nil || e.Position.Commit <= *last {
				continue
			}
			if hidden(e) {
				*last = e.Position.Commit
				continue
			}
			select {
			case sub.ch <- convert(e):
				*last = e.Position.Commit
			case <-sub.pctx.Done():
				return sub.pctx.Err()
			}
		}
	}
}
