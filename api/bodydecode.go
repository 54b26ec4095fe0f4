package api

import (
	"encoding"
	"reflect"
	"strings"
	"sync"
)

// decodeChecked decodes body, which checkStrict accepted whole, into v (a
// pointer to a zero value of a type fieldsChecked allows), in one pass over
// the bytes, as json.Unmarshal would. It handles the values command bodies
// are made of (objects into structs, arrays of strings and objects, strings
// without escapes, booleans, null) and gives up, leaving v zero, on
// anything else (a number, an escape, a value of another kind than its
// field, a type that decodes itself), for json.Unmarshal to decode or
// refuse as it always did.
func decodeChecked(body []byte, v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || !rv.Elem().IsZero() {
		return false
	}
	d := bodyDecoder{b: body}
	if !d.value(rv.Elem()) {
		rv.Elem().SetZero()
		return false
	}
	return true
}

// bodyDecoder is decodeChecked's position in a body known to be well
// formed JSON without unknown, repeated or case-folded keys.
type bodyDecoder struct {
	b []byte
	i int
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// bodyType is what decodeChecked needs to know of a type.
type bodyType struct {
	self   bool           // encoding/json would call the type's own method
	fields map[string]int // a struct's fields by JSON name
}

var bodyTypes sync.Map // reflect.Type -> *bodyType

func bodyTypeOf(t reflect.Type) *bodyType {
	if bt, ok := bodyTypes.Load(t); ok {
		return bt.(*bodyType)
	}
	pt := reflect.PointerTo(t)
	bt := &bodyType{self: t.Implements(jsonUnmarshaler) || pt.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler)}
	if t.Kind() == reflect.Struct { // plain fields: fieldsChecked allowed it
		bt.fields = map[string]int{}
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			if !strings.Contains(","+opts+",", ",string,") { // a quoted value: left to encoding/json
				bt.fields[name] = i
			}
		}
	}
	bodyTypes.Store(t, bt)
	return bt
}

func (d *bodyDecoder) skipSpace() {
	for d.i < len(d.b) && isJSONSpace(d.b[d.i]) {
		d.i++
	}
}

// value decodes the value at d.i into v.
func (d *bodyDecoder) value(v reflect.Value) bool {
	d.skipSpace()
	bt := bodyTypeOf(v.Type())
	if d.i >= len(d.b) || bt.self {
		return false
	}
	c := d.b[d.i]
	if c == 'n' { // null: a pointer or slice becomes nil; others are left
		switch v.Kind() {
		case reflect.Pointer, reflect.Slice:
			v.SetZero()
		case reflect.String, reflect.Bool, reflect.Struct:
		default:
			return false
		}
		d.i += len("null")
		return true
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.value(v.Elem())
	}
	switch {
	case c == '"' && v.Kind() == reflect.String:
		s, ok := d.str()
		if ok {
			v.SetString(string(s))
		}
		return ok
	case c == 't' && v.Kind() == reflect.Bool:
		v.SetBool(true)
		d.i += len("true")
		return true
	case c == 'f' && v.Kind() == reflect.Bool:
		v.SetBool(false)
		d.i += len("false")
		return true
	case c == '[' && v.Kind() == reflect.Slice:
		return d.slice(v)
	case c == '{' && v.Kind() == reflect.Struct:
		return d.object(v, bt.fields)
	}
	return false
}

// str reads a string without escapes (the scanner checked its UTF-8).
func (d *bodyDecoder) str() ([]byte, bool) {
	start := d.i + 1
	for i := start; i < len(d.b); i++ {
		switch d.b[i] {
		case '"':
			d.i = i + 1
			return d.b[start:i], true
		case '\\':
			return nil, false
		}
	}
	return nil, false
}

// slice decodes an array into a nil slice: [] makes an empty one, as
// encoding/json does.
func (d *bodyDecoder) slice(v reflect.Value) bool {
	d.i++ // [
	n := 0
	for {
		d.skipSpace()
		if d.b[d.i] == ']' {
			d.i++
			if n == 0 {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return true
		}
		if d.b[d.i] == ',' {
			d.i++
		}
		if n == v.Cap() {
			v.Grow(max(4, n))
		}
		v.SetLen(n + 1)
		if !d.value(v.Index(n)) {
			return false
		}
		n++
	}
}

// object decodes an object into a struct: every key is a field's JSON name
// (the scanner refused any other).
func (d *bodyDecoder) object(v reflect.Value, fields map[string]int) bool {
	d.i++ // {
	for {
		d.skipSpace()
		switch d.b[d.i] {
		case '}':
			d.i++
			return true
		case ',':
			d.i++
			d.skipSpace()
		}
		key, ok := d.str()
		if !ok {
			return false
		}
		d.skipSpace()
		d.i++ // :
		f, ok := fields[string(key)]
		if !ok || !d.value(v.Field(f)) {
			return false
		}
	}
}
