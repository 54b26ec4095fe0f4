package domain

import "time"

// Decisions on subscription terms: cancel within the window and recurring
// billing (R16), the lifecycle at the end of a term (R17).

const timeLayout = "2006-01-02T15:04:05Z07:00"

// ended refuses a change to a subscription whose term is over (R17).
func (dec *decision) ended(s *Subscription, what Phrase) error {
	switch s.Status {
	case StatusExpired:
		return invalid("subscriptionId", "subscription %s expired at the end of its term (%s) and is disabled at %s: turn recurring billing on to reactivate it before %s",
			s.ID, s.TermEnd.Format(timeLayout), s.DisableAt.Format(timeLayout), what)
	case StatusDisabled:
		return invalid("subscriptionId", "subscription %s is disabled and is deleted at %s: turn recurring billing on to reactivate it before %s",
			s.ID, s.DeleteAt.Format(timeLayout), what)
	}
	return invalid("subscriptionId", "subscription %s is deleted", s.ID)
}

// manageable refuses what the admins may not change of a subscription: one
// its vendor bills (R12, unless the operator acts for the vendor), one a
// user bought for themself (R8).
func (dec *decision) manageable(s *Subscription, what Phrase) error {
	if !dec.m.Actor.Operator {
		if err := dec.vendorManaged(s, what); err != nil {
			return err
		}
	}
	if s.selfServicePool() {
		return ruleErr(CodeSelfServiceSubscription, "R8", "subscription %s is a self-service purchase: take it over first", s.ID)
	}
	return nil
}

// moveTotal takes a subscription's licenses out of its pool's total in
// this decision (it stops counting), or puts them back (in).
func (dec *decision) moveTotal(s *Subscription, in bool) {
	d := s.Quantity
	if !in {
		d = -d
	}
	if s.selfServicePool() {
		dec.selfTotal.add(s.SkuID, d)
	} else {
		dec.total.add(s.SkuID, d)
	}
}

func (dec *decision) cancel(c *CancelSubscription) error {
	if err := dec.authorize("", "cancel subscriptions", billingAdmins...); err != nil {
		return err
	}
	s, err := dec.subscription(c.SubscriptionID)
	if err != nil {
		return err
	}
	switch s.Status {
	case StatusDeleted:
		return invalid("subscriptionId", "subscription %s is deleted", s.ID)
	case StatusExpired, StatusDisabled:
		at := s.DeleteAt
		if s.Status == StatusExpired {
			at = s.DisableAt.Add(dec.d.Policy.DisabledPeriod)
		}
		return invalid("subscriptionId", "subscription %s has ended (%s): there is nothing to cancel; it is deleted at %s unless recurring billing is turned back on",
			s.ID, s.Status, at.Format(timeLayout))
	}
	if err := dec.manageable(s, "cancel the subscription"); err != nil {
		return err
	}
	trial := s.Kind == KindTrial
	if !trial && !dec.now.Before(s.CancellationWindowEnd) {
		days, closed, termEnd := int(CancellationWindow/(24*time.Hour)), s.CancellationWindowEnd.Format(timeLayout), s.TermEnd.Format(timeLayout)
		if !s.RecurringBilling {
			return ruleErr(CodeCancellationWindowPassed, "R16",
				"subscription %s can be cancelled only within %d days of buying or renewing it; its cancellation window closed at %s: recurring billing is already off: the subscription ends with its term, %s",
				s.ID, days, closed, termEnd)
		}
		return ruleErr(CodeCancellationWindowPassed, "R16",
			"subscription %s can be cancelled only within %d days of buying or renewing it; its cancellation window closed at %s: turn off recurring billing to cancel the subscription at the end of its term, %s",
			s.ID, days, closed, termEnd)
	}
	// Cancelled, it skips Expired: Disabled at once. The licenses stay
	// assigned (a reactivation gives the users their access back) but no
	// longer count: no R13 check, as for a term that ends.
	dec.emit(SubscriptionCancelled{SubscriptionID: s.ID, SkuID: s.SkuID, Previous: s.Status, Refund: !trial,
		DeleteAt: dec.now.Add(dec.d.Policy.DisabledPeriod)})
	if s.counts() {
		dec.moveTotal(s, false)
	}
	return nil
}

