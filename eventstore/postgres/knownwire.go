package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// append_known's call is the hot path under load: one per group of up to
// 64 appends. It is sent through pgconn with parameters encoded here, in
// PostgreSQL's binary format, into a reused buffer, straight from the
// group's appends: pgx's generic encoding boxes every array element into
// an interface and looks its plan up again, which cost the client about as
// much CPU as the whole round trip.

// knownStmt is the name append_known's call is prepared under on each
// connection (pgx's own cache names its statements "stmtcache_…").
const knownStmt = "seatledger_append_known"

// Element type OIDs of append_known's array parameters (pg_type).
const (
	oidBytea = 17
	oidInt8  = 20
	oidText  = 25
	oidUUID  = 2950
)

// knownBuf holds one call's encoded parameters; reused across calls.
type knownBuf struct {
	b      []byte
	params [][]byte
}

var knownBufs = sync.Pool{New: func() any { return &knownBuf{params: make([][]byte, 7)} }}

// arrayHeader appends a one-dimensional binary array header of n non-null
// elements of type oid.
func arrayHeader(b []byte, oid uint32, n int) []byte {
	b = binary.BigEndian.AppendUint32(b, 1) // dimensions
	b = binary.BigEndian.AppendUint32(b, 0) // no NULLs
	b = binary.BigEndian.AppendUint32(b, oid)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return binary.BigEndian.AppendUint32(b, 1) // lower bound
}

func appendElem(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// encode fills k with append_known's parameters for group (n events, every
// append with a known head).
func (k *knownBuf) encode(group []*appendReq, n int, maxp int64, rel uint32) {
	b := k.b[:0]
	var starts [8]int
	// streams
	starts[0] = len(b)
	b = arrayHeader(b, oidText, n)
	for _, r := range group {
		for range r.ids {
			b = binary.BigEndian.AppendUint32(b, uint32(len(r.stream)))
			b = append(b, r.stream...)
		}
	}
	// versions
	starts[1] = len(b)
	b = arrayHeader(b, oidInt8, n)
	for _, r := range group {
		for j := range r.ids {
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(int64(r.expected)+1+int64(j)))
		}
	}
	// ids
	starts[2] = len(b)
	b = arrayHeader(b, oidUUID, n)
	for _, r := range group {
		for _, id := range r.ids {
			b = appendElem(b, id.Bytes[:])
		}
	}
	// types
	starts[3] = len(b)
	b = arrayHeader(b, oidText, n)
	for _, r := range group {
		for _, t := range r.types {
			b = binary.BigEndian.AppendUint32(b, uint32(len(t)))
			b = append(b, t...)
		}
	}
	// data
	starts[4] = len(b)
	b = arrayHeader(b, oidBytea, n)
	for _, r := range group {
		for _, d := range r.data {
			b = appendElem(b, d)
		}
	}
	starts[5] = len(b)
	b = binary.BigEndian.AppendUint64(b, uint64(maxp))
	starts[6] = len(b)
	b = binary.BigEndian.AppendUint32(b, rel)
	starts[7] = len(b)
	// Slice only now: b may have moved while it grew.
	for i := range k.params {
		k.params[i] = b[starts[i]:starts[i+1]]
	}
	k.b = b
}

// maxKeptBuf bounds the buffer a knownBuf keeps for the next call.
const maxKeptBuf = 1 << 20

func (k *knownBuf) release() {
	clear(k.params)
	if cap(k.b) > maxKeptBuf {
		k.b = nil
	}
	knownBufs.Put(k)
}

// knownAnswer is append_known's answer (and the horizon of its snapshot).
type knownAnswer struct {
	base      int64
	baseValid bool // false: the events table was replaced, nothing written
	xid, xmin int64
	clear     bool
	older     []int64 // nil if NULL
}

var binaryFormat = []int16{1}

// callKnown runs append_known for group on a connection of the pool.
func (s *Store) callKnown(ctx context.Context, group []*appendReq, n int, maxp int64) (knownAnswer, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return knownAnswer{}, err
	}
	defer c.Release()
	// Idempotent: after the first call on a connection, a map look-up.
	if _, err := c.Conn().Prepare(ctx, knownStmt, s.qKnown); err != nil {
		return knownAnswer{}, err
	}
	k := knownBufs.Get().(*knownBuf)
	defer k.release()
	k.encode(group, n, maxp, s.eventsRel)
	rr := c.Conn().PgConn().ExecPrepared(ctx, knownStmt, k.params, binaryFormat, binaryFormat)
	var (
		a    knownAnswer
		rows int
		derr error
	)
	for rr.NextRow() {
		rows++
		if derr == nil {
			derr = a.decode(rr.Values())
		}
	}
	if _, err := rr.Close(); err != nil {
		return knownAnswer{}, err
	}
	if derr == nil && rows != 1 {
		derr = fmt.Errorf("append_known answered %d rows", rows)
	}
	return a, derr
}

var errKnownAnswer = errors.New("eventstore: postgres append: malformed answer of append_known")

// decode reads the binary columns o_base, o_xid, o_clear, o_older, xmin.
func (a *knownAnswer) decode(v [][]byte) error {
	if len(v) != 5 || len(v[1]) != 8 || len(v[2]) != 1 || len(v[4]) != 8 {
		return errKnownAnswer
	}
	if v[0] != nil {
		if len(v[0]) != 8 {
			return errKnownAnswer
		}
		a.base, a.baseValid = int64(binary.BigEndian.Uint64(v[0])), true
	}
	a.xid = int64(binary.BigEndian.Uint64(v[1]))
	a.clear = v[2][0] != 0
	a.xmin = int64(binary.BigEndian.Uint64(v[4]))
	if v[3] == nil {
		return nil
	}
	older, err := decodeInt8Array(v[3])
	a.older = older
	return err
}

// decodeInt8Array reads a binary bigint[] of at most one dimension without
// NULLs (an empty array is non-nil).
func decodeInt8Array(b []byte) ([]int64, error) {
	if len(b) < 12 {
		return nil, errKnownAnswer
	}
	dims := binary.BigEndian.Uint32(b)
	if dims == 0 {
		return []int64{}, nil
	}
	if dims != 1 || len(b) < 20 || binary.BigEndian.Uint32(b[8:]) != oidInt8 {
		return nil, errKnownAnswer
	}
	n := int(binary.BigEndian.Uint32(b[12:]))
	b = b[20:]
	if n < 0 || len(b) != n*12 {
		return nil, errKnownAnswer
	}
	out := make([]int64, n)
	for i := range out {
		if binary.BigEndian.Uint32(b) != 8 {
			return nil, errKnownAnswer
		}
		out[i] = int64(binary.BigEndian.Uint64(b[4:]))
		b = b[12:]
	}
	return out, nil
}
