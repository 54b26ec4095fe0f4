package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// readmeSetUp returns the commands of README.md's "## Set up" code block.
func readmeSetUp(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(repoFile("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cmds               []string
		inSection, inBlock bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "## "):
			inSection = l == "## Set up"
		case inSection && strings.HasPrefix(l, "```"):
			if inBlock {
				return cmds
			}
			inBlock = true
		case inSection && inBlock && l != "":
			cmds = append(cmds, l)
		}
	}
	t.Fatal("README.md: no code block under ## Set up")
	return nil
}

// TestREADMEHasTwoSetUpCommandsThatCIRuns (#22, item 2): the README's set-up
// block is the server and the short test command; .ci/run and `make test`
// run that very command, and .ci/run prints how long it took.
func TestREADMEHasTwoSetUpCommandsThatCIRuns(t *testing.T) {
	cmds := readmeSetUp(t)
	if len(cmds) != 2 || cmds[0] != "go run ./cmd/seatledger serve" || !strings.Contains(cmds[1], "-short") {
		t.Fatalf("README.md's set-up block: %q, want `go run ./cmd/seatledger serve` and a go test -short command", cmds)
	}
	ci, err := os.ReadFile(repoFile(".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(repoFile("Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "\n"+cmds[1]+"\n") || !strings.Contains(string(mk), "\n\t"+cmds[1]+"\n") {
		t.Fatalf("%q is not a line of .ci/run and of the Makefile", cmds[1])
	}
	if !strings.Contains(string(ci), "README test command took") {
		t.Fatal(".ci/run does not print how long the README's test command took")
	}
}

// ciSection returns the lines of .ci/run from the `echo "== NAME` line to
// the next `echo "== ` line, as a script run from the repository root.
func ciSection(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\necho \"== "+name)
	if !ok {
		t.Fatalf(".ci/run has no section %q", name)
	}
	if i := strings.Index(rest, "\necho \"== "); i >= 0 {
		rest = rest[:i]
	}
	return "set -euo pipefail\ncd ../..\necho \"== " + name + rest + "\n"
}

// TestHardening19_CIVulncheckIsStrict (#18, item 19): .ci/run's govulncheck uses the
// offline snapshot only, and a snapshot it cannot use fails CI (a finding
// in called code, exit 3, fails it as well: the script's own branch).
func TestHardening19_CIVulncheckIsStrict(t *testing.T) {
	script := ciSection(t, "govulncheck")
	if strings.Contains(script, "https://vuln.go.dev") || strings.Contains(script, "STRICT_VULNCHECK") {
		t.Fatal(".ci/run's govulncheck still has an online or a warn-only path")
	}
	if !strings.Contains(script, `"$vuln" = 3`) {
		t.Fatal(".ci/run's govulncheck does not fail on exit 3")
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "SEATLEDGER_VULNDB="+t.TempDir()) // no osv/ in it
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no offline snapshot") {
		t.Fatalf("without a snapshot the check must fail CI: %v\n%s", err, out)
	}
}
