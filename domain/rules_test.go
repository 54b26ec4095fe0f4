package domain

import (
	"strings"
	"testing"
	"time"
)

// contoso: admin (Global), alice and bob (US), 13 Business Premium licenses
// in two subscriptions (5 + 8).
func contoso(t *testing.T) *scenario {
	return tenant(t).Given(
		addUser("alice", "US"), addUser("bob", "US"),
		buy("sub-a", "SPB", 5), buy("sub-b", "SPB", 8),
	)
}

func TestR1_OnlyGlobalLicenseOrUserAdminsAssignLicenses(t *testing.T) {
	spb := sku(t, "SPB")
	s := contoso(t).Given(addUser("carol", "US"), roles("carol", RoleBillingAdmin))
	s.When(as("carol", assign("SPB", "alice"))).ThenError(CodeNotAllowedForRole)
	s.When(as("bob", assign("SPB", "alice"))).ThenError(CodeNotAllowedForRole)
	s.When(as("mallory", assign("SPB", "alice"))).ThenError(CodeNotAllowedForRole)

	for _, r := range []Role{RoleLicenseAdmin, RoleUserAdmin} {
		s.Given(roles("carol", r))
		s.When(as("carol", assign("SPB", "alice"))).ThenContains(LicenseAssigned{UserID: "alice", SkuID: spb, Source: SourceDirect})
		s.When(as("carol", unassign("SPB", "alice"))).ThenContains(LicenseUnassigned{UserID: "alice", SkuID: spb, Source: SourceDirect})
	}
	// Roles are events: taking the role away takes the right away.
	s.Given(roles("carol"))
	s.When(as("carol", assign("SPB", "alice"))).ThenError(CodeNotAllowedForRole)
}

func TestR1_RolesAreEventsAndOnlyAGlobalAdminChangesThem(t *testing.T) {
	s := contoso(t).Given(roles("alice", RoleUserAdmin))
	s.When(as("alice", roles("bob", RoleGlobalAdmin))).ThenError(CodeNotAllowedForRole)
	s.When(roles("bob", RoleLicenseAdmin, RoleLicenseAdmin)).Then(AdminRolesChanged{UserID: "bob", Roles: []Role{RoleLicenseAdmin}})
	s.When(roles("bob", "Emperor")).ThenError(CodeInvalidRequest)
	s.When(roles("admin")).ThenError(CodeInvalidRequest) // the last Global admin stays
}

func TestR2_GuestLicensesNeedAGlobalAdmin(t *testing.T) {
	spb := sku(t, "SPB")
	s := contoso(t).Given(addGuest("gina"), addUser("lena", "US"), roles("lena", RoleLicenseAdmin))
	s.When(as("lena", assign("SPB", "gina"))).ThenError(CodeGuestRequiresGlobalAdmin)
	s.When(as("lena", assign("SPB", "alice", "gina"))).ThenError(CodeGuestRequiresGlobalAdmin)
	s.When(assign("SPB", "gina")).Then(LicenseAssigned{UserID: "gina", SkuID: spb, Source: SourceDirect})
	s.When(as("lena", unassign("SPB", "gina"))).ThenError(CodeGuestRequiresGlobalAdmin)
	// Nor through a licensed group.
	s.Given(&CreateGroup{GroupID: "sales", DisplayName: "Sales"},
		&AssignGroupLicenses{GroupID: "sales", Add: []LicenseRequest{{SkuID: "SPB"}}})
	s.Given(roles("lena", RoleLicenseAdmin, RoleUserAdmin))
	s.When(as("lena", &AddGroupMember{GroupID: "sales", UserID: "gina"})).ThenError(CodeGuestRequiresGlobalAdmin)
}

func TestR3_AssigningMoreThanAvailableFailsWithHowManyAreMissing(t *testing.T) {
	s := tenant(t).Given(buy("sub-a", "SPB", 2))
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	for _, u := range users {
		s.Given(addUser(u, "US"))
	}
	e := s.When(assign("SPB", users...)).ThenError(CodeInsufficientLicenses)
	if e.Missing != 3 || e.Rule != "R3" {
		t.Fatalf("missing = %d rule %s, want 3 R3", e.Missing, e.Rule)
	}
	if got := s.state.Pool(sku(t, "SPB")).Assigned; got != 0 {
		t.Fatalf("nothing may be assigned, %d are", got)
	}
	s.Given(assign("SPB", "u1", "u2"))
	e = s.When(assign("SPB", "u3")).ThenError(CodeInsufficientLicenses)
	if e.Missing != 1 {
		t.Fatalf("missing = %d, want 1", e.Missing)
	}
}

