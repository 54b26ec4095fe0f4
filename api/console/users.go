package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The Active users pages: the list with its search and filters, "Manage
// product licenses" for the users ticked on it and "Add a user"
// (users.html), and a user's panel with their licenses and apps, delete
// and restore (user.html). Every read is a GET of /v1/tenants/{t}/users…,
// every change the API's command; the API decides who may do what.

// userLicense is a product of a user as the list and the panel show it.
type userLicense struct {
	SkuID         string   `json:"skuId"`
	SkuPartNumber string   `json:"skuPartNumber"`
	Sources       []string `json:"sources"`
	State         string   `json:"state"` // Active, ActiveWithError, Error
	Error         string   `json:"error"`
	ErrorDetail   string   `json:"errorDetail"`
}

// Name is how a page names the product: its part number, else its id.
func (l userLicense) Name() string {
	if l.SkuPartNumber != "" {
		return l.SkuPartNumber
	}
	return l.SkuID
}

// Direct reports whether the user holds the product directly (so its
// plans and its removal are theirs to change).
func (l userLicense) Direct() bool { return slices.Contains(l.Sources, "direct") }

// userRow is a row of GET /v1/tenants/{t}/users (UserSummary).
type userRow struct {
	ID                string        `json:"id"`
	UserPrincipalName string        `json:"userPrincipalName"`
	DisplayName       string        `json:"displayName"`
	UserType          string        `json:"userType"`
	Status            string        `json:"status"`
	Licenses          []userLicense `json:"licenses"`
}

// userFilters are the list's search and filters, as the API names them.
// status is the console's own default: "active" (the page is Active
// users), "all" for no filter; orderBy defaults to displayName.
var userFilters = []string{"search", "userType", "status", "licensed", "skuId", "licenseState", "orderBy"}

// usersPageSize is the list's page: the API pages, the console never
// reads more than one page per request.
const usersPageSize = 50

type usersData struct {
	Loaded   bool              // the list was read: draw the actions
	Rows     []userRow         // this page
	Next     string            // the next page's href, empty on the last
	Q        map[string]string // the filters shown (userFilters)
	Query    string            // the list's query string, carried by its forms
	Products []licenseRow      // the tenant's products, for filters and pickers
	Selected map[string]bool   // users ticked (kept when a change is refused)
	Mode     string            // Manage product licenses: AssignMore, Replace, UnassignAll
	Skus     map[string]bool   // products ticked in Manage / Add
	Manage   bool              // open Manage product licenses (refused)
	Adding   bool              // open Add a user (refused)
	Form     map[string]string // Add a user's values, kept when refused
	Names    map[string]string // product names by skuId
}

// productNames maps the skuIds of products to their names.
func productNames(products []licenseRow) map[string]string {
	out := make(map[string]string, len(products))
	for _, p := range products {
		out[p.SkuID] = p.ProductName
	}
	return out
}

// usersBase is the list's path for tenant.
func usersBase(tenant string) string { return "/console/t/" + url.PathEscape(tenant) + "/users" }

// userBase is a user's panel's path.
func userBase(tenant, user string) string { return usersBase(tenant) + "/" + url.PathEscape(user) }

// minVersion is the ?minVersion= a change's redirect carries (the tenant
// version it wrote, doneAt), passed on to the API: the page then shows
// that change.
func minVersion(r *http.Request) string {
	v := r.URL.Query().Get("minVersion")
	if _, err := strconv.ParseUint(v, 10, 64); err != nil {
		return ""
	}
	return v
}

// filtersOf reads the list's filters from q; status defaults to active.
func filtersOf(q url.Values) map[string]string {
	f := map[string]string{}
	for _, k := range userFilters {
		f[k] = strings.TrimSpace(q.Get(k))
	}
	if f["status"] == "" {
		f["status"] = "active"
	}
	if f["orderBy"] == "" {
		f["orderBy"] = "displayName" // as the Sort by box says, also for status=all
	}
	return f
}

// usersList is GET /console/t/{t}/users.
func (c *Console) usersList(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderUsers(w, r, s, r.URL.Query(), http.StatusOK, nil, &usersData{})
}

