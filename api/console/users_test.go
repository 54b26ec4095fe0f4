package console_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/browsertest"
)

const (
	e3     = "05e9a617-0261-4cee-bb44-138d3ef5d965" // SPE_E3's skuId
	teamsE = "fde42873-30b6-436b-b361-21af5a6b84ae" // Teams_Ess's skuId
)

// apiUser is what the tests read of GET /v1/tenants/{t}/users/{u}.
type apiUser struct {
	Status   string `json:"status"`
	Licenses []struct {
		SkuID         string   `json:"skuId"`
		DisabledPlans []string `json:"disabledPlans"`
	} `json:"licenses"`
	ServicePlans []struct {
		SkuID           string `json:"skuId"`
		ServicePlanID   string `json:"servicePlanId"`
		ServicePlanName string `json:"servicePlanName"`
		Enabled         bool   `json:"enabled"`
	} `json:"servicePlans"`
}

// user reads a user of contoso through the JSON API, as the admin, once
// the read models hold every event written.
func (e *env) user(id string) apiUser {
	e.t.Helper()
	e.caughtUp()
	var u apiUser
	e.apiJSON("/v1/tenants/contoso/users/"+id, token(e.t, "contoso", "admin"), &u)
	return u
}

// skus are the products u holds.
func (u apiUser) skus() []string {
	var out []string
	for _, l := range u.Licenses {
		out = append(out, l.SkuID)
	}
	slices.Sort(out)
	return out
}

// plan is the id of the service plan named name in sku, and whether it is on.
func (u apiUser) plan(t *testing.T, sku, name string) (string, bool) {
	t.Helper()
	for _, p := range u.ServicePlans {
		if p.SkuID == sku && p.ServicePlanName == name {
			return p.ServicePlanID, p.Enabled
		}
	}
	t.Fatalf("no plan %s of %s in %+v", name, sku, u.ServicePlans)
	return "", false
}

// rows are the user ids of the list's rows in a page (its tick boxes).
var rowRE = regexp.MustCompile(`<input type="checkbox" name="u" value="([^"]*)"`)

func rows(p page) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(p.Body, -1) {
		out = append(out, m[1])
	}
	return out
}

// refused checks that p is the API's refusal: status want, in the
// message bar.
func refused(t *testing.T, p page, want int, words string) {
	t.Helper()
	if p.Code != want || !strings.Contains(p.Body, `class="msg error"`) || !strings.Contains(p.Body, words) {
		t.Errorf("want a %d refusal saying %q, got %d at %s:\n%s", want, words, p.Code, p.URL, p.Body)
	}
}

// succeeded checks that p is the page a change redirected to, with its
// success message.
func succeeded(t *testing.T, p page, path, words string) {
	t.Helper()
	if p.Code != 200 || !strings.HasPrefix(p.URL, path+"?") || !strings.Contains(p.Body, `class="msg ok"`) || !strings.Contains(p.Body, words) {
		t.Errorf("want %s with %q, got %d at %s:\n%s", path, words, p.Code, p.URL, p.Body)
	}
}

const usersPath = "/console/t/contoso/users"

