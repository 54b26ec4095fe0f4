package api

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/seatledger/seatledger/domain"
)

// TestOpenAPIProblemCodes: every code the server answers with a status
// (statusByCode, and the codes with their own status) is in the
// document's ProblemCode enum, and the enum has no other.
func TestOpenAPIProblemCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				ProblemCode struct {
					Enum []string `json:"enum"`
				} `json:"ProblemCode"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPIDocument(), &doc); err != nil {
		t.Fatal(err)
	}
	enum := doc.Components.Schemas.ProblemCode.Enum
	codes := []domain.ErrorCode{CodeRateLimited, CodeReplayRunning}
	for c := range statusByCode {
		codes = append(codes, c)
	}
	for _, c := range codes {
		if !slices.Contains(enum, string(c)) {
			t.Errorf("problem code %s is not in api/openapi.yaml's components.schemas.ProblemCode.enum", c)
		}
	}
	for _, c := range enum {
		if !slices.Contains(codes, domain.ErrorCode(c)) {
			t.Errorf("api/openapi.yaml's ProblemCode has %s, which no answer carries", c)
		}
	}
}
