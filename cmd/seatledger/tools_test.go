package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/rebuild"
)

// server runs `serve` in-process on a fresh data directory.
type server struct {
	t     *testing.T
	addr  string
	dir   string
	op    string
	stop  func()
	admin string // a JWT of tenant contoso's Global admin
}

// testServeConfig is serve's configuration of the in-process tests: an
// embedded store in dir, an in-process Redis, a free port.
func testServeConfig(dir string) serveConfig {
	return serveConfig{Addr: "127.0.0.1:0", DataDir: dir, EventStore: "embedded", HoldPeriod: time.Hour,
		SchedulerInterval: time.Minute, BulkLimit: 20, ShutdownTimeout: 10 * time.Second, LogFormat: "text", NodeID: "test", PurgeRate: 5000}
}

func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	cfg := testServeConfig(dir)
	ctx, cancel := context.WithCancel(context.Background())
	addrCh, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, io.Discard, func(a string) { addrCh <- a }) }()
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
	return s
}

func (s *server) call(method, path, token, body string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (s *server) must(want int, method, path, token, body string) []byte {
	s.t.Helper()
	code, b := s.call(method, path, token, body)
	if code != want {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
	return b
}

// tool runs a subcommand against the server.
func (s *server) tool(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	args = append(args, "--server", "http://"+s.addr, "--data-dir", s.dir)
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func (s *server) contoso() {
	s.must(201, "POST", "/v1/tenants", s.op, `{"id":"contoso","name":"Contoso","globalAdmin":{"id":"admin","userPrincipalName":"admin@contoso.example","usageLocation":"US"}}`)
	sec, _, _ := readDevSecrets(s.dir)
	var out bytes.Buffer
	if code := run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin", "--secret", sec.JWTSecret}, &out, io.Discard); code != 0 {
		s.t.Fatal("token failed")
	}
	s.admin = strings.TrimSpace(out.String())
	s.must(201, "POST", "/v1/tenants/contoso/users", s.admin, `{"id":"alice","userPrincipalName":"alice@contoso.example","usageLocation":"US"}`)
	s.must(201, "POST", "/v1/tenants/contoso/subscriptions", s.admin, `{"id":"s1","skuId":"SPB","quantity":5}`)
	s.must(200, "POST", "/v1/tenants/contoso/licenses/SPB/assign", s.admin, `{"users":["alice"]}`)
	s.must(200, "POST", "/v1/tenants/contoso/licenses/SPB/unassign", s.admin, `{"users":["alice"]}`)
}

func TestOperatorTools(t *testing.T) {
	s := startServer(t)
	s.contoso()

	code, out, errOut := s.tool("audit", "--tenant", "contoso")
	if code != 0 || !strings.Contains(out, "LicenseAssigned") || !strings.Contains(out, "assigned Microsoft 365 Business Premium to alice") {
		t.Fatalf("audit: %d %s %s", code, out, errOut)
	}
	code, out, _ = s.tool("audit", "--tenant", "contoso", "--type", "DataHeld", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 1 || !strings.Contains(lines[0], `"type":"DataHeld"`) {
		t.Fatalf("audit --type --json: %d %q", code, out)
	}
	code, out, _ = s.tool("audit", "--tenant", "contoso", "--desc", "--limit", "1", "--json")
	if code != 0 || !strings.Contains(out, `"type":"DataHeld"`) {
		t.Fatalf("audit --desc --limit 1: %q", out)
	}

	code, out, _ = s.tool("state", "--tenant", "contoso", "--version", "6")
	var st struct {
		Version  uint64 `json:"version"`
		Products []struct{ Total, Assigned int }
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Version != 6 || st.Products[0].Total != 5 || st.Products[0].Assigned != 1 {
		t.Fatalf("state --version 6: %d %s", code, out)
	}
	code, out, _ = s.tool("diff", "--tenant", "contoso", "--from", "3", "--to", "8")
	if code != 0 || !strings.Contains(out, "user:alice") || !strings.Contains(out, "held:alice|Exchange") {
		t.Fatalf("diff: %d %s", code, out)
	}
	code, out, errOut = s.tool("verify")
	if code != 0 || !strings.Contains(out, "0 differences") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	// Replay into a fresh prefix and swap; the read models still verify,
	// and the live projection follows the new prefix.
	code, out, errOut = s.tool("replay")
	if code != 0 || !strings.Contains(out, `"swapped": true`) || !strings.Contains(errOut, "events/s") {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	s.must(200, "POST", "/v1/tenants/contoso/licenses/SPB/assign", s.admin, `{"users":["alice"]}`)
	time.Sleep(1500 * time.Millisecond) // the live projection moves to the new prefix
	code, out, errOut = s.tool("verify")
	if code != 0 || !strings.Contains(out, "0 differences") {
		t.Fatalf("verify after replay: %d %s %s", code, out, errOut)
	}
	body := s.must(200, "GET", "/v1/tenants/contoso/users/alice?minVersion=9", s.admin, "")
	if !strings.Contains(string(body), `"skuPartNumber":"SPB"`) {
		t.Fatalf("after the swap, new events reach the new prefix: %s", body)
	}
	code, out, errOut = s.tool("replay", "--tenant", "contoso")
	if code != 0 || !strings.Contains(out, `"tenant": "contoso"`) {
		t.Fatalf("replay --tenant: %d %s %s", code, out, errOut)
	}
	health := func() int {
		return run(context.Background(), []string{"healthcheck", "--server", "http://" + s.addr}, io.Discard, io.Discard)
	}
	if health() != 0 {
		t.Fatal("healthcheck of a running server failed")
	}
	if code, _, errOut := s.tool("state", "--tenant", "nobody"); code != 1 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("state of a missing tenant: %d %s", code, errOut)
	}
	if code, _, _ := s.tool("audit"); code != 2 {
		t.Fatal("audit without --tenant is a usage error")
	}
	s.stop()
	if health() != 1 {
		t.Fatal("healthcheck of a stopped server succeeded")
	}
}

// TestBinaryPurgesHeldDataEndToEnd builds the seatledger binary and runs it
// with a 2 s hold period and a 200 ms scheduler: a removed license's mailbox
// is purged, and the audit log shows it, within seconds.
func TestBinaryPurgesHeldDataEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := startBinary(t, t.TempDir(), "SEATLEDGER_DATA_HOLD_PERIOD=2s", "SEATLEDGER_SCHEDULER_INTERVAL=200ms")
	s := p.server(t)
	s.contoso()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		_, out, _ := s.tool("audit", "--tenant", "contoso", "--type", "HeldDataPurged", "--json")
		if strings.Contains(out, `"userId":"alice"`) && strings.Contains(out, `"workload":"Exchange"`) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no HeldDataPurged event in the audit log 15 s after the license was removed")
}

// serverProcess is `seatledger serve` running as its own process.
type serverProcess struct {
	cmd            *exec.Cmd
	addr, dir      string
	stdout, stderr *outputLines

	waitOnce sync.Once
	waitErr  error
}

// wait waits for the process to exit and returns how it did. It reads both
// pipes to their end before calling cmd.Wait, which closes them (os/exec:
// Wait must not be called before the reads are done, or the last lines are
// lost). Safe to call more than once and from several goroutines.
func (p *serverProcess) wait() error {
	p.waitOnce.Do(func() {
		p.stdout.waitEOF()
		p.stderr.waitEOF()
		p.waitErr = p.cmd.Wait()
	})
	return p.waitErr
}

// startBinary starts the built binary's `serve` on dir and a free port,
// with an in-process Redis, no SEATLEDGER_ variable of the test's own
// environment, and env; it is killed when the test ends if still running.
func startBinary(t *testing.T, dir string, env ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(buildBinary(t), "serve")
	cmd.Env = append(cleanEnv(), append([]string{"SEATLEDGER_ADDR=127.0.0.1:0", "SEATLEDGER_DATA_DIR=" + dir}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, dir: dir, stdout: watchLines(stdout), stderr: watchLines(stderr)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // an error if it has exited already
		_ = p.wait()
	})
	p.addr = listenAddr(t, p.stdout)
	return p
}

// readListenAddr reads the banner line "seatledger listening on http://ADDR".
func readListenAddr(t *testing.T, r io.Reader) string { return listenAddr(t, watchLines(r)) }

func listenAddr(t *testing.T, stdout *outputLines) string {
	t.Helper()
	const banner = "listening on http://"
	l := stdout.wait(t, banner, 60*time.Second)
	return strings.TrimSpace(l[strings.Index(l, banner)+len(banner):])
}

// server is a client of the process, with its operator token.
func (p *serverProcess) server(t *testing.T) *server {
	t.Helper()
	sec, _, err := readDevSecrets(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	return &server{t: t, addr: p.addr, dir: p.dir, op: sec.OperatorToken}
}

// cleanEnv is this process's environment without SEATLEDGER_ variables,
// which would change what a started binary does.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEATLEDGER_") {
			out = append(out, kv)
		}
	}
	return out
}

// outputLines keeps every line a process writes on a pipe, read as it
// comes so that the process never blocks on a full pipe.
type outputLines struct {
	mu    sync.Mutex
	lines []string
	eof   bool
	more  chan struct{} // closed (and replaced) when a line arrives or at EOF
}

func watchLines(r io.Reader) *outputLines {
	o := &outputLines{more: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for {
			ok := sc.Scan()
			o.mu.Lock()
			if ok {
				o.lines = append(o.lines, sc.Text())
			} else {
				o.eof = true
			}
			close(o.more)
			o.more = make(chan struct{})
			o.mu.Unlock()
			if !ok {
				return
			}
		}
	}()
	return o
}

// wait returns the first line holding substr, waiting up to timeout for it.
func (o *outputLines) wait(t *testing.T, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		for _, l := range o.lines {
			if strings.Contains(l, substr) {
				o.mu.Unlock()
				return l
			}
		}
		eof, more := o.eof, o.more
		o.mu.Unlock()
		if eof {
			t.Fatalf("the output ended without a line holding %q", substr)
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("no line holding %q within %s", substr, timeout)
		}
	}
}

