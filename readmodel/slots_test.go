package readmodel_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestSlotIsTheClusterHashSlot: Slot computes what the cluster computes
// (CLUSTER KEYSLOT), hash tags included, and every slot marker lands in
// the slot it marks.
func TestSlotIsTheClusterHashSlot(t *testing.T) {
	rdb := redistest.Open(t, redistest.Cluster, 0)
	ctx := context.Background()
	keys := readmodel.Keys{Prefix: "sl:"}
	for _, k := range []string{"foo", "bar", "sl:{contoso}:meta", "sl:{}:x", "{a}{b}", "sl:tenants",
		"sl:checkpoint:readmodels", keys.Present(), "a{b", "a}b{c}", strings.Repeat("x", 300)} {
		want, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := readmodel.Slot(k); got != int(want) {
			t.Errorf("Slot(%q) = %d, the cluster says %d", k, got, want)
		}
	}
	for s := 0; s < readmodel.Slots; s += 97 {
		k := keys.SlotMarker(s)
		if got, _ := rdb.ClusterKeySlot(ctx, k).Result(); got != int64(s) {
			t.Fatalf("SlotMarker(%d) = %q is in slot %d", s, k, got)
		}
	}
	for s := range readmodel.Slots {
		if got := readmodel.Slot(keys.SlotMarker(s)); got != s {
			t.Fatalf("SlotMarker(%d) = %q is in slot %d", s, keys.SlotMarker(s), got)
		}
	}
	if got, want := readmodel.Slot(keys.TenantSlotMarker("contoso")), readmodel.Slot(keys.Key("contoso", readmodel.Meta)); got != want {
		t.Errorf("the slot marker of contoso is in slot %d, its keys in %d", got, want)
	}
	if !readmodel.IsMarker(strings.TrimPrefix(keys.SlotMarker(5), "sl:")) || readmodel.IsMarker("{contoso}:meta") {
		t.Error("IsMarker")
	}
}
