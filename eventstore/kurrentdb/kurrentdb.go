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
package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/seatledger/seatledger/eventstore"
)

const (
	snapshotPrefix = "snapshot-"
	snapshotType   = "$seatledger-snapshot"
	// snapshotScan bounds how many snapshot events LoadSnapshot reads back.
	snapshotScan = 256
)

// Store is a KurrentDB-backed event store.
type Store struct {
	client *kdb.Client

	closeOnce sync.Once
	closed    chan struct{}
	rootCtx   context.Context
	cancel    context.CancelFunc
}

var (
	_ eventstore.Store         = (*Store)(nil)
	_ eventstore.SnapshotStore = (*Store)(nil)
)

// schemes are the connection-string schemes the client accepts.
var schemes = []string{"kurrentdb", "kurrent", "kdb", "esdb"}

// IsConnString reports whether conn is a KurrentDB connection string
// (kurrentdb://, kurrent://, kdb:// or esdb://, each also with +discover).
func IsConnString(conn string) bool {
	scheme, _, ok := strings.Cut(strings.TrimSpace(conn), "://")
	if !ok {
		return false
	}
	scheme = strings.TrimSuffix(strings.ToLower(scheme), "+discover")
	for _, s := range schemes {
		if scheme == s {
			return true
		}
	}
	return false
}

// NormalizeConnString trims conn and checks that its scheme is one the
// client accepts (see IsConnString).
func NormalizeConnString(conn string) (string, error) {
	conn = strings.TrimSpace(conn)
	if IsConnString(conn) {
		return conn, nil
	}
	return "", fmt.Errorf("eventstore: unsupported KurrentDB connection string %q (want kurrentdb://, kurrent://, kdb:// or esdb://, each optionally +discover)", redact(conn))
}

// redact hides the user information of a connection string: everything
// between the scheme and the last '@' before the host list (a password may
// itself contain '@').
func redact(conn string) string {
	j := strings.Index(conn, "://")
	if j < 0 {
		return conn
	}
	rest := conn[j+3:]
	end := len(rest)
	if k := strings.IndexAny(rest, "/?#"); k >= 0 {
		end = k
	}
	if i := strings.LastIndex(rest[:end], "@"); i >= 0 {
		return conn[:j+3] + "***" + rest[i:]
	}
	return conn
}

// Open connects to KurrentDB (the connection string comes from
// SEATLEDGER_EVENTSTORE). The client connects lazily; use Ping to check the
// server.
func Open(connString string) (*Store, error) {
	conn, err := NormalizeConnString(connString)
	if err != nil {
		return nil, err
	}
	cfg, err := kdb.ParseConnectionString(conn)
	if err != nil {
		// url.Error quotes the whole string, and its reason can quote
		// part of the password (a bad %-escape): say neither.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = errors.New("not a valid URL")
		}
		return nil, fmt.Errorf("eventstore: parse KurrentDB connection string %q: %v", redact(conn), err)
	}
	client, err := kdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: kurrentdb: %v", eventstore.ErrUnavailable, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{client: client, closed: make(chan struct{}), rootCtx: ctx, cancel: cancel}, nil
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		err = s.client.Close()
	})
	return err
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// ---- errors

func code(err error) (kdb.ErrorCode, bool) {
	var e *kdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func retryable(err error) bool {
	c, ok := code(err)
	return ok && (c == kdb.ErrorUnavailable || c == kdb.ErrorCodeNotLeader)
}

func isNotFound(err error) bool {
	c, ok := code(err)
	return ok && (c == kdb.ErrorCodeResourceNotFound || c == kdb.ErrorCodeStreamDeleted)
}

// mapErr turns client errors into the contract's errors.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isCtxCode(err)) {
		return ctx.Err()
	}
	if c, ok := code(err); ok {
		switch c {
		case kdb.ErrorUnavailable, kdb.ErrorCodeNotLeader, kdb.ErrorCodeConnectionClosed, kdb.ErrorCodeDeadlineExceeded, kdb.ErrorAborted:
			return fmt.Errorf("%w: kurrentdb %s: %v", eventstore.ErrUnavailable, op, err)
		}
		return fmt.Errorf("eventstore: kurrentdb %s: %w", op, err)
	}
	// Errors the client does not classify are connection-level failures.
	return fmt.Errorf("%w: kurrentdb %s: %v", eventstore.ErrUnavailable, op, err)
}

func isCtxCode(err error) bool {
	c, ok := code(err)
	return ok && c == kdb.ErrorCodeDeadlineExceeded
}

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

