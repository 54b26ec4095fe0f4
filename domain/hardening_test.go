package domain

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

// Tests of issue #18 "Hardening" (domain items), one per item: each failed
// before its fix.

func TestHardening13_StaleGroupErrorShowsTheCurrentReason(t *testing.T) {
	spb := sku(t, "SPB")
	s := tenant(t).Given(buy("s", "SPB", 1), addUser("a", "US"), addUser("nowhere", ""), addUser("idle", "US"),
		&CreateGroup{GroupID: "g", DisplayName: "G"},
		&AddGroupMember{GroupID: "g", UserID: "a"}, &AddGroupMember{GroupID: "g", UserID: "nowhere"},
		&AssignGroupLicenses{GroupID: "g", Add: []LicenseRequest{{SkuID: "SPB"}}})
	if src := s.state.Users["nowhere"].Licenses[spb].Sources[GroupSource("g")]; src.Error != GroupErrUsageLocation {
		t.Fatalf("before: %+v", src)
	}
	// The usage location is set while the pool is full: the member still
	// cannot have the license, now for lack of one.
	s.When(&UpdateUser{UserID: "nowhere", UsageLocation: "FR"}).Then(
		UserUpdated{UserID: "nowhere", UsageLocation: "FR"},
		GroupLicenseErrored{GroupID: "g", UserID: "nowhere", SkuID: spb, Error: GroupErrCountViolation,
			Detail: "no license of Microsoft 365 Business Premium is available"})
	if src := s.state.Users["nowhere"].Licenses[spb].Sources[GroupSource("g")]; src.Error != GroupErrCountViolation {
		t.Fatalf("the error state shows %q, want %q", src.Error, GroupErrCountViolation)
	}
	if p := s.state.Pool(spb); p.Assigned != 1 {
		t.Fatalf("an errored member consumes nothing: %+v", p)
	}
	// A retry whose reason did not change writes nothing new (deleting a
	// user retries the members in error).
	s.When(&DeleteUser{UserID: "idle"}).Then(UserDeleted{UserID: "idle"})
	// Once a license frees, the member gets it.
	s.When(&RemoveGroupMember{GroupID: "g", UserID: "a"}).ThenContains(
		LicenseAssigned{UserID: "nowhere", SkuID: spb, Source: GroupSource("g")})
}

func TestHardening12_ASelfServiceTrialIsASelfServicePurchase(t *testing.T) {
	pbi := sku(t, "POWER_BI_PRO")
	s := contoso(t)
	s.When(&PurchaseSubscription{SubscriptionID: "tr", SkuID: "POWER_BI_PRO", Quantity: 3, Kind: KindTrial, PurchasedBy: "bob"}).Then(
		SubscriptionPurchased{SubscriptionID: "tr", SkuID: pbi, Quantity: 3, Kind: KindTrial, Channel: ChannelDirect, PurchasedBy: "bob", SelfService: true},
		LicenseAssigned{UserID: "bob", SkuID: pbi, Source: SourceSelfService})
	if p := s.state.Pool(pbi); p.Total != 0 || p.SelfServiceTotal != 3 || p.SelfServiceAssigned != 1 {
		t.Fatalf("a self-service trial forms the self-service pool: %+v", p)
	}
	s.When(assign("POWER_BI_PRO", "alice")).ThenError(CodeSelfServiceSubscription)
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "tr", Quantity: 10}).ThenError(CodeSelfServiceSubscription)
	s.When(&TakeOverSubscription{SubscriptionID: "tr"}).Then(
		SubscriptionTakenOver{SubscriptionID: "tr", SkuID: pbi},
		LicenseAssigned{UserID: "bob", SkuID: pbi, Source: SourceDirect},
		LicenseUnassigned{UserID: "bob", SkuID: pbi, Source: SourceSelfService})
	if p := s.state.Pool(pbi); p.Total != 3 || p.Assigned != 1 || p.SelfServiceTotal != 0 {
		t.Fatalf("after take-over: %+v", p)
	}
	s.When(assign("POWER_BI_PRO", "alice")).Then(LicenseAssigned{UserID: "alice", SkuID: pbi, Source: SourceDirect})
	// The buyer must be an active user; a trial without a buyer is the admins'.
	s.When(&PurchaseSubscription{SubscriptionID: "t2", SkuID: "POWER_BI_PRO", Quantity: 1, Kind: KindTrial, PurchasedBy: "ghost"}).ThenError(CodeNotFound)
	s.Given(&PurchaseSubscription{SubscriptionID: "t3", SkuID: "POWER_BI_PRO", Quantity: 1, Kind: KindTrial})
	s.When(&TakeOverSubscription{SubscriptionID: "t3"}).ThenError(CodeInvalidRequest)
}

