package domain

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"time"
)

// randomCommand draws a command over a small universe so that commands
// collide often: few users, groups, products and subscriptions.
func randomCommand(r *rand.Rand) Command {
	users := []string{"admin", "u0", "u1", "u2", "u3", "u4", "u5", "g0st"}
	groups := []string{"g0", "g1"}
	skus := []string{"SPB", "EXCHANGESTANDARD", "EXCHANGEENTERPRISE", "ENTERPRISEPACK", "POWER_BI_PRO"}
	subs := []string{"s0", "s1", "s2", "s3"}
	pick := func(xs []string) string { return xs[r.Intn(len(xs))] }
	some := func(xs []string) []string {
		n := 1 + r.Intn(3)
		out := []string{}
		seen := map[string]bool{}
		for i := 0; i < n; i++ {
			x := pick(xs)
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
		return out
	}
	var c Command
	switch r.Intn(19) {
	case 0:
		loc := "US"
		if r.Intn(4) == 0 {
			loc = ""
		}
		u := pick(users)
		typ := UserTypeMember
		if u == "g0st" {
			typ = UserTypeGuest
		}
		add := &AddUser{User: NewUser{ID: u, UserPrincipalName: u + "@x.com", UserType: typ, UsageLocation: loc}}
		if r.Intn(3) == 0 {
			add.Licenses = []LicenseRequest{{SkuID: pick(skus)}}
		}
		c = add
	case 1:
		c = &DeleteUser{UserID: pick(users)}
	case 2:
		c = &RestoreUser{UserID: pick(users)}
	case 3:
		kind := KindPaid
		if r.Intn(4) == 0 {
			kind = KindSelfService
		}
		c = &PurchaseSubscription{SubscriptionID: pick(subs), SkuID: pick(skus), Quantity: 1 + r.Intn(4), Kind: kind, PurchasedBy: pick(users)}
	case 4:
		c = &ChangeSubscriptionQuantity{SubscriptionID: pick(subs), Quantity: 1 + r.Intn(5)}
	case 5:
		c = &ChangeSubscriptionStatus{SubscriptionID: pick(subs), Status: pick([]string{StatusEnabled, StatusWarning, StatusSuspended, StatusDeleted})}
	case 6:
		c = &TakeOverSubscription{SubscriptionID: pick(subs)}
	case 7, 8:
		c = &AssignLicenses{SkuID: pick(skus), Users: some(users)}
	case 9:
		c = &UnassignLicenses{SkuID: pick(skus), Users: some(users)}
	case 10:
		switch r.Intn(4) {
		case 0:
			c = &DeleteGroup{GroupID: pick(groups)}
		case 1:
			c = &RenameGroup{GroupID: pick(groups), DisplayName: pick([]string{"G", "H"})}
		default:
			c = &CreateGroup{GroupID: pick(groups), DisplayName: "G"}
		}
	case 11:
		c = &AddGroupMember{GroupID: pick(groups), UserID: pick(users)}
	case 12:
		c = &RemoveGroupMember{GroupID: pick(groups), UserID: pick(users)}
	case 13:
		add := []LicenseRequest{{SkuID: pick(skus)}}
		var rm []string
		if r.Intn(2) == 0 {
			rm, add = []string{pick(skus)}, nil
		}
		c = &AssignGroupLicenses{GroupID: pick(groups), Add: add, Remove: rm}
	case 14:
		c = &ManageLicenses{Users: some(users), Mode: pick([]string{ModeAssignMore, ModeReplace}), Add: []LicenseRequest{{SkuID: pick(skus)}}}
	case 15:
		c = &UpdateUserLicenses{UserID: pick(users), Add: []LicenseRequest{{SkuID: pick(skus), DisabledPlans: nil}}, Remove: some(skus)[:r.Intn(2)]}
	case 16:
		c = &SetRetentionHold{UserID: pick(users), Enabled: r.Intn(2) == 0}
	case 18:
		all := []Role{RoleGlobalAdmin, RoleUserAdmin, RoleLicenseAdmin, RoleBillingAdmin}
		var rs []Role
		for _, role := range all {
			if r.Intn(3) == 0 {
				rs = append(rs, role)
			}
		}
		c = &SetAdminRoles{UserID: pick(users), Roles: rs}
	default:
		c = &PurgeHeldData{CommandMeta: CommandMeta{Actor: Actor{System: "scheduler"}}, UserID: pick(users), Workload: pick([]string{WorkloadExchange, WorkloadOneDrive})}
	}
	if a := Meta(c).Actor; a.UserID == "" && a.System == "" && !a.Operator {
		switch r.Intn(20) {
		case 0, 1, 2, 3:
			Meta(c).Actor = Actor{UserID: pick(users)}
		case 4:
			Meta(c).Actor = Actor{Operator: true}
		default:
			Meta(c).Actor = Actor{UserID: "admin"}
		}
	}
	return c
}

// checkInvariants verifies what must hold in every reachable state.
func checkInvariants(t *testing.T, c *Catalog, s *Tenant) {
	t.Helper()
	counted := map[string][2]int{}
	for _, u := range s.Users {
		if u.Deleted && len(u.Licenses) > 0 {
			t.Fatalf("deleted user %s holds licenses", u.ID)
		}
		for sku, l := range u.Licenses {
			n := counted[sku]
			switch l.pool() {
			case "admin":
				n[0]++
			case "selfService":
				n[1]++
			}
			counted[sku] = n
		}
		enabled := slices.Compact(slices.Sorted(slices.Values(EnabledServices(c, s, u))))
		if pair, _ := c.exclusiveConflicts(enabled); pair != nil {
			t.Fatalf("user %s has mutually exclusive plans %v enabled", u.ID, pair)
		}
	}
	globalAdmins := 0
	for _, u := range s.Users {
		if !u.Deleted && u.HasRole(RoleGlobalAdmin) {
			globalAdmins++
		}
	}
	if globalAdmins == 0 {
		t.Fatalf("the tenant has no active Global admin")
	}
	for sku, p := range s.Pools {
		if p.Assigned > p.Total || p.SelfServiceAssigned > p.SelfServiceTotal {
			t.Fatalf("assigned > total for %s: %+v", sku, p)
		}
		if n := counted[sku]; n[0] != p.Assigned || n[1] != p.SelfServiceAssigned {
			t.Fatalf("pool %s says %d/%d assigned, users hold %v", sku, p.Assigned, p.SelfServiceAssigned, n)
		}
	}
	// Groups and their members agree, and nothing names a group that is
	// gone (R16: a deleted group gave no license).
	for _, u := range s.Users {
		for g := range u.Groups {
			if grp := s.Groups[g]; grp == nil || !grp.Members[u.ID] {
				t.Fatalf("user %s is in group %s, which does not list them", u.ID, g)
			}
		}
		for sku, l := range u.Licenses {
			for src := range l.Sources {
				if g, ok := GroupOfSource(src); ok && s.Groups[g] == nil {
					t.Fatalf("user %s holds %s from group %s, which does not exist", u.ID, sku, g)
				}
			}
		}
		if u.Stash != nil {
			for _, g := range u.Stash.Groups {
				if s.Groups[g] == nil {
					t.Fatalf("deleted user %s would be restored into group %s, which does not exist", u.ID, g)
				}
			}
		}
	}
	for _, g := range s.Groups {
		for m := range g.Members {
			if u := s.Users[m]; u == nil || !u.Groups[g.ID] {
				t.Fatalf("group %s lists %s, who is not in it", g.ID, m)
			}
		}
	}
}

func TestProperty_AssignedNeverExceedsTotalInAnyReachableState(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 30
	}
	for seed := 0; seed < seeds; seed++ {
		r := rand.New(rand.NewSource(int64(seed)))
		s := tenant(t).Given(buy("s0", "SPB", 2))
		decided := 0
		for step := 0; step < 250; step++ {
			c := randomCommand(r)
			s.After(time.Duration(r.Intn(5*24)) * time.Hour)
			s.prepare(c)
			evs, err := s.d.Decide(s.state, c)
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("seed %d step %d: %s returned a non-domain error %v", seed, step, c.CommandName(), err)
				}
				continue
			}
			decided += len(evs)
			checkHoldEvents(t, s.state, evs)
			s.apply(evs)
			checkInvariants(t, s.d.Catalog, s.state)
		}
		// The fold of the encoded log is the state.
		again := NewTenant()
		for _, e := range s.history {
			b, err := EncodeEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			d, err := DecodeEvent(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			again = Evolve(again, d)
		}
		if !reflect.DeepEqual(normal(t, again), normal(t, s.state)) {
			t.Fatalf("seed %d: folding the decoded log gives another state", seed)
		}
		if decided == 0 {
			t.Fatalf("seed %d decided nothing", seed)
		}
	}
}

