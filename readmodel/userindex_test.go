package readmodel

import (
	"slices"
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
