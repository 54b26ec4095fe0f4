package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode/utf8"
)

// checkStrictOld is the strict check as it was before the byte scanner
// (encoding/json's Token), kept as the oracle the scanner is held to
// (FuzzStrictScanner). It refuses what encoding/json would accept in a way the client
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
func checkStrictOld(body []byte, t reflect.Type) error {
	w := oldStrictWalker{dec: json.NewDecoder(bytes.NewReader(body)), body: body}
	err := w.value("", t, 0)
	if _, ok := err.(errLeaveToDecoder); ok {
		return nil
	}
	return err
}

type oldStrictWalker struct {
	dec  *json.Decoder
	body []byte
}

// token reads the next token and checks that its bytes are valid UTF-8.
func (w *oldStrictWalker) token(path string) (json.Token, error) {
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

func (w *oldStrictWalker) value(path string, t reflect.Type, depth int) error {
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

func (w *oldStrictWalker) object(path string, t reflect.Type, depth int) error {
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
			return invalidRequest(bodyField(p), "%s is given twice", bounded(p))
		}
		seen[key] = true
		var ft reflect.Type
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return invalidRequest(bodyField(p), "unknown field %q: names are case-sensitive, write %q", bounded(p), joinPath(path, name))
					}
				}
				return invalidRequest(bodyField(p), "unknown field %q", bounded(joinPath(path, key)))
			}
		}
		if err := w.value(p, ft, depth+1); err != nil {
			return err
		}
	}
	_, err := w.token(path) // }
	return err
}
