package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/commands"
)

// routeParam is a path parameter of a gin route (:u, *rest).
var routeParam = regexp.MustCompile(`[:*][A-Za-z]+`)

// TestServeTenantIsolation: on the router serve builds — with every route
// its hooks add, which api's own isolation test does not see — a token of
// tenant A gets, on every /v1/tenants/:t route of tenant B, exactly the
// answer of a tenant that does not exist, and B does not change.
func TestServeTenantIsolation(t *testing.T) {
	cfg := testServeConfig(t.TempDir())
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.close() })
	cfg = a.deps.Config
	tok := func(tenant string) string {
		s, err := api.NewToken([]byte(cfg.JWTSecret), tenant, "admin", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	do := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, r)
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		delete(m, "requestId")
		return w.Code, m
	}
	for _, tenant := range []string{"tenanta", "tenantb"} {
		if code, m := do("POST", "/v1/tenants", cfg.OperatorToken, `{"id":"`+tenant+`","name":"T","globalAdmin":{"id":"admin","userPrincipalName":"admin@t.example","usageLocation":"US"}}`); code != http.StatusCreated {
			t.Fatalf("create %s: %d %v", tenant, code, m)
		}
	}
	if code, m := do("POST", "/v1/tenants/tenantb/subscriptions", tok("tenantb"), `{"id":"s1","skuId":"SPB","quantity":5}`); code != http.StatusCreated {
		t.Fatalf("buy: %d %v", code, m)
	}
	version := func() uint64 {
		v, err := a.deps.Store.StreamVersion(context.Background(), commands.StreamName("tenantb"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	// What a tenant that does not exist answers (from the domain).
	_, missing := do("DELETE", "/v1/tenants/tenantz/users/x1", tok("tenantz"), "")
	if missing["code"] != "not_found" {
		t.Fatalf("a missing tenant answers %v", missing)
	}
	n := 0
	for _, r := range a.handler.Routes() {
		if !strings.HasPrefix(r.Path, "/v1/tenants/:t") {
			continue
		}
		n++
		path := routeParam.ReplaceAllStringFunc(r.Path, func(p string) string {
			switch p {
			case ":t":
				return "tenantb"
			case ":sku":
				return "SPB"
			}
			return "x1"
		})
		code, got := do(r.Method, path, tok("tenanta"), `{"users":["admin"]}`)
		if d, ok := got["detail"].(string); ok {
			got["detail"] = strings.ReplaceAll(d, "tenantb", "tenantz")
		}
		if code != http.StatusNotFound || !reflect.DeepEqual(got, missing) {
			t.Errorf("%s %s with a token of another tenant: %d %v; a missing tenant: 404 %v", r.Method, r.Path, code, got, missing)
		}
	}
	if n < 26 {
		t.Fatalf("serve's router has only %d tenant routes", n)
	}
	if after := version(); after != before {
		t.Fatalf("tenant B changed from version %d to %d", before, after)
	}
}
