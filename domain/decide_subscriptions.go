package domain

import (
	"maps"
	"slices"
	"strings"
)

var billingAdmins = []Role{RoleGlobalAdmin, RoleBillingAdmin}

func (dec *decision) subscription(id string) (*Subscription, error) {
	if err := checkID("subscriptionId", id); err != nil {
		return nil, err
	}
	s := dec.t.Subscriptions[id]
	if s == nil {
		return nil, Errorf(CodeNotFound, "subscriptionId", "subscription %q does not exist", id)
	}
	return s, nil
}

func (dec *decision) checkQuantity(q int) error {
	if q < 1 || q > dec.d.Policy.MaxQuantity {
		return invalid("quantity", "quantity must be between 1 and %d, not %d", dec.d.Policy.MaxQuantity, q)
	}
	return nil
}

func validateApp(a *Product) error {
	if err := checkID("product.skuId", a.SkuID); err != nil {
		return err
	}
	if err := checkID("product.skuPartNumber", a.SkuPartNumber); err != nil {
		return err
	}
	if err := checkText("product.displayName", a.DisplayName, true); err != nil {
		return err
	}
	if err := checkText("product.publisher", a.Publisher, true); err != nil {
		return err
	}
	if a.InstallURL != "" {
		if err := checkPrintable("product.installUrl", a.InstallURL); err != nil {
			return err
		}
		if err := checkURL("product.installUrl", a.InstallURL); err != nil {
			return err
		}
	}
	if len(a.ServicePlans) > 100 {
		return invalid("product.servicePlans", "an app has at most 100 service plans")
	}
	seen := map[string]bool{}
	for i := range a.ServicePlans {
		sp := &a.ServicePlans[i]
		if err := checkID("product.servicePlans.servicePlanId", sp.ID); err != nil {
			return err
		}
		if err := checkText("product.servicePlans.servicePlanName", sp.Name, true); err != nil {
			return err
		}
		if err := checkText("product.servicePlans.displayName", sp.DisplayName, false); err != nil {
			return err
		}
		if err := checkText("product.servicePlans.workload", sp.Workload, false); err != nil {
			return err
		}
		if seen[sp.ID] {
			return invalid("product.servicePlans", "service plan %q is listed twice", Echo(sp.ID))
		}
		seen[sp.ID] = true
		if sp.Workload == "" {
			sp.Workload = WorkloadOther
		}
	}
	return nil
}

