package console_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api/console"
)

// TestSignIn: a good token signs in and lands on the person's start page; a
// bad one is refused with the API's words and no session.
func TestSignIn(t *testing.T) {
	e := newEnv(t, console.Config{})
	for _, tc := range []struct {
		name, token, lands string
	}{
		{"admin", token(t, "contoso", "admin"), "/console/t/contoso/licenses"},
		{"plain user", token(t, "contoso", "alice"), "/console/t/contoso/me"},
		{"operator", operator, "/console/tenants"},
	} {
		b := e.browser()
		if p := b.signIn(tc.token); p.Code != 200 || p.URL != tc.lands {
			t.Errorf("%s: landed on %s with %d, want %s", tc.name, p.URL, p.Code, tc.lands)
		}
		if p := b.get("/"); p.URL != tc.lands {
			t.Errorf("%s: / went to %s, want %s", tc.name, p.URL, tc.lands)
		}
		if p := b.submit(b.get(tc.lands), "/console/signout", nil); p.URL != "/console/signin" {
			t.Errorf("%s: sign out landed on %s", tc.name, p.URL)
		}
		if p := b.get(tc.lands); p.URL != "/console/signin" {
			t.Errorf("%s: after sign out, %s went to %s, not sign-in", tc.name, tc.lands, p.URL)
		}
	}

	for _, bad := range []string{"not-a-token", token(t, "contoso", "admin") + "x", token(t, "contoso", "nobody")} {
		b := e.browser()
		p := b.signIn(bad)
		if p.Code == 200 || p.URL != "/console/signin" || !strings.Contains(p.Body, `class="msg error"`) {
			t.Errorf("token %.20s…: %d at %s, want a refusal on the sign-in page", bad, p.Code, p.URL)
		}
		if p := b.get("/"); p.URL != "/console/signin" {
			t.Errorf("token %.20s…: signed in anyway (/ went to %s)", bad, p.URL)
		}
	}
}

// TestSessionCookie: the token is kept HttpOnly, SameSite=Strict, Path=/,
// Secure over TLS.
func TestSessionCookie(t *testing.T) {
	e := newEnv(t, console.Config{})
	for _, target := range []string{"http://console.test/console/signin", "https://console.test/console/signin"} {
		r := httptest.NewRequest("POST", target, strings.NewReader(url.Values{"token": {operator}, "csrf": {csrfOf(t, e, target, "")}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("%s: %d: %s", target, w.Code, w.Body)
		}
		cookies := w.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("%s: cookies %v", target, cookies)
		}
		c := cookies[0]
		tls := strings.HasPrefix(target, "https:")
		if c.Name != "seatledger_session" || c.Value != operator || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != tls {
			t.Errorf("%s: cookie %s", target, c)
		}
	}
}

// TestSessionCookieBehindTLSProxy: seatledger serves plain HTTP, so HTTPS
// is a proxy's (X-Forwarded-Proto: https, as the Graph routes read it):
// there too the token's cookie, and its removal, are Secure, so that the
// browser never sends the bearer token over plain HTTP.
func TestSessionCookieBehindTLSProxy(t *testing.T) {
	e := newEnv(t, console.Config{})
	target := "http://console.test/console/signin"
	for _, tc := range []struct{ path, body, session string }{
		{"/console/signin", url.Values{"token": {operator}, "csrf": {csrfOf(t, e, target, "")}}.Encode(), ""},
		{"/console/signout", url.Values{"csrf": {csrfOf(t, e, target, operator)}}.Encode(), operator},
	} {
		r := httptest.NewRequest("POST", "http://console.test"+tc.path, strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Forwarded-Proto", "https")
		if tc.session != "" {
			r.AddCookie(&http.Cookie{Name: "seatledger_session", Value: tc.session})
		}
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("%s: %d: %s", tc.path, w.Code, w.Body)
		}
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || !cookies[0].Secure {
			t.Errorf("%s behind a TLS proxy: cookies %v, want one Secure", tc.path, cookies)
		}
	}
}

// TestLanguageSwitchAfterRefusal: a page drawn in answer to a refused
// POST links the language switcher back to the page the form was on (the
// Referer), not to the form's action, which answers no GET (405, or
// another page's 404).
func TestLanguageSwitchAfterRefusal(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	langRE := regexp.MustCompile(`href="(/console/lang\?[^"]*to=fr[^"]*)"`)
	for _, tc := range []struct {
		page, action string
		form         url.Values
	}{
		{"/console/t/contoso/users/alice", "/console/t/contoso/users/alice/location", url.Values{"usageLocation": {"France"}}},
		{"/console/t/contoso/users?search=a", "/console/t/contoso/users/add", url.Values{"userPrincipalName": {"not an address"}}},
	} {
		from := b.get(tc.page)
		b.header.Set("Referer", e.srv.URL+tc.page)
		p := b.submit(from, tc.action, tc.form)
		b.header.Del("Referer")
		if p.Code < 400 {
			t.Fatalf("%s: %d, want a refusal", tc.action, p.Code)
		}
		m := langRE.FindStringSubmatch(p.Body)
		if m == nil {
			t.Fatalf("%s: no French link in:\n%s", tc.action, p.Body)
		}
		back := b.get(html.UnescapeString(m[1]))
		if back.Code != 200 || back.URL != tc.page || !strings.Contains(back.Body, `lang="fr"`) {
			t.Errorf("French after a refused %s: %d at %s, want 200 at %s", tc.action, back.Code, back.URL, tc.page)
		}
		b.get("/console/lang?to=en&back=/console/")
	}
}

// csrfOf reads the csrf field the sign-in page renders for a session
// cookie value.
func csrfOf(t *testing.T, e *env, target, session string) string {
	t.Helper()
	r := httptest.NewRequest("GET", strings.Replace(target, "/console/signin", "/console/signin", 1), nil)
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "seatledger_session", Value: session})
	}
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, r)
	return hidden(t, w.Body.String(), "/console/signin").Get("csrf")
}

