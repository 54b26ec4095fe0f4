package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp/kb"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/browsertest"
)

// TestBrowserRemovesAMemberInErrorWithTheKeyboard: on a group's page with a
// member in error, a person using only the keyboard tabs to the member's
// remove button (focus visible on the way) and presses Enter: the member
// and their error are gone. Then the screenshots of the pages of this
// area.
func TestBrowserRemovesAMemberInErrorWithTheKeyboard(t *testing.T) {
	e := newEnv(t, console.Config{})
	groupFixture(t, e)
	e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E3/unassign", token(t, "contoso", "admin"), `{"users":["bob"]}`)
	e.caughtUp()
	p := e.signedIn(token(t, "contoso", "admin"), browsertest.Laptop)
	p.Go(e.srv.URL + "/console/t/contoso/groups/sales")
	if got := p.Text("table.errors"); !strings.Contains(got, "carol") || !strings.Contains(got, "No usage location") {
		t.Fatalf("the members with license errors show no carol:\n%s", got)
	}
	p.Screenshot("group")

	const target = "Remove Carol from the group"
	focused := func() string {
		return browsertest.Eval[string](p, "document.activeElement ? (document.activeElement.getAttribute('aria-label') || document.activeElement.textContent || '') : ''")
	}
	found := false
	for range 80 {
		p.Key(kb.Tab)
		if focused() == target {
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("Tab never reached %q", target)
	}
	if outline := browsertest.Eval[string](p, "getComputedStyle(document.activeElement).outlineStyle"); outline == "none" {
		t.Error("the focused remove button shows no focus outline")
	}
	p.Key(kb.Enter)
	p.WaitVisible(".msg.ok")
	if got := p.Text("main"); strings.Contains(got, "carol@contoso.example") || strings.Contains(got, "No usage location") {
		t.Fatalf("carol is still on the page after Enter:\n%s", got)
	}
	if !strings.Contains(p.Text("main"), "alice@contoso.example") {
		t.Fatal("alice went too")
	}

	for _, page := range []string{"groups", "heldData", "audit"} {
		p.Go(e.srv.URL + "/console/t/contoso/" + page)
		p.WaitVisible("main h1")
		p.Screenshot(page)
	}
	p.Resize(browsertest.Narrow)
	p.Go(e.srv.URL + "/console/t/contoso/groups/sales")
	p.WaitVisible("main h1")
	p.Screenshot("group-narrow")
}
