package api_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/readmodel"
)

// readSideEnv is an env with the query routes over an in-process Redis in
// which tenant contoso's read models exist (at version 1, empty).
func readSideEnv(t *testing.T) (*env, string) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	q := queries.New(queries.Config{Redis: rdb})
	e := newEnv(t, func(c *api.Config) {
		c.Queries = q
	})
	e.createTenant("contoso")
	keys := readmodel.Keys{Prefix: readmodel.DefaultPrefix}
	// As new as the command side: a query's 404 comes only from read
	// models that have applied what its role check read.
	mr.HSet(keys.Key("contoso", readmodel.Meta), "version", strconv.FormatUint(e.version("contoso"), 10))
	if err := mr.Set(keys.Present(), "complete"); err != nil { // the read models are complete
		t.Fatal(err)
	}
	return e, token(t, "contoso", "admin")
}

// TestHardening16_OneProblemWriter: command and query routes answer
// problems alike: the same title for the same code, a requestId on every
// one, the same Content-Type, and JSON answers with the same Content-Type
// too. Field names are the request body's own JSON paths.
func TestHardening16_OneProblemWriter(t *testing.T) {
	e, admin := readSideEnv(t)
	const c = "/v1/tenants/contoso"
	query := problem(t, e.do(req{Method: "GET", Path: c + "/users?limit=0", Token: admin}), 400, "invalid_request")
	command := problem(t, e.do(req{Method: "POST", Path: c + "/groups", Token: admin, Body: `{"id":"g1","size":3}`}), 400, "invalid_request")
	if query["title"] != command["title"] {
		t.Errorf("titles differ: query %q, command %q", query["title"], command["title"])
	}
	for name, p := range map[string]map[string]any{"query": query, "command": command} {
		if id, _ := p["requestId"].(string); id == "" {
			t.Errorf("%s problem without requestId: %v", name, p)
		}
	}
	notFoundQ := problem(t, e.do(req{Method: "GET", Path: c + "/users/nobody", Token: admin}), 404, "not_found")
	notFoundC := problem(t, e.do(req{Method: "DELETE", Path: c + "/users/nobody", Token: admin}), 404, "not_found")
	if notFoundQ["title"] != notFoundC["title"] || notFoundQ["requestId"] == nil {
		t.Errorf("404s differ: %v vs %v", notFoundQ, notFoundC)
	}
	list := e.must(200, req{Method: "GET", Path: c + "/users", Token: admin})
	cmd := e.must(201, req{Method: "POST", Path: c + "/groups", Token: admin, Body: `{"id":"g1","displayName":"G"}`})
	if a, b := list.Header.Get("Content-Type"), cmd.Header.Get("Content-Type"); a != b {
		t.Errorf("Content-Type of a query %q, of a command %q", a, b)
	}

	// Fields are the body's own paths.
	fields := []struct {
		path, body, field string
		operator          bool
	}{
		{c + "/users", `{"id":"bad id!","userPrincipalName":"x@contoso.example"}`, "id", false},
		{c + "/users", `{"id":"nupn","userPrincipalName":"no-at-sign"}`, "userPrincipalName", false},
		{c + "/users", `{"id":"ut","userPrincipalName":"ut@contoso.example","userType":"Robot"}`, "userType", false},
		{"/v1/tenants", `{"id":"fabrikam","name":"F","globalAdmin":{"id":"ga","userPrincipalName":"ga@f.example","usageLocation":"usa"}}`, "globalAdmin.usageLocation", true},
		{"/v1/tenants", `{"id":"fabrikam","name":"F","globalAdmin":{"id":"bad id!","userPrincipalName":"ga@f.example"}}`, "globalAdmin.id", true},
	}
	for _, f := range fields {
		tok := admin
		if f.operator {
			tok = testOperator
		}
		p := problem(t, e.do(req{Method: "POST", Path: f.path, Token: tok, Body: f.body}), 400, "invalid_request")
		if p["field"] != f.field {
			t.Errorf("%s %s: field %v, want %s", f.path, f.body, p["field"], f.field)
		}
	}
}

