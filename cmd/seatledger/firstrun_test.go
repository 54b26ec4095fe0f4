package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/internal/browsertest"
)

// TestFirstRunConsole is README's first command as a newcomer meets it
// (issue #21: "opens a console that a new user can use without reading
// docs"): the built binary started in an empty directory, its banner's
// first line naming the console, and from there, in a real browser and
// only by clicking and typing what the pages show, a fresh store's whole
// way to an assigned license: sign in as the operator with one click,
// create a tenant, sign in as its Global admin from the next-step button,
// follow the empty Licenses page to Your products and buy, add a user in
// Active users, open the product and assign it. The license shows on the
// product page and in the API.
func TestFirstRunConsole(t *testing.T) {
	buildBinary(t) // shared with the package's other binary tests
	began := time.Now()
	dir := t.TempDir()
	proc, banner := startInDir(t, dir)
	console := "http://" + proc.addr + "/"
	if first, _, _ := strings.Cut(banner, "\n"); first != "Web console: "+console+" (open it in a browser)" {
		t.Fatalf("the banner's first line is %q, want the console's address first:\n%s", first, banner)
	}
	started := time.Since(began)
	p := browsertest.New(t, browsertest.Laptop, 60*time.Second)
	browsing := time.Now()

	// The console's address as printed: the sign-in page with the picker.
	p.Go(console)
	if loc := p.Location(); loc != console+"console/signin" {
		t.Fatalf("%s opens %s, want the sign-in page", console, loc)
	}
	if got := p.Text("#dev-title + .hint ~ p"); !strings.Contains(got, "No tenant yet") {
		t.Fatalf("a fresh store's picker says %q, want what to do without a tenant", got)
	}
	p.Screenshot("signin-dev")
	p.Click(`button[name="operator"]`)

	// Tenants: create one with its Global admin (ids left to seatledger).
	p.Type("#t-name", "Contoso")
	p.Type("#t-upn", "admin@contoso.example")
	p.Type("#t-loc", "US")
	p.Click(`form[action="/console/tenants"] button[type="submit"]`)
	p.WaitVisible("#signin-admin")
	if got := p.Text(".msg.ok"); got != "The tenant was created." {
		t.Fatalf("after creating the tenant: %q", got)
	}
	if got := p.Text("main table tbody"); !strings.Contains(got, "Contoso") {
		t.Fatalf("the tenant just created is not in the list: %q", got)
	}
	p.Screenshot("first-run-tenants")
	p.Click("#signin-admin")

	// As its Global admin: the empty Licenses page leads to Your products.
	p.WaitVisible("#buy-first")
	if got := p.Text("header .who"); got != "admin@contoso.example" {
		t.Fatalf("signed in as %q, want the tenant's Global admin", got)
	}
	p.Click("#buy-first")
	p.WaitVisible("#buy-sku")
	product := browsertest.Eval[string](p, `document.querySelector("#buy-sku").selectedOptions[0].textContent`)
	p.SetValue("#buy-quantity", "3")
	p.Click(`form[action$="/products"] button[type="submit"]`)
	if got := p.Text(".msg.ok"); !strings.HasPrefix(got, "The subscription was bought.") {
		t.Fatalf("after buying %s: %q", product, got)
	}
	if n := p.Count(`table.products a[href*="/licenses/"]`); n != 1 {
		t.Fatalf("Your products after buying %s shows %d products to open, want the one bought", product, n)
	}

	// Active users: add a user, with the usage location the form asks for.
	p.Click(`nav.side a[href$="/users"]`)
	p.Click("#add summary")
	p.Type("#a-name", "Alice Newcomer")
	p.Type("#a-upn", "alice@contoso.example")
	p.Type("#a-loc", "US")
	p.Click("#add-submit")
	if got := p.Text(".msg.ok"); got != "User added." {
		t.Fatalf("after adding a user: %q", got)
	}

	// Licenses → the product → Search (nothing typed) → tick → Assign.
	p.Click(`nav.side a[href$="/licenses"]`)
	p.Click(`main table a[href*="/licenses/"]`)
	p.Click(`button[name="op"][value="search"]`)
	p.WaitVisible(".picks input[type=checkbox]")
	if n := p.Count(".picks input[type=checkbox]"); n != 2 {
		t.Fatalf("Search with nothing typed lists %d users, want the tenant's 2", n)
	}
	// The box whose label reads Alice's name, as a person finds it.
	alice := browsertest.Eval[string](p, `[...document.querySelectorAll(".picks label")].find(l => l.textContent.startsWith("Alice Newcomer")).htmlFor`)
	p.Click(`[id="` + alice + `"]`)
	if got := p.Text(".picks input:checked + label"); got != "Alice Newcomer (alice@contoso.example)" {
		t.Fatalf("ticked %q, want Alice", got)
	}
	p.Click(`button[name="op"][value="assign"]`)
	if got := p.Text(".msg.ok"); got != "Licenses assigned." {
		t.Fatalf("after assigning: %q", got)
	}
	if got := p.Text("table.holders tbody"); !strings.Contains(got, "alice@contoso.example") {
		t.Fatalf("the product page's users after assigning: %q", got)
	}

	// The API says the same, asked with the dev operator token.
	u, err := url.Parse(p.Location())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/console/t/"), "/")
	if len(parts) != 3 || parts[1] != "licenses" {
		t.Fatalf("the product page is at %s", u.Path)
	}
	tenant, sku := parts[0], parts[2]
	code, body := proc.server(t).call(http.MethodGet, "/v1/tenants/"+url.PathEscape(tenant)+"/licenses/"+url.PathEscape(sku), proc.server(t).op, "")
	var ans struct {
		Assigned int `json:"assigned"`
		Users    []struct {
			UserPrincipalName string   `json:"userPrincipalName"`
			Sources           []string `json:"sources"`
		} `json:"users"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &ans) != nil {
		t.Fatalf("GET the product: %d %s", code, body)
	}
	if ans.Assigned != 1 || len(ans.Users) != 1 || ans.Users[0].UserPrincipalName != "alice@contoso.example" {
		t.Fatalf("the API's product %s of %s: %s", sku, tenant, body)
	}
	t.Logf("newcomer's path to an assigned license (%s): %s in the browser, %s in all (binary started in %s)", product,
		time.Since(browsing).Round(time.Millisecond), time.Since(began).Round(time.Millisecond), started.Round(time.Millisecond))
}
