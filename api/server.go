// Package api is seatledger's HTTP interface, and its only one: the gin
// router with every route in one table (routes.go), bearer-token auth,
// request decoding, idempotency keys, and problem+json errors written in one
// place (problem.go). Behind it, commands.Handler runs commands,
// queries.Service and history.Service answer questions, and the binary's
// ReadModels drives the read models for the operator.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/history"
	"github.com/seatledger/seatledger/queries"
)

// DefaultBulkLimit is the users per bulk request when Config.BulkLimit is 0.
const DefaultBulkLimit = 20

// MaxBodyBytes bounds a request body (1 MiB).
const MaxBodyBytes = 1 << 20

// Config configures the HTTP server. Commands is required.
type Config struct {
	// Commands runs the write side.
	Commands *commands.Handler
	// Decider gives the catalog (GET /v1/catalog) and policy; default
	// domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy()).
	Decider *domain.Decider
	// JWTSecret verifies HS256 bearer tokens. Empty: only the operator
	// token is accepted.
	JWTSecret []byte
	// OperatorToken is the operator's bearer token. Empty: no operator.
	OperatorToken string
	// Logger receives request logs (default slog.Default()).
	Logger *slog.Logger
	// BulkLimit is informational here (the domain enforces it); default 20.
	BulkLimit int
	// Ready reports whether the service can serve (GET /readyz); nil: ready.
	Ready func(ctx context.Context) error
	// Live reports whether the process can still recover by itself (GET
	// /healthz); an error asks the orchestrator to restart it. nil: live.
	Live func() error
	// Metrics records HTTP and command metrics. nil: New creates one on
	// Registerer (or on a fresh registry).
	Metrics *Metrics
	// Registerer receives the metrics New creates when Metrics is nil.
	Registerer prometheus.Registerer
	// Gatherer is served at GET /metrics. nil: Registerer if it is a
	// Gatherer, else the registry New created, else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Clock stamps tokens' validation time (default time.Now); tests only.
	Clock func() time.Time
	// Queries answers the query routes (docs/API.md "Queries") from the
	// read models. nil: they are not served.
	Queries *queries.Service
	// History answers the audit log, the raw events and time travel from
	// the event store. nil: they are not served.
	History *history.Service
	// ReadModels serves the operator's read-model routes (GET
	// /v1/projections, POST /v1/projections/rebuild and /verify). nil:
	// they are not served.
	ReadModels ReadModels
	// RateLimit bounds each token's requests (429 with Retry-After); the
	// zero value is off. See RateLimit.
	RateLimit RateLimit
	// Console builds the web console (package api/console) over the server
	// itself: New calls it with the Server, and the router serves what it
	// answers at GET / and /console/*. nil: no console.
	Console func(api http.Handler) http.Handler
}

// Server is the HTTP handler of seatledger.
type Server struct {
	cfg     Config
	engine  *gin.Engine
	console http.Handler // nil: no console
	metrics *Metrics
	auth    *authenticator
	limiter *rateLimiter // nil: no rate limit
}

var ginModeOnce sync.Once

// New builds the router.
func New(cfg Config) *Server {
	ginModeOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })
	if cfg.Commands == nil {
		panic("api: Config.Commands is required")
	}
	if cfg.Decider == nil {
		cfg.Decider = domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BulkLimit <= 0 {
		cfg.BulkLimit = DefaultBulkLimit
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Metrics == nil {
		reg := cfg.Registerer
		if reg == nil {
			r := prometheus.NewRegistry()
			reg = r
			if cfg.Gatherer == nil {
				cfg.Gatherer = r
			}
		}
		cfg.Metrics = NewMetrics(reg)
	}
	if cfg.Gatherer == nil {
		if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
			cfg.Gatherer = g
		} else {
			cfg.Gatherer = prometheus.DefaultGatherer
		}
	}
	s := &Server{cfg: cfg, metrics: cfg.Metrics, auth: newAuthenticator(cfg.JWTSecret, cfg.OperatorToken, cfg.Clock)}
	if cfg.RateLimit.Enabled() {
		s.limiter = newRateLimiter(cfg.RateLimit, cfg.Clock)
	}
	if cfg.Console != nil {
		// The console calls s.ServeHTTP, which reads s.engine: only
		// once a request comes, after build below.
		s.console = cfg.Console(s)
	}
	s.engine = s.build()
	return s
}

// ServeHTTP serves a request. HEAD is served as GET without the body (RFC
// 9110 §9.3.2): every GET route answers HEAD with the same status and
// headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		r = r.WithContext(context.WithValue(r.Context(), headRequest{}, true))
		r.Method = http.MethodGet
		w = headWriter{w}
	}
	s.engine.ServeHTTP(w, r)
}

