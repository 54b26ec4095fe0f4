package console_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/browsertest"
)

// waitVersion waits until the state panel is painted at version v.
func waitVersion(t *testing.T, p *browsertest.Page, v uint64) {
	t.Helper()
	p.WaitVisible(fmt.Sprintf(`#tt-state[data-version="%d"]`, v))
}

func shiftKey(t *testing.T, p *browsertest.Page, key string) {
	t.Helper()
	if err := chromedp.Do(p.Context(), chromedp.KeyEvent(key, chromedp.KeyModifiers(chromedp.ModifierShift))); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserTimeTravelKeyboard is issue #21's scenario: step the
// time-travel cursor with the keyboard in a real browser and check the
// state and the blame shown against the API's answers.
func TestBrowserTimeTravelKeyboard(t *testing.T) {
	e := newEnv(t, console.Config{})
	evs := ttFixture(t, e)
	admin := token(t, "contoso", "admin")
	last := evs[len(evs)-1].Version
	plans := findEvent(t, evs, "LicensePlansChanged").Version
	p := e.signedIn(admin, browsertest.Laptop)
	p.Go(e.srv.URL + "/console/t/contoso/timeTravel")
	waitVersion(t, p, last)
	browsertest.Eval[bool](p, `document.getElementById("tt-cursor").focus(), true`)
	live := func() string { return browsertest.Eval[string](p, `document.getElementById("tt-live").innerHTML`) }
	// One event back at a time, down to the plan change: the state shown
	// is the API's at each step, and so is the address.
	for v := last - 1; v >= plans; v-- {
		p.Key(kb.ArrowLeft)
		waitVersion(t, p, v)
		checkState(t, e, live(), v)
		if !strings.HasSuffix(p.Location(), fmt.Sprintf("?v=%d", v)) {
			t.Errorf("after a step to %d the address is %s", v, p.Location())
		}
	}
	// Blame of the plan alice has switched off, opened in place.
	var st apiState
	e.apiJSON(fmt.Sprintf("/v1/tenants/contoso/state?version=%d", plans), admin, &st)
	l := st.Users[1].Licenses[0]
	path := "users/alice/licenses/" + l.SkuID + "/disabledPlans/" + l.DisabledPlans[0]
	p.Click(`a.blame[href*="` + url.QueryEscape(path) + `"]`)
	p.WaitVisible(`.tt-blamepanel[data-version="` + fmt.Sprint(plans) + `"]`)
	var bl apiBlame
	e.apiJSON(fmt.Sprintf("/v1/tenants/contoso/state/blame?version=%d&path=%s", plans, url.QueryEscape(path)), admin, &bl)
	checkBlame(t, path, browsertest.Eval[string](p, `document.getElementById("tt-blame").innerHTML`), bl)
	if bl.Entries[0].Version != plans {
		t.Errorf("the plan switched off is blamed on %d, want %d", bl.Entries[0].Version, plans)
	}
	if !strings.Contains(p.Location(), "blame="+url.QueryEscape(path)) {
		t.Errorf("the address does not share the blame: %s", p.Location())
	}
	// Three quick presses: three events, only the last painted.
	browsertest.Eval[bool](p, `document.getElementById("tt-cursor").focus(), true`)
	p.Key(kb.ArrowLeft + kb.ArrowLeft + kb.ArrowLeft)
	waitVersion(t, p, plans-3)
	checkState(t, e, live(), plans-3)
	if p.Has(".tt-blamepanel") {
		t.Errorf("the blame of another point is still shown")
	}
	// Shift+←: to the end of the command before; Home and End.
	shiftKey(t, p, kb.ArrowLeft)
	var prevCmd uint64
	for i := int(plans-3) - 1; i >= 0; i-- {
		if evs[i].Version < plans-3 && evs[i].CommandID != evs[plans-3-1].CommandID {
			prevCmd = evs[i].Version
			break
		}
	}
	waitVersion(t, p, prevCmd)
	p.Key(kb.Home)
	waitVersion(t, p, 1)
	checkState(t, e, live(), 1)
	shiftKey(t, p, kb.ArrowRight)
	waitVersion(t, p, 3) // the tenant's creation: events 1-3, one command
	p.Key(kb.End)
	waitVersion(t, p, last)
	// Dragging: a click on the range's track is where a drag lands.
	box := browsertest.Eval[map[string]float64](p, `(function(){var r=document.getElementById("tt-cursor").getBoundingClientRect();return {x:r.x,y:r.y,w:r.width,h:r.height}})()`)
	if err := chromedp.Do(p.Context(), chromedp.MouseClickXY(box["x"]+2, box["y"]+box["h"]/2)); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, p, 1)
	p.Go(e.srv.URL + fmt.Sprintf("/console/t/contoso/timeTravel?v=%d&cmp=5", plans))
	p.Screenshot("timetravel")
	p.Resize(browsertest.Narrow)
	p.Screenshot("timetravel-narrow")
}
