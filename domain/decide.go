package domain

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Policy holds the tunable numbers of the rules.
type Policy struct {
	// BulkLimit is the most users one bulk request may name (R4).
	BulkLimit int
	// HoldPeriod is how long held data is kept before purge (R10).
	HoldPeriod time.Duration
	// RestoreWindow is how long a deleted user can be restored (R9).
	RestoreWindow time.Duration
	// MaxQuantity bounds the licenses of one subscription.
	MaxQuantity int
	// ExpiredPeriod is how long a subscription whose term ended stays
	// Expired (licenses still work) before it is Disabled (R17).
	ExpiredPeriod time.Duration
	// DisabledPeriod is how long a Disabled subscription (lapsed or
	// cancelled) is kept before it is deleted (R16, R17).
	DisabledPeriod time.Duration
}

// DefaultPolicy is the admin center's: 20 users, 30 days, 30 days; a
// subscription Expired for 30 days, then Disabled for 90.
func DefaultPolicy() Policy {
	return Policy{BulkLimit: 20, HoldPeriod: 30 * 24 * time.Hour, RestoreWindow: 30 * 24 * time.Hour, MaxQuantity: 1_000_000,
		ExpiredPeriod: 30 * 24 * time.Hour, DisabledPeriod: 90 * 24 * time.Hour}
}

// Decider turns commands into events: Decide(state, command) → events.
// It is pure: no IO, no clock (the command carries Now), no logging.
type Decider struct {
	Catalog *Catalog
	Policy  Policy
}

// NewDecider returns a decider over catalog c with policy p; zero fields of p
// take their DefaultPolicy values.
func NewDecider(c *Catalog, p Policy) *Decider {
	def := DefaultPolicy()
	if p.BulkLimit <= 0 {
		p.BulkLimit = def.BulkLimit
	}
	if p.HoldPeriod <= 0 {
		p.HoldPeriod = def.HoldPeriod
	}
	if p.RestoreWindow <= 0 {
		p.RestoreWindow = def.RestoreWindow
	}
	if p.MaxQuantity <= 0 {
		p.MaxQuantity = def.MaxQuantity
	}
	if p.ExpiredPeriod <= 0 {
		p.ExpiredPeriod = def.ExpiredPeriod
	}
	if p.DisabledPeriod <= 0 {
		p.DisabledPeriod = def.DisabledPeriod
	}
	return &Decider{Catalog: c, Policy: p}
}

// Decide checks cmd against the tenant state t and returns the events it
// causes, or an *Error saying which rule refused it. It never changes t.
//
// A command whose id the tenant has already decided returns no events (the
// caller answers with the first outcome, see Tenant.CommandRecord), unless
// its request hash differs: then ErrIdempotencyKeyReused.
func (d *Decider) Decide(t *Tenant, cmd Command) ([]Event, error) {
	m := cmd.meta()
	if m.CommandID == "" {
		return nil, invalid("commandId", "a command needs an id")
	}
	if m.Now.IsZero() {
		return nil, invalid("now", "a command needs the time of decision")
	}
	if t == nil {
		t = NewTenant()
	}
	if _, creating := cmd.(*CreateTenant); !creating && !t.Exists() {
		return nil, notFound("tenant %q does not exist", m.TenantID)
	}
	if rec, ok := t.Commands[m.CommandID]; ok {
		if rec.RequestHash != m.RequestHash {
			return nil, Errorf(CodeIdempotencyKeyReused, "", "command id %q was already used for another request; use a new Idempotency-Key", m.CommandID)
		}
		return nil, nil
	}
	dec := newDecision(d, t, m)
	var err error
	switch c := cmd.(type) {
	case *CreateTenant:
		err = dec.createTenant(c)
	case *AddUser:
		err = dec.addUser(c)
	case *UpdateUser:
		err = dec.updateUser(c)
	case *DeleteUser:
		err = dec.deleteUser(c)
	case *RestoreUser:
		err = dec.restoreUser(c)
	case *SetAdminRoles:
		err = dec.setAdminRoles(c)
	case *SetRetentionHold:
		err = dec.setRetentionHold(c)
	case *CreateGroup:
		err = dec.createGroup(c)
	case *RenameGroup:
		err = dec.renameGroup(c)
	case *DeleteGroup:
		err = dec.deleteGroup(c)
	case *AddGroupMember:
		err = dec.addGroupMember(c)
	case *RemoveGroupMember:
		err = dec.removeGroupMember(c)
	case *AssignGroupLicenses:
		err = dec.assignGroupLicenses(c)
	case *PurchaseSubscription:
		err = dec.purchase(c)
	case *ChangeSubscriptionQuantity:
		err = dec.changeQuantity(c)
	case *ChangeSubscriptionStatus:
		err = dec.changeStatus(c)
	case *TakeOverSubscription:
		err = dec.takeOver(c)
	case *AssignLicenses:
		err = dec.assignLicenses(c)
	case *UnassignLicenses:
		err = dec.unassignLicenses(c)
	case *UpdateUserLicenses:
		err = dec.updateUserLicenses(c)
	case *ManageLicenses:
		err = dec.manageLicenses(c)
	case *ChangeLicensePlans:
		err = dec.changeLicensePlans(c)
	case *InstallApp:
		err = dec.installApp(c)
	case *PurgeHeldData:
		err = dec.purge(c)
	case *CancelSubscription:
		err = dec.cancel(c)
	case *SetRecurringBilling:
		err = dec.setRecurringBilling(c)
	case *AdvanceSubscriptions:
		err = dec.advance(c)
	default:
		err = invalid("command", "unknown command %T", cmd)
	}
	if err != nil {
		return nil, err
	}
	if len(dec.out) == 0 && m.RequestHash != "" {
		// Remember a retryable command that changed nothing: its retry must
		// get this answer, not a new decision.
		dec.emit(NothingChanged{Command: cmd.CommandName()})
	}
	return dec.stamp(), nil
}

