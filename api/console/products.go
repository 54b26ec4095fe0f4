package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// subscriptionRow is a row of GET /v1/tenants/{t}/subscriptions.
type subscriptionRow struct {
	ID            string    `json:"id"`
	SkuID         string    `json:"skuId"`
	SkuPartNumber string    `json:"skuPartNumber"`
	ProductName   string    `json:"productName"`
	Quantity      int       `json:"quantity"`
	Kind          string    `json:"kind"`
	Channel       string    `json:"channel"`
	Status        string    `json:"status"`
	PurchasedBy   string    `json:"purchasedBy"`
	TakenOver     bool      `json:"takenOver"`
	Term          string    `json:"term"`
	TermStart     time.Time `json:"termStart"`
	TermEnd       time.Time `json:"termEnd"`
	TrialEnd      time.Time `json:"trialEnd"`
}

// catalogProduct is a product of GET /v1/catalog (the buy form's list).
type catalogProduct struct {
	SkuID         string `json:"skuId"`
	SkuPartNumber string `json:"skuPartNumber"`
	DisplayName   string `json:"displayName"`
}

// productRow is a subscription as the page shows it: the API's row and
// its words.
type productRow struct {
	subscriptionRow
	KindText, ChannelText, StatusText string
	App                               bool // an ISV app (not in the catalog): installable
	SelfService                       bool // a user's own purchase, not taken over yet
	Start, End                        string
}

type productsData struct {
	Rows       []productRow
	Next       string
	Catalog    []catalogProduct
	Form       map[string]string // the buy form's values, kept when refused
	InstallURL string            // where an app just installed goes on
	Quantity   map[string]string // a refused new quantity, by subscription
	Loaded     bool              // the subscriptions were read: draw them and the forms
}

// QuantityOf is the value of row's quantity field: the quantity typed, if
// its change was refused, else the subscription's.
func (d *productsData) QuantityOf(row productRow) string {
	if q, ok := d.Quantity[row.ID]; ok {
		return q
	}
	return strconv.Itoa(row.Quantity)
}

// Words for the API's values; another value shows as the API gives it.
var (
	kindWords    = map[string]string{"Paid": msg("products.kind.paid"), "Trial": msg("products.kind.trial"), "SelfService": msg("products.kind.selfService")}
	channelWords = map[string]string{"Direct": msg("products.channel.direct"), "Marketplace": msg("products.channel.marketplace"), "Vendor": msg("products.channel.vendor")}
	statusWords  = map[string]string{"Enabled": msg("products.status.enabled"), "Warning": msg("products.status.warning"), "Suspended": msg("products.status.suspended"),
		"Expired": msg("products.status.expired"), "Disabled": msg("products.status.disabled"), "Deleted": msg("products.status.deleted")}
)

func word(v *view, words map[string]string, value string) string {
	if k, ok := words[value]; ok {
		return v.T(k)
	}
	return value
}

// products is "Your products": one row per subscription, each with its
// changes (quantity, cancel, take over, install), and the buy form.
func (c *Console) products(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderProducts(w, r, s, http.StatusOK, nil, nil, "", "")
}

func (c *Console) renderProducts(w http.ResponseWriter, r *http.Request, s *session, status int, p *problem, form map[string]string, okKey, installURL string) {
	v := c.newView(r, s, msg("products.title"))
	d := &productsData{Form: form, InstallURL: installURL}
	if d.Form == nil {
		d.Form = map[string]string{"quantity": "1", "kind": "Paid"}
	}
	v.Data = d
	if sub := r.PathValue("sub"); p != nil && sub != "" && r.Method == http.MethodPost && r.PostForm.Has("quantity") {
		d.Quantity = map[string]string{sub: strings.TrimSpace(r.PostFormValue("quantity"))}
	}
	path := "/v1/tenants/" + url.PathEscape(v.Tenant) + "/subscriptions?limit=100"
	if mv := minVersion(r); mv != "" {
		path += "&minVersion=" + mv // the change just made shows
	}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		path += "&cursor=" + queryEscape(cur)
	}
	var rows []subscriptionRow
	h, err := c.get(r.Context(), s, path, &rows)
	if err != nil {
		c.fail(w, r, "products", v, err)
		return
	}
	d.Next = h.Get("X-Next-Cursor")
	if _, err := c.get(r.Context(), s, "/v1/catalog", &d.Catalog); err != nil {
		c.fail(w, r, "products", v, err)
		return
	}
	inCatalog := map[string]bool{}
	for _, cp := range d.Catalog {
		inCatalog[cp.SkuID] = true
	}
	for _, row := range rows {
		pr := productRow{subscriptionRow: row, KindText: word(v, kindWords, row.Kind), ChannelText: word(v, channelWords, row.Channel),
			StatusText: word(v, statusWords, row.Status), App: !inCatalog[row.SkuID], SelfService: row.Kind == "SelfService" && !row.TakenOver,
			Start: day(row.TermStart), End: day(row.TermEnd)}
		if row.Kind == "Trial" && !row.TrialEnd.IsZero() {
			pr.End = day(row.TrialEnd)
		}
		d.Rows = append(d.Rows, pr)
	}
	d.Loaded = true
	if okKey != "" {
		v.OK = v.T(okKey)
	}
	v.Problem = p
	c.render(w, status, "products", v)
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

