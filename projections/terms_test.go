package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/readmodel"
)

// TestSubscriptionRowsShowTheTermAndFeedTheLifecycleSchedule: the
// subscription rows carry the term (R16, R17) and the schedule scores each
// subscription by the next step of its lifecycle, moving as it moves, and
// dropping it once deleted; a replay writes the same.
func TestSubscriptionRowsShowTheTermAndFeedTheLifecycleSchedule(t *testing.T) {
	rdb, prefix := testRedis(t)
	store := openStore(t)
	now := time.Date(2026, 1, 31, 9, 30, 0, 500, time.UTC) // a fraction of a second: scores round up
	h := commands.New(commands.Config{Store: store, Snapshots: store, Clock: func() time.Time { return now },
		Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())})
	defer h.Close()
	seq := 0
	do := func(c domain.Command) {
		t.Helper()
		m := domain.Meta(c)
		seq++
		m.TenantID, m.CommandID = "contoso", fmt.Sprint("c", seq)
		if m.Actor.String() == "" {
			m.Actor = domain.Actor{UserID: "admin"}
		}
		if _, err := h.Handle(context.Background(), c); err != nil {
			t.Fatalf("%s: %v", c.CommandName(), err)
		}
	}
	off := false
	do(&domain.CreateTenant{CommandMeta: domain.CommandMeta{Actor: domain.Actor{Operator: true}}, Name: "Contoso",
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@contoso.com", UsageLocation: "US"}})
	do(&domain.PurchaseSubscription{SubscriptionID: "m", SkuID: "SPB", Quantity: 3, Term: domain.TermMonthly, RecurringBilling: &off})
	do(&domain.PurchaseSubscription{SubscriptionID: "y", SkuID: "SPB", Quantity: 2})
	do(&domain.PurchaseSubscription{SubscriptionID: "try", SkuID: "SPB", Quantity: 25, Kind: domain.KindTrial})
	do(&domain.CancelSubscription{SubscriptionID: "y"})

	rp := startProjection(t, Config{Store: store, Redis: rdb, Prefix: prefix})
	rp.waitFor(t, lastPosition(t, store))
	keys := readmodel.Keys{Prefix: prefix}
	row := func(id string) (readmodel.SubscriptionRow, map[string]any) {
		t.Helper()
		raw, err := rdb.HGet(context.Background(), keys.Key("contoso", readmodel.Subscriptions), id).Result()
		if err != nil {
			t.Fatal(err)
		}
		var r readmodel.SubscriptionRow
		var m map[string]any
		if json.Unmarshal([]byte(raw), &r) != nil || json.Unmarshal([]byte(raw), &m) != nil {
			t.Fatalf("row %s: %s", id, raw)
		}
		return r, m
	}
	due := func() map[string]float64 {
		t.Helper()
		out := map[string]float64{}
		zs, err := rdb.ZRangeWithScores(context.Background(), keys.Key("contoso", readmodel.SubscriptionsDue), 0, -1).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		for _, z := range zs {
			out[fmt.Sprint(z.Member)] = z.Score
		}
		return out
	}
	feb28 := time.Date(2026, 2, 28, 9, 30, 0, 500, time.UTC)
	m, raw := row("m")
	if m.Term != domain.TermMonthly || !m.TermStart.Equal(now) || !m.TermEnd.Equal(feb28) || m.RecurringBilling ||
		!m.CancellationWindowEnd.Equal(now.Add(domain.CancellationWindow)) || m.Status != domain.StatusEnabled {
		t.Fatalf("monthly row: %+v", m)
	}
	if _, ok := raw["trialEnd"]; ok {
		t.Fatalf("a paid subscription's row has no trialEnd: %v", raw)
	}
	tr, _ := row("try")
	if !tr.TrialEnd.Equal(now.Add(domain.TrialLength)) || tr.RecurringBilling || !tr.CancellationWindowEnd.IsZero() {
		t.Fatalf("trial row: %+v", tr)
	}
	y, _ := row("y")
	if y.Status != domain.StatusDisabled || !y.DeleteAt.Equal(now.Add(90*24*time.Hour)) {
		t.Fatalf("cancelled row: %+v", y)
	}
	want := map[string]float64{"m": float64(feb28.Unix() + 1), "try": float64(tr.TrialEnd.Unix() + 1), "y": float64(y.DeleteAt.Unix() + 1)}
	if got := due(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("schedule %v, want %v", got, want)
	}

	// The term ends: Expired, due again at its disable time; the cancelled
	// one is deleted and leaves the schedule.
	now = y.DeleteAt
	do(&domain.AdvanceSubscriptions{CommandMeta: domain.CommandMeta{Actor: domain.Actor{System: "scheduler"}}, Subscriptions: []string{"m", "y"}})
	rp.waitFor(t, lastPosition(t, store))
	m, _ = row("m")
	if m.Status != domain.StatusDisabled || !m.DeleteAt.Equal(feb28.Add(120*24*time.Hour)) {
		t.Fatalf("caught up to Disabled: %+v", m)
	}
	want = map[string]float64{"m": float64(m.DeleteAt.Unix() + 1), "try": want["try"]}
	if got := due(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("schedule %v, want %v", got, want)
	}
	verifyClean(t, store, rdb, prefix)
}
