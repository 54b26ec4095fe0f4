package api

import (
	"bytes"
	"encoding/json"
	"reflect"
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
// checked. Malformed JSON is left to the decoder (errLeaveToDecoder).
func checkStrict(body []byte, t reflect.Type) error {
	w := strictWalker{dec: json.NewDecoder(bytes.NewReader(body)), body: body}
	err := w.value("", t, 0)
	if _, ok := err.(errLeaveToDecoder); ok {
		return nil
	}
	return err
}

type strictWalker struct {
	dec  *json.Decoder
	body []byte
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

// token reads the next token and checks that its bytes are valid UTF-8.
func (w *strictWalker) token(path string) (json.Token, error) {
	start := w.dec.InputOffset()
	tok, err := w.dec.Token()
	if err != nil {
		return nil, errLeaveToDecoder{}
	}
	if raw := w.body[start:w.dec.InputOffset()]; !utf8.Valid(raw) {
		return nil, invalidRequest(orBody(path), "%s is not valid UTF-8", orBody(path))
	}
	return tok, nil
}

func (w *strictWalker) value(path string, t reflect.Type, depth int) error {
	if depth > maxBodyDepth {
		return invalidRequest(orBody(path), "the body nests deeper than %d levels", maxBodyDepth)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := w.token(path)
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return w.object(path, t, depth)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for w.dec.More() {
			if err := w.value(path, elem, depth+1); err != nil {
				return err
			}
		}
		_, err := w.token(path) // ]
		return err
	}
	return nil
}

func (w *strictWalker) object(path string, t reflect.Type, depth int) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.token(path)
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		p := joinPath(path, key)
		if key == "" { // name the object the empty key is in
			p = orBody(path)
		}
		if seen[key] {
			return invalidRequest(p, "%s is given twice", p)
		}
		seen[key] = true
		var ft reflect.Type
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return invalidRequest(p, "unknown field %q: names are case-sensitive, write %q", p, joinPath(path, name))
					}
				}
				return invalidRequest(p, "unknown field %q", joinPath(path, key))
			}
		}
		if err := w.value(p, ft, depth+1); err != nil {
			return err
		}
	}
	_, err := w.token(path) // }
	return err
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