// maxProblemDetail is the longest detail a problem may have (api bounds
// it at 1 KiB, plus the marker of the cut).
const maxProblemDetail = 1100

// TestHardening17_HTTPDetails: HEAD works where GET does; a 405 carries
// one Allow; unknown (or repeated) query parameters are refused naming the
// parameter; a long bad cursor is not echoed whole; ids "." and ".." are
// refused.
func TestHardening17_HTTPDetails(t *testing.T) {
	e, admin := readSideEnv(t)
	const c = "/v1/tenants/contoso"
	for _, path := range []string{"/v1/catalog", "/healthz", c + "/users", c + "/audit", c + "/state"} {
		get := e.must(200, req{Method: "GET", Path: path, Token: admin})
		head := e.do(req{Method: "HEAD", Path: path, Token: admin})
		if head.Code != 200 || len(head.Body) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q %q, want 200, no body, %q", path, head.Code, head.Header.Get("Content-Type"), head.Body, get.Header.Get("Content-Type"))
		}
	}
	// HEAD on a route with no GET is still not allowed.
	if r := e.do(req{Method: "HEAD", Path: c + "/users/alice/restore", Token: admin}); r.Code != 405 || r.Header.Get("Allow") != "POST" || len(r.Body) != 0 {
		t.Errorf("HEAD on a POST route: %d Allow %q body %q", r.Code, r.Header.Get("Allow"), r.Body)
	}

	r := e.do(req{Method: "PUT", Path: "/v1/catalog"})
	problem(t, r, 405, "method_not_allowed")
	if allow := r.Header.Values("Allow"); len(allow) != 1 || !strings.Contains(allow[0], "GET") || !strings.Contains(allow[0], "HEAD") {
		t.Errorf("405 Allow %q, want one header naming GET and HEAD", allow)
	}

	for _, rq := range []struct{ method, path, param string }{
		{"GET", c + "/users?limitt=5", "limitt"},
		{"GET", c + "/users/admin?limit=5", "limit"},
		{"GET", c + "/audit?actr=admin", "actr"},
		{"GET", c + "/users?limit=1&limit=2", "limit"},
		{"GET", c + "/events?fromVersion=1&fromVersion=2", "fromVersion"},
		{"POST", c + "/groups?dryRun=true", "dryRun"},
	} {
		p := e.refused(t, "contoso", req{Method: rq.method, Path: rq.path, Token: admin, Body: `{"id":"gq","displayName":"G"}`}, 400, "invalid_request")
		if p["field"] != rq.param {
			t.Errorf("%s %s: field %v, want %s", rq.method, rq.path, p["field"], rq.param)
		}
	}

	long := strings.Repeat("A", 10_000)
	for _, path := range []string{c + "/users?cursor=" + long, c + "/audit?cursor=" + long, c + "/audit?since=" + long, c + "/users/" + long + "!"} {
		p := problem(t, e.do(req{Method: "GET", Path: path, Token: admin}), 400, "invalid_request")
		if d, _ := p["detail"].(string); len(d) > 300 {
			t.Errorf("GET %.60s…: detail of %d bytes echoes the input", path, len(d))
		}
	}

	// Input the domain echoes is bounded too.
	p := problem(t, e.do(req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"` + long + `!","userPrincipalName":"l@contoso.example"}`}), 400, "invalid_request")
	if d, _ := p["detail"].(string); len(d) > maxProblemDetail {
		t.Errorf("a 10,000-character id: detail of %d bytes", len(d))
	}

	for _, id := range []string{".", ".."} {
		p := e.refused(t, "contoso", req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"` + id + `","userPrincipalName":"dot@contoso.example"}`}, 400, "invalid_request")
		if p["field"] != "id" {
			t.Errorf("user id %q: field %v", id, p["field"])
		}
		e.refused(t, "contoso", req{Method: "POST", Path: c + "/groups", Token: admin, Body: `{"id":"` + id + `"}`}, 400, "invalid_request")
		e.refused(t, "contoso", req{Method: "DELETE", Path: c + "/users/" + url.PathEscape(id), Token: admin}, 400, "invalid_request")
	}
}

