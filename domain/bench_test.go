package domain

import (
	"fmt"
	"testing"
	"time"
)

// bigTenant builds a tenant of n users and 50 products (the catalog's and
// ISV apps), half of the users holding the first product.
func bigTenant(b *testing.B, users int) (*Decider, *Tenant, []*Product) {
	d := NewDecider(DefaultCatalog(), DefaultPolicy())
	t := NewTenant()
	v := uint64(0)
	at := day0
	apply := func(p Payload) {
		v++
		Evolve(t, Event{Envelope: Envelope{Version: v, OccurredAt: at, Type: p.EventType(), CommandID: fmt.Sprint("c", v)}, Payload: p})
	}
	apply(TenantCreated{TenantID: "big", Name: "Big"})
	apply(UserAdded{UserID: "admin", UserPrincipalName: "admin@big.com", UserType: UserTypeMember, UsageLocation: "US"})
	apply(AdminRolesChanged{UserID: "admin", Roles: []Role{RoleGlobalAdmin}})
	var products []*Product
	for i := range d.Catalog.Products {
		products = append(products, &d.Catalog.Products[i])
	}
	for i := len(products); i < 50; i++ {
		p := Product{SkuID: fmt.Sprintf("isv-%d", i), SkuPartNumber: fmt.Sprintf("ISV_%d", i), DisplayName: "App", Publisher: "P",
			ServicePlans: []ServicePlan{{ID: fmt.Sprintf("isv-%d-plan", i), Name: fmt.Sprintf("ISV_%d_PLAN", i), Workload: WorkloadOther}}}
		apply(ProductRegistered{Product: p})
		products = append(products, t.Apps[p.SkuID])
	}
	for i, p := range products {
		apply(SubscriptionPurchased{SubscriptionID: fmt.Sprint("s", i), SkuID: p.SkuID, Quantity: users, Kind: KindPaid, Channel: ChannelDirect})
	}
	for i := 0; i < users; i++ {
		id := fmt.Sprint("u", i)
		apply(UserAdded{UserID: id, UserPrincipalName: id + "@big.com", UserType: UserTypeMember, UsageLocation: "US"})
		if i%2 == 0 {
			apply(LicenseAssigned{UserID: id, SkuID: products[0].SkuID, Source: SourceDirect})
		}
	}
	// Keep the command history small so the benchmark measures Decide.
	return d, t, products
}

// BenchmarkDecideAssignLicense decides AssignLicense for one user on a
// tenant of 100k users and 50 products: the cost must not grow with the
// tenant.
func BenchmarkDecideAssignLicense(b *testing.B) {
	for _, users := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			d, t, products := bigTenant(b, users)
			sku := products[3].SkuID
			cmd := &AssignLicenses{CommandMeta: CommandMeta{TenantID: "big", Actor: Actor{UserID: "admin"}, Now: day0.Add(time.Hour)},
				SkuID: sku, Users: []string{"u1"}}
			ids := make([]string, 1024)
			for i := range ids {
				ids[i] = fmt.Sprint("bench-", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cmd.CommandID = ids[i%len(ids)]
				evs, err := d.Decide(t, cmd)
				if err != nil || len(evs) != 1 {
					b.Fatal(err, evs)
				}
			}
		})
	}
}

// BenchmarkDecideBench decides and applies the commands of `seatledger
// bench` on a tenant as its set-up leaves it (an admin, eight users, a
// subscription of SPB): a user assigned SPB, then unassigned, in turn.
func BenchmarkDecideBench(b *testing.B) {
	d := NewDecider(DefaultCatalog(), DefaultPolicy())
	t := NewTenant()
	apply := func(evs ...Event) {
		for _, e := range evs {
			Evolve(t, e)
		}
	}
	decide := func(c Command) []Event {
		evs, err := d.Decide(t, c)
		if err != nil {
			b.Fatal(err)
		}
		return evs
	}
	meta := func(id string) CommandMeta {
		return CommandMeta{TenantID: "bench-1", CommandID: id, Actor: Actor{UserID: "admin"}, Now: day0.Add(time.Hour)}
	}
	apply(decide(&CreateTenant{CommandMeta: CommandMeta{TenantID: "bench-1", CommandID: "c0", Actor: Actor{Operator: true}, Now: day0},
		Name: "Bench", GlobalAdmin: NewUser{ID: "admin", UserPrincipalName: "admin@bench.example", UsageLocation: "US"}})...)
	apply(decide(&PurchaseSubscription{CommandMeta: meta("c1"), SubscriptionID: "s", SkuID: "SPB", Quantity: 1000})...)
	for u := range 8 {
		apply(decide(&AddUser{CommandMeta: meta(fmt.Sprint("u-", u)), User: NewUser{ID: fmt.Sprint("u", u), UserPrincipalName: fmt.Sprint("u", u, "@bench.example"), UsageLocation: "US"}})...)
	}
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprint("bench-", i)
	}
	users := make([][]string, 8)
	for u := range users {
		users[u] = []string{fmt.Sprint("u", u)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := meta(ids[i%len(ids)])
		u := users[(i/2)%8]
		var c Command
		if i%2 == 0 {
			c = &AssignLicenses{CommandMeta: m, SkuID: "SPB", Users: u}
		} else {
			c = &UnassignLicenses{CommandMeta: m, SkuID: "SPB", Users: u}
		}
		apply(decide(c)...)
	}
}