func normal(t *testing.T, s *Tenant) any {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Evolve never panics on any decoded event, whatever state it meets.
func FuzzEvolveNeverPanics(f *testing.F) {
	s := &scenario{t: &testing.T{}, d: NewDecider(DefaultCatalog(), DefaultPolicy()), state: NewTenant(), now: day0}
	r := rand.New(rand.NewSource(1))
	s.Given(&CreateTenant{CommandMeta: CommandMeta{Actor: Actor{Operator: true}}, Name: "C",
		GlobalAdmin: NewUser{ID: "admin", UserPrincipalName: "a@c.com", UsageLocation: "US"}})
	for i := 0; i < 300; i++ {
		c := randomCommand(r)
		s.prepare(c)
		if evs, err := s.d.Decide(s.state, c); err == nil {
			s.apply(evs)
		}
	}
	for _, e := range s.history {
		b, _ := EncodeEvent(e)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"LicenseAssigned","version":9,"data":{"userId":"ghost","skuId":"x","source":"group:"}}`))
	f.Add([]byte(`{"type":"UserDeleted","data":null}`))
	f.Add([]byte(`{"type":"FutureThing","schema":7,"data":{"x":1}}`))
	base := s.state
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b, nil)
		if err != nil {
			return
		}
		st := base.Clone()
		Evolve(st, e)
		Evolve(NewTenant(), e)
	})
}

func TestDecodeIgnoresUnknownFieldsAndKeepsUnknownTypes(t *testing.T) {
	e, err := DecodeEvent([]byte(`{"eventId":"x","type":"UserAdded","version":3,"schema":1,"future":true,
		"data":{"userId":"a","userPrincipalName":"a@b.c","userType":"Member","shoeSize":44}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := e.Payload.(UserAdded); !ok || p.UserID != "a" || e.Version != 3 {
		t.Fatalf("%#v", e)
	}
	e, err = DecodeEvent([]byte(`{"type":"LicenseLeased","version":4,"schema":2,"data":{"k":1}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Payload.(UnknownPayload); !ok {
		t.Fatalf("%#v", e.Payload)
	}
	st := Evolve(NewTenant(), e)
	if st.Version != 4 {
		t.Fatal("an unknown event still advances the version")
	}
	b, _ := EncodeEvent(e)
	if back, _ := DecodeEvent(b, nil); string(back.Payload.(UnknownPayload).Raw) != `{"k":1}` {
		t.Fatalf("unknown data is kept: %s", b)
	}
	if _, err := DecodeEvent([]byte(`{"data":{}}`), nil); err == nil {
		t.Fatal("an event without a type is an error")
	}
}

func TestUpcastersUpgradeOldSchemasWhenRead(t *testing.T) {
	// Schema 0 of UserAdded called the usage location "country".
	old := []byte(`{"type":"UserAdded","version":2,"schema":0,"data":{"userId":"a","userPrincipalName":"a@b.c","country":"FR"}}`)
	ups := Upcasters{{Type: TypeUserAdded, From: 0, Upgrade: func(d json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		if err := json.Unmarshal(d, &m); err != nil {
			return nil, err
		}
		m["usageLocation"] = m["country"]
		delete(m, "country")
		return json.Marshal(m)
	}}}
	e, err := DecodeEvent(old, ups)
	if err != nil {
		t.Fatal(err)
	}
	if e.Payload.(UserAdded).UsageLocation != "FR" || e.Schema != 1 {
		t.Fatalf("%#v", e)
	}
}

func TestIdempotency_SameCommandIdDecidesNothingNew(t *testing.T) {
	s := contoso(t)
	c := assign("SPB", "alice")
	c.CommandID, c.RequestHash = "key-1", "h1"
	first := s.When(c).events
	if len(first) != 1 {
		t.Fatal(first)
	}
	again := assign("SPB", "alice")
	again.CommandID, again.RequestHash = "key-1", "h1"
	s.When(again).Then()
	rec, ok := s.state.CommandRecord("key-1")
	if !ok || rec.FirstVersion != first[0].Version || rec.LastVersion != first[0].Version {
		t.Fatalf("record %+v", rec)
	}
	other := assign("SPB", "bob")
	other.CommandID, other.RequestHash = "key-1", "h2"
	s.When(other).ThenError(CodeIdempotencyKeyReused)
	// A retryable command that changes nothing is remembered too, so its
	// retry cannot be decided again later against another state.
	// (Lifting a hold bob does not have; unassigning a license he does not
	// have is refused, not a no-op.)
	noop := &SetRetentionHold{UserID: "bob", Enabled: false}
	noop.CommandID, noop.RequestHash = "key-2", "h3"
	s.When(noop).Then(NothingChanged{Command: "SetRetentionHold"})
	s.Given(&SetRetentionHold{UserID: "bob", Enabled: true})
	retry := &SetRetentionHold{UserID: "bob", Enabled: false}
	retry.CommandID, retry.RequestHash = "key-2", "h3"
	s.When(retry).Then()
	if !s.state.Users["bob"].RetentionHold {
		t.Fatal("a retried no-op lifted a hold set since")
	}
	// Event ids derive from the command and its place: the same decision
	// made again has the same ids; the same command id for another request
	// or at another time, other ids (the store must not take it for done).
	m := *Meta(c) // as the scenario decided it
	if first[0].EventID != decisionEventID(tenantID, &m, first[0].Version) || decisionEventID(tenantID, &m, 7) == decisionEventID(tenantID, &m, 8) {
		t.Fatal("event ids are not deterministic per command and version")
	}
	another := m
	another.RequestHash = "h2"
	later := m
	later.Now = later.Now.Add(time.Nanosecond)
	if id := decisionEventID(tenantID, &m, 7); id == decisionEventID(tenantID, &another, 7) || id == decisionEventID(tenantID, &later, 7) {
		t.Fatal("another request or another decision under the same command id at the same version gets the same event ids")
	}
}

func TestEnvelopeFieldsAndTimeNeverGoesBack(t *testing.T) {
	s := contoso(t)
	s.At(day0.Add(-time.Hour)) // a server clock that went backwards
	evs := s.When(assign("SPB", "alice")).events
	e := evs[0]
	if e.OccurredAt.Before(s.history[len(s.history)-2].OccurredAt) {
		t.Fatal("occurredAt went back in time")
	}
	if e.TenantID != tenantID || e.Version != uint64(len(s.history)) || e.Schema != CurrentSchema || e.Type != TypeLicenseAssigned ||
		e.CommandID == "" || e.Actor.UserID != "admin" || len(e.Actor.Roles) != 1 || e.Actor.Roles[0] != RoleGlobalAdmin {
		t.Fatalf("envelope %+v", e.Envelope)
	}
	if len(e.EventID) != 36 || e.EventID[14] != '5' {
		t.Fatalf("event id %s is not a UUIDv5", e.EventID)
	}
}

func TestCatalogIsRealAndConsistent(t *testing.T) {
	c := DefaultCatalog()
	if len(c.Products) < 12 {
		t.Fatalf("%d products, want at least 12", len(c.Products))
	}
	want := map[string]string{
		"SPB": "Microsoft 365 Business Premium", "ENTERPRISEPACK": "Office 365 E3",
		"EXCHANGESTANDARD": "Exchange Online (Plan 1)", "EXCHANGEENTERPRISE": "Exchange Online (Plan 2)",
	}
	for part, name := range want {
		p, ok := c.Lookup(part)
		if !ok || p.DisplayName != name {
			t.Fatalf("%s: %+v", part, p)
		}
		if q, _ := c.Lookup(p.SkuID); q != p {
			t.Fatalf("%s is not found by its skuId", part)
		}
	}
	if _, err := ParseCatalog([]byte(`{"products":[{"skuId":"a","skuPartNumber":"A","displayName":"A"},{"skuId":"a","skuPartNumber":"B","displayName":"B"}]}`)); err == nil {
		t.Fatal("duplicate skuIds are refused")
	}
	if _, err := ParseCatalog([]byte(`{"products":[],"dependencies":[{"plan":"X","requires":["Y"]}]}`)); err == nil {
		t.Fatal("relations naming unknown plans are refused")
	}
}

func TestEveryEventTypeRoundTrips(t *testing.T) {
	for _, typ := range EventTypes() {
		p := payloadTypes[typ].new()
		b, err := EncodeEvent(Event{Envelope: Envelope{Type: typ, Version: 1}, Payload: deref(p)})
		if err != nil {
			t.Fatal(err)
		}
		e, err := DecodeEvent(b, nil)
		if err != nil || e.Payload.EventType() != typ {
			t.Fatalf("%s: %v %#v", typ, err, e.Payload)
		}
		_ = fmt.Sprint(e)
	}
}

// checkHoldEvents: a decision holds a workload only if it is not held, and
// releases or purges only what is held, once.
func checkHoldEvents(t *testing.T, before *Tenant, evs []Event) {
	t.Helper()
	held := map[string]bool{}
	for id, u := range before.Users {
		for w := range u.Holds {
			held[id+"|"+w] = true
		}
	}
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case DataHeld:
			if held[p.UserID+"|"+p.Workload] && p.Reason != "retentionHoldRemoved" {
				t.Fatalf("%s data of %s held twice: %#v", p.Workload, p.UserID, evs)
			}
			held[p.UserID+"|"+p.Workload] = true
		case DataHoldReleased:
			if !held[p.UserID+"|"+p.Workload] {
				t.Fatalf("released %s data of %s that is not held", p.Workload, p.UserID)
			}
			delete(held, p.UserID+"|"+p.Workload)
		case HeldDataPurged:
			if !held[p.UserID+"|"+p.Workload] {
				t.Fatalf("purged %s data of %s that is not held", p.Workload, p.UserID)
			}
			delete(held, p.UserID+"|"+p.Workload)
		}
	}
}
