package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestGraphWritesCheckRolesBeforeLookups: a token of the tenant whose user
// may not read it (no admin role, deleted, or not a user at all) gets 403
// from a Graph write whatever the path and body name: the answer must not
// tell it which users, groups and products the tenant has (404 for a
// missing user, 400 for a product the tenant lacks, 403 otherwise would).
func TestGraphWritesCheckRolesBeforeLookups(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "bob", "US", "Member")
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: token(t, "contoso", "admin"), Body: `{"id":"g1","displayName":"G"}`})
	before := e.version("contoso")
	add := func(sku string) string {
		return `{"addLicenses":[{"skuId":"` + sku + `"}],"removeLicenses":[]}`
	}
	for _, who := range []string{"bob", "ghost"} {
		tok := token(t, "contoso", who)
		for _, c := range []struct{ name, path, body string }{
			{"a user that exists", "/users/admin/assignLicense", add("SPB")},
			{"a user that does not", "/users/nobody/assignLicense", add("SPB")},
			{"a product the tenant lacks", "/users/admin/assignLicense", add("ENTERPRISEPACK")},
			{"a group that exists", "/groups/g1/assignLicense", add("SPB")},
			{"a group that does not", "/groups/nog/assignLicense", add("SPB")},
			{"a group and a product the tenant lacks", "/groups/g1/assignLicense", add("ENTERPRISEPACK")},
		} {
			t.Run(who+" "+c.name, func(t *testing.T) {
				graphError(t, e.graph("POST", c.path, tok, c.body), http.StatusForbidden, "Authorization_RequestDenied")
			})
		}
	}
	if v := e.version("contoso"); v != before {
		t.Fatalf("refused writes wrote: version %d -> %d", before, v)
	}
}

// TestGraphErrorsEchoBoundedInput: Graph's error messages name the id,
// property, option or value at fault as /v1's problems do, cut to a
// bounded prefix: a 5,000-byte input is never sent back whole.
func TestGraphErrorsEchoBoundedInput(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "bob", "US", "Member")
	admin := token(t, "contoso", "admin")
	long := strings.Repeat("x", 5000)
	for _, c := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"user id", "GET", "/users/" + long, "", 404},
		{"user id of licenseDetails", "GET", "/users/" + long + "/licenseDetails", "", 404},
		{"user id of a write", "POST", "/users/" + long + "/assignLicense", `{"addLicenses":[],"removeLicenses":["SPB"]}`, 404},
		{"group id", "GET", "/groups/" + long, "", 404},
		{"subscribedSku id", "GET", "/subscribedSkus/" + long, "", 404},
		{"property", "POST", "/users/bob/assignLicense", `{"` + long + `":1,"addLicenses":[],"removeLicenses":[]}`, 400},
		{"property of a license", "POST", "/users/bob/assignLicense", `{"addLicenses":[{"skuId":"SPB","` + long + `":1}],"removeLicenses":[]}`, 400},
		{"skuId", "POST", "/users/bob/assignLicense", `{"addLicenses":[{"skuId":"` + long + `"}],"removeLicenses":[]}`, 400},
		{"$select", "GET", "/users?$select=" + long, "", 400},
		{"$filter property", "GET", "/users?$filter=" + long, "", 400},
		{"$filter value", "GET", "/users?$filter=displayName%20eq%20" + long, "", 400},
		{"$filter operator", "GET", "/users?$filter=displayName%20" + long + "%20'a'", "", 400},
		{"$filter function", "GET", "/users?$filter=" + long + "(displayName,'a')", "", 400},
		{"$top", "GET", "/users?$top=" + long, "", 400},
		{"$count", "GET", "/users?$count=" + long, "", 400},
		{"$skiptoken", "GET", "/users?$skiptoken=" + long, "", 400},
		{"query parameter", "GET", "/users?" + long + "=1", "", 400},
		{"query option", "GET", "/subscribedSkus?$" + long + "=1", "", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != "" {
				body = c.body
			}
			r := e.graph(c.method, c.path, admin, body)
			if r.Code != c.status {
				t.Fatalf("status %d, want %d: %.300s", r.Code, c.status, r.Body)
			}
			if strings.Contains(string(r.Body), strings.Repeat("x", 200)) {
				t.Fatalf("the answer repeats the input whole (%d bytes): %.300s", len(r.Body), r.Body)
			}
		})
	}
}

// TestGraphBodiesAreStrict: a Graph write's body is checked as /v1's are
// for what JSON itself leaves open: a property given twice (encoding/json
// keeps the last) and a string that is not UTF-8 (it becomes U+FFFD) are
// refused with 400 Request_BadRequest naming the property, and nothing is
// written. Instance annotations (@odata.type) stay accepted.
func TestGraphBodiesAreStrict(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "bob", "US", "Member")
	admin := token(t, "contoso", "admin")
	before := e.version("contoso")
	for _, c := range []struct{ name, body, target string }{
		{"a property twice", `{"addLicenses":[],"removeLicenses":[],"addLicenses":[{"skuId":"SPB"}]}`, "addLicenses"},
		{"a license's property twice", `{"addLicenses":[{"skuId":"SPB","skuId":"SPB"}],"removeLicenses":[]}`, "addLicenses.skuId"},
		{"a string not UTF-8", "{\"addLicenses\":[{\"skuId\":\"SP\xffB\"}],\"removeLicenses\":[]}", "addLicenses.skuId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ge := graphError(t, e.graph("POST", "/users/bob/assignLicense", admin, c.body), http.StatusBadRequest, "Request_BadRequest")
			details, _ := ge["details"].([]any)
			if len(details) != 1 || details[0].(map[string]any)["target"] != c.target {
				t.Fatalf("details %v, want one with target %s", ge["details"], c.target)
			}
		})
	}
	if v := e.version("contoso"); v != before {
		t.Fatalf("refused writes wrote: version %d -> %d", before, v)
	}
	graphOK(t, e.graph("POST", "/users/bob/assignLicense", admin,
		`{"@odata.type":"#microsoft.graph.assignLicense","addLicenses":[{"@odata.type":"#microsoft.graph.assignedLicense","skuId":"`+skuSPB+`","disabledPlans":[]}],"removeLicenses":[]}`), http.StatusOK)
}

// TestGraphFilterNestingIsBounded: $filter's parser recurses once per
// parenthesis and per not, so the depth of an expression is bounded (as a
// body's is): an expression nested deeper than 32 levels is 400
// Request_BadRequest, whatever the length of the URL allows; 32 levels
// are answered.
func TestGraphFilterNestingIsBounded(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	const clause = "displayName eq 'Admin'"
	nested := func(open, close string, n int) string {
		return url.QueryEscape(strings.Repeat(open, n) + clause + strings.Repeat(close, n))
	}
	for _, f := range []string{nested("(", ")", 10_000), nested("not ", "", 10_000), nested("(not ", ")", 5_000), nested("(", ")", 33)} {
		ge := graphError(t, e.graph("GET", "/users?$filter="+f, admin, nil), http.StatusBadRequest, "Request_BadRequest")
		if msg, _ := ge["message"].(string); !strings.Contains(msg, "32") {
			t.Errorf("the message does not say the bound: %s", msg)
		}
	}
	graphOK(t, e.graph("GET", "/users?$filter="+nested("(", ")", 32), admin, nil), http.StatusOK)
	graphOK(t, e.graph("GET", "/users?$filter="+nested("not (not ", ")", 10), admin, nil), http.StatusOK) // 30 levels
}