func (dec *decision) purchase(c *PurchaseSubscription) error {
	if err := dec.authorize("", "buy subscriptions", billingAdmins...); err != nil {
		return err
	}
	if err := checkID("id", c.SubscriptionID); err != nil {
		return err
	}
	if dec.t.Subscriptions[c.SubscriptionID] != nil {
		return Errorf(CodeAlreadyExists, "id", "subscription %q already exists", c.SubscriptionID)
	}
	if err := dec.checkQuantity(c.Quantity); err != nil {
		return err
	}
	kind, channel := c.Kind, c.Channel
	if kind == "" {
		kind = KindPaid
	}
	if kind != KindPaid && kind != KindTrial && kind != KindSelfService {
		return invalid("kind", "kind must be Paid, Trial or SelfService, not %q", Echo(kind))
	}
	if c.Term != "" && !validTerm(c.Term) {
		return invalid("term", "term must be %s (a month) or %s (a year), not %q", TermMonthly, TermAnnual, Echo(c.Term))
	}
	var sku string
	switch {
	case c.App != nil && c.SkuID != "":
		return invalid("product", "give either skuId (a catalog product) or product (an ISV app), not both")
	case c.App != nil:
		app := *c.App
		app.ServicePlans = append([]ServicePlan(nil), c.App.ServicePlans...)
		if err := validateApp(&app); err != nil {
			return err
		}
		if _, ok := dec.d.Catalog.Lookup(app.SkuID); ok {
			return invalid("product.skuId", "%s is a catalog product, not an app: give it as skuId", app.SkuID)
		}
		if _, ok := dec.d.Catalog.Lookup(app.SkuPartNumber); ok {
			return invalid("product.skuPartNumber", "%s is the part number of a catalog product", app.SkuPartNumber)
		}
		if channel == "" {
			channel = ChannelMarketplace
		}
		if channel != ChannelMarketplace && channel != ChannelVendor {
			return invalid("channel", "an app is bought through the Marketplace or its Vendor, not %q", Echo(channel))
		}
		if existing, ok := dec.d.ResolveProduct(dec.t, app.SkuID); !ok {
			if p, clash := dec.d.ResolveProduct(dec.t, app.SkuPartNumber); clash {
				return invalid("product.skuPartNumber", "part number %s is already used by %s", app.SkuPartNumber, p.SkuID)
			}
			if err := dec.checkAppPlans(&app); err != nil {
				return err
			}
			dec.emit(ProductRegistered{Product: app})
		} else if existing.SkuPartNumber != app.SkuPartNumber {
			return invalid("product.skuPartNumber", "app %s is registered with part number %s", app.SkuID, existing.SkuPartNumber)
		}
		sku = app.SkuID
	default:
		p, err := dec.resolve("skuId", c.SkuID)
		if err != nil {
			return err
		}
		if channel == "" {
			channel = ChannelDirect
		}
		if channel == ChannelVendor {
			return invalid("channel", "%s is a Microsoft product: buy it Direct or through the Marketplace; Vendor is for ISV apps", p.DisplayName)
		}
		if channel != ChannelDirect && channel != ChannelMarketplace {
			return invalid("channel", "channel must be Direct or Marketplace (Vendor for ISV apps), not %q", Echo(channel))
		}
		sku = p.SkuID
	}
	// A self-service purchase, or a trial a user started for themself,
	// forms the self-service pool until taken over (R8).
	selfService := kind == KindSelfService || kind == KindTrial && c.PurchasedBy != ""
	var buyer *User
	if selfService {
		u, err := dec.activeUser("purchasedBy", c.PurchasedBy)
		if err != nil {
			return err
		}
		buyer = u
	} else if c.PurchasedBy != "" {
		if err := checkID("purchasedBy", c.PurchasedBy); err != nil {
			return err
		}
	}
	var recurring *bool
	if c.RecurringBilling != nil {
		on := *c.RecurringBilling
		recurring = &on
	}
	// The term's dates follow from the event's time (Subscription.startTerm):
	// the event names only what the buyer chose.
	dec.emit(SubscriptionPurchased{SubscriptionID: c.SubscriptionID, SkuID: sku, Quantity: c.Quantity,
		Kind: kind, Channel: channel, PurchasedBy: c.PurchasedBy, SelfService: selfService,
		Term: c.Term, RecurringBilling: recurring})
	if selfService {
		dec.selfTotal.add(sku, c.Quantity)
		// The buyer of a self-service purchase gets its first license.
		du := dec.draft(buyer)
		if du.lic[sku] == nil && buyer.UsageLocation != "" {
			dec.assign(du, sku, SourceSelfService, nil)
			if err := dec.checkPlans(du); err != nil {
				return err
			}
		}
		dec.holds()
		return nil
	}
	dec.total.add(sku, c.Quantity)
	dec.retryErrored("")
	dec.holds()
	return nil
}

