package console_test

import (
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api/console"
)

// apiState is GET /state?version=N as the debugger shows it.
type apiState struct {
	Version uint64 `json:"version"`
	Users   []struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Licenses []struct {
			SkuID         string   `json:"skuId"`
			DisabledPlans []string `json:"disabledPlans"`
		} `json:"licenses"`
	} `json:"users"`
	HeldData []struct {
		UserID   string `json:"userId"`
		Workload string `json:"workload"`
	} `json:"heldData"`
}

type apiEvent struct {
	Version       uint64    `json:"version"`
	Type          string    `json:"type"`
	OccurredAt    time.Time `json:"occurredAt"`
	CommandID     string    `json:"commandId"`
	CorrelationID string    `json:"correlationId"`
	Summary       string    `json:"summary"`
	Actor         struct {
		UserID string `json:"userId"`
	} `json:"actor"`
}

type apiBlame struct {
	Version uint64 `json:"version"`
	Entries []struct {
		Path    string `json:"path"`
		Version uint64 `json:"version"`
	} `json:"entries"`
	Events map[string]apiEvent `json:"events"`
}

// ttFixture adds to contoso's fixture a service plan switched off for
// alice (SWAY) and bob's license removed (his Exchange data held), and
// answers the tenant's events.
func ttFixture(t *testing.T, e *env) []apiEvent {
	admin := token(t, "contoso", "admin")
	e.apiMust(200, "PATCH", "/v1/tenants/contoso/users/alice/licenses/SPE_E3", admin, `{"disabledPlans":["SWAY"]}`)
	e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E3/unassign", admin, `{"users":["bob"]}`)
	var evs []apiEvent
	e.apiJSON("/v1/tenants/contoso/events?limit=1000", admin, &evs)
	return evs
}

func findEvent(t *testing.T, evs []apiEvent, typ string) apiEvent {
	t.Helper()
	for _, ev := range evs {
		if ev.Type == typ {
			return ev
		}
	}
	t.Fatalf("no %s event in %+v", typ, evs)
	return apiEvent{}
}

var userRowRE = regexp.MustCompile(`(?s)<tr( class="changed")? data-user="([^"]+)">(.*?)</tr>`)

// userRows answers the users of a page's state panel: id → the row's
// HTML, and whether it is marked as changed by the cursor's event.
func userRows(body string) (map[string]string, map[string]bool) {
	rows, changed := map[string]string{}, map[string]bool{}
	for _, m := range userRowRE.FindAllStringSubmatch(body, -1) {
		rows[m[2]] = m[3]
		changed[m[2]] = m[1] != ""
	}
	return rows, changed
}

// checkState compares the state a page shows with GET /state?version=v.
func checkState(t *testing.T, e *env, body string, v uint64) {
	t.Helper()
	var st apiState
	e.apiJSON(fmt.Sprintf("/v1/tenants/contoso/state?version=%d", v), token(t, "contoso", "admin"), &st)
	if !strings.Contains(body, fmt.Sprintf(`id="tt-state" data-version="%d"`, v)) {
		t.Errorf("the state panel is not at version %d", v)
	}
	rows, _ := userRows(body)
	if len(rows) != len(st.Users) {
		t.Errorf("the page shows %d users at %d, the API %d", len(rows), v, len(st.Users))
	}
	for _, u := range st.Users {
		row, ok := rows[u.ID]
		if !ok {
			t.Errorf("user %s missing at %d", u.ID, v)
			continue
		}
		if n := strings.Count(row, `data-sku="`); n != len(u.Licenses) {
			t.Errorf("user %s shows %d licenses at %d, the API %d", u.ID, n, v, len(u.Licenses))
		}
		for _, l := range u.Licenses {
			if !strings.Contains(row, `data-sku="`+l.SkuID+`"`) {
				t.Errorf("user %s: license %s missing at %d", u.ID, l.SkuID, v)
			}
			for _, p := range l.DisabledPlans {
				path := "users/" + u.ID + "/licenses/" + l.SkuID + "/disabledPlans/" + p
				if !strings.Contains(row, "blame="+url.QueryEscape(path)) {
					t.Errorf("user %s: plan %s switched off is not shown (with its blame link) at %d", u.ID, p, v)
				}
			}
		}
	}
	if n := strings.Count(body, `blame=heldData`); n != len(st.HeldData) {
		t.Errorf("the page shows %d holds at %d, the API %d", n, v, len(st.HeldData))
	}
}

