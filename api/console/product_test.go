package console_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp/kb"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/browsertest"
)

// apiJSON reads path from the JSON API with tok into out.
func (e *env) apiJSON(path, tok string, out any) {
	e.t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		e.t.Fatalf("GET %s: %d: %s", path, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
}

// counts is the Licenses figures of SPE_E3 as the API answers them.
func (e *env) counts(sku string) (total, assigned, available int) {
	e.t.Helper()
	e.caughtUp()
	var p struct{ Total, Assigned, Available int }
	e.apiJSON("/v1/tenants/contoso/licenses/"+sku, token(e.t, "contoso", "admin"), &p)
	return p.Total, p.Assigned, p.Available
}

// addUsers adds users (ids, UPN id@contoso.example, usage location US).
func (e *env) addUsers(ids ...string) {
	e.t.Helper()
	admin := token(e.t, "contoso", "admin")
	for _, id := range ids {
		e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"`+id+`","userPrincipalName":"`+id+`@contoso.example","displayName":"`+strings.ToUpper(id[:1])+id[1:]+`","usageLocation":"US"}`)
	}
	e.caughtUp()
}

var checkedRE = regexp.MustCompile(`<input type="checkbox"[^>]* name="([^"]*)" value="([^"]*)" checked>`)

// submitForm posts the form of p to action as a browser does: its hidden
// fields and checked checkboxes, then fields (which replace them by name).
func (b *browser) submitForm(p page, action string, fields url.Values) page {
	b.e.t.Helper()
	form := hidden(b.e.t, p.Body, action)
	for _, m := range formRE.FindAllStringSubmatch(p.Body, -1) {
		if m[1] == action {
			for _, c := range checkedRE.FindAllStringSubmatch(m[2], -1) {
				form.Add(c[1], c[2])
			}
			break
		}
	}
	for k, v := range fields {
		form[k] = v
	}
	return b.do("POST", action, form)
}

const productPath = "/console/t/contoso/licenses/SPE_E3"

// TestProductPage: the Licenses page links each product to its page,
// which shows its counts and who holds it, directly or through a group.
func TestProductPage(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.addUsers("carol")
	e.apiMust(201, "POST", "/v1/tenants/contoso/groups", admin, `{"id":"sales","displayName":"Sales team"}`)
	e.apiMust(200, "PUT", "/v1/tenants/contoso/groups/sales/members/carol", admin, "")
	e.apiMust(200, "POST", "/v1/tenants/contoso/groups/sales/assignLicense", admin, `{"addLicenses":[{"skuId":"SPE_E3","disabledPlans":[]}]}`)
	e.caughtUp()

	b := e.browser()
	b.signIn(admin)
	list := b.get("/console/t/contoso/licenses")
	var skuID string
	for _, m := range strings.Split(list.Body, `href="/console/t/contoso/licenses/`)[1:] {
		skuID = m[:strings.Index(m, `"`)]
	}
	if skuID == "" {
		t.Fatalf("the Licenses page links no product:\n%s", list.Body)
	}
	p := b.get("/console/t/contoso/licenses/" + skuID)
	if p.Code != 200 {
		t.Fatalf("product page: %d\n%s", p.Code, p.Body)
	}
	for _, want := range []string{"Microsoft 365 E3", `<dd class="count-total">5</dd>`, `<dd class="count-assigned">3</dd>`, `<dd class="count-available">2</dd>`,
		"alice@contoso.example", "bob@contoso.example", "carol@contoso.example", "Inherited (sales)", "Sales team", `value="alice"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the product page lacks %q", want)
		}
	}
	if strings.Contains(p.Body, `name="users" value="carol"`) {
		t.Error("carol holds the product only through a group, yet can be unassigned here")
	}
	if p := b.get("/console/t/contoso/licenses/NOPE"); p.Code != http.StatusNotFound || !strings.Contains(p.Body, `class="msg error"`) {
		t.Errorf("an unknown product: %d, want 404 with the API's problem", p.Code)
	}
}

// TestProductAssign: users found with the search box get the license with
// the service plans left unchecked switched off; unassign takes it back.
func TestProductAssign(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.addUsers("carol", "dave", "carl")
	b := e.browser()
	b.signIn(admin)

	page := b.get(productPath)
	found := b.submitForm(page, productPath+"/assign", url.Values{"op": {"search"}, "q": {"car"}})
	if found.Code != 200 || !strings.Contains(found.Body, `id="pick-carol"`) || !strings.Contains(found.Body, `id="pick-carl"`) || strings.Contains(found.Body, `id="pick-dave"`) {
		t.Fatalf("search car: %d\n%s", found.Code, found.Body)
	}
	// Every plan of the product but TEAMS1 stays on.
	var prod struct {
		ServicePlans []struct{ ServicePlanID, ServicePlanName string }
	}
	e.apiJSON("/v1/tenants/contoso/licenses/SPE_E3", admin, &prod)
	var on []string
	teams := ""
	for _, sp := range prod.ServicePlans {
		if sp.ServicePlanName == "TEAMS1" {
			teams = sp.ServicePlanID
			continue
		}
		on = append(on, sp.ServicePlanID)
	}
	if teams == "" || !strings.Contains(found.Body, `id="plan-`+teams+`"`) {
		t.Fatalf("no TEAMS1 checkbox (plan %q)", teams)
	}
	got := b.submitForm(found, productPath+"/assign", url.Values{"op": {"assign"}, "users": {"carol", "carl"}, "plan": on})
	if got.Code != 200 || !strings.HasPrefix(got.URL, productPath+"?minVersion=") || !strings.HasSuffix(got.URL, "&ok=ok.licensesAssigned") || !strings.Contains(got.Body, "Licenses assigned.") {
		t.Fatalf("assign: %d at %s\n%s", got.Code, got.URL, got.Body)
	}
	if _, assigned, _ := e.counts("SPE_E3"); assigned != 4 {
		t.Errorf("assigned %d, want 4", assigned)
	}
	var carol struct {
		Licenses []struct {
			SkuID         string
			DisabledPlans []string
		}
	}
	e.apiJSON("/v1/tenants/contoso/users/carol", admin, &carol)
	if len(carol.Licenses) != 1 || !slices.Equal(carol.Licenses[0].DisabledPlans, []string{teams}) {
		t.Errorf("carol's licenses %+v, want SPE_E3 with TEAMS1 off", carol.Licenses)
	}

	// Unassign the checked holders.
	page = b.get(productPath)
	got = b.submitForm(page, productPath+"/unassign", url.Values{"users": {"carl", "alice"}})
	// Back to the product at the version the change wrote, as after
	// assign: the holders shown are those after it.
	if got.Code != 200 || !strings.HasPrefix(got.URL, productPath+"?minVersion=") || !strings.Contains(got.Body, "Licenses unassigned.") {
		t.Fatalf("unassign: %d at %s\n%s", got.Code, got.URL, got.Body)
	}
	if strings.Contains(got.Body, "carl@contoso.example") {
		t.Errorf("after unassign the product page still shows carl:\n%s", got.Body)
	}
	if _, assigned, _ := e.counts("SPE_E3"); assigned != 2 {
		t.Errorf("after unassign, assigned %d, want 2", assigned)
	}
	// A user without the license: the API's refusal, nothing changes.
	got = b.submitForm(b.get(productPath), productPath+"/unassign", url.Values{"users": {"dave"}})
	if got.Code != http.StatusBadRequest || !strings.Contains(got.Body, `class="msg error"`) || !strings.Contains(got.Body, "dave") {
		t.Fatalf("unassign dave: %d\n%s", got.Code, got.Body)
	}
	if _, assigned, _ := e.counts("SPE_E3"); assigned != 2 {
		t.Errorf("after a refused unassign, assigned %d, want 2", assigned)
	}
	// The holders checked stay checked on the refused form, to fix and
	// send again.
	got = b.submitForm(b.get(productPath), productPath+"/unassign", url.Values{"users": {"carol", "dave"}})
	if got.Code != http.StatusBadRequest || !regexp.MustCompile(`id="holder-carol"[^>]* checked`).MatchString(got.Body) {
		t.Fatalf("refused unassign of carol and dave: %d, carol not checked\n%s", got.Code, got.Body)
	}
}

// TestProductAssignRefusals: the admin center's headlines, from the
// problem's code and facts, in each language, above the API's detail.
func TestProductAssignRefusals(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.addUsers("u1", "u2", "u3", "u4", "u5")
	for _, tc := range []struct {
		lang, users, one, many string
	}{
		{"en", "u1 u2 u3 u4", "You need to buy 1 more license.", "You need to buy 2 more licenses."},
		{"fr", "u1 u2 u3 u4", "Vous devez acheter 1 licence supplémentaire.", "Vous devez acheter 2 licences supplémentaires."},
		{"zh-TW", "u1 u2 u3 u4", "您需要再購買 1 個授權。", "您需要再購買 2 個授權。"},
	} {
		b := e.browser()
		b.header.Set("Accept-Language", tc.lang)
		b.signIn(admin)
		p := b.submitForm(b.get(productPath), productPath+"/assign", url.Values{"op": {"assign"}, "users": strings.Fields(tc.users)})
		if p.Code != http.StatusConflict || !strings.Contains(p.Body, `<strong class="headline">`+tc.one+`</strong>`) {
			t.Errorf("%s: 4 users, 3 left: %d\n%s", tc.lang, p.Code, p.Body)
		}
		if !strings.Contains(p.Body, `checked`) || !strings.Contains(p.Body, `id="pick-u4"`) {
			t.Errorf("%s: the refused form lost its users", tc.lang)
		}
		p = b.submitForm(b.get(productPath), productPath+"/assign", url.Values{"op": {"assign"}, "users": {"u1", "u2", "u3", "u4", "u5"}})
		if !strings.Contains(p.Body, tc.many) {
			t.Errorf("%s: 5 users, 3 left: no %q", tc.lang, tc.many)
		}
	}
	// More than 20 users: the API's refusal, no headline of the console's.
	b := e.browser()
	b.signIn(admin)
	many := []string{}
	for i := range 21 {
		many = append(many, "x"+strconv.Itoa(i))
	}
	if p := b.submitForm(b.get(productPath), productPath+"/assign", url.Values{"op": {"assign"}, "users": many}); p.Code != http.StatusBadRequest || !strings.Contains(p.Body, `class="msg error"`) || strings.Contains(p.Body, `class="headline"`) {
		t.Errorf("21 users: %d\n%s", p.Code, p.Body)
	}
	if _, assigned, _ := e.counts("SPE_E3"); assigned != 2 {
		t.Errorf("refusals assigned licenses: %d, want 2", assigned)
	}

	// alice holds E3 (Exchange Online Plan 2): Plan 1 conflicts.
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"s2","skuId":"EXCHANGESTANDARD","quantity":5}`)
	e.caughtUp()
	for lang, want := range map[string]string{
		"en":    "These services can't be assigned together: ",
		"fr":    "Ces services ne peuvent pas être attribués ensemble : ",
		"zh-TW": "這些服務無法一起指派：",
	} {
		b := e.browser()
		b.header.Set("Accept-Language", lang)
		b.signIn(admin)
		path := "/console/t/contoso/licenses/EXCHANGESTANDARD"
		p := b.submitForm(b.get(path), path+"/assign", url.Values{"op": {"assign"}, "users": {"alice"}})
		p.Body = html.UnescapeString(p.Body)
		i := strings.Index(p.Body, `<strong class="headline">`+want)
		if p.Code != http.StatusConflict || i < 0 {
			t.Fatalf("%s: exclusive plans: %d\n%s", lang, p.Code, p.Body)
		}
		head := p.Body[i:]
		head = head[:strings.Index(head, "</strong>")]
		if !strings.Contains(head, "EXCHANGE_S_STANDARD") || !strings.Contains(head, "EXCHANGE_S_ENTERPRISE") {
			t.Errorf("%s: the headline does not name the plans: %s", lang, head)
		}
		// The API's translated detail follows the headline.
		if rest := p.Body[i+len(head):]; !strings.Contains(rest[:strings.Index(rest, "</div>")], "alice") {
			t.Errorf("%s: no detail after the headline: %s", lang, rest[:200])
		}
	}
}

