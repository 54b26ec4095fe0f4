package embedded

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// The engine: Pebble's settings, opening one Pebble database in the data
// directory (Open, and again after a failed commit), closing it, and the
// logger through which Pebble reports a failed write.

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
