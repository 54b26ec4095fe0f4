package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checking the stored log: the tail at every open (all of it with
// Options.VerifyOnOpen) and Store.Verify. A check reads the global log and
// makes sure every record decodes and is covered by its indexes.

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
