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
	lower, upper := p, prefixEnd(p)
	if backward {
		if from != 0 && from != math.MaxUint64 {
			upper = streamKey(prefixStream, stream, from+1)
		}
	} else if from > 1 {
		lower = streamKey(prefixStream, stream, from)
	}
	sit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, s.readErr(err)
	}
	defer sit.Close()
	git, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGlobal}, UpperBound: globalKey(last + 1)})
	if err != nil {
		return nil, s.readErr(err)
	}
	defer git.Close()

	var out []eventstore.RecordedEvent
	var d decoder
	var gk [9]byte
	ok := sit.First()
	if backward {
		ok = sit.Last()
	}
	for ; ok; ok = step(sit, backward) {
		if limit > 0 && len(out) >= limit {
			break
		}
		v, err := sit.ValueAndErr()
		if err != nil {
			return nil, s.readErr(err)
		}
		if len(v) != 8 {
			return nil, s.readErr(fmt.Errorf("%w: stream index entry of %q has %d bytes", errCorruptRecord, stream, len(v)))
		}
		pos := binary.BigEndian.Uint64(v)
		if pos > last {
			if backward {
				continue // not committed (failed commit)
			}
			break
		}
		key := appendGlobalKey(gk[:0], pos)
		if !git.SeekGE(key) || !bytes.Equal(git.Key(), key) {
			if err := git.Error(); err != nil {
				return nil, s.readErr(err)
			}
			return nil, s.readErr(fmt.Errorf("%w: stream %q points at missing position %d", errCorruptRecord, stream, pos))
		}
		gv, err := git.ValueAndErr()
		if err != nil {
			return nil, s.readErr(err)
		}
		if out == nil {
			out = make([]eventstore.RecordedEvent, 0, capHint(limit, 64))
		}
		out = append(out, eventstore.RecordedEvent{})
		if err := d.event(pos, gv, &out[len(out)-1]); err != nil {
			return nil, s.readErr(err)
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
	h, err := s.lastOfStream(stream, s.lastPos.Load())
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
		if sub.s.lastPos.Load() > sub.pos {
			if err := sub.fill(); err != nil {
				return eventstore.RecordedEvent{}, err
			}
			continue
		}
		select {
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