// TestProductDoubleSubmitAssignsOnce: the same form posted twice (a
// double click) assigns once.
func TestProductDoubleSubmitAssignsOnce(t *testing.T) {
	e := newEnv(t, console.Config{})
	e.addUsers("carol")
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	page := b.get(productPath)
	before := e.count("contoso", "LicenseAssigned")
	for i := range 2 {
		p := b.submitForm(page, productPath+"/assign", url.Values{"op": {"assign"}, "users": {"carol"}})
		if p.Code != 200 || !strings.Contains(p.Body, `class="msg ok"`) {
			t.Fatalf("submission %d: %d\n%s", i+1, p.Code, p.Body)
		}
	}
	if n := e.count("contoso", "LicenseAssigned") - before; n != 1 {
		t.Fatalf("LicenseAssigned %d times, want 1", n)
	}
	if _, assigned, _ := e.counts("SPE_E3"); assigned != 3 {
		t.Errorf("assigned %d, want 3", assigned)
	}
}

// TestBrowserAssignsUpToTheLastLicense is the scenario in a real
// browser: the admin opens E3 from the Licenses page, picks users with the
// search box (keyboard: type, Enter) until the last license is taken, then
// one more, and reads the admin center's "You need to buy 1 more license";
// the API's counts agree with the page at each step.
func TestBrowserAssignsUpToTheLastLicense(t *testing.T) {
	e := newEnv(t, console.Config{})
	e.addUsers("carol", "dave", "erin", "frank")
	p := e.signedIn(token(t, "contoso", "admin"), browsertest.Laptop)
	p.Go(e.srv.URL + "/console/t/contoso/licenses")
	p.Click("table a[href*='/licenses/']")
	p.WaitVisible("#assign")
	if got := p.Text(".count-available"); got != "3" {
		t.Fatalf("available on the page %q, want 3", got)
	}
	pick := func(name string) {
		t.Helper()
		browsertest.Eval[string](p, `document.getElementById('assign-q').value = ''`)
		p.Type("#assign-q", name)
		p.Key(kb.Enter) // the form's first button: Search
		p.WaitVisible("#pick-" + name)
		p.Click("#pick-" + name)
	}
	for _, u := range []string{"carol", "dave", "erin"} {
		pick(u)
	}
	if n := browsertest.Eval[int](p, `document.querySelectorAll('#assign input[name=users]:checked').length`); n != 3 {
		t.Fatalf("%d users checked after three searches, want 3", n)
	}
	p.Click("#assign button[value=assign]")
	p.WaitVisible(".msg.ok")
	total, assigned, available := e.counts("SPE_E3")
	if total != 5 || assigned != 5 || available != 0 {
		t.Fatalf("API counts %d/%d/%d, want 5 total, 5 assigned, 0 available", total, assigned, available)
	}
	if got := p.Text(".count-available"); got != "0" {
		t.Errorf("available on the page %q, want 0", got)
	}
	for _, u := range []string{"carol", "dave", "erin"} {
		if !p.Has("#holder-" + u) {
			t.Errorf("%s is not listed as a holder", u)
		}
	}

	pick("frank")
	p.Click("#assign button[value=assign]")
	p.WaitVisible(".msg.error")
	if got := p.Text(".msg.error .headline"); got != "You need to buy 1 more license." {
		t.Errorf("headline %q, want the admin center's", got)
	}
	if got := p.Text(".msg.error"); !strings.Contains(got, "frank") && !strings.Contains(got, "SPE_E3") && !strings.Contains(got, "E3") {
		t.Errorf("no API detail under the headline: %q", got)
	}
	if _, assigned, available := e.counts("SPE_E3"); assigned != 5 || available != 0 {
		t.Errorf("after the refusal the API counts %d assigned, %d available", assigned, available)
	}
	p.Screenshot("product")
	p.Resize(browsertest.Narrow)
	p.Screenshot("product-narrow")
}

