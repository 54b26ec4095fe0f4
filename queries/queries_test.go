package queries

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
)

type fixture struct {
	t      *testing.T
	rdb    redis.UniversalClient
	prefix string
	store  *embedded.Store
	h      *commands.Handler
	proj   *projections.Projection
	engine *gin.Engine
	svc    *Service
}

var seq atomic.Int64

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// newFixture is newFixtureOn one Redis server.
func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	return newFixtureOn(t, redistest.Single, cfg)
}

// newFixtureOn runs a store, the command side, a projection into a fresh
// prefix of a Redis of kind k and the query service on it.
func newFixtureOn(t *testing.T, k redistest.Kind, cfg Config) *fixture {
	t.Helper()
	rdb := redistest.Open(t, k, 0)
	prefix := redistest.Prefix("")
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h := commands.New(commands.Config{Store: store, Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())})
	proj, err := projections.New(projections.Config{Store: store, Redis: rdb, Prefix: prefix, StatusInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); proj.Run(runCtx) }()
	cfg.Redis = rdb
	cfg.Prefix = prefix
	svc := New(cfg)
	gin.SetMode(gin.TestMode)
	e := gin.New()
	for _, r := range svc.Routes() {
		e.Handle(r.Method, r.Path, r.Handler)
	}
	f := &fixture{t: t, rdb: rdb, prefix: prefix, store: store, h: h, proj: proj, engine: e, svc: svc}
	t.Cleanup(func() {
		stop()
		<-done
		h.Close()
		store.Close()
		_ = redistest.Delete(context.Background(), rdb, readmodel.GlobEscape(prefix)+"*")
	})
	return f
}

func (f *fixture) do(tenant string, c domain.Command) commands.Result {
	f.t.Helper()
	m := domain.Meta(c)
	m.TenantID = tenant
	m.CommandID = fmt.Sprint("q-", seq.Add(1))
	if m.Actor.UserID == "" && !m.Actor.Operator {
		m.Actor = domain.Actor{UserID: "admin"}
	}
	r, err := f.h.Handle(context.Background(), c)
	if err != nil {
		f.t.Fatalf("%s: %v", c.CommandName(), err)
	}
	return r
}

// seed builds a tenant: 12 users, SPE_E3 5+8, Power BI 1 given by a group of
// 3 (2 count errors), a license removal under retention hold.
func (f *fixture) seed(tenant string) uint64 {
	f.do(tenant, &domain.CreateTenant{CommandMeta: domain.CommandMeta{Actor: domain.Actor{Operator: true}}, Name: "T " + tenant,
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@x.example", DisplayName: "Admin", UsageLocation: "US"}})
	users := []string{}
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("u%02d", i)
		users = append(users, id)
		f.do(tenant, &domain.AddUser{User: domain.NewUser{ID: id, UserPrincipalName: id + "@x.example", DisplayName: "User " + id, UsageLocation: "US"}})
	}
	f.do(tenant, &domain.PurchaseSubscription{SubscriptionID: "s1", SkuID: "SPE_E3", Quantity: 5})
	f.do(tenant, &domain.PurchaseSubscription{SubscriptionID: "s2", SkuID: "SPE_E3", Quantity: 8})
	f.do(tenant, &domain.PurchaseSubscription{SubscriptionID: "s3", SkuID: "POWER_BI_PRO", Quantity: 1})
	f.do(tenant, &domain.AssignLicenses{SkuID: "SPE_E3", Users: users[:6]})
	f.do(tenant, &domain.CreateGroup{GroupID: "g1", DisplayName: "Analysts"})
	f.do(tenant, &domain.AssignGroupLicenses{GroupID: "g1", Add: []domain.LicenseRequest{{SkuID: "POWER_BI_PRO"}}})
	for _, u := range users[6:9] {
		f.do(tenant, &domain.AddGroupMember{GroupID: "g1", UserID: u})
	}
	f.do(tenant, &domain.SetRetentionHold{UserID: "u05", Enabled: true})
	return f.do(tenant, &domain.UnassignLicenses{SkuID: "SPE_E3", Users: []string{"u05"}}).Version
}

type answer struct {
	code int
	hdr  http.Header
	body []byte
}

func (f *fixture) get(path string) answer {
	f.t.Helper()
	w := httptest.NewRecorder()
	f.engine.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return answer{w.Code, w.Header(), w.Body.Bytes()}
}

func (f *fixture) getJSON(path string, v any) {
	f.t.Helper()
	a := f.get(path)
	if a.code != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, a.code, a.body)
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		f.t.Fatalf("GET %s: %v: %s", path, err, a.body)
	}
	if l, ok := v.(interface{ SetCursor(string) }); ok {
		l.SetCursor(a.hdr.Get("X-Next-Cursor"))
	}
}

