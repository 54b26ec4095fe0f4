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
package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

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

	groups  atomic.Uint64
	appends atomic.Uint64
	events  atomic.Uint64

	// Owned by the writer goroutine.
	heads      map[string]head
	groupHeads map[string]head
	groupFirst map[[16]byte]idLoc // first event ID of every append of the group
	groupEvs   []groupEvent       // events of the group, by position
	groupIdx   []indexEntry       // index entries of the group's appends
	batch      *pebble.Batch
	kbuf       []byte
}

type head struct {
	version uint64
	pos     uint64
}

type idLoc struct {
	pos, version uint64
}

// groupEvent is an event written in the current (uncommitted) group.
type groupEvent struct {
	stream  string
	version uint64
	id      [16]byte
}

// indexEntry is one append's stream chunk and first-ID entries, written to
// the batch after the group's records (keys of one kind together make
// Pebble's memtable inserts cheap).
type indexEntry struct {
	stream       string
	firstVersion uint64
	firstPos     uint64
	count        uint64
	firstID      [16]byte
}

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	ids      [][16]byte
	after    *appendReq // fail unless this one was committed (cleared once checked)
	accepted bool       // wrote events into the current group
	usedGrp  bool       // outcome depends on earlier appends of the current group

	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

var (
	_ eventstore.Store          = (*Store)(nil)
	_ eventstore.AsyncAppender  = (*Store)(nil)
	_ eventstore.Exclusive      = (*Store)(nil)
	_ eventstore.DensePositions = (*Store)(nil)
	_ eventstore.SnapshotStore  = (*Store)(nil)
)

const maxHeadCache = 1 << 20

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

// pebbleOptions are the engine settings. The store writes mostly ordered
// keys (the global log and one stream-chunk key per append), so it favours
// large memtables and blocks (fewer flushes, cheaper scans).
func (s *Store) pebbleOptions(cache *pebble.Cache, lg *pebbleLogger) *pebble.Options {
	po := &pebble.Options{
		Cache:                       cache,
		FS:                          walFS{s.fs},
		Logger:                      lg,
		FormatMajorVersion:          pebble.FormatNewest,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       64,
		LBaseMaxBytes:               256 << 20,
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].BlockSize = 32 << 10
		// MinLZ on amd64: faster to decompress than Snappy, as small.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
	}
	return po
}

// openDB opens Pebble in s.dir and checks it (see checkOnOpen).
func (s *Store) openDB(full bool) (*pebble.DB, *pebbleLogger, uint64, error) {
	cacheSize := s.opts.CacheSize
	if cacheSize <= 0 {
		cacheSize = 128 << 20
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	lg := &pebbleLogger{s: s}
	dir := s.dir
	db, err := pebble.Open(dir, s.pebbleOptions(cache, lg))
	if err != nil {
		if pebble.IsCorruptionError(err) {
			return nil, nil, 0, fmt.Errorf("eventstore: event store in %s is corrupt: %v; restore it from a backup", dir, err)
		}
		if s.lock == nil || isLockError(err) {
			return nil, nil, 0, fmt.Errorf("eventstore: open event store in %s (is it in use by another seatledger process?): %w", dir, err)
		}
		return nil, nil, 0, fmt.Errorf("eventstore: open event store in %s: %w", dir, err)
	}
	last, err := checkOnOpen(db, full)
	if err != nil {
		lg.retired.Store(true)
		_ = closePebble(db)
		return nil, nil, 0, fmt.Errorf("eventstore: event store in %s is corrupt: %w; restore it from a backup", dir, err)
	}
	if last == 0 {
		// The first WAL of a new Pebble database is created before the
		// format version that adds sync offsets to WAL chunks takes
		// effect. Without them Pebble cannot tell mid-log corruption from a
		// torn tail and would silently drop the rest of the log; rotating
		// the WAL now makes every WAL we write carry them.
		if err := db.Flush(); err != nil {
			lg.retired.Store(true)
			_ = closePebble(db)
			return nil, nil, 0, fmt.Errorf("eventstore: open event store in %s: %w", dir, err)
		}
	}
	return db, lg, last, nil
}

// closePebble closes db; after a failed commit Pebble may be in a state
// where Close panics.
func closePebble(db *pebble.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble close: %v", r)
		}
	}()
	return db.Close()
}