// stamp wraps the decided payloads in envelopes.
func (dec *decision) stamp() []Event {
	if len(dec.out) == 0 {
		return nil
	}
	m, t := dec.m, dec.t
	at := m.Now.UTC()
	if at.Before(t.LastOccurredAt) {
		at = t.LastOccurredAt // never back in time within a stream
	}
	actor := m.Actor
	actor.Roles = nil
	if u := t.Users[actor.UserID]; u != nil && !actor.Operator && actor.System == "" {
		actor.Roles = slices.Clip(u.Roles) // shared: see User.Roles
	}
	tenantID := t.ID
	if tenantID == "" {
		tenantID = m.TenantID
	}
	var stack [256]byte // room for the usual decision name: no allocation
	name := appendDecisionName(stack[:0], m)
	events := make([]Event, len(dec.out))
	for i, p := range dec.out {
		version := t.Version + uint64(i) + 1
		events[i] = Event{
			Envelope: Envelope{
				// The id derives from the command, its metadata and the
				// event's place in the stream: an append retried with the
				// same decision has the same ids (the store recognises it
				// as done); any other decision of the command id, here or
				// elsewhere, gets new ones (see decisionEventID).
				EventID:       eventID(tenantID, m.CommandID, version, name),
				Type:          p.EventType(),
				TenantID:      tenantID,
				Version:       version,
				OccurredAt:    at,
				Actor:         actor,
				CommandID:     m.CommandID,
				CorrelationID: m.CorrelationID,
				RequestHash:   m.RequestHash,
				Schema:        CurrentSchema,
			},
			Payload: p,
		}
	}
	return events
}

// decision is one decision in progress, a draft rather than a transaction:
// drafts of the users it touches, the change of each product's counts, and
// the payloads decided so far. The tenant state itself is never written.
type decision struct {
	d   *Decider
	t   *Tenant
	m   *CommandMeta
	now time.Time

	// drafts are the touched users, in first-touch order; byID indexes
	// them once there are more than a few (most decisions touch one user,
	// and a search of a short slice beats a map made per decision).
	drafts []*draftUser
	byID   map[string]*draftUser

	// Inline room for the common decision, so that it allocates neither:
	// its first user's draft and the slots of its first drafts and payloads.
	first    draftUser
	draftBuf [2]*draftUser
	outBuf   [4]Payload

	// Changes of the products' counts, by skuId: admin-pool assigned and
	// total, self-service assigned and total.
	assigned, selfAssigned, total, selfTotal counts

	out []Payload
}

