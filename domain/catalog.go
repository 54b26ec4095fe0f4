package domain

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Workloads a service plan belongs to. Exchange and OneDrive data is held
// when a license or user goes (R10).
const (
	WorkloadExchange   = "Exchange"
	WorkloadSharePoint = "SharePoint"
	WorkloadOneDrive   = "OneDrive"
	WorkloadTeams      = "Teams"
	WorkloadApps       = "Apps"
	WorkloadOther      = "Other"
)

// ServicePlan is an app or service inside a product ("Turn apps and services
// on or off").
type ServicePlan struct {
	ID          string `json:"servicePlanId"`
	Name        string `json:"servicePlanName"`
	DisplayName string `json:"displayName,omitempty"`
	Workload    string `json:"workload,omitempty"`
}

// Product is something a tenant buys subscriptions of: a Microsoft 365
// product of the catalog or an ISV app the tenant registered when buying it.
type Product struct {
	SkuID         string        `json:"skuId"`
	SkuPartNumber string        `json:"skuPartNumber"`
	DisplayName   string        `json:"displayName"`
	ServicePlans  []ServicePlan `json:"servicePlans"`
	// ISV apps only.
	Publisher  string `json:"publisher,omitempty"`
	InstallURL string `json:"installUrl,omitempty"`
}

// IsApp reports whether p is an ISV app (installable, R12).
func (p *Product) IsApp() bool { return p.Publisher != "" || p.InstallURL != "" }

// Plan returns the service plan of p with the given id or name.
func (p *Product) Plan(idOrName string) (ServicePlan, bool) {
	for _, sp := range p.ServicePlans {
		if sp.ID == idOrName || strings.EqualFold(sp.Name, idOrName) {
			return sp, true
		}
	}
	return ServicePlan{}, false
}

// ExclusiveGroup is a set of service plans no user may have enabled together
// (R6).
type ExclusiveGroup struct {
	Plans  []string `json:"plans"` // service plan names
	Reason string   `json:"reason"`
}

// Dependency says Plan may be enabled only while one of Requires is enabled
// for the same user (R7).
type Dependency struct {
	Plan     string   `json:"plan"`
	Requires []string `json:"requires"`
	Reason   string   `json:"reason"`
}

// Catalog is the set of products seatledger knows, with the relations between
// their service plans.
type Catalog struct {
	Products          []Product        `json:"products"`
	MutuallyExclusive []ExclusiveGroup `json:"mutuallyExclusive"`
	Dependencies      []Dependency     `json:"dependencies"`
	AutoAssigned      []string         `json:"autoAssigned"`

	bySku      map[string]*Product
	byPart     map[string]*Product
	exclusive  map[string][]int // plan name -> indexes into MutuallyExclusive
	dependsOn  map[string]*Dependency
	autoByName map[string]bool
	related    map[string]bool // plans named by an exclusive group or a dependency
	planIDs    map[string]bool // service plan ids, lower case
	planNames  map[string]bool // service plan names, upper case
	// orders holds each catalog product's plans sorted, for the views
	// (planOrderOf); autoSorted is AutoAssigned sorted, each name once.
	orders     map[*Product]*planOrder
	autoSorted []string
}

// planOrder is a product's service plans sorted by id and by name: the
// orders of the views' lists (ViewLicense, EnabledServices).
type planOrder struct {
	byID, byName []ServicePlan
}

