package console

import (
	"net/http"
	"net/url"
	"time"
)

// heldRow is a row of GET /v1/tenants/{t}/heldData: a user's mailbox or
// OneDrive data kept after a license was removed (R10).
type heldRow struct {
	UserID     string    `json:"userId"`
	Workload   string    `json:"workload"`
	HeldSince  time.Time `json:"heldSince"`
	PurgeAfter time.Time `json:"purgeAfter"`
	Retained   bool      `json:"retained"`
	Reason     string    `json:"reason"`
}

// heldReasons are the words of why data is held (domain.DataHeld.Reason).
var heldReasons = map[string]string{
	"licenseRemoved":       msg("heldData.reason.licenseRemoved"),
	"userDeleted":          msg("heldData.reason.userDeleted"),
	"retentionHoldRemoved": msg("heldData.reason.retentionHoldRemoved"),
}

// ReasonKey is the catalog key of the row's reason ("" when none is known).
func (h heldRow) ReasonKey() string { return heldReasons[h.Reason] }

// WorkloadKey is the catalog key of the row's workload.
func (h heldRow) WorkloadKey() string {
	if h.Workload == "OneDrive" {
		return msg("heldData.onedrive")
	}
	return msg("heldData.exchange")
}

type heldData struct {
	Rows   []heldRow
	Next   string
	Loaded bool // the rows were read (else the page shows only its problem)
}

// heldDataPage is the held data page: whose data is held, since when,
// when it is purged, and which a retention hold keeps.
func (c *Console) heldDataPage(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("heldData.title"))
	d := &heldData{}
	v.Data = d
	h, err := c.get(r.Context(), s, "/v1/tenants/"+url.PathEscape(v.Tenant)+"/heldData?limit=100"+pageQuery(r), &d.Rows)
	if err != nil {
		c.fail(w, r, "heldData", v, err)
		return
	}
	d.Next, d.Loaded = h.Get("X-Next-Cursor"), true
	c.render(w, http.StatusOK, "heldData", v)
}

// when is a time as the console shows it: UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// Since and Purge are the row's times as shown.
func (h heldRow) Since() string { return when(h.HeldSince) }
func (h heldRow) Purge() string { return when(h.PurgeAfter) }
