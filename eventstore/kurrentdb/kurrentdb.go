// Package kurrentdb implements eventstore.Store and eventstore.SnapshotStore
// on a KurrentDB (EventStoreDB) server through the official Go client
// (github.com/kurrent-io/KurrentDB-Client-Go, package kurrentdb).
//
// Mapping:
//   - stream version v (1-based) is KurrentDB revision v-1;
//   - Position is the event's commit position in $all;
//   - RecordedAt is the server's CreatedDate;
//   - snapshots of stream S are events of type "$seatledger-snapshot" in the
//     stream "snapshot-"+S (so ReadAll and Subscribe, which drop
//     $-prefixed event types and streams, never show them).
//
// Idempotent retries rely on KurrentDB's server-side deduplication: with an
// explicit expected version the server recognises events whose IDs are
// already at that place. With Any, a retry is only recognised when the
// events are still the tail of the stream (the client checks that first).
//
// On a cluster every call is served by the leader: the client connects to
// the leader (nodePreference=leader, the default; the Store refuses
// another preference) and every read carries requires-leader, so a read
// after a write never sees a follower's older copy.
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/seatledger/seatledger/eventstore"
)

// ---- append

func toEventData(events []eventstore.EventData) ([]kdb.EventData, error) {
	out := make([]kdb.EventData, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return nil, fmt.Errorf("eventstore: event ID %q is not a UUID: %v", e.ID, err)
		}
		out[i] = kdb.EventData{EventID: id, EventType: e.Type, ContentType: kdb.ContentTypeJson, Data: e.Data}
	}
	return out, nil
}

// appendSize is what the server counts against MaxAppendSize, plus the
// per-event overhead it adds (ID, content type, created date) estimated
// generously.
func appendSize(evs []kdb.EventData) int {
	n := 0
	for _, e := range evs {
		n += len(e.Data) + len(e.Metadata) + len(e.EventType) + 128
	}
	return n
}

func expectedRevision(e eventstore.ExpectedVersion) kdb.StreamState {
	switch {
	case e == eventstore.Any:
		return kdb.Any{}
	case e == eventstore.NoStream:
		return kdb.NoStream{}
	default:
		return kdb.Revision(uint64(e) - 1)
	}
}

// appendRaw appends evs to stream on the leader, refusing an append over
// the size limit before anything is sent.
func (s *Store) appendRaw(ctx context.Context, op, stream string, state kdb.StreamState, evs []kdb.EventData) (*kdb.WriteResult, error) {
	if n := appendSize(evs); n > s.maxAppend {
		return nil, fmt.Errorf("eventstore: kurrentdb %s to %q: %w: %d events of about %d bytes, the server accepts %d (MaxAppendSize)",
			op, stream, eventstore.ErrTooLarge, len(evs), n, s.maxAppend)
	}
	var res *kdb.WriteResult
	// A refusal by a follower (NotLeader) or an unreachable server
	// (Unavailable before the append was taken) wrote nothing: retry once.
	err := s.call(ctx, op, true, func(ctx context.Context, c *kdb.Client) error {
		r, err := c.AppendToStream(ctx, stream, kdb.AppendToStreamOptions{StreamState: state, RequiresLeader: true}, evs...)
		res = r
		return err
	})
	return res, err
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if s.isClosed() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	if stream == "" || strings.HasPrefix(stream, "$") {
		return eventstore.AppendResult{}, fmt.Errorf("eventstore: invalid stream name %q", stream)
	}
	if expected < eventstore.Any {
		return eventstore.AppendResult{}, fmt.Errorf("eventstore: invalid expected version %d", int64(expected))
	}
	if len(events) == 0 {
		last, err := s.last(ctx, stream)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if expected != eventstore.Any && uint64(expected) != last.Version {
			return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: last.Version}
		}
		return eventstore.AppendResult{Version: last.Version, Position: last.Position}, nil
	}
	evs, err := toEventData(events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected == eventstore.Any {
		// The server only deduplicates Any appends in a best-effort way:
		// recognise a retry of the stream's tail here.
		if r, ok, err := s.matchTail(ctx, stream, events); err != nil {
			return eventstore.AppendResult{}, err
		} else if ok {
			return r, nil
		}
	}
	res, err := s.appendRaw(ctx, "append", stream, expectedRevision(expected), evs)
	if err != nil {
		if c, ok := code(err); ok && (c == kdb.ErrorCodeWrongExpectedVersion || c == kdb.ErrorCodeStreamRevisionConflict) {
			last, lerr := s.last(ctx, stream)
			if lerr != nil {
				return eventstore.AppendResult{}, lerr
			}
			return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: last.Version}
		}
		return eventstore.AppendResult{}, err
	}
	// A fresh write reports where it landed: its last event's revision
	// and the commit position of the write. A deduplicated retry reports
	// no position: read the events back (from the leader).
	if res.CommitPosition != 0 {
		return eventstore.AppendResult{Version: res.NextExpectedVersion + 1, Position: eventstore.Position(res.CommitPosition)}, nil
	}
	return s.locate(ctx, stream, expected, events)
}

