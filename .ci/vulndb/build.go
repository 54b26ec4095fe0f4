//go:build ignore

// Command build turns a folder of Go vulnerability reports in OSV JSON into a
// local vulnerability database that govulncheck reads offline with
// -db file:///path.
//
// Input: a folder of OSV entries, one <ID>.json per report, as in the data/osv/
// folder of the Go vulnerability database's source repository
// (github.com/golang/vulndb). Output: the database layout of
// https://go.dev/security/vuln/database#api, uncompressed as govulncheck wants
// it for a file:// database (golang.org/x/vuln internal/client, localSource):
//
//	index/db.json       {"modified": T}
//	index/modules.json  [{"path": M, "vulns": [{"id": …, "modified": …, "fixed": …}]}]
//	ID/<ID>.json        each OSV entry, copied byte for byte
//
// "fixed" is the latest fix of the entry's SEMVER ranges for that module, or
// empty when the vulnerability was reintroduced after it (the rule govulncheck
// and the vuln.go.dev generator use); govulncheck skips an entry whose fixed
// version is at or below the version in use without reading it.
//
// The OSV files in that repository carry zero "modified" timestamps (the
// published database fills them in from git history), so T is the -date flag
// (the snapshot's commit date) when it is later than every entry's.
//
// Usage (from the repository root; standard library only, so it runs offline):
//
//	go run .ci/vulndb/build.go -osv DIR -out DIR [-date 2026-08-21T13:38:00-07:00]
//
// -out must not exist or be empty. .ci/run calls it; docs/OPERATIONS.md
// ("Vulnerability checks") says where the OSV snapshot comes from.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entry is the part of an OSV entry the index needs.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Affected []struct {
		Package struct {
			Name      string `json:"name"`
			Ecosystem string `json:"ecosystem"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	} `json:"events"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

func main() {
	osvDir := flag.String("osv", "", "folder of OSV entries, one <ID>.json each (required)")
	outDir := flag.String("out", "", "folder to write the database to; must not exist or be empty (required)")
	date := flag.String("date", "", "RFC 3339 date of the snapshot, the database's modified time when later than every entry's")
	flag.Parse()
	if *osvDir == "" || *outDir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var snapshot time.Time
	if *date != "" {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(*date))
		if err != nil {
			fail(fmt.Errorf("-date: %w", err))
		}
		snapshot = t.UTC()
	}
	if err := build(*osvDir, *outDir, snapshot); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "vulndb build:", err)
	os.Exit(1)
}

func build(osvDir, outDir string, snapshot time.Time) error {
	names, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("no *.json OSV entries in %s", osvDir)
	}
	if des, err := os.ReadDir(outDir); err == nil && len(des) > 0 {
		return fmt.Errorf("%s is not empty", outDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, d := range []string{"index", "ID"} {
		if err := os.MkdirAll(filepath.Join(outDir, d), 0o755); err != nil {
			return err
		}
	}

	modified := snapshot
	modules := map[string]*moduleMeta{}
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if e.ID == "" || filepath.Base(name) != e.ID+".json" {
			return fmt.Errorf("%s: file name is not <id>.json (id %q)", name, e.ID)
		}
		if e.Modified.After(modified) {
			modified = e.Modified.UTC()
		}
		for _, a := range e.Affected {
			path := a.Package.Name
			if path == "" {
				return fmt.Errorf("%s: an affected package has no name", name)
			}
			fixed, err := nonSupersededFix(a.Ranges)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", name, path, err)
			}
			m := modules[path]
			if m == nil {
				m = &moduleMeta{Path: path}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified, Fixed: fixed})
		}
		if err := os.WriteFile(filepath.Join(outDir, "ID", e.ID+".json"), raw, 0o644); err != nil {
			return err
		}
	}
	if modified.IsZero() {
		return errors.New("no entry has a modified time: pass -date with the snapshot's date")
	}

	list := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.SliceStable(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	if err := writeJSON(filepath.Join(outDir, "index", "modules.json"), list); err != nil {
		return err
	}
	// Written last: .ci/run takes a database with index/db.json as complete.
	if err := writeJSON(filepath.Join(outDir, "index", "db.json"), struct {
		Modified time.Time `json:"modified"`
	}{modified}); err != nil {
		return err
	}
	fmt.Printf("vulndb: %d entries, %d modules, modified %s, in %s\n",
		len(names), len(list), modified.Format(time.RFC3339), outDir)
	return nil
}

func writeJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// nonSupersededFix returns the latest fixed version of the SEMVER ranges, or
// "" when an introduced event comes after it (the vulnerability came back and
// has no fix yet). Versions are OSV's, without a "v".
func nonSupersededFix(ranges []osvRange) (string, error) {
	latest := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, ev := range r.Events {
			if ev.Fixed == "" {
				continue
			}
			if _, ok := parseSemver(ev.Fixed); !ok {
				return "", fmt.Errorf("fixed version %q is not semver", ev.Fixed)
			}
			if semverLess(latest, ev.Fixed) {
				latest = ev.Fixed
			}
		}
		for _, ev := range r.Events {
			if ev.Introduced == "" || ev.Introduced == "0" {
				continue
			}
			if _, ok := parseSemver(ev.Introduced); !ok {
				return "", fmt.Errorf("introduced version %q is not semver", ev.Introduced)
			}
			if semverLess(latest, ev.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest, nil
}

type semver struct {
	num [3]string // major, minor, patch: decimal, no leading zeros
	pre []string  // prerelease identifiers
}

// parseSemver parses MAJOR[.MINOR[.PATCH[-PRE]]][+BUILD] without a leading
// "v", like golang.org/x/mod/semver (a shorthand MAJOR or MAJOR.MINOR takes no
// prerelease or build).
func parseSemver(s string) (semver, bool) {
	var v semver
	s, build, hasBuild := strings.Cut(s, "+")
	if hasBuild && !validIdents(build, false) {
		return v, false
	}
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) > 3 || ((hasPre || hasBuild) && len(parts) != 3) {
		return v, false
	}
	for i := range v.num {
		v.num[i] = "0"
		if i < len(parts) {
			if !isNum(parts[i]) {
				return v, false
			}
			v.num[i] = parts[i]
		}
	}
	if hasPre {
		if !validIdents(pre, true) {
			return v, false
		}
		v.pre = strings.Split(pre, ".")
	}
	return v, true
}

func isNum(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validIdents(s string, prerelease bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		digits := true
		for _, c := range id {
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
		if prerelease && digits && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// semverLess reports a < b with golang.org/x/mod/semver's order: an invalid
// version (such as "") sorts before every valid one.
func semverLess(a, b string) bool {
	va, okA := parseSemver(a)
	vb, okB := parseSemver(b)
	switch {
	case !okB:
		return false
	case !okA:
		return true
	}
	for i := range va.num {
		if c := cmpNum(va.num[i], vb.num[i]); c != 0 {
			return c < 0
		}
	}
	switch {
	case len(va.pre) == 0:
		return false
	case len(vb.pre) == 0:
		return true
	}
	for i := 0; i < len(va.pre) && i < len(vb.pre); i++ {
		x, y := va.pre[i], vb.pre[i]
		if x == y {
			continue
		}
		xn, yn := isNum(x), isNum(y)
		switch {
		case xn && yn:
			return cmpNum(x, y) < 0
		case xn:
			return true
		case yn:
			return false
		default:
			return x < y
		}
	}
	return len(va.pre) < len(vb.pre)
}

func cmpNum(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