func newPlanOrder(p *Product) *planOrder {
	o := &planOrder{byID: slices.Clone(p.ServicePlans), byName: slices.Clone(p.ServicePlans)}
	slices.SortFunc(o.byID, func(a, b ServicePlan) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(o.byName, func(a, b ServicePlan) int { return strings.Compare(a.Name, b.Name) })
	return o
}

// planOrderOf returns p's plans sorted: kept for the catalog's products,
// computed for others (an ISV app, a catalog not made by ParseCatalog).
func (c *Catalog) planOrderOf(p *Product) *planOrder {
	if o := c.orders[p]; o != nil {
		return o
	}
	return newPlanOrder(p)
}

// autoAssignedSorted is AutoAssigned sorted, each name once; not to be
// modified.
func (c *Catalog) autoAssignedSorted() []string {
	if c.orders != nil { // made by ParseCatalog
		return c.autoSorted
	}
	return slices.Compact(slices.Sorted(slices.Values(c.AutoAssigned)))
}

//go:embed catalog.json
var catalogJSON []byte

var (
	defaultCatalog     *Catalog
	defaultCatalogErr  error
	defaultCatalogOnce sync.Once
)

// DefaultCatalog returns the built-in catalog of Microsoft 365 products. It
// panics if the embedded data is broken, which a test rules out.
func DefaultCatalog() *Catalog {
	defaultCatalogOnce.Do(func() {
		defaultCatalog, defaultCatalogErr = ParseCatalog(catalogJSON)
	})
	if defaultCatalogErr != nil {
		panic(defaultCatalogErr)
	}
	return defaultCatalog
}

// ParseCatalog decodes and checks a catalog: unique sku ids and part numbers,
// and every plan named by a relation present in some product.
func ParseCatalog(data []byte) (*Catalog, error) {
	var c Catalog
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c.bySku = make(map[string]*Product, len(c.Products))
	c.byPart = make(map[string]*Product, len(c.Products))
	planNames := map[string]string{} // name -> id
	for i := range c.Products {
		p := &c.Products[i]
		if p.SkuID == "" || p.SkuPartNumber == "" || p.DisplayName == "" {
			return nil, fmt.Errorf("catalog: product %d lacks skuId, skuPartNumber or displayName", i)
		}
		key := strings.ToLower(p.SkuID)
		if c.bySku[key] != nil {
			return nil, fmt.Errorf("catalog: duplicate skuId %s", p.SkuID)
		}
		part := strings.ToUpper(p.SkuPartNumber)
		if c.byPart[part] != nil {
			return nil, fmt.Errorf("catalog: duplicate skuPartNumber %s", p.SkuPartNumber)
		}
		c.bySku[key], c.byPart[part] = p, p
		seen := map[string]bool{}
		for _, sp := range p.ServicePlans {
			if seen[sp.ID] {
				return nil, fmt.Errorf("catalog: %s lists service plan %s twice", p.SkuPartNumber, sp.ID)
			}
			seen[sp.ID] = true
			if id, ok := planNames[sp.Name]; ok && id != sp.ID {
				return nil, fmt.Errorf("catalog: service plan %s has two ids (%s, %s)", sp.Name, id, sp.ID)
			}
			planNames[sp.Name] = sp.ID
		}
	}
	c.planIDs, c.planNames = make(map[string]bool, len(planNames)), make(map[string]bool, len(planNames))
	for name, id := range planNames {
		c.planIDs[strings.ToLower(id)], c.planNames[strings.ToUpper(name)] = true, true
	}
	known := func(name string) error {
		if _, ok := planNames[name]; !ok {
			return fmt.Errorf("catalog: relation names service plan %s, which no product has", name)
		}
		return nil
	}
	c.related = map[string]bool{}
	c.exclusive = map[string][]int{}
	for i, g := range c.MutuallyExclusive {
		for _, n := range g.Plans {
			if err := known(n); err != nil {
				return nil, err
			}
			c.exclusive[n] = append(c.exclusive[n], i)
			c.related[n] = true
		}
	}
	c.dependsOn = map[string]*Dependency{}
	for i := range c.Dependencies {
		d := &c.Dependencies[i]
		if err := known(d.Plan); err != nil {
			return nil, err
		}
		for _, n := range d.Requires {
			if err := known(n); err != nil {
				return nil, err
			}
		}
		c.dependsOn[d.Plan] = d
		c.related[d.Plan] = true
		for _, n := range d.Requires {
			c.related[n] = true
		}
	}
	c.autoByName = map[string]bool{}
	for _, n := range c.AutoAssigned {
		if err := known(n); err != nil {
			return nil, err
		}
		c.autoByName[n] = true
	}
	c.autoSorted = slices.Compact(slices.Sorted(slices.Values(c.AutoAssigned)))
	c.orders = make(map[*Product]*planOrder, len(c.Products))
	for i := range c.Products {
		c.orders[&c.Products[i]] = newPlanOrder(&c.Products[i])
	}
	return &c, nil
}

// Lookup finds a catalog product by skuId or skuPartNumber (case-insensitive).
func (c *Catalog) Lookup(skuOrPart string) (*Product, bool) {
	var buf [64]byte // most names fit: look them up without a new string
	if p := c.bySku[string(appendCase(buf[:0], skuOrPart, false))]; p != nil {
		return p, true
	}
	p := c.byPart[string(appendCase(buf[:0], skuOrPart, true))]
	return p, p != nil
}

// appendCase appends s in upper (or lower) case to b, as strings.ToUpper
// (strings.ToLower) would write it.
func appendCase(b []byte, s string, upper bool) []byte {
	from, to := byte('A'), byte('a')
	if upper {
		from, to = 'a', 'A'
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf { // not ASCII: leave it to strings
			if upper {
				return append(b[:0], strings.ToUpper(s)...)
			}
			return append(b[:0], strings.ToLower(s)...)
		}
		if from <= c && c < from+26 {
			c += to - from
		}
		b = append(b, c)
	}
	return b
}

// HasPlanID reports whether a catalog product has a service plan of this id
// (case-insensitive).
func (c *Catalog) HasPlanID(id string) bool { return c.planIDs[strings.ToLower(id)] }

// HasPlanName reports whether a catalog product has a service plan of this
// name (case-insensitive).
func (c *Catalog) HasPlanName(name string) bool { return c.planNames[strings.ToUpper(name)] }

// IsAutoAssigned reports whether the service plan is assigned tenant-wide
// automatically (R15).
func (c *Catalog) IsAutoAssigned(planName string) bool { return c.autoByName[planName] }

// AutoAssignedPlans lists the service plans every member has without a
// license (R15), sorted by name.
func (c *Catalog) AutoAssignedPlans() []string {
	out := append([]string(nil), c.AutoAssigned...)
	sort.Strings(out)
	return out
}

// exclusiveConflicts returns the first pair of plans in enabled (plan
// names, sorted, without repeats) that belong to one mutually exclusive
// group, with the group's reason.
func (c *Catalog) exclusiveConflicts(enabled []string) ([]string, string) {
	for _, n := range enabled {
		for _, gi := range c.exclusive[n] {
			for _, other := range c.MutuallyExclusive[gi].Plans {
				if other != n && sortedHas(enabled, other) {
					pair := []string{n, other}
					sort.Strings(pair)
					return pair, c.MutuallyExclusive[gi].Reason
				}
			}
		}
	}
	return nil, ""
}

// missingDependency returns a plan of enabled (plan names, sorted, without
// repeats) whose requirement is not met.
func (c *Catalog) missingDependency(enabled []string) (*Dependency, bool) {
	for _, n := range enabled {
		d := c.dependsOn[n]
		if d == nil {
			continue
		}
		met := false
		for _, r := range d.Requires {
			if sortedHas(enabled, r) {
				met = true
				break
			}
		}
		if !met {
			return d, true
		}
	}
	return nil, false
}

// sortedHas reports whether the sorted names hold name.
func sortedHas(names []string, name string) bool {
	_, ok := slices.BinarySearch(names, name)
	return ok
}
