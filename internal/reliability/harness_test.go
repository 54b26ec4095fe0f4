package reliability_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/reliability"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
)

const (
	operator = "reliability-operator-token-0123456789"
	secret   = "reliability-secret-0123456789abcdef"
)

// strict makes no-op idempotency findings (reliability.NoopIdempotency) fail
// the tests. It is on: retryable commands that change nothing are recorded
// (domain.NothingChanged); SEATLEDGER_STRICT_IDEMPOTENCY=0 turns it off.
var strict = os.Getenv("SEATLEDGER_STRICT_IDEMPOTENCY") != "0"

// report logs a Check report and fails on violations (and on known issues
// in strict mode).
func report(t testing.TB, rep reliability.Report) {
	t.Helper()
	t.Logf("invariants: %s", rep)
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	for i, v := range rep.KnownIssues {
		if strict {
			t.Errorf("known issue (%s): %s", reliability.NoopIdempotency, v)
		} else if i < 5 {
			t.Logf("KNOWN ISSUE (%s): %s", reliability.NoopIdempotency, v)
		}
	}
}

// skipShort skips a long scenario under `go test -short` (the README's test
// command, which must stay within a few minutes); `make test-all` and
// .ci/run run it.
func skipShort(t *testing.T, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: long, skipped under -short (make test-all runs it)", what)
	}
}

// soak is set by -tags soak (soak_test.go) or SEATLEDGER_SOAK=1: the long
// versions of the scenarios.
var soak = os.Getenv("SEATLEDGER_SOAK") == "1"

func pick[T any](short, long T) T {
	if soak {
		return long
	}
	return short
}

