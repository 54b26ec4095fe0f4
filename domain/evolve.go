package domain

import (
	"maps"
	"slices"
	"time"
)

// Evolve applies one event to the state and returns it. It changes t in
// place (a tenant can have 100k users; copying it per event would make every
// command O(tenant size)); callers that need the old state keep a Clone.
//
// Evolve never fails and never panics on a decoded event: an event that does
// not fit the state (an unknown user, say) changes only what it can. Rules
// are checked by Decide before an event exists.
func Evolve(t *Tenant, e Event) *Tenant {
	if t == nil {
		t = NewTenant()
	}
	if e.Version > t.Version {
		t.Version = e.Version
	}
	if e.OccurredAt.After(t.LastOccurredAt) {
		t.LastOccurredAt = e.OccurredAt
	}
	t.rememberCommand(e.Envelope)

	switch p := e.Payload.(type) {
	case TenantCreated:
		t.ID, t.Name = p.TenantID, p.Name
	case UserAdded:
		t.Users[p.UserID] = &User{
			ID: p.UserID, UserPrincipalName: p.UserPrincipalName, DisplayName: p.DisplayName,
			UserType: p.UserType, UsageLocation: p.UsageLocation,
			Licenses: map[string]*UserLicense{},
		}
		t.indexUPN(t.Users[p.UserID])
	case UserUpdated:
		if u := t.Users[p.UserID]; u != nil {
			if p.DisplayName != "" {
				u.DisplayName = p.DisplayName
			}
			if p.UsageLocation != "" {
				u.UsageLocation = p.UsageLocation
			}
		}
	case UserDeleted:
		t.deleteUser(p.UserID, e)
	case UserRestored:
		if u := t.Users[p.UserID]; u != nil {
			u.Deleted, u.DeletedAt, u.Stash = false, time.Time{}, nil
		}
	case AdminRolesChanged:
		if u := t.Users[p.UserID]; u != nil {
			u.Roles = append([]Role(nil), p.Roles...)
		}
	case GroupCreated:
		t.Groups[p.GroupID] = &Group{ID: p.GroupID, DisplayName: p.DisplayName,
			Members: map[string]bool{}, Licenses: map[string]*GroupLicense{}}
	case GroupRenamed:
		if g := t.Groups[p.GroupID]; g != nil {
			g.DisplayName = p.DisplayName
		}
	case GroupDeleted:
		t.deleteGroup(p.GroupID)
	case GroupMemberAdded:
		g, u := t.Groups[p.GroupID], t.Users[p.UserID]
		if g != nil && u != nil {
			g.Members[p.UserID] = true
			if u.Groups == nil {
				u.Groups = map[string]bool{}
			}
			u.Groups[p.GroupID] = true
		}
	case GroupMemberRemoved:
		if g := t.Groups[p.GroupID]; g != nil {
			delete(g.Members, p.UserID)
		}
		if u := t.Users[p.UserID]; u != nil {
			delete(u.Groups, p.GroupID)
		}
	case ProductRegistered:
		prod := p.Product
		t.Apps[prod.SkuID] = &prod
	case SubscriptionPurchased:
		s := &Subscription{
			ID: p.SubscriptionID, SkuID: p.SkuID, Quantity: p.Quantity, Kind: p.Kind,
			Channel: p.Channel, Status: StatusEnabled, PurchasedBy: p.PurchasedBy, PurchasedAt: e.OccurredAt,
			SelfService: p.SelfService || p.Kind == KindSelfService,
		}
		s.startTerm(p, e.OccurredAt)
		t.Subscriptions[p.SubscriptionID] = s
		t.recountPool(p.SkuID)
	case SubscriptionQuantityChanged:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.Quantity = p.Quantity
			t.recountPool(s.SkuID)
		}
	case SubscriptionTakenOver:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.TakenOver = true
			t.recountPool(s.SkuID)
		}
	case SubscriptionStatusChanged:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.Status = p.Status
			if p.Status == StatusDeleted {
				s.RecurringBilling, s.DisableAt, s.DeleteAt = false, time.Time{}, time.Time{}
			}
			t.recountPool(s.SkuID)
		}
	case SubscriptionRecurringBillingSet:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.RecurringBilling = p.Enabled
		}
	case SubscriptionCancelled:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.Status, s.RecurringBilling, s.DisableAt, s.DeleteAt = StatusDisabled, false, time.Time{}, p.DeleteAt
			t.recountPool(s.SkuID)
		}
	case SubscriptionRenewed:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.TermStart, s.TermEnd, s.CancellationWindowEnd = p.TermStart, p.TermEnd, p.CancellationWindowEnd
			if p.Converted && s.Kind == KindTrial {
				s.Kind = KindPaid
			}
			if p.Converted || p.Reactivated {
				s.TermAnchor = p.TermStart
			}
			if p.Reactivated {
				s.Status, s.DisableAt, s.DeleteAt = StatusEnabled, time.Time{}, time.Time{}
				t.recountPool(s.SkuID)
			}
		}
	case SubscriptionExpired:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.Status, s.DisableAt = StatusExpired, p.DisableAt
			t.recountPool(s.SkuID)
		}
	case SubscriptionDisabled:
		if s := t.Subscriptions[p.SubscriptionID]; s != nil {
			s.Status, s.DisableAt, s.DeleteAt = StatusDisabled, time.Time{}, p.DeleteAt
			t.recountPool(s.SkuID)
		}
	case LicenseAssigned:
		t.changeLicense(p.UserID, p.SkuID, func(l *UserLicense) {
			l.Sources[p.Source] = &LicenseSource{DisabledPlans: append([]string(nil), p.DisabledPlans...)}
		})
		t.markErrored(p.SkuID, p.UserID, p.Source, false)
	case LicenseUnassigned:
		t.changeLicense(p.UserID, p.SkuID, func(l *UserLicense) { delete(l.Sources, p.Source) })
		t.markErrored(p.SkuID, p.UserID, p.Source, false)
	case LicensePlansChanged:
		t.changeLicense(p.UserID, p.SkuID, func(l *UserLicense) {
			if s := l.Sources[p.Source]; s != nil {
				s.DisabledPlans = append([]string(nil), p.DisabledPlans...)
			}
		})
	case GroupLicenseAssigned:
		if g := t.Groups[p.GroupID]; g != nil {
			g.Licenses[p.SkuID] = &GroupLicense{SkuID: p.SkuID, DisabledPlans: append([]string(nil), p.DisabledPlans...)}
		}
	case GroupLicenseUnassigned:
		if g := t.Groups[p.GroupID]; g != nil {
			delete(g.Licenses, p.SkuID)
		}
	case GroupLicenseErrored:
		src := GroupSource(p.GroupID)
		t.changeLicense(p.UserID, p.SkuID, func(l *UserLicense) {
			var disabled []string
			if g := t.Groups[p.GroupID]; g != nil && g.Licenses[p.SkuID] != nil {
				disabled = append(disabled, g.Licenses[p.SkuID].DisabledPlans...)
			}
			l.Sources[src] = &LicenseSource{DisabledPlans: disabled, Error: p.Error, ErrorDetail: p.Detail}
		})
		t.markErrored(p.SkuID, p.UserID, src, true)
	case DataHeld:
		if u := t.Users[p.UserID]; u != nil {
			if u.Holds == nil {
				u.Holds = map[string]*Hold{}
			}
			u.Holds[p.Workload] = &Hold{Workload: p.Workload, HeldSince: p.HeldSince, PurgeAfter: p.PurgeAfter, Reason: p.Reason}
		}
	case DataHoldReleased:
		if u := t.Users[p.UserID]; u != nil {
			delete(u.Holds, p.Workload)
		}
	case HeldDataPurged:
		if u := t.Users[p.UserID]; u != nil {
			delete(u.Holds, p.Workload)
		}
	case RetentionHoldSet:
		if u := t.Users[p.UserID]; u != nil {
			u.RetentionHold = p.Enabled
		}
	case AppInstalled:
		if t.Installs == nil {
			t.Installs = map[string]int{}
		}
		t.Installs[p.SkuID]++
	}
	return t
}