// locate finds the events just appended (or recognised as already appended)
// and returns the version and position of the last one.
func (s *Store) locate(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	var got []eventstore.RecordedEvent
	var err error
	if expected == eventstore.Any {
		got, err = s.ReadStreamBackward(ctx, stream, 0, 4*len(events)+16)
		// newest first: search for the last event
	} else {
		got, err = s.ReadStream(ctx, stream, uint64(expected)+1, len(events))
	}
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	lastID := events[len(events)-1].ID
	for _, e := range got {
		if strings.EqualFold(e.ID, lastID) {
			return eventstore.AppendResult{Version: e.Version, Position: e.Position}, nil
		}
	}
	return eventstore.AppendResult{}, fmt.Errorf("eventstore: kurrentdb: appended events of %q not found after the append", stream)
}

// matchTail reports whether events are exactly the last len(events) events of
// stream (a retried Any append).
func (s *Store) matchTail(ctx context.Context, stream string, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	tail, err := s.ReadStreamBackward(ctx, stream, 0, len(events))
	if err != nil || len(tail) != len(events) {
		return eventstore.AppendResult{}, false, err
	}
	for i, e := range events {
		if !strings.EqualFold(tail[len(tail)-1-i].ID, e.ID) {
			return eventstore.AppendResult{}, false, nil
		}
	}
	return eventstore.AppendResult{Version: tail[0].Version, Position: tail[0].Position}, true, nil
}

// last returns the stream's last event (zero if the stream is empty).
func (s *Store) last(ctx context.Context, stream string) (eventstore.RecordedEvent, error) {
	evs, err := s.ReadStreamBackward(ctx, stream, 0, 1)
	if err != nil || len(evs) == 0 {
		return eventstore.RecordedEvent{}, err
	}
	return evs[0], nil
}

// ---- reads

func convert(e *kdb.RecordedEvent) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		ID:         e.EventID.String(),
		Type:       e.EventType,
		Stream:     e.StreamID,
		Version:    e.EventNumber + 1,
		Position:   eventstore.Position(e.Position.Commit),
		RecordedAt: e.CreatedDate,
		Data:       e.Data,
	}
}

func hidden(e *kdb.RecordedEvent) bool {
	return strings.HasPrefix(e.EventType, "$") || strings.HasPrefix(e.StreamID, "$") || strings.HasPrefix(e.StreamID, snapshotPrefix)
}

// drain reads rs to its end.
func drain(rs *kdb.ReadStream) ([]*kdb.RecordedEvent, error) {
	defer rs.Close()
	var out []*kdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if e := ev.OriginalEvent(); e != nil {
			out = append(out, e)
		}
	}
}

// readStream runs one ReadStream call on the leader and drains it; a
// missing stream reads as empty, a deleted one fails with
// ErrStreamDeleted. It retries once on Unavailable/NotLeader, whether the
// call or the stream failed.
func (s *Store) readStream(ctx context.Context, stream string, opts kdb.ReadStreamOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	opts.RequiresLeader = true
	var out []*kdb.RecordedEvent
	err := s.call(ctx, "read stream", true, func(ctx context.Context, c *kdb.Client) error {
		rs, err := c.ReadStream(ctx, stream, opts, count)
		if err == nil {
			out, err = drain(rs)
		}
		if isNotFound(err) {
			out, err = nil, nil
		}
		return err
	})
	return out, err
}

func countOf(limit int) uint64 {
	if limit <= 0 {
		return ^uint64(0)
	}
	return uint64(limit)
}

