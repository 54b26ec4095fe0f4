package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/history"
)

func TestHistoryEndpoints(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.addUser("contoso", "admin", "alice", "US", "Member")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	tok := token(t, "contoso", "admin")
	assigned := e.must(http.StatusOK, req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: tok, Body: map[string]any{"users": []string{"alice"}}}).answer(t).Version
	mid := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	e.must(http.StatusOK, req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/unassign", Token: tok, Body: map[string]any{"users": []string{"alice"}}})
	head := e.version("contoso")

	// Audit: filters and cursors, forwards and backwards.
	var recs []history.Record
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/audit?limit=2", Token: tok})
	if err := json.Unmarshal(r.Body, &recs); err != nil || len(recs) != 2 || recs[0].Version != 1 || recs[0].Summary == "" {
		t.Fatalf("audit page: %v %s", err, r.Body)
	}
	next := r.Header.Get("X-Next-Cursor")
	if next == "" || r.Header.Get("Link") == "" {
		t.Fatal("a partial page carries a next cursor")
	}
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/audit?limit=2&cursor=" + url.QueryEscape(next), Token: tok})
	_ = json.Unmarshal(r.Body, &recs)
	if recs[0].Version != 3 {
		t.Fatalf("second page starts at %d", recs[0].Version)
	}
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/audit?order=desc&limit=1&type=LicenseUnassigned&user=alice", Token: tok})
	_ = json.Unmarshal(r.Body, &recs)
	if len(recs) != 1 || recs[0].Type != "LicenseUnassigned" || recs[0].Target.UserID != "alice" {
		t.Fatalf("filtered: %s", r.Body)
	}
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/audit?until=" + mid.Format(time.RFC3339Nano) + "&sku=SPB&actor=admin", Token: tok})
	_ = json.Unmarshal(r.Body, &recs)
	for _, rec := range recs {
		if rec.OccurredAt.After(mid) || rec.Actor.UserID != "admin" {
			t.Fatalf("until/actor filter let %+v through", rec)
		}
	}
	if len(recs) != 2 { // the purchase and the assignment
		t.Fatalf("%d records until %v: %s", len(recs), mid, r.Body)
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/audit?since=yesterday", Token: tok}), 400, "invalid_request")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/audit?cursor=zzz", Token: tok}), 400, "invalid_request")

	// Raw events.
	var raw []map[string]any
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events?fromVersion=2&limit=2", Token: tok})
	if err := json.Unmarshal(r.Body, &raw); err != nil || len(raw) != 2 || raw[0]["version"].(float64) != 2 || raw[0]["eventId"] == "" {
		t.Fatalf("events: %s", r.Body)
	}

	// State at a version and at a time, and the diff between.
	var st history.State
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state?at=" + mid.Format(time.RFC3339Nano), Token: tok})
	if err := json.Unmarshal(r.Body, &st); err != nil || st.Version != assigned || st.Products[0].Assigned != 1 {
		t.Fatalf("state at %v: %+v %v", mid, st.Products, err)
	}
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state?version=1", Token: tok})
	_ = json.Unmarshal(r.Body, &st)
	if st.Version != 1 || st.Name != "contoso Ltd" || len(st.Users) != 0 {
		t.Fatalf("state at version 1: %s", r.Body)
	}
	var d history.Diff
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state/diff?from=" + mid.Format(time.RFC3339Nano) + "&to=" + itoa(head), Token: tok})
	if err := json.Unmarshal(r.Body, &d); err != nil || len(d.Changes) == 0 || uint64(len(d.Events)) != head-assigned {
		t.Fatalf("diff: %v %s", err, r.Body)
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state?version=999", Token: tok}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/diff?from=5", Token: tok}), 400, "invalid_request")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state?at=now", Token: tok}), 400, "invalid_request")

	// Only Global admins (and the operator) read history.
	e.addUser("contoso", "admin", "lena", "US", "Member")
	e.must(http.StatusOK, req{Method: "PUT", Path: "/v1/tenants/contoso/users/lena/roles", Token: tok, Body: map[string]any{"roles": []string{"LicenseAdministrator"}}})
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/audit", Token: token(t, "contoso", "lena")}), 403, "not_allowed_for_role")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state", Token: token(t, "contoso", "alice")}), 403, "not_allowed_for_role")
	e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/audit", Token: testOperator})
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/nobody/audit", Token: testOperator}), 404, "not_found")
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestStateBlame(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.addUser("contoso", "admin", "alice", "US", "Member")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	tok := token(t, "contoso", "admin")
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	var sway string
	for _, sp := range spb.ServicePlans {
		if sp.Name == "SWAY" {
			sway = sp.ID
		}
	}
	assigned := e.must(http.StatusOK, req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: tok, Body: map[string]any{"users": []string{"alice"}}}).answer(t).Version
	off := e.must(http.StatusOK, req{Method: "PATCH", Path: "/v1/tenants/contoso/users/alice/licenses/SPB", Token: tok,
		Header: map[string]string{"X-Request-Id": "req-plans"}, Body: map[string]any{"disabledPlans": []string{"SWAY"}}}).answer(t).Version

	blame := func(query string) history.Blame {
		t.Helper()
		var b history.Blame
		r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state/blame" + query, Token: tok})
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	versionOf := func(b history.Blame, path string) uint64 {
		for _, en := range b.Entries {
			if en.Path == path {
				return en.Version
			}
		}
		return 0
	}
	lic := "users/alice/licenses/" + spb.SkuID
	// The latest state: the license and the plan were last changed by the
	// PATCH, with its command and the request's id.
	b := blame("")
	if b.Version != off || versionOf(b, lic) != off || versionOf(b, lic+"/disabledPlans/"+sway) != off ||
		versionOf(b, "products/"+spb.SkuID) != assigned || versionOf(b, "subscriptions/s1/quantity") == 0 {
		t.Fatalf("blame: %+v", b.Entries)
	}
	ev := b.Events[itoa(off)]
	if ev.Type != domain.TypeLicensePlansChanged || ev.Actor.UserID != "admin" || ev.CommandID == "" || ev.CorrelationID != "req-plans" || ev.Summary == "" {
		t.Fatalf("the plans' event: %+v", ev)
	}
	var recs []history.Record
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/audit?type=LicensePlansChanged", Token: tok})
	if err := json.Unmarshal(r.Body, &recs); err != nil || len(recs) != 1 || recs[0].CorrelationID != "req-plans" {
		t.Fatalf("the audit record of the plans: %s", r.Body)
	}
	// At the assignment, by version: no plan was off yet.
	b = blame("?version=" + itoa(assigned))
	if versionOf(b, lic) != assigned || versionOf(b, lic+"/disabledPlans/"+sway) != 0 {
		t.Fatalf("blame at %d: %+v", assigned, b.Entries)
	}
	// One value, named by part number.
	b = blame("?path=users/alice/licenses/SPB/disabledPlans/" + sway)
	if len(b.Entries) != 1 || b.Entries[0].Version != off || len(b.Events) != 1 {
		t.Fatalf("one value: %+v", b)
	}
	p := problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/blame?path=users/alice/colour", Token: tok}), 400, "invalid_request")
	if p["field"] != "path" {
		t.Fatalf("a malformed path names %v", p["field"])
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/blame?path=users/bob", Token: tok}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/blame?version=" + itoa(assigned) + "&path=" + lic + "/disabledPlans/" + sway, Token: tok}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/blame?version=999", Token: tok}), 404, "not_found")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/blame?colour=red", Token: tok}), 400, "invalid_request")

	// Only Global admins (and the operator).
	e.addUser("contoso", "admin", "lena", "US", "Member")
	e.must(http.StatusOK, req{Method: "PUT", Path: "/v1/tenants/contoso/users/lena/roles", Token: tok, Body: map[string]any{"roles": []string{"LicenseAdministrator"}}})
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/blame", Token: token(t, "contoso", "lena")}), 403, "not_allowed_for_role")
	e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state/blame?path=name", Token: testOperator})
}

