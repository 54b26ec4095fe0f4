package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/tenantstream"
)

// Duplicates of one keyed request sent at once: one decides and appends,
// every other answers its events replayed, whichever path the store takes
// (queued: the embedded store; plain: a store that does not queue).
func TestConcurrentDuplicatesAppendOnce(t *testing.T) {
	for name, wrap := range map[string]func(*embedded.Store) eventstore.Store{
		"queued": func(s *embedded.Store) eventstore.Store { return s },
		"plain":  func(s *embedded.Store) eventstore.Store { return &countingStore{Store: s} },
	} {
		t.Run(name, func(t *testing.T) {
			store := wrap(openStore(t))
			h := newHandler(store, nil, time.Now)
			defer h.Close()
			createTenant(t, h, "t1", "alice")
			must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 1})
			before := head(t, store)
			const n = 16
			results := make([]Result, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := keyed("t1", "idem-dup", "h1")
					m.CorrelationID = fmt.Sprint("req-", i)
					results[i], errs[i] = h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: m, SkuID: "SPB", Users: []string{"alice"}})
				}()
			}
			wg.Wait()
			fresh := -1
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("duplicate %d: %v", i, errs[i])
				}
				if !results[i].Replayed {
					if fresh >= 0 {
						t.Fatalf("duplicates %d and %d were both decided", fresh, i)
					}
					fresh = i
				}
			}
			if fresh < 0 {
				t.Fatal("every duplicate says it was replayed: none decided")
			}
			first := results[fresh]
			if h := head(t, store); h != before+uint64(len(first.Events)) || first.Version != h {
				t.Fatalf("head %d after %d duplicates from %d; the decided one answered version %d with %d events", h, n, before, first.Version, len(first.Events))
			}
			for i, r := range results {
				if r.Version != first.Version || len(r.Raw) != len(first.Raw) {
					t.Fatalf("duplicate %d answered version %d with %d events; the first %d with %d", i, r.Version, len(r.Raw), first.Version, len(first.Raw))
				}
				for j := range r.Raw {
					if string(r.Raw[j]) != string(first.Raw[j]) {
						t.Fatalf("duplicate %d answered event %d as %s; the first as %s", i, j, r.Raw[j], first.Raw[j])
					}
				}
			}
			assertStream(t, store, first)
		})
	}
}

// The same key with two bodies at once: one is decided, the other refused
// as idempotency_key_reused; the stream holds the one decided.
func TestConcurrentBodiesOfOneKeyDecideOne(t *testing.T) {
	store := openStore(t)
	h := newHandler(store, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1", "alice", "bob")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 2})
	users := []string{"alice", "bob"}
	var results [2]Result
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: keyed("t1", "idem-two", fmt.Sprint("h", i)), SkuID: "SPB", Users: users[i : i+1]})
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil:
			won = i
		case !errors.Is(err, domain.ErrIdempotencyKeyReused):
			t.Fatalf("body %d: %v", i, err)
		}
	}
	if won < 0 || errs[1-won] == nil {
		t.Fatalf("want one body decided and one refused, got %v", errs)
	}
	assertStream(t, store, results[won])
	err := h.View(context.Background(), "t1", func(st *domain.Tenant) error {
		if len(st.Users[users[1-won]].Licenses) != 0 || len(st.Users[users[won]].Licenses) != 1 {
			return fmt.Errorf("%s holds a license the refused body asked for, or %s none", users[1-won], users[won])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A keyed request retried after snapshots were written and the store was
// closed and opened again (a restart) replays the first answer from the
// log: the snapshot carries what the tenant remembers of its commands.
func TestARetryAfterASnapshotAndARestartReplays(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Store: store, Snapshots: store, Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy()), SnapshotEvery: 5})
	createTenant(t, h, "t1", "alice")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 5})
	cmd := func() domain.Command {
		return &domain.AssignLicenses{CommandMeta: keyed("t1", "idem-restart", "h1"), SkuID: "SPB", Users: []string{"alice"}}
	}
	first := must(t, h, cmd())
	for i := range 12 {
		must(t, h, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: fmt.Sprint("u", i), UserPrincipalName: fmt.Sprint("u", i, "@x.com"), UsageLocation: "US"}})
	}
	// The snapshotter drops requests when busy: write one for sure.
	if err := h.Snapshot(context.Background(), "t1", 0); err != nil {
		t.Fatal(err)
	}
	h.Close()
	headBefore := head(t, store)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err = embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snap, ok, err := store.LoadSnapshot(context.Background(), tenantstream.Name("t1"), 0)
	if err != nil || !ok || snap.Version <= first.Version {
		t.Fatalf("no snapshot past the keyed command (version %d): %v %v %d", first.Version, ok, err, snap.Version)
	}
	h = New(Config{Store: store, Snapshots: store, Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy()), SnapshotEvery: 5})
	defer h.Close()
	again := must(t, h, cmd())
	if !again.Replayed || again.Version != first.Version || len(again.Raw) != len(first.Raw) || string(again.Raw[0]) != string(first.Raw[0]) {
		t.Fatalf("after a restart the retry answered replayed=%v version %d; first version %d", again.Replayed, again.Version, first.Version)
	}
	if h := head(t, store); h != headBefore {
		t.Fatalf("the retry appended: head %d, was %d", h, headBefore)
	}
	other := &domain.AssignLicenses{CommandMeta: keyed("t1", "idem-restart", "h2"), SkuID: "SPB", Users: []string{"u0"}}
	if _, err := h.Handle(context.Background(), other); !errors.Is(err, domain.ErrIdempotencyKeyReused) {
		t.Fatalf("another body under the key after a restart: %v, want idempotency_key_reused", err)
	}
}

// A keyed request that was refused wrote nothing, so the tenant has nothing
// to remember it by: sending it again decides it again, on the tenant as it
// is then (docs/API.md, Idempotency).
func TestARefusedKeyedRequestIsDecidedAgain(t *testing.T) {
	store := openStore(t)
	h := newHandler(store, nil, time.Now)
	defer h.Close()
	createTenant(t, h, "t1", "alice")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 1})
	must(t, h, &domain.AddUser{CommandMeta: meta("t1", admin), User: domain.NewUser{ID: "bob", UserPrincipalName: "bob@x.com", UsageLocation: "US"}})
	must(t, h, &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"bob"}})
	cmd := func(hash string) domain.Command {
		return &domain.AssignLicenses{CommandMeta: keyed("t1", "idem-refused", hash), SkuID: "SPB", Users: []string{"alice"}}
	}
	before := head(t, store)
	if _, err := h.Handle(context.Background(), cmd("h1")); !errors.Is(err, domain.ErrInsufficientLicenses) {
		t.Fatalf("want insufficient_licenses, got %v", err)
	}
	if v := head(t, store); v != before {
		t.Fatalf("a refused request appended: head %d, was %d", v, before)
	}
	must(t, h, &domain.UnassignLicenses{CommandMeta: meta("t1", admin), SkuID: "SPB", Users: []string{"bob"}})
	r := must(t, h, cmd("h1"))
	if r.Replayed || len(r.Events) == 0 || r.Events[0].Type != domain.TypeLicenseAssigned {
		t.Fatalf("the retry after a refusal answered %+v, want the assignment decided", r)
	}
	// Now the key is remembered.
	if _, err := h.Handle(context.Background(), cmd("h2")); !errors.Is(err, domain.ErrIdempotencyKeyReused) {
		t.Fatalf("another body under the key: %v", err)
	}
}