// TestTimeTravelPageAtVersion: ?v=N renders, on the server, the state at
// N as GET /state?version=N answers it, the event at N with its command
// and correlation id, and highlights what that event changed.
func TestTimeTravelPageAtVersion(t *testing.T) {
	e := newEnv(t, console.Config{})
	evs := ttFixture(t, e)
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	plans := findEvent(t, evs, "LicensePlansChanged")
	for _, v := range []uint64{1, plans.Version - 1, plans.Version, evs[len(evs)-1].Version} {
		p := b.get(fmt.Sprintf("/console/t/contoso/timeTravel?v=%d", v))
		if p.Code != 200 {
			t.Fatalf("?v=%d: %d\n%s", v, p.Code, p.Body)
		}
		checkState(t, e, p.Body, v)
		if !strings.Contains(p.Body, fmt.Sprintf(`data-v="%d" aria-current="step"`, v)) {
			t.Errorf("?v=%d: the timeline does not mark event %d as the cursor", v, v)
		}
	}
	p := b.get(fmt.Sprintf("/console/t/contoso/timeTravel?v=%d", plans.Version))
	// GET /events has no summary: the audit record of the event has it.
	var recs []apiEvent
	e.apiJSON("/v1/tenants/contoso/audit?type=LicensePlansChanged", token(t, "contoso", "admin"), &recs)
	if len(recs) != 1 || recs[0].Version != plans.Version {
		t.Fatalf("the audit record of the plan change: %+v", recs)
	}
	for _, want := range []string{"LicensePlansChanged", plans.CommandID, plans.CorrelationID, recs[0].Summary} {
		if want == "" || !strings.Contains(p.Body, html.EscapeString(want)) {
			t.Errorf("the event at the cursor does not show %q", want)
		}
	}
	rows, changed := userRows(p.Body)
	if !changed["alice"] || changed["bob"] || changed["admin"] {
		t.Errorf("the users the plan change touched are marked %v, want alice only", changed)
	}
	if !strings.Contains(rows["alice"], `<li class="changed" data-sku="`) || !strings.Contains(rows["alice"], "SWAY") {
		t.Errorf("alice's license is not marked as changed with SWAY off:\n%s", rows["alice"])
	}
	// No version: the latest.
	last := evs[len(evs)-1].Version
	p = b.get("/console/t/contoso/timeTravel")
	checkState(t, e, p.Body, last)
	// The fragment the script swaps in: the same panel, no layout.
	f := b.get(fmt.Sprintf("/console/t/contoso/timeTravel/fragment?v=%d", plans.Version))
	if f.Code != 200 || strings.Contains(f.Body, "<html") {
		t.Fatalf("fragment: %d\n%s", f.Code, f.Body)
	}
	checkState(t, e, f.Body, plans.Version)
	// Past the head: the last event.
	checkState(t, e, b.get("/console/t/contoso/timeTravel?v=999").Body, last)
	checkState(t, e, b.get("/console/t/contoso/timeTravel/fragment?v=999").Body, last)
	if p := b.get("/console/t/contoso/timeTravel?v=x"); p.Code != 400 || !strings.Contains(p.Body, "An event number") {
		t.Errorf("?v=x: %d", p.Code)
	}
}

// TestTimeTravelStepsByCommand: the links that move the cursor go one
// event, and one command (to the state before or after a whole command).
func TestTimeTravelStepsByCommand(t *testing.T) {
	e := newEnv(t, console.Config{})
	evs := ttFixture(t, e)
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	// Events 1-3 are the tenant's creation, one command.
	if evs[0].CommandID != evs[2].CommandID || evs[2].CommandID == evs[3].CommandID {
		t.Fatalf("the fixture's first command is not events 1-3: %+v", evs[:4])
	}
	p := b.get("/console/t/contoso/timeTravel?v=1")
	if !strings.Contains(p.Body, `data-prev-cmd="0" data-next-cmd="3"`) {
		t.Errorf("at 1 the next command does not end at 3")
	}
	p = b.get("/console/t/contoso/timeTravel?v=5")
	if !strings.Contains(p.Body, `data-prev="4" data-next="6" data-prev-cmd="4" data-next-cmd="6"`) {
		t.Errorf("at 5 the steps are wrong:\n%s", p.Body)
	}
	if n := strings.Count(p.Body, `<li class="tt-cmd`); n >= len(evs) {
		t.Errorf("the timeline does not group events by command: %d groups for %d events", n, len(evs))
	}
}

