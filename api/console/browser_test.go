package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/browsertest"
)

// signedIn opens a headless Chromium of the given size on the console of
// e and signs in with tok as a person would: the sign-in page, the token
// pasted, the button. It answers the page, on the signed-in user's start
// page. The test skips (or fails under CI) where no browser exists.
func (e *env) signedIn(tok string, size browsertest.Size) *browsertest.Page {
	e.t.Helper()
	p := browsertest.New(e.t, size, 60*time.Second)
	p.Go(e.srv.URL + "/console/signin")
	p.SetValue("#token", tok)
	p.Click("form[action='/console/signin'] button[type=submit]")
	p.WaitGone("#token")
	if strings.Contains(p.Location(), "/console/signin") {
		e.t.Fatalf("signing in left the browser on %s", p.Location())
	}
	return p
}

// TestBrowserSignsInAndSeesLicenses signs in as contoso's Global admin in a
// real browser and reads the Licenses page: SPE_E3, 5 bought, 2 assigned.
func TestBrowserSignsInAndSeesLicenses(t *testing.T) {
	e := newEnv(t, console.Config{})
	p := e.signedIn(token(t, "contoso", "admin"), browsertest.Laptop)
	p.Go(e.srv.URL + "/console/t/contoso/licenses")
	if got := p.Text("main tbody .id"); got != "SPE_E3" {
		t.Errorf("the Licenses page's product is %q, want SPE_E3", got)
	}
	counts := browsertest.Eval[string](p, `[...document.querySelectorAll("main tbody td.num")].map(td => td.textContent).join(" ")`)
	if counts != "5 2 3" {
		t.Errorf("the Licenses page's total, assigned, available read %q, want 5 2 3", counts)
	}
	p.Screenshot("licenses")
	p.Resize(browsertest.Narrow)
	p.Screenshot("licenses-narrow")
}

// TestBrowserSwitchesLanguage switches the console to French and then to
// Traditional Chinese with the header's switcher, in a real browser: the
// page's words and its lang attribute follow, the choice outlives a new
// page, and an API refusal's detail comes back in the chosen language.
func TestBrowserSwitchesLanguage(t *testing.T) {
	e := newEnv(t, console.Config{})
	p := e.signedIn(token(t, "contoso", "admin"), browsertest.Laptop)
	p.Go(e.srv.URL + "/console/t/contoso/licenses")
	if got := p.Text("h1"); got != "Licenses" {
		t.Fatalf("English heading = %q", got)
	}
	for _, c := range []struct{ lang, heading, nav, refusal string }{
		{"fr", "Licences", "Vos produits", "laisserait 1 utilisateur(s) sans licence"},
		{"zh-TW", "授權", "您的產品", "會讓 1 位使用者沒有授權"},
	} {
		p.Click(`nav.langs a[lang="` + c.lang + `"]`)
		p.WaitVisible(`html[lang="` + c.lang + `"] h1`)
		if got := p.Text("h1"); got != c.heading {
			t.Errorf("%s: heading = %q, want %q", c.lang, got, c.heading)
		}
		p.Go(e.srv.URL + "/console/t/contoso/products")
		if got := browsertest.Eval[string](p, "document.documentElement.lang"); got != c.lang {
			t.Errorf("%s: the choice did not outlive a new page: lang=%q", c.lang, got)
		}
		if nav := p.Text("nav.side"); !strings.Contains(nav, c.nav) {
			t.Errorf("%s: navigation %q lacks %q", c.lang, nav, c.nav)
		}
		// 2 of s1's licenses are assigned: a quantity of 1 is refused (R13),
		// and the API's detail is in the person's language.
		p.SetValue("#q-s1", "1")
		p.Click(`form[action="/console/t/contoso/products/s1/quantity"] button[type=submit]`)
		if got := p.Text(".msg.error"); !strings.Contains(got, c.refusal) {
			t.Errorf("%s: refusal shown as %q, want it to say %q", c.lang, got, c.refusal)
		}
		p.Screenshot("products-" + c.lang)
		p.Go(e.srv.URL + "/console/t/contoso/licenses")
	}
}
