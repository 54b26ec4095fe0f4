package history

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/tenantstream"
)

// Blame answers, for every value of a tenant's state at a version, which
// event last changed it (GET /v1/tenants/{t}/state/blame).
//
// A value is named by a path that mirrors /state's JSON: the collection,
// then the id of the row (not its index in the list), then the field.
// Segments are ids as /state shows them (skuId, not part number), escaped
// with url.PathEscape (a no-op for every valid id). The paths:
//
//	name                                            the tenant's name
//	products/{skuId}                                a Licenses row's counts
//	subscriptions/{id}                              any field of the subscription
//	subscriptions/{id}/quantity|status|recurringBilling|termEnd
//	users/{id}                                      the profile (upn, names, type, location)
//	users/{id}/status|roles|retentionHold
//	users/{id}/licenses/{skuId}                     the license (sources, plans, state, error)
//	users/{id}/licenses/{skuId}/disabledPlans/{planId}   a service plan switched off
//	users/{id}/groups/{groupId}                     a membership
//	groups/{id}                                     the group's name
//	groups/{id}/members/{userId}
//	groups/{id}/licenses/{skuId}
//	groups/{id}/licenses/{skuId}/disabledPlans/{planId}
//	groups/{id}/membersWithLicenseErrors/{userId}/{skuId}
//	heldData/{userId}/{workload}                    a hold (since, purge date, reason)
//	heldData/{userId}/{workload}/retained           the retention hold over it
//	apps/{skuId}, installs/{skuId}
//
// "Last changed" is exact: an event is blamed for a value only when the
// value differs after it (an assignment that leaves a license as it was
// does not take its blame), and a value that went away and came back is
// blamed on the event that brought it back.
type Blame struct {
	TenantID string    `json:"tenantId"`
	Version  uint64    `json:"version"`
	AsOf     time.Time `json:"asOf"`
	// Entries are sorted by path.
	Entries []BlameEntry `json:"entries"`
	// Events are the events the entries name, by version (as a string:
	// a JSON object's keys are strings).
	Events map[string]BlameEvent `json:"events"`
}

// BlameEntry is one value and the version of the event that last changed it.
type BlameEntry struct {
	Path    string `json:"path"`
	Version uint64 `json:"version"`
}

// BlameEvent is an event as blame shows it: what, when, who, and through
// which command (commandId groups the events of one command; correlationId
// is the id of the HTTP request that sent it).
type BlameEvent struct {
	Version       uint64       `json:"version"`
	Type          string       `json:"type"`
	OccurredAt    time.Time    `json:"occurredAt"`
	Actor         domain.Actor `json:"actor"`
	EventID       string       `json:"eventId"`
	CommandID     string       `json:"commandId"`
	CorrelationID string       `json:"correlationId,omitempty"`
	Summary       string       `json:"summary"`
}

// BlameAt computes the blame of the tenant's state at version (> 0) in one
// fold over its events 1..version. With path set, only the entries at or
// under it (a CodeNotFound error when there are none). Snapshots do not
// help: they keep the state, not who made it.
func (s *Service) BlameAt(ctx context.Context, tenantID string, version uint64, path string) (Blame, error) {
	var want []string
	if path != "" {
		var err error
		if want, err = s.ParseBlamePath(path); err != nil {
			return Blame{}, err
		}
	}
	bf := newBlameFold(s.Catalog, false)
	bf.only = want
	stream := tenantstream.Name(tenantID)
	for next := uint64(1); next <= version; {
		recs, err := s.Store.ReadStream(ctx, stream, next, int(min(version-next+1, 4096)))
		if err != nil {
			return Blame{}, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Version != next {
				return Blame{}, fmt.Errorf("read %s: expected version %d, got %d: the stream has a gap", stream, next, r.Version)
			}
			e, err := eventcodec.Decode(r.Data, s.Upcasters)
			if err != nil {
				return Blame{}, fmt.Errorf("%s version %d: %w", stream, r.Version, err)
			}
			e.Version = r.Version
			bf.apply(e)
			next = r.Version + 1
		}
	}
	b := bf.result(s.Catalog, want)
	if path != "" && len(b.Entries) == 0 {
		return Blame{}, domain.Errorf(domain.CodeNotFound, "path", "tenant %s has no value at %s at version %d", tenantID, domain.Echo(path), version)
	}
	return b, nil
}

