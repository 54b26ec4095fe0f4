package queries

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/tenantstream"
)

// benchUsers is the size of the large tenant of BenchmarkUsersLargeTenant.
const benchUsers = 100_000

var (
	benchFirst = []string{"Élodie", "Eloïse", "Zoë", "Anaïs", "Björn", "Chloé", "Jürgen", "Léa", "Noël", "Renée", "Søren", "Zoé",
		"Adam", "Bob", "Carla", "Dan", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Karl", "Liam", "Mia", "Nina",
		"Omar", "Paul", "Quinn", "Rosa", "Sam", "Tess", "Uma", "Vic", "Walt", "Xena", "Yann", "Zack"}
	benchLast = []string{"Durand", "Müller", "Østergaard", "Lefèvre", "García", "Smith", "Jones", "Brown", "Nguyen", "Kowalski",
		"Rossi", "Dubois", "Novák", "Silva", "Kim", "Ivanova", "Schmidt", "Moreau", "Lopez", "Clark"}
)

// writeLargeTenant appends the events of a tenant of n users straight to
// the store: a tenth guests, one in fifty deleted, half holding Microsoft
// 365 Business Premium, a quarter Office 365 E3.
func writeLargeTenant(b *testing.B, store eventstore.Store, tenant string, n int) {
	ctx := context.Background()
	cat := domain.DefaultCatalog()
	spb, _ := cat.Lookup("SPB")
	e3, _ := cat.Lookup("ENTERPRISEPACK")
	admin := domain.Actor{UserID: "admin", Roles: []domain.Role{domain.RoleGlobalAdmin}}
	var batch []eventstore.EventData
	v := uint64(0)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := store.Append(ctx, tenantstream.Name(tenant), eventstore.Exactly(v-uint64(len(batch))), batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(p domain.Payload) {
		v++
		e := domain.Event{Envelope: domain.Envelope{EventID: domain.EventID(tenant, "bench", v), Type: p.EventType(), TenantID: tenant,
			Version: v, OccurredAt: at, Actor: admin, CommandID: fmt.Sprint("bench-", v), Schema: domain.CurrentSchema}, Payload: p}
		data, err := domain.EncodeEvent(e)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, eventstore.EventData{ID: e.EventID, Type: e.Type, Data: data})
		if len(batch) == 1000 {
			flush()
		}
	}
	add(domain.TenantCreated{TenantID: tenant, Name: tenant})
	add(domain.UserAdded{UserID: "admin", UserPrincipalName: "admin@" + tenant + ".example", DisplayName: "Admin", UserType: domain.UserTypeMember, UsageLocation: "US"})
	add(domain.AdminRolesChanged{UserID: "admin", Roles: []domain.Role{domain.RoleGlobalAdmin}})
	add(domain.SubscriptionPurchased{SubscriptionID: "s1", SkuID: spb.SkuID, Quantity: n, Kind: domain.KindPaid, Channel: domain.ChannelDirect})
	add(domain.SubscriptionPurchased{SubscriptionID: "s2", SkuID: e3.SkuID, Quantity: n, Kind: domain.KindPaid, Channel: domain.ChannelDirect})
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		id := fmt.Sprintf("u%06d", i)
		first, last := benchFirst[rnd.IntN(len(benchFirst))], benchLast[rnd.IntN(len(benchLast))]
		typ := domain.UserTypeMember
		if i%10 == 3 {
			typ = domain.UserTypeGuest
		}
		add(domain.UserAdded{UserID: id, UserPrincipalName: fmt.Sprintf("%s.%s%d@%s.example", readmodel.Fold(first), readmodel.Fold(last), i, tenant),
			DisplayName: first + " " + last, UserType: typ, UsageLocation: "FR"})
		if i%2 == 0 {
			add(domain.LicenseAssigned{UserID: id, SkuID: spb.SkuID, Source: domain.SourceDirect})
		}
		if i%4 == 1 {
			add(domain.LicenseAssigned{UserID: id, SkuID: e3.SkuID, Source: domain.SourceDirect})
		}
		if i%50 == 7 {
			add(domain.UserDeleted{UserID: id})
		}
	}
	flush()
}

