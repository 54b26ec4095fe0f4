package postgres

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seatledger/seatledger/eventstore"
)

// ---- notifications

// waitCh returns a channel closed at the next notification.
func (s *Store) waitCh() chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notifyCh
}

// wake releases everything waiting on the current waitCh.
func (s *Store) wake() {
	s.notifyMu.Lock()
	close(s.notifyCh)
	s.notifyCh = make(chan struct{})
	s.notifyMu.Unlock()
}

// startListener starts the LISTEN goroutine once; false if the store is closed.
func (s *Store) startListener() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if !s.listening {
		s.listening = true
		s.listenDone = make(chan struct{})
		go s.listen()
	}
	return true
}

// listen holds one connection that LISTENs to the schema's channel and wakes
// subscriptions and the visibility waiter on every notification. It runs
// once something subscribes or an append waits for visibility. It reconnects after failures; while
// it is down subscriptions still poll.
func (s *Store) listen() {
	defer close(s.listenDone)
	backoff := 100 * time.Millisecond
	for s.rootCtx.Err() == nil {
		conn, err := pgx.ConnectConfig(s.rootCtx, s.listenCfg)
		if err == nil {
			_, err = conn.Exec(s.rootCtx, "LISTEN "+pgx.Identifier{s.n.channel}.Sanitize())
			if err == nil {
				backoff = 100 * time.Millisecond
				s.wake() // events committed before LISTEN took effect
				for {
					var nt *pgconn.Notification
					if nt, err = conn.WaitForNotification(s.rootCtx); err != nil {
						break
					}
					from, horizon, _ := strings.Cut(nt.Payload, " ")
					if from == s.token {
						continue // this Store's own: it woke its own already
					}
					if h, err := strconv.ParseInt(horizon, 10, 64); err == nil {
						s.seeHorizon(h)
					}
					s.wake()
					// Another process's events entered the global log:
					// its transaction may be what this one's appends wait
					// for.
					select {
					case s.visKick <- struct{}{}:
					default:
					}
				}
			}
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(cctx)
			cancel()
		}
		s.wake()
		select {
		case <-time.After(backoff):
		case <-s.rootCtx.Done():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// ---- subscriptions

type subscription struct {
	s *Store

	// ctx ends with Subscribe's ctx, Close, or the store's Close.
	ctx       context.Context
	parentCtx context.Context
	cancel    context.CancelFunc
	stopRoot  func() bool

	closeOnce sync.Once
	closed    chan struct{}

	mu    sync.Mutex // serializes Next
	pos   eventstore.Position
	buf   []eventstore.RecordedEvent
	timer *time.Timer
}

// Subscribe implements eventstore.Store. The subscription reads the log in
// batches after its position and, once caught up, waits for a notification
// of an append or the poll interval. It holds no connection between reads,
// so a slow subscriber never holds up appends.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position) (eventstore.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !s.startListener() {
		return nil, eventstore.ErrClosed
	}
	sctx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		s:         s,
		ctx:       sctx,
		parentCtx: ctx,
		cancel:    cancel,
		closed:    make(chan struct{}),
		pos:       after,
	}
	sub.stopRoot = context.AfterFunc(s.rootCtx, cancel)
	return sub, nil
}

func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() {
		close(sub.closed)
		sub.stopRoot()
		sub.cancel()
	})
	return nil
}

// ended returns the error of an ended subscription, or nil.
func (sub *subscription) ended() error {
	select {
	case <-sub.closed:
		return eventstore.ErrClosed
	default:
	}
	if sub.s.isClosed() {
		return eventstore.ErrClosed
	}
	if err := sub.parentCtx.Err(); err != nil {
		return err
	}
	return nil
}

// Next implements eventstore.Subscription.
func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for {
		if err := sub.ended(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if err := ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if len(sub.buf) > 0 {
			e := sub.buf[0]
			sub.buf[0] = eventstore.RecordedEvent{}
			sub.buf = sub.buf[1:]
			sub.pos = e.Position
			return e, nil
		}
		// Take the wait channel before reading: a notification that
		// arrives after the read found nothing still wakes us.
		wait := sub.s.waitCh()
		evs, err := sub.read(ctx)
		if err != nil {
			if e := sub.ended(); e != nil {
				return eventstore.RecordedEvent{}, e
			}
			if e := ctx.Err(); e != nil {
				return eventstore.RecordedEvent{}, e
			}
			return eventstore.RecordedEvent{}, err
		}
		if len(evs) > 0 {
			sub.buf = evs
			continue
		}
		if sub.timer == nil {
			sub.timer = time.NewTimer(sub.s.opts.PollInterval)
		} else {
			sub.timer.Reset(sub.s.opts.PollInterval)
		}
		select {
		case <-wait:
		case <-sub.timer.C:
		case <-ctx.Done():
		case <-sub.ctx.Done():
		}
		sub.timer.Stop()
	}
}

// read fetches the next batch; the query ends with ctx or the subscription.
func (sub *subscription) read(ctx context.Context) ([]eventstore.RecordedEvent, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sub.ctx, cancel)
	defer stop()
	return sub.s.ReadAll(qctx, sub.pos, sub.s.opts.ReadBatch)
}
