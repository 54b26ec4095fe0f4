package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/history"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/tenantstream"
)

// panicCounter counts the "panic in handler" records the server's recover
// middleware logs: a panic after the answer was written leaves its status
// alone, so the status alone would not show it.
type panicCounter struct{ n atomic.Int64 }

func (p *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.n.Add(1)
	}
	return nil
}
func (p *panicCounter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicCounter) WithGroup(string) slog.Handler      { return p }

// queryFuzzServer is the whole read side in-process: the embedded store, the
// projection into an in-process Redis, the query routes (Readers) and the
// history routes (Auditors), over one seeded tenant.
type queryFuzzServer struct {
	srv    *api.Server
	store  *embedded.Store
	panics *panicCounter
	head   uint64     // contoso's stream version once seeded
	routes []getRoute // every GET route, paths filled in
}

type getRoute struct {
	pattern, path string
	readModel     bool // answered from Redis: honours ?minVersion
}

func newQueryFuzzServer(tb testing.TB) *queryFuzzServer {
	st, err := embedded.Open(tb.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler), CacheSize: 8 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	decider := domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	cmds := commands.New(commands.Config{Store: st, Snapshots: st, Decider: decider})
	// A short ?minVersion wait: a version the read models have not reached
	// answers 503 after 2 ms instead of 5 s.
	q := queries.New(queries.Config{Redis: rdb, Catalog: decider.Catalog, MaxWait: 2 * time.Millisecond, PollInterval: time.Millisecond})
	hs := &history.Service{Store: st, Snapshots: st, Catalog: decider.Catalog}
	pc := &panicCounter{}
	f := &queryFuzzServer{store: st, panics: pc, srv: api.New(api.Config{Commands: cmds, Decider: decider, JWTSecret: testSecret,
		OperatorToken: testOperator, Logger: slog.New(pc), Ready: func(ctx context.Context) error { return st.Ping(ctx) },
		Queries: q, History: hs})}
	proj, err := projections.New(projections.Config{Store: st, Snapshots: st, Redis: rdb, Catalog: decider.Catalog})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done; cmds.Close(); _ = rdb.Close(); _ = st.Close() })

	// A tenant with something on every page: licenses, subscriptions, users,
	// a group with a member and a license, held data of a deleted user.
	must := func(status int, method, path string, body any) {
		tb.Helper()
		got := serve(tb, f.srv, req{Method: method, Path: path, Token: testOperator, Body: body})
		if got.Code != status {
			tb.Fatalf("seeding: %s %s: %d, want %d: %s", method, path, got.Code, status, got.Body)
		}
	}
	must(201, "POST", "/v1/tenants", map[string]any{"id": "contoso", "name": "C",
		"globalAdmin": map[string]any{"id": "admin", "userPrincipalName": "admin@c.example", "usageLocation": "US"}})
	must(201, "POST", "/v1/tenants/contoso/subscriptions", `{"id":"s1","skuId":"SPB","quantity":5}`)
	for _, u := range []string{"alice", "bob", "carol"} {
		must(201, "POST", "/v1/tenants/contoso/users", `{"id":"`+u+`","userPrincipalName":"`+u+`@c.example","usageLocation":"US"}`)
	}
	must(200, "POST", "/v1/tenants/contoso/licenses/SPB/assign", `{"users":["alice","bob"]}`)
	must(201, "POST", "/v1/tenants/contoso/groups", `{"id":"g1","displayName":"G"}`)
	must(200, "PUT", "/v1/tenants/contoso/groups/g1/members/carol", nil)
	must(200, "POST", "/v1/tenants/contoso/groups/g1/assignLicense", `{"addLicenses":[{"skuId":"SPB"}]}`)
	must(200, "DELETE", "/v1/tenants/contoso/users/bob", nil)
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := proj.WaitFor(wctx, st.LastPosition()); err != nil {
		tb.Fatalf("the projection did not catch up: %v", err)
	}
	if f.head, err = st.StreamVersion(context.Background(), tenantstream.Name("contoso")); err != nil {
		tb.Fatal(err)
	}

	ids := map[string]string{":t": "contoso", ":u": "alice", ":sku": "SPB", ":g": "g1", ":s": "s1", ":w": "Exchange"}
	for _, r := range f.srv.Routes() {
		if r.Method != http.MethodGet || strings.HasPrefix(r.Path, "/v1.0/") { // Graph's contract: FuzzGraphQuery
			continue
		}
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
				if parts[i] = ids[p]; parts[i] == "" {
					parts[i] = "x1"
				}
			}
		}
		path := strings.Join(parts, "/")
		// A route answered from the read models takes ?minVersion; every
		// other route refuses it as an unknown parameter.
		probe := serve(tb, f.srv, req{Method: http.MethodGet, Path: path + "?minVersion=1", Token: testOperator})
		var p api.Problem
		readModel := probe.Code != http.StatusBadRequest || json.Unmarshal(probe.Body, &p) != nil || p.Field != "minVersion"
		f.routes = append(f.routes, getRoute{pattern: r.Path, path: path, readModel: readModel})
	}
	slices.SortFunc(f.routes, func(a, b getRoute) int { return strings.Compare(a.pattern, b.pattern) })
	if n := len(slices.DeleteFunc(slices.Clone(f.routes), func(r getRoute) bool { return !r.readModel })); n < 7 {
		tb.Fatalf("only %d query routes", n)
	}
	for _, p := range []string{"/audit", "/events", "/state", "/state/diff", "/licenses", "/users/:u", "/heldData"} {
		if !slices.ContainsFunc(f.routes, func(r getRoute) bool { return r.pattern == "/v1/tenants/:t"+p }) {
			tb.Fatalf("no GET /v1/tenants/:t%s among %v", p, f.routes)
		}
	}
	return f
}

