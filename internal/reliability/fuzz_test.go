package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fuzz targets of the repository, run by TestFuzzTargets. It finds every
// `func FuzzX(f *testing.F)` of the module by itself; these must be among
// them (so a renamed target or a broken search fails instead of fuzzing less).
var wantFuzzTargets = []string{
	"api.FuzzCommandBody",         // every command route's JSON body
	"api.FuzzQueryParams",         // every GET route's query string
	"api.FuzzAuthorizationHeader", // the JWT path
	"api.FuzzBodylessCommands",    // delete, restore, takeOver, app install: no body but {}
	"api.FuzzStrictJSON",          // duplicate keys, case, UTF-8, BOM never accepted
	"api.FuzzEventcodecDecode",    // the fast event decoder against the domain's
	"domain.FuzzEvolveNeverPanics",
}

// fuzzTimeEnv overrides how long each target is fuzzed: a Go duration (30s,
// 5m) or Nx for N inputs, as go test's -fuzztime; 0 skips TestFuzzTargets.
const fuzzTimeEnv = "SEATLEDGER_FUZZTIME"

type fuzzTarget struct {
	dir  string // the package directory
	rel  string // dir relative to the module root ("api")
	name string // FuzzX
}

func (f fuzzTarget) String() string { return filepath.ToSlash(f.rel) + "." + f.name }

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w*)\(\w+ \*testing\.F\)`)

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// findFuzzTargets lists the fuzz targets of the module's _test.go files
// (files with build constraints are left out: they may not build here).
func findFuzzTargets(t *testing.T, root string) []fuzzTarget {
	t.Helper()
	var out []fuzzTarget
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(src, []byte("\n//go:build ")) || bytes.HasPrefix(src, []byte("//go:build ")) {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			out = append(out, fuzzTarget{dir: filepath.Dir(path), rel: rel, name: string(m[1])})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b fuzzTarget) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// fuzzTime is the -fuzztime of each target: 30s, 5m under soak, or
// $SEATLEDGER_FUZZTIME; ok is false when fuzzing is to be skipped.
func fuzzTime(t *testing.T) (arg string, budget time.Duration, ok bool) {
	t.Helper()
	d := pick(30*time.Second, 5*time.Minute)
	v := strings.TrimSpace(os.Getenv(fuzzTimeEnv))
	switch {
	case v == "":
		return d.String(), d, true
	case v == "0":
		return v, 0, false
	case strings.HasSuffix(v, "x"):
		// N inputs: no time to derive a budget from; give it the soak time.
		n, err := strconv.ParseUint(strings.TrimSuffix(v, "x"), 10, 64)
		if err == nil {
			return v, 5 * time.Minute, n > 0
		}
	default:
		d, err := time.ParseDuration(v)
		if err == nil && d >= 0 {
			return v, d, d > 0
		}
	}
	t.Fatalf("%s=%q: want a duration such as 30s or 5m, Nx for N inputs, or 0 to skip", fuzzTimeEnv, v)
	return "", 0, false
}

// goCommand is the go command: the one on PATH (go test puts its own GOROOT's
// bin first), else the one of the GOROOT this test was built with.
func goCommand(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no go command on PATH nor in %s: cannot fuzz", runtime.GOROOT())
	}
	return p
}

// fuzzEnv is the environment with -race taken out of GOFLAGS: fuzzing
// instruments the code itself, and the race detector would slow it tenfold.
func fuzzEnv() []string {
	env := os.Environ()
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			flags := slices.DeleteFunc(strings.Fields(v), func(f string) bool { return f == "-race" || f == "-race=true" || f == "--race" })
			env[i] = "GOFLAGS=" + strings.Join(flags, " ")
		}
	}
	return env
}

// listFiles returns the files under dir (none if it does not exist).
func listFiles(dir string) map[string]bool {
	out := map[string]bool{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[path] = true
		}
		return nil
	})
	return out
}

var (
	fuzzProgress = regexp.MustCompile(`(?m)^fuzz: elapsed: .*$`)
	fuzzFailing  = regexp.MustCompile(`Failing input written to (\S+)`)
)

// TestFuzzTargets fuzzes every fuzz target of the module in turn for 30 s
// each (soak: 5 min; $SEATLEDGER_FUZZTIME overrides, 0 skips; -short skips):
// `go test -run '^$' -fuzz '^FuzzX$' -fuzztime 30s -parallel 1` in the
// target's package, without -race. A failure shows go test's output and the
// failing input written under the package's testdata/fuzz (kept for `go
// test -run FuzzX/<id>` to replay it); a pass leaves no file behind.
func TestFuzzTargets(t *testing.T) {
	arg, budget, ok := fuzzTime(t)
	if !ok {
		t.Skipf("fuzzing skipped: %s=%s (unset: 30 s per target, 5 min under soak)", fuzzTimeEnv, os.Getenv(fuzzTimeEnv))
	}
	if testing.Short() {
		t.Skipf("fuzzing skipped in -short mode (without -short: 30 s per target, or $%s)", fuzzTimeEnv)
	}
	goCmd := goCommand(t)
	root := moduleRoot(t)
	targets := findFuzzTargets(t, root)
	var names []string
	for _, ft := range targets {
		names = append(names, ft.String())
	}
	for _, w := range wantFuzzTargets {
		if !slices.Contains(names, w) {
			t.Fatalf("fuzz target %s not found; found %v", w, names)
		}
	}
	t.Logf("%d fuzz targets, -fuzztime %s each: %s", len(targets), arg, strings.Join(names, ", "))

	for _, ft := range targets {
		t.Run(ft.String(), func(t *testing.T) {
			corpus := filepath.Join(ft.dir, "testdata", "fuzz", ft.name)
			created := []string{filepath.Join(ft.dir, "testdata"), filepath.Join(ft.dir, "testdata", "fuzz"), corpus}
			created = slices.DeleteFunc(created, func(d string) bool { _, err := os.Stat(d); return err == nil })
			before := listFiles(corpus)

			// Build, baseline coverage and the fuzzing itself, with room to
			// spare; the test's own deadline comes first.
			limit := budget + 10*time.Minute
			ctx := context.Background()
			if dl, ok := t.Deadline(); ok {
				if left := time.Until(dl); left < budget+time.Minute {
					t.Fatalf("%s: only %s left before the test binary's -timeout; fuzzing needs %s plus a minute for the build: raise -timeout or lower %s",
						ft, left.Round(time.Second), budget, fuzzTimeEnv)
				}
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
				defer cancel()
			}
			ctx, cancel := context.WithTimeout(ctx, limit)
			defer cancel()
			fuzzOnce := func() (out []byte, err error, took time.Duration, written []string) {
				cmd := exec.CommandContext(ctx, goCmd, "test", "-run", "^$", "-fuzz", "^"+ft.name+"$", "-fuzztime", arg,
					"-parallel", "1", "-timeout", limit.String(), ".")
				cmd.Dir = ft.dir
				cmd.Env = fuzzEnv()
				// go test runs the test binary and its fuzz workers as children:
				// on a timeout, kill them all.
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
				cmd.WaitDelay = 10 * time.Second
				start := time.Now()
				out, err = cmd.CombinedOutput()
				took = time.Since(start).Round(100 * time.Millisecond)
				for f := range listFiles(corpus) {
					if !before[f] {
						written = append(written, f)
					}
				}
				slices.Sort(written)
				return out, err, took, written
			}
			out, err, took, written := fuzzOnce()
			if err != nil && ctx.Err() == nil && len(written) == 0 && coordinatorDeadlineRace(out) {
				// Go's fuzz coordinator can fail a target at the -fuzztime
				// boundary with a bare "context deadline exceeded" and no
				// input (golang/go#75804, fixed in Go 1.27): a busy machine
				// makes it likelier. A real finding writes an input; run once
				// more before calling it a failure.
				t.Logf("%s: failed at the -fuzztime boundary with no input written (Go's fuzz coordinator race); running it once more", ft)
				out, err, took, written = fuzzOnce()
			}

			progress := fuzzProgress.FindAll(out, -1)
			last := "no fuzz progress line"
			if len(progress) > 0 {
				last = string(progress[len(progress)-1])
			}

			if err != nil {
				if ctx.Err() != nil {
					err = fmt.Errorf("%v (stopped after %s: %v)", err, took, ctx.Err())
				}
				var inputs []string
				for _, m := range fuzzFailing.FindAllSubmatch(out, -1) {
					inputs = append(inputs, filepath.Join(ft.rel, string(m[1])))
				}
				for _, f := range written {
					rel, _ := filepath.Rel(root, f)
					if !slices.Contains(inputs, rel) {
						inputs = append(inputs, rel)
					}
				}
				where := "no failing input was written"
				if len(inputs) > 0 {
					where = fmt.Sprintf("failing input: %s (replay: cd %s && go test -run '%s/%s')", strings.Join(inputs, ", "),
						ft.rel, ft.name, filepath.Base(inputs[0]))
				}
				t.Fatalf("%s failed: %v; %s\n%s", ft, err, where, out)
			}
			// A pass writes nothing into the repository; should anything
			// appear anyway, take it away again.
			for _, f := range written {
				t.Logf("removing %s, written by a passing run", f)
				_ = os.Remove(f)
			}
			for i := len(created) - 1; i >= 0; i-- {
				_ = os.Remove(created[i]) // only if empty
			}
			if len(progress) == 0 {
				t.Fatalf("%s: go test passed but did not fuzz:\n%s", ft, out)
			}
			if !strings.Contains(last, "execs:") {
				// The time went on replaying the corpus (seeds and what
				// earlier runs found, kept in $GOCACHE/fuzz).
				t.Logf("%s: no new input tried in -fuzztime %s: %s", ft, arg, last)
			}
			t.Logf("%s: %s (%s with the build)", ft, strings.TrimPrefix(last, "fuzz: "), took)
		})
	}
}

