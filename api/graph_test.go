package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const (
	skuSPB       = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
	skuExchange2 = "19ec0d23-8335-4cbd-94ac-6050e30712fa"
	planSway     = "a23b959c-7ce8-4e57-9140-b90eb88a9e97"
)

// graph sends a request to the Graph surface.
func (e *env) graph(method, path, tok string, body any, hdr ...string) resp {
	e.t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i]] = hdr[i+1]
	}
	return e.do(req{Method: method, Path: "/v1.0" + path, Token: tok, Body: body, Header: h})
}

// graphOK checks a 2xx JSON answer and decodes it.
func graphOK(t *testing.T, r resp, status int) map[string]any {
	t.Helper()
	if r.Code != status {
		t.Fatalf("status %d, want %d: %s", r.Code, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	return r.JSON(t)
}

// graphError checks a Graph error answer and returns its error object.
func graphError(t *testing.T, r resp, status int, code string) map[string]any {
	t.Helper()
	if r.Code != status {
		t.Fatalf("status %d, want %d (%s): %s", r.Code, status, code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q: %s", ct, r.Body)
	}
	m := r.JSON(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", r.Body)
	}
	if e["code"] != code {
		t.Fatalf("code %v, want %s: %s", e["code"], code, r.Body)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("no message: %s", r.Body)
	}
	inner, _ := e["innerError"].(map[string]any)
	if inner["request-id"] == "" || inner["request-id"] == nil || inner["date"] == nil {
		t.Fatalf("innerError %v", inner)
	}
	return e
}

func licenseOf(body any, sku string) map[string]any {
	for _, l := range body.([]any) {
		if m := l.(map[string]any); m["skuId"] == sku {
			return m
		}
	}
	return nil
}

func addLicense(sku string, disabled ...string) map[string]any {
	if disabled == nil {
		disabled = []string{}
	}
	return map[string]any{"addLicenses": []map[string]any{{"@odata.type": "#microsoft.graph.assignedLicense", "skuId": sku, "disabledPlans": disabled}},
		"removeLicenses": []string{}}
}

// graphTenant opens contoso with users alice, bob, carol (US), dave (no
// usage location) and plain (no role), and 2 SPB licenses.
func graphTenant(t *testing.T) (*env, string) {
	e := newEnv(t)
	e.createTenant("contoso")
	for _, u := range []struct{ id, loc string }{{"alice", "US"}, {"bob", "US"}, {"carol", "FR"}, {"dave", ""}, {"plain", "US"}} {
		e.addUser("contoso", "admin", u.id, u.loc, "")
	}
	e.buy("contoso", "admin", "s1", "SPB", 2)
	return e, token(t, "contoso", "admin")
}

// TestGraphAssignLicenseToUsers: assignLicense by id and by UPN answers
// the updated user; a read right after sees the write; license failures
// are Graph's 400 Request_BadRequest with Graph's sentences and write
// nothing.
func TestGraphAssignLicenseToUsers(t *testing.T) {
	e, admin := graphTenant(t)

	r := e.do(req{Method: "POST", Path: "/v1.0/users/alice/assignLicense", Token: admin,
		Body: gzipJSON(t, addLicense(skuSPB, planSway)), Header: map[string]string{"Content-Encoding": "gzip"}})
	u := graphOK(t, r, http.StatusOK)
	if u["id"] != "alice" || u["usageLocation"] != "US" || u["accountEnabled"] != true {
		t.Fatalf("user %v", u)
	}
	l := licenseOf(u["assignedLicenses"], skuSPB)
	if l == nil || !slices.Equal(l["disabledPlans"].([]any), []any{planSway}) {
		t.Fatalf("assignedLicenses %v", u["assignedLicenses"])
	}
	states := u["licenseAssignmentStates"].([]any)
	st := states[0].(map[string]any)
	if len(states) != 1 || st["assignedByGroup"] != nil || st["state"] != "Active" || st["error"] != "None" || st["skuId"] != skuSPB || st["lastUpdatedDateTime"] == "" {
		t.Fatalf("licenseAssignmentStates %v", states)
	}
	var plans []string
	for _, p := range u["assignedPlans"].([]any) {
		plans = append(plans, p.(map[string]any)["servicePlanId"].(string))
	}
	if len(plans) == 0 || slices.Contains(plans, planSway) {
		t.Fatalf("assignedPlans %v", plans)
	}
	// Read-your-writes, with no minVersion.
	got := graphOK(t, e.graph("GET", "/users/alice", admin, nil), http.StatusOK)
	if licenseOf(got["assignedLicenses"], skuSPB) == nil {
		t.Fatalf("read after write: %v", got)
	}

	// By user principal name.
	u = graphOK(t, e.graph("POST", "/users/bob@contoso.example/assignLicense", admin, addLicense(skuSPB)), http.StatusOK)
	if u["id"] != "bob" || licenseOf(u["assignedLicenses"], skuSPB) == nil {
		t.Fatalf("by UPN: %v", u)
	}

	before := e.version("contoso")
	// No license left: CountViolation.
	ge := graphError(t, e.graph("POST", "/users/carol/assignLicense", admin, addLicense(skuSPB)), http.StatusBadRequest, "Request_BadRequest")
	if !strings.Contains(ge["message"].(string), "Subscription with SKU "+skuSPB+" does not have any available licenses.") || ge["missing"] != 1.0 {
		t.Fatalf("count error %v", ge)
	}
	if d := ge["details"].([]any)[0].(map[string]any); d["code"] != "insufficient_licenses" {
		t.Fatalf("seatledger code %v", d)
	}
	// No usage location.
	e.buy("contoso", "admin", "s2", "SPB", 5)
	before = e.version("contoso")
	ge = graphError(t, e.graph("POST", "/users/dave/assignLicense", admin, addLicense(skuSPB)), http.StatusBadRequest, "Request_BadRequest")
	if !strings.Contains(ge["message"].(string), "License assignment cannot be done for user with invalid usage location.") {
		t.Fatalf("usage location error %v", ge)
	}
	// Mutually exclusive plans.
	e.buy("contoso", "admin", "sx", "EXCHANGEENTERPRISE", 2)
	before = e.version("contoso")
	ge = graphError(t, e.graph("POST", "/users/alice/assignLicense", admin, addLicense(skuExchange2)), http.StatusBadRequest, "Request_BadRequest")
	if !strings.Contains(ge["message"].(string), "mutually exclusive") || len(ge["plans"].([]any)) != 2 {
		t.Fatalf("exclusive error %v", ge)
	}
	// A product the tenant has no subscription of.
	ge = graphError(t, e.graph("POST", "/users/alice/assignLicense", admin, addLicense("00000000-0000-0000-0000-000000000001")), http.StatusBadRequest, "Request_BadRequest")
	if !strings.Contains(ge["message"].(string), "does not correspond to a valid company License") {
		t.Fatalf("unknown sku %v", ge)
	}
	// Removing a license the user holds through a group only.
	graphError(t, e.graph("POST", "/users/nobody/assignLicense", admin, addLicense(skuSPB)), http.StatusNotFound, "Request_ResourceNotFound")
	graphError(t, e.graph("POST", "/users/alice/assignLicense", admin, map[string]any{"addLicenses": []any{}, "removeLicenses": []any{}, "shoeSize": 42}), http.StatusBadRequest, "Request_BadRequest")
	graphError(t, e.graph("POST", "/users/alice/assignLicense", admin, map[string]any{"addLicenses": []any{}}), http.StatusBadRequest, "Request_BadRequest")
	graphError(t, e.graph("POST", "/users/alice/assignLicense", admin, `{"addLicenses":[{"skuId":"`+skuSPB+`","size":1}],"removeLicenses":[]}`), http.StatusBadRequest, "Request_BadRequest")
	graphError(t, e.graph("POST", "/users/alice/assignLicense", admin, nil), http.StatusBadRequest, "Request_BadRequest")
	// Roles come from the tenant: a user without an admin role is denied.
	graphError(t, e.graph("POST", "/users/alice/assignLicense", token(t, "contoso", "plain"), addLicense(skuSPB)), http.StatusForbidden, "Authorization_RequestDenied")
	if v := e.version("contoso"); v != before {
		t.Fatalf("refused requests wrote: %d -> %d", before, v)
	}

	// Remove.
	u = graphOK(t, e.graph("POST", "/users/bob/assignLicense", admin, map[string]any{"addLicenses": []any{}, "removeLicenses": []string{skuSPB}}), http.StatusOK)
	if len(u["assignedLicenses"].([]any)) != 0 || len(u["licenseAssignmentStates"].([]any)) != 0 {
		t.Fatalf("after remove %v", u)
	}
	// The same Idempotency-Key replays without writing.
	body := addLicense(skuSPB)
	graphOK(t, e.graph("POST", "/users/carol/assignLicense", admin, body, "Idempotency-Key", "g-1"), http.StatusOK)
	v := e.version("contoso")
	r = e.graph("POST", "/users/carol/assignLicense", admin, body, "Idempotency-Key", "g-1")
	if graphOK(t, r, http.StatusOK); r.Header.Get("Idempotent-Replayed") != "true" || e.version("contoso") != v {
		t.Fatalf("replay: %v, version %d -> %d", r.Header, v, e.version("contoso"))
	}
}

// TestGraphAuthAndRouting: every answer under /v1.0, refused before any
// handler runs, is in Graph's error shape.
func TestGraphAuthAndRouting(t *testing.T) {
	e, admin := graphTenant(t)
	r := e.graph("GET", "/users", "", nil)
	graphError(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken")
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no WWW-Authenticate: %v", r.Header)
	}
	graphError(t, e.graph("GET", "/users", "not-a-jwt", nil), http.StatusUnauthorized, "InvalidAuthenticationToken")
	graphError(t, e.graph("GET", "/users", testOperator, nil), http.StatusForbidden, "Authorization_RequestDenied")
	graphError(t, e.graph("GET", "/users", token(t, "contoso", "plain"), nil), http.StatusForbidden, "Authorization_RequestDenied")
	graphError(t, e.graph("GET", "/users", token(t, "fabrikam", "admin"), nil), http.StatusNotFound, "Request_ResourceNotFound")
	graphError(t, e.graph("GET", "/me", admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
	graphError(t, e.graph("DELETE", "/users/alice", admin, nil), http.StatusMethodNotAllowed, "Request_BadRequest")
	r = e.graph("GET", "/users/nobody", admin, nil, "client-request-id", "abc-123")
	ge := graphError(t, r, http.StatusNotFound, "Request_ResourceNotFound")
	if ge["innerError"].(map[string]any)["client-request-id"] != "abc-123" {
		t.Fatalf("client-request-id not echoed: %v", ge)
	}
	// Body refusals take Graph's shape too.
	graphError(t, e.graph("POST", "/users/alice/assignLicense", admin, gzipped(t, make([]byte, 8<<20)), "Content-Encoding", "gzip"),
		http.StatusRequestEntityTooLarge, "Request_BadRequest")
	r = e.graph("POST", "/users/alice/assignLicense", admin, addLicense(skuSPB), "Content-Encoding", "br")
	if graphError(t, r, http.StatusUnsupportedMediaType, "Request_BadRequest"); r.Header.Get("Accept-Encoding") != "gzip" {
		t.Fatalf("415 without Accept-Encoding: %v", r.Header)
	}
	// /v1 keeps problem+json.
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/nothing", Token: admin}), http.StatusNotFound, "not_found")
}

// TestGraphListUsers: the users collection with $top paging through
// absolute nextLinks, $select, $count, each supported $filter form, and
// 400 naming what is not supported.
func TestGraphListUsers(t *testing.T) {
	e, admin := graphTenant(t)
	e.addUser("contoso", "admin", "guest1", "US", "Guest")
	graphOK(t, e.graph("POST", "/users/alice/assignLicense", admin, addLicense(skuSPB)), http.StatusOK)
	graphOK(t, e.graph("POST", "/users/carol/assignLicense", admin, addLicense(skuSPB)), http.StatusOK)
	all := []string{"admin", "alice", "bob", "carol", "dave", "guest1", "plain"}

	list := func(query string, hdr ...string) ([]string, map[string]any) {
		t.Helper()
		m := graphOK(t, e.graph("GET", "/users"+query, admin, nil, hdr...), http.StatusOK)
		var ids []string
		for _, v := range m["value"].([]any) {
			ids = append(ids, v.(map[string]any)["id"].(string))
		}
		return ids, m
	}
	ids, m := list("")
	if !slices.Equal(ids, all) || m["@odata.nextLink"] != nil {
		t.Fatalf("all users %v %v", ids, m["@odata.nextLink"])
	}
	// Paging: follow absolute nextLinks.
	var paged []string
	q := "?$top=3&$select=id,userPrincipalName"
	for pages := 0; ; pages++ {
		ids, m := list(q)
		for _, v := range m["value"].([]any) {
			if len(v.(map[string]any)) != 2 {
				t.Fatalf("$select gave %v", v)
			}
		}
		paged = append(paged, ids...)
		next, _ := m["@odata.nextLink"].(string)
		if next == "" {
			break
		}
		u, err := url.Parse(next)
		if err != nil || !u.IsAbs() || u.Path != "/v1.0/users" || u.Query().Get("$top") != "3" {
			t.Fatalf("nextLink %q", next)
		}
		q = "?" + u.RawQuery
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("paged %v", paged)
	}

	for query, want := range map[string][]string{
		"assignedLicenses/any(x:x/skuId eq " + skuSPB + ")":      {"alice", "carol"},
		"assignedLicenses/$count eq 0":                           {"admin", "bob", "dave", "guest1", "plain"},
		"assignedLicenses/$count ne 0 and usageLocation eq 'FR'": {"carol"},
		"id eq 'bob'": {"bob"},
		"userPrincipalName eq 'DAVE@contoso.example'":                    {"dave"},
		"userType eq 'Guest'":                                            {"guest1"},
		"usageLocation eq 'US' and not (id eq 'admin' or id eq 'plain')": {"alice", "bob", "guest1"},
		"startswith(displayName,'')":                                     all,
		"startswith(userPrincipalName, 'CA')":                            {"carol"},
		"accountEnabled eq true and id ne 'admin'":                       all[1:],
	} {
		ids, _ := list("?$filter=" + url.QueryEscape(query))
		if !slices.Equal(ids, want) {
			t.Errorf("$filter=%s: %v, want %v", query, ids, want)
		}
	}

	// $count needs ConsistencyLevel: eventual.
	graphError(t, e.graph("GET", "/users?$count=true", admin, nil), http.StatusBadRequest, "Request_UnsupportedQuery")
	_, m = list("?$count=true&$top=1&$filter="+url.QueryEscape("assignedLicenses/$count eq 0"), "ConsistencyLevel", "eventual")
	if m["@odata.count"] != 5.0 || len(m["value"].([]any)) != 1 {
		t.Fatalf("$count %v", m)
	}
	r := e.graph("GET", "/users/$count", admin, nil, "ConsistencyLevel", "eventual")
	if r.Code != http.StatusOK || string(r.Body) != "7" {
		t.Fatalf("/users/$count: %d %s", r.Code, r.Body)
	}
	graphError(t, e.graph("GET", "/users/$count", admin, nil), http.StatusBadRequest, "Request_UnsupportedQuery")

	// Unsupported options and expressions: 400 naming them.
	for query, name := range map[string]string{
		"$orderby=displayName":        "$orderby",
		"$expand=manager":             "$expand",
		"$search=%22displayName:a%22": "$search",
		"limit=5":                     "limit",
		"$filter=" + url.QueryEscape("endswith(mail,'x')"):                    "endswith",
		"$filter=" + url.QueryEscape("jobTitle eq 'x'"):                       "jobTitle",
		"$filter=" + url.QueryEscape("createdDateTime gt 2020"):               "createdDateTime",
		"$filter=" + url.QueryEscape("usageLocation in ('US')"):               "in",
		"$filter=" + url.QueryEscape("assignedPlans/any(p:p/service eq 'x')"): "assignedPlans/any",
	} {
		ge := graphError(t, e.graph("GET", "/users?"+query, admin, nil), http.StatusBadRequest, "Request_UnsupportedQuery")
		if !strings.Contains(ge["message"].(string), name) {
			t.Errorf("%s: message %q does not name %s", query, ge["message"], name)
		}
	}
	for _, query := range []string{"$top=0", "$top=1000", "$top=x", "$top=1&$top=2", "$skiptoken=zzz", "$count=maybe",
		"$filter=" + url.QueryEscape("id eq 'x"), "$filter=" + url.QueryEscape("id eq"), "$filter=" + url.QueryEscape("(id eq 'x'"),
		"$filter=" + url.QueryEscape("id eq 3")} {
		graphError(t, e.graph("GET", "/users?"+query, admin, nil), http.StatusBadRequest, "Request_BadRequest")
	}
	ge := graphError(t, e.graph("GET", "/users?$select=id,shoeSize", admin, nil), http.StatusBadRequest, "BadRequest")
	if !strings.Contains(ge["message"].(string), "shoeSize") {
		t.Fatalf("$select message %v", ge)
	}
	graphError(t, e.graph("GET", "/users/alice?$top=1", admin, nil), http.StatusBadRequest, "Request_UnsupportedQuery")

	// A single user, by id or UPN, with $select.
	got := graphOK(t, e.graph("GET", "/users/carol@contoso.example?$select=id,assignedLicenses", admin, nil), http.StatusOK)
	if len(got) != 2 || got["id"] != "carol" || licenseOf(got["assignedLicenses"], skuSPB) == nil {
		t.Fatalf("user by UPN %v", got)
	}
	// A deleted user is gone from /v1.0.
	e.must(http.StatusOK, req{Method: "DELETE", Path: "/v1/tenants/contoso/users/bob", Token: admin})
	graphError(t, e.graph("GET", "/users/bob", admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
	if ids, _ := list(""); slices.Contains(ids, "bob") {
		t.Fatalf("deleted user listed: %v", ids)
	}
}

// TestGraphGroupsAndLicenseErrors: group assignLicense answers 202 and
// the group; members the group cannot license are in error states named
// as Graph names them, listed by membersWithLicenseErrors.
func TestGraphGroupsAndLicenseErrors(t *testing.T) {
	e, admin := graphTenant(t)
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin, Body: map[string]any{"id": "g1", "displayName": "Sales"}})
	for _, m := range []string{"alice", "bob", "carol", "dave"} {
		e.must(http.StatusOK, req{Method: "PUT", Path: "/v1/tenants/contoso/groups/g1/members/" + m, Token: admin})
	}
	g := graphOK(t, e.graph("POST", "/groups/g1/assignLicense", admin, addLicense(skuSPB, planSway)), http.StatusAccepted)
	if g["id"] != "g1" || g["hasMembersWithLicenseErrors"] != true || licenseOf(g["assignedLicenses"], skuSPB) == nil {
		t.Fatalf("group %v", g)
	}
	if g["licenseProcessingState"].(map[string]any)["state"] != "ProcessingComplete" {
		t.Fatalf("licenseProcessingState %v", g["licenseProcessingState"])
	}
	m := graphOK(t, e.graph("GET", "/groups/g1/membersWithLicenseErrors", admin, nil), http.StatusOK)
	var errored []string
	for _, v := range m["value"].([]any) {
		o := v.(map[string]any)
		if o["@odata.type"] != "#microsoft.graph.user" {
			t.Fatalf("member %v", o)
		}
		errored = append(errored, o["id"].(string))
	}
	// Two licenses: alice and bob get them; carol (count) and dave (no
	// usage location) are in error.
	if !slices.Equal(errored, []string{"carol", "dave"}) {
		t.Fatalf("membersWithLicenseErrors %v", errored)
	}
	m = graphOK(t, e.graph("GET", "/groups/g1/membersWithLicenseErrors?$top=1", admin, nil), http.StatusOK)
	if next, _ := m["@odata.nextLink"].(string); !strings.HasPrefix(next, "http://") || len(m["value"].([]any)) != 1 {
		t.Fatalf("page %v", m)
	}
	want := map[string]string{"carol": "CountViolation", "dave": "ProhibitedInUsageLocationViolation"}
	for id, wantErr := range want {
		u := graphOK(t, e.graph("GET", "/users/"+id, admin, nil), http.StatusOK)
		st := u["licenseAssignmentStates"].([]any)[0].(map[string]any)
		if st["assignedByGroup"] != "g1" || st["state"] != "Error" || st["error"] != wantErr || len(u["assignedLicenses"].([]any)) != 0 {
			t.Fatalf("%s: %v", id, u)
		}
		// reprocessLicenseAssignment answers the user.
		r := graphOK(t, e.graph("POST", "/users/"+id+"/reprocessLicenseAssignment", admin, nil), http.StatusOK)
		if r["id"] != id {
			t.Fatalf("reprocess %v", r)
		}
	}
	// A user holding a product both directly and through the group has
	// one state per source.
	graphOK(t, e.graph("POST", "/users/alice/assignLicense", admin, addLicense(skuSPB)), http.StatusOK)
	u := graphOK(t, e.graph("GET", "/users/alice", admin, nil), http.StatusOK)
	if n := len(u["licenseAssignmentStates"].([]any)); n != 2 || len(u["assignedLicenses"].([]any)) != 1 {
		t.Fatalf("two sources: %v", u)
	}
	// More licenses: the group's intent is retried; carol gets hers.
	e.buy("contoso", "admin", "s2", "SPB", 3)
	u = graphOK(t, e.graph("GET", "/users/carol", admin, nil), http.StatusOK)
	if st := u["licenseAssignmentStates"].([]any)[0].(map[string]any); st["state"] != "Active" || st["error"] != "None" {
		t.Fatalf("carol after purchase %v", u)
	}
	got := graphOK(t, e.graph("GET", "/groups/g1?$select=id,hasMembersWithLicenseErrors", admin, nil), http.StatusOK)
	if len(got) != 2 || got["hasMembersWithLicenseErrors"] != true {
		t.Fatalf("group after purchase %v", got)
	}
	// Remove the group's license.
	g = graphOK(t, e.graph("POST", "/groups/g1/assignLicense", admin, map[string]any{"addLicenses": []any{}, "removeLicenses": []string{skuSPB}}), http.StatusAccepted)
	if len(g["assignedLicenses"].([]any)) != 0 || g["hasMembersWithLicenseErrors"] != false {
		t.Fatalf("group after remove %v", g)
	}
	graphError(t, e.graph("GET", "/groups/nope", admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
	graphError(t, e.graph("POST", "/groups/nope/assignLicense", admin, addLicense(skuSPB)), http.StatusNotFound, "Request_ResourceNotFound")
	graphError(t, e.graph("GET", "/groups/nope/membersWithLicenseErrors", admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
}

// TestGraphSubscribedSkusAndLicenseDetails: the tenant's products with
// prepaid units by status and consumed units; a user's license details
// with each plan's provisioning status.
func TestGraphSubscribedSkusAndLicenseDetails(t *testing.T) {
	e, admin := graphTenant(t)
	e.buy("contoso", "admin", "s2", "SPB", 3)
	e.must(http.StatusOK, req{Method: "PATCH", Path: "/v1/tenants/contoso/subscriptions/s2", Token: admin, Body: map[string]any{"status": "Warning"}})
	graphOK(t, e.graph("POST", "/users/alice/assignLicense", admin, addLicense(skuSPB, planSway)), http.StatusOK)

	m := graphOK(t, e.graph("GET", "/subscribedSkus", admin, nil), http.StatusOK)
	rows := m["value"].([]any)
	if len(rows) != 1 {
		t.Fatalf("subscribedSkus %v", m)
	}
	sku := rows[0].(map[string]any)
	pre := sku["prepaidUnits"].(map[string]any)
	if sku["id"] != "contoso_"+skuSPB || sku["skuId"] != skuSPB || sku["skuPartNumber"] != "SPB" || sku["consumedUnits"] != 1.0 ||
		sku["capabilityStatus"] != "Enabled" || sku["appliesTo"] != "User" || pre["enabled"] != 2.0 || pre["warning"] != 3.0 ||
		pre["suspended"] != 0.0 || pre["lockedOut"] != 0.0 {
		t.Fatalf("subscribedSku %v", sku)
	}
	if ids := sku["subscriptionIds"].([]any); !slices.Equal(ids, []any{"s1", "s2"}) {
		t.Fatalf("subscriptionIds %v", ids)
	}
	if plans := sku["servicePlans"].([]any); len(plans) == 0 || plans[0].(map[string]any)["appliesTo"] != "User" {
		t.Fatalf("servicePlans %v", plans)
	}
	one := graphOK(t, e.graph("GET", "/subscribedSkus/contoso_"+skuSPB, admin, nil), http.StatusOK)
	if one["id"] != sku["id"] {
		t.Fatalf("one %v", one)
	}
	graphError(t, e.graph("GET", "/subscribedSkus/fabrikam_"+skuSPB, admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
	sel := graphOK(t, e.graph("GET", "/subscribedSkus?$select=skuId,consumedUnits", admin, nil), http.StatusOK)
	if row := sel["value"].([]any)[0].(map[string]any); len(row) != 2 {
		t.Fatalf("$select %v", row)
	}

	d := graphOK(t, e.graph("GET", "/users/alice/licenseDetails", admin, nil), http.StatusOK)
	details := d["value"].([]any)
	if len(details) != 1 {
		t.Fatalf("licenseDetails %v", d)
	}
	ld := details[0].(map[string]any)
	if ld["skuId"] != skuSPB || ld["skuPartNumber"] != "SPB" {
		t.Fatalf("licenseDetails %v", ld)
	}
	status := map[string]string{}
	for _, p := range ld["servicePlans"].([]any) {
		pm := p.(map[string]any)
		status[pm["servicePlanId"].(string)] = pm["provisioningStatus"].(string)
	}
	if status[planSway] != "Disabled" || status["9aaf7827-d63c-4b61-89c3-182f06f82e5c"] != "Success" {
		t.Fatalf("provisioningStatus %v", status)
	}
	empty := graphOK(t, e.graph("GET", "/users/bob/licenseDetails", admin, nil), http.StatusOK)
	if b, _ := json.Marshal(empty["value"]); string(b) != "[]" {
		t.Fatalf("bob's licenseDetails %s", b)
	}
}

// TestGraphDependencyViolation: a plan that needs another the user lacks is
// Graph's 400 Request_BadRequest.
func TestGraphDependencyViolation(t *testing.T) {
	e, admin := graphTenant(t)
	e.buy("contoso", "admin", "s3", "MCOMEETADV", 2)
	ge := graphError(t, e.graph("POST", "/users/carol/assignLicense", admin, addLicense("0c266dff-15dd-4b49-8397-2bb16070ed52")), http.StatusBadRequest, "Request_BadRequest")
	if !strings.Contains(ge["message"].(string), "dependency") {
		t.Fatalf("dependency error %v", ge)
	}
	if d := ge["details"].([]any)[0].(map[string]any); d["code"] != "dependency_violation" {
		t.Fatalf("seatledger code %v", d)
	}
}