func (f *fixture) wantProblem(path string, code int, problem string) answer {
	f.t.Helper()
	a := f.get(path)
	if a.code != code {
		f.t.Fatalf("GET %s: status %d, want %d: %s", path, a.code, code, a.body)
	}
	if ct := a.hdr.Get("Content-Type"); ct != "application/problem+json" {
		f.t.Fatalf("GET %s: content type %q", path, ct)
	}
	var p Problem
	if err := json.Unmarshal(a.body, &p); err != nil || p.Code != problem || p.Status != code || p.Type == "" || p.Title == "" {
		f.t.Fatalf("GET %s: problem %+v (%v)", path, p, err)
	}
	return a
}

func TestQueries(t *testing.T) { redistest.Each(t, testQueries) }

func testQueries(t *testing.T, kind redistest.Kind) {
	f := newFixtureOn(t, kind, Config{})
	v := f.seed("contoso")
	mv := fmt.Sprintf("?minVersion=%d", v)

	var lic List[readmodel.LicenseRow]
	f.getJSON("/v1/tenants/contoso/licenses"+mv, &lic)
	if len(lic.Value) != 2 {
		t.Fatalf("licenses: %+v", lic)
	}
	var e3 readmodel.LicenseRow
	for _, r := range lic.Value {
		if r.SkuPartNumber == "SPE_E3" {
			e3 = r
		}
	}
	if e3.Total != 13 || e3.Assigned != 5 || e3.Available != 8 || e3.Subscriptions != 2 || e3.ProductName != "Microsoft 365 E3" {
		t.Fatalf("R5: SPE_E3 row %+v", e3)
	}
	var page1 List[readmodel.LicenseRow]
	f.getJSON("/v1/tenants/contoso/licenses?limit=1", &page1)
	if len(page1.Value) != 1 || page1.NextCursor == "" {
		t.Fatalf("licenses page 1: %+v", page1)
	}
	var page2 List[readmodel.LicenseRow]
	f.getJSON("/v1/tenants/contoso/licenses?limit=1&cursor="+page1.NextCursor, &page2)
	if len(page2.Value) != 1 || page2.NextCursor != "" || page2.Value[0].SkuID == page1.Value[0].SkuID {
		t.Fatalf("licenses page 2: %+v", page2)
	}

	// The product, by part number and by skuId, users paginated by id.
	var prod ProductDetail
	f.getJSON("/v1/tenants/contoso/licenses/SPE_E3?limit=3", &prod)
	if prod.SkuID != e3.SkuID || len(prod.ServicePlans) == 0 || len(prod.Users) != 3 || prod.Users[0].ID != "u01" || prod.NextCursor == "" {
		t.Fatalf("product detail: %+v", prod)
	}
	var prod2 ProductDetail
	f.getJSON("/v1/tenants/contoso/licenses/"+e3.SkuID+"?limit=3&cursor="+prod.NextCursor, &prod2)
	if len(prod2.Users) != 2 || prod2.Users[0].ID != "u04" || prod2.NextCursor != "" || prod2.Users[0].Sources[0] != "direct" {
		t.Fatalf("product detail page 2: %+v", prod2)
	}
	f.wantProblem("/v1/tenants/contoso/licenses/NOPE", 404, CodeNotFound)
	f.wantProblem("/v1/tenants/contoso/licenses/ENTERPRISEPACK", 404, CodeNotFound) // catalog product, not bought

	var subs List[readmodel.SubscriptionRow]
	f.getJSON("/v1/tenants/contoso/subscriptions", &subs)
	if len(subs.Value) != 3 || subs.Value[0].ID != "s1" || subs.Value[0].Quantity != 5 || subs.Value[1].Quantity != 8 {
		t.Fatalf("subscriptions: %+v", subs)
	}

	// Users, walked page by page.
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		var us List[UserSummary]
		f.getJSON("/v1/tenants/contoso/users?limit=5&cursor="+cursor, &us)
		for _, u := range us.Value {
			if seen[u.ID] {
				t.Fatalf("user %s twice", u.ID)
			}
			seen[u.ID] = true
		}
		if us.NextCursor == "" {
			break
		}
		cursor = us.NextCursor
		if pages > 10 {
			t.Fatal("no end")
		}
	}
	if len(seen) != 13 {
		t.Fatalf("users: %v", seen)
	}

	var u05 readmodel.UserView
	f.getJSON("/v1/tenants/contoso/users/u05", &u05)
	if u05.Status != "Active" || !u05.RetentionHold || len(u05.HeldData) != 1 || u05.HeldData[0].Workload != "Exchange" || !u05.HeldData[0].Retained {
		t.Fatalf("u05: %+v", u05)
	}
	var u07 readmodel.UserView
	f.getJSON("/v1/tenants/contoso/users/u07", &u07)
	if len(u07.Licenses) != 1 || u07.Licenses[0].Sources[0] != "group:g1" || len(u07.Licenses[0].EnabledPlans) == 0 {
		t.Fatalf("u07: %+v", u07)
	}
	f.wantProblem("/v1/tenants/contoso/users/nobody", 404, CodeNotFound)

	var g GroupDetail
	f.getJSON("/v1/tenants/contoso/groups/g1", &g)
	if g.MemberCount != 3 || len(g.Members) != 3 || len(g.Licenses) != 1 || len(g.MembersWithLicenseErrors) != 2 ||
		g.MembersWithLicenseErrors[0].Error != domain.GroupErrCountViolation {
		t.Fatalf("group: %+v", g)
	}
	f.wantProblem("/v1/tenants/contoso/groups/nope", 404, CodeNotFound)

	var held List[readmodel.HeldRow]
	f.getJSON("/v1/tenants/contoso/heldData", &held)
	if len(held.Value) != 1 || held.Value[0].UserID != "u05" || !held.Value[0].Retained || held.Value[0].PurgeAfter.Before(held.Value[0].HeldSince) {
		t.Fatalf("held data: %+v", held)
	}

	// Errors.
	f.wantProblem("/v1/tenants/nobody/licenses", 404, CodeNotFound)
	f.wantProblem("/v1/tenants/contoso/users?limit=0", 400, CodeInvalidRequest)
	f.wantProblem("/v1/tenants/contoso/users?limit=501", 400, CodeInvalidRequest)
	f.wantProblem("/v1/tenants/contoso/users?cursor=%25%25", 400, CodeInvalidRequest)
	f.wantProblem("/v1/tenants/contoso/users?minVersion=x", 400, CodeInvalidRequest)
}

