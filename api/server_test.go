package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
)

func TestCatalog(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/catalog"})
	var rows []api.CatalogProduct
	if err := json.Unmarshal(r.Body, &rows); err != nil {
		t.Fatal(err)
	}
	cat := domain.DefaultCatalog()
	if len(rows) != len(cat.Products) || len(rows) == 0 {
		t.Fatalf("%d rows, catalog has %d", len(rows), len(cat.Products))
	}
	spb, _ := cat.Lookup("SPB")
	found := false
	for _, row := range rows {
		if row.SkuPartNumber == "SPB" {
			found = row.SkuID == spb.SkuID && len(row.ServicePlans) == len(spb.ServicePlans) && row.ServicePlans[0].ServicePlanName != ""
		}
	}
	if !found {
		t.Fatalf("SPB missing or wrong: %s", r.Body)
	}
	if !strings.Contains(string(r.Body), `"servicePlanId"`) {
		t.Fatal("no servicePlanId member")
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	var notReady error
	e := newEnv(t, func(c *api.Config) {
		ready := c.Ready
		c.Ready = func(ctx context.Context) error {
			if notReady != nil {
				return notReady
			}
			return ready(ctx)
		}
	})
	e.must(http.StatusOK, req{Method: "GET", Path: "/healthz"})
	e.must(http.StatusOK, req{Method: "GET", Path: "/readyz"})
	notReady = errors.New("redis: connection refused")
	r := e.do(req{Method: "GET", Path: "/readyz"})
	problem(t, r, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	notReady = nil

	e.createTenant("contoso")
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/metrics"})
	body := string(r.Body)
	for _, want := range []string{
		`seatledger_http_request_duration_seconds_count{method="POST",route="/v1/tenants",status="201"} 1`,
		`seatledger_commands_total{command="CreateTenant",outcome="ok"} 1`,
		`seatledger_eventstore_append_duration_seconds_count{outcome="ok"} 1`,
		`seatledger_eventstore_appended_events_total 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestRequestIDAndNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{Method: "GET", Path: "/nope", Header: map[string]string{"X-Request-Id": "abc-123"}})
	p := problem(t, r, http.StatusNotFound, "not_found")
	if r.Header.Get("X-Request-Id") != "abc-123" || p["requestId"] != "abc-123" {
		t.Fatalf("request id not echoed: %q %v", r.Header.Get("X-Request-Id"), p["requestId"])
	}
	r = e.do(req{Method: "GET", Path: "/healthz"})
	if len(r.Header.Get("X-Request-Id")) < 8 {
		t.Fatal("no generated request id")
	}
	r = e.do(req{Method: "DELETE", Path: "/v1/catalog"})
	problem(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if !strings.Contains(r.Header.Get("Allow"), "GET") {
		t.Fatalf("Allow %q", r.Header.Get("Allow"))
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants"}), http.StatusMethodNotAllowed, "method_not_allowed")
	problem(t, e.do(req{Method: "POST", Path: "/v1/tenants/contoso/nothing", Token: testOperator}), http.StatusNotFound, "not_found")
}

// TestExtensionRoutes: read-side routes plugged in through Config.Routes
// get auth, tenant isolation and error mapping; a panic is a 500 problem.
func TestExtensionRoutes(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.Routes = append(c.Routes, func(g api.RouteGroups) {
			g.Tenant.GET("/echo", func(c *gin.Context) {
				api.WriteJSON(c, http.StatusOK, gin.H{"tenant": api.TenantOf(c), "actor": api.ActorOf(c).String()})
			})
			g.Tenant.GET("/boom", func(c *gin.Context) { panic("secret internals") })
			g.Operator.GET("/projections", func(c *gin.Context) { api.WriteJSON(c, http.StatusOK, []string{}) })
		})
	})
	e.createTenant("contoso")
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/echo", Token: token(t, "contoso", "admin")})
	if !strings.Contains(string(r.Body), `"actor":"admin"`) {
		t.Fatalf("echo %s", r.Body)
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/echo", Token: token(t, "other", "admin")}), http.StatusNotFound, "not_found")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/echo"}), http.StatusUnauthorized, "unauthenticated")
	r = e.do(req{Method: "GET", Path: "/v1/tenants/contoso/boom", Token: token(t, "contoso", "admin")})
	problem(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(string(r.Body), "secret internals") {
		t.Fatal("a panic leaked into the answer")
	}
	e.must(http.StatusOK, req{Method: "GET", Path: "/v1/projections", Token: testOperator})
	problem(t, e.do(req{Method: "GET", Path: "/v1/projections", Token: token(t, "contoso", "admin")}), http.StatusForbidden, "not_allowed_for_role")
}

// TestStoreUnavailable: a closed store answers 503 with Retry-After.
func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.do(req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: token(t, "contoso", "admin"), Body: `{"id":"g1","displayName":"G"}`})
	problem(t, r, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	problem(t, e.do(req{Method: "GET", Path: "/readyz"}), http.StatusServiceUnavailable, "unavailable")
}

// TestHealthzFailsWhenTheProcessCannotRecover: /healthz follows Live (a
// store client that can no longer be rebuilt), /readyz follows Ready.
func TestHealthzFailsWhenTheProcessCannotRecover(t *testing.T) {
	var dead atomic.Bool
	e := newEnv(t, func(c *api.Config) {
		c.Live = func() error {
			if dead.Load() {
				return errors.New("event store: client cannot be rebuilt")
			}
			return nil
		}
	})
	e.must(http.StatusOK, req{Method: "GET", Path: "/healthz"})
	dead.Store(true)
	problem(t, e.do(req{Method: "GET", Path: "/healthz"}), http.StatusServiceUnavailable, "unavailable")
	e.must(http.StatusOK, req{Method: "GET", Path: "/readyz"})
}
