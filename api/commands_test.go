package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
)

// h is a compact request builder for the scenario below.
func (e *env) call(method, path, tok string, body any) resp {
	e.t.Helper()
	return e.do(req{Method: method, Path: "/v1/tenants/contoso" + path, Token: tok, Body: body})
}

func eventTypes(t *testing.T, r resp) []string {
	t.Helper()
	var out []string
	for _, raw := range r.answer(t).Events {
		var env struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatal(err)
		}
		out = append(out, env.Type)
	}
	return out
}

func wantOK(t *testing.T, r resp, status int, types ...string) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("status %d, want %d: %s", r.Code, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	got := eventTypes(t, r)
	for _, typ := range types {
		if !slices.Contains(got, typ) {
			t.Fatalf("events %v lack %s: %s", got, typ, r.Body)
		}
	}
	if a := r.answer(t); a.Version == 0 {
		t.Fatalf("answer without version: %s", r.Body)
	}
}

// TestCommandEndpoints walks every command endpoint through its happy path
// and the errors it can give.
func TestCommandEndpoints(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	user := func(id, loc string) map[string]any {
		return map[string]any{"id": id, "userPrincipalName": id + "@contoso.example", "usageLocation": loc}
	}

	// ---- users
	r := e.call("POST", "/users", admin, user("alice", "US"))
	wantOK(t, r, http.StatusCreated, domain.TypeUserAdded)
	if r.answer(t).ID != "alice" {
		t.Fatalf("id %q", r.answer(t).ID)
	}
	for _, id := range []string{"bob", "carol", "lic", "plain"} {
		wantOK(t, e.call("POST", "/users", admin, user(id, "US")), http.StatusCreated)
	}
	wantOK(t, e.call("POST", "/users", admin, user("dave", "")), http.StatusCreated)
	wantOK(t, e.call("POST", "/users", admin, map[string]any{"id": "guest1", "userPrincipalName": "g@other.example", "userType": "Guest", "usageLocation": "US"}), http.StatusCreated)
	problem(t, e.call("POST", "/users", admin, user("alice", "US")), http.StatusConflict, "already_exists")
	p := problem(t, e.call("POST", "/users", admin, `{"id":"x1","userPrincipalName":"x@y.z","shoeSize":42}`), http.StatusBadRequest, "invalid_request")
	if p["field"] != "shoeSize" || !strings.Contains(p["detail"].(string), "shoeSize") {
		t.Fatalf("unknown field problem %v", p)
	}
	problem(t, e.call("POST", "/users", admin, `{"id":"x1","userPrincipalName":"x@y.z"} {"id":"x2"}`), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("POST", "/users", admin, `{"id":"x1","userPrincipalName":"x@y.z"} garbage`), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("POST", "/users", admin, `{"id":"x1",`), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("POST", "/users", admin, `[]`), http.StatusBadRequest, "invalid_request")
	p = problem(t, e.call("POST", "/users", admin, `{"id":7}`), http.StatusBadRequest, "invalid_request")
	if p["field"] != "id" {
		t.Fatalf("type error field %v", p["field"])
	}
	problem(t, e.call("POST", "/users", admin, nil), http.StatusBadRequest, "invalid_request")
	big := `{"id":"x1","displayName":"` + strings.Repeat("a", 1<<20) + `"}`
	p = problem(t, e.call("POST", "/users", admin, big), http.StatusRequestEntityTooLarge, "invalid_request")
	if !strings.Contains(p["detail"].(string), "1 MiB") {
		t.Fatalf("too large detail %q", p["detail"])
	}
	p = problem(t, e.call("POST", "/users", admin, map[string]any{"id": "bad id!", "userPrincipalName": "x@y.z"}), http.StatusBadRequest, "invalid_request")
	if p["field"] == "" {
		t.Fatalf("no field: %v", p)
	}
	r = e.call("POST", "/users", admin, map[string]any{"userPrincipalName": "noid@contoso.example", "usageLocation": "US"})
	wantOK(t, r, http.StatusCreated)
	if !domain.ValidID(r.answer(t).ID) {
		t.Fatalf("generated id %q", r.answer(t).ID)
	}
	wantOK(t, e.call("PATCH", "/users/dave", admin, map[string]any{"displayName": "Dave D"}), http.StatusOK, domain.TypeUserUpdated)
	problem(t, e.call("PATCH", "/users/dave", admin, map[string]any{}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("PATCH", "/users/nobody", admin, map[string]any{"displayName": "N"}), http.StatusNotFound, "not_found")
	problem(t, e.call("PATCH", "/users/bad!id", admin, map[string]any{"displayName": "N"}), http.StatusBadRequest, "invalid_request")

	// ---- roles
	wantOK(t, e.call("PUT", "/users/lic/roles", admin, map[string]any{"roles": []string{"LicenseAdministrator"}}), http.StatusOK, domain.TypeAdminRolesChanged)
	plain, lic := token(t, "contoso", "plain"), token(t, "contoso", "lic")
	problem(t, e.call("PUT", "/users/plain/roles", plain, map[string]any{"roles": []string{"GlobalAdministrator"}}), http.StatusForbidden, "not_allowed_for_role")
	problem(t, e.call("PUT", "/users/plain/roles", admin, map[string]any{}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("PUT", "/users/plain/roles", admin, map[string]any{"roles": []string{"Emperor"}}), http.StatusBadRequest, "invalid_request")

	// ---- subscriptions: 5 + 8 of one product
	r = e.call("POST", "/subscriptions", admin, map[string]any{"id": "s1", "skuId": "SPB", "quantity": 5})
	wantOK(t, r, http.StatusCreated, domain.TypeSubscriptionPurchased)
	wantOK(t, e.call("POST", "/subscriptions", admin, map[string]any{"id": "s2", "skuId": "SPB", "quantity": 8}), http.StatusCreated)
	problem(t, e.call("POST", "/subscriptions", admin, map[string]any{"id": "s2", "skuId": "SPB", "quantity": 8}), http.StatusConflict, "already_exists")
	problem(t, e.call("POST", "/subscriptions", admin, map[string]any{"id": "s3", "skuId": "NOPE", "quantity": 8}), http.StatusNotFound, "not_found")
	problem(t, e.call("POST", "/subscriptions", plain, map[string]any{"id": "s3", "skuId": "SPB", "quantity": 8}), http.StatusForbidden, "not_allowed_for_role")

	// ---- assign (Licenses page)
	wantOK(t, e.call("POST", "/licenses/SPB/assign", lic, map[string]any{"users": []string{"alice", "bob"}}), http.StatusOK, domain.TypeLicenseAssigned)
	p = problem(t, e.call("POST", "/licenses/SPB/assign", plain, map[string]any{"users": []string{"carol"}}), http.StatusForbidden, "not_allowed_for_role")
	if p["rule"] != "R1" {
		t.Fatalf("rule %v", p["rule"])
	}
	problem(t, e.call("POST", "/licenses/SPB/assign", lic, map[string]any{"users": []string{"guest1"}}), http.StatusForbidden, "guest_requires_global_admin")
	wantOK(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": []string{"guest1"}}), http.StatusOK)
	problem(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": []string{"dave"}}), http.StatusConflict, "usage_location_required")
	wantOK(t, e.call("PATCH", "/users/dave", admin, map[string]any{"usageLocation": "FR"}), http.StatusOK)
	wantOK(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": []string{"dave"}}), http.StatusOK)
	var many []string
	for i := 0; i < 21; i++ {
		many = append(many, "m"+string(rune('a'+i)))
	}
	problem(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": many}), http.StatusBadRequest, "too_many_users")
	problem(t, e.call("POST", "/licenses/bad!sku/assign", admin, map[string]any{"users": []string{"carol"}}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": []string{"nobody"}}), http.StatusNotFound, "not_found")
	// 13 licenses, 4 assigned: 9 left; ten more users are one too many.
	var ten []string
	for i := 0; i < 10; i++ {
		id := "u" + string(rune('a'+i))
		wantOK(t, e.call("POST", "/users", admin, user(id, "US")), http.StatusCreated)
		ten = append(ten, id)
	}
	before := e.version("contoso")
	p = problem(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": ten}), http.StatusConflict, "insufficient_licenses")
	if p["missing"] != float64(1) || p["rule"] != "R3" {
		t.Fatalf("insufficient problem %v", p)
	}
	if e.version("contoso") != before {
		t.Fatal("a refused command wrote events")
	}
	wantOK(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": ten[:8]}), http.StatusOK) // 12 of 13
	wantOK(t, e.call("POST", "/licenses/SPB/unassign", admin, map[string]any{"users": []string{"bob"}}), http.StatusOK, domain.TypeLicenseUnassigned)
	problem(t, e.call("POST", "/licenses/SPB/unassign", admin, map[string]any{"users": []string{}}), http.StatusBadRequest, "invalid_request")

	// ---- Graph assignLicense (one user)
	wantOK(t, e.call("POST", "/users/bob/assignLicense", admin, map[string]any{"addLicenses": []map[string]any{{"skuId": "SPB", "disabledPlans": []string{}}}, "removeLicenses": []string{}}), http.StatusOK, domain.TypeLicenseAssigned)
	wantOK(t, e.call("POST", "/subscriptions", admin, map[string]any{"id": "sx", "skuId": "EXCHANGEENTERPRISE", "quantity": 2}), http.StatusCreated)
	p = problem(t, e.call("POST", "/users/alice/assignLicense", admin, map[string]any{"addLicenses": []map[string]any{{"skuId": "EXCHANGEENTERPRISE"}}}), http.StatusConflict, "mutually_exclusive_plans")
	plans, _ := p["plans"].([]any)
	if len(plans) != 2 || !slices.Contains(plans, any("EXCHANGE_S_STANDARD")) || !slices.Contains(plans, any("EXCHANGE_S_ENTERPRISE")) {
		t.Fatalf("plans %v", p["plans"])
	}

	// ---- plans of a license (R7)
	wantOK(t, e.call("POST", "/subscriptions", admin, map[string]any{"id": "smeet", "skuId": "MCOMEETADV", "quantity": 2}), http.StatusCreated)
	wantOK(t, e.call("POST", "/users/alice/assignLicense", admin, map[string]any{"addLicenses": []map[string]any{{"skuId": "MCOMEETADV"}}}), http.StatusOK)
	p = problem(t, e.call("PATCH", "/users/alice/licenses/SPB", admin, map[string]any{"disabledPlans": []string{"MCOSTANDARD"}}), http.StatusConflict, "dependency_violation")
	if plans, _ := p["plans"].([]any); len(plans) == 0 {
		t.Fatalf("dependency problem without plans: %v", p)
	}
	wantOK(t, e.call("PATCH", "/users/alice/licenses/SPB", admin, map[string]any{"disabledPlans": []string{"SWAY"}}), http.StatusOK, domain.TypeLicensePlansChanged)
	problem(t, e.call("PATCH", "/users/alice/licenses/SPB", admin, map[string]any{"disabledPlans": []string{"NO_SUCH_PLAN"}}), http.StatusBadRequest, "invalid_request")
	// A license the user does not have: the one rule of every route that
	// removes or changes one (docs/API.md, "Details").
	problem(t, e.call("PATCH", "/users/carol/licenses/SPB", admin, map[string]any{"disabledPlans": []string{}}), http.StatusBadRequest, "invalid_request")

	// ---- Active users page
	wantOK(t, e.call("POST", "/users/manageLicenses", admin, map[string]any{"users": []string{"carol"}, "mode": "AssignMore", "addLicenses": []map[string]any{{"skuId": "SPB"}}}), http.StatusOK, domain.TypeLicenseAssigned)
	problem(t, e.call("POST", "/users/manageLicenses", admin, map[string]any{"users": []string{"carol"}, "mode": "Sideways"}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("POST", "/users/manageLicenses", admin, map[string]any{"users": many, "mode": "UnassignAll"}), http.StatusBadRequest, "too_many_users")
	wantOK(t, e.call("POST", "/users/manageLicenses", admin, map[string]any{"users": []string{"carol"}, "mode": "UnassignAll"}), http.StatusOK, domain.TypeLicenseUnassigned)

	// ---- groups (R11)
	r = e.call("POST", "/groups", admin, map[string]any{"id": "g1", "displayName": "Sales"})
	wantOK(t, r, http.StatusCreated, domain.TypeGroupCreated)
	problem(t, e.call("POST", "/groups", admin, map[string]any{"id": "g1", "displayName": "Sales"}), http.StatusConflict, "already_exists")
	wantOK(t, e.call("PUT", "/groups/g1/members/carol", admin, nil), http.StatusOK, domain.TypeGroupMemberAdded)
	problem(t, e.call("PUT", "/groups/g1/members/nobody", admin, nil), http.StatusNotFound, "not_found")
	problem(t, e.call("PUT", "/groups/nogroup/members/carol", admin, nil), http.StatusNotFound, "not_found")
	problem(t, e.call("PUT", "/groups/g1/members/carol", admin, `{"x":1}`), http.StatusBadRequest, "invalid_request")
	wantOK(t, e.call("POST", "/groups/g1/assignLicense", admin, map[string]any{"addLicenses": []map[string]any{{"skuId": "SPB"}}}), http.StatusOK, domain.TypeGroupLicenseAssigned)
	problem(t, e.call("POST", "/groups/g1/assignLicense", plain, map[string]any{"addLicenses": []map[string]any{{"skuId": "SPB"}}}), http.StatusForbidden, "not_allowed_for_role")
	p = problem(t, e.call("POST", "/licenses/SPB/unassign", admin, map[string]any{"users": []string{"carol"}}), http.StatusConflict, "inherited_license")
	if p["rule"] != "R11" {
		t.Fatalf("rule %v", p["rule"])
	}
	wantOK(t, e.call("DELETE", "/groups/g1/members/carol", admin, nil), http.StatusOK, domain.TypeGroupMemberRemoved)

	// ---- self-service purchases (R8)
	wantOK(t, e.call("POST", "/subscriptions", admin, map[string]any{"id": "ss1", "skuId": "POWER_BI_PRO", "quantity": 3, "kind": "SelfService", "purchasedBy": "carol"}), http.StatusCreated)
	problem(t, e.call("POST", "/licenses/POWER_BI_PRO/assign", admin, map[string]any{"users": []string{"bob"}}), http.StatusConflict, "self_service_subscription")
	problem(t, e.call("PATCH", "/subscriptions/ss1", admin, map[string]any{"quantity": 5}), http.StatusConflict, "self_service_subscription")
	wantOK(t, e.call("POST", "/subscriptions/ss1/takeOver", admin, nil), http.StatusOK, domain.TypeSubscriptionTakenOver)
	wantOK(t, e.call("POST", "/licenses/POWER_BI_PRO/assign", admin, map[string]any{"users": []string{"bob"}}), http.StatusOK)
	problem(t, e.call("POST", "/subscriptions/nosub/takeOver", admin, nil), http.StatusNotFound, "not_found")

	// ---- ISV apps (R12)
	app := map[string]any{"skuId": "contoso-crm", "skuPartNumber": "CRM", "displayName": "CRM", "publisher": "Vendor Inc",
		"installUrl": "https://vendor.example/install", "servicePlans": []map[string]any{{"servicePlanId": "crm-core", "servicePlanName": "CRM_CORE"}}}
	wantOK(t, e.call("POST", "/subscriptions", admin, map[string]any{"id": "app1", "quantity": 5, "channel": "Vendor", "product": app}), http.StatusCreated, domain.TypeProductRegistered)
	p = problem(t, e.call("PATCH", "/subscriptions/app1", admin, map[string]any{"quantity": 6}), http.StatusConflict, "vendor_managed_subscription")
	if p["rule"] != "R12" {
		t.Fatalf("rule %v", p["rule"])
	}
	r = e.call("POST", "/apps/contoso-crm/install", admin, nil)
	wantOK(t, r, http.StatusOK, domain.TypeAppInstalled)
	if r.answer(t).RedirectURL != "https://vendor.example/install" {
		t.Fatalf("redirectUrl %q", r.answer(t).RedirectURL)
	}
	problem(t, e.call("POST", "/apps/SPB/install", admin, nil), http.StatusConflict, "not_an_app")
	problem(t, e.call("POST", "/apps/contoso-crm/install", lic, nil), http.StatusForbidden, "not_allowed_for_role")

	// ---- quantities and statuses (R13)
	p = problem(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{"quantity": 1}), http.StatusConflict, "quantity_below_assigned")
	if p["rule"] != "R13" {
		t.Fatalf("rule %v", p["rule"])
	}
	wantOK(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{"quantity": 9}), http.StatusOK, domain.TypeSubscriptionQuantityChanged)
	problem(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{"quantity": 0}), http.StatusBadRequest, "invalid_request")
	wantOK(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{"status": "Warning"}), http.StatusOK, domain.TypeSubscriptionStatusChanged)
	problem(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{"status": "Confused"}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{"status": "Deleted", "quantity": 3}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("PATCH", "/subscriptions/s2", admin, map[string]any{"status": "Deleted"}), http.StatusConflict, "quantity_below_assigned")
	problem(t, e.call("PATCH", "/subscriptions/nosub", admin, map[string]any{"quantity": 3}), http.StatusNotFound, "not_found")

	// ---- retention hold (R10)
	wantOK(t, e.call("PUT", "/users/alice/retentionHold", admin, map[string]any{"enabled": true}), http.StatusOK, domain.TypeRetentionHoldSet)
	problem(t, e.call("PUT", "/users/alice/retentionHold", admin, map[string]any{}), http.StatusBadRequest, "invalid_request")
	problem(t, e.call("PUT", "/users/alice/retentionHold", lic, map[string]any{"enabled": false}), http.StatusForbidden, "not_allowed_for_role")

	// ---- delete and restore (R9)
	r = e.call("DELETE", "/users/bob", admin, nil)
	wantOK(t, r, http.StatusOK, domain.TypeUserDeleted)
	problem(t, e.call("POST", "/licenses/SPB/assign", admin, map[string]any{"users": []string{"bob"}}), http.StatusConflict, "user_deleted")
	problem(t, e.call("DELETE", "/users/bob", admin, nil), http.StatusConflict, "user_deleted")
	problem(t, e.call("DELETE", "/users/nobody", admin, nil), http.StatusNotFound, "not_found")
	wantOK(t, e.call("POST", "/users/bob/restore", admin, nil), http.StatusOK, domain.TypeUserRestored)
	problem(t, e.call("POST", "/users/bob/restore", admin, nil), http.StatusBadRequest, "invalid_request")
	wantOK(t, e.call("DELETE", "/users/bob", admin, `{}`), http.StatusOK)
	e.offset.Store(int64(31 * 24 * time.Hour))
	p = problem(t, e.call("POST", "/users/bob/restore", admin, nil), http.StatusConflict, "restore_window_expired")
	if p["rule"] != "R9" {
		t.Fatalf("rule %v", p["rule"])
	}

	// The stream holds exactly the events the answers reported.
	if got, want := e.version("contoso"), uint64(len(e.events("contoso"))); got != want {
		t.Fatalf("version %d, events %d", got, want)
	}
}

// TestBodyLengths: a body is read whole whether its length is declared
// (small or over 64 KiB) or not (chunked), one shorter or longer than its
// Content-Length is refused, and one over 1 MiB is refused, declared
// (before it is read) or chunked.
func TestBodyLengths(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	send := func(body io.Reader, length int64) resp {
		hr := httptest.NewRequest("POST", "/v1/tenants/contoso/users", body)
		hr.ContentLength = length
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", "Bearer "+admin)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, hr)
		return resp{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
	}
	user := func(id string) string {
		return `{"id":"` + id + `","userPrincipalName":"` + id + `@contoso.example","usageLocation":"US"}`
	}
	wantOK(t, send(strings.NewReader(user("declared")), int64(len(user("declared")))), http.StatusCreated)
	// io.MultiReader hides the length, as a chunked body does.
	wantOK(t, send(io.MultiReader(strings.NewReader(user("chunked"))), -1), http.StatusCreated)
	short := user("short")
	problem(t, send(strings.NewReader(short), int64(len(short))+10), http.StatusBadRequest, "invalid_request")
	long := user("long")
	problem(t, send(strings.NewReader(long+"   "), int64(len(long))+1), http.StatusBadRequest, "invalid_request")
	// Over 64 KiB declared: read as it arrives, still whole.
	wide := user("wide") + strings.Repeat(" ", 100<<10)
	wantOK(t, send(strings.NewReader(wide), int64(len(wide))), http.StatusCreated)
	problem(t, send(strings.NewReader(short), api.MaxBodyBytes+1), http.StatusRequestEntityTooLarge, "invalid_request")
	big := `{"id":"big","displayName":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	problem(t, send(io.MultiReader(strings.NewReader(big)), -1), http.StatusRequestEntityTooLarge, "invalid_request")
	var users int
	_ = e.cmds.View(context.Background(), "contoso", func(st *domain.Tenant) error { users = len(st.Users); return nil })
	if users != 4 { // the global admin, declared, chunked, wide
		t.Fatalf("tenant has %d users, want 4", users)
	}
}
