package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/queries"
)

// The handlers of the resource queries that are not a tenant's list or one
// named thing of it: the operator's tenant list, a tenant, and /me.

// tenantList answers GET /v1/tenants: the read models' tenants, a page at a
// time (?limit, ?cursor), for the operator.
func tenantList(q *queries.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		o, err := queryOptions(c, []string{"limit", "cursor"})
		if err != nil {
			WriteProblem(c, err)
			return
		}
		a, err := q.Tenants(c.Request.Context(), o)
		if err != nil {
			WriteProblem(c, err)
			return
		}
		if a.NextCursor != "" {
			qs := c.Request.URL.Query()
			qs.Set("cursor", a.NextCursor)
			setNextCursor(c, a.NextCursor, qs)
		}
		writeJSON(c, http.StatusOK, "application/json", a.Value)
	}
}

// tenantQuery is q.Tenant in the shape of a named query (the name is the
// tenant).
func tenantQuery(q *queries.Service) func(ctx context.Context, tenant, _ string, o queries.Options) (queries.Answer[queries.TenantSummary], error) {
	return func(ctx context.Context, tenant, _ string, o queries.Options) (queries.Answer[queries.TenantSummary], error) {
		return q.Tenant(ctx, tenant, o)
	}
}

// requireActiveUser admits a token of an active (not deleted) user of the
// path's tenant, as the tenant's state says now; the operator, who is no
// user of it, gets 404 like a user the tenant does not have. It keeps the
// version of the state it checked (requestState.checked), as requireRoles
// does, so that me does not answer 404 for a user the check found.
func (s *Server) requireActiveUser(c *gin.Context) {
	a, tenant := ActorOf(c), TenantOf(c)
	var err error
	viewErr := s.cfg.Commands.View(c.Request.Context(), tenant, func(t *domain.Tenant) error {
		stateFor(c).checked = t.Version
		switch u := t.Users[a.UserID]; {
		case !t.Exists():
			err = TenantNotFound(tenant)
		case a.Operator:
			err = &domain.Error{Code: domain.CodeNotFound, Detail: "the operator is not a user of the tenant: GET /users/{u} reads a user"}
		case u == nil || u.Deleted:
			err = &domain.Error{Code: domain.CodeNotFound, Detail: "you are not an active user of this tenant"}
		}
		return nil
	})
	if viewErr != nil {
		err = viewErr
	}
	if err != nil {
		WriteProblem(c, err)
		return
	}
	c.Next()
}

// me answers GET /me: the acting user's own view (profile, licenses,
// groups), from the read models. The version requireActiveUser checked
// goes with the query (queryOptions' Checked): a user who signs in right
// after being added is not answered 404 by read models a few events
// behind.
func (s *Server) me(q *queries.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		o, err := queryOptions(c, itemParams)
		if err != nil {
			WriteProblem(c, err)
			return
		}
		a, err := q.User(c.Request.Context(), TenantOf(c), ActorOf(c).UserID, o)
		writeAnswer(c, a, err)
	}
}