func testApp(id string, plans ...ServicePlan) *Product {
	if len(plans) == 0 {
		plans = []ServicePlan{{ID: id + "-core", Name: "CORE"}}
	}
	return &Product{SkuID: id, SkuPartNumber: id + "_PRO", DisplayName: "Contoso " + id, Publisher: "Fabrikam",
		InstallURL: "https://apps.fabrikam.example/install", ServicePlans: plans}
}

func TestHardening11_AppsHaveTheirOwnPlansAndVendorIsForApps(t *testing.T) {
	exo := planID(t, "EXCHANGESTANDARD", "EXCHANGE_S_STANDARD")
	s := contoso(t)
	// An app cannot declare a Microsoft service plan, by id or by name.
	e := s.When(&PurchaseSubscription{SubscriptionID: "a1", Quantity: 5,
		App: testApp("crm", ServicePlan{ID: exo, Name: "CRM_MAIL"})}).ThenError(CodeInvalidRequest)
	if e.Field != "product.servicePlans.servicePlanId" {
		t.Fatalf("field %q", e.Field)
	}
	e = s.When(&PurchaseSubscription{SubscriptionID: "a1", Quantity: 5,
		App: testApp("crm", ServicePlan{ID: "crm-mail", Name: "exchange_s_standard"})}).ThenError(CodeInvalidRequest)
	if e.Field != "product.servicePlans.servicePlanName" {
		t.Fatalf("field %q", e.Field)
	}
	// Nor another app's plan id.
	s.Given(&PurchaseSubscription{SubscriptionID: "a1", Quantity: 5, App: testApp("crm")})
	s.When(&PurchaseSubscription{SubscriptionID: "a2", Quantity: 5,
		App: testApp("erp", ServicePlan{ID: "crm-core", Name: "ERP_CORE"})}).ThenError(CodeInvalidRequest)
	// The same app bought again keeps its plans.
	s.Given(&PurchaseSubscription{SubscriptionID: "a3", Quantity: 1, App: testApp("crm")})

	// Vendor is a channel of apps only.
	e = s.When(&PurchaseSubscription{SubscriptionID: "v1", SkuID: "SPB", Quantity: 5, Channel: ChannelVendor}).ThenError(CodeInvalidRequest)
	if e.Field != "channel" {
		t.Fatalf("field %q", e.Field)
	}
	// A catalog product a Vendor channel let in before is managed by the
	// vendor: R12 applies.
	s.apply([]Event{{Envelope: Envelope{Version: s.state.Version + 1, OccurredAt: s.now},
		Payload: SubscriptionPurchased{SubscriptionID: "old", SkuID: sku(t, "SPB"), Quantity: 2, Kind: KindPaid, Channel: ChannelVendor}}})
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "old", Quantity: 3}).ThenError(CodeVendorManaged)

	// Cancelling a vendor-managed app is the vendor's business, licenses
	// assigned or not.
	s.Given(&PurchaseSubscription{SubscriptionID: "v2", Quantity: 2, Channel: ChannelVendor, App: testApp("erp")})
	e = s.When(&ChangeSubscriptionStatus{SubscriptionID: "v2", Status: StatusDeleted}).ThenError(CodeVendorManaged)
	if e.Rule != "R12" {
		t.Fatalf("rule %q", e.Rule)
	}
	s.Given(assign("erp", "alice", "bob"))
	s.When(&ChangeSubscriptionStatus{SubscriptionID: "v2", Status: StatusDeleted}).ThenError(CodeVendorManaged)
	s.When(&ChangeSubscriptionStatus{SubscriptionID: "v2", Status: StatusSuspended}).ThenError(CodeVendorManaged)
	// A Marketplace app is the admins' to cancel.
	s.When(&ChangeSubscriptionStatus{SubscriptionID: "a3", Status: StatusDeleted}).ThenContains(
		SubscriptionStatusChanged{SubscriptionID: "a3", SkuID: "crm", Status: StatusDeleted, Previous: StatusEnabled})
}

