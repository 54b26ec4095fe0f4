package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/seatledger/seatledger/eventstore"
)

// Disk-failure recovery (the failure model of the package comment): a
// failed commit marks the store failed, appends and Ping answer
// ErrUnavailable, and the writer reopens the database once the disk takes a
// synced write again.

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

var errNoDB = errors.New("the database could not be reopened yet")

func (s *Store) noDB() error {
	if err := s.failed(); err != nil {
		return fmt.Errorf("%w (%w)", err, errNoDB)
	}
	return fmt.Errorf("%w: event store in %s: %w", eventstore.ErrUnavailable, s.dir, errNoDB)
}

// reopenAfterFailure runs on the writer goroutine after a failed commit:
// when the disk takes writes again it closes Pebble (whose write-ahead log
// cannot be trusted after a failed write), opens the directory again,
// checks it, makes what it recovered durable and resumes appends. Reads
// wait while the database is swapped; subscriptions carry on from their
// position.
func (s *Store) reopenAfterFailure() {
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
