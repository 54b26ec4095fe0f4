package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seatledger/seatledger/api"
)

// quickstartLine returns the one line of docs/QUICKSTART.md that starts
// with prefix (api/quickstart_test.go runs its curl lines, not these).
func quickstartLine(t *testing.T, prefix string) string {
	t.Helper()
	f, err := os.Open(repoFile("docs", "QUICKSTART.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, prefix) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("QUICKSTART.md: want one line starting with %q, found %q", prefix, found)
	}
	return found[0]
}

// quickstartDir is a directory as the quick start leaves it: `serve` started
// there once, with its default data directory ./data.
func quickstartDir(t *testing.T) (string, devSecrets) {
	t.Helper()
	dir := t.TempDir()
	sec, _, err := loadOrCreateDevSecrets(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, sec
}

// TestQuickstartOperatorLine runs the page's `export OP=$(sed …)` line with
// sh on a dev-secrets.json written by the server's own code: it must give
// the operator token.
func TestQuickstartOperatorLine(t *testing.T) {
	line := quickstartLine(t, "export OP=")
	dir, sec := quickstartDir(t)
	cmd := exec.Command("sh", "-c", line+"\nprintf '%s\\n' \"$OP\"")
	cmd.Dir, cmd.Env = dir, cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", line, err, out)
	}
	if got := strings.TrimSuffix(string(out), "\n"); got != sec.OperatorToken {
		t.Fatalf("%s gives %q, want the operator token %q of %s", line, got, sec.OperatorToken, devSecretsFile)
	}
}

// TestQuickstartTokenLine runs the page's `export TOKEN=$(go run
// ./cmd/seatledger token …)` command (the built binary for `go run`, with
// the page's flags, where ./data holds the dev secrets, $T the page's
// tenant): it prints one line, a JWT of the dev secret for the page's
// tenant and user, valid for its ttl.
func TestQuickstartTokenLine(t *testing.T) {
	const tenant = "contoso-1733540000" // what the page's $T holds
	line := quickstartLine(t, "export TOKEN=")
	inner, ok := strings.CutPrefix(line, "export TOKEN=$(go run ./cmd/seatledger ")
	inner, ok2 := strings.CutSuffix(inner, ")")
	inner = strings.ReplaceAll(inner, `"$T"`, tenant)
	if !ok || !ok2 || strings.ContainsAny(inner, `'"$\`) {
		t.Fatalf("QUICKSTART.md: %q is not `export TOKEN=$(go run ./cmd/seatledger token …)` with plain flags or \"$T\": update this test", line)
	}
	args := strings.Fields(inner)
	flags := map[string]string{}
	for i := 1; i+1 < len(args); i += 2 {
		flags[args[i]] = args[i+1]
	}
	ttl := time.Hour // token's default --ttl
	var err error
	if v, ok := flags["--ttl"]; ok {
		ttl, err = time.ParseDuration(v)
	}
	if args[0] != "token" || flags["--tenant"] != tenant || flags["--user"] == "" || err != nil {
		t.Fatalf("QUICKSTART.md: %q: want token --tenant \"$T\" --user U [--ttl D]", line)
	}
	// The tenant and Global admin the page created (api/quickstart_test.go
	// acts as them).
	doc, err := os.ReadFile(repoFile("docs", "QUICKSTART.md"))
	if err != nil {
		t.Fatal(err)
	}
	if created := `{"id":"'"$T"'",`; !strings.Contains(string(doc), created) ||
		!strings.Contains(string(doc), `"globalAdmin":{"id":"`+flags["--user"]+`"`) {
		t.Fatalf("QUICKSTART.md: the token is for user %q of $T, not the tenant and Global admin the page creates", flags["--user"])
	}
	bin := buildBinary(t)
	dir, sec := quickstartDir(t)
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, cleanEnv()
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("seatledger %s: %v: %s", inner, err, errb.String())
	}
	tok, ok := strings.CutSuffix(string(out), "\n")
	if !ok || strings.Contains(tok, "\n") {
		t.Fatalf("seatledger %s: want one line, got %q", inner, out)
	}
	var claims api.Claims
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt()).
		ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return []byte(sec.JWTSecret), nil })
	if err != nil {
		t.Fatalf("seatledger %s printed %q, not a JWT of the dev secret: %v", inner, tok, err)
	}
	if claims.TenantID != flags["--tenant"] || claims.Subject != flags["--user"] {
		t.Fatalf("token of tenant %q user %q, the page asks for %q %q", claims.TenantID, claims.Subject, flags["--tenant"], flags["--user"])
	}
	if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != ttl {
		t.Fatalf("token valid for %s, the page asks for --ttl %s", got, ttl)
	}
}

// quickstartScript is every line of the ```sh blocks of docs/QUICKSTART.md
// but the server's start, and the statuses (and codes) the page announces
// after `# →`, in order.
func quickstartScript(t *testing.T) (script string, want []string) {
	t.Helper()
	doc, err := os.ReadFile(repoFile("docs", "QUICKSTART.md"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	inSh := false
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "```") {
			inSh = !inSh && l == "```sh"
			continue
		}
		if !inSh || strings.HasSuffix(strings.TrimSpace(line), "cmd/seatledger serve") {
			continue
		}
		b.WriteString(line + "\n")
		if m := expectRe.FindStringSubmatch(line); m != nil {
			want = append(want, strings.TrimSpace(m[1]+" "+m[2]))
		}
	}
	if len(want) < 20 {
		t.Fatalf("QUICKSTART.md: only %d commands announce a status", len(want))
	}
	return b.String(), want
}

var expectRe = regexp.MustCompile(`#\s*→\s*(\d{3})(?:\s+([a-z_]+))?\s*$`)

// TestQuickstartRunsTwiceAsWritten (#22, item 7): the page's commands, run
// by sh as they are written (curl, sed, and `go run ./cmd/seatledger token`
// answered by the built binary) in the directory of a server started as the
// page says, give every status and code the page announces — and again on
// a second run against the same server.
func TestQuickstartRunsTwiceAsWritten(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed: the page uses it")
	}
	script, want := quickstartScript(t)
	dir := t.TempDir()
	p, _ := startInDir(t, dir)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", "http://"+p.addr)
	// `go run ./cmd/seatledger …` runs the built binary; curl writes each
	// status on stderr ("@@ 201"), out of the way of $(…).
	shim := t.TempDir()
	goShim := "#!/bin/sh\nif [ \"$1 $2\" = \"run ./cmd/seatledger\" ]; then shift 2; exec " + shellQuote(buildBinary(t)) + " \"$@\"; fi\necho \"unexpected: go $*\" >&2; exit 1\n"
	if err := os.WriteFile(filepath.Join(shim, "go"), []byte(goShim), 0o755); err != nil {
		t.Fatal(err)
	}
	script = "set -e\ncurl() { command curl -w '%{stderr}\\n@@ %{http_code}\\n' \"$@\"; }\n" + script
	statusRe := regexp.MustCompile(`(?m)^@@ (\d{3})$`)
	for run := 1; run <= 2; run++ {
		if run == 2 {
			time.Sleep(1100 * time.Millisecond) // $T has the time in seconds
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(cleanEnv(), "PATH="+shim+string(os.PathListSeparator)+os.Getenv("PATH"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out.String())
		}
		text := out.String()
		locs := statusRe.FindAllStringSubmatchIndex(text, -1)
		if len(locs) != len(want) {
			t.Fatalf("run %d: %d answers, the page announces %d:\n%s", run, len(locs), len(want), text)
		}
		prev := 0
		for i, l := range locs {
			body, status := text[prev:l[0]], text[l[2]:l[3]]
			prev = l[1]
			wantStatus, wantCode, _ := strings.Cut(want[i], " ")
			if status != wantStatus || wantCode != "" && !strings.Contains(body, `"code":"`+wantCode+`"`) {
				t.Fatalf("run %d, command %d: %s %s, the page says %s:\n%s", run, i+1, status, body, want[i], text)
			}
		}
		if !strings.Contains(text, `"total":13,"assigned":12,"available":1`) {
			t.Fatalf("run %d: the Licenses page never shows 12 of 13 assigned after the delete:\n%s", run, text)
		}
	}
}
