package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/postgres"
	"github.com/seatledger/seatledger/internal/reliability"
	"github.com/seatledger/seatledger/rebuild"
	"github.com/seatledger/seatledger/tenantstream"
)

// multiNodeRedisDB is the Redis database the shared-store scenarios own
// (they flush it); the nodes use its default key prefix.
// SEATLEDGER_TEST_REDIS_DB names another one (a run beside other runs).
var multiNodeRedisDB = func() int {
	if n, err := strconv.Atoi(os.Getenv("SEATLEDGER_TEST_REDIS_DB")); err == nil {
		return n
	}
	return 14
}()

// cluster is several `seatledger serve` processes on one PostgreSQL schema
// and one Redis database, as a shared-store deployment runs them.
type cluster struct {
	t      *testing.T
	url    string // the event store's connection string
	store  *postgres.Store
	rdb    *redis.Client
	nodes  []*proc
	ledger *reliability.Ledger
	// accept tells check the command ids no client of the ledger sent
	// (default: purgeCommand's).
	accept func(commandID string) bool
}

// newCluster starts n nodes, or skips when PostgreSQL or Redis is absent.
func newCluster(t *testing.T, n int, extraEnv ...string) *cluster {
	t.Helper()
	base := os.Getenv("SEATLEDGER_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	prefix := "rel_multinode"
	if p := os.Getenv("SEATLEDGER_TEST_SCHEMA_PREFIX"); p != "" {
		prefix = p
	}
	schema := fmt.Sprintf("%s_%x", prefix, rand.Uint32())
	url := base + "&" + postgres.SchemaParam + "=" + schema
	store, err := postgres.Open(ctx, url)
	if err != nil {
		t.Skipf("PostgreSQL is not reachable at %s (%v): skipping the shared-store scenario", base, err)
	}
	t.Cleanup(func() {
		store.Close()
		if err := postgres.DropSchema(context.Background(), base, schema); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: multiNodeRedisDB})
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Skipf("Redis at 127.0.0.1:6379 is not reachable (%v): skipping the shared-store scenario", err)
	}
	rdb.FlushDB(ctx)
	t.Cleanup(func() { rdb.FlushDB(context.Background()); rdb.Close() })
	c := &cluster{t: t, url: url, store: store, rdb: rdb, ledger: reliability.NewLedger()}
	for i := range n {
		env := append([]string{"SEATLEDGER_EVENTSTORE=" + url, fmt.Sprintf("SEATLEDGER_NODE_ID=node%d", i)}, extraEnv...)
		c.nodes = append(c.nodes, startBinary(t, t.TempDir(), fmt.Sprintf("redis://127.0.0.1:6379/%d", multiNodeRedisDB), env...))
	}
	// The read models of an empty Redis are built first (after the wait
	// for a former lease holder): ready once they are.
	for _, n := range c.nodes {
		waitFor(t, "/readyz 200 on "+n.base, func() bool {
			res, err := http.Get(n.base + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
	}
	return c
}

func (c *cluster) client(i int) *reliability.Client {
	return reliability.NewClient(c.nodes[i].base, c.ledger)
}

// tenant creates tenant id with users u0..u(users-1) (usage location US)
// and one SPB subscription of quantity licenses, through node 0.
func (c *cluster) tenant(id string, users, quantity int) {
	c.t.Helper()
	ctx := context.Background()
	cl := c.client(0)
	mustOK := func(r reliability.Result) {
		c.t.Helper()
		if r.Status/100 != 2 {
			c.t.Fatalf("set-up: %d %s %v", r.Status, r.Body, r.Err)
		}
	}
	mustOK(cl.Command(ctx, id, opActor, operator, "POST", "/v1/tenants",
		map[string]any{"id": id, "name": id, "globalAdmin": map[string]string{"id": "admin", "userPrincipalName": "admin@" + id + ".example", "usageLocation": "US"}}))
	tk := tok(c.t, id, "admin")
	mustOK(cl.Command(ctx, id, admin(id), tk, "POST", "/v1/tenants/"+id+"/subscriptions", map[string]any{"id": "s1", "skuId": "SPB", "quantity": quantity}))
	for i := range users {
		mustOK(cl.Command(ctx, id, admin(id), tk, "POST", "/v1/tenants/"+id+"/users",
			map[string]any{"id": fmt.Sprintf("u%d", i), "userPrincipalName": fmt.Sprintf("u%d@%s.example", i, id), "usageLocation": "US"}))
	}
}

func (c *cluster) head(tenant string) uint64 {
	c.t.Helper()
	v, err := c.store.StreamVersion(context.Background(), tenantstream.Name(tenant))
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

// check runs the invariant checker over the log and the ledger, then, if
// withReadModels, waits until a node's verify finds the read models equal
// to the fold of the log.
func (c *cluster) check(withReadModels bool) {
	c.t.Helper()
	accept := c.accept
	if accept == nil {
		accept = purgeCommand
	}
	rep, err := reliability.Check(context.Background(), c.store, c.ledger, nil, accept)
	if err != nil {
		c.t.Fatal(err)
	}
	report(c.t, rep)
	if !withReadModels {
		return
	}
	var last rebuild.Report
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := c.running()
		last = n.verify(c.t)
		if last.Tenants > 0 && len(last.Differences) == 0 {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after 30 s the read models still differ from the fold of the log: %+v", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Logf("read models: %+v", last)
}

// running returns a node that has not been killed.
func (c *cluster) running() *proc {
	for _, n := range c.nodes {
		if n.cmd.ProcessState == nil {
			return n
		}
	}
	c.t.Fatal("no node is running")
	return nil
}

// purgeCommand accepts the command ids of the scheduler's purges, which no
// client sent.
func purgeCommand(id string) bool { return strings.HasPrefix(id, "purge") }

// answer decodes a 2xx command answer and the types of its events.
func answer(t *testing.T, r reliability.Result) (version uint64, types []string) {
	t.Helper()
	if r.Status/100 != 2 {
		t.Fatalf("want a 2xx answer, got %d %s %v", r.Status, r.Body, r.Err)
	}
	a, err := r.Answer()
	if err != nil {
		t.Fatalf("answer %s: %v", r.Body, err)
	}
	for _, raw := range a.Events {
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(raw, &env)
		types = append(types, env.Type)
	}
	return a.Version, types
}

// changed reports whether an answer's events did more than record that
// nothing changed.
func changed(types []string) bool {
	for _, ty := range types {
		if ty != domain.TypeNothingChanged {
			return true
		}
	}
	return false
}

// TestTwoNodesAnswerOnTheStoresTruth replays issue 16's three reproductions
// on two real servers sharing one PostgreSQL store: a stale node's unassign
// removes the license, its refusals and no-ops stand on the head, and a role
// changed through one node is seen by the other's very next request.
func TestTwoNodesAnswerOnTheStoresTruth(t *testing.T) {
	c := newCluster(t, 2)
	ctx := context.Background()
	a, b := c.client(0), c.client(1)
	c.tenant("fresh", 3, 2)
	tk := tok(t, "fresh", "admin")
	assign := func(cl *reliability.Client, users ...string) reliability.Result {
		return cl.Command(ctx, "fresh", admin("fresh"), tk, "POST", "/v1/tenants/fresh/licenses/SPB/assign", map[string]any{"users": users})
	}
	unassign := func(cl *reliability.Client, users ...string) reliability.Result {
		return cl.Command(ctx, "fresh", admin("fresh"), tk, "POST", "/v1/tenants/fresh/licenses/SPB/unassign", map[string]any{"users": users})
	}
	// Node a caches the tenant: its role check loads it, whatever the
	// read models answer after it (they may not have projected the new
	// tenant yet: 404, or 503 while they are first built).
	switch r := a.Query(ctx, tk, "/v1/tenants/fresh/users/u0"); r.Status {
	case http.StatusOK, http.StatusNotFound, http.StatusServiceUnavailable:
	default:
		t.Fatalf("warm-up read: %d %s", r.Status, r.Body)
	}

	// 1. b assigns SPB to u0; a, asked to unassign it, must remove it.
	answer(t, assign(b, "u0"))
	v, types := answer(t, unassign(a, "u0"))
	if !changed(types) || v != c.head("fresh") {
		t.Fatalf("unassign on the stale node: version %d, events %v; head %d: the license must be removed", v, types, c.head("fresh"))
	}

	// 2. a fills the pool; b frees one; a's next assign must succeed, and
	// a no-op through a answers a version no lower than the head.
	answer(t, assign(a, "u0", "u1"))
	answer(t, unassign(b, "u1"))
	if v, types := answer(t, assign(a, "u2")); !changed(types) || v != c.head("fresh") {
		t.Fatalf("assign with a free license in the store: version %d events %v", v, types)
	}
	// b swaps u2 for u1: on a's cached state u1 holds nothing.
	answer(t, unassign(b, "u2"))
	answer(t, assign(b, "u1"))
	headBefore := c.head("fresh")
	if r := assign(a, "u1"); r.Status/100 == 2 { // a no-op on the head: u1 holds it
		if v, types := answer(t, r); v < headBefore || changed(types) {
			t.Fatalf("no-op answered version %d (events %v); the head it could see was %d", v, types, headBefore)
		}
	} else {
		t.Fatalf("assigning a license u1 holds: %d %s", r.Status, r.Body)
	}

	// 3. Roles: granted through a, honoured by b's very next request;
	// revoked through a, refused by b's very next request.
	u2 := tok(t, "fresh", "u2")
	if r := b.Query(ctx, u2, "/v1/tenants/fresh/users"); r.Status != http.StatusForbidden {
		t.Fatalf("u2 without a role reads users: %d", r.Status)
	}
	grant := a.Command(ctx, "fresh", admin("fresh"), tk, "PUT", "/v1/tenants/fresh/users/u2/roles", map[string]any{"roles": []string{"UserAdministrator"}})
	granted, _ := answer(t, grant)
	// minVersion: the list itself comes from the read models, which may
	// lag (on a loaded machine past the query's wait: 503 with
	// Retry-After, asked again); the role check before it must not: a
	// refusal is a 403 at once.
	r := b.Query(ctx, u2, fmt.Sprintf("/v1/tenants/fresh/users?minVersion=%d", granted))
	for deadline := time.Now().Add(30 * time.Second); r.Status == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		r = b.Query(ctx, u2, fmt.Sprintf("/v1/tenants/fresh/users?minVersion=%d", granted))
	}
	if r.Status != http.StatusOK {
		t.Fatalf("a role granted through node a is refused by node b: %d %s", r.Status, r.Body)
	}
	if r := a.Command(ctx, "fresh", admin("fresh"), tk, "PUT", "/v1/tenants/fresh/users/u2/roles", map[string]any{"roles": []string{}}); r.Status/100 != 2 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{"/v1/tenants/fresh/users", "/v1/tenants/fresh/audit", "/v1/tenants/fresh/events", "/v1/tenants/fresh/state"} {
		if r := b.Query(ctx, u2, path); r.Status != http.StatusForbidden {
			t.Fatalf("a role revoked through node a is still honoured by node b on %s: %d", path, r.Status)
		}
	}
	c.check(true)
}

// TestSharedStoreRaceForTheLastLicenses sends 100 assigns and unassigns of
// the last licenses at once through three nodes. Every 2xx is either in the
// log (the invariant checker) or a true no-op on the head: the fold at the
// answer's version agrees that nothing was to be done (an assign of a
// license the user holds; removing one not held is refused), and the
// version is no lower than any answer the client had before it sent the
// command.
func TestSharedStoreRaceForTheLastLicenses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers and races 100 commands through them")
	}
	c := newCluster(t, 3)
	ctx := context.Background()
	const users = 12
	c.tenant("race", users, 4)
	tk := tok(t, "race", "admin")
	clients := []*reliability.Client{c.client(0), c.client(1), c.client(2)}

	var seen atomic.Uint64 // the highest version answered so far
	type noop struct {
		assign  bool
		user    string
		version uint64 // of the answer
		before  uint64 // the highest version answered before it was sent
		types   []string
	}
	var mu sync.Mutex
	var noops []noop
	var wg sync.WaitGroup
	for round := range 2 {
		for i := range 50 {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				user := fmt.Sprintf("u%d", rand.IntN(users))
				isAssign := (i+round)%2 == 0
				path := "/v1/tenants/race/licenses/SPB/unassign"
				if isAssign {
					path = "/v1/tenants/race/licenses/SPB/assign"
				}
				before := seen.Load()
				r := clients[i%3].Command(ctx, "race", admin("race"), tk, "POST", path, map[string]any{"users": []string{user}})
				if r.Status/100 != 2 {
					// Refusals: no license left (409), or none to remove (400).
					if r.Status != http.StatusConflict && !(r.Status == http.StatusBadRequest && !isAssign) {
						t.Errorf("%s %s: %d %s", path, user, r.Status, r.Body)
					}
					return
				}
				a, err := r.Answer()
				if err != nil {
					t.Errorf("answer: %v", err)
					return
				}
				for v := seen.Load(); a.Version > v && !seen.CompareAndSwap(v, a.Version); v = seen.Load() {
				}
				_, types := answerTypes(a)
				if !changed(types) {
					mu.Lock()
					noops = append(noops, noop{isAssign, user, a.Version, before, types})
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
	}
	spb := skuOf(t, "SPB")
	// Each no-op against the fold at its version (a keyed no-op records
	// NothingChanged as its last event: look just before it).
	for _, n := range noops {
		if n.version < n.before {
			t.Errorf("no-op %+v answered a version below one already answered", n)
		}
		at := n.version - uint64(len(n.types))
		st, err := tenantstream.Fold(ctx, c.store, nil, nil, "race", at)
		if err != nil {
			t.Fatal(err)
		}
		holds := false
		if u := st.Users[n.user]; u != nil {
			for _, l := range u.Licenses {
				_, direct := l.Sources[domain.SourceDirect]
				holds = holds || (direct && l.SkuID == spb)
			}
		}
		if n.assign != holds {
			t.Errorf("no-op %+v is not one on the log at version %d: the user holds a direct license: %v", n, at, holds)
		}
	}
	t.Logf("%d no-ops checked against the fold", len(noops))
	c.check(true)
}

func answerTypes(a api.CommandAnswer) (uint64, []string) {
	var types []string
	for _, raw := range a.Events {
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(raw, &env)
		types = append(types, env.Type)
	}
	return a.Version, types
}

// TestSharedStoreNodeKilledUnderLoad kills one of two nodes with SIGKILL
// while both take commands: the other keeps serving, every command in
// doubt is settled through it, and the invariants hold.
func TestSharedStoreNodeKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and kills one under load")
	}
	c := newCluster(t, 2)
	ctx := context.Background()
	c.tenant("kill", 40, 30)
	tk := tok(t, "kill", "admin")
	var survivorErrs atomic.Int64
	stop := c.load("kill", tk, 40, 8, 7, 0, func(node int, r reliability.Result) {
		if node == 1 && (r.Status == 0 || r.Status >= 500) {
			survivorErrs.Add(1)
		}
	})
	time.Sleep(1500 * time.Millisecond)
	c.nodes[0].kill()
	time.Sleep(1500 * time.Millisecond)
	stop()
	if n := survivorErrs.Load(); n > 0 {
		t.Errorf("the surviving node failed %d commands while the other was killed", n)
	}
	// Commands sent to the killed node are in doubt: resend them, with
	// their Idempotency-Key, through the survivor.
	survivor := c.client(1)
	for _, e := range c.ledger.InDoubt() {
		survivor.Send(ctx, e)
	}
	if d := c.ledger.InDoubt(); len(d) > 0 {
		t.Fatalf("%d commands still in doubt after resending them to the survivor", len(d))
	}
	c.check(true)
}

// load has workers assign and unassign SPB for random users u0..u(users-1)
// of tenant through the nodes in turn (worker w through node w mod n),
// each pausing pause between commands, until the returned stop is called
// (it waits for them). seen, if not nil, is told every answer.
func (c *cluster) load(tenant, token string, users, workers int, seed uint64, pause time.Duration, seen func(node int, r reliability.Result)) (stop func()) {
	ctx := context.Background()
	clients := make([]*reliability.Client, len(c.nodes))
	for i := range clients {
		clients[i] = c.client(i)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), seed))
			for !done.Load() {
				node := w % len(clients)
				path := "/v1/tenants/" + tenant + "/licenses/SPB/assign"
				if rng.IntN(2) == 0 {
					path = "/v1/tenants/" + tenant + "/licenses/SPB/unassign"
				}
				r := clients[node].Command(ctx, tenant, admin(tenant), token, "POST", path, map[string]any{"users": []string{fmt.Sprintf("u%d", rng.IntN(users))}})
				if seen != nil {
					seen(node, r)
				}
				time.Sleep(pause)
			}
		}()
	}
	return func() { done.Store(true); wg.Wait() }
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func skuOf(t *testing.T, part string) string {
	p, ok := domain.DefaultCatalog().Lookup(part)
	if !ok {
		t.Fatalf("no product %s in the catalog", part)
	}
	return p.SkuID
}