type draftUser struct {
	u       *User
	lic     map[string]*UserLicense
	deleted bool
	// workloads in use when the decision started (R10), then as the last
	// holds run left them
	hadMailbox, hadOneDrive bool
	// exchangeHeld is whether the user's Exchange data is held, once a
	// holds run decided it (exchangeDecided); before, the state says.
	exchangeDecided, exchangeHeld bool
}

func newDecision(d *Decider, t *Tenant, m *CommandMeta) *decision {
	dec := &decision{d: d, t: t, m: m, now: m.Now.UTC()}
	dec.drafts, dec.out = dec.draftBuf[:0], dec.outBuf[:0]
	return dec
}

// draftIndexAt is how many drafts a decision searches one by one before it
// indexes them by user id.
const draftIndexAt = 8

// drafted returns the draft of user id made by this decision, or nil.
func (dec *decision) drafted(id string) *draftUser {
	if dec.byID != nil {
		return dec.byID[id]
	}
	for _, du := range dec.drafts {
		if du.u.ID == id {
			return du
		}
	}
	return nil
}

// counts is a small map from skuId to a count change. Most decisions touch
// one or two products, so a slice beats a map.
type counts []skuCount

type skuCount struct {
	sku string
	n   int
}

func (c counts) get(sku string) int {
	for _, x := range c {
		if x.sku == sku {
			return x.n
		}
	}
	return 0
}

func (c *counts) add(sku string, d int) {
	for i := range *c {
		if (*c)[i].sku == sku {
			(*c)[i].n += d
			return
		}
	}
	*c = append(*c, skuCount{sku, d})
}

func (c *counts) set(sku string, n int) { c.add(sku, n-c.get(sku)) }

// skus appends the products with a change to buf, sorted.
func (c counts) skus(buf []string) []string {
	for _, x := range c {
		buf = append(buf, x.sku)
	}
	sort.Strings(buf)
	return buf
}

func (dec *decision) emit(p ...Payload) { dec.out = append(dec.out, p...) }

// draft returns the working copy of a user's licenses.
func (dec *decision) draft(u *User) *draftUser {
	if du := dec.drafted(u.ID); du != nil {
		return du
	}
	du := &dec.first
	if len(dec.drafts) > 0 {
		du = new(draftUser)
	}
	*du = draftUser{u: u, lic: make(map[string]*UserLicense, len(u.Licenses)), deleted: u.Deleted}
	for sku, l := range u.Licenses {
		du.lic[sku] = l.clone()
	}
	_, du.hadMailbox, du.hadOneDrive = dec.planState(du, nil, false)
	dec.drafts = append(dec.drafts, du)
	switch {
	case dec.byID != nil:
		dec.byID[u.ID] = du
	case len(dec.drafts) > draftIndexAt:
		dec.byID = make(map[string]*draftUser, 2*len(dec.drafts))
		for _, d := range dec.drafts {
			dec.byID[d.u.ID] = d
		}
	}
	return du
}

// setLicense changes a draft license and keeps the count deltas right.
func (dec *decision) setLicense(du *draftUser, sku string, fn func(*UserLicense)) {
	l := du.lic[sku]
	if l == nil {
		l = &UserLicense{SkuID: sku, Sources: map[string]*LicenseSource{}}
		du.lic[sku] = l
	}
	before := l.pool()
	fn(l)
	after := l.pool()
	if len(l.Sources) == 0 {
		delete(du.lic, sku)
	}
	dec.countMove(sku, before, -1)
	dec.countMove(sku, after, +1)
}

func (dec *decision) countMove(sku, pool string, d int) {
	switch pool {
	case "admin":
		dec.assigned.add(sku, d)
	case "selfService":
		dec.selfAssigned.add(sku, d)
	}
}

func (dec *decision) assign(du *draftUser, sku, source string, disabled []string) {
	dec.setLicense(du, sku, func(l *UserLicense) {
		l.Sources[source] = &LicenseSource{DisabledPlans: disabled}
	})
	dec.emit(LicenseAssigned{UserID: du.u.ID, SkuID: sku, Source: source, DisabledPlans: disabled})
}

