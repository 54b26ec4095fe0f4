// Package benchdata writes large, valid tenant histories straight into an
// event store, for benchmarks and `seatledger bench`: a million events in
// seconds, without deciding each command.
package benchdata

import (
	"context"
	"fmt"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// Start is the occurredAt of the first event of a written tenant; each
// following event occurs one second later.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteLongTenant appends n events to tenant: a tenant with users licensed
// users of Microsoft 365 Business Premium whose licenses are assigned and
// unassigned over and over, with the data holds and releases that go with it.
// Event i (1-based) occurs at Start + i seconds.
func WriteLongTenant(ctx context.Context, store eventstore.Store, tenant string, n, users int) error {
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	admin := domain.Actor{UserID: "admin", Roles: []domain.Role{domain.RoleGlobalAdmin}}
	var batch []eventstore.EventData
	v := uint64(0)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := store.Append(ctx, tenantstream.Name(tenant), eventstore.Exactly(v-uint64(len(batch))), batch)
		batch = batch[:0]
		return err
	}
	add := func(p domain.Payload) error {
		v++
		e := domain.Event{Envelope: domain.Envelope{EventID: domain.EventID(tenant, "benchdata", v), Type: p.EventType(), TenantID: tenant,
			Version: v, OccurredAt: Start.Add(time.Duration(v) * time.Second), Actor: admin, CommandID: fmt.Sprint("bench-", v), Schema: domain.CurrentSchema}, Payload: p}
		data, err := domain.EncodeEvent(e)
		if err != nil {
			return err
		}
		batch = append(batch, eventstore.EventData{ID: e.EventID, Type: e.Type, Data: data})
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	}
	steps := []domain.Payload{
		domain.TenantCreated{TenantID: tenant, Name: tenant},
		domain.UserAdded{UserID: "admin", UserPrincipalName: "admin@" + tenant + ".example", UserType: domain.UserTypeMember, UsageLocation: "US"},
		domain.AdminRolesChanged{UserID: "admin", Roles: []domain.Role{domain.RoleGlobalAdmin}},
		domain.SubscriptionPurchased{SubscriptionID: "s", SkuID: spb.SkuID, Quantity: users, Kind: domain.KindPaid, Channel: domain.ChannelDirect},
	}
	for i := 0; i < users; i++ {
		u := fmt.Sprint("u", i)
		steps = append(steps, domain.UserAdded{UserID: u, UserPrincipalName: u + "@" + tenant + ".example", UserType: domain.UserTypeMember, UsageLocation: "US"})
	}
	for _, p := range steps {
		if err := add(p); err != nil {
			return err
		}
	}
	for i := 0; int(v) < n; i++ {
		u := fmt.Sprint("u", i%users)
		var p domain.Payload
		switch (i / users) % 4 {
		case 0:
			p = domain.LicenseAssigned{UserID: u, SkuID: spb.SkuID, Source: domain.SourceDirect}
		case 1:
			p = domain.LicenseUnassigned{UserID: u, SkuID: spb.SkuID, Source: domain.SourceDirect}
		case 2:
			at := Start.Add(time.Duration(v+1) * time.Second)
			p = domain.DataHeld{UserID: u, Workload: domain.WorkloadExchange, HeldSince: at, PurgeAfter: at.Add(720 * time.Hour), Reason: "licenseRemoved"}
		default:
			p = domain.DataHoldReleased{UserID: u, Workload: domain.WorkloadExchange, Reason: "licenseAssigned"}
		}
		if err := add(p); err != nil {
			return err
		}
	}
	return flush()
}