// ReadStream implements eventstore.Store. limit <= 0 means no limit. A
// stream whose first events were deleted (a soft delete or $tb truncation
// makes KurrentDB number new events after the deleted ones) fails with
// ErrStreamDeleted instead of reading with a gap.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if from == 0 {
		from = 1
	}
	evs, err := s.readStream(ctx, stream, kdb.ReadStreamOptions{Direction: kdb.Forwards, From: kdb.Revision(from - 1)}, countOf(limit))
	if err != nil {
		return nil, err
	}
	out := make([]eventstore.RecordedEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, convert(e))
	}
	if len(out) > 0 && out[0].Version > from {
		return nil, fmt.Errorf("eventstore: kurrentdb: stream %q: %w: versions %d..%d are gone (soft-deleted or truncated)",
			stream, eventstore.ErrStreamDeleted, from, out[0].Version-1)
	}
	return out, nil
}

// ReadStreamBackward implements eventstore.Store. limit <= 0 means no limit.
func (s *Store) ReadStreamBackward(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	var start kdb.StreamPosition = kdb.End{}
	if from != 0 {
		start = kdb.Revision(from - 1)
	}
	evs, err := s.readStream(ctx, stream, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: start}, countOf(limit))
	if err != nil {
		return nil, err
	}
	out := make([]eventstore.RecordedEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, convert(e))
	}
	return out, nil
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	last, err := s.last(ctx, stream)
	return last.Version, err
}

const readAllPage = 512

// ReadAll implements eventstore.Store: it drops system events ($-prefixed
// types and streams) and snapshot streams. limit <= 0 means no limit.
// after must be Start or a position the store returned (see
// eventstore.Position): the server seeks to it.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	var out []eventstore.RecordedEvent
	pos := uint64(after)
	for {
		var from kdb.AllPosition = kdb.Start{}
		if pos > 0 {
			from = kdb.Position{Commit: pos, Prepare: pos}
		}
		page, err := s.readAllOnce(ctx, kdb.ReadAllOptions{Direction: kdb.Forwards, From: from}, readAllPage)
		if err != nil {
			return nil, err
		}
		progressed := false
		for _, e := range page {
			if e.Position.Commit <= pos {
				continue // From is inclusive
			}
			pos = e.Position.Commit
			progressed = true
			if hidden(e) {
				continue
			}
			out = append(out, convert(e))
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if !progressed || len(page) < readAllPage {
			return out, nil
		}
	}
}

func (s *Store) readAllOnce(ctx context.Context, opts kdb.ReadAllOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	opts.RequiresLeader = true
	var out []*kdb.RecordedEvent
	err := s.call(ctx, "read $all", true, func(ctx context.Context, c *kdb.Client) error {
		rs, err := c.ReadAll(ctx, opts, count)
		if err == nil {
			out, err = drain(rs)
		}
		return err
	})
	return out, err
}

// Ping implements eventstore.Store: it reads the last event of $all from
// the leader.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	_, err := s.readAllOnce(ctx, kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	return err
}

// lastPositionScan bounds how many of the newest events of $all
// LastPosition reads to find one a subscription delivers (system and
// snapshot events are not delivered).
const lastPositionScan = 256

// lastPositionTimeout bounds LastPosition's read: its callers (the
// projection's lag, replay's end, verify's wait) have no ctx.
const lastPositionTimeout = 5 * time.Second

// LastPosition returns the position of the newest event of $all that a
// subscription delivers (seatledger's own events, not system or snapshot
// ones), read from the leader: replay then knows where the log ends and
// verify how long to wait. It returns Start when the server cannot be read
// or none of the newest lastPositionScan events is seatledger's; the
// callers then rely on the positions they have seen.
func (s *Store) LastPosition() eventstore.Position {
	if s.isClosed() {
		return eventstore.Start
	}
	ctx, cancel := context.WithTimeout(s.rootCtx, lastPositionTimeout)
	defer cancel()
	evs, err := s.readAllOnce(ctx, kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, lastPositionScan)
	if err != nil {
		return eventstore.Start
	}
	for _, e := range evs {
		if !hidden(e) {
			return eventstore.Position(e.Position.Commit)
		}
	}
	return eventstore.Start
}

// head returns the commit position of the last event of $all (0: none).
func (s *Store) head(ctx context.Context) (uint64, error) {
	evs, err := s.readAllOnce(ctx, kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	return evs[0].Position.Commit, nil
}