// TestUsersListFilters: the list shows the active users with their
// licenses; search and each filter go to the API; a refused filter shows
// the API's problem.
func TestUsersListFilters(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"gus","userPrincipalName":"gus@partner.example","displayName":"Gus Guest","userType":"Guest","usageLocation":"FR"}`)
	e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"gone","userPrincipalName":"gone@contoso.example","displayName":"Aaa Gone"}`)
	e.apiMust(200, "DELETE", "/v1/tenants/contoso/users/gone", admin, "")
	e.caughtUp()
	b := e.browser()
	b.signIn(admin)

	p := b.get(usersPath)
	if p.Code != 200 {
		t.Fatalf("list: %d\n%s", p.Code, p.Body)
	}
	// Active users, by display name; not the deleted one.
	if got := rows(p); !slices.Equal(got, []string{"admin", "alice", "bob", "gus"}) {
		t.Errorf("rows %v", got)
	}
	for _, want := range []string{"alice@contoso.example", "SPE_E3", `action="/console/t/contoso/users/manageLicenses"`, `action="/console/t/contoso/users/add"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the list lacks %s", want)
		}
	}
	for q, want := range map[string][]string{
		"search=ALI":                    {"alice"},
		"search=gu&userType=Guest":      {"gus"},
		"userType=Member&licensed=true": {"alice", "bob"},
		"licensed=false":                {"admin", "gus"},
		"skuId=SPE_E3":                  {"alice", "bob"},
		"status=deleted":                {"gone"},
		"status=all":                    {"gone", "admin", "alice", "bob", "gus"}, // by display name, not id
		"licenseState=error":            nil,
		"orderBy=userPrincipalName":     {"admin", "alice", "bob", "gus"},
	} {
		got := rows(b.get(usersPath + "?" + q))
		if !slices.Equal(got, want) {
			t.Errorf("%s: rows %v, want %v", q, got, want)
		}
	}
	refused(t, b.get(usersPath+"?skuId=NOPE"), 400, "(skuId)")
}

// TestUsersListPages: the list reads one page of the API at a time and
// links to the next with the same filters.
func TestUsersListPages(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	for i := range 60 {
		e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, fmt.Sprintf(`{"id":"u%02d","userPrincipalName":"u%02d@contoso.example","displayName":"User %02d"}`, i, i, i))
	}
	e.caughtUp()
	b := e.browser()
	b.signIn(admin)
	var seen []string
	p := b.get(usersPath + "?search=user")
	for n := 0; ; n++ {
		seen = append(seen, rows(p)...)
		m := regexp.MustCompile(`<a href="([^"]*)" rel="next">`).FindStringSubmatch(p.Body)
		if m == nil {
			break
		}
		if n > 5 {
			t.Fatal("no end of pages")
		}
		next := strings.ReplaceAll(m[1], "&amp;", "&")
		if !strings.Contains(next, "search=user") {
			t.Errorf("the next page's link %s loses the search", next)
		}
		p = b.get(next)
	}
	if len(seen) != 60 || seen[0] != "u00" || seen[59] != "u59" {
		t.Errorf("the pages held %d users: %v", len(seen), seen)
	}
	if first := rows(b.get(usersPath + "?search=user")); len(first) != 50 {
		t.Errorf("the first page holds %d users, want 50", len(first))
	}
}

// TestUserPanelPlans: the panel shows alice's E3 with its plans; saving
// with a plan unticked disables it; a refused combination shows the API's
// problem and changes nothing.
func TestUserPanelPlans(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	alice := e.user("alice")
	panel := usersPath + "/alice"
	p := b.get(panel)
	if p.Code != 200 || !strings.Contains(p.Body, "SPE_E3") || !strings.Contains(p.Body, "TEAMS1") || !strings.Contains(p.Body, "alice@contoso.example") {
		t.Fatalf("panel: %d\n%s", p.Code, p.Body)
	}
	action := panel + "/licenses/" + e3
	on := func(except ...string) url.Values {
		v := url.Values{}
		for _, sp := range alice.ServicePlans {
			if sp.SkuID == e3 && !slices.Contains(except, sp.ServicePlanName) {
				v.Add("on", sp.ServicePlanID)
			}
		}
		return v
	}
	teams, _ := alice.plan(t, e3, "TEAMS1")
	succeeded(t, b.submit(p, action, on("TEAMS1")), panel, "Apps and services saved.")
	if _, enabled := e.user("alice").plan(t, e3, "TEAMS1"); enabled {
		t.Error("TEAMS1 is still on")
	}
	if l := e.user("alice").Licenses; len(l) != 1 || !slices.Equal(l[0].DisabledPlans, []string{teams}) {
		t.Errorf("alice's licenses: %+v", l)
	}

	// Office for the Web needs a SharePoint plan (dependency_violation).
	p = b.submit(b.get(panel), action, on("TEAMS1", "SHAREPOINTENTERPRISE"))
	refused(t, p, 409, "SharePoint")
	if _, enabled := e.user("alice").plan(t, e3, "SHAREPOINTENTERPRISE"); !enabled {
		t.Error("a refused change switched SharePoint off")
	}
}

