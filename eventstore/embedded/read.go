package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seatledger/seatledger/eventstore"
)

// Reads only ever show committed events: they stop at the last acknowledged
// global position, so the events of a failed commit that Pebble may still
// hold in its memtable are never visible.

func (s *Store) readErr(err error) error {
	if errors.Is(err, errCorruptRecord) {
		return fmt.Errorf("eventstore: event store in %s is corrupt: %w; restore it from a backup", s.dir, err)
	}
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("eventstore: event store in %s is corrupt: %v; restore it from a backup", s.dir, err)
	}
	return fmt.Errorf("%w: read event store in %s: %v", eventstore.ErrUnavailable, s.dir, err)
}

func capHint(limit int, n uint64) int {
	if limit > 0 && uint64(limit) < n {
		n = uint64(limit)
	}
	if n > 4096 {
		n = 4096
	}
	return int(n)
}

// ReadStream implements eventstore.Store. limit <= 0 means no limit.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	return s.readStream(ctx, stream, from, limit, false)
}

// ReadStreamBackward implements eventstore.Store. limit <= 0 means no limit.
func (s *Store) ReadStreamBackward(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	return s.readStream(ctx, stream, from, limit, true)
}

func (s *Store) readStream(ctx context.Context, stream string, from uint64, limit int, backward bool) ([]eventstore.RecordedEvent, error) {
	if err := validStream(stream); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	last := s.lastPos.Load()
	p := streamPrefix(prefixStream, stream)
	sit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, s.readErr(err)
	}
	defer sit.Close()
	git, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGlobal}, UpperBound: globalKey(last + 1)})
	if err != nil {
		return nil, s.readErr(err)
	}
	defer git.Close()

	if backward && from == math.MaxUint64 {
		from = 0
	}
	if !backward && from == 0 {
		from = 1
	}
	// Position sit on the chunk holding `from` (or the last chunk).
	var ok bool
	if backward && from == 0 {
		ok = sit.Last()
	} else {
		ok = sit.SeekLT(streamKey(prefixStream, stream, from+1))
		if !ok && !backward {
			ok = sit.First()
		}
	}
	var out []eventstore.RecordedEvent
	var d decoder
	var gk [9]byte
	full := func() bool { return limit > 0 && len(out) >= limit }
	// read decodes the record at pos, which must be the stream's event at
	// version; seek says whether git has to seek to it.
	read := func(pos, version uint64, seek bool) error {
		key := appendGlobalKey(gk[:0], pos)
		var found bool
		switch {
		case seek:
			found = git.SeekGE(key)
		case backward:
			found = git.Prev()
		default:
			found = git.Next()
		}
		if !found || !bytes.Equal(git.Key(), key) {
			if err := git.Error(); err != nil {
				return err
			}
			return fmt.Errorf("%w: stream %q points at missing position %d", errCorruptRecord, stream, pos)
		}
		gv, err := git.ValueAndErr()
		if err != nil {
			return err
		}
		if out == nil {
			out = make([]eventstore.RecordedEvent, 0, capHint(limit, 64))
		}
		out = append(out, eventstore.RecordedEvent{})
		ev := &out[len(out)-1]
		if err := d.event(pos, gv, ev); err != nil {
			return err
		}
		if ev.Version != version || ev.Stream != stream {
			return fmt.Errorf("%w: stream %q version %d points at position %d, which holds %q version %d", errCorruptRecord, stream, version, pos, ev.Stream, ev.Version)
		}
		return nil
	}
	for ; ok && !full(); ok = step(sit, backward) {
		k := sit.Key()
		v, err := sit.ValueAndErr()
		if err != nil {
			return nil, s.readErr(err)
		}
		if len(k) != len(p)+8 {
			return nil, s.readErr(fmt.Errorf("%w: bad stream index key of %q", errCorruptRecord, stream))
		}
		c, err := decodeChunk(binary.BigEndian.Uint64(k[len(p):]), v)
		if err != nil {
			return nil, s.readErr(fmt.Errorf("stream %q: %w", stream, err))
		}
		if c.firstPos > last {
			if backward {
				continue // not committed yet
			}
			break
		}
		lastV := c.firstVersion + min(c.count, last-c.firstPos+1) - 1
		if backward {
			hi := lastV
			if from != 0 && from < hi {
				hi = from
			}
			for v := hi; v >= c.firstVersion && !full(); v-- {
				if err := read(c.firstPos+(v-c.firstVersion), v, v == hi); err != nil {
					return nil, s.readErr(err)
				}
			}
			continue
		}
		lo := max(c.firstVersion, from)
		for v := lo; v <= lastV && !full(); v++ {
			if err := read(c.firstPos+(v-c.firstVersion), v, v == lo); err != nil {
				return nil, s.readErr(err)
			}
		}
		if lastV < c.firstVersion+c.count-1 {
			break // the rest is not committed yet
		}
	}
	if err := sit.Error(); err != nil {
		return nil, s.readErr(err)
	}
	return out, nil
}

