package console_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/tenantstream"
)

var (
	auditRowRE = regexp.MustCompile(`timeTravel\?v=(\d+)"`)
	pagerRE    = regexp.MustCompile(`<a href="([^"]*)" rel="(next|prev)">`)
)

// head is the version of tenant's stream.
func (e *env) head(tenant string) int {
	e.t.Helper()
	recs, err := e.store.ReadStream(context.Background(), tenantstream.Name(tenant), 1, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(recs)
}

// versions are the versions of the audit page's rows, in order.
func versions(p page) []string {
	var out []string
	for _, m := range auditRowRE.FindAllStringSubmatch(p.Body, -1) {
		out = append(out, m[1])
	}
	return out
}

func pager(p page, rel string) string {
	for _, m := range pagerRE.FindAllStringSubmatch(p.Body, -1) {
		if m[2] == rel {
			return html.UnescapeString(m[1])
		}
	}
	return ""
}

// TestAuditLog: newest first, each row linked to time travel at its
// version with its correlation id; the filters as a GET form; next and
// previous pages.
func TestAuditLog(t *testing.T) {
	e := newEnv(t, console.Config{})
	admin := token(t, "contoso", "admin")
	for range 13 { // 52 more events: two pages
		e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E3/unassign", admin, `{"users":["alice"]}`)
		e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E3/assign", admin, `{"users":["alice"]}`)
	}
	head := e.head("contoso")
	b := e.browser()
	b.signIn(admin)

	first := b.get("/console/t/contoso/audit")
	mustHave(t, "the audit log", first, 200, "License assigned", "Data no longer held", `name="actor"`, `<option value="GroupCreated">Group added</option>`)
	vs := versions(first)
	if len(vs) != 50 || vs[0] != fmt.Sprint(head) || vs[49] != fmt.Sprint(head-49) {
		t.Fatalf("first page: %d rows %v, want 50 from %d down", len(vs), vs, head)
	}
	if pager(first, "prev") != "" {
		t.Error("the first page links a previous page")
	}
	if !regexp.MustCompile(`<td class="id">[^<]+</td>`).MatchString(first.Body) {
		t.Error("no correlation id in the rows")
	}

	second := b.get("/console/t/contoso/audit" + pager(first, "next"))
	vs2 := versions(second)
	if len(vs2) != head-50 || vs2[0] != fmt.Sprint(head-50) || vs2[len(vs2)-1] != "1" {
		t.Fatalf("second page: %v, want %d down to 1", vs2, head-50)
	}
	if pager(second, "next") != "" {
		t.Error("the last page links a next page")
	}
	back := b.get("/console/t/contoso/audit" + pager(second, "prev"))
	if got := versions(back); strings.Join(got, ",") != strings.Join(vs, ",") {
		t.Fatalf("previous page of the second: %v, want the first %v", got, vs)
	}

	// Filters: the form's GET, kept in the form and the pager.
	f := b.get("/console/t/contoso/audit?type=UserAdded&actor=admin&order=asc")
	mustHave(t, "filtered", f, 200, `<option value="UserAdded" selected>`, `name="actor" value="admin"`, `<option value="asc" selected>`)
	if got := versions(f); strings.Join(got, ",") != "4,5" { // alice, bob (admin was added by the operator)
		t.Fatalf("UserAdded by admin, oldest first: %v", got)
	}
	if n := strings.Count(f.Body, "<strong>User added</strong>"); n != 2 {
		t.Fatalf("%d rows say User added", n)
	}
	// A time the API refuses: its problem.
	bad := b.get("/console/t/contoso/audit?since=yesterday")
	mustHave(t, "a bad time", bad, http.StatusBadRequest, `class="msg error"`)
	// datetime-local values are UTC times.
	late := b.get("/console/t/contoso/audit?since=2999-01-01T00:00")
	mustHave(t, "since the future", late, 200, "No activity matches.")
}