func (dec *decision) changeQuantity(c *ChangeSubscriptionQuantity) error {
	if err := dec.authorize("R12", "change license quantities", billingAdmins...); err != nil {
		return err
	}
	s, err := dec.subscription(c.SubscriptionID)
	if err != nil {
		return err
	}
	if err := dec.checkQuantity(c.Quantity); err != nil {
		return err
	}
	if s.Status == StatusDeleted {
		return invalid("subscriptionId", "subscription %s is deleted", s.ID)
	}
	if s.Ended() {
		return dec.ended(s, "changing its licenses")
	}
	if err := dec.vendorManaged(s, "add or remove licenses"); err != nil {
		return err
	}
	if s.selfServicePool() {
		return ruleErr(CodeSelfServiceSubscription, "R8", "subscription %s is a self-service purchase: take it over first", s.ID)
	}
	if c.Quantity == s.Quantity {
		return nil
	}
	if s.counts() {
		pool := dec.t.Pool(s.SkuID)
		if newTotal := pool.Total - s.Quantity + c.Quantity; newTotal < pool.Assigned {
			e := ruleErr(CodeQuantityBelowAssigned, "R13", "%d licenses of %s are assigned; a total of %d would leave %d users without one: unassign %d licenses first",
				pool.Assigned, dec.d.productName(dec.t, s.SkuID), newTotal, pool.Assigned-newTotal, pool.Assigned-newTotal)
			e.Missing = pool.Assigned - newTotal
			return e
		}
		dec.total.add(s.SkuID, c.Quantity-s.Quantity)
	}
	dec.emit(SubscriptionQuantityChanged{SubscriptionID: s.ID, SkuID: s.SkuID, Quantity: c.Quantity, Previous: s.Quantity})
	if c.Quantity > s.Quantity {
		dec.retryErrored("")
		dec.holds()
	}
	return nil
}

func (dec *decision) changeStatus(c *ChangeSubscriptionStatus) error {
	if err := dec.authorize("", "change subscriptions", billingAdmins...); err != nil {
		return err
	}
	s, err := dec.subscription(c.SubscriptionID)
	if err != nil {
		return err
	}
	switch c.Status {
	case StatusEnabled, StatusWarning, StatusSuspended, StatusDeleted:
	default:
		return invalid("status", "status must be Enabled, Warning, Suspended or Deleted, not %q", Echo(c.Status))
	}
	if s.Status == c.Status {
		return nil
	}
	if !dec.m.Actor.Operator {
		// The vendor bills it: the platform operator, standing for the
		// vendor's billing, may change its status; the tenant's admins
		// cannot cancel or suspend it (R12).
		if err := dec.vendorManaged(s, "cancel or change the subscription"); err != nil {
			return err
		}
	}
	if s.Status == StatusDeleted {
		return invalid("status", "subscription %s is deleted and cannot change again", s.ID)
	}
	if s.Ended() && c.Status != StatusDeleted {
		// Expired and Disabled follow from the term (R17); only a new term
		// brings the subscription back.
		return dec.ended(s, "changing its status")
	}
	after := Subscription{Status: c.Status}
	if s.counts() && !after.counts() {
		pool := dec.t.Pool(s.SkuID)
		total, assigned := pool.Total, pool.Assigned
		if s.selfServicePool() {
			total, assigned = pool.SelfServiceTotal, pool.SelfServiceAssigned
		}
		if total-s.Quantity < assigned {
			e := ruleErr(CodeQuantityBelowAssigned, "R13", "%d licenses of %s are assigned; without this subscription only %d would remain: unassign %d licenses first",
				assigned, dec.d.productName(dec.t, s.SkuID), total-s.Quantity, assigned-(total-s.Quantity))
			e.Missing = assigned - (total - s.Quantity)
			return e
		}
	}
	dec.emit(SubscriptionStatusChanged{SubscriptionID: s.ID, SkuID: s.SkuID, Status: c.Status, Previous: s.Status})
	if !s.counts() && after.counts() && !s.selfServicePool() {
		dec.total.add(s.SkuID, s.Quantity)
		dec.retryErrored("")
		dec.holds()
	}
	return nil
}

