package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp/kb"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/browsertest"
)

const productsPath = "/console/t/contoso/products"

// subscription reads one subscription from the API.
func (e *env) subscription(id string) (quantity int, status string, takenOver bool) {
	e.t.Helper()
	e.caughtUp()
	var s struct {
		Quantity  int
		Status    string
		TakenOver bool
	}
	e.apiJSON("/v1/tenants/contoso/subscriptions/"+id, token(e.t, "contoso", "admin"), &s)
	return s.Quantity, s.Status, s.TakenOver
}

// buyFixtures adds a self-service purchase of alice's and two ISV apps
// (one from the marketplace with an install page, one without).
func (e *env) buyFixtures() {
	e.t.Helper()
	admin := token(e.t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"ss1","skuId":"POWER_BI_PRO","quantity":1,"kind":"SelfService","purchasedBy":"alice"}`)
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"app1","quantity":3,"channel":"Marketplace","product":{"skuId":"contoso-crm","skuPartNumber":"CRM_PRO","displayName":"Fabrikam CRM","publisher":"Fabrikam","installUrl":"https://crm.fabrikam.example/install","servicePlans":[]}}`)
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"app2","quantity":3,"channel":"Marketplace","product":{"skuId":"contoso-wiki","skuPartNumber":"WIKI","displayName":"Tailspin Wiki","publisher":"Tailspin","servicePlans":[]}}`)
	e.caughtUp()
}

// TestProductsPage: one row per subscription with its kind, channel,
// term and status in the admin center's words, and only the actions that
// fit it.
func TestProductsPage(t *testing.T) {
	e := newEnv(t, console.Config{})
	e.buyFixtures()
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	p := b.get(productsPath)
	if p.Code != 200 {
		t.Fatalf("%d\n%s", p.Code, p.Body)
	}
	for _, want := range []string{"Microsoft 365 E3", "Paid", "Self-service purchase", "Bought by alice", "Fabrikam CRM", "ISV app", "Marketplace", "Active",
		`action="/console/t/contoso/products/s1/quantity"`, `action="/console/t/contoso/products/s1/cancel"`,
		`action="/console/t/contoso/products/ss1/takeOver"`, `action="/console/t/contoso/products/app1/install"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("Your products lacks %q", want)
		}
	}
	for _, not := range []string{`products/s1/takeOver"`, `products/s1/install"`, `products/ss1/install"`} {
		if strings.Contains(p.Body, not) {
			t.Errorf("Your products offers %q", not)
		}
	}
	if !strings.Contains(p.Body, `<a href="/console/t/contoso/products" aria-current="page">`) {
		t.Error("the navigation does not show Your products as current")
	}
}