// TestTimeTravelDiff: a second cursor shows the diff between the two
// points, as GET /state/diff answers it, whichever comes first.
func TestTimeTravelDiff(t *testing.T) {
	e := newEnv(t, console.Config{})
	evs := ttFixture(t, e)
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	last := evs[len(evs)-1].Version
	var d struct {
		Changes []struct {
			Entity string `json:"entity"`
			Kind   string `json:"kind"`
		} `json:"changes"`
	}
	e.apiJSON(fmt.Sprintf("/v1/tenants/contoso/state/diff?from=5&to=%d", last), token(t, "contoso", "admin"), &d)
	if len(d.Changes) < 3 {
		t.Fatalf("the fixture's diff is too small: %+v", d)
	}
	for _, q := range []string{fmt.Sprintf("v=%d&cmp=5", last), fmt.Sprintf("v=5&cmp=%d", last)} {
		p := b.get("/console/t/contoso/timeTravel?" + q)
		i := strings.Index(p.Body, `id="tt-diff"`)
		if i < 0 {
			t.Fatalf("?%s: no diff panel", q)
		}
		diff := p.Body[i:]
		if !strings.Contains(diff, fmt.Sprintf("Changes from event 5 to event %d", last)) {
			t.Errorf("?%s: the diff is not from 5 to %d", q, last)
		}
		if n := strings.Count(diff, "<code>"); n != len(d.Changes) {
			t.Errorf("?%s: %d changes shown, the API answers %d", q, n, len(d.Changes))
		}
		for _, c := range d.Changes {
			if !strings.Contains(diff, `<li class="tt-kind-`+c.Kind+`"><code>`+c.Entity+`</code>`) {
				t.Errorf("?%s: change %s %s missing", q, c.Entity, c.Kind)
			}
		}
	}
	// The compare form (a GET form: v hidden, cmp typed).
	p := b.get(fmt.Sprintf("/console/t/contoso/timeTravel?v=%d", last))
	if !strings.Contains(p.Body, fmt.Sprintf(`<input type="hidden" name="v" value="%d">`, last)) || !strings.Contains(p.Body, `name="cmp"`) {
		t.Errorf("no compare form at %d", last)
	}
}

// blameHrefRE finds a blame link of the state panel.
var blameHrefRE = regexp.MustCompile(`<a class="blame" href="([^"]+)">`)

// TestTimeTravelBlame: every value of the state has a blame link; the
// link shows which event last changed it, when, by whom, through which
// command and correlation id — GET /state/blame's answer.
func TestTimeTravelBlame(t *testing.T) {
	e := newEnv(t, console.Config{})
	evs := ttFixture(t, e)
	admin := token(t, "contoso", "admin")
	b := e.browser()
	b.signIn(admin)
	last := evs[len(evs)-1].Version
	p := b.get(fmt.Sprintf("/console/t/contoso/timeTravel?v=%d", last))
	var st apiState
	e.apiJSON(fmt.Sprintf("/v1/tenants/contoso/state?version=%d", last), admin, &st)
	var alice = st.Users[1]
	if alice.ID != "alice" || len(alice.Licenses) != 1 || len(alice.Licenses[0].DisabledPlans) != 1 || len(st.HeldData) != 1 {
		t.Fatalf("fixture: %+v", st)
	}
	sku, plan := alice.Licenses[0].SkuID, alice.Licenses[0].DisabledPlans[0]
	hrefs := map[string]string{}
	for _, m := range blameHrefRE.FindAllStringSubmatch(p.Body, -1) {
		u, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		hrefs[u.Query().Get("blame")] = u.String()
	}
	for _, path := range []string{
		"users/alice/licenses/" + sku,                            // a user's license
		"users/alice/licenses/" + sku + "/disabledPlans/" + plan, // a plan switched off
		"heldData/bob/" + st.HeldData[0].Workload,                // a hold
		"users/bob/status",
	} {
		href, ok := hrefs[path]
		if !ok {
			t.Errorf("no blame link for %s among %v", path, hrefs)
			continue
		}
		var want apiBlame
		e.apiJSON(fmt.Sprintf("/v1/tenants/contoso/state/blame?version=%d&path=%s", last, url.QueryEscape(path)), admin, &want)
		got := b.get(href)
		i := strings.Index(got.Body, `class="tt-blamepanel"`)
		if got.Code != 200 || i < 0 {
			t.Fatalf("%s: %d, no blame panel", href, got.Code)
		}
		checkBlame(t, path, got.Body[i:], want)
		// The panel alone, for the script.
		frag := b.get(fmt.Sprintf("/console/t/contoso/timeTravel/blame?v=%d&path=%s", last, url.QueryEscape(path)))
		checkBlame(t, path, frag.Body, want)
	}
}