func (dec *decision) unassign(du *draftUser, sku, source string) {
	dec.setLicense(du, sku, func(l *UserLicense) { delete(l.Sources, source) })
	dec.emit(LicenseUnassigned{UserID: du.u.ID, SkuID: sku, Source: source})
}

func (dec *decision) changePlans(du *draftUser, sku, source string, disabled []string) {
	dec.setLicense(du, sku, func(l *UserLicense) {
		if s := l.Sources[source]; s != nil {
			s.DisabledPlans = disabled
		}
	})
	dec.emit(LicensePlansChanged{UserID: du.u.ID, SkuID: sku, Source: source, DisabledPlans: disabled})
}

// over returns how many licenses of sku the decision needs beyond the admin
// pool's total (0 when it fits).
func (dec *decision) over(sku string) int {
	p := dec.t.Pool(sku)
	added := dec.assigned.get(sku)
	need := p.Assigned + added - (p.Total + dec.total.get(sku))
	if need < 0 || added <= 0 {
		return 0
	}
	if need > added {
		need = added
	}
	return need
}

// checkCounts refuses a decision that assigns more licenses than a product
// has available (R3).
func (dec *decision) checkCounts() error {
	var buf [8]string
	for _, sku := range dec.assigned.skus(buf[:0]) {
		if missing := dec.over(sku); missing > 0 {
			p := dec.t.Pool(sku)
			avail := p.Total + dec.total.get(sku) - p.Assigned
			if avail < 0 {
				avail = 0
			}
			e := ruleErr(CodeInsufficientLicenses, "R3", "not enough licenses of %s: %d available, %d needed; buy %d more licenses or unassign some",
				dec.d.productName(dec.t, sku), avail, avail+missing, missing)
			e.Missing = missing
			return e
		}
	}
	for _, sku := range dec.selfAssigned.skus(buf[:0]) {
		p := dec.t.Pool(sku)
		if d := dec.selfAssigned.get(sku); d > 0 && p.SelfServiceAssigned+d > p.SelfServiceTotal+dec.selfTotal.get(sku) {
			missing := p.SelfServiceAssigned + d - p.SelfServiceTotal - dec.selfTotal.get(sku)
			e := ruleErr(CodeInsufficientLicenses, "R3", "not enough self-service licenses of %s", dec.d.productName(dec.t, sku))
			e.Missing = missing
			return e
		}
	}
	return nil
}

// planState walks the plans a draft user has enabled (the union over
// licenses and their active sources of the product's plans minus the
// source's disabled plans) and returns whether a mailbox (Exchange) or
// OneDrive (SharePoint) plan is among them (R10). With want, it also
// appends to related the names of those that take part in a relation of
// the catalog (R6, R7), sorted and without repeats, and returns it; a
// caller that needs only the workloads collects nothing.
func (dec *decision) planState(du *draftUser, related []string, want bool) (_ []string, mailbox, oneDrive bool) {
	if du.deleted {
		return related, false, false
	}
	start := len(related)
	for sku, l := range du.lic {
		prod := dec.d.product(dec.t, sku)
		if prod == nil {
			continue
		}
		for _, s := range l.Sources {
			if !s.Active() {
				continue
			}
			for i := range prod.ServicePlans {
				sp := &prod.ServicePlans[i]
				if contains(s.DisabledPlans, sp.ID) {
					continue
				}
				switch sp.Workload {
				case WorkloadExchange:
					mailbox = true
				case WorkloadSharePoint, WorkloadOneDrive:
					oneDrive = true
				}
				if want && dec.d.Catalog.related[sp.Name] {
					related = append(related, sp.Name)
				}
			}
		}
	}
	if want {
		names := related[start:]
		slices.Sort(names)
		related = related[:start+len(slices.Compact(names))]
	}
	return related, mailbox, oneDrive
}

func (dec *decision) hasMailbox(du *draftUser) bool {
	_, mailbox, _ := dec.planState(du, nil, false)
	return mailbox
}

