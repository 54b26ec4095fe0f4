package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

// Key layout (all integers big-endian so that keys sort numerically):
//
//	'g' pos(8)                       -> event record (see encodeRecord)
//	's' stream 0x00 version(8)       -> pos(8) count(4): stream chunk
//	'e' id(16)                       -> pos(8) version(8)
//	'm' "last"                       -> pos(8) of the last committed event
//	'n' stream 0x00 version(8)       -> snapshot record
//
// Every append writes one record per event, one stream chunk (its events
// have consecutive versions from `version` and consecutive positions from
// `pos`) and one event-ID entry for its first event (a retry of the append
// has the same first event; the rest are checked against the records).
// Stores written before chunks existed have a stream entry (pos(8), count 1)
// and an event-ID entry for every event; both read the same way.
//
// Stream names may not contain 0x00, so a stream's keys form one contiguous
// range that no other stream's keys interleave with.
const (
	prefixGlobal   = 'g'
	prefixStream   = 's'
	prefixID       = 'e'
	prefixMeta     = 'm'
	prefixSnapshot = 'n'
)

var metaLastKey = []byte("mlast")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorruptRecord marks a record whose checksum or framing is wrong.
var errCorruptRecord = errors.New("corrupt record")

func globalKey(pos uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixGlobal
	binary.BigEndian.PutUint64(k[1:], pos)
	return k
}

func appendGlobalKey(dst []byte, pos uint64) []byte {
	dst = append(dst, prefixGlobal)
	return binary.BigEndian.AppendUint64(dst, pos)
}

// streamPrefix is 'p' stream 0x00 for p in {'s','n'}.
func streamPrefix(p byte, stream string) []byte {
	k := make([]byte, 0, len(stream)+10)
	k = append(k, p)
	k = append(k, stream...)
	return append(k, 0)
}

func appendStreamKey(dst []byte, p byte, stream string, version uint64) []byte {
	dst = append(dst, p)
	dst = append(dst, stream...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, version)
}

func streamKey(p byte, stream string, version uint64) []byte {
	return appendStreamKey(make([]byte, 0, len(stream)+10), p, stream, version)
}

// prefixEnd returns the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// chunk is a decoded stream index entry.
type chunk struct {
	firstVersion, firstPos, count uint64
}

// covers reports whether the event at version sits in the chunk at pos.
func (c chunk) covers(version, pos uint64) bool {
	return c.count > 0 && version >= c.firstVersion && version-c.firstVersion < c.count && c.firstPos+(version-c.firstVersion) == pos
}

const chunkValueLen = 12

func putChunkValue(dst []byte, firstPos, count uint64) {
	binary.BigEndian.PutUint64(dst, firstPos)
	binary.BigEndian.PutUint32(dst[8:], uint32(count))
}

func decodeChunk(firstVersion uint64, v []byte) (chunk, error) {
	switch len(v) {
	case 8:
		return chunk{firstVersion: firstVersion, firstPos: binary.BigEndian.Uint64(v), count: 1}, nil
	case chunkValueLen:
		c := chunk{firstVersion: firstVersion, firstPos: binary.BigEndian.Uint64(v), count: uint64(binary.BigEndian.Uint32(v[8:]))}
		if c.count == 0 || c.firstVersion == 0 || c.firstPos == 0 {
			break
		}
		return c, nil
	}
	return chunk{}, fmt.Errorf("%w: bad stream index entry (%d bytes)", errCorruptRecord, len(v))
}

func idKey(id [16]byte) []byte {
	k := make([]byte, 17)
	k[0] = prefixID
	copy(k[1:], id[:])
	return k
}