// TestUserAssignAndRemoveLicense: assign a product to one user from their
// panel, remove one; a user without a usage location is refused.
func TestUserAssignAndRemoveLicense(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"carol","userPrincipalName":"carol@contoso.example","displayName":"Carol"}`)
	e.caughtUp()
	b := e.browser()
	b.signIn(admin)

	panel := usersPath + "/admin"
	succeeded(t, b.submit(b.get(panel), panel+"/assignLicense", url.Values{"add": {e3}}), panel, "License assigned.")
	if got := e.user("admin").skus(); !slices.Equal(got, []string{e3}) {
		t.Errorf("admin holds %v", got)
	}
	panel = usersPath + "/bob"
	p := b.get(panel)
	if !strings.Contains(p.Body, `name="remove" value="`+e3+`"`) {
		t.Fatalf("bob's panel has no unassign for E3:\n%s", p.Body)
	}
	succeeded(t, b.submit(p, panel+"/assignLicense", url.Values{"remove": {e3}}), panel, "License unassigned.")
	if got := e.user("bob").skus(); len(got) != 0 {
		t.Errorf("bob still holds %v", got)
	}

	panel = usersPath + "/carol"
	refused(t, b.submit(b.get(panel), panel+"/assignLicense", url.Values{"add": {e3}}), 409, "usage location")
	if got := e.user("carol").skus(); len(got) != 0 {
		t.Errorf("carol holds %v after a refusal", got)
	}
}

// TestUserDeleteAndRestore: delete asks for "I understand" first; a
// deleted user leaves the Active list, shows under Deleted and is
// restored from their panel; the API's refusals show.
func TestUserDeleteAndRestore(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	panel := usersPath + "/bob"
	p := b.get(panel)
	refused(t, b.submit(p, panel+"/delete", nil), 422, "I understand")
	if e.user("bob").Status != "Active" {
		t.Fatal("deleted without the confirmation")
	}
	p = b.submit(p, panel+"/delete", url.Values{"confirm": {"yes"}})
	succeeded(t, p, usersPath, "User deleted.")
	if slices.Contains(rows(p), "bob") {
		t.Error("bob is still in the Active users list")
	}
	if e.user("bob").Status != "Deleted" {
		t.Error("bob is not deleted")
	}
	if got := rows(b.get(usersPath + "?status=deleted")); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("deleted users: %v", got)
	}
	// The same delete again, a new submission: the API refuses it.
	p = b.get(panel)
	if strings.Contains(p.Body, `action="`+panel+`/delete"`) || !strings.Contains(p.Body, `action="`+panel+`/restore"`) {
		t.Fatalf("a deleted user's panel offers delete, or no restore:\n%s", p.Body)
	}
	form := hidden(t, p.Body, panel+"/restore")
	form.Set("confirm", "yes")
	p2 := b.do("POST", panel+"/delete", form)
	if p2.Code < 400 || !strings.Contains(p2.Body, `class="msg error"`) {
		t.Errorf("deleting a deleted user: %d\n%s", p2.Code, p2.Body)
	}

	succeeded(t, b.submit(p, panel+"/restore", nil), panel, "User restored.")
	if e.user("bob").Status != "Active" {
		t.Error("bob is not restored")
	}
	p = b.get(panel)
	form = hidden(t, p.Body, panel+"/delete")
	p2 = b.do("POST", panel+"/restore", form)
	if p2.Code < 400 || !strings.Contains(p2.Body, `class="msg error"`) {
		t.Errorf("restoring an active user: %d\n%s", p2.Code, p2.Body)
	}
}

// TestManageProductLicenses: the users ticked on the list get more
// licenses, others instead, or none; more than the bulk limit is the API's
// refusal.
func TestManageProductLicenses(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"s2","skuId":"Teams_Ess","quantity":5}`)
	e.caughtUp()
	b := e.browser()
	b.signIn(admin)
	action := usersPath + "/manageLicenses"
	both := url.Values{"u": {"alice", "bob"}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}

	succeeded(t, b.submit(b.get(usersPath), action, with(both, "mode", "AssignMore", "sku", teamsE)), usersPath, "Product licenses updated.")
	for _, u := range []string{"alice", "bob"} {
		if got := e.user(u).skus(); !slices.Equal(got, []string{e3, teamsE}) {
			t.Errorf("assign more: %s holds %v", u, got)
		}
	}
	// The list's filters come back after the change.
	p := b.submit(b.get(usersPath+"?search=a"), action, with(url.Values{"u": {"alice"}}, "mode", "Replace", "sku", e3))
	succeeded(t, p, usersPath, "Product licenses updated.")
	if !strings.Contains(p.URL, "search=a") {
		t.Errorf("after the change the list lost its search: %s", p.URL)
	}
	// From the page a change landed on, the next change says its own
	// success, not the one before.
	p = b.submit(b.get(usersPath+"?search=a&ok=ok.userDeleted&v=1"), action, with(url.Values{"u": {"alice"}}, "mode", "AssignMore", "sku", teamsE))
	succeeded(t, p, usersPath, "Product licenses updated.")
	if strings.Contains(p.Body, "User deleted") || strings.Count(p.URL, "ok=") != 1 {
		t.Errorf("the message of an earlier change came back: %s", p.URL)
	}
	succeeded(t, b.submit(b.get(usersPath), action, with(url.Values{"u": {"alice"}}, "mode", "Replace", "sku", e3)), usersPath, "Product licenses updated.")
	if got := e.user("alice").skus(); !slices.Equal(got, []string{e3}) {
		t.Errorf("replace: alice holds %v", got)
	}
	succeeded(t, b.submit(b.get(usersPath), action, with(both, "mode", "UnassignAll")), usersPath, "Product licenses updated.")
	for _, u := range []string{"alice", "bob"} {
		if got := e.user(u).skus(); len(got) != 0 {
			t.Errorf("unassign all: %s holds %v", u, got)
		}
	}

	// 21 users ticked: the API's bulk limit.
	many := url.Values{"mode": {"AssignMore"}, "sku": {e3}}
	for i := range 21 {
		many.Add("u", fmt.Sprintf("u%d", i))
	}
	p = b.submit(b.get(usersPath), action, many)
	refused(t, p, 400, "20")
	if !strings.Contains(p.Body, `<details class="card" id="manage" open>`) || !strings.Contains(p.Body, `value="`+e3+`" checked`) {
		t.Errorf("the refused pane is closed or lost its choices:\n%s", p.Body)
	}
	// Replace without a product: refused, the ticks kept.
	p = b.submit(b.get(usersPath), action, with(both, "mode", "Replace"))
	refused(t, p, 400, "(addLicenses)")
	if !strings.Contains(p.Body, `value="alice" id="pick-alice" checked`) {
		t.Errorf("the refused list lost alice's tick")
	}
}

