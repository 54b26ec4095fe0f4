package readmodel_test

import (
	"context"
	"slices"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/readmodel"
)

func TestSplitTenantKey(t *testing.T) {
	k := readmodel.Keys{Prefix: "sl:"}
	for key, want := range map[string][2]string{
		k.Key("contoso", readmodel.Meta):                {"contoso", "meta"},
		k.Key("contoso", readmodel.GroupMembers("g:1")): {"contoso", "group:g:1:members"},
	} {
		tn, s, ok := k.SplitTenantKey(key)
		if !ok || tn != want[0] || s != want[1] {
			t.Errorf("%s: %q %q %v", key, tn, s, ok)
		}
	}
	for _, key := range []string{k.Tenants(), k.Checkpoint("readmodels"), k.Present(), k.Building(), k.SlotMarker(0), k.SlotMarker(readmodel.Slots - 1),
		"sl:r1:{contoso}:meta", "{contoso}:meta", "sl:{}:meta", "sl:{contoso"} {
		if tn, s, ok := k.SplitTenantKey(key); ok {
			t.Errorf("%s: split into %q %q", key, tn, s)
		}
	}
}

// ScanTenantKeys hands over the keys of tenants, and only them: not the
// prefix's other keys, nor those of a nested prefix or of leases.
func TestScanTenantKeys(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	k := readmodel.Keys{Prefix: "sl:"}
	var want []string
	for _, tn := range []string{"a", "b.c", "marker"} {
		for _, s := range []string{readmodel.Meta, readmodel.UsersIndex, readmodel.LicenseUsers("SPB")} {
			key := k.Key(tn, s)
			m.Set(key, "x")
			want = append(want, key)
		}
	}
	for _, other := range []string{k.Tenants(), k.Checkpoint("readmodels"), k.Present(), k.Building(), k.SlotMarker(0), k.SlotMarker(readmodel.Slots - 1),
		"sl:r1:{a}:meta", "{lease:projection}", "sl:{bad id}:meta", readmodel.ActivePrefixKey} {
		m.Set(other, "x")
	}
	var got []string
	calls := 0
	err := readmodel.ScanTenantKeys(ctx, rdb, "sl:", func(ks []string) error {
		calls++
		got = append(got, ks...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || calls == 0 {
		t.Errorf("got %v, want %v", got, want)
	}
}
