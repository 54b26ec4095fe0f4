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
func waitVersion(t testing.TB, p *browsertest.Page, v uint64) {
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

// cursorTenant writes tenant "long" of n events (200 users licensed,
// unlicensed, held and released over and over) with snapshots every
// 1,000, and waits for the read models to catch up (they must not share
// the CPU with a measure).
func cursorTenant(tb testing.TB, e *env, n int) {
	tb.Helper()
	start := time.Now()
	ctx := context.Background()
	if err := benchdata.WriteLongTenant(ctx, e.store, "long", n, 200); err != nil {
		tb.Fatal(err)
	}
	if err := tenantstream.BackfillSnapshots(ctx, e.store, e.store, nil, "long", 1000, nil); err != nil {
		tb.Fatal(err)
	}
	e.caughtUp()
	tb.Logf("wrote %d events with snapshots, read models caught up, in %v", n, time.Since(start))
}

// cursorTimes are a run's figures of the time-travel cursor, from the key
// press to the new state painted: in the page (the keydown's timestamp to
// the frame after the swap, performance.measure "tt-step" in
// timetravel.js), the fragment's fetch, and from the test (the key sent
// until data-version shows the new cursor, CDP round trips included).
type cursorTimes struct{ inPage, fetches, harness []time.Duration }

// pressRight loads the page at cursor from, presses → once (not counted:
// the page just loaded) then presses more times, each time waiting for
// the state at the next version, and adds the figures to ct.
func (ct *cursorTimes) pressRight(tb testing.TB, e *env, p *browsertest.Page, from uint64, presses int) {
	tb.Helper()
	p.Go(e.srv.URL + fmt.Sprintf("/console/t/long/timeTravel?v=%d", from))
	waitVersion(tb, p, from)
	browsertest.Eval[bool](p, `document.getElementById("tt-cursor").focus(), true`)
	p.Key(kb.ArrowRight)
	waitVersion(tb, p, from+1)
	for i := uint64(2); i <= uint64(presses)+1; i++ {
		ct.harness = append(ct.harness, p.Timed(func() {
			p.Key(kb.ArrowRight)
			waitVersion(tb, p, from+i)
		}))
	}
	// The page records each step once its frame is painted.
	if err := chromedp.Do(p.Context(), chromedp.Poll[chromedp.Void](`performance.getEntriesByName("tt-step").length >= `+fmt.Sprint(presses+1))); err != nil {
		tb.Fatal(err)
	}
	ms := func(expr string) []time.Duration {
		var out []time.Duration
		for _, m := range browsertest.Eval[[]float64](p, expr) {
			out = append(out, time.Duration(m*float64(time.Millisecond)))
		}
		return out
	}
	ct.inPage = append(ct.inPage, ms(`performance.getEntriesByName("tt-step").slice(1).map(function(m){return m.duration})`)...)
	ct.fetches = append(ct.fetches, ms(`performance.getEntriesByType("resource").filter(function(r){return r.name.indexOf("/fragment?")>0}).slice(1).map(function(r){return r.responseEnd-r.startTime})`)...)
}

// percentiles answers the p50 and p99 of ds.
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[int(math.Ceil(float64(len(s))*0.99))-1]
}

// cursorStarts are points of an n-event tenant whose tails after their
// snapshot are long (980 events and more), medium (500, 300) and short
// (10).
func cursorStarts(n int) []uint64 {
	return []uint64{uint64(n)/5 + 979, uint64(n)/2 - 501, uint64(n)*3/4 + 299, uint64(n) - 1990}
}

// TestBrowserTimeTravelCursorLatency: in a real browser, on a tenant of
// 100,000 events (snapshots every 1,000), the time-travel cursor moves one
// event per key press and paints the state at each new version, the same
// state the API answers. It logs how long each step takes but asserts no
// time: speed is BenchmarkTimeTravelCursor's to prove (issue #21 asks
// < 150 ms from key press to the new state painted).
func TestBrowserTimeTravelCursorLatency(t *testing.T) {
	if testing.Short() {
		// About 10 s on two cores, most of it the 100 presses in the
		// browser; TestBrowserTimeTravelKeyboard steps the cursor in
		// the short suite.
		t.Skip("builds a 100,000-event tenant and presses → 100 times in a browser")
	}
	e := newEnv(t, console.Config{})
	n := 100_000
	if raceEnabled {
		n = 10_000 // building 100,000 takes a minute under -race
	}
	cursorTenant(t, e, n)
	p := e.signedIn(operator, browsertest.Laptop)
	var ct cursorTimes
	const presses = 25
	for _, from := range cursorStarts(n) {
		ct.pressRight(t, e, p, from, presses)
		// The state painted is the API's at the cursor: its first users,
		// each with the licenses the API gives them.
		v := from + presses + 1
		var st apiState
		e.apiJSON(fmt.Sprintf("/v1/tenants/long/state?version=%d&usersLimit=100", v), operator, &st)
		rows, _ := userRows(browsertest.Eval[string](p, `document.getElementById("tt-live").innerHTML`))
		if len(st.Users) == 0 || len(rows) < len(st.Users) {
			t.Fatalf("the state at %d shows %d users, the API %d", v, len(rows), len(st.Users))
		}
		for _, u := range st.Users {
			if n := strings.Count(rows[u.ID], `data-sku="`); n != len(u.Licenses) {
				t.Errorf("at %d user %s shows %d licenses, the API %d", v, u.ID, n, len(u.Licenses))
			}
		}
	}
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{
		{"in the page: keydown to the frame painted after the swap", ct.inPage},
		{"in the page: the fragment's fetch (server and network)", ct.fetches},
		{"from the test: key sent to data-version seen (CDP round trips included)", ct.harness},
	} {
		p50, p99 := percentiles(m.ds)
		t.Logf("%s: %d presses, p50 %v, p99 %v", m.name, len(m.ds), p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond))
	}
}

// BenchmarkTimeTravelCursor: issue #21's "the time-travel cursor on a
// 100,000-event tenant moves in < 150 ms from key press to the new state
// painted", measured in a real browser: p50-ms and p99-ms of the page's
// own measure (keydown's timestamp to the frame after the swap), and
// fetch-p99-ms of the fragment's fetch. Each iteration is one press of →;
// the page is reloaded every 25 presses at the next of cursorStarts'
// points (not timed).
func BenchmarkTimeTravelCursor(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-event tenant and drives a browser")
	}
	e := newEnv(b, console.Config{})
	const n = 100_000
	cursorTenant(b, e, n)
	p := e.signedIn(operator, browsertest.Laptop)
	var ct cursorTimes
	starts := cursorStarts(n)
	b.ResetTimer()
	for i, done := 0, 0; done < b.N; i++ {
		k := min(25, b.N-done)
		ct.pressRight(b, e, p, starts[i%len(starts)]+uint64(i/len(starts))*30, k)
		done += k
	}
	b.StopTimer()
	p50, p99 := percentiles(ct.inPage)
	_, fetch99 := percentiles(ct.fetches)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(fetch99.Microseconds())/1000, "fetch-p99-ms")
}
