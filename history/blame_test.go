package history

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/tenantstream"
)

// given appends the payloads as tenant "t"'s events 1..n, a minute apart,
// each from its own command (command id "cmd-<version>", correlation id
// "req-<version>") by the admin, and returns the service over them.
func given(t *testing.T, payloads ...domain.Payload) *Service {
	t.Helper()
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var batch []eventstore.EventData
	for i, p := range payloads {
		v := uint64(i + 1)
		e := domain.Event{Envelope: domain.Envelope{EventID: domain.EventID("t", "blame", v), Type: p.EventType(), TenantID: "t", Version: v,
			OccurredAt: blameStart.Add(time.Duration(v) * time.Minute), Actor: domain.Actor{UserID: "admin"},
			CommandID: fmt.Sprint("cmd-", v), CorrelationID: fmt.Sprint("req-", v), Schema: domain.CurrentSchema}, Payload: p}
		data, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, eventstore.EventData{ID: e.EventID, Type: e.Type, Data: data})
	}
	if _, err := store.Append(context.Background(), tenantstream.Name("t"), eventstore.Exactly(0), batch); err != nil {
		t.Fatal(err)
	}
	return &Service{Store: store, Snapshots: store, Catalog: domain.DefaultCatalog()}
}

var blameStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// blamed is path -> version of a blame's entries.
func blamed(t *testing.T, svc *Service, version uint64) map[string]uint64 {
	t.Helper()
	b, err := svc.BlameAt(context.Background(), "t", version, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, e := range b.Entries {
		out[e.Path] = e.Version
		if ev, ok := b.Events[fmt.Sprint(e.Version)]; !ok || ev.Version != e.Version {
			t.Fatalf("entry %s names version %d, which events lacks", e.Path, e.Version)
		}
	}
	return out
}

func thenBlamed(t *testing.T, got map[string]uint64, want map[string]uint64) {
	t.Helper()
	for p, v := range want {
		g, ok := got[p]
		switch {
		case v == 0 && ok:
			t.Errorf("%s: blamed on version %d, want no such value", p, g)
		case v != 0 && !ok:
			t.Errorf("%s: no such value, want it blamed on version %d", p, v)
		case v != 0 && g != v:
			t.Errorf("%s: blamed on version %d, want %d", p, g, v)
		}
	}
}

func tenantWithUser() []domain.Payload {
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	return []domain.Payload{
		domain.TenantCreated{TenantID: "t", Name: "T"}, // 1
		domain.UserAdded{UserID: "admin", UserPrincipalName: "admin@t.example", UserType: domain.UserTypeMember, UsageLocation: "US"},           // 2
		domain.UserAdded{UserID: "ann", UserPrincipalName: "ann@t.example", UserType: domain.UserTypeMember, UsageLocation: "US"},               // 3
		domain.SubscriptionPurchased{SubscriptionID: "s1", SkuID: spb.SkuID, Quantity: 5, Kind: domain.KindPaid, Channel: domain.ChannelDirect}, // 4
	}
}

func TestBlame_AValueChangedTwiceIsBlamedOnTheSecondEvent(t *testing.T) {
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	plan := spb.ServicePlans[0].ID
	// Given a license assigned (5), then a plan switched off (6), roles set
	// twice (7, 8) and the subscription's quantity changed twice (9, 10).
	svc := given(t, append(tenantWithUser(),
		domain.LicenseAssigned{UserID: "ann", SkuID: spb.SkuID, Source: domain.SourceDirect},                                    // 5
		domain.LicensePlansChanged{UserID: "ann", SkuID: spb.SkuID, Source: domain.SourceDirect, DisabledPlans: []string{plan}}, // 6
		domain.AdminRolesChanged{UserID: "ann", Roles: []domain.Role{domain.RoleUserAdmin}},                                     // 7
		domain.AdminRolesChanged{UserID: "ann", Roles: []domain.Role{domain.RoleLicenseAdmin}},                                  // 8
		domain.SubscriptionQuantityChanged{SubscriptionID: "s1", SkuID: spb.SkuID, Quantity: 7, Previous: 5},                    // 9
		domain.SubscriptionQuantityChanged{SubscriptionID: "s1", SkuID: spb.SkuID, Quantity: 9, Previous: 7},                    // 10
		domain.AdminRolesChanged{UserID: "ann", Roles: []domain.Role{domain.RoleLicenseAdmin}},                                  // 11: the same roles
	)...)
	lic := "users/ann/licenses/" + spb.SkuID
	// When blaming the latest state, then each value names its last change.
	thenBlamed(t, blamed(t, svc, 11), map[string]uint64{
		"name":                              1,
		"users/ann":                         3,
		"users/ann/status":                  3,
		lic:                                 6,
		lic + "/disabledPlans/" + plan:      6,
		"users/ann/roles":                   8, // 11 set the same roles: nothing changed
		"subscriptions/s1":                  10,
		"subscriptions/s1/quantity":         10,
		"subscriptions/s1/status":           4,
		"products/" + spb.SkuID:             10, // the total; the assignment (5) changed it before
		"users/admin/licenses/" + spb.SkuID: 0,
	})
	// When blaming an earlier point, then it is the blame of that point.
	thenBlamed(t, blamed(t, svc, 5), map[string]uint64{
		lic:                            5,
		lic + "/disabledPlans/" + plan: 0,
		"products/" + spb.SkuID:        5,
		"subscriptions/s1/quantity":    4,
		"users/ann/roles":              3,
	})
}

func TestBlame_ARemovedValueIsAbsent(t *testing.T) {
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	held := blameStart.Add(time.Hour)
	// Given a license assigned then unassigned, and data held then released.
	svc := given(t, append(tenantWithUser(),
		domain.LicenseAssigned{UserID: "ann", SkuID: spb.SkuID, Source: domain.SourceDirect},                                                                // 5
		domain.LicenseUnassigned{UserID: "ann", SkuID: spb.SkuID, Source: domain.SourceDirect},                                                              // 6
		domain.DataHeld{UserID: "ann", Workload: domain.WorkloadExchange, HeldSince: held, PurgeAfter: held.Add(720 * time.Hour), Reason: "licenseRemoved"}, // 7
		domain.DataHoldReleased{UserID: "ann", Workload: domain.WorkloadExchange, Reason: "licenseAssigned"},                                                // 8
	)...)
	thenBlamed(t, blamed(t, svc, 8), map[string]uint64{
		"users/ann/licenses/" + spb.SkuID: 0,
		"heldData/ann/Exchange":           0,
		"products/" + spb.SkuID:           6,
	})
	// When asking for the removed value, then it does not exist (404).
	_, err := svc.BlameAt(context.Background(), "t", 8, "users/ann/licenses/SPB")
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeNotFound {
		t.Fatalf("blame of a removed license: %v, want not found", err)
	}
	// And at version 7 the hold is there, blamed on 7.
	thenBlamed(t, blamed(t, svc, 7), map[string]uint64{"heldData/ann/Exchange": 7, "heldData/ann/Exchange/retained": 7})
}

func TestBlame_GroupsErrorsAndHolds(t *testing.T) {
	e5, _ := domain.DefaultCatalog().Lookup("SPE_E5")
	if e5 == nil {
		t.Skip("the catalog has no SPE_E5")
	}
	held := blameStart.Add(time.Hour)
	// Given a group with ann, given a product the tenant has not bought
	// (her license errs), then a retention hold over held data.
	svc := given(t, append(tenantWithUser(),
		domain.GroupCreated{GroupID: "g", DisplayName: "Sales"},                                                                                       // 5
		domain.GroupMemberAdded{GroupID: "g", UserID: "ann"},                                                                                          // 6
		domain.GroupLicenseAssigned{GroupID: "g", SkuID: e5.SkuID},                                                                                    // 7
		domain.GroupLicenseErrored{GroupID: "g", UserID: "ann", SkuID: e5.SkuID, Error: "CountViolation", Detail: "buy 1 more"},                       // 8
		domain.DataHeld{UserID: "ann", Workload: domain.WorkloadOneDrive, HeldSince: held, PurgeAfter: held.Add(time.Hour), Reason: "licenseRemoved"}, // 9
		domain.RetentionHoldSet{UserID: "ann", Enabled: true},                                                                                         // 10
		domain.GroupRenamed{GroupID: "g", DisplayName: "Sales EU"},                                                                                    // 11
	)...)
	thenBlamed(t, blamed(t, svc, 11), map[string]uint64{
		"groups/g":                      11,
		"groups/g/members/ann":          6,
		"users/ann/groups/g":            6,
		"groups/g/licenses/" + e5.SkuID: 7,
		"groups/g/membersWithLicenseErrors/ann/" + e5.SkuID: 8,
		"users/ann/licenses/" + e5.SkuID:                    8,
		"heldData/ann/OneDrive":                             9,
		"heldData/ann/OneDrive/retained":                    10,
		"users/ann/retentionHold":                           10,
	})
	// When asking for one value by a part number, then only it and what is
	// under it, with its event's command and correlation id.
	b, err := svc.BlameAt(context.Background(), "t", 11, "groups/g/membersWithLicenseErrors/ann/SPE_E5")
	if err != nil || len(b.Entries) != 1 || b.Entries[0].Version != 8 {
		t.Fatalf("one value: %+v, %v", b, err)
	}
	if ev := b.Events["8"]; ev.Type != domain.TypeGroupLicenseErrored || ev.CommandID != "cmd-8" || ev.CorrelationID != "req-8" ||
		ev.Actor.UserID != "admin" || !ev.OccurredAt.Equal(blameStart.Add(8*time.Minute)) || ev.Summary == "" {
		t.Fatalf("event 8: %+v", ev)
	}
	// When the group goes, then its values and ann's membership go too.
	svc = given(t, append(tenantWithUser(), domain.GroupCreated{GroupID: "g", DisplayName: "G"},
		domain.GroupMemberAdded{GroupID: "g", UserID: "ann"}, domain.GroupDeleted{GroupID: "g"})...)
	thenBlamed(t, blamed(t, svc, 7), map[string]uint64{"groups/g": 0, "groups/g/members/ann": 0, "users/ann/groups/g": 0})
}

func TestBlamePathsAreCheckedAndNamedByField(t *testing.T) {
	svc := &Service{Catalog: domain.DefaultCatalog()}
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	for _, p := range []string{"users", "users/ann", "users/ann/licenses/SPB", "users/ann/licenses/SPB/disabledPlans/x",
		"groups/g/membersWithLicenseErrors/ann", "heldData/ann/Exchange/retained", "subscriptions/s1/quantity", "name", "products/SPB"} {
		segs, err := svc.ParseBlamePath(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if p == "users/ann/licenses/SPB" && segs[3] != spb.SkuID {
			t.Errorf("%s: the part number is not turned into the skuId: %v", p, segs)
		}
	}
	for _, p := range []string{"", "/", "user/ann", "users//roles", "users/ann/colour", "name/x", "users/ann/licenses/SPB/x", "users/%zz"} {
		_, err := svc.ParseBlamePath(p)
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.CodeInvalidRequest || de.Field != "path" {
			t.Errorf("%q: %v, want invalid_request on path", p, err)
		}
	}
}

// TestProperty_BlameIsTheLastEventThatChangedEachValue checks the scoped
// fold against the slow one that fingerprints the whole state at every
// event, at every version of random workloads: same values, same blame.
func TestProperty_BlameIsTheLastEventThatChangedEachValue(t *testing.T) {
	ctx := context.Background()
	for seed := int64(1); seed <= 3; seed++ {
		w := randomWorkload(t, seed, 150)
		recs, err := w.store.ReadStream(ctx, tenantstream.Name("t"), 1, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		fast, slow := newBlameFold(w.svc.Catalog, false), newBlameFold(w.svc.Catalog, true)
		r := rand.New(rand.NewSource(seed))
		for _, rec := range recs {
			e, err := domain.DecodeEvent(rec.Data, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.Version = rec.Version
			fast.apply(e)
			slow.apply(e)
			if r.Intn(5) > 0 && rec.Version != uint64(len(recs)) {
				continue
			}
			got, want := fast.result(w.svc.Catalog, nil), slow.result(w.svc.Catalog, nil)
			if !slices.Equal(got.Entries, want.Entries) {
				t.Fatalf("seed %d, version %d: blame differs from the reference:\n got %v\nwant %v", seed, rec.Version, got.Entries, want.Entries)
			}
			// Every value of the state has its event.
			present := map[string]string{}
			slow.leaves(slow.everythingScope(nil), present)
			if len(want.Entries) < len(present) {
				t.Fatalf("seed %d, version %d: %d values, %d blamed", seed, rec.Version, len(present), len(want.Entries))
			}
		}
		if got := blamedKinds(fast.result(w.svc.Catalog, nil)); len(got) < 5 {
			t.Fatalf("seed %d: the workload blames only %v", seed, got)
		}
	}
	// Commands seldom err or hold data: random events do, in any order
	// (Evolve takes whatever it is given).
	cat := domain.DefaultCatalog()
	seen := map[string]bool{}
	for seed := int64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewSource(seed))
		fast, slow := newBlameFold(cat, false), newBlameFold(cat, true)
		// Folds that keep only what may be under a path, to compare with
		// the whole blame at the end.
		paths := []string{"users/ann", "heldData/ben", "groups/g1", "users", "products", "subscriptions/s2", "name", "installs"}
		only := make([]*blameFold, len(paths))
		for i, p := range paths {
			only[i] = newBlameFold(cat, false)
			only[i].only = strings.Split(p, "/")
		}
		for v := uint64(1); v <= 400; v++ {
			e := domain.Event{Envelope: domain.Envelope{Version: v, OccurredAt: blameStart.Add(time.Duration(v) * time.Minute)},
				Payload: randomPayload(r, v)}
			e.Type = e.Payload.EventType()
			fast.apply(e)
			slow.apply(e)
			for _, o := range only {
				o.apply(e)
			}
			if got, want := fast.result(cat, nil), slow.result(cat, nil); !slices.Equal(got.Entries, want.Entries) {
				t.Fatalf("seed %d, version %d (%s): blame differs from the reference:\n got %v\nwant %v", seed, v, e.Type, got.Entries, want.Entries)
			} else {
				for _, e := range got.Entries {
					seen[pathShape(e.Path)] = true
				}
			}
		}
		for i, o := range only {
			if got, want := o.result(cat, o.only), fast.result(cat, o.only); !slices.Equal(got.Entries, want.Entries) {
				t.Fatalf("seed %d, path %s: a fold for the path blames otherwise:\n got %v\nwant %v", seed, paths[i], got.Entries, want.Entries)
			}
		}
	}
	if len(seen) < 20 {
		t.Fatalf("the random events blame only %v", slices.Sorted(maps.Keys(seen)))
	}
}

// randomPayload is any event about a few users, groups, products and
// subscriptions.
func randomPayload(r *rand.Rand, v uint64) domain.Payload {
	if v == 1 {
		return domain.TenantCreated{TenantID: "t", Name: "T"}
	}
	cat := domain.DefaultCatalog()
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	u, g, s := pick("ann", "ben", "cat"), pick("g1", "g2"), pick("s1", "s2")
	prod, _ := cat.Lookup(pick("SPB", "ENTERPRISEPACK", "EXCHANGESTANDARD"))
	sku := prod.SkuID
	var plans []string
	for _, sp := range prod.ServicePlans {
		if r.Intn(3) == 0 {
			plans = append(plans, sp.ID)
		}
	}
	src := pick(domain.SourceDirect, domain.SourceSelfService, domain.GroupSource(g))
	at := blameStart.Add(time.Duration(v) * time.Minute)
	w := pick(domain.WorkloadExchange, domain.WorkloadOneDrive)
	switch r.Intn(24) {
	case 0, 1:
		return domain.UserAdded{UserID: u, UserPrincipalName: u + "@t.example", UserType: domain.UserTypeMember, UsageLocation: "US"}
	case 2:
		return domain.UserUpdated{UserID: u, DisplayName: pick("A", "B")}
	case 3:
		return domain.UserDeleted{UserID: u}
	case 4:
		return domain.UserRestored{UserID: u}
	case 5:
		return domain.AdminRolesChanged{UserID: u, Roles: []domain.Role{domain.Role(pick(string(domain.RoleUserAdmin), string(domain.RoleLicenseAdmin)))}}
	case 6:
		return domain.GroupCreated{GroupID: g, DisplayName: pick("G", "H")}
	case 7:
		return domain.GroupRenamed{GroupID: g, DisplayName: pick("G", "H")}
	case 8:
		return domain.GroupDeleted{GroupID: g}
	case 9, 10:
		return domain.GroupMemberAdded{GroupID: g, UserID: u}
	case 11:
		return domain.GroupMemberRemoved{GroupID: g, UserID: u}
	case 12:
		return domain.SubscriptionPurchased{SubscriptionID: s, SkuID: sku, Quantity: 1 + r.Intn(3), Kind: domain.KindPaid, Channel: domain.ChannelDirect}
	case 13:
		return domain.SubscriptionQuantityChanged{SubscriptionID: s, SkuID: sku, Quantity: 1 + r.Intn(3)}
	case 14:
		return domain.SubscriptionStatusChanged{SubscriptionID: s, SkuID: sku, Status: pick(domain.StatusEnabled, domain.StatusDisabled, domain.StatusDeleted)}
	case 15, 16:
		return domain.LicenseAssigned{UserID: u, SkuID: sku, Source: src, DisabledPlans: plans}
	case 17:
		return domain.LicenseUnassigned{UserID: u, SkuID: sku, Source: src}
	case 18:
		return domain.LicensePlansChanged{UserID: u, SkuID: sku, Source: src, DisabledPlans: plans}
	case 19:
		return domain.GroupLicenseAssigned{GroupID: g, SkuID: sku, DisabledPlans: plans}
	case 20:
		return domain.GroupLicenseUnassigned{GroupID: g, SkuID: sku}
	case 21:
		return domain.GroupLicenseErrored{GroupID: g, UserID: u, SkuID: sku, Error: pick("CountViolation", "MutuallyExclusiveViolation")}
	case 22:
		return domain.DataHeld{UserID: u, Workload: w, HeldSince: at, PurgeAfter: at.Add(time.Hour), Reason: "licenseRemoved"}
	default:
		switch r.Intn(4) {
		case 0:
			return domain.DataHoldReleased{UserID: u, Workload: w}
		case 1:
			return domain.HeldDataPurged{UserID: u, Workload: w}
		case 2:
			return domain.AppInstalled{SkuID: sku}
		}
		return domain.RetentionHoldSet{UserID: u, Enabled: r.Intn(2) == 0}
	}
}

func blamedKinds(b Blame) []string {
	set := map[string]bool{}
	for _, e := range b.Entries {
		for i, c := range e.Path {
			if c == '/' {
				set[e.Path[:i]] = true
				break
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// pathShape is a path with its ids as *: users/*/licenses/*.
func pathShape(p string) string {
	segs := strings.Split(p, "/")
	for _, shape := range blamePaths {
		if len(segs) <= len(shape) && (shape[0] == segs[0]) {
			for i := range segs {
				if shape[i] == "*" {
					segs[i] = "*"
				}
			}
			break
		}
	}
	return strings.Join(segs, "/")
}
