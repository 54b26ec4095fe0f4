package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api/console"
)

// groupFixture: contoso's group "sales" gives SPE_E3 to alice and to carol,
// who has no usage location: carol is a member in error.
func groupFixture(t *testing.T, e *env) {
	t.Helper()
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"carol","userPrincipalName":"carol@contoso.example","displayName":"Carol"}`)
	e.apiMust(201, "POST", "/v1/tenants/contoso/groups", admin, `{"id":"sales","displayName":"Sales"}`)
	e.apiMust(200, "POST", "/v1/tenants/contoso/groups/sales/assignLicense", admin, `{"addLicenses":[{"skuId":"SPE_E3","disabledPlans":[]}],"removeLicenses":[]}`)
	e.apiMust(200, "PUT", "/v1/tenants/contoso/groups/sales/members/alice", admin, "")
	e.apiMust(200, "PUT", "/v1/tenants/contoso/groups/sales/members/carol", admin, "")
	e.caughtUp()
}

func mustHave(t *testing.T, what string, p page, code int, wants ...string) {
	t.Helper()
	if p.Code != code {
		t.Fatalf("%s: %d at %s, want %d:\n%s", what, p.Code, p.URL, code, p.Body)
	}
	for _, w := range wants {
		if !strings.Contains(p.Body, w) {
			t.Fatalf("%s: no %q at %s:\n%s", what, w, p.URL, p.Body)
		}
	}
}

var removeLicenseRE = regexp.MustCompile(`action="(/console/t/contoso/groups/sales/licenses/[^"/]+/remove)"`)

// TestGroupActions drives every action of the Groups pages through the
// console, each to its success, and a delete refused while the group gives
// licenses.
func TestGroupActions(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))

	list := b.get("/console/t/contoso/groups")
	mustHave(t, "the empty Groups page", list, 200, "No groups yet.", `href="/console/t/contoso/groups" aria-current="page"`)
	p := b.submit(list, "/console/t/contoso/groups", url.Values{"id": {"sales"}, "displayName": {"Sales"}})
	mustHave(t, "create", p, 200, "The group was added.", `href="/console/t/contoso/groups/sales">Sales</a>`)
	if !strings.Contains(p.URL, "minVersion=") {
		t.Errorf("the page after a change does not wait for it: %s", p.URL)
	}
	if e.count("contoso", "GroupCreated") != 1 {
		t.Fatal("no GroupCreated")
	}

	g := b.get("/console/t/contoso/groups/sales")
	mustHave(t, "the new group", g, 200, "This group assigns no licenses.", "This group has no members.", "No member has a license error.")
	p = b.submit(g, "/console/t/contoso/groups/sales/licenses", url.Values{"sku": {"SPE_E3"}})
	mustHave(t, "assign", p, 200, "The license was assigned to the group.", "<span class=\"id\">SPE_E3</span></td>")

	e.apiMust(201, "POST", "/v1/tenants/contoso/users", token(t, "contoso", "admin"), `{"id":"carol","userPrincipalName":"carol@contoso.example","displayName":"Carol"}`)
	for _, u := range []string{"alice", "carol"} {
		p = b.submit(p, "/console/t/contoso/groups/sales/members", url.Values{"user": {u}})
		mustHave(t, "add "+u, p, 200, "The member was added.", u+"@contoso.example")
	}
	// carol has no usage location: a member in error, in words.
	mustHave(t, "the member in error", p, 200, "Members with license errors", `<td>carol</td><td>SPE_E3</td><td><span class="errkind">No usage location</span>`)

	// A member that does not exist: the API's problem, the value kept.
	q := b.submit(p, "/console/t/contoso/groups/sales/members", url.Values{"user": {"nobody"}})
	mustHave(t, "add nobody", q, http.StatusNotFound, `class="msg error"`, `name="user" value="nobody"`)

	// Delete is refused while the group gives licenses.
	q = b.submit(p, "/console/t/contoso/groups/sales/delete", nil)
	mustHave(t, "delete with licenses", q, http.StatusConflict, `class="msg error"`, "<span class=\"id\">SPE_E3</span></td>")
	if e.count("contoso", "GroupDeleted") != 0 {
		t.Fatal("a refused delete deleted")
	}

	p = b.submit(p, "/console/t/contoso/groups/sales/members/carol/remove", nil)
	mustHave(t, "remove carol", p, 200, "The member was removed.", "No member has a license error.")
	if strings.Contains(p.Body, "carol@contoso.example") {
		t.Fatal("carol is still shown as a member")
	}

	m := removeLicenseRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no remove-license form:\n%s", p.Body)
	}
	p = b.submit(p, m[1], nil)
	mustHave(t, "remove the license", p, 200, "The license was removed from the group.", "This group assigns no licenses.")

	p = b.submit(p, "/console/t/contoso/groups/sales/delete", nil)
	mustHave(t, "delete", p, 200, "The group was deleted.", "No groups yet.")
	if p.URL[:len("/console/t/contoso/groups?")] != "/console/t/contoso/groups?" {
		t.Fatalf("delete landed on %s", p.URL)
	}
}

// TestGroupPageShowsMemberErrorsInFrench: the error kind is the catalog's
// words in the person's language; the API's detail stays data.
func TestGroupPageShowsMemberErrorsInFrench(t *testing.T) {
	e := newEnv(t, console.Config{})
	groupFixture(t, e)
	b := e.browser()
	b.header.Set("Accept-Language", "fr")
	b.signIn(token(t, "contoso", "admin"))
	p := b.get("/console/t/contoso/groups/sales")
	mustHave(t, "the group in French", p, 200, "Membres avec des erreurs de licence", "Aucun emplacement d&#39;utilisation")
	p = b.get("/console/t/contoso/groups")
	mustHave(t, "the groups in French", p, 200, "Sales", "<td>SPE_E3</td>", `<td class="num">2</td>`)
}

// TestPlainUserGetsNoGroupsHeldDataOrAudit: a user without an admin role
// sees none of these pages in the navigation, and the API refuses them.
func TestPlainUserGetsNoGroupsHeldDataOrAudit(t *testing.T) {
	e := newEnv(t, console.Config{})
	groupFixture(t, e)
	alice := e.browser()
	me := alice.signIn(token(t, "contoso", "alice"))
	for _, path := range []string{"groups", "heldData", "audit"} {
		if strings.Contains(me.Body, `href="/console/t/contoso/`+path+`"`) {
			t.Errorf("a plain user's navigation links %s", path)
		}
		p := alice.get("/console/t/contoso/" + path)
		if p.Code != http.StatusForbidden || !strings.Contains(p.Body, `class="msg error"`) || strings.Contains(p.Body, "<table") || strings.Contains(p.Body, `<form method="post" action="/console/t/contoso/groups"`) {
			t.Errorf("a plain user's %s: %d", path, p.Code)
		}
	}
	if p := alice.get("/console/t/contoso/groups/sales"); p.Code != http.StatusForbidden || strings.Contains(p.Body, "carol") {
		t.Errorf("a plain user's group page: %d", p.Code)
	}
}
