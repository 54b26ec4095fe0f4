// Package embedded is seatledger's built-in event store: an append-only log on
// Pebble in a local data directory.
//
// Durability: an append is acknowledged only after its Pebble batch has been
// committed with an fsync of the write-ahead log (unless Options.NoSync), so
// an acknowledged event survives kill -9 and power loss. Concurrent appends
// share one fsync: a single writer goroutine takes every pending append, checks
// each one's expected version, writes the accepted ones in one batch and
// commits it once (group commit).
//
// Failure model: if a commit fails (disk full, read-only file system, I/O
// error) the appends of that group fail with an error wrapping
// eventstore.ErrUnavailable and nothing in memory advances. Pebble's
// write-ahead log cannot be trusted after a failed write, so the store then
// refuses appends (fast, with ErrUnavailable; Ping too) and every
// Options.RecoveryInterval (on the next append, or in the background) it
// checks that the disk takes a synced write again and, if so, reopens the
// database in place: close, open, check the log's tail, make what it
// recovered durable, forget the cached stream heads, accept appends again —
// no process restart. Reads keep working on the old database while the
// disk still fails (they never show unacknowledged events) and wait while
// the database is swapped; subscriptions continue from their position.
// Events whose append failed may or may not be in the log afterwards, which
// is why appends are idempotent by event ID. (Pebble itself panics if the
// disk fails exactly while it closes a write-ahead log at a memtable
// rotation; then the process exits and a restart recovers.)
//
// One file per job: store.go (Options, Open, Close), pebble.go (the engine's
// settings, opening and closing one database), verify.go (the checks at open
// and Verify), append.go (Append and QueueAppend: validate, queue, wait),
// groupcommit.go (the writer goroutine and SyncDelay), idempotency.go (an
// append's expected version, and retries found by event ID), heads.go
// (stream heads), recovery.go (disk failures), read.go (reads and
// subscriptions), snapshot.go, codec.go (key layout and records), wal.go
// (the pre-extended write-ahead log).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/seatledger/seatledger/eventstore"
)

// Options configure an embedded Store. The zero value is ready for production.
type Options struct {
	// Clock gives the RecordedAt time of appended events (default time.Now).
	Clock func() time.Time
	// NoSync commits without fsync. It is NOT durable: acknowledged events
	// can be lost on a crash of the machine. Tests only.
	NoSync bool
	// Logger receives the store's and Pebble's log lines (default slog.Default()).
	Logger *slog.Logger
	// VerifyOnOpen checks every record of the global log and its indexes at
	// Open (slow on big stores; Open always checks the tail).
	VerifyOnOpen bool
	// FS replaces the file system (fault-injection tests only). With a non-OS
	// FS the seatledger directory lock is not taken.
	FS vfs.FS
	// MaxGroup caps how many appends share one commit (default 512).
	MaxGroup int
	// SyncDelay bounds how long a commit waits for company while appends
	// come concurrently. When the last commit carried several appends, the
	// next one waits until as many are queued again, or until SyncDelay
	// after the last commit began, whichever comes first, so that they
	// share one fsync. A lone writer never waits, and a fixed set of
	// writers waits only for each other. Fewer, fuller fsyncs leave more
	// CPU and disk to everything else (docs/BENCHMARKS.md: with 64 HTTP
	// clients, ~35% fewer fsyncs and ~4% less CPU per command); the cost
	// is at most SyncDelay more latency for an append. Default 500µs; negative: never wait (commit
	// as soon as the last commit is done).
	SyncDelay time.Duration
	// CacheSize is Pebble's block cache in bytes (default 128 MiB).
	CacheSize int64
	// RecoveryInterval is how often a store whose commit failed (disk
	// full, read-only file system) tries to reopen its database and accept
	// appends again (default 500 ms). Appends in between fail fast with
	// ErrUnavailable.
	RecoveryInterval time.Duration
}

