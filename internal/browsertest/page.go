package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Page is one browser tab driven by a test. Each method waits for what it
// needs (an element to be visible before reading or clicking it) and fails
// the test with the selector and the page's address when a step fails, so
// tests read as the steps a person takes.
//
// Selectors are CSS selectors. Context gives chromedp's context for
// anything Page does not wrap (chromedp v0.23: chromedp.Do(ctx, steps...)
// and chromedp.Run(ctx, action) for an action with a value).
type Page struct {
	t   testing.TB
	ctx context.Context
}

// Context is the chromedp context of the tab.
func (p *Page) Context() context.Context { return p.ctx }

func (p *Page) fail(step string, err error) {
	p.t.Helper()
	loc, _ := chromedp.Run(p.ctx, chromedp.Location())
	p.t.Fatalf("browser: %s (at %s): %v", step, loc, err)
}

// Go opens url and waits for its body.
func (p *Page) Go(url string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		p.fail("open "+url, err)
	}
}

// Location is the tab's current address.
func (p *Page) Location() string {
	p.t.Helper()
	loc, err := chromedp.Run(p.ctx, chromedp.Location())
	if err != nil {
		p.fail("location", err)
	}
	return loc
}

// Text is the visible text of the first element matching sel, once visible.
func (p *Page) Text(sel string) string {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		p.fail("wait for "+sel, err)
	}
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.fail("read "+sel, err)
	}
	return s
}

// Has reports whether an element matches sel now, without waiting.
func (p *Page) Has(sel string) bool {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("document.querySelector("+jsString(sel)+") !== null"))
	if err != nil {
		p.fail("look for "+sel, err)
	}
	return n
}

// Count is the number of elements matching sel now.
func (p *Page) Count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int]("document.querySelectorAll("+jsString(sel)+").length"))
	if err != nil {
		p.fail("count "+sel, err)
	}
	return n
}

// WaitVisible waits until an element matching sel is visible.
func (p *Page) WaitVisible(sel string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		p.fail("wait for "+sel, err)
	}
}

// WaitGone waits until no element matches sel.
func (p *Page) WaitGone(sel string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitNotPresent(chromedp.CSS(sel))); err != nil {
		p.fail("wait for "+sel+" to go", err)
	}
}

// Click clicks the first element matching sel, once visible.
func (p *Page) Click(sel string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.fail("click "+sel, err)
	}
}

// Type types text into the first element matching sel (after what it holds).
func (p *Page) Type(sel, text string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		p.fail("type into "+sel, err)
	}
}

// SetValue replaces the value of a form field (an input, a select).
func (p *Page) SetValue(sel, value string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitReady(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value)); err != nil {
		p.fail("set "+sel, err)
	}
}

// Key presses keys on the focused element: text, or kb's named keys
// (github.com/chromedp/chromedp/kb: kb.ArrowRight, kb.Enter...).
func (p *Page) Key(keys string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.KeyEvent(keys)); err != nil {
		p.fail("press keys", err)
	}
}

// Eval runs a JavaScript expression and answers its value as T (JSON
// decoded: numbers as float64 for any, strings, booleans, objects).
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail("evaluate "+expr, err)
	}
	return v
}

// Resize changes the tab's viewport, e.g. to Narrow before a screenshot.
func (p *Page) Resize(size Size) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.EmulateViewport(int64(size.Width), int64(size.Height))); err != nil {
		p.fail("resize", err)
	}
}

// Screenshot captures the page (PNG) and, when SEATLEDGER_SCREENSHOTS=1,
// writes it to docs/console/<name>.png at the repository's root. Without
// it the capture still runs, so the page is proven to render, and a test
// run leaves the repository unchanged.
func (p *Page) Screenshot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.fail("screenshot "+name, err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		p.t.Fatalf("screenshot %s: not a PNG image (%d bytes)", name, len(png))
	}
	if os.Getenv(EnvScreenshots) != "1" {
		return
	}
	dir := filepath.Join(repoRoot(p.t), "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// Timed runs step and answers how long it took, for measurements made in
// the browser (e.g. key press to new state painted, with a wait in step).
func (p *Page) Timed(step func()) time.Duration {
	start := time.Now()
	step()
	return time.Since(start)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		switch r {
		case '"', '\\':
			b = append(b, '\\', byte(r))
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, string(r)...)
		}
	}
	return string(append(b, '"'))
}