func tok(t testing.TB, tenant, user string) string {
	s, err := api.NewToken([]byte(secret), tenant, user, 4*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTok(tenant string) (string, error) {
	return api.NewToken([]byte(secret), tenant, "admin", 4*time.Hour, time.Now())
}

var opActor = domain.Actor{Operator: true}

func admin(tenant string) domain.Actor { return domain.Actor{UserID: "admin"} }

// realRedis connects to the shared Redis on 127.0.0.1:6379, or skips.
func realRedis(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		t.Skipf("no Redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// deletePrefix removes every key under prefix.
func deletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	n := 0
	var cursor uint64
	for {
		ks, next, err := rdb.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return n, err
		}
		if len(ks) > 0 {
			// One key at a time: the keys live in different hash slots.
			for _, k := range ks {
				if err := rdb.Del(ctx, k).Err(); err != nil {
					return n, err
				}
				n++
			}
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

// stack is a whole server in-process: embedded store, command handler,
// projection into Redis under a unique prefix, queries, API over loopback
// HTTP.
type stack struct {
	t       testing.TB
	dir     string
	store   *embedded.Store
	cmds    *commands.Handler
	rdb     redis.UniversalClient
	prefix  string
	proj    *projections.Projection
	stopRun func()
	http    *httptest.Server
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

type stackOpts struct {
	dir    string // default t.TempDir()
	rdb    redis.UniversalClient
	noSync bool
}

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	s := &stack{t: t, dir: o.dir, rdb: o.rdb, logs: &syncBuffer{}}
	if s.rdb == nil {
		s.rdb = realRedis(t)
	}
	s.prefix = fmt.Sprintf("reltest:%x:", rand.Uint64())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = deletePrefix(ctx, s.rdb, s.prefix)
	})
	s.open(o.noSync)
	t.Cleanup(s.close)
	return s
}

func (s *stack) open(noSync bool) {
	t := s.t
	logger := slog.New(slog.NewTextHandler(s.logs, nil))
	st, err := embedded.Open(s.dir, embedded.Options{NoSync: noSync, Logger: logger, CacheSize: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.store = st
	decider := domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	s.cmds = commands.New(commands.Config{Store: st, Snapshots: st, Decider: decider, Logger: logger})
	s.startProjection()
	q := queries.New(queries.Config{Redis: s.rdb, Prefix: s.prefix, RetryAfter: time.Second, Timeout: 2 * time.Second})
	srv := api.New(api.Config{Commands: s.cmds, Decider: decider, JWTSecret: []byte(secret), OperatorToken: operator,
		Logger: logger, Queries: q})
	s.http = httptest.NewUnstartedServer(srv)
	s.http.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	s.http.Start()
}

func (s *stack) startProjection() {
	proj, err := projections.New(projections.Config{Store: s.store, Snapshots: s.store, Redis: s.rdb, Prefix: s.prefix,
		Logger: slog.New(slog.NewTextHandler(s.logs, nil)), RetryInitial: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = proj.Run(ctx)
	}()
	s.proj = proj
	s.stopRun = func() { cancel(); <-done }
}

func (s *stack) close() {
	if s.http == nil {
		return
	}
	s.http.CloseClientConnections()
	s.http.Close()
	s.stopRun()
	s.cmds.Close()
	_ = s.store.Close()
	s.http = nil
}

// restart closes everything and opens it again on the same directory.
func (s *stack) restart() {
	s.close()
	s.open(false)
}

func (s *stack) client(l *reliability.Ledger) *reliability.Client {
	return reliability.NewClient(s.http.URL, l)
}

// check waits for the projection and runs every invariant.
func (s *stack) check(l *reliability.Ledger) reliability.Report {
	s.t.Helper()
	ctx := context.Background()
	if err := reliability.WaitProjection(ctx, s.store, s.rdb, s.prefix, s.proj.Name(), 60*time.Second); err != nil {
		s.t.Fatalf("projection: %v\n%v", err, s.proj.Status())
	}
	rep, err := reliability.Check(ctx, s.store, l, &reliability.ReadSide{Redis: s.rdb, Prefix: s.prefix}, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	report(s.t, rep)
	return rep
}

// must sends a command and fails unless it is acknowledged.
func must(t testing.TB, c *reliability.Client, tenant string, actor domain.Actor, token, method, path string, body any) reliability.Result {
	t.Helper()
	r := c.Command(context.Background(), tenant, actor, token, method, path, body)
	if r.Status/100 != 2 {
		t.Fatalf("%s %s: %d %v %s", method, path, r.Status, r.Err, r.Body)
	}
	return r
}

// setupTenant creates tenant with a Global admin, users u0..u(n-1) and a
// subscription of quantity licenses of sku.
func setupTenant(t testing.TB, c *reliability.Client, tenant string, users int, sku string, quantity int) {
	t.Helper()
	must(t, c, tenant, opActor, operator, "POST", "/v1/tenants", map[string]any{"id": tenant, "name": tenant,
		"globalAdmin": map[string]any{"id": "admin", "userPrincipalName": "admin@" + tenant + ".example", "usageLocation": "US"}})
	tk := tok(t, tenant, "admin")
	must(t, c, tenant, admin(tenant), tk, "POST", "/v1/tenants/"+tenant+"/subscriptions", map[string]any{"id": "s1", "skuId": sku, "quantity": quantity})
	for i := range users {
		must(t, c, tenant, admin(tenant), tk, "POST", "/v1/tenants/"+tenant+"/users",
			map[string]any{"id": fmt.Sprintf("u%d", i), "userPrincipalName": fmt.Sprintf("u%d@%s.example", i, tenant), "usageLocation": "US"})
	}
}

// parallel runs fn(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	ch := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				fn(i)
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

// freePort returns a free TCP port of 127.0.0.1, within
// SEATLEDGER_TEST_PORTS ("lo-hi") when it is set.
func freePort(t testing.TB) int {
	var lo, hi int
	if _, err := fmt.Sscanf(os.Getenv("SEATLEDGER_TEST_PORTS"), "%d-%d", &lo, &hi); err == nil {
		for range 4 * (hi - lo + 1) {
			port := lo + rand.IntN(hi-lo+1)
			if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				ln.Close()
				return port
			}
		}
		t.Fatalf("no free port in SEATLEDGER_TEST_PORTS=%s", os.Getenv("SEATLEDGER_TEST_PORTS"))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
