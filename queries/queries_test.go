package queries

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

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
	svc    *Service
}

var seq atomic.Int64

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

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
	f := &fixture{t: t, rdb: rdb, prefix: prefix, store: store, h: h, proj: proj, svc: svc}
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

// must fails the test on a query's error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("query: %v", err)
	}
}

// Kinds of query errors, as the api package answers them.
const (
	kindNotFound    = "not found"   // *domain.Error not_found: 404
	kindInvalid     = "invalid"     // *domain.Error invalid_request: 400
	kindUnavailable = "unavailable" // *UnavailableError with a RetryAfter: 503 with Retry-After
)

// wantErr checks that err is of kind.
func wantErr(t *testing.T, err error, kind string) {
	t.Helper()
	var (
		de *domain.Error
		ue *UnavailableError
	)
	switch {
	case err == nil:
		t.Fatalf("no error, want %s", kind)
	case kind == kindNotFound && errors.As(err, &de) && de.Code == domain.CodeNotFound,
		kind == kindInvalid && errors.As(err, &de) && de.Code == domain.CodeInvalidRequest:
	case kind == kindUnavailable && errors.As(err, &ue):
		if ue.RetryAfter <= 0 || ue.Reason == "" {
			t.Fatalf("unavailable without RetryAfter or reason: %+v", ue)
		}
	default:
		t.Fatalf("error %v (%T), want %s", err, err, kind)
	}
}

func TestQueries(t *testing.T) { redistest.Each(t, testQueries) }

