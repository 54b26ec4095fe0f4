package rebuild

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// testRedis connects to the real Redis (one server) and returns a unique
// key prefix whose keys are deleted when the test ends.
func testRedis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	return testRedisOn(t, redistest.Single)
}

// testRedisOn is testRedis on a Redis of kind k (one server, database 0,
// or the test cluster).
func testRedisOn(t testing.TB, k redistest.Kind) (redis.UniversalClient, string) {
	t.Helper()
	rdb := redistest.Open(t, k, 0)
	prefix := redistest.Prefix("")
	t.Cleanup(func() { deletePrefix(rdb, prefix) })
	return rdb, prefix
}

// deletePrefix deletes every key that begins with prefix, on every master
// of a cluster.
func deletePrefix(rdb redis.UniversalClient, prefix string) {
	_ = redistest.Delete(context.Background(), rdb, readmodel.GlobEscape(prefix)+"*")
}

// dumpPrefix returns every key under prefix with a canonical text of its
// value, the markers of a cluster's slots left out.
func dumpPrefix(t testing.TB, rdb redis.UniversalClient, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	ks, err := redistest.Keys(ctx, rdb, readmodel.GlobEscape(prefix)+"*")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if strings.HasSuffix(k, "}:marker") && strings.Contains(k, "{slot:") {
			continue
		}
		typ := rdb.Type(ctx, k).Val()
		var parts []string
		switch typ {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				parts = append(parts, f+"="+v)
			}
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				parts = append(parts, fmt.Sprint(z.Member, "=", z.Score))
			}
		case "set":
			parts = rdb.SMembers(ctx, k).Val()
		case "string":
			parts = []string{rdb.Get(ctx, k).Val()}
		}
		sort.Strings(parts)
		out[k] = typ + ":" + strings.Join(parts, "\n")
	}
	return out
}

func openStore(t testing.TB) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newHandler(store *embedded.Store) *commands.Handler {
	return commands.New(commands.Config{Store: store, Snapshots: store,
		Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy()), SnapshotEvery: 25})
}

var cmdSeq atomic.Int64

type scenario struct {
	t      testing.TB
	h      *commands.Handler
	tenant string
	rng    *rand.Rand
	admin  domain.Actor
}

func (s *scenario) meta() domain.CommandMeta {
	return domain.CommandMeta{TenantID: s.tenant, CommandID: fmt.Sprint("cmd-", cmdSeq.Add(1)), Actor: s.admin}
}

// do runs a command; a refusal by a rule is fine (it appends nothing).
func (s *scenario) do(c domain.Command) {
	s.t.Helper()
	_, err := s.h.Handle(context.Background(), c)
	var de *domain.Error
	if err != nil && !errors.As(err, &de) {
		s.t.Errorf("%s on %s: %v", c.CommandName(), s.tenant, err)
	}
}

