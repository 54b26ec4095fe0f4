// Package eventstore defines the contract seatledger's write and read sides
// use to persist and read events, independent of the engine underneath.
//
// Streams are named ("tenant-<id>"), versioned from 1, and append-only. Every
// event also has a position in the global log ($all). Implementations live in
// sub-packages (embedded, kurrentdb) and all pass the suite in
// eventstore/storetest.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ExpectedVersion is the optimistic-concurrency condition of an append.
//
//	Any       append whatever the stream's version
//	NoStream  the stream must not exist (version 0)
//	n > 0     the stream's current version must be exactly n
type ExpectedVersion int64

const (
	// Any skips the concurrency check.
	Any ExpectedVersion = -1
	// NoStream requires that the stream has no events yet.
	NoStream ExpectedVersion = 0
)

// Exactly returns the condition "the stream is at version v" (v = 0 is NoStream).
func Exactly(v uint64) ExpectedVersion { return ExpectedVersion(v) }

func (e ExpectedVersion) String() string {
	switch {
	case e == Any:
		return "any"
	case e == NoStream:
		return "no stream"
	default:
		return fmt.Sprintf("version %d", int64(e))
	}
}

// Position is a place in the global log. Positions grow with every append;
// they need not be contiguous (KurrentDB commit positions are byte offsets).
// The zero Position is "before the first event".
//
// Only Start and positions the store returned (an event's Position, an
// AppendResult's Position) may be passed to ReadAll and Subscribe: stores
// do not normalise others (KurrentDB seeks to the exact byte offset and
// fails, or its subscription retries, from any other). Arithmetic on a
// position (Position-1, Position+1) gives no valid position.
type Position uint64

// Start is the position before every event of the global log.
const Start Position = 0

// EventData is an event to append. ID must be unique across the store; it is
// what makes a retried append idempotent. Data is the event's full envelope
// (JSON) exactly as it will be read back.
type EventData struct {
	ID   string // UUID, canonical text form
	Type string
	Data []byte
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID         string
	Type       string
	Stream     string
	Version    uint64   // 1-based position within Stream
	Position   Position // position in the global log
	RecordedAt time.Time
	Data       []byte
}

// AppendResult tells where an append landed.
type AppendResult struct {
	Version  uint64   // stream version after the append (its last event's version)
	Position Position // global position of the last appended event
}

// Store is the event store contract.
type Store interface {
	// Append writes events to the end of stream atomically (all or none) if
	// expected holds. A wrong expected version returns a *ConflictError.
	// Re-appending events whose IDs were already appended at the same place
	// succeeds and writes nothing (idempotent retry). Appending no events
	// checks expected and returns the current version.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error)

	// ReadStream reads up to limit events of stream with version >= from, in
	// version order. A missing stream reads as empty.
	ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]RecordedEvent, error)

	// ReadStreamBackward reads up to limit events of stream with version <=
	// from (from = 0 means from the end), newest first.
	ReadStreamBackward(ctx context.Context, stream string, from uint64, limit int) ([]RecordedEvent, error)

	// StreamVersion returns the stream's current version (0 if it has no events).
	StreamVersion(ctx context.Context, stream string) (uint64, error)

	// ReadAll reads up to limit events of the global log strictly after
	// position `after`, in global order.
	ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error)

	// Subscribe follows the global log strictly after position `after`:
	// catch-up, then live. Events arrive in global order with no gaps and no
	// duplicates. A slow subscriber never blocks appends. Cancel ctx or call
	// Close to stop it.
	Subscribe(ctx context.Context, after Position) (Subscription, error)

	// Ping reports whether the store can serve requests (for /readyz).
	Ping(ctx context.Context) error

	// Close releases the store. Subscriptions end with ErrClosed.
	Close() error
}

// Exclusive is implemented by a store that no other process can append to
// while it is open (the embedded store holds its directory's lock). Every
// other store is shared: several processes may append to one stream, and
// a reader must not take what it appended itself for the stream's head.
//
// The command handler relies on it: on an exclusive store the tenant state
// it keeps in memory is the head; on a shared one it reads the head (one
// indexed read) before any answer that is not an append — a refusal, a
// no-op, a role check — so that no answer is decided on a state older than
// the store's when the request arrived.
type Exclusive interface {
	// Exclusive reports whether no other process can append to the store
	// while it is open.
	Exclusive() bool
}