// blameFold folds events into a tenant and keeps, for each value's path,
// the event that last changed it. For each event it lists the values the
// event can change (its scope), fingerprints them before and after
// domain.Evolve and blames the event for those that differ. everything
// makes every event's scope the whole state (slow; the tests' reference).
type blameFold struct {
	cat        *domain.Catalog
	t          *domain.Tenant
	everything bool
	blame      map[string]*blameRef
	pools      map[string]domain.Pool // products' counts after the last event
	before     map[string]string
	after      map[string]string
	scope      []item
	// only, when set, is the path (its segments) the answer is about: the
	// fold then fingerprints only what may be at or under it.
	only []string
}

// blameRef is an event that changed a value (its payload is summarized
// only if it is still blamed for something at the end).
type blameRef struct {
	env     domain.Envelope
	payload domain.Payload
}

// item is a part of the state an event may change. all and "" are
// wildcards as each kind says.
type item struct {
	kind  byte   // 'n' name, 'u' user, 'g' group, 's' subscription, 'a' app, 'i' installs
	id    string // the user, group, subscription or sku
	skus  string // 'u': licenses to fingerprint; 'g': group licenses (and errors) ("" none, all: every one)
	users string // 'g': members (and their errors) ("" none, all: every one)
}

const all = "\x00*"

func newBlameFold(c *domain.Catalog, everything bool) *blameFold {
	return &blameFold{cat: c, t: domain.NewTenant(), everything: everything, blame: map[string]*blameRef{},
		pools: map[string]domain.Pool{}, before: map[string]string{}, after: map[string]string{}}
}

func (bf *blameFold) apply(e domain.Event) {
	bf.scope = bf.wanted(bf.scopeOf(e, bf.scope[:0]))
	clear(bf.before)
	clear(bf.after)
	bf.leaves(bf.scope, bf.before)
	domain.Evolve(bf.t, e)
	if bf.everything {
		bf.scope = bf.wanted(bf.everythingScope(bf.scope[:0])) // with what e created
	}
	bf.leaves(bf.scope, bf.after)
	var ref *blameRef
	blameIt := func(path string) {
		if ref == nil {
			ref = &blameRef{env: e.Envelope, payload: e.Payload}
		}
		bf.blame[path] = ref
	}
	for p, fp := range bf.after {
		if old, ok := bf.before[p]; !ok || old != fp {
			blameIt(p)
		}
	}
	for p := range bf.before {
		if _, ok := bf.after[p]; !ok {
			delete(bf.blame, p)
		}
	}
	// Products' counts change with licenses and subscriptions alike: they
	// are few, so every event compares them all.
	if len(bf.only) > 0 && bf.only[0] != "products" {
		return
	}
	for sku, p := range bf.t.Pools {
		path := "products/" + seg(sku)
		if p.Subscriptions == 0 {
			if _, ok := bf.pools[sku]; ok {
				delete(bf.pools, sku)
				delete(bf.blame, path)
			}
			continue
		}
		if old, ok := bf.pools[sku]; !ok || old != *p {
			bf.pools[sku] = *p
			blameIt(path)
		}
	}
}

// wanted keeps the items whose values may be at or under bf.only.
func (bf *blameFold) wanted(scope []item) []item {
	if len(bf.only) == 0 {
		return scope
	}
	var kind byte
	switch bf.only[0] {
	case "users", "heldData":
		kind = 'u'
	case "groups":
		kind = 'g'
	case "subscriptions":
		kind = 's'
	case "apps":
		kind = 'a'
	case "installs":
		kind = 'i'
	case "name":
		kind = 'n'
	}
	return slices.DeleteFunc(scope, func(it item) bool {
		return it.kind != kind || (len(bf.only) > 1 && kind != 'n' && seg(it.id) != bf.only[1])
	})
}