func isLockError(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "lock")
}

// checkOnOpen checks that the meta record agrees with the end of the global
// log and that the last records decode with valid checksums and indexes.
func checkOnOpen(db *pebble.DB, full bool) (uint64, error) {
	var meta uint64
	v, closer, err := db.Get(metaLastKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return 0, err
	default:
		if len(v) != 8 {
			closer.Close()
			return 0, fmt.Errorf("meta record has %d bytes", len(v))
		}
		meta = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGlobal}, UpperBound: []byte{prefixGlobal + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var last uint64
	if it.Last() {
		last = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := it.Error(); err != nil {
		return 0, err
	}
	if last != meta {
		return 0, fmt.Errorf("the global log ends at position %d but the last committed position is %d", last, meta)
	}
	from := uint64(1)
	if !full && last > 1000 {
		from = last - 999
	}
	if last > 0 {
		if err := verifyRange(context.Background(), db, from, last); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// Verify checks the whole store: the global log is contiguous from 1, every
// record decodes with a valid checksum, every event is covered by its
// stream's index and the first event of every append by the event-ID index.
// It reads everything; use it for tests and offline checks.
func (s *Store) Verify(ctx context.Context) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	last := s.lastPos.Load()
	if last == 0 {
		return nil
	}
	return verifyRange(ctx, s.db, 1, last)
}

func verifyRange(ctx context.Context, db *pebble.DB, from, to uint64) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: globalKey(from), UpperBound: globalKey(to + 1)})
	if err != nil {
		return err
	}
	defer it.Close()
	sit, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixStream}, UpperBound: []byte{prefixStream + 1}})
	if err != nil {
		return err
	}
	defer sit.Close()
	want := from
	var kbuf []byte
	var cur chunk // the stream chunk of the previous record
	var curStream []byte
	for ok := it.First(); ok; ok = it.Next() {
		if want%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		pos := binary.BigEndian.Uint64(it.Key()[1:])
		if pos != want {
			return fmt.Errorf("the global log has a gap: position %d is missing", want)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		r, err := decodeRecord(pos, v)
		if err != nil {
			return err
		}
		if !(bytes.Equal(curStream, r.stream) && cur.covers(r.version, pos)) {
			// A new append starts here: its stream chunk must cover it.
			kbuf = appendStreamKey(kbuf[:0], prefixStream, string(r.stream), r.version+1)
			found := false
			if sit.SeekLT(kbuf) {
				p := len(r.stream) + 2
				if k := sit.Key(); len(k) == p+8 && k[0] == prefixStream && bytes.Equal(k[1:p-1], r.stream) && k[p-1] == 0 {
					c, err := decodeChunk(binary.BigEndian.Uint64(k[p:]), sit.Value())
					if err != nil {
						return err
					}
					if c.covers(r.version, pos) {
						cur, found = c, true
						curStream = append(curStream[:0], r.stream...)
					}
				}
			}
			if err := sit.Error(); err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("stream index of %q version %d is missing or does not point at position %d", r.stream, r.version, pos)
			}
			if r.version == cur.firstVersion {
				// The ID index must exist; it may point at a later
				// event that reused the ID (IDs are only checked for
				// uniqueness on Any appends).
				kbuf = append(append(kbuf[:0], prefixID), r.id[:]...)
				if err := expectIndex(db, kbuf, pos, fmt.Sprintf("event ID index of position %d", pos)); err != nil {
					return err
				}
			}
		}
		want++
	}
	if err := it.Error(); err != nil {
		return err
	}
	if want != to+1 {
		return fmt.Errorf("the global log has a gap: position %d is missing", want)
	}
	return nil
}