// TestHardening18_HistoryListsPageAlike: the audit log and the raw events
// page as every list does: a bare array, X-Next-Cursor, and a Link
// rel="next" that gives the next page when followed.
func TestHardening18_HistoryListsPageAlike(t *testing.T) {
	e, admin := readSideEnv(t)
	const c = "/v1/tenants/contoso"
	for _, path := range []string{c + "/audit?limit=1", c + "/events?limit=1", c + "/events?fromVersion=1&limit=1"} {
		a := e.must(200, req{Method: "GET", Path: path, Token: admin})
		next := a.Header.Get("X-Next-Cursor")
		var link string
		for _, l := range a.Header.Values("Link") {
			if strings.HasSuffix(l, `>; rel="next"`) {
				link = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
			}
		}
		if next == "" || link == "" || !strings.HasPrefix(string(a.Body), "[") {
			t.Errorf("GET %s: X-Next-Cursor %q, Link %q, body %.60s", path, next, link, a.Body)
			continue
		}
		u, err := url.Parse(link)
		if err != nil || u.Query().Get("cursor") != next {
			t.Errorf("GET %s: Link %q does not carry the cursor %q", path, link, next)
		}
		b := e.must(200, req{Method: "GET", Path: link, Token: admin})
		if string(b.Body) == string(a.Body) {
			t.Errorf("GET %s: following Link gave the same page", path)
		}
	}
}

// TestHardening17_UnknownParameterFieldIsBounded: an unknown query
// parameter is named in the problem's field only when that is safe and
// short; else the field is "query" (the fuzzer found a name that was not
// UTF-8 turned into U+FFFD, and a long name was echoed whole).
func TestHardening17_UnknownParameterFieldIsBounded(t *testing.T) {
	e, admin := readSideEnv(t)
	for query, field := range map[string]string{
		"limt=5":                        "limt",
		"%E6=1":                         "query",
		strings.Repeat("x", 200) + "=1": "query",
		"a%0Ab=1":                       "query",
	} {
		p := problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/users?" + query, Token: admin}), 400, "invalid_request")
		if p["field"] != field {
			t.Errorf("?%.40s: field %q, want %q", query, p["field"], field)
		}
	}
}

// TestHardening17_BlamePathIsBounded: GET /state/blame names a path it
// refuses (400: no such shape) or finds no value at (404) as problems name
// input: its first bytes, cut between characters, not the whole of it
// (the problem writer's 1 KiB cap is the last resort, not the bound).
func TestHardening17_BlamePathIsBounded(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	long := strings.Repeat("é", 2500) // 5,000 bytes of 2-byte characters
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"users/" + long, 404, "not_found"},
		{"users/admin/licenses/" + long, 404, "not_found"},
		{"x" + long, 400, "invalid_request"},
	} {
		r := e.do(req{Method: "GET", Path: "/v1/tenants/contoso/state/blame?path=" + url.QueryEscape(c.path), Token: admin})
		detail, _ := problem(t, r, c.status, c.code)["detail"].(string)
		if strings.Contains(detail, strings.Repeat("é", 150)) || strings.ContainsRune(detail, utf8.RuneError) {
			t.Errorf("%d: the detail repeats the path whole or cuts a character (%d bytes): %q", c.status, len(detail), detail[:min(len(detail), 120)])
		}
	}
}

