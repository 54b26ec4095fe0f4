package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
)

func TestHelpAndUnknownSubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, &errb); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, v := range envVars {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("help does not document %s", v.Name)
		}
	}
	// Every subcommand has a line, its summary in one column after at least
	// two spaces however long the name.
	column := -1
	for name, c := range subcommands {
		line := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "  "+name+" ") {
				line = l
			}
		}
		i := strings.Index(line, c.Summary)
		if i < 0 || !strings.HasSuffix(line[:i], "  ") || column >= 0 && i != column {
			t.Errorf("help does not list %s with its summary in the column of the others: %q", name, line)
		}
		column = i
	}
	out.Reset()
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "serve") {
		t.Fatalf("--help: exit %d: %s", code, out.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown subcommand") {
		t.Fatalf("unknown: exit %d: %s", code, errb.String())
	}
	if code := run(context.Background(), nil, &out, &errb); code != 2 {
		t.Fatalf("no args: exit %d", code)
	}
	if code := run(context.Background(), []string{"serve", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestServeConfig(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := loadServeConfig(nil, env(nil), fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.DataDir != "./data" || cfg.EventStore != "embedded" || cfg.HoldPeriod != 720*time.Hour ||
		cfg.SchedulerInterval != time.Minute || cfg.BulkLimit != 20 || cfg.SyncDelay != 500*time.Microsecond {
		t.Fatalf("defaults %+v", cfg)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	cfg, err = loadServeConfig([]string{"--addr", "0.0.0.0:9000", "--bulk-limit", "5"},
		env(map[string]string{envAddr: "127.0.0.1:1", envHoldPeriod: "48h", envRedisURL: "redis://localhost:6379/2"}), fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "0.0.0.0:9000" || cfg.BulkLimit != 5 || cfg.HoldPeriod != 48*time.Hour || cfg.RedisURL != "redis://localhost:6379/2" {
		t.Fatalf("env+flags %+v", cfg)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	if cfg, err = loadServeConfig(nil, env(map[string]string{envSyncDelay: "2ms"}), fs); err != nil || cfg.SyncDelay != 2*time.Millisecond {
		t.Fatalf("%s=2ms: %v %v", envSyncDelay, cfg.SyncDelay, err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	if cfg, err = loadServeConfig([]string{"--sync-delay", "0"}, env(nil), fs); err != nil || embeddedSyncDelay(cfg.SyncDelay) >= 0 {
		t.Fatalf("--sync-delay 0 must turn waiting off: %v %v", cfg.SyncDelay, err)
	}
	for name, value := range map[string]string{
		envHoldPeriod: "thirty days", envSchedulerInterval: "-1m", envBulkLimit: "0", envEventStore: "mysql://x",
		envRedisURL: "http://nope", envAddr: "8080", envLogFormat: "xml", envJWTSecret: "short", envSyncDelay: "fast",
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		_, err := loadServeConfig(nil, env(map[string]string{name: value}), fs)
		var ce *configError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, value, err)
		}
	}
	t.Setenv(envBulkLimit, "abc")
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), envBulkLimit) {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestTokenSubcommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin", "--data-dir", dir}, &out, &errb); code != 2 {
		t.Fatalf("no secret: exit %d", code)
	}
	s, _, err := loadOrCreateDevSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, devSecretsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev secrets file: %v %v", fi.Mode(), err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin", "--ttl", "2h", "--data-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q", tok)
	}
	// The same secret from the flag gives a token the API accepts.
	out.Reset()
	if code := run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin", "--secret", s.JWTSecret}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if code := run(context.Background(), []string{"token", "--user", "admin", "--secret", "x"}, &out, &errb); code != 2 {
		t.Fatalf("missing tenant: exit %d", code)
	}
}

// TestServeGracefulShutdown: a request in flight when shutdown starts
// completes; the store is closed (the directory can be opened again) and a
// restart keeps the dev secrets. (TestBinarySIGTERMFinishesInFlightCommands
// does it with SIGTERM and commands, on the binary.)
func TestServeGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	cfg := testServeConfig(dir)
	start := func() (string, context.CancelFunc, chan error, *bytes.Buffer) {
		ctx, cancel := context.WithCancel(context.Background())
		addrCh := make(chan string, 1)
		done := make(chan error, 1)
		var out bytes.Buffer
		go func() { done <- serve(ctx, cfg, &out, io.Discard, func(a string) { addrCh <- a }) }()
		select {
		case a := <-addrCh:
			return a, cancel, done, &out
		case err := <-done:
			t.Fatalf("serve: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not start")
		}
		return "", cancel, done, &out
	}

	addr, cancel, done, _ := start()
	secrets, ok, err := readDevSecrets(dir)
	if err != nil || !ok {
		t.Fatalf("no dev secrets: %v", err)
	}
	body := `{"id":"contoso","name":"Contoso","globalAdmin":{"id":"admin","userPrincipalName":"admin@contoso.example"}}`
	rq, _ := http.NewRequest("POST", "http://"+addr+"/v1/tenants", strings.NewReader(body))
	rq.Header.Set("Authorization", "Bearer "+secrets.OperatorToken)
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create tenant: %d", res.StatusCode)
	}

	// A command in flight: the handler waits for the body (it asked for it:
	// 100 Continue), which comes only once shutdown has started (the server
	// stopped listening).
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	group := `{"id":"inflight","displayName":"In flight"}`
	fmt.Fprintf(conn, "POST /v1/tenants/contoso/groups HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, secrets.OperatorToken, len(group))
	answers := bufio.NewReader(conn)
	if res, err := http.ReadResponse(answers, nil); err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("in-flight request: %v %v", res, err)
	}
	cancel()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still listens 10 s after shutdown started")
		}
	}
	if _, err := io.WriteString(conn, group); err != nil {
		t.Fatal(err)
	}
	inflight, err := http.ReadResponse(answers, nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	inflight.Body.Close()
	if inflight.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: %d", inflight.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}

	// Restart on the same directory: same secrets, the tenant is there.
	addr, cancel, done, out := start()
	defer func() { cancel(); <-done }()
	if again, _, _ := readDevSecrets(dir); again != secrets {
		t.Fatal("dev secrets changed on restart")
	}
	if !strings.Contains(out.String(), "listening on http://"+addr) {
		t.Fatalf("banner: %s", out.String())
	}
	tok, err := api.NewToken([]byte(secrets.JWTSecret), "contoso", "admin", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rq, _ = http.NewRequest("POST", "http://"+addr+"/v1/tenants/contoso/groups", strings.NewReader(`{"id":"g1","displayName":"G"}`))
	rq.Header.Set("Authorization", "Bearer "+tok)
	res, err = http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("after restart: %d", res.StatusCode)
	}
	// The read side follows: buy licenses, read them with minVersion.
	rq, _ = http.NewRequest("POST", "http://"+addr+"/v1/tenants/contoso/subscriptions", strings.NewReader(`{"id":"s1","skuId":"SPB","quantity":5}`))
	rq.Header.Set("Authorization", "Bearer "+tok)
	res, err = http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	var ans api.CommandAnswer
	_ = json.NewDecoder(res.Body).Decode(&ans)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || ans.Version == 0 {
		t.Fatalf("buy: %d %+v", res.StatusCode, ans)
	}
	rq, _ = http.NewRequest("GET", fmt.Sprintf("http://%s/v1/tenants/contoso/licenses?minVersion=%d", addr, ans.Version), nil)
	rq.Header.Set("Authorization", "Bearer "+tok)
	res, err = http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	lic, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(lic), `"total":5`) {
		t.Fatalf("licenses: %d %s", res.StatusCode, lic)
	}
	rq, _ = http.NewRequest("GET", "http://"+addr+"/v1/projections", nil)
	rq.Header.Set("Authorization", "Bearer "+secrets.OperatorToken)
	res, err = http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("projections: %d", res.StatusCode)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		res, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
	}
}
