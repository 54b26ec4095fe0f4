package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// hardeningEnv is a tenant with users alice (SPB) and bob, and 5 SPB.
func hardeningEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	e.createTenant("contoso")
	e.addUser("contoso", "admin", "alice", "US", "Member")
	e.addUser("contoso", "admin", "bob", "US", "Member")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	admin := token(t, "contoso", "admin")
	e.must(http.StatusOK, req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: admin, Body: `{"users":["alice"]}`})
	return e, admin
}

// TestHardening07_StrictJSON: a body encoding/json would take in a way the
// client did not mean is refused with 400 naming the field, and nothing is
// written: a key given twice (last would win), a key that matches a field
// only without regard to case, invalid UTF-8 (would become U+FFFD) and a
// leading byte order mark.
func TestHardening07_StrictJSON(t *testing.T) {
	e, admin := hardeningEnv(t)
	const c = "/v1/tenants/contoso"
	cases := []struct {
		name, path, body, field, detail string
	}{
		{"duplicate key", c + "/users", `{"id":"dup","userPrincipalName":"dup@contoso.example","id":"other"}`, "id", "twice"},
		{"duplicate nested key", c + "/users/bob/assignLicense", `{"addLicenses":[{"skuId":"SPB","skuId":"SPB"}]}`, "addLicenses.skuId", "twice"},
		{"case-insensitive name", c + "/users", `{"ID":"upper","userPrincipalName":"upper@contoso.example"}`, "ID", "id"},
		{"case-insensitive nested name", "/v1/tenants", `{"id":"fabrikam","globalAdmin":{"ID":"ga","userPrincipalName":"ga@f.example"}}`, "globalAdmin.ID", "id"},
		{"invalid UTF-8 in a value", c + "/users", "{\"id\":\"utf\",\"userPrincipalName\":\"u@contoso.example\",\"displayName\":\"bad \xff\xfe name\"}", "displayName", "UTF-8"},
		{"invalid UTF-8 in a key", c + "/groups", "{\"id\":\"g\",\"display\xffName\":\"x\"}", "", "UTF-8"},
		{"byte order mark", c + "/groups", "\xef\xbb\xbf{\"id\":\"g\",\"displayName\":\"x\"}", "body", "byte order mark"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := admin
			if tc.path == "/v1/tenants" {
				tok = testOperator
			}
			p := e.refused(t, "contoso", req{Method: "POST", Path: tc.path, Token: tok, Body: tc.body}, http.StatusBadRequest, "invalid_request")
			if tc.field != "" && p["field"] != tc.field {
				t.Errorf("field %v, want %s: %v", p["field"], tc.field, p)
			}
			if f, _ := p["field"].(string); f == "" {
				t.Errorf("no field named: %v", p)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Errorf("detail %q does not say %q", d, tc.detail)
			}
		})
	}
	// The same bodies, written correctly, are accepted.
	e.must(http.StatusCreated, req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"upper","userPrincipalName":"upper@contoso.example","displayName":"bien sûr"}`})
}

// TestHardening09_EmptyPlansPatchChangesNothing: a PATCH of a user's
// license without disabledPlans ({} or null) is refused and writes nothing:
// it used to turn every plan back on. Only [] turns every plan on.
func TestHardening09_EmptyPlansPatchChangesNothing(t *testing.T) {
	e, admin := hardeningEnv(t)
	path := "/v1/tenants/contoso/users/alice/licenses/SPB"
	e.must(http.StatusOK, req{Method: "PATCH", Path: path, Token: admin, Body: `{"disabledPlans":["SWAY"]}`})
	for _, body := range []string{`{}`, `{"disabledPlans":null}`} {
		p := e.refused(t, "contoso", req{Method: "PATCH", Path: path, Token: admin, Body: body}, http.StatusBadRequest, "invalid_request")
		if p["field"] != "disabledPlans" {
			t.Errorf("%s: field %v, want disabledPlans", body, p["field"])
		}
	}
	a := e.must(http.StatusOK, req{Method: "PATCH", Path: path, Token: admin, Body: `{"disabledPlans":[]}`})
	if len(a.answer(t).Events) == 0 {
		t.Fatal("disabledPlans [] turned nothing on")
	}
}

// TestHardening10_QuantityMessages: a quantity that is not a whole number,
// is above the cap, or is missing, says so (not "must be a JSON number, not
// number", not "not 0").
func TestHardening10_QuantityMessages(t *testing.T) {
	e, admin := hardeningEnv(t)
	const c = "/v1/tenants/contoso"
	cases := []struct {
		name, method, path, body, detail string
	}{
		{"fraction", "POST", c + "/subscriptions", `{"skuId":"SPB","quantity":5.5}`, "whole number"},
		{"exponent", "POST", c + "/subscriptions", `{"skuId":"SPB","quantity":1e2}`, "whole number"},
		{"2^63", "POST", c + "/subscriptions", `{"skuId":"SPB","quantity":9223372036854775808}`, "above the cap of 1000000"},
		{"above the cap", "POST", c + "/subscriptions", `{"skuId":"SPB","quantity":1000001}`, "above the cap of 1000000"},
		{"string", "POST", c + "/subscriptions", `{"skuId":"SPB","quantity":"5"}`, "a JSON number, not a string"},
		{"missing", "POST", c + "/subscriptions", `{"skuId":"SPB"}`, "quantity is required"},
		{"null", "POST", c + "/subscriptions", `{"skuId":"SPB","quantity":null}`, "quantity is required"},
		{"patch fraction", "PATCH", c + "/subscriptions/s1", `{"quantity":5.5}`, "whole number"},
		{"patch 2^63", "PATCH", c + "/subscriptions/s1", `{"quantity":9223372036854775808}`, "above the cap of 1000000"},
		{"patch negative 2^63", "PATCH", c + "/subscriptions/s1", `{"quantity":-9223372036854775809}`, "at least 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := e.refused(t, "contoso", req{Method: tc.method, Path: tc.path, Token: admin, Body: tc.body}, http.StatusBadRequest, "invalid_request")
			if p["field"] != "quantity" {
				t.Errorf("field %v, want quantity", p["field"])
			}
			d, _ := p["detail"].(string)
			if !strings.Contains(d, tc.detail) || strings.Contains(d, "not number") {
				t.Errorf("detail %q, want it to say %q", d, tc.detail)
			}
		})
	}
	e.must(http.StatusOK, req{Method: "PATCH", Path: c + "/subscriptions/s1", Token: admin, Body: `{"quantity":1000000}`})
}

// TestHardening04_JWTStrictClaims: a token whose exp is a JSON string, or
// whose header names a critical extension the server does not understand
// (RFC 7515 §4.1.11), is refused; the same token done right is accepted,
// and exp has a leeway of 5 seconds, no more.
func TestHardening04_JWTStrictClaims(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	now := time.Now()
	exp := now.Add(time.Hour).Unix()
	sign := func(claims jwt.MapClaims, header map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	path := "/v1/tenants/contoso/users"
	body := func(id string) string { return `{"id":"` + id + `","userPrincipalName":"` + id + `@contoso.example"}` }
	refused := map[string]string{
		"exp as a string":       sign(jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": strconv.FormatInt(exp, 10)}, nil),
		"unknown crit":          sign(jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": exp}, map[string]any{"crit": []string{"x-seatledger-unknown"}, "x-seatledger-unknown": true}),
		"empty crit":            sign(jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": exp}, map[string]any{"crit": []string{}}),
		"expired beyond leeway": sign(jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": now.Add(-6 * time.Second).Unix()}, nil),
	}
	for name, tok := range refused {
		t.Run(name, func(t *testing.T) {
			e.refused(t, "contoso", req{Method: "POST", Path: path, Token: tok, Body: body("x")}, http.StatusUnauthorized, "unauthenticated")
		})
	}
	e.must(http.StatusCreated, req{Method: "POST", Path: path, Token: sign(jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": exp}, nil), Body: body("ok1")})
	// Expired 2 s ago: within the leeway.
	e.must(http.StatusCreated, req{Method: "POST", Path: path, Token: sign(jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": now.Add(-2 * time.Second).Unix()}, nil), Body: body("ok2")})
}

// TestHardening15_IdempotencyCanonicalBody: a retry with the same key and
// the same JSON, written with other whitespace or key order, is a replay;
// the 409 for another body names the key as sent, not an internal id. A
// keyed request that changes nothing records the key (one NothingChanged
// event, so that its retry replays), an unkeyed one writes nothing: the
// difference docs/API.md states.
func TestHardening15_IdempotencyCanonicalBody(t *testing.T) {
	e, admin := hardeningEnv(t)
	const c = "/v1/tenants/contoso"
	key := map[string]string{"Idempotency-Key": "buy-more-1"}
	first := e.must(http.StatusCreated, req{Method: "POST", Path: c + "/subscriptions", Token: admin, Header: key, Body: `{"id":"s9","skuId":"SPB","quantity":2}`})
	v := e.version("contoso")
	again := e.must(http.StatusCreated, req{Method: "POST", Path: c + "/subscriptions", Token: admin, Header: key,
		Body: "{ \"quantity\" : 2,\n\t\"skuId\": \"SPB\", \"id\":\"s9\" }"})
	if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(first.Body) || e.version("contoso") != v {
		t.Fatalf("same JSON in another layout was not a replay: %s", again.Body)
	}
	p := e.refused(t, "contoso", req{Method: "POST", Path: c + "/subscriptions", Token: admin, Header: key, Body: `{"id":"s9","skuId":"SPB","quantity":3}`},
		http.StatusConflict, "idempotency_key_reused")
	if d, _ := p["detail"].(string); !strings.Contains(d, `"buy-more-1"`) || strings.Contains(d, "idem-") {
		t.Errorf("detail %q should name the key, not the command id", d)
	}
	if p["field"] != "Idempotency-Key" {
		t.Errorf("field %v, want Idempotency-Key", p["field"])
	}

	// A no-op: bob has no retention hold.
	hold := req{Method: "PUT", Path: c + "/users/bob/retentionHold", Token: admin, Body: `{"enabled":false}`}
	v = e.version("contoso")
	if a := e.must(http.StatusOK, hold); len(a.answer(t).Events) != 0 || e.version("contoso") != v {
		t.Fatalf("an unkeyed no-op wrote: %s", a.Body)
	}
	hold.Header = map[string]string{"Idempotency-Key": "hold-off-1"}
	a := e.must(http.StatusOK, hold)
	if got := eventTypes(t, a); len(got) != 1 || got[0] != "NothingChanged" || e.version("contoso") != v+1 {
		t.Fatalf("a keyed no-op: events %v, version %d -> %d", got, v, e.version("contoso"))
	}
	if r := e.must(http.StatusOK, hold); r.Header.Get("Idempotent-Replayed") != "true" || e.version("contoso") != v+1 {
		t.Fatal("the keyed no-op's retry was not a replay")
	}
}

// TestHardening14_RemovingALicenseNotHeld: the three routes that remove a
// license answer a user who does not have it the same way: 400
// invalid_request naming where the product was named, nothing written
// (the bulk unassign used to answer 200 and drop the others' licenses).
func TestHardening14_RemovingALicenseNotHeld(t *testing.T) {
	e, admin := hardeningEnv(t) // alice has SPB, bob has not
	const c = "/v1/tenants/contoso"
	cases := []struct {
		name, method, path, body, field string
	}{
		{"Graph assignLicense", "POST", c + "/users/bob/assignLicense", `{"removeLicenses":["SPB"]}`, "removeLicenses"},
		{"plans PATCH", "PATCH", c + "/users/bob/licenses/SPB", `{"disabledPlans":[]}`, "skuId"},
		{"bulk unassign", "POST", c + "/licenses/SPB/unassign", `{"users":["alice","bob"]}`, "users"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := e.refused(t, "contoso", req{Method: tc.method, Path: tc.path, Token: admin, Body: tc.body}, http.StatusBadRequest, "invalid_request")
			if p["field"] != tc.field {
				t.Errorf("field %v, want %s", p["field"], tc.field)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, "bob does not have") {
				t.Errorf("detail %q does not say bob does not have it", d)
			}
		})
	}
	// alice still has it, and removing it from her alone works.
	e.must(http.StatusOK, req{Method: "POST", Path: c + "/licenses/SPB/unassign", Token: admin, Body: `{"users":["alice"]}`})
}
