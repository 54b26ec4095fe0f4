package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
)

// TestProblemMapping pins the status of every error code, including those
// no HTTP endpoint reaches today (the scheduler's purge codes).
func TestProblemMapping(t *testing.T) {
	want := map[domain.ErrorCode]int{
		domain.CodeInvalidRequest: 400, domain.CodeTooManyUsers: 400,
		domain.CodeNotAllowedForRole: 403, domain.CodeGuestRequiresGlobalAdmin: 403,
		domain.CodeNotFound: 404, domain.CodeAlreadyExists: 409, domain.CodeInsufficientLicenses: 409,
		domain.CodeMutuallyExclusivePlans: 409, domain.CodeDependencyViolation: 409, domain.CodeUsageLocationRequired: 409,
		domain.CodeSelfServiceSubscription: 409, domain.CodeVendorManaged: 409, domain.CodeQuantityBelowAssigned: 409,
		domain.CodeInheritedLicense: 409, domain.CodeUserDeleted: 409, domain.CodeRestoreWindowExpired: 409,
		domain.CodePurgeNotDue: 409, domain.CodeNoHeldData: 409, domain.CodeDataRetained: 409,
		domain.CodeNotAnApp: 409, domain.CodeIdempotencyKeyReused: 409,
	}
	for code, status := range want {
		p, _, internal := toProblem(fmt.Errorf("wrapped: %w", &domain.Error{Code: code, Detail: "d", Rule: "R3", Missing: 2, Plans: []string{"A", "B"}, Field: "f"}))
		if p.Status != status || p.Code != string(code) || internal || p.Title == "" || p.Type == "" || p.Detail != "d" || p.Rule != "R3" {
			t.Errorf("%s: %+v", code, p)
		}
		if p.Missing != 2 || len(p.Plans) != 2 || p.Field != "f" {
			t.Errorf("%s: details lost: %+v", code, p)
		}
	}
	p, _, _ := toProblem(fmt.Errorf("%w (after 9 attempts)", commands.ErrConcurrencyConflict))
	if p.Status != http.StatusConflict || p.Code != "concurrency_conflict" {
		t.Errorf("conflict: %+v", p)
	}
	p, hdr, _ := toProblem(fmt.Errorf("%w: disk full", eventstore.ErrUnavailable))
	if p.Status != http.StatusServiceUnavailable || p.Code != "unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("unavailable: %+v %v", p, hdr)
	}
	p, _, _ = toProblem(fmt.Errorf("append: %w", eventstore.ErrTooLarge))
	if p.Status != http.StatusRequestEntityTooLarge || p.Code != "invalid_request" {
		t.Errorf("too large for one append: %+v", p)
	}
	p, _, internal := toProblem(fmt.Errorf("read: %w", eventstore.ErrStreamDeleted))
	if p.Status != 500 || !internal || !strings.Contains(p.Detail, "restore") {
		t.Errorf("deleted stream: %+v", p)
	}
	p, _, internal = toProblem(errors.New("pebble: secret path /var/lib/x"))
	if p.Status != 500 || p.Code != "internal" || !internal || p.Detail == "pebble: secret path /var/lib/x" {
		t.Errorf("internal: %+v", p)
	}
	p, _, _ = toProblem(domain.ErrNotFound) // a sentinel without detail
	if p.Status != 404 || p.Detail == "" {
		t.Errorf("sentinel: %+v", p)
	}
	for code, status := range statusByCode {
		if titleByCode[code] == "" {
			t.Errorf("%s (%d) has no title", code, status)
		}
	}
}

// TestProblemTypeLinksToRulesDoc (#22, item 6): every problem's type is the
// section of docs/RULES.md for its code, and that section exists.
func TestProblemTypeLinksToRulesDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "RULES.md"))
	if err != nil {
		t.Fatal(err)
	}
	codes := slices.Collect(maps.Keys(statusByCode))
	codes = append(codes, CodeRateLimited, CodeReplayRunning)
	for _, code := range codes {
		p, _, _ := toProblem(&HTTPError{Status: StatusOf(code), Code: code, Detail: "d"})
		if want := "https://github.com/seatledger/seatledger/blob/main/docs/RULES.md#" + string(code); p.Type != want {
			t.Errorf("%s: type %q, want %q", code, p.Type, want)
		}
		if !regexp.MustCompile(`(?m)^### ` + string(code) + `$`).Match(doc) {
			t.Errorf("docs/RULES.md has no section \"### %s\" for the type of %s", code, code)
		}
	}
}
