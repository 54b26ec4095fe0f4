package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/scheduler"
)

// ownRedis is a redis-server a test starts on a free port, without
// persistence, so it can flush it without touching anyone else's data.
type ownRedis struct {
	port int
	dir  string
}

func startOwnRedis(t *testing.T) *ownRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &ownRedis{port: ln.Addr().(*net.TCPAddr).Port, dir: t.TempDir()}
	ln.Close()
	out, err := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--daemonize", "yes", "--dir", r.dir, "--pidfile", filepath.Join(r.dir, "redis.pid")).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-server: %v %s", err, out)
	}
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(r.dir, "redis.pid"))
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	})
	c := r.client()
	defer c.Close()
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("redis-server did not answer")
	return nil
}

func (r *ownRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *ownRedis) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port)})
}

// syncBuffer is a log sink read while serve writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startServerWith runs serve in-process with cfg changed by edit; its log
// goes to the returned buffer.
func startServerWith(t *testing.T, edit func(*serveConfig)) (*server, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	cfg := testServeConfig(dir)
	edit(&cfg)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrCh, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, logs, func(a string) { addrCh <- a }) }()
	s := &server{t: t, dir: dir}
	select {
	case s.addr = <-addrCh:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	var once sync.Once
	s.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(s.stop)
	sec, _, err := readDevSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.op = sec.OperatorToken
	return s, logs
}