// scopeOf lists what e may change, read from the state before e.
func (bf *blameFold) scopeOf(e domain.Event, out []item) []item {
	if bf.everything {
		return bf.everythingScope(out)
	}
	t := bf.t
	switch p := e.Payload.(type) {
	case domain.TenantCreated:
		out = append(out, item{kind: 'n'})
	case domain.UserAdded:
		out = append(out, item{kind: 'u', id: p.UserID, skus: all})
	case domain.UserUpdated:
		out = append(out, item{kind: 'u', id: p.UserID})
	case domain.AdminRolesChanged:
		out = append(out, item{kind: 'u', id: p.UserID})
	case domain.RetentionHoldSet:
		out = append(out, item{kind: 'u', id: p.UserID})
	case domain.DataHeld:
		out = append(out, item{kind: 'u', id: p.UserID})
	case domain.DataHoldReleased:
		out = append(out, item{kind: 'u', id: p.UserID})
	case domain.HeldDataPurged:
		out = append(out, item{kind: 'u', id: p.UserID})
	case domain.UserDeleted, domain.UserRestored:
		id := targetOf(p).UserID
		out = append(out, item{kind: 'u', id: id, skus: all})
		if u := t.Users[id]; u != nil {
			for g := range u.Groups {
				out = append(out, item{kind: 'g', id: g, users: id, skus: all})
			}
		}
	case domain.GroupCreated:
		out = append(out, item{kind: 'g', id: p.GroupID, users: all, skus: all})
	case domain.GroupRenamed:
		out = append(out, item{kind: 'g', id: p.GroupID})
	case domain.GroupDeleted:
		out = append(out, item{kind: 'g', id: p.GroupID, users: all, skus: all})
		if g := t.Groups[p.GroupID]; g != nil {
			for m := range g.Members {
				out = append(out, item{kind: 'u', id: m})
			}
		}
	case domain.GroupMemberAdded:
		out = append(out, item{kind: 'u', id: p.UserID}, item{kind: 'g', id: p.GroupID, users: p.UserID, skus: all})
	case domain.GroupMemberRemoved:
		out = append(out, item{kind: 'u', id: p.UserID}, item{kind: 'g', id: p.GroupID, users: p.UserID, skus: all})
	case domain.GroupLicenseAssigned:
		out = append(out, item{kind: 'g', id: p.GroupID, users: all, skus: p.SkuID})
	case domain.GroupLicenseUnassigned:
		out = append(out, item{kind: 'g', id: p.GroupID, users: all, skus: p.SkuID})
	case domain.GroupLicenseErrored:
		out = append(out, item{kind: 'u', id: p.UserID, skus: p.SkuID}, item{kind: 'g', id: p.GroupID, users: p.UserID, skus: p.SkuID})
	case domain.LicenseAssigned:
		out = licenseScope(out, p.UserID, p.SkuID, p.Source)
	case domain.LicenseUnassigned:
		out = licenseScope(out, p.UserID, p.SkuID, p.Source)
	case domain.LicensePlansChanged:
		out = licenseScope(out, p.UserID, p.SkuID, p.Source)
	case domain.ProductRegistered:
		// A registered app names the licenses of its sku.
		out = append(out, item{kind: 'a', id: p.Product.SkuID})
		for id, u := range t.Users {
			if u.Licenses[p.Product.SkuID] != nil {
				out = append(out, item{kind: 'u', id: id, skus: p.Product.SkuID})
			}
		}
	case domain.AppInstalled:
		out = append(out, item{kind: 'i', id: p.SkuID})
	case domain.NothingChanged:
	default:
		if id := targetOf(p).SubscriptionID; id != "" {
			out = append(out, item{kind: 's', id: id})
		} else {
			return bf.everythingScope(out) // an event this list does not know yet
		}
	}
	return out
}

func licenseScope(out []item, user, sku, source string) []item {
	out = append(out, item{kind: 'u', id: user, skus: sku})
	if g, ok := domain.GroupOfSource(source); ok {
		out = append(out, item{kind: 'g', id: g, users: user, skus: sku})
	}
	return out
}

func (bf *blameFold) everythingScope(out []item) []item {
	t := bf.t
	out = append(out, item{kind: 'n'})
	for id := range t.Users {
		out = append(out, item{kind: 'u', id: id, skus: all})
	}
	for id := range t.Groups {
		out = append(out, item{kind: 'g', id: id, users: all, skus: all})
	}
	for id := range t.Subscriptions {
		out = append(out, item{kind: 's', id: id})
	}
	for id := range t.Apps {
		out = append(out, item{kind: 'a', id: id})
	}
	for id := range t.Installs {
		out = append(out, item{kind: 'i', id: id})
	}
	return out
}