// TestAddUser: Add a user with a license lands on their panel; the same
// user name again is the API's refusal, with the form kept.
func TestAddUser(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	action := usersPath + "/add"
	fields := url.Values{"id": {"dan"}, "userPrincipalName": {"dan@contoso.example"}, "displayName": {"Dan"}, "usageLocation": {"US"}, "sku": {e3}}
	p := b.submit(b.get(usersPath), action, fields)
	succeeded(t, p, usersPath+"/dan", "User added.")
	if !strings.Contains(p.Body, "dan@contoso.example") || !strings.Contains(p.Body, "SPE_E3") {
		t.Errorf("the new user's panel:\n%s", p.Body)
	}
	if got := e.user("dan").skus(); !slices.Equal(got, []string{e3}) {
		t.Errorf("dan holds %v", got)
	}
	// Without an id: the API chooses one, the panel is its.
	p = b.submit(b.get(usersPath), action, url.Values{"userPrincipalName": {"eve@contoso.example"}, "usageLocation": {"US"}})
	if !strings.Contains(p.Body, "eve@contoso.example") || !strings.Contains(p.URL, "ok=ok.userAdded") {
		t.Errorf("a user without an id: %d at %s", p.Code, p.URL)
	}

	fields.Set("id", "dan2")
	p = b.submit(b.get(usersPath), action, fields)
	if p.Code != 409 || !strings.Contains(p.Body, `class="msg error"`) {
		t.Errorf("the same UPN again: %d\n%s", p.Code, p.Body)
	}
	if !strings.Contains(p.Body, `<details class="card" id="add" open>`) || !strings.Contains(p.Body, `value="dan2"`) {
		t.Errorf("the refused form is closed or lost its values")
	}
}