// TestPagesAfterRefusalLinkTheirNextPage: a page drawn in answer to a
// refused change (at the form's action URL) links its next page to the
// page itself, not to "?cursor=" under the action, which answers no GET.
func TestPagesAfterRefusalLinkTheirNextPage(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	var ids []string
	for i := range 51 {
		ids = append(ids, "h"+strconv.Itoa(i))
	}
	e.addUsers(ids...)
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"s9","skuId":"SPE_E3","quantity":60}`)
	for len(ids) > 0 {
		n := min(20, len(ids))
		users, _ := json.Marshal(ids[:n])
		e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E3/assign", admin, `{"users":`+string(users)+`}`)
		ids = ids[n:]
	}
	e.caughtUp()
	b := e.browser()
	b.signIn(admin)
	// An unknown user: refused, the page drawn at …/assign.
	p := b.submitForm(b.get(productPath), productPath+"/assign", url.Values{"op": {"assign"}, "users": {"nobody"}})
	if p.Code < 400 {
		t.Fatalf("assign nobody: %d, want a refusal", p.Code)
	}
	m := regexp.MustCompile(`<a href="([^"]*)">Next page</a>`).FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no next page on the refused product page:\n%s", p.Body)
	}
	next := html.UnescapeString(m[1])
	if !strings.HasPrefix(next, "/") {
		next = productPath + "/assign" + next // as the browser resolves it
	}
	if q := b.get(next); q.Code != 200 || !strings.HasPrefix(q.URL, productPath+"?cursor=") {
		t.Errorf("the next page after a refusal: %d at %s", q.Code, q.URL)
	}
}

