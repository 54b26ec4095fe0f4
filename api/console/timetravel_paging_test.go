package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/internal/benchdata"
)

// TestTimeTravelPagesTheUsers: on a tenant of more users than the page
// shows, the state at the cursor reads a page of them (the first 100 in
// the state's order and their held data) and adds the user or the hold
// the cursor's event changed, though they are beyond the page; it says
// how many more there are, and ?all=1 shows every one.
func TestTimeTravelPagesTheUsers(t *testing.T) {
	e := newEnv(t, console.Config{})
	// 300 users licensed, unlicensed, then held: event 904 unlicenses
	// u299, beyond the first 100 ids (admin, u0, u1, u10, u100…); 1204
	// holds u299's mailbox.
	const unlicensed, held = 4 + 300 + 2*300, 4 + 300 + 3*300
	if err := benchdata.WriteLongTenant(context.Background(), e.store, "long", held, 300); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(operator)
	for _, v := range []int{unlicensed, held} {
		var whole, want apiState
		e.apiJSON(fmt.Sprintf("/v1/tenants/long/state?version=%d", v), operator, &whole)
		e.apiJSON(fmt.Sprintf("/v1/tenants/long/state?version=%d&usersLimit=100&users=u299", v), operator, &want)
		if len(whole.Users) != 301 || len(want.Users) != 101 || want.Users[100].ID != "u299" {
			t.Fatalf("the fixture: %d users, a page of %d", len(whole.Users), len(want.Users))
		}
		if v == held {
			want.Users = want.Users[:100] // the hold changed, not the user
		}
		p := b.get(fmt.Sprintf("/console/t/long/timeTravel?v=%d", v))
		if p.Code != 200 {
			t.Fatalf("?v=%d: %d\n%s", v, p.Code, p.Body)
		}
		rows, changed := userRows(p.Body)
		if len(rows) != len(want.Users) {
			t.Errorf("at %d the page shows %d users, want %d", v, len(rows), len(want.Users))
		}
		for _, u := range want.Users {
			if _, ok := rows[u.ID]; !ok {
				t.Errorf("at %d user %s is not shown", v, u.ID)
			}
		}
		var marked []string
		for id, ok := range changed {
			if ok {
				marked = append(marked, id)
			}
		}
		if wantMarked := map[int]string{unlicensed: "[u299]", held: "[]"}[v]; fmt.Sprint(marked) != wantMarked {
			t.Errorf("at %d the users marked changed are %v, want %s", v, marked, wantMarked)
		}
		if n := strings.Count(p.Body, `blame=heldData`); n != len(want.HeldData) {
			t.Errorf("at %d the page shows %d holds, want the %d of the users shown", v, n, len(want.HeldData))
		}
		if v == held && !strings.Contains(p.Body, `<tr class="changed"><td>u299</td><td>Exchange`) {
			t.Errorf("the hold the event added (u299's) is not shown as changed")
		}
		if !strings.Contains(p.Body, fmt.Sprintf("Show %d more users", 301-len(want.Users))) {
			t.Errorf("at %d the page does not say how many users are not shown", v)
		}
		if more := len(whole.HeldData) - len(want.HeldData); more > 0 && !strings.Contains(p.Body, fmt.Sprintf("Show all held data (%d more)", more)) {
			t.Errorf("at %d the page does not say how many holds are not shown", v)
		}
		all := b.get(fmt.Sprintf("/console/t/long/timeTravel?v=%d&all=1", v))
		if rows, _ := userRows(all.Body); len(rows) != len(whole.Users) || strings.Count(all.Body, `blame=heldData`) != len(whole.HeldData) {
			t.Errorf("at %d ?all=1 shows %d users, want %d, and %d holds, want %d", v, len(rows), len(whole.Users), strings.Count(all.Body, `blame=heldData`), len(whole.HeldData))
		}
	}
}
