package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/api/apitest"
	"github.com/seatledger/seatledger/tenantstream"
)

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
	must := func(path, token, body string) {
		t.Helper()
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
	}
	for _, tenant := range []string{apitest.TenantA, apitest.TenantB} {
		must("/v1/tenants", cfg.OperatorToken, `{"id":"`+tenant+`","name":"T","globalAdmin":{"id":"admin","userPrincipalName":"admin@t.example","usageLocation":"US"}}`)
	}
	must("/v1/tenants/"+apitest.TenantB+"/subscriptions", tok(apitest.TenantB), `{"id":"s1","skuId":"SPB","quantity":5}`)
	apitest.CheckTenantIsolation(t, a.handler, a.handler.Routes(), tok, func() uint64 {
		v, err := a.deps.Store.StreamVersion(context.Background(), tenantstream.Name(apitest.TenantB))
		if err != nil {
			t.Fatal(err)
		}
		return v
	})
}
