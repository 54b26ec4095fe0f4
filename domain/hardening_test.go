package domain

import "testing"

// Tests of issue #18 "Hardening" (domain items), one per item: each failed
// before its fix.

func TestHardening13_StaleGroupErrorShowsTheCurrentReason(t *testing.T) {
	spb := sku(t, "SPB")
	s := tenant(t).Given(buy("s", "SPB", 1), addUser("a", "US"), addUser("nowhere", ""),
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
	// A retry whose reason did not change writes nothing new.
	s.When(unassign("SPB", "admin")).Then()
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
