package kurrentdb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/seatledger/seatledger/eventstore"
)

const (
	snapshotPrefix = "snapshot-"
	snapshotType   = "$seatledger-snapshot"
	// snapshotScan bounds how many snapshot events LoadSnapshot reads back.
	snapshotScan = 256
	// partOverhead is what an append of one snapshot part adds to its
	// data (metadata, type, the server's per-event overhead), generously.
	partOverhead = 4 << 10
)

// snapshotMeta is a snapshot event's metadata. A snapshot larger than the
// server's MaxAppendSize is written as Parts events (appends) of the same
// ID, Part 0..Parts-1 in order; older snapshots have no ID and one part.
type snapshotMeta struct {
	Version uint64 `json:"version"`
	Schema  int    `json:"schema"`
	ID      string `json:"id,omitempty"`
	Part    int    `json:"part,omitempty"`
	Parts   int    `json:"parts,omitempty"`
}

// SaveSnapshot implements eventstore.SnapshotStore. A snapshot larger than
// one append allows is split into parts, each its own append; a snapshot
// missing a part (a failed save) is never loaded. Every failure is counted
// in Stats().SnapshotFailures.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	if snap.Stream == "" || snap.Version == 0 {
		return fmt.Errorf("eventstore: invalid snapshot of %q at version %d", snap.Stream, snap.Version)
	}
	err := s.saveSnapshot(ctx, snap)
	if err != nil {
		s.snapFails.Add(1)
	}
	return err
}

func (s *Store) saveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	chunk := max(s.maxAppend-partOverhead, 1)
	parts := max((len(snap.Data)+chunk-1)/chunk, 1)
	id := uuid.New()
	for i := range parts {
		data := snap.Data[min(i*chunk, len(snap.Data)):min((i+1)*chunk, len(snap.Data))]
		meta, _ := json.Marshal(snapshotMeta{Version: snap.Version, Schema: snap.Schema, ID: id.String(), Part: i, Parts: parts})
		evID := id
		if i > 0 {
			evID = uuid.New()
		}
		ev := kdb.EventData{EventID: evID, EventType: snapshotType, ContentType: kdb.ContentTypeBinary, Data: data, Metadata: meta}
		if _, err := s.appendRaw(ctx, "save snapshot", snapshotPrefix+snap.Stream, kdb.Any{}, []kdb.EventData{ev}); err != nil {
			return err
		}
	}
	return nil
}

// LoadSnapshot implements eventstore.SnapshotStore. It looks at the last
// snapshotScan snapshot events of the stream and returns the newest
// complete snapshot.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, maxVersion uint64) (eventstore.Snapshot, bool, error) {
	if s.isClosed() {
		return eventstore.Snapshot{}, false, eventstore.ErrClosed
	}
	evs, err := s.readStream(ctx, snapshotPrefix+stream, kdb.ReadStreamOptions{Direction: kdb.Backwards, From: kdb.End{}}, snapshotScan)
	if err != nil {
		return eventstore.Snapshot{}, false, err
	}
	type partial struct {
		meta  snapshotMeta
		parts [][]byte
		have  int
	}
	byID := map[string]*partial{}
	var best eventstore.Snapshot
	found := false
	for _, e := range evs { // newest first
		var m snapshotMeta
		if e.EventType != snapshotType || json.Unmarshal(e.UserMetadata, &m) != nil || m.Version == 0 {
			continue
		}
		if maxVersion != 0 && m.Version > maxVersion {
			continue
		}
		if m.Parts <= 1 {
			m.Parts, m.Part = 1, 0
		}
		if m.Part < 0 || m.Part >= m.Parts {
			continue
		}
		key := m.ID
		if key == "" {
			key = e.EventID.String()
		}
		p := byID[key]
		if p == nil {
			p = &partial{meta: m, parts: make([][]byte, m.Parts)}
			byID[key] = p
		}
		if p.meta.Parts != m.Parts || p.parts[m.Part] != nil {
			continue
		}
		p.parts[m.Part] = append([]byte{}, e.Data...)
		p.have++
		if p.have < m.Parts {
			continue
		}
		if !found || m.Version > best.Version {
			var data []byte
			for _, b := range p.parts {
				data = append(data, b...)
			}
			best = eventstore.Snapshot{Stream: stream, Version: m.Version, Schema: m.Schema, Data: data}
			found = true
		}
	}
	return best, found, nil
}

// DeleteSnapshots implements eventstore.SnapshotStore. With stream == "" it
// finds every snapshot stream with a server-side filtered scan of $all.
func (s *Store) DeleteSnapshots(ctx context.Context, stream string) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	streams := []string{snapshotPrefix + stream}
	if stream == "" {
		var err error
		if streams, err = s.snapshotStreams(ctx); err != nil {
			return err
		}
	}
	for _, st := range streams {
		err := s.call(ctx, "delete snapshots", true, func(ctx context.Context, c *kdb.Client) error {
			_, err := c.DeleteStream(ctx, st, kdb.DeleteStreamOptions{StreamState: kdb.Any{}, RequiresLeader: true})
			if isNotFound(err) || isDeleted(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// snapshotStreams lists the snapshot streams that have events, reading $all
// with a stream-prefix filter up to the current end of the log.
func (s *Store) snapshotStreams(ctx context.Context) ([]string, error) {
	endEv, err := s.head(ctx)
	if err != nil || endEv == 0 {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out []string
	err = s.call(sctx, "list snapshots", true, func(ctx context.Context, c *kdb.Client) error {
		out = nil
		es, err := c.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{
			From:           kdb.Start{},
			Filter:         &kdb.SubscriptionFilter{Type: kdb.StreamFilterType, Prefixes: []string{snapshotPrefix}},
			RequiresLeader: true,
		})
		if err != nil {
			return err
		}
		defer es.Close()
		seen := map[string]bool{}
		for {
			ev := es.Recv()
			switch {
			case ev.SubscriptionDropped != nil:
				return ev.SubscriptionDropped.Error
			case ev.CaughtUp != nil:
				return nil
			case ev.CheckPointReached != nil:
				if ev.CheckPointReached.Commit >= endEv {
					return nil
				}
			case ev.EventAppeared != nil:
				e := ev.EventAppeared.OriginalEvent()
				if e == nil {
					continue
				}
				if strings.HasPrefix(e.StreamID, snapshotPrefix) && !seen[e.StreamID] {
					seen[e.StreamID] = true
					out = append(out, e.StreamID)
				}
				if e.Position.Commit >= endEv {
					return nil
				}
			}
		}
	})
	return out, err
}