// subscriptionPath is the API path of the subscription of r's URL.
func subscriptionPath(r *http.Request) string {
	return "/v1/tenants/" + url.PathEscape(r.PathValue("tenant")) + "/subscriptions/" + url.PathEscape(r.PathValue("sub"))
}

// changeQuantity: PATCH /subscriptions/{s} {"quantity"}.
func (c *Console) changeQuantity(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]any{}
	setQuantity(body, strings.TrimSpace(r.PostFormValue("quantity")))
	c.changeProducts(w, r, s, http.MethodPatch, subscriptionPath(r), body, msg("ok.quantityChanged"), nil)
}

// cancelSubscription: POST /subscriptions/{s}/cancel.
func (c *Console) cancelSubscription(w http.ResponseWriter, r *http.Request, s *session) {
	c.changeProducts(w, r, s, http.MethodPost, subscriptionPath(r)+"/cancel", nil, msg("ok.subscriptionCancelled"), nil)
}

// takeOverSubscription: POST /subscriptions/{s}/takeOver.
func (c *Console) takeOverSubscription(w http.ResponseWriter, r *http.Request, s *session) {
	c.changeProducts(w, r, s, http.MethodPost, subscriptionPath(r)+"/takeOver", nil, msg("ok.subscriptionTakenOver"), nil)
}

// installApp: POST /apps/{sku}/install for the subscription's product. The
// answer's redirectUrl (the vendor's install page) is shown as a link.
func (c *Console) installApp(w http.ResponseWriter, r *http.Request, s *session) {
	var sub subscriptionRow
	if _, err := c.get(r.Context(), s, subscriptionPath(r), &sub); err != nil {
		c.refusedProducts(w, r, s, asProblem(err), nil)
		return
	}
	rec, err := c.call(r.Context(), s, http.MethodPost, "/v1/tenants/"+url.PathEscape(r.PathValue("tenant"))+"/apps/"+url.PathEscape(sub.SkuID)+"/install", nil, r.PostFormValue("idem"))
	if err != nil {
		c.cfg.Logger.Error("console: products change", "path", r.URL.Path, "err", err)
		c.refusedProducts(w, r, s, asProblem(err), nil)
		return
	}
	if perr := answerError(rec); perr != nil {
		c.refusedProducts(w, r, s, perr.(*problem), nil)
		return
	}
	var ans struct {
		RedirectURL string `json:"redirectUrl"`
	}
	_ = json.Unmarshal(rec.body.Bytes(), &ans)
	// Drawn at once (no redirect) to show the install link; the
	// Idempotency-Key still makes a second click a replay.
	if !strings.HasPrefix(ans.RedirectURL, "https://") && !strings.HasPrefix(ans.RedirectURL, "http://") {
		ans.RedirectURL = ""
	}
	c.renderProducts(w, r, s, http.StatusOK, nil, nil, msg("ok.appInstalled"), ans.RedirectURL)
}

// setQuantity puts a quantity field's text in body as the API reads it:
// a number as typed (the API then names the bound passed, or the
// fraction, in its refusal), nothing for an empty field (a missing
// quantity), else the text (not a number, as the API says).
func setQuantity(body map[string]any, typed string) {
	switch {
	case typed == "":
	case json.Valid([]byte(typed)) && (typed[0] == '-' || '0' <= typed[0] && typed[0] <= '9'):
		body["quantity"] = json.Number(typed)
	default:
		body["quantity"] = typed
	}
}

// buySubscription is the buy form: POST /subscriptions {"skuId","quantity","kind"}.
func (c *Console) buySubscription(w http.ResponseWriter, r *http.Request, s *session) {
	form := map[string]string{}
	for _, k := range []string{"skuId", "quantity", "kind"} {
		form[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	body := map[string]any{"skuId": form["skuId"]}
	setQuantity(body, form["quantity"])
	if form["kind"] != "" {
		body["kind"] = form["kind"]
	}
	c.changeProducts(w, r, s, http.MethodPost, "/v1/tenants/"+url.PathEscape(r.PathValue("tenant"))+"/subscriptions", body, msg("ok.subscriptionBought"), form)
}

// changeProducts runs a change of Your products with the form's
// Idempotency-Key: back to the page, which reads at the version the change
// wrote (so it shows it), with okKey; or the page again with the problem.
func (c *Console) changeProducts(w http.ResponseWriter, r *http.Request, s *session, method, path string, body any, okKey string, form map[string]string) {
	ans, p := c.command(r.Context(), s, method, path, body, r.PostFormValue("idem"))
	if p == nil {
		doneAt(w, r, "/console/t/"+url.PathEscape(r.PathValue("tenant"))+"/products", okKey, ans.Version)
		return
	}
	c.refusedProducts(w, r, s, p, form)
}

// refusedProducts shows Your products again with the problem of a refused
// change and the buy form's values (nil: none kept); a 401 goes to
// sign-in.
func (c *Console) refusedProducts(w http.ResponseWriter, r *http.Request, s *session, p *problem, form map[string]string) {
	if p.Status == http.StatusUnauthorized {
		c.fail(w, r, "products", c.newView(r, s, msg("products.title")), p)
		return
	}
	c.renderProducts(w, r, s, p.Status, p, form, "", "")
}

// asProblem is err as a problem to show (a console error: 500).
func asProblem(err error) *problem {
	if p, ok := err.(*problem); ok {
		return p
	}
	return &problem{Status: http.StatusInternalServerError, Detail: err.Error()}
}
