// Package console is seatledger's web console: HTML pages served by
// `seatledger serve` at / and /console/, rendered on the server from the
// embedded templates, with plain forms (POST, then redirect, then GET), one
// small CSS file and no JavaScript library (the time-travel page adds one
// small hand-written script, assets/timetravel.js, for its cursor).
//
// The console is an in-process client of the HTTP API: every read and every
// change is a request to Config.API carrying the signed-in person's bearer
// token, their language (Accept-Language) and, for a change, the form's
// Idempotency-Key. So it can do nothing the person's roles do not allow,
// every change is a command like any other (audit log, idempotency), and no
// rule lives here. README.md says how to add a page.
package console

import (
	"crypto/rand"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/seatledger/seatledger/i18n"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed locales/*.json
var localeFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// catalog is the console's words, in every language (locales/).
var catalog = i18n.MustLoad(localeFiles, "locales")

// maxFormBytes bounds a form's body.
const maxFormBytes = 1 << 20

// Config configures the console. API is required.
type Config struct {
	// API is the HTTP API the console is a client of: api.Config.Console
	// receives the api.Server itself.
	API http.Handler
	// CSRFKey signs the forms' CSRF tokens (HMAC-SHA256 of the session
	// cookie). Empty: a random key per process (a restart asks forms
	// rendered before it to be submitted again).
	CSRFKey []byte
	// DevSignIn, set only while serve runs on generated development
	// secrets, mints a token: for user of tenant, or with an empty tenant
	// the operator token. It offers the one-click sign-in picker. nil: no
	// picker.
	DevSignIn func(tenant, user string) (string, error)
	// Logger receives what goes wrong inside the console (default
	// slog.Default()).
	Logger *slog.Logger
}

// Console is the console's http.Handler.
type Console struct {
	cfg     Config
	mux     *http.ServeMux
	pages   map[string]*page // by template name
	served  map[string]bool  // tenant pages served, by nav path (nav.go)
	actions []string         // tenant actions' paths (tenantAction), in order
	cross   *http.CrossOriginProtection
}

// New builds the console.
func New(cfg Config) *Console {
	if cfg.API == nil {
		panic("console: Config.API is required")
	}
	if len(cfg.CSRFKey) == 0 {
		cfg.CSRFKey = make([]byte, 32)
		_, _ = rand.Read(cfg.CSRFKey)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), pages: parsePages(), served: map[string]bool{},
		cross: http.NewCrossOriginProtection()}
	c.routes()
	return c
}

// routes is the console's route table. A tenant's page is registered with
// tenantPage (its nav item shows once it is served), its changes with
// tenantAction; see README.md.
func (c *Console) routes() {
	assets, _ := fs.Sub(assetFiles, "assets")
	c.mux.Handle("GET /console/assets/", http.StripPrefix("/console/assets/", cacheAssets(http.FileServerFS(assets))))
	c.mux.HandleFunc("GET /{$}", c.home)
	c.mux.HandleFunc("GET /console/{$}", c.home)
	c.mux.HandleFunc("GET /console/lang", c.setLang)
	c.mux.HandleFunc("GET /console/signin", c.signinPage)
	c.mux.HandleFunc("POST /console/signin", c.signin)
	c.mux.HandleFunc("POST /console/signin/dev", c.devSignin)
	c.mux.HandleFunc("POST /console/signout", c.signout)

	// The operator's pages.
	c.operatorPage("tenants", c.tenants)
	c.operatorAction("tenants", c.createTenant)

	// A tenant's pages (/console/t/{tenant}/<path>).
	c.tenantPage("licenses", c.licenses)
	c.tenantPage("licenses/{sku}", c.product)
	c.tenantAction("licenses/{sku}/assign", c.assignProduct)
	c.tenantAction("licenses/{sku}/unassign", c.unassignProduct)
	c.tenantPage("products", c.products)
	c.tenantAction("products", c.buySubscription)
	c.tenantAction("products/{sub}/quantity", c.changeQuantity)
	c.tenantAction("products/{sub}/cancel", c.cancelSubscription)
	c.tenantAction("products/{sub}/takeOver", c.takeOverSubscription)
	c.tenantAction("products/{sub}/install", c.installApp)
	c.tenantPage("me", c.me)

	// Active users (users.go): the list, a user's panel, their changes.
	c.tenantPage("users", c.usersList)
	c.tenantPage("users/{user}", c.userPanel)
	c.tenantAction("users/add", c.addUser)
	c.tenantAction("users/manageLicenses", c.manageLicenses)
	c.tenantAction("users/{user}/licenses/{sku}", c.savePlans)
	c.tenantAction("users/{user}/assignLicense", c.userLicenses)
	c.tenantAction("users/{user}/delete", c.deleteUser)
	c.tenantAction("users/{user}/restore", c.restoreUser)
	c.tenantAction("users/{user}/location", c.setLocation)

	// Groups, held data, the audit log (groups.go, helddata.go, audit.go).
	c.tenantPage("groups", c.groups)
	c.tenantAction("groups", c.createGroup)
	c.tenantPage("groups/{group}", c.group)
	c.tenantAction("groups/{group}/members", c.addGroupMember)
	c.tenantAction("groups/{group}/members/{user}/remove", c.removeGroupMember)
	c.tenantAction("groups/{group}/licenses", c.assignGroupLicense)
	c.tenantAction("groups/{group}/licenses/{sku}/remove", c.removeGroupLicense)
	c.tenantAction("groups/{group}/delete", c.deleteGroup)
	c.tenantPage("heldData", c.heldDataPage)
	c.tenantPage("audit", c.audit)

	c.tenantPage("timeTravel", c.timeTravel)
	c.tenantPage("timeTravel/fragment", c.timeTravelFragment)
	c.tenantPage("timeTravel/blame", c.timeTravelBlame)

	// Last: a GET of a form's action goes to the form's page, and any
	// other console address is the Not found page (nav.go).
	c.actionPages()
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) { c.notFound(w, r, c.current(r)) })
}

// ServeHTTP serves a console request. Every POST must come from the
// console's own pages: cross-site (Sec-Fetch-Site, Origin) or without the
// session's CSRF token it is refused with 403 before any handler runs.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := c.cross.Check(r); err != nil {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		if !c.csrfOK(r) {
			c.staleForm(w, r)
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

func cacheAssets(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// msg marks a catalog key used from Go code, so that the tests find it as
// they find the templates' {{.T "key"}}.
func msg(key string) string { return key }
