package console

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/i18n"
)

// TestCatalogComplete: every text in every language, nothing translated
// that English does not have.
func TestCatalogComplete(t *testing.T) {
	for _, m := range catalog.Missing() {
		t.Error(m)
	}
}

// TestKeysUsedExist: every key a template translates ({{.T "key"}}) and
// every key Go code marks (msg("key")) has an English text (and so, by
// TestCatalogComplete, every language's).
func TestKeysUsedExist(t *testing.T) {
	keys := usedKeys(t, os.DirFS("."))
	if len(keys) < 30 {
		t.Fatalf("found only %d keys used: is the scan right?", len(keys))
	}
	for _, k := range keys {
		if !catalog.Has(i18n.English, k) {
			t.Errorf("key %q is used but has no text in locales/", k)
		}
	}
}

// TestKeysUsedScanFindsAMissingKey checks the scan on made-up files, so
// TestKeysUsedExist cannot pass by finding nothing.
func TestKeysUsedScanFindsAMissingKey(t *testing.T) {
	dir := t.TempDir()
	must := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must("templates/x.html", `<p>{{.T "licenses.title"}} {{$.T "nope.template" 3}}</p>`)
	must("x.go", `var k = msg("nope.code")`)
	keys := usedKeys(t, os.DirFS(dir))
	for _, k := range []string{"licenses.title", "nope.template", "nope.code"} {
		if !slices.Contains(keys, k) {
			t.Errorf("the scan misses %q: %v", k, keys)
		}
	}
	if catalog.Has(i18n.English, "nope.template") {
		t.Fatal("nope.template is in the catalog")
	}
}

var (
	templateKey = regexp.MustCompile(`\.T "([^"]+)"`)
	codeKey     = regexp.MustCompile(`msg\("([^"]+)"\)`)
)

// usedKeys scans templates/*.html and the non-test .go files of fsys for
// the keys they translate.
func usedKeys(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	var keys []string
	scan := func(pattern string, re *regexp.Regexp) {
		files, err := fs.Glob(fsys, pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				if m[1] != "key" && !slices.Contains(keys, m[1]) { // msg's own doc comment
					keys = append(keys, m[1])
				}
			}
		}
	}
	scan("templates/*.html", templateKey)
	scan("*.go", codeKey)
	slices.Sort(keys)
	return keys
}