func TestR4_BulkTakesUpToTheLimitAllOrNothing(t *testing.T) {
	s := tenant(t).Given(buy("sub-a", "SPB", 100))
	var users []string
	for i := 0; i < 21; i++ {
		id := "u" + itoa(i)
		users = append(users, id)
		s.Given(addUser(id, "US"))
	}
	e := s.When(assign("SPB", users...)).ThenError(CodeTooManyUsers)
	if e.Rule != "R4" {
		t.Fatalf("rule %s", e.Rule)
	}
	s.When(unassign("SPB", users...)).ThenError(CodeTooManyUsers)
	s.When(&ManageLicenses{Users: users, Mode: ModeAssignMore, Add: []LicenseRequest{{SkuID: "SPB"}}}).ThenError(CodeTooManyUsers)
	// All or nothing: one user without a usage location fails all 20.
	s.Given(&UpdateUser{UserID: "u3", DisplayName: "Three"})
	s.Given(addUser("nowhere", ""))
	batch := append(append([]string{}, users[:19]...), "nowhere")
	s.When(assign("SPB", batch...)).ThenError(CodeUsageLocationRequired)
	if s.state.Pool(sku(t, "SPB")).Assigned != 0 {
		t.Fatal("a failed bulk request assigned licenses")
	}
	evs := s.When(assign("SPB", users[:20]...)).events
	if len(evs) != 20 {
		t.Fatalf("%d events, want 20", len(evs))
	}
	// The limit is configurable.
	small := NewDecider(DefaultCatalog(), Policy{BulkLimit: 2})
	s.d = small
	s.When(unassign("SPB", users[:3]...)).ThenError(CodeTooManyUsers)
}

func TestR5_LicenseCountIsPerProductSummedOverSubscriptions(t *testing.T) {
	s := contoso(t)
	p := s.state.Pool(sku(t, "SPB"))
	if p.Total != 13 || p.Subscriptions != 2 || p.Available() != 13 {
		t.Fatalf("pool = %+v, want 13 in 2 subscriptions", p)
	}
	s.Given(assign("SPB", "alice", "bob"))
	p = s.state.Pool(sku(t, "SPB"))
	if p.Assigned != 2 || p.Available() != 11 {
		t.Fatalf("pool = %+v", p)
	}
	if len(s.state.Subscriptions) != 2 || s.state.Subscriptions["sub-a"].Quantity != 5 || s.state.Subscriptions["sub-b"].Quantity != 8 {
		t.Fatalf("'Your products' rows: %+v", s.state.Subscriptions)
	}
	s.Given(&ChangeSubscriptionStatus{SubscriptionID: "sub-a", Status: StatusSuspended})
	if p := s.state.Pool(sku(t, "SPB")); p.Total != 8 {
		t.Fatalf("a suspended subscription still counts: %+v", p)
	}
}

func TestR6_MutuallyExclusivePlansCannotBothBeEnabled(t *testing.T) {
	s := contoso(t).Given(buy("p1", "EXCHANGESTANDARD", 5), buy("p2", "EXCHANGEENTERPRISE", 5),
		assign("EXCHANGESTANDARD", "alice"))
	e := s.When(assign("EXCHANGEENTERPRISE", "alice")).ThenError(CodeMutuallyExclusivePlans)
	if len(e.Plans) != 2 || e.Plans[0] != "EXCHANGE_S_ENTERPRISE" || e.Plans[1] != "EXCHANGE_S_STANDARD" {
		t.Fatalf("the error must name the conflicting plans, got %v", e.Plans)
	}
	// Turning the conflicting plan off makes it fit.
	s.When(&AssignLicenses{SkuID: "EXCHANGEENTERPRISE", Users: []string{"alice"},
		DisabledPlans: []string{"EXCHANGE_S_ENTERPRISE"}}).ThenContains(LicenseAssigned{UserID: "alice",
		SkuID: sku(t, "EXCHANGEENTERPRISE"), Source: SourceDirect, DisabledPlans: []string{planID(t, "EXCHANGEENTERPRISE", "EXCHANGE_S_ENTERPRISE")}})
}

