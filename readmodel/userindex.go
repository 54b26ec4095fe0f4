package readmodel

import (
	"strconv"
	"strings"
	"sync"
	"unicode"

	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The users list's filter and search indexes (docs/READMODELS.md, "Users
// indexes"). For each of the two orders (display name, user principal
// name) a tenant has one sorted set of all its users and one per filter
// value, all scored 0 and ordered lexically by their members. A user's
// member is the same string in every set of one order:
//
//	fold(sort field) \x00 id \x00 fold(other field)
//
// so a page of one set can be checked against the others with ZMSCORE, a
// cursor is a member, and a prefix of the folded field is a ZRANGEBYLEX
// range. The member of the other order is derived from it (OtherMember).

// The orders of the users list.
const (
	OrderDisplayName = "displayName"
	OrderUPN         = "userPrincipalName"
)

// The filters of the users list, as they name their sets.
const (
	FilterMember     = "type:Member"
	FilterGuest      = "type:Guest"
	FilterActive     = "status:active"
	FilterDeleted    = "status:deleted"
	FilterLicensed   = "licensed"   // holds a product through at least one working source
	FilterUnlicensed = "unlicensed" // holds none
	FilterError      = "error"      // some product of theirs is in error (a source that failed)
)

// FilterSku is the filter of the holders of a product (any source, errored
// ones included, like LicenseUsers).
func FilterSku(sku string) string {
	if f := skuFilterOf(sku); f != nil {
		return f.filter
	}
	return skuFilterPrefix + sku
}

const skuFilterPrefix = "sku:"

// skuFilter is a product's filter and its keys in the two orders.
type skuFilter struct {
	filter string
	keys   [2]string // display name, UPN
}

// skuFilters interns the filters of products and their keys: the
// projection names them for every user whose licenses change (two
// concatenations each before). Products are the catalog's and the apps
// tenants register; past maxSkuFilters of them the others are made anew
// each time.
var skuFilters struct {
	sync.RWMutex
	m map[string]*skuFilter // by SKU id
}

const maxSkuFilters = 4096

// skuFilterOf returns sku's interned filter, nil past maxSkuFilters.
func skuFilterOf(sku string) *skuFilter {
	skuFilters.RLock()
	f := skuFilters.m[sku]
	skuFilters.RUnlock()
	if f != nil {
		return f
	}
	skuFilters.Lock()
	defer skuFilters.Unlock()
	if f = skuFilters.m[sku]; f != nil {
		return f
	}
	if len(skuFilters.m) >= maxSkuFilters {
		return nil
	}
	if skuFilters.m == nil {
		skuFilters.m = map[string]*skuFilter{}
	}
	f = &skuFilter{filter: skuFilterPrefix + sku}
	for o, order := range []string{OrderDisplayName, OrderUPN} {
		f.keys[o] = UsersBy(order) + ":" + f.filter
	}
	skuFilters.m[sku] = f
	return f
}

// UsersBy is the key suffix of the sorted set of every user in order.
func UsersBy(order string) string {
	if order == OrderUPN {
		return "users:by:upn"
	}
	return "users:by:name"
}

// UsersByFilter is the key suffix of the sorted set of the users in order
// that pass filter.
func UsersByFilter(order, filter string) string {
	// The fixed filters' keys are made once: the projection names several
	// per user it writes.
	o := 0
	if order == OrderUPN {
		o = 1
	}
	for i, f := range fixedFilters {
		if f == filter {
			return fixedFilterKeys[o][i]
		}
	}
	if sku, ok := strings.CutPrefix(filter, skuFilterPrefix); ok {
		if f := skuFilterOf(sku); f != nil {
			return f.keys[o]
		}
	}
	return UsersBy(order) + ":" + filter
}

var fixedFilters = [...]string{FilterMember, FilterGuest, FilterActive, FilterDeleted, FilterLicensed, FilterUnlicensed, FilterError}

// fixedFilterKeys are the keys of fixedFilters by order (display name,
// UPN).
var fixedFilterKeys = func() (k [2][len(fixedFilters)]string) {
	for o, order := range []string{OrderDisplayName, OrderUPN} {
		for i, f := range fixedFilters {
			k[o][i] = UsersBy(order) + ":" + f
		}
	}
	return k
}()

// UsersDiverging is the key suffix of the sorted set, in order, of the
// users whose two folded fields share their first k bytes and differ at
// the next (k < MaxDiverge), or share at least MaxDiverge bytes (k =
// MaxDiverge). A search term of L bytes that is a prefix of a user's other
// field but not of this order's field is a prefix of the other field
// longer than what the fields share: such users are in the sets k < L of
// the other order, so a search reads those (small) sets instead of every
// match of the other field.
func UsersDiverging(order string, k int) string {
	return UsersBy(order) + ":diverge:" + strconv.Itoa(k)
}

// MaxDiverge is the last set of UsersDiverging (shared prefixes of at
// least MaxDiverge bytes).
const MaxDiverge = 15

// IndexedUser is what the indexes know of a user.
type IndexedUser struct {
	ID, DisplayName, UserPrincipalName, UserType string
	Deleted, Licensed, Errored                   bool
	Skus                                         []string // the products held, any source
}

// IndexEntry is one member of one index key (a tenant key suffix).
type IndexEntry struct{ Key, Member string }

// Filters returns the filters u passes (the <filter> of UsersByFilter).
func (u IndexedUser) Filters() []string {
	return u.AppendFilters(make([]string, 0, 4+len(u.Skus)))
}

// AppendFilters appends the filters u passes to filters (Filters into a
// caller's buffer).
func (u IndexedUser) AppendFilters(filters []string) []string {
	if u.UserType == "Guest" {
		filters = append(filters, FilterGuest)
	} else {
		filters = append(filters, FilterMember)
	}
	if u.Deleted {
		filters = append(filters, FilterDeleted)
	} else {
		filters = append(filters, FilterActive)
	}
	if u.Licensed {
		filters = append(filters, FilterLicensed)
	} else {
		filters = append(filters, FilterUnlicensed)
	}
	if u.Errored {
		filters = append(filters, FilterError)
	}
	for _, s := range u.Skus {
		filters = append(filters, FilterSku(s))
	}
	return filters
}

// Members returns u's member in the display-name order's sets and in the
// UPN order's, and the UsersDiverging set it is in (the same k in both).
func (u IndexedUser) Members() (byName, byUPN string, k int) {
	name, upn := Fold(u.DisplayName), Fold(u.UserPrincipalName)
	for k < len(name) && k < len(upn) && name[k] == upn[k] {
		k++
	}
	return name + "\x00" + u.ID + "\x00" + upn, upn + "\x00" + u.ID + "\x00" + name, min(k, MaxDiverge)
}

// Entries returns every index entry of u, in both orders.
func (u IndexedUser) Entries() []IndexEntry {
	filters := u.Filters()
	byName, byUPN, k := u.Members()
	out := make([]IndexEntry, 0, 2*(2+len(filters)))
	for _, o := range []struct{ order, m string }{{OrderDisplayName, byName}, {OrderUPN, byUPN}} {
		out = append(out, IndexEntry{UsersBy(o.order), o.m}, IndexEntry{UsersDiverging(o.order, k), o.m})
		for _, f := range filters {
			out = append(out, IndexEntry{UsersByFilter(o.order, f), o.m})
		}
	}
	return out
}

// SplitMember splits an index member into its sort field, the user id and
// the other order's field.
func SplitMember(m string) (field, id, other string, ok bool) {
	field, rest, ok := strings.Cut(m, "\x00")
	if !ok {
		return "", "", "", false
	}
	id, other, ok = strings.Cut(rest, "\x00")
	return field, id, other, ok
}

// OtherMember is the member of the same user in the other order's sets.
func OtherMember(m string) string {
	f, id, o, ok := SplitMember(m)
	if !ok {
		return m
	}
	return o + "\x00" + id + "\x00" + f
}

// Fold is the form of a name the indexes sort and search: lower case,
// accents (combining marks, after canonical decomposition) removed, NUL
// bytes dropped, so that "Élodie", "elodie" and "ELODIE" share a prefix.
// Safe for concurrent use.
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || s[i] == 0 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if r == 0 || unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return norm.NFC.String(b.String())
}
