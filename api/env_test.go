package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/history"
	"github.com/seatledger/seatledger/tenantstream"
)

const (
	testOperator = "operator-token-for-tests"
)

var testSecret = []byte("test-secret-0123456789abcdef0123456789")

// env is a server over a real embedded store in a temporary directory.
type env struct {
	t      *testing.T
	store  *embedded.Store
	cmds   *commands.Handler
	srv    *api.Server
	offset atomic.Int64 // added to the command clock (restore window tests)
}

type envOption func(*api.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOver(t, nil, opts...)
}

// newEnvOver is newEnv with the command side appending through
// wrap(store) (nil: the store itself); e.store, and so e.events and
// e.version, still read the store underneath.
func newEnvOver(t *testing.T, wrap func(eventstore.Store) eventstore.Store, opts ...envOption) *env {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler), CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st}
	var writes eventstore.Store = st
	if wrap != nil {
		writes = wrap(st)
	}
	decider := domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	reg := prometheus.NewRegistry()
	metrics := api.NewMetrics(reg)
	e.cmds = commands.New(commands.Config{
		Store: writes, Snapshots: st, Decider: decider, Observer: metrics,
		Clock: func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) },
	})
	cfg := api.Config{
		Commands: e.cmds, Decider: decider, JWTSecret: testSecret, OperatorToken: testOperator,
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics, Gatherer: reg,
		Ready:   func(ctx context.Context) error { return st.Ping(ctx) },
		History: &history.Service{Store: st, Snapshots: st, Catalog: decider.Catalog},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv = api.New(cfg)
	t.Cleanup(func() {
		e.cmds.Close()
		_ = st.Close()
	})
	return e
}

// token signs a token of user in tenant valid for an hour.
func token(t testing.TB, tenant, user string) string {
	t.Helper()
	tok, err := api.NewToken(testSecret, tenant, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r resp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// answer decodes a command answer.
func (r resp) answer(t testing.TB) api.CommandAnswer {
	t.Helper()
	var a api.CommandAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("not a command answer: %v: %s", err, r.Body)
	}
	return a
}

// req is a request to send; Body may be a string (sent as is), nil or any
// value (sent as JSON).
type req struct {
	Method, Path, Token string
	Body                any
	Header              map[string]string
}

func (e *env) do(r req) resp {
	e.t.Helper()
	return serve(e.t, e.srv, r)
}

func serve(t testing.TB, h http.Handler, r req) resp {
	t.Helper()
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr := httptest.NewRequest(r.Method, r.Path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return resp{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
}

// must sends r and fails the test unless the status is want.
func (e *env) must(want int, r req) resp {
	e.t.Helper()
	got := e.do(r)
	if got.Code != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", r.Method, r.Path, got.Code, want, got.Body)
	}
	return got
}

// problem checks that r is a problem+json answer with status and code, and
// returns its body.
func problem(t testing.TB, r resp, status int, code string) map[string]any {
	t.Helper()
	if r.Code != status {
		t.Fatalf("status %d, want %d (%s): %s", r.Code, status, code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Fatalf("Content-Type %q, want %q", ct, api.ProblemContentType)
	}
	m := r.JSON(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %s: %s", m["code"], code, r.Body)
	}
	if int(m["status"].(float64)) != status {
		t.Fatalf("status member %v, want %d", m["status"], status)
	}
	for _, k := range []string{"type", "title", "detail"} {
		if s, _ := m[k].(string); s == "" {
			t.Fatalf("problem without %q: %s", k, r.Body)
		}
	}
	return m
}

// createTenant opens tenant with Global admin "admin" (usage location US).
func (e *env) createTenant(tenant string) {
	e.t.Helper()
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants", Token: testOperator, Body: map[string]any{
		"id": tenant, "name": tenant + " Ltd",
		"globalAdmin": map[string]any{"id": "admin", "userPrincipalName": "admin@" + tenant + ".example", "displayName": "Admin", "usageLocation": "US"},
	}})
}

func (e *env) addUser(tenant, admin, id, usageLocation, userType string) {
	e.t.Helper()
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/" + tenant + "/users", Token: token(e.t, tenant, admin), Body: map[string]any{
		"id": id, "userPrincipalName": id + "@" + tenant + ".example", "usageLocation": usageLocation, "userType": userType,
	}})
}

func (e *env) buy(tenant, admin, id, sku string, quantity int) {
	e.t.Helper()
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/" + tenant + "/subscriptions", Token: token(e.t, tenant, admin), Body: map[string]any{
		"id": id, "skuId": sku, "quantity": quantity,
	}})
}

// events reads a tenant's stream.
func (e *env) events(tenant string) []domain.Event {
	e.t.Helper()
	recs, err := e.store.ReadStream(context.Background(), tenantstream.Name(tenant), 1, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]domain.Event, len(recs))
	for i, r := range recs {
		ev, err := domain.DecodeEvent(r.Data, nil)
		if err != nil {
			e.t.Fatal(err)
		}
		out[i] = ev
	}
	return out
}

func (e *env) version(tenant string) uint64 {
	e.t.Helper()
	v, err := e.store.StreamVersion(context.Background(), tenantstream.Name(tenant))
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func countType(events []domain.Event, typ string) int {
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}
