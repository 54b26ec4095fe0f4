package console

import (
	"net/http"
	"net/url"
)

// licenseRow is a row of GET /v1/tenants/{t}/licenses: one product, summed
// over its subscriptions.
type licenseRow struct {
	SkuID         string `json:"skuId"`
	SkuPartNumber string `json:"skuPartNumber"`
	ProductName   string `json:"productName"`
	Total         int    `json:"total"`
	Assigned      int    `json:"assigned"`
	Available     int    `json:"available"`
}

type licensesData struct {
	Rows   []licenseRow
	Next   string // the next page's cursor
	Loaded bool   // the rows were read (else the page shows only its problem)
}

// licenses is the admin center's Licenses page: one row per product.
func (c *Console) licenses(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("licenses.title"))
	d := &licensesData{}
	v.Data = d
	path := "/v1/tenants/" + url.PathEscape(v.Tenant) + "/licenses?limit=100"
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		path += "&cursor=" + queryEscape(cur)
	}
	h, err := c.get(r.Context(), s, path, &d.Rows)
	if err != nil {
		c.fail(w, r, "licenses", v, err)
		return
	}
	d.Next, d.Loaded = h.Get("X-Next-Cursor"), true
	c.render(w, http.StatusOK, "licenses", v)
}

func queryEscape(s string) string { return url.QueryEscape(s) }
