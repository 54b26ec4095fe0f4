package history

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
)

// TestTimeTravelShowsSubscriptionTerms: the state at a time shows each
// subscription's term, trial end, cancellation window, recurring billing
// and lifecycle status as they were then (R16, R17), and a diff shows the
// status move.
func TestTimeTravelShowsSubscriptionTerms(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	h := commands.New(commands.Config{Store: store, Snapshots: store, Clock: func() time.Time { return now },
		Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())})
	defer h.Close()
	seq := 0
	do := func(actor domain.Actor, c domain.Command) {
		t.Helper()
		seq++
		m := domain.Meta(c)
		m.TenantID, m.CommandID, m.Actor = "t", fmt.Sprint("c", seq), actor
		if _, err := h.Handle(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.CommandName(), err)
		}
	}
	admin := domain.Actor{UserID: "admin"}
	do(domain.Actor{Operator: true}, &domain.CreateTenant{Name: "T",
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@t.com", UsageLocation: "US"}})
	do(admin, &domain.PurchaseSubscription{SubscriptionID: "m", SkuID: "SPB", Quantity: 2, Term: domain.TermMonthly})
	do(admin, &domain.PurchaseSubscription{SubscriptionID: "try", SkuID: "SPB", Quantity: 5, Kind: domain.KindTrial})
	do(admin, &domain.SetRecurringBilling{SubscriptionID: "m", Enabled: false})
	bought := now
	now = time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)
	do(domain.Actor{System: "scheduler"}, &domain.AdvanceSubscriptions{Subscriptions: []string{"m", "try"}})

	svc := &Service{Store: store, Snapshots: store, Catalog: domain.DefaultCatalog()}
	type sub struct {
		ID, Term, Status, Kind                              string
		TermStart, TermEnd, TrialEnd, CancellationWindowEnd *time.Time
		DisableAt                                           *time.Time
		RecurringBilling                                    *bool
	}
	at := func(when time.Time) map[string]sub {
		t.Helper()
		v, err := svc.VersionAt(ctx, "t", when)
		if err != nil {
			t.Fatal(err)
		}
		st, err := svc.StateAt(ctx, "t", v)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(Render(svc.Catalog, st))
		var s struct{ Subscriptions []sub }
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		out := map[string]sub{}
		for _, x := range s.Subscriptions {
			out[x.ID] = x
		}
		return out
	}
	before := at(bought.Add(time.Hour))
	m, tr := before["m"], before["try"]
	if m.Term != "P1M" || m.Status != "Enabled" || m.RecurringBilling == nil || *m.RecurringBilling ||
		m.TermEnd == nil || !m.TermEnd.Equal(time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)) ||
		m.CancellationWindowEnd == nil || !m.CancellationWindowEnd.Equal(bought.Add(7*24*time.Hour)) || m.TrialEnd != nil {
		t.Fatalf("before the term ended: %+v", m)
	}
	if tr.TrialEnd == nil || !tr.TrialEnd.Equal(bought.Add(30*24*time.Hour)) || tr.CancellationWindowEnd != nil {
		t.Fatalf("trial: %+v", tr)
	}
	after := at(now)
	if m := after["m"]; m.Status != "Expired" || m.DisableAt == nil || !m.DisableAt.Equal(now.Add(30*24*time.Hour)) {
		t.Fatalf("after the term ended: %+v", m)
	}
	if tr := after["try"]; tr.Status != "Expired" {
		t.Fatalf("trial after its month: %+v", tr)
	}
	head, _ := svc.Head(ctx, "t")
	d, err := svc.DiffBetween(ctx, "t", head-1, head)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(d); !json.Valid(b) || !strings.Contains(string(b), `"Expired"`) {
		t.Fatalf("the diff does not show the expiry: %s", b)
	}
}
