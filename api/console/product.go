package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// productAnswer is GET /v1/tenants/{t}/licenses/{sku}: the product's counts,
// its service plans, a page of its users and every group giving it.
type productAnswer struct {
	licenseRow
	DisplayName  string `json:"displayName"`
	Publisher    string `json:"publisher"`
	ServicePlans []struct {
		ID          string `json:"servicePlanId"`
		Name        string `json:"servicePlanName"`
		DisplayName string `json:"displayName"`
	} `json:"servicePlans"`
	Users []struct {
		ID                string   `json:"id"`
		UserPrincipalName string   `json:"userPrincipalName"`
		DisplayName       string   `json:"displayName"`
		Sources           []string `json:"sources"`
		DisabledPlans     []string `json:"disabledPlans"`
		State             string   `json:"state"`
		Error             string   `json:"error"`
	} `json:"users"`
	Groups []struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
		MemberCount int    `json:"memberCount"`
	} `json:"groups"`
	Installed *bool `json:"installed"`
}

// userHit is a row of GET /v1/tenants/{t}/users?search=…: a user to pick.
type userHit struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
}

// pick is a user of the assign form: a search hit, or a user picked before
// the search (kept checked).
type pick struct {
	ID, Label string
	Checked   bool
}

// planPick is a service plan of the assign form: on unless switched off.
type planPick struct {
	ID, Name string
	On       bool
}

type productData struct {
	Sku      string // as the URL names it
	Product  productAnswer
	Next     string // the next page of users
	Search   string // the assign form's search text
	Searched bool
	Picks    []pick
	Plans    []planPick
	Action   string // the form's path prefix: /console/t/{t}/licenses/{sku}
	Holders  []holder
	Loaded   bool // the product was read: draw its counts, holders and forms
}

// holder is a row of the product's users: how they hold it, in words.
type holder struct {
	ID, Name, UPN string
	Paths         []string // Direct, Inherited (group), Self-service
	Direct        bool     // holds it directly: can be unassigned here
	Ticked        bool     // checked in a refused unassign: stays checked
	Error         string
	Off           int // service plans switched off
}

// maxPicks is the API's bulk limit (SEATLEDGER_BULK_LIMIT's default): the
// form shows at most this many search hits; the API refuses more users.
const maxPicks = 20

// product is a product's page: its counts, who holds it (users, direct or
// inherited, and groups), the assign form (users searched through the API,
// service plans to switch off) and the unassign form.
func (c *Console) product(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderProduct(w, r, s, http.StatusOK, nil, nil)
}

// renderProduct draws the product page; form is the assign form's values
// kept (a search, or a refused assignment), or the holders a refused
// unassign had checked (under "unassign"), nil for a fresh form.
func (c *Console) renderProduct(w http.ResponseWriter, r *http.Request, s *session, status int, p *problem, form url.Values) {
	v := c.newView(r, s, msg("product.title"))
	sku := r.PathValue("sku")
	d := &productData{Sku: sku, Action: "/console/t/" + url.PathEscape(v.Tenant) + "/licenses/" + url.PathEscape(sku)}
	v.Data = d
	path := "/v1/tenants/" + url.PathEscape(v.Tenant) + "/licenses/" + url.PathEscape(sku) + "?limit=50"
	if mv := minVersion(r); mv != "" {
		path += "&minVersion=" + mv // the change just made shows
	}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		path += "&cursor=" + queryEscape(cur)
	}
	h, err := c.get(r.Context(), s, path, &d.Product)
	if err != nil {
		c.fail(w, r, "product", v, err)
		return
	}
	d.Next, d.Loaded = h.Get("X-Next-Cursor"), true
	if d.Product.DisplayName != "" {
		v.Title = d.Product.DisplayName // the h1: a name, which T answers as it is
	}
	ticked := cleanIDs(form["unassign"]) // a refused unassign's users
	for _, u := range d.Product.Users {
		hd := holder{ID: u.ID, Name: u.DisplayName, UPN: u.UserPrincipalName, Error: u.Error, Off: len(u.DisabledPlans),
			Ticked: slices.Contains(ticked, u.ID)}
		for _, src := range u.Sources {
			switch {
			case src == "direct":
				hd.Direct = true
				hd.Paths = append(hd.Paths, v.T(msg("product.direct")))
			case src == "selfService":
				hd.Paths = append(hd.Paths, v.T(msg("product.selfService")))
			case strings.HasPrefix(src, "group:"):
				hd.Paths = append(hd.Paths, v.T(msg("product.inherited"), strings.TrimPrefix(src, "group:")))
			default:
				hd.Paths = append(hd.Paths, src)
			}
		}
		d.Holders = append(d.Holders, hd)
	}

	// The assign form: the users picked so far stay checked; a search adds
	// its hits (a page of the API's search, never every user).
	picked := []string{}
	if form != nil {
		picked = cleanIDs(form["users"])
	}
	for _, id := range picked {
		d.Picks = append(d.Picks, pick{ID: id, Label: id, Checked: true})
	}
	if form != nil {
		d.Search = strings.TrimSpace(form.Get("q"))
	}
	// An empty search lists the first users, so that a small tenant needs
	// no name to type.
	if d.Search != "" || form != nil && form.Get("op") == "search" {
		var hits []userHit
		q := "/v1/tenants/" + url.PathEscape(v.Tenant) + "/users?status=active&limit=" + strconv.Itoa(maxPicks)
		if d.Search != "" {
			q += "&search=" + queryEscape(d.Search)
		}
		if _, err := c.get(r.Context(), s, q, &hits); err != nil {
			if sp, ok := err.(*problem); ok && p == nil && sp.Status != http.StatusUnauthorized {
				p, status = sp, sp.Status // e.g. a search too broad: the API's words
			} else if !ok || sp.Status == http.StatusUnauthorized {
				c.fail(w, r, "product", v, err)
				return
			}
		}
		d.Searched = true
		for _, u := range hits {
			label := u.DisplayName
			if label == "" {
				label = u.UserPrincipalName
			} else {
				label += " (" + u.UserPrincipalName + ")"
			}
			if i := slices.IndexFunc(d.Picks, func(p pick) bool { return p.ID == u.ID }); i >= 0 {
				d.Picks[i].Label = label
				continue
			}
			d.Picks = append(d.Picks, pick{ID: u.ID, Label: label})
		}
	}
	off := map[string]bool{}
	if form != nil && form.Get("plansShown") != "" {
		on := form["plan"]
		for _, sp := range d.Product.ServicePlans {
			off[sp.ID] = !slices.Contains(on, sp.ID)
		}
	}
	for _, sp := range d.Product.ServicePlans {
		name := sp.DisplayName
		if name == "" {
			name = sp.Name
		}
		d.Plans = append(d.Plans, planPick{ID: sp.ID, Name: name, On: !off[sp.ID]})
	}
	v.Problem = p
	c.render(w, status, "product", v)
}