// TestUsersPlainUser: a user without an admin role sees the API's refusal
// on the Active users pages and no form but sign-out.
func TestUsersPlainUser(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	p := b.signIn(token(t, "contoso", "alice"))
	if strings.Contains(p.Body, `href="/console/t/contoso/users"`) {
		t.Error("a plain user's navigation shows Active users")
	}
	for _, path := range []string{usersPath, usersPath + "/bob", usersPath + "/alice"} {
		p := b.get(path)
		refused(t, p, 403, "")
		if n := strings.Count(p.Body, "<form"); n != 1 {
			t.Errorf("%s: %d forms for a plain user", path, n)
		}
	}
	// Posting anyway: the API refuses, nothing changes.
	form := hidden(t, b.get(usersPath).Body, "/console/signout")
	form.Set("idem", "k1")
	form.Set("confirm", "yes")
	refused(t, b.do("POST", usersPath+"/bob/delete", form), 403, "")
	if e.user("bob").Status != "Active" {
		t.Error("a plain user deleted bob")
	}
}

// submitted clicks sel (a submit button) and waits for the page the
// browser lands on: the page before is marked, the next one is not.
func submitted(p *browsertest.Page, sel string) {
	browsertest.Eval[bool](p, "(document.body.dataset.before = '1') === '1'")
	p.Click(sel)
	p.WaitVisible("body:not([data-before])")
}

// TestBrowserUserLifecycle is the scenario in a real browser: add a
// user, find them with the search box, delete them (ticking "I
// understand"), see them gone from Active users and restorable under
// Deleted, and restore them.
func TestBrowserUserLifecycle(t *testing.T) {
	e := newEnv(t, console.Config{})
	p := e.signedIn(token(t, "contoso", "admin"), browsertest.Laptop)
	p.Go(e.srv.URL + usersPath)
	p.Click("#add > summary")
	p.Type("#a-name", "Zed Zimmer")
	p.Type("#a-upn", "zed@contoso.example")
	p.Type("#a-loc", "US")
	submitted(p, "#add-submit")
	if got := p.Text(".msg.ok"); !strings.Contains(got, "User added") {
		t.Fatalf("after Add: %q at %s", got, p.Location())
	}
	if got := p.Text("#user-status"); got != "Active" {
		t.Errorf("the new user's status: %q", got)
	}

	p.Go(e.srv.URL + usersPath)
	p.Type("#u-search", "zed")
	submitted(p, "form.filters button[type=submit]")
	if n := p.Count("table tbody input[name=u]"); n != 1 || !strings.Contains(p.Text("table tbody"), "zed@contoso.example") {
		t.Fatalf("searching zed: %d rows: %s", n, p.Text("table tbody"))
	}
	p.Click("table tbody td:nth-child(2) a")
	p.WaitVisible("#delete-submit")
	p.Click("#delete-confirm")
	submitted(p, "#delete-submit")
	if got := p.Text(".msg.ok"); !strings.Contains(got, "User deleted") {
		t.Fatalf("after Delete: %q at %s", got, p.Location())
	}
	if strings.Contains(p.Text("table tbody"), "zed@contoso.example") {
		t.Error("the deleted user is still in Active users")
	}

	p.SetValue("#u-status", "deleted")
	p.Type("#u-search", "zed")
	submitted(p, "form.filters button[type=submit]")
	if !strings.Contains(p.Text("table tbody"), "zed@contoso.example") {
		t.Fatalf("the deleted user is not under Deleted: %s", p.Text("table tbody"))
	}
	p.Click("table tbody td:nth-child(2) a")
	p.WaitVisible("#restore-submit")
	if p.Has("#delete-submit") {
		t.Error("a deleted user's panel offers delete")
	}
	submitted(p, "#restore-submit")
	if got := p.Text("#user-status"); got != "Active" {
		t.Errorf("after Restore the status is %q", got)
	}
}

