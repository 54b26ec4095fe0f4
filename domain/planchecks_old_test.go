package domain

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// The map versions of exclusiveConflicts and missingDependency, as they
// were before they took sorted slices: the oracle of
// TestPlanChecksMatchTheMapVersions.
func oldExclusiveConflicts(c *Catalog, enabled map[string]bool) ([]string, string) {
	names := slices.Sorted(maps.Keys(enabled))
	for _, n := range names {
		for _, gi := range c.exclusive[n] {
			for _, other := range c.MutuallyExclusive[gi].Plans {
				if other != n && enabled[other] {
					pair := []string{n, other}
					sort.Strings(pair)
					return pair, c.MutuallyExclusive[gi].Reason
				}
			}
		}
	}
	return nil, ""
}

func oldMissingDependency(c *Catalog, enabled map[string]bool) (*Dependency, bool) {
	for _, n := range slices.Sorted(maps.Keys(enabled)) {
		d := c.dependsOn[n]
		if d == nil {
			continue
		}
		met := false
		for _, r := range d.Requires {
			if enabled[r] {
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

// The slice versions give the map versions' answers on random sets of the
// catalog's related plans (and a few unrelated ones).
func TestPlanChecksMatchTheMapVersions(t *testing.T) {
	c := DefaultCatalog()
	pool := slices.Sorted(maps.Keys(c.related))
	pool = append(pool, "EXCHANGE_S_STANDARD_X", "UNRELATED_PLAN", "AAA")
	r := rand.New(rand.NewPCG(1, 22))
	conflicts, missing := 0, 0
	for i := 0; i < 20_000; i++ {
		enabled := map[string]bool{}
		for n := r.IntN(8); n > 0; n-- {
			enabled[pool[r.IntN(len(pool))]] = true
		}
		names := slices.Sorted(maps.Keys(enabled))
		p1, r1 := oldExclusiveConflicts(c, enabled)
		p2, r2 := c.exclusiveConflicts(names)
		if !reflect.DeepEqual(p1, p2) || r1 != r2 {
			t.Fatalf("%v: exclusive %v %q, want %v %q", names, p2, r2, p1, r1)
		}
		d1, m1 := oldMissingDependency(c, enabled)
		d2, m2 := c.missingDependency(names)
		if d1 != d2 || m1 != m2 {
			t.Fatalf("%v: dependency %v %v, want %v %v", names, d2, m2, d1, m1)
		}
		if p1 != nil {
			conflicts++
		}
		if m1 {
			missing++
		}
	}
	if conflicts < 100 || missing < 100 {
		t.Fatalf("only %d conflicts and %d missing dependencies: the sets test too little", conflicts, missing)
	}
}