// headRequest marks the context of a HEAD request served as GET.
type headRequest struct{}

// methodOf is the method the client sent (HEAD for a HEAD served as GET).
func methodOf(c *gin.Context) string {
	if head, _ := c.Request.Context().Value(headRequest{}).(bool); head {
		return http.MethodHead
	}
	return c.Request.Method
}

// headWriter drops the body of a HEAD answer.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(b []byte) (int, error) { return len(b), nil }

// WriteString drops the body too (gin uses it when the writer has it).
func (w headWriter) WriteString(s string) (int, error) { return len(s), nil }

// Engine returns the gin engine (tests).
func (s *Server) Engine() *gin.Engine { return s.engine }

// Metrics returns the server's metrics (it is the commands.Observer).
func (s *Server) Metrics() *Metrics { return s.metrics }

// Routes lists every route of the router.
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

func (s *Server) build() *gin.Engine {
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.requestID, s.observe, s.recover, markGraph)
	e.NoRoute(func(c *gin.Context) {
		WriteProblem(c, httpErrorf(http.StatusNotFound, domain.CodeNotFound, "", "no such endpoint: %s %s", methodOf(c), bounded(c.Request.URL.Path)))
	})
	e.NoMethod(func(c *gin.Context) {
		// gin has set Allow (once); HEAD goes wherever GET does.
		h := c.Writer.Header()
		if allow := strings.Split(h.Get("Allow"), ", "); slices.Contains(allow, http.MethodGet) && !slices.Contains(allow, http.MethodHead) {
			h.Set("Allow", strings.Join(append(allow, http.MethodHead), ", "))
		}
		WriteProblem(c, httpErrorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "method %s is not allowed on %s", methodOf(c), bounded(c.Request.URL.Path)))
	})

	s.routes(e)
	return e
}

// healthz answers GET /healthz: 503 when Config.Live says the process
// cannot recover by itself.
func (s *Server) healthz(c *gin.Context) {
	if s.cfg.Live != nil {
		if err := s.cfg.Live(); err != nil {
			loggerOf(c).Error("not live", "err", err)
			WriteProblem(c, httpErrorf(http.StatusServiceUnavailable, CodeUnavailable, "", "not live, restart the process: %s", err.Error()))
			return
		}
	}
	writeJSON(c, http.StatusOK, "application/json", gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			loggerOf(c).Warn("not ready", "err", err)
			WriteProblem(c, httpErrorf(http.StatusServiceUnavailable, CodeUnavailable, "", "not ready: %s", err.Error()))
			return
		}
	}
	writeJSON(c, http.StatusOK, "application/json", gin.H{"status": "ready"})
}

// CatalogProduct is a row of GET /v1/catalog.
type CatalogProduct struct {
	SkuID         string        `json:"skuId"`
	SkuPartNumber string        `json:"skuPartNumber"`
	DisplayName   string        `json:"displayName"`
	ServicePlans  []CatalogPlan `json:"servicePlans"`
}

// CatalogPlan is a service plan of a catalog product.
type CatalogPlan struct {
	ServicePlanID   string `json:"servicePlanId"`
	ServicePlanName string `json:"servicePlanName"`
}

func (s *Server) catalog(c *gin.Context) {
	if err := checkQuery(c); err != nil {
		WriteProblem(c, err)
		return
	}
	cat := s.cfg.Decider.Catalog
	out := make([]CatalogProduct, 0, len(cat.Products))
	for _, p := range cat.Products {
		row := CatalogProduct{SkuID: p.SkuID, SkuPartNumber: p.SkuPartNumber, DisplayName: p.DisplayName, ServicePlans: []CatalogPlan{}}
		for _, sp := range p.ServicePlans {
			row.ServicePlans = append(row.ServicePlans, CatalogPlan{ServicePlanID: sp.ID, ServicePlanName: sp.Name})
		}
		out = append(out, row)
	}
	writeJSON(c, http.StatusOK, "application/json", out)
}

func writeJSON(c *gin.Context, status int, contentType string, v any) {
	b, err := eventcodec.MarshalNoEscapeHTML(v)
	if err != nil {
		loggerOf(c).Error("encode answer", "err", err)
		c.Writer.Header().Set("Content-Type", ProblemContentType)
		c.Writer.WriteHeader(http.StatusInternalServerError)
		_, _ = c.Writer.WriteString(`{"type":"` + problemTypeBase + `internal","title":"Internal error","status":500,"detail":"the answer could not be encoded","code":"internal"}` + "\n")
		return
	}
	c.Writer.Header().Set("Content-Type", contentType)
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(append(b, '\n'))
}