func expectIndex(db *pebble.DB, key []byte, pos uint64, what string) error {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%s is missing", what)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) < 8 || binary.BigEndian.Uint64(v) < pos {
		return fmt.Errorf("%s does not point at position %d", what, pos)
	}
	return nil
}

// Stats counts the work of the group-commit writer since Open.
type Stats struct {
	Commits uint64 // committed groups (one fsync each)
	Appends uint64 // successful appends that wrote events
	Events  uint64 // events written
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.groups.Load(), Appends: s.appends.Load(), Events: s.events.Load()}
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) fail(err error) {
	if s.failure.CompareAndSwap(nil, &err) {
		s.nextRecovery.Store(time.Now().Add(s.opts.RecoveryInterval).UnixNano())
	}
}

func (s *Store) failed() error {
	if p := s.failure.Load(); p != nil {
		return fmt.Errorf("%w: event store in %s failed (%v); it accepts no appends until its disk works again (it retries every %v)", eventstore.ErrUnavailable, s.dir, *p, s.opts.RecoveryInterval)
	}
	return nil
}

// Recoveries counts the reopens of the database after failed commits.
func (s *Store) Recoveries() uint64 { return s.recoveries.Load() }

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

var errNoDB = errors.New("the database could not be reopened yet")

func (s *Store) noDB() error {
	if err := s.failed(); err != nil {
		return fmt.Errorf("%w (%w)", err, errNoDB)
	}
	return fmt.Errorf("%w: event store in %s: %w", eventstore.ErrUnavailable, s.dir, errNoDB)
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

func (s *Store) notify() {
	s.notifyMu.Lock()
	close(s.notifyCh)
	s.notifyCh = make(chan struct{})
	s.notifyMu.Unlock()
}

func (s *Store) waitCh() chan struct{} {
	s.notifyMu.Lock()
	ch := s.notifyCh
	s.notifyMu.Unlock()
	return ch
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

// DensePositions reports true: positions are 1, 2, 3, … in commit order
// (eventstore.DensePositions).
func (s *Store) DensePositions() bool { return true }

// Exclusive reports true: Pebble locks the directory, so no other process
// appends while the store is open (eventstore.Exclusive).
func (s *Store) Exclusive() bool { return true }

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
		r.ids = make([][16]byte, len(events))
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

// writer is the single goroutine that commits appends.
func (s *Store) writer() {
	defer close(s.writerDone)
	group := make([]*appendReq, 0, s.maxGroup)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var lastStart time.Time // when the last commit began
	lastSize := 0           // appends of the last commit
	for {
		var retryC <-chan time.Time
		if s.failure.Load() != nil {
			// Try to recover in the background too, so that Ping turns
			// healthy again without appends.
			retry.Reset(time.Until(time.Unix(0, s.nextRecovery.Load())))
			retryC = retry.C
		}
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-retryC:
			s.recover()
			continue
		case <-s.closing:
			s.drainClosed()
			return
		}
		retry.Stop()
		group = append(group[:0], first)
	fill:
		for len(group) < s.maxGroup {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break fill
			}
		}
		// Under concurrency, wait for as many appends as the last commit
		// carried, until SyncDelay after it began (Options.SyncDelay).
		if wait := time.Until(lastStart.Add(s.opts.SyncDelay)); lastSize > 1 && wait > 0 && len(group) < lastSize {
			linger.Reset(wait)
		gather:
			for len(group) < lastSize {
				select {
				case r := <-s.reqs:
					group = append(group, r)
				case <-linger.C:
					break gather
				case <-s.closing: // commit what was taken; the loop then drains
					break gather
				}
			}
			linger.Stop()
		}
		if s.failure.Load() != nil && time.Now().UnixNano() >= s.nextRecovery.Load() {
			s.recover()
		}
		lastSize = len(group)
		lastStart = time.Now()
		s.commitGroup(group)
		for i := range group {
			group[i] = nil
		}
	}
}

