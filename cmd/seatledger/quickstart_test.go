package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
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
// the page's flags, where ./data holds the dev secrets): it prints one line,
// a JWT of the dev secret for the page's tenant and user, valid for its ttl.
func TestQuickstartTokenLine(t *testing.T) {
	line := quickstartLine(t, "export TOKEN=")
	inner, ok := strings.CutPrefix(line, "export TOKEN=$(go run ./cmd/seatledger ")
	inner, ok2 := strings.CutSuffix(inner, ")")
	if !ok || !ok2 || strings.ContainsAny(inner, `'"$\`) {
		t.Fatalf("QUICKSTART.md: %q is not `export TOKEN=$(go run ./cmd/seatledger token …)` with plain flags: update this test", line)
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
	if args[0] != "token" || flags["--tenant"] == "" || flags["--user"] == "" || err != nil {
		t.Fatalf("QUICKSTART.md: %q: want token --tenant T --user U [--ttl D]", line)
	}
	// The tenant and Global admin the page created (api/quickstart_test.go
	// acts as them).
	doc, err := os.ReadFile(repoFile("docs", "QUICKSTART.md"))
	if err != nil {
		t.Fatal(err)
	}
	if created := `{"id":"` + flags["--tenant"] + `",`; !strings.Contains(string(doc), created) ||
		!strings.Contains(string(doc), `"globalAdmin":{"id":"`+flags["--user"]+`"`) {
		t.Fatalf("QUICKSTART.md: the token is for tenant %q user %q, not the tenant and Global admin the page creates", flags["--tenant"], flags["--user"])
	}
	if testing.Short() {
		t.Skip("builds the binary")
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
