package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// On a Redis Cluster a master that restarts without persistence comes back
// empty but still owning its hash slots: the read models lose the tenants
// (and whatever global key) of those slots while the rest, the Present
// marker perhaps included, survive. One marker cannot tell that. So a
// prefix built on a cluster also carries a slot marker in every hash slot
// (SlotMarker, 16384 small keys), laid when its build starts (MarkSlots) and
// checked before it is marked Present:
//
//   - a tenant's keys and the marker of its slot live and die together (same
//     slot, same master), so a query that finds the marker of the tenant's
//     slot reads a slot whose data the build wrote (TenantSlotMarker);
//   - a master that lost its data lost the markers of all its slots, so
//     looking at one slot per range of slots finds it (MissingSlots).
//
// On one Redis server none of this is needed (its data is lost whole,
// markers included) and none of it is written.

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// crcTable is the CRC-16/XMODEM table (polynomial 0x1021) Redis Cluster
// hashes keys with.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16(s string) uint16 {
	var c uint16
	for i := 0; i < len(s); i++ {
		c = c<<8 ^ crcTable[byte(c>>8)^s[i]]
	}
	return c
}

// Slot returns the hash slot of key as Redis Cluster computes it: of the
// content of the first {…} when it is not empty, else of the whole key.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % Slots)
}

// slotTagPrefix begins every slot marker's hash tag. ':' is not allowed in
// a tenant id, so no tenant's tag looks like one.
const slotTagPrefix = "slot:"

// slotTags holds, for every slot, a hash tag hashing to it: "slot:" and the
// smallest base-36 number that does (found once, about 170,000 hashes).
var slotTags = sync.OnceValue(func() []string {
	tags := make([]string, Slots)
	left := Slots
	for n := uint64(0); left > 0; n++ {
		tag := slotTagPrefix + strconv.FormatUint(n, 36)
		if s := crc16(tag) % Slots; tags[s] == "" {
			tags[s] = tag
			left--
		}
	}
	return tags
})

// SlotMarker is the key of the slot marker of hash slot slot (0 ≤ slot <
// Slots): P{slot:<n>}:marker, where slot:<n> hashes to slot.
func (k Keys) SlotMarker(slot int) string {
	return k.Prefix + "{" + slotTags()[slot] + "}:marker"
}

// TenantSlotMarker is the slot marker in the slot of tenant t's keys.
func (k Keys) TenantSlotMarker(t string) string {
	return k.SlotMarker(int(crc16(t) % Slots))
}

// isSlotMarker reports whether key (without the prefix) is a slot marker.
func isSlotMarker(key string) bool {
	rest, ok := strings.CutPrefix(key, "{"+slotTagPrefix)
	if !ok {
		return false
	}
	n, ok := strings.CutSuffix(rest, "}:marker")
	return ok && n != "" && !strings.ContainsAny(n, "{}")
}

// IsMarker reports whether key, a key of a prefix without the prefix (as
// DumpPrefix names them), is one of the prefix's markers: Present,
// Building, or a slot marker. Markers say how complete a prefix is, not
// what it holds: comparisons of read models leave them out.
func IsMarker(key string) bool {
	var unprefixed Keys
	return key == unprefixed.Present() || key == unprefixed.Building() || isSlotMarker(key)
}

// IsCluster reports whether rdb is a Redis Cluster client.
func IsCluster(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.ClusterClient)
	return ok
}

// MarkSlots writes the slot markers of prefix (a cluster only; nothing on
// one server). A build lays them before it writes its first read model.
func MarkSlots(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	if !IsCluster(rdb) {
		return nil
	}
	k := Keys{Prefix: prefix}
	now := time.Now().UTC().Format(time.RFC3339)
	for from := 0; from < Slots; from += 4096 {
		pipe := rdb.Pipeline()
		for s := from; s < from+4096; s++ {
			pipe.Set(ctx, k.SlotMarker(s), now, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("readmodel: write the slot markers of %s: %w", prefix, err)
		}
	}
	return nil
}

// MissingSlots returns how many slot markers of prefix are missing (0 on
// one server, which has none). With all, every slot is looked at (a build
// does it before it marks a prefix Present); else only the first slot of
// each range of slots a master serves (CLUSTER SLOTS): enough to notice a
// master that lost its data, cheap enough for a check every second.
func MissingSlots(ctx context.Context, rdb redis.UniversalClient, prefix string, all bool) (int, error) {
	if !IsCluster(rdb) {
		return 0, nil
	}
	var slots []int
	if all {
		slots = make([]int, Slots)
		for s := range slots {
			slots[s] = s
		}
	} else {
		ranges, err := rdb.ClusterSlots(ctx).Result()
		if err != nil {
			return 0, fmt.Errorf("readmodel: read the cluster's slots: %w", err)
		}
		for _, r := range ranges {
			slots = append(slots, int(r.Start))
		}
		if len(slots) == 0 {
			return 0, errors.New("readmodel: the cluster serves no slot")
		}
	}
	k := Keys{Prefix: prefix}
	missing := 0
	for len(slots) > 0 {
		n := min(len(slots), 4096)
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, n)
		for i, s := range slots[:n] {
			cmds[i] = pipe.Exists(ctx, k.SlotMarker(s))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("readmodel: read the slot markers of %s: %w", prefix, err)
		}
		for _, c := range cmds {
			if c.Val() == 0 {
				missing++
			}
		}
		slots = slots[n:]
	}
	return missing, nil
}

// Complete reports whether the read models under prefix are complete up to
// its checkpoint: its Present marker is set and, on a cluster, every slot
// marker is there (all: every slot; else one per range, see MissingSlots).
func Complete(ctx context.Context, rdb redis.UniversalClient, prefix string, all bool) (bool, error) {
	n, err := rdb.Exists(ctx, Keys{Prefix: prefix}.Present()).Result()
	if err != nil || n == 0 {
		return false, err
	}
	missing, err := MissingSlots(ctx, rdb, prefix, all)
	return missing == 0, err
}
