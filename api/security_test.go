package api_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/api/apitest"
)

// TestNonAdminRefusedOnEveryRoute: a tenant user without an admin role gets
// 403 not_allowed_for_role on every tenant route (table over
// Server.Routes(), so a new route is covered), and nothing is written.
func TestNonAdminRefusedOnEveryRoute(t *testing.T) {
	e := newEnv(t, withReadSide(t))
	e.createTenant("contoso")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "bob", "US", "Member")
	e.addUser("contoso", "admin", "x1", "US", "Member")
	bob := token(t, "contoso", "bob")
	before := e.version("contoso")
	// Bodies that are valid, so the answer is about the role, not the input.
	bodies := map[string]string{
		"/users":                       `{"id":"new1","userPrincipalName":"new1@c.example"}`,
		"/users/:u":                    `{"displayName":"X"}`,
		"/users/:u/roles":              `{"roles":["GlobalAdministrator"]}`,
		"/users/:u/retentionHold":      `{"enabled":true}`,
		"/users/:u/assignLicense":      `{"addLicenses":[{"skuId":"SPB"}]}`,
		"/users/:u/licenses/:sku":      `{"disabledPlans":[]}`,
		"/users/manageLicenses":        `{"users":["x1"],"mode":"AssignMore","addLicenses":[{"skuId":"SPB"}]}`,
		"/groups":                      `{"id":"g1","displayName":"G"}`,
		"/groups/:g":                   `{"displayName":"G2"}`,
		"/groups/:g/assignLicense":     `{"addLicenses":[{"skuId":"SPB"}]}`,
		"/subscriptions":               `{"id":"s2","skuId":"SPB","quantity":1}`,
		"/subscriptions/:s":            `{"quantity":9}`,
		"/licenses/:sku/assign":        `{"users":["x1"]}`,
		"/licenses/:sku/unassign":      `{"users":["x1"]}`,
		"/users/:u/restore":            ``,
		"/subscriptions/:s/takeOver":   ``,
		"/groups/:g/members/:u":        ``,
		"/apps/:sku/install":           ``,
		"/licenses/:sku/users":         ``,
		"/users/:u/licenses":           ``,
		"/state/diff":                  ``,
		"/groups/:g/members":           ``,
		"/subscriptions/:s/users":      ``,
		"/heldData/:u/:w/purge":        ``,
		"/users/:u/heldData/:w/retain": ``,
	}
	for _, r := range apitest.TenantRoutes(t, e.srv.Routes()) {
		rel := strings.TrimPrefix(r.Path, "/v1/tenants/:t")
		path := apitest.PathFor(r.Path, "contoso")
		if strings.Contains(rel, ":s") && !strings.Contains(rel, ":sku") {
			path = strings.Replace(path, "/subscriptions/x1", "/subscriptions/s1", 1)
		}
		if selfRoutes[r.Method+" "+rel] {
			continue // any active user's own (TestMeOverHTTP)
		}
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			body := bodies[rel]
			if r.Method == "GET" || r.Method == "DELETE" {
				body = ""
			}
			got := e.do(req{Method: r.Method, Path: path, Token: bob, Body: body})
			if got.Code != http.StatusForbidden {
				t.Fatalf("a user without an admin role: %d, want 403: %s", got.Code, got.Body)
			}
			problem(t, got, http.StatusForbidden, "not_allowed_for_role")
		})
	}
	if v := e.version("contoso"); v != before {
		t.Fatalf("refused requests wrote: version %d -> %d", before, v)
	}
}

// selfRoutes are the tenant routes every active user of the tenant may
// call, admin or not: about themself only.
var selfRoutes = map[string]bool{"GET /me": true}