// BenchmarkUsersLargeTenant: the users list of a 100,000-user tenant,
// filtered, searched and paged, from the read models in Redis DB 7 (docs/BENCHMARKS.md, "Users list: filters and search").
// (the live projection writes it). Reports each kind's p50 and p99 over its requests, and the read-model
// memory per user (MEMORY USAGE of the tenant's user keys).
func BenchmarkUsersLargeTenant(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-user tenant")
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: 7})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		b.Skipf("no Redis at 127.0.0.1:6379: %v", err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil { // DB 7 is this benchmark's
		b.Fatal(err)
	}
	defer rdb.FlushDB(context.Background())
	store, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	const tenant = "large"
	t0 := time.Now()
	writeLargeTenant(b, store, tenant, benchUsers)
	const prefix = "sl:bench:"
	// The live projection writes it (small writes: a replay would write the
	// tenant in one script call, blocking the shared Redis for seconds).
	proj, err := projections.New(projections.Config{Store: store, Snapshots: store, Redis: rdb, Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(pctx) }()
	defer func() { stop(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	if err := proj.WaitFor(wctx, store.LastPosition()); err != nil {
		b.Fatal(err)
	}
	b.Logf("tenant of %d users written and projected in %s", benchUsers, time.Since(t0).Round(time.Millisecond))

	keys := readmodel.Keys{Prefix: prefix}
	var views, index, byID int64
	iter := rdb.Scan(ctx, 0, keys.Tenant(tenant)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		switch {
		case k == keys.Key(tenant, readmodel.Users):
			views += n
		case k == keys.Key(tenant, readmodel.UsersIndex):
			byID += n
		case len(k) > len(keys.Key(tenant, "users:by:")) && k[:len(keys.Key(tenant, "users:by:"))] == keys.Key(tenant, "users:by:"):
			index += n
		}
	}
	per := func(n int64) string { return fmt.Sprintf("%d B", n/benchUsers) }
	b.Logf("memory per user: views %s, id index %s, filter and search indexes %s", per(views), per(byID), per(index))

	s := New(Config{Redis: rdb, Prefix: prefix})
	run := func(name string, next func(i int) (UserFilter, Options)) {
		b.Run(name, func(b *testing.B) {
			var lat []time.Duration
			n := 0
			for i := 0; b.Loop(); i++ {
				f, o := next(i)
				start := time.Now()
				a, err := s.FindUsers(ctx, tenant, f, o)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				n += len(a.Value)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(n)/float64(len(lat)), "rows/op")
		})
	}
	// Pages of 100 at successive cursors, like a client paging.
	paged := func(f UserFilter) func(int) (UserFilter, Options) {
		cursor := ""
		return func(int) (UserFilter, Options) {
			o := Options{Limit: 100, Cursor: cursor}
			a, err := s.FindUsers(ctx, tenant, f, o)
			if err == nil {
				cursor = a.NextCursor
			}
			return f, o
		}
	}
	run("guests", paged(UserFilter{UserType: "Guest"}))
	run("unlicensed-active", paged(UserFilter{Licensed: "false", Status: "active"}))
	run("holders-of-E3-by-upn", paged(UserFilter{SkuID: "ENTERPRISEPACK", OrderBy: "userPrincipalName"}))
	run("active-guests-holding-E3", paged(UserFilter{UserType: "Guest", SkuID: "ENTERPRISEPACK", Status: "active"}))
	terms := []string{"élo", "ZOE", "jürg", "sor", "mia", "dan", "chlo", "renee", "ana", "bjorn"}
	run("search", func(i int) (UserFilter, Options) {
		return UserFilter{Search: terms[i%len(terms)]}, Options{Limit: 100}
	})
	run("search-guests", func(i int) (UserFilter, Options) {
		return UserFilter{Search: terms[i%len(terms)], UserType: "Guest"}, Options{Limit: 100}
	})
}