func testQueries(t *testing.T, kind redistest.Kind) {
	f := newFixtureOn(t, kind, Config{})
	v := f.seed("contoso")
	ctx := context.Background()
	mv := Options{MinVersion: v}

	lic, err := f.svc.Licenses(ctx, "contoso", mv)
	must(t, err)
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
	page1, err := f.svc.Licenses(ctx, "contoso", Options{Limit: 1})
	must(t, err)
	if len(page1.Value) != 1 || page1.NextCursor == "" {
		t.Fatalf("licenses page 1: %+v", page1)
	}
	page2, err := f.svc.Licenses(ctx, "contoso", Options{Limit: 1, Cursor: page1.NextCursor})
	must(t, err)
	if len(page2.Value) != 1 || page2.NextCursor != "" || page2.Value[0].SkuID == page1.Value[0].SkuID {
		t.Fatalf("licenses page 2: %+v", page2)
	}

	// The product, by part number and by skuId, users paginated by id.
	first, err := f.svc.License(ctx, "contoso", "SPE_E3", Options{Limit: 3})
	must(t, err)
	prod := first.Value
	if prod.SkuID != e3.SkuID || len(prod.ServicePlans) == 0 || len(prod.Users) != 3 || prod.Users[0].ID != "u01" || prod.NextCursor == "" {
		t.Fatalf("product detail: %+v", prod)
	}
	second, err := f.svc.License(ctx, "contoso", e3.SkuID, Options{Limit: 3, Cursor: prod.NextCursor})
	must(t, err)
	prod2 := second.Value
	if len(prod2.Users) != 2 || prod2.Users[0].ID != "u04" || prod2.NextCursor != "" || prod2.Users[0].Sources[0] != "direct" {
		t.Fatalf("product detail page 2: %+v", prod2)
	}
	_, err = f.svc.License(ctx, "contoso", "NOPE", Options{})
	wantErr(t, err, kindNotFound)
	_, err = f.svc.License(ctx, "contoso", "ENTERPRISEPACK", Options{}) // catalog product, not bought
	wantErr(t, err, kindNotFound)

	subs, err := f.svc.Subscriptions(ctx, "contoso", Options{})
	must(t, err)
	if len(subs.Value) != 3 || subs.Value[0].ID != "s1" || subs.Value[0].Quantity != 5 || subs.Value[1].Quantity != 8 {
		t.Fatalf("subscriptions: %+v", subs)
	}

	// Users, walked page by page.
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		us, err := f.svc.Users(ctx, "contoso", Options{Limit: 5, Cursor: cursor})
		must(t, err)
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

	ans05, err := f.svc.User(ctx, "contoso", "u05", Options{})
	must(t, err)
	u05 := ans05.Value
	if u05.Status != "Active" || !u05.RetentionHold || len(u05.HeldData) != 1 || u05.HeldData[0].Workload != "Exchange" || !u05.HeldData[0].Retained {
		t.Fatalf("u05: %+v", u05)
	}
	ans07, err := f.svc.User(ctx, "contoso", "u07", Options{})
	must(t, err)
	u07 := ans07.Value
	if len(u07.Licenses) != 1 || u07.Licenses[0].Sources[0] != "group:g1" || len(u07.Licenses[0].EnabledPlans) == 0 {
		t.Fatalf("u07: %+v", u07)
	}
	_, err = f.svc.User(ctx, "contoso", "nobody", Options{})
	wantErr(t, err, kindNotFound)

	group, err := f.svc.Group(ctx, "contoso", "g1", Options{})
	must(t, err)
	g := group.Value
	if g.MemberCount != 3 || len(g.Members) != 3 || len(g.Licenses) != 1 || len(g.MembersWithLicenseErrors) != 2 ||
		g.MembersWithLicenseErrors[0].Error != domain.GroupErrCountViolation {
		t.Fatalf("group: %+v", g)
	}
	_, err = f.svc.Group(ctx, "contoso", "nope", Options{})
	wantErr(t, err, kindNotFound)

	held, err := f.svc.HeldData(ctx, "contoso", Options{})
	must(t, err)
	if len(held.Value) != 1 || held.Value[0].UserID != "u05" || !held.Value[0].Retained || held.Value[0].PurgeAfter.Before(held.Value[0].HeldSince) {
		t.Fatalf("held data: %+v", held)
	}
	if held.Version < v {
		t.Fatalf("answered at version %d, the seed ended at %d", held.Version, v)
	}

	// Errors.
	_, err = f.svc.Licenses(ctx, "nobody", Options{})
	wantErr(t, err, kindNotFound)
	_, err = f.svc.Users(ctx, "contoso", Options{Limit: -1})
	wantErr(t, err, kindInvalid)
	_, err = f.svc.Users(ctx, "contoso", Options{Limit: 501})
	wantErr(t, err, kindInvalid)
	_, err = f.svc.Users(ctx, "contoso", Options{Cursor: "%%"})
	wantErr(t, err, kindInvalid)
}

func TestMinVersionWaitsThenGivesUp(t *testing.T) { redistest.Each(t, testMinVersionWaitsThenGivesUp) }

func testMinVersionWaitsThenGivesUp(t *testing.T, kind redistest.Kind) {
	// The default MaxWait (5 s): a fresh prefix on a busy cluster can take
	// longer than the short wait below to be built (its slot markers).
	f := newFixtureOn(t, kind, Config{})
	v := f.seed("fabrikam")
	// Read-your-writes: the answer waits for the projection.
	r := f.do("fabrikam", &domain.AddUser{User: domain.NewUser{ID: "late", UserPrincipalName: "late@x.example", UsageLocation: "US"}})
	ctx := context.Background()
	u, err := f.svc.User(ctx, "fabrikam", "late", Options{MinVersion: r.Version})
	must(t, err)
	if u.Value.ID != "late" || r.Version <= v || u.Version < r.Version {
		t.Fatalf("user %+v", u)
	}
	// A version the tenant never reaches: wait MaxWait, then unavailable.
	short := New(Config{Redis: f.rdb, Prefix: f.prefix, MaxWait: 300 * time.Millisecond})
	start := time.Now()
	_, err = short.Users(ctx, "fabrikam", Options{MinVersion: r.Version + 100})
	wantErr(t, err, kindUnavailable)
	if time.Since(start) < 250*time.Millisecond {
		t.Fatalf("unavailable without waiting: %v", time.Since(start))
	}
	// A tenant that does not exist yet, with minVersion: wait, then unavailable.
	_, err = short.Users(ctx, "later", Options{MinVersion: 1})
	wantErr(t, err, kindUnavailable)
}

