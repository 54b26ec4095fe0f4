package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/seatledger/seatledger/history"
)

// TestAuditRecordsCarryCorrelationID: an audit record names the request
// that wrote its event (X-Request-Id), so a support engineer can go from a
// row of the audit log to the request's logs.
func TestAuditRecordsCarryCorrelationID(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.addUser("contoso", "admin", "alice", "US", "Member")
	tok := token(t, "contoso", "admin")
	r := e.must(http.StatusOK, req{Method: "PUT", Path: "/v1/tenants/contoso/users/alice/roles", Token: tok, Body: map[string]any{"roles": []string{"LicenseAdministrator"}}})
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("no X-Request-Id")
	}
	var recs []history.Record
	r = e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/audit?order=desc&limit=1", Token: tok})
	if err := json.Unmarshal(r.Body, &recs); err != nil || len(recs) != 1 {
		t.Fatalf("%v: %s", err, r.Body)
	}
	if recs[0].Type != "AdminRolesChanged" || recs[0].CorrelationID != id {
		t.Fatalf("the record %s has correlationId %q, want the request's %q", recs[0].Type, recs[0].CorrelationID, id)
	}
}
