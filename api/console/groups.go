package console

import (
	"net/http"
	"net/url"
	"strings"
)

// groupLicense is a product a group gives its members.
type groupLicense struct {
	SkuID         string   `json:"skuId"`
	SkuPartNumber string   `json:"skuPartNumber"`
	DisabledPlans []string `json:"disabledPlans"`
}

// groupRow is a row of GET /v1/tenants/{t}/groups.
type groupRow struct {
	ID          string         `json:"id"`
	DisplayName string         `json:"displayName"`
	Licenses    []groupLicense `json:"licenses"`
	MemberCount int            `json:"memberCount"`
}

// memberError is a license the group could not give a member (R11): Error
// is the kind (shown in the catalog's words), Detail the API's English
// data.
type memberError struct {
	UserID        string `json:"userId"`
	SkuID         string `json:"skuId"`
	SkuPartNumber string `json:"skuPartNumber"`
	Error         string `json:"error"`
	Detail        string `json:"detail"`
}

// groupDetail is GET /v1/tenants/{t}/groups/{g}: a page of members.
type groupDetail struct {
	groupRow
	Members []struct {
		ID                string `json:"id"`
		UserPrincipalName string `json:"userPrincipalName"`
		DisplayName       string `json:"displayName"`
	} `json:"members"`
	NextCursor               string        `json:"nextCursor"`
	MembersWithLicenseErrors []memberError `json:"membersWithLicenseErrors"`
}

// groupErrorKinds are the words of each kind of member error (Graph's
// licenseAssignmentStates.error, domain.GroupErr*).
var groupErrorKinds = map[string]string{
	"CountViolation":             msg("groups.err.CountViolation"),
	"MutuallyExclusiveViolation": msg("groups.err.MutuallyExclusiveViolation"),
	"DependencyViolation":        msg("groups.err.DependencyViolation"),
	"UsageLocation":              msg("groups.err.UsageLocation"),
}

// ErrorKind is the catalog key of a member error's kind.
func (e memberError) ErrorKind() string {
	if k, ok := groupErrorKinds[e.Error]; ok {
		return k
	}
	return msg("groups.err.other")
}

type groupsData struct {
	Groups []groupRow
	Next   string
	Form   map[string]string // the create form's values, kept when refused
	Loaded bool              // the list was read: the page offers its form
}

// groups is the admin center's Groups page: a page of groups with their
// licenses and member counts, and the form to create one.
func (c *Console) groups(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderGroups(w, r, s, http.StatusOK, nil, nil)
}

func (c *Console) renderGroups(w http.ResponseWriter, r *http.Request, s *session, status int, p *problem, form map[string]string) {
	v := c.newView(r, s, msg("groups.title"))
	d := &groupsData{Form: form}
	v.Data = d
	path := "/v1/tenants/" + url.PathEscape(v.Tenant) + "/groups?limit=100" + pageQuery(r)
	h, err := c.get(r.Context(), s, path, &d.Groups)
	if err != nil {
		c.fail(w, r, "groups", v, err)
		return
	}
	d.Next, d.Loaded = h.Get("X-Next-Cursor"), true
	v.Problem = p
	c.render(w, status, "groups", v)
}

// pageQuery carries a page's cursor and minVersion (set after a change, so
// the page shows it) to the API.
func pageQuery(r *http.Request) string {
	q := ""
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q += "&cursor=" + queryEscape(cur)
	}
	if mv := minVersion(r); mv != "" {
		q += "&minVersion=" + mv
	}
	return q
}

type groupData struct {
	Group    groupDetail
	Products []licenseRow // the tenant's products, to give one to the group
	Form     map[string]string
}

// Unused are the tenant's products the group does not give yet.
func (d *groupData) Unused() []licenseRow {
	var out []licenseRow
	for _, p := range d.Products {
		given := false
		for _, l := range d.Group.Licenses {
			given = given || l.SkuID == p.SkuID
		}
		if !given {
			out = append(out, p)
		}
	}
	return out
}

// Product is the name of the tenant's product sku ("" when unknown).
func (d *groupData) Product(sku string) string {
	for _, p := range d.Products {
		if p.SkuID == sku {
			return p.ProductName
		}
	}
	return ""
}

// group is a group's page: its licenses, a page of its members, the
// members it could not license, and its actions.
func (c *Console) group(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderGroup(w, r, s, http.StatusOK, nil, nil)
}

