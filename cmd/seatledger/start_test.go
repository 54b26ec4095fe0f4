package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestHardening03_OperatorTokenAtLeast32CharactersNotTheJWTSecret (#18, item 3): an
// operator token shorter than 32 characters, or equal to the JWT secret, is
// refused with exit 2 and a message naming the variable (never its value).
func TestHardening03_OperatorTokenAtLeast32CharactersNotTheJWTSecret(t *testing.T) {
	long := strings.Repeat("o", 32)
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantName string // "" when accepted
	}{
		{"one character", map[string]string{envOperatorToken: "x"}, envOperatorToken},
		{"31 characters", map[string]string{envOperatorToken: long[:31]}, envOperatorToken},
		{"32 characters", map[string]string{envOperatorToken: long}, ""},
		{"equal to the JWT secret", map[string]string{envOperatorToken: long, envJWTSecret: long}, envOperatorToken},
		{"differs from the JWT secret", map[string]string{envOperatorToken: long, envJWTSecret: long + "-jwt"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := loadServeConfig(nil, env(tc.env), fs)
			if tc.wantName == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *configError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantName) {
				t.Fatalf("want a configuration error naming %s, got %v", tc.wantName, err)
			}
			if v := tc.env[envOperatorToken]; len(v) > 1 && strings.Contains(err.Error(), v) {
				t.Fatalf("the message shows the secret: %v", err)
			}
		})
	}
	// The binary's own exit code and message; the flag is checked as well.
	t.Setenv(envOperatorToken, "x")
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--data-dir", filepath.Join(t.TempDir(), "data")}, io.Discard, &errb); code != 2 ||
		!strings.Contains(errb.String(), envOperatorToken) {
		t.Fatalf("%s=x: exit %d: %s", envOperatorToken, code, errb.String())
	}
	errb.Reset()
	t.Setenv(envOperatorToken, "")
	if code := run(context.Background(), []string{"serve", "--jwt-secret", long, "--operator-token", long}, io.Discard, &errb); code != 2 ||
		!strings.Contains(errb.String(), envOperatorToken) || !strings.Contains(errb.String(), envJWTSecret) {
		t.Fatalf("operator token = JWT secret: exit %d: %s", code, errb.String())
	}
}

// TestHardening03_DevSecretsFileWithEqualSecretsIsRefused: the same rule holds for the
// secrets a dev-secrets.json (edited by hand) provides.
func TestHardening03_DevSecretsFileWithEqualSecretsIsRefused(t *testing.T) {
	dir := t.TempDir()
	same := strings.Repeat("s", 40)
	if err := os.WriteFile(filepath.Join(dir, devSecretsFile), []byte(`{"jwtSecret":"`+same+`","operatorToken":"`+same+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := serve(context.Background(), testServeConfig(dir), io.Discard, io.Discard, nil)
	var ce *configError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), envOperatorToken) || !strings.Contains(err.Error(), devSecretsFile) {
		t.Fatalf("want a configuration error naming %s and the file, got %v", envOperatorToken, err)
	}
}

// TestPortInUseFailsBeforeCreatingTheDataDirectory (#22, item 8): serve on
// an address already in use fails at once, before it creates the data
// directory, the dev secrets or the store.
func TestPortInUseFailsBeforeCreatingTheDataDirectory(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := filepath.Join(t.TempDir(), "data")
	cfg := testServeConfig(data)
	cfg.Addr = taken.Addr().String()
	var out bytes.Buffer
	err = serve(context.Background(), cfg, &out, io.Discard, func(string) { t.Error("serve started on an address in use") })
	if err == nil || !strings.Contains(err.Error(), "listen on "+cfg.Addr) {
		t.Fatalf("want a listen error, got %v", err)
	}
	if _, serr := os.Stat(data); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("the data directory %s was created (%v) although the address is in use", data, serr)
	}
	if out.Len() > 0 {
		t.Fatalf("a banner was printed: %s", out.String())
	}
}

func TestSelfCommand(t *testing.T) {
	for arg0, want := range map[string]string{
		"/tmp/go-build3719925231/b001/exe/seatledger": "go run ./cmd/seatledger",
		"./seatledger":                  "./seatledger",
		"seatledger":                    "seatledger",
		"/home/ann/go/bin/seatledger":   "/home/ann/go/bin/seatledger",
		"/home/ann/my tools/seatledger": "'/home/ann/my tools/seatledger'",
	} {
		if got := selfCommand(arg0); got != want {
			t.Errorf("selfCommand(%q) = %q, want %q", arg0, got, want)
		}
	}
}

