package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
)

// after returns "?minVersion=" the version a command answered.
func after(t *testing.T, r resp) string {
	t.Helper()
	return "?minVersion=" + strconv.FormatUint(r.answer(t).Version, 10)
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	return v
}

type groupRow struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	MemberCount int    `json:"memberCount"`
}

// TestGroupsListRenameDeleteOverHTTP: the groups list, a rename, and a
// delete refused while the group gives licenses (R18), then allowed.
func TestGroupsListRenameDeleteOverHTTP(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	const c = "/v1/tenants/contoso"
	e.must(201, req{Method: "POST", Path: c + "/groups", Token: admin, Body: `{"id":"g2","displayName":"Sales"}`})
	mv := after(t, e.must(200, req{Method: "PATCH", Path: c + "/groups/g2", Token: admin, Body: `{"displayName":"Sales EMEA"}`}))
	gs := decode[[]groupRow](t, e.must(200, req{Method: "GET", Path: c + "/groups" + mv, Token: admin}))
	if len(gs) != 2 || gs[0].ID != "g1" || gs[0].MemberCount != 3 || gs[1].ID != "g2" || gs[1].DisplayName != "Sales EMEA" {
		t.Fatalf("groups %+v", gs)
	}
	first := e.must(200, req{Method: "GET", Path: c + "/groups" + mv + "&limit=1", Token: admin})
	if first.Header.Get("X-Next-Cursor") == "" || len(decode[[]groupRow](t, first)) != 1 {
		t.Fatalf("a page of 1 group: %s, next %q", first.Body, first.Header.Get("X-Next-Cursor"))
	}

	// R18: the group gives Power BI: removing it first is the way.
	p := problem(t, e.do(req{Method: "DELETE", Path: c + "/groups/g1", Token: admin}), http.StatusConflict, "group_has_licenses")
	if p["rule"] != "R18" || !strings.Contains(p["detail"].(string), "POWER_BI_PRO") {
		t.Fatalf("the refusal must name R18 and the license: %v", p)
	}
	if n := countType(e.events("contoso"), domain.TypeGroupDeleted); n != 0 {
		t.Fatalf("a refused delete appended %d GroupDeleted", n)
	}
	e.must(200, req{Method: "POST", Path: c + "/groups/g1/assignLicense", Token: admin, Body: `{"removeLicenses":["POWER_BI_PRO"]}`})
	mv = after(t, e.must(200, req{Method: "DELETE", Path: c + "/groups/g1", Token: admin}))
	problem(t, e.do(req{Method: "GET", Path: c + "/groups/g1" + mv, Token: admin}), 404, "not_found")
	u := decode[struct {
		Groups   []string `json:"groups"`
		Licenses []any    `json:"licenses"`
	}](t, e.must(200, req{Method: "GET", Path: c + "/users/u07" + mv, Token: admin}))
	if len(u.Groups) != 0 || len(u.Licenses) != 0 {
		t.Fatalf("a member of the deleted group still has %+v", u)
	}
	problem(t, e.do(req{Method: "DELETE", Path: c + "/groups/g1", Token: admin}), 404, "not_found")
	problem(t, e.do(req{Method: "PATCH", Path: c + "/groups/nope", Token: admin, Body: `{"displayName":"x"}`}), 404, "not_found")
	problem(t, e.do(req{Method: "PATCH", Path: c + "/groups/g2", Token: admin, Body: `{}`}), 400, "invalid_request")

	// Roles: a License admin neither renames nor deletes; a user without a
	// role does not list.
	e.must(200, req{Method: "PUT", Path: c + "/users/u01/roles", Token: admin, Body: `{"roles":["LicenseAdministrator"]}`})
	lic := token(t, "contoso", "u01")
	problem(t, e.do(req{Method: "PATCH", Path: c + "/groups/g2", Token: lic, Body: `{"displayName":"x"}`}), 403, "not_allowed_for_role")
	problem(t, e.do(req{Method: "DELETE", Path: c + "/groups/g2", Token: lic}), 403, "not_allowed_for_role")
	problem(t, e.do(req{Method: "GET", Path: c + "/groups", Token: token(t, "contoso", "u02")}), 403, "not_allowed_for_role")
}

