package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// repoFile is a path from the repository root (tests run in cmd/seatledger).
func repoFile(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

// sharedAPIDoc is the project's API.md beside the clone (../shared), which
// a fresh clone does not have.
var sharedAPIDoc = repoFile("..", "shared", "API.md")

// TestAPIDocMatchesShared: docs/API.md keeps the project's shared API.md
// unchanged: every line of it, in order (the contract says "extend it
// freely; do not change what is here"), so the repository's copy cannot
// drift from the contract; lines may be added between (docs/API.md,
// "Details").
func TestAPIDocMatchesShared(t *testing.T) {
	local, err := os.ReadFile(repoFile("docs", "API.md"))
	if err != nil {
		t.Fatal(err)
	}
	shared, err := os.ReadFile(sharedAPIDoc)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s is not present (a clone without ../shared): docs/API.md not compared with the shared contract", sharedAPIDoc)
	}
	if err != nil {
		t.Fatal(err)
	}
	have := strings.Split(string(local), "\n")
	i := 0
	for n, line := range strings.Split(string(shared), "\n") {
		for i < len(have) && have[i] != line {
			i++
		}
		if i == len(have) {
			t.Fatalf("docs/API.md lost or changed line %d of %s: %q (extend the contract, do not change it)", n+1, sharedAPIDoc, line)
		}
		i++
	}
}

// configTableVars returns the SEATLEDGER_ variables of the first column of
// the table under the "## Configuration" heading of a Markdown file.
func configTableVars(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		names            []string
		inSection, table bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			if inSection {
				break
			}
			inSection = strings.HasPrefix(line, "## Configuration")
			continue
		}
		if !inSection {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if table {
				break // the end of the table
			}
			continue
		}
		table = true
		cell := strings.Trim(strings.TrimSpace(strings.Split(line, "|")[1]), "`")
		if strings.HasPrefix(cell, "SEATLEDGER_") {
			names = append(names, cell)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: no SEATLEDGER_ variable in the table of its Configuration section", path)
	}
	return names
}

// servedVars returns the SEATLEDGER_ variables loadServeConfig reads: the
// names it asks its getenv for, as serve calls it with os.Getenv.
func servedVars(t *testing.T) map[string]bool {
	t.Helper()
	read := map[string]bool{}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, _ = loadServeConfig(nil, func(name string) string {
		if strings.HasPrefix(name, "SEATLEDGER_") {
			read[name] = true
		}
		return ""
	}, fs)
	if len(read) < 10 {
		t.Fatalf("loadServeConfig read only %v", read)
	}
	return read
}

// TestConfigVariablesDocumented: every SEATLEDGER_ variable serve reads is
// in the help (its line of the environment table, and the serve flag that
// mirrors it) and in README.md's configuration table; every variable of
// those tables and of docs/API.md's is read.
func TestConfigVariablesDocumented(t *testing.T) {
	read := servedVars(t)
	var help, serveHelp bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &help, io.Discard); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	if code := run(context.Background(), []string{"serve", "--help"}, io.Discard, &serveHelp); code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	inHelp := map[string]bool{}
	for _, line := range strings.Split(help.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(line, "  SEATLEDGER_") {
			inHelp[f[0]] = true
		}
	}
	readme := configTableVars(t, repoFile("README.md"))
	inReadme := map[string]bool{}
	for _, v := range readme {
		inReadme[v] = true
	}
	names := make([]string, 0, len(read))
	for v := range read {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		if !inHelp[v] {
			t.Errorf("%s is read by serve but has no line in `seatledger --help` (add it to envVars)", v)
		}
		if !strings.Contains(serveHelp.String(), "("+v) {
			t.Errorf("%s is read by serve but no flag of `seatledger serve --help` names it", v)
		}
		if !inReadme[v] {
			t.Errorf("%s is read by serve but is not in README.md's configuration table", v)
		}
	}
	documented := map[string][]string{"README.md": readme, "docs/API.md": configTableVars(t, repoFile("docs", "API.md"))}
	for _, v := range envVars {
		if strings.HasPrefix(v.Name, "SEATLEDGER_") {
			documented["envVars (help)"] = append(documented["envVars (help)"], v.Name)
		}
	}
	for where, vars := range documented {
		for _, v := range vars {
			if !read[v] {
				t.Errorf("%s documents %s, which loadServeConfig does not read", where, v)
			}
		}
	}
}