func TestHardening08_UsageLocationIsAnISO3166Country(t *testing.T) {
	if n := len(countrySet); n != 249 {
		t.Fatalf("%d countries in the table, ISO 3166-1 assigns 249", n)
	}
	s := contoso(t)
	for _, bad := range []string{"ZZ", "EU", "UK", "XK", "AA", "us", "USA", "U", "\x00S"} {
		s.When(&UpdateUser{UserID: "alice", UsageLocation: bad}).ThenError(CodeInvalidRequest)
		s.When(addUser("u-"+itoa(len(bad)), bad)).ThenError(CodeInvalidRequest)
	}
	for _, good := range []string{"GB", "FR", "DE", "AX", "SS", "BQ", "CW"} {
		s.When(&UpdateUser{UserID: "alice", UsageLocation: good}).Then(UserUpdated{UserID: "alice", UsageLocation: good})
	}
}

func TestHardening06_ControlCharactersAreRefusedInEveryNameAndID(t *testing.T) {
	bad := []string{"\x1b[2J\x1b[31mPWNED", "a\x00b", "tab\there", "line\nbreak", "cr\r", "del\x7f", "c1\u0085",
		"rlo\u202egnp.exe", "lri\u2066x\u2069", "lrm\u200e", "alm\u061c", "ls\u2028", "bad utf-8 \xff"}
	s := contoso(t)
	for _, v := range bad {
		cases := map[string]Command{
			"user.displayName":  &AddUser{User: NewUser{ID: "n", UserPrincipalName: "n@contoso.com", DisplayName: v}},
			"user.id":           &AddUser{User: NewUser{ID: v, UserPrincipalName: "n@contoso.com"}},
			"displayName":       &UpdateUser{UserID: "alice", DisplayName: v},
			"group.displayName": &CreateGroup{GroupID: "g", DisplayName: v},
			"group.id":          &CreateGroup{GroupID: v, DisplayName: "G"},
			"app.displayName":   &PurchaseSubscription{SubscriptionID: "a", Quantity: 1, App: &Product{SkuID: "x", SkuPartNumber: "X", DisplayName: v, Publisher: "P"}},
			"app.publisher":     &PurchaseSubscription{SubscriptionID: "a", Quantity: 1, App: &Product{SkuID: "x", SkuPartNumber: "X", DisplayName: "X", Publisher: v}},
			"plan.name": &PurchaseSubscription{SubscriptionID: "a", Quantity: 1, App: &Product{SkuID: "x", SkuPartNumber: "X", DisplayName: "X", Publisher: "P",
				ServicePlans: []ServicePlan{{ID: "x-1", Name: v}}}},
			"plan.displayName": &PurchaseSubscription{SubscriptionID: "a", Quantity: 1, App: &Product{SkuID: "x", SkuPartNumber: "X", DisplayName: "X", Publisher: "P",
				ServicePlans: []ServicePlan{{ID: "x-1", Name: "X1", DisplayName: v}}}},
			"plan.workload": &PurchaseSubscription{SubscriptionID: "a", Quantity: 1, App: &Product{SkuID: "x", SkuPartNumber: "X", DisplayName: "X", Publisher: "P",
				ServicePlans: []ServicePlan{{ID: "x-1", Name: "X1", Workload: v}}}},
		}
		for name, c := range cases {
			o := s.When(c)
			if o.err == nil {
				t.Fatalf("%s %q was accepted", name, v)
			}
			o.ThenError(CodeInvalidRequest)
		}
		o := newScenario(t).When(&CreateTenant{CommandMeta: CommandMeta{Actor: Actor{Operator: true}}, Name: v,
			GlobalAdmin: NewUser{ID: "admin", UserPrincipalName: "admin@contoso.com"}})
		if o.err == nil {
			t.Fatalf("tenant name %q was accepted", v)
		}
	}
	// Printable text of any script stays welcome.
	s.When(&CreateGroup{GroupID: "g", DisplayName: "Ventes – Île-de-France 東京 عربي"}).ThenContains(
		GroupCreated{GroupID: "g", DisplayName: "Ventes – Île-de-France 東京 عربي"})
}

