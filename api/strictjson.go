package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxBodyDepth bounds the nesting of a request body: no request type nests
// deeper than a few levels, and the walk below recurses once per level.
const maxBodyDepth = 32

// errLeaveToDecoder stops the strict walk at input encoding/json refuses
// itself (malformed JSON): its decoder says what is wrong, with the offset.
type errLeaveToDecoder struct{}

func (errLeaveToDecoder) Error() string { return "malformed JSON" }

// checkStrict refuses what encoding/json would accept in a way the client
// did not mean, naming the field by its JSON path in the body (a.b.c,
// without array indices, as the domain's field names):
//   - a key given twice in one object (encoding/json keeps the last);
//   - a key that is not a field of the request type, including one that
//     matches a field only when case is ignored ({"ID":…} for "id");
//   - invalid UTF-8 anywhere (encoding/json turns it into U+FFFD).
//
// It walks the body alongside t, the Go type the body decodes into; where
// t has no fields to compare with (a scalar, an interface), names are not
// checked. Malformed JSON is left to the decoder: the walk stops at it
// and accepts, and the decoder says what is wrong, with the offset.
//
// It is a byte scanner that decides exactly as a walk over encoding/json's
// Decoder.Token did (the oracle kept in strictjson_old_test.go, held to it
// by FuzzStrictScanner), in a tenth of the time and without allocating for
// a body it accepts: it checks in document order and stops at the first
// problem or malformed token, so which problem a body gets is the same. In
// particular a key is checked before its colon, the depth before an
// element's comma, a string's syntax before its UTF-8, and a number too
// large for a float64 is malformed (Token fails to convert it).
func checkStrict(body []byte, t reflect.Type) error {
	_, err := scanStrict(body, t)
	return err
}

// scanStrict is checkStrict, and says whether the body is one well-formed
// JSON value with nothing but white space after it (whole): then the
// decoder has no syntax error to report.
func scanStrict(body []byte, t reflect.Type) (whole bool, err error) {
	s := strictScanners.Get().(*strictScanner)
	s.b, s.i = body, 0
	s.keys, s.seen = s.keyBuf[:0], s.seenBuf[:0]
	err = s.value(t, 0)
	if err == nil {
		_, more := s.peek()
		whole = !more
	}
	clear(s.keys[:cap(s.keys)]) // hold no pieces of the body while pooled
	clear(s.seen[:cap(s.seen)])
	s.b, s.keys, s.seen = nil, nil, nil
	strictScanners.Put(s)
	if _, ok := err.(errLeaveToDecoder); ok {
		return false, nil
	}
	return whole, err
}

var fieldsCheckedCache sync.Map // reflect.Type -> bool

// fieldsChecked reports whether checkStrict, accepting a body for t,
// proves that encoding/json's DisallowUnknownFields would find no unknown
// field in it either: every struct the decoder can reach in t is one the
// scanner walks with its fields (not under a map, whose values the scanner
// walks untyped), with plain fields whose names are what jsonFields says
// (no embedding, no name given twice, tags of plain characters). The
// decoder then need not look for unknown fields again.
func fieldsChecked(t reflect.Type) bool {
	if t == nil {
		return false
	}
	if ok, found := fieldsCheckedCache.Load(t); found {
		return ok.(bool)
	}
	ok := fieldsCheckedIn(t, map[reflect.Type]bool{})
	fieldsCheckedCache.Store(t, ok)
	return ok
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func fieldsCheckedIn(t reflect.Type, visiting map[reflect.Type]bool) bool {
	if visiting[t] { // a type that contains itself: decided where it started
		return true
	}
	visiting[t] = true
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || t.Implements(jsonUnmarshaler) {
		return true // decodes itself: DisallowUnknownFields does not reach it
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return fieldsCheckedIn(t.Elem(), visiting)
	case reflect.Map:
		return !hasStruct(t.Elem(), map[reflect.Type]bool{})
	case reflect.Struct:
		names := map[string]bool{}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				return false
			}
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if !plainName(name) {
				return false
			}
			if name == "" {
				name = f.Name
			}
			if names[name] || !fieldsCheckedIn(f.Type, visiting) {
				return false
			}
			names[name] = true
		}
	}
	return true
}

