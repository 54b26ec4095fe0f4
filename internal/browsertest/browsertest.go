// Package browsertest drives a real Chromium, headless, for the console's
// tests (issue #21): it finds the browser, starts it with the flags this
// machine's closed network needs, and takes screenshots for docs/console/.
//
// A test that needs a browser calls New. Where no Chromium is installed the
// test skips and says why, except under CI (CI=true), where .ci/run installs
// Debian's chromium first: there a missing browser fails, so the browser
// tests cannot silently stop running.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvChrome names the browser binary to use instead of searching for one.
const EnvChrome = "SEATLEDGER_CHROME"

// EnvScreenshots, when "1", makes Screenshot write docs/console/<name>.png;
// otherwise screenshots are taken (so the page renders) but not written,
// and a test run leaves the repository unchanged.
const EnvScreenshots = "SEATLEDGER_SCREENSHOTS"

// Find answers the path of a Chromium-family browser: $SEATLEDGER_CHROME,
// else the first of chromium, chromium-browser, google-chrome on PATH.
func Find() (string, error) {
	if p := os.Getenv(EnvChrome); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvChrome, p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found: install Debian's chromium (apt-get install chromium) or set %s", EnvChrome)
}

// Size is a browser window's size in CSS pixels.
type Size struct{ Width, Height int }

// Window sizes the console is shown at: a laptop screen and a narrow window.
var (
	Laptop = Size{1280, 800}
	Narrow = Size{420, 860}
)

// New starts a headless Chromium for t, with a fresh profile, and answers a
// Page on its first tab whose steps time out after timeout (30 s if zero).
// The browser stops when t ends.
func New(t testing.TB, size Size, timeout time.Duration) *Page {
	t.Helper()
	path, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser test under CI: %v (.ci/run installs it)", err)
		}
		t.Skipf("skipped: no browser to drive: %v", err)
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.WindowSize(size.Width, size.Height),
		// This machine's network is closed: without these Chromium keeps
		// trying to reach Google's services.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
	}
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so a broken install fails here and not in the
	// test's first action.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start %s: %v", path, err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser()
		cancelAlloc()
	})
	return &Page{t: t, ctx: ctx}
}

// repoRoot is the directory of go.mod above this file.
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("browsertest: cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}
