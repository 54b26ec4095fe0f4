package domain

import (
	"strings"
	"testing"
)

// appendCase must case a key as strings does, so Lookup finds what it found
// before it stopped making a new string per lookup.
func TestAppendCaseIsStringsCase(t *testing.T) {
	for _, s := range []string{"", "SPB", "spb", "Spb-E3_x.9@", "c7df2760-2c81-4ef7-b578-5b5392b571df",
		"ÄÖü", "straße", "İstanbul", "ǅ", "\xff\xfe", strings.Repeat("aB", 70)} {
		if got := string(appendCase(nil, s, true)); got != strings.ToUpper(s) {
			t.Errorf("upper %q: %q, want %q", s, got, strings.ToUpper(s))
		}
		if got := string(appendCase(nil, s, false)); got != strings.ToLower(s) {
			t.Errorf("lower %q: %q, want %q", s, got, strings.ToLower(s))
		}
	}
}

func TestLookupByEitherCase(t *testing.T) {
	c := DefaultCatalog()
	p, ok := c.Lookup("spb")
	if !ok {
		t.Fatal("SPB not found by lower-case part number")
	}
	for _, k := range []string{"SPB", "Spb", p.SkuID, strings.ToUpper(p.SkuID)} {
		if q, ok := c.Lookup(k); !ok || q != p {
			t.Errorf("Lookup(%q) = %v, %v", k, q, ok)
		}
	}
	if q, ok := c.Lookup("ſpb"); !ok || q != p { // U+017F upper-cases to S, as it always did
		t.Errorf("Lookup(ſpb) = %v, %v", q, ok)
	}
}