// Store is the embedded event store. It implements eventstore.Store and
// eventstore.SnapshotStore and is safe for concurrent use.
type Store struct {
	dir       string
	fs        vfs.FS
	opts      Options
	lock      *os.File
	clock     func() time.Time
	log       *slog.Logger
	writeOpts *pebble.WriteOptions
	maxGroup  int

	reqs       chan *appendReq
	closing    chan struct{}
	writerDone chan struct{}

	// closeMu is held shared by readers of db, exclusively by Close and by
	// the writer while it reopens the database after a failure. db is nil
	// only while a reopen has failed.
	closeMu   sync.RWMutex
	db        *pebble.DB
	dbLog     *pebbleLogger
	closed    bool
	closeOnce sync.Once
	closeErr  error

	lastPos  atomic.Uint64 // position of the last committed (acknowledged) event
	notifyMu sync.Mutex
	notifyCh chan struct{} // closed and replaced after every committed group

	failure      atomic.Pointer[error] // engine failure, cleared by a successful reopen
	nextRecovery atomic.Int64          // unix nanos of the next reopen attempt
	recoveries   atomic.Uint64

	commits atomic.Uint64
	appends atomic.Uint64
	events  atomic.Uint64

	// Owned by the writer goroutine.
	heads      map[string]head
	groupHeads map[string]head
	groupFirst map[[16]byte]idLoc // first event ID of every append of the group
	groupEvs   []groupEvent       // events of the group, by position
	groupIdx   []indexEntry       // index entries of the group's appends
	batch      *pebble.Batch
}

var (
	_ eventstore.Store          = (*Store)(nil)
	_ eventstore.AsyncAppender  = (*Store)(nil)
	_ eventstore.Exclusive      = (*Store)(nil)
	_ eventstore.DensePositions = (*Store)(nil)
	_ eventstore.SnapshotStore  = (*Store)(nil)
)

// Open opens (creating if needed) the event store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("eventstore: empty data directory")
	}
	s := &Store{
		dir:        dir,
		fs:         opts.FS,
		opts:       opts,
		clock:      opts.Clock,
		log:        opts.Logger,
		writeOpts:  pebble.Sync,
		maxGroup:   opts.MaxGroup,
		reqs:       make(chan *appendReq, 1024),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		notifyCh:   make(chan struct{}),
		heads:      make(map[string]head),
		groupHeads: make(map[string]head),
		groupFirst: make(map[[16]byte]idLoc),
	}
	if s.fs == nil {
		s.fs = vfs.Default
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if opts.NoSync {
		s.writeOpts = pebble.NoSync
	}
	if s.maxGroup <= 0 {
		s.maxGroup = 512
	}
	if s.opts.SyncDelay == 0 {
		s.opts.SyncDelay = 500 * time.Microsecond
	}
	if s.opts.RecoveryInterval <= 0 {
		s.opts.RecoveryInterval = 500 * time.Millisecond
	}
	if opts.FS == nil {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("eventstore: create data directory %s: %w", dir, err)
		}
		l, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		s.lock = l
	}
	db, lg, last, err := s.openDB(opts.VerifyOnOpen)
	if err != nil {
		_ = unlockDir(s.lock)
		return nil, err
	}
	s.db, s.dbLog = db, lg
	s.lastPos.Store(last)
	s.batch = db.NewBatch()
	go s.writer()
	return s, nil
}

// Close stops the writer (pending appends fail with ErrClosed), ends every
// subscription and closes Pebble.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.writerDone
		s.closeMu.Lock()
		s.closed = true
		s.closeMu.Unlock()
		s.closeErr = s.closeDB()
		if err := unlockDir(s.lock); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

func (s *Store) closeDB() error {
	if s.batch != nil {
		_ = s.batch.Close()
		s.batch = nil
	}
	if s.db == nil {
		return nil
	}
	if err := closePebble(s.db); err != nil {
		if s.failure.Load() != nil {
			return nil // already reported to the appends that failed
		}
		return fmt.Errorf("eventstore: close event store in %s: %w", s.dir, err)
	}
	return nil
}

// acquire takes the read side of closeMu; the caller must RUnlock.
func (s *Store) acquire() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return eventstore.ErrClosed
	}
	if s.db == nil {
		s.closeMu.RUnlock()
		return s.noDB()
	}
	return nil
}

// Ping reports whether the store can accept appends.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.failed(); err != nil {
		return err
	}
	return ctx.Err()
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// DensePositions reports true: positions are 1, 2, 3, … in commit order
// (eventstore.DensePositions).
func (s *Store) DensePositions() bool { return true }

// Exclusive reports true: Pebble locks the directory, so no other process
// appends while the store is open (eventstore.Exclusive).
func (s *Store) Exclusive() bool { return true }
