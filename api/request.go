package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/seatledger/seatledger/domain"
)

// HeaderIdempotencyKey makes a command safe to retry.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderReplayed is set to "true" on the answer of a replayed command (same
// Idempotency-Key and body as an earlier request).
const HeaderReplayed = "Idempotent-Replayed"

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// readBody reads the request body, at most MaxBodyBytes, and undoes its
// Content-Encoding (gzip): the limit holds for the body as sent and as
// decoded.
func readBody(c *gin.Context) ([]byte, error) {
	if c.Request.Body == nil {
		return nil, nil
	}
	codings, err := bodyEncodings(c.Request.Header)
	if err != nil {
		return nil, err
	}
	if c.Request.ContentLength > MaxBodyBytes { // declared too large: not read
		return nil, errBodyTooLarge()
	}
	r := http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	var body []byte
	if n := c.Request.ContentLength; n > 0 && n <= exactBodyBytes {
		// The usual case: read exactly the declared length (net/http fails
		// a shorter body) instead of growing a buffer from 512 bytes, and
		// make sure nothing follows (net/http's body stops there; another
		// reader might not).
		body = make([]byte, n)
		if _, err = io.ReadFull(r, body); err == nil {
			var more [1]byte
			if k, _ := r.Read(more[:]); k > 0 {
				err = errors.New("request body longer than its Content-Length")
			}
		}
	} else { // unknown length, or large: grow as it arrives
		body, err = io.ReadAll(r)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errBodyTooLarge()
		}
		return nil, invalidRequest("body", "the request body could not be read")
	}
	return decodeBodyEncodings(body, codings)
}

// exactBodyBytes is the largest declared body read into a buffer of its
// size at once: a larger one grows as it arrives, so a slow client cannot
// make the server hold 1 MiB per connection before sending it.
const exactBodyBytes = 64 << 10