// TestOneSubscriptionOverHTTP: GET /subscriptions/{s} answers the row of
// "Your products"; a missing one 404, a user without a role 403.
func TestOneSubscriptionOverHTTP(t *testing.T) {
	e, head := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	const c = "/v1/tenants/contoso"
	mv := "?minVersion=" + strconv.FormatUint(head, 10)
	s := decode[struct {
		ID            string `json:"id"`
		SkuPartNumber string `json:"skuPartNumber"`
		Quantity      int    `json:"quantity"`
		Status        string `json:"status"`
	}](t, e.must(200, req{Method: "GET", Path: c + "/subscriptions/s2" + mv, Token: admin}))
	if s.ID != "s2" || s.SkuPartNumber != "SPE_E3" || s.Quantity != 8 || s.Status != "Enabled" {
		t.Fatalf("subscription %+v", s)
	}
	problem(t, e.do(req{Method: "GET", Path: c + "/subscriptions/nope" + mv, Token: admin}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: c + "/subscriptions/s2", Token: token(t, "contoso", "u01")}), 403, "not_allowed_for_role")
}

// TestOperatorTenantsOverHTTP: the operator lists the tenants a page at a
// time and reads one; a tenant's token cannot list them.
func TestOperatorTenantsOverHTTP(t *testing.T) {
	e, head := queryEnv(t, queries.Config{})
	e.createTenant("fabrikam")
	fv := strconv.FormatUint(e.version("fabrikam"), 10)
	type tenantRow struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Version uint64 `json:"version"`
		Users   int    `json:"users"`
		Groups  int    `json:"groups"`
	}
	one := decode[tenantRow](t, e.must(200, req{Method: "GET", Path: "/v1/tenants/fabrikam?minVersion=" + fv, Token: testOperator}))
	if one.ID != "fabrikam" || one.Name != "fabrikam Ltd" || one.Users != 1 {
		t.Fatalf("tenant %+v", one)
	}
	mine := decode[tenantRow](t, e.must(200, req{Method: "GET", Path: "/v1/tenants/contoso?minVersion=" + strconv.FormatUint(head, 10),
		Token: token(t, "contoso", "admin")}))
	if mine.ID != "contoso" || mine.Version != head || mine.Users != 13 || mine.Groups != 1 {
		t.Fatalf("tenant %+v, want version %d", mine, head)
	}
	page := e.must(200, req{Method: "GET", Path: "/v1/tenants?limit=1", Token: testOperator})
	ts := decode[[]tenantRow](t, page)
	next := page.Header.Get("X-Next-Cursor")
	if len(ts) != 1 || ts[0].ID != "contoso" || next == "" {
		t.Fatalf("first page %s, next %q", page.Body, next)
	}
	ts = decode[[]tenantRow](t, e.must(200, req{Method: "GET", Path: "/v1/tenants?limit=1&cursor=" + next, Token: testOperator}))
	if len(ts) != 1 || ts[0].ID != "fabrikam" {
		t.Fatalf("second page %+v", ts)
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants", Token: token(t, "contoso", "admin")}), 403, "not_allowed_for_role")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants?minVersion=1", Token: testOperator}), 400, "invalid_request")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/nope", Token: testOperator}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso", Token: token(t, "contoso", "u01")}), 403, "not_allowed_for_role")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso", Token: token(t, "fabrikam", "admin")}), 404, "not_found")
}

// TestMeOverHTTP: a user without an admin role reads their own profile and
// licenses at /me, and still no other user's; a deleted user and the
// operator get 404.
func TestMeOverHTTP(t *testing.T) {
	e, head := queryEnv(t, queries.Config{})
	const c = "/v1/tenants/contoso"
	u01 := token(t, "contoso", "u01")
	me := decode[struct {
		ID       string `json:"id"`
		Licenses []struct {
			SkuPartNumber string `json:"skuPartNumber"`
		} `json:"licenses"`
	}](t, e.must(200, req{Method: "GET", Path: c + "/me?minVersion=" + strconv.FormatUint(head, 10), Token: u01}))
	if me.ID != "u01" || len(me.Licenses) != 1 || me.Licenses[0].SkuPartNumber != "SPE_E3" {
		t.Fatalf("me %+v", me)
	}
	problem(t, e.do(req{Method: "GET", Path: c + "/users/u02", Token: u01}), 403, "not_allowed_for_role")
	problem(t, e.do(req{Method: "GET", Path: c + "/me", Token: testOperator}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: c + "/me", Token: token(t, "contoso", "nobody")}), 404, "not_found")
	e.must(200, req{Method: "DELETE", Path: c + "/users/u02", Token: token(t, "contoso", "admin")})
	problem(t, e.do(req{Method: "GET", Path: c + "/me", Token: token(t, "contoso", "u02")}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: c + "/me?limit=1", Token: u01}), 400, "invalid_request")
}