// leaves fingerprints the values of the scope into out (path -> a string
// that changes when the value does).
func (bf *blameFold) leaves(scope []item, out map[string]string) {
	t, c := bf.t, bf.cat
	for _, it := range scope {
		switch it.kind {
		case 'n':
			if t.ID != "" {
				out["name"] = t.Name
			}
		case 'u':
			u := t.Users[it.id]
			if u == nil {
				continue
			}
			base := "users/" + seg(u.ID)
			if it.skus == all || it.skus == "" {
				out[base] = u.UserPrincipalName + "\x00" + u.DisplayName + "\x00" + u.UserType + "\x00" + u.UsageLocation
				out[base+"/status"] = domain.UserStatus(u) + "\x00" + instant(u.DeletedAt)
				out[base+"/roles"] = fmt.Sprint(u.Roles)
				out[base+"/retentionHold"] = strconv.FormatBool(u.RetentionHold)
				for g := range u.Groups {
					out[base+"/groups/"+seg(g)] = ""
				}
				for w, h := range u.Holds {
					hp := "heldData/" + seg(u.ID) + "/" + seg(w)
					out[hp] = instant(h.HeldSince) + "\x00" + instant(h.PurgeAfter) + "\x00" + h.Reason
					out[hp+"/retained"] = strconv.FormatBool(u.RetentionHold)
				}
			}
			switch it.skus {
			case "":
			case all:
				for sku, l := range u.Licenses {
					licenseLeaves(c, t, base, sku, l, out)
				}
			default:
				if l := u.Licenses[it.skus]; l != nil {
					licenseLeaves(c, t, base, it.skus, l, out)
				}
			}
		case 'g':
			g := t.Groups[it.id]
			if g == nil {
				continue
			}
			base := "groups/" + seg(g.ID)
			out[base] = g.DisplayName
			var skus, users []string
			switch it.skus {
			case "":
			case all:
				skus = slices.Collect(maps.Keys(g.Licenses))
			default:
				if g.Licenses[it.skus] != nil {
					skus = []string{it.skus}
				}
			}
			switch it.users {
			case "":
			case all:
				users = slices.Collect(maps.Keys(g.Members))
			default:
				if g.Members[it.users] {
					users = []string{it.users}
				}
			}
			for _, m := range users {
				out[base+"/members/"+seg(m)] = ""
			}
			src := domain.GroupSource(g.ID)
			for _, sku := range skus {
				gl := g.Licenses[sku]
				lp := base + "/licenses/" + seg(sku)
				out[lp] = strings.Join(gl.DisabledPlans, ",")
				for _, p := range gl.DisabledPlans {
					out[lp+"/disabledPlans/"+seg(p)] = ""
				}
				for _, m := range users {
					if u := t.Users[m]; u != nil && u.Licenses[sku] != nil {
						if s := u.Licenses[sku].Sources[src]; s != nil && !s.Active() {
							out[base+"/membersWithLicenseErrors/"+seg(m)+"/"+seg(sku)] = s.Error
						}
					}
				}
			}
		case 's':
			if s := t.Subscriptions[it.id]; s != nil {
				base := "subscriptions/" + seg(s.ID)
				out[base] = fmt.Sprintf("%+v", *s)
				out[base+"/quantity"] = strconv.Itoa(s.Quantity)
				out[base+"/status"] = s.Status
				out[base+"/recurringBilling"] = strconv.FormatBool(s.RecurringBilling)
				out[base+"/termEnd"] = instant(s.TermEnd)
			}
		case 'a':
			if a := t.Apps[it.id]; a != nil {
				out["apps/"+seg(it.id)] = fmt.Sprintf("%+v", *a)
			}
		case 'i':
			if n, ok := t.Installs[it.id]; ok {
				out["installs/"+seg(it.id)] = strconv.Itoa(n)
			}
		}
	}
}

func licenseLeaves(c *domain.Catalog, t *domain.Tenant, userBase, sku string, l *domain.UserLicense, out map[string]string) {
	v := domain.ViewLicense(c, t, l)
	lp := userBase + "/licenses/" + seg(sku)
	out[lp] = strings.Join(v.Sources, ",") + "\x00" + strings.Join(v.DisabledPlans, ",") + "\x00" + strings.Join(v.EnabledPlans, ",") +
		"\x00" + v.State + "\x00" + v.Error + "\x00" + v.ErrorDetail + "\x00" + strings.Join(v.ErrorGroups, ",")
	for _, p := range v.DisabledPlans {
		out[lp+"/disabledPlans/"+seg(p)] = ""
	}
}

// instant fingerprints a time (String would, ten times slower).
func instant(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 36) + "." + strconv.Itoa(t.Nanosecond())
}

