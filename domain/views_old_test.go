package domain

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// oldViewLicense, oldSourceNames and oldEnabledServices are the views as they were with a
// map per call (before 2026-12-07): the oracle of
// TestViewsMatchTheMapVersions.
func oldViewLicense(c *Catalog, t *Tenant, l *UserLicense) LicenseView {
	v := LicenseView{SkuID: l.SkuID, Sources: oldSourceNames(l), DisabledPlans: []string{}, EnabledPlans: []string{}}
	prod, _ := c.Product(t, l.SkuID)
	if prod != nil {
		v.SkuPartNumber = prod.SkuPartNumber
	}
	enabled := map[string]bool{}
	active, errored := 0, 0
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
		active++
		if prod == nil {
			continue
		}
		for _, sp := range prod.ServicePlans {
			if !contains(s.DisabledPlans, sp.ID) {
				enabled[sp.ID] = true
			}
		}
	}
	if prod != nil {
		for _, sp := range prod.ServicePlans {
			if enabled[sp.ID] {
				v.EnabledPlans = append(v.EnabledPlans, sp.ID)
			} else if active > 0 {
				v.DisabledPlans = append(v.DisabledPlans, sp.ID)
			}
		}
	}
	sort.Strings(v.EnabledPlans)
	sort.Strings(v.DisabledPlans)
	switch {
	case errored == 0:
		v.State = "Active"
	case active > 0:
		v.State = "ActiveWithError"
	default:
		v.State = "Error"
	}
	return v
}

func oldSourceNames(l *UserLicense) []string {
	out := slices.AppendSeq(make([]string, 0, len(l.Sources)), maps.Keys(l.Sources))
	slices.Sort(out)
	sort.SliceStable(out, func(i, j int) bool { return sourceRank(out[i]) < sourceRank(out[j]) })
	return out
}

func oldEnabledServices(c *Catalog, t *Tenant, u *User) []string {
	if u == nil || u.Deleted {
		return []string{}
	}
	set := map[string]bool{}
	for _, n := range c.AutoAssigned {
		set[n] = true
	}
	for _, l := range u.Licenses {
		prod, ok := c.Product(t, l.SkuID)
		if !ok {
			continue
		}
		for _, s := range l.Sources {
			if !s.Active() {
				continue
			}
			for _, sp := range prod.ServicePlans {
				if !contains(s.DisabledPlans, sp.ID) {
					set[sp.Name] = true
				}
			}
		}
	}
	out := slices.AppendSeq(make([]string, 0, len(set)), maps.Keys(set))
	slices.Sort(out)
	return out
}

// TestViewsMatchTheMapVersions: ViewLicense and EnabledServices give what
// their former versions gave (nil and empty slices alike) on random users:
// products of the catalog, an ISV app (with a duplicate plan id), an
// unknown sku; one to four sources, active or in error, with random
// disabled plans (some not in the product).
func TestViewsMatchTheMapVersions(t *testing.T) {
	// The catalog, and one not made by ParseCatalog (no sorted orders
	// kept; auto-assigned names unsorted and repeated).
	for _, c := range []*Catalog{DefaultCatalog(), {AutoAssigned: []string{"SWAY", "Alpha", "SWAY", "Beta"}}} {
		checkViewsMatchTheMapVersions(t, c)
	}
}

func checkViewsMatchTheMapVersions(t *testing.T, c *Catalog) {
	rng := rand.New(rand.NewPCG(22, 7))
	app := &Product{SkuID: "isv-app", SkuPartNumber: "ISV", DisplayName: "App",
		ServicePlans: []ServicePlan{{ID: "p1", Name: "Zeta"}, {ID: "p2", Name: "Alpha"}, {ID: "p1", Name: "Zeta"}, {ID: "p3", Name: "SWAY"}}}
	skus := []string{"isv-app", "unknown-sku"}
	for _, p := range c.Products {
		skus = append(skus, p.SkuID)
	}
	planIDs := func(sku string) []string {
		p, _ := c.Product(nil, sku)
		if sku == app.SkuID {
			p = app
		}
		ids := []string{"not-a-plan"}
		if p != nil {
			for _, sp := range p.ServicePlans {
				ids = append(ids, sp.ID)
			}
		}
		return ids
	}
	sources := []string{SourceDirect, SourceSelfService, GroupSource("g1"), GroupSource("g2"), GroupSource("g3"), GroupSource(""), "other"}
	for i := range 20000 {
		ten := NewTenant()
		if rng.IntN(2) == 0 {
			ten.Apps[app.SkuID] = app
		}
		u := &User{ID: "u", Deleted: rng.IntN(10) == 0, Licenses: map[string]*UserLicense{}}
		for range rng.IntN(4) {
			sku := skus[rng.IntN(len(skus))]
			l := &UserLicense{SkuID: sku, Sources: map[string]*LicenseSource{}}
			ids := planIDs(sku)
			for range 1 + rng.IntN(4) {
				s := &LicenseSource{}
				for range rng.IntN(4) {
					s.DisabledPlans = append(s.DisabledPlans, ids[rng.IntN(len(ids))])
				}
				if rng.IntN(4) == 0 {
					s.Error, s.ErrorDetail = "CountViolation", "detail"
				}
				l.Sources[sources[rng.IntN(len(sources))]] = s
			}
			u.Licenses[sku] = l
			if got, want := ViewLicense(c, ten, l), oldViewLicense(c, ten, l); !reflect.DeepEqual(got, want) {
				t.Fatalf("case %d: ViewLicense of %+v:\n got %#v\nwant %#v", i, l, got, want)
			}
		}
		if got, want := EnabledServices(c, ten, u), oldEnabledServices(c, ten, u); !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: EnabledServices of %+v:\n got %#v\nwant %#v", i, u, got, want)
		}
	}
}
