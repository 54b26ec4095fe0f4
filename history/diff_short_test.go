package history

import (
	"context"
	"math/rand"
	"testing"

	"github.com/seatledger/seatledger/domain"
)

// sameDiffs checks that diffShort answers what diffWhole answers from
// every version to the next, and over spans up to shortDiff from random
// points, and returns how often diffShort answered itself (not handing
// over to diffWhole).
func sameDiffs(t *testing.T, name string, svc *Service, head uint64, r *rand.Rand) (short, all int) {
	t.Helper()
	ctx := context.Background()
	check := func(from, to uint64) {
		want, err := svc.diffWhole(ctx, "t", from, to)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := svc.diffShort(ctx, "t", from, to)
		if err != nil {
			t.Fatal(err)
		}
		all++
		if !ok {
			return
		}
		short++
		if g, w := asJSON(t, got), asJSON(t, want); g != w {
			t.Fatalf("%s: the diff from %d to %d by entity differs from the whole states':\n got %s\nwant %s", name, from, to, g, w)
		}
		// And DiffBetween, which chooses, answers the same.
		if d, err := svc.DiffBetween(ctx, "t", from, to); err != nil || asJSON(t, d) != asJSON(t, want) {
			t.Fatalf("%s: DiffBetween(%d, %d) differs from the whole states' diff (%v)", name, from, to, err)
		}
	}
	for v := uint64(2); v <= head; v++ {
		check(v-1, v)
	}
	check(head/2, head/2) // no event: no change
	for range 40 {
		from := 1 + uint64(r.Int63n(int64(head-1)))
		check(from, min(head, from+1+uint64(r.Intn(shortDiff))))
	}
	return short, all
}

// TestDiffOfAFewEventsIsTheDiffOfWholeStates: the diff of adjacent points
// (and of spans up to shortDiff), computed from the entities the events
// reach, is byte for byte the diff of the two whole states, on commanded
// tenants and on random events in any order (errors, holds, restores,
// group licenses, registered products).
func TestDiffOfAFewEventsIsTheDiffOfWholeStates(t *testing.T) {
	short, all := 0, 0
	for seed := int64(1); seed <= 3; seed++ {
		w := randomWorkload(t, seed, 150)
		s, a := sameDiffs(t, "commands", w.svc, uint64(len(w.times)), rand.New(rand.NewSource(seed)))
		short, all = short+s, all+a
	}
	for seed := int64(1); seed <= 6; seed++ {
		r := rand.New(rand.NewSource(seed))
		var payloads []domain.Payload
		for v := uint64(1); v <= 300; v++ {
			payloads = append(payloads, randomPayload(r, v))
		}
		s, a := sameDiffs(t, "random events", given(t, payloads...), uint64(len(payloads)), r)
		short, all = short+s, all+a
	}
	// Most short diffs are answered by entity: otherwise this proves little.
	if short < all*9/10 {
		t.Fatalf("only %d of %d short diffs were computed by entity", short, all)
	}
	t.Logf("%d of %d short diffs computed by entity", short, all)
}

// TestRenderPageRendersItsUsersAndTheirHeldData: a page of users is the
// whole state's first users plus the named ones, rendered alike, with
// their held data only, and the whole state's counts.
func TestRenderPageRendersItsUsersAndTheirHeldData(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	var payloads []domain.Payload
	for v := uint64(1); v <= 300; v++ {
		payloads = append(payloads, randomPayload(r, v))
	}
	svc := given(t, payloads...)
	ten, err := svc.StateAt(context.Background(), "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	whole := Render(svc.Catalog, ten)
	if len(whole.Users) < 3 || len(whole.HeldData) == 0 {
		t.Fatalf("the tenant has %d users and %d held data: too few to page", len(whole.Users), len(whole.HeldData))
	}
	last := whole.Users[len(whole.Users)-1].ID
	p := RenderPage(svc.Catalog, ten, UserPage{Limit: 1, IDs: []string{last, "nobody", last}})
	if p.UsersTotal != len(whole.Users) || p.HeldDataTotal != len(whole.HeldData) {
		t.Fatalf("totals %d users, %d held data; want %d, %d", p.UsersTotal, p.HeldDataTotal, len(whole.Users), len(whole.HeldData))
	}
	want := whole
	want.Users = []UserState{whole.Users[0], whole.Users[len(whole.Users)-1]}
	want.HeldData = []HeldData{}
	for _, h := range whole.HeldData {
		if h.UserID == want.Users[0].ID || h.UserID == last {
			want.HeldData = append(want.HeldData, h)
		}
	}
	if g, w := asJSON(t, p.State), asJSON(t, want); g != w {
		t.Fatalf("the page of users:\n got %s\nwant %s", g, w)
	}
}
