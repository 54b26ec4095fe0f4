package render

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/readmodel"
)

// Sink receives the writes that make the read model match the state. key is
// a tenant key suffix.
type Sink interface {
	HSet(key, field string, value []byte)
	HDel(key, field string)
	ZAdd(key string, score float64, member string)
	ZRem(key, member string)
}

// Renderer renders read model entities of one tenant from its state.
type Renderer struct {
	cat *domain.Catalog
	t   *domain.Tenant
	out Sink
	buf *JSONArena // nil: every view encoded into its own allocation
}

// NewRenderer renders from t's state, with cat's products, into out. buf
// holds the encoded views until its Reset; nil: each view in its own
// allocation.
func NewRenderer(cat *domain.Catalog, t *domain.Tenant, out Sink, buf *JSONArena) *Renderer {
	return &Renderer{cat: cat, t: t, out: out, buf: buf}
}

// JSONArena holds the encoded views of one write to Redis: a view's bytes
// are a slice of arena, valid until reset (after the write).
type JSONArena struct {
	arena, scratch []byte
}

// Reset makes the arena's space reusable; the views encoded so far must no
// longer be in use.
func (a *JSONArena) Reset() {
	if cap(a.arena) > 8<<20 { // a rebuild's huge batch: don't keep it
		a.arena = nil
	}
	a.arena = a.arena[:0]
}

// json encodes a view with the bytes encoding/json gives (faster).
func (r *Renderer) json(v any) []byte {
	if r.buf == nil {
		b, err := eventcodec.Marshal(v)
		if err != nil {
			panic("projections: cannot encode a view: " + err.Error())
		}
		return b
	}
	start := len(r.buf.arena)
	b, err := eventcodec.AppendMarshal(r.buf.arena, &r.buf.scratch, v)
	if err != nil {
		panic("projections: cannot encode a view: " + err.Error())
	}
	// If the append moved the arena, views encoded before still point into
	// the old array, which stays alive and unchanged while they do.
	r.buf.arena = b
	return b[start:len(b):len(b)]
}

// userJSON encodes a user view as json does, without reflection
// (appendUserView).
func (r *Renderer) userJSON(v *readmodel.UserView) []byte { return handJSON(r, v, appendUserView) }

// heldJSON encodes a held row as json does, without reflection
// (appendHeldRow).
func (r *Renderer) heldJSON(h *readmodel.HeldRow) []byte { return handJSON(r, h, appendHeldRow) }

// handJSON encodes v with a hand-written appender into r's arena (or a
// fresh slice without one), and with json where the appender declines.
// As in json: views encoded before keep the old array if the arena moved.
func handJSON[T any](r *Renderer, v *T, appendV func([]byte, *T) ([]byte, bool)) []byte {
	if r.buf == nil {
		if b, ok := appendV(nil, v); ok {
			return b
		}
		return r.json(v)
	}
	start := len(r.buf.arena)
	b, ok := appendV(r.buf.arena, v)
	if !ok {
		return r.json(v)
	}
	r.buf.arena = b
	return b[start:len(b):len(b)]
}

func (r *Renderer) product(sku string) (part, name string) {
	if p, ok := r.cat.Product(r.t, sku); ok {
		return p.SkuPartNumber, p.DisplayName
	}
	return "", ""
}

func (r *Renderer) meta() {
	r.out.HSet(readmodel.Meta, "id", []byte(r.t.ID))
	r.out.HSet(readmodel.Meta, "name", []byte(r.t.Name))
}

// license renders the Licenses page row of a product.
func (r *Renderer) license(sku string) {
	p := r.t.Pools[sku]
	if p == nil || (p.Subscriptions == 0 && p.Total == 0 && p.Assigned == 0 && p.SelfServiceTotal == 0 && p.SelfServiceAssigned == 0) {
		r.out.HDel(readmodel.Licenses, sku)
		return
	}
	part, name := r.product(sku)
	r.out.HSet(readmodel.Licenses, sku, r.json(readmodel.LicenseRow{
		SkuID: sku, SkuPartNumber: part, ProductName: name,
		Total: p.Total, Assigned: p.Assigned, Available: p.Available(), Subscriptions: p.Subscriptions,
		SelfServiceTotal: p.SelfServiceTotal, SelfServiceAssigned: p.SelfServiceAssigned,
	}))
}

