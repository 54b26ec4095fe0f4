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

// Decode reads an event written by domain.EncodeEvent, upgrading it with ups.
func Decode(b []byte, ups domain.Upcasters) (domain.Event, error) {
	return domain.DecodeEventWith(b, ups, api.Unmarshal)
}
