package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
)

// clusterTenants creates n tenants t0… on s, each with its admin and users
// u0…u<users-1>, and returns their tokens and the version at which each
// user was created.
func clusterTenants(t *testing.T, s *server, n, users int) (tokens map[string]string, created map[string]map[string]uint64) {
	t.Helper()
	sec, _, err := readDevSecrets(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens, created = map[string]string{}, map[string]map[string]uint64{}
	for i := range n {
		tn := fmt.Sprintf("t%d", i)
		s.must(201, "POST", "/v1/tenants", s.op, `{"id":"`+tn+`","name":"T","globalAdmin":{"id":"admin","userPrincipalName":"admin@t.example","usageLocation":"US"}}`)
		var out bytes.Buffer
		if code := run(context.Background(), []string{"token", "--tenant", tn, "--user", "admin", "--secret", sec.JWTSecret}, &out, io.Discard); code != 0 {
			t.Fatal("token failed")
		}
		tokens[tn] = strings.TrimSpace(out.String())
		created[tn] = map[string]uint64{}
		for j := range users {
			u := fmt.Sprintf("u%d", j)
			created[tn][u] = commandVersion(t, s.must(201, "POST", "/v1/tenants/"+tn+"/users", tokens[tn],
				fmt.Sprintf(`{"id":"%s","userPrincipalName":"%s@t.example","usageLocation":"US"}`, u, u)))
		}
	}
	return tokens, created
}

func commandVersion(t *testing.T, body []byte) uint64 {
	t.Helper()
	var r struct{ Version uint64 }
	if err := json.Unmarshal(body, &r); err != nil || r.Version == 0 {
		t.Fatalf("command answer %s: %v", body, err)
	}
	return r.Version
}

// TestRedisClusterURLIsChecked: SEATLEDGER_REDIS_URL takes the cluster
// form (addr parameters) and refuses a database other than 0 in it.
func TestRedisClusterURLIsChecked(t *testing.T) {
	for url, ok := range map[string]bool{
		"redis://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003": true,
		"redis://127.0.0.1:6379/4":                                       true,
		"redis://127.0.0.1:7001/4?addr=127.0.0.1:7002":                   false,
		"redis://127.0.0.1:7001?addr=7002":                               false,
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := loadServeConfig(nil, env(map[string]string{envRedisURL: url}), fs)
		var ce *configError
		if ok != (err == nil) || (!ok && (!errors.As(err, &ce) || !strings.Contains(err.Error(), envRedisURL))) {
			t.Errorf("%s: %v", url, err)
		}
	}
}

// TestServeOnARedisCluster: SEATLEDGER_REDIS_URL naming a Redis Cluster
// (addr parameters) runs the read side on it: the read models are built,
// /readyz is ready, queries read the writes, verify finds no difference.
// A plain URL naming one node of that cluster is refused at start.
func TestServeOnARedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a first start on a shared Redis waits out a former lease holder (5 s); the short suite runs the read side on a cluster in projections, queries and scheduler")
	}
	c := redistest.NewCluster(t, redistest.ClusterOptions{})
	s, _ := startServerWith(t, func(cfg *serveConfig) { cfg.RedisURL = c.URL })
	s.waitReady(30 * time.Second)
	tokens, created := clusterTenants(t, s, 6, 3)
	for tn, tok := range tokens {
		v := created[tn]["u2"]
		var users []struct{ ID string }
		if err := json.Unmarshal(s.must(200, "GET", fmt.Sprintf("/v1/tenants/%s/users?minVersion=%d", tn, v), tok, ""), &users); err != nil || len(users) != 4 {
			t.Fatalf("%s users: %v %v", tn, users, err)
		}
	}
	if code, out, errOut := s.tool("verify"); code != 0 {
		t.Fatalf("verify on the cluster: %d %s %s", code, out, errOut)
	}

	cfg := testServeConfig(t.TempDir())
	cfg.RedisURL = "redis://" + c.Addr(0)
	err := serve(context.Background(), cfg, io.Discard, io.Discard, func(string) {})
	if !errors.Is(err, readmodel.ErrClusterNode) && (err == nil || !strings.Contains(err.Error(), "addr parameters")) {
		t.Fatalf("serve with one node of a cluster as its Redis: %v", err)
	}
}

// TestRedisClusterMasterLost kills one master of a three-master cluster
// without replicas, under writes and reads, and restarts it empty. What
// must hold (and is logged as observed, docs/OPERATIONS.md "Redis
// Cluster"):
//   - queries answer 200 or 503 with Retry-After, never 404 or 500, and a
//     200 never misses a user created at or before the version it claims;
//   - commands keep working (the event store does not depend on Redis);
//   - /readyz is 503 while the cluster is down;
//   - once the master is back, the read models are rebuilt and converge:
//     every query answers the latest writes, verify finds no difference.
func TestRedisClusterMasterLost(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a Redis Cluster master for several seconds")
	}
	keys := readmodel.Keys{Prefix: readmodel.DefaultPrefix}
	t.Run("a master of tenants only", func(t *testing.T) {
		masterLost(t, func(c *redistest.LocalCluster) int {
			markers := c.NodeOf(readmodel.Slot(keys.Present()))
			lease := c.NodeOf(readmodel.Slot(leaseHolderKey))
			for tn := range 6 {
				if n := c.NodeOf(readmodel.Slot(keys.Tenant(fmt.Sprint("t", tn)))); n != markers && n != lease {
					return n
				}
			}
			t.Skip("every master with a tenant holds the markers or the lease")
			return 0
		})
	})
	t.Run("the master of the markers", func(t *testing.T) {
		masterLost(t, func(c *redistest.LocalCluster) int { return c.NodeOf(readmodel.Slot(keys.Present())) })
	})
}

