package eventcodec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/domain"
)

// slowPath makes an event's JSON start otherwise than the encoders write
// it (a leading space), so DecodeEventWith reads it in two passes, the
// envelope, then the data: the reference the one-pass decoding must match.
func slowPath(b []byte) []byte { return append([]byte(" "), b...) }

// TestOnePassDecodingMatchesTwoPasses: an event as the encoders write it
// decodes in one pass of the JSON decoder; the result, or the error, is the
// one the envelope-then-data decoding gives, with either decoder.
func TestOnePassDecodingMatchesTwoPasses(t *testing.T) {
	var inputs [][]byte
	for _, e := range sample() {
		b, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
		if enc, err := Encode(e); err == nil {
			inputs = append(inputs, enc)
		}
	}
	head := `{"eventId":"e1","type":"LicenseAssigned","tenantId":"t","version":3,"schema":1`
	for _, s := range []string{
		head + `,"data":null}`,
		head + `}`,
		head + `,"data":{}}`,
		head + `,"data":{"userId":"a","skuId":"s","source":"direct","extra":[1,{"x":2}]}}`,
		head + `,"data":{"userId":"a"},"type":"LicenseUnassigned"}`, // a later type wins
		head + `,"type":"Unknown","data":{"userId":"a"}}`,
		head + `,"data":"not an object"}`,
		head + `,"data":{"userId":7}}`,
		head + `,"data":{"disabledPlans":"x"}}`,
		head + `,"data":{"userId":"a"}`, // truncated
		`{"eventId":"e\"1","type":"LicenseAssigned","data":{"userId":"a"}}`,
		`{"eventId":"e1","type":"License\u0041ssigned","data":{"userId":"a"}}`,
		`{"eventId":"e1","type":"","data":{"userId":"a"}}`,
		`{"eventId":"e1","type":"NothingChanged","data":{"command":"AssignLicenses"}}`,
		`{"eventId":"e1","type":"FromTheFuture","data":{"a":1}}`,
	} {
		inputs = append(inputs, []byte(s))
	}
	decoders := map[string]func([]byte, domain.Upcasters) (domain.Event, error){"sonic": Decode, "encoding/json": domain.DecodeEvent}
	for name, decode := range decoders {
		for _, b := range inputs {
			want, werr := decode(slowPath(b), nil)
			got, gerr := decode(b, nil)
			// (An error is the two-pass decoding's own, on the same bytes;
			// its message may count the leading space.)
			if (werr == nil) != (gerr == nil) {
				t.Errorf("%s %s: error %v, want %v", name, b, gerr, werr)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s:\n got %#v\nwant %#v", name, b, got, want)
			}
		}
	}
}

// TestOnePassDecodingLeavesUpgradesToTheChain: an event whose type and
// schema an upcaster upgrades is upgraded, one pass or not.
func TestOnePassDecodingLeavesUpgradesToTheChain(t *testing.T) {
	ups := domain.Upcasters{{Type: domain.TypeLicenseAssigned, From: 1, Upgrade: func(data json.RawMessage) (json.RawMessage, error) {
		return bytes.Replace(data, []byte(`"source":"direct"`), []byte(`"source":"group:g"`), 1), nil
	}}}
	b := []byte(`{"eventId":"e1","type":"LicenseAssigned","tenantId":"t","version":3,"schema":1,"data":{"userId":"a","skuId":"s","source":"direct"}}`)
	for name, decode := range map[string]func([]byte, domain.Upcasters) (domain.Event, error){"sonic": Decode, "encoding/json": domain.DecodeEvent} {
		e, err := decode(b, ups)
		if err != nil {
			t.Fatal(err)
		}
		if p := e.Payload.(domain.LicenseAssigned); p.Source != "group:g" || e.Schema != 2 {
			t.Errorf("%s: %+v at schema %d, want the upgraded source at schema 2", name, p, e.Schema)
		}
		b2 := []byte(strings.Replace(string(b), `"schema":1`, `"schema":2`, 1))
		if e, err := decode(b2, ups); err != nil || e.Payload.(domain.LicenseAssigned).Source != "direct" {
			t.Errorf("%s: schema 2 decoded as %+v, %v", name, e, err)
		}
	}
}