func (s *Store) drainClosed() {
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

// recover runs on the writer goroutine after a failed commit: when the disk
// takes writes again it closes Pebble (whose write-ahead log cannot be
// trusted after a failed write), opens the directory again, checks it, makes
// what it recovered durable and resumes appends. Reads wait while the
// database is swapped; subscriptions carry on from their position.
func (s *Store) recover() {
	s.nextRecovery.Store(time.Now().Add(s.opts.RecoveryInterval).UnixNano())
	if s.db != nil {
		// Do not give up a working database for reads while the disk is
		// still failing.
		if err := s.probeDisk(); err != nil {
			s.log.Debug("eventstore: disk still failing", "dir", s.dir, "err", err)
			return
		}
	}
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return
	}
	old := s.lastPos.Load()
	if s.db != nil {
		if s.batch != nil {
			_ = s.batch.Close()
			s.batch = nil
		}
		s.dbLog.retired.Store(true)
		if err := closePebble(s.db); err != nil {
			s.log.Debug("eventstore: closing the failed database", "dir", s.dir, "err", err)
		}
		s.db, s.dbLog = nil, nil
	}
	db, lg, last, err := s.openDB(false)
	if err == nil && last < old {
		err = fmt.Errorf("eventstore: event store in %s lost acknowledged events: the log ends at %d, %d were acknowledged", s.dir, last, old)
		lg.retired.Store(true)
		_ = closePebble(db)
	}
	if err == nil {
		// Check that a synced commit works (before anything that rotates
		// the write-ahead log: Pebble panics when it cannot close a WAL),
		// then flush what the reopen recovered from the log (events of
		// the failed commit that reached it) to tables, so that they
		// cannot vanish behind later events.
		var pb [8]byte
		binary.BigEndian.PutUint64(pb[:], last)
		err = db.Set(metaLastKey, pb[:], pebble.Sync)
		if err == nil && lg.fatal.Load() != nil {
			err = *lg.fatal.Load()
		}
		if err == nil {
			err = db.Flush()
		}
		if err != nil {
			lg.retired.Store(true)
			_ = closePebble(db)
		}
	}
	if err != nil {
		s.log.Warn("eventstore: reopening the event store after a failed commit failed; retrying", "dir", s.dir, "err", err, "in", s.opts.RecoveryInterval)
		return
	}
	s.db, s.dbLog = db, lg
	s.batch = db.NewBatch()
	clear(s.heads)
	s.lastPos.Store(last)
	s.failure.Store(nil)
	s.recoveries.Add(1)
	s.log.Warn("eventstore: the event store recovered from a failed commit and accepts appends again", "dir", s.dir, "acknowledged", old, "log", last)
	s.notify()
}

