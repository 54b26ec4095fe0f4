package api

import (
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seatledger/seatledger/domain"
)

// routes is the route table: every route the server serves, with the
// middleware it runs behind, grouped by who may call it. A new route goes
// here, in docs/API.md and in api/openapi.yaml (TestOpenAPICoversRoutes
// names what is missing); its handler goes with its kind: a command's in
// commands.go, a query's in queries (the service) and queries.go, a question
// about the past in history (the service) and history.go.
//
// The read side's routes are served when their service is configured
// (Config.Queries, Config.History, Config.ReadModels).
func (s *Server) routes(e *gin.Engine) {
	// Health and metrics: no token.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{})))
	// The OpenAPI document (api/openapi.yaml): no token.
	e.GET("/openapi.json", s.openAPIDoc)
	// The web console (api/console, docs/ARCHITECTURE.md "Console"): HTML
	// pages, a client of the routes below; its own sign-in, not a token.
	// Not in api/openapi.yaml, which documents the JSON API.
	if s.console != nil {
		e.GET("/", gin.WrapH(s.console))
		e.Any("/console/*path", gin.WrapH(s.console))
	}

	v1 := e.Group("/v1")
	v1.GET("/catalog", s.catalog)

	// The operator token only: tenants, and the read models.
	op := v1.Group("", s.authenticate, s.rateLimit, s.operatorOnly)
	op.POST("/tenants", command(s, createTenant))
	if s.cfg.ReadModels != nil {
		op.GET("/projections", s.projections)
		op.POST("/projections/rebuild", s.rebuild)
		op.POST("/projections/verify", s.verify)
	}
	if q := s.cfg.Queries; q != nil {
		op.GET("/tenants", tenantList(q))
	}

	// A tenant's routes: a token of the tenant, or the operator's; a token
	// of another tenant gets 404.
	t := v1.Group("/tenants/:t", s.authenticate, s.rateLimit, s.tenantScope)

	// Commands (docs/API.md "Commands"): the domain decides who may.
	t.POST("/users", command(s, addUser))
	t.PATCH("/users/:u", command(s, updateUser))
	t.DELETE("/users/:u", command(s, deleteUser))
	t.POST("/users/:u/restore", command(s, restoreUser))
	t.PUT("/users/:u/roles", command(s, setRoles))
	t.PUT("/users/:u/retentionHold", command(s, setRetentionHold))
	t.POST("/users/:u/assignLicense", command(s, updateUserLicenses))
	t.PATCH("/users/:u/licenses/:sku", command(s, changeLicensePlans))
	t.POST("/users/manageLicenses", command(s, manageLicenses))
	t.POST("/groups", command(s, createGroup))
	t.PATCH("/groups/:g", command(s, renameGroup))
	t.DELETE("/groups/:g", command(s, deleteGroup))
	t.PUT("/groups/:g/members/:u", command(s, addGroupMember))
	t.DELETE("/groups/:g/members/:u", command(s, removeGroupMember))
	t.POST("/groups/:g/assignLicense", command(s, assignGroupLicenses))
	t.POST("/subscriptions", command(s, s.purchase))
	t.PATCH("/subscriptions/:s", command(s, s.patchSubscription))
	t.POST("/subscriptions/:s/takeOver", command(s, takeOver))
	t.POST("/subscriptions/:s/cancel", command(s, cancelSubscription))
	t.POST("/licenses/:sku/assign", command(s, assignLicenses))
	t.POST("/licenses/:sku/unassign", command(s, unassignLicenses))
	t.POST("/apps/:sku/install", command(s, installApp))
	t.POST("/users/import", s.requireRoles("import users", domain.RoleGlobalAdmin, domain.RoleUserAdmin), s.importUsers) // api/csv.go

	// The Microsoft Graph surface (/v1.0, docs/GRAPH.md): the tenant is
	// the token's; reads come from the command side's state.
	g := e.Group(graphPrefix, s.authenticate, s.rateLimit, s.graphTenant)
	g.GET("/users", s.graphListUsers)
	g.GET("/users/:id", s.graphGetUser)
	g.GET("/users/:id/licenseDetails", s.graphLicenseDetails)
	g.POST("/users/:id/assignLicense", s.graphAssignUserLicense)
	g.POST("/users/:id/reprocessLicenseAssignment", s.graphReprocess)
	g.GET("/groups/:id", s.graphGetGroup)
	g.GET("/groups/:id/membersWithLicenseErrors", s.graphMembersWithLicenseErrors)
	g.POST("/groups/:id/assignLicense", s.graphAssignGroupLicense)
	g.GET("/subscribedSkus", s.graphSubscribedSkus)
	g.GET("/subscribedSkus/:id", s.graphSubscribedSku)

	// Queries (docs/API.md "Queries"): the admin center's pages, from the
	// read models, for the tenant's admins.
	if q := s.cfg.Queries; q != nil {
		readers := t.Group("", s.requireRoles("read the tenant's licenses and users",
			domain.RoleGlobalAdmin, domain.RoleLicenseAdmin, domain.RoleUserAdmin, domain.RoleBillingAdmin))
		readers.GET("/licenses", listQuery(q.Licenses))
		readers.GET("/licenses/:sku", namedQuery(pageParams, "sku", "", q.License)) // a skuId or skuPartNumber
		readers.GET("/subscriptions", listQuery(q.Subscriptions))
		readers.GET("/subscriptions/:s", namedQuery(itemParams, "s", "subscriptionId", q.Subscription))
		readers.GET("/users", usersQuery(q.FindUsers)) // filters, search, orderBy: docs/API.md
		readers.GET("/users/:u", namedQuery(itemParams, "u", "userId", q.User))
		readers.GET("/groups/:g", namedQuery(pageParams, "g", "groupId", q.Group))
		readers.GET("/heldData", listQuery(q.HeldData))
		readers.GET("/users.csv", s.exportUsers)                      // api/csv.go
		readers.GET("/licenses/:sku/users.csv", s.exportLicenseUsers) // api/csv.go
		readers.GET("/groups", listQuery(q.Groups))
		readers.GET("", namedQuery(itemParams, "t", "tenantId", tenantQuery(q)))

		// A user's own profile and licenses: any active user of the tenant.
		t.GET("/me", s.requireActiveUser, s.me(q))
	}

	// History (docs/API.md "Queries": audit, events, state): the past,
	// from the event store, for the tenant's Global admins.
	if svc := s.cfg.History; svc != nil {
		h := historyHandlers{svc}
		auditors := t.Group("", s.requireRoles("read the audit log and past states", domain.RoleGlobalAdmin))
		auditors.GET("/audit", h.audit)
		auditors.GET("/events", h.events)
		auditors.GET("/state", h.state)
		auditors.GET("/state/diff", h.diff)
		auditors.GET("/state/blame", h.blame)
	}
}
