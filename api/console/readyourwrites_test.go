package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/queries"
)

// TestAChangeShowsOrWaitsWhileTheReadModelsLag: with the projection held
// back, a change made in the console lands on a page that reads at the
// version the change wrote, so it answers 503 (the read models are
// catching up), never a page without the change or "does not exist"; a
// link to what was made, without a version, is not "does not exist"
// either. Once the projection has caught up, both show it. So for the
// tenant's Global admin (whose session check, /me, finds them in the
// lagging read models and does not wait) and for the operator (whose
// session check reads the tenant list).
func TestAChangeShowsOrWaitsWhileTheReadModelsLag(t *testing.T) {
	e := newEnv(t, console.Config{}, func(c *queries.Config) {
		c.MaxWait, c.StaleWait = 200*time.Millisecond, 200*time.Millisecond
	})
	for _, who := range []struct{ name, token, user string }{
		{"admin", token(t, "contoso", "admin"), "carol"},
		{"operator", operator, "dave"},
	} {
		b := e.browser()
		b.signIn(who.token)
		users := b.get("/console/t/contoso/users")
		if users.Code != http.StatusOK {
			t.Fatalf("%s: users: %d", who.name, users.Code)
		}

		e.hold()
		added := b.submit(users, "/console/t/contoso/users/add", url.Values{"id": {who.user},
			"userPrincipalName": {who.user + "@contoso.example"}, "displayName": {who.user}, "usageLocation": {"US"}})
		if added.Code != http.StatusServiceUnavailable || !strings.Contains(added.URL, "/users/"+who.user+"?") || !strings.Contains(added.URL, "minVersion=") {
			t.Fatalf("%s: after adding %s: %d at %s, want 503 at their panel read at the change's version", who.name, who.user, added.Code, added.URL)
		}
		panel := "/console/t/contoso/users/" + who.user
		if p := b.get(panel); p.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %s's panel while the read models lag: %d, want 503", who.name, who.user, p.Code)
		}

		e.release()
		for _, path := range []string{added.URL, panel} {
			p := b.get(path)
			if p.Code != http.StatusOK || !strings.Contains(p.Body, who.user+"@contoso.example") {
				t.Fatalf("%s: %s once caught up: %d", who.name, path, p.Code)
			}
		}
	}
}
