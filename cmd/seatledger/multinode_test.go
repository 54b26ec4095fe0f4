package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/kurrentdb"
	"github.com/seatledger/seatledger/eventstore/postgres"
	"github.com/seatledger/seatledger/tenantstream"
)

// multiNodeRedisDB is the Redis database the several-node test owns (it
// flushes it), so the nodes' default key prefix cannot meet other tests'.
const multiNodeRedisDB = 13

type node struct {
	id   string
	addr string
	cmd  *exec.Cmd
}

// TestSeveralNodesShareOneStore runs three `seatledger serve` processes on
// one event store (KurrentDB with SEATLEDGER_KURRENTDB_URL, else a
// PostgreSQL schema of this machine) and one Redis: conflicting commands
// through different nodes stay consistent, killing the projection's lease
// holder hands the read models to another node, the read models equal the
// fold of the log, and no held data is purged twice.
func TestSeveralNodesShareOneStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	ctx := context.Background()
	storeURL, store := sharedStore(t)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: multiNodeRedisDB})
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Skipf("Redis at 127.0.0.1:6379 is not reachable (%v): skipping the several-node test", err)
	}
	rdb.FlushDB(ctx)
	t.Cleanup(func() { rdb.FlushDB(context.Background()); rdb.Close() })

	bin := buildBinary(t)
	secret, op := "multi-node-secret-0123456789", "multi-node-operator-token-0123456789"
	start := func(id string) *node {
		c := exec.Command(bin, "serve")
		c.Env = append(os.Environ(), "SEATLEDGER_ADDR=127.0.0.1:0", "SEATLEDGER_DATA_DIR="+t.TempDir(),
			"SEATLEDGER_EVENTSTORE="+storeURL, fmt.Sprintf("SEATLEDGER_REDIS_URL=redis://127.0.0.1:6379/%d", multiNodeRedisDB),
			"SEATLEDGER_JWT_SECRET="+secret, "SEATLEDGER_OPERATOR_TOKEN="+op, "SEATLEDGER_NODE_ID="+id,
			"SEATLEDGER_DATA_HOLD_PERIOD=2s", "SEATLEDGER_SCHEDULER_INTERVAL=200ms")
		out, _ := c.StdoutPipe()
		c.Stderr = io.Discard
		if dir := os.Getenv("SEATLEDGER_TEST_LOGS"); dir != "" {
			if f, err := os.Create(dir + "/" + id + ".log"); err == nil {
				c.Stderr = f
				t.Cleanup(func() { f.Close() })
			}
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		return &node{id: id, addr: readListenAddr(t, out), cmd: c}
	}
	nodes := []*node{start("n1"), start("n2"), start("n3")}
	tok, _ := api.NewToken([]byte(secret), "contoso", "admin", time.Hour, time.Now())
	call := func(n *node, method, path, token, body string) (int, []byte) {
		req, _ := http.NewRequest(method, "http://"+n.addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	must := func(n *node, want int, method, path, token, body string) {
		t.Helper()
		if code, b := call(n, method, path, token, body); code != want {
			t.Fatalf("%s %s %s: %d, want %d: %s", n.id, method, path, code, want, b)
		}
	}

	// A tenant with 10 licenses and 30 users, written through all nodes.
	must(nodes[0], 201, "POST", "/v1/tenants", op, `{"id":"contoso","name":"Contoso","globalAdmin":{"id":"admin","userPrincipalName":"admin@contoso.example","usageLocation":"US"}}`)
	must(nodes[1], 201, "POST", "/v1/tenants/contoso/subscriptions", tok, `{"id":"s1","skuId":"SPB","quantity":10}`)
	for i := 0; i < 30; i++ {
		must(nodes[i%3], 201, "POST", "/v1/tenants/contoso/users", tok, fmt.Sprintf(`{"id":"u%d","userPrincipalName":"u%d@contoso.example","usageLocation":"US"}`, i, i))
	}
	// Conflicting commands: 30 users race for 10 licenses through 3 nodes.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code, _ := call(nodes[i%3], "POST", "/v1/tenants/contoso/licenses/SPB/assign", tok, fmt.Sprintf(`{"users":["u%d"]}`, i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if codes[200] != 10 || codes[409] != 20 {
		t.Fatalf("30 racing assignments for 10 licenses over 3 nodes: %v", codes)
	}

	// Kill the node that holds the projection's lease.
	holder := waitHolder(t, rdb, "")
	var leader *node
	for _, n := range nodes {
		if strings.HasPrefix(holder, n.id+":") {
			leader = n
		}
	}
	if leader == nil {
		t.Fatalf("lease holder %q is none of the nodes", holder)
	}
	_ = leader.cmd.Process.Signal(syscall.SIGKILL)
	var alive []*node
	for _, n := range nodes {
		if n != leader {
			alive = append(alive, n)
		}
	}
	// More writes while the read models have no writer: unassign five users
	// (their mailboxes are held 2 s, then purged by some node).
	assigned := assignedUsers(t, store)
	for i, u := range assigned[:5] {
		must(alive[i%len(alive)], 200, "POST", "/v1/tenants/contoso/licenses/SPB/unassign", tok, `{"users":["`+u+`"]}`)
	}
	if h := waitHolder(t, rdb, holder); h == holder {
		t.Fatal("no other node took over the projection")
	}

	// Every hold is purged, once; then the read models equal the fold.
	deadline := time.Now().Add(30 * time.Second)
	for {
		held, purged, twice := holdStats(t, store)
		if twice != "" {
			t.Fatalf("%s was purged twice", twice)
		}
		if held == 5 && purged == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d holds, %d purged", held, purged)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var report struct {
		Tenants     int               `json:"tenants"`
		Differences []json.RawMessage `json:"differences"`
	}
	for {
		code, b := call(alive[0], "POST", "/v1/projections/verify", op, "")
		if code == 200 && json.Unmarshal(b, &report) == nil && len(report.Differences) == 0 && report.Tenants == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models never matched the log: %d %s", code, b)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The Licenses page agrees, through either surviving node.
	for _, n := range alive {
		code, b := call(n, "GET", "/v1/tenants/contoso/licenses", tok, "")
		if code != 200 || !strings.Contains(string(b), `"assigned":5`) || !strings.Contains(string(b), `"total":10`) {
			t.Fatalf("%s: licenses %d %s", n.id, code, b)
		}
	}
}

// sharedStore returns the connection string of an event store several
// processes can share, and a client of it for the test's own checks.
func sharedStore(t *testing.T) (string, eventstore.Store) {
	ctx := context.Background()
	if url := os.Getenv("SEATLEDGER_KURRENTDB_URL"); url != "" {
		st, err := kurrentdb.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return url, st
	}
	base := os.Getenv("SEATLEDGER_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	schema := fmt.Sprintf("multinode_%x", rand.Uint32())
	url := base + "&" + postgres.SchemaParam + "=" + schema
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Skipf("neither SEATLEDGER_KURRENTDB_URL is set nor PostgreSQL reachable at %s (%v): skipping the several-node test", base, err)
	}
	t.Cleanup(func() {
		st.Close()
		_ = postgres.DropSchema(context.Background(), base, schema)
	})
	return url, st
}

// waitHolder waits until the projection lease has a holder other than not.
func waitHolder(t *testing.T, rdb *redis.Client, not string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		h, err := rdb.Get(context.Background(), "sl:{lease:projection:readmodels}:holder").Result()
		if err == nil && h != "" && h != not {
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
	return not
}

func tenantEvents(t *testing.T, store eventstore.Store) []domain.Event {
	recs, err := store.ReadStream(context.Background(), tenantstream.Name("contoso"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]domain.Event, len(recs))
	for i, r := range recs {
		if out[i], err = domain.DecodeEvent(r.Data, nil); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// assignedUsers lists the users holding a license, from the log.
func assignedUsers(t *testing.T, store eventstore.Store) []string {
	st, err := tenantstream.Fold(context.Background(), store, nil, nil, "contoso", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for id, u := range st.Users {
		if len(u.Licenses) > 0 && id != "admin" {
			out = append(out, id)
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d users hold a license", len(out))
	}
	return out
}

// holdStats counts DataHeld and HeldDataPurged events and names a hold
// purged more than once.
func holdStats(t *testing.T, store eventstore.Store) (held, purged int, twice string) {
	seen := map[string]int{}
	for _, e := range tenantEvents(t, store) {
		switch p := e.Payload.(type) {
		case domain.DataHeld:
			held++
		case domain.HeldDataPurged:
			purged++
			k := p.UserID + "|" + p.Workload
			if seen[k]++; seen[k] > 1 {
				twice = k
			}
		}
	}
	return held, purged, twice
}