func TestMinVersionWaitsThenGivesUp(t *testing.T) { redistest.Each(t, testMinVersionWaitsThenGivesUp) }

func testMinVersionWaitsThenGivesUp(t *testing.T, kind redistest.Kind) {
	f := newFixtureOn(t, kind, Config{MaxWait: 300 * time.Millisecond})
	v := f.seed("fabrikam")
	// Read-your-writes: the answer waits for the projection.
	r := f.do("fabrikam", &domain.AddUser{User: domain.NewUser{ID: "late", UserPrincipalName: "late@x.example", UsageLocation: "US"}})
	var u readmodel.UserView
	f.getJSON(fmt.Sprintf("/v1/tenants/fabrikam/users/late?minVersion=%d", r.Version), &u)
	if u.ID != "late" || r.Version <= v {
		t.Fatalf("user %+v", u)
	}
	start := time.Now()
	a := f.wantProblem(fmt.Sprintf("/v1/tenants/fabrikam/users?minVersion=%d", r.Version+100), 503, CodeUnavailable)
	if a.hdr.Get("Retry-After") == "" || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("503 without Retry-After or without waiting: %v %v", a.hdr, time.Since(start))
	}
	// A tenant that does not exist yet, with minVersion: wait, then 503.
	f.wantProblem("/v1/tenants/later/users?minVersion=1", 503, CodeUnavailable)
}

