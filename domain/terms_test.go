package domain

import (
	"strings"
	"testing"
	"time"
)

const tday = 24 * time.Hour

// advance is the scheduler's command moving subscriptions along (R17).
func advance(ids ...string) *AdvanceSubscriptions {
	return &AdvanceSubscriptions{CommandMeta: CommandMeta{Actor: Actor{System: "scheduler"}}, Subscriptions: ids}
}

func billing(id string, on bool) *SetRecurringBilling {
	return &SetRecurringBilling{SubscriptionID: id, Enabled: on}
}

func cancelSub(id string) *CancelSubscription { return &CancelSubscription{SubscriptionID: id} }

func monthly(id, sku string, qty int) *PurchaseSubscription {
	return &PurchaseSubscription{SubscriptionID: id, SkuID: sku, Quantity: qty, Term: TermMonthly}
}

func TestR16_CancelWithARefundOnlyWithinTheWindowAfterPurchaseOrRenewal(t *testing.T) {
	spb := sku(t, "SPB")
	s := tenant(t).Given(addUser("alice", "US"), addUser("bob", "US"), buy("early", "SPB", 5), buy("late", "SPB", 3),
		assign("SPB", "alice"))
	bought := s.now
	if sub := s.state.Subscriptions["early"]; !sub.CancellationWindowEnd.Equal(bought.Add(168 * time.Hour)) {
		t.Fatalf("the window ends 168 h after the purchase, not %v", sub.CancellationWindowEnd)
	}
	// Within the window: cancelled with a refund, Disabled at once, deleted
	// 90 days later; the licenses leave the total, the assignment stays.
	s.After(6 * tday)
	s.When(cancelSub("early")).Then(SubscriptionCancelled{SubscriptionID: "early", SkuID: spb, Previous: StatusEnabled,
		Refund: true, DeleteAt: s.now.Add(90 * tday)})
	if sub := s.state.Subscriptions["early"]; sub.Status != StatusDisabled || sub.RecurringBilling {
		t.Fatalf("a cancelled subscription is Disabled without billing: %+v", sub)
	}
	if p := s.state.Pool(spb); p.Total != 3 || p.Assigned != 1 {
		t.Fatalf("pool after the cancel: %+v", p)
	}
	s.When(cancelSub("early")).ThenError(CodeInvalidRequest)

	// At 168 h the window has closed: turn off recurring billing instead.
	s.At(bought.Add(168 * time.Hour))
	e := s.When(cancelSub("late")).ThenError(CodeCancellationWindowPassed)
	if e.Rule != "R16" || !strings.Contains(e.Detail, "turn off recurring billing to cancel the subscription at the end of its term") {
		t.Fatalf("%+v", e)
	}
	s.When(billing("late", false)).Then(SubscriptionRecurringBillingSet{SubscriptionID: "late", SkuID: spb, Enabled: false})
	s.When(billing("late", false)).Then()
	if e := s.When(cancelSub("late")).ThenError(CodeCancellationWindowPassed); !strings.Contains(e.Detail, "already off") {
		t.Fatalf("%+v", e)
	}

	// A renewal opens a new window (R17 renews at the end of the term).
	s.Given(billing("late", true))
	s.At(bought.AddDate(1, 0, 0))
	s.Given(advance("late"))
	s.After(3 * tday)
	s.When(cancelSub("late")).ThenContains(SubscriptionCancelled{SubscriptionID: "late", SkuID: spb, Previous: StatusEnabled,
		Refund: true, DeleteAt: s.now.Add(90 * tday)})

	// A trial can be cancelled at any time, with nothing to refund.
	s.Given(&PurchaseSubscription{SubscriptionID: "try", SkuID: "SPB", Quantity: 25, Kind: KindTrial})
	s.After(20 * tday)
	s.When(cancelSub("try")).Then(SubscriptionCancelled{SubscriptionID: "try", SkuID: spb, Previous: StatusEnabled,
		DeleteAt: s.now.Add(90 * tday)})

	// Only a Global or Billing admin cancels; a vendor's app is the
	// vendor's to cancel (R12), a self-service purchase is taken over first (R8).
	s.Given(addUser("lena", "US"), roles("lena", RoleLicenseAdmin), addUser("bill", "US"), roles("bill", RoleBillingAdmin),
		buy("fresh", "SPB", 2),
		&PurchaseSubscription{SubscriptionID: "vend", Quantity: 2, Channel: ChannelVendor, App: testApp("erp")},
		&PurchaseSubscription{SubscriptionID: "mine", SkuID: "POWER_BI_PRO", Quantity: 1, Kind: KindSelfService, PurchasedBy: "bob"})
	s.When(as("lena", cancelSub("fresh"))).ThenError(CodeNotAllowedForRole)
	s.When(cancelSub("vend")).ThenError(CodeVendorManaged)
	s.When(billing("vend", false)).ThenError(CodeVendorManaged)
	s.When(cancelSub("mine")).ThenError(CodeSelfServiceSubscription)
	s.When(as("bill", cancelSub("fresh"))).ThenContains(SubscriptionCancelled{SubscriptionID: "fresh", SkuID: spb,
		Previous: StatusEnabled, Refund: true, DeleteAt: s.now.Add(90 * tday)})
	s.When(cancelSub("nope")).ThenError(CodeNotFound)
}