// TestBrowserSwitchPlanOff is the scenario: switch a service plan
// off on alice's E3 in the browser; the API says it is disabled. Takes the
// screenshots of both pages.
func TestBrowserSwitchPlanOff(t *testing.T) {
	e := newEnv(t, console.Config{})
	p := e.signedIn(token(t, "contoso", "admin"), browsertest.Laptop)
	p.Go(e.srv.URL + usersPath)
	p.WaitVisible("table tbody")
	p.Screenshot("users")
	p.Resize(browsertest.Narrow)
	p.Screenshot("users-narrow")
	p.Resize(browsertest.Laptop)

	p.Go(e.srv.URL + usersPath + "/alice")
	box := "#plan-" + e3 + "-TEAMS1"
	if !browsertest.Eval[bool](p, "document.querySelector('"+box+"').checked") {
		t.Fatal("TEAMS1 is not ticked before the change")
	}
	p.Click(box)
	submitted(p, "#save-"+e3)
	if got := p.Text(".msg.ok"); !strings.Contains(got, "saved") {
		t.Fatalf("after Save: %q", got)
	}
	if _, enabled := e.user("alice").plan(t, e3, "TEAMS1"); enabled {
		t.Error("the API says TEAMS1 is still on")
	}
	if _, enabled := e.user("alice").plan(t, e3, "SHAREPOINTENTERPRISE"); !enabled {
		t.Error("another plan went off")
	}
	if browsertest.Eval[bool](p, "document.querySelector('"+box+"').checked") {
		t.Error("the panel still ticks TEAMS1")
	}
	p.Screenshot("user")
	p.Resize(browsertest.Narrow)
	p.Screenshot("user-narrow")
}

// TestBrowserPlainUserSeesNoAdminAction is the scenario: alice,
// without an admin role, has no Active users in her navigation, and a
// direct visit to the admin pages shows the API's refusal and no form.
func TestBrowserPlainUserSeesNoAdminAction(t *testing.T) {
	e := newEnv(t, console.Config{})
	p := e.signedIn(token(t, "contoso", "alice"), browsertest.Laptop)
	if p.Has("nav.side a[href$='/users']") {
		t.Error("alice's navigation shows Active users")
	}
	for _, path := range []string{usersPath, usersPath + "/bob", usersPath + "/alice", "/console/t/contoso/me"} {
		p.Go(e.srv.URL + path)
		if p.Has("nav.side a[href$='/users']") {
			t.Errorf("%s: the navigation shows Active users", path)
		}
		if n := p.Count("main form, main button, main input, main select"); n != 0 {
			t.Errorf("%s: %d form controls for a plain user", path, n)
		}
		if path == "/console/t/contoso/me" {
			continue
		}
		if got := p.Text(".msg.error"); !strings.Contains(got, "GlobalAdministrator") && !strings.Contains(strings.ToLower(got), "role") {
			t.Errorf("%s: the refusal says %q", path, got)
		}
	}
}

var errorBarRE = regexp.MustCompile(`(?s)<div class="msg error" role="alert">(.*?)</div>`)

// TestUsersPagesInFrenchAndChinese: the pages speak the person's language
// with the admin center's terms, and a refusal shows the API's detail in
// it.
func TestUsersPagesInFrenchAndChinese(t *testing.T) {
	e := newEnv(t, console.Config{})
	alice := e.user("alice")
	var bars []string
	for _, tc := range []struct{ lang, list, panel string }{
		{"en", "Manage product licenses", "Licenses and apps"},
		{"fr", "Gérer les licences de produits", "Licences et applications"},
		{"zh-TW", "管理產品授權", "授權和應用程式"},
	} {
		b := e.browser()
		b.header.Set("Accept-Language", tc.lang)
		b.signIn(token(t, "contoso", "admin"))
		if p := b.get(usersPath); !strings.Contains(p.Body, `<html lang="`+tc.lang+`">`) || !strings.Contains(p.Body, tc.list) {
			t.Errorf("%s: the list does not say %q", tc.lang, tc.list)
		}
		panel := usersPath + "/alice"
		p := b.get(panel)
		if !strings.Contains(p.Body, tc.panel) {
			t.Errorf("%s: the panel does not say %q", tc.lang, tc.panel)
		}
		// Every plan on but SharePoint (Plan 2): Office for the Web needs it.
		on := url.Values{}
		for _, sp := range alice.ServicePlans {
			if sp.SkuID == e3 && sp.ServicePlanName != "SHAREPOINTENTERPRISE" && sp.ServicePlanID != "" {
				on.Add("on", sp.ServicePlanID)
			}
		}
		p = b.submit(p, panel+"/licenses/"+e3, on)
		m := errorBarRE.FindStringSubmatch(p.Body)
		if p.Code != 409 || m == nil {
			t.Fatalf("%s: %d, no refusal", tc.lang, p.Code)
		}
		bars = append(bars, m[1])
	}
	if bars[0] == bars[1] || bars[0] == bars[2] || bars[1] == bars[2] {
		t.Errorf("the refusal is not in each language: %q", bars)
	}
}