func (c *Console) renderGroup(w http.ResponseWriter, r *http.Request, s *session, status int, p *problem, form map[string]string) {
	v := c.newView(r, s, msg("group.title"))
	d := &groupData{Form: form}
	v.Data = d
	base := "/v1/tenants/" + url.PathEscape(v.Tenant)
	_, err := c.get(r.Context(), s, base+"/groups/"+url.PathEscape(r.PathValue("group"))+"?limit=100"+pageQuery(r), &d.Group)
	if err == nil {
		_, err = c.get(r.Context(), s, base+"/licenses?limit=100", &d.Products)
	}
	if err != nil {
		c.fail(w, r, "group", v, err)
		return
	}
	v.Problem = p
	c.render(w, status, "group", v)
}

func groupsPath(r *http.Request) string {
	return "/console/t/" + url.PathEscape(r.PathValue("tenant")) + "/groups"
}

func groupPath(r *http.Request) string {
	return groupsPath(r) + "/" + url.PathEscape(r.PathValue("group"))
}

func apiGroup(r *http.Request) string {
	return "/v1/tenants/" + url.PathEscape(r.PathValue("tenant")) + "/groups/" + url.PathEscape(r.PathValue("group"))
}

// createGroup is the create form: POST /v1/tenants/{t}/groups.
func (c *Console) createGroup(w http.ResponseWriter, r *http.Request, s *session) {
	form := map[string]string{"id": strings.TrimSpace(r.PostFormValue("id")), "displayName": strings.TrimSpace(r.PostFormValue("displayName"))}
	body := map[string]any{"displayName": form["displayName"]}
	if form["id"] != "" {
		body["id"] = form["id"]
	}
	ans, p := c.command(r.Context(), s, http.MethodPost, "/v1/tenants/"+url.PathEscape(r.PathValue("tenant"))+"/groups", body, r.PostFormValue("idem"))
	if p == nil {
		doneAt(w, r, groupsPath(r), msg("ok.groupCreated"), ans.Version)
		return
	}
	c.renderGroups(w, r, s, p.Status, p, form)
}

// groupChange runs one change of a group's page and shows the page again:
// with the success message, or with the problem and the form's values.
func (c *Console) groupChange(w http.ResponseWriter, r *http.Request, s *session, method, path string, body any, okKey string, form map[string]string) {
	ans, p := c.command(r.Context(), s, method, path, body, r.PostFormValue("idem"))
	if p == nil {
		doneAt(w, r, groupPath(r), okKey, ans.Version)
		return
	}
	c.renderGroup(w, r, s, p.Status, p, form)
}

// addGroupMember: PUT /v1/tenants/{t}/groups/{g}/members/{u}.
func (c *Console) addGroupMember(w http.ResponseWriter, r *http.Request, s *session) {
	u := strings.TrimSpace(r.PostFormValue("user"))
	c.groupChange(w, r, s, http.MethodPut, apiGroup(r)+"/members/"+url.PathEscape(u), nil, msg("ok.memberAdded"), map[string]string{"user": u})
}

// removeGroupMember: DELETE /v1/tenants/{t}/groups/{g}/members/{u}.
func (c *Console) removeGroupMember(w http.ResponseWriter, r *http.Request, s *session) {
	c.groupChange(w, r, s, http.MethodDelete, apiGroup(r)+"/members/"+url.PathEscape(r.PathValue("user")), nil, msg("ok.memberRemoved"), nil)
}

// assignGroupLicense: the group gives a product (assignLicense
// addLicenses).
func (c *Console) assignGroupLicense(w http.ResponseWriter, r *http.Request, s *session) {
	sku := r.PostFormValue("sku")
	body := map[string]any{"addLicenses": []any{map[string]any{"skuId": sku, "disabledPlans": []string{}}}, "removeLicenses": []string{}}
	c.groupChange(w, r, s, http.MethodPost, apiGroup(r)+"/assignLicense", body, msg("ok.groupLicenseAssigned"), map[string]string{"sku": sku})
}

// removeGroupLicense: the group stops giving a product (assignLicense
// removeLicenses; the members lose what they inherited).
func (c *Console) removeGroupLicense(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]any{"addLicenses": []any{}, "removeLicenses": []string{r.PathValue("sku")}}
	c.groupChange(w, r, s, http.MethodPost, apiGroup(r)+"/assignLicense", body, msg("ok.groupLicenseRemoved"), nil)
}

// deleteGroup: DELETE /v1/tenants/{t}/groups/{g}; refused while the group
// gives licenses (group_has_licenses), which the group's page shows.
func (c *Console) deleteGroup(w http.ResponseWriter, r *http.Request, s *session) {
	ans, p := c.command(r.Context(), s, http.MethodDelete, apiGroup(r), nil, r.PostFormValue("idem"))
	if p == nil {
		doneAt(w, r, groupsPath(r), msg("ok.groupDeleted"), ans.Version)
		return
	}
	c.renderGroup(w, r, s, p.Status, p, nil)
}