func TestR7_AppsAndServicesCanBeTurnedOffAndDependentPlansFollow(t *testing.T) {
	spb := sku(t, "SPB")
	s := contoso(t).Given(assign("SPB", "alice"))
	teams := planID(t, "SPB", "TEAMS1")
	s.When(&ChangeLicensePlans{UserID: "alice", SkuID: "SPB", DisabledPlans: []string{"TEAMS1"}}).
		Then(LicensePlansChanged{UserID: "alice", SkuID: spb, Source: SourceDirect, DisabledPlans: []string{teams}})
	s.When(&ChangeLicensePlans{UserID: "alice", SkuID: "SPB", DisabledPlans: []string{"NOT_A_PLAN"}}).ThenError(CodeInvalidRequest)
	// A plan whose dependency is turned off is refused.
	dep := DefaultCatalog().Dependencies[0]
	var prod *Product
	for i := range DefaultCatalog().Products {
		p := &DefaultCatalog().Products[i]
		_, hasPlan := p.Plan(dep.Plan)
		_, hasReq := p.Plan(dep.Requires[0])
		if hasPlan && hasReq && len(dep.Requires) == 1 {
			prod = p
			break
		}
	}
	if prod == nil {
		t.Skipf("no product carries %s with its single requirement", dep.Plan)
	}
	s.Given(buy("dep", prod.SkuPartNumber, 5), addUser("dora", "US"))
	e := s.When(&AssignLicenses{SkuID: prod.SkuID, Users: []string{"dora"}, DisabledPlans: dep.Requires}).
		ThenError(CodeDependencyViolation)
	if e.Plans[0] != dep.Plan {
		t.Fatalf("error names %v", e.Plans)
	}
	// Turning both off is fine.
	s.When(&AssignLicenses{SkuID: prod.SkuID, Users: []string{"dora"}, DisabledPlans: append([]string{dep.Plan}, dep.Requires...)})
}

func TestR8_SelfServiceSubscriptionsNeedATakeOver(t *testing.T) {
	pbi := sku(t, "POWER_BI_PRO")
	s := contoso(t).Given(&PurchaseSubscription{SubscriptionID: "ss", SkuID: "POWER_BI_PRO", Quantity: 3,
		Kind: KindSelfService, PurchasedBy: "bob"})
	if l := s.state.Users["bob"].Licenses[pbi]; l == nil || l.Sources[SourceSelfService] == nil {
		t.Fatal("the buyer of a self-service purchase holds its license")
	}
	if p := s.state.Pool(pbi); p.Total != 0 || p.SelfServiceTotal != 3 || p.SelfServiceAssigned != 1 {
		t.Fatalf("self-service licenses form their own pool: %+v", p)
	}
	s.When(assign("POWER_BI_PRO", "alice")).ThenError(CodeSelfServiceSubscription)
	s.When(unassign("POWER_BI_PRO", "bob")).ThenError(CodeSelfServiceSubscription)
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "ss", Quantity: 10}).ThenError(CodeSelfServiceSubscription)
	s.When(&TakeOverSubscription{SubscriptionID: "ss"}).Then(
		SubscriptionTakenOver{SubscriptionID: "ss", SkuID: pbi},
		LicenseAssigned{UserID: "bob", SkuID: pbi, Source: SourceDirect},
		LicenseUnassigned{UserID: "bob", SkuID: pbi, Source: SourceSelfService})
	if p := s.state.Pool(pbi); p.Total != 3 || p.Assigned != 1 || p.SelfServiceTotal != 0 || p.SelfServiceAssigned != 0 {
		t.Fatalf("after take-over: %+v", p)
	}
	s.When(assign("POWER_BI_PRO", "alice")).Then(LicenseAssigned{UserID: "alice", SkuID: pbi, Source: SourceDirect})
	s.When(unassign("POWER_BI_PRO", "bob")).ThenContains(LicenseUnassigned{UserID: "bob", SkuID: pbi, Source: SourceDirect})
}