// rememberCommand records the commands a client may retry: those carrying a
// request hash (the API sets one with an Idempotency-Key). Commands without
// one have ids nobody will send again, so remembering them would only grow
// the state.
func (t *Tenant) rememberCommand(env Envelope) {
	if env.CommandID == "" || env.RequestHash == "" {
		return
	}
	if r, ok := t.Commands[env.CommandID]; ok {
		r.LastVersion = env.Version
		t.Commands[env.CommandID] = r
		return
	}
	t.Commands[env.CommandID] = CommandRecord{RequestHash: env.RequestHash, FirstVersion: env.Version, LastVersion: env.Version}
	t.CommandLog = append(t.CommandLog, env.CommandID)
	// Forget the oldest half once twice the history is kept: amortised O(1)
	// per event, and the same for a fold from scratch or from a snapshot.
	if len(t.CommandLog) >= 2*CommandHistory {
		drop := len(t.CommandLog) - CommandHistory
		for _, id := range t.CommandLog[:drop] {
			delete(t.Commands, id)
		}
		t.CommandLog = append([]string(nil), t.CommandLog[drop:]...)
	}
}

// deleteUser frees a user's licenses at once (R9) and keeps what a restore
// gives back: direct and self-service licenses, and group memberships.
func (t *Tenant) deleteUser(userID string, e Event) {
	u := t.Users[userID]
	if u == nil || u.Deleted {
		return
	}
	stash := &UserStash{Licenses: map[string][]string{}}
	for _, sku := range slices.Sorted(maps.Keys(u.Licenses)) {
		if s := u.Licenses[sku].Sources[SourceDirect]; s != nil {
			stash.Licenses[sku] = append([]string(nil), s.DisabledPlans...)
		}
		t.changeLicense(userID, sku, func(l *UserLicense) {
			for src := range l.Sources {
				t.markErrored(sku, userID, src, false)
			}
			clear(l.Sources)
		})
	}
	for _, g := range slices.Sorted(maps.Keys(u.Groups)) {
		stash.Groups = append(stash.Groups, g)
		if grp := t.Groups[g]; grp != nil {
			delete(grp.Members, userID)
		}
	}
	u.Groups = nil
	u.Deleted, u.DeletedAt, u.Stash = true, e.OccurredAt, stash
}

