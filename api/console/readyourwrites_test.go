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
// either. Once the projection has caught up, both show it. The operator
// signs in: the session check of a tenant's user (/me) waits for the
// tenant's head itself, which would hide what the pages do.
func TestAChangeShowsOrWaitsWhileTheReadModelsLag(t *testing.T) {
	e := newEnv(t, console.Config{}, func(c *queries.Config) {
		c.MaxWait, c.StaleWait = 200*time.Millisecond, 200*time.Millisecond
	})
	b := e.browser()
	b.signIn(operator)
	users := b.get("/console/t/contoso/users")
	if users.Code != http.StatusOK {
		t.Fatalf("users: %d", users.Code)
	}

	e.hold()
	added := b.submit(users, "/console/t/contoso/users/add", url.Values{"id": {"carol"},
		"userPrincipalName": {"carol@contoso.example"}, "displayName": {"Carol"}, "usageLocation": {"US"}})
	if added.Code != http.StatusServiceUnavailable || !strings.Contains(added.URL, "/users/carol?") || !strings.Contains(added.URL, "minVersion=") {
		t.Fatalf("after adding carol: %d at %s, want 503 at her panel read at the change's version", added.Code, added.URL)
	}
	panel := "/console/t/contoso/users/carol"
	if p := b.get(panel); p.Code != http.StatusServiceUnavailable {
		t.Fatalf("carol's panel while the read models lag: %d, want 503", p.Code)
	}

	e.release()
	for _, path := range []string{added.URL, panel} {
		p := b.get(path)
		if p.Code != http.StatusOK || !strings.Contains(p.Body, "carol@contoso.example") {
			t.Fatalf("%s once caught up: %d", path, p.Code)
		}
	}
}