// runScenario drives a tenant through users, subscriptions 5+8, direct and
// group assignments (with count errors), plan changes, unassignments (held
// data), retention holds, deletions and restores.
func runScenario(t testing.TB, h *commands.Handler, tenant string, seed uint64) {
	s := &scenario{t: t, h: h, tenant: tenant, rng: rand.New(rand.NewPCG(seed, 7)), admin: domain.Actor{UserID: "admin"}}
	s.do(&domain.CreateTenant{CommandMeta: domain.CommandMeta{TenantID: tenant, CommandID: fmt.Sprint("cmd-", cmdSeq.Add(1)), Actor: domain.Actor{Operator: true}},
		Name: "Tenant " + tenant, GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@" + tenant + ".example", DisplayName: "Admin", UsageLocation: "US"}})
	users := []string{}
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("u%02d", i)
		typ := domain.UserTypeMember
		if i == 12 {
			typ = domain.UserTypeGuest
		}
		s.do(&domain.AddUser{CommandMeta: s.meta(), User: domain.NewUser{ID: id, UserPrincipalName: id + "@" + tenant + ".example",
			DisplayName: "User " + id, UserType: typ, UsageLocation: "US"}})
		users = append(users, id)
	}
	s.do(&domain.PurchaseSubscription{CommandMeta: s.meta(), SubscriptionID: "s1", SkuID: "SPE_E3", Quantity: 5})
	s.do(&domain.PurchaseSubscription{CommandMeta: s.meta(), SubscriptionID: "s2", SkuID: "SPE_E3", Quantity: 8})
	s.do(&domain.PurchaseSubscription{CommandMeta: s.meta(), SubscriptionID: "s3", SkuID: "POWER_BI_PRO", Quantity: 2})
	s.do(&domain.PurchaseSubscription{CommandMeta: s.meta(), SubscriptionID: "s4", SkuID: "EXCHANGESTANDARD", Quantity: 4, Kind: domain.KindTrial})
	s.do(&domain.PurchaseSubscription{CommandMeta: s.meta(), SubscriptionID: "s5", SkuID: "VISIOCLIENT", Quantity: 3, Kind: domain.KindSelfService, PurchasedBy: "u09"})
	s.do(&domain.AssignLicenses{CommandMeta: s.meta(), SkuID: "SPE_E3", Users: users[:6]})
	s.do(&domain.CreateGroup{CommandMeta: s.meta(), GroupID: "g1", DisplayName: "Analysts"})
	s.do(&domain.CreateGroup{CommandMeta: s.meta(), GroupID: "g2", DisplayName: "Sales"})
	s.do(&domain.AssignGroupLicenses{CommandMeta: s.meta(), GroupID: "g1", Add: []domain.LicenseRequest{{SkuID: "POWER_BI_PRO"}}})
	for _, u := range users[:4] {
		s.do(&domain.AddGroupMember{CommandMeta: s.meta(), GroupID: "g1", UserID: u})
	}
	s.do(&domain.AddGroupMember{CommandMeta: s.meta(), GroupID: "g2", UserID: "u07"})
	s.do(&domain.AssignGroupLicenses{CommandMeta: s.meta(), GroupID: "g2", Add: []domain.LicenseRequest{{SkuID: "EXCHANGESTANDARD"}}})
	s.do(&domain.AssignLicenses{CommandMeta: s.meta(), SkuID: "EXCHANGESTANDARD", Users: []string{"u08"}})
	s.do(&domain.ChangeLicensePlans{CommandMeta: s.meta(), UserID: "u02", SkuID: "SPE_E3", DisabledPlans: []string{"SWAY"}})
	s.do(&domain.UnassignLicenses{CommandMeta: s.meta(), SkuID: "SPE_E3", Users: []string{"u05"}})
	s.do(&domain.SetRetentionHold{CommandMeta: s.meta(), UserID: "u05", Enabled: true})
	s.do(&domain.DeleteUser{CommandMeta: s.meta(), UserID: "u06"})
	s.do(&domain.DeleteUser{CommandMeta: s.meta(), UserID: "u03"})
	s.do(&domain.RemoveGroupMember{CommandMeta: s.meta(), GroupID: "g1", UserID: "u01"})
	s.do(&domain.ChangeSubscriptionQuantity{CommandMeta: s.meta(), SubscriptionID: "s2", Quantity: 9})
	s.do(&domain.RestoreUser{CommandMeta: s.meta(), UserID: "u06"})
	s.do(&domain.SetAdminRoles{CommandMeta: s.meta(), UserID: "u04", Roles: []domain.Role{domain.RoleLicenseAdmin}})
	s.do(&domain.PurchaseSubscription{CommandMeta: s.meta(), SubscriptionID: "s6", SkuID: "POWER_BI_PRO", Quantity: 2})
	s.do(&domain.TakeOverSubscription{CommandMeta: s.meta(), SubscriptionID: "s5"})
	// Random churn.
	for i := 0; i < 15; i++ {
		u := users[s.rng.IntN(len(users))]
		switch s.rng.IntN(7) {
		case 0:
			s.do(&domain.AssignLicenses{CommandMeta: s.meta(), SkuID: "SPE_E3", Users: []string{u}})
		case 1:
			s.do(&domain.UnassignLicenses{CommandMeta: s.meta(), SkuID: "SPE_E3", Users: []string{u}})
		case 2:
			s.do(&domain.AddGroupMember{CommandMeta: s.meta(), GroupID: "g1", UserID: u})
		case 3:
			s.do(&domain.RemoveGroupMember{CommandMeta: s.meta(), GroupID: "g1", UserID: u})
		case 4:
			s.do(&domain.SetRetentionHold{CommandMeta: s.meta(), UserID: u, Enabled: s.rng.IntN(2) == 0})
		case 5:
			s.do(&domain.DeleteUser{CommandMeta: s.meta(), UserID: u})
		case 6:
			s.do(&domain.RestoreUser{CommandMeta: s.meta(), UserID: u})
		}
	}
}

func lastPosition(t testing.TB, store *embedded.Store) eventstore.Position {
	t.Helper()
	return store.LastPosition()
}

type runningProjection struct {
	p    *projections.Projection
	done chan error
	stop context.CancelFunc
}

func startProjection(t testing.TB, cfg projections.Config) *runningProjection {
	t.Helper()
	p, err := projections.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rp := &runningProjection{p: p, done: make(chan error, 1), stop: cancel}
	go func() { rp.done <- p.Run(ctx) }()
	t.Cleanup(func() { rp.shutdown() })
	return rp
}

func (rp *runningProjection) shutdown() error {
	rp.stop()
	select {
	case err, ok := <-rp.done:
		if ok {
			close(rp.done)
		}
		return err
	case <-time.After(15 * time.Second):
		return errors.New("projection did not stop")
	}
}

func (rp *runningProjection) waitFor(t testing.TB, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rp.p.WaitFor(ctx, pos); err != nil {
		t.Fatalf("projection did not reach position %d: %v (status %+v)", pos, err, rp.p.Status())
	}
}

func verifyClean(t testing.TB, store eventstore.Store, rdb redis.UniversalClient, prefix string) Report {
	t.Helper()
	rep, err := Verify(context.Background(), store, rdb, prefix, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range rep.Differences {
		if i == 20 {
			t.Errorf("... %d differences in all", len(rep.Differences))
			break
		}
		t.Errorf("difference: %s", d)
	}
	return rep
}

// newTail is ReplayConfig.NewTail as the binary sets it: the live
// projector on the new prefix.
func newTail(cfg ReplayConfig) (Tail, error) {
	return projections.New(projections.Config{Name: cfg.Name, Store: cfg.Store, Snapshots: cfg.Snapshots, Upcasters: cfg.Upcasters,
		Catalog: cfg.Catalog, Redis: cfg.Redis, Prefix: cfg.NewPrefix, Logger: cfg.Logger})
}

// replay is Replay with the live projector as the tail.
func replay(ctx context.Context, cfg ReplayConfig) (ReplayResult, error) {
	if cfg.NewTail == nil {
		cfg.NewTail = newTail
	}
	return Replay(ctx, cfg)
}