func TestR9_DeletingAUserFreesLicensesAtOnceAndRestoreWithin30Days(t *testing.T) {
	spb := sku(t, "SPB")
	s := tenant(t).Given(buy("s", "SPB", 1), addUser("alice", "US"), addUser("bob", "US"), assign("SPB", "alice"))
	s.When(assign("SPB", "bob")).ThenError(CodeInsufficientLicenses)
	s.When(&DeleteUser{UserID: "alice"}).ThenContains(UserDeleted{UserID: "alice"})
	if p := s.state.Pool(spb); p.Assigned != 0 {
		t.Fatalf("deleting a user frees the license at once: %+v", p)
	}
	s.When(assign("SPB", "alice")).ThenError(CodeUserDeleted)
	s.When(assign("SPB", "bob")).Then(LicenseAssigned{UserID: "bob", SkuID: spb, Source: SourceDirect})
	// Restore: licenses permitting.
	s.After(10 * 24 * time.Hour)
	e := s.When(&RestoreUser{UserID: "alice"}).ThenError(CodeInsufficientLicenses)
	if e.Missing != 1 {
		t.Fatalf("missing %d", e.Missing)
	}
	s.Given(unassign("SPB", "bob"))
	s.When(&RestoreUser{UserID: "alice"}).ThenContains(UserRestored{UserID: "alice"},
		LicenseAssigned{UserID: "alice", SkuID: spb, Source: SourceDirect},
		DataHoldReleased{UserID: "alice", Workload: WorkloadExchange, Reason: "userRestored"})
	// Not after 30 days.
	s.Given(&DeleteUser{UserID: "alice"})
	s.After(30*24*time.Hour + time.Second)
	s.When(&RestoreUser{UserID: "alice"}).ThenError(CodeRestoreWindowExpired)
}

func TestR10_RemovingALicenseHoldsExchangeDataFor30DaysThenPurges(t *testing.T) {
	s := contoso(t).Given(assign("SPB", "alice"))
	removed := s.now
	s.When(unassign("SPB", "alice")).Then(LicenseUnassigned{UserID: "alice", SkuID: sku(t, "SPB"), Source: SourceDirect},
		DataHeld{UserID: "alice", Workload: WorkloadExchange, HeldSince: removed, PurgeAfter: removed.Add(30 * 24 * time.Hour), Reason: "licenseRemoved"})
	if s.state.Users["alice"].Holds[WorkloadOneDrive] != nil {
		t.Fatal("OneDrive files are held only when the user is deleted")
	}
	purge := func() Command {
		return &PurgeHeldData{CommandMeta: CommandMeta{Actor: Actor{System: "scheduler"}}, UserID: "alice", Workload: WorkloadExchange}
	}
	s.At(removed.Add(29 * 24 * time.Hour))
	s.When(purge()).ThenError(CodePurgeNotDue)
	s.When(as("admin", purge())).ThenError(CodeNotAllowedForRole)
	s.At(removed.Add(30 * 24 * time.Hour))
	s.When(purge()).Then(HeldDataPurged{UserID: "alice", Workload: WorkloadExchange})
	s.When(purge()).ThenError(CodeNoHeldData) // nothing is purged twice
}

func TestR10_ABatchPurgesWhatIsDueAndSkipsTheRest(t *testing.T) {
	s := contoso(t).Given(addUser("cid", "US"), assign("SPB", "alice", "bob", "cid"), unassign("SPB", "alice"))
	s.After(10*24*time.Hour).Given(unassign("SPB", "bob"), &SetRetentionHold{UserID: "cid", Enabled: true}, unassign("SPB", "cid"))
	s.After(21 * 24 * time.Hour) // alice is due, bob is not, cid is retained
	batch := func() Command {
		return &PurgeHeldData{CommandMeta: CommandMeta{Actor: Actor{System: "scheduler"}}, Batch: []HeldDataRef{
			{UserID: "bob", Workload: WorkloadExchange}, {UserID: "alice", Workload: WorkloadExchange},
			{UserID: "cid", Workload: WorkloadExchange}, {UserID: "alice", Workload: WorkloadExchange}}}
	}
	s.When(batch()).Then(HeldDataPurged{UserID: "alice", Workload: WorkloadExchange})
	s.When(batch()).ThenError(CodePurgeNotDue) // nothing left that is due: the first refusal
}

func TestR10_ReassigningWithinTheWindowReleasesTheHold(t *testing.T) {
	s := contoso(t).Given(assign("SPB", "alice"), unassign("SPB", "alice"))
	s.After(10 * 24 * time.Hour)
	s.When(assign("SPB", "alice")).Then(LicenseAssigned{UserID: "alice", SkuID: sku(t, "SPB"), Source: SourceDirect},
		DataHoldReleased{UserID: "alice", Workload: WorkloadExchange, Reason: "licenseAssigned"})
	s.After(30 * 24 * time.Hour)
	s.When(&PurgeHeldData{CommandMeta: CommandMeta{Actor: Actor{System: "scheduler"}}, UserID: "alice", Workload: WorkloadExchange}).
		ThenError(CodeNoHeldData)
}