// checkBlame compares a blame panel with GET /state/blame's answer.
func checkBlame(t *testing.T, path, panel string, want apiBlame) {
	t.Helper()
	if n := strings.Count(panel, `data-blame-version=`); n != len(want.Entries) || n == 0 {
		t.Errorf("%s: %d blame entries shown, the API answers %d", path, n, len(want.Entries))
	}
	for _, en := range want.Entries {
		ev := want.Events[fmt.Sprint(en.Version)]
		// An empty field would be "shown" by any panel: the API's event
		// must have each one the panel is checked for.
		if ev.Type == "" || ev.CommandID == "" || ev.CorrelationID == "" || ev.Summary == "" || ev.Actor.UserID == "" {
			t.Errorf("%s: the API's event %d lacks a field to look for: %+v", path, en.Version, ev)
		}
		if !strings.Contains(panel, fmt.Sprintf(`data-path="%s" data-blame-version="%d"`, en.Path, en.Version)) {
			t.Errorf("%s: entry %s → %d missing", path, en.Path, en.Version)
		}
		for _, s := range []string{ev.Type, ev.CommandID, ev.CorrelationID, html.EscapeString(ev.Summary), ev.Actor.UserID, ev.OccurredAt.UTC().Format("2006-01-02 15:04:05")} {
			if !strings.Contains(panel, s) {
				t.Errorf("%s: the blame of %s does not show %q", path, en.Path, s)
			}
		}
	}
}

// TestTimeTravelDateTime: the date-time cursor goes to the last event at
// or before that time (GET /state?at=…), at a shareable ?v=N.
func TestTimeTravelDateTime(t *testing.T) {
	e := newEnv(t, console.Config{})
	evs := ttFixture(t, e)
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	last := evs[len(evs)-1]
	p := b.get("/console/t/contoso/timeTravel?at=" + url.QueryEscape(last.OccurredAt.UTC().Add(time.Hour).Format("2006-01-02T15:04")))
	if p.URL != fmt.Sprintf("/console/t/contoso/timeTravel?v=%d", last.Version) {
		t.Errorf("an hour after the last event: at %s, want ?v=%d", p.URL, last.Version)
	}
	// An exact time (RFC 3339, as a shared link may carry): its event.
	mid := evs[4]
	if mid.OccurredAt.Equal(evs[5].OccurredAt) {
		t.Skip("two events at the same instant")
	}
	p = b.get("/console/t/contoso/timeTravel?cmp=2&at=" + url.QueryEscape(mid.OccurredAt.Format(time.RFC3339Nano)))
	if p.URL != fmt.Sprintf("/console/t/contoso/timeTravel?cmp=2&v=%d", mid.Version) {
		t.Errorf("at event %d's time: at %s", mid.Version, p.URL)
	}
	checkState(t, e, p.Body, mid.Version)
	// Before the tenant: the API's 404, shown.
	p = b.get("/console/t/contoso/timeTravel?at=2001-01-01T00:00")
	if p.Code != 404 || !strings.Contains(p.Body, "did not exist yet") {
		t.Errorf("before the tenant: %d", p.Code)
	}
	if p := b.get("/console/t/contoso/timeTravel?at=yesterday"); p.Code != 400 || !strings.Contains(p.Body, "2026-03-01T14:03") {
		t.Errorf("a bad time: %d", p.Code)
	}
}

// TestTimeTravelPlainUser: the API refuses a plain user the tenant's
// history; the page says so and shows no state.
func TestTimeTravelPlainUser(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "alice"))
	p := b.get("/console/t/contoso/timeTravel?v=3")
	if p.Code != 403 || strings.Contains(p.Body, `id="tt-state"`) {
		t.Errorf("a plain user: %d\n%s", p.Code, p.Body)
	}
	if strings.Contains(b.get("/console/t/contoso/me").Body, "/timeTravel") {
		t.Errorf("a plain user's navigation offers time travel")
	}
}
