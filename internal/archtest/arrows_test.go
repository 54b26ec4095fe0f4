package archtest

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/seatledger/seatledger"

// allowed is, for every package of ours, the packages of ours its non-test
// code may import. It is docs/ARCHITECTURE.md's arrows written out: change
// them together. A package missing from the table fails the test, so a new
// package gets a row, and a place in the picture, on purpose.
var allowed = map[string][]string{
	// The pure core and the stores.
	"domain":               {},
	"eventstore":           {},
	"eventstore/embedded":  {"eventstore"},
	"eventstore/kurrentdb": {"eventstore"},
	"eventstore/postgres":  {"eventstore"},
	"eventstore/storetest": {"eventstore"},
	"eventcodec":           {"domain"},
	"lease":                {},
	"internal/lru":         {},
	"internal/cputime":     {},
	"internal/textlog":     {},
	"i18n":                 {},

	// The two contracts the write and read sides share.
	"tenantstream": {"domain", "eventcodec", "eventstore"},
	"readmodel":    {"domain", "eventstore"},

	// The write side, the projector, the read side.
	"commands":    {"domain", "eventcodec", "eventstore", "tenantstream", "internal/lru"},
	"render":      {"domain", "eventcodec", "readmodel"},
	"projections": {"domain", "eventcodec", "eventstore", "tenantstream", "readmodel", "render", "internal/lru"},
	"rebuild":     {"domain", "eventcodec", "eventstore", "tenantstream", "readmodel", "render"},
	"queries":     {"domain", "eventstore", "readmodel"},
	"history":     {"domain", "eventcodec", "eventstore", "tenantstream", "readmodel"},

	// Drivers: they turn requests and due times into commands and queries.
	"scheduler":   {"domain", "eventstore", "commands", "readmodel"},
	"api":         {"domain", "eventcodec", "eventstore", "tenantstream", "readmodel", "commands", "queries", "history", "i18n", "internal/textlog"},
	"api/apitest": {},
	// The web console: an in-process client of api's routes (it gets the
	// api handler as an http.Handler), so it imports none of api's services.
	"api/console": {"i18n"},

	// The binary wires everything.
	"cmd/seatledger": {"*"},

	// Test support: harnesses and fixtures for tests, never for the binary.
	"internal/benchdata":   {"*"},
	"internal/clustertest": {"*"},
	"internal/reliability": {"*"},
	"internal/redistest":   {"readmodel"},
	"internal/archtest":    {},
	"internal/browsertest": {},
}

// exceptions are imports the arrows forbid that the code still has, each
// with the reason and the way out. The test fails on an exception that is
// no longer needed, so the list only shrinks.
var exceptions = map[[2]string]string{}

// testSupport may be imported by tests only.
var testSupport = []string{"internal/benchdata", "internal/browsertest", "internal/clustertest", "internal/reliability", "internal/redistest", "api/apitest", "eventstore/storetest"}

// readSide never imports the write side (commands) whatever the table says;
// only its tests may, to write the events they read.
var readSide = []string{"tenantstream", "readmodel", "render", "projections", "rebuild", "queries", "history"}

// httpLayer are the packages whose non-test code may import the HTTP router:
// api is the only HTTP layer (apitest is its test harness). A service
// answers (T, error) and api turns it into HTTP. api/console is part of the
// HTTP layer too (HTML pages over api's routes, with net/http, not gin); its
// tests build the api server it is a client of.
var httpLayer = []string{"api", "api/apitest", "api/console"}

const ginPath = "github.com/gin-gonic/gin"

// pkg is one package of ours and its imports of ours.
type pkg struct {
	path        string // relative to the module
	imports     []string
	testImports []string // of its _test.go files, both packages
	http        bool     // its non-test code imports gin
}

func TestImportsPointOneWay(t *testing.T) {
	pkgs, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages: is the module root right?", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
	for e := range exceptions {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.path == e[0] && slices.Contains(p.imports, e[1]) }) {
			t.Errorf("%s no longer imports %s: remove the exception", e[0], e[1])
		}
	}
}

