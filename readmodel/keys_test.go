package readmodel_test

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
)

// hashTag returns the part of key Redis Cluster hashes: the first {…}.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func TestEveryTenantKeySharesTheTenantsHashSlot(t *testing.T) {
	k := readmodel.Keys{Prefix: "sl:r1:"}
	suffixes := []string{readmodel.Meta, readmodel.Licenses, readmodel.Subscriptions, readmodel.Apps,
		readmodel.Users, readmodel.UsersIndex, readmodel.Groups, readmodel.Held, readmodel.HeldIndex,
		readmodel.HeldDue, readmodel.LicenseUsers("SPB"), readmodel.GroupMembers("g1"), readmodel.GroupErrors("g1")}
	for _, s := range suffixes {
		key := k.Key("contoso", s)
		if !strings.HasPrefix(key, k.Prefix) || hashTag(key) != "contoso" {
			t.Errorf("key %q: want prefix %q and hash tag contoso", key, k.Prefix)
		}
	}
	if hashTag(k.Present()) != hashTag(k.Building()) {
		t.Errorf("markers %q and %q are in different slots", k.Present(), k.Building())
	}
}

func TestSplitHeldMemberInvertsHeldMember(t *testing.T) {
	u, w, ok := readmodel.SplitHeldMember(readmodel.HeldMember("alice", "exchange"))
	if !ok || u != "alice" || w != "exchange" {
		t.Fatalf("got %q %q %v", u, w, ok)
	}
}

func TestActivePrefixDefaultsOnceAndSwaps(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	if p, err := readmodel.ActivePrefix(ctx, rdb); err != nil || p != readmodel.DefaultPrefix {
		t.Fatalf("ActivePrefix on an empty Redis = %q, %v; want %q", p, err, readmodel.DefaultPrefix)
	}
	if err := readmodel.SetActivePrefix(ctx, rdb, "sl:r2:"); err != nil {
		t.Fatal(err)
	}
	if p, err := readmodel.ActivePrefix(ctx, rdb); err != nil || p != "sl:r2:" {
		t.Fatalf("ActivePrefix after a swap = %q, %v", p, err)
	}
	if err := readmodel.SetActivePrefix(ctx, rdb, ""); err == nil {
		t.Fatal("SetActivePrefix accepted an empty prefix")
	}
	key := readmodel.Keys{Prefix: "sl:"}.Checkpoint("readmodels")
	if pos, err := readmodel.ReadCheckpoint(ctx, rdb, key); err != nil || pos != eventstore.Start {
		t.Fatalf("missing checkpoint = %d, %v; want Start", pos, err)
	}
	rdb.Set(ctx, key, 42, 0)
	if pos, err := readmodel.ReadCheckpoint(ctx, rdb, key); err != nil || pos != 42 {
		t.Fatalf("checkpoint = %d, %v; want 42", pos, err)
	}
}