// waitEOF returns once the pipe has reached its end.
func (o *outputLines) waitEOF() {
	for {
		o.mu.Lock()
		eof, more := o.eof, o.more
		o.mu.Unlock()
		if eof {
			return
		}
		<-more
	}
}

// String is everything read so far.
func (o *outputLines) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// buildBinary builds the seatledger binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "seatledger-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "seatledger")
		binOut, binErr = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binOut)
	}
	return binPath
}

// TestRebuildWhileAReplayRunsIsAConflict: POST /v1/projections/rebuild while
// another replay holds the lock answers 409 replay_running, not a 500.
func TestRebuildWhileAReplayRunsIsAConflict(t *testing.T) {
	const url = "redis://127.0.0.1:6379/10"
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: 10})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Skipf("no Redis on 127.0.0.1:6379: %v", err)
	}
	cleanup, err := claimBenchRedis(ctx, url) // an empty database, emptied again after
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	dir := t.TempDir()
	cfg := testServeConfig(dir)
	cfg.RedisURL = url
	sctx, cancel := context.WithCancel(ctx)
	addrCh, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(sctx, cfg, io.Discard, io.Discard, func(a string) { addrCh <- a }) }()
	s := &server{t: t, dir: dir}
	select {
	case s.addr = <-addrCh:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	defer func() { cancel(); <-done }()
	sec, _, err := readDevSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.op = sec.OperatorToken
	s.contoso()

	if err := rdb.Set(ctx, rebuild.ReplayLockKey, "sl:r1:", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	code, body := s.call("POST", "/v1/projections/rebuild", s.op, "")
	if code != http.StatusConflict || !strings.Contains(string(body), `"code":"replay_running"`) || !strings.Contains(string(body), "sl:r1:") {
		t.Fatalf("rebuild during another replay: %d %s", code, body)
	}
	if err := rdb.Del(ctx, rebuild.ReplayLockKey).Err(); err != nil {
		t.Fatal(err)
	}
	s.must(http.StatusOK, "POST", "/v1/projections/rebuild", s.op, "")
}