// renderUsers draws the list of the filters and cursor in q, with p (a
// refused change) in the message bar and d's kept form values.
func (c *Console) renderUsers(w http.ResponseWriter, r *http.Request, s *session, q url.Values, status int, p *problem, d *usersData) {
	v := c.newView(r, s, msg("users.title"))
	v.Data = d
	d.Q = filtersOf(q)
	if d.Mode == "" {
		d.Mode = "AssignMore"
	}
	api := url.Values{"limit": {strconv.Itoa(usersPageSize)}}
	page := url.Values{}
	for _, k := range userFilters {
		val := d.Q[k]
		if val == "" {
			continue
		}
		page.Set(k, val)
		if k != "status" || val != "all" {
			api.Set(k, val)
		}
	}
	if cur := q.Get("cursor"); cur != "" {
		api.Set("cursor", cur)
	}
	if mv := minVersion(r); mv != "" {
		api.Set("minVersion", mv)
	}
	// The forms carry the list's filters and page back, not the message
	// or version of the change before.
	carry := url.Values{}
	for k, vs := range q {
		if k == "cursor" || slices.Contains(userFilters, k) {
			carry[k] = vs
		}
	}
	d.Query = carry.Encode()
	ctx := r.Context()
	base := "/v1/tenants/" + url.PathEscape(v.Tenant)
	h, err := c.get(ctx, s, base+"/users?"+api.Encode(), &d.Rows)
	if err != nil {
		c.fail(w, r, "users", v, err)
		return
	}
	if next := h.Get("X-Next-Cursor"); next != "" {
		page.Set("cursor", next)
		d.Next = usersBase(v.Tenant) + "?" + page.Encode()
	}
	if d.Products, err = c.tenantProducts(ctx, s, v.Tenant); err != nil {
		c.fail(w, r, "users", v, err)
		return
	}
	d.Names = productNames(d.Products)
	d.Loaded = true
	v.Problem = p
	c.render(w, status, "users", v)
}

// tenantProducts are the tenant's products (GET licenses, its first page of
// 100: a tenant holds a few dozen at most).
func (c *Console) tenantProducts(ctx context.Context, s *session, tenant string) ([]licenseRow, error) {
	var out []licenseRow
	_, err := c.get(ctx, s, "/v1/tenants/"+url.PathEscape(tenant)+"/licenses?limit=100", &out)
	return out, err
}

// commandAnswer is what the console reads of a command's answer.
type commandAnswer struct {
	Version uint64 `json:"version"`
	ID      string `json:"id"`
}

// command runs a change with the form's idempotency key and answers the
// API's answer, or the problem it refused the change with; what went
// wrong in the console itself is logged and shown as an internal problem.
func (c *Console) command(ctx context.Context, s *session, method, path string, body any, idem string) (commandAnswer, *problem) {
	var ans commandAnswer
	w, err := c.call(ctx, s, method, path, body, idem)
	if err == nil {
		if e := answerError(w); e != nil {
			return ans, e.(*problem)
		}
		if err = json.Unmarshal(w.body.Bytes(), &ans); err == nil {
			return ans, nil
		}
	}
	c.cfg.Logger.Error("console: command", "path", path, "err", err)
	return ans, &problem{Status: http.StatusInternalServerError, Detail: catalog.T(s.Lang, msg("common.internal"))}
}

// doneAt ends a change that worked: to page (which may carry a query) with
// the success message okKey, reading at the version the change wrote
// (?minVersion, which minVersion and pageQuery pass to the API).
func doneAt(w http.ResponseWriter, r *http.Request, page, okKey string, version uint64) {
	q := url.Values{"ok": {okKey}}
	if version > 0 {
		q.Set("minVersion", strconv.FormatUint(version, 10))
	}
	sep := "?"
	if strings.Contains(page, "?") {
		sep = "&"
	}
	http.Redirect(w, r, page+sep+q.Encode(), http.StatusSeeOther)
}

// formSet is the set of a form's values of name.
func formSet(r *http.Request, name string) map[string]bool {
	out := map[string]bool{}
	for _, v := range r.PostForm[name] {
		if v = strings.TrimSpace(v); v != "" {
			out[v] = true
		}
	}
	return out
}