func step(it *pebble.Iterator, backward bool) bool {
	if backward {
		return it.Prev()
	}
	return it.Next()
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := validStream(stream); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.closeMu.RUnlock()
	h, err := lastOfStream(s.db, s.dir, stream, s.lastPos.Load())
	return h.version, err
}

// LastPosition returns the global position of the last committed event.
func (s *Store) LastPosition() eventstore.Position {
	return eventstore.Position(s.lastPos.Load())
}

// ReadAll implements eventstore.Store. limit <= 0 means no limit.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	var d decoder
	return s.readAll(uint64(after), limit, &d, nil)
}

// readAll appends to out the committed events after `after`. Global positions
// are contiguous, so the number of events is known before reading.
func (s *Store) readAll(after uint64, limit int, d *decoder, out []eventstore.RecordedEvent) ([]eventstore.RecordedEvent, error) {
	last := s.lastPos.Load()
	if after >= last {
		return out, nil
	}
	hi := last
	if limit > 0 && uint64(limit) < last-after {
		hi = after + uint64(limit)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: globalKey(after + 1), UpperBound: globalKey(hi + 1)})
	if err != nil {
		return out, s.readErr(err)
	}
	defer it.Close()
	n := int(hi - after)
	out = slices.Grow(out, n)
	d.expect = n
	base := len(out)
	out = out[:base+n]
	i := base
	want := after + 1
	for ok := it.First(); ok; ok = it.Next() {
		pos := binary.BigEndian.Uint64(it.Key()[1:])
		if pos != want || i == len(out) {
			return out[:base], s.readErr(fmt.Errorf("%w: the global log has a gap at position %d", errCorruptRecord, want))
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return out[:base], s.readErr(err)
		}
		if err := d.event(pos, v, &out[i]); err != nil {
			return out[:base], s.readErr(err)
		}
		i++
		want++
	}
	if err := it.Error(); err != nil {
		return out[:base], s.readErr(err)
	}
	if i != len(out) {
		return out[:base], s.readErr(fmt.Errorf("%w: the global log has a gap at position %d", errCorruptRecord, want))
	}
	return out, nil
}

// Subscribe implements eventstore.Store. The subscription reads the log in
// batches and waits for the writer's commit notification when it has caught
// up; it holds no buffer the writer has to fill, so it never slows appends.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position) (eventstore.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	s.closeMu.RUnlock()
	return &subscription{s: s, ctx: ctx, pos: uint64(after), done: make(chan struct{})}, nil
}

const subscriptionBatch = 256

type subscription struct {
	s    *Store
	ctx  context.Context // Subscribe's context
	pos  uint64          // last delivered position
	buf  []eventstore.RecordedEvent
	i    int
	d    decoder
	once sync.Once
	done chan struct{}
}

func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		select {
		case <-sub.done:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		case <-sub.s.closing:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if err := sub.ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if sub.i < len(sub.buf) {
			ev := sub.buf[sub.i]
			sub.buf[sub.i] = eventstore.RecordedEvent{}
			sub.i++
			sub.pos = uint64(ev.Position)
			return ev, nil
		}
		ch := sub.s.waitCh()
		var wait <-chan time.Time
		if sub.s.lastPos.Load() > sub.pos {
			err := sub.fill()
			if err == nil {
				continue
			}
			if !errors.Is(err, errNoDB) {
				return eventstore.RecordedEvent{}, err
			}
			// The store is reopening its database after a disk
			// failure: wait for it rather than end the subscription.
			wait = time.After(100 * time.Millisecond)
		}
		select {
		case <-wait:
		case <-ch:
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		case <-sub.ctx.Done():
			return eventstore.RecordedEvent{}, sub.ctx.Err()
		case <-sub.done:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		case <-sub.s.closing:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		}
	}
}

func (sub *subscription) fill() error {
	if err := sub.s.acquire(); err != nil {
		return err
	}
	defer sub.s.closeMu.RUnlock()
	buf, err := sub.s.readAll(sub.pos, subscriptionBatch, &sub.d, sub.buf[:0])
	sub.buf, sub.i = buf, 0
	return err
}

// Close implements eventstore.Subscription. It is safe to call more than
// once and concurrently with Next.
func (sub *subscription) Close() error {
	sub.once.Do(func() { close(sub.done) })
	return nil
}