// TestBannerQuickstartLine: the banner reads the operator token with the
// same line as docs/QUICKSTART.md (TestQuickstartOperatorLine runs it).
func TestBannerQuickstartLine(t *testing.T) {
	if got, want := operatorTokenLine(filepath.Join("./data", devSecretsFile)), quickstartLine(t, "export OP="); got != want {
		t.Fatalf("banner: %s\nQUICKSTART.md: %s", got, want)
	}
}

// startInDir starts the built binary's `serve` with dir as its working
// directory, its defaults (./data, an in-process Redis) and a free port,
// and returns it once its banner is printed, with the banner.
func startInDir(t *testing.T, dir string) (*serverProcess, string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), "serve")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "SEATLEDGER_ADDR=127.0.0.1:0")
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
	p := &serverProcess{cmd: cmd, dir: filepath.Join(dir, "data"), stdout: watchLines(stdout), stderr: watchLines(stderr)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = p.wait()
	})
	p.addr = listenAddr(t, p.stdout)
	p.stdout.wait(t, "See docs/QUICKSTART.md", 10*time.Second)
	return p, p.stdout.String()
}

// runBannerExamples runs the banner's example lines with sh in dir, as a
// user pastes them, curl printing each answer's status as " HTTP<code>".
func runBannerExamples(t *testing.T, dir, banner string) string {
	t.Helper()
	_, try, ok := strings.Cut(banner, "Try, in another terminal in this directory:\n")
	try, _, ok2 := strings.Cut(try, "See docs/QUICKSTART.md")
	if !ok || !ok2 {
		t.Fatalf("no example commands in the banner:\n%s", banner)
	}
	script := "set -e\ncurl() { command curl -w ' HTTP%{http_code}\\n' \"$@\"; }\n" + try + "printf 'TOKEN=%s\\n' \"$TOKEN\"\n"
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir, cmd.Env = dir, cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the banner's examples fail: %v\n%s\n%s", err, try, out)
	}
	return string(out)
}

// TestBinaryBannerCommandsWorkAsPrinted (#22, items 4 and 5) is the
// binary-level scenario of `go test -short`: the built binary started as
// the README says, in a fresh directory. The first start prints the dev
// secrets it generated; its example commands, run by sh as printed,
// create contoso and read its licenses with a token of the printed
// command. The restart keeps the tenant and the secrets, prints the
// secrets' file but not the secrets, and no longer offers to create
// contoso; its examples work as printed too.
func TestBinaryBannerCommandsWorkAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed: the banner's examples use it")
	}
	dir := t.TempDir()
	p, banner := startInDir(t, dir)
	sec, ok, err := readDevSecrets(filepath.Join(dir, "data"))
	if err != nil || !ok {
		t.Fatalf("no dev secrets in ./data: %v", err)
	}
	for _, s := range []string{envJWTSecret + "=" + sec.JWTSecret, envOperatorToken + "=" + sec.OperatorToken, "data/" + devSecretsFile} {
		if !strings.Contains(banner, s) {
			t.Errorf("first start: the banner does not show %q:\n%s", s, banner)
		}
	}
	out := runBannerExamples(t, dir, banner)
	if !strings.Contains(out, `"version":`) || !strings.Contains(out, " HTTP201") {
		t.Fatalf("first start: the examples did not create contoso:\n%s", out)
	}
	if !regexp.MustCompile(`\[[^\]]*\]\s*HTTP200`).MatchString(out) || !strings.Contains(out, "TOKEN=ey") {
		t.Fatalf("first start: the examples did not read contoso's licenses:\n%s", out)
	}

	// Stop and start again in the same directory.
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.stderr.String())
	}
	_, banner = startInDir(t, dir)
	for _, s := range []string{sec.JWTSecret, sec.OperatorToken} {
		if strings.Contains(banner, s) {
			t.Fatalf("restart: the banner prints a dev secret again:\n%s", banner)
		}
	}
	if !strings.Contains(banner, "kept in data/"+devSecretsFile) {
		t.Errorf("restart: the banner does not say where the dev secrets are kept:\n%s", banner)
	}
	if strings.Contains(banner, `"id":"contoso"`) {
		t.Errorf("restart: the banner offers to create contoso, which exists:\n%s", banner)
	}
	out = runBannerExamples(t, dir, banner)
	if !regexp.MustCompile(`\[[^\]]*\]\s*HTTP200`).MatchString(out) || strings.Contains(out, " HTTP201") {
		t.Fatalf("restart: the examples did not read contoso's licenses (or created something):\n%s", out)
	}
}