// TestCSRF: a POST without the session's csrf field, with another
// session's, or cross-site, is refused with 403 and changes nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(operator)
	tenants := b.get("/console/tenants")
	form := hidden(t, tenants.Body, "/console/tenants")
	create := func(id string) url.Values {
		return url.Values{"id": {id}, "name": {id}, "adminId": {"admin"}, "adminUpn": {"admin@" + id + ".example"}, "usageLocation": {"US"}}
	}

	other := e.browser()
	other.signIn(token(t, "contoso", "admin"))
	otherCSRF := hidden(t, other.get("/console/t/contoso/licenses").Body, "/console/signout").Get("csrf")

	for name, csrf := range map[string]string{"none": "", "another session's": otherCSRF, "forged": "AAAA"} {
		v := create("fabrikam")
		v.Set("idem", form.Get("idem"))
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		if p := b.do("POST", "/console/tenants", v); p.Code != http.StatusForbidden {
			t.Errorf("csrf %s: %d at %s, want 403", name, p.Code, p.URL)
		}
	}
	v := create("fabrikam")
	v.Set("csrf", form.Get("csrf"))
	b.header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do("POST", "/console/tenants", v); p.Code != http.StatusForbidden {
		t.Errorf("cross-site: %d, want 403", p.Code)
	}
	b.header.Del("Sec-Fetch-Site")
	b.header.Set("Origin", "https://evil.example")
	if p := b.do("POST", "/console/tenants", v); p.Code != http.StatusForbidden {
		t.Errorf("cross-origin: %d, want 403", p.Code)
	}
	b.header.Del("Origin")
	if n := e.count("fabrikam", "TenantCreated"); n != 0 {
		t.Fatalf("a refused POST created the tenant (%d events)", n)
	}
	// The same form with its own token works.
	if p := b.do("POST", "/console/tenants", v); p.Code != 200 || !strings.Contains(p.Body, `class="msg ok"`) {
		t.Fatalf("the form with its csrf: %d at %s:\n%s", p.Code, p.URL, p.Body)
	}
	if n := e.count("fabrikam", "TenantCreated"); n != 1 {
		t.Fatalf("TenantCreated %d times, want 1", n)
	}
}

// TestDoubleSubmitActsOnce: the same form posted twice (a double click)
// is one command: the form's idem field is the Idempotency-Key.
func TestDoubleSubmitActsOnce(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(operator)
	tenants := b.get("/console/tenants")
	fields := url.Values{"id": {"fabrikam"}, "name": {"Fabrikam"}, "adminId": {"admin"}, "adminUpn": {"admin@fabrikam.example"}, "usageLocation": {"FR"}}
	for i := range 2 {
		p := b.submit(tenants, "/console/tenants", fields)
		if p.Code != 200 || !strings.Contains(p.Body, `class="msg ok"`) || strings.Contains(p.Body, `class="msg error"`) {
			t.Fatalf("submission %d: %d at %s:\n%s", i+1, p.Code, p.URL, p.Body)
		}
	}
	if n := e.count("fabrikam", "TenantCreated"); n != 1 {
		t.Fatalf("TenantCreated %d times, want 1", n)
	}
	// A new rendering of the form is a new submission: refused, the
	// tenant exists.
	if p := b.submit(b.get("/console/tenants"), "/console/tenants", fields); p.Code != http.StatusConflict || !strings.Contains(p.Body, `class="msg error"`) {
		t.Fatalf("a second form for the same tenant: %d, want 409 with a message", p.Code)
	}
}