func (dec *decision) takeOver(c *TakeOverSubscription) error {
	if err := dec.authorize("R8", "take over subscriptions", billingAdmins...); err != nil {
		return err
	}
	s, err := dec.subscription(c.SubscriptionID)
	if err != nil {
		return err
	}
	if !s.selfServiceBought() {
		return invalid("subscriptionId", "subscription %s is not a self-service purchase", s.ID)
	}
	if s.TakenOver {
		return nil
	}
	dec.emit(SubscriptionTakenOver{SubscriptionID: s.ID, SkuID: s.SkuID})
	if s.counts() {
		dec.total.add(s.SkuID, s.Quantity)
		dec.selfTotal.add(s.SkuID, -(s.Quantity))
	}
	// The buyer's license now comes from the admins' pool.
	if buyer := dec.t.Users[s.PurchasedBy]; buyer != nil && !buyer.Deleted {
		du := dec.draft(buyer)
		if l := du.lic[s.SkuID]; l != nil && l.Sources[SourceSelfService] != nil {
			if l.Sources[SourceDirect] == nil {
				dec.assign(du, s.SkuID, SourceDirect, l.Sources[SourceSelfService].DisabledPlans)
			}
			dec.unassign(du, s.SkuID, SourceSelfService)
		}
	}
	if err := dec.checkCounts(); err != nil {
		return err
	}
	dec.retryErrored("")
	dec.holds()
	return nil
}

// vendorManaged refuses to change a subscription its vendor manages (R12):
// an ISV app not bought through the Marketplace, or any subscription of the
// Vendor channel (older streams may hold a catalog product bought so).
func (dec *decision) vendorManaged(s *Subscription, what Phrase) error {
	app := dec.t.Apps[s.SkuID]
	if s.Channel != ChannelVendor && (app == nil || s.Channel == ChannelMarketplace) {
		return nil
	}
	if app != nil && app.Publisher != "" {
		return ruleErr(CodeVendorManaged, "R12", "%s was bought through its vendor (%s): contact the vendor to %s",
			dec.d.productName(dec.t, s.SkuID), app.Publisher, what)
	}
	return ruleErr(CodeVendorManaged, "R12", "%s was bought through its vendor: contact the vendor to %s",
		dec.d.productName(dec.t, s.SkuID), what)
}

// checkAppPlans refuses an app that declares a service plan of a Microsoft
// product (by id or name) or of another app: an app's plans are its own, or
// a user would hold one plan from two products.
func (dec *decision) checkAppPlans(app *Product) error {
	for _, sp := range app.ServicePlans {
		if dec.d.Catalog.HasPlanID(sp.ID) {
			return invalid("product.servicePlans.servicePlanId", "service plan id %s is a Microsoft service plan: give the app's plans their own ids", sp.ID)
		}
		if dec.d.Catalog.HasPlanName(sp.Name) {
			return invalid("product.servicePlans.servicePlanName", "service plan name %s is a Microsoft service plan: give the app's plans their own names", sp.Name)
		}
		for _, other := range slices.Sorted(maps.Keys(dec.t.Apps)) {
			if other != app.SkuID && planHasID(dec.t.Apps[other], sp.ID) {
				return invalid("product.servicePlans.servicePlanId", "service plan id %s belongs to app %s", sp.ID, other)
			}
		}
	}
	return nil
}

func planHasID(p *Product, id string) bool {
	for _, sp := range p.ServicePlans {
		if strings.EqualFold(sp.ID, id) {
			return true
		}
	}
	return false
}

func (dec *decision) installApp(c *InstallApp) error {
	if err := dec.authorize("R12", "install apps", RoleGlobalAdmin); err != nil {
		return err
	}
	p, err := dec.owned("skuId", c.SkuID)
	if err != nil {
		return err
	}
	if !p.IsApp() || dec.t.Apps[p.SkuID] == nil {
		return ruleErr(CodeNotAnApp, "R12", "%s is a Microsoft product, not an ISV app: there is nothing to install", p.DisplayName)
	}
	if p.InstallURL == "" {
		return ruleErr(CodeNotAnApp, "R12", "%s has no install page: its vendor installs it", p.DisplayName)
	}
	dec.emit(AppInstalled{SkuID: p.SkuID, RedirectURL: p.InstallURL})
	return nil
}
