package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// /state/diff's points: version 0 is the tenant before its first event,
// the same point as a time before it (the answer itself says "from":0);
// a point past the head or a reversed pair is refused naming the
// parameter sent; a diff with no change lists none as [], not null.
func TestDiffPointsAreTheOnesSent(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.addUser("contoso", "admin", "alice", "US", "")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	tok := token(t, "contoso", "admin")
	head := e.version("contoso")
	diff := func(q string) resp {
		return e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/diff?" + q, Token: tok})
	}
	byTime := diff("from=2000-01-01T00:00:00Z&to=2")
	byZero := diff("from=0&to=2")
	if byTime.Code != http.StatusOK || byZero.Code != http.StatusOK || !bytes.Equal(byTime.Body, byZero.Body) || !bytes.Contains(byZero.Body, []byte(`"from":0,"to":2,`)) {
		t.Fatalf("from=0 answered %d %.300s\nfrom a time before the tenant: %d %.300s", byZero.Code, byZero.Body, byTime.Code, byTime.Body)
	}
	if r := diff("from=2&to=0"); r.Code == http.StatusOK {
		t.Fatalf("to=0 answered %.200s: a diff to the head, not to version 0", r.Body)
	} else if p := problem(t, r, http.StatusBadRequest, "invalid_request"); p["field"] != "from" || !strings.Contains(p["detail"].(string), "version 0") {
		t.Fatalf("from=2&to=0: %v", p)
	}
	if p := problem(t, diff(fmt.Sprintf("from=1&to=%d", head+1)), http.StatusNotFound, "not_found"); p["field"] != "to" {
		t.Fatalf("a to past the head names field %v, want to", p["field"])
	}
	if p := problem(t, diff(fmt.Sprintf("from=%d&to=%d", head+1, head+2)), http.StatusNotFound, "not_found"); p["field"] != "from" {
		t.Fatalf("a from past the head names field %v, want from", p["field"])
	}
	for _, q := range []string{"from=3&to=3", "from=0&to=0"} {
		r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/state/diff?" + q, Token: tok})
		if !bytes.Contains(r.Body, []byte(`"changes":[]`)) {
			t.Fatalf("%s: %s", q, r.Body)
		}
	}
	// /state's version names its own parameter still.
	if p := problem(t, e.do(req{Method: "GET", Path: fmt.Sprintf("/v1/tenants/contoso/state?version=%d", head+1), Token: tok}), http.StatusNotFound, "not_found"); p["field"] != "version" {
		t.Fatalf("/state?version past the head names field %v", p["field"])
	}
}
