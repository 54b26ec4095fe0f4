package projections

import (
	"strconv"
	"testing"

	"github.com/seatledger/seatledger/readmodel"
)

// A tenant's kept keys are Keys.Key's, for as many suffixes as are kept
// and past that, asked once or again.
func TestTenantKeysAreKeysKey(t *testing.T) {
	k := readmodel.Keys{Prefix: "sl:x:"}
	tk := newTenantKeys(k, "t1")
	for round := range 2 {
		for i := range 2 * maxTenantKeys {
			suffix := "group:g" + strconv.Itoa(i) + ":members"
			if got, want := tk.of(suffix), k.Key("t1", suffix); got != want {
				t.Fatalf("round %d: key(%s) = %s, want %s", round, suffix, got, want)
			}
		}
	}
	if len(tk.keys) != maxTenantKeys {
		t.Fatalf("%d keys kept, want %d", len(tk.keys), maxTenantKeys)
	}
}