// TestNavigationFollowsRoles: a plain user sees only their own account;
// an admin the admin pages; the operator the tenants and any tenant's pages.
func TestNavigationFollowsRoles(t *testing.T) {
	e := newEnv(t, console.Config{})

	alice := e.browser()
	me := alice.signIn(token(t, "contoso", "alice"))
	if !strings.Contains(me.Body, "alice@contoso.example") || !strings.Contains(me.Body, `href="/console/t/contoso/me"`) {
		t.Fatalf("My account of alice:\n%s", me.Body)
	}
	for _, admin := range []string{"/console/t/contoso/licenses", "/console/tenants"} {
		if strings.Contains(me.Body, admin) {
			t.Errorf("a plain user sees %s", admin)
		}
	}
	if n := strings.Count(me.Body, "<form"); n != 1 {
		t.Errorf("a plain user's page has %d forms, want only sign out's", n)
	}
	if p := alice.get("/console/t/contoso/licenses"); p.Code != http.StatusForbidden || strings.Contains(p.Body, "<td class=\"num\">5</td>") {
		t.Errorf("a plain user's Licenses page: %d", p.Code)
	}
	if p := alice.get("/console/tenants"); p.Code != http.StatusNotFound {
		t.Errorf("a plain user's Tenants page: %d, want 404", p.Code)
	}
	if p := alice.get("/console/t/fabrikam/me"); p.Code != http.StatusNotFound {
		t.Errorf("another tenant's page: %d, want 404", p.Code)
	}

	admin := e.browser()
	lic := admin.signIn(token(t, "contoso", "admin"))
	for _, want := range []string{`href="/console/t/contoso/licenses" aria-current="page"`, `href="/console/t/contoso/me"`, "SPE_E3", `<td class="num">5</td><td class="num">2</td><td class="num">3</td>`} {
		if !strings.Contains(lic.Body, want) {
			t.Errorf("the admin's Licenses page has no %s:\n%s", want, lic.Body)
		}
	}
	if strings.Contains(lic.Body, `href="/console/tenants"`) {
		t.Error("a tenant's admin sees the operator's Tenants")
	}

	op := e.browser()
	tenants := op.signIn(operator)
	if !strings.Contains(tenants.Body, `href="/console/t/contoso/licenses"`) {
		t.Fatalf("the operator's Tenants page lists no contoso:\n%s", tenants.Body)
	}
	p := op.get("/console/t/contoso/licenses")
	if p.Code != 200 || !strings.Contains(p.Body, `href="/console/tenants"`) || strings.Contains(p.Body, `href="/console/t/contoso/me"`) {
		t.Errorf("the operator on contoso's Licenses: %d:\n%s", p.Code, p.Body)
	}
}

// TestLanguages: the browser's language, then the switcher's, with the
// admin center's terms.
func TestLanguages(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	words := map[string][]string{
		"en":    {`lang="en"`, "Licenses", "Admin center", "Available licenses"},
		"fr":    {`lang="fr"`, "Licences", "Centre d&#39;administration", "Licences disponibles", "Se déconnecter"},
		"zh-TW": {`lang="zh-TW"`, "授權", "系統管理中心", "可用的授權", "登出"},
	}
	for accept, lang := range map[string]string{"fr-FR,fr;q=0.9,en;q=0.5": "fr", "zh-TW": "zh-TW", "de": "en"} {
		b.header.Set("Accept-Language", accept)
		p := b.get("/console/t/contoso/licenses")
		for _, w := range words[lang] {
			if !strings.Contains(p.Body, w) {
				t.Errorf("Accept-Language %s: no %q", accept, w)
			}
		}
	}
	b.header.Set("Accept-Language", "fr")
	p := b.get("/console/lang?to=zh-TW&back=" + url.QueryEscape("/console/t/contoso/licenses"))
	if p.URL != "/console/t/contoso/licenses" || !strings.Contains(p.Body, "系統管理中心") {
		t.Errorf("the switcher to zh-TW: at %s", p.URL)
	}
	if p := b.get("/console/lang?to=en&back=https://evil.example/"); p.URL == "https://evil.example/" || strings.Contains(p.URL, "evil") {
		t.Errorf("the switcher went off the console: %s", p.URL)
	}
}

