// Package eventcodec decodes event envelopes fast. Folding a tenant, a
// replay or a time-travel query decodes every event of a stream; the
// standard library's decoder is about five times slower than sonic's here.
// The result is the same as domain.DecodeEvent's (a test checks it).
package eventcodec

import (
	"github.com/bytedance/sonic"

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
