// Package apitest holds checks of the HTTP API that run against any router
// built from it: the api package's test router and the one serve builds,
// with every route its hooks add.
package apitest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TenantPrefix begins every tenant-scoped route.
const TenantPrefix = "/v1/tenants/:t"

// MinTenantRoutes is how many tenant-scoped routes the API has at least: a
// router with fewer was not built with all of them.
const MinTenantRoutes = 26

// TenantRoutes returns the tenant-scoped routes of routes, failing t if
// there are fewer than MinTenantRoutes.
func TenantRoutes(t testing.TB, routes gin.RoutesInfo) gin.RoutesInfo {
	t.Helper()
	var out gin.RoutesInfo
	for _, r := range routes {
		if strings.HasPrefix(r.Path, TenantPrefix) {
			out = append(out, r)
		}
	}
	if len(out) < MinTenantRoutes {
		t.Fatalf("only %d tenant routes, want at least %d", len(out), MinTenantRoutes)
	}
	return out
}

// PathFor fills a route's parameters: the tenant, the SKU SPB, and the
// valid id x1 elsewhere.
func PathFor(route, tenant string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		switch {
		case p == ":t":
			parts[i] = tenant
		case p == ":sku":
			parts[i] = "SPB"
		case strings.HasPrefix(p, ":"), strings.HasPrefix(p, "*"):
			parts[i] = "x1"
		}
	}
	return strings.Join(parts, "/")
}

// The tenants of CheckTenantIsolation: the caller creates TenantA and
// TenantB (with an admin user each); MissingTenant does not exist.
const (
	TenantA       = "tenanta"
	TenantB       = "tenantb"
	MissingTenant = "tenantz"
)

// CheckTenantIsolation checks that a token of TenantA gets, on every
// tenant-scoped route of h, with TenantB in the path, exactly the answer of
// a tenant that does not exist (the same status and problem, the tenant's
// name aside), and that TenantB's stream version does not change. token
// mints a token of the admin user of a tenant; version reads TenantB's
// stream version.
func CheckTenantIsolation(t *testing.T, h http.Handler, routes gin.RoutesInfo, token func(tenant string) string, version func() uint64) {
	t.Helper()
	do := func(method, path, tok, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var p map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		delete(p, "requestId")
		return w.Code, p
	}
	before := version()
	code, missing := do("DELETE", "/v1/tenants/"+MissingTenant+"/users/x1", token(MissingTenant), "")
	if code != http.StatusNotFound || missing["code"] != "not_found" {
		t.Fatalf("a missing tenant answers %d %v, want 404 not_found", code, missing)
	}
	tokA := token(TenantA)
	for _, r := range TenantRoutes(t, routes) {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			code, got := do(r.Method, PathFor(r.Path, TenantB), tokA, `{"users":["admin"]}`)
			if d, ok := got["detail"].(string); ok {
				got["detail"] = strings.ReplaceAll(d, TenantB, MissingTenant)
			}
			if code != http.StatusNotFound || !reflect.DeepEqual(got, missing) {
				t.Errorf("a token of another tenant: %d %v; a missing tenant: 404 %v", code, got, missing)
			}
		})
	}
	if after := version(); after != before {
		t.Fatalf("tenant %s changed from version %d to %d", TenantB, before, after)
	}
}