// TestUsersPanelUnknownUser: a user the tenant does not have is the API's
// 404 on the panel, with no form of the panel.
func TestUsersPanelUnknownUser(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	p := b.get(usersPath + "/nobody")
	refused(t, p, 404, "nobody")
	if strings.Contains(p.Body, "/nobody/") {
		t.Errorf("the panel of an unknown user offers changes:\n%s", p.Body)
	}
	// The operator reads the tenant's users as its admins do.
	b = e.browser()
	b.signIn(operator)
	if got := rows(b.get(usersPath)); !slices.Equal(got, []string{"admin", "alice", "bob"}) {
		t.Errorf("the operator's list: %v", got)
	}
}

// TestUserPanelRefusalKeepsInput: a refused change of the panel draws it
// again with what the person had chosen, not the stored values: the apps
// they switched on and off, the usage location they typed.
func TestUserPanelRefusalKeepsInput(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	alice := e.user("alice")
	panel := usersPath + "/alice"
	on := url.Values{}
	for _, sp := range alice.ServicePlans {
		if sp.SkuID == e3 && sp.ServicePlanName != "SHAREPOINTENTERPRISE" {
			on.Add("on", sp.ServicePlanID)
		}
	}
	p := b.submit(b.get(panel), panel+"/licenses/"+e3, on)
	refused(t, p, 409, "SharePoint")
	box := regexp.MustCompile(`<input type="checkbox" name="on" value="[^"]*" id="plan-` + regexp.QuoteMeta(e3) + `-SHAREPOINTENTERPRISE"( checked)?`)
	if m := box.FindStringSubmatch(p.Body); m == nil || m[1] != "" {
		t.Errorf("after the refusal SharePoint shows %q, want it unchecked as submitted:\n%s", m, p.Body)
	}
	if m := regexp.MustCompile(`id="plan-` + regexp.QuoteMeta(e3) + `-TEAMS1"( checked)?`).FindStringSubmatch(p.Body); m == nil || m[1] == "" {
		t.Errorf("after the refusal TEAMS1 shows %q, want it checked as submitted", m)
	}

	p = b.submit(b.get(panel), panel+"/location", url.Values{"usageLocation": {"France"}})
	refused(t, p, 400, "")
	if !strings.Contains(p.Body, `name="usageLocation" value="France"`) {
		t.Errorf("after the refusal the location typed is gone:\n%s", p.Body)
	}
}

// TestUserAssignRefusalKeepsProduct: a refused assignment from the panel
// keeps the product chosen in its list, so that trying again (or reading
// the refusal) is about that product, not the list's first.
func TestUserAssignRefusalKeepsProduct(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"s5","skuId":"SPE_E5","quantity":1}`)
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"s6","skuId":"VISIOCLIENT","quantity":1}`)
	e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E5/assign", admin, `{"users":["bob"]}`)
	e.caughtUp()
	var products []struct{ SkuID, SkuPartNumber string }
	e.apiJSON("/v1/tenants/contoso/licenses", admin, &products)
	for _, part := range []string{"SPE_E5", "VISIOCLIENT"} {
		sku := ""
		for _, p := range products {
			if p.SkuPartNumber == part {
				sku = p.SkuID
			}
		}
		b := e.browser()
		b.signIn(admin)
		panel := usersPath + "/alice"
		if part == "VISIOCLIENT" {
			// Its one license goes to bob first: alice's is refused too.
			e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/VISIOCLIENT/assign", admin, `{"users":["bob"]}`)
			e.caughtUp()
		}
		p := b.submit(b.get(panel), panel+"/assignLicense", url.Values{"add": {sku}})
		if p.Code < 400 {
			t.Fatalf("%s: %d, want a refusal", part, p.Code)
		}
		if !strings.Contains(p.Body, `<option value="`+sku+`" selected>`) {
			t.Errorf("%s: the refused product is not the one chosen in the list:\n%s", part, p.Body)
		}
	}
}