// appendSafe calls AppendToStream, turning a panic of the client (v4.2.0
// can panic inside AppendToStream, issue #187) into an error.
func (s *Store) appendSafe(ctx context.Context, stream string, opts kdb.AppendToStreamOptions, evs []kdb.EventData) (res *kdb.WriteResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%w: kurrentdb append: client panic: %v", eventstore.ErrUnavailable, r)
		}
	}()
	return s.client.AppendToStream(ctx, stream, opts, evs...)
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
	res, err := s.appendSafe(ctx, stream, kdb.AppendToStreamOptions{StreamState: expectedRevision(expected)}, evs)
	if err != nil {
		if c, ok := code(err); ok && c == kdb.ErrorCodeWrongExpectedVersion {
			last, lerr := s.last(ctx, stream)
			if lerr != nil {
				return eventstore.AppendResult{}, lerr
			}
			return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: last.Version}
		}
		if errors.Is(err, eventstore.ErrUnavailable) {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, s.mapErr(ctx, "append", err)
	}
	// Find where the last event landed. A fresh single-event write reports
	// its position; otherwise (several events, or a deduplicated retry
	// that reports no position) read it back.
	if len(events) == 1 && res.CommitPosition != 0 {
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

// readStream runs one ReadStream call and drains it; a missing stream reads
// as empty. It retries once on Unavailable/NotLeader.
func (s *Store) readStream(ctx context.Context, stream string, opts kdb.ReadStreamOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	var out []*kdb.RecordedEvent
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		out, err = s.readStreamOnce(ctx, stream, opts, count)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, s.mapErr(ctx, "read stream", err)
	}
	return out, nil
}

func (s *Store) readStreamOnce(ctx context.Context, stream string, opts kdb.ReadStreamOptions, count uint64) ([]*kdb.RecordedEvent, error) {
	rs, err := s.client.ReadStream(ctx, stream, opts, count)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	defer rs.Close()
	var out []*kdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			if isNotFound(err) && len(out) == 0 {
				return nil, nil
			}
			return nil, err
		}
		if e := ev.OriginalEvent(); e != nil {
			out = append(out, e)
		}
	}
}

func countOf(limit int) uint64 {
	if limit <= 0 {
		return ^uint64(0)
	}
	return uint64(limit)
}

// ReadStream implements eventstore.Store. limit <= 0 means no limit.
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
		var page []*kdb.RecordedEvent
		var err error
		for attempt := 0; attempt < 2; attempt++ {
			page, err = s.readAllOnce(ctx, from, readAllPage)
			if err == nil || !retryable(err) || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, s.mapErr(ctx, "read $all", err)
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

func (s *Store) readAllOnce(ctx context.Context, from kdb.AllPosition, count uint64) ([]*kdb.RecordedEvent, error) {
	rs, err := s.client.ReadAll(ctx, kdb.ReadAllOptions{Direction: kdb.Forwards, From: from}, count)
	if err != nil {
		return nil, err
	}
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

// Ping implements eventstore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	rs, err := s.client.ReadAll(ctx, kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	if err != nil {
		return s.mapErr(ctx, "ping", err)
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return s.mapErr(ctx, "ping", err)
	}
	return nil
}

// ---- subscriptions

// Subscribe implements eventstore.Store. A pump goroutine reads the server
// subscription into a bounded buffer (the server, not the appenders, is
// slowed by a slow subscriber). When the server drops the subscription or
// becomes unavailable, the pump backs off and resubscribes after the last
// position it delivered; it never delivers an event twice or goes backwards.
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