func upnUser(id, upn string) *AddUser {
	return &AddUser{User: NewUser{ID: id, UserPrincipalName: upn, UsageLocation: "US"}}
}

func TestHardening05_UserPrincipalNamesAreValidAndUniqueWithoutRegardToCase(t *testing.T) {
	s := contoso(t)
	for _, bad := range []string{"@x.example", "a@@x.example", "a b@x.example", "a\x00@x.example", "a\x1b@x.example",
		"a\r\n@x.example", "a\u202e@x.example", "<script>@x.example", "a@", "a", "a.@x.example", ".a@x.example",
		"a..b@x.example", "a@x..example", "a@-x.example", "a@x-.example", "a@x_y.example", "a&b@x.example",
		"a+b@x.example", "é@x.example", "a@x.example.", strings.Repeat("a", 65) + "@x.example",
		"a@" + strings.Repeat("x", 45) + ".com"} {
		e := s.When(upnUser("n", bad)).ThenError(CodeInvalidRequest)
		if e.Field != "user.userPrincipalName" {
			t.Fatalf("%q: field %q", bad, e.Field)
		}
	}
	for i, good := range []string{"o'neil@x.example", "a.b-c_d!e#f^g~h@sub.x.example", "_x_@x.example", "Z9@x"} {
		s.When(upnUser("ok"+itoa(i), good)).ThenContains(UserAdded{UserID: "ok" + itoa(i), UserPrincipalName: good,
			DisplayName: good, UserType: UserTypeMember, UsageLocation: "US"})
	}
	// Unique per tenant, without regard to case.
	s.Given(upnUser("bob1", "bob@x.example"))
	for _, clash := range []string{"bob@x.example", "Bob@X.example", "BOB@X.EXAMPLE", "alice@CONTOSO.com"} {
		e := s.When(upnUser("bob2", clash)).ThenError(CodeAlreadyExists)
		if e.Field != "userPrincipalName" {
			t.Fatalf("%q: field %q", clash, e.Field)
		}
	}
	// A deleted user holds its UPN while it can be restored; then it is free.
	s.Given(&DeleteUser{UserID: "bob1"})
	s.When(upnUser("bob2", "BOB@x.example")).ThenError(CodeAlreadyExists)
	s.After(30*24*time.Hour + time.Second)
	s.When(upnUser("bob2", "BOB@x.example")).ThenContains(UserAdded{UserID: "bob2", UserPrincipalName: "BOB@x.example",
		DisplayName: "BOB@x.example", UserType: UserTypeMember, UsageLocation: "US"})
	s.When(upnUser("bob3", "bob@x.example")).ThenError(CodeAlreadyExists)
	// The index survives a snapshot.
	back, err := UnmarshalSnapshot(mustSnapshot(t, s.state))
	if err != nil {
		t.Fatal(err)
	}
	s.state = back
	s.When(upnUser("bob3", "bob@X.example")).ThenError(CodeAlreadyExists)
	s.When(upnUser("al2", "ALICE@contoso.com")).ThenError(CodeAlreadyExists)
}