func TestR10_RetentionHoldKeepsDataAndItsRemovalRestartsTheClock(t *testing.T) {
	s := contoso(t).Given(assign("SPB", "alice"), unassign("SPB", "alice"))
	held := s.state.Users["alice"].Holds[WorkloadExchange].HeldSince
	s.Given(&SetRetentionHold{UserID: "alice", Enabled: true})
	s.After(45 * 24 * time.Hour)
	purge := &PurgeHeldData{CommandMeta: CommandMeta{Actor: Actor{System: "scheduler"}}, UserID: "alice", Workload: WorkloadExchange}
	s.When(purge).ThenError(CodeDataRetained)
	off := s.now
	s.When(&SetRetentionHold{UserID: "alice", Enabled: false}).Then(
		RetentionHoldSet{UserID: "alice", Enabled: false},
		DataHeld{UserID: "alice", Workload: WorkloadExchange, HeldSince: held, PurgeAfter: off.Add(30 * 24 * time.Hour), Reason: "retentionHoldRemoved"})
	s.After(29 * 24 * time.Hour)
	s.When(&PurgeHeldData{CommandMeta: CommandMeta{Actor: Actor{System: "scheduler"}}, UserID: "alice", Workload: WorkloadExchange}).ThenError(CodePurgeNotDue)
}

func TestR10_DeletingAUserHoldsExchangeAndOneDrive(t *testing.T) {
	s := contoso(t).Given(assign("SPB", "alice"))
	hold := func(w string) DataHeld {
		return DataHeld{UserID: "alice", Workload: w, HeldSince: s.now, PurgeAfter: s.now.Add(30 * 24 * time.Hour), Reason: "userDeleted"}
	}
	s.When(&DeleteUser{UserID: "alice"}).Then(UserDeleted{UserID: "alice"}, hold(WorkloadExchange), hold(WorkloadOneDrive))
}

func TestR10_HoldPeriodIsConfigurable(t *testing.T) {
	s := contoso(t).Given(assign("SPB", "alice"))
	s.d = NewDecider(DefaultCatalog(), Policy{HoldPeriod: 2 * time.Second})
	s.When(unassign("SPB", "alice")).ThenContains(DataHeld{UserID: "alice", Workload: WorkloadExchange,
		HeldSince: s.now, PurgeAfter: s.now.Add(2 * time.Second), Reason: "licenseRemoved"})
}

func TestR11_GroupLicensingCountsAUserOnceAndLeavingRemovesOnlyTheInheritedAssignment(t *testing.T) {
	spb := sku(t, "SPB")
	s := contoso(t).Given(&CreateGroup{GroupID: "sales", DisplayName: "Sales"},
		&CreateGroup{GroupID: "emea", DisplayName: "EMEA"},
		&AddGroupMember{GroupID: "sales", UserID: "alice"}, &AddGroupMember{GroupID: "emea", UserID: "alice"},
		assign("SPB", "alice"))
	s.When(&AssignGroupLicenses{GroupID: "sales", Add: []LicenseRequest{{SkuID: "SPB"}}}).Then(
		GroupLicenseAssigned{GroupID: "sales", SkuID: spb},
		LicenseAssigned{UserID: "alice", SkuID: spb, Source: GroupSource("sales")})
	s.Given(&AssignGroupLicenses{GroupID: "emea", Add: []LicenseRequest{{SkuID: "SPB"}}})
	if p := s.state.Pool(spb); p.Assigned != 1 {
		t.Fatalf("three sources, one license: %+v", p)
	}
	s.When(&RemoveGroupMember{GroupID: "sales", UserID: "alice"}).Then(
		GroupMemberRemoved{GroupID: "sales", UserID: "alice"},
		LicenseUnassigned{UserID: "alice", SkuID: spb, Source: GroupSource("sales")})
	l := s.state.Users["alice"].Licenses[spb]
	if l == nil || l.Sources[SourceDirect] == nil || l.Sources[GroupSource("emea")] == nil {
		t.Fatalf("leaving a group removes only its assignment: %+v", l)
	}
	s.When(unassign("SPB", "alice")).ThenContains(LicenseUnassigned{UserID: "alice", SkuID: spb, Source: SourceDirect})
	s.When(unassign("SPB", "alice")).ThenError(CodeInheritedLicense)
	if p := s.state.Pool(spb); p.Assigned != 1 {
		t.Fatalf("still inherited from emea: %+v", p)
	}
}