// subscription renders a subscription's row and its place in the lifecycle
// schedule (R17).
func (r *Renderer) subscription(id string) {
	s := r.t.Subscriptions[id]
	if s == nil {
		r.out.HDel(readmodel.Subscriptions, id)
		r.out.ZRem(readmodel.SubscriptionsDue, id)
		return
	}
	part, name := r.product(s.SkuID)
	r.out.HSet(readmodel.Subscriptions, id, r.json(readmodel.SubscriptionRow{
		ID: s.ID, SkuID: s.SkuID, SkuPartNumber: part, ProductName: name, Quantity: s.Quantity,
		Kind: s.Kind, Channel: s.Channel, Status: s.Status, PurchasedBy: s.PurchasedBy,
		PurchasedAt: s.PurchasedAt.UTC(), TakenOver: s.TakenOver,
		Term: s.Term, TermStart: utc(s.TermStart), TermEnd: utc(s.TermEnd), TrialEnd: utc(s.TrialEnd),
		CancellationWindowEnd: utc(s.CancellationWindowEnd), RecurringBilling: s.RecurringBilling,
		DisableAt: utc(s.DisableAt), DeleteAt: utc(s.DeleteAt),
	}))
	if at, ok := s.NextLifecycle(); ok {
		r.out.ZAdd(readmodel.SubscriptionsDue, float64(dueScore(at)), id)
	} else {
		r.out.ZRem(readmodel.SubscriptionsDue, id)
	}
}

