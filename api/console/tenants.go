package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
	// Created is the tenant just created, offered for a one-click sign-in
	// as its Global admin while serve runs on dev secrets (nil otherwise).
	Created *createdTenant
}

// createdTenant is a tenant the create form made, as the API answered it.
type createdTenant struct{ ID, Admin, AdminUPN string }

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
	q := r.URL.Query()
	if created, mv := q.Get("created"), minVersion(r); created != "" && mv != "" {
		// The list spans tenants (no ?minVersion): wait for the tenant
		// just created to be in the read models, so that it shows.
		_, _ = c.get(r.Context(), s, "/v1/tenants/"+url.PathEscape(created)+"?minVersion="+mv, nil)
	}
	h, err := c.get(r.Context(), s, path, &d.Tenants)
	if err != nil {
		c.fail(w, r, "tenants", v, err)
		return
	}
	d.Next = h.Get("X-Next-Cursor")
	if c.cfg.DevSignIn != nil && q.Get("created") != "" && q.Get("admin") != "" {
		d.Created = &createdTenant{ID: q.Get("created"), Admin: q.Get("admin"), AdminUPN: q.Get("upn")}
	}
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
	rec, err := c.call(r.Context(), s, http.MethodPost, "/v1/tenants", body, r.PostFormValue("idem"))
	var p *problem
	if err == nil {
		if e := answerError(rec); e != nil {
			p = e.(*problem)
		} else {
			http.Redirect(w, r, "/console/tenants?"+createdQuery(rec.body.Bytes()).Encode(), http.StatusSeeOther)
			return
		}
	}
	if p == nil {
		c.cfg.Logger.Error("console: create tenant", "err", err)
		p = &problem{Status: http.StatusInternalServerError, Detail: err.Error()}
	}
	c.renderTenants(w, r, s, p.Status, p, form)
}

// createdQuery is the success message and, from the API's answer to POST
// /v1/tenants (the tenant's id, version and events), the tenant with the
// version it was written at (the list waits for it) and its Global admin
// (the user it added), for the page's "Sign in as its Global admin".
func createdQuery(answer []byte) url.Values {
	q := url.Values{"ok": {msg("ok.tenantCreated")}}
	var ans struct {
		ID      string `json:"id"`
		Version uint64 `json:"version"`
		Events  []struct {
			Type string `json:"type"`
			Data struct {
				UserID            string `json:"userId"`
				UserPrincipalName string `json:"userPrincipalName"`
			} `json:"data"`
		} `json:"events"`
	}
	if json.Unmarshal(answer, &ans) != nil || ans.ID == "" {
		return q
	}
	q.Set("created", ans.ID)
	q.Set("minVersion", strconv.FormatUint(ans.Version, 10))
	for _, e := range ans.Events {
		if e.Type == "UserAdded" && e.Data.UserID != "" {
			q.Set("admin", e.Data.UserID)
			q.Set("upn", e.Data.UserPrincipalName)
			break
		}
	}
	return q
}