// TestLicenseAdminOnGuests: a License admin may license members but gets
// 403 guest_requires_global_admin on every way of licensing a guest.
func TestLicenseAdminOnGuests(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "lic", "US", "Member")
	e.addUser("contoso", "admin", "guest", "US", "Guest")
	e.must(http.StatusOK, req{Method: "PUT", Path: "/v1/tenants/contoso/users/lic/roles", Token: token(t, "contoso", "admin"), Body: `{"roles":["LicenseAdministrator"]}`})
	lic := token(t, "contoso", "lic")
	before := e.version("contoso")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/tenants/contoso/licenses/SPB/assign", `{"users":["guest"]}`},
		{"POST", "/v1/tenants/contoso/users/guest/assignLicense", `{"addLicenses":[{"skuId":"SPB"}]}`},
		{"POST", "/v1/tenants/contoso/users/manageLicenses", `{"users":["guest"],"mode":"AssignMore","addLicenses":[{"skuId":"SPB"}]}`},
	} {
		problem(t, e.do(req{Method: c.method, Path: c.path, Token: lic, Body: c.body}), http.StatusForbidden, "guest_requires_global_admin")
	}
	if v := e.version("contoso"); v != before {
		t.Fatalf("refused requests wrote: version %d -> %d", before, v)
	}
	e.must(http.StatusOK, req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: token(t, "contoso", "admin"), Body: `{"users":["guest"]}`})
}