func TestRedisDownIsUnavailable(t *testing.T) {
	for _, rdb := range []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond}),
		redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MaxRetries: -1, DialTimeout: 200 * time.Millisecond}),
	} {
		defer rdb.Close()
		svc := New(Config{Redis: rdb})
		e := gin.New()
		svc.Mount(e.Group("/v1/tenants/:t"))
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/tenants/contoso/licenses", nil))
		if w.Code != 503 || w.Header().Get("Retry-After") == "" || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%T: %d %v %s", rdb, w.Code, w.Header(), w.Body)
		}
	}
}

func TestActivePrefixIsFollowed(t *testing.T) {
	// The active-prefix key is global: use an in-process Redis, not the shared one.
	url, stop, err := projections.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rdb, err := projections.OpenRedis(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	svc := New(Config{Redis: rdb, PrefixTTL: 50 * time.Millisecond})
	if k, err := svc.keys(ctx); err != nil || k.Prefix != readmodel.DefaultPrefix {
		t.Fatalf("default: %v %v", k, err)
	}
	if err := readmodel.SetActivePrefix(ctx, rdb, "sl:r2:"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if k, err := svc.keys(ctx); err != nil || k.Prefix != "sl:r2:" {
		t.Fatalf("after the swap: %v %v", k, err)
	}
}

// TestNoReadGoesBackInTime: once this process answered a tenant at version
// v, a read model behind v (a replay's new prefix still catching up) or
// without its Present marker (Redis lost it; being rebuilt) answers 503
// with Retry-After, never an older version nor a 404 for a tenant that
// exists; when the read model is complete and caught up again, reads answer.
func TestNoReadGoesBackInTime(t *testing.T) { redistest.Each(t, testNoReadGoesBackInTime) }

func testNoReadGoesBackInTime(t *testing.T, kind redistest.Kind) {
	f := newFixtureOn(t, kind, Config{StaleWait: 50 * time.Millisecond})
	v := f.seed("contoso")
	f.seed("fabrikam")
	f.getJSON(fmt.Sprintf("/v1/tenants/contoso/licenses?minVersion=%d", v), &List[readmodel.LicenseRow]{})
	if err := f.proj.WaitFor(context.Background(), f.store.LastPosition()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	meta := readmodel.Keys{Prefix: f.prefix}.Key("contoso", readmodel.Meta)

	// The read model goes back one version: this process saw v.
	if err := f.rdb.HSet(ctx, meta, "version", v-1).Err(); err != nil {
		t.Fatal(err)
	}
	a := f.wantProblem("/v1/tenants/contoso/users", http.StatusServiceUnavailable, CodeUnavailable)
	if a.hdr.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	// It catches up while a request waits (StaleWait): answered.
	go func() { time.Sleep(10 * time.Millisecond); f.rdb.HSet(ctx, meta, "version", v) }()
	f.svc.cfg.StaleWait = 2 * time.Second
	if a := f.get("/v1/tenants/contoso/users"); a.code != http.StatusOK || a.hdr.Get("X-Tenant-Version") != fmt.Sprint(v) {
		t.Fatalf("after catching up: %d %s (version %s)", a.code, a.body, a.hdr.Get("X-Tenant-Version"))
	}

	// Redis lost the read models: no marker. A tenant this process never
	// answered is not "not found" either.
	present := readmodel.Keys{Prefix: f.prefix}.Present()
	if err := f.rdb.Del(ctx, present).Err(); err != nil {
		t.Fatal(err)
	}
	f.rdb.Del(ctx, readmodel.Keys{Prefix: f.prefix}.Key("fabrikam", readmodel.Meta))
	for _, tn := range []string{"contoso", "fabrikam", "nobody"} {
		a := f.wantProblem("/v1/tenants/"+tn+"/licenses", http.StatusServiceUnavailable, CodeUnavailable)
		if a.hdr.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	}
	if err := f.svc.Ready(ctx); err == nil {
		t.Fatal("Ready while the read models have no marker")
	}
	if err := f.rdb.Set(ctx, present, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	f.get("/v1/tenants/contoso/licenses")
	f.wantProblem("/v1/tenants/nobody/licenses", http.StatusNotFound, CodeNotFound)
}

func TestHighWaterIsBounded(t *testing.T) {
	h := newHighWater(4)
	h.observe("a", 5)
	h.observe("a", 3) // never lowered
	if h.get("a") != 5 {
		t.Fatalf("a: %d", h.get("a"))
	}
	h.observe("b", 1)
	h.observe("c", 1) // a, b move to the older generation
	if h.get("a") != 5 || h.get("c") != 1 {
		t.Fatal("lost a tenant of the older generation")
	}
	h.observe("a", 6) // back into the newer one
	h.observe("d", 1)
	h.observe("e", 1)
	if h.get("b") != 0 {
		t.Fatal("b should be forgotten: at most 4 tenants are kept")
	}
	if h.get("a") != 6 {
		t.Fatalf("a: %d", h.get("a"))
	}
	if n := len(h.cur) + len(h.prev); n > 4 {
		t.Fatalf("%d tenants kept, bound 4", n)
	}
}

// TestLostSlotsAnswer503NotNotFound: on a Redis Cluster a master restarted
// without persistence comes back empty but serving its slots: the tenants
// of those slots are gone while the Present marker, on another master,
// may survive. Their queries answer 503 (the slot markers went with them),
// not 404 or an empty page; the tenants of the other masters are still
// answered, and the service is not Ready.
func TestLostSlotsAnswer503NotNotFound(t *testing.T) {
	f := newFixtureOn(t, redistest.Cluster, Config{StaleWait: 50 * time.Millisecond})
	ctx := context.Background()
	keys := readmodel.Keys{Prefix: f.prefix}
	tenants := []string{"contoso", "fabrikam", "northwind", "tailspin"}
	for _, tn := range tenants {
		f.seed(tn)
	}
	if err := f.proj.WaitFor(ctx, f.store.LastPosition()); err != nil {
		t.Fatal(err)
	}
	// No tenant read yet: this process has no answered version to hold
	// them to (highWater), only the read models.
	if err := f.svc.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// Lose, as a master restarted empty does, every key of the slot range
	// holding fabrikam (this prefix's only).
	slot := readmodel.Slot(keys.Tenant("fabrikam"))
	ranges, err := f.rdb.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var lost redis.ClusterSlot
	for _, r := range ranges {
		if int(r.Start) <= slot && slot <= int(r.End) {
			lost = r
		}
	}
	all, err := redistest.Keys(ctx, f.rdb, readmodel.GlobEscape(f.prefix)+"*")
	if err != nil {
		t.Fatal(err)
	}
	inLost := func(k string) bool { s := readmodel.Slot(k); return int(lost.Start) <= s && s <= int(lost.End) }
	for _, k := range all {
		if inLost(k) && k != keys.Present() {
			f.rdb.Del(ctx, k)
		}
	}
	for _, tn := range tenants {
		if inLost(keys.Tenant(tn)) {
			f.wantProblem("/v1/tenants/"+tn+"/licenses", http.StatusServiceUnavailable, CodeUnavailable)
			f.wantProblem("/v1/tenants/"+tn+"/users/u01", http.StatusServiceUnavailable, CodeUnavailable)
		} else {
			f.getJSON("/v1/tenants/"+tn+"/licenses", &List[readmodel.LicenseRow]{})
		}
	}
	if err := f.svc.Ready(ctx); err == nil {
		t.Fatal("Ready while a master's slots lost their read models")
	}
}
