package clustertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/lease"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/rebuild"
	"github.com/seatledger/seatledger/scheduler"
)

// recorder is a go-redis hook that keeps the keys of every command.
type recorder struct {
	mu   sync.Mutex
	ops  []op
	seen map[string]bool // key patterns
}

type op struct {
	name string
	keys []string
}

// keysOf returns the keys of a command (for the commands seatledger uses).
func keysOf(args []any) (string, []string) {
	if len(args) == 0 {
		return "", nil
	}
	name := strings.ToLower(fmt.Sprint(args[0]))
	str := func(i int) string { return fmt.Sprint(args[i]) }
	all := func(from int) []string {
		var ks []string
		for i := from; i < len(args); i++ {
			ks = append(ks, str(i))
		}
		return ks
	}
	switch name {
	case "eval", "evalsha", "evalsha_ro", "eval_ro":
		n, _ := strconv.Atoi(str(2))
		return name, all(3)[:n]
	case "del", "unlink", "exists", "mget", "touch", "watch":
		return name, all(1)
	case "mset", "msetnx":
		var ks []string
		for i := 1; i < len(args); i += 2 {
			ks = append(ks, str(i))
		}
		return name, ks
	case "rename", "renamenx", "smove", "copy", "lmove", "rpoplpush":
		return name, all(1)[:2]
	case "sunionstore", "sinterstore", "sdiffstore", "sunion", "sinter", "sdiff", "zunionstore", "zinterstore":
		return name, all(1)
	case "ping", "script", "info", "select", "hello", "client", "multi", "exec", "flushdb", "scan":
		return name, nil
	case "xreadgroup", "xread":
		for i, a := range args {
			if strings.EqualFold(fmt.Sprint(a), "streams") {
				rest := all(i + 1)
				return name, rest[:len(rest)/2]
			}
		}
	}
	if len(args) > 1 {
		return name, []string{str(1)}
	}
	return name, nil
}

func (r *recorder) record(cmds []redis.Cmder, tx bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var txKeys []string
	for _, c := range cmds {
		name, ks := keysOf(c.Args())
		if name == "" {
			continue
		}
		for _, k := range ks {
			r.seen[pattern(k)] = true
		}
		if len(ks) > 1 {
			r.ops = append(r.ops, op{name, ks})
		}
		if tx {
			txKeys = append(txKeys, ks...)
		}
	}
	if len(txKeys) > 1 {
		r.ops = append(r.ops, op{"multi/exec", txKeys})
	}
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		r.record([]redis.Cmder{c}, false)
		return next(ctx, c)
	}
}
func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		tx := len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "multi")
		r.record(cmds, tx)
		return next(ctx, cmds)
	}
}

var tagRE = regexp.MustCompile(`\{([^}]*)\}`)

// hashTag is what Redis Cluster hashes: the first {…} with content, else the key.
func hashTag(k string) string {
	if m := tagRE.FindStringSubmatch(k); m != nil && m[1] != "" {
		return m[1]
	}
	return k
}

var testPrefixRE = regexp.MustCompile(`^sltest:[0-9a-f]+:`)

// pattern turns a key into its shape: prefix, tenant and ids replaced.
func pattern(k string) string {
	k = testPrefixRE.ReplaceAllString(k, "P")
	k = regexp.MustCompile(`\{[^}:]*\}`).ReplaceAllString(k, "{T}")
	k = regexp.MustCompile(`license:[^:]+:users`).ReplaceAllString(k, "license:<sku>:users")
	k = regexp.MustCompile(`group:[^:]+:`).ReplaceAllString(k, "group:<g>:")
	k = regexp.MustCompile(`\{lease:[^}]+\}`).ReplaceAllString(k, "{lease:<name>}")
	k = regexp.MustCompile(`\{slot:[^}]+\}`).ReplaceAllString(k, "{slot:<n>}")
	return k
}