// TestSharedStoreRedisFlushedUnderLoadWithPurgesDue empties the nodes'
// Redis database (FLUSHDB: what a restart of a Redis without persistence
// does) while two nodes take commands whose held data falls due within
// seconds. Afterwards every hold that was not released is purged exactly
// once, /readyz is 200 on both nodes, and the read models equal the fold.
func TestSharedStoreRedisFlushedUnderLoadWithPurgesDue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and flushes their Redis under load")
	}
	c := newCluster(t, 2, "SEATLEDGER_DATA_HOLD_PERIOD=2s", "SEATLEDGER_SCHEDULER_INTERVAL=200ms")
	ctx := context.Background()
	c.tenant("flush", 20, 20)
	tk := tok(t, "flush", "admin")
	stop := c.load("flush", tk, 20, 4, 11, 5*time.Millisecond, nil)
	time.Sleep(1500 * time.Millisecond)
	if err := c.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	stop()
	for _, e := range c.ledger.InDoubt() {
		c.client(0).Send(ctx, e)
	}

	// Every hold ends: released by a new assignment, or purged once.
	waitFor(t, "every hold released or purged", func() bool {
		open, twice := holds(t, c.store, "flush")
		if twice != "" {
			t.Fatalf("%s was purged twice", twice)
		}
		return open == 0
	})
	for _, n := range c.nodes {
		waitFor(t, "/readyz 200 on "+n.base, func() bool {
			res, err := http.Get(n.base + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
	}
	c.check(true)
}

// holds folds the tenant's hold events: how many holds are still open (held,
// neither released nor purged), and a hold purged more than once, if any.
func holds(t *testing.T, store eventstore.Store, tenant string) (open int, twice string) {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), tenantstream.Name(tenant), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{} // user|workload → held, released, purged
	for _, r := range recs {
		e, err := domain.DecodeEvent(r.Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch p := e.Payload.(type) {
		case domain.DataHeld:
			state[p.UserID+"|"+p.Workload] = "held"
		case domain.DataHoldReleased:
			state[p.UserID+"|"+p.Workload] = "released"
		case domain.HeldDataPurged:
			k := p.UserID + "|" + p.Workload
			if state[k] == "purged" {
				twice = k
			}
			state[k] = "purged"
		}
	}
	for _, s := range state {
		if s == "held" {
			open++
		}
	}
	return open, twice
}
