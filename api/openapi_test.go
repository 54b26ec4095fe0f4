package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/queries"
)

// The contract tests: api/openapi.yaml (served at /openapi.json) against
// the router, the answers of every test's requests, and docs/API.md.

type contract struct {
	doc    *openapi3.T
	router routers.Router
	err    error
}

var loadContract = sync.OnceValue(func() contract {
	// The streamed answers of rebuild and verify: lines of JSON, checked
	// by their own tests; here only their content type.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPIDocument())
	if err != nil {
		return contract{err: fmt.Errorf("api/openapi.yaml does not load: %w", err)}
	}
	if err := doc.Validate(context.Background()); err != nil {
		return contract{err: fmt.Errorf("api/openapi.yaml is not a valid OpenAPI document: %w", err)}
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return contract{err: fmt.Errorf("api/openapi.yaml: %w", err)}
	}
	return contract{doc: doc, router: r}
})

func openAPI(t testing.TB) contract {
	t.Helper()
	c := loadContract()
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c
}

// checkContract validates one exchange of serve against the document: the
// answer always (status, content type, body, declared headers), the
// request when the server accepted it (2xx), since a request the server
// takes must be one the document allows. Requests to paths or methods the
// document has no operation for (404/405 of the router, HEAD) are left to
// TestOpenAPICoversRoutes.
func checkContract(t testing.TB, hr *http.Request, reqBody []byte, code int, header http.Header, body []byte) {
	t.Helper()
	c := openAPI(t)
	route, params, err := c.router.FindRoute(hr)
	if err != nil {
		return
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request: hr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	what := hr.Method + " " + hr.URL.RequestURI()
	if code/100 == 2 && hr.Header.Get("Content-Encoding") == "" {
		hr.Body = io.NopCloser(bytes.NewReader(reqBody))
		if rb := route.Operation.RequestBody; len(reqBody) > 0 && rb != nil && rb.Value != nil &&
			rb.Value.Content.Get(hr.Header.Get("Content-Type")) == nil && rb.Value.Content.Get("application/json") != nil {
			// The server reads a JSON body whatever its Content-Type
			// (curl -d sends a form's): validate it as the server read it.
			hr.Header.Set("Content-Type", "application/json")
		}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("contract: %s was accepted (%d) but api/openapi.yaml (%s %s) does not allow the request: %v\nrequest body: %s",
				what, code, route.Method, route.Path, err, clip(reqBody))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: code, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: in.Options,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("contract: the answer %d of %s is not what api/openapi.yaml (%s %s) says: %v\nanswer: %s",
			code, what, route.Method, route.Path, err, clip(body))
	}
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// allRoutesServer is a server with every optional service configured, so
// that its router has every route of api/routes.go.
func allRoutesServer(t *testing.T) *api.Server {
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()}) // only the routes are read
	t.Cleanup(func() { _ = rdb.Close() })
	e := newEnv(t, func(c *api.Config) {
		c.Queries = queries.New(queries.Config{Redis: rdb})
		c.ReadModels = noReadModels{}
		c.Console = func(http.Handler) http.Handler { return http.NotFoundHandler() }
	})
	return e.srv
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPICoversRoutes fails when a route of the router is not an
// operation of api/openapi.yaml or an operation names no route, naming
// each one.
func TestOpenAPICoversRoutes(t *testing.T) {
	c := openAPI(t)
	served := map[string]bool{}
	for _, r := range allRoutesServer(t).Routes() {
		if isConsoleRoute(r.Path) {
			continue
		}
		served[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, r := range sortedKeys(served) {
		if !documented[r] {
			method, path, _ := strings.Cut(r, " ")
			t.Errorf("route %s is served (api/routes.go) but not in api/openapi.yaml: add paths.%q.%s", r, path, strings.ToLower(method))
		}
	}
	for _, r := range sortedKeys(documented) {
		if !served[r] {
			t.Errorf("api/openapi.yaml has %s, which the router does not serve (api/routes.go)", r)
		}
	}
	if len(served) < 40 {
		t.Fatalf("only %d routes: the server was not built with every service", len(served))
	}
}

// isConsoleRoute reports a route of the web console (api/console): HTML
// pages, not the JSON API that api/openapi.yaml documents.
func isConsoleRoute(path string) bool {
	return path == "/" || strings.HasPrefix(path, "/console/")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIServed: GET /openapi.json needs no token, is the document,
// and is revalidated with its ETag.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	got := e.must(http.StatusOK, req{Method: "GET", Path: "/openapi.json"})
	if ct := got.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !bytes.Equal(got.Body, api.OpenAPIDocument()) {
		t.Fatal("the body is not the document")
	}
	doc, err := openapi3.NewLoader().LoadFromData(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	etag := got.Header.Get("ETag")
	if etag == "" || got.Header.Get("Cache-Control") == "" {
		t.Fatalf("no ETag or Cache-Control: %v", got.Header)
	}
	again := e.must(http.StatusNotModified, req{Method: "GET", Path: "/openapi.json", Header: map[string]string{"If-None-Match": `"other", ` + etag}})
	if len(again.Body) != 0 || again.Header.Get("ETag") != etag {
		t.Fatalf("304 with a body or without the ETag: %v %q", again.Header, again.Body)
	}
	e.must(http.StatusOK, req{Method: "GET", Path: "/openapi.json", Header: map[string]string{"If-None-Match": `"other"`}})
	problem(t, e.do(req{Method: "GET", Path: "/openapi.json?x=1"}), http.StatusBadRequest, "invalid_request")
}

// apiMDRoute is a method and path as docs/API.md writes it ("GET
// /v1/tenants/{t}/users"); "GET /healthz, /readyz, /metrics" is three.
var apiMDRoute = regexp.MustCompile("(GET|POST|PUT|PATCH|DELETE)\\s+(/[^\\s|`?,)]*)((?:,\\s*/[^\\s|`?,)]*)*)")

var apiMDPath = regexp.MustCompile(`^(/v1(\.0)?(/.*)?|/[^/]+)$`)

// apiMDCode is a problem code with its status as docs/API.md writes it:
// "`code` (409" or "`409 code`".
var apiMDCode = regexp.MustCompile("`([a-z]+(?:_[a-z]+)*)`\\s+\\(([0-9]{3})|`([0-9]{3}) ([a-z]+(?:_[a-z]+)*)`")

// TestAPIDocAgreesWithOpenAPI: every route docs/API.md names is an
// operation of the document and every operation (but Graph's, which
// docs/GRAPH.md describes) is named in docs/API.md; every problem code
// of API.md is in the Problem schema's enum and every code of the enum
// is in API.md.
func TestAPIDocAgreesWithOpenAPI(t *testing.T) {
	c := openAPI(t)
	md, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	named := map[string]bool{}
	for _, m := range apiMDRoute.FindAllStringSubmatch(string(md), -1) {
		for _, p := range append([]string{m[2]}, strings.Split(m[3], ",")...) {
			// A whole path: under /v1 or /v1.0, or one segment
			// (/healthz); "GET /groups/{g}" and "POST /users" (a tenant's
			// route) are shorthands in prose.
			if p = strings.TrimSpace(p); apiMDPath.MatchString(p) && !documented[m[1]+" /v1/tenants/{t}"+p] {
				named[m[1]+" "+p] = true
			}
		}
	}
	for _, r := range sortedKeys(named) {
		if !documented[r] {
			t.Errorf("docs/API.md names %s, which api/openapi.yaml does not have", r)
		}
	}
	for _, r := range sortedKeys(documented) {
		if !named[r] && !strings.Contains(r, " /v1.0/") {
			t.Errorf("api/openapi.yaml has %s, which docs/API.md does not name", r)
		}
	}

	enum := map[string]bool{}
	for _, v := range c.doc.Components.Schemas["ProblemCode"].Value.Enum {
		enum[v.(string)] = true
	}
	inMD := map[string]bool{}
	for _, m := range apiMDCode.FindAllStringSubmatch(string(md), -1) {
		inMD[m[1]+m[4]] = true
	}
	for _, code := range sortedKeys(inMD) {
		if !enum[code] {
			t.Errorf("docs/API.md has problem code %s, which api/openapi.yaml's ProblemCode does not", code)
		}
	}
	for _, code := range sortedKeys(enum) {
		if !inMD[code] {
			t.Errorf("api/openapi.yaml's ProblemCode has %s, which docs/API.md does not list as `%s` (status)", code, code)
		}
	}
}

// TestContractCheckCatchesDrift shows checkContract fails an answer the
// document does not allow (a list row without its required members, a
// problem without code), so that a passing suite means something.
func TestContractCheckCatchesDrift(t *testing.T) {
	cases := []struct {
		method, path string
		code         int
		ct, body     string
	}{
		{"GET", "/v1/catalog", 200, "application/json", `[{"skuId":"x"}]`},
		{"GET", "/v1/catalog", 404, "application/problem+json", `{"type":"t","title":"t","status":404,"detail":"d"}`},
		{"GET", "/v1/catalog", 404, "application/problem+json", `{"type":"t","title":"t","status":404,"detail":"d","code":"no_such_code"}`},
		{"POST", "/v1/tenants/c/users", 201, "text/plain", `ok`},
		{"GET", "/healthz", 200, "application/json", `{"status":"fine"}`},
		{"GET", "/v1/catalog", 200, "application/json", `[{"skuId":"x","skuPartNumber":"X","displayName":"X","servicePlans":[],"undocumented":1}]`},
		{"GET", "/v1.0/users", 200, "application/json", `{"value":[{"id":"a","undocumented":1}]}`},
	}
	for _, tc := range cases {
		rec := &recordingTB{TB: t}
		hr := httptest.NewRequest(tc.method, tc.path, nil)
		checkContract(rec, hr, nil, tc.code, http.Header{"Content-Type": {tc.ct}}, []byte(tc.body))
		if len(rec.errs) == 0 {
			t.Errorf("%s %s answering %d %s passed the contract check", tc.method, tc.path, tc.code, tc.body)
		}
	}
	// And a request the document does not allow, accepted by the server.
	rec := &recordingTB{TB: t}
	hr := httptest.NewRequest("POST", "/v1/tenants/c/groups", nil)
	hr.Header.Set("Content-Type", "application/json")
	checkContract(rec, hr, []byte(`{"id":"g1"}`), 201, http.Header{"Content-Type": {"application/json"}}, []byte(`{"version":2,"events":[]}`))
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "displayName") {
		t.Errorf("a group without displayName passed: %q", rec.errs)
	}
}

// recordingTB records Errorf instead of failing.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Helper() {}
