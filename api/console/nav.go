package console

import (
	"net/http"
	"net/url"
	"strings"
)

// navItem is an entry of the left navigation of a tenant's pages, at
// /console/t/{tenant}/<Path>. It shows once its page is served (tenantPage)
// to those who hold one of Roles (none: every user of the tenant; the
// operator holds all). The API still decides: this only hides what would
// be refused.
type navItem struct {
	Path     string
	Key      string // catalog key of its name
	Roles    []string
	Operator bool // the operator sees it (false for a user's own pages)
}

var readers = adminRoles

// nav is the tenant navigation, in the admin center's order.
var nav = []navItem{
	{Path: "licenses", Key: msg("nav.licenses"), Roles: readers, Operator: true},
	{Path: "products", Key: msg("nav.products"), Roles: readers, Operator: true},
	{Path: "users", Key: msg("nav.users"), Roles: readers, Operator: true},
	{Path: "groups", Key: msg("nav.groups"), Roles: readers, Operator: true},
	{Path: "heldData", Key: msg("nav.heldData"), Roles: readers, Operator: true},
	{Path: "audit", Key: msg("nav.audit"), Roles: []string{roleGlobalAdmin}, Operator: true},
	{Path: "timeTravel", Key: msg("nav.timeTravel"), Roles: []string{roleGlobalAdmin}, Operator: true},
	{Path: "me", Key: msg("nav.me")},
}

type navLink struct {
	Key     string
	Href    string
	Current bool
}

// navFor is the navigation s sees on a page of tenant (empty off tenant
// pages) at path.
func (c *Console) navFor(s *session, tenant, path string) []navLink {
	var out []navLink
	if s.Operator {
		out = append(out, navLink{Key: msg("nav.tenants"), Href: "/console/tenants", Current: path == "/console/tenants"})
	}
	if tenant == "" && !s.Operator {
		tenant = s.Tenant
	}
	if tenant == "" {
		return out
	}
	for _, it := range nav {
		if !c.served[it.Path] || !c.allowed(s, it) {
			continue
		}
		href := "/console/t/" + url.PathEscape(tenant) + "/" + it.Path
		out = append(out, navLink{Key: it.Key, Href: href, Current: path == href || strings.HasPrefix(path, href+"/")})
	}
	return out
}

func (c *Console) allowed(s *session, it navItem) bool {
	if s.Operator {
		return it.Operator
	}
	return len(it.Roles) == 0 || s.Admin(it.Roles...)
}

// tenantPage serves GET /console/t/{tenant}/<path> (and below it, when
// path ends with "/") with h, for a signed-in person of that tenant (or the
// operator), and shows path's nav item.
func (c *Console) tenantPage(path string, h func(http.ResponseWriter, *http.Request, *session)) {
	c.served[strings.TrimSuffix(path, "/")] = true
	c.mux.HandleFunc("GET /console/t/{tenant}/"+path, c.inTenant(h))
}

// tenantAction serves POST /console/t/{tenant}/<path> with h (a change),
// as tenantPage does.
func (c *Console) tenantAction(path string, h func(http.ResponseWriter, *http.Request, *session)) {
	c.actions = append(c.actions, path)
	c.mux.HandleFunc("POST /console/t/{tenant}/"+path, c.inTenant(h))
}

// actionPages serves a GET of each tenant action that is not a page
// itself with a redirect to the page its form is on: the longest page path
// that its path starts with (users/{user}/delete → users/{user}). A
// refused change is drawn at its action's address, which the person may
// open again. routes calls it once every page is served.
func (c *Console) actionPages() {
	for _, path := range c.actions {
		if c.served[path] {
			continue
		}
		segs := strings.Split(path, "/")
		page := ""
		for i := len(segs) - 1; i > 0 && page == ""; i-- {
			if p := strings.Join(segs[:i], "/"); c.served[p] {
				page = p
			}
		}
		if page == "" {
			panic("console: no page for the action " + path)
		}
		c.mux.HandleFunc("GET /console/t/{tenant}/"+path, func(w http.ResponseWriter, r *http.Request) {
			segs := strings.Split(page, "/")
			for i, seg := range segs {
				if strings.HasPrefix(seg, "{") {
					seg = r.PathValue(strings.Trim(seg, "{}"))
				}
				segs[i] = url.PathEscape(seg)
			}
			http.Redirect(w, r, "/console/t/"+url.PathEscape(r.PathValue("tenant"))+"/"+strings.Join(segs, "/"), http.StatusSeeOther)
		})
	}
}

// operatorPage serves GET /console/<path> for the operator only.
func (c *Console) operatorPage(path string, h func(http.ResponseWriter, *http.Request, *session)) {
	c.mux.HandleFunc("GET /console/"+path, c.asOperator(h))
}

// operatorAction serves POST /console/<path> for the operator only.
func (c *Console) operatorAction(path string, h func(http.ResponseWriter, *http.Request, *session)) {
	c.mux.HandleFunc("POST /console/"+path, c.asOperator(h))
}

func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.current(r)
		if s == nil {
			clearSession(w, r)
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		h(w, r, s)
	}
}

func (c *Console) inTenant(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return c.signedIn(func(w http.ResponseWriter, r *http.Request, s *session) {
		if !s.Operator && r.PathValue("tenant") != s.Tenant {
			// What the API answers a token of another tenant.
			c.notFound(w, r, s)
			return
		}
		h(w, r, s)
	})
}

func (c *Console) asOperator(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return c.signedIn(func(w http.ResponseWriter, r *http.Request, s *session) {
		if !s.Operator {
			c.notFound(w, r, s)
			return
		}
		h(w, r, s)
	})
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("common.notFound"))
	v.Problem = &problem{Status: http.StatusNotFound, Detail: v.T("common.notFoundDetail")}
	c.render(w, http.StatusNotFound, "notfound", v)
}

// staleForm answers a same-site POST whose csrf field is not its
// session's: a form drawn before its person signed out, or in again in
// another tab. Nothing is done; the page says so in the person's language
// and leads back to the page the form was on (its Referer, when that is a
// console path).
func (c *Console) staleForm(w http.ResponseWriter, r *http.Request) {
	v := c.newView(r, c.current(r), msg("common.staleForm"))
	v.Problem = &problem{Status: http.StatusForbidden, Detail: v.T("common.staleFormDetail")}
	back := "/"
	if ref, err := url.Parse(r.Referer()); err == nil {
		back = localPath(ref.RequestURI())
	}
	v.Data = back
	c.render(w, http.StatusForbidden, "staleForm", v)
}
