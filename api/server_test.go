package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/history"
	"github.com/seatledger/seatledger/tenantstream"
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

// TestReadSideRoutesShareTheMiddleware: the read side's routes (history's,
// the operator's read-model routes) get auth, tenant isolation and error
// mapping; a panic is a 500 problem.
func TestReadSideRoutesShareTheMiddleware(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.History = &history.Service{Store: panicFor{Store: c.History.Store, tenant: "boom"}, Catalog: c.History.Catalog}
		c.ReadModels = noReadModels{}
	})
	e.createTenant("contoso")
	e.createTenant("boom")
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: token(t, "contoso", "admin")})
	if !strings.Contains(string(r.Body), `"tenantId":"contoso"`) {
		t.Fatalf("events %s", r.Body)
	}
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events", Token: token(t, "other", "admin")}), http.StatusNotFound, "not_found")
	problem(t, e.do(req{Method: "GET", Path: "/v1/tenants/contoso/events"}), http.StatusUnauthorized, "unauthenticated")
	r = e.do(req{Method: "GET", Path: "/v1/tenants/boom/events", Token: token(t, "boom", "admin")})
	problem(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(string(r.Body), "secret internals") {
		t.Fatal("a panic leaked into the answer")
	}
	e.must(http.StatusOK, req{Method: "GET", Path: "/v1/projections", Token: testOperator})
	problem(t, e.do(req{Method: "GET", Path: "/v1/projections", Token: token(t, "contoso", "admin")}), http.StatusForbidden, "not_allowed_for_role")
}

// panicFor is a store that panics on reading tenant's stream version.
type panicFor struct {
	eventstore.Store
	tenant string
}

func (p panicFor) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if stream == tenantstream.Name(p.tenant) {
		panic("secret internals")
	}
	return p.Store.StreamVersion(ctx, stream)
}

// noReadModels has read models with no projection, which cannot be rebuilt
// or verified.
type noReadModels struct{}

func (noReadModels) Status() any { return []string{} }
func (noReadModels) Rebuild(context.Context, string, func(any)) (any, error) {
	return nil, errors.New("no read models")
}
func (noReadModels) Verify(context.Context, func(any)) (any, error) {
	return nil, errors.New("no read models")
}

// TestRebuildAnswers: POST /v1/projections/rebuild answers the result as
// JSON, or streams the steps and the result as NDJSON lines when asked; a
// rebuild refused because another runs is 409 replay_running saying why; a
// bad tenant is 400 naming it.
func TestRebuildAnswers(t *testing.T) {
	running := errors.New("projections: a replay is already running (building sl:r1:)")
	rm := &scriptedReadModels{steps: []any{"load", "catch-up"}, result: map[string]int{"events": 7}}
	e := newEnv(t, func(c *api.Config) { c.ReadModels = rm })
	r := e.must(http.StatusOK, req{Method: "POST", Path: "/v1/projections/rebuild?tenant=contoso", Token: testOperator})
	if string(r.Body) != `{"events":7}`+"\n" || rm.tenant != "contoso" {
		t.Fatalf("rebuild: %s (tenant %q)", r.Body, rm.tenant)
	}
	r = e.must(http.StatusOK, req{Method: "POST", Path: "/v1/projections/rebuild", Token: testOperator,
		Header: map[string]string{"Accept": "application/x-ndjson"}})
	want := `{"progress":"load"}` + "\n" + `{"progress":"catch-up"}` + "\n" + `{"result":{"events":7}}` + "\n"
	if r.Header.Get("Content-Type") != "application/x-ndjson" || string(r.Body) != want || rm.tenant != "" {
		t.Fatalf("streamed rebuild: %q %s (tenant %q)", r.Header.Get("Content-Type"), r.Body, rm.tenant)
	}
	rm.err = api.RebuildRunning(running)
	p := problem(t, e.do(req{Method: "POST", Path: "/v1/projections/rebuild", Token: testOperator}), http.StatusConflict, "replay_running")
	if d, _ := p["detail"].(string); !strings.HasPrefix(d, running.Error()+"; ") {
		t.Fatalf("detail %q", d)
	}
	rm.err = errors.New("redis: connection refused")
	problem(t, e.do(req{Method: "POST", Path: "/v1/projections/rebuild", Token: testOperator}), http.StatusInternalServerError, "internal")
	p = problem(t, e.do(req{Method: "POST", Path: "/v1/projections/rebuild?tenant=a%20b", Token: testOperator}), http.StatusBadRequest, "invalid_request")
	if p["field"] != "tenant" {
		t.Fatalf("field %v", p["field"])
	}
}

// scriptedReadModels rebuilds by reporting steps, then result or err.
type scriptedReadModels struct {
	noReadModels
	steps  []any
	result any
	err    error
	tenant string // of the last rebuild
}

func (s *scriptedReadModels) Rebuild(_ context.Context, tenant string, progress func(any)) (any, error) {
	s.tenant = tenant
	for _, step := range s.steps {
		progress(step)
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.result, nil
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
