package domain

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrorCode names a refusal of the domain. The API maps each code to an HTTP
// status once (see api/problem.go); clients match on the code.
type ErrorCode string

// ProblemTypeBase + a code is the "type" of an error answer: the code's
// section of docs/RULES.md, which says what the code means and which rule
// (R1–R17) answers it.
const ProblemTypeBase = "https://github.com/seatledger/seatledger/blob/main/docs/RULES.md#"

// The error codes of the domain. Their strings are part of the HTTP contract.
const (
	CodeInvalidRequest           ErrorCode = "invalid_request"
	CodeNotFound                 ErrorCode = "not_found"
	CodeAlreadyExists            ErrorCode = "already_exists"
	CodeInsufficientLicenses     ErrorCode = "insufficient_licenses"
	CodeMutuallyExclusivePlans   ErrorCode = "mutually_exclusive_plans"
	CodeDependencyViolation      ErrorCode = "dependency_violation"
	CodeUsageLocationRequired    ErrorCode = "usage_location_required"
	CodeNotAllowedForRole        ErrorCode = "not_allowed_for_role"
	CodeGuestRequiresGlobalAdmin ErrorCode = "guest_requires_global_admin"
	CodeSelfServiceSubscription  ErrorCode = "self_service_subscription"
	CodeVendorManaged            ErrorCode = "vendor_managed_subscription"
	CodeQuantityBelowAssigned    ErrorCode = "quantity_below_assigned"
	CodeTooManyUsers             ErrorCode = "too_many_users"
	CodeInheritedLicense         ErrorCode = "inherited_license"
	CodeUserDeleted              ErrorCode = "user_deleted"
	CodeRestoreWindowExpired     ErrorCode = "restore_window_expired"
	CodePurgeNotDue              ErrorCode = "purge_not_due"
	CodeNoHeldData               ErrorCode = "no_held_data"
	CodeDataRetained             ErrorCode = "data_retained"
	CodeIdempotencyKeyReused     ErrorCode = "idempotency_key_reused"
	CodeNotAnApp                 ErrorCode = "not_an_app"
	CodeCancellationWindowPassed ErrorCode = "cancellation_window_passed"
	CodeLifecycleNotDue          ErrorCode = "lifecycle_not_due"
	CodeGroupHasLicenses         ErrorCode = "group_has_licenses"
)

// Error is a refusal of the domain: a broken rule or bad input. Nothing is
// decided when Decide returns one.
type Error struct {
	Code   ErrorCode
	Rule   string // the DESIGN.md rule that refused, e.g. "R3"; empty for input errors
	Detail string // one sentence for a person: what is wrong and what to do
	// Missing is the number of licenses that would have to be bought
	// (insufficient_licenses).
	Missing int
	// Plans names the service plans in conflict (mutually_exclusive_plans,
	// dependency_violation).
	Plans []string
	// Field names the offending input (invalid_request).
	Field string
	// Format and Args are Detail before formatting: Detail is
	// fmt.Sprintf(Format, Args...). The API translates Format (its catalog
	// key) for the person's language and formats the same Args, so every
	// detail is built by a constructor with a literal format (Errorf,
	// invalid, notFound, ruleErr). Args of type Phrase are translated too.
	// An Error written with a literal Detail and no Format is translated by
	// its Detail.
	Format string
	Args   []any
}

// Phrase is a few English words of the domain that a detail's argument
// carries ("assign licenses", "Global admin"): the API translates it with
// the detail. Write it as a literal (Phrase("…") or an untyped constant
// where a Phrase is expected) so the translation test finds it.
type Phrase string

// Errorf is an Error of code about field (may be empty) whose Detail is
// format with args, keeping both for translation. format must be a literal.
func Errorf(code ErrorCode, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Detail: fmt.Sprintf(format, args...), Format: format, Args: args}
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Rule != "" {
		b.WriteString(" (" + e.Rule + ")")
	}
	b.WriteString(": " + e.Detail)
	return b.String()
}