func TestR11_MembersWhoCannotGetALicenseGetAnErrorStateNotAFailure(t *testing.T) {
	spb, e1 := sku(t, "SPB"), sku(t, "EXCHANGEENTERPRISE")
	s := tenant(t).Given(buy("s", "SPB", 1), buy("x", "EXCHANGESTANDARD", 5), buy("y", "EXCHANGEENTERPRISE", 5),
		addUser("a", "US"), addUser("b", "US"), addUser("nowhere", ""), addUser("c", "US"),
		assign("EXCHANGESTANDARD", "c"),
		&CreateGroup{GroupID: "g", DisplayName: "G"})
	for _, u := range []string{"a", "b", "nowhere"} {
		s.Given(&AddGroupMember{GroupID: "g", UserID: u})
	}
	s.When(&AssignGroupLicenses{GroupID: "g", Add: []LicenseRequest{{SkuID: "SPB"}}}).Then(
		GroupLicenseAssigned{GroupID: "g", SkuID: spb},
		LicenseAssigned{UserID: "a", SkuID: spb, Source: GroupSource("g")},
		GroupLicenseErrored{GroupID: "g", UserID: "b", SkuID: spb, Error: GroupErrCountViolation, Detail: "no license of Microsoft 365 Business Premium is available"},
		GroupLicenseErrored{GroupID: "g", UserID: "nowhere", SkuID: spb, Error: GroupErrUsageLocation, Detail: "the user has no usage location"})
	if p := s.state.Pool(spb); p.Assigned != 1 {
		t.Fatalf("errored members consume nothing: %+v", p)
	}
	// When licenses free up, errored members are retried.
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "s", Quantity: 3}).ThenContains(
		LicenseAssigned{UserID: "b", SkuID: spb, Source: GroupSource("g")})
	s.When(&UpdateUser{UserID: "nowhere", UsageLocation: "FR"}).ThenContains(
		LicenseAssigned{UserID: "nowhere", SkuID: spb, Source: GroupSource("g")})
	// Mutually exclusive plans become an error state too.
	s.Given(&CreateGroup{GroupID: "mail", DisplayName: "Mail"}, &AddGroupMember{GroupID: "mail", UserID: "c"})
	o := s.When(&AssignGroupLicenses{GroupID: "mail", Add: []LicenseRequest{{SkuID: "EXCHANGEENTERPRISE"}}})
	o.ThenContains(GroupLicenseAssigned{GroupID: "mail", SkuID: e1})
	last := o.events[len(o.events)-1].Payload.(GroupLicenseErrored)
	if last.Error != GroupErrMutuallyExclusive || last.UserID != "c" {
		t.Fatalf("want a MutuallyExclusiveViolation for c, got %+v", last)
	}
}

func TestR12_ISVAppQuantityChangesOnlyThroughTheMarketplace(t *testing.T) {
	app := func(id string) *Product {
		return &Product{SkuID: id, SkuPartNumber: id + "_PRO", DisplayName: "Contoso " + id, Publisher: "Fabrikam",
			InstallURL: "https://apps.fabrikam.example/install", ServicePlans: []ServicePlan{{ID: id + "-core", Name: "CORE"}}}
	}
	s := contoso(t).Given(
		&PurchaseSubscription{SubscriptionID: "m", App: app("crm"), Quantity: 5, Channel: ChannelMarketplace},
		&PurchaseSubscription{SubscriptionID: "v", App: app("erp"), Quantity: 5, Channel: ChannelVendor})
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "m", Quantity: 7}).Then(
		SubscriptionQuantityChanged{SubscriptionID: "m", SkuID: "crm", Quantity: 7, Previous: 5})
	e := s.When(&ChangeSubscriptionQuantity{SubscriptionID: "v", Quantity: 7}).ThenError(CodeVendorManaged)
	if e.Rule != "R12" {
		t.Fatal(e)
	}
	s.When(&InstallApp{SkuID: "crm"}).Then(AppInstalled{SkuID: "crm", RedirectURL: "https://apps.fabrikam.example/install"})
	s.When(&InstallApp{SkuID: "SPB"}).ThenError(CodeNotAnApp)
	// ISV app licenses are assigned like any other.
	s.When(assign("crm", "alice")).Then(LicenseAssigned{UserID: "alice", SkuID: "crm", Source: SourceDirect})
	s.When(assign("ERP_PRO", "alice")).Then(LicenseAssigned{UserID: "alice", SkuID: "erp", Source: SourceDirect})
}