func errBodyTooLarge() error {
	return httpErrorf(http.StatusRequestEntityTooLarge, domain.CodeInvalidRequest, "body", "the request body is larger than %d bytes (1 MiB)", MaxBodyBytes)
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// decodeBody decodes a JSON object into v, refusing unknown fields,
// trailing data and what checkStrict refuses (duplicate keys, names that
// match only without regard to case, invalid UTF-8). An empty body is an
// error when required, else leaves v.
func decodeBody(body []byte, v any, required bool) error {
	if bytes.HasPrefix(body, utf8BOM) {
		return invalidRequest("body", "the body starts with a UTF-8 byte order mark (EF BB BF): send the JSON without it")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if required {
			return invalidRequest("body", "a JSON object body is required")
		}
		return nil
	}
	if trimmed[0] != '{' {
		return invalidRequest("body", "the body must be a JSON object")
	}
	t := reflect.TypeOf(v)
	whole, err := scanStrict(trimmed, t)
	if err != nil {
		return err
	}
	if whole && fieldsChecked(t) {
		// The scanner proved the body well formed, alone, and without an
		// unknown field: one plain decode gives what the checking decoder
		// below would, without copying the body into a decoder's buffer;
		// the usual command body takes one pass over its bytes.
		if decodeChecked(trimmed, v) {
			return nil
		}
		if err := json.Unmarshal(trimmed, v); err != nil {
			return jsonError(err)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidRequest("body", "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		he  *HTTPError
	)
	switch {
	case errors.As(err, &he): // a field's own UnmarshalJSON (quantity)
		return he
	case errors.As(err, &syn):
		return invalidRequest("body", "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return invalidRequest(field, "%s must be a JSON %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalidRequest("body", "the JSON body is truncated")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return invalidRequest(bodyField(orBody(name)), "unknown field %q", bounded(name))
	}
	return invalidRequest("body", "invalid JSON body: %s", err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32", "uint64", "float64":
		return "number"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	case "bool":
		return "boolean"
	}
	return k
}

// pathID returns a path parameter that must be a valid id.
func pathID(c *gin.Context, param, field string) (string, error) {
	v := c.Param(param)
	if !domain.ValidID(v) {
		return "", invalidRequest(field, "%s %q in the path is not valid: use 1 to 128 characters of A-Z a-z 0-9 . _ @ - (not . or ..)", field, bounded(v))
	}
	return v, nil
}

// idempotencyKey returns the request's Idempotency-Key ("" if none).
func idempotencyKey(c *gin.Context) (string, error) {
	vals, present := c.Request.Header[http.CanonicalHeaderKey(HeaderIdempotencyKey)]
	if !present {
		return "", nil
	}
	if len(vals) != 1 {
		return "", invalidRequest(HeaderIdempotencyKey, "send one Idempotency-Key header")
	}
	k := vals[0]
	if len(k) == 0 || len(k) > maxIdempotencyKey {
		return "", invalidRequest(HeaderIdempotencyKey, "Idempotency-Key must be 1 to %d characters", maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", invalidRequest(HeaderIdempotencyKey, "Idempotency-Key must be printable ASCII")
		}
	}
	return k, nil
}

func hashHex(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = io.WriteString(h, p)
		_, _ = h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CommandID derives the command id of a request with an Idempotency-Key:
// the same tenant, actor and key always give the same id.
func CommandID(tenantID string, actor domain.Actor, key string) string {
	return "idem-" + hashHex("cmd", tenantID, actor.String(), key)[:32]
}

// RequestHash fingerprints a request: method, path and the canonical form
// of its JSON body (CanonicalJSON), so that a retry that lays the same JSON
// out otherwise (whitespace, key order, escapes) is the same request.
func RequestHash(method, path string, body []byte) string {
	return hashHex(method, path, string(CanonicalJSON(body)))
}

// CanonicalJSON is body with its layout normalised: objects' keys sorted,
// no insignificant whitespace, strings escaped one way; numbers are kept as
// written (2 and 2.0 differ). An empty body is {} (the endpoints without a
// body take both alike). A body that is not JSON is returned as is.
func CanonicalJSON(body []byte) []byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.Marshal(v) // maps: keys sorted
	if err != nil {
		return body
	}
	return out
}

// newID returns the id of a resource the client did not name: derived from
// the Idempotency-Key when there is one (a retry names the same resource),
// else random.
func newID(kind, tenantID string, actor domain.Actor, key string) string {
	if key == "" {
		return newUUID()
	}
	return hashHex("id", kind, tenantID, actor.String(), key)[:32]
}

// maxEcho bounds how many bytes of a client's input an error message
// repeats (a 10,000-character cursor is not sent back whole): the
// domain's bound, so every layer cuts alike.
const maxEcho = domain.MaxEcho

// bounded returns s, or its first maxEcho bytes (cut at a character
// boundary) followed by "…" and the full length, for echoing input in an
// error message (domain.Echo).
func bounded(s string) string { return domain.Echo(s) }

// queryField is the problem's field for an unknown query parameter: its
// name, unless echoing it would not be safe or bounded (not UTF-8, a
// control character, longer than maxEcho); then "query", the query string.
func queryField(name string) string {
	if !echoable(name) {
		return "query"
	}
	return name
}

// bodyField is the problem's field for a JSON path made of the client's
// keys: the path, unless echoing it would not be safe or bounded; then
// "body".
func bodyField(path string) string {
	if !echoable(path) {
		return "body"
	}
	return path
}

// echoable reports whether a name the client sent may be a problem's field
// as is: UTF-8, no control character, at most maxEcho bytes.
func echoable(name string) bool {
	return len(name) <= maxEcho && utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsControl)
}

// checkQuery refuses a query string that does not parse, a parameter not
// in allowed, and a parameter given more than once, naming the parameter
// (400 invalid_request): a misspelt ?limt= is an error, not ignored.
func checkQuery(c *gin.Context, allowed ...string) error {
	raw := c.Request.URL.RawQuery
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return invalidRequest("query", "the query string is malformed: %s", bounded(err.Error()))
	}
	names := slices.Sorted(maps.Keys(q))
	for _, name := range names {
		if name == "" {
			return invalidRequest("query", "the query string has a parameter without a name")
		}
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return invalidRequest(queryField(name), "unknown query parameter %q: this endpoint takes none", bounded(name))
			}
			return invalidRequest(queryField(name), "unknown query parameter %q: this endpoint takes %s", bounded(name), strings.Join(allowed, ", "))
		}
		if len(q[name]) > 1 {
			return invalidRequest(name, "query parameter %s is given %d times: give it once", name, len(q[name]))
		}
	}
	return nil
}

// newUUID returns a random (version 4) UUID in its lowercase 36-character
// form, as uuid.NewString does, with one allocation where it makes two
// (the UUID read through an io.Reader escapes, then the string).
func newUUID() string {
	var u uuid.UUID
	_, _ = rand.Read(u[:])  // never fails (crypto/rand: Go 1.24+)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}