func TestR17_ATermEndingWithoutRecurringBillingExpiresThenIsDisabledThenDeleted(t *testing.T) {
	spb := sku(t, "SPB")
	s := tenant(t).Given(addUser("alice", "US"), addUser("bob", "US"), monthly("m", "SPB", 1), assign("SPB", "alice"),
		billing("m", false))
	end := s.state.Subscriptions["m"].TermEnd
	if want := addMonths(s.now, 1); !end.Equal(want) {
		t.Fatalf("a monthly term ends at %v, want %v", end, want)
	}
	s.At(end.Add(-time.Second))
	if e := s.When(advance("m")).ThenError(CodeLifecycleNotDue); e.Rule != "R17" {
		t.Fatalf("%+v", e)
	}
	// At the end of the term: Expired for 30 days; the license still works.
	s.At(end)
	s.When(advance("m")).Then(SubscriptionExpired{SubscriptionID: "m", SkuID: spb, TermEnd: end, DisableAt: end.Add(30 * tday)})
	if p := s.state.Pool(spb); s.state.Subscriptions["m"].Status != StatusExpired || p.Total != 1 || p.Assigned != 1 {
		t.Fatalf("an Expired subscription's licenses still count: %+v", p)
	}
	s.When(advance("m")).ThenError(CodeLifecycleNotDue) // a duplicate appends nothing
	s.When(&ChangeSubscriptionQuantity{SubscriptionID: "m", Quantity: 3}).ThenError(CodeInvalidRequest)
	s.When(&ChangeSubscriptionStatus{SubscriptionID: "m", Status: StatusEnabled}).ThenError(CodeInvalidRequest)

	// 30 days later: Disabled for 90 days. The license stays assigned but
	// leaves the total: nothing more can be assigned from it.
	s.At(end.Add(30*tday - time.Second))
	s.When(advance("m")).ThenError(CodeLifecycleNotDue)
	s.At(end.Add(30 * tday))
	s.When(advance("m")).Then(SubscriptionDisabled{SubscriptionID: "m", SkuID: spb, Previous: StatusExpired, DeleteAt: end.Add(120 * tday)})
	if p := s.state.Pool(spb); p.Total != 0 || p.Assigned != 1 || s.state.Users["alice"].Licenses[spb] == nil {
		t.Fatalf("a Disabled subscription's licenses stay assigned, out of the total: %+v", p)
	}
	s.When(assign("SPB", "bob")).ThenError(CodeInsufficientLicenses)

	// 90 days later: Deleted, and nothing is due any more.
	s.At(end.Add(120 * tday))
	s.When(advance("m")).Then(SubscriptionStatusChanged{SubscriptionID: "m", SkuID: spb, Status: StatusDeleted, Previous: StatusDisabled})
	s.After(400 * tday)
	s.When(advance("m")).ThenError(CodeLifecycleNotDue)

	// A scheduler that was down catches up in one decision, with the dates
	// it would have written on time.
	s.Given(monthly("late", "SPB", 1), billing("late", false))
	lend := s.state.Subscriptions["late"].TermEnd
	s.At(lend.Add(200 * tday))
	s.When(advance("late")).Then(
		SubscriptionExpired{SubscriptionID: "late", SkuID: spb, TermEnd: lend, DisableAt: lend.Add(30 * tday)},
		SubscriptionDisabled{SubscriptionID: "late", SkuID: spb, Previous: StatusExpired, DeleteAt: lend.Add(120 * tday)},
		SubscriptionStatusChanged{SubscriptionID: "late", SkuID: spb, Status: StatusDeleted, Previous: StatusDisabled})

	// Only the scheduler (or the operator) moves subscriptions along.
	s.When(&AdvanceSubscriptions{Subscriptions: []string{"m"}}).ThenError(CodeNotAllowedForRole)
	s.When(advance()).ThenError(CodeInvalidRequest)
}

