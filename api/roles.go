package api

import (
	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/domain"
)

// requireRoles admits the operator and the tenant's users holding one of
// roles, as the tenant's own role events say (never the token). A tenant
// that does not exist answers 404, the same as another tenant's path. It
// keeps the version of the state it checked (requestState.checked): a
// query after it says "not found" only from read models at least that new
// (queryOptions).
func (s *Server) requireRoles(what domain.Phrase, roles ...domain.Role) gin.HandlerFunc {
	names := domain.RolePhrases(roles)
	return func(c *gin.Context) {
		a, tenant := ActorOf(c), TenantOf(c)
		var err error
		viewErr := s.cfg.Commands.View(c.Request.Context(), tenant, func(t *domain.Tenant) error {
			stateFor(c).checked = t.Version
			switch u := t.Users[a.UserID]; {
			case !t.Exists():
				err = TenantNotFound(tenant)
			case a.Operator:
			case u == nil || u.Deleted || !u.HasRole(roles...):
				err = domain.Errorf(domain.CodeNotAllowedForRole, "", "to %s you must be one of %s", what, names)
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
}
