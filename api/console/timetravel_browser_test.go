package console_test

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/benchdata"
	"github.com/seatledger/seatledger/internal/browsertest"
	"github.com/seatledger/seatledger/tenantstream"
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
	// The range says which event it is on to a screen reader.
	if got, want := browsertest.Eval[string](p, `document.getElementById("tt-cursor").getAttribute("aria-valuetext")`), fmt.Sprintf("Event %d LicensePlansChanged", plans); got != want {
		t.Errorf("the cursor's aria-valuetext is %q, want %q", got, want)
	}
	// Blame of the plan alice has switched off, opened in place.
	var st apiState
	e.apiJSON(fmt.Sprintf("/v1/tenants/contoso/state?version=%d", plans), admin, &st)
	l := st.Users[1].Licenses[0]
	path := "users/alice/licenses/" + l.SkuID + "/disabledPlans/" + l.DisabledPlans[0]
	// With the keyboard, as everything here: focus the link, Enter.
	browsertest.Eval[bool](p, `document.querySelector('a.blame[href*="`+url.QueryEscape(path)+`"]').focus(), true`)
	p.Key(kb.Enter)
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
	p.Go(e.srv.URL + fmt.Sprintf("/console/t/contoso/timeTravel?v=%d&cmp=5&blame=%s", plans, url.QueryEscape(path)))
	p.WaitVisible(".tt-blamepanel")
	// A full-page capture is no scroll: draw the lists the browser skips
	// off screen (content-visibility) as a reader scrolling sees them.
	browsertest.Eval[bool](p, `document.querySelectorAll("#tt-live .scroll, #tt-live .tt-diff").forEach(function(e){e.style.contentVisibility="visible"}), true`)
	p.Screenshot("timetravel")
	p.Resize(browsertest.Narrow)
	p.Screenshot("timetravel-narrow")
}

// TestBrowserTimeTravelCursorLatency measures, in a real browser, how
// long the time-travel cursor takes to move on a tenant of 100,000 events
// (snapshots every 1,000): from the key press to the new state painted.
// Issue #21 asks for < 150 ms; the figures are logged always and asserted
// (p99) only without -short and without the race detector. Three measures:
// in the page (the keydown's timestamp to the frame after the swap,
// performance.measure "tt-step" in timetravel.js) and from the test (the
// key sent until data-version shows the new cursor).
func TestBrowserTimeTravelCursorLatency(t *testing.T) {
	e := newEnv(t, console.Config{})
	ctx := context.Background()
	n := 100_000
	if raceEnabled {
		n = 10_000 // building 100,000 takes a minute under -race, and nothing is asserted
	}
	start := time.Now()
	if err := benchdata.WriteLongTenant(ctx, e.store, "long", n, 200); err != nil {
		t.Fatal(err)
	}
	if err := tenantstream.BackfillSnapshots(ctx, e.store, e.store, nil, "long", 1000, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d events with snapshots in %v", n, time.Since(start))
	e.caughtUp() // the read models' catching up must not share the CPU with the measure
	t.Logf("read models caught up after %v", time.Since(start))

	p := e.signedIn(operator, browsertest.Laptop)
	var harness, inPage, fetches []time.Duration
	ms := func(expr string) []time.Duration {
		var out []time.Duration
		for _, m := range browsertest.Eval[[]float64](p, expr) {
			out = append(out, time.Duration(m*float64(time.Millisecond)))
		}
		return out
	}
	// Four runs of 25 presses (100: so that the p99 is not just the
	// slowest press of a shared machine), from points whose tails after
	// their snapshot are long (980 events and more), medium (500, 300) and
	// short (10); each run starts with one press not counted (the page
	// just loaded).
	const presses = 25
	for _, from := range []uint64{uint64(n)/5 + 979, uint64(n)/2 - 501, uint64(n)*3/4 + 299, uint64(n) - 1990} {
		p.Go(e.srv.URL + fmt.Sprintf("/console/t/long/timeTravel?v=%d", from))
		waitVersion(t, p, from)
		browsertest.Eval[bool](p, `document.getElementById("tt-cursor").focus(), true`)
		p.Key(kb.ArrowRight)
		waitVersion(t, p, from+1)
		for i := uint64(2); i <= presses+1; i++ {
			harness = append(harness, p.Timed(func() {
				p.Key(kb.ArrowRight)
				waitVersion(t, p, from+i)
			}))
		}
		if !strings.Contains(browsertest.Eval[string](p, `document.getElementById("tt-live").innerHTML`), `data-user="u0"`) {
			t.Fatalf("the state at %d does not show the tenant's users", from+presses+1)
		}
		// The page records each step once its frame is painted.
		if err := chromedp.Do(p.Context(), chromedp.Poll[chromedp.Void](`performance.getEntriesByName("tt-step").length >= `+fmt.Sprint(presses+1))); err != nil {
			t.Fatal(err)
		}
		inPage = append(inPage, ms(`performance.getEntriesByName("tt-step").slice(1).map(function(m){return m.duration})`)...)
		fetches = append(fetches, ms(`performance.getEntriesByType("resource").filter(function(r){return r.name.indexOf("/fragment?")>0}).slice(1).map(function(r){return r.responseEnd-r.startTime})`)...)
	}
	report := func(name string, ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		p50, p99 := s[len(s)/2], s[int(math.Ceil(float64(len(s))*0.99))-1]
		t.Logf("%s: %d presses, p50 %v, p99 %v, max %v", name, len(s), p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), s[len(s)-1].Round(100*time.Microsecond))
		return p99
	}
	p99 := report("in the page: keydown to the frame painted after the swap", inPage)
	report("in the page: the fragment's fetch (server and network)", fetches)
	report("from the test: key sent to data-version seen (CDP round trips included)", harness)
	if !testing.Short() && !raceEnabled && p99 >= 150*time.Millisecond {
		t.Errorf("the cursor takes %v (p99) from key press to the new state painted on a %d-event tenant, want < 150 ms", p99, n)
	}
}