func TestR17_RecurringBillingRenewsTheTermAtItsEnd(t *testing.T) {
	spb := sku(t, "SPB")
	jan31 := time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC)
	s := tenant(t).At(jan31).Given(monthly("m", "SPB", 4), buy("y", "SPB", 2))
	m := s.state.Subscriptions["m"]
	if !m.RecurringBilling || m.Term != TermMonthly || !m.TermEnd.Equal(time.Date(2027, 2, 28, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("a term bought on 31 January ends on 28 February: %+v", m)
	}
	// Each renewal is an event with the new term and a new cancellation
	// window; the day returns to the 31st when the month has one.
	feb28 := m.TermEnd
	mar31 := time.Date(2027, 3, 31, 10, 0, 0, 0, time.UTC)
	s.At(feb28)
	s.When(advance("m", "y")).Then(SubscriptionRenewed{SubscriptionID: "m", SkuID: spb, TermStart: feb28, TermEnd: mar31,
		CancellationWindowEnd: feb28.Add(CancellationWindow)})
	// Missed renewals are caught up, each its own term.
	apr30, may31 := time.Date(2027, 4, 30, 10, 0, 0, 0, time.UTC), time.Date(2027, 5, 31, 10, 0, 0, 0, time.UTC)
	s.At(apr30.Add(tday))
	s.When(advance("m")).Then(
		SubscriptionRenewed{SubscriptionID: "m", SkuID: spb, TermStart: mar31, TermEnd: apr30, CancellationWindowEnd: mar31.Add(CancellationWindow)},
		SubscriptionRenewed{SubscriptionID: "m", SkuID: spb, TermStart: apr30, TermEnd: may31, CancellationWindowEnd: apr30.Add(CancellationWindow)})
	if p := s.state.Pool(spb); p.Total != 6 || s.state.Subscriptions["m"].Status != StatusEnabled {
		t.Fatalf("a renewal changes no count: %+v", p)
	}
	// An annual term renews a year on.
	s.At(jan31.AddDate(1, 0, 0))
	s.When(advance("y")).Then(SubscriptionRenewed{SubscriptionID: "y", SkuID: spb, TermStart: jan31.AddDate(1, 0, 0),
		TermEnd: jan31.AddDate(2, 0, 0), CancellationWindowEnd: jan31.AddDate(1, 0, 0).Add(CancellationWindow)})
	s.When(&PurchaseSubscription{SubscriptionID: "w", SkuID: "SPB", Quantity: 1, Term: "P3W"}).ThenError(CodeInvalidRequest)
}

func TestR17_ATrialEndsAfterAMonthUnlessRecurringBillingConvertsIt(t *testing.T) {
	spb := sku(t, "SPB")
	s := tenant(t).Given(&PurchaseSubscription{SubscriptionID: "try", SkuID: "SPB", Quantity: 25, Kind: KindTrial},
		&PurchaseSubscription{SubscriptionID: "keep", SkuID: "SPB", Quantity: 5, Kind: KindTrial, Term: TermMonthly})
	tr := s.state.Subscriptions["try"]
	if tr.RecurringBilling || !tr.TrialEnd.Equal(s.now.Add(30*tday)) || !tr.TermEnd.Equal(tr.TrialEnd) || !tr.CancellationWindowEnd.IsZero() {
		t.Fatalf("a trial is free for 30 days, recurring billing off, cancellable at any time: %+v", tr)
	}
	trialEnd := tr.TrialEnd
	s.Given(billing("keep", true))
	s.At(trialEnd)
	s.When(advance("try", "keep")).Then(
		SubscriptionExpired{SubscriptionID: "try", SkuID: spb, TermEnd: trialEnd, DisableAt: trialEnd.Add(30 * tday)},
		SubscriptionRenewed{SubscriptionID: "keep", SkuID: spb, TermStart: trialEnd, TermEnd: addMonths(trialEnd, 1),
			CancellationWindowEnd: trialEnd.Add(CancellationWindow), Converted: true})
	if k := s.state.Subscriptions["keep"]; k.Kind != KindPaid || !k.TrialEnd.Equal(trialEnd) {
		t.Fatalf("a converted trial is paid and keeps its trial end: %+v", k)
	}
	// Its next renewal counts from the conversion.
	s.At(addMonths(trialEnd, 1))
	s.When(advance("keep")).Then(SubscriptionRenewed{SubscriptionID: "keep", SkuID: spb, TermStart: addMonths(trialEnd, 1),
		TermEnd: addMonths(trialEnd, 2), CancellationWindowEnd: addMonths(trialEnd, 1).Add(CancellationWindow)})
}