// TestBadInputWritesNothing: hostile bodies get a clear 4xx and leave the
// stream where it was.
func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "alice", "US", "Member")
	adm := token(t, "contoso", "admin")
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"oversized body", "POST", "/v1/tenants/contoso/users", `{"id":"x","displayName":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, 413, "invalid_request"},
		{"deep JSON", "POST", "/v1/tenants/contoso/licenses/SPB/assign", `{"users":` + deep + `}`, 400, "invalid_request"},
		{"deep JSON at the top", "POST", "/v1/tenants/contoso/users", deep, 400, "invalid_request"},
		{"unicode id", "POST", "/v1/tenants/contoso/users", `{"id":"ålice","userPrincipalName":"a@c.example"}`, 400, "invalid_request"},
		{"unicode path id", "DELETE", "/v1/tenants/contoso/users/%C3%A5lice", ``, 400, "invalid_request"},
		{"RTL override id", "POST", "/v1/tenants/contoso/groups", `{"id":"g\u202e1","displayName":"G"}`, 400, "invalid_request"},
		{"duplicate users", "POST", "/v1/tenants/contoso/licenses/SPB/assign", `{"users":["alice","alice"]}`, 400, "invalid_request"},
		{"unknown SKU", "POST", "/v1/tenants/contoso/licenses/NOPE/assign", `{"users":["alice"]}`, 404, "not_found"},
		{"unknown SKU purchase", "POST", "/v1/tenants/contoso/subscriptions", `{"id":"s9","skuId":"NOPE","quantity":1}`, 404, "not_found"},
		{"unknown plan", "POST", "/v1/tenants/contoso/licenses/SPB/assign", `{"users":["alice"],"disabledPlans":["NOPE"]}`, 400, "invalid_request"},
		{"negative quantity", "POST", "/v1/tenants/contoso/subscriptions", `{"id":"s9","skuId":"SPB","quantity":-5}`, 400, "invalid_request"},
		{"zero quantity", "PATCH", "/v1/tenants/contoso/subscriptions/s1", `{"quantity":0}`, 400, "invalid_request"},
		{"negative quantity change", "PATCH", "/v1/tenants/contoso/subscriptions/s1", `{"quantity":-1}`, 400, "invalid_request"},
		{"huge quantity", "POST", "/v1/tenants/contoso/subscriptions", `{"id":"s9","skuId":"SPB","quantity":99999999999999999999}`, 400, "invalid_request"},
		{"float quantity", "POST", "/v1/tenants/contoso/subscriptions", `{"id":"s9","skuId":"SPB","quantity":1.5}`, 400, "invalid_request"},
		{"too many users", "POST", "/v1/tenants/contoso/licenses/SPB/assign", `{"users":["a1","a2","a3","a4","a5","a6","a7","a8","a9","a10","a11","a12","a13","a14","a15","a16","a17","a18","a19","a20","a21"]}`, 400, "too_many_users"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.version("contoso")
			got := e.do(req{Method: c.method, Path: c.path, Token: adm, Body: c.body})
			if got.Code < 400 || got.Code >= 500 {
				t.Fatalf("status %d: %.300s", got.Code, got.Body)
			}
			if got.Code != c.status || got.JSON(t)["code"] != c.code {
				t.Errorf("answered %d %v (table says %d %s): %.200s", got.Code, got.JSON(t)["code"], c.status, c.code, got.Body)
			}
			if v := e.version("contoso"); v != before {
				t.Fatalf("a refused request wrote: version %d -> %d", before, v)
			}
		})
	}
}

// TestLogsHoldNoSecrets: the request logs of a server that answered good
// and bad tokens, failures and the operator never contain the JWT secret,
// the operator token or any bearer token.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *api.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.createTenant("contoso")
	adm := token(t, "contoso", "admin")
	bad := badTokens(t)
	e.do(req{Method: "POST", Path: "/v1/tenants/contoso/subscriptions", Token: adm, Body: `{"id":"s1","skuId":"SPB","quantity":1}`})
	e.do(req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: adm, Body: `{"users":["nobody"]}`})
	e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: adm, Body: `{"id":`})
	e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: testOperator})
	e.do(req{Method: "GET", Path: "/v1/tenants/other/events", Token: adm})
	for _, tk := range bad {
		e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: tk})
	}
	out := logs.String()
	if !strings.Contains(out, "http request") {
		t.Fatalf("no request logs captured: %q", out)
	}
	secrets := map[string]string{"JWT secret": string(testSecret), "operator token": testOperator, "admin token": adm}
	for name, tk := range bad {
		secrets[name+" token"] = tk
	}
	for name, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the logs contain the %s", name)
		}
		// A token's signature alone is a secret too.
		if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i > 10 && strings.Contains(out, s[i+1:]) {
			t.Errorf("the logs contain the signature of the %s", name)
		}
	}
}

// TestRequestLogLine: each request is logged once with its request id,
// method, route, status, tenant and latency in milliseconds; a failing request's own line carries
// the same id once.
func TestRequestLogLine(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *api.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.createTenant("contoso")
	logs.Reset()
	e.do(req{Method: "POST", Path: "/v1/tenants/contoso/subscriptions", Token: token(t, "contoso", "admin"),
		Body: `{"id":"s1","skuId":"SPB","quantity":1}`, Header: map[string]string{api.HeaderRequestID: "req-42"}})
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one log line per request, got %d: %q", len(lines), logs.String())
	}
	for _, want := range []string{`msg="http request"`, "request_id=req-42", "method=POST",
		"route=/v1/tenants/:t/subscriptions", "status=201", "tenant=contoso"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line lacks %s: %s", want, lines[0])
		}
	}
	if n := strings.Count(lines[0], "request_id="); n != 1 {
		t.Errorf("request_id appears %d times: %s", n, lines[0])
	}
	m := regexp.MustCompile(`(?:^| )latency_ms=(\S+)`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("log line lacks latency_ms: %s", lines[0])
	}
	if ms, err := strconv.ParseFloat(m[1], 64); err != nil || ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) {
		t.Errorf("latency_ms=%s is not a number >= 0 (%v)", m[1], err)
	}
}

// TestFailedRequestLogLines: a request that fails with a 5xx logs why (the
// handler's line and WriteProblem's) and the request line, each with the
// request id once.
func TestFailedRequestLogLines(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *api.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Ready = func(context.Context) error { return errors.New("disk on fire") }
	})
	r := e.do(req{Method: "GET", Path: "/readyz", Header: map[string]string{api.HeaderRequestID: "req-43"}})
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz: %d, want 503", r.Code)
	}
	for _, msg := range []string{`msg="not ready"`, `msg="request failed"`, `msg="http request"`} {
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, msg) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("no %s line in %q", msg, logs.String())
			continue
		}
		if n := strings.Count(line, "request_id=req-43"); n != 1 || strings.Count(line, "request_id=") != 1 {
			t.Errorf("%s: want request_id=req-43 exactly once: %s", msg, line)
		}
	}
}