// licenseRequests are the products ticked in a form, all plans on.
func licenseRequests(skus []string) []map[string]any {
	out := []map[string]any{}
	for _, sku := range skus {
		if sku = strings.TrimSpace(sku); sku != "" {
			out = append(out, map[string]any{"skuId": sku, "disabledPlans": []string{}})
		}
	}
	return out
}

// listQuery is the list's query a form carried back (its "q" field).
func listQuery(r *http.Request) url.Values {
	q, err := url.ParseQuery(r.PostFormValue("q"))
	if err != nil {
		return url.Values{}
	}
	return q
}

// manageLicenses is "Manage product licenses" for the users ticked on the
// list: POST /users/manageLicenses. The API refuses more than its bulk
// limit; the console sends what was ticked.
func (c *Console) manageLicenses(w http.ResponseWriter, r *http.Request, s *session) {
	tenant := r.PathValue("tenant")
	_ = r.ParseForm()
	users := r.PostForm["u"]
	mode := r.PostFormValue("mode")
	body := map[string]any{"users": users, "mode": mode}
	if users == nil {
		body["users"] = []string{}
	}
	if mode != "UnassignAll" {
		body["addLicenses"] = licenseRequests(r.PostForm["sku"])
	}
	ans, p := c.command(r.Context(), s, http.MethodPost, "/v1/tenants/"+url.PathEscape(tenant)+"/users/manageLicenses", body, r.PostFormValue("idem"))
	q := listQuery(r)
	if p == nil {
		page := usersBase(tenant)
		if len(q) > 0 {
			page += "?" + q.Encode()
		}
		doneAt(w, r, page, msg("ok.licensesManaged"), ans.Version)
		return
	}
	c.renderUsers(w, r, s, q, p.Status, p, &usersData{Selected: formSet(r, "u"), Mode: mode, Skus: formSet(r, "sku"), Manage: true})
}

