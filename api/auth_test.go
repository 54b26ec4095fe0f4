package api_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/queries"
)

// pathFor fills a route's parameters: the tenant and valid ids elsewhere.
func pathFor(route, tenant string) string {
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

func tenantRoutes(t *testing.T, s *api.Server) gin.RoutesInfo {
	var out gin.RoutesInfo
	for _, r := range s.Routes() {
		if strings.HasPrefix(r.Path, "/v1/tenants/:t") {
			out = append(out, r)
		}
	}
	if len(out) < 26 {
		t.Fatalf("only %d tenant routes", len(out))
	}
	return out
}

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// badTokens are tokens of tenant "contoso" that must all be refused.
func badTokens(t *testing.T) map[string]string {
	now := time.Now()
	valid := jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": now.Add(time.Hour).Unix()}
	noneTok := signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)
	// A hand-made alg "none" token with an empty signature.
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	pl := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","tid":"contoso","exp":9999999999}`))
	return map[string]string{
		"expired":         signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "admin", "tid": "contoso", "exp": now.Add(-time.Hour).Unix()}),
		"wrong signature": signed(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret!!"), valid),
		"alg none":        noneTok,
		"alg none manual": hdr + "." + pl + ".",
		"HS512":           signed(t, jwt.SigningMethodHS512, testSecret, valid),
		"no exp":          signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "admin", "tid": "contoso"}),
		"no tid":          signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "admin", "exp": now.Add(time.Hour).Unix()}),
		"garbage":         "not-a-token",
		"wrong operator":  testOperator + "x",
	}
}

// withReadSide mounts the query endpoints (over an in-process Redis) as
// cmd/seatledger does, so the tables below cover them too.
func withReadSide(t *testing.T) envOption {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	q := queries.New(queries.Config{Redis: rdb})
	return func(c *api.Config) {
		c.Routes = append(c.Routes, func(g api.RouteGroups) { q.Mount(g.Readers) })
	}
}

func TestAuthRefusesBadTokensOnEveryTenantRoute(t *testing.T) {
	e := newEnv(t, withReadSide(t))
	e.createTenant("contoso")
	bad := badTokens(t)
	for _, r := range tenantRoutes(t, e.srv) {
		path := pathFor(r.Path, "contoso")
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			got := e.do(req{Method: r.Method, Path: path, Body: "{}"})
			problem(t, got, http.StatusUnauthorized, "unauthenticated")
			if got.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			for name, tok := range bad {
				got := e.do(req{Method: r.Method, Path: path, Token: tok, Body: "{}"})
				if got.Code != http.StatusUnauthorized {
					t.Fatalf("%s token: status %d: %s", name, got.Code, got.Body)
				}
				problem(t, got, http.StatusUnauthorized, "unauthenticated")
				if !strings.HasPrefix(got.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s token: WWW-Authenticate %q", name, got.Header.Get("WWW-Authenticate"))
				}
			}
			basic := e.do(req{Method: r.Method, Path: path, Header: map[string]string{"Authorization": "Basic YWRtaW46YWRtaW4="}})
			problem(t, basic, http.StatusUnauthorized, "unauthenticated")
		})
	}
}

// TestTenantIsolation: a token of tenant A gets, on every path of tenant B,
// exactly the answer of a tenant that does not exist.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, withReadSide(t))
	e.createTenant("tenanta")
	e.createTenant("tenantb")
	e.buy("tenantb", "admin", "s1", "SPB", 5)
	tokA := token(t, "tenanta", "admin")
	before := e.version("tenantb")
	// What a tenant that does not exist answers (from the domain).
	ref := problem(t, e.do(req{Method: "DELETE", Path: "/v1/tenants/tenantz/users/x1", Token: token(t, "tenantz", "admin")}), http.StatusNotFound, "not_found")
	for _, r := range tenantRoutes(t, e.srv) {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			got := e.do(req{Method: r.Method, Path: pathFor(r.Path, "tenantb"), Token: tokA, Body: `{"users":["admin"]}`})
			p := problem(t, got, http.StatusNotFound, "not_found")
			for _, k := range []string{"type", "title", "status", "code", "field", "rule"} {
				if p[k] != ref[k] {
					t.Fatalf("%s: %v, a missing tenant's %v", k, p[k], ref[k])
				}
			}
			if strings.ReplaceAll(p["detail"].(string), "tenantb", "X") != strings.ReplaceAll(ref["detail"].(string), "tenantz", "X") {
				t.Fatalf("isolation answer %q differs from a missing tenant's %q", p["detail"], ref["detail"])
			}
			if len(p) != len(ref) {
				t.Fatalf("members differ: %v vs %v", p, ref)
			}
		})
	}
	if after := e.version("tenantb"); after != before {
		t.Fatalf("tenant B changed from version %d to %d", before, after)
	}
}

func TestCreateTenantIsOperatorOnly(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	body := map[string]any{"id": "fabrikam", "name": "Fabrikam", "globalAdmin": map[string]any{"id": "a", "userPrincipalName": "a@f.example"}}
	problem(t, e.do(req{Method: "POST", Path: "/v1/tenants", Body: body}), http.StatusUnauthorized, "unauthenticated")
	problem(t, e.do(req{Method: "POST", Path: "/v1/tenants", Token: token(t, "contoso", "admin"), Body: body}), http.StatusForbidden, "not_allowed_for_role")
	problem(t, e.do(req{Method: "POST", Path: "/v1/tenants", Token: token(t, "fabrikam", "a"), Body: body}), http.StatusForbidden, "not_allowed_for_role")
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants", Token: testOperator, Body: body})
}

func TestOperatorActsOnAnyTenant(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/contoso/subscriptions", Token: testOperator,
		Body: map[string]any{"id": "s1", "skuId": "SPB", "quantity": 3}})
	evs := e.events("contoso")
	if last := evs[len(evs)-1]; !last.Actor.Operator {
		t.Fatalf("actor %+v, want the operator", last.Actor)
	}
}
