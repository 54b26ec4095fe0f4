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
	if got := p.Text("main"); !strings.Contains(got, "SPE_E3") && !strings.Contains(got, "E3") {
		t.Errorf("the Licenses page does not show E3:\n%s", got)
	}
	p.Screenshot("licenses")
	p.Resize(browsertest.Narrow)
	p.Screenshot("licenses-narrow")
}