// probeDisk checks that the data directory takes a synced 1 MiB write.
func (s *Store) probeDisk() error {
	name := s.fs.PathJoin(s.dir, "seatledger-probe.tmp")
	f, err := s.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for i := 0; i < 16 && err == nil; i++ {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := s.fs.Remove(name); err == nil {
		err = rerr
	}
	return err
}

func (s *Store) commitGroup(group []*appendReq) {
	clear(s.groupHeads)
	clear(s.groupFirst)
	s.groupEvs = s.groupEvs[:0]
	s.groupIdx = s.groupIdx[:0]
	next := s.lastPos.Load()
	now := s.clock().UnixNano()
	written := 0
	for _, r := range group {
		r.accepted, r.usedGrp = false, false
		a := r.after
		r.after = nil // the chain is checked once; keep no history alive
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if err := s.failed(); err != nil {
			r.err = err
			continue
		}
		if a != nil && a.err != nil {
			// Checked after failed(): head may read the database, which
			// is closed while a recovery is pending.
			cur, _, err := s.head(r.stream)
			if err == nil {
				err = &eventstore.ConflictError{Stream: r.stream, Expected: r.expected, Actual: cur.version}
			}
			r.err = err
			continue
		}
		r.res, r.err = s.prepare(r, &next, now)
		if r.err == nil && r.accepted {
			written++
		}
	}
	if written > 0 {
		err := s.writeIndexes(next)
		if err == nil {
			err = s.batch.Commit(s.writeOpts)
		}
		if err == nil {
			// Pebble reports a failed WAL write or sync through
			// Logger.Fatalf (see pebbleLogger) and then returns nil.
			if p := s.dbLog.fatal.Load(); p != nil {
				err = *p
			}
		}
		if err != nil {
			s.fail(err)
			s.log.Error("eventstore: commit failed; the store refuses appends until its disk works again", "dir", s.dir, "err", err, "retry", s.opts.RecoveryInterval)
			// Pebble must not reuse a batch whose commit failed.
			s.batch = nil
			for _, r := range group {
				if r.accepted || r.usedGrp {
					r.accepted = false
					r.res = eventstore.AppendResult{}
					r.err = fmt.Errorf("%w: append to %q not committed: %v", eventstore.ErrUnavailable, r.stream, err)
				}
			}
		} else {
			if len(s.heads)+len(s.groupHeads) > maxHeadCache {
				clear(s.heads)
			}
			for k, h := range s.groupHeads {
				s.heads[k] = h
			}
			s.lastPos.Store(next)
			s.notify()
			s.groups.Add(1)
			s.appends.Add(uint64(written))
			s.batch.Reset()
		}
	}
	if s.batch == nil && s.db != nil {
		s.batch = s.db.NewBatch()
	}
	for _, r := range group {
		if r.accepted {
			s.events.Add(uint64(len(r.events)))
		}
		close(r.done)
	}
}

// writeIndexes adds the group's stream chunks, first-ID entries and the
// meta record to the batch, after its records, each kind in key order.
func (s *Store) writeIndexes(last uint64) error {
	idx := s.groupIdx
	if len(idx) > 1 {
		slices.SortFunc(idx, func(a, b indexEntry) int {
			if c := strings.Compare(a.stream, b.stream); c != 0 {
				return c
			}
			return cmp.Compare(a.firstVersion, b.firstVersion)
		})
	}
	for _, e := range idx {
		op := s.batch.SetDeferred(len(e.stream)+10, chunkValueLen)
		appendStreamKey(op.Key[:0], prefixStream, e.stream, e.firstVersion)
		putChunkValue(op.Value, e.firstPos, e.count)
		if err := op.Finish(); err != nil {
			return err
		}
	}
	if len(idx) > 1 {
		slices.SortFunc(idx, func(a, b indexEntry) int { return bytes.Compare(a.firstID[:], b.firstID[:]) })
	}
	for _, e := range idx {
		op := s.batch.SetDeferred(17, 16)
		op.Key[0] = prefixID
		copy(op.Key[1:], e.firstID[:])
		binary.BigEndian.PutUint64(op.Value, e.firstPos)
		binary.BigEndian.PutUint64(op.Value[8:], e.firstVersion)
		if err := op.Finish(); err != nil {
			return err
		}
	}
	var pb [8]byte
	binary.BigEndian.PutUint64(pb[:], last)
	return s.batch.Set(metaLastKey, pb[:], nil)
}

// prepare checks one append against the store (as it will be once the
// earlier appends of the group are committed) and adds its events to the
// batch. It sets r.accepted when it wrote something.
func (s *Store) prepare(r *appendReq, next *uint64, now int64) (eventstore.AppendResult, error) {
	cur, inGroup, err := s.head(r.stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	r.usedGrp = inGroup
	conflict := func() error {
		return &eventstore.ConflictError{Stream: r.stream, Expected: r.expected, Actual: cur.version}
	}
	if r.expected != eventstore.Any && uint64(r.expected) == cur.version {
		// The stream is where the caller expects it, so this cannot be a
		// retry of an append that succeeded (that would have moved the
		// stream past r.expected): no need to look the IDs up.
		if len(r.events) == 0 {
			return eventstore.AppendResult{Version: cur.version, Position: eventstore.Position(cur.pos)}, nil
		}
		return s.write(r, cur, next, now)
	}
	if len(r.events) > 0 {
		// A retry of an append that succeeded has the same first event,
		// and the event-ID index holds the first event of every append.
		loc, ok, err := s.lookupID(r.ids[0])
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if ok {
			same, err := s.sameAppend(r, loc)
			if err != nil {
				return eventstore.AppendResult{}, err
			}
			if same {
				n := uint64(len(r.ids)) - 1
				return eventstore.AppendResult{Version: loc.version + n, Position: eventstore.Position(loc.pos + n)}, nil
			}
			return eventstore.AppendResult{}, conflict()
		}
		if r.expected == eventstore.Any {
			// Refuse IDs that start another append.
			for _, id := range r.ids[1:] {
				if _, ok, err := s.lookupID(id); err != nil {
					return eventstore.AppendResult{}, err
				} else if ok {
					return eventstore.AppendResult{}, conflict()
				}
			}
		}
	}
	if r.expected != eventstore.Any && uint64(r.expected) != cur.version {
		return eventstore.AppendResult{}, conflict()
	}
	if len(r.events) == 0 {
		return eventstore.AppendResult{Version: cur.version, Position: eventstore.Position(cur.pos)}, nil
	}
	return s.write(r, cur, next, now)
}

// write adds r's records to the batch after cur; their index entries are
// added by writeIndexes.
func (s *Store) write(r *appendReq, cur head, next *uint64, now int64) (eventstore.AppendResult, error) {
	version := cur.version
	pos := *next
	for i, e := range r.events {
		pos++
		version++
		op := s.batch.SetDeferred(9, recordLen(version, r.stream, e.Type, e.Data))
		op.Key[0] = prefixGlobal
		binary.BigEndian.PutUint64(op.Key[1:], pos)
		if rec := encodeRecord(op.Value[:0:len(op.Value)], pos, version, now, r.ids[i], r.stream, e.Type, e.Data); len(rec) != len(op.Value) || &rec[0] != &op.Value[0] {
			panic("eventstore: recordLen disagrees with encodeRecord")
		}
		if err := op.Finish(); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
		}
		s.groupEvs = append(s.groupEvs, groupEvent{stream: r.stream, version: version, id: r.ids[i]})
	}
	s.groupIdx = append(s.groupIdx, indexEntry{stream: r.stream, firstVersion: cur.version + 1, firstPos: *next + 1, count: uint64(len(r.events)), firstID: r.ids[0]})
	s.groupFirst[r.ids[0]] = idLoc{pos: *next + 1, version: cur.version + 1}
	*next = pos
	s.groupHeads[r.stream] = head{version: version, pos: pos}
	r.accepted = true
	return eventstore.AppendResult{Version: version, Position: eventstore.Position(pos)}, nil
}

// sameAppend reports whether r's events are already stored from loc on:
// same stream, consecutive versions and positions, starting right after
// r.expected (or anywhere for Any).
func (s *Store) sameAppend(r *appendReq, loc idLoc) (bool, error) {
	if r.expected != eventstore.Any && loc.version != uint64(r.expected)+1 {
		return false, nil
	}
	committed := s.lastPos.Load()
	var kbuf [9]byte
	for i := range r.ids {
		pos, version := loc.pos+uint64(i), loc.version+uint64(i)
		if pos > committed {
			j := pos - committed - 1
			if j >= uint64(len(s.groupEvs)) {
				return false, nil
			}
			r.usedGrp = true
			g := s.groupEvs[j]
			if g.stream != r.stream || g.version != version || g.id != r.ids[i] {
				return false, nil
			}
			continue
		}
		v, closer, err := s.db.Get(appendGlobalKey(kbuf[:0], pos))
		if errors.Is(err, pebble.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
		}
		rec, err := decodeRecord(pos, v)
		same := err == nil && rec.version == version && rec.id == r.ids[i] && string(rec.stream) == r.stream
		closer.Close()
		if err != nil {
			return false, fmt.Errorf("eventstore: event store in %s is corrupt: %w", s.dir, err)
		}
		if !same {
			return false, nil
		}
	}
	return true, nil
}

// lookupID finds the event that starts an append by its ID.
func (s *Store) lookupID(id [16]byte) (idLoc, bool, error) {
	if l, ok := s.groupFirst[id]; ok {
		return l, true, nil
	}
	var k [17]byte
	k[0] = prefixID
	copy(k[1:], id[:])
	v, closer, err := s.db.Get(k[:])
	if errors.Is(err, pebble.ErrNotFound) {
		return idLoc{}, false, nil
	}
	if err != nil {
		return idLoc{}, false, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return idLoc{}, false, fmt.Errorf("eventstore: event store in %s is corrupt: event ID index entry has %d bytes", s.dir, len(v))
	}
	return idLoc{pos: binary.BigEndian.Uint64(v), version: binary.BigEndian.Uint64(v[8:])}, true, nil
}

// head returns the stream's version and last position as the writer sees it
// (including appends earlier in the current group).
func (s *Store) head(stream string) (h head, inGroup bool, err error) {
	if h, ok := s.groupHeads[stream]; ok {
		return h, true, nil
	}
	if h, ok := s.heads[stream]; ok {
		return h, false, nil
	}
	h, err = lastOfStream(s.db, s.dir, stream, math.MaxUint64)
	if err != nil {
		return head{}, false, err
	}
	if len(s.heads) >= maxHeadCache {
		clear(s.heads)
	}
	s.heads[stream] = h
	return h, false, nil
}

// lastOfStream reads the stream index for the stream's last event with a
// global position <= maxPos.
func lastOfStream(db *pebble.DB, dir, stream string, maxPos uint64) (head, error) {
	p := streamPrefix(prefixStream, stream)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return head{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
	}
	defer it.Close()
	for ok := it.Last(); ok; ok = it.Prev() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return head{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
		}
		if len(k) != len(p)+8 {
			return head{}, fmt.Errorf("eventstore: event store in %s is corrupt: bad stream index entry for %q", dir, stream)
		}
		c, err := decodeChunk(binary.BigEndian.Uint64(k[len(p):]), v)
		if err != nil {
			return head{}, fmt.Errorf("eventstore: event store in %s is corrupt: stream index of %q: %w", dir, stream, err)
		}
		if c.firstPos <= maxPos {
			n := min(c.count, maxPos-c.firstPos+1)
			return head{version: c.firstVersion + n - 1, pos: c.firstPos + n - 1}, nil
		}
	}
	if err := it.Error(); err != nil {
		return head{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
	}
	return head{}, nil
}

// pebbleLogger routes one database's log lines to slog. Pebble calls Fatalf
// when a commit fails (for instance a WAL fsync on a full disk) and expects
// the process to exit; instead the failure is recorded, the store refuses
// appends until it has reopened the database, and the failing appends get
// ErrUnavailable.
type pebbleLogger struct {
	s       *Store
	fatal   atomic.Pointer[error]
	retired atomic.Bool // the database was closed (or replaced)
}

func (l *pebbleLogger) Infof(format string, args ...any) {
	l.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l *pebbleLogger) Errorf(format string, args ...any) {
	l.s.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l *pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.s.log.Error(msg, "component", "pebble", "fatal", true)
	err := errors.New(msg)
	l.fatal.CompareAndSwap(nil, &err)
	if !l.retired.Load() {
		l.s.fail(err)
	}
}
