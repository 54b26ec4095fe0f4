package commands

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// writeLongTenant appends n events to one tenant: 100 users whose license is
// assigned and unassigned over and over. keyed gives every event a request
// hash, as a command sent with an Idempotency-Key has: the state then
// remembers the last 10,000–20,000 commands (domain.CommandHistory).
func writeLongTenant(b *testing.B, store eventstore.Store, tenant string, n int, keyed bool) {
	b.Helper()
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	spb := mustSku(b, "SPB")
	var batch []eventstore.EventData
	v := uint64(0)
	add := func(p domain.Payload) {
		v++
		e := domain.Event{Envelope: domain.Envelope{EventID: domain.EventID(tenant, "bench", v), Type: p.EventType(), TenantID: tenant,
			Version: v, OccurredAt: at.Add(time.Duration(v) * time.Second), Actor: admin, CommandID: fmt.Sprint("bench-", v), Schema: domain.CurrentSchema}, Payload: p}
		if keyed {
			e.RequestHash = fmt.Sprintf("%064x", v)
		}
		data, err := domain.EncodeEvent(e)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, eventstore.EventData{ID: e.EventID, Type: e.Type, Data: data})
		if len(batch) == 1000 {
			if _, err := store.Append(ctx, tenantstream.Name(tenant), eventstore.Exactly(v-uint64(len(batch))), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	add(domain.TenantCreated{TenantID: tenant, Name: tenant})
	add(domain.SubscriptionPurchased{SubscriptionID: "s", SkuID: spb, Quantity: 1000, Kind: domain.KindPaid, Channel: domain.ChannelDirect})
	for i := 0; i < 100; i++ {
		add(domain.UserAdded{UserID: fmt.Sprint("u", i), UserPrincipalName: fmt.Sprint("u", i, "@x.com"), UserType: domain.UserTypeMember, UsageLocation: "US"})
	}
	for i := 0; int(v) < n; i++ {
		u := fmt.Sprint("u", i%100)
		if (i/100)%2 == 0 {
			add(domain.LicenseAssigned{UserID: u, SkuID: spb, Source: domain.SourceDirect})
		} else {
			add(domain.LicenseUnassigned{UserID: u, SkuID: spb, Source: domain.SourceDirect})
		}
	}
	if len(batch) > 0 {
		if _, err := store.Append(ctx, tenantstream.Name(tenant), eventstore.Exactly(v-uint64(len(batch))), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdLoad loads a tenant of 1,000,000 events that no cache holds:
// with a snapshot it reads the snapshot and the tail; without, it folds
// every event. The snapshot is at 999,000, as the handler writes one at
// every multiple of K=1000, so the tail is 1,000 events: one more than the
// longest a handler leaves. "keyed" is the same tenant with every command
// sent with an Idempotency-Key, whose snapshot also holds the 10,000–20,000
// commands the tenant remembers.
func BenchmarkColdLoad(b *testing.B) {
	const n, k = 1_000_000, 1000
	store := openStore(b)
	ctx := context.Background()
	h := newHandler(store, store, time.Now)
	defer h.Close()
	for _, keyed := range []bool{false, true} {
		tenant := fmt.Sprint("long-keyed-", keyed)
		writeLongTenant(b, store, tenant, n, keyed)
		if err := h.Snapshot(ctx, tenant, n-k); err != nil {
			b.Fatal(err)
		}
		snap, _, err := store.LoadSnapshot(ctx, tenantstream.Name(tenant), 0)
		if err != nil || snap.Version != n-k {
			b.Fatal(err, snap.Version)
		}
		b.Run(fmt.Sprintf("snapshot+tail/keyed=%v", keyed), func(b *testing.B) {
			b.ReportMetric(float64(len(snap.Data)), "snapshot-bytes")
			for i := 0; i < b.N; i++ {
				st, err := tenantstream.Fold(ctx, store, store, nil, tenant, 0)
				if err != nil || st.Version != n {
					b.Fatal(err, st.Version)
				}
			}
		})
	}
	b.Run("no-snapshot", func(b *testing.B) {
		b.ReportMetric(float64(n), "events")
		for i := 0; i < b.N; i++ {
			st, err := tenantstream.Fold(ctx, store, nil, nil, "long-keyed-false", 0)
			if err != nil || st.Version != n {
				b.Fatal(err, st.Version)
			}
		}
	})
}