func TestEventsPageBackwardsFromAVersion(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	for _, u := range []string{"a1", "a2", "a3", "a4"} {
		e.addUser("contoso", "admin", u, "US", "Member")
	}
	tok := token(t, "contoso", "admin")
	head := e.version("contoso")
	versions := func(r resp) []uint64 {
		t.Helper()
		var evs []struct {
			Version   uint64 `json:"version"`
			CommandID string `json:"commandId"`
			Type      string `json:"type"`
		}
		if err := json.Unmarshal(r.Body, &evs); err != nil {
			t.Fatal(err)
		}
		var vs []uint64
		for _, ev := range evs {
			if ev.CommandID == "" || ev.Type == "" {
				t.Fatalf("an event without its command or type: %s", r.Body)
			}
			vs = append(vs, ev.Version)
		}
		return vs
	}
	// The page ending at head-1, oldest first, with both neighbours named.
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events?toVersion=" + itoa(head-1) + "&limit=2", Token: tok})
	if got := versions(r); len(got) != 2 || got[0] != head-2 || got[1] != head-1 {
		t.Fatalf("page ending at %d: %v", head-1, got)
	}
	if r.Header.Get("X-Prev-To-Version") != itoa(head-3) || r.Header.Get("X-Next-From-Version") != itoa(head) {
		t.Fatalf("neighbours: prev %q next %q", r.Header.Get("X-Prev-To-Version"), r.Header.Get("X-Next-From-Version"))
	}
	// Following rel="prev" to the first event: pages cover every version once.
	var all []uint64
	for to := head; ; {
		r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events?limit=3&toVersion=" + itoa(to), Token: tok})
		all = append(versions(r), all...)
		p := r.Header.Get("X-Prev-To-Version")
		if p == "" {
			break
		}
		if err := json.Unmarshal([]byte(p), &to); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range all {
		if v != uint64(i+1) {
			t.Fatalf("backward pages: %v", all)
		}
	}
	if uint64(len(all)) != head {
		t.Fatalf("backward pages: %v, head %d", all, head)
	}
	// Past the head: the last page. A forward page names the one before it.
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events?toVersion=999&limit=1", Token: tok})
	if got := versions(r); len(got) != 1 || got[0] != head || r.Header.Get("X-Next-From-Version") != "" {
		t.Fatalf("past the head: %v", got)
	}
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events?fromVersion=3&limit=1", Token: tok})
	if r.Header.Get("X-Prev-To-Version") != "2" {
		t.Fatalf("forward page's prev: %q", r.Header.Get("X-Prev-To-Version"))
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events?toVersion=3&fromVersion=1", Token: tok}), 400, "invalid_request")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events?toVersion=0", Token: tok}), 400, "invalid_request")
}

