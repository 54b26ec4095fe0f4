package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// auditRecord is a row of GET /v1/tenants/{t}/audit.
type auditRecord struct {
	Version    uint64    `json:"version"`
	OccurredAt time.Time `json:"occurredAt"`
	Type       string    `json:"type"`
	Actor      struct {
		UserID   string `json:"userId"`
		Operator bool   `json:"operator"`
		System   string `json:"system"`
	} `json:"actor"`
	Summary       string `json:"summary"`
	CorrelationID string `json:"correlationId"`
}

// ActorFilter is the record's actor as the API's actor filter names it
// (domain.Actor.String).
func (a auditRecord) ActorFilter() string {
	switch {
	case a.Actor.Operator:
		return "operator"
	case a.Actor.System != "":
		return "system:" + a.Actor.System
	case a.Actor.UserID == "operator" || strings.Contains(a.Actor.UserID, ":"):
		return "user:" + a.Actor.UserID
	}
	return a.Actor.UserID
}

// When is the record's time as shown.
func (a auditRecord) When() string { return when(a.OccurredAt) }

// TypeKey is the catalog key of the record's type ("" for a type the
// console does not know: the type itself is shown).
func (a auditRecord) TypeKey() string { return eventTypes[a.Type] }

// eventTypes are the words of each event type, for the rows and the type
// filter.
var eventTypes = map[string]string{
	"TenantCreated":                   msg("audit.type.TenantCreated"),
	"UserAdded":                       msg("audit.type.UserAdded"),
	"UserUpdated":                     msg("audit.type.UserUpdated"),
	"UserDeleted":                     msg("audit.type.UserDeleted"),
	"UserRestored":                    msg("audit.type.UserRestored"),
	"AdminRolesChanged":               msg("audit.type.AdminRolesChanged"),
	"GroupCreated":                    msg("audit.type.GroupCreated"),
	"GroupRenamed":                    msg("audit.type.GroupRenamed"),
	"GroupDeleted":                    msg("audit.type.GroupDeleted"),
	"GroupMemberAdded":                msg("audit.type.GroupMemberAdded"),
	"GroupMemberRemoved":              msg("audit.type.GroupMemberRemoved"),
	"ProductRegistered":               msg("audit.type.ProductRegistered"),
	"SubscriptionPurchased":           msg("audit.type.SubscriptionPurchased"),
	"SubscriptionQuantityChanged":     msg("audit.type.SubscriptionQuantityChanged"),
	"SubscriptionTakenOver":           msg("audit.type.SubscriptionTakenOver"),
	"SubscriptionStatusChanged":       msg("audit.type.SubscriptionStatusChanged"),
	"SubscriptionRecurringBillingSet": msg("audit.type.SubscriptionRecurringBillingSet"),
	"SubscriptionCancelled":           msg("audit.type.SubscriptionCancelled"),
	"SubscriptionRenewed":             msg("audit.type.SubscriptionRenewed"),
	"SubscriptionExpired":             msg("audit.type.SubscriptionExpired"),
	"SubscriptionDisabled":            msg("audit.type.SubscriptionDisabled"),
	"LicenseAssigned":                 msg("audit.type.LicenseAssigned"),
	"LicenseUnassigned":               msg("audit.type.LicenseUnassigned"),
	"LicensePlansChanged":             msg("audit.type.LicensePlansChanged"),
	"GroupLicenseAssigned":            msg("audit.type.GroupLicenseAssigned"),
	"GroupLicenseUnassigned":          msg("audit.type.GroupLicenseUnassigned"),
	"GroupLicenseErrored":             msg("audit.type.GroupLicenseErrored"),
	"DataHeld":                        msg("audit.type.DataHeld"),
	"DataHoldReleased":                msg("audit.type.DataHoldReleased"),
	"HeldDataPurged":                  msg("audit.type.HeldDataPurged"),
	"RetentionHoldSet":                msg("audit.type.RetentionHoldSet"),
	"AppInstalled":                    msg("audit.type.AppInstalled"),
	"NothingChanged":                  msg("audit.type.NothingChanged"),
}

// auditFilters are the query parameters of the audit page the API's
// audit takes as they are.
var auditFilters = []string{"actor", "user", "sku", "type"}

type auditType struct {
	Type, Key string
	Selected  bool
}

type auditData struct {
	Records []auditRecord
	Filter  map[string]string // the form's values
	Types   []auditType
	Order   string // desc (newest first, the default) or asc
	// Next and Prev are the pages' links ("" on the last, first page).
	Next, Prev string
	Loaded     bool // the records were read (else only the filters show)
}

// audit is the audit log: the filters as a GET form, a page of records
// (newest first unless the form says otherwise), next and previous pages.
// The API's cursors carry their direction; a page reached with "previous"
// is read the other way and shown in the page's order.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("audit.title"))
	q := r.URL.Query()
	d := &auditData{Filter: map[string]string{}, Order: "desc"}
	if q.Get("order") == "asc" {
		d.Order = "asc"
	}
	v.Data = d
	api := url.Values{}
	for _, k := range auditFilters {
		if x := strings.TrimSpace(q.Get(k)); x != "" {
			d.Filter[k] = x
			api.Set(k, x)
		}
	}
	for _, k := range []string{"since", "until"} {
		if x := strings.TrimSpace(q.Get(k)); x != "" {
			d.Filter[k] = x
			api.Set(k, rfc3339(x))
		}
	}
	for t, key := range eventTypes {
		d.Types = append(d.Types, auditType{Type: t, Key: key, Selected: t == d.Filter["type"]})
	}
	slices.SortFunc(d.Types, func(a, b auditType) int { return strings.Compare(a.Type, b.Type) })
	back := q.Get("back") == "1"
	api.Set("order", d.Order)
	api.Set("limit", "50")
	if cur := q.Get("cursor"); cur != "" {
		api.Set("cursor", cur)
	}
	h, err := c.get(r.Context(), s, "/v1/tenants/"+url.PathEscape(v.Tenant)+"/audit?"+api.Encode(), &d.Records)
	if err != nil {
		c.fail(w, r, "audit", v, err)
		return
	}
	next, prev := h.Get("X-Next-Cursor"), h.Get("X-Prev-Cursor")
	if back { // read the other way: shown in the page's order
		slices.Reverse(d.Records)
		next, prev = prev, next
	}
	link := func(cur string, back bool) string {
		if cur == "" {
			return ""
		}
		l := url.Values{}
		for k, x := range d.Filter {
			l.Set(k, x)
		}
		if d.Order == "asc" {
			l.Set("order", "asc")
		}
		l.Set("cursor", cur)
		if back {
			l.Set("back", "1")
		}
		return "?" + l.Encode()
	}
	d.Next, d.Prev, d.Loaded = link(next, false), link(prev, true), true
	c.render(w, http.StatusOK, "audit", v)
}

// rfc3339 turns a datetime-local value (2026-03-01T14:03, UTC as the form
// says) into the API's RFC 3339; any other text goes as it is, for the
// API to accept or refuse.
func rfc3339(x string) string {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, x); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return x
}
