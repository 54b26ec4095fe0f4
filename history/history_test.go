package history

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/tenantstream"
)

type world struct {
	svc   *Service
	store *embedded.Store
	h     *commands.Handler
	times []time.Time // occurredAt of each version (index version-1)
}

// randomWorkload runs n random commands on tenant "t" with a clock that
// ticks 1–90 minutes per command, snapshots every 25 events.
func randomWorkload(t *testing.T, seed int64, n int) *world {
	t.Helper()
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r := rand.New(rand.NewSource(seed))
	var mu sync.Mutex
	now := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := commands.New(commands.Config{Store: store, Snapshots: store, SnapshotEvery: 25,
		Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy()), Clock: clock})
	t.Cleanup(h.Close)
	ctx := context.Background()
	seq := 0
	m := func(actor domain.Actor) domain.CommandMeta {
		seq++
		return domain.CommandMeta{TenantID: "t", CommandID: fmt.Sprint("c", seq), Actor: actor}
	}
	admin := domain.Actor{UserID: "admin"}
	run := func(c domain.Command) { _, _ = h.Handle(ctx, c) }
	run(&domain.CreateTenant{CommandMeta: m(domain.Actor{Operator: true}), Name: "T",
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@t.com", UsageLocation: "US"}})
	users := []string{"ann", "ben", "cat", "dan", "eve", "fay"}
	skus := []string{"SPB", "ENTERPRISEPACK", "EXCHANGESTANDARD"}
	for _, u := range users[:3] {
		run(&domain.AddUser{CommandMeta: m(admin), User: domain.NewUser{ID: u, UserPrincipalName: u + "@t.com", UsageLocation: "US"}})
	}
	run(&domain.PurchaseSubscription{CommandMeta: m(admin), SubscriptionID: "s0", SkuID: "SPB", Quantity: 3})
	for i := 0; i < n; i++ {
		mu.Lock()
		now = now.Add(time.Duration(1+r.Intn(90)) * time.Minute)
		mu.Unlock()
		u, sku := users[r.Intn(len(users))], skus[r.Intn(len(skus))]
		switch r.Intn(9) {
		case 0:
			run(&domain.AddUser{CommandMeta: m(admin), User: domain.NewUser{ID: u, UserPrincipalName: u + "@t.com", UsageLocation: "US"}})
		case 1:
			run(&domain.PurchaseSubscription{CommandMeta: m(admin), SubscriptionID: fmt.Sprint("s", r.Intn(5)), SkuID: sku, Quantity: 1 + r.Intn(3)})
		case 2, 3:
			run(&domain.AssignLicenses{CommandMeta: m(admin), SkuID: sku, Users: []string{u}})
		case 4:
			run(&domain.UnassignLicenses{CommandMeta: m(admin), SkuID: sku, Users: []string{u}})
		case 5:
			run(&domain.DeleteUser{CommandMeta: m(admin), UserID: u})
		case 6:
			run(&domain.RestoreUser{CommandMeta: m(admin), UserID: u})
		case 7:
			run(&domain.CreateGroup{CommandMeta: m(admin), GroupID: "g", DisplayName: "G"})
			run(&domain.AddGroupMember{CommandMeta: m(admin), GroupID: "g", UserID: u})
			run(&domain.AssignGroupLicenses{CommandMeta: m(admin), GroupID: "g", Add: []domain.LicenseRequest{{SkuID: sku}}})
		default:
			run(&domain.SetAdminRoles{CommandMeta: m(admin), UserID: u, Roles: []domain.Role{domain.RoleLicenseAdmin}})
		}
	}
	w := &world{svc: &Service{Store: store, Snapshots: store, Catalog: domain.DefaultCatalog()}, store: store, h: h}
	recs, err := store.ReadStream(ctx, tenantstream.Name("t"), 1, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		e, err := domain.DecodeEvent(rec.Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.times = append(w.times, e.OccurredAt)
	}
	if len(w.times) < n/4 {
		t.Fatalf("the workload decided too little: %d events", len(w.times))
	}
	return w
}

// foldFirst folds the first n events from scratch, without snapshots.
func (w *world) foldFirst(t *testing.T, n uint64) State {
	st, err := tenantstream.Fold(context.Background(), w.store, nil, nil, "t", n)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		st = domain.NewTenant()
	}
	return Render(domain.DefaultCatalog(), st)
}

func asJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProperty_StateAtVersionNIsTheFoldOfTheFirstNEvents(t *testing.T) {
	ctx := context.Background()
	for seed := int64(1); seed <= 3; seed++ {
		w := randomWorkload(t, seed, 150)
		r := rand.New(rand.NewSource(seed))
		head := uint64(len(w.times))
		for i := 0; i < 25; i++ {
			n := 1 + uint64(r.Int63n(int64(head)))
			st, err := w.svc.StateAt(ctx, "t", n) // from the nearest snapshot
			if err != nil {
				t.Fatal(err)
			}
			if got, want := asJSON(t, Render(w.svc.Catalog, st)), asJSON(t, w.foldFirst(t, n)); got != want {
				t.Fatalf("seed %d: state at version %d differs from the fold of its first %d events", seed, n, n)
			}
		}
	}
}

func TestStateAtATimeBetweenTwoEventsIsTheEarlierOne(t *testing.T) {
	ctx := context.Background()
	w := randomWorkload(t, 7, 120)
	for v := 1; v < len(w.times); v++ {
		if !w.times[v].After(w.times[v-1]) {
			continue // several events of one command share a time
		}
		between := w.times[v-1].Add(w.times[v].Sub(w.times[v-1]) / 2)
		got, err := w.svc.VersionAt(ctx, "t", between)
		if err != nil {
			t.Fatal(err)
		}
		if got != uint64(v) {
			t.Fatalf("at %v: version %d, want %d", between, got, v)
		}
		exact, _ := w.svc.VersionAt(ctx, "t", w.times[v])
		if exact < uint64(v+1) {
			t.Fatalf("at the exact time of version %d: %d", v+1, exact)
		}
	}
	if v, _ := w.svc.VersionAt(ctx, "t", w.times[0].Add(-time.Second)); v != 0 {
		t.Fatalf("before the first event: %d", v)
	}
}

func TestDiffFromAToBAppliedToAGivesB(t *testing.T) {
	ctx := context.Background()
	w := randomWorkload(t, 3, 150)
	r := rand.New(rand.NewSource(3))
	head := uint64(len(w.times))
	for i := 0; i < 20; i++ {
		a := uint64(r.Int63n(int64(head)))
		b := a + uint64(r.Int63n(int64(head-a)+1))
		d, err := w.svc.DiffBetween(ctx, "t", a, b)
		if err != nil {
			t.Fatal(err)
		}
		ents := func(s State) map[string]json.RawMessage {
			out := map[string]json.RawMessage{}
			for k, v := range Entities(s) {
				out[k], _ = json.Marshal(v)
			}
			return out
		}
		got := Apply(ents(w.foldFirst(t, a)), d.Changes)
		want := ents(w.foldFirst(t, b))
		if len(got) != len(want) {
			t.Fatalf("%d→%d: %d entities, want %d", a, b, len(got), len(want))
		}
		for k := range want {
			if !jsonEqual(got[k], want[k]) {
				t.Fatalf("%d→%d: entity %s differs", a, b, k)
			}
		}
		for _, c := range d.Changes {
			if c.Entity != "tenant" && len(c.Events) == 0 {
				t.Fatalf("%d→%d: change of %s names no event", a, b, c.Entity)
			}
		}
	}
}

func TestAuditFiltersAndPagination(t *testing.T) {
	ctx := context.Background()
	w := randomWorkload(t, 5, 150)
	head := uint64(len(w.times))
	// Pages forward cover the whole log once, in order.
	var all []Record
	cur := ""
	for {
		p, err := w.svc.Audit(ctx, "t", Filter{}, cur, false, 17)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Records...)
		if p.NextCursor == "" {
			break
		}
		cur = p.NextCursor
	}
	if uint64(len(all)) != head {
		t.Fatalf("%d records, want %d", len(all), head)
	}
	for i, r := range all {
		if r.Version != uint64(i+1) || r.Summary == "" {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// Backwards gives the reverse.
	var back []Record
	cur = ""
	for {
		p, err := w.svc.Audit(ctx, "t", Filter{}, cur, true, 23)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, p.Records...)
		if p.NextCursor == "" {
			break
		}
		cur = p.NextCursor
	}
	for i := range back {
		if back[i].Version != all[len(all)-1-i].Version {
			t.Fatal("backward pages are not the reverse of forward pages")
		}
	}
	// prevCursor of a middle page leads back to the page before.
	p1, _ := w.svc.Audit(ctx, "t", Filter{}, "", false, 10)
	p2, _ := w.svc.Audit(ctx, "t", Filter{}, p1.NextCursor, false, 10)
	prev, _ := w.svc.Audit(ctx, "t", Filter{}, p2.PrevCursor, true, 10)
	if prev.Records[0].Version != p1.Records[9].Version {
		t.Fatalf("prev page starts at %d, want %d", prev.Records[0].Version, p1.Records[9].Version)
	}

	check := func(name string, f Filter, keep func(Record) bool) {
		p, err := w.svc.Audit(ctx, "t", f, "", false, 500)
		if err != nil {
			t.Fatal(err)
		}
		var want []uint64
		for _, r := range all {
			if keep(r) {
				want = append(want, r.Version)
			}
		}
		var got []uint64
		for _, r := range p.Records {
			got = append(got, r.Version)
		}
		if len(want) == 0 {
			t.Fatalf("filter %s matches nothing: a useless check", name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("filter %s: got %v want %v", name, got, want)
		}
	}
	spb := domain.DefaultCatalog().Products[0].SkuID
	for _, r := range all {
		if r.Target.SkuID != "" {
			spb = r.Target.SkuID
			break
		}
	}
	mid := all[len(all)/2].OccurredAt
	late := all[3*len(all)/4].OccurredAt
	check("type", Filter{Type: domain.TypeLicenseAssigned}, func(r Record) bool { return r.Type == domain.TypeLicenseAssigned })
	check("actor", Filter{Actor: "operator"}, func(r Record) bool { return r.Actor.Operator })
	check("user", Filter{User: "ann"}, func(r Record) bool { return r.Target.UserID == "ann" })
	check("sku", Filter{Sku: spb}, func(r Record) bool { return r.Target.SkuID == spb })
	check("since", Filter{Since: mid}, func(r Record) bool { return !r.OccurredAt.Before(mid) })
	check("until", Filter{Until: mid}, func(r Record) bool { return !r.OccurredAt.After(mid) })
	check("since+until+type", Filter{Since: mid, Until: late, Type: domain.TypeLicenseAssigned}, func(r Record) bool {
		return !r.OccurredAt.Before(mid) && !r.OccurredAt.After(late) && r.Type == domain.TypeLicenseAssigned
	})
	if _, err := w.svc.Audit(ctx, "t", Filter{}, "garbage!", false, 10); err == nil {
		t.Fatal("a bad cursor is an error")
	}
	if _, err := w.svc.Audit(ctx, "nobody", Filter{}, "", false, 10); err == nil {
		t.Fatal("an unknown tenant is an error")
	}
}

func TestSnapshotsDeletedGiveTheSameAnswers(t *testing.T) {
	ctx := context.Background()
	w := randomWorkload(t, 11, 150)
	head := uint64(len(w.times))
	var before []string
	for v := uint64(1); v <= head; v += 7 {
		st, _ := w.svc.StateAt(ctx, "t", v)
		before = append(before, asJSON(t, Render(w.svc.Catalog, st)))
	}
	d1, _ := w.svc.DiffBetween(ctx, "t", head/3, head)
	if err := w.store.DeleteSnapshots(ctx, ""); err != nil {
		t.Fatal(err)
	}
	i := 0
	for v := uint64(1); v <= head; v += 7 {
		st, _ := w.svc.StateAt(ctx, "t", v)
		if asJSON(t, Render(w.svc.Catalog, st)) != before[i] {
			t.Fatalf("state at %d changed when snapshots were deleted", v)
		}
		i++
	}
	d2, _ := w.svc.DiffBetween(ctx, "t", head/3, head)
	if asJSON(t, d1) != asJSON(t, d2) {
		t.Fatal("diff changed when snapshots were deleted")
	}
}
