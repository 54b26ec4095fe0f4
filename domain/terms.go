package domain

import "time"

// Subscription terms (R16, R17). The numbers are the admin center's, for
// new-commerce subscriptions bought directly from Microsoft; docs/RULES.md
// gives the source of each.
//
// A purchase's term follows from the time it was bought, and the lengths
// below are constants, not Policy: Evolve derives the first term of a
// SubscriptionPurchased that names none (every purchase made before terms
// existed, and every purchase today that takes the defaults), so changing
// one would change the history of every tenant. What a later decision
// derives (a renewal, an expiry) is written into its event instead.
const (
	// TermMonthly and TermAnnual are the lengths of a paid term (ISO 8601
	// durations, as the commerce APIs write them).
	TermMonthly = "P1M"
	TermAnnual  = "P1Y"
	// DefaultTerm is the term of a purchase that names none.
	DefaultTerm = TermAnnual
	// TrialLength is how long a trial is free: "your one month free trial".
	TrialLength = 30 * 24 * time.Hour
	// CancellationWindow is how long after a purchase or a renewal a
	// subscription can be cancelled with a refund (R16): 7 days (168 h) for
	// new-commerce subscriptions.
	CancellationWindow = 7 * 24 * time.Hour
	// maxLifecycleSteps bounds the steps one decision takes for one
	// subscription (renewals of a monthly term missed for ten years); the
	// rest waits for the scheduler's next tick.
	maxLifecycleSteps = 120
)

// termMonths returns the length of a term in months (an unknown term, which
// Decide never lets in, counts as a year).
func termMonths(term string) int {
	if term == TermMonthly {
		return 1
	}
	return 12
}

// validTerm reports whether term is a length a purchase may name.
func validTerm(term string) bool { return term == TermMonthly || term == TermAnnual }

// addMonths returns anchor plus n calendar months at the same clock time, the
// day clamped to the end of a shorter month (a term bought on 31 January
// ends on 28 or 29 February; the next on 31 March).
func addMonths(anchor time.Time, n int) time.Time {
	y, m, d := anchor.Date()
	first := time.Date(y, m+time.Month(n), 1, anchor.Hour(), anchor.Minute(), anchor.Second(), anchor.Nanosecond(), anchor.Location())
	if last := first.AddDate(0, 1, -1).Day(); d > last {
		d = last
	}
	return first.AddDate(0, 0, d-1)
}

// monthsBetween counts the calendar months from a to b (b's day ignored:
// b is a term end addMonths made from a).
func monthsBetween(a, b time.Time) int {
	return (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
}

// startTerm sets the first term of a subscription bought at at: a trial
// is free for TrialLength with recurring billing off unless the buyer
// turned it on; a paid purchase runs for its term with recurring billing on
// unless the buyer turned it off, and can be cancelled within the
// cancellation window.
func (s *Subscription) startTerm(p SubscriptionPurchased, at time.Time) {
	s.Term = p.Term
	if s.Term == "" {
		s.Term = DefaultTerm
	}
	s.TermStart, s.TermAnchor = at, at
	if p.Kind == KindTrial {
		s.TermEnd = at.Add(TrialLength)
		s.TrialEnd = s.TermEnd
		s.RecurringBilling = p.RecurringBilling != nil && *p.RecurringBilling
		return
	}
	s.TermEnd = addMonths(at, termMonths(s.Term))
	s.CancellationWindowEnd = at.Add(CancellationWindow)
	s.RecurringBilling = p.RecurringBilling == nil || *p.RecurringBilling
}

// nextTermEnd returns the end of the term that follows the current one.
func (s *Subscription) nextTermEnd() time.Time {
	n := monthsBetween(s.TermAnchor, s.TermEnd) + termMonths(s.Term)
	return addMonths(s.TermAnchor, n)
}

// NextLifecycle returns when the subscription next moves along its
// lifecycle (R17) without anyone asking: at the end of its term (renewed
// or Expired), when an Expired one becomes Disabled, when a Disabled one is
// deleted. ok is false for a deleted subscription. The scheduler's due list
// is this time per subscription.
func (s *Subscription) NextLifecycle() (at time.Time, ok bool) {
	switch s.Status {
	case StatusDeleted:
		return time.Time{}, false
	case StatusDisabled:
		return s.DeleteAt, !s.DeleteAt.IsZero()
	case StatusExpired:
		return s.DisableAt, !s.DisableAt.IsZero()
	}
	return s.TermEnd, !s.TermEnd.IsZero()
}