// encodeRecord appends the record of one event to dst:
//
//	crc32c(4) | version uvarint | recordedAt unix nanos (8) | id (16) |
//	len(stream) uvarint | stream | len(type) uvarint | type | data
//
// The checksum covers the global position (not stored in the value, it is the
// key) followed by everything after the checksum, so a record copied under the
// wrong key is detected too.
func encodeRecord(dst []byte, pos, version uint64, recordedAt int64, id [16]byte, stream, typ string, data []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, version)
	dst = binary.BigEndian.AppendUint64(dst, uint64(recordedAt))
	dst = append(dst, id[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	dst = binary.AppendUvarint(dst, uint64(len(typ)))
	dst = append(dst, typ...)
	dst = append(dst, data...)
	binary.BigEndian.PutUint32(dst[start:], recordChecksum(pos, dst[start+4:]))
	return dst
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// recordLen is the length of the record encodeRecord writes.
func recordLen(version uint64, stream, typ string, data []byte) int {
	return 4 + uvarintLen(version) + 8 + 16 + uvarintLen(uint64(len(stream))) + len(stream) + uvarintLen(uint64(len(typ))) + len(typ) + len(data)
}

// recordChecksum is crc32c(pos big-endian ‖ body). The 8 position bytes go
// through the table by hand: a stack buffer passed to crc32.Update escapes
// and would cost an allocation per record.
func recordChecksum(pos uint64, body []byte) uint32 {
	c := ^uint32(0)
	for shift := 56; shift >= 0; shift -= 8 {
		c = castagnoli[byte(c)^byte(pos>>uint(shift))] ^ (c >> 8)
	}
	return crc32.Update(^c, castagnoli, body)
}

// rawRecord is a decoded record whose byte slices alias the encoded value.
type rawRecord struct {
	version    uint64
	recordedAt int64
	id         [16]byte
	stream     []byte
	typ        []byte
	data       []byte
}

func decodeRecord(pos uint64, v []byte) (rawRecord, error) {
	var r rawRecord
	if len(v) < 4 {
		return r, fmt.Errorf("%w at position %d: %d bytes", errCorruptRecord, pos, len(v))
	}
	if want, got := binary.BigEndian.Uint32(v), recordChecksum(pos, v[4:]); want != got {
		return r, fmt.Errorf("%w at position %d: checksum mismatch (stored %08x, computed %08x)", errCorruptRecord, pos, want, got)
	}
	b := v[4:]
	var n int
	r.version, n = binary.Uvarint(b)
	if n <= 0 || len(b) < n+8+16 {
		return r, fmt.Errorf("%w at position %d: bad header", errCorruptRecord, pos)
	}
	b = b[n:]
	r.recordedAt = int64(binary.BigEndian.Uint64(b))
	copy(r.id[:], b[8:24])
	b = b[24:]
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return r, fmt.Errorf("%w at position %d: bad stream length", errCorruptRecord, pos)
	}
	r.stream = b[n : n+int(l)]
	b = b[n+int(l):]
	l, n = binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return r, fmt.Errorf("%w at position %d: bad type length", errCorruptRecord, pos)
	}
	r.typ = b[n : n+int(l)]
	r.data = b[n+int(l):]
	return r, nil
}

// decoder turns raw records into RecordedEvents with few allocations: the
// bytes of every event (data and ID text) are carved out of shared chunks
// (one for a whole page when the caller says how many events it reads),
// and stream names and event types are interned.
type decoder struct {
	chunk      []byte
	expect     int // events the caller still expects to decode
	strings    map[string]string
	lastStream string
	lastType   string
}

const chunkSize = 64 << 10

func (d *decoder) alloc(n int) []byte {
	if cap(d.chunk)-len(d.chunk) < n {
		// Room for the events still expected, if they are like this one.
		size := min(max(d.expect, 1)*n+n/2, 4<<20)
		if size < chunkSize {
			size = chunkSize
			if n > chunkSize/4 && d.expect <= 1 {
				return make([]byte, n)
			}
		}
		d.chunk = make([]byte, 0, max(size, n))
	}
	if d.expect > 0 {
		d.expect--
	}
	start := len(d.chunk)
	d.chunk = d.chunk[:start+n]
	return d.chunk[start : start+n : start+n]
}

