package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
)

func withRateLimit(rl api.RateLimit) envOption {
	return func(c *api.Config) { c.RateLimit = rl }
}

// TestRateLimitPerToken: a token's burst passes, the next request gets 429
// rate_limited with Retry-After and writes nothing; another user's token and
// the operator are not affected; the budget comes back with time.
func TestRateLimitPerToken(t *testing.T) {
	e := newEnv(t, withRateLimit(api.RateLimit{PerSecond: 2, Burst: 3}))
	e.createTenant("contoso")
	e.createTenant("fabrikam")
	admin := token(t, "contoso", "admin")
	for i := range 3 {
		e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin,
			Body: map[string]any{"id": "u" + strconv.Itoa(i), "userPrincipalName": "u" + strconv.Itoa(i) + "@contoso.example"}})
	}
	before := e.version("contoso")
	got := e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin,
		Body: map[string]any{"id": "u9", "userPrincipalName": "u9@contoso.example"}})
	problem(t, got, http.StatusTooManyRequests, "rate_limited")
	ra, err := strconv.Atoi(got.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", got.Header.Get("Retry-After"))
	}
	if v := e.version("contoso"); v != before {
		t.Fatalf("a limited request wrote: version %d -> %d", before, v)
	}
	// Queries share the budget.
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: admin}), http.StatusTooManyRequests, "rate_limited")
	// Another tenant's admin has its own budget; so does the operator
	// (never limited by default).
	e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/fabrikam/events", Token: token(t, "fabrikam", "admin")})
	for range 10 {
		e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: testOperator})
	}
	// Requests without a valid token are refused before the limiter.
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events"}), http.StatusUnauthorized, "unauthenticated")
	time.Sleep(600 * time.Millisecond) // 2/s: one request back
	e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: admin})
}

func TestRateLimitOperatorWhenAsked(t *testing.T) {
	e := newEnv(t, withRateLimit(api.RateLimit{PerSecond: 1, Burst: 1, Operator: true}))
	e.createTenant("contoso")
	got := e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: testOperator})
	problem(t, got, http.StatusTooManyRequests, "rate_limited")
}

func TestRateLimitOffByDefault(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	for range 50 {
		e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: admin})
	}
}