// hasStruct reports whether decoding into t can fill a struct's fields.
func hasStruct(t reflect.Type, visiting map[reflect.Type]bool) bool {
	if visiting[t] {
		return false
	}
	visiting[t] = true
	switch t.Kind() {
	case reflect.Struct:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return hasStruct(t.Elem(), visiting)
	}
	return false
}

// plainName: a tag's name of letters, digits, '_' and '-' (or none), taken
// by encoding/json as written.
func plainName(name string) bool {
	for _, c := range name {
		if !(c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orBody(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// strictScanner is checkStrict's position in the body, with the keys of
// the objects it is in (to name a field only when there is a problem) and
// the keys seen so far in each of them.
type strictScanner struct {
	b       []byte
	i       int
	keys    [][]byte // the key of each enclosing member, outermost first
	seen    [][]byte // the keys of the open objects, innermost last
	keyBuf  [8][]byte
	seenBuf [16][]byte
}

// strictScanners keeps scanners between requests: a scanner escapes (its
// walk recurses), and a body's check then allocates nothing.
var strictScanners = sync.Pool{New: func() any { return new(strictScanner) }}

// path is the JSON path of the value being walked, as the walk named it:
// a.b.c, and an empty key names the object it is in.
func (s *strictScanner) path() string {
	path := ""
	for _, k := range s.keys {
		if len(k) == 0 {
			path = orBody(path)
		} else {
			path = joinPath(path, string(k))
		}
	}
	return path
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// peek skips white space and returns the next byte (false at the end).
func (s *strictScanner) peek() (byte, bool) {
	for s.i < len(s.b) {
		c := s.b[s.i]
		if !isJSONSpace(c) {
			return c, true
		}
		s.i++
	}
	return 0, false
}

func (s *strictScanner) depthError() error {
	return invalidRequest(orBody(s.path()), "the body nests deeper than %d levels", maxBodyDepth)
}

// value walks one value at depth, whose depth has been checked.
func (s *strictScanner) value(t reflect.Type, depth int) error {
	if depth > maxBodyDepth {
		return s.depthError()
	}
	return s.checkedValue(t, depth)
}

func (s *strictScanner) checkedValue(t reflect.Type, depth int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	c, ok := s.peek()
	if !ok {
		return errLeaveToDecoder{}
	}
	switch {
	case c == '{':
		s.i++
		return s.object(t, depth)
	case c == '[':
		s.i++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		return s.array(elem, depth)
	case c == '"':
		str, nonASCII, _, ok := s.str()
		if !ok {
			return errLeaveToDecoder{}
		}
		if nonASCII && !utf8.Valid(str) {
			p := orBody(s.path())
			return invalidRequest(p, "%s is not valid UTF-8", p)
		}
		return nil
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return errLeaveToDecoder{}
}

func (s *strictScanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errLeaveToDecoder{}
	}
	s.i += len(lit)
	return nil
}

// number reads a number as encoding/json's scanner does: the longest
// prefix that is a number; one that does not fit a float64 is malformed.
func (s *strictScanner) number() error {
	b, i := s.b, s.i
	start := i
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return errLeaveToDecoder{}
	}
	switch {
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return errLeaveToDecoder{}
	}
	large := i-start > 300 // with 309 digits a number can overflow
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return errLeaveToDecoder{}
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		large = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return errLeaveToDecoder{}
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if large {
		if _, err := strconv.ParseFloat(string(b[start:i]), 64); err != nil {
			return errLeaveToDecoder{}
		}
	}
	s.i = i
	return nil
}

// str reads the string at s.i (its opening quote) and returns its bytes
// between the quotes, whether any is not ASCII and whether it has an
// escape; false when it is malformed.
func (s *strictScanner) str() (str []byte, nonASCII, escaped, ok bool) {
	b := s.b
	start := s.i + 1
	for i := start; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return b[start:i], nonASCII, escaped, true
		case c == '\\':
			escaped = true
			i++
			if i >= len(b) {
				return nil, false, false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return nil, false, false, false
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, false, false, false
					}
				}
				i += 4
			default:
				return nil, false, false, false
			}
		case c < 0x20:
			return nil, false, false, false
		case c >= utf8.RuneSelf:
			nonASCII = true
		}
	}
	return nil, false, false, false
}