func TestR13_QuantityCannotDropBelowAssigned(t *testing.T) {
	s := contoso(t).Given(assign("SPB", "admin", "alice", "bob"))
	// 13 total, 3 assigned: sub-b can go from 8 to 1 (5 + 1 = 6 >= 3) ...
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "sub-b", Quantity: 1}).ThenContains(
		SubscriptionQuantityChanged{SubscriptionID: "sub-b", SkuID: sku(t, "SPB"), Quantity: 1, Previous: 8})
	// ... but sub-a cannot then go to 1 (1 + 1 = 2 < 3), nor stop counting.
	e := s.When(&ChangeSubscriptionQuantity{SubscriptionID: "sub-a", Quantity: 1}).ThenError(CodeQuantityBelowAssigned)
	if e.Rule != "R13" || e.Missing != 1 {
		t.Fatalf("%+v", e)
	}
	s.When(&ChangeSubscriptionStatus{SubscriptionID: "sub-a", Status: StatusSuspended}).ThenError(CodeQuantityBelowAssigned)
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "sub-a", Quantity: 2}).ThenContains(
		SubscriptionQuantityChanged{SubscriptionID: "sub-a", SkuID: sku(t, "SPB"), Quantity: 2, Previous: 5})
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "sub-a", Quantity: 0}).ThenError(CodeInvalidRequest)
}

func TestR14_AUserNeedsAUsageLocationBeforeALicense(t *testing.T) {
	s := contoso(t).Given(addUser("nomad", ""))
	e := s.When(assign("SPB", "nomad")).ThenError(CodeUsageLocationRequired)
	if e.Rule != "R14" {
		t.Fatal(e)
	}
	s.Given(&UpdateUser{UserID: "nomad", UsageLocation: "DE"})
	s.When(assign("SPB", "nomad")).ThenContains(LicenseAssigned{UserID: "nomad", SkuID: sku(t, "SPB"), Source: SourceDirect})
	s.When(&UpdateUser{UserID: "nomad", UsageLocation: "Germany"}).ThenError(CodeInvalidRequest)
}

func TestR15_SomeServicesAreAutoAssignedTenantWide(t *testing.T) {
	c := DefaultCatalog()
	if len(c.AutoAssignedPlans()) == 0 {
		t.Fatal("the catalog names no auto-assigned service")
	}
	for _, n := range c.AutoAssignedPlans() {
		if !c.IsAutoAssigned(n) {
			t.Fatalf("%s", n)
		}
	}
	s := contoso(t)
	if got := EnabledServices(c, s.state, s.state.Users["alice"]); !containsAll(got, c.AutoAssignedPlans()) {
		t.Fatalf("a user without a license has %v, want the auto-assigned %v", got, c.AutoAssignedPlans())
	}
	if p := s.state.Pool(sku(t, "SPB")); p.Assigned != 0 {
		t.Fatal("auto-assigned services consume no license")
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !contains(have, w) {
			return false
		}
	}
	return true
}

func TestR18_AGroupThatGivesLicensesCannotBeDeletedUntilTheyAreRemoved(t *testing.T) {
	spb := sku(t, "SPB")
	s := contoso(t).Given(
		&CreateGroup{GroupID: "sales", DisplayName: "Sales"},
		&AddGroupMember{GroupID: "sales", UserID: "alice"},
		&AssignGroupLicenses{GroupID: "sales", Add: []LicenseRequest{{SkuID: "SPB"}}},
	)
	e := s.When(&DeleteGroup{GroupID: "sales"}).ThenError(CodeGroupHasLicenses)
	if e.Rule != "R18" || !strings.Contains(e.Detail, "SPB") || !strings.Contains(e.Detail, "removeLicenses") {
		t.Fatalf("the refusal must name R18, the license to remove and how: %v", e)
	}
	if s.state.Groups["sales"] == nil || s.state.Users["alice"].Licenses[spb] == nil {
		t.Fatal("a refused delete changed the tenant")
	}
	// Removing the license takes the inherited assignment; then the group goes.
	s.Given(&AssignGroupLicenses{GroupID: "sales", Remove: []string{"SPB"}})
	s.When(&DeleteGroup{GroupID: "sales"}).Then(GroupDeleted{GroupID: "sales"})
	if s.state.Groups["sales"] != nil || s.state.Users["alice"].Groups["sales"] {
		t.Fatal("the group or alice's membership survived the delete")
	}
	s.When(&DeleteGroup{GroupID: "sales"}).ThenError(CodeNotFound)
	// Only a Global or User admin deletes or renames groups.
	s.Given(&CreateGroup{GroupID: "ops", DisplayName: "Ops"}, addUser("carol", "US"), roles("carol", RoleLicenseAdmin))
	s.When(as("carol", &DeleteGroup{GroupID: "ops"})).ThenError(CodeNotAllowedForRole)
	s.When(as("carol", &RenameGroup{GroupID: "ops", DisplayName: "Operations"})).ThenError(CodeNotAllowedForRole)
	s.When(&RenameGroup{GroupID: "ops", DisplayName: "Operations"}).Then(GroupRenamed{GroupID: "ops", DisplayName: "Operations"})
	s.When(&RenameGroup{GroupID: "ops", DisplayName: " "}).ThenError(CodeInvalidRequest)
}

