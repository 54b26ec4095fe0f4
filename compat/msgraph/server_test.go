package msgraph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	jwtSecret     = "compat-msgraph-jwt-secret-0123456789abcdef"
	operatorToken = "compat-msgraph-operator-token-0123456789abcdef"
)

// seatledger is a `seatledger serve` process on an embedded store and an
// in-process Redis, behind a proxy that records what the SDK sends.
type seatledger struct {
	base  string // the proxy's URL
	bin   string
	proxy *httptest.Server

	mu        sync.Mutex
	encodings []string // Content-Encoding of each request with a body
}

// repoRoot is the seatledger module above this one.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "seatledger")); err != nil {
		t.Fatalf("no seatledger module at %s: %v", dir, err)
	}
	return dir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startSeatledger builds the binary and starts it; it stops with the test.
func startSeatledger(t *testing.T) *seatledger {
	t.Helper()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "seatledger")
	build := exec.Command("go", "build", "-o", bin, "./cmd/seatledger")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/seatledger: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"SEATLEDGER_ADDR="+addr,
		"SEATLEDGER_DATA_DIR="+filepath.Join(tmp, "data"),
		"SEATLEDGER_EVENTSTORE=embedded",
		"SEATLEDGER_REDIS_URL=",
		"SEATLEDGER_JWT_SECRET="+jwtSecret,
		"SEATLEDGER_OPERATOR_TOKEN="+operatorToken,
	)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("seatledger serve output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("seatledger serve exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("seatledger serve not ready after 60 s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := &seatledger{bin: bin}
	target, _ := url.Parse("http://" + addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	s.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1.0/") && r.ContentLength != 0 && r.Body != nil && r.Method != http.MethodGet {
			s.mu.Lock()
			s.encodings = append(s.encodings, r.Header.Get("Content-Encoding"))
			s.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.proxy.Close)
	s.base = s.proxy.URL
	return s
}

// token prints a token of user in tenant with `seatledger token`.
func (s *seatledger) token(t *testing.T, tenant, user string) string {
	t.Helper()
	out, err := exec.Command(s.bin, "token", "--tenant", tenant, "--user", user, "--secret", jwtSecret).Output()
	if err != nil {
		t.Fatalf("seatledger token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// v1 sends a request to seatledger's own API (to set a tenant up).
func (s *seatledger) v1(t *testing.T, tok, method, path string, body any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

func (s *seatledger) gzipped() (n, of int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.encodings {
		if e == "gzip" {
			n++
		}
	}
	return n, len(s.encodings)
}

func ptr[T any](v T) *T { return &v }

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

var _ = fmt.Sprint
