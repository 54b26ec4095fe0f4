package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// decodeBodyOld is decodeBody as it was before it decoded a checked body
// with one plain json.Unmarshal: a checking decoder (DisallowUnknownFields,
// then a look for trailing data) after checkStrict, for every body. It is
// the oracle of FuzzDecodeBody.
func decodeBodyOld(body []byte, v any, required bool) error {
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
	if err := checkStrict(trimmed, reflect.TypeOf(v)); err != nil {
		return err
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

// decodeSame fails t unless decodeBody decodes body into a new value of
// typ as decodeBodyOld does: the same problem, or the same value.
func decodeSame(t *testing.T, body []byte, typ reflect.Type) {
	t.Helper()
	if typ == nil {
		return
	}
	got, want := reflect.New(typ), reflect.New(typ)
	gotErr, wantErr := decodeBody(body, got.Interface(), true), decodeBodyOld(body, want.Interface(), true)
	if !reflect.DeepEqual(gotErr, wantErr) {
		t.Fatalf("%v %q:\n got %#v\nwant %#v", typ, body, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got.Interface(), want.Interface()) {
		t.Fatalf("%v %q: decoded\n %#v\nwant %#v", typ, body, got.Elem().Interface(), want.Elem().Interface())
	}
}

// decodeTypes are strictTypes and command bodies of the other shapes, with
// a map of structs (whose fields the scanner does not check: the decoder
// must) and a field named twice through embedding.
var decodeTypes = append(append([]reflect.Type{}, strictTypes...),
	reflect.TypeOf(&purchaseRequest{}), reflect.TypeOf(&retentionHoldRequest{}), reflect.TypeOf(&bulkAssignRequest{}),
	reflect.TypeOf(map[string]LicenseRequest{}), reflect.TypeOf(&struct {
		M map[string][]LicenseRequest `json:"m"`
	}{}), reflect.TypeOf(&struct {
		NewUserRequest
		ID int `json:"id"`
	}{}), reflect.TypeOf(&struct {
		S string     `json:"s,string"`
		B *bool      `json:"b"`
		V bool       `json:"v"`
		L [][]string `json:"l"`
		I any        `json:"i"`
		P *[]string  `json:"p"`
		N *struct {
			X []bool `json:"x"`
		} `json:"n"`
	}{}))

func decodeSeeds() []string {
	return append(strictSeeds(), `{"m":{"k":[{"skuId":"a","bogus":1}]}}`, `{"k":{"skuId":"a","SKUID":1}}`, `{"id":1}`,
		`{"id":"x"}`, `{"users":["a"]} {}`, `{"users":["a"]}{`, `{"users":[1]}`, `{"users":"a","bogus":1}`, `{"enabled":"yes"}`,
		`{"quantity":"1"}`, `{"quantity":1.5}`, `{"product":{"servicePlans":[{"workload":7}]}}`, `{"users":["\ud800"]}`, "{\"users\":[\"a\"]}\u00a0",
		`{"s":"\"x\"","b":true,"v":false,"l":[[],["a","b"],null],"i":{"a":1},"p":["x"],"n":{"x":[true,false]}}`, `{"s":"x"}`,
		`{"b":null,"v":null,"l":null,"p":null,"n":null}`, `{"users":["a","b","c","d","e","f"],"disabledPlans":[]}`, `{"users":[null,"a"]}`,
		`{"users":["a\"b"]}`, `{"n":{"x":[1]}}`, `{"v":"true"}`)
}

func TestDecodeBodySeeds(t *testing.T) {
	for _, s := range decodeSeeds() {
		for _, typ := range decodeTypes {
			decodeSame(t, []byte(s), typ)
		}
	}
}

// FuzzDecodeBody holds decodeBody to decodeBodyOld on any bytes and any of
// decodeTypes: the same problem, or the same decoded value.
func FuzzDecodeBody(f *testing.F) {
	for i, s := range decodeSeeds() {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, ti uint8, body []byte) {
		decodeSame(t, body, decodeTypes[int(ti)%len(decodeTypes)])
	})
}

// TestFieldsChecked: the command bodies skip the second look for unknown
// fields; a type the scanner does not check throughout does not.
func TestFieldsChecked(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeOf(&assignLicenseRequest{}), reflect.TypeOf(&bulkAssignRequest{}),
		reflect.TypeOf(&bulkUnassignRequest{}), reflect.TypeOf(&purchaseRequest{}), reflect.TypeOf(&createTenantRequest{}),
		reflect.TypeOf(&noBody{}), reflect.TypeOf(&strictNode{}), reflect.TypeOf(map[string]any{})} {
		if !fieldsChecked(typ) {
			t.Errorf("%v: fieldsChecked false, want true", typ)
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(&strictEmbedded{}), reflect.TypeOf(map[string]LicenseRequest{}), nil} {
		if fieldsChecked(typ) {
			t.Errorf("%v: fieldsChecked true, want false", typ)
		}
	}
}

// BenchmarkDecodeBody measures decoding the body of the bench's commands
// (assign and unassign) and a larger one, old (checking decoder after the
// scanner) against new (one json.Unmarshal after the scanner).
func BenchmarkDecodeBody(b *testing.B) {
	bodies := strictBodies()
	cases := []struct {
		name string
		body string
		typ  func() any
	}{
		{"benchAssign", `{"users":["u3"]}`, func() any { return new(bulkAssignRequest) }},
		{"benchUnassign", `{"users":["u3"]}`, func() any { return new(bulkUnassignRequest) }},
		{"assignLicense", bodies["assignLicense"], func() any { return new(assignLicenseRequest) }},
		{"manageLicenses", bodies["manageLicenses"], func() any { return new(manageLicensesRequest) }},
	}
	for _, impl := range []struct {
		name   string
		decode func([]byte, any, bool) error
	}{{"old", decodeBodyOld}, {"new", decodeBody}} {
		for _, c := range cases {
			body := []byte(c.body)
			b.Run(c.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.decode(body, c.typ(), true); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestDecodeCheckedTakesCommandBodies: the usual command bodies are
// decoded in one pass, not left to json.Unmarshal.
func TestDecodeCheckedTakesCommandBodies(t *testing.T) {
	bodies := strictBodies()
	for _, c := range []struct {
		body string
		v    any
	}{{`{"users":["u3"]}`, new(bulkAssignRequest)}, {`{"users":["u3"]}`, new(bulkUnassignRequest)},
		{bodies["assignLicense"], new(assignLicenseRequest)}, {bodies["manageLicenses"], new(manageLicensesRequest)},
		{bodies["addUser"], new(addUserRequest)}, {`{"roles":["GlobalAdmin"]}`, new(rolesRequest)}} {
		if !decodeChecked([]byte(c.body), c.v) {
			t.Errorf("%T %s: left to json.Unmarshal", c.v, c.body)
		}
	}
}