func TestRedisDownIsUnavailable(t *testing.T) {
	for _, rdb := range []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond}),
		redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MaxRetries: -1, DialTimeout: 200 * time.Millisecond}),
	} {
		defer rdb.Close()
		svc := New(Config{Redis: rdb})
		_, err := svc.Licenses(context.Background(), "contoso", Options{})
		wantErr(t, err, kindUnavailable)
		if ue := (*UnavailableError)(nil); !errors.As(err, &ue) || ue.Err == nil {
			t.Fatalf("%T: the cause (Redis's error) is not kept: %v", rdb, err)
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
// without its Present marker (Redis lost it; being rebuilt) fails
// unavailable with a RetryAfter (the API's 503 with Retry-After), never an
// older version nor "not found" for a tenant that exists; when the read
// model is complete and caught up again, reads answer.
func TestNoReadGoesBackInTime(t *testing.T) { redistest.Each(t, testNoReadGoesBackInTime) }

func testNoReadGoesBackInTime(t *testing.T, kind redistest.Kind) {
	f := newFixtureOn(t, kind, Config{StaleWait: 50 * time.Millisecond})
	v := f.seed("contoso")
	f.seed("fabrikam")
	ctx := context.Background()
	if _, err := f.svc.Licenses(ctx, "contoso", Options{MinVersion: v}); err != nil {
		t.Fatal(err)
	}
	if err := f.proj.WaitFor(context.Background(), f.store.LastPosition()); err != nil {
		t.Fatal(err)
	}
	meta := readmodel.Keys{Prefix: f.prefix}.Key("contoso", readmodel.Meta)

	// The read model goes back one version: this process saw v.
	if err := f.rdb.HSet(ctx, meta, "version", v-1).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Users(ctx, "contoso", Options{})
	wantErr(t, err, kindUnavailable)
	// It catches up while a request waits (StaleWait): answered.
	go func() { time.Sleep(10 * time.Millisecond); f.rdb.HSet(ctx, meta, "version", v) }()
	f.svc.cfg.StaleWait = 2 * time.Second
	if a, err := f.svc.Users(ctx, "contoso", Options{}); err != nil || a.Version != v {
		t.Fatalf("after catching up: %v (version %d)", err, a.Version)
	}

	// Redis lost the read models: no marker. A tenant this process never
	// answered is not "not found" either.
	present := readmodel.Keys{Prefix: f.prefix}.Present()
	if err := f.rdb.Del(ctx, present).Err(); err != nil {
		t.Fatal(err)
	}
	f.rdb.Del(ctx, readmodel.Keys{Prefix: f.prefix}.Key("fabrikam", readmodel.Meta))
	for _, tn := range []string{"contoso", "fabrikam", "nobody"} {
		_, err := f.svc.Licenses(ctx, tn, Options{})
		wantErr(t, err, kindUnavailable)
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
	if _, err := f.svc.Licenses(ctx, "contoso", Options{}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Licenses(ctx, "nobody", Options{})
	wantErr(t, err, kindNotFound)
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
// (unavailable), not 404 or an empty page; the tenants of the other masters are still
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
			_, err := f.svc.Licenses(ctx, tn, Options{})
			wantErr(t, err, kindUnavailable)
			_, err = f.svc.User(ctx, tn, "u01", Options{})
			wantErr(t, err, kindUnavailable)
		} else if _, err := f.svc.Licenses(ctx, tn, Options{}); err != nil {
			t.Fatalf("%s, on a master that kept its data: %v", tn, err)
		}
	}
	if err := f.svc.Ready(ctx); err == nil {
		t.Fatal("Ready while a master's slots lost their read models")
	}
}
