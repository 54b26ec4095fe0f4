package history

import (
	"context"
	"testing"
)

// TestAuditPrefiltersKeepTheAnswer: the type and actor filters are
// checked on the stored event before it is decoded; every filter still
// answers exactly the records of the unfiltered log it matches.
func TestAuditPrefiltersKeepTheAnswer(t *testing.T) {
	ctx := context.Background()
	w := randomWorkload(t, 11, 120)
	all, err := w.svc.Audit(ctx, "t", Filter{}, "", false, 500)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Filter{
		{Actor: "operator"}, {Actor: "admin"}, {Actor: "user:admin"}, {Actor: "system:scheduler"}, {Actor: "ann"},
		{Type: "licenseassigned"}, {Type: "GroupCreated", Actor: "admin"}, {User: "ann"}, {User: "ann", Actor: "admin"},
		{Actor: "adm"}, // a prefix of an actor is not that actor
	} {
		var want []uint64
		for _, r := range all.Records {
			if f.matches(r) {
				want = append(want, r.Version)
			}
		}
		p, err := w.svc.Audit(ctx, "t", f, "", false, 500)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, r := range p.Records {
			got = append(got, r.Version)
		}
		if len(got) != len(want) {
			t.Fatalf("%+v: %d records %v, want %d %v", f, len(got), got, len(want), want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%+v: %v, want %v", f, got, want)
			}
		}
	}
}
