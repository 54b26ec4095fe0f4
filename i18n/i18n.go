// Package i18n chooses a language for a person and finds the words for it.
//
// seatledger speaks English, French and Traditional Chinese (Taiwan), with
// the terms of Microsoft's translated admin center documents (licences,
// 授權). Text lives in catalogs: JSON files named <area>.<lang>.json, one
// object of key → text per file, so each part of the product (the console's
// pages, the problem answers) keeps its own words and they merge at load.
//
// A missing translation is a defect caught by tests (Catalog.Missing), not a
// silent English fallback: at run time a missing key shows the English text
// so a person still reads something, and the test suite fails.
package i18n

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Lang is a language tag seatledger speaks.
type Lang string

// The languages seatledger speaks; English is the default.
const (
	English            Lang = "en"
	French             Lang = "fr"
	TraditionalChinese Lang = "zh-TW"
)

// Supported lists the languages in the order a language switcher shows them.
var Supported = []Lang{English, French, TraditionalChinese}

// Parse reads a language tag as a person or browser writes it ("fr-CA",
// "zh-Hant", "ZH-tw") and answers the supported language it means.
func Parse(tag string) (Lang, bool) {
	t := strings.ToLower(strings.TrimSpace(tag))
	switch {
	case t == "en" || strings.HasPrefix(t, "en-"):
		return English, true
	case t == "fr" || strings.HasPrefix(t, "fr-"):
		return French, true
	case t == "zh-tw" || t == "zh-hant" || strings.HasPrefix(t, "zh-hant-") || t == "zh-hk" || t == "zh-mo":
		return TraditionalChinese, true
	case t == "zh" || strings.HasPrefix(t, "zh-"):
		// Simplified Chinese is not offered; Traditional is closer than English.
		return TraditionalChinese, true
	}
	return "", false
}

// Negotiate picks the language for an Accept-Language header: the supported
// language with the highest quality, the earliest on ties, English when the
// header names none of ours. It never fails: a malformed header is English.
func Negotiate(acceptLanguage string) Lang {
	best, bestQ := English, -1.0
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(part, ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		lang, ok := Parse(tag)
		if !ok || q == 0 {
			continue
		}
		if q > bestQ {
			best, bestQ = lang, q
		}
	}
	return best
}

// Catalog holds the texts of every area in every supported language.
type Catalog struct {
	texts map[Lang]map[string]string
	// origin names the file each key came from, for Missing's report.
	origin map[string]string
}

// Load reads every <area>.<lang>.json under dir in fsys. A file whose
// language is not supported, a key defined twice in one language or a file
// that is not a JSON object of strings is an error naming the file.
func Load(fsys fs.FS, dir string) (*Catalog, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	c := &Catalog{texts: map[Lang]map[string]string{}, origin: map[string]string{}}
	for _, l := range Supported {
		c.texts[l] = map[string]string{}
	}
	for _, file := range files {
		base := strings.TrimSuffix(path.Base(file), ".json")
		dot := strings.Index(base, ".")
		if dot < 0 {
			return nil, fmt.Errorf("i18n: %s: name it <area>.<lang>.json", file)
		}
		lang := Lang(base[dot+1:])
		if !slices.Contains(Supported, lang) {
			return nil, fmt.Errorf("i18n: %s: language %q is not one of %v", file, lang, Supported)
		}
		raw, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		var texts map[string]string
		if err := json.Unmarshal(raw, &texts); err != nil {
			return nil, fmt.Errorf("i18n: %s: %w", file, err)
		}
		for k, v := range texts {
			if _, dup := c.texts[lang][k]; dup {
				return nil, fmt.Errorf("i18n: %s: key %q is defined twice in %s", file, k, lang)
			}
			c.texts[lang][k] = v
			if lang == English {
				c.origin[k] = file
			}
		}
	}
	return c, nil
}

// MustLoad is Load for catalogs embedded in the binary, where an error is a
// programming mistake caught by the first test.
func MustLoad(fsys fs.FS, dir string) *Catalog {
	c, err := Load(fsys, dir)
	if err != nil {
		panic(err)
	}
	return c
}

// Has reports whether key has a text in lang.
func (c *Catalog) Has(lang Lang, key string) bool {
	_, ok := c.texts[lang][key]
	return ok
}

// T answers key's text in lang, formatted with args as fmt.Sprintf does
// (translations reorder arguments with explicit indexes, %[2]s). A key
// missing in lang answers the English text; a key missing everywhere answers
// the key itself. Both are caught by Missing in tests.
func (c *Catalog) T(lang Lang, key string, args ...any) string {
	text, ok := c.texts[lang][key]
	if !ok {
		if text, ok = c.texts[English][key]; !ok {
			text = key
		}
	}
	if len(args) == 0 {
		return text
	}
	return fmt.Sprintf(text, args...)
}

// Keys answers every English key, sorted.
func (c *Catalog) Keys() []string {
	keys := make([]string, 0, len(c.texts[English]))
	for k := range c.texts[English] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Missing answers one line per defect, sorted: a key with an English text
// but none in another language, a key translated but unknown in English, and
// a translation whose formatting verbs differ in number from the English.
// Tests fail when it is not empty.
func (c *Catalog) Missing() []string {
	var out []string
	for _, k := range c.Keys() {
		for _, l := range Supported[1:] {
			t, ok := c.texts[l][k]
			if !ok {
				out = append(out, fmt.Sprintf("%s: %q has no %s text", c.origin[k], k, l))
				continue
			}
			if verbs(t) != verbs(c.texts[English][k]) {
				out = append(out, fmt.Sprintf("%s: %q in %s uses %d arguments, English %d", c.origin[k], k, l, verbs(t), verbs(c.texts[English][k])))
			}
		}
	}
	for _, l := range Supported[1:] {
		for k := range c.texts[l] {
			if _, ok := c.texts[English][k]; !ok {
				out = append(out, fmt.Sprintf("%q is translated to %s but has no English text", k, l))
			}
		}
	}
	slices.Sort(out)
	return out
}

// verbs counts the distinct arguments a format uses: %v-style verbs in
// order, or the highest explicit index %[n]v. %% is not a verb.
func verbs(format string) int {
	next, highest := 0, 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		if i < len(format) && format[i] == '%' {
			continue
		}
		if i < len(format) && format[i] == '[' {
			end := strings.IndexByte(format[i:], ']')
			if end > 0 {
				if idx, err := strconv.Atoi(format[i+1 : i+end]); err == nil {
					next = idx
					highest = max(highest, idx)
					continue
				}
			}
		}
		next++
		highest = max(highest, next)
	}
	return highest
}
