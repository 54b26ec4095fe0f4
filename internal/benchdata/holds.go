package benchdata

import (
	"context"
	"fmt"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// WriteHeldTenants appends tenants t0…t<tenants-1>, each with users whose
// Exchange data was held at heldAt and falls due at purgeAfter: tenants ×
// users holds in all.
func WriteHeldTenants(ctx context.Context, store eventstore.Store, tenants, users int, heldAt, purgeAfter time.Time) error {
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	admin := domain.Actor{UserID: "admin", Roles: []domain.Role{domain.RoleGlobalAdmin}}
	for t := 0; t < tenants; t++ {
		tenant := fmt.Sprint("t", t)
		var batch []eventstore.EventData
		v := uint64(0)
		add := func(p domain.Payload) error {
			v++
			e := domain.Event{Envelope: domain.Envelope{EventID: domain.EventID(tenant, "held", v), Type: p.EventType(), TenantID: tenant,
				Version: v, OccurredAt: heldAt, Actor: admin, CommandID: "held", Schema: domain.CurrentSchema}, Payload: p}
			data, err := domain.EncodeEvent(e)
			if err != nil {
				return err
			}
			batch = append(batch, eventstore.EventData{ID: e.EventID, Type: e.Type, Data: data})
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
			steps = append(steps,
				domain.UserAdded{UserID: u, UserPrincipalName: u + "@" + tenant + ".example", UserType: domain.UserTypeMember, UsageLocation: "US"},
				domain.DataHeld{UserID: u, Workload: domain.WorkloadExchange, HeldSince: heldAt, PurgeAfter: purgeAfter, Reason: "licenseRemoved"})
		}
		for _, p := range steps {
			if err := add(p); err != nil {
				return err
			}
		}
		if _, err := store.Append(ctx, tenantstream.Name(tenant), eventstore.NoStream, batch); err != nil {
			return err
		}
	}
	return nil
}