// TestEveryMultiKeyOperationStaysInOneHashTag runs the projection, the
// queries, the scheduler, verify and the lease over a workload with a
// recording client; every multi-key command (scripts, DEL of many keys,
// MULTI/EXEC) must touch keys of a single hash tag, and every key of a
// tenant must carry the tenant's tag.
//
// It runs on one Redis server, where only the recorder would notice, and on
// a real Redis Cluster, which refuses such a command (CROSSSLOT) as well.
func TestEveryMultiKeyOperationStaysInOneHashTag(t *testing.T) {
	redistest.Each(t, testEveryMultiKeyOperationStaysInOneHashTag)
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func testEveryMultiKeyOperationStaysInOneHashTag(t *testing.T, kind redistest.Kind) {
	rec := &recorder{seen: map[string]bool{}}
	rdb := redistest.Open(t, kind, 0)
	rdb.AddHook(rec)
	prefix := fmt.Sprintf("sltest:%x:", rand.Uint64())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Cleanup(func() { _ = redistest.Delete(context.Background(), rdb, prefix+"*") })

	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	h := commands.New(commands.Config{Store: store, Snapshots: store, Clock: clock,
		Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())})
	defer h.Close()
	// As on a Redis Cluster (New turns PerTenantWrites on for any client
	// but a *redis.Client): one flush script over many tenants would span slots.
	proj, err := projections.New(projections.Config{Store: store, Snapshots: store, Redis: rdb, Prefix: prefix, PerTenantWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	projDone := make(chan struct{})
	go func() { defer close(projDone); _ = proj.Run(ctx) }()

	// A workload over three tenants touching every read model.
	seq := 0
	do := func(tenant string, c domain.Command) {
		m := domain.Meta(c)
		seq++
		m.TenantID, m.CommandID = tenant, fmt.Sprint("c", seq)
		if m.Actor.UserID == "" && !m.Actor.Operator {
			m.Actor = domain.Actor{UserID: "admin"}
		}
		if _, err := h.Handle(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.CommandName(), err)
		}
	}
	for _, tn := range []string{"alpha", "beta", "gamma"} {
		do(tn, &domain.CreateTenant{CommandMeta: domain.CommandMeta{Actor: domain.Actor{Operator: true}}, Name: tn,
			GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@x.com", UsageLocation: "US"}})
		do(tn, &domain.PurchaseSubscription{SubscriptionID: "s1", SkuID: "SPB", Quantity: 5})
		do(tn, &domain.PurchaseSubscription{SubscriptionID: "s2", SkuID: "SPB", Quantity: 8})
		for _, u := range []string{"ann", "bob", "cid"} {
			do(tn, &domain.AddUser{User: domain.NewUser{ID: u, UserPrincipalName: u + "@x.com", UsageLocation: "US"}})
		}
		do(tn, &domain.AssignLicenses{SkuID: "SPB", Users: []string{"ann", "bob"}})
		do(tn, &domain.CreateGroup{GroupID: "sales", DisplayName: "Sales"})
		do(tn, &domain.AddGroupMember{GroupID: "sales", UserID: "cid"})
		do(tn, &domain.AssignGroupLicenses{GroupID: "sales", Add: []domain.LicenseRequest{{SkuID: "SPB"}}})
		do(tn, &domain.UnassignLicenses{SkuID: "SPB", Users: []string{"bob"}})
		do(tn, &domain.SetRetentionHold{UserID: "ann", Enabled: true})
		do(tn, &domain.DeleteUser{UserID: "ann"})
	}
	if err := proj.WaitFor(ctx, store.LastPosition()); err != nil {
		t.Fatal(err)
	}

	// Queries: every one.
	q := queries.New(queries.Config{Redis: rdb, Prefix: prefix})
	o := queries.Options{MinVersion: 3}
	for name, query := range map[string]func() error{
		"licenses":      func() error { _, err := q.Licenses(ctx, "alpha", o); return err },
		"licenses/SPB":  func() error { _, err := q.License(ctx, "alpha", "SPB", o); return err },
		"subscriptions": func() error { _, err := q.Subscriptions(ctx, "alpha", o); return err },
		"users":         func() error { _, err := q.Users(ctx, "alpha", o); return err },
		"users/ann":     func() error { _, err := q.User(ctx, "alpha", "ann", o); return err },
		"groups/sales":  func() error { _, err := q.Group(ctx, "alpha", "sales", o); return err },
		"heldData":      func() error { _, err := q.HeldData(ctx, "alpha", o); return err },
	} {
		if err := query(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The scheduler's schedule, verify, and a lease.
	clockMu.Lock()
	now = now.Add(40 * 24 * time.Hour)
	clockMu.Unlock()
	if due, err := (scheduler.RedisSchedule{RDB: rdb, Prefix: prefix}).Due(ctx, clock(), 100); err != nil || len(due) == 0 {
		t.Fatalf("due %v %v", due, err)
	}
	if rep, err := rebuild.Verify(ctx, store, rdb, prefix, rebuild.VerifyOptions{}); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	lctx, lcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_ = lease.Run(lctx, lease.Config{Redis: rdb, Name: prefix + "test", Owner: "me", TTL: 150 * time.Millisecond},
		func(jctx context.Context, _ int64) error { <-jctx.Done(); return nil })
	lcancel()
	rdb.Del(context.Background(), "sl:{lease:"+prefix+"test}:holder", "sl:{lease:"+prefix+"test}:token")
	cancel()
	<-projDone

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.ops) == 0 {
		t.Fatal("no multi-key operation was recorded: the recorder sees nothing")
	}
	for _, o := range rec.ops {
		tags := map[string]bool{}
		for _, k := range o.keys {
			tags[hashTag(k)] = true
		}
		if len(tags) > 1 {
			t.Errorf("%s touches keys of %d hash tags: %v", o.name, len(tags), o.keys)
		}
	}
	var patterns []string
	for p := range rec.seen {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	// Keys outside a tenant tag are single-key globals, listed here on purpose.
	globals := map[string]bool{"Ptenants": true, "Pcheckpoint:readmodels": true, "sl:active-prefix": true}
	for _, p := range patterns {
		if !strings.Contains(p, "{") && !globals[p] {
			t.Errorf("key pattern %q carries no hash tag and is not a known global", p)
		}
	}
	t.Logf("key patterns used (%d):\n  %s", len(patterns), strings.Join(patterns, "\n  "))
}
