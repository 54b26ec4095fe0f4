package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seatledger/seatledger/eventstore"
)

// Deciding one append of a group: its expected version against the
// stream's head, and whether it retries an append that already succeeded
// (found through the event-ID index, which holds the first event of every
// append).

type idLoc struct {
	pos, version uint64
}

// stageAppend checks one append against the store (as it will be once the
// earlier appends of the group are committed) and adds its events to the
// batch. It sets r.accepted when it wrote something.
func (s *Store) stageAppend(r *appendReq, next *uint64, now int64) (eventstore.AppendResult, error) {
	cur, inGroup, err := s.streamHead(r.stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	r.dependsOnGroup = inGroup
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
		return s.stageRecords(r, cur, next, now)
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
	return s.stageRecords(r, cur, next, now)
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
			r.dependsOnGroup = true
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
