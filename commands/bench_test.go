package commands

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
)

// writeLongTenant appends n events to one tenant: 100 users whose license is
// assigned and unassigned over and over.
func writeLongTenant(b *testing.B, store eventstore.Store, tenant string, n int) {
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
		data, err := domain.EncodeEvent(e)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, eventstore.EventData{ID: e.EventID, Type: e.Type, Data: data})
		if len(batch) == 1000 {
			if _, err := store.Append(ctx, StreamName(tenant), eventstore.Exactly(v-uint64(len(batch))), batch); err != nil {
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
		if _, err := store.Append(ctx, StreamName(tenant), eventstore.Exactly(v-uint64(len(batch))), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdLoad loads a tenant of 1,000,000 events that no cache holds:
// with a snapshot (the K-th event snapshot the handler writes) it reads the
// snapshot and the tail; without, it folds every event.
func BenchmarkColdLoad(b *testing.B) {
	const n = 1_000_000
	store := openStore(b)
	writeLongTenant(b, store, "long", n)
	ctx := context.Background()
	h := newHandler(store, store, time.Now)
	defer h.Close()
	// The last multiple of K=1000 below the head, as the snapshotter writes it;
	// then 999 events of tail.
	if err := h.Snapshot(ctx, "long", n-999); err != nil {
		b.Fatal(err)
	}
	b.Run("snapshot+tail", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			st, err := Fold(ctx, store, store, nil, "long", 0)
			if err != nil || st.Version != n {
				b.Fatal(err, st.Version)
			}
		}
	})
	b.Run("no-snapshot", func(b *testing.B) {
		b.ReportMetric(float64(n), "events")
		for i := 0; i < b.N; i++ {
			st, err := Fold(ctx, store, nil, nil, "long", 0)
			if err != nil || st.Version != n {
				b.Fatal(err, st.Version)
			}
		}
	})
}
