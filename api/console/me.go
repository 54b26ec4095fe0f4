package console

import (
	"net/http"
	"net/url"
)

// meData is GET /v1/tenants/{t}/me: the signed-in user's profile and
// licenses.
type meData struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	UsageLocation     string   `json:"usageLocation"`
	Roles             []string `json:"roles"`
	Groups            []string `json:"groups"`
	Licenses          []struct {
		SkuID         string   `json:"skuId"`
		SkuPartNumber string   `json:"skuPartNumber"`
		Sources       []string `json:"sources"`
		State         string   `json:"state"`
	} `json:"licenses"`
	ServicePlans []struct {
		SkuID           string `json:"skuId"`
		ServicePlanName string `json:"servicePlanName"`
		Enabled         bool   `json:"enabled"`
	} `json:"servicePlans"`
}

// me is "My account": what any user of the tenant may read about
// themselves. The operator is no user of a tenant: the API answers 404.
func (c *Console) me(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("me.title"))
	d := &meData{}
	v.Data = d
	if _, err := c.get(r.Context(), s, "/v1/tenants/"+url.PathEscape(v.Tenant)+"/me", d); err != nil {
		c.fail(w, r, "me", v, err)
		return
	}
	c.render(w, http.StatusOK, "me", v)
}