// holds counts the DataHeld and HeldDataPurged events of tenant contoso per
// "<user>|<workload>", read from the event store through the API.
func (s *server) holds() (held, purged map[string]int) {
	s.t.Helper()
	b := s.must(200, "GET", "/v1/tenants/contoso/events?limit=1000", s.admin, "")
	var evs []struct {
		Type string `json:"type"`
		Data struct {
			UserID   string `json:"userId"`
			Workload string `json:"workload"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &evs); err != nil {
		s.t.Fatalf("events: %v: %s", err, b)
	}
	held, purged = map[string]int{}, map[string]int{}
	for _, e := range evs {
		switch e.Type {
		case "DataHeld":
			held[e.Data.UserID+"|"+e.Data.Workload]++
		case "HeldDataPurged":
			purged[e.Data.UserID+"|"+e.Data.Workload]++
		}
	}
	return held, purged
}

// purgedOnce reports whether every hold of user is purged, failing the test
// if one is purged twice.
func (s *server) purgedOnce(user string) bool {
	s.t.Helper()
	held, purged := s.holds()
	all, n := true, 0
	for k := range held {
		if !strings.HasPrefix(k, user+"|") {
			continue
		}
		n++
		if purged[k] > 1 {
			s.t.Fatalf("%s purged %d times", k, purged[k])
		}
		all = all && purged[k] == 1
	}
	if n == 0 {
		s.t.Fatalf("%s has no held data", user)
	}
	return all
}

// waitPurged waits until every hold of user is purged, then checks for a
// while (several scheduler ticks) that none is purged again.
func (s *server) waitPurged(user string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !s.purgedOnce(user) {
		if time.Now().After(deadline) {
			_, p := s.holds()
			s.t.Fatalf("%s's held data not purged within %s: %v", user, within, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if !s.purgedOnce(user) {
		s.t.Fatal("unreachable: a purge undone")
	}
}

// waitReady waits until /readyz is 200: with an empty Redis the node first
// builds the read models.
func (s *server) waitReady(within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, b := s.call("GET", "/readyz", "", "")
		if code == 200 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("not ready after %s: %d %s", within, code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) readyz() int {
	code, _ := s.call("GET", "/readyz", "", "")
	return code
}

// TestPurgesSurviveRedisDataLoss: Redis loses its data (FLUSHDB) and with it
// the purge command stream and its consumer group. A purge falling due
// afterwards is still done, once; while the group cannot be recreated,
// /readyz is not ready, and purges resume when it can be.
func TestPurgesSurviveRedisDataLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for held data to fall due")
	}
	rs := startOwnRedis(t)
	rdb := rs.client()
	defer rdb.Close()
	ctx := context.Background()
	s, logs := startServerWith(t, func(c *serveConfig) {
		c.RedisURL, c.HoldPeriod, c.SchedulerInterval = rs.url(), 2*time.Second, 100*time.Millisecond
	})
	s.waitReady(10 * time.Second)
	s.contoso() // alice's data held from now, due in 2 s
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s.waitPurged("alice", 15*time.Second)

	// Purging made impossible: the stream's key holds a string, so neither
	// the stream nor its group can be made.
	s.must(201, "POST", "/v1/tenants/contoso/users", s.admin, `{"id":"bob","userPrincipalName":"bob@contoso.example","usageLocation":"US"}`)
	s.must(200, "POST", "/v1/tenants/contoso/licenses/SPB/assign", s.admin, `{"users":["bob"]}`)
	s.must(200, "POST", "/v1/tenants/contoso/licenses/SPB/unassign", s.admin, `{"users":["bob"]}`)
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, scheduler.Topic, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.readyz() == 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz stayed 200 while the purge command bus had no consumer group")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // bob's purge falls due meanwhile
	if code := s.readyz(); code == 200 {
		t.Fatal("/readyz turned 200 while purges still could not be handled")
	}
	if _, p := s.holds(); p["bob|Exchange"] != 0 {
		t.Fatalf("purged without a command bus? %v", p)
	}
	if err := rdb.Del(ctx, scheduler.Topic).Err(); err != nil {
		t.Fatal(err)
	}
	s.waitPurged("bob", 15*time.Second)
	if code := s.readyz(); code != 200 {
		t.Fatalf("readyz after recovery: %d", code)
	}
	if strings.Count(logs.String(), "NOGROUP") > 20 {
		t.Errorf("NOGROUP logged %d times", strings.Count(logs.String(), "NOGROUP"))
	}
}

// TestReadsNeverGoBackInTime: Redis loses the read models (FLUSHDB) while
// clients read and write. Every read of an existing tenant answers either
// 200 with a version at least as new as any this node answered before the
// request was sent, or 503 with Retry-After — never 404 — and /readyz is
// not ready while they are rebuilt; then reads answer again.
func TestReadsNeverGoBackInTime(t *testing.T) {
	if testing.Short() {
		t.Skip("flushes Redis under load for several seconds")
	}
	rs := startOwnRedis(t)
	rdb := rs.client()
	defer rdb.Close()
	ctx := context.Background()
	s, _ := startServerWith(t, func(c *serveConfig) { c.RedisURL = rs.url() })
	s.waitReady(10 * time.Second)
	s.contoso()
	tokens := map[string]string{"contoso": s.admin}
	sec, _, _ := readDevSecrets(s.dir)
	for i := range 5 {
		tn := fmt.Sprintf("t%d", i)
		s.must(201, "POST", "/v1/tenants", s.op, `{"id":"`+tn+`","name":"T","globalAdmin":{"id":"admin","userPrincipalName":"admin@t.example","usageLocation":"US"}}`)
		var out bytes.Buffer
		if code := run(ctx, []string{"token", "--tenant", tn, "--user", "admin", "--secret", sec.JWTSecret}, &out, io.Discard); code != 0 {
			t.Fatal("token failed")
		}
		tokens[tn] = strings.TrimSpace(out.String())
		for j := range 20 {
			s.must(201, "POST", "/v1/tenants/"+tn+"/users", tokens[tn], fmt.Sprintf(`{"id":"u%d","userPrincipalName":"u%d@t.example","usageLocation":"US"}`, j, j))
		}
	}

	var (
		mu      sync.Mutex
		served  = map[string]uint64{} // highest version answered, per tenant
		counts  = map[int]int{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		failure string
	)
	fail := func(msg string) {
		mu.Lock()
		if failure == "" {
			failure = msg
		}
		mu.Unlock()
	}
	for tn, tok := range tokens {
		wg.Add(1)
		go func() { // a writer: one more user every 20 ms
			defer wg.Done()
			for j := 100; ; j++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				s.call("POST", "/v1/tenants/"+tn+"/users", tok, fmt.Sprintf(`{"id":"w%d","userPrincipalName":"w%d@t.example","usageLocation":"US"}`, j, j))
			}
		}()
		for _, path := range []string{"/licenses", "/users", "/users/admin"} {
			wg.Add(1)
			go func() { // a reader
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					before := served[tn]
					mu.Unlock()
					req, _ := http.NewRequest("GET", "http://"+s.addr+"/v1/tenants/"+tn+path, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						fail(err.Error())
						return
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					mu.Lock()
					counts[res.StatusCode]++
					mu.Unlock()
					switch res.StatusCode {
					case 200:
						v, _ := strconv.ParseUint(res.Header.Get("X-Tenant-Version"), 10, 64)
						if v < before {
							fail(fmt.Sprintf("GET %s%s: version %d after %d was answered", tn, path, v, before))
						}
						mu.Lock()
						served[tn] = max(served[tn], v)
						mu.Unlock()
					case 503:
						if res.Header.Get("Retry-After") == "" {
							fail("503 without Retry-After")
						}
					default:
						fail(fmt.Sprintf("GET %s%s: %d %s", tn, path, res.StatusCode, b))
					}
				}
			}()
		}
	}
	notReady := false
	for range 3 {
		time.Sleep(700 * time.Millisecond)
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if s.readyz() != 200 {
				notReady = true
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("answers: %v", counts)
	if failure != "" {
		t.Fatal(failure)
	}
	if !notReady {
		t.Error("/readyz stayed 200 after every FLUSHDB")
	}
	s.waitReady(10 * time.Second)
	for tn, tok := range tokens {
		code, b := s.call("GET", "/v1/tenants/"+tn+"/users/admin", tok, "")
		if code != 200 {
			t.Fatalf("%s after recovery: %d %s", tn, code, b)
		}
	}
}
