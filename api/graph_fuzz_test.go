package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
)

// FuzzGraphQuery sends any query string, with or without ConsistencyLevel:
// eventual, to every GET route of the Graph surface: each answer is a 200
// (JSON; text for /users/$count) or a 4xx in Graph's error shape, never a
// 5xx or a panic, and nothing is written.
func FuzzGraphQuery(f *testing.F) {
	st, err := embedded.Open(f.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler), CacheSize: 8 << 20})
	if err != nil {
		f.Fatal(err)
	}
	decider := domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	cmds := commands.New(commands.Config{Store: st, Snapshots: st, Decider: decider})
	pc := &panicCounter{}
	srv := api.New(api.Config{Commands: cmds, Decider: decider, JWTSecret: testSecret, OperatorToken: testOperator, Logger: slog.New(pc)})
	f.Cleanup(func() { cmds.Close(); _ = st.Close() })
	tok, err := api.NewToken(testSecret, "contoso", "admin", 10_000*time.Hour, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	must := func(method, path string, body any) {
		f.Helper()
		tk := tok
		if path == "/v1/tenants" {
			tk = testOperator
		}
		if got := serve(f, srv, req{Method: method, Path: path, Token: tk, Body: body}); got.Code >= 300 {
			f.Fatalf("seeding: %s %s: %d: %s", method, path, got.Code, got.Body)
		}
	}
	must("POST", "/v1/tenants", map[string]any{"id": "contoso", "name": "C",
		"globalAdmin": map[string]any{"id": "admin", "userPrincipalName": "admin@c.example", "usageLocation": "US"}})
	must("POST", "/v1/tenants/contoso/subscriptions", `{"id":"s1","skuId":"SPB","quantity":1}`)
	for _, u := range []string{"alice", "bob", "carol"} {
		must("POST", "/v1/tenants/contoso/users", `{"id":"`+u+`","userPrincipalName":"`+u+`@c.example","usageLocation":"US"}`)
	}
	must("POST", "/v1/tenants/contoso/groups", `{"id":"g1","displayName":"G"}`)
	must("PUT", "/v1/tenants/contoso/groups/g1/members/alice", nil)
	must("PUT", "/v1/tenants/contoso/groups/g1/members/bob", nil)
	must("POST", "/v1/tenants/contoso/groups/g1/assignLicense", `{"addLicenses":[{"skuId":"SPB"}]}`)
	// The tenant's version, through the command side (not the stream's
	// name, which is the command package's business).
	version := func() (uint64, error) {
		var v uint64
		err := cmds.View(context.Background(), "contoso", func(t *domain.Tenant) error { v = t.Version; return nil })
		return v, err
	}
	head, err := version()
	if err != nil {
		f.Fatal(err)
	}
	ids := map[string]string{"users": "alice", "groups": "g1", "subscribedSkus": "contoso_" + skuSPB}
	var paths []string
	for _, r := range srv.Routes() {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/v1.0/") {
			continue
		}
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[i] = ids[parts[i-1]]
			}
		}
		paths = append(paths, strings.Join(parts, "/"))
	}
	paths = append(paths, "/v1.0/users/$count")
	if len(paths) < 7 {
		f.Fatalf("only %d Graph GET routes: %v", len(paths), paths)
	}
	for _, s := range []string{"", "$top=2", "$select=id,assignedLicenses", "$count=true", "$filter=assignedLicenses/any(x:x/skuId eq " + skuSPB + ")",
		"$filter=assignedLicenses/$count eq 0", "$filter=startswith(displayName,'a') and not (id eq 'b' or usageLocation ne 'US')",
		"$filter=((((", "$filter='''", "$filter=id eq 'a' or", "$skiptoken=a2JvYg", "$orderby=id", "$top=1&$top=2", "%zz", "a;b",
		"$filter=assignedLicenses/any(x:y/skuId eq 1)", "$filter=not not not accountEnabled eq false"} {
		f.Add(uint8(0), s, false)
		f.Add(uint8(1), s, true)
	}
	f.Fuzz(func(t *testing.T, route uint8, query string, eventual bool) {
		path := paths[int(route)%len(paths)]
		hr := httptest.NewRequest(http.MethodGet, path, nil)
		hr.URL.RawQuery = query
		hr.RequestURI = path + "?" + query
		hr.Header.Set("Authorization", "Bearer "+tok)
		if eventual {
			hr.Header.Set("ConsistencyLevel", "eventual")
		}
		panics := pc.n.Load()
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, hr)
		body, where := w.Body.Bytes(), fmt.Sprintf("GET %s?%q", path, query)
		if pc.n.Load() != panics {
			t.Fatalf("%s: the handler panicked (answer %d %s)", where, w.Code, body)
		}
		switch {
		case w.Code >= 500:
			t.Fatalf("%s: %d %s", where, w.Code, body)
		case w.Code >= 400:
			var ge struct {
				Error struct {
					Code, Message string
					InnerError    map[string]string
				}
			}
			if err := json.Unmarshal(body, &ge); err != nil || ge.Error.Code == "" || ge.Error.Message == "" || ge.Error.InnerError["request-id"] == "" {
				t.Fatalf("%s: %d is not a Graph error: %s", where, w.Code, body)
			}
		case w.Code == http.StatusOK:
			if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && !json.Valid(body) {
				t.Fatalf("%s: answer is not JSON: %.200s", where, body)
			}
		default:
			t.Fatalf("%s: unexpected status %d: %s", where, w.Code, body)
		}
		if v, err := version(); err != nil || v != head {
			t.Fatalf("%s: a GET moved the stream: %d -> %d (%v)", where, head, v, err)
		}
	})
}