// checkPlans refuses a user whose enabled plans conflict (R6) or miss a
// dependency (R7).
func (dec *decision) checkPlans(du *draftUser) error {
	var buf [32]string
	names, _, _ := dec.planState(du, buf[:0], true)
	if len(names) == 0 {
		return nil
	}
	if pair, reason := dec.d.Catalog.exclusiveConflicts(names); pair != nil {
		e := ruleErr(CodeMutuallyExclusivePlans, "R6", "user %s cannot have both %s and %s enabled: %s; review the services included with each license and try again",
			du.u.ID, pair[0], pair[1], reason)
		e.Plans = pair
		return e
	}
	if dep, missing := dec.d.Catalog.missingDependency(names); missing {
		e := ruleErr(CodeDependencyViolation, "R7", "user %s: %s needs one of %s enabled (%s)", du.u.ID, dep.Plan, strings.Join(dep.Requires, ", "), dep.Reason)
		e.Plans = append([]string{dep.Plan}, dep.Requires...)
		return e
	}
	return nil
}

// holds decides the data holds of every touched user (R10): a user who lost
// their mailbox gets their Exchange data held; one who got it back has the
// hold released. It may run several times in one decision: each run
// compares with what the previous one left.
func (dec *decision) holds() {
	for _, du := range dec.drafts {
		if du.deleted {
			continue
		}
		id := du.u.ID
		now := dec.hasMailbox(du)
		held := du.u.Holds[WorkloadExchange] != nil
		if du.exchangeDecided {
			held = du.exchangeHeld
		}
		switch {
		case du.hadMailbox && !now && !held:
			dec.emit(dec.held(id, WorkloadExchange, "licenseRemoved"))
			held = true
		case !du.hadMailbox && now && held:
			dec.emit(DataHoldReleased{UserID: id, Workload: WorkloadExchange, Reason: "licenseAssigned"})
			held = false
		}
		du.hadMailbox, du.exchangeDecided, du.exchangeHeld = now, true, held
	}
}

func (dec *decision) held(userID, workload, reason string) DataHeld {
	return DataHeld{UserID: userID, Workload: workload, HeldSince: dec.now,
		PurgeAfter: dec.now.Add(dec.d.Policy.HoldPeriod), Reason: reason}
}

// tryGroup gives a member the license of a group, or records why it cannot
// (R11): the group's intent is kept in an error state instead of failing.
func (dec *decision) tryGroup(du *draftUser, groupID, sku string, disabled []string) {
	src := GroupSource(groupID)
	kind, detail := dec.attemptGroup(du, groupID, sku, disabled)
	if kind == "" {
		return
	}
	dec.setLicense(du, sku, func(l *UserLicense) {
		l.Sources[src] = &LicenseSource{DisabledPlans: disabled, Error: kind, ErrorDetail: detail}
	})
	dec.emit(GroupLicenseErrored{GroupID: groupID, UserID: du.u.ID, SkuID: sku, Error: kind, Detail: detail})
}

// attemptGroup assigns the group license if the member can have it and
// returns "" or, having undone the attempt, the error state.
func (dec *decision) attemptGroup(du *draftUser, groupID, sku string, disabled []string) (kind, detail string) {
	if du.u.UsageLocation == "" {
		return GroupErrUsageLocation, "the user has no usage location"
	}
	var saved *UserLicense
	if l := du.lic[sku]; l != nil {
		saved = l.clone()
	}
	savedAssigned, savedSelf, n := dec.assigned.get(sku), dec.selfAssigned.get(sku), len(dec.out)
	dec.assign(du, sku, GroupSource(groupID), disabled)
	err := dec.checkPlans(du)
	if err == nil && dec.over(sku) > 0 {
		kind, detail = GroupErrCountViolation, fmt.Sprintf("no license of %s is available", dec.d.productName(dec.t, sku))
	}
	var de *Error
	if errors.As(err, &de) {
		detail = de.Detail
		kind = GroupErrMutuallyExclusive
		if de.Code == CodeDependencyViolation {
			kind = GroupErrDependency
		}
	}
	if kind == "" {
		return "", ""
	}
	if saved != nil {
		du.lic[sku] = saved
	} else {
		delete(du.lic, sku)
	}
	dec.assigned.set(sku, savedAssigned)
	dec.selfAssigned.set(sku, savedSelf)
	dec.out = dec.out[:n]
	return kind, detail
}