// dueScore is a lifecycle time as the schedule scores it: Unix seconds,
// rounded up, so that an entry is never read before its step is due.
func dueScore(at time.Time) int64 {
	sec := at.Unix()
	if at.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// utc returns t in UTC, the zero time unchanged (omitted from a row).
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func (r *Renderer) app(sku string) {
	p := r.t.Apps[sku]
	if p == nil {
		r.out.HDel(readmodel.Apps, sku)
		return
	}
	n := r.t.Installs[sku]
	r.out.HSet(readmodel.Apps, sku, r.json(readmodel.AppRow{Product: *p, Installed: n > 0, Installs: n}))
}

func (r *Renderer) heldRow(u *domain.User, h *domain.Hold) readmodel.HeldRow {
	return readmodel.HeldRow{UserID: u.ID, Workload: h.Workload, HeldSince: h.HeldSince.UTC(), PurgeAfter: h.PurgeAfter.UTC(),
		Retained: u.RetentionHold, Reason: h.Reason}
}

// UserViewOf renders a user's view from the tenant state with the domain's
// views (ViewLicense, EnabledServices, UserStatus).
func UserViewOf(cat *domain.Catalog, t *domain.Tenant, u *domain.User) readmodel.UserView {
	v := readmodel.UserView{
		UserProfile: readmodel.UserProfile{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
			UserType: u.UserType, UsageLocation: u.UsageLocation, Status: domain.UserStatus(u), Roles: append([]domain.Role{}, u.Roles...)},
		RetentionHold: u.RetentionHold, Groups: []string{}, Licenses: []domain.LicenseView{},
		EnabledServices: domain.EnabledServices(cat, t, u), AutoAssignedServices: []string{}, HeldData: []readmodel.HeldRow{},
	}
	if u.Deleted {
		at := u.DeletedAt.UTC()
		v.DeletedAt = &at
		until := at.Add(domain.DefaultPolicy().RestoreWindow)
		v.RestorableUntil = &until
	} else {
		v.AutoAssignedServices = cat.AutoAssignedPlans()
	}
	if len(u.Groups) > 0 {
		v.Groups = slices.AppendSeq(make([]string, 0, len(u.Groups)), maps.Keys(u.Groups))
		slices.Sort(v.Groups)
	}
	var buf [8]string // the keys below, sorted, without an allocation mostly
	if len(u.Licenses) > 0 {
		v.Licenses = make([]domain.LicenseView, 0, len(u.Licenses))
		for _, sku := range sortedKeys(buf[:0], u.Licenses) {
			v.Licenses = append(v.Licenses, domain.ViewLicense(cat, t, u.Licenses[sku]))
		}
	}
	if len(u.Holds) > 0 {
		r := Renderer{cat: cat, t: t}
		v.HeldData = make([]readmodel.HeldRow, 0, len(u.Holds))
		for _, w := range sortedKeys(buf[:0], u.Holds) {
			v.HeldData = append(v.HeldData, r.heldRow(u, u.Holds[w]))
		}
	}
	return v
}

// sortedKeys appends m's keys to buf, sorted.
func sortedKeys[V any](buf []string, m map[string]V) []string {
	buf = slices.AppendSeq(buf, maps.Keys(m))
	slices.Sort(buf)
	return buf
}

// user renders a user's view, and its entry in the users index when index
// is set: a user once added stays in the state (deleted users are marked,
// never removed), so the entry is written when the user is added and by
// whole-tenant renders only.
func (r *Renderer) user(id string, index bool) {
	u := r.t.Users[id]
	if u == nil {
		r.out.HDel(readmodel.Users, id)
		r.out.ZRem(readmodel.UsersIndex, id)
		return
	}
	v := UserViewOf(r.cat, r.t, u)
	r.out.HSet(readmodel.Users, id, r.userJSON(&v))
	if index {
		r.out.ZAdd(readmodel.UsersIndex, 0, id)
	}
}

// indexedUser returns what the users list's indexes know of user id in
// state t (ok false: t has no such user).
func indexedUser(t *domain.Tenant, id string) (iu readmodel.IndexedUser, ok bool) {
	u := t.Users[id]
	if u == nil {
		return iu, false
	}
	iu = readmodel.IndexedUser{ID: u.ID, DisplayName: u.DisplayName, UserPrincipalName: u.UserPrincipalName,
		UserType: u.UserType, Deleted: u.Deleted}
	if len(u.Licenses) > 0 {
		iu.Skus = make([]string, 0, len(u.Licenses))
		for sku, l := range u.Licenses {
			iu.Skus = append(iu.Skus, sku)
			for _, s := range l.Sources {
				if s.Active() {
					iu.Licensed = true
				} else {
					iu.Errored = true
				}
			}
		}
		slices.Sort(iu.Skus)
	}
	return iu, true
}

// indexedBefore is a touched user as the indexes knew it before the run.
type indexedBefore struct {
	u  readmodel.IndexedUser
	ok bool
}

func sameIndexed(a, b readmodel.IndexedUser) bool {
	return a.ID == b.ID && a.DisplayName == b.DisplayName && a.UserPrincipalName == b.UserPrincipalName &&
		a.UserType == b.UserType && a.Deleted == b.Deleted && a.Licensed == b.Licensed && a.Errored == b.Errored &&
		slices.Equal(a.Skus, b.Skus)
}

// userIndexes writes the users list's index entries of user id (the
// filter and search sets, readmodel.IndexedUser): what the state now has
// and before lacked is added, what before had and the state now lacks is
// removed. A whole-tenant render passes a zero before.
func (r *Renderer) userIndexes(id string, before indexedBefore) {
	now, ok := indexedUser(r.t, id)
	switch {
	case before.ok && ok && sameIndexed(before.u, now):
		return
	case before.ok && ok && before.u.DisplayName == now.DisplayName && before.u.UserPrincipalName == now.UserPrincipalName:
		// The same members: only the filters that changed move.
		var wasBuf, isBuf [8]string
		was, is := before.u.AppendFilters(wasBuf[:0]), now.AppendFilters(isBuf[:0])
		byName, byUPN, _ := now.Members()
		for _, f := range was {
			if !slices.Contains(is, f) {
				r.out.ZRem(readmodel.UsersByFilter(readmodel.OrderDisplayName, f), byName)
				r.out.ZRem(readmodel.UsersByFilter(readmodel.OrderUPN, f), byUPN)
			}
		}
		for _, f := range is {
			if !slices.Contains(was, f) {
				r.out.ZAdd(readmodel.UsersByFilter(readmodel.OrderDisplayName, f), 0, byName)
				r.out.ZAdd(readmodel.UsersByFilter(readmodel.OrderUPN, f), 0, byUPN)
			}
		}
		return
	}
	var old, cur []readmodel.IndexEntry
	if before.ok {
		old = before.u.Entries()
	}
	if ok {
		cur = now.Entries()
	}
	for _, e := range old {
		if !slices.Contains(cur, e) {
			r.out.ZRem(e.Key, e.Member)
		}
	}
	for _, e := range cur {
		if !slices.Contains(old, e) {
			r.out.ZAdd(e.Key, 0, e.Member)
		}
	}
}

// userLicense renders whether user id is in the product's user list.
func (r *Renderer) userLicense(id, sku string) {
	if u := r.t.Users[id]; u != nil && u.Licenses[sku] != nil {
		r.out.ZAdd(readmodel.LicenseUsers(sku), 0, id)
		return
	}
	r.out.ZRem(readmodel.LicenseUsers(sku), id)
}

func (r *Renderer) group(id string) {
	g := r.t.Groups[id]
	if g == nil {
		r.out.HDel(readmodel.Groups, id)
		return
	}
	v := readmodel.GroupView{ID: g.ID, DisplayName: g.DisplayName, Licenses: []readmodel.GroupLicenseView{}, MemberCount: len(g.Members)}
	for _, sku := range slices.Sorted(maps.Keys(g.Licenses)) {
		part, _ := r.product(sku)
		v.Licenses = append(v.Licenses, readmodel.GroupLicenseView{SkuID: sku, SkuPartNumber: part,
			DisabledPlans: append([]string{}, g.Licenses[sku].DisabledPlans...)})
	}
	r.out.HSet(readmodel.Groups, id, r.json(v))
}

// member renders user u's membership of group g and the licenses g could
// not give u.
func (r *Renderer) member(g, u string) {
	if grp := r.t.Groups[g]; grp != nil && grp.Members[u] {
		r.out.ZAdd(readmodel.GroupMembers(g), 0, u)
	} else {
		r.out.ZRem(readmodel.GroupMembers(g), u)
	}
	var errs []readmodel.MemberError
	if usr := r.t.Users[u]; usr != nil {
		src := domain.GroupSource(g)
		for _, sku := range slices.Sorted(maps.Keys(usr.Licenses)) {
			if s := usr.Licenses[sku].Sources[src]; s != nil && !s.Active() {
				part, _ := r.product(sku)
				errs = append(errs, readmodel.MemberError{UserID: u, SkuID: sku, SkuPartNumber: part, Error: s.Error, Detail: s.ErrorDetail})
			}
		}
	}
	if len(errs) == 0 {
		r.out.HDel(readmodel.GroupErrors(g), u)
		return
	}
	r.out.HSet(readmodel.GroupErrors(g), u, r.json(errs))
}

// held renders one piece of held data and its place in the purge schedule.
func (r *Renderer) held(u, w string) {
	m := readmodel.HeldMember(u, w)
	usr := r.t.Users[u]
	var h *domain.Hold
	if usr != nil {
		h = usr.Holds[w]
	}
	if h == nil {
		r.out.HDel(readmodel.Held, m)
		r.out.ZRem(readmodel.HeldIndex, m)
		r.out.ZRem(readmodel.HeldDue, m)
		return
	}
	row := r.heldRow(usr, h)
	r.out.HSet(readmodel.Held, m, r.heldJSON(&row))
	r.out.ZAdd(readmodel.HeldIndex, 0, m)
	if usr.RetentionHold {
		r.out.ZRem(readmodel.HeldDue, m)
	} else {
		r.out.ZAdd(readmodel.HeldDue, float64(h.PurgeAfter.Unix()), m)
	}
}

// All renders every entity of the tenant (a rebuild, or Verify's "want"),
// and ends the render (a ScriptSink's Finish).
func (r *Renderer) All() {
	r.meta()
	for _, sku := range slices.Sorted(maps.Keys(r.t.Pools)) {
		r.license(sku)
	}
	for _, id := range slices.Sorted(maps.Keys(r.t.Subscriptions)) {
		r.subscription(id)
	}
	for _, sku := range slices.Sorted(maps.Keys(r.t.Apps)) {
		r.app(sku)
	}
	for _, id := range slices.Sorted(maps.Keys(r.t.Groups)) {
		r.group(id)
		for _, u := range slices.Sorted(maps.Keys(r.t.Groups[id].Members)) {
			r.member(id, u)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(r.t.Users)) {
		u := r.t.Users[id]
		r.user(id, true)
		r.userIndexes(id, indexedBefore{})
		for _, sku := range slices.Sorted(maps.Keys(u.Licenses)) {
			r.userLicense(id, sku)
			for src, s := range u.Licenses[sku].Sources {
				if g, ok := domain.GroupOfSource(src); ok && !s.Active() {
					r.member(g, id)
				}
			}
		}
		for _, w := range slices.Sorted(maps.Keys(u.Holds)) {
			r.held(id, w)
		}
	}
	r.finish()
}

type pair struct{ a, b string }

// touched is the set of entities a run of events changed.
type Touched struct {
	meta                                bool     // the tenant's id or name
	added                               []string // users added
	licenses, subs, apps, users, groups set[string]
	userLic, members, held              set[pair] // (user, sku), (group, user), (user, workload)
	// befores holds the index entries of each touched user in the state
	// before the run's first event that touched them (beforeIDs[i]'s is
	// befores[i]).
	beforeIDs set[string]
	befores   []indexedBefore
	// base is the tenant's version before the run's first event (based:
	// there was one): the version the rendered diff starts from.
	base  uint64
	based bool
	keys  []string // Render's buffer of sorted keys
}

// sorted returns s's elements sorted, in tc's buffer (valid until the next
// call).
func (tc *Touched) sorted(s *set[string]) []string {
	tc.keys = append(tc.keys[:0], s.list...)
	slices.Sort(tc.keys)
	return tc.keys
}

func NewTouched() *Touched { return &Touched{} }

// Reset empties tc for another run of events.
func (tc *Touched) Reset() {
	tc.meta = false
	tc.added = tc.added[:0]
	tc.licenses.reset()
	tc.subs.reset()
	tc.apps.reset()
	tc.users.reset()
	tc.groups.reset()
	tc.userLic.reset()
	tc.members.reset()
	tc.held.reset()
	tc.beforeIDs.reset()
	clear(tc.befores)
	tc.befores = tc.befores[:0]
	if cap(tc.befores) > maxKeptSet {
		tc.befores = nil
	}
	tc.base, tc.based = 0, false
	clear(tc.keys)
	tc.keys = tc.keys[:0]
}

// Base is the tenant's version before the first event of the run: what
// its read model must hold for the run's render to be written on it
// (ApplyScript's base). 0 before any event.
func (tc *Touched) Base() uint64 { return tc.base }

// before returns user id's index entries before the run (zero if the run
// marked the user without them: a deleted group's members).
func (tc *Touched) before(id string) indexedBefore {
	if i := tc.beforeIDs.find(id); i >= 0 {
		return tc.befores[i]
	}
	return indexedBefore{}
}

// user marks a user and everything that hangs off it in state t.
func (tc *Touched) user(t *domain.Tenant, id string) {
	if tc.users.add(id) && !tc.beforeIDs.has(id) {
		u, ok := indexedUser(t, id)
		tc.beforeIDs.add(id)
		tc.befores = append(tc.befores, indexedBefore{u, ok})
	}
	u := t.Users[id]
	if u == nil {
		return
	}
	for sku, l := range u.Licenses {
		tc.licenses.add(sku)
		tc.userLic.add(pair{id, sku})
		for src := range l.Sources {
			if g, ok := domain.GroupOfSource(src); ok {
				tc.members.add(pair{g, id})
			}
		}
	}
	for g := range u.Groups {
		tc.groups.add(g)
		tc.members.add(pair{g, id})
	}
	if u.Stash != nil {
		for _, g := range u.Stash.Groups {
			tc.groups.add(g)
			tc.members.add(pair{g, id})
		}
	}
	for w := range u.Holds {
		tc.held.add(pair{id, w})
	}
}

func (tc *Touched) source(userID, src string) {
	if g, ok := domain.GroupOfSource(src); ok {
		tc.groups.add(g)
		tc.members.add(pair{g, userID})
	}
}

// event marks what e touches, reading the state before e is applied.
func (tc *Touched) Event(t *domain.Tenant, e domain.Event) {
	if !tc.based {
		tc.base, tc.based = t.Version, true
	}
	switch p := e.Payload.(type) {
	case domain.TenantCreated:
		tc.meta = true
	case domain.UserAdded:
		tc.user(t, p.UserID)
		tc.added = append(tc.added, p.UserID)
	case domain.UserUpdated:
		tc.user(t, p.UserID)
	case domain.UserDeleted:
		tc.user(t, p.UserID)
	case domain.UserRestored:
		tc.user(t, p.UserID)
	case domain.AdminRolesChanged:
		tc.user(t, p.UserID)
	case domain.RetentionHoldSet:
		tc.user(t, p.UserID)
	case domain.DataHeld:
		tc.user(t, p.UserID)
		tc.held.add(pair{p.UserID, p.Workload})
	case domain.DataHoldReleased:
		tc.user(t, p.UserID)
		tc.held.add(pair{p.UserID, p.Workload})
	case domain.HeldDataPurged:
		tc.user(t, p.UserID)
		tc.held.add(pair{p.UserID, p.Workload})
	case domain.GroupCreated:
		tc.groups.add(p.GroupID)
	case domain.GroupRenamed:
		tc.groups.add(p.GroupID)
	case domain.GroupDeleted:
		// The members' views list their groups; the member set and its
		// errors go with the group.
		tc.groups.add(p.GroupID)
		if g := t.Groups[p.GroupID]; g != nil {
			for uid := range g.Members {
				tc.users.add(uid)
				tc.members.add(pair{p.GroupID, uid})
			}
		}
	case domain.GroupMemberAdded:
		tc.user(t, p.UserID)
		tc.groups.add(p.GroupID)
		tc.members.add(pair{p.GroupID, p.UserID})
	case domain.GroupMemberRemoved:
		tc.user(t, p.UserID)
		tc.groups.add(p.GroupID)
		tc.members.add(pair{p.GroupID, p.UserID})
	case domain.ProductRegistered:
		tc.apps.add(p.Product.SkuID)
		tc.licenses.add(p.Product.SkuID)
	case domain.AppInstalled:
		tc.apps.add(p.SkuID)
	case domain.SubscriptionPurchased:
		tc.subs.add(p.SubscriptionID)
		tc.licenses.add(p.SkuID)
	case domain.SubscriptionQuantityChanged:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.SubscriptionTakenOver:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.SubscriptionStatusChanged:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.SubscriptionRecurringBillingSet:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.SubscriptionCancelled:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.SubscriptionRenewed:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.SubscriptionExpired:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.SubscriptionDisabled:
		tc.subscription(t, p.SubscriptionID, p.SkuID)
	case domain.LicenseAssigned:
		tc.license(t, p.UserID, p.SkuID, p.Source)
	case domain.LicenseUnassigned:
		tc.license(t, p.UserID, p.SkuID, p.Source)
	case domain.LicensePlansChanged:
		tc.license(t, p.UserID, p.SkuID, p.Source)
	case domain.GroupLicenseErrored:
		tc.license(t, p.UserID, p.SkuID, domain.GroupSource(p.GroupID))
	case domain.GroupLicenseAssigned:
		tc.groups.add(p.GroupID)
	case domain.GroupLicenseUnassigned:
		tc.groups.add(p.GroupID)
	}
}

func (tc *Touched) subscription(t *domain.Tenant, id, sku string) {
	tc.subs.add(id)
	if sku != "" {
		tc.licenses.add(sku)
	}
	if s := t.Subscriptions[id]; s != nil {
		tc.licenses.add(s.SkuID)
	}
}

func (tc *Touched) license(t *domain.Tenant, userID, sku, src string) {
	tc.user(t, userID)
	tc.licenses.add(sku)
	tc.userLic.add(pair{userID, sku})
	tc.source(userID, src)
}

// Render writes every touched entity of state t (after the events) to r,
// and ends the render (a ScriptSink's Finish).
func (tc *Touched) Render(r *Renderer) {
	// What hangs off a touched user now counts too (e.g. a restored user's
	// groups); the state before each event was marked by event.
	for _, id := range tc.users.list {
		tc.user(r.t, id)
	}
	if tc.meta {
		r.meta()
	}
	// The keys sorted in one buffer, reused: each loop ends before the
	// next sorts.
	for _, sku := range tc.sorted(&tc.licenses) {
		r.license(sku)
	}
	for _, id := range tc.sorted(&tc.subs) {
		r.subscription(id)
	}
	for _, sku := range tc.sorted(&tc.apps) {
		r.app(sku)
	}
	for _, id := range tc.sorted(&tc.users) {
		r.user(id, slices.Contains(tc.added, id))
		r.userIndexes(id, tc.before(id))
	}
	for _, g := range tc.sorted(&tc.groups) {
		r.group(g)
	}
	clear(tc.keys) // hold no strings of this tenant
	for _, p := range tc.userLic.list {
		r.userLicense(p.a, p.b)
	}
	for _, p := range tc.members.list {
		r.member(p.a, p.b)
	}
	for _, p := range tc.held.list {
		r.held(p.a, p.b)
	}
	r.finish()
}

// MapSink collects the rendered read model of a tenant in memory.
type MapSink struct {
	Hashes map[string]map[string]string
	Zsets  map[string]map[string]float64
}

func NewMapSink() *MapSink {
	return &MapSink{Hashes: map[string]map[string]string{}, Zsets: map[string]map[string]float64{}}
}

func (m *MapSink) HSet(key, field string, value []byte) {
	h := m.Hashes[key]
	if h == nil {
		h = map[string]string{}
		m.Hashes[key] = h
	}
	h[field] = string(value)
}

func (m *MapSink) HDel(key, field string) {
	if h := m.Hashes[key]; h != nil {
		delete(h, field)
		if len(h) == 0 {
			delete(m.Hashes, key)
		}
	}
}

func (m *MapSink) ZAdd(key string, score float64, member string) {
	z := m.Zsets[key]
	if z == nil {
		z = map[string]float64{}
		m.Zsets[key] = z
	}
	z[member] = score
}

func (m *MapSink) ZRem(key, member string) {
	if z := m.Zsets[key]; z != nil {
		delete(z, member)
		if len(z) == 0 {
			delete(m.Zsets, key)
		}
	}
}

// ScriptSink encodes writes as arguments of the apply script. The writes
// are kept as they come and encoded into Args when the render ends
// (Renderer.All, Touched.Render, ApplyArgs: Finish): of the writes to one
// key and one field or member only the last is kept (the others change
// nothing it leaves), and the writes of one kind to one key go in one
// variadic command (an op of several items, "hs*" etc.: ops.lua). A key's
// writes are independent of other keys', so their order across keys and
// within a key (one per field or member) leaves the same read model as
// the writes one by one in the order given.
type ScriptSink struct {
	Keys  []string
	index map[string]int
	Args  []any
	keyOf func(suffix string) string
	ops   []sinkOp // the writes since the last Finish, in order
	last  int      // the KEYS index of the last op encoded (1 before any)
	// item is the field or member of the last op encoded when that op was
	// of one item on the key after the one before ('>' ops), for the ops
	// that repeat it (>z0=, >zr=); itemOK: there is one.
	item   string
	itemOK bool
}

// The kinds of write, in the order a key's ops are encoded.
const (
	opHSet = iota
	opHDel
	opZAdd
	opZRem
	numOpKinds
)

// opNames are the ops by kind, of one item and of several, naming their
// key and on the key after the last op's (ops.lua).
var opNames = [numOpKinds][2][2]any{
	{{"hs", "hs*"}, {">hs", ">hs*"}},
	{{"hd", "hd*"}, {">hd", ">hd*"}},
	{{"za", "za*"}, {">za", ">za*"}},
	{{"zr", "zr*"}, {">zr", ">zr*"}},
}

// opZAdd0 is ZADD of one member scored 0 on the key after the last op's.
const opZAdd0 = ">z0"

// opZAdd0Again and opZRemAgain are ZADD scored 0 and ZREM, on the key
// after the last op's, of the last op's field or member (that op one
// item on the key after its own last: a '>' op of one item): an index
// move writes one member to several keys in turn.
const (
	opZAdd0Again = ">z0="
	opZRemAgain  = ">zr="
)

// sinkOp is one write: kind on KEYS[key] of field or member a, with a
// value (HSET) or a score (ZADD, as an argument).
type sinkOp struct {
	kind  int
	key   int
	a     string
	value []byte
	score any
}

// MaxOpItems is the most items an op of several carries: the script
// unpacks them onto Lua's stack, which holds a few thousand values.
const MaxOpItems = 512

func NewScriptSink(keyOf func(string) string) *ScriptSink {
	s := &ScriptSink{}
	s.Reset(keyOf)
	return s
}

// Reset empties s for another tenant's writes, keeping its memory.
func (s *ScriptSink) Reset(keyOf func(string) string) {
	if s.index == nil || len(s.index) > maxKeptSinkKeys {
		// A map does not shrink: after a tenant with thousands of keys,
		// start a small one again.
		s.index = map[string]int{}
	}
	clear(s.index)
	clear(s.Keys)
	clear(s.Args) // drop the last tenant's views and strings
	clear(s.ops)
	if cap(s.Args) > 16*maxKeptSinkKeys {
		s.Keys, s.Args = nil, nil
	}
	if cap(s.ops) > 4*maxKeptSinkKeys {
		s.ops = nil
	}
	s.Keys, s.Args, s.ops, s.keyOf, s.last = s.Keys[:0], s.Args[:0], s.ops[:0], keyOf, 1
	s.item, s.itemOK = "", false
	s.keyIndex(readmodel.Meta) // KEYS[1] holds the applied version
}

// maxKeptSinkKeys bounds what a reused ScriptSink keeps between tenants.
const maxKeptSinkKeys = 1024

// keyIndex returns the KEYS index of a tenant key suffix.
func (s *ScriptSink) keyIndex(suffix string) int {
	i, ok := s.index[suffix]
	if !ok {
		s.Keys = append(s.Keys, s.keyOf(suffix))
		i = len(s.Keys)
		s.index[suffix] = i
	}
	return i
}

// smallArg returns a small number (a KEYS index, an item count) as an
// argument.
func smallArg(i int) any {
	if i < len(boxedIndexes) {
		return boxedIndexes[i]
	}
	return strconv.Itoa(i)
}

// boxedIndexes are the first KEYS indexes as arguments, made once: a
// string put in an interface is an allocation, three per op before (the
// index, the score, the member).
var boxedIndexes = func() (b [MaxOpItems + 1]any) {
	for i := range b {
		b[i] = strconv.Itoa(i)
	}
	return b
}()

// zeroScore is the score of every index but the schedules, as an argument.
var zeroScore any = "0"

// Has reports whether s has a key for the tenant key suffix.
func (s *ScriptSink) Has(suffix string) bool {
	_, ok := s.index[suffix]
	return ok
}

// ApplyArgs is ARGV of ApplyScript: the version the writes bring the
// tenant to, the base version they are a diff from, then the ops.
func (s *ScriptSink) ApplyArgs(version, base uint64) []any {
	s.Finish()
	return append(append(make([]any, 0, len(s.Args)+2), version, base), s.Args...)
}

func (s *ScriptSink) HSet(key, field string, value []byte) {
	s.ops = append(s.ops, sinkOp{kind: opHSet, key: s.keyIndex(key), a: field, value: value})
}
func (s *ScriptSink) HDel(key, field string) {
	s.ops = append(s.ops, sinkOp{kind: opHDel, key: s.keyIndex(key), a: field})
}
func (s *ScriptSink) ZAdd(key string, score float64, member string) {
	sc := zeroScore // every index but the purge and lifecycle schedules scores 0
	if score != 0 {
		sc = strconv.FormatFloat(score, 'f', -1, 64)
	}
	s.ops = append(s.ops, sinkOp{kind: opZAdd, key: s.keyIndex(key), a: member, score: sc})
}
func (s *ScriptSink) ZRem(key, member string) {
	s.ops = append(s.ops, sinkOp{kind: opZRem, key: s.keyIndex(key), a: member})
}

// finisher is a Sink that encodes its writes when a render ends.
type finisher interface{ Finish() }

// finish ends a render into r's sink.
func (r *Renderer) finish() {
	if f, ok := r.out.(finisher); ok {
		f.Finish()
	}
}

// Finish encodes the writes given since the last Finish (or Reset) onto
// Args: key by key in the order of their KEYS indexes, for each key its
// HSETs, HDELs, ZADDs and ZREMs, each kind in one op (several when more
// than MaxOpItems), of the last write of each field or member.
func (s *ScriptSink) Finish() {
	if len(s.ops) == 0 {
		return
	}
	// By key and field or member, the writes to each in the order given
	// (mostly so already: a render writes key after key).
	if !slices.IsSortedFunc(s.ops, compareSinkOps) {
		slices.SortStableFunc(s.ops, compareSinkOps)
	}
	ops := s.ops
	for i := 1; i < len(ops); i++ {
		if ops[i].key == ops[i-1].key && ops[i].a == ops[i-1].a { // (rare)
			ops = ops[:0]
			for i, o := range s.ops {
				if i+1 < len(s.ops) && s.ops[i+1].key == o.key && s.ops[i+1].a == o.a {
					continue // a later write to the same field or member decides
				}
				ops = append(ops, o)
			}
			break
		}
	}
	for start := 0; start < len(ops); {
		end := start + 1
		for end < len(ops) && ops[end].key == ops[start].key {
			end++
		}
		if end == start+1 { // one write to the key (most)
			s.encode(ops[start].kind, ops[start:end])
		} else {
			for kind := range numOpKinds {
				s.encode(kind, ops[start:end])
			}
		}
		start = end
	}
	clear(s.ops) // hold no views or strings of this tenant
	s.ops = s.ops[:0]
}

// compareSinkOps orders writes by key, then field or member.
func compareSinkOps(x, y sinkOp) int {
	if x.key != y.key {
		return cmp.Compare(x.key, y.key)
	}
	return strings.Compare(x.a, y.a)
}

// encode appends the ops of kind among ops (all on one key) to Args:
// without the key's index when it is the one after the last op's (the
// ops are encoded in the order of their keys, and each key but the meta
// hash has some), and a member scored 0 without its score.
func (s *ScriptSink) encode(kind int, ops []sinkOp) {
	n := 0
	for _, o := range ops {
		if o.kind == kind {
			n++
		}
	}
	if n == 0 {
		return
	}
	key := ops[0].key
	names := &opNames[kind]
	op := func(several int) {
		if key == s.last+1 {
			s.Args = append(s.Args, names[1][several])
		} else {
			s.Args = append(s.Args, names[0][several], smallArg(key))
		}
		s.last = key
	}
	item := func(o sinkOp) {
		switch kind {
		case opHSet:
			s.Args = append(s.Args, o.a, o.value)
		case opZAdd:
			s.Args = append(s.Args, o.score, o.a)
		default:
			s.Args = append(s.Args, o.a)
		}
	}
	if n == 1 {
		for _, o := range ops {
			if o.kind != kind {
				continue
			}
			follows := key == s.last+1
			repeat := follows && s.itemOK && s.item == o.a
			switch {
			case kind == opZAdd && o.score == zeroScore && repeat:
				s.Args = append(s.Args, opZAdd0Again)
			case kind == opZRem && repeat:
				s.Args = append(s.Args, opZRemAgain)
			case kind == opZAdd && o.score == zeroScore && follows:
				s.Args = append(s.Args, opZAdd0, o.a)
			default:
				op(0)
				item(o)
			}
			s.last = key
			s.item, s.itemOK = o.a, follows
		}
		return
	}
	s.itemOK = false
	left := 0 // items left in the current op
	for _, o := range ops {
		if o.kind != kind {
			continue
		}
		if left == 0 {
			left = min(n, MaxOpItems)
			n -= left
			op(1)
			s.Args = append(s.Args, smallArg(left))
		}
		item(o)
		left--
	}
}