func (dec *decision) setRecurringBilling(c *SetRecurringBilling) error {
	if err := dec.authorize("", "turn recurring billing on or off", billingAdmins...); err != nil {
		return err
	}
	s, err := dec.subscription(c.SubscriptionID)
	if err != nil {
		return err
	}
	if s.Status == StatusDeleted {
		return invalid("subscriptionId", "subscription %s is deleted", s.ID)
	}
	if err := dec.manageable(s, "change its billing"); err != nil {
		return err
	}
	reactivate := c.Enabled && (s.Status == StatusExpired || s.Status == StatusDisabled)
	if s.RecurringBilling == c.Enabled && !reactivate {
		return nil
	}
	if s.RecurringBilling != c.Enabled {
		dec.emit(SubscriptionRecurringBillingSet{SubscriptionID: s.ID, SkuID: s.SkuID, Enabled: c.Enabled})
	}
	if !reactivate {
		return nil
	}
	// Reactivated: a new paid term from now (a trial converts), Enabled.
	dec.emit(SubscriptionRenewed{SubscriptionID: s.ID, SkuID: s.SkuID, TermStart: dec.now,
		TermEnd: addMonths(dec.now, termMonths(s.Term)), CancellationWindowEnd: dec.now.Add(CancellationWindow),
		Converted: s.Kind == KindTrial, Reactivated: true, Previous: s.Status})
	if !s.counts() {
		dec.moveTotal(s, true)
		dec.retryErrored("")
		dec.holds()
	}
	return nil
}

func (dec *decision) advance(c *AdvanceSubscriptions) error {
	if dec.m.Actor.System == "" && !dec.m.Actor.Operator {
		return ruleErr(CodeNotAllowedForRole, "R17", "subscriptions are moved along their terms by the scheduler only")
	}
	if len(c.Subscriptions) == 0 {
		return invalid("subscriptions", "name the subscriptions to move along")
	}
	var first error
	seen := map[string]bool{}
	for _, id := range c.Subscriptions {
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := dec.advanceOne(id); err != nil {
			if first == nil {
				first = err
			}
			if len(c.Subscriptions) == 1 {
				return err
			}
		}
	}
	if len(dec.out) == 0 {
		return first
	}
	return nil
}

// advanceOne takes every lifecycle step of one subscription due at now. The
// dates it writes follow from the schedule (the term's end, then the
// periods), not from now: a scheduler that was down catches up to the same
// history it would have written on time.
func (dec *decision) advanceOne(id string) error {
	s, err := dec.subscription(id)
	if err != nil {
		return err
	}
	cur := *s // the subscription as this decision leaves it
	steps := 0
	for ; steps < maxLifecycleSteps; steps++ {
		at, ok := cur.NextLifecycle()
		if !ok || dec.now.Before(at) {
			break
		}
		dec.step(&cur, at)
	}
	if steps > 0 {
		return nil
	}
	if at, ok := cur.NextLifecycle(); ok {
		return ruleErr(CodeLifecycleNotDue, "R17", "subscription %s (%s) has nothing due before %s", s.ID, s.Status, at.Format(timeLayout))
	}
	return ruleErr(CodeLifecycleNotDue, "R17", "subscription %s is deleted: nothing is due", s.ID)
}

// step takes the lifecycle step of cur due at at, and changes cur as the
// event will change the subscription.
func (dec *decision) step(cur *Subscription, at time.Time) {
	pol := dec.d.Policy
	switch cur.Status {
	case StatusDisabled:
		dec.emit(SubscriptionStatusChanged{SubscriptionID: cur.ID, SkuID: cur.SkuID, Status: StatusDeleted, Previous: StatusDisabled})
		cur.Status = StatusDeleted
	case StatusExpired:
		deleteAt := at.Add(pol.DisabledPeriod)
		dec.emit(SubscriptionDisabled{SubscriptionID: cur.ID, SkuID: cur.SkuID, Previous: StatusExpired, DeleteAt: deleteAt})
		dec.moveTotal(cur, false)
		cur.Status, cur.DisableAt, cur.DeleteAt = StatusDisabled, time.Time{}, deleteAt
	default: // the end of the term
		switch {
		case cur.RecurringBilling:
			r := SubscriptionRenewed{SubscriptionID: cur.ID, SkuID: cur.SkuID, TermStart: cur.TermEnd,
				CancellationWindowEnd: cur.TermEnd.Add(CancellationWindow)}
			if cur.Kind == KindTrial {
				r.Converted = true
				r.TermEnd = addMonths(cur.TermEnd, termMonths(cur.Term))
				cur.Kind, cur.TermAnchor = KindPaid, cur.TermEnd
			} else {
				r.TermEnd = cur.nextTermEnd()
			}
			dec.emit(r)
			cur.TermStart, cur.TermEnd, cur.CancellationWindowEnd = r.TermStart, r.TermEnd, r.CancellationWindowEnd
		case cur.Status == StatusSuspended:
			// Suspended users have no access already: no Expired grace.
			deleteAt := at.Add(pol.DisabledPeriod)
			dec.emit(SubscriptionDisabled{SubscriptionID: cur.ID, SkuID: cur.SkuID, Previous: StatusSuspended, DeleteAt: deleteAt})
			cur.Status, cur.DeleteAt = StatusDisabled, deleteAt
		default:
			disableAt := at.Add(pol.ExpiredPeriod)
			dec.emit(SubscriptionExpired{SubscriptionID: cur.ID, SkuID: cur.SkuID, TermEnd: cur.TermEnd, DisableAt: disableAt})
			cur.Status, cur.DisableAt = StatusExpired, disableAt
		}
	}
}