func TestR17_RecurringBillingReactivatesAnExpiredOrDisabledSubscription(t *testing.T) {
	spb := sku(t, "SPB")
	s := tenant(t).Given(addUser("alice", "US"), monthly("m", "SPB", 2), billing("m", false), assign("SPB", "alice"))
	end := s.state.Subscriptions["m"].TermEnd
	s.At(end.Add(40 * tday)).Given(advance("m")) // Expired, then Disabled
	if p := s.state.Pool(spb); s.state.Subscriptions["m"].Status != StatusDisabled || p.Total != 0 {
		t.Fatalf("%+v", s.state.Subscriptions["m"])
	}
	now := s.now
	s.When(billing("m", true)).Then(
		SubscriptionRecurringBillingSet{SubscriptionID: "m", SkuID: spb, Enabled: true},
		SubscriptionRenewed{SubscriptionID: "m", SkuID: spb, TermStart: now, TermEnd: addMonths(now, 1),
			CancellationWindowEnd: now.Add(CancellationWindow), Reactivated: true, Previous: StatusDisabled})
	m := s.state.Subscriptions["m"]
	if p := s.state.Pool(spb); m.Status != StatusEnabled || !m.DeleteAt.IsZero() || p.Total != 2 || p.Assigned != 1 {
		t.Fatalf("reactivated: %+v, pool %+v", m, p)
	}
	// Expired, reactivated the same way (a cancelled one too: R16).
	s.Given(billing("m", false)).At(addMonths(now, 1)).Given(advance("m"))
	s.When(billing("m", true)).ThenContains(SubscriptionRenewed{SubscriptionID: "m", SkuID: spb, TermStart: s.now,
		TermEnd: addMonths(s.now, 1), CancellationWindowEnd: s.now.Add(CancellationWindow), Reactivated: true, Previous: StatusExpired})
	s.Given(cancelSub("m"))
	s.When(billing("m", true)).ThenContains(SubscriptionRenewed{SubscriptionID: "m", SkuID: spb, TermStart: s.now,
		TermEnd: addMonths(s.now, 1), CancellationWindowEnd: s.now.Add(CancellationWindow), Reactivated: true, Previous: StatusDisabled})
	// A deleted subscription stays deleted (deleting it by hand is still
	// bound by R13).
	s.When(&ChangeSubscriptionStatus{SubscriptionID: "m", Status: StatusDeleted}).ThenError(CodeQuantityBelowAssigned)
	s.Given(unassign("SPB", "alice"), &ChangeSubscriptionStatus{SubscriptionID: "m", Status: StatusDeleted})
	s.When(billing("m", true)).ThenError(CodeInvalidRequest)
}

func TestR17_PurchasesWithoutTermsFoldWithTheDefaults(t *testing.T) {
	at := time.Date(2025, 2, 10, 8, 0, 0, 0, time.UTC)
	s := tenant(t)
	s.apply([]Event{
		{Envelope: Envelope{Version: s.state.Version + 1, OccurredAt: at},
			Payload: SubscriptionPurchased{SubscriptionID: "old", SkuID: sku(t, "SPB"), Quantity: 2, Kind: KindPaid, Channel: ChannelDirect}},
		{Envelope: Envelope{Version: s.state.Version + 2, OccurredAt: at},
			Payload: SubscriptionPurchased{SubscriptionID: "oldtrial", SkuID: sku(t, "SPB"), Quantity: 2, Kind: KindTrial, Channel: ChannelDirect}},
	})
	old := s.state.Subscriptions["old"]
	if old.Term != TermAnnual || !old.TermStart.Equal(at) || !old.TermEnd.Equal(at.AddDate(1, 0, 0)) || !old.RecurringBilling ||
		!old.CancellationWindowEnd.Equal(at.Add(CancellationWindow)) || !old.TrialEnd.IsZero() {
		t.Fatalf("an old purchase folds to an annual term with recurring billing: %+v", old)
	}
	tr := s.state.Subscriptions["oldtrial"]
	if tr.RecurringBilling || !tr.TermEnd.Equal(at.Add(TrialLength)) || !tr.TrialEnd.Equal(tr.TermEnd) {
		t.Fatalf("an old trial folds to a 30-day trial without billing: %+v", tr)
	}
	// A snapshot keeps the terms.
	if c := s.state.Clone(); !c.Subscriptions["old"].TermEnd.Equal(old.TermEnd) || c.Subscriptions["old"].TermAnchor.IsZero() {
		t.Fatalf("clone lost the term: %+v", c.Subscriptions["old"])
	}
}
