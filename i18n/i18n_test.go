package i18n

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestNegotiateChoosesTheBestSupportedLanguage(t *testing.T) {
	for header, want := range map[string]Lang{
		"":                                English,
		"fr-FR,fr;q=0.9,en;q=0.8":         French,
		"de-DE,de;q=0.9":                  English,
		"en;q=0.5, zh-TW;q=0.8":           TraditionalChinese,
		"zh-Hant-TW":                      TraditionalChinese,
		"de, fr;q=0.3, en;q=0.2":          French,
		"fr;q=abc, zh-TW":                 TraditionalChinese,
		"fr;q=0, en":                      English,
		strings.Repeat("x,", 1000) + "fr": French,
	} {
		if got := Negotiate(header); got != want {
			t.Errorf("Negotiate(%q) = %s, want %s", header, got, want)
		}
	}
}

func TestCatalogFindsTextsAndReportsWhatIsMissing(t *testing.T) {
	fsys := fstest.MapFS{
		"l/pages.en.json":    {Data: []byte(`{"licenses":"Licenses","buy":"You need to buy %d more licenses for %s."}`)},
		"l/pages.fr.json":    {Data: []byte(`{"licenses":"Licences","buy":"Pour %[2]s, vous devez acheter %[1]d licences de plus."}`)},
		"l/pages.zh-TW.json": {Data: []byte(`{"licenses":"授權","extra":"多餘"}`)},
	}
	c, err := Load(fsys, "l")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.T(French, "buy", 2, "E3"); got != "Pour E3, vous devez acheter 2 licences de plus." {
		t.Errorf("French text = %q", got)
	}
	if got := c.T(TraditionalChinese, "licenses"); got != "授權" {
		t.Errorf("Chinese text = %q", got)
	}
	missing := strings.Join(c.Missing(), "\n")
	for _, want := range []string{`"buy" has no zh-TW text`, `"extra" is translated to zh-TW but has no English text`} {
		if !strings.Contains(missing, want) {
			t.Errorf("Missing() = %s\nwant a line with %s", missing, want)
		}
	}
	if got := c.T(TraditionalChinese, "buy", 1, "E5"); !strings.HasPrefix(got, "You need to buy 1") {
		t.Errorf("a missing translation shows the English text, got %q", got)
	}
}

func TestMissingCatchesATranslationThatDropsAnArgument(t *testing.T) {
	c, err := Load(fstest.MapFS{
		"l/a.en.json":    {Data: []byte(`{"k":"%s holds %d"}`)},
		"l/a.fr.json":    {Data: []byte(`{"k":"%s détient"}`)},
		"l/a.zh-TW.json": {Data: []byte(`{"k":"%[2]d %[1]s"}`)},
	}, "l")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Missing()
	if len(got) != 1 || !strings.Contains(got[0], "in fr uses 1 arguments, English 2") {
		t.Errorf("Missing() = %q, want only the French defect", got)
	}
}

func TestLoadRefusesAnUnsupportedLanguageFile(t *testing.T) {
	_, err := Load(fstest.MapFS{"l/a.de.json": {Data: []byte(`{}`)}}, "l")
	if err == nil || !strings.Contains(err.Error(), "a.de.json") {
		t.Errorf("Load = %v, want an error naming the file", err)
	}
}