// addUser is "Add a user": POST /users, with the products ticked.
func (c *Console) addUser(w http.ResponseWriter, r *http.Request, s *session) {
	tenant := r.PathValue("tenant")
	_ = r.ParseForm()
	form := map[string]string{}
	for _, k := range []string{"id", "userPrincipalName", "displayName", "usageLocation", "userType"} {
		form[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	body := map[string]any{"userPrincipalName": form["userPrincipalName"], "displayName": form["displayName"]}
	for _, k := range []string{"id", "usageLocation", "userType"} {
		if form[k] != "" {
			body[k] = form[k]
		}
	}
	if l := licenseRequests(r.PostForm["sku"]); len(l) > 0 {
		body["licenses"] = l
	}
	ans, p := c.command(r.Context(), s, http.MethodPost, "/v1/tenants/"+url.PathEscape(tenant)+"/users", body, r.PostFormValue("idem"))
	if p == nil {
		id := ans.ID
		if id == "" {
			id = form["id"]
		}
		doneAt(w, r, userBase(tenant, id), msg("ok.userAdded"), ans.Version)
		return
	}
	c.renderUsers(w, r, s, listQuery(r), p.Status, p, &usersData{Form: form, Skus: formSet(r, "sku"), Adding: true})
}

// userDetail is GET /v1/tenants/{t}/users/{u}.
type userDetail struct {
	ID                string        `json:"id"`
	UserPrincipalName string        `json:"userPrincipalName"`
	DisplayName       string        `json:"displayName"`
	UserType          string        `json:"userType"`
	UsageLocation     string        `json:"usageLocation"`
	Status            string        `json:"status"`
	DeletedAt         string        `json:"deletedAt"`
	RestorableUntil   string        `json:"restorableUntil"`
	Roles             []string      `json:"roles"`
	Groups            []string      `json:"groups"`
	Licenses          []userLicense `json:"licenses"`
	ServicePlans      []struct {
		SkuID           string `json:"skuId"`
		ServicePlanID   string `json:"servicePlanId"`
		ServicePlanName string `json:"servicePlanName"`
		Enabled         bool   `json:"enabled"`
	} `json:"servicePlans"`
}

// userPlan is a service plan of a license, as a checkbox.
type userPlan struct {
	ID, Name string
	Title    string // the plan's display name ("Microsoft Teams"), if known
	Enabled  bool
}

// planTitles are the display names of sku's service plans, by id, from
// GET /licenses/{sku} (its first holder only: the plans are what is
// read). A product the API no longer answers for keeps the plans' names.
func (c *Console) planTitles(ctx context.Context, s *session, tenant, sku string) map[string]string {
	var prod struct {
		ServicePlans []struct {
			ServicePlanID string `json:"servicePlanId"`
			DisplayName   string `json:"displayName"`
		} `json:"servicePlans"`
	}
	out := map[string]string{}
	if _, err := c.get(ctx, s, "/v1/tenants/"+url.PathEscape(tenant)+"/licenses/"+url.PathEscape(sku)+"?limit=1", &prod); err != nil {
		return out
	}
	for _, sp := range prod.ServicePlans {
		out[sp.ServicePlanID] = sp.DisplayName
	}
	return out
}

// panelLicense is a license of the panel with its plans.
type panelLicense struct {
	userLicense
	Plans   []userPlan
	PlanIDs string // every plan's id, space separated: the form's "plans"
}

type userData struct {
	Loaded    bool
	User      userDetail
	Location  string // the usage location form's value (a refused one kept)
	Add       string // the product of a refused assignment, chosen again
	Licenses  []panelLicense
	Available []licenseRow // products the user does not hold, to assign
	Deleted   bool
	Names     map[string]string // product names by skuId
}

// userPanel is GET /console/t/{t}/users/{u}.
func (c *Console) userPanel(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderUser(w, r, s, http.StatusOK, nil)
}

func (c *Console) renderUser(w http.ResponseWriter, r *http.Request, s *session, status int, p *problem) {
	v := c.newView(r, s, msg("user.title"))
	d := &userData{}
	v.Data = d
	ctx := r.Context()
	path := "/v1/tenants/" + url.PathEscape(v.Tenant) + "/users/" + url.PathEscape(r.PathValue("user"))
	if mv := minVersion(r); mv != "" {
		path += "?minVersion=" + mv
	}
	if _, err := c.get(ctx, s, path, &d.User); err != nil {
		c.fail(w, r, "user", v, err)
		return
	}
	products, err := c.tenantProducts(ctx, s, v.Tenant)
	if err != nil {
		c.fail(w, r, "user", v, err)
		return
	}
	// A refused change keeps what the person chose: the apps of the
	// license they saved (savePlans), the location they typed.
	d.Location = d.User.UsageLocation
	var keptSku string
	var keptOn map[string]bool
	if r.Method == http.MethodPost && p != nil {
		if _, typed := r.PostForm["usageLocation"]; typed {
			d.Location = strings.TrimSpace(r.PostFormValue("usageLocation"))
		}
		d.Add = strings.TrimSpace(r.PostFormValue("add"))
		if _, saved := r.PostForm["plans"]; saved {
			keptSku, keptOn = r.PathValue("sku"), formSet(r, "on")
		}
	}
	held := map[string]bool{}
	for _, l := range d.User.Licenses {
		pl := panelLicense{userLicense: l}
		titles := c.planTitles(ctx, s, v.Tenant, l.SkuID)
		var ids []string
		for _, sp := range d.User.ServicePlans {
			if sp.SkuID == l.SkuID {
				enabled := sp.Enabled
				if keptOn != nil && l.SkuID == keptSku {
					enabled = keptOn[sp.ServicePlanID]
				}
				pl.Plans = append(pl.Plans, userPlan{ID: sp.ServicePlanID, Name: sp.ServicePlanName, Title: titles[sp.ServicePlanID], Enabled: enabled})
				ids = append(ids, sp.ServicePlanID)
			}
		}
		pl.PlanIDs = strings.Join(ids, " ")
		d.Licenses = append(d.Licenses, pl)
		held[l.SkuID] = true
	}
	for _, pr := range products {
		if !held[pr.SkuID] {
			d.Available = append(d.Available, pr)
		}
	}
	d.Names = productNames(products)
	d.Deleted = strings.EqualFold(d.User.Status, "deleted")
	d.Loaded = true
	v.Problem = p
	c.render(w, status, "user", v)
}

// userAPI is the API path of the panel's user.
func userAPI(r *http.Request) string {
	return "/v1/tenants/" + url.PathEscape(r.PathValue("tenant")) + "/users/" + url.PathEscape(r.PathValue("user"))
}

// userChanged ends a change of the panel: back to it with okKey, or the
// panel again with the refusal.
func (c *Console) userChanged(w http.ResponseWriter, r *http.Request, s *session, ans commandAnswer, p *problem, okKey string) {
	if p == nil {
		doneAt(w, r, userBase(r.PathValue("tenant"), r.PathValue("user")), okKey, ans.Version)
		return
	}
	c.renderUser(w, r, s, p.Status, p)
}

// savePlans saves a license's service plans: the plans not ticked are
// disabled (PATCH /users/{u}/licenses/{sku}).
func (c *Console) savePlans(w http.ResponseWriter, r *http.Request, s *session) {
	_ = r.ParseForm()
	on := formSet(r, "on")
	disabled := []string{}
	for _, id := range strings.Fields(r.PostFormValue("plans")) {
		if !on[id] {
			disabled = append(disabled, id)
		}
	}
	ans, p := c.command(r.Context(), s, http.MethodPatch, userAPI(r)+"/licenses/"+url.PathEscape(r.PathValue("sku")),
		map[string]any{"disabledPlans": disabled}, r.PostFormValue("idem"))
	c.userChanged(w, r, s, ans, p, msg("ok.plansSaved"))
}

// userLicenses assigns (add) or removes (remove) one product for the user
// (POST /users/{u}/assignLicense).
func (c *Console) userLicenses(w http.ResponseWriter, r *http.Request, s *session) {
	add := licenseRequests([]string{r.PostFormValue("add")})
	remove := []string{}
	if rm := strings.TrimSpace(r.PostFormValue("remove")); rm != "" {
		remove = append(remove, rm)
	}
	ans, p := c.command(r.Context(), s, http.MethodPost, userAPI(r)+"/assignLicense",
		map[string]any{"addLicenses": add, "removeLicenses": remove}, r.PostFormValue("idem"))
	ok := msg("ok.licenseAssigned")
	if len(remove) > 0 {
		ok = msg("ok.licenseRemoved")
	}
	c.userChanged(w, r, s, ans, p, ok)
}

// deleteUser deletes the user once "I understand" is ticked (the
// confirmation works without JavaScript; the API decides the rest).
func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, s *session) {
	if r.PostFormValue("confirm") != "yes" {
		c.renderUser(w, r, s, http.StatusUnprocessableEntity, &problem{Status: http.StatusUnprocessableEntity,
			Detail: catalog.T(language(r), msg("user.confirmNeeded"))})
		return
	}
	ans, p := c.command(r.Context(), s, http.MethodDelete, userAPI(r), nil, r.PostFormValue("idem"))
	if p == nil {
		doneAt(w, r, usersBase(r.PathValue("tenant")), msg("ok.userDeleted"), ans.Version)
		return
	}
	c.renderUser(w, r, s, p.Status, p)
}

// setLocation sets the user's usage location (PATCH /users/{u}), which
// assigning them a license needs (R14).
func (c *Console) setLocation(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]any{"usageLocation": strings.TrimSpace(r.PostFormValue("usageLocation"))}
	ans, p := c.command(r.Context(), s, http.MethodPatch, userAPI(r), body, r.PostFormValue("idem"))
	c.userChanged(w, r, s, ans, p, msg("ok.locationSet"))
}

// restoreUser restores a deleted user (POST /users/{u}/restore).
func (c *Console) restoreUser(w http.ResponseWriter, r *http.Request, s *session) {
	ans, p := c.command(r.Context(), s, http.MethodPost, userAPI(r)+"/restore", nil, r.PostFormValue("idem"))
	c.userChanged(w, r, s, ans, p, msg("ok.userRestored"))
}
