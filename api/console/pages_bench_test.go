package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/history"
	"github.com/seatledger/seatledger/internal/benchdata"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/tenantstream"
)

// benchPages are the console pages BenchmarkConsolePages measures, under
// /console/t/big/. A page whose route is not built yet answers 404 and is
// skipped (with a b.Log), so a page added later is measured once merged:
// add its path here.
var benchPages = []struct{ name, path string }{
	{"licenses", "licenses"},
	{"licenses-sku", "licenses/SPB"},
	{"products", "products"},
	{"users", "users"},
	{"users-search", "users?search=u42"},
	{"users-filtered", "users?skuId=SPB&licensed=true"},
	{"users-all-by-upn", "users?status=all&orderBy=userPrincipalName"},
	{"users-u", "users/u4242"},
	{"groups", "groups"},
	{"group", "groups/g0000"},
	{"heldData", "heldData"},
	{"audit", "audit"},
	{"audit-filtered", "audit?type=GroupCreated&actor=admin"},
	{"audit-rare-type", "audit?type=TenantCreated"}, // reads the history service's ScanBudget
	{"audit-rare-actor", "audit?actor=nobody"},      // the same, skipped before decoding
	{"audit-rare-user", "audit?user=nobody"},        // the same, decoding each event
	{"timeTravel", "timeTravel?v=20000"},
	{"me", "me"},
}

// BenchmarkConsolePages: each console page of a 10,000-user tenant, the
// server time of a GET through the console handler (a signed-in session:
// the page's API calls, the read models in Redis DB 15, the rendering),
// p50 and p99 over the run. Issue #21 asks < 100 ms p99 for each page.
// The tenant: 10,000 users (benchdata's long tenant, 35,004 events: every
// user licensed then unlicensed, 5,000 mailboxes held; a snapshot every
// 1,000 events, as the command handler writes them), then through the
// API 150 groups, 2,000 users given Microsoft 365 Business Premium
// directly, group g0000 giving it to 500 members, one of them in error.
func BenchmarkConsolePages(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 10,000-user tenant")
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: 15})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err == nil {
		if err := rdb.FlushDB(ctx).Err(); err != nil { // DB 15 is this benchmark's
			b.Fatal(err)
		}
		defer rdb.FlushDB(context.Background())
		b.Log("read models in Redis at 127.0.0.1:6379 DB 15")
	} else {
		// No such Redis (or a server of fewer than 27 databases): an
		// in-process one, slower than a real Redis, so the times are an
		// upper bound.
		b.Logf("no Redis DB 15 at 127.0.0.1:6379 (%v): read models in miniredis", err)
		rdb = redis.NewClient(&redis.Options{Addr: miniredis.RunT(b).Addr()})
		defer rdb.Close()
	}

	t0 := time.Now()
	st, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const tenant, users = "big", 10_000
	if err := benchdata.WriteLongTenant(ctx, st, tenant, 4+3*users+users/2, users); err != nil {
		b.Fatal(err)
	}
	// A tenant written through the command handler has a snapshot every
	// 1,000 events (commands.Config.SnapshotEvery's default); benchdata
	// appends events without them, so give them as serve's tenants have
	// them: time travel folds from the nearest one.
	if err := tenantstream.BackfillSnapshots(ctx, st, st, nil, tenant, 1000, nil); err != nil {
		b.Fatal(err)
	}
	decider := domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	cmds := commands.New(commands.Config{Store: st, Snapshots: st, Decider: decider})
	defer cmds.Close()
	proj, err := projections.New(projections.Config{Store: st, Snapshots: st, Redis: rdb})
	if err != nil {
		b.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); _ = proj.Run(pctx) }()
	defer func() { stop(); <-ran }()
	srv := api.New(api.Config{
		Commands: cmds, Decider: decider, JWTSecret: secret, OperatorToken: operator,
		Logger: slog.New(slog.DiscardHandler), Queries: queries.New(queries.Config{Redis: rdb}),
		History: &history.Service{Store: st, Snapshots: st, Catalog: decider.Catalog},
		Console: func(h http.Handler) http.Handler {
			return console.New(console.Config{API: h, Logger: slog.New(slog.DiscardHandler)})
		},
	})
	admin := token(b, tenant, "admin")
	must := func(want int, method, path, body string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+admin)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != want {
			b.Fatalf("%s %s: %d, want %d: %s", method, path, w.Code, want, w.Body)
		}
	}
	base := "/v1/tenants/" + tenant
	for i := range 150 {
		must(201, "POST", base+"/groups", fmt.Sprintf(`{"id":"g%04d","displayName":"Group %d"}`, i, i))
	}
	for i := 0; i < 2000; i += 20 {
		var ids []string
		for j := i; j < i+20; j++ {
			ids = append(ids, fmt.Sprintf(`"u%d"`, j))
		}
		must(200, "POST", base+"/licenses/SPB/assign", `{"users":[`+strings.Join(ids, ",")+`]}`)
	}
	must(200, "POST", base+"/groups/g0000/assignLicense", `{"addLicenses":[{"skuId":"SPB","disabledPlans":[]}],"removeLicenses":[]}`)
	for i := 3000; i < 3500; i++ {
		must(200, "PUT", fmt.Sprintf("%s/groups/g0000/members/u%d", base, i), "")
	}
	must(201, "POST", base+"/users", `{"id":"nolocation","userPrincipalName":"nolocation@big.example"}`)
	must(200, "PUT", base+"/groups/g0000/members/nolocation", "")
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	if err := proj.WaitFor(wctx, st.LastPosition()); err != nil {
		b.Fatal(err)
	}
	b.Logf("tenant of %d users written, commanded and projected in %s", users, time.Since(t0).Round(time.Millisecond))

	var body string
	get := func(path string) (int, time.Duration) {
		r := httptest.NewRequest("GET", "/console/t/"+tenant+"/"+path, nil)
		r.AddCookie(&http.Cookie{Name: "seatledger_session", Value: admin})
		w := httptest.NewRecorder()
		start := time.Now()
		srv.ServeHTTP(w, r)
		d := time.Since(start)
		body = w.Body.String()
		return w.Code, d
	}
	for _, pg := range benchPages {
		b.Run(pg.name, func(b *testing.B) {
			switch code, _ := get(pg.path); code {
			case http.StatusOK:
				b.Logf("%s: %d bytes, %d table rows", pg.path, len(body), strings.Count(body, "<tr>"))
			case http.StatusNotFound:
				b.Logf("%s answers 404: its page is not built on this branch yet; skipped", pg.path)
				b.SkipNow()
			default:
				b.Fatalf("GET %s: %d", pg.path, code)
			}
			var lat []time.Duration
			for b.Loop() {
				code, d := get(pg.path)
				if code != http.StatusOK {
					b.Fatalf("GET %s: %d", pg.path, code)
				}
				lat = append(lat, d)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
