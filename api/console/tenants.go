package console

import (
	"net/http"
	"strings"
)

// tenantRow is a row of GET /v1/tenants.
type tenantRow struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Users         int64  `json:"users"`
	Groups        int64  `json:"groups"`
	Subscriptions int64  `json:"subscriptions"`
}

type tenantsData struct {
	Tenants []tenantRow
	Next    string            // the next page's cursor
	Form    map[string]string // the create form's values, kept when refused
}

// tenants is the operator's list of tenants, with the form to create one.
func (c *Console) tenants(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderTenants(w, r, s, http.StatusOK, nil, nil)
}

func (c *Console) renderTenants(w http.ResponseWriter, r *http.Request, s *session, status int, p *problem, form map[string]string) {
	v := c.newView(r, s, msg("tenants.title"))
	d := &tenantsData{Form: form}
	v.Data = d
	path := "/v1/tenants?limit=50"
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		path += "&cursor=" + queryEscape(cur)
	}
	h, err := c.get(r.Context(), s, path, &d.Tenants)
	if err != nil {
		c.fail(w, r, "tenants", v, err)
		return
	}
	d.Next = h.Get("X-Next-Cursor")
	v.Problem = p
	c.render(w, status, "tenants", v)
}

// createTenant is the create form: POST /v1/tenants with the form's
// Idempotency-Key.
func (c *Console) createTenant(w http.ResponseWriter, r *http.Request, s *session) {
	form := map[string]string{}
	for _, k := range []string{"id", "name", "adminId", "adminUpn", "adminName", "usageLocation"} {
		form[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	body := map[string]any{"id": form["id"], "name": form["name"], "globalAdmin": map[string]any{
		"id": form["adminId"], "userPrincipalName": form["adminUpn"], "displayName": form["adminName"], "usageLocation": form["usageLocation"],
	}}
	p, err := c.send(r.Context(), s, http.MethodPost, "/v1/tenants", body, r.PostFormValue("idem"))
	if err == nil && p == nil {
		done(w, r, "/console/tenants", msg("ok.tenantCreated"))
		return
	}
	if p == nil {
		c.cfg.Logger.Error("console: create tenant", "err", err)
		p = &problem{Status: http.StatusInternalServerError, Detail: err.Error()}
	}
	c.renderTenants(w, r, s, p.Status, p, form)
}
