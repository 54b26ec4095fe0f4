package commands

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// Many writers change one tenant at once: assign and unassign a product of
// two licenses among six users, add them to and remove them from a group
// that gives it, delete and restore them, and change the quantity. Folding the stream event by event, no count is ever negative
// or past the total, no user holds the product twice, the users holding it
// are the assigned count, and every acknowledged command's events are in
// the stream where its answer says.
func TestConflictingWritersKeepTheCounts(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) (eventstore.Store, []*Handler){
		"queued": func(t *testing.T) (eventstore.Store, []*Handler) {
			s := openStore(t)
			return s, []*Handler{newHandler(s, nil, time.Now)}
		},
		"plain": func(t *testing.T) (eventstore.Store, []*Handler) {
			s := &countingStore{Store: openStore(t)}
			return s, []*Handler{newHandler(s, nil, time.Now)}
		},
		"two nodes": func(t *testing.T) (eventstore.Store, []*Handler) {
			a, b := sharedStores(t)
			return a, []*Handler{newHandler(a, nil, time.Now), newHandler(b, nil, time.Now)}
		},
	} {
		t.Run(name, func(t *testing.T) {
			store, hs := open(t)
			for _, h := range hs {
				defer h.Close()
			}
			users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
			createTenant(t, hs[0], "t1", users...)
			must(t, hs[0], &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 2})
			must(t, hs[0], &domain.CreateGroup{CommandMeta: meta("t1", admin), GroupID: "g", DisplayName: "G"})
			must(t, hs[0], &domain.AssignGroupLicenses{CommandMeta: meta("t1", admin), GroupID: "g", Add: []domain.LicenseRequest{{SkuID: "SPB"}}})
			var mu sync.Mutex
			var acked []Result
			byKey := map[int][]Result{}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h := hs[w%len(hs)]
					r := rand.New(rand.NewPCG(uint64(w), 7))
					for range 40 {
						m := meta("t1", admin)
						key := -1
						if r.IntN(3) == 0 {
							// A keyed request, sent by several writers: its
							// body follows from its key.
							key = r.IntN(20)
							m.CommandID, m.RequestHash = fmt.Sprint("idem-", key), fmt.Sprint("h", key)
							r = rand.New(rand.NewPCG(uint64(key), 11))
						}
						u := users[r.IntN(len(users))]
						var c domain.Command
						switch r.IntN(9) {
						case 0, 1:
							c = &domain.AssignLicenses{CommandMeta: m, SkuID: "SPB", Users: []string{u}}
						case 2:
							c = &domain.UnassignLicenses{CommandMeta: m, SkuID: "SPB", Users: []string{u}}
						case 3:
							c = &domain.DeleteUser{CommandMeta: m, UserID: u}
						case 4:
							c = &domain.RestoreUser{CommandMeta: m, UserID: u}
						case 6:
							c = &domain.AddGroupMember{CommandMeta: m, GroupID: "g", UserID: u}
						case 7:
							c = &domain.RemoveGroupMember{CommandMeta: m, GroupID: "g", UserID: u}
						default:
							c = &domain.ChangeSubscriptionQuantity{CommandMeta: m, SubscriptionID: "s", Quantity: 1 + r.IntN(3)}
						}
						if key >= 0 {
							r = rand.New(rand.NewPCG(uint64(w), r.Uint64()))
						}
						res, err := h.Handle(context.Background(), c)
						if err != nil {
							continue // refused by a rule: nothing to check but the stream
						}
						mu.Lock()
						acked = append(acked, res)
						if key >= 0 {
							byKey[key] = append(byKey[key], res)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			recs, err := store.ReadStream(context.Background(), tenantstream.Name("t1"), 1, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			st := domain.NewTenant()
			for _, rec := range recs {
				e, err := eventcodec.Decode(rec.Data, nil)
				if err != nil {
					t.Fatal(err)
				}
				domain.Evolve(st, e)
				for sku, p := range st.Pools {
					holders := 0
					for _, u := range st.Users {
						if l := u.Licenses[sku]; l != nil && slices.ContainsFunc(slices.Collect(maps.Values(l.Sources)), (*domain.LicenseSource).Active) {
							holders++ // once, whatever the number of sources (R11)
						}
					}
					if p.Assigned < 0 || p.Total < 0 || p.Assigned > p.Total || holders != p.Assigned {
						t.Fatalf("at version %d (%s): pool %+v, %d users hold it", rec.Version, e.Type, *p, holders)
					}
				}
			}
			for _, r := range acked {
				first := r.Version - uint64(len(r.Raw)) + 1
				for i, raw := range r.Raw {
					v := first + uint64(i)
					if v == 0 || v > uint64(len(recs)) || string(recs[v-1].Data) != string(raw) {
						t.Fatalf("an acknowledged event at version %d is not in the stream as answered", v)
					}
				}
			}
			// Every node's state is the fold of the stream.
			want, err := st.MarshalSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range hs {
				err := h.View(context.Background(), "t1", func(got *domain.Tenant) error {
					b, err := got.MarshalSnapshot()
					if err == nil && string(b) != string(want) {
						err = fmt.Errorf("node %d's state at version %d is not the fold of the stream (version %d)", i, got.Version, st.Version)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for key, rs := range byKey {
				for _, r := range rs[1:] {
					if r.Version != rs[0].Version || len(r.Raw) != len(rs[0].Raw) || string(r.Raw[0]) != string(rs[0].Raw[0]) {
						t.Fatalf("key %d answered version %d and %d", key, rs[0].Version, r.Version)
					}
				}
			}
			if len(acked) < 20 {
				t.Fatalf("%d commands acknowledged: too few to tell", len(acked))
			}
		})
	}
}
