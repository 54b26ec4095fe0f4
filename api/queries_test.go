package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
)

// queryEnv is an env with the query routes over the read models the
// projection keeps in an in-process Redis, and tenant contoso seeded: 12
// users, SPE_E3 bought twice (5 + 8) and assigned to 6, Power BI given by a
// group of 3. It returns contoso's version once the projection applied it.
func queryEnv(t *testing.T, cfg queries.Config) (*env, uint64) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg.Redis = rdb
	e := newEnv(t, func(c *api.Config) { c.Queries = queries.New(cfg) })
	proj, err := projections.New(projections.Config{Store: e.store, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	e.createTenant("contoso")
	const c = "/v1/tenants/contoso"
	admin := token(t, "contoso", "admin")
	users := []string{}
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("u%02d", i)
		users = append(users, id)
		e.addUser("contoso", "admin", id, "US", "Member")
	}
	e.buy("contoso", "admin", "s1", "SPE_E3", 5)
	e.buy("contoso", "admin", "s2", "SPE_E3", 8)
	e.buy("contoso", "admin", "s3", "POWER_BI_PRO", 1)
	e.must(200, req{Method: "POST", Path: c + "/licenses/SPE_E3/assign", Token: admin, Body: map[string]any{"users": users[:6]}})
	e.must(201, req{Method: "POST", Path: c + "/groups", Token: admin, Body: `{"id":"g1","displayName":"Analysts"}`})
	e.must(200, req{Method: "POST", Path: c + "/groups/g1/assignLicense", Token: admin, Body: `{"addLicenses":[{"skuId":"POWER_BI_PRO"}]}`})
	for _, u := range users[6:9] {
		e.must(200, req{Method: "PUT", Path: c + "/groups/g1/members/" + u, Token: admin})
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := proj.WaitFor(wctx, e.store.LastPosition()); err != nil {
		t.Fatal(err)
	}
	return e, e.version("contoso")
}

// TestHardening18_OneListShape: every paged answer says "there is more"
// the same way: X-Next-Cursor and a Link rel="next" that, followed, gives
// the next page. A list is a bare JSON array; a detail with a paged list in
// it (licenses/{sku}: users, groups/{g}: members) keeps its nextCursor
// member and carries the same headers.
func TestHardening18_OneListShape(t *testing.T) {
	e, head := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	mv := "minVersion=" + strconv.FormatUint(head, 10)
	for _, path := range []string{
		"/v1/tenants/contoso/users?limit=5&" + mv,
		"/v1/tenants/contoso/licenses?limit=1&" + mv,
		"/v1/tenants/contoso/subscriptions?limit=2&" + mv,
		"/v1/tenants/contoso/licenses/SPE_E3?limit=3&" + mv,
		"/v1/tenants/contoso/groups/g1?limit=1&" + mv,
	} {
		a := e.must(200, req{Method: "GET", Path: path, Token: admin})
		next := a.Header.Get("X-Next-Cursor")
		if next == "" {
			t.Errorf("GET %s: no X-Next-Cursor", path)
			continue
		}
		link := a.Header.Get("Link")
		target, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		if !ok {
			t.Errorf("GET %s: Link %q", path, link)
			continue
		}
		u, err := url.Parse(target)
		if err != nil || u.Query().Get("cursor") != next {
			t.Errorf("GET %s: Link %q does not carry cursor %s", path, link, next)
		}
		if bytes.HasPrefix(a.Body, []byte("{")) {
			var detail struct {
				NextCursor string `json:"nextCursor"`
			}
			if err := json.Unmarshal(a.Body, &detail); err != nil || detail.NextCursor != next {
				t.Errorf("GET %s: body nextCursor %q, header %q", path, detail.NextCursor, next)
			}
		} else if !bytes.HasPrefix(a.Body, []byte("[")) {
			t.Errorf("GET %s: a list that is not a JSON array: %.100s", path, a.Body)
		}
		if b := e.do(req{Method: "GET", Path: target, Token: admin}); b.Code != 200 || bytes.Equal(b.Body, a.Body) {
			t.Errorf("following Link %s: %d, same page %v", target, b.Code, bytes.Equal(b.Body, a.Body))
		}
	}
}

// TestQueryAnswersOverHTTP: a query's answer carries the version it was
// read at (X-Tenant-Version), the last page no cursor, and a query's
// errors are problems: 404 for what the read models do not have, 400
// naming the parameter, 503 with Retry-After for a version the read models
// have not reached.
func TestQueryAnswersOverHTTP(t *testing.T) {
	e, head := queryEnv(t, queries.Config{MaxWait: 50 * time.Millisecond})
	admin := token(t, "contoso", "admin")
	const c = "/v1/tenants/contoso"
	a := e.must(200, req{Method: "GET", Path: c + "/heldData?minVersion=" + strconv.FormatUint(head, 10), Token: admin})
	if a.Header.Get("X-Tenant-Version") != strconv.FormatUint(head, 10) || string(a.Body) != "[]\n" ||
		a.Header.Get("X-Next-Cursor") != "" || a.Header.Get("Link") != "" {
		t.Fatalf("held data: version %q, next %q, Link %q: %s", a.Header.Get("X-Tenant-Version"),
			a.Header.Get("X-Next-Cursor"), a.Header.Get("Link"), a.Body)
	}
	for path, want := range map[string]struct {
		status int
		code   string
		field  string
	}{
		c + "/licenses/NOPE":           {404, "not_found", ""},
		c + "/licenses/ENTERPRISEPACK": {404, "not_found", ""}, // a catalog product, not bought
		c + "/users/nobody":            {404, "not_found", ""},
		c + "/groups/nope":             {404, "not_found", ""},
		c + "/users?limit=0":           {400, "invalid_request", "limit"},
		c + "/users?limit=501":         {400, "invalid_request", "limit"},
		c + "/users?cursor=%25%25":     {400, "invalid_request", "cursor"},
		c + "/users?minVersion=x":      {400, "invalid_request", "minVersion"},
		c + "/groups/g%201":            {400, "invalid_request", "groupId"},
		c + "/users/admin?cursor=x":    {400, "invalid_request", "cursor"},
	} {
		p := problem(t, e.do(req{Method: "GET", Path: path, Token: admin}), want.status, want.code)
		if f, _ := p["field"].(string); f != want.field {
			t.Errorf("GET %s: field %q, want %q", path, f, want.field)
		}
	}
	r := e.do(req{Method: "GET", Path: c + "/users?minVersion=" + strconv.FormatUint(head+100, 10), Token: admin})
	problem(t, r, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") != "1" {
		t.Fatalf("503 with Retry-After %q, want 1", r.Header.Get("Retry-After"))
	}
}

// TestRedisDownIsUnavailable: Redis out of reach answers 503 with
// Retry-After, as a problem.
func TestRedisDownIsUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	e := newEnv(t, func(c *api.Config) { c.Queries = queries.New(queries.Config{Redis: rdb, RetryAfter: 3 * time.Second}) })
	e.createTenant("contoso")
	r := e.do(req{Method: "GET", Path: "/v1/tenants/contoso/licenses", Token: token(t, "contoso", "admin")})
	problem(t, r, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q, want 3", r.Header.Get("Retry-After"))
	}
}