// assignProduct is the assign form. Its Search button (op=search) only
// draws the page again with the hits; Assign posts
// /licenses/{sku}/assign {"users","disabledPlans"} with the form's
// Idempotency-Key, the plans unchecked being the ones switched off.
func (c *Console) assignProduct(w http.ResponseWriter, r *http.Request, s *session) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	form := r.PostForm
	if form.Get("op") == "search" {
		c.renderProduct(w, r, s, http.StatusOK, nil, form)
		return
	}
	tenant, sku := r.PathValue("tenant"), r.PathValue("sku")
	users := cleanIDs(form["users"])
	disabled := []string{}
	if form.Get("plansShown") != "" {
		// The product's plans, to know which were left unchecked.
		var prod productAnswer
		if _, err := c.get(r.Context(), s, "/v1/tenants/"+url.PathEscape(tenant)+"/licenses/"+url.PathEscape(sku)+"?limit=1", &prod); err != nil {
			c.fail(w, r, "product", c.newView(r, s, msg("product.title")), err)
			return
		}
		for _, sp := range prod.ServicePlans {
			if !slices.Contains(form["plan"], sp.ID) {
				disabled = append(disabled, sp.ID)
			}
		}
	}
	body := map[string]any{"users": users, "disabledPlans": disabled}
	ans, p := c.command(r.Context(), s, http.MethodPost, "/v1/tenants/"+url.PathEscape(tenant)+"/licenses/"+url.PathEscape(sku)+"/assign", body, form.Get("idem"))
	if p == nil {
		// The page shows the users just assigned: it reads at the
		// version the assignment wrote.
		doneAt(w, r, "/console/t/"+url.PathEscape(tenant)+"/licenses/"+url.PathEscape(sku), msg("ok.licensesAssigned"), ans.Version)
		return
	}
	c.refusedProduct(w, r, s, p, form)
}

// unassignProduct is the holders' form: POST /licenses/{sku}/unassign with
// the users checked.
func (c *Console) unassignProduct(w http.ResponseWriter, r *http.Request, s *session) {
	tenant, sku := r.PathValue("tenant"), r.PathValue("sku")
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	body := map[string]any{"users": cleanIDs(r.PostForm["users"])}
	ans, p := c.command(r.Context(), s, http.MethodPost, "/v1/tenants/"+url.PathEscape(tenant)+"/licenses/"+url.PathEscape(sku)+"/unassign", body, r.PostForm.Get("idem"))
	if p == nil {
		// As after assign: the page reads at the version the change
		// wrote, so the users just unassigned are gone from it.
		doneAt(w, r, "/console/t/"+url.PathEscape(tenant)+"/licenses/"+url.PathEscape(sku), msg("ok.licensesUnassigned"), ans.Version)
		return
	}
	c.refusedProduct(w, r, s, p, url.Values{"unassign": r.PostForm["users"]})
}

// refusedProduct shows the product page again with the problem of a
// refused change and the form's values (nil: none kept); a 401 goes to
// sign-in.
func (c *Console) refusedProduct(w http.ResponseWriter, r *http.Request, s *session, p *problem, form url.Values) {
	if p.Status == http.StatusUnauthorized {
		c.fail(w, r, "product", c.newView(r, s, msg("product.title")), p)
		return
	}
	c.renderProduct(w, r, s, p.Status, p, form)
}

// cleanIDs trims ids, drops empty ones and repeats, keeps the order.
func cleanIDs(in []string) []string {
	out := []string{}
	for _, id := range in {
		id = strings.TrimSpace(id)
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// problemHeadline is the admin center's headline for a problem, built from
// its code and facts (never its detail), in v's language; empty when the
// code has none. render sets it on every page's problem, so any page that
// assigns licenses shows these words.
func problemHeadline(v *view, p *problem) string {
	switch p.Code {
	case "insufficient_licenses":
		if p.Missing == 1 {
			return v.T(msg("problem.insufficient.one"))
		}
		if p.Missing > 1 {
			return v.T(msg("problem.insufficient.other"), p.Missing)
		}
	case "mutually_exclusive_plans":
		if len(p.Plans) > 0 {
			return v.T(msg("problem.exclusive"), strings.Join(p.Plans, v.T(msg("problem.listSeparator"))))
		}
	case "idempotency_key_reused":
		// A form sent again from the browser's history with other
		// values: its key is spent, the page drawn now has a fresh one.
		return v.T(msg("problem.formSentBefore"))
	}
	return ""
}
