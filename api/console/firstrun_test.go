package console_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api/console"
)

// TestUsageLocationBeforeAssigning: a user added without a usage location
// cannot be assigned a license (R14, the API's refusal on the product
// page); their panel sets one, and the same assignment then works. Before,
// the console had no way to set it: a dead end for a newcomer.
func TestUsageLocationBeforeAssigning(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"nolo","userPrincipalName":"nolo@contoso.example","displayName":"Nolo"}`)
	b := e.browser()
	b.signIn(admin)
	assign := func() page {
		return b.submit(b.get(productPath), productPath+"/assign", url.Values{"op": {"assign"}, "users": {"nolo"}})
	}
	if p := assign(); p.Code != 409 || !strings.Contains(p.Body, "usage location") {
		t.Fatalf("assign to a user without a usage location: %d\n%s", p.Code, p.Body)
	}
	panel := usersPath + "/nolo"
	p := b.submit(b.get(panel), panel+"/location", url.Values{"usageLocation": {"FR"}})
	succeeded(t, p, panel, "Usage location set.")
	if !strings.Contains(p.Body, `<dd>FR`) {
		t.Errorf("the panel after setting the usage location:\n%s", p.Body)
	}
	if p := assign(); p.Code != 200 || !strings.Contains(p.URL, "ok=ok.licensesAssigned") || !strings.Contains(p.Body, "nolo@contoso.example") {
		t.Fatalf("assign after setting the usage location: %d at %s\n%s", p.Code, p.URL, p.Body)
	}
	// A value the API refuses shows its problem on the panel.
	if p := b.submit(b.get(panel), panel+"/location", url.Values{"usageLocation": {"France"}}); p.Code != 400 || !strings.Contains(p.Body, `class="msg error"`) {
		t.Errorf("a refused usage location: %d\n%s", p.Code, p.Body)
	}
}

// TestEmptyStatesSayWhatNext: a tenant without products links Licenses to
// Your products, and the product page's Search with nothing typed lists
// the tenant's first users.
func TestEmptyStatesSayWhatNext(t *testing.T) {
	e := newEnv(t, console.Config{})
	e.apiMust(201, "POST", "/v1/tenants", operator, `{"id":"fabrikam","name":"Fabrikam","globalAdmin":{"id":"admin","userPrincipalName":"admin@fabrikam.example","usageLocation":"US"}}`)
	b := e.browser()
	b.signIn(token(t, "fabrikam", "admin"))
	e.caughtUp()
	p := b.get("/console/t/fabrikam/licenses")
	if !strings.Contains(p.Body, `<a href="/console/t/fabrikam/products" id="buy-first">Buy a subscription in Your products</a>`) {
		t.Errorf("Licenses without a product does not lead to Your products:\n%s", p.Body)
	}

	b = e.browser()
	b.signIn(token(t, "contoso", "admin"))
	p = b.submit(b.get(productPath), productPath+"/assign", url.Values{"op": {"search"}, "q": {""}})
	for _, id := range []string{"admin", "alice", "bob"} {
		if !strings.Contains(p.Body, `id="pick-`+id+`"`) {
			t.Errorf("Search with nothing typed does not offer %s:\n%s", id, p.Body)
		}
	}
}
