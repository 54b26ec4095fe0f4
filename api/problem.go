package api

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/i18n"
	"github.com/seatledger/seatledger/queries"
)

// Error codes the API adds to the domain's.
const (
	CodeUnauthenticated     domain.ErrorCode = "unauthenticated"
	CodeConcurrencyConflict domain.ErrorCode = "concurrency_conflict"
	CodeUnavailable         domain.ErrorCode = "unavailable"
	CodeInternal            domain.ErrorCode = "internal"
	CodeMethodNotAllowed    domain.ErrorCode = "method_not_allowed"
)

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// problemTypeBase prefixes the code to form a problem's "type" URI: the
// code's section of docs/RULES.md.
const problemTypeBase = domain.ProblemTypeBase

// Problem is the body of an error answer (RFC 9457 with seatledger members).
type Problem struct {
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Status  int      `json:"status"`
	Detail  string   `json:"detail"`
	Code    string   `json:"code"`
	Rule    string   `json:"rule,omitempty"`
	Field   string   `json:"field,omitempty"`
	Missing int      `json:"missing,omitempty"`
	Plans   []string `json:"plans,omitempty"`
	// RequestID lets a caller quote the request to an operator.
	RequestID string `json:"requestId,omitempty"`

	// format and args are Detail before formatting, in English: format is
	// the key of the translation (empty: Detail is the key). See localize.
	format string
	args   []any
}

// HTTPError is an error of the HTTP layer itself (auth, body, routing) with
// the status it answers.
type HTTPError struct {
	Status int
	Code   domain.ErrorCode
	Field  string
	Detail string
	// Header is added to the answer (e.g. WWW-Authenticate, Allow).
	Header http.Header
	// Format and Args are Detail before formatting, for translation (as
	// domain.Error's): build an HTTPError with httpErrorf.
	Format string
	Args   []any
}

// httpErrorf is an HTTPError whose Detail is format (a literal: it is the
// translation catalog's key) with args.
func httpErrorf(status int, code domain.ErrorCode, field, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Code: code, Field: field, Detail: fmt.Sprintf(format, args...), Format: format, Args: args}
}

func (e *HTTPError) Error() string { return string(e.Code) + ": " + e.Detail }

// invalidRequest is a 400 invalid_request naming the offending input.
func invalidRequest(field, format string, args ...any) *HTTPError {
	return httpErrorf(http.StatusBadRequest, domain.CodeInvalidRequest, field, format, args...)
}

// TenantNotFound is the answer for a tenant that does not exist or that the
// caller's token does not belong to: both look the same (no existence leak).
func TenantNotFound(tenantID string) error {
	return domain.Errorf(domain.CodeNotFound, "", "tenant %q does not exist", bounded(tenantID))
}

var statusByCode = map[domain.ErrorCode]int{
	domain.CodeInvalidRequest:           http.StatusBadRequest,
	domain.CodeTooManyUsers:             http.StatusBadRequest,
	CodeUnauthenticated:                 http.StatusUnauthorized,
	domain.CodeNotAllowedForRole:        http.StatusForbidden,
	domain.CodeGuestRequiresGlobalAdmin: http.StatusForbidden,
	domain.CodeNotFound:                 http.StatusNotFound,
	CodeMethodNotAllowed:                http.StatusMethodNotAllowed,
	domain.CodeAlreadyExists:            http.StatusConflict,
	domain.CodeInsufficientLicenses:     http.StatusConflict,
	domain.CodeMutuallyExclusivePlans:   http.StatusConflict,
	domain.CodeDependencyViolation:      http.StatusConflict,
	domain.CodeUsageLocationRequired:    http.StatusConflict,
	domain.CodeSelfServiceSubscription:  http.StatusConflict,
	domain.CodeVendorManaged:            http.StatusConflict,
	domain.CodeQuantityBelowAssigned:    http.StatusConflict,
	domain.CodeInheritedLicense:         http.StatusConflict,
	domain.CodeUserDeleted:              http.StatusConflict,
	domain.CodeRestoreWindowExpired:     http.StatusConflict,
	domain.CodePurgeNotDue:              http.StatusConflict,
	domain.CodeNoHeldData:               http.StatusConflict,
	domain.CodeDataRetained:             http.StatusConflict,
	domain.CodeNotAnApp:                 http.StatusConflict,
	domain.CodeCancellationWindowPassed: http.StatusConflict,
	domain.CodeLifecycleNotDue:          http.StatusConflict,
	domain.CodeGroupHasLicenses:         http.StatusConflict,
	domain.CodeIdempotencyKeyReused:     http.StatusConflict,
	CodeConcurrencyConflict:             http.StatusConflict,
	CodeUnavailable:                     http.StatusServiceUnavailable,
	CodeInternal:                        http.StatusInternalServerError,
}