// TestProductPagesUnreadShowNoCountsOrForms: a product page whose read
// was refused (an unknown product, a tampered cursor, a person without
// an admin role) shows the problem alone, as Active users and Groups do:
// not counts of 0 that read as the product's, nor "no licenses yet",
// nor assign, unassign or buy forms for what could not be read.
func TestProductPagesUnreadShowNoCountsOrForms(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := e.browser()
	admin.signIn(token(t, "contoso", "admin"))
	alice := e.browser()
	alice.signIn(token(t, "contoso", "alice"))
	for _, c := range []struct {
		b     *browser
		path  string
		code  int
		words string
	}{
		{admin, "/console/t/contoso/licenses/NOPE", 404, "NOPE"},
		{admin, "/console/t/contoso/licenses/SPE_E3?cursor=tampered", 400, "cursor"},
		{alice, "/console/t/contoso/licenses/SPE_E3", 403, "GlobalAdministrator"},
		{admin, "/console/t/contoso/products?cursor=tampered", 400, "cursor"},
		{alice, "/console/t/contoso/products", 403, "GlobalAdministrator"},
		{admin, "/console/t/contoso/licenses?cursor=tampered", 400, "cursor"},
		{alice, "/console/t/contoso/licenses", 403, "GlobalAdministrator"},
	} {
		p := c.b.get(c.path)
		refused(t, p, c.code, c.words)
		if strings.Contains(p.Body, `<form method="post" action="/console/t/`) {
			t.Errorf("%s: a form to change what could not be read:\n%s", c.path, p.Body)
		}
		if strings.Contains(p.Body, `class="count-total"`) || strings.Contains(p.Body, `<table`) {
			t.Errorf("%s: counts or a table drawn from nothing:\n%s", c.path, p.Body)
		}
	}
	// A refused change still draws the page it was read for, its form kept.
	p := admin.submit(admin.get("/console/t/contoso/licenses/SPE_E3"), "/console/t/contoso/licenses/SPE_E3/assign",
		url.Values{"op": {"assign"}, "users": {"nobody"}})
	if p.Code < 400 || !strings.Contains(p.Body, `class="count-total">5<`) || !strings.Contains(p.Body, `action="/console/t/contoso/licenses/SPE_E3/assign"`) {
		t.Errorf("a refused assign: %d\n%s", p.Code, p.Body)
	}
}