func (s *strictScanner) array(elem reflect.Type, depth int) error {
	for first := true; ; first = false {
		c, ok := s.peek()
		if !ok || c == '}' {
			return errLeaveToDecoder{}
		}
		if c == ']' {
			s.i++
			return nil
		}
		if depth+1 > maxBodyDepth { // checked before the comma, as the walk did
			return s.depthError()
		}
		if !first {
			if c != ',' {
				return errLeaveToDecoder{}
			}
			s.i++
		}
		if err := s.checkedValue(elem, depth+1); err != nil {
			return err
		}
	}
}

// maxLinearKeys is how many keys an object may have before checkStrict
// finds a key given twice with a map instead of comparing with each.
const maxLinearKeys = 32

func (s *strictScanner) object(t reflect.Type, depth int) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	mark := len(s.seen)
	defer func() { s.seen = s.seen[:mark] }()
	var many map[string]bool // the keys, once there are more than maxLinearKeys
	for first := true; ; first = false {
		c, ok := s.peek()
		if !ok || c == ']' {
			return errLeaveToDecoder{}
		}
		if c == '}' {
			s.i++
			return nil
		}
		if !first {
			if c != ',' {
				return errLeaveToDecoder{}
			}
			s.i++
			if c, ok = s.peek(); !ok {
				return errLeaveToDecoder{}
			}
		}
		if c != '"' {
			return errLeaveToDecoder{}
		}
		key, nonASCII, escaped, ok := s.str()
		if !ok {
			return errLeaveToDecoder{}
		}
		if nonASCII && !utf8.Valid(key) {
			p := orBody(s.path())
			return invalidRequest(p, "%s is not valid UTF-8", p)
		}
		if escaped {
			key = unescapeKey(s.b[s.i-len(key)-2 : s.i])
		}
		if err := s.checkKey(key, fields, mark, &many); err != nil {
			return err
		}
		var ft reflect.Type
		if fields != nil {
			ft = fields[string(key)]
		}
		s.keys = append(s.keys, key)
		err := s.member(ft, depth+1)
		s.keys = s.keys[:len(s.keys)-1]
		if err != nil {
			return err
		}
	}
}

// member walks a member's value after its key: the depth is checked before
// the colon, as the walk did.
func (s *strictScanner) member(t reflect.Type, depth int) error {
	if depth > maxBodyDepth {
		return s.depthError()
	}
	if c, ok := s.peek(); !ok || c != ':' {
		return errLeaveToDecoder{}
	}
	s.i++
	return s.checkedValue(t, depth)
}

// checkKey refuses a key given twice in the object whose keys start at
// s.seen[mark], and one that is not a name of fields (unless nil); it
// records the key as seen.
func (s *strictScanner) checkKey(key []byte, fields map[string]reflect.Type, mark int, many *map[string]bool) error {
	dup := false
	if *many != nil {
		dup = (*many)[string(key)]
		(*many)[string(key)] = true
	} else {
		for _, k := range s.seen[mark:] {
			if bytes.Equal(k, key) {
				dup = true
				break
			}
		}
		s.seen = append(s.seen, key)
		if len(s.seen)-mark > maxLinearKeys {
			*many = make(map[string]bool, 2*maxLinearKeys)
			for _, k := range s.seen[mark:] {
				(*many)[string(k)] = true
			}
		}
	}
	if !dup && fields != nil {
		if _, ok := fields[string(key)]; ok {
			return nil
		}
	}
	if !dup && fields == nil {
		return nil
	}
	path := s.path()
	k := string(key)
	p := joinPath(path, k)
	if k == "" { // name the object the empty key is in
		p = orBody(path)
	}
	if dup {
		return invalidRequest(bodyField(p), "%s is given twice", bounded(p))
	}
	for name := range fields {
		if strings.EqualFold(name, k) {
			return invalidRequest(bodyField(p), "unknown field %q: names are case-sensitive, write %q", bounded(p), joinPath(path, name))
		}
	}
	return invalidRequest(bodyField(p), "unknown field %q", bounded(joinPath(path, k)))
}

// unescapeKey decodes a quoted key with escapes as encoding/json does
// (an unpaired surrogate becomes U+FFFD).
func unescapeKey(quoted []byte) []byte {
	var k string
	if err := json.Unmarshal(quoted, &k); err != nil {
		return quoted // not reached: the scanner checked the string
	}
	return []byte(k)
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields maps the JSON names of a struct's fields (embedded structs
// flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, taken := m[k]; !taken {
						m[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}