// heldEnv is an env whose read models are projected only when project is
// called: between calls the projection is stopped, so the read models lag
// the command side by exactly the commands sent since (no sleeps).
func heldEnv(t *testing.T) (e *env, project func()) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	e = newEnv(t, func(c *api.Config) {
		c.Queries = queries.New(queries.Config{Redis: rdb, MaxWait: 100 * time.Millisecond, StaleWait: 100 * time.Millisecond})
	})
	project = func() {
		t.Helper()
		proj, err := projections.New(projections.Config{Store: e.store, Redis: rdb})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = proj.Run(ctx) }()
		defer func() { cancel(); <-done }()
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer wcancel()
		if err := proj.WaitFor(wctx, e.store.LastPosition()); err != nil {
			t.Fatal(err)
		}
	}
	return e, project
}

// TestMeRightAfterTheUserIsAdded: /me never answers 404 for a user its
// check on fresh state found. A user added while the projection is behind
// is answered 503 (the read models are catching up), and their profile
// once the projection has applied their addition; a user the read models
// already have is answered without waiting. Before, the read model's "not
// found" kept a new admin from signing in to the console.
func TestMeRightAfterTheUserIsAdded(t *testing.T) {
	e, project := heldEnv(t)
	e.createTenant("contoso")
	project()
	me := "/v1/tenants/contoso/me"
	e.must(200, req{Method: "GET", Path: me, Token: token(t, "contoso", "admin")})

	e.addUser("contoso", "admin", "newcomer", "US", "Member")
	newcomer := token(t, "contoso", "newcomer")
	problem(t, e.do(req{Method: "GET", Path: me, Token: newcomer}), 503, "unavailable")
	// A user the read models have is answered at once, though the tenant
	// has moved on since: only a user they lack waits.
	e.must(200, req{Method: "GET", Path: me, Token: token(t, "contoso", "admin")})
	project()
	got := decode[struct {
		ID string `json:"id"`
	}](t, e.must(200, req{Method: "GET", Path: me, Token: newcomer}))
	if got.ID != "newcomer" {
		t.Fatalf("/me of the newcomer: %+v", got)
	}
}

// TestQueriesRightAfterTheTenantIsCreated: a query whose role check found
// the tenant on the command side never answers that the tenant does not
// exist. While the read models have not applied its creation, every query
// of the tenant's admins (and the operator's GET /tenants/{t}) answers 503
// with Retry-After; once they have, the answer. Before, a Global admin who
// asked at once was told 404 "tenant … does not exist" by a tenant they
// had just been made the admin of.
func TestQueriesRightAfterTheTenantIsCreated(t *testing.T) {
	e, project := heldEnv(t)
	e.createTenant("fabrikam") // the read models are complete, without contoso
	project()
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	paths := []struct{ path, tok string }{
		{"/v1/tenants/contoso/licenses", admin},
		{"/v1/tenants/contoso/subscriptions", admin},
		{"/v1/tenants/contoso/users", admin},
		{"/v1/tenants/contoso/users?search=ad", admin},
		{"/v1/tenants/contoso/users/admin", admin},
		{"/v1/tenants/contoso/groups", admin},
		{"/v1/tenants/contoso/heldData", admin},
		{"/v1/tenants/contoso/users.csv", admin},
		{"/v1/tenants/contoso", admin},
		{"/v1/tenants/contoso", testOperator},
	}
	for _, p := range paths {
		r := problem(t, e.do(req{Method: "GET", Path: p.path, Token: p.tok}), 503, "unavailable")
		if r["detail"] == "" {
			t.Fatalf("GET %s: 503 without a detail", p.path)
		}
	}
	// A tenant the command side does not have is still 404.
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/northwind", Token: testOperator}), 404, "not_found")
	project()
	for _, p := range paths {
		e.must(200, req{Method: "GET", Path: p.path, Token: p.tok})
	}
}

// TestNotFoundIsNoOlderThanTheRoleCheck: a query says that something does
// not exist only from read models at least as new as the tenant's state
// its role check read. A user added, a group created, a subscription bought
// while the projection is behind answer 503 (and so does a user nobody
// added: the read models cannot tell yet), never 404; once the projection
// has caught up, the answer, and 404 for what the tenant does not have.
// Before, an admin who read what they had just made without ?minVersion
// was told it does not exist.
func TestNotFoundIsNoOlderThanTheRoleCheck(t *testing.T) {
	e, project := heldEnv(t)
	e.createTenant("contoso")
	project()
	admin := token(t, "contoso", "admin")
	e.addUser("contoso", "admin", "newcomer", "US", "Member")
	e.must(201, req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin, Body: map[string]any{"id": "sales", "displayName": "Sales"}})
	e.buy("contoso", "admin", "sub1", "SPB", 5)
	made := []string{
		"/v1/tenants/contoso/users/newcomer",
		"/v1/tenants/contoso/groups/sales",
		"/v1/tenants/contoso/subscriptions/sub1",
		"/v1/tenants/contoso/licenses/SPB",
		"/v1/tenants/contoso/licenses/SPB/users.csv",
	}
	for _, p := range append(made, "/v1/tenants/contoso/users/nobody") {
		problem(t, e.do(req{Method: "GET", Path: p, Token: admin}), 503, "unavailable")
	}
	project()
	for _, p := range made {
		e.must(200, req{Method: "GET", Path: p, Token: admin})
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/users/nobody", Token: admin}), 404, "not_found")
}