// IsExclusive reports whether s declares itself exclusive (see Exclusive).
func IsExclusive(s Store) bool {
	e, ok := s.(Exclusive)
	return ok && e.Exclusive()
}

// DensePositions is implemented by a store whose global positions are
// consecutive integers (1, 2, 3, …), so that the distance between two
// positions is the number of events between them (the embedded store).
// KurrentDB's positions are byte offsets and PostgreSQL's carry the
// transaction id: a reader counts events there instead.
type DensePositions interface {
	DensePositions() bool
}

// IsDense reports whether s declares dense positions (see DensePositions).
func IsDense(s Store) bool {
	d, ok := s.(DensePositions)
	return ok && d.DensePositions()
}

// HealthReporter is implemented by a store whose client can fail for good
// (for /healthz): Health returns nil while the store is open and can still
// recover, whether or not its server is reachable right now (Ping says
// that, for /readyz).
type HealthReporter interface {
	Health() error
}

// AsyncAppender is implemented by stores that can queue an append and let
// the caller wait for its outcome later. Appends are committed in the order
// they were queued, so a caller may queue an append that expects the version
// the one before will make without waiting for that one's fsync. To build on
// an append's outcome and not just on its version, queue the next one
// `after` it: then it fails with a ConflictError, writing nothing, unless
// the earlier one was committed.
type AsyncAppender interface {
	// QueueAppend validates and queues an append like Append's, behind
	// after (nil: no such condition), and returns at once. Errors found
	// before queueing (bad input, a closed or failed store, ctx done) are
	// the QueuedAppend's outcome. ctx ending before the store takes the
	// append fails it with ctx's error.
	QueueAppend(ctx context.Context, stream string, expected ExpectedVersion, events []EventData, after QueuedAppend) QueuedAppend
}

// QueuedAppend is an append queued by an AsyncAppender.
type QueuedAppend interface {
	// Wait blocks until the store has decided the append's outcome and
	// returns what Append would have. Unlike Append it does not return
	// early when ctx ends: when Wait returns the outcome is final (the
	// append is committed, or it is not and never will be), and so is the
	// outcome of every append queued before it.
	Wait() (AppendResult, error)
}

// Subscription delivers events of the global log in order.
type Subscription interface {
	// Next blocks until the next event is available, ctx is done (ctx.Err())
	// or the subscription is closed (ErrClosed).
	Next(ctx context.Context) (RecordedEvent, error)
	// Close stops the subscription; it is safe to call more than once.
	Close() error
}

// Snapshot is a cached fold of a stream up to Version. Snapshots are only a
// cache: deleting them must change no answer.
type Snapshot struct {
	Stream  string
	Version uint64
	Schema  int
	Data    []byte
}

// SnapshotStore keeps snapshots beside the events.
type SnapshotStore interface {
	// SaveSnapshot stores s; an older snapshot of the same stream and version
	// is replaced.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the newest snapshot of stream with Version <=
	// maxVersion (maxVersion = 0: the newest). ok is false when there is none.
	LoadSnapshot(ctx context.Context, stream string, maxVersion uint64) (s Snapshot, ok bool, err error)
	// DeleteSnapshots removes every snapshot of stream ("" = of every stream).
	DeleteSnapshots(ctx context.Context, stream string) error
}

// ErrClosed is returned by a closed store or subscription.
var ErrClosed = errors.New("eventstore: closed")

// ErrConflict matches every *ConflictError with errors.Is.
var ErrConflict = errors.New("eventstore: wrong expected version")

// ErrUnavailable wraps failures of the engine that the caller may retry later
// (disk full, read-only file system, server unreachable).
var ErrUnavailable = errors.New("eventstore: unavailable")

// ConflictError says the stream was not at the expected version.
type ConflictError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64 // the stream's version when the append was refused
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: stream %q: expected %s, actual version %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true for a *ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ErrTooLarge is returned by an append larger than the store accepts in one
// append (KurrentDB's MaxAppendSize, 1 MiB by default). Nothing is written;
// retrying the same append fails the same way.
var ErrTooLarge = errors.New("eventstore: append too large")

// ErrStreamDeleted is returned when the stream was deleted outside
// seatledger (a KurrentDB tombstone, or a soft delete that left its first
// versions gone). seatledger never deletes event streams; an operator must
// restore the stream: neither reads nor appends can go on.
var ErrStreamDeleted = errors.New("eventstore: stream deleted")