func (sub *subscription) pump(last uint64) {
	defer close(sub.done)
	defer sub.cancel()
	backoff := 100 * time.Millisecond
	for {
		if sub.pctx.Err() != nil {
			sub.err = eventstore.ErrClosed
			return
		}
		var from kdb.AllPosition = kdb.Start{}
		if last > 0 {
			from = kdb.Position{Commit: last, Prepare: last}
		}
		es, err := sub.s.client.SubscribeToAll(sub.pctx, kdb.SubscribeToAllOptions{From: from, Filter: kdb.ExcludeSystemEventsFilter()})
		if err == nil {
			backoff = 100 * time.Millisecond
			err = sub.receive(es, &last)
			es.Close()
		}
		if sub.pctx.Err() != nil {
			sub.err = eventstore.ErrClosed
			return
		}
		if permanent(err) {
			sub.err = fmt.Errorf("eventstore: kurrentdb subscription: %w", err)
			return
		}
		// Dropped or unavailable: back off and resubscribe after `last`.
		select {
		case <-time.After(backoff):
		case <-sub.pctx.Done():
			sub.err = eventstore.ErrClosed
			return
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
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

// ---- snapshots

type snapshotMeta struct {
	Version uint64 `json:"version"`
	Schema  int    `json:"schema"`
}

// SaveSnapshot implements eventstore.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	if snap.Stream == "" || snap.Version == 0 {
		return fmt.Errorf("eventstore: invalid snapshot of %q at version %d", snap.Stream, snap.Version)
	}
	meta, _ := json.Marshal(snapshotMeta{Version: snap.Version, Schema: snap.Schema})
	ev := kdb.EventData{EventID: uuid.New(), EventType: snapshotType, ContentType: kdb.ContentTypeBinary, Data: snap.Data, Metadata: meta}
	if _, err := s.appendSafe(ctx, snapshotPrefix+snap.Stream, kdb.AppendToStreamOptions{StreamState: kdb.Any{}}, []kdb.EventData{ev}); err != nil {
		if errors.Is(err, eventstore.ErrUnavailable) {
			return err
		}
		return s.mapErr(ctx, "save snapshot", err)
	}
	return nil
}

// LoadSnapshot implements eventstore.SnapshotStore. It looks at the last
// snapshotScan snapshots of the stream.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, maxVersion uint64) (eventstore.Snapshot, bool, error) {
	if s.isClosed() {
		return eventstore.Snapshot{}, false, eventstore.ErrClosed
	}
	evs, err := s.readStream(ctx, snapshotPrefix+stream, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, snapshotScan)
	if err != nil {
		return eventstore.Snapshot{}, false, err
	}
	var best eventstore.Snapshot
	found := false
	for _, e := range evs { // newest first
		var m snapshotMeta
		if e.EventType != snapshotType || json.Unmarshal(e.UserMetadata, &m) != nil || m.Version == 0 {
			continue
		}
		if maxVersion != 0 && m.Version > maxVersion {
			continue
		}
		if !found || m.Version > best.Version {
			best = eventstore.Snapshot{Stream: stream, Version: m.Version, Schema: m.Schema, Data: e.Data}
			found = true
		}
	}
	return best, found, nil
}

// DeleteSnapshots implements eventstore.SnapshotStore. With stream == "" it
// finds every snapshot stream with a server-side filtered scan of $all.
func (s *Store) DeleteSnapshots(ctx context.Context, stream string) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	streams := []string{snapshotPrefix + stream}
	if stream == "" {
		var err error
		if streams, err = s.snapshotStreams(ctx); err != nil {
			return err
		}
	}
	for _, st := range streams {
		if _, err := s.client.DeleteStream(ctx, st, kdb.DeleteStreamOptions{StreamState: kdb.Any{}}); err != nil && !isNotFound(err) {
			return s.mapErr(ctx, "delete snapshots", err)
		}
	}
	return nil
}

// snapshotStreams lists the snapshot streams that have events, reading $all
// with a stream-prefix filter up to the current end of the log.
func (s *Store) snapshotStreams(ctx context.Context) ([]string, error) {
	endEv, err := s.readAllBackwardOne(ctx)
	if err != nil {
		return nil, s.mapErr(ctx, "list snapshots", err)
	}
	if endEv == 0 {
		return nil, nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	es, err := s.client.SubscribeToAll(sctx, kdb.SubscribeToAllOptions{
		From:   kdb.Start{},
		Filter: &kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{snapshotPrefix}},
	})
	if err != nil {
		return nil, s.mapErr(ctx, "list snapshots", err)
	}
	defer es.Close()
	seen := map[string]bool{}
	var out []string
	for {
		ev := es.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return nil, s.mapErr(ctx, "list snapshots", ev.SubscriptionDropped.Error)
		case ev.CaughtUp != nil:
			return out, nil
		case ev.CheckPointReached != nil:
			if ev.CheckPointReached.Commit >= endEv {
				return out, nil
			}
		case ev.EventAppeared != nil:
			e := ev.EventAppeared.OriginalEvent()
			if e == nil {
				continue
			}
			if strings.HasPrefix(e.StreamID, snapshotPrefix) && !seen[e.StreamID] {
				seen[e.StreamID] = true
				out = append(out, e.StreamID)
			}
			if e.Position.Commit >= endEv {
				return out, nil
			}
		}
	}
}

func (s *Store) readAllBackwardOne(ctx context.Context) (uint64, error) {
	rs, err := s.client.ReadAll(ctx, kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, 1)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if e := ev.OriginalEvent(); e != nil {
		return e.Position.Commit, nil
	}
	return 0, nil
}