func mustSnapshot(t *testing.T, s *Tenant) []byte {
	t.Helper()
	b, err := s.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHardening02_TheOperatorIsADistinctActor(t *testing.T) {
	op := Actor{Operator: true}.String()
	for _, a := range []Actor{{UserID: "operator"}, {UserID: "system:scheduler"}, {UserID: "user:operator"}} {
		if a.String() == op || a.String() == (Actor{System: "scheduler"}).String() {
			t.Fatalf("user %q is shown as %q, like the operator or a system", a.UserID, a.String())
		}
	}
	if got := (Actor{UserID: "alice"}).String(); got != "alice" {
		t.Fatalf("an ordinary user is shown as %q", got)
	}
	if (Actor{UserID: "operator"}).String() == (Actor{UserID: "user:operator"}).String() {
		t.Fatal("two users share an identity")
	}
	// No new user may take the operator's name.
	s := contoso(t)
	for _, id := range []string{"operator", "Operator", "OPERATOR"} {
		e := s.When(&AddUser{User: NewUser{ID: id, UserPrincipalName: "op" + itoa(len(s.history)) + "@contoso.com"}}).ThenError(CodeInvalidRequest)
		if e.Field != "user.id" {
			t.Fatalf("field %q", e.Field)
		}
	}
	newScenario(t).When(&CreateTenant{CommandMeta: CommandMeta{Actor: Actor{Operator: true}}, Name: "F",
		GlobalAdmin: NewUser{ID: "operator", UserPrincipalName: "op@f.example"}}).ThenError(CodeInvalidRequest)
	// The envelope keeps them apart too.
	s.apply([]Event{{Envelope: Envelope{Version: s.state.Version + 1, OccurredAt: s.now},
		Payload: UserAdded{UserID: "operator", UserPrincipalName: "legacy@contoso.com", UserType: UserTypeMember}}})
	s.Given(roles("operator", RoleUserAdmin))
	evs := s.When(as("operator", &UpdateUser{UserID: "alice", DisplayName: "Alice"})).events
	if len(evs) != 1 || evs[0].Actor.Operator || evs[0].Actor.String() == op {
		t.Fatalf("the tenant user operator acted as the operator: %+v", evs)
	}
}

func TestHardening01_UserAdminCannotModifyGlobalAdmin(t *testing.T) {
	s := contoso(t).Given(addUser("uma", "US"), addUser("lena", "US"), addUser("bill", "US"), addUser("ua2", "US"),
		roles("uma", RoleUserAdmin), roles("lena", RoleLicenseAdmin), roles("bill", RoleBillingAdmin), roles("ua2", RoleUserAdmin))
	// A User admin cannot edit, delete or restore a Global admin, nor an
	// admin holding a role they do not (License, Billing).
	for _, target := range []string{"admin", "lena", "bill"} {
		e := s.When(as("uma", &UpdateUser{UserID: target, DisplayName: "Pwned"})).ThenError(CodeNotAllowedForRole)
		if e.Rule != "R1" {
			t.Fatalf("rule %q", e.Rule)
		}
		s.When(as("uma", &UpdateUser{UserID: target, UsageLocation: "FR"})).ThenError(CodeNotAllowedForRole)
		s.When(as("uma", &DeleteUser{UserID: target})).ThenError(CodeNotAllowedForRole)
	}
	// A License admin changes no user at all (licenses only).
	s.When(as("lena", &UpdateUser{UserID: "admin", UsageLocation: "FR"})).ThenError(CodeNotAllowedForRole)
	s.When(as("lena", &DeleteUser{UserID: "admin"})).ThenError(CodeNotAllowedForRole)
	// Nor restore one a Global admin deleted.
	s.Given(&DeleteUser{UserID: "bill"})
	s.When(as("uma", &RestoreUser{UserID: "bill"})).ThenError(CodeNotAllowedForRole)
	s.Given(&RestoreUser{UserID: "bill"})
	// Non-admins and admins of their own rank stay theirs to manage.
	s.When(as("uma", &UpdateUser{UserID: "alice", DisplayName: "Alice A."})).Then(UserUpdated{UserID: "alice", DisplayName: "Alice A."})
	s.When(as("uma", &UpdateUser{UserID: "ua2", DisplayName: "Two"})).Then(UserUpdated{UserID: "ua2", DisplayName: "Two"})
	s.When(as("uma", &DeleteUser{UserID: "ua2"})).ThenContains(UserDeleted{UserID: "ua2"})
	s.When(as("uma", &RestoreUser{UserID: "ua2"})).ThenContains(UserRestored{UserID: "ua2"})
	// A Global admin can manage another Global admin, but the tenant's last
	// active one stays, whoever acts, the operator included.
	s.Given(addUser("ga2", "US"), roles("ga2", RoleGlobalAdmin))
	s.When(as("ga2", &UpdateUser{UserID: "admin", DisplayName: "Root"})).Then(UserUpdated{UserID: "admin", DisplayName: "Root"})
	s.When(as("ga2", &DeleteUser{UserID: "admin"})).ThenContains(UserDeleted{UserID: "admin"})
	op := func(c Command) Command { Meta(c).Actor = Actor{Operator: true}; return c }
	e := s.When(op(&DeleteUser{UserID: "ga2"})).ThenError(CodeInvalidRequest)
	if e.Field != "userId" {
		t.Fatalf("field %q", e.Field)
	}
	s.When(op(&RestoreUser{UserID: "admin"})).ThenContains(UserRestored{UserID: "admin"})
	s.When(op(&DeleteUser{UserID: "ga2"})).ThenContains(UserDeleted{UserID: "ga2"})
}

// TestHardening01_PropertyThereIsAlwaysAnActiveGlobalAdmin: whoever acts
// (admins of every role, users without one, the operator), no sequence of
// user-changing commands leaves the tenant without an active Global admin,
// and only a Global admin (or the operator) changes a Global admin.
func TestHardening01_PropertyThereIsAlwaysAnActiveGlobalAdmin(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	users := []string{"admin", "u0", "u1", "u2", "u3"}
	all := []Role{RoleGlobalAdmin, RoleUserAdmin, RoleLicenseAdmin, RoleBillingAdmin}
	for seed := 0; seed < seeds; seed++ {
		r := rand.New(rand.NewSource(int64(seed)))
		s := tenant(t)
		pick := func() string { return users[r.Intn(len(users))] }
		for step := 0; step < 200; step++ {
			var c Command
			switch r.Intn(6) {
			case 0:
				u := pick()
				c = &AddUser{User: NewUser{ID: u, UserPrincipalName: u + "@x.example", UsageLocation: "US"}}
			case 1:
				c = &DeleteUser{UserID: pick()}
			case 2:
				c = &RestoreUser{UserID: pick()}
			case 3:
				c = &UpdateUser{UserID: pick(), DisplayName: "n" + itoa(step)}
			default:
				var rs []Role
				for _, role := range all {
					if r.Intn(3) == 0 {
						rs = append(rs, role)
					}
				}
				c = &SetAdminRoles{UserID: pick(), Roles: rs}
			}
			actor := Actor{UserID: pick()}
			if r.Intn(10) == 0 {
				actor = Actor{Operator: true}
			}
			Meta(c).Actor = actor
			s.After(time.Duration(r.Intn(48)) * time.Hour)
			s.prepare(c)
			evs, err := s.d.Decide(s.state, c)
			if err != nil {
				continue
			}
			if a := s.state.Users[actor.UserID]; !actor.Operator && (a == nil || !a.HasRole(RoleGlobalAdmin)) {
				for _, e := range evs {
					if id := targetUser(e.Payload); id != "" && s.state.Users[id] != nil && s.state.Users[id].HasRole(RoleGlobalAdmin) {
						t.Fatalf("seed %d step %d: %s (not a Global admin) changed Global admin %s: %#v", seed, step, actor, id, e.Payload)
					}
				}
			}
			s.apply(evs)
			n := 0
			for _, u := range s.state.Users {
				if !u.Deleted && u.HasRole(RoleGlobalAdmin) {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("seed %d step %d: %s by %s left no active Global admin", seed, step, c.CommandName(), actor)
			}
		}
	}
}

func targetUser(p Payload) string {
	switch p := p.(type) {
	case UserUpdated:
		return p.UserID
	case UserDeleted:
		return p.UserID
	case UserRestored:
		return p.UserID
	case AdminRolesChanged:
		return p.UserID
	}
	return ""
}
