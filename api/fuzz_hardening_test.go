package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seatledger/seatledger/api"
)

// bodylessRoutes are the command endpoints that take no body (issue 18's
// delete, restore, takeOver and app install, and group membership).
var bodylessRoutes = []struct{ method, path string }{
	{"DELETE", "/v1/tenants/contoso/users/alice"},
	{"POST", "/v1/tenants/contoso/users/alice/restore"},
	{"POST", "/v1/tenants/contoso/subscriptions/s1/takeOver"},
	{"POST", "/v1/tenants/contoso/apps/SPB/install"},
	{"PUT", "/v1/tenants/contoso/groups/g1/members/alice"},
	{"DELETE", "/v1/tenants/contoso/groups/g1/members/alice"},
}

// FuzzBodylessCommands sends arbitrary bodies to the commands without a
// body: never a 5xx; a body other than nothing or an empty object (in any
// layout) is 400 invalid_request; and no refusal writes anything.
func FuzzBodylessCommands(f *testing.F) {
	for i := range bodylessRoutes {
		for _, s := range []string{"", "{}", " { } ", "null", "[]", `{"force":true}`, `{"ID":1}`, "\xef\xbb\xbf{}", `{}{}`, `{"a":1,"a":2}`, "{\"\xff\":1}", `"x"`, strings.Repeat("{", 64)} {
			f.Add(uint8(i), s)
		}
	}
	fs := newFuzzServer(f)
	serve(f, fs.srv, req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: testOperator, Body: `{"id":"g1","displayName":"G"}`})
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := bodylessRoutes[int(route)%len(bodylessRoutes)]
		before := fs.version(t)
		got := serve(t, fs.srv, req{Method: r.method, Path: r.path, Token: testOperator, Body: body})
		where := r.method + " " + r.path
		if got.Code >= 500 {
			t.Fatalf("%s %q: %d %s", where, body, got.Code, got.Body)
		}
		if got.Code >= 400 && fs.version(t) != before {
			t.Fatalf("%s %q: %d but the stream moved", where, body, got.Code)
		}
		if strings.TrimSpace(body) != "" && string(api.CanonicalJSON([]byte(body))) != "{}" {
			if got.Code != http.StatusBadRequest {
				t.Fatalf("%s with body %q: %d, want 400: %s", where, body, got.Code, got.Body)
			}
			p := got.JSON(t)
			if p["code"] != "invalid_request" || p["field"] == nil {
				t.Fatalf("%s with body %q: problem without a field: %s", where, body, got.Body)
			}
		}
	})
}

// strictRoutes are command endpoints with a body, and the exact top-level
// names each body may have.
var strictRoutes = []struct {
	method, path string
	names        []string
}{
	{"POST", "/v1/tenants/contoso/users", []string{"id", "userPrincipalName", "displayName", "userType", "usageLocation"}},
	{"POST", "/v1/tenants/contoso/groups", []string{"id", "displayName"}},
	{"PATCH", "/v1/tenants/contoso/users/alice/licenses/SPB", []string{"disabledPlans"}},
	{"POST", "/v1/tenants/contoso/users/alice/assignLicense", []string{"addLicenses", "removeLicenses"}},
	{"PATCH", "/v1/tenants/contoso/subscriptions/s1", []string{"quantity", "status"}},
}

// FuzzStrictJSON sends arbitrary bodies to commands with a body: never a
// 5xx, a refusal writes nothing and a 400 names a field; and whatever is
// accepted is strict JSON: valid UTF-8 without a byte order mark, no key
// twice in any object, and top-level names exactly the route's (not
// matched without regard to case).
func FuzzStrictJSON(f *testing.F) {
	seeds := []string{`{"id":"g2","displayName":"G"}`, `{"id":"g3","displayName":"G","id":"g4"}`, `{"ID":"g5","displayName":"G"}`,
		`{"Id":"u1","userPrincipalName":"u1@c.example"}`, "{\"id\":\"u2\",\"userPrincipalName\":\"u2@c.example\",\"displayName\":\"\xc3\x28\"}",
		"\xef\xbb\xbf{\"id\":\"g6\",\"displayName\":\"G\"}", `{"disabledPlans":[]}`, `{"disabledPlans":["SWAY"],"disabledPlans":[]}`,
		`{"DisabledPlans":[]}`, `{"addLicenses":[{"skuId":"SPB","SKUID":"SPB"}]}`, `{"quantity":6}`, `{"quantity":6,"quantity":7}`,
		`{"QUANTITY":6}`, `{"quantity":5.5}`, `{"quantity":1e2}`, `{"displayName":"\ud800"}`, "{\"id\":\"a\xffb\",\"displayName\":\"G\"}"}
	for i := range strictRoutes {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	fs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := strictRoutes[int(route)%len(strictRoutes)]
		before := fs.version(t)
		got := serve(t, fs.srv, req{Method: r.method, Path: r.path, Token: testOperator, Body: body})
		where := r.method + " " + r.path
		switch {
		case got.Code >= 500:
			t.Fatalf("%s %q: %d %s", where, body, got.Code, got.Body)
		case got.Code >= 400:
			if fs.version(t) != before {
				t.Fatalf("%s %q: %d but the stream moved", where, body, got.Code)
			}
			if p := got.JSON(t); got.Code == http.StatusBadRequest && p["code"] == "invalid_request" && p["field"] == nil {
				t.Fatalf("%s %q: 400 naming no field: %s", where, body, got.Body)
			}
		case got.Code < 300:
			if !utf8.ValidString(body) || strings.HasPrefix(body, "\xef\xbb\xbf") {
				t.Fatalf("%s accepted %q: not valid UTF-8 or with a byte order mark", where, body)
			}
			if key, dup := duplicateKey(body); dup {
				t.Fatalf("%s accepted %q: key %q twice", where, body, key)
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &top); err != nil {
				t.Fatalf("%s accepted %q: not a JSON object: %v", where, body, err)
			}
			for k := range top {
				if !slices.Contains(r.names, k) {
					t.Fatalf("%s accepted %q: name %q is not one of %v", where, body, k, r.names)
				}
			}
		}
	})
}

// duplicateKey finds a key given twice in one object of a JSON text
// (false if there is none, or the text is not JSON).
func duplicateKey(body string) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // an object's next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.expect
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				if top != nil && top.object {
					top.expect = true
				}
				stack = append(stack, &frame{object: true, keys: map[string]bool{}, expect: true})
				continue
			case '[':
				if top != nil && top.object {
					top.expect = true
				}
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return "", false
				}
				continue
			}
		case string:
			if isKey {
				if top.keys[v] {
					return v, true
				}
				top.keys[v] = true
				top.expect = false
				continue
			}
		}
		if top != nil && top.object {
			top.expect = true // a value was read: a key comes next
		}
	}
}
