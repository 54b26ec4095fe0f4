package console_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api/console"
)

// TestHeldData: whose mailbox data is held, since when, the purge date,
// and the data a retention hold keeps.
func TestHeldData(t *testing.T) {
	e := newEnv(t, console.Config{})
	b := e.browser()
	b.signIn(token(t, "contoso", "admin"))
	mustHave(t, "nothing held", b.get("/console/t/contoso/heldData"), 200, "No data is held.")

	admin := token(t, "contoso", "admin")
	e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E3/unassign", admin, `{"users":["alice","bob"]}`)
	e.apiMust(200, "PUT", "/v1/tenants/contoso/users/bob/retentionHold", admin, `{"enabled":true}`)
	e.caughtUp()
	p := b.get("/console/t/contoso/heldData")
	mustHave(t, "held data", p, 200, "<td>alice</td><td>Mailbox (Exchange)</td>", "<td>bob</td><td>Mailbox (Exchange)</td>", "Kept by a retention hold", "License removed")
	rows := regexp.MustCompile(`(?s)<tr><td>(alice|bob)</td>.*?</tr>`).FindAllString(p.Body, -1)
	if len(rows) != 2 {
		t.Fatalf("%d rows:\n%s", len(rows), p.Body)
	}
	// alice's row: held since today, purged 30 days later; bob's is kept.
	since := regexp.MustCompile(`<time datetime="([^"]+)">`).FindAllStringSubmatch(rows[0], -1)
	if len(since) != 2 || since[0][1] >= since[1][1] || strings.Contains(rows[0], "retention") {
		t.Fatalf("alice's row has no held-since and later purge date: %s", rows[0])
	}
	if !strings.Contains(rows[1], "Kept by a retention hold") {
		t.Fatalf("bob's row: %s", rows[1])
	}
}