// TestStatePagesUsers: /state with usersLimit and users answers the first
// users in the state's order and the named ones, with their held data and
// the whole state's counts; without them, the whole state as before; bad
// values are 400s naming the field.
func TestStatePagesUsers(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		e.addUser("contoso", "admin", u, "US", "Member")
	}
	tok := token(t, "contoso", "admin")
	var whole history.State
	if err := json.Unmarshal(e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state", Token: tok}).Body, &whole); err != nil {
		t.Fatal(err)
	}
	if len(whole.Users) != 5 {
		t.Fatalf("the whole state has %d users, want 5", len(whole.Users))
	}
	var raw map[string]any
	_ = json.Unmarshal(e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state", Token: tok}).Body, &raw)
	if _, ok := raw["usersTotal"]; ok {
		t.Fatalf("the whole state answers usersTotal")
	}
	var p history.Paged
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state?usersLimit=2&users=dave,nobody,alice", Token: tok})
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range p.Users {
		ids = append(ids, u.ID)
	}
	// Users sort by id: admin, alice, bob, carol, dave.
	if got := fmt.Sprint(ids); got != "[admin alice dave]" || p.UsersTotal != 5 || p.Version != whole.Version {
		t.Fatalf("a page of 2 and dave, alice: users %s of %d at %d: %s", got, p.UsersTotal, p.Version, r.Body)
	}
	if asJSON(t, p.Users[2]) != asJSON(t, whole.Users[4]) {
		t.Fatalf("a paged user differs from the whole state's:\n%s\n%s", asJSON(t, p.Users[2]), asJSON(t, whole.Users[4]))
	}
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state?version=1&usersLimit=0", Token: tok})
	if err := json.Unmarshal(r.Body, &p); err != nil || len(p.Users) != 0 || p.UsersTotal != 0 {
		t.Fatalf("no user at version 1: %s", r.Body)
	}
	for _, q := range []struct{ query, field string }{
		{"usersLimit=-1", "usersLimit"}, {"usersLimit=1001", "usersLimit"}, {"usersLimit=many", "usersLimit"},
		{"users=alice,,bob", "users"}, {"users=", "users"}, {"users=" + strings.Repeat("u,", 100) + "u", "users"},
	} {
		m := problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state?" + q.query, Token: tok}), 400, "invalid_request")
		if m["field"] != q.field {
			t.Errorf("%s: field %v, want %s", q.query, m["field"], q.field)
		}
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