// Is makes errors.Is match two *Error values of the same code, so callers can
// write errors.Is(err, domain.ErrInsufficientLicenses).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; the errors returned carry details.
var (
	ErrInvalidRequest           = &Error{Code: CodeInvalidRequest}
	ErrNotFound                 = &Error{Code: CodeNotFound}
	ErrAlreadyExists            = &Error{Code: CodeAlreadyExists}
	ErrInsufficientLicenses     = &Error{Code: CodeInsufficientLicenses}
	ErrMutuallyExclusivePlans   = &Error{Code: CodeMutuallyExclusivePlans}
	ErrDependencyViolation      = &Error{Code: CodeDependencyViolation}
	ErrUsageLocationRequired    = &Error{Code: CodeUsageLocationRequired}
	ErrNotAllowedForRole        = &Error{Code: CodeNotAllowedForRole}
	ErrGuestRequiresGlobalAdmin = &Error{Code: CodeGuestRequiresGlobalAdmin}
	ErrSelfServiceSubscription  = &Error{Code: CodeSelfServiceSubscription}
	ErrVendorManaged            = &Error{Code: CodeVendorManaged}
	ErrQuantityBelowAssigned    = &Error{Code: CodeQuantityBelowAssigned}
	ErrTooManyUsers             = &Error{Code: CodeTooManyUsers}
	ErrInheritedLicense         = &Error{Code: CodeInheritedLicense}
	ErrUserDeleted              = &Error{Code: CodeUserDeleted}
	ErrRestoreWindowExpired     = &Error{Code: CodeRestoreWindowExpired}
	ErrPurgeNotDue              = &Error{Code: CodePurgeNotDue}
	ErrNoHeldData               = &Error{Code: CodeNoHeldData}
	ErrDataRetained             = &Error{Code: CodeDataRetained}
	ErrIdempotencyKeyReused     = &Error{Code: CodeIdempotencyKeyReused}
	ErrNotAnApp                 = &Error{Code: CodeNotAnApp}
	ErrCancellationWindowPassed = &Error{Code: CodeCancellationWindowPassed}
	ErrLifecycleNotDue          = &Error{Code: CodeLifecycleNotDue}
	ErrGroupHasLicenses         = &Error{Code: CodeGroupHasLicenses}
)

func invalid(field, format string, args ...any) *Error {
	return Errorf(CodeInvalidRequest, field, format, args...)
}

func notFound(format string, args ...any) *Error {
	return Errorf(CodeNotFound, "", format, args...)
}

func ruleErr(code ErrorCode, rule, format string, args ...any) *Error {
	e := Errorf(code, "", format, args...)
	e.Rule = rule
	return e
}

// Phrases is a list of Phrases in a detail: English joins them with ", ",
// and the API translates each.
type Phrases []Phrase

func (ps Phrases) String() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(p))
	}
	return b.String()
}

// rolePhrases names each role in a detail by its id (what SetAdminRoles
// takes), which the API translates to the id with the admin center's name
// of the role.
var rolePhrases = map[Role]Phrase{
	RoleGlobalAdmin:  Phrase("GlobalAdministrator"),
	RoleLicenseAdmin: Phrase("LicenseAdministrator"),
	RoleUserAdmin:    Phrase("UserAdministrator"),
	RoleBillingAdmin: Phrase("BillingAdministrator"),
}

// RolePhrases names roles in a detail ("to assign licenses you must be
// one of …"), in the order given.
func RolePhrases(roles []Role) Phrases {
	out := make(Phrases, len(roles))
	for i, r := range roles {
		out[i] = rolePhrases[r] // every Role is one of the four
	}
	return out
}

// MaxEcho bounds how many bytes of a client's input an error's detail
// repeats (docs/API.md: a 5,000-byte id is not sent back whole).
const MaxEcho = 64

// Echo returns s, the client's input, for repeating in an error's detail:
// s itself, or its first MaxEcho bytes (cut at a character boundary)
// followed by "…" and its full length.
func Echo(s string) string {
	if len(s) <= MaxEcho {
		return s
	}
	n := MaxEcho
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:n], len(s))
}
