package readmodel

import (
	"slices"
	"strconv"
	"testing"
)

func TestFoldIgnoresCaseAndAccents(t *testing.T) {
	for in, want := range map[string]string{
		"Élodie": "elodie", "ELOÏSE": "eloise", "Zoë": "zoe", "e\u0301lan": "elan", // a combining acute
		"Søren": "søren", "plain": "plain", "a\x00b": "ab", "ÅNGSTRÖM": "angstrom",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

// A user is filed, in both orders, under every filter it passes and under
// the length of the prefix its two folded fields share.
func TestIndexedUserEntries(t *testing.T) {
	u := IndexedUser{ID: "u1", DisplayName: "Élodie Durand", UserPrincipalName: "elodie.durand@x", UserType: "Guest",
		Licensed: true, Errored: true, Skus: []string{"s1"}}
	name := "elodie durand\x00u1\x00elodie.durand@x"
	upn := "elodie.durand@x\x00u1\x00elodie durand"
	got := u.Entries()
	for _, want := range []IndexEntry{
		{"users:by:name", name}, {"users:by:name:type:Guest", name}, {"users:by:name:status:active", name},
		{"users:by:name:licensed", name}, {"users:by:name:error", name}, {"users:by:name:sku:s1", name},
		{"users:by:name:diverge:6", name}, {"users:by:upn:diverge:6", upn}, {"users:by:upn:sku:s1", upn},
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no entry %q", want)
		}
	}
	if len(got) != 2*7 {
		t.Errorf("%d entries, want 14: %q", len(got), got)
	}
	if OtherMember(name) != upn {
		t.Errorf("OtherMember(%q) = %q", name, OtherMember(name))
	}
}

// TestUsersByFilterKeys: the keys made once for the fixed filters are the
// ones built for any filter.
func TestUsersByFilterKeys(t *testing.T) {
	for _, order := range []string{OrderDisplayName, OrderUPN} {
		for _, f := range []string{FilterMember, FilterGuest, FilterActive, FilterDeleted, FilterLicensed, FilterUnlicensed, FilterError,
			FilterSku("SPB"), "other"} {
			if got, want := UsersByFilter(order, f), UsersBy(order)+":"+f; got != want {
				t.Errorf("UsersByFilter(%s, %s) = %s, want %s", order, f, got, want)
			}
		}
	}
}

// The interned filters of products and their keys are the ones built
// for any filter, for as many products as are interned and past that.
func TestSkuFiltersInternedAndPast(t *testing.T) {
	for i := range maxSkuFilters + 10 {
		sku := "sku-" + strconv.Itoa(i)
		if got, want := FilterSku(sku), "sku:"+sku; got != want {
			t.Fatalf("FilterSku(%s) = %s, want %s", sku, got, want)
		}
		for _, order := range []string{OrderDisplayName, OrderUPN} {
			if got, want := UsersByFilter(order, FilterSku(sku)), UsersBy(order)+":sku:"+sku; got != want {
				t.Fatalf("UsersByFilter(%s, %s) = %s, want %s", order, FilterSku(sku), got, want)
			}
		}
	}
	u := IndexedUser{ID: "u", Licensed: true, Skus: []string{"a", "b"}}
	var buf [2]string
	if got := u.AppendFilters(buf[:0]); !slices.Equal(got, u.Filters()) ||
		!slices.Equal(got, []string{FilterMember, FilterActive, FilterLicensed, "sku:a", "sku:b"}) {
		t.Fatalf("AppendFilters = %q, Filters = %q", got, u.Filters())
	}
}