// retryErrored gives licenses to group members in an error state when the
// decision freed what they lacked (R11), and records the new reason of those
// still refused for another one. Only members of user (or all when user is
// "") are retried.
func (dec *decision) retryErrored(user string) {
	if len(dec.t.Errored) == 0 {
		return // nothing to retry (the common case): sort nothing
	}
	for _, sku := range slices.Sorted(maps.Keys(dec.t.Errored)) {
		for _, key := range slices.Sorted(maps.Keys(dec.t.Errored[sku])) {
			uid, src, _ := strings.Cut(key, "\x00")
			if user != "" && uid != user {
				continue
			}
			gid, _ := GroupOfSource(src)
			u, g := dec.t.Users[uid], dec.t.Groups[gid]
			if u == nil || g == nil || g.Licenses[sku] == nil || !g.Members[uid] {
				continue
			}
			du := dec.draft(u)
			l := du.lic[sku]
			if du.deleted || l == nil || l.Sources[src] == nil || l.Sources[src].Active() {
				continue // changed by this decision
			}
			was := *l.Sources[src]
			kind, detail := dec.attemptGroup(du, gid, sku, g.Licenses[sku].DisabledPlans)
			if kind != "" && (kind != was.Error || detail != was.ErrorDetail) {
				// Still refused, for another reason: the error state shows
				// the current one (a usage location set while the pool is
				// full is now a CountViolation).
				dec.setLicense(du, sku, func(l *UserLicense) {
					l.Sources[src] = &LicenseSource{DisabledPlans: was.DisabledPlans, Error: kind, ErrorDetail: detail}
				})
				dec.emit(GroupLicenseErrored{GroupID: gid, UserID: uid, SkuID: sku, Error: kind, Detail: detail})
			}
		}
	}
}

// ---- permissions

var licenseAdmins = []Role{RoleGlobalAdmin, RoleLicenseAdmin, RoleUserAdmin}

// authorize checks that the actor may run a command needing one of roles.
func (dec *decision) authorize(rule string, what Phrase, roles ...Role) error {
	a := dec.m.Actor
	if a.Operator {
		return nil
	}
	u := dec.t.Users[a.UserID]
	if a.System != "" || u == nil || u.Deleted {
		return ruleErr(CodeNotAllowedForRole, rule, "%s is not an active user of this tenant and cannot %s", a, what)
	}
	if !u.HasRole(roles...) {
		return ruleErr(CodeNotAllowedForRole, rule, "to %s you must be one of %s; ask a Global admin for the role", what, RolePhrases(roles))
	}
	return nil
}

// authorizeForUser adds R2 to a license change of user u.
func (dec *decision) authorizeForUser(u *User) error {
	if u.UserType != UserTypeGuest || dec.m.Actor.Operator {
		return nil
	}
	if a := dec.t.Users[dec.m.Actor.UserID]; a == nil || !a.HasRole(RoleGlobalAdmin) {
		return ruleErr(CodeGuestRequiresGlobalAdmin, "R2", "%s is a guest user: only a Global admin can change a guest's licenses", u.ID)
	}
	return nil
}

// ---- lookups

// product returns a product the tenant can refer to by exact skuId.
func (d *Decider) product(t *Tenant, skuID string) *Product {
	if p := t.Apps[skuID]; p != nil {
		return p
	}
	if p, ok := d.Catalog.Lookup(skuID); ok {
		return p
	}
	return nil
}

// ResolveProduct finds a product by skuId or skuPartNumber, among the
// catalog and the tenant's ISV apps.
func (d *Decider) ResolveProduct(t *Tenant, skuOrPart string) (*Product, bool) {
	if p, ok := d.Catalog.Lookup(skuOrPart); ok {
		return p, true
	}
	for _, p := range t.Apps {
		if strings.EqualFold(p.SkuID, skuOrPart) || strings.EqualFold(p.SkuPartNumber, skuOrPart) {
			return p, true
		}
	}
	return nil, false
}

func (d *Decider) productName(t *Tenant, sku string) string {
	if p := d.product(t, sku); p != nil {
		return p.DisplayName
	}
	return sku
}

func (dec *decision) resolve(field, skuOrPart string) (*Product, error) {
	if skuOrPart == "" {
		return nil, invalid(field, "%s is required", field)
	}
	p, ok := dec.d.ResolveProduct(dec.t, skuOrPart)
	if !ok {
		return nil, Errorf(CodeNotFound, field, "product %q is not in the catalog nor one of the tenant's apps; see GET /v1/catalog", Echo(skuOrPart))
	}
	return p, nil
}

