package embedded

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seatledger/seatledger/eventstore"
)

// Snapshots are a cache: they are written without fsync (a crash may lose
// the latest ones, never corrupt them) and a snapshot whose checksum fails is
// ignored (logged) rather than returned.

// SaveSnapshot implements eventstore.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := validStream(snap.Stream); err != nil {
		return err
	}
	if snap.Version == 0 {
		return fmt.Errorf("eventstore: snapshot of %q has version 0", snap.Stream)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.failed(); err != nil {
		return err
	}
	key := streamKey(prefixSnapshot, snap.Stream, snap.Version)
	if err := s.db.Set(key, encodeSnapshot(key, snap.Schema, snap.Data), pebble.NoSync); err != nil {
		return fmt.Errorf("%w: save snapshot: %v", eventstore.ErrUnavailable, err)
	}
	return s.failed()
}

// LoadSnapshot implements eventstore.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, maxVersion uint64) (eventstore.Snapshot, bool, error) {
	if err := validStream(stream); err != nil {
		return eventstore.Snapshot{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.Snapshot{}, false, err
	}
	if err := s.acquire(); err != nil {
		return eventstore.Snapshot{}, false, err
	}
	defer s.closeMu.RUnlock()
	p := streamPrefix(prefixSnapshot, stream)
	upper := prefixEnd(p)
	if maxVersion != 0 && maxVersion != ^uint64(0) {
		upper = streamKey(prefixSnapshot, stream, maxVersion+1)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upper})
	if err != nil {
		return eventstore.Snapshot{}, false, s.readErr(err)
	}
	defer it.Close()
	for ok := it.Last(); ok; ok = it.Prev() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return eventstore.Snapshot{}, false, s.readErr(err)
		}
		if len(k) != len(p)+8 {
			continue
		}
		schema, data, err := decodeSnapshot(k, v)
		if err != nil {
			s.log.Warn("eventstore: ignoring corrupt snapshot", "stream", stream, "err", err)
			continue
		}
		return eventstore.Snapshot{Stream: stream, Version: binary.BigEndian.Uint64(k[len(p):]), Schema: schema, Data: data}, true, nil
	}
	if err := it.Error(); err != nil {
		return eventstore.Snapshot{}, false, s.readErr(err)
	}
	return eventstore.Snapshot{}, false, nil
}

// DeleteSnapshots implements eventstore.SnapshotStore.
func (s *Store) DeleteSnapshots(ctx context.Context, stream string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start, end := []byte{prefixSnapshot}, []byte{prefixSnapshot + 1}
	if stream != "" {
		if err := validStream(stream); err != nil {
			return err
		}
		start = streamPrefix(prefixSnapshot, stream)
		end = prefixEnd(start)
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.failed(); err != nil {
		return err
	}
	if err := s.db.DeleteRange(start, end, pebble.Sync); err != nil {
		return fmt.Errorf("%w: delete snapshots: %v", eventstore.ErrUnavailable, err)
	}
	return s.failed()
}
