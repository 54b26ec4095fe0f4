// Package eventcodec decodes event envelopes fast. Folding a tenant, a
// replay or a time-travel query decodes every event of a stream; the
// standard library's decoder is about five times slower than sonic's here.
// The result is the same as domain.DecodeEvent's (a test checks it).
package eventcodec

import (
	"bytes"
	"slices"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/encoder"

	"github.com/seatledger/seatledger/domain"
)

var api = sonic.Config{}.Froze() // like encoding/json: unknown fields ignored

// Encode writes an event as domain.EncodeEvent does (the same JSON, maybe
// with other escaping of the same strings).
func Encode(e domain.Event) ([]byte, error) { return domain.EncodeEventWith(e, api.Marshal) }

// Decode reads an event written by domain.EncodeEvent, upgrading it with ups.
func Decode(b []byte, ups domain.Upcasters) (domain.Event, error) {
	return domain.DecodeEventWith(b, ups, api.Unmarshal)
}

// MarshalSnapshot encodes a tenant state for a snapshot.
func MarshalSnapshot(t *domain.Tenant) ([]byte, error) { return api.Marshal(t) }

// UnmarshalSnapshot decodes a state written by MarshalSnapshot (or by
// domain's own MarshalSnapshot: the format is the same JSON).
func UnmarshalSnapshot(b []byte) (*domain.Tenant, error) {
	return domain.UnmarshalSnapshotWith(b, api.Unmarshal)
}

// Unmarshal decodes JSON like encoding/json.Unmarshal, faster.
func Unmarshal(b []byte, v any) error { return api.Unmarshal(b, v) }

// Clone deep-copies a tenant state.
func Clone(t *domain.Tenant) (*domain.Tenant, error) {
	b, err := MarshalSnapshot(t)
	if err != nil {
		return nil, err
	}
	return UnmarshalSnapshot(b)
}

var (
	std       = sonic.ConfigStd
	stdNoHTML = sonic.Config{SortMapKeys: true, CompactMarshaler: true, CopyString: true, ValidateString: true}.Froze()
)

// Marshal encodes v byte for byte as encoding/json.Marshal does (HTML
// escaped, map keys sorted, Marshaler output compacted), faster. Read models
// are written with it, so stores written before it compare equal.
func Marshal(v any) ([]byte, error) { return std.Marshal(v) }

// MarshalNoEscapeHTML encodes v as a json.Encoder with SetEscapeHTML(false)
// does, without the Encoder's trailing newline.
func MarshalNoEscapeHTML(v any) ([]byte, error) {
	b, err := stdNoHTML.Marshal(v)
	if err != nil {
		return nil, err
	}
	// encoding/json escapes U+2028 and U+2029 even then (JSONP safety);
	// sonic only with EscapeHTML. Outside strings JSON holds neither, so
	// every occurrence is inside one.
	if bytes.Contains(b, lineSep) || bytes.Contains(b, paraSep) {
		b = bytes.ReplaceAll(bytes.ReplaceAll(b, lineSep, []byte(`\u2028`)), paraSep, []byte(`\u2029`))
	}
	return b, nil
}

// AppendMarshal appends to dst the bytes Marshal(v) gives. scratch is a
// buffer it may reuse between calls: a caller encoding many values into
// one buffer (the projection's writes of a flush) allocates nothing per
// value once the buffers have grown.
func AppendMarshal(dst []byte, scratch *[]byte, v any) ([]byte, error) {
	*scratch = (*scratch)[:0]
	// Encode without HTML escaping into scratch (EncodeInto would escape
	// into a new buffer, and all of it), then escape into dst.
	if err := encoder.EncodeInto(scratch, v, appendOpts); err != nil {
		return dst, err
	}
	// sonic's HTMLEscape sizes a grown dst by src alone (it panics when dst
	// is longer): make the room it looks for first.
	dst = slices.Grow(dst, 2*len(*scratch)+128)
	return encoder.HTMLEscape(dst, *scratch), nil
}

// appendOpts are sonic.ConfigStd's encoder options but EscapeHTML.
const appendOpts = encoder.SortMapKeys | encoder.CompactMarshaler | encoder.ValidateString

var lineSep, paraSep = []byte("\u2028"), []byte("\u2029")