// TestViolationsAreFound checks the checker on a made-up module, so that
// TestImportsPointOneWay cannot pass by seeing nothing.
func TestViolationsAreFound(t *testing.T) {
	pkgs := []pkg{
		{path: "domain", imports: []string{"eventstore"}},
		{path: "queries", imports: []string{"readmodel", "projections"}},
		{path: "history", imports: []string{"commands"}},
		{path: "projections", testImports: []string{"commands", "cmd/seatledger"}},
		{path: "commands", imports: []string{"internal/reliability"}, testImports: []string{"api"}},
		{path: "newthing"},
		{path: "cmd/seatledger", imports: []string{"projections", "api"}},
		{path: "scheduler", imports: []string{"api"}},
		{path: "history", http: true},
		{path: "api", http: true},
	}
	got := violations(pkgs)
	want := []string{
		"domain imports eventstore",
		"queries imports projections",
		"history imports commands",
		"projections's tests import cmd/seatledger",
		"commands imports internal/reliability",
		"commands's tests import api",
		"newthing has no row",
		"scheduler imports api",
		"history imports gin",
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, w) }) {
			t.Errorf("no violation mentions %q; got:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d violations, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

// violations lists every import of pkgs that breaks the rules.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		rule, ok := allowed[p.path]
		if !ok {
			out = append(out, fmt.Sprintf("%s has no row in the table of allowed imports: give it one here and a place in docs/ARCHITECTURE.md", p.path))
			continue
		}
		if p.http && !slices.Contains(httpLayer, p.path) {
			out = append(out, fmt.Sprintf("%s imports gin: api is the only HTTP layer", p.path))
		}
		for _, imp := range p.imports {
			if _, ok := exceptions[[2]string{p.path, imp}]; ok {
				continue
			}
			switch {
			case p.path == "domain":
				out = append(out, fmt.Sprintf("domain imports %s: domain imports nothing of ours", imp))
			case slices.Contains(readSide, p.path) && imp == "commands":
				out = append(out, fmt.Sprintf("%s imports commands: the read side never imports the write side", p.path))
			case imp == "api" && !isCmd(p.path) && !slices.Contains(rule, "*"):
				out = append(out, fmt.Sprintf("%s imports api: only the binary and test harnesses import the HTTP layer", p.path))
			case isCmd(imp):
				out = append(out, fmt.Sprintf("%s imports %s: nothing imports the binary", p.path, imp))
			case slices.Contains(testSupport, imp) && !slices.Contains(rule, "*"):
				out = append(out, fmt.Sprintf("%s imports %s, which is for tests only", p.path, imp))
			case !slices.Contains(rule, "*") && !slices.Contains(rule, imp):
				out = append(out, fmt.Sprintf("%s imports %s: the arrows allow only %v", p.path, imp, rule))
			}
		}
		for _, imp := range p.testImports {
			switch {
			case isCmd(imp) && !isCmd(p.path):
				out = append(out, fmt.Sprintf("%s's tests import %s: nothing imports the binary", p.path, imp))
			case imp == "api" && !slices.Contains(httpLayer, p.path) && !isCmd(p.path) && !slices.Contains(allowed[p.path], "*"):
				out = append(out, fmt.Sprintf("%s's tests import api: only the binary and test harnesses import the HTTP layer", p.path))
			case p.path == "domain" && imp != "domain":
				out = append(out, fmt.Sprintf("domain's tests import %s: domain stands alone", imp))
			}
		}
	}
	return out
}

func isCmd(path string) bool { return path == "cmd" || strings.HasPrefix(path, "cmd/") }

// load reads the imports of every package of the module with go/build (the
// current GOOS and GOARCH; files behind other build tags are not seen).
func load() ([]pkg, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	var pkgs []pkg
	err = filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if dir != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && dir != root {
			return filepath.SkipDir // another module (compat/msgraph): not ours to order
		}
		bp, err := build.ImportDir(dir, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		if rel == "." {
			return fmt.Errorf("the module root holds Go files: give it a row in the table")
		}
		pkgs = append(pkgs, pkg{
			path:        filepath.ToSlash(rel),
			imports:     ours(bp.Imports),
			testImports: ours(append(slices.Clone(bp.TestImports), bp.XTestImports...)),
			http:        slices.Contains(bp.Imports, ginPath),
		})
		return nil
	})
	return pkgs, err
}

// ours keeps the imports of this module, relative to it, each once.
func ours(imports []string) []string {
	var out []string
	for _, imp := range imports {
		if rel, ok := strings.CutPrefix(imp, module+"/"); ok && !slices.Contains(out, rel) {
			out = append(out, rel)
		}
	}
	return out
}

// moduleRoot is the nearest directory above the working directory with a
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
