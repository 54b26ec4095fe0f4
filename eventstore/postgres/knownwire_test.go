package postgres

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

// TestKnownGroupStoresExactBytes: append_known's parameters, encoded by
// the Store in PostgreSQL's binary format, store every stream name, type,
// ID and payload byte for byte (multi-byte UTF-8, empty and binary
// payloads, a payload larger than the reused buffer's first size), at the
// versions the Store computed.
func TestKnownGroupStoresExactBytes(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{})
	defer s.Close()
	ctx := t.Context()
	big := bytes.Repeat([]byte{0, 0xff, 'x'}, 100_000)
	streams := []string{"ä-stream", "b", "🎟-" + strings.Repeat("s", 300)}
	group := []*appendReq{
		newReq(ctx, streams[0], eventstore.NoStream, []eventstore.EventData{
			{ID: uuid.NewString(), Type: "Sitz€Vergeben", Data: []byte{}},
			{ID: uuid.NewString(), Type: "T", Data: []byte{0, 1, 2, 0xfe, 0xff}},
		}),
		newReq(ctx, streams[1], eventstore.NoStream, []eventstore.EventData{
			{ID: uuid.NewString(), Type: "Big", Data: big},
		}),
		newReq(ctx, streams[2], eventstore.NoStream, events(3, "Plain")),
	}
	want := map[string][]*appendReq{}
	for _, r := range group {
		want[r.stream] = append(want[r.stream], r)
	}
	slices.SortStableFunc(group, func(a, b *appendReq) int { return strings.Compare(a.stream, b.stream) })
	if !knownGroup(t, s, group) {
		t.Fatal("a group of new streams was not committed by append_known")
	}
	for _, r := range group {
		if r.err != nil || r.res.Version != uint64(len(r.ids)) {
			t.Fatalf("%s: %+v %v", r.stream, r.res, r.err)
		}
		got, err := s.ReadStream(ctx, r.stream, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(r.ids) {
			t.Fatalf("%s: read %d events, want %d", r.stream, len(got), len(r.ids))
		}
		for i, e := range got {
			if e.Stream != r.stream || e.Version != uint64(i+1) || e.ID != uuid.UUID(r.ids[i].Bytes).String() ||
				e.Type != r.types[i] || !bytes.Equal(e.Data, r.data[i]) {
				t.Fatalf("%s event %d: stored %q v%d %s %q (%d bytes), want %q v%d %s %q (%d bytes)",
					r.stream, i, e.Stream, e.Version, e.ID, e.Type, len(e.Data),
					r.stream, i+1, uuid.UUID(r.ids[i].Bytes), r.types[i], len(r.data[i]))
			}
			if i == len(got)-1 && e.Position != r.res.Position {
				t.Fatalf("%s: last position %d, Append answered %d", r.stream, e.Position, r.res.Position)
			}
		}
	}
}

func int8Array(vals ...int64) []byte {
	b := arrayHeader(nil, oidInt8, len(vals))
	for _, v := range vals {
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// TestDecodeInt8Array reads append_known's o_older and refuses what it
// does not expect instead of misreading it.
func TestDecodeInt8Array(t *testing.T) {
	empty := append(binary.BigEndian.AppendUint32(nil, 0), make([]byte, 8)...) // ndim 0, flags, oid
	if got, err := decodeInt8Array(empty); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty array: %v %v, want an empty non-nil slice", got, err)
	}
	if got, err := decodeInt8Array(int8Array(7, -1, 1<<40)); err != nil || !slices.Equal(got, []int64{7, -1, 1 << 40}) {
		t.Fatalf("decoded %v %v", got, err)
	}
	for name, b := range map[string][]byte{
		"short":     int8Array(1)[:10],
		"truncated": int8Array(1, 2)[:30],
		"int4":      append(arrayHeader(nil, 23, 1), 0, 0, 0, 4, 0, 0, 0, 1),
		"null":      append(arrayHeader(nil, oidInt8, 1), 0xff, 0xff, 0xff, 0xff),
	} {
		if got, err := decodeInt8Array(b); err == nil {
			t.Errorf("%s: decoded %v, want an error", name, got)
		}
	}
}
