package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
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

// seedDir holds the project's seed documents beside the clone (../shared),
// which a fresh clone does not have.
var seedDir = repoFile("..", "shared", "seeds")

var (
	ruleHeadingRe = regexp.MustCompile(`(?m)^## (R\d+)$`)
	seedQuoteRe   = regexp.MustCompile(`(?m)^> \*\*(\d{3})\*\*: (.+)$`)
	testNameRe    = regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
	ruleTestRe    = regexp.MustCompile(`(?m)^func (TestR(\d+)_[A-Za-z0-9_]*)\(`)
)

// TestRulesDoc (#22, item 6): docs/RULES.md has a section for each rule
// R1–R15; each quote of a seed document is in that seed, verbatim but for
// line breaks (when ../shared/seeds is present); each test it names exists;
// every TestRn_ of domain/ is named in the section of its rule.
func TestRulesDoc(t *testing.T) {
	b, err := os.ReadFile(repoFile("docs", "RULES.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	sections := map[string]string{}
	locs := ruleHeadingRe.FindAllStringSubmatchIndex(doc, -1)
	for i, l := range locs {
		end := len(doc)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if next := strings.Index(doc[l[1]:end], "\n## "); next >= 0 {
			end = l[1] + next
		}
		sections[doc[l[2]:l[3]]] = doc[l[1]:end]
	}
	for n := 1; n <= 15; n++ {
		if _, ok := sections["R"+strconv.Itoa(n)]; !ok {
			t.Errorf("docs/RULES.md has no section \"## R%d\"", n)
		}
	}

	// The tests of the repository, by name.
	tests := map[string]bool{}
	domainRuleTests := map[string]string{} // name -> its rule
	err = filepath.WalkDir(repoFile(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]*)\(`).FindAllStringSubmatch(string(src), -1) {
			tests[m[1]] = true
		}
		if filepath.Base(filepath.Dir(path)) == "domain" {
			for _, m := range ruleTestRe.FindAllStringSubmatch(string(src), -1) {
				domainRuleTests[m[1]] = "R" + m[2]
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(domainRuleTests) < 15 {
		t.Fatalf("found only %d TestRn_ tests in domain/", len(domainRuleTests))
	}
	for rule, sec := range sections {
		names := testNameRe.FindAllStringSubmatch(sec, -1)
		if len(names) == 0 {
			t.Errorf("docs/RULES.md, %s: names no test", rule)
		}
		for _, m := range names {
			if !tests[m[1]] {
				t.Errorf("docs/RULES.md, %s: test %s does not exist", rule, m[1])
			}
		}
	}
	for name, rule := range domainRuleTests {
		if !strings.Contains(sections[rule], "`"+name+"`") {
			t.Errorf("domain's %s is not named in docs/RULES.md's section %s", name, rule)
		}
	}

	// The quotes, against the seeds.
	quotes := seedQuoteRe.FindAllStringSubmatch(doc, -1)
	if len(quotes) < 15 {
		t.Fatalf("docs/RULES.md quotes the seeds only %d times", len(quotes))
	}
	if _, err := os.Stat(seedDir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s is not present (a clone without ../shared): the quotes are not compared with the seeds", seedDir)
	}
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, q := range quotes {
		files, _ := filepath.Glob(filepath.Join(seedDir, q[1]+"_*.txt"))
		if len(files) != 1 {
			t.Errorf("docs/RULES.md quotes seed %s: %d files %s/%s_*.txt", q[1], len(files), seedDir, q[1])
			continue
		}
		seed, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(flat(string(seed)), flat(q[2])) {
			t.Errorf("docs/RULES.md: seed %s does not say %q", q[1], q[2])
		}
	}
}

// TestEveryProblemTypeLinksToRulesDoc (#22, item 6): the problems of the
// served router — command, query, auth and routing refusals — have as type
// the section of docs/RULES.md for their code, and the section exists.
func TestEveryProblemTypeLinksToRulesDoc(t *testing.T) {
	doc, err := os.ReadFile(repoFile("docs", "RULES.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	s.contoso()
	for _, c := range []struct{ method, path, token, body string }{
		{"POST", "/v1/tenants/contoso/subscriptions", s.admin, `{"id":"s1","skuId":"SPB","quantity":5}`}, // already_exists
		{"GET", "/v1/tenants/contoso/users/nobody", s.admin, ""},                                         // the read side's not_found
		{"GET", "/v1/tenants/contoso/users", "not-a-token", ""},                                          // unauthenticated
		{"PUT", "/v1/catalog", "", ""},                                                                   // method_not_allowed
	} {
		code, body := s.call(c.method, c.path, c.token, c.body)
		var p struct{ Type, Code string }
		if err := json.Unmarshal(body, &p); err != nil || p.Code == "" || code < 400 {
			t.Errorf("%s %s: %d %s", c.method, c.path, code, body)
			continue
		}
		if want := "https://github.com/seatledger/seatledger/blob/main/docs/RULES.md#" + p.Code; p.Type != want {
			t.Errorf("%s %s: type %q, want %q", c.method, c.path, p.Type, want)
		}
		if !strings.Contains(string(doc), "\n### "+p.Code+"\n") {
			t.Errorf("docs/RULES.md has no section for %s", p.Code)
		}
	}
}