// leaseHolderKey is the key of the holder of the projection's lease.
const leaseHolderKey = "sl:{lease:projection:readmodels}:holder"

func masterLost(t *testing.T, pick func(*redistest.LocalCluster) int) {
	c := redistest.NewCluster(t, redistest.ClusterOptions{NodeTimeout: time.Second})
	s, _ := startServerWith(t, func(cfg *serveConfig) { cfg.RedisURL = c.URL })
	s.waitReady(30 * time.Second)
	tokens, created := clusterTenants(t, s, 6, 3)

	keys := readmodel.Keys{Prefix: readmodel.DefaultPrefix}
	victim := pick(c)
	var onVictim []string
	for tn := range tokens {
		if c.NodeOf(readmodel.Slot(keys.Tenant(tn))) == victim {
			onVictim = append(onVictim, tn)
		}
	}
	t.Logf("victim: node %d (%s) serving tenants %v; it holds the markers: %v, the checkpoint: %v, the projection's lease: %v",
		victim, c.Addr(victim), onVictim,
		c.NodeOf(readmodel.Slot(keys.Present())) == victim,
		c.NodeOf(readmodel.Slot(keys.Checkpoint("readmodels"))) == victim,
		c.NodeOf(readmodel.Slot(leaseHolderKey)) == victim)

	var (
		mu       sync.Mutex
		phase    = "before"
		answers  = map[string]map[string]int{} // phase -> "tenant-on-victim|other status" -> count
		failures []string
		served   = map[string]uint64{}
	)
	record := func(tn string, code int) {
		mu.Lock()
		defer mu.Unlock()
		where := "other"
		for _, v := range onVictim {
			if v == tn {
				where = "victim"
			}
		}
		if answers[phase] == nil {
			answers[phase] = map[string]int{}
		}
		answers[phase][where+" "+strconv.Itoa(code)]++
	}
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	setPhase := func(p string) { mu.Lock(); phase = p; mu.Unlock() }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for tn, tok := range tokens {
		wg.Add(2)
		go func() { // a writer: one more user every 50 ms
			defer wg.Done()
			for j := 100; ; j++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				u := fmt.Sprintf("w%d", j)
				code, b := s.call("POST", "/v1/tenants/"+tn+"/users", tok, fmt.Sprintf(`{"id":"%s","userPrincipalName":"%s@t.example","usageLocation":"US"}`, u, u))
				if code != 201 {
					fail("command on %s: %d %s", tn, code, b)
					continue
				}
				v := commandVersion(t, b)
				mu.Lock()
				created[tn][u] = v
				mu.Unlock()
			}
		}()
		go func() { // a reader of the users list
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				mu.Lock()
				known := map[string]uint64{}
				for u, v := range created[tn] {
					known[u] = v
				}
				mu.Unlock()
				req, _ := http.NewRequest("GET", "http://"+s.addr+"/v1/tenants/"+tn+"/users?limit=500", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					fail("GET %s: %v", tn, err)
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				record(tn, res.StatusCode)
				switch res.StatusCode {
				case 503:
					if res.Header.Get("Retry-After") == "" {
						fail("503 without Retry-After on %s", tn)
					}
				case 200:
					v, _ := strconv.ParseUint(res.Header.Get("X-Tenant-Version"), 10, 64)
					var users []struct{ ID string }
					if err := json.Unmarshal(b, &users); err != nil {
						fail("GET %s: %v %s", tn, err, b)
						continue
					}
					have := map[string]bool{}
					for _, u := range users {
						have[u.ID] = true
					}
					for u, cv := range known {
						if cv <= v && !have[u] {
							fail("GET %s at version %d misses %s, created at version %d (%d users listed)", tn, v, u, cv, len(users))
							break
						}
					}
					mu.Lock()
					if v < served[tn] {
						failures = append(failures, fmt.Sprintf("%s went back from version %d to %d", tn, served[tn], v))
					}
					served[tn] = v
					mu.Unlock()
				default:
					fail("GET %s: %d %s", tn, res.StatusCode, b)
				}
			}
		}()
	}
	time.Sleep(time.Second)

	setPhase("down")
	killed := time.Now()
	c.Kill(victim)
	var downAt time.Duration // the first 503 of a tenant on a master still up
	for time.Since(killed) < 5*time.Second {
		if downAt == 0 {
			for tn, tok := range tokens {
				if c.NodeOf(readmodel.Slot(keys.Tenant(tn))) != victim {
					if code, _ := s.call("GET", "/v1/tenants/"+tn+"/licenses", tok, ""); code == 503 {
						downAt = time.Since(killed)
					}
					break
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := s.readyz(); code != 503 {
		t.Errorf("/readyz with a master down: %d", code)
	}

	setPhase("back")
	back := time.Now()
	if err := c.Restart(victim); err != nil {
		t.Fatal(err)
	}
	// Converged: every tenant answers its latest write, and verify agrees.
	deadline := time.Now().Add(90 * time.Second)
	for tn, tok := range tokens {
		for {
			mu.Lock()
			latest := uint64(0)
			for _, v := range created[tn] {
				latest = max(latest, v)
			}
			mu.Unlock()
			code, b := s.call("GET", fmt.Sprintf("/v1/tenants/%s/users?limit=500&minVersion=%d", tn, latest), tok, "")
			if code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not converge: %d %s", tn, code, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	converged := time.Since(back)
	setPhase("after")
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	for {
		code, out, errOut := s.tool("verify")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify after the master came back: %d %s %s", code, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("queries by phase (tenant on the killed master or another, status): %v", answers)
	t.Logf("a tenant on a live master answered 503 %v after the kill (cluster-node-timeout 1s); every tenant answered its latest write %v after the restart",
		downAt.Round(10*time.Millisecond), converged.Round(10*time.Millisecond))
}
