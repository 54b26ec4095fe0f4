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
// eventstore.ErrUnavailable, nothing in memory advances, and the store stops
// accepting appends (they fail fast with ErrUnavailable, Ping too) because
// Pebble's write-ahead log cannot be trusted after a failed write. Reads keep
// working and never show the unacknowledged events. Restart the process (or
// Close and Open the store again) once the disk is fixed; events whose append
// failed may or may not be present then, which is why appends are idempotent
// by event ID.
package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
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
	// CacheSize is Pebble's block cache in bytes (default 128 MiB).
	CacheSize int64
}

// Store is the embedded event store. It implements eventstore.Store and
// eventstore.SnapshotStore and is safe for concurrent use.
type Store struct {
	dir       string
	db        *pebble.DB
	lock      *os.File
	clock     func() time.Time
	log       *slog.Logger
	writeOpts *pebble.WriteOptions
	maxGroup  int

	reqs       chan *appendReq
	closing    chan struct{}
	writerDone chan struct{}

	closeMu   sync.RWMutex // held shared by readers of db, exclusively by Close
	closed    bool
	closeOnce sync.Once
	closeErr  error

	lastPos  atomic.Uint64 // position of the last committed (acknowledged) event
	notifyMu sync.Mutex
	notifyCh chan struct{} // closed and replaced after every committed group

	failure atomic.Pointer[error] // sticky engine failure

	groups  atomic.Uint64
	appends atomic.Uint64
	events  atomic.Uint64

	// Owned by the writer goroutine.
	heads      map[string]head
	groupHeads map[string]head
	groupIDs   map[[16]byte]idLoc
	batch      *pebble.Batch
	scratch    []byte
}

type head struct {
	version uint64
	pos     uint64
}

type idLoc struct {
	pos, version uint64
	stream       string // known for events of the current group only
}

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	ids      [][16]byte
	accepted bool // wrote events into the current group
	usedGrp  bool // outcome depends on earlier appends of the current group

	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

var (
	_ eventstore.Store         = (*Store)(nil)
	_ eventstore.SnapshotStore = (*Store)(nil)
)

const maxHeadCache = 1 << 20

// Open opens (creating if needed) the event store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("eventstore: empty data directory")
	}
	s := &Store{
		dir:        dir,
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
		groupIDs:   make(map[[16]byte]idLoc),
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
	cacheSize := opts.CacheSize
	if cacheSize <= 0 {
		cacheSize = 128 << 20
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	po := &pebble.Options{
		Cache:              cache,
		FS:                 opts.FS,
		Logger:             pebbleLogger{s},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       64 << 20,
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		_ = unlockDir(s.lock)
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("eventstore: event store in %s is corrupt: %v; restore it from a backup", dir, err)
		}
		if s.lock == nil || isLockError(err) {
			return nil, fmt.Errorf("eventstore: open event store in %s (is it in use by another seatledger process?): %w", dir, err)
		}
		return nil, fmt.Errorf("eventstore: open event store in %s: %w", dir, err)
	}
	s.db = db
	last, err := s.checkOnOpen(opts.VerifyOnOpen)
	if err != nil {
		_ = db.Close()
		_ = unlockDir(s.lock)
		return nil, fmt.Errorf("eventstore: event store in %s is corrupt: %w; restore it from a backup", dir, err)
	}
	if last == 0 {
		// The first WAL of a new Pebble database is created before the
		// format version that adds sync offsets to WAL chunks takes
		// effect. Without them Pebble cannot tell mid-log corruption from a
		// torn tail and would silently drop the rest of the log; rotating
		// the WAL now makes every WAL we write carry them.
		if err := db.Flush(); err != nil {
			_ = db.Close()
			_ = unlockDir(s.lock)
			return nil, fmt.Errorf("eventstore: open event store in %s: %w", dir, err)
		}
	}
	s.lastPos.Store(last)
	s.batch = db.NewBatch()
	go s.writer()
	return s, nil
}

func isLockError(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "lock")
}

// checkOnOpen checks that the meta record agrees with the end of the global
// log and that the last records decode with valid checksums and indexes.
func (s *Store) checkOnOpen(full bool) (uint64, error) {
	var meta uint64
	v, closer, err := s.db.Get(metaLastKey)
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
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGlobal}, UpperBound: []byte{prefixGlobal + 1}})
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
		if err := s.verifyRange(context.Background(), from, last); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// Verify checks the whole store: the global log is contiguous from 1, every
