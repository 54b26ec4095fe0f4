package domain

import (
	"slices"
)

// Views derive what the admin center shows from the state. They are pure
// functions the read side and time travel share, so a rule lives only here.

// Product returns the product of a skuId the tenant refers to: a catalog
// product or one of the tenant's ISV apps.
func (c *Catalog) Product(t *Tenant, skuID string) (*Product, bool) {
	if t != nil {
		if p := t.Apps[skuID]; p != nil {
			return p, true
		}
	}
	return c.Lookup(skuID)
}

// LicenseView is one product of a user as the Active users page shows it.
type LicenseView struct {
	SkuID         string   `json:"skuId"`
	SkuPartNumber string   `json:"skuPartNumber,omitempty"`
	DisabledPlans []string `json:"disabledPlans"` // ids off in every active source
	EnabledPlans  []string `json:"enabledPlans"`  // ids on through some active source
	Sources       []string `json:"sources"`       // "direct", "selfService", "group:<id>"
	State         string   `json:"state"`         // Active, ActiveWithError, Error
	Error         string   `json:"error,omitempty"`
	ErrorDetail   string   `json:"errorDetail,omitempty"`
	ErrorGroups   []string `json:"errorGroups,omitempty"`
}

// ViewLicense computes the view of a user's license. A user holding a
// product from several sources has the union of their enabled plans.
func ViewLicense(c *Catalog, t *Tenant, l *UserLicense) LicenseView {
	v := LicenseView{SkuID: l.SkuID, Sources: l.SourceNames(), DisabledPlans: []string{}, EnabledPlans: []string{}}
	prod, _ := c.Product(t, l.SkuID)
	if prod != nil {
		v.SkuPartNumber = prod.SkuPartNumber
	}
	// The active sources' disabled plans (a user has few sources: no map).
	var activeBuf [4][]string
	active, errored := activeBuf[:0], 0
	for _, name := range v.Sources {
		s := l.Sources[name]
		if !s.Active() {
			errored++
			if v.Error == "" {
				v.Error, v.ErrorDetail = s.Error, s.ErrorDetail
			}
			if g, ok := GroupOfSource(name); ok {
				v.ErrorGroups = append(v.ErrorGroups, g)
			}
			continue
		}
		active = append(active, s.DisabledPlans)
	}
	if prod != nil {
		// A plan is enabled when some active source does not disable it.
		// The plans by id: the lists come out sorted.
		for _, sp := range c.planOrderOf(prod).byID {
			on := false
			for _, disabled := range active {
				if !contains(disabled, sp.ID) {
					on = true
					break
				}
			}
			if on {
				v.EnabledPlans = append(v.EnabledPlans, sp.ID)
			} else if len(active) > 0 {
				v.DisabledPlans = append(v.DisabledPlans, sp.ID)
			}
		}
	}
	switch {
	case errored == 0:
		v.State = "Active"
	case len(active) > 0:
		v.State = "ActiveWithError"
	default:
		v.State = "Error"
	}
	return v
}

// EnabledServices lists, by service plan name, what a user can use: the plans
// of their licenses and the services assigned tenant-wide (R15). A deleted
// user has none.
func EnabledServices(c *Catalog, t *Tenant, u *User) []string {
	if u == nil || u.Deleted {
		return []string{}
	}
	// The names of every plan on, sorted and each once: the licenses'
	// plans by name (each source's come sorted: one source, the most
	// common case, needs no sort), then merged with the auto-assigned
	// ones. Slices: a map per user cost more.
	var buf [32]string
	names, runs := buf[:0], 0
	for _, l := range u.Licenses {
		prod, ok := c.Product(t, l.SkuID)
		if !ok {
			continue
		}
		for _, s := range l.Sources {
			if !s.Active() {
				continue
			}
			runs++
			for _, sp := range c.planOrderOf(prod).byName {
				if !contains(s.DisabledPlans, sp.ID) {
					names = append(names, sp.Name)
				}
			}
		}
	}
	if runs > 1 {
		slices.Sort(names)
	}
	names = slices.Compact(names)
	auto := c.autoAssignedSorted()
	out := make([]string, 0, len(auto)+len(names)) // never nil: a view encodes [] not null
	i, j := 0, 0
	for i < len(auto) && j < len(names) {
		switch {
		case auto[i] < names[j]:
			out = append(out, auto[i])
			i++
		case auto[i] > names[j]:
			out = append(out, names[j])
			j++
		default:
			out = append(out, auto[i])
			i, j = i+1, j+1
		}
	}
	out = append(out, auto[i:]...)
	return append(out, names[j:]...)
}

// UserStatus is "Active" or "Deleted".
func UserStatus(u *User) string {
	if u.Deleted {
		return "Deleted"
	}
	return "Active"
}
