package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
)

// storeEvents counts the events of the whole store (every stream).
func (e *env) storeEvents() int {
	e.t.Helper()
	recs, err := e.store.ReadAll(context.Background(), eventstore.Start, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(recs)
}

// refused sends r, checks that it is refused with status and code, and
// that nothing was appended: not to tenant's stream, not to any other
// (a tenant create that failed opens no stream). It returns the problem.
func (e *env) refused(t *testing.T, tenant string, r req, status int, code string) map[string]any {
	t.Helper()
	version, all := e.version(tenant), e.storeEvents()
	p := problem(t, e.do(r), status, code)
	if v := e.version(tenant); v != version {
		t.Errorf("a refused request wrote to tenant %s: version %d -> %d", tenant, version, v)
	}
	if n := e.storeEvents(); n != all {
		t.Errorf("a refused request wrote %d events to the store", n-all)
	}
	return p
}

// TestEveryRefusalAnswersItsCodeAndWritesNothing: each command endpoint,
// for each way the contract says it can refuse, answers the documented
// status and problem code with the members the contract names (field for
// invalid_request, missing for insufficient_licenses, plans for plan
// conflicts, and the rule that refused) and appends nothing.
func TestEveryRefusalAnswersItsCodeAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	for _, u := range []string{"alice", "bob", "carol"} {
		e.addUser("contoso", "admin", u, "US", "Member")
	}
	e.addUser("contoso", "admin", "nolo", "", "Member") // no usage location (R14)
	e.buy("contoso", "admin", "s1", "SPB", 2)
	e.buy("contoso", "admin", "s2", "VISIOCLIENT", 1)
	e.buy("contoso", "admin", "s3", "EXCHANGEENTERPRISE", 1)
	admin := token(t, "contoso", "admin")
	const c = "/v1/tenants/contoso"
	e.must(http.StatusOK, req{Method: "POST", Path: c + "/licenses/SPB/assign", Token: admin, Body: `{"users":["alice"]}`})                // 1 of 2 left
	e.must(http.StatusOK, req{Method: "POST", Path: c + "/licenses/VISIOCLIENT/assign", Token: admin, Body: `{"users":["alice"]}`})        // 0 of 1 left
	e.must(http.StatusOK, req{Method: "POST", Path: c + "/licenses/EXCHANGEENTERPRISE/assign", Token: admin, Body: `{"users":["carol"]}`}) // Exchange Plan 2
	e.must(http.StatusCreated, req{Method: "POST", Path: c + "/groups", Token: admin, Body: `{"id":"g1","displayName":"Sales"}`})
	e.must(http.StatusOK, req{Method: "PUT", Path: c + "/groups/g1/members/alice", Token: admin})

	ga := `"globalAdmin":{"id":"ga","userPrincipalName":"ga@fabrikam.example","usageLocation":"US"}`
	var many []string
	for i := range 21 {
		many = append(many, fmt.Sprintf("m%02d", i))
	}
	// SPB without SharePoint leaves Office for the web (SHAREPOINTWAC) with
	// nothing to open files from (R7).
	noSharePoint := []string{"SHAREPOINTWAC", "SHAREPOINTSTANDARD"}
	// carol has Exchange Plan 2; SPB brings Exchange Plan 1 (R6).
	bothExchanges := []string{"EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE"}
	cases := []struct {
		name         string
		method, path string
		operator     bool // the operator token, else the Global admin's
		body         any
		status       int
		code         string
		members      map[string]any // problem members the answer must carry
		plans        []string       // plans the problem must name
	}{
		// POST /v1/tenants
		{name: "tenant without globalAdmin", method: "POST", path: "/v1/tenants", operator: true, body: `{"id":"fabrikam","name":"Fabrikam"}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "globalAdmin"}},
		{name: "tenant with a bad id", method: "POST", path: "/v1/tenants", operator: true, body: `{"id":"fab rikam!","name":"Fabrikam",` + ga + `}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "id"}},
		{name: "tenant with an unknown field", method: "POST", path: "/v1/tenants", operator: true, body: `{"id":"fabrikam","name":"Fabrikam","plan":"gold",` + ga + `}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "plan"}},
		{name: "tenant that exists", method: "POST", path: "/v1/tenants", operator: true, body: `{"id":"contoso","name":"Contoso again",` + ga + `}`,
			status: 409, code: "already_exists", members: map[string]any{"field": "id"}},

		// users
		{name: "restore an unknown user", method: "POST", path: c + "/users/nobody/restore", status: 404, code: "not_found"},
		{name: "roles of an unknown user", method: "PUT", path: c + "/users/nobody/roles", body: `{"roles":["LicenseAdministrator"]}`, status: 404, code: "not_found"},
		{name: "retention hold of an unknown user", method: "PUT", path: c + "/users/nobody/retentionHold", body: `{"enabled":true}`, status: 404, code: "not_found"},

		// groups
		{name: "remove an unknown user from a group", method: "DELETE", path: c + "/groups/g1/members/nobody", status: 404, code: "not_found"},
		{name: "remove a member from an unknown group", method: "DELETE", path: c + "/groups/nogroup/members/alice", status: 404, code: "not_found"},
		{name: "remove a member with a bad user id", method: "DELETE", path: c + "/groups/g1/members/bad!id",
			status: 400, code: "invalid_request", members: map[string]any{"field": "userId"}},
		{name: "remove a member with a body", method: "DELETE", path: c + "/groups/g1/members/alice", body: `{"force":true}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "force"}},
		{name: "license an unknown group", method: "POST", path: c + "/groups/nogroup/assignLicense", body: `{"addLicenses":[{"skuId":"SPB"}]}`, status: 404, code: "not_found"},
		{name: "license a group with an unknown sku", method: "POST", path: c + "/groups/g1/assignLicense", body: `{"addLicenses":[{"skuId":"NOPE"}]}`, status: 404, code: "not_found"},
		{name: "license a group with a product not bought", method: "POST", path: c + "/groups/g1/assignLicense", body: `{"addLicenses":[{"skuId":"ENTERPRISEPACK"}]}`, status: 404, code: "not_found"},
		{name: "license a group with nothing", method: "POST", path: c + "/groups/g1/assignLicense", body: `{}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "addLicenses"}},
		{name: "license a group with an unknown plan", method: "POST", path: c + "/groups/g1/assignLicense", body: `{"addLicenses":[{"skuId":"SPB","disabledPlans":["NOPE"]}]}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "addLicenses.disabledPlans"}},

		// subscriptions: only a self-service purchase can be taken over
		// (R8); the contract has no code of its own for another kind, so it
		// is bad input about the path's subscription.
		{name: "take over a paid subscription", method: "POST", path: c + "/subscriptions/s1/takeOver",
			status: 400, code: "invalid_request", members: map[string]any{"field": "subscriptionId"}},

		// POST /licenses/{sku}/unassign
		{name: "unassign 21 users", method: "POST", path: c + "/licenses/SPB/unassign", body: map[string]any{"users": many},
			status: 400, code: "too_many_users", members: map[string]any{"rule": "R4"}},
		{name: "unassign an unknown user", method: "POST", path: c + "/licenses/SPB/unassign", body: `{"users":["nobody"]}`, status: 404, code: "not_found"},
		{name: "unassign an unknown sku", method: "POST", path: c + "/licenses/NOPE/unassign", body: `{"users":["alice"]}`, status: 404, code: "not_found"},

		// POST /licenses/{sku}/assign with disabledPlans
		{name: "assign with a plan disabled that another depends on", method: "POST", path: c + "/licenses/SPB/assign",
			body: `{"users":["bob"],"disabledPlans":["SHAREPOINTSTANDARD"]}`, status: 409, code: "dependency_violation",
			members: map[string]any{"rule": "R7"}, plans: noSharePoint},
		{name: "assign with disabled plans that keep an exclusive plan", method: "POST", path: c + "/licenses/SPB/assign",
			body: `{"users":["carol"],"disabledPlans":["SWAY"]}`, status: 409, code: "mutually_exclusive_plans",
			members: map[string]any{"rule": "R6"}, plans: bothExchanges},

		// POST /users/{u}/assignLicense
		{name: "user assign beyond the licenses", method: "POST", path: c + "/users/bob/assignLicense", body: `{"addLicenses":[{"skuId":"VISIOCLIENT"}]}`,
			status: 409, code: "insufficient_licenses", members: map[string]any{"missing": float64(1), "rule": "R3"}},
		{name: "user assign without usage location", method: "POST", path: c + "/users/nolo/assignLicense", body: `{"addLicenses":[{"skuId":"SPB"}]}`,
			status: 409, code: "usage_location_required", members: map[string]any{"rule": "R14"}},
		{name: "user assign with a plan disabled that another depends on", method: "POST", path: c + "/users/bob/assignLicense",
			body: `{"addLicenses":[{"skuId":"SPB","disabledPlans":["SHAREPOINTSTANDARD"]}]}`, status: 409, code: "dependency_violation",
			members: map[string]any{"rule": "R7"}, plans: noSharePoint},
		{name: "user assign to an unknown user", method: "POST", path: c + "/users/nobody/assignLicense", body: `{"addLicenses":[{"skuId":"SPB"}]}`, status: 404, code: "not_found"},
		{name: "user assign of an unknown sku", method: "POST", path: c + "/users/bob/assignLicense", body: `{"addLicenses":[{"skuId":"NOPE"}]}`, status: 404, code: "not_found"},
		{name: "user assign of a product not bought", method: "POST", path: c + "/users/bob/assignLicense", body: `{"addLicenses":[{"skuId":"ENTERPRISEPACK"}]}`, status: 404, code: "not_found"},
		{name: "user assign of nothing", method: "POST", path: c + "/users/bob/assignLicense", body: `{}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "addLicenses"}},
		{name: "user assign with a bad user id", method: "POST", path: c + "/users/bad!id/assignLicense", body: `{"addLicenses":[{"skuId":"SPB"}]}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "userId"}},
		{name: "user assign with an unknown plan", method: "POST", path: c + "/users/bob/assignLicense", body: `{"addLicenses":[{"skuId":"SPB","disabledPlans":["NOPE"]}]}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "addLicenses.disabledPlans"}},
		{name: "user assign with a wrong type", method: "POST", path: c + "/users/bob/assignLicense", body: `{"addLicenses":"SPB"}`,
			status: 400, code: "invalid_request", members: map[string]any{"field": "addLicenses"}},

		// POST /users/manageLicenses
		{name: "manage beyond the licenses", method: "POST", path: c + "/users/manageLicenses",
			body:   `{"users":["bob","carol"],"mode":"AssignMore","addLicenses":[{"skuId":"VISIOCLIENT"}]}`,
			status: 409, code: "insufficient_licenses", members: map[string]any{"missing": float64(2), "rule": "R3"}},
		{name: "manage without usage location", method: "POST", path: c + "/users/manageLicenses",
			body:   `{"users":["bob","nolo"],"mode":"AssignMore","addLicenses":[{"skuId":"SPB"}]}`,
			status: 409, code: "usage_location_required", members: map[string]any{"rule": "R14"}},
		{name: "manage an unknown user", method: "POST", path: c + "/users/manageLicenses",
			body: `{"users":["nobody"],"mode":"AssignMore","addLicenses":[{"skuId":"SPB"}]}`, status: 404, code: "not_found"},

		// POST /apps/{sku}/install
		{name: "install an unknown sku", method: "POST", path: c + "/apps/NOPE/install", status: 404, code: "not_found"},
		{name: "install a product not bought", method: "POST", path: c + "/apps/ENTERPRISEPACK/install", status: 404, code: "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := admin
			if tc.operator {
				tok = testOperator
			}
			p := e.refused(t, "contoso", req{Method: tc.method, Path: tc.path, Token: tok, Body: tc.body}, tc.status, tc.code)
			for k, want := range tc.members {
				if p[k] != want {
					t.Errorf("problem member %s = %v, want %v: %v", k, p[k], want, p)
				}
			}
			if tc.plans != nil {
				got, _ := p["plans"].([]any)
				for _, want := range tc.plans {
					if !slices.Contains(got, any(want)) {
						t.Errorf("plans %v do not name %s", got, want)
					}
				}
			}
		})
	}

	// The R6 refusal was about the plans: with the conflicting plan
	// disabled, the same assignment is accepted.
	a := e.must(http.StatusOK, req{Method: "POST", Path: c + "/licenses/SPB/assign", Token: admin, Body: `{"users":["carol"],"disabledPlans":["EXCHANGE_S_STANDARD"]}`})
	if got := eventTypes(t, a); !slices.Contains(got, domain.TypeLicenseAssigned) {
		t.Fatalf("assign with the exclusive plan disabled: events %v", got)
	}
}
