package api_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/api/apitest"
	"github.com/seatledger/seatledger/queries"
)

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
		c.Queries = q
	}
}

func TestAuthRefusesBadTokensOnEveryTenantRoute(t *testing.T) {
	e := newEnv(t, withReadSide(t))
	e.createTenant("contoso")
	bad := badTokens(t)
	for _, r := range apitest.TenantRoutes(t, e.srv.Routes()) {
		path := apitest.PathFor(r.Path, "contoso")
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
	e.createTenant(apitest.TenantA)
	e.createTenant(apitest.TenantB)
	e.buy(apitest.TenantB, "admin", "s1", "SPB", 5)
	apitest.CheckTenantIsolation(t, e.srv, e.srv.Routes(),
		func(tenant string) string { return token(t, tenant, "admin") },
		func() uint64 { return e.version(apitest.TenantB) })
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