// seg escapes an id for a path segment.
func seg(id string) string {
	if strings.ContainsAny(id, "/%?#") {
		return url.PathEscape(id)
	}
	return id
}

// result lists the values of the folded state and who last changed them;
// with want (a parsed path), only those at or under it.
func (bf *blameFold) result(c *domain.Catalog, want []string) Blame {
	t := bf.t
	present := map[string]string{}
	bf.leaves(bf.everythingScope(nil), present)
	for sku, p := range t.Pools {
		if p.Subscriptions > 0 {
			present["products/"+seg(sku)] = ""
		}
	}
	b := Blame{TenantID: t.ID, Version: t.Version, AsOf: t.LastOccurredAt, Entries: []BlameEntry{}, Events: map[string]BlameEvent{}}
	prefix := strings.Join(want, "/")
	for _, p := range slices.Sorted(maps.Keys(present)) {
		if prefix != "" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
			continue
		}
		ref := bf.blame[p]
		if ref == nil {
			continue // cannot happen: every value was made by an event (the tests check)
		}
		b.Entries = append(b.Entries, BlameEntry{Path: p, Version: ref.env.Version})
		key := strconv.FormatUint(ref.env.Version, 10)
		if _, ok := b.Events[key]; !ok {
			e := domain.Event{Envelope: ref.env, Payload: ref.payload}
			b.Events[key] = BlameEvent{Version: e.Version, Type: e.Type, OccurredAt: e.OccurredAt, Actor: e.Actor, EventID: e.EventID,
				CommandID: e.CommandID, CorrelationID: e.CorrelationID, Summary: Summarize(c, e)}
		}
	}
	return b
}

// blamePaths are the shapes of the paths; "*" is an id. A path may stop
// anywhere along one (users/u1 asks for every value of the user).
var blamePaths = [][]string{
	{"name"},
	{"products", "*"},
	{"subscriptions", "*", "quantity"}, {"subscriptions", "*", "status"},
	{"subscriptions", "*", "recurringBilling"}, {"subscriptions", "*", "termEnd"},
	{"users", "*", "status"}, {"users", "*", "roles"}, {"users", "*", "retentionHold"},
	{"users", "*", "licenses", "*", "disabledPlans", "*"}, {"users", "*", "groups", "*"},
	{"groups", "*", "members", "*"}, {"groups", "*", "licenses", "*", "disabledPlans", "*"},
	{"groups", "*", "membersWithLicenseErrors", "*", "*"},
	{"heldData", "*", "*", "retained"},
	{"apps", "*"}, {"installs", "*"},
}

// skuAfter are the segments after which an id is a product: a path may
// name it by skuPartNumber (E3's ENTERPRISEPACK), as the console shows it.
var skuAfter = map[string]bool{"products": true, "licenses": true, "apps": true, "installs": true}

// ParseBlamePath checks a path against the shapes Blame documents and
// returns its unescaped segments, products named by skuId.
func (s *Service) ParseBlamePath(path string) ([]string, error) {
	raw := strings.Split(strings.Trim(path, "/"), "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		if r == "" {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "path", "path %q is not a value of the state: it has an empty segment (e.g. users/alice/licenses/ENTERPRISEPACK)", domain.Echo(path))
		}
		u, err := url.PathUnescape(r)
		if err != nil {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "path", "path %q is not a value of the state: segment %d is not escaped right (e.g. users/alice/licenses/ENTERPRISEPACK)", domain.Echo(path), i+1)
		}
		segs[i] = u
	}
	for _, shape := range blamePaths {
		if len(segs) > len(shape) {
			continue
		}
		ok := true
		for i, sg := range segs {
			if shape[i] != "*" && shape[i] != sg {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		// membersWithLicenseErrors/{user}/{sku}, products/{sku}, …/licenses/{sku}
		for i := 1; i < len(segs); i++ {
			if shape[i] == "*" && (skuAfter[shape[i-1]] || (i >= 2 && shape[i-2] == "membersWithLicenseErrors")) && s.Catalog != nil {
				if p, ok := s.Catalog.Lookup(segs[i]); ok {
					segs[i] = p.SkuID
				}
			}
		}
		for i := range segs {
			segs[i] = seg(segs[i])
		}
		return segs, nil
	}
	return nil, domain.Errorf(domain.CodeInvalidRequest, "path", "path %q is not a value of the state: see docs/API.md for the paths (e.g. users/alice/licenses/ENTERPRISEPACK)", domain.Echo(path))
}