var titleByCode = map[domain.ErrorCode]string{
	domain.CodeInvalidRequest:           "The request is not valid",
	domain.CodeTooManyUsers:             "Too many users in one request",
	CodeUnauthenticated:                 "Authentication required",
	domain.CodeNotAllowedForRole:        "Your admin role does not allow this",
	domain.CodeGuestRequiresGlobalAdmin: "Only a Global admin can license a guest user",
	domain.CodeNotFound:                 "Not found",
	CodeMethodNotAllowed:                "Method not allowed",
	domain.CodeAlreadyExists:            "Already exists",
	domain.CodeInsufficientLicenses:     "Not enough licenses",
	domain.CodeMutuallyExclusivePlans:   "Service plans are mutually exclusive",
	domain.CodeDependencyViolation:      "A service plan depends on another",
	domain.CodeUsageLocationRequired:    "The user needs a usage location",
	domain.CodeSelfServiceSubscription:  "Self-service purchase",
	domain.CodeVendorManaged:            "Managed by the vendor",
	domain.CodeQuantityBelowAssigned:    "Quantity below assigned licenses",
	domain.CodeInheritedLicense:         "License inherited from a group",
	domain.CodeUserDeleted:              "The user is deleted",
	domain.CodeRestoreWindowExpired:     "Restore window expired",
	domain.CodePurgeNotDue:              "Purge not due",
	domain.CodeNoHeldData:               "No held data",
	domain.CodeDataRetained:             "Data under retention hold",
	domain.CodeNotAnApp:                 "Not an app",
	domain.CodeCancellationWindowPassed: "Cancellation window passed",
	domain.CodeLifecycleNotDue:          "Nothing due in the subscription's lifecycle",
	domain.CodeGroupHasLicenses:         "The group gives licenses",
	domain.CodeIdempotencyKeyReused:     "Idempotency key reused",
	CodeConcurrencyConflict:             "Concurrent changes",
	CodeUnavailable:                     "Service unavailable",
	CodeInternal:                        "Internal error",
}

// StatusOf returns the HTTP status of an error code (500 for unknown codes).
func StatusOf(code domain.ErrorCode) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// retryAfterSeconds is the Retry-After of a 503.
const retryAfterSeconds = "1"

// toProblem maps any error to its problem body and extra headers. It is the
// one place where errors become HTTP answers.
func toProblem(err error) (Problem, http.Header, bool) {
	var (
		de       *domain.Error
		he       *HTTPError
		qe       *queries.UnavailableError
		p        Problem
		hdr      http.Header
		internal bool
	)
	switch {
	case errors.As(err, &he):
		p = Problem{Code: string(he.Code), Detail: he.Detail, Field: he.Field, Status: he.Status, format: he.Format, args: he.Args}
		hdr = he.Header
	case errors.As(err, &qe):
		p, hdr = queryProblem(qe)
	case errors.As(err, &de):
		p = Problem{Code: string(de.Code), Detail: de.Detail, Rule: de.Rule, Field: de.Field, Missing: de.Missing, Plans: de.Plans,
			format: de.Format, args: de.Args}
	case errors.Is(err, commands.ErrConcurrencyConflict):
		p = Problem{Code: string(CodeConcurrencyConflict), Detail: "the tenant kept changing while the command was decided; retry the request"}
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrClosed):
		p = Problem{Code: string(CodeUnavailable), Detail: "the event store is unavailable; retry later"}
	case errors.Is(err, context.DeadlineExceeded):
		p = Problem{Code: string(CodeUnavailable), Detail: "the request timed out; retry later"}
	case errors.Is(err, eventstore.ErrTooLarge):
		p = Problem{Code: string(domain.CodeInvalidRequest), Status: http.StatusRequestEntityTooLarge,
			Detail: "the command's events are larger than the event store takes in one append; send it in smaller parts (fewer users per request)"}
	case errors.Is(err, eventstore.ErrStreamDeleted):
		p = Problem{Code: string(CodeInternal), Detail: "the tenant's event stream was deleted outside seatledger; the operator must restore it (quote the request id)"}
		internal = true
	default:
		p = Problem{Code: string(CodeInternal), Detail: "an internal error occurred; quote the request id to the operator"}
		internal = true
	}
	code := domain.ErrorCode(p.Code)
	if p.Status == 0 {
		p.Status = StatusOf(code)
	}
	p.Title = titleByCode[code]
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Detail == "" {
		p.Detail, p.format, p.args = p.Title, "", nil
	}
	if p.format == "" {
		p.format = p.Detail
	}
	p.Detail = boundDetail(p.Detail)
	p.Type = problemTypeBase + p.Code
	if p.Status == http.StatusServiceUnavailable {
		if hdr == nil {
			hdr = http.Header{}
		}
		if hdr.Get("Retry-After") == "" {
			hdr.Set("Retry-After", retryAfterSeconds)
		}
	}
	return p, hdr, internal
}