// TestDevPicker: the one-click sign-in is offered only with DevSignIn.
func TestDevPicker(t *testing.T) {
	off := newEnv(t, console.Config{})
	b := off.browser()
	if p := b.get("/console/signin"); strings.Contains(p.Body, "/console/signin/dev") {
		t.Fatal("a picker without DevSignIn")
	}
	signin := b.get("/console/signin")
	v := hidden(t, signin.Body, "/console/signin")
	v.Set("operator", "1")
	if p := b.do("POST", "/console/signin/dev", v); p.Code != http.StatusNotFound {
		t.Fatalf("POST /console/signin/dev without DevSignIn: %d, want 404", p.Code)
	}

	var asked []string
	on := newEnv(t, console.Config{DevSignIn: func(tenant, user string) (string, error) {
		asked = append(asked, tenant+"/"+user)
		if tenant == "" {
			return operator, nil
		}
		return token(t, tenant, user), nil
	}})
	b = on.browser()
	picker := b.get("/console/signin")
	for _, want := range []string{"Contoso", `name="user" value="alice"`, `name="operator" value="1"`, "Sign in as Ada Admin"} {
		if !strings.Contains(picker.Body, want) {
			t.Errorf("the picker has no %s:\n%s", want, picker.Body)
		}
	}
	v = hidden(t, picker.Body, "/console/signin/dev")
	v.Set("tenant", "contoso")
	v.Set("user", "alice")
	if p := b.do("POST", "/console/signin/dev", v); p.URL != "/console/t/contoso/me" || !strings.Contains(p.Body, "alice@contoso.example") {
		t.Fatalf("sign in as alice: at %s", p.URL)
	}
}

// TestStaleFormAfterSigningOutIsAPage: a form drawn before its person
// signed out (or in again, in another tab) carries the CSRF token of a
// session gone: it is refused (403, nothing done), on a console page in
// the person's language that says what happened and leads back to the
// page the form was on, not a line of English plain text.
func TestStaleFormAfterSigningOutIsAPage(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.header.Set("Accept-Language", "zh-TW")
	b.signIn(token(t, "contoso", "admin"))
	users := b.get("/console/t/contoso/users")
	b.submit(users, "/console/signout", nil)
	for _, again := range []string{"", "alice"} {
		if again != "" {
			b.signIn(token(t, "contoso", again))
		}
		b.header.Set("Referer", e.srv.URL+"/console/t/contoso/users?search=a")
		p := b.submit(users, "/console/t/contoso/users/add", url.Values{"id": {"carol"}, "userPrincipalName": {"carol@contoso.example"}, "usageLocation": {"US"}})
		b.header.Del("Referer")
		if p.Code != http.StatusForbidden || !strings.Contains(p.Body, `lang="zh-TW"`) || !strings.Contains(p.Body, "表單已過期") ||
			!strings.Contains(p.Body, `href="/console/t/contoso/users?search=a"`) {
			t.Errorf("signed in again as %q: %d at %s:\n%s", again, p.Code, p.URL, p.Body)
		}
	}
	if n := e.count("contoso", "UserAdded"); n != 3 { // admin, alice and bob
		t.Fatalf("UserAdded %d times, want 3: a stale form added the user", n)
	}
}

// TestAddressOfAFormOrNoPageIsAPage: a refused change is drawn at its
// form's action; that address opened again (Enter in the address bar, a
// new tab, a shared link) goes to the page the form is on, and a console
// address that is no page answers the console's Not found page in the
// person's language, not the router's plain text.
func TestAddressOfAFormOrNoPageIsAPage(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/groups", admin, `{"id":"g1","displayName":"G1"}`)
	e.caughtUp()
	b := e.browser()
	b.header.Set("Accept-Language", "fr")
	b.signIn(admin)
	for action, want := range map[string]string{
		"/console/t/contoso/products/s1/quantity":             "/console/t/contoso/products",
		"/console/t/contoso/users/add":                        "/console/t/contoso/users",
		"/console/t/contoso/users/bob/delete":                 "/console/t/contoso/users/bob",
		"/console/t/contoso/users/bob/licenses/SPE_E3":        "/console/t/contoso/users/bob",
		"/console/t/contoso/licenses/SPE_E3/assign":           "/console/t/contoso/licenses/SPE_E3",
		"/console/t/contoso/groups/g1/members/bob/remove":     "/console/t/contoso/groups/g1",
		"/console/t/contoso/groups/g1/licenses/SPE_E3/remove": "/console/t/contoso/groups/g1",
	} {
		if p := b.get(action + "?x=1"); p.Code != 200 || p.URL != want {
			t.Errorf("GET %s: %d at %s, want 200 at %s", action, p.Code, p.URL, want)
		}
	}
	out := e.browser() // signed out
	out.header.Set("Accept-Language", "fr")
	for _, path := range []string{"/console/t/contoso/nope", "/console/t/contoso/", "/console/nope", "/console/signout"} {
		for _, b := range []*browser{b, out} {
			p := b.get(path)
			if p.Code != 404 || !strings.Contains(p.Body, `lang="fr"`) || !strings.Contains(p.Body, `class="msg error"`) {
				t.Errorf("GET %s: %d at %s:\n%s", path, p.Code, p.URL, p.Body)
			}
		}
	}
}
