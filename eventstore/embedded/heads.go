package embedded

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seatledger/seatledger/eventstore"
)

// Stream heads: the version and last global position of a stream, cached
// by the writer and read from the stream index (also by StreamVersion).

type head struct {
	version uint64
	pos     uint64
}

const maxHeadCache = 1 << 20

// streamHead returns the stream's version and last position as the writer
// sees it (including appends earlier in the current group).
func (s *Store) streamHead(stream string) (h head, inGroup bool, err error) {
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
