// Package eventcodec decodes event envelopes fast. Folding a tenant, a
// replay or a time-travel query decodes every event of a stream; the
// standard library's decoder is about five times slower than sonic's here.
// The result is the same as domain.DecodeEvent's (a test checks it).
package eventcodec

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/encoder"

	"github.com/seatledger/seatledger/domain"
)

var api = sonic.Config{}.Froze() // like encoding/json: unknown fields ignored

// Encode writes an event as domain.EncodeEvent does (the same JSON, maybe
// with other escaping of the same strings): the bytes of
// domain.EncodeEventWith(e, api.Marshal).
func Encode(e domain.Event) ([]byte, error) {
	if plainEnvelope(&e.Envelope) {
		// The envelope and the data are encoded into one pooled buffer,
		// then copied out once: sonic's Marshal would encode the data into
		// a pooled buffer and copy it out, for the envelope to copy it again.
		bp := encodeBufs.Get().(*[]byte)
		defer func() {
			if cap(*bp) <= maxEncodeBuf {
				encodeBufs.Put(bp)
			}
		}()
		*bp = appendEnvelopeHead((*bp)[:0], &e.Envelope)
		start := len(*bp)
		if err := encoder.EncodeInto(bp, e.Payload, encodeOpts); err != nil {
			return nil, fmt.Errorf("encode %s event: %w", e.Type, err)
		}
		if b := *bp; compactJSON(b[start:]) {
			return append(append(make([]byte, 0, len(b)+1), b...), '}'), nil
		}
	}
	return domain.EncodeEventWith(e, api.Marshal)
}

// encodeOpts are api's encoder options (sonic.Config{}: none), with which
// encoder.EncodeInto appends what api.Marshal returns.
const encodeOpts encoder.Options = 0

// encodeBufs are Encode's buffers; one that grew past maxEncodeBuf (for an
// event of a large payload) is left to the collector.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxEncodeBuf = 64 << 10

// appendEnvelope appends the JSON of an event, envelope and data, as sonic
// writes domain's wireEvent: the envelope's fields in order, then "data".
// A command's events are encoded while the tenant waits for them, and
// reflecting over the envelope was half of an event's encoding. It says
// false, for the caller to let sonic encode the event, when a string needs
// escaping, the time is not one encoding/json writes as RFC 3339, or the
// data is not compact JSON as sonic would copy it.
func appendEnvelope(b []byte, e *domain.Envelope, data []byte) ([]byte, bool) {
	if !plainEnvelope(e) || !compactJSON(data) {
		return b, false
	}
	return append(append(appendEnvelopeHead(b, e), data...), '}'), true
}

// plainEnvelope: every string of e is written as it is and its time as
// RFC 3339 (see appendEnvelope).
func plainEnvelope(e *domain.Envelope) bool {
	if !plainStrings(e.EventID, e.Type, e.TenantID, e.CommandID, e.CorrelationID, e.RequestHash, e.Actor.UserID, e.Actor.System) ||
		!plainTime(e.OccurredAt) {
		return false
	}
	for _, r := range e.Actor.Roles {
		if !plainString(string(r)) {
			return false
		}
	}
	return true
}

// appendEnvelopeHead appends a plain envelope up to its data: {…,"data":
func appendEnvelopeHead(b []byte, e *domain.Envelope) []byte {
	b = appendStringField(append(b, '{'), "eventId", e.EventID)
	b = appendStringField(append(b, ','), "type", e.Type)
	b = appendStringField(append(b, ','), "tenantId", e.TenantID)
	b = strconv.AppendUint(append(b, `,"version":`...), e.Version, 10)
	b = append(e.OccurredAt.AppendFormat(append(b, `,"occurredAt":"`...), time.RFC3339Nano), '"')
	b = appendActor(append(b, `,"actor":`...), &e.Actor)
	b = appendStringField(append(b, ','), "commandId", e.CommandID)
	if e.CorrelationID != "" {
		b = appendStringField(append(b, ','), "correlationId", e.CorrelationID)
	}
	if e.RequestHash != "" {
		b = appendStringField(append(b, ','), "requestHash", e.RequestHash)
	}
	b = strconv.AppendInt(append(b, `,"schema":`...), int64(e.Schema), 10)
	return append(b, `,"data":`...)
}

func appendActor(b []byte, a *domain.Actor) []byte {
	b = append(b, '{')
	sep := func() {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
	}
	if a.UserID != "" {
		b = appendStringField(b, "userId", a.UserID)
	}
	if len(a.Roles) > 0 {
		sep()
		b = append(b, `"roles":[`...)
		for i, r := range a.Roles {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(append(b, '"'), r...), '"')
		}
		b = append(b, ']')
	}
	if a.Operator {
		sep()
		b = append(b, `"operator":true`...)
	}
	if a.System != "" {
		sep()
		b = appendStringField(b, "system", a.System)
	}
	return append(b, '}')
}

// appendStringField appends "name":"value" for a plain value.
func appendStringField(b []byte, name, value string) []byte {
	b = append(append(append(b, '"'), name...), `":"`...)
	return append(append(b, value...), '"')
}

func plainStrings(ss ...string) bool {
	for _, s := range ss {
		if !plainString(s) {
			return false
		}
	}
	return true
}

// plainString: s is printable ASCII without '"' or '\\' (and the HTML
// characters < > &, which an encoder may escape): every JSON encoder
// writes it as it is.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte[c]: c may stand in a plain string (see plainString).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// plainTime: t is written by time.Time's MarshalJSON as RFC3339Nano
// formats it: a year of four digits and a zone offset of whole minutes
// within a day.
func plainTime(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	if t.Location() == time.UTC { // the events' own: no zone to look up
		return true
	}
	_, offset := t.Zone()
	return offset%60 == 0 && offset > -24*3600 && offset < 24*3600
}

// compactJSON: data holds no white space outside strings (a marshaller's
// output, as sonic copies it into the envelope unchanged).
func compactJSON(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return len(data) > 0 && !inString
}

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

// Marshal encodes v as encoding/json.Marshal does (HTML escaped, map keys
// sorted, Marshaler output compacted), faster, and byte for byte but for
// one difference: U+0008 and U+000C are written \u0008 and \u000c, where
// encoding/json writes \b and \f since Go 1.22. Read models are written
// with it (and render's hand encoders copy it), so they compare equal with
// what earlier builds wrote.
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