// TestHardening17_BodyKeysEchoBounded: a body refused for a key (unknown,
// given twice, or matching a field only without regard to case) names it
// as a query parameter is named: the problem's field is the key's path
// when it is short and printable, else "body"; the detail repeats at most
// its first 64 bytes. A 5,000-byte key is never sent back whole.
func TestHardening17_BodyKeysEchoBounded(t *testing.T) {
	e, admin := readSideEnv(t)
	long := strings.Repeat("k", 5000)
	for _, c := range []struct{ name, body, field string }{
		{"unknown", `{"id":"g1","displayName":"G","` + long + `":1}`, "body"},
		{"given twice", `{"id":"g1","displayName":"G","` + long + `":1,"` + long + `":2}`, "body"},
		{"unknown, with a control character", `{"id":"g1","displayName":"G","a\u0007b":1}`, "body"},
		{"unknown, short", `{"id":"g1","displayName":"G","size":1}`, "size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin, Body: c.body})
			p := problem(t, r, 400, "invalid_request")
			if p["field"] != c.field {
				t.Errorf("field %.80q, want %q", p["field"], c.field)
			}
			if strings.Contains(string(r.Body), strings.Repeat("k", 100)) {
				t.Errorf("the answer repeats the key whole (%d bytes)", len(r.Body))
			}
		})
	}
}

// TestHardening17_DomainDetailsEchoBounded: the domain's refusals repeat
// the value at fault as docs/API.md promises of every detail: at most 64
// bytes of it, then "…" and its length (the 1 KiB cap is the last resort).
func TestHardening17_DomainDetailsEchoBounded(t *testing.T) {
	e, admin := readSideEnv(t)
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "x1", "US", "Member")
	long := strings.Repeat("v", 5000)
	const c = "/v1/tenants/contoso"
	for _, r := range []struct{ name, method, path, body string }{
		{"user id", "POST", c + "/users", `{"id":"§","userPrincipalName":"a@c.example"}`},
		{"usageLocation", "POST", c + "/users", `{"id":"n1","userPrincipalName":"n1@c.example","usageLocation":"§"}`},
		{"userType", "POST", c + "/users", `{"id":"n1","userPrincipalName":"n1@c.example","userType":"§"}`},
		{"product", "POST", c + "/users/x1/assignLicense", `{"addLicenses":[{"skuId":"§"}]}`},
		{"service plan", "POST", c + "/users/x1/assignLicense", `{"addLicenses":[{"skuId":"SPB","disabledPlans":["§"]}]}`},
		{"users", "POST", c + "/licenses/SPB/assign", `{"users":["§"]}`},
		{"mode", "POST", c + "/users/manageLicenses", `{"users":["x1"],"mode":"§"}`},
		{"role", "PUT", c + "/users/x1/roles", `{"roles":["§"]}`},
		{"kind", "POST", c + "/subscriptions", `{"id":"s2","skuId":"SPB","quantity":1,"kind":"§"}`},
		{"channel", "POST", c + "/subscriptions", `{"id":"s2","skuId":"SPB","quantity":1,"channel":"§"}`},
		{"status", "PATCH", c + "/subscriptions/s1", `{"status":"§"}`},
		{"installUrl", "POST", c + "/subscriptions", `{"id":"s2","quantity":1,"channel":"Marketplace","product":{"skuId":"app1","skuPartNumber":"A","displayName":"A","publisher":"P","installUrl":"§"}}`},
	} {
		t.Run(r.name, func(t *testing.T) {
			got := e.do(req{Method: r.method, Path: r.path, Token: admin, Body: strings.ReplaceAll(r.body, "§", long)})
			if got.Code < 400 || got.Code >= 500 {
				t.Fatalf("status %d: %.200s", got.Code, got.Body)
			}
			detail, _ := got.JSON(t)["detail"].(string)
			if strings.Contains(detail, strings.Repeat("v", 65)) || !strings.Contains(detail, "(5000 bytes)") {
				t.Errorf("the detail does not cut the value to 64 bytes and say its length: %.200s", detail)
			}
		})
	}
	// A user principal name is refused past 256 bytes without being
	// repeated; a shorter bad one is cut as the rest.
	upn := strings.Repeat("v", 200)
	got := e.do(req{Method: "POST", Path: c + "/users", Token: admin, Body: `{"id":"n1","userPrincipalName":"` + upn + `"}`})
	if detail, _ := problem(t, got, 400, "invalid_request")["detail"].(string); strings.Contains(detail, upn[:65]) || !strings.Contains(detail, "(200 bytes)") {
		t.Errorf("userPrincipalName: %.200s", detail)
	}
}
