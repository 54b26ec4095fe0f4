package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/domain"
)

// The Microsoft Graph surface (/v1.0) answers errors in Graph's shape:
//
//	{"error": {"code", "message", "innerError": {"date", "request-id",
//	"client-request-id"}, "details": [{"code", "message", "target"}]}}
//
// with Graph's codes and statuses. seatledger's own problem rides along:
// details[0] carries its code, detail and field, and the error object its
// rule, missing and plans.

// ctxGraphSkus holds the skuIds a Graph assignLicense adds, to name them
// in a license error as Graph does.
const ctxGraphSkus = "seatledger.graphSkus"

// graphPrefix is where the Graph surface lives.
const graphPrefix = "/v1.0"

// Graph error codes seatledger answers.
const (
	graphBadRequest       = "Request_BadRequest"
	graphNotFound         = "Request_ResourceNotFound"
	graphUnsupportedQuery = "Request_UnsupportedQuery"
	graphDenied           = "Authorization_RequestDenied"
	graphInvalidToken     = "InvalidAuthenticationToken"
	graphThrottled        = "TooManyRequests"
	graphUnavailable      = "serviceNotAvailable"
	graphInternal         = "generalException"
	graphConflict         = "resourceModified"
	graphSelectBadRequest = "BadRequest"
)

// graphError is an error of the Graph surface itself, answered as is.
type graphError struct {
	Status  int
	Code    string
	Message string
}

func (e *graphError) Error() string { return e.Code + ": " + e.Message }

func graphErr(status int, code, format string, args ...any) *graphError {
	return &graphError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// graphNotFoundErr is Graph's answer for an id that names nothing (the
// id as the client sent it, bounded).
func graphNotFoundErr(id string) *graphError {
	return graphErr(http.StatusNotFound, graphNotFound,
		"Resource '%s' does not exist or one of its queried reference-property objects are not present.", bounded(id))
}

// graphUnsupported names an option or expression the surface does not
// support (400, never silently ignored).
func graphUnsupported(format string, args ...any) *graphError {
	return graphErr(http.StatusBadRequest, graphUnsupportedQuery, format, args...)
}

// markGraph flags requests to /v1.0 (routed or not) so that every error
// answer, from auth to routing, takes Graph's shape.
func markGraph(c *gin.Context) {
	if p := c.Request.URL.Path; p == graphPrefix || strings.HasPrefix(p, graphPrefix+"/") {
		stateFor(c).graph = true // WriteProblem answers in Graph's error shape
	}
	c.Next()
}

// graphErrorBody is the body of a Graph error answer.
type graphErrorBody struct {
	Error graphMainError `json:"error"`
}

type graphMainError struct {
	Code       string             `json:"code"`
	Message    string             `json:"message"`
	InnerError graphInnerError    `json:"innerError"`
	Details    []graphErrorDetail `json:"details,omitempty"`
	// seatledger's members.
	Rule    string   `json:"rule,omitempty"`
	Missing int      `json:"missing,omitempty"`
	Plans   []string `json:"plans,omitempty"`
}

type graphInnerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id,omitempty"`
}

type graphErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

// writeGraphError answers err in Graph's error shape and aborts the chain.
func writeGraphError(c *gin.Context, err error) {
	var (
		ge   *graphError
		main graphMainError
		hdr  http.Header
	)
	status := http.StatusInternalServerError
	if errors.As(err, &ge) {
		status, main.Code, main.Message = ge.Status, ge.Code, ge.Message
	} else {
		p, h, internal := toProblem(err)
		hdr = h
		status = p.Status
		status, main.Code, main.Message = graphCodeOf(c, p)
		main.Details = []graphErrorDetail{{Code: p.Code, Message: p.Detail, Target: p.Field}}
		main.Rule, main.Missing, main.Plans = p.Rule, p.Missing, p.Plans
		if internal || p.Status >= 500 {
			level := slog.LevelWarn
			if internal {
				level = slog.LevelError
			}
			loggerOf(c).Log(c.Request.Context(), level, "request failed", "route", c.FullPath(), "code", p.Code, "err", err)
		}
	}
	main.InnerError = graphInnerError{Date: time.Now().UTC().Format(time.RFC3339), RequestID: RequestIDOf(c),
		ClientRequestID: graphClientRequestID(c)}
	for k, vs := range hdr {
		for _, v := range vs {
			c.Writer.Header().Add(k, v)
		}
	}
	_ = c.Error(err)
	c.Abort()
	writeJSON(c, status, "application/json", graphErrorBody{Error: main})
}

// graphClientRequestID is the client-request-id header the Graph SDKs send
// (echoed back, as Graph does), if sane.
func graphClientRequestID(c *gin.Context) string {
	if id := c.GetHeader("client-request-id"); validRequestID(id) {
		return id
	}
	return ""
}

// graphCodeOf maps a seatledger problem to Graph's status, code and
// message. The license failures are Graph's 400 Request_BadRequest (409 on
// /v1) with the sentences Graph uses (scripts match on them), followed by
// seatledger's detail; a deleted user is 404, as Graph has no such user.
func graphCodeOf(c *gin.Context, p Problem) (status int, code, message string) {
	with := func(sentence string) string {
		if p.Detail == "" || p.Detail == p.Title {
			return sentence
		}
		return sentence + " " + p.Detail
	}
	switch domain.ErrorCode(p.Code) {
	case domain.CodeInsufficientLicenses:
		skus, _ := c.Get(ctxGraphSkus)
		if list, ok := skus.([]string); ok && len(list) == 1 {
			return http.StatusBadRequest, graphBadRequest, with("Subscription with SKU " + list[0] + " does not have any available licenses.")
		}
		return http.StatusBadRequest, graphBadRequest, with("Subscription does not have any available licenses.")
	case domain.CodeUsageLocationRequired:
		return http.StatusBadRequest, graphBadRequest, with("License assignment cannot be done for user with invalid usage location.")
	case domain.CodeMutuallyExclusivePlans:
		return http.StatusBadRequest, graphBadRequest, with("License assignment failed because service plans " + strings.Join(p.Plans, ", ") + " are mutually exclusive.")
	case domain.CodeDependencyViolation:
		return http.StatusBadRequest, graphBadRequest, with("License assignment failed because of a service plan dependency.")
	case domain.CodeInheritedLicense:
		return http.StatusBadRequest, graphBadRequest, with("User license is inherited from a group membership and it cannot be removed directly from the user.")
	case domain.CodeNotAllowedForRole, domain.CodeGuestRequiresGlobalAdmin:
		return http.StatusForbidden, graphDenied, with("Insufficient privileges to complete the operation.")
	case CodeUnauthenticated:
		return p.Status, graphInvalidToken, with("Access token validation failure.")
	case domain.CodeNotFound, domain.CodeUserDeleted:
		return http.StatusNotFound, graphNotFound, p.Detail
	case CodeConcurrencyConflict, domain.CodeIdempotencyKeyReused, domain.CodeAlreadyExists:
		return p.Status, graphConflict, p.Detail
	case CodeRateLimited:
		return p.Status, graphThrottled, p.Detail
	case CodeUnavailable:
		return p.Status, graphUnavailable, p.Detail
	case CodeInternal:
		return p.Status, graphInternal, p.Detail
	}
	if p.Status >= 500 {
		return p.Status, graphInternal, p.Detail
	}
	return p.Status, graphBadRequest, p.Detail
}