// queryParams are the parameters the GET routes read; a 400 names one.
var queryParams = []string{"since", "until", "actor", "user", "sku", "type", "cursor", "limit", "order", "at", "version",
	"from", "to", "fromVersion", "minVersion"}

// queryFuzzSeeds are realistic and hostile query strings by the routes
// that read them: "page" (the read-model lists and details: limit, cursor,
// minVersion), "audit", "events", "state", "diff"; "" for every route.
func queryFuzzSeeds(head uint64) map[string][]string {
	h := strconv.FormatUint(head, 10)
	cur := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return map[string][]string{
		"page": {
			"minVersion=0", "minVersion=1", "minVersion=" + h, "minVersion=" + strconv.FormatUint(head+1, 10),
			"minVersion=18446744073709551615", "minVersion=18446744073709551616", "minVersion=-1", "minVersion=1e3", "minVersion=%00",
			"minVersion=1&minVersion=999", "limit=1", "limit=500", "limit=0", "limit=-1", "limit=501", "limit=99999999999999999999",
			"limit=1.5", "limit=%20", "limit=1&limit=x", "limit=1&cursor=" + cur("kalice"), "cursor=" + cur("k"), "cursor=" + cur("k\x00\xff"),
			"cursor=!!!", "cursor=a=", "cursor=%ZZ", "cursor=" + cur("(") + "&limit=2", "cursor=" + cur("k[") + "&minVersion=1",
			"cursor=" + cur("k\xff\xff") + "&limit=500",
		},
		"audit": {
			"since=2026-03-01T14:03:00Z&until=2099-01-01T00:00:00Z", "since=2099-01-01T00:00:00Z", "until=0001-01-01T00:00:00Z",
			"since=2026-03-01T14:03:00.123456789+14:00", "since=yesterday", "since=2026-02-30T00:00:00Z", "until=9999-12-31T23:59:59.999999999Z",
			"actor=admin", "actor=operator", "actor=system:scheduler", "user=alice&sku=SPB&type=LicenseAssigned", "sku=ENTERPRISEPACK",
			"type=%E2%80%AE", "user=%00", "actor=" + strings.Repeat("a", 300), "order=desc", "order=asc&limit=2", "order=DESC", "order=",
			"direction=desc", "limit=1", "limit=500", "limit=501", "limit=0", "cursor=" + cur("f1"), "cursor=" + cur("b"+h),
			"order=desc&cursor=" + cur("b2") + "&limit=1", "cursor=" + cur("f18446744073709551615"), "cursor=" + cur("b0"),
			"cursor=" + cur("f-1"), "cursor=" + cur("k1"), "cursor=%ZZ",
			"limit=2&order=desc&since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z",
		},
		"events": {
			"fromVersion=1", "fromVersion=" + h + "&limit=1", "fromVersion=0", "fromVersion=18446744073709551615&limit=1000",
			"fromVersion=-5", "limit=1001", "limit=1000", "fromVersion=+1",
		},
		"state": {
			"at=2026-03-01T14:03:00Z", "at=2000-01-01T00:00:00Z", "at=2099-01-01T00:00:00Z", "at=now", "version=1", "version=" + h,
			"version=0", "version=18446744073709551615", "version=2&at=2026-03-01T14:03:00Z", "version=%2B1",
		},
		"diff": {
			"from=1&to=" + h, "from=" + h + "&to=1", "from=0&to=0", "from=1", "to=1", "from=18446744073709551615&to=1",
			"from=2000-01-01T00:00:00Z&to=2099-01-01T00:00:00Z", "from=x&to=y", "from=1&to=2026-03-01T14:03:00Z",
		},
		"": {
			"", "a=%zz&&&;;==&limit=2", "%", "=", "&&&", ";limit=2", "limit=2;cursor=x", "limit=%F0%9F%98%80",
			strings.Repeat("limit=1&", 40), "\x00\r\n", "since=%0d%0aX-Injected:%20yes",
		},
	}
}

// seedKind is the queryFuzzSeeds group of a GET route.
func seedKind(pattern string) string {
	switch p := strings.TrimPrefix(pattern, "/v1/tenants/:t"); p {
	case "/audit", "/events", "/state":
		return p[1:]
	case "/state/diff":
		return "diff"
	case pattern:
		return "" // not a tenant route
	}
	return "page"
}