// owned returns a product the tenant has subscriptions of, refusing
// self-service-only products (R8).
func (dec *decision) owned(field, skuOrPart string) (*Product, error) {
	p, err := dec.resolve(field, skuOrPart)
	if err != nil {
		return nil, err
	}
	pool := dec.t.Pool(p.SkuID)
	admin, self := pool.AdminSubscriptions > 0, pool.Subscriptions > pool.AdminSubscriptions
	switch {
	case admin:
		return p, nil
	case self:
		return nil, ruleErr(CodeSelfServiceSubscription, "R8",
			"%s was bought through self-service purchase: take over the subscription before assigning its licenses", p.DisplayName)
	}
	return nil, Errorf(CodeNotFound, field, "the tenant has no subscription of %s; buy one first", p.DisplayName)
}

// planIDs normalises disabled plans (ids or names) to sorted plan ids.
func planIDs(p *Product, field string, plans []string) ([]string, error) {
	if len(plans) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(plans))
	for _, x := range plans {
		sp, ok := p.Plan(x)
		if !ok {
			return nil, invalid(field, "%s has no service plan %q", p.DisplayName, Echo(x))
		}
		if !seen[sp.ID] {
			seen[sp.ID] = true
			out = append(out, sp.ID)
		}
	}
	sort.Strings(out)
	return out, nil
}

// activeUser returns a user of the tenant that is not deleted.
func (dec *decision) activeUser(field, id string) (*User, error) {
	if err := checkID(field, id); err != nil {
		return nil, err
	}
	u := dec.t.Users[id]
	if u == nil {
		return nil, Errorf(CodeNotFound, field, "user %q does not exist", id)
	}
	if u.Deleted {
		return nil, Errorf(CodeUserDeleted, field, "user %q is deleted; restore them first", id)
	}
	return u, nil
}

func (dec *decision) needUsageLocation(u *User) error {
	if u.UsageLocation == "" {
		return ruleErr(CodeUsageLocationRequired, "R14", "user %s has no usage location; set one before assigning a license", u.ID)
	}
	return nil
}

// checkBulk validates the user list of a bulk request (R4).
func (dec *decision) checkBulk(users []string) error {
	if len(users) == 0 {
		return invalid("users", "name at least one user")
	}
	if len(users) > dec.d.Policy.BulkLimit {
		e := Errorf(CodeTooManyUsers, "users", "%d users named; at most %d per request: use group-based licensing for more", len(users), dec.d.Policy.BulkLimit)
		e.Rule = "R4"
		return e
	}
	seen := make(map[string]bool, len(users))
	for _, u := range users {
		if err := checkID("users", u); err != nil {
			return err
		}
		if seen[u] {
			return invalid("users", "user %q is named twice", u)
		}
		seen[u] = true
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func checkUsageLocation(s string) error {
	if s == "" {
		return nil
	}
	if !IsCountry(s) {
		return invalid("usageLocation", "usage location %q must be an ISO 3166-1 alpha-2 country code in capitals, such as US, GB or FR", Echo(s))
	}
	return nil
}

func checkText(field, s string, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid(field, "%s is required", field)
	}
	if len(s) > 256 {
		return invalid(field, "%s is longer than 256 characters", field)
	}
	return checkPrintable(field, s)
}

// checkPrintable refuses text that is not UTF-8 or holds a control
// character: C0, DEL, C1, line and paragraph separators, or a bidirectional
// control (which can make a name read as another). Stored names are shown
// in terminals, logs and the admin center; none of them may drive those.
func checkPrintable(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "%s is not valid UTF-8", field)
	}
	for i, r := range s {
		if ControlRune(r) {
			return invalid(field, "%s holds the control character %U at byte %d: use printable text", field, r, i)
		}
	}
	return nil
}

// ControlRune reports whether r is a character no name or id may hold: a
// C0 or C1 control, DEL, a line or paragraph separator, or a bidirectional
// formatting character (marks, embeddings, overrides and isolates).
func ControlRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func checkURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid(field, "%s %q must be an http(s) URL", field, Echo(s))
	}
	return nil
}