func (d *decoder) intern(b []byte, last *string) string {
	if *last == string(b) {
		return *last
	}
	s, ok := d.strings[string(b)]
	if !ok {
		if d.strings == nil {
			d.strings = make(map[string]string)
		}
		if len(d.strings) > 4096 {
			clear(d.strings)
		}
		s = string(b)
		d.strings[s] = s
	}
	*last = s
	return s
}

func (d *decoder) event(pos uint64, v []byte, ev *eventstore.RecordedEvent) error {
	r, err := decodeRecord(pos, v)
	if err != nil {
		return err
	}
	buf := d.alloc(36 + len(r.data))
	encodeUUID(buf[:36], &r.id)
	copy(buf[36:], r.data)
	data := buf[36:]
	if len(r.data) == 0 {
		data = []byte{}
	}
	// buf is never written again, so viewing it as a string is safe.
	*ev = eventstore.RecordedEvent{
		ID:         unsafe.String(&buf[0], 36),
		Type:       d.intern(r.typ, &d.lastType),
		Stream:     d.intern(r.stream, &d.lastStream),
		Version:    r.version,
		Position:   eventstore.Position(pos),
		RecordedAt: time.Unix(0, r.recordedAt),
		Data:       data,
	}
	return nil
}

// hexPairs holds the two hex digits of every byte value.
var hexPairs = func() (t [512]byte) {
	const digits = "0123456789abcdef"
	for i := 0; i < 256; i++ {
		t[2*i], t[2*i+1] = digits[i>>4], digits[i&0x0f]
	}
	return t
}()

// encodeUUID writes the canonical text form of id into dst (36 bytes).
func encodeUUID(dst []byte, id *[16]byte) {
	_ = dst[35]
	hex := func(d []byte, b byte) { d[0], d[1] = hexPairs[2*int(b)], hexPairs[2*int(b)+1] }
	hex(dst[0:], id[0])
	hex(dst[2:], id[1])
	hex(dst[4:], id[2])
	hex(dst[6:], id[3])
	dst[8] = '-'
	hex(dst[9:], id[4])
	hex(dst[11:], id[5])
	dst[13] = '-'
	hex(dst[14:], id[6])
	hex(dst[16:], id[7])
	dst[18] = '-'
	hex(dst[19:], id[8])
	hex(dst[21:], id[9])
	dst[23] = '-'
	for i := 0; i < 6; i++ {
		hex(dst[24+2*i:], id[10+i])
	}
}

func parseID(s string) ([16]byte, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return u, fmt.Errorf("eventstore: event ID %q is not a UUID: %v", s, err)
	}
	return u, nil
}

// snapshot value: crc32c(4) | schema uvarint | data. The checksum covers the
// key too.
func encodeSnapshot(key []byte, schema int, data []byte) []byte {
	v := make([]byte, 4, 4+binary.MaxVarintLen64+len(data))
	v = binary.AppendVarint(v, int64(schema))
	v = append(v, data...)
	c := crc32.Update(crc32.Update(0, castagnoli, key), castagnoli, v[4:])
	binary.BigEndian.PutUint32(v, c)
	return v
}

func decodeSnapshot(key, v []byte) (schema int, data []byte, err error) {
	if len(v) < 5 {
		return 0, nil, errCorruptRecord
	}
	c := crc32.Update(crc32.Update(0, castagnoli, key), castagnoli, v[4:])
	if c != binary.BigEndian.Uint32(v) {
		return 0, nil, fmt.Errorf("%w: snapshot checksum mismatch", errCorruptRecord)
	}
	s, n := binary.Varint(v[4:])
	if n <= 0 {
		return 0, nil, errCorruptRecord
	}
	return int(s), append([]byte{}, v[4+n:]...), nil
}
