package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

func TestRecordLen(t *testing.T) {
	for _, version := range []uint64{1, 127, 128, 1 << 20, 1<<63 + 5} {
		for _, n := range []int{0, 1, 127, 128, 300, 20000} {
			stream := strings.Repeat("s", n%200+1)
			typ := strings.Repeat("t", n%130)
			data := make([]byte, n)
			rec := encodeRecord(nil, 7, version, 1, uuid.New(), stream, typ, data)
			if got := recordLen(version, stream, typ, data); got != len(rec) {
				t.Fatalf("version %d, %d bytes: recordLen %d, encoded %d", version, n, got, len(rec))
			}
		}
	}
}

// TestLegacyLayout: a store written before stream chunks (a stream-index
// entry and an event-ID entry for every event) reads, verifies, recognizes
// retries and takes appends.
func TestLegacyLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Write 5 events of stream "old" the old way.
	old := evs(5)
	b := s.db.NewBatch()
	for i, e := range old {
		pos, version := uint64(i+1), uint64(i+1)
		id, _ := parseID(e.ID)
		_ = b.Set(globalKey(pos), encodeRecord(nil, pos, version, 1, id, "old", e.Type, e.Data), nil)
		var v [16]byte
		binary.BigEndian.PutUint64(v[:], pos)
		binary.BigEndian.PutUint64(v[8:], version)
		_ = b.Set(streamKey(prefixStream, "old", version), v[:8], nil)
		_ = b.Set(idKey(id), v[:], nil)
	}
	var m [8]byte
	binary.BigEndian.PutUint64(m[:], 5)
	_ = b.Set(metaLastKey, m[:], nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpen(t, dir, Options{NoSync: true, VerifyOnOpen: true})
	if v, err := s.StreamVersion(ctx, "old"); err != nil || v != 5 {
		t.Fatalf("version %d %v", v, err)
	}
	got, err := s.ReadStream(ctx, "old", 2, 2)
	if err != nil || len(got) != 2 || got[0].ID != old[1].ID || got[1].Version != 3 {
		t.Fatalf("ReadStream: %+v %v", got, err)
	}
	back, err := s.ReadStreamBackward(ctx, "old", 0, 0)
	if err != nil || len(back) != 5 || back[0].Version != 5 || back[4].ID != old[0].ID {
		t.Fatalf("ReadStreamBackward: %d %v", len(back), err)
	}
	// A retry of events 2..3 (at expected version 1) is recognized.
	if r, err := s.Append(ctx, "old", eventstore.Exactly(1), old[1:3]); err != nil || r.Version != 3 || r.Position != 3 {
		t.Fatalf("legacy retry: %+v %v", r, err)
	}
	if _, err := s.Append(ctx, "old", eventstore.Exactly(1), old[2:4]); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("misplaced legacy retry: %v", err)
	}
	if r, err := s.Append(ctx, "old", eventstore.Exactly(5), evs(3)); err != nil || r.Version != 8 || r.Position != 8 {
		t.Fatalf("append: %+v %v", r, err)
	}
	all, err := s.ReadStream(ctx, "old", 1, 0)
	if err != nil || len(all) != 8 {
		t.Fatalf("%d %v", len(all), err)
	}
	for i, e := range all {
		if e.Version != uint64(i+1) || e.Position != eventstore.Position(i+1) {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyDetectsIndexDamage: a missing stream chunk or first-event ID
// entry fails Verify.
func TestVerifyDetectsIndexDamage(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{NoSync: true})
	e := evs(4)
	if _, err := s.Append(ctx, "a", eventstore.NoStream, e[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", eventstore.Exactly(2), e[2:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	id, _ := parseID(e[2].ID)
	if err := s.db.Delete(idKey(id), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err == nil || !strings.Contains(err.Error(), "event ID index of position 3") {
		t.Fatalf("Verify without an ID entry: %v", err)
	}
	if err := s.db.Delete(streamKey(prefixStream, "a", 1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err == nil || !strings.Contains(err.Error(), `stream index of "a" version 1`) {
		t.Fatalf("Verify without a stream chunk: %v", err)
	}
}
