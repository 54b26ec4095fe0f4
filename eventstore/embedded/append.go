package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

// The caller's side of an append: Append and QueueAppend validate the
// request, hand it to the writer goroutine (groupcommit.go) and wait for its
// outcome.

type appendReq struct {
	ctx            context.Context
	stream         string
	expected       eventstore.ExpectedVersion
	events         []eventstore.EventData
	ids            [][16]byte
	idBuf          [2][16]byte // room for ids: most appends carry one or two events
	after          *appendReq  // fail unless this one was committed (cleared once checked)
	accepted       bool        // wrote events into the current group
	dependsOnGroup bool        // outcome depends on earlier appends of the current group

	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

// Append implements eventstore.Store. If ctx ends while the append is being
// committed, Append returns ctx.Err() and the append may or may not have
// happened: retry it with the same event IDs.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	return s.await(ctx, s.queue(ctx, stream, expected, events, nil))
}

// await waits for r's outcome, or for ctx to end (ctx.Err(): the outcome is
// then unknown). A request the writer never took when it ended is closed.
func (s *Store) await(ctx context.Context, r *appendReq) (eventstore.AppendResult, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.writerDone: // the writer closes every request it took before it ends
		select {
		case <-r.done:
		default:
			return eventstore.AppendResult{}, eventstore.ErrClosed
		}
	}
	return r.res, r.err
}

// QueueAppend queues an append for the writer (eventstore.AsyncAppender).
// The writer takes queued appends in order and fails one whose `after` was
// not committed.
func (s *Store) QueueAppend(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData, after eventstore.QueuedAppend) eventstore.QueuedAppend {
	var prev *appendReq
	if after != nil {
		q, ok := after.(*queuedAppend)
		if !ok || q.s != s {
			return &queuedAppend{s: s, r: failedReq(errors.New("eventstore: QueueAppend after an append of another store"))}
		}
		prev = q.r
	}
	return &queuedAppend{s: s, r: s.queue(ctx, stream, expected, events, prev)}
}

// queuedAppend is the embedded store's eventstore.QueuedAppend.
type queuedAppend struct {
	s *Store
	r *appendReq
}

// Wait ignores the append's ctx: the writer decides (a ctx that ends before
// it takes the append fails it).
func (q *queuedAppend) Wait() (eventstore.AppendResult, error) {
	return q.s.await(context.Background(), q.r)
}

func failedReq(err error) *appendReq {
	r := &appendReq{err: err, done: make(chan struct{})}
	close(r.done)
	return r
}

// queue validates an append and hands it to the writer; a request that
// cannot be queued comes back already failed.
func (s *Store) queue(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData, after *appendReq) *appendReq {
	if err := validStream(stream); err != nil {
		return failedReq(err)
	}
	if expected < eventstore.Any {
		return failedReq(fmt.Errorf("eventstore: invalid expected version %d", int64(expected)))
	}
	if after != nil {
		select {
		case <-after.done:
			if after.err != nil {
				return failedReq(s.afterFailed(stream, expected))
			}
			after = nil // committed: nothing left to check
		default:
		}
	}
	r := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, after: after, done: make(chan struct{})}
	if len(events) > 0 {
		r.ids = r.idBuf[:0]
		if len(events) > len(r.idBuf) {
			r.ids = make([][16]byte, 0, len(events))
		}
		r.ids = r.ids[:len(events)]
		for i, e := range events {
			id, err := parseID(e.ID)
			if err != nil {
				return failedReq(err)
			}
			r.ids[i] = id
		}
		if err := checkDistinct(r.ids, events); err != nil {
			return failedReq(err)
		}
	}
	if err := ctx.Err(); err != nil {
		return failedReq(err)
	}
	select {
	case <-s.closing:
		return failedReq(eventstore.ErrClosed)
	default:
	}
	if err := s.failed(); err != nil && time.Now().UnixNano() < s.nextRecovery.Load() {
		// Fail fast; the writer tries to recover when the time comes.
		return failedReq(err)
	}
	select {
	case s.reqs <- r:
		return r
	case <-ctx.Done():
		return failedReq(ctx.Err())
	case <-s.closing:
		return failedReq(eventstore.ErrClosed)
	}
}

// afterFailed is the error of an append queued after one that failed.
func (s *Store) afterFailed(stream string, expected eventstore.ExpectedVersion) error {
	v, err := s.StreamVersion(context.Background(), stream)
	if err != nil {
		return err
	}
	return &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: v}
}

// checkDistinct refuses an append that carries the same event ID twice.
func checkDistinct(ids [][16]byte, events []eventstore.EventData) error {
	if len(ids) <= 16 {
		for i := 1; i < len(ids); i++ {
			for j := 0; j < i; j++ {
				if ids[i] == ids[j] {
					return fmt.Errorf("eventstore: event ID %s appears twice in one append", events[i].ID)
				}
			}
		}
		return nil
	}
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return fmt.Errorf("eventstore: event ID %s appears twice in one append", uuid.UUID(sorted[i]))
		}
	}
	return nil
}

func validStream(stream string) error {
	if stream == "" {
		return errors.New("eventstore: empty stream name")
	}
	for i := 0; i < len(stream); i++ {
		if stream[i] == 0 {
			return fmt.Errorf("eventstore: stream name %q contains a NUL byte", stream)
		}
	}
	return nil
}