// coordinatorDeadlineRace reports whether go test -fuzz output is the Go
// fuzz coordinator's spurious failure: the target failed with a bare
// "context deadline exceeded" and named no failing input.
func coordinatorDeadlineRace(out []byte) bool {
	return bytes.Contains(out, []byte("    context deadline exceeded\n")) && !fuzzFailing.Match(out)
}

func TestCoordinatorDeadlineRaceIsTold(t *testing.T) {
	race := "fuzz: elapsed: 31s, execs: 31334 (0/sec), new interesting: 5 (total: 276)\n--- FAIL: FuzzCommandBody (30.63s)\n    context deadline exceeded\nFAIL\nexit status 1\n"
	crash := "--- FAIL: FuzzCommandBody (3.10s)\n    --- FAIL: FuzzCommandBody (0.00s)\n        panic: boom\n    Failing input written to testdata/fuzz/FuzzCommandBody/0a1b2c\n    To re-run:\n    go test -run=FuzzCommandBody/0a1b2c\n"
	hang := "--- FAIL: FuzzCommandBody (12.00s)\n    fuzzing process hung or terminated unexpectedly: exit status 2\n    Failing input written to testdata/fuzz/FuzzCommandBody/ffee\n"
	if !coordinatorDeadlineRace([]byte(race)) {
		t.Error("the coordinator's bare deadline failure is not recognised")
	}
	for name, out := range map[string]string{"crash": crash, "hang": hang} {
		if coordinatorDeadlineRace([]byte(out)) {
			t.Errorf("a %s with a written input is taken for the coordinator race", name)
		}
	}
}
