package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatledger/seatledger/eventstore"
)

const (
	// maxGroup caps how many appends of one process share a transaction.
	maxGroup = 64
	// groupTimeout bounds a shared transaction (it runs under no caller's
	// ctx, since its callers may give up independently).
	groupTimeout = 30 * time.Second
)

// Outcomes of append_events.
const (
	outcomeWritten  = 0
	outcomeRetry    = 1
	outcomeConflict = 2
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	ids      []pgtype.UUID
	types    []string
	data     [][]byte

	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

func validText(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return fmt.Errorf("eventstore: %s %q is not valid UTF-8 text without NUL bytes", what, s)
	}
	return nil
}

func validStream(stream string) error {
	if stream == "" {
		return errors.New("eventstore: empty stream name")
	}
	return validText("stream name", stream)
}

// Append implements eventstore.Store.
//
// Concurrent appends of one Store share a transaction (group commit: one
// lock hold and one WAL flush for up to 64 appends); each append is still
// checked and applied on its own, in arrival order. If ctx ends or the
// connection breaks while the append commits, Append returns an error and
// the append may or may not have happened: retry it with the same event IDs.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := validStream(stream); err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected < eventstore.Any {
		return eventstore.AppendResult{}, fmt.Errorf("eventstore: invalid expected version %d", int64(expected))
	}
	r := &appendReq{
		ctx: ctx, stream: stream, expected: expected,
		ids:   make([]pgtype.UUID, len(events)),
		types: make([]string, len(events)),
		data:  make([][]byte, len(events)),
		done:  make(chan struct{}),
	}
	seen := make(map[[16]byte]struct{}, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("eventstore: event ID %q is not a UUID: %v", e.ID, err)
		}
		if _, dup := seen[id]; dup {
			return eventstore.AppendResult{}, fmt.Errorf("eventstore: event ID %s appears twice in one append", e.ID)
		}
		if err := validText("event type", e.Type); err != nil {
			return eventstore.AppendResult{}, err
		}
		seen[id] = struct{}{}
		r.ids[i] = pgtype.UUID{Bytes: id, Valid: true}
		r.types[i] = e.Type
		r.data[i] = e.Data
		if r.data[i] == nil {
			r.data[i] = []byte{}
		}
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.isClosed() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.closedCh:
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.writerDone:
		select {
		case <-r.done:
			return r.res, r.err
		default:
			return eventstore.AppendResult{}, eventstore.ErrClosed
		}
	}
}

// writer is the goroutine that commits this Store's appends, a group at a
// time. Appends of other processes interleave between groups (the advisory
// lock in append_events orders them).
func (s *Store) writer() {
	defer close(s.writerDone)
	group := make([]*appendReq, 0, maxGroup)
	for {
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.closedCh:
			for {
				select {
				case r := <-s.reqs:
					r.err = eventstore.ErrClosed
					close(r.done)
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break fill
			}
		}
		live := group[:0]
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				r.err = err
				close(r.done)
				continue
			}
			live = append(live, r)
		}
		switch len(live) {
		case 0:
		case 1:
			s.appendOne(live[0])
		default:
			s.appendGroup(live)
		}
		for i := range group {
			group[i] = nil
		}
	}
}

func (s *Store) args(r *appendReq) []any {
	return []any{r.stream, int64(r.expected), r.ids, r.types, r.data}
}

// result turns append_events' answer into r's result.
func (r *appendReq) result(outcome int32, version, position int64) {
	if outcome == outcomeConflict {
		r.err = &eventstore.ConflictError{Stream: r.stream, Expected: r.expected, Actual: uint64(version)}
		return
	}
	r.res = eventstore.AppendResult{Version: uint64(version), Position: eventstore.Position(position)}
}

// appendOne runs one append as a single statement (its own transaction).
func (s *Store) appendOne(r *appendReq) {
	defer close(r.done)
	var outcome int32
	var version, position int64
	if err := s.pool.QueryRow(r.ctx, s.qAppend, s.args(r)...).Scan(&outcome, &version, &position); err != nil {
		r.err = s.mapErr(r.ctx, "append", err)
		return
	}
	r.result(outcome, version, position)
}

// appendGroup runs several appends in one transaction. Refused appends
// (conflicts) are answers, not errors, so they do not abort the others.
func (s *Store) appendGroup(group []*appendReq) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	type answer struct {
		outcome           int32
		version, position int64
	}
	answers := make([]answer, len(group))
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for i, r := range group {
			a := &answers[i]
			b.Queue(s.qAppend, s.args(r)...).QueryRow(func(row pgx.Row) error {
				return row.Scan(&a.outcome, &a.version, &a.position)
			})
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err == nil {
		for i, r := range group {
			r.result(answers[i].outcome, answers[i].version, answers[i].position)
			close(r.done)
		}
		return
	}
	switch {
	case s.isClosed():
		err = eventstore.ErrClosed
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: postgres append: no answer within %v: %v", eventstore.ErrUnavailable, groupTimeout, err)
	default:
		err = classify("append", err)
	}
	if errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrClosed) {
		for _, r := range group {
			r.err = err
			close(r.done)
		}
		return
	}
	// Something in the group was refused by the server: nothing was
	// committed, so run the appends one by one to fail only that one.
	for _, r := range group {
		s.appendOne(r)
	}
}