// TestAddUserWithLicensesOverHTTP: POST /users with licenses adds the user
// and assigns them in one command; a license refused (R3, R14, R2, R1)
// adds no user.
func TestAddUserWithLicensesOverHTTP(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	const c = "/v1/tenants/contoso"
	users := func() int { return countType(e.events("contoso"), domain.TypeUserAdded) }
	before := users()

	// R3: Power BI has its one license given by the group: nothing is added.
	p := problem(t, e.do(req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"newbie","userPrincipalName":"newbie@contoso.example",
		"usageLocation":"US","licenses":[{"skuId":"SPE_E3"},{"skuId":"POWER_BI_PRO"}]}`}), http.StatusConflict, "insufficient_licenses")
	if p["rule"] != "R3" || p["missing"] != float64(1) {
		t.Fatalf("%v", p)
	}
	// R14: no usage location.
	problem(t, e.do(req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"newbie","userPrincipalName":"newbie@contoso.example",
		"licenses":[{"skuId":"SPE_E3"}]}`}), http.StatusConflict, "usage_location_required")
	// R2: a User admin licenses no guest; R1: a Billing admin assigns nothing.
	e.must(200, req{Method: "PUT", Path: c + "/users/u01/roles", Token: admin, Body: `{"roles":["UserAdministrator"]}`})
	problem(t, e.do(req{Method: "POST", Path: c + "/users", Token: token(t, "contoso", "u01"), Body: `{"id":"guesty",
		"userPrincipalName":"guesty@fabrikam.example","userType":"Guest","usageLocation":"US","licenses":[{"skuId":"SPE_E3"}]}`}),
		http.StatusForbidden, "guest_requires_global_admin")
	e.must(200, req{Method: "PUT", Path: c + "/users/u02/roles", Token: admin, Body: `{"roles":["BillingAdministrator"]}`})
	problem(t, e.do(req{Method: "POST", Path: c + "/users", Token: token(t, "contoso", "u02"), Body: `{"id":"newbie",
		"userPrincipalName":"newbie@contoso.example","usageLocation":"US","licenses":[{"skuId":"SPE_E3"}]}`}),
		http.StatusForbidden, "not_allowed_for_role")
	problem(t, e.do(req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"newbie","userPrincipalName":"newbie@contoso.example",
		"usageLocation":"US","licenses":[{"skuId":"SPE_E3","disabledPlans":["NOPE"]}]}`}), 400, "invalid_request")
	if n := users(); n != before {
		t.Fatalf("refused requests added %d users", n-before)
	}

	// All fits: one command, the user and the license.
	r := e.must(201, req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"newbie","userPrincipalName":"newbie@contoso.example",
		"usageLocation":"US","licenses":[{"skuId":"SPE_E3","disabledPlans":["TEAMS1"]}]}`})
	a := r.answer(t)
	if a.ID != "newbie" || len(a.Events) != 2 {
		t.Fatalf("answer %+v", a)
	}
	u := decode[struct {
		Licenses []struct {
			SkuPartNumber string   `json:"skuPartNumber"`
			DisabledPlans []string `json:"disabledPlans"`
		} `json:"licenses"`
	}](t, e.must(200, req{Method: "GET", Path: c + "/users/newbie" + after(t, r), Token: admin}))
	if len(u.Licenses) != 1 || u.Licenses[0].SkuPartNumber != "SPE_E3" || len(u.Licenses[0].DisabledPlans) != 1 {
		t.Fatalf("newbie %+v", u)
	}
}

// TestTenantListUnavailable: the operator's tenant list answers 503 with
// Retry-After when Redis is out of reach, and while the read models are
// being rebuilt (no Present marker), never an empty list.
func TestTenantListUnavailable(t *testing.T) {
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer down.Close()
	e := newEnv(t, func(c *api.Config) { c.Queries = queries.New(queries.Config{Redis: down, RetryAfter: 2 * time.Second}) })
	r := e.do(req{Method: "GET", Path: "/v1/tenants", Token: testOperator})
	problem(t, r, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q, want 2", r.Header.Get("Retry-After"))
	}

	empty := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer empty.Close()
	e = newEnv(t, func(c *api.Config) { c.Queries = queries.New(queries.Config{Redis: empty}) })
	e.createTenant("contoso")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants", Token: testOperator}), http.StatusServiceUnavailable, "unavailable")
}