// FuzzQueryParams sends arbitrary query strings to every GET route (the
// read models, the audit log, raw events, time travel, catalog and health)
// with a Global admin's token: never a 5xx (except 503 unavailable for a
// ?minVersion the read models have not reached), never a panic; a 4xx is a
// problem+json naming its code (and, for a 400, the parameter); a 2xx of a
// JSON route is JSON; nothing is written.
func FuzzQueryParams(f *testing.F) {
	fs := newQueryFuzzServer(f)
	// Each seed goes to one route of its group (the fuzzer moves it to
	// the others); the empty query to every route.
	byKind := map[string][]uint8{}
	for i, r := range fs.routes {
		byKind[seedKind(r.pattern)] = append(byKind[seedKind(r.pattern)], uint8(i))
		f.Add(uint8(i), "")
	}
	seeds := queryFuzzSeeds(fs.head)
	for _, kind := range []string{"page", "audit", "events", "state", "diff", ""} {
		rs := byKind[kind]
		if kind == "" {
			rs = nil
			for i := range fs.routes {
				rs = append(rs, uint8(i))
			}
		}
		for j, s := range seeds[kind] {
			f.Add(rs[j%len(rs)], s)
		}
	}
	tok, err := api.NewToken(testSecret, "contoso", "admin", 10_000*time.Hour, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		r := fs.routes[int(route)%len(fs.routes)]
		hr := httptest.NewRequest(http.MethodGet, r.path, nil)
		hr.URL.RawQuery = query
		hr.RequestURI = r.path + "?" + query
		hr.Header.Set("Authorization", "Bearer "+tok)
		panics := fs.panics.n.Load()
		w := httptest.NewRecorder()
		fs.srv.ServeHTTP(w, hr)
		body, ct := w.Body.Bytes(), w.Header().Get("Content-Type")
		where := fmt.Sprintf("GET %s?%q", r.path, query)
		if fs.panics.n.Load() != panics {
			t.Fatalf("%s: the handler panicked (answer %d %s)", where, w.Code, body)
		}
		switch {
		case w.Code == http.StatusServiceUnavailable && r.readModel:
			// Only a ?minVersion beyond what the read models applied may wait
			// in vain; it says so and when to retry.
			mv, err := strconv.ParseUint(hr.URL.Query().Get("minVersion"), 10, 64)
			if err != nil || mv <= fs.head {
				t.Fatalf("%s: 503 without a ?minVersion beyond the applied version %d: %s", where, fs.head, body)
			}
			if w.Header().Get("Retry-After") == "" {
				t.Fatalf("%s: 503 without Retry-After", where)
			}
			checkProblem(t, where, w.Code, ct, body)
		case w.Code >= 500:
			t.Fatalf("%s: %d %s", where, w.Code, body)
		case w.Code >= 400:
			p := checkProblem(t, where, w.Code, ct, body)
			if w.Code == http.StatusBadRequest && (p.Code != "invalid_request" || !namesQueryParam(query, p.Field)) {
				t.Fatalf("%s: 400 that names no query parameter (code %q, field %q): %s", where, p.Code, p.Field, body)
			}
		case w.Code >= 200 && w.Code < 300:
			if strings.HasPrefix(ct, "application/json") && !json.Valid(body) {
				t.Fatalf("%s: %d answer is not JSON: %.200s", where, w.Code, body)
			}
		default:
			t.Fatalf("%s: unexpected status %d: %s", where, w.Code, body)
		}
		if v, err := fs.store.StreamVersion(context.Background(), tenantstream.Name("contoso")); err != nil || v != fs.head {
			t.Fatalf("%s: a GET moved the stream: %d -> %d (%v)", where, fs.head, v, err)
		}
	})
}

// namesQueryParam reports whether field names a query parameter of the
// request: one the routes read, one the query gives (an unknown parameter
// is refused by its name), or "query" (a query string that does not parse,
// or a parameter without a name).
func namesQueryParam(query, field string) bool {
	if field == "query" || slices.Contains(queryParams, field) {
		return true
	}
	for _, part := range strings.Split(query, "&") {
		name, _, _ := strings.Cut(part, "=")
		if u, err := url.QueryUnescape(name); err == nil && u == field || name == field && field != "" {
			return true
		}
	}
	return false
}

type problemBody struct {
	Type, Title, Detail, Code, Field string
	Status                           int
}

// checkProblem fails unless body is an application/problem+json answer of
// status with type, title, detail and code.
func checkProblem(t *testing.T, where string, status int, ct string, body []byte) problemBody {
	t.Helper()
	if !strings.HasPrefix(ct, api.ProblemContentType) {
		t.Fatalf("%s: %d with Content-Type %q, want %s: %.200s", where, status, ct, api.ProblemContentType, body)
	}
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: %d problem is not JSON: %v: %.200s", where, status, err, body)
	}
	if p.Status != status || p.Code == "" || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("%s: %d problem lacks status/code/type/title/detail: %s", where, status, body)
	}
	return p
}
