package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/queries"
)

// The query routes: the handlers that serve queries.Service's methods. They
// read the query string into queries.Options, ask the service, and answer
// its value with X-Tenant-Version (the version it was read at) and, for a
// page of a list, X-Next-Cursor and a Link rel="next" (docs/API.md,
// "Lists").

// The query parameters of a query route: of a page (a list, or a detail
// with a paged list in it), and of a single item.
var (
	pageParams = []string{"minVersion", "limit", "cursor"}
	itemParams = []string{"minVersion"}
)

// listQuery is the handler of a query of a whole tenant: a list.
func listQuery[T any](query func(ctx context.Context, tenant string, o queries.Options) (queries.Answer[T], error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		o, err := queryOptions(c, pageParams)
		if err != nil {
			WriteProblem(c, err)
			return
		}
		a, err := query(c.Request.Context(), TenantOf(c), o)
		writeAnswer(c, a, err)
	}
}

// userListParams are the query parameters of GET /users: a page's, and
// the filters, search and order of queries.UserFilter.
var userListParams = append(append([]string{}, pageParams...),
	"userType", "status", "licensed", "skuId", "licenseState", "search", "orderBy")

// usersQuery is the handler of the users list: a page of the tenant's
// users, filtered, searched and ordered as the query string says.
func usersQuery(query func(ctx context.Context, tenant string, f queries.UserFilter, o queries.Options) (queries.Answer[[]queries.UserSummary], error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		o, err := queryOptions(c, userListParams)
		if err != nil {
			WriteProblem(c, err)
			return
		}
		for _, name := range userListParams[len(pageParams):] {
			if v, ok := c.Request.URL.Query()[name]; ok && v[0] == "" && name != "search" {
				WriteProblem(c, invalidRequest(name, "%s is empty; leave it out or give a value", name))
				return
			}
		}
		f := queries.UserFilter{UserType: c.Query("userType"), Status: c.Query("status"), Licensed: c.Query("licensed"),
			SkuID: c.Query("skuId"), LicenseState: c.Query("licenseState"), Search: c.Query("search"), OrderBy: c.Query("orderBy")}
		a, err := query(c.Request.Context(), TenantOf(c), f, o)
		writeAnswer(c, a, err)
	}
}

// namedQuery is the handler of a query of one thing of a tenant, named by
// the path parameter param. When field is not empty, the name must be a
// valid id (else 400 naming field); else the service resolves any value.
func namedQuery[T any](params []string, param, field string,
	query func(ctx context.Context, tenant, name string, o queries.Options) (queries.Answer[T], error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		o, err := queryOptions(c, params)
		name := c.Param(param)
		if err == nil && field != "" {
			name, err = pathID(c, param, field)
		}
		if err != nil {
			WriteProblem(c, err)
			return
		}
		a, err := query(c.Request.Context(), TenantOf(c), name, o)
		writeAnswer(c, a, err)
	}
}

// queryOptions checks the query string against params and reads
// ?minVersion, ?limit and ?cursor. A request whose role check read the
// tenant (requestState.checked) asks with Checked: the read models say
// that something does not exist only once they are as new as that check
// (else 503), never contradicting it.
func queryOptions(c *gin.Context, params []string) (queries.Options, error) {
	o := queries.Options{Checked: stateFor(c).checked}
	if err := checkQuery(c, params...); err != nil {
		return o, err
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > queries.MaxLimit {
			return o, invalidRequest("limit", "limit must be an integer from 1 to %d, got %q", queries.MaxLimit, bounded(l))
		}
		o.Limit = n
	}
	o.Cursor = c.Query("cursor")
	if mv := c.Query("minVersion"); mv != "" {
		n, err := strconv.ParseUint(mv, 10, 64)
		if err != nil {
			return o, invalidRequest("minVersion", "minVersion must be a non-negative integer, got %q", bounded(mv))
		}
		o.MinVersion = n
	}
	return o, nil
}

// writeAnswer answers a query's answer, or its error.
func writeAnswer[T any](c *gin.Context, a queries.Answer[T], err error) {
	if err != nil {
		WriteProblem(c, err)
		return
	}
	c.Header("X-Tenant-Version", strconv.FormatUint(a.Version, 10))
	if a.NextCursor != "" {
		q := c.Request.URL.Query()
		q.Set("cursor", a.NextCursor)
		setNextCursor(c, a.NextCursor, q)
	}
	writeJSON(c, http.StatusOK, "application/json", a.Value)
}

// queryProblem is the problem of a query's *queries.UnavailableError: 503
// with its Retry-After (whole seconds, at least 1).
func queryProblem(e *queries.UnavailableError) (Problem, http.Header) {
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(max(1, int(e.RetryAfter/time.Second))))
	return Problem{Code: string(CodeUnavailable), Detail: e.Reason, format: e.Format, args: e.Args}, h
}