// maxDetail bounds a problem's detail: most echo the input at fault, and
// where the layer that wrote it did not bound the echo (bounded), this does.
const maxDetail = 1024

func boundDetail(d string) string {
	if len(d) <= maxDetail {
		return d
	}
	// The mark counts in the bound: docs/API.md promises no detail
	// longer than 1 KiB.
	const mark = "… (cut)"
	n := maxDetail - len(mark)
	for n > 0 && !utf8.RuneStart(d[n]) {
		n--
	}
	return d[:n] + mark
}

// WriteProblem answers err as application/problem+json and aborts the gin
// chain: every route's errors become problems here, and nowhere else.
func WriteProblem(c *gin.Context, err error) {
	if st := stateOf(c); st != nil && st.graph { // the Graph surface answers Graph's error shape
		writeGraphError(c, err)
		return
	}
	p, hdr, internal := toProblem(err)
	lang := requestLang(c)
	p.localize(lang)
	p.RequestID = RequestIDOf(c)
	if internal || p.Status >= 500 {
		logger := loggerOf(c)
		level := slog.LevelWarn
		if internal {
			level = slog.LevelError
		}
		logger.Log(c.Request.Context(), level, "request failed",
			"route", c.FullPath(), "code", p.Code, "err", err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			c.Writer.Header().Add(k, v)
		}
	}
	c.Writer.Header().Set("Content-Language", string(lang))
	c.Writer.Header().Add("Vary", "Accept-Language")
	_ = c.Error(err)
	c.Abort()
	writeJSON(c, p.Status, ProblemContentType, p)
}

// problemTexts holds the translations of every problem detail: the key is
// the English format (or literal detail) the error was built with, the
// texts are formats with the same arguments (%[2]s to reorder them).
// locales_test.go fails when a detail the code can build has no French or
// Chinese text.
//
//go:embed locales/problems.*.json
var localesFS embed.FS

var problemTexts = i18n.MustLoad(localesFS, "locales")

// requestLang is the language of the person behind the request, from its
// Accept-Language (English when it names none of ours).
func requestLang(c *gin.Context) i18n.Lang {
	return i18n.Negotiate(c.GetHeader("Accept-Language"))
}

// localize writes p's detail in lang: the translation of its format with
// its arguments, a domain.Phrase argument (or each of domain.Phrases)
// translated too. English keeps the
// detail as built, so English answers do not depend on the catalog. A key
// the catalog lacks (a defect the tests catch) keeps the English text.
func (p *Problem) localize(lang i18n.Lang) {
	p.Detail = localized(lang, p.Detail, p.format, p.args)
}

// localized is detail, built in English from format (empty: detail is its
// own format) and args, in lang.
func localized(lang i18n.Lang, detail, format string, args []any) string {
	if format == "" {
		format = detail
	}
	if lang == i18n.English || !problemTexts.Has(lang, format) {
		return detail
	}
	out := make([]any, len(args))
	for i, a := range args {
		switch ph := a.(type) {
		case domain.Phrase:
			a = problemTexts.T(lang, string(ph))
		case domain.Phrases:
			words := make([]string, len(ph))
			for j, p := range ph {
				words[j] = problemTexts.T(lang, string(p))
			}
			a = strings.Join(words, ", ")
		}
		out[i] = a
	}
	return boundDetail(problemTexts.T(lang, format, out...))
}

// loggerOf returns the server's logger with the request's id, for the rare
// lines a handler logs (failures, panics).
func loggerOf(c *gin.Context) *slog.Logger {
	l := slog.Default()
	if st := stateOf(c); st != nil && st.logger != nil {
		l = st.logger
	}
	if id := RequestIDOf(c); id != "" {
		l = l.With("request_id", id)
	}
	return l
}