// TestProductsActions: each change of Your products, as it works and as
// the API refuses it.
func TestProductsActions(t *testing.T) {
	e := newEnv(t, console.Config{})
	e.buyFixtures()
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	ok := func(what string, p page, key string) {
		t.Helper()
		if p.Code != 200 || !strings.HasPrefix(p.URL, productsPath+"?minVersion=") || !strings.HasSuffix(p.URL, "&ok="+key) || strings.Contains(p.Body, `class="msg error"`) {
			t.Fatalf("%s: %d at %s\n%s", what, p.Code, p.URL, p.Body)
		}
	}
	refused := func(what string, p page, code int, words string) {
		t.Helper()
		if p.Code != code || !strings.Contains(p.Body, `class="msg error"`) || !strings.Contains(p.Body, words) {
			t.Fatalf("%s: %d, want %d with %q\n%s", what, p.Code, code, words, p.Body)
		}
	}

	// Quantity: 5 → 7; below the 2 assigned is refused.
	ok("quantity 7", b.submit(b.get(productsPath), productsPath+"/s1/quantity", url.Values{"quantity": {"7"}}), "ok.quantityChanged")
	if q, _, _ := e.subscription("s1"); q != 7 {
		t.Errorf("quantity %d, want 7", q)
	}
	p := b.submit(b.get(productsPath), productsPath+"/s1/quantity", url.Values{"quantity": {"1"}})
	refused("quantity 1", p, http.StatusConflict, "s1")
	if !strings.Contains(p.Body, `id="q-s1" name="quantity" type="number" min="1" value="1"`) {
		t.Errorf("a refused quantity is not kept in its field:\n%s", p.Body)
	}
	refused("quantity abc", b.submit(b.get(productsPath), productsPath+"/s1/quantity", url.Values{"quantity": {"abc"}}), http.StatusBadRequest, "quantity")
	if q, _, _ := e.subscription("s1"); q != 7 {
		t.Errorf("refusals changed the quantity to %d", q)
	}

	// Take over alice's purchase; then it is no longer offered. Cancelling
	// before taking over is refused.
	refused("cancel self-service", b.submit(b.get(productsPath), productsPath+"/ss1/cancel", nil), http.StatusConflict, "ss1")
	ok("take over", b.submit(b.get(productsPath), productsPath+"/ss1/takeOver", nil), "ok.subscriptionTakenOver")
	if _, _, over := e.subscription("ss1"); !over {
		t.Error("ss1 was not taken over")
	}
	if p := b.get(productsPath); strings.Contains(p.Body, "products/ss1/takeOver") {
		t.Error("take over still offered after it")
	}
	refused("take over s1", b.do("POST", productsPath+"/s1/takeOver", hidden(t, b.get(productsPath).Body, productsPath+"/s1/cancel")), http.StatusBadRequest, "s1")

	// Install: the vendor's page as a link; an app without one is refused.
	p = b.submit(b.get(productsPath), productsPath+"/app1/install", nil)
	if p.Code != 200 || !strings.Contains(p.Body, `href="https://crm.fabrikam.example/install"`) || !strings.Contains(p.Body, "The app was installed.") {
		t.Fatalf("install: %d\n%s", p.Code, p.Body)
	}
	refused("install app2", b.submit(b.get(productsPath), productsPath+"/app2/install", nil), http.StatusConflict, "Tailspin Wiki")

	// Buy, then cancel within the window; a quantity of 0 is refused.
	refused("buy 0", b.submit(b.get(productsPath), productsPath, url.Values{"skuId": {"SPE_E5"}, "quantity": {"0"}, "kind": {"Paid"}}), http.StatusBadRequest, "quantity")
	if p := b.submit(b.get(productsPath), productsPath, url.Values{"skuId": {"SPE_E5"}, "quantity": {"0"}, "kind": {"Trial"}}); !strings.Contains(p.Body, `<option value="Trial" selected>`) {
		t.Error("a refused purchase loses the form's kind")
	}
	ok("buy", b.submit(b.get(productsPath), productsPath, url.Values{"skuId": {"SPE_E5"}, "quantity": {"2"}, "kind": {"Paid"}}), "ok.subscriptionBought")
	e.caughtUp()
	var subs []struct{ ID, SkuPartNumber string }
	e.apiJSON("/v1/tenants/contoso/subscriptions", token(t, "contoso", "admin"), &subs)
	e5 := ""
	for _, s := range subs {
		if s.SkuPartNumber == "SPE_E5" {
			e5 = s.ID
		}
	}
	if e5 == "" {
		t.Fatalf("no SPE_E5 subscription after buying: %+v", subs)
	}
	ok("cancel", b.submit(b.get(productsPath), productsPath+"/"+e5+"/cancel", nil), "ok.subscriptionCancelled")
	if _, status, _ := e.subscription(e5); status != "Disabled" {
		t.Errorf("cancelled subscription is %s, want Disabled", status)
	}
}