// record decodes with a valid checksum, and the stream and event-ID indexes
// point at it. It reads everything; use it for tests and offline checks.
func (s *Store) Verify(ctx context.Context) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	last := s.lastPos.Load()
	if last == 0 {
		return nil
	}
	return s.verifyRange(ctx, 1, last)
}

func (s *Store) verifyRange(ctx context.Context, from, to uint64) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: globalKey(from), UpperBound: globalKey(to + 1)})
	if err != nil {
		return err
	}
	defer it.Close()
	want := from
	var kbuf []byte
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
		kbuf = appendStreamKey(kbuf[:0], prefixStream, string(r.stream), r.version)
		if err := s.expectIndex(kbuf, pos, true, fmt.Sprintf("stream index of %q version %d", r.stream, r.version)); err != nil {
			return err
		}
		kbuf = append(append(kbuf[:0], prefixID), r.id[:]...)
		// The ID index must exist; it may point at a later event that
		// reused the ID (IDs are only checked for uniqueness on Any
		// appends and on conflicts).
		if err := s.expectIndex(kbuf, pos, false, fmt.Sprintf("event ID index of position %d", pos)); err != nil {
			return err
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

func (s *Store) expectIndex(key []byte, pos uint64, exact bool, what string) error {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%s is missing", what)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) < 8 || (exact && binary.BigEndian.Uint64(v) != pos) || binary.BigEndian.Uint64(v) < pos {
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
	s.failure.CompareAndSwap(nil, &err)
}

func (s *Store) failed() error {
	if p := s.failure.Load(); p != nil {
		return fmt.Errorf("%w: event store in %s failed and accepts no more appends until restarted: %v", eventstore.ErrUnavailable, s.dir, *p)
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

func (s *Store) closeDB() (err error) {
	// After a failed commit Pebble may be in a state where Close panics.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("eventstore: close event store in %s: %v", s.dir, r)
		}
	}()
	if s.batch != nil {
		_ = s.batch.Close()
	}
	if err := s.db.Close(); err != nil {
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
	if err := validStream(stream); err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected < eventstore.Any {
		return eventstore.AppendResult{}, fmt.Errorf("eventstore: invalid expected version %d", int64(expected))
	}
	r := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan struct{})}
	if len(events) > 0 {
		r.ids = make([][16]byte, len(events))
		seen := make(map[[16]byte]struct{}, len(events))
		for i, e := range events {
			id, err := parseID(e.ID)
			if err != nil {
				return eventstore.AppendResult{}, err
			}
			if _, dup := seen[id]; dup {
				return eventstore.AppendResult{}, fmt.Errorf("eventstore: event ID %s appears twice in one append", e.ID)
			}
			seen[id] = struct{}{}
			r.ids[i] = id
		}
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	select {
	case <-s.closing:
		return eventstore.AppendResult{}, eventstore.ErrClosed
	default:
	}
	if err := s.failed(); err != nil {
		return eventstore.AppendResult{}, err
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.closing:
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

// writer is the single goroutine that commits appends.
func (s *Store) writer() {
	defer close(s.writerDone)
	group := make([]*appendReq, 0, s.maxGroup)
	for {
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.closing:
			s.drainClosed()
			return
		}
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

func (s *Store) commitGroup(group []*appendReq) {
	clear(s.groupHeads)
	clear(s.groupIDs)
	next := s.lastPos.Load()
	now := s.clock().UnixNano()
	written := 0
	for _, r := range group {
		r.accepted, r.usedGrp = false, false
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if err := s.failed(); err != nil {
			r.err = err
			continue
		}
		r.res, r.err = s.prepare(r, &next, now)
		if r.err == nil && r.accepted {
			written++
		}
	}
	if written > 0 {
		var pb [8]byte
		binary.BigEndian.PutUint64(pb[:], next)
		err := s.batch.Set(metaLastKey, pb[:], nil)
		if err == nil {
			err = s.batch.Commit(s.writeOpts)
		}
		if err == nil {
			// Pebble reports a failed WAL write or sync through
			// Logger.Fatalf (see pebbleLogger) and then returns nil.
			if p := s.failure.Load(); p != nil {
				err = *p
			}
		}
		if err != nil {
			s.fail(err)
			s.log.Error("eventstore: commit failed; the store accepts no more appends until restarted", "dir", s.dir, "err", err)
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
	if s.batch == nil {
		s.batch = s.db.NewBatch()
	}
	for _, r := range group {
		if r.accepted {
			s.events.Add(uint64(len(r.events)))
		}
		close(r.done)
	}
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
	var locs []idLoc
	found := 0
	for i, id := range r.ids {
		loc, ok, err := s.lookupID(id)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if ok {
			if loc.stream != "" {
				r.usedGrp = true
			}
			if locs == nil {
				locs = make([]idLoc, len(r.ids))
			}
			locs[i] = loc
			found++
		}
	}
	if found > 0 {
		if found == len(r.ids) {
			if ok, err := s.sameAppend(r, locs); err != nil {
				return eventstore.AppendResult{}, err
			} else if ok {
				last := locs[len(locs)-1]
				return eventstore.AppendResult{Version: last.version, Position: eventstore.Position(last.pos)}, nil
			}
		}
		return eventstore.AppendResult{}, conflict()
	}
	if r.expected != eventstore.Any && uint64(r.expected) != cur.version {
		return eventstore.AppendResult{}, conflict()
	}
	if len(r.events) == 0 {
		return eventstore.AppendResult{Version: cur.version, Position: eventstore.Position(cur.pos)}, nil
	}
	return s.write(r, cur, next, now)
}

// write adds r's events to the batch after cur.
func (s *Store) write(r *appendReq, cur head, next *uint64, now int64) (eventstore.AppendResult, error) {
	var kbuf [17]byte
	var vbuf [16]byte
	skey := make([]byte, 0, len(r.stream)+10)
	version := cur.version
	pos := *next
	for i, e := range r.events {
		pos++
		version++
		s.scratch = encodeRecord(s.scratch[:0], pos, version, now, r.ids[i], r.stream, e.Type, e.Data)
		binary.BigEndian.PutUint64(vbuf[:8], pos)
		binary.BigEndian.PutUint64(vbuf[8:], version)
		gk := appendGlobalKey(kbuf[:0], pos)
		if err := s.batch.Set(gk, s.scratch, nil); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
		}
		skey = appendStreamKey(skey[:0], prefixStream, r.stream, version)
		if err := s.batch.Set(skey, vbuf[:8], nil); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
		}
		kbuf[0] = prefixID
		copy(kbuf[1:], r.ids[i][:])
		if err := s.batch.Set(kbuf[:], vbuf[:], nil); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
		}
		s.groupIDs[r.ids[i]] = idLoc{pos: pos, version: version, stream: r.stream}
	}
	*next = pos
	s.groupHeads[r.stream] = head{version: version, pos: pos}
	r.accepted = true
	return eventstore.AppendResult{Version: version, Position: eventstore.Position(pos)}, nil
}

// sameAppend reports whether the already stored events locs are exactly r's
// events at the place r asks for: same stream, consecutive versions, starting
// right after r.expected (or anywhere for Any).
func (s *Store) sameAppend(r *appendReq, locs []idLoc) (bool, error) {
	first := locs[0].version
	if r.expected != eventstore.Any && first != uint64(r.expected)+1 {
		return false, nil
	}
	for i, l := range locs {
		if l.version != first+uint64(i) {
			return false, nil
		}
		if l.stream != "" {
			if l.stream != r.stream {
				return false, nil
			}
			continue
		}
		v, closer, err := s.db.Get(streamKey(prefixStream, r.stream, l.version))
		if errors.Is(err, pebble.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
		}
		same := len(v) == 8 && binary.BigEndian.Uint64(v) == l.pos
		closer.Close()
		if !same {
			return false, nil
		}
	}
	return true, nil
}

func (s *Store) lookupID(id [16]byte) (idLoc, bool, error) {
	if l, ok := s.groupIDs[id]; ok {
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
	h, err = s.lastOfStream(stream, math.MaxUint64)
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
func (s *Store) lastOfStream(stream string, maxPos uint64) (head, error) {
	p := streamPrefix(prefixStream, stream)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
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
		if len(v) != 8 || len(k) != len(p)+8 {
			return head{}, fmt.Errorf("eventstore: event store in %s is corrupt: bad stream index entry for %q", s.dir, stream)
		}
		pos := binary.BigEndian.Uint64(v)
		if pos <= maxPos {
			return head{version: binary.BigEndian.Uint64(k[len(p):]), pos: pos}, nil
		}
	}
	if err := it.Error(); err != nil {
		return head{}, fmt.Errorf("%w: %v", eventstore.ErrUnavailable, err)
	}
	return head{}, nil
}

// pebbleLogger routes Pebble's log lines to slog. Pebble calls Fatalf when a
// commit fails (for instance a WAL fsync on a full disk) and expects the
// process to exit; instead the failure is recorded, the store stops
// accepting appends and the failing appends get ErrUnavailable.
type pebbleLogger struct{ s *Store }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.s.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.s.log.Error(msg, "component", "pebble", "fatal", true)
	l.s.fail(errors.New(msg))
}