// deleteGroup removes a group, its members' membership, and its place in
// the stash of deleted members (a restore must not put them back in a
// later group of the same id).
func (t *Tenant) deleteGroup(id string) {
	g := t.Groups[id]
	if g == nil {
		return
	}
	for uid := range g.Members {
		if u := t.Users[uid]; u != nil {
			delete(u.Groups, id)
		}
	}
	for _, u := range t.Users {
		if u.Stash != nil && slices.Contains(u.Stash.Groups, id) {
			u.Stash.Groups = slices.DeleteFunc(slices.Clone(u.Stash.Groups), func(g string) bool { return g == id })
		}
	}
	delete(t.Groups, id)
}

// recountPool recomputes a product's totals from its subscriptions (R5).
func (t *Tenant) recountPool(skuID string) {
	p := t.Pools[skuID]
	if p == nil {
		p = &Pool{SkuID: skuID}
		t.Pools[skuID] = p
	}
	p.Total, p.SelfServiceTotal, p.Subscriptions, p.AdminSubscriptions = 0, 0, 0, 0
	for _, s := range t.Subscriptions {
		if s.SkuID != skuID || s.Status == StatusDeleted {
			continue
		}
		p.Subscriptions++
		if !s.selfServicePool() {
			p.AdminSubscriptions++
		}
		if !s.counts() {
			continue
		}
		if s.selfServicePool() {
			p.SelfServiceTotal += s.Quantity
		} else {
			p.Total += s.Quantity
		}
	}
}

// changeLicense applies fn to a user's license of a product and keeps the
// product's assigned counts right: a user counts once per product whatever
// the number of sources (R11).
func (t *Tenant) changeLicense(userID, skuID string, fn func(*UserLicense)) {
	u := t.Users[userID]
	if u == nil {
		return
	}
	if u.Licenses == nil {
		u.Licenses = map[string]*UserLicense{}
	}
	l := u.Licenses[skuID]
	if l == nil {
		l = &UserLicense{SkuID: skuID, Sources: map[string]*LicenseSource{}}
		u.Licenses[skuID] = l
	}
	before := l.pool()
	fn(l)
	after := l.pool()
	if len(l.Sources) == 0 {
		delete(u.Licenses, skuID)
	}
	if before == after {
		return
	}
	p := t.Pools[skuID]
	if p == nil {
		p = &Pool{SkuID: skuID}
		t.Pools[skuID] = p
	}
	adjust := func(pool string, d int) {
		switch pool {
		case "admin":
			p.Assigned += d
		case "selfService":
			p.SelfServiceAssigned += d
		}
	}
	adjust(before, -1)
	adjust(after, +1)
}

func (t *Tenant) markErrored(skuID, userID, source string, on bool) {
	if _, ok := GroupOfSource(source); !ok {
		return
	}
	key := userID + "\x00" + source
	if on {
		if t.Errored == nil {
			t.Errored = map[string]map[string]bool{}
		}
		if t.Errored[skuID] == nil {
			t.Errored[skuID] = map[string]bool{}
		}
		t.Errored[skuID][key] = true
		return
	}
	if m := t.Errored[skuID]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(t.Errored, skuID)
		}
	}
}