// TestBrowserProducts: Your products in a real browser: the subscriptions'
// rows, a quantity changed with the keyboard, the API agreeing.
func TestBrowserProducts(t *testing.T) {
	e := newEnv(t, console.Config{})
	e.buyFixtures()
	p := e.signedIn(token(t, "contoso", "admin"), browsertest.Laptop)
	p.Go(e.srv.URL + productsPath)
	p.WaitVisible("#sub-s1")
	if n := p.Count("table.products tbody tr"); n != 4 {
		t.Errorf("%d rows, want 4 subscriptions", n)
	}
	browsertest.Eval[string](p, `document.getElementById('q-s1').value = ''`)
	p.Type("#q-s1", "8")
	p.Key(kb.Enter)
	p.WaitVisible(".msg.ok")
	if q, _, _ := e.subscription("s1"); q != 8 {
		t.Errorf("quantity %d after the change, want 8", q)
	}
	if got := p.Text("#sub-s1 td.num"); got != "8" {
		t.Errorf("the page shows quantity %q, want 8", got)
	}
	p.Screenshot("products")
	p.Resize(browsertest.Narrow)
	p.Screenshot("products-narrow")
}

// TestStaleFormSentAgainSaysWhatToDo: a form sent, then sent again from
// the browser's history with other values, reuses its Idempotency-Key:
// the API refuses it (409 idempotency_key_reused). The person sees, in
// their language, that the form was already sent and to send it again,
// not only the API's words about a key they never saw; the page drawn
// with the refusal has a fresh key, so sending it again works.
func TestStaleFormSentAgainSaysWhatToDo(t *testing.T) {
	e := newEnv(t, console.Config{})
	for lang, words := range map[string]string{"en": "already sent", "fr": "déjà été envoyé", "zh-TW": "已使用其他值送出過"} {
		b := e.browser()
		b.header.Set("Accept-Language", lang)
		b.signIn(token(t, "contoso", "admin"))
		pp := b.get("/console/t/contoso/products")
		if p := b.submit(pp, "/console/t/contoso/products/s1/quantity", url.Values{"quantity": {"6"}}); p.Code != 200 {
			t.Fatalf("%s: the first change: %d\n%s", lang, p.Code, p.Body)
		}
		p := b.submit(pp, "/console/t/contoso/products/s1/quantity", url.Values{"quantity": {"7"}})
		refused(t, p, 409, words)
		if m := errorBarRE.FindStringSubmatch(p.Body); m == nil || !strings.Contains(m[1], `<strong class="headline">`) {
			t.Errorf("%s: no headline in the message bar:\n%s", lang, p.Body)
		}
		again := b.submit(p, "/console/t/contoso/products/s1/quantity", url.Values{"quantity": {"7"}})
		succeeded(t, again, "/console/t/contoso/products", "")
		e.apiMust(200, "PATCH", "/v1/tenants/contoso/subscriptions/s1", token(t, "contoso", "admin"), `{"quantity":5}`)
	}
}

// TestQuantityTypedIsSentAsANumber: what a person types in a quantity
// field (a number input: digits, maybe a fraction or past any int) goes
// to the API as the number written, so its refusal names the bound or
// the fraction; an empty field is a missing quantity. Never "must be a
// JSON number, not a string": the person typed a number.
func TestQuantityTypedIsSentAsANumber(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	for _, c := range []struct{ action, typed, words string }{
		{"/console/t/contoso/products", "99999999999999999999", "above the cap"},
		{"/console/t/contoso/products", "2.5", "whole number"},
		{"/console/t/contoso/products", "", "quantity is required"},
		{"/console/t/contoso/products/s1/quantity", "99999999999999999999", "above the cap"},
		{"/console/t/contoso/products/s1/quantity", "2.5", "whole number"},
		{"/console/t/contoso/products/s1/quantity", " ", "give quantity"},
	} {
		p := b.submit(b.get(productsPath), c.action, url.Values{"skuId": {"SPE_E3"}, "quantity": {c.typed}})
		refused(t, p, 400, c.words)
		if strings.Contains(p.Body, "JSON") {
			t.Errorf("%s %q: the refusal speaks JSON:\n%s", c.action, c.typed, p.Body)
		}
	}
}