func TestDeletingAGroupForgetsItInTheStashOfDeletedMembers(t *testing.T) {
	s := contoso(t).Given(
		&CreateGroup{GroupID: "sales", DisplayName: "Sales"},
		&AddGroupMember{GroupID: "sales", UserID: "bob"},
		&DeleteUser{UserID: "bob"},
		&DeleteGroup{GroupID: "sales"},
		&CreateGroup{GroupID: "sales", DisplayName: "Sales again"},
		&RestoreUser{UserID: "bob"},
	)
	if s.state.Groups["sales"].Members["bob"] || s.state.Users["bob"].Groups["sales"] {
		t.Fatal("a restore put bob back in a new group that has the deleted group's id")
	}
}

func TestAddingAUserWithLicensesIsAllOrNothingUnderTheRulesOfAssigning(t *testing.T) {
	spb := sku(t, "SPB")
	s := contoso(t).Given(buy("ex", "EXCHANGESTANDARD", 1), buy("ee", "EXCHANGEENTERPRISE", 1))
	withLicenses := func(u *AddUser, ls ...LicenseRequest) *AddUser { u.Licenses = ls; return u }
	// R14: no usage location, no license, no user.
	e := s.When(withLicenses(addUser("dave", ""), LicenseRequest{SkuID: "SPB"})).ThenError(CodeUsageLocationRequired)
	if e.Rule != "R14" {
		t.Fatal(e)
	}
	// R6: conflicting plans refuse the whole command.
	s.When(withLicenses(addUser("dave", "US"), LicenseRequest{SkuID: "EXCHANGESTANDARD"}, LicenseRequest{SkuID: "EXCHANGEENTERPRISE"})).
		ThenError(CodeMutuallyExclusivePlans)
	// R2: a guest's licenses need a Global admin.
	s.Given(addUser("uma", "US"), roles("uma", RoleUserAdmin))
	s.When(as("uma", withLicenses(addGuest("gus"), LicenseRequest{SkuID: "SPB"}))).ThenError(CodeGuestRequiresGlobalAdmin)
	// R3: not enough licenses.
	s.Given(assign("EXCHANGESTANDARD", "alice"))
	e = s.When(withLicenses(addUser("dave", "US"), LicenseRequest{SkuID: "EXCHANGESTANDARD"})).ThenError(CodeInsufficientLicenses)
	if e.Missing != 1 {
		t.Fatal(e)
	}
	if s.state.Users["dave"] != nil || s.state.Users["gus"] != nil {
		t.Fatal("a refused license created the user")
	}
	// All fits: one decision, the user then their licenses.
	teams := planID(t, "SPB", "TEAMS1")
	s.When(withLicenses(addUser("dave", "US"), LicenseRequest{SkuID: "SPB", DisabledPlans: []string{"TEAMS1"}})).Then(
		UserAdded{UserID: "dave", UserPrincipalName: "dave@contoso.com", DisplayName: "dave@contoso.com", UserType: UserTypeMember, UsageLocation: "US"},
		LicenseAssigned{UserID: "dave", SkuID: spb, Source: SourceDirect, DisabledPlans: []string{teams}})
	if p := s.state.Pool(spb); p.Assigned != 1 {
		t.Fatalf("assigned %d, want 1", p.Assigned)
	}
}
