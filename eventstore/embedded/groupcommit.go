package embedded

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/seatledger/seatledger/eventstore"
)

// Group commit: the single writer goroutine takes every pending append
// (waiting up to Options.SyncDelay for company under concurrency), stages
// the accepted ones in one Pebble batch, commits it with one fsync and wakes
// the waiting appends and subscriptions.

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

// Stats counts the work of the group-commit writer since Open.
type Stats struct {
	Commits uint64 // committed groups (one fsync each)
	Appends uint64 // successful appends that wrote events
	Events  uint64 // events written
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Appends: s.appends.Load(), Events: s.events.Load()}
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
			s.reopenAfterFailure()
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
			s.reopenAfterFailure()
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

func (s *Store) commitGroup(group []*appendReq) {
	clear(s.groupHeads)
	clear(s.groupFirst)
	s.groupEvs = s.groupEvs[:0]
	s.groupIdx = s.groupIdx[:0]
	next := s.lastPos.Load()
	now := s.clock().UnixNano()
	written := 0
	for _, r := range group {
		r.accepted, r.dependsOnGroup = false, false
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
			cur, _, err := s.streamHead(r.stream)
			if err == nil {
				err = &eventstore.ConflictError{Stream: r.stream, Expected: r.expected, Actual: cur.version}
			}
			r.err = err
			continue
		}
		r.res, r.err = s.stageAppend(r, &next, now)
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
				if r.accepted || r.dependsOnGroup {
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
			s.commits.Add(1)
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

// stageRecords adds r's records to the batch after cur; their index
// entries are added by writeIndexes.
func (s *Store) stageRecords(r *appendReq, cur head, next *uint64, now int64) (eventstore.AppendResult, error) {
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
