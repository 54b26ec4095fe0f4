package console

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/seatledger/seatledger/i18n"
)

// page is a parsed template: templates/layout.html with the page's own
// templates/<name>.html, which defines "content".
type page struct{ t *template.Template }

// parsePages parses every page of templates/ (New calls it once).
func parsePages() map[string]*page {
	files, _ := fs.Glob(templateFiles, "templates/*.html")
	out := map[string]*page{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		out[name] = &page{template.Must(template.ParseFS(templateFiles, "templates/layout.html", f))}
	}
	return out
}

// template answers the page called name.
func (c *Console) template(name string) *page {
	p, ok := c.pages[name]
	if !ok {
		panic("console: no templates/" + name + ".html")
	}
	return p
}

// view is what every template receives: the layout's parts and the page's
// Data. Templates translate with {{.T "key"}} and put {{.Idem}} in every
// form that changes something.
type view struct {
	Lang    i18n.Lang
	Title   string // a catalog key
	Sess    *session
	Tenant  string // the tenant of the page's URL (empty off tenant pages)
	Nav     []navLink
	Langs   []langLink
	CSRF    string
	Problem *problem
	OK      string // a success message, translated
	// Dev: serve runs on generated development secrets, so the sign-in
	// page's one-click picker exists (the header links to it).
	Dev  bool
	Data any
}

// T answers key's text in the page's language (args as fmt.Sprintf).
func (v *view) T(key string, args ...any) string { return catalog.T(v.Lang, key, args...) }

// Idem is a fresh Idempotency-Key for one form: the same submission posted
// twice (a double click) acts once.
func (v *view) Idem() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type langLink struct {
	Lang    i18n.Lang
	Name    string
	Href    string
	Current bool
}

var langNames = map[i18n.Lang]string{i18n.English: "English", i18n.French: "Français", i18n.TraditionalChinese: "中文(台灣)"}

// newView starts the view of a page for r.
func (c *Console) newView(r *http.Request, s *session, title string) *view {
	v := &view{Lang: language(r), Title: title, Sess: s, Tenant: r.PathValue("tenant"), CSRF: c.csrfToken(r), Dev: c.cfg.DevSignIn != nil}
	if s != nil {
		v.Nav = c.navFor(s, v.Tenant, r.URL.Path)
	}
	back := r.URL.Path
	if r.URL.RawQuery != "" {
		back += "?" + r.URL.RawQuery
	}
	if r.Method != http.MethodGet {
		// A refused change is drawn at its form's action, which answers
		// no GET: go back to the page the form was on (setLang keeps it
		// to the console's paths), else to the start page.
		back = "/"
		if ref, err := url.Parse(r.Referer()); err == nil && ref.Path != "" {
			back = ref.Path
			if ref.RawQuery != "" {
				back += "?" + ref.RawQuery
			}
		}
	}
	for _, l := range i18n.Supported {
		v.Langs = append(v.Langs, langLink{Lang: l, Name: langNames[l], Current: l == v.Lang,
			Href: "/console/lang?" + url.Values{"to": {string(l)}, "back": {back}}.Encode()})
	}
	if ok := r.URL.Query().Get("ok"); ok != "" && catalog.Has(i18n.English, ok) && len(ok) > 3 && ok[:3] == "ok." {
		v.OK = v.T(ok)
	}
	return v
}

// render writes the page called name with status.
func (c *Console) render(w http.ResponseWriter, status int, name string, v *view) {
	if v.Problem != nil && v.Problem.Headline == "" {
		v.Problem.Headline = problemHeadline(v, v.Problem)
	}
	c.execute(w, status, name, "layout", v)
}

// execute writes the template block of page (its "layout": the whole page)
// with status, or a 500 when it cannot be drawn; nothing is written before
// the block is drawn whole.
func (c *Console) execute(w http.ResponseWriter, status int, page, block string, v *view) {
	var buf bytes.Buffer
	if err := c.template(page).t.ExecuteTemplate(&buf, block, v); err != nil {
		c.cfg.Logger.Error("console: render", "page", page, "block", block, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", string(v.Lang))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows err on the page called name (a page that draws with an empty
// Data): an API problem in the message bar with the API's status, a
// signed-out person on the sign-in page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, name string, v *view, err error) {
	var p *problem
	if !errors.As(err, &p) {
		c.cfg.Logger.Error("console", "path", r.URL.Path, "err", err)
		p = &problem{Status: http.StatusInternalServerError, Detail: v.T("common.internal")}
	}
	if p.Status == http.StatusUnauthorized {
		clearSession(w, r)
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return
	}
	v.Problem = p
	c.render(w, p.Status, name, v)
}
