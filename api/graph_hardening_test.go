package api_test

import (
	"net/http"
	"testing"
)

// TestGraphWritesCheckRolesBeforeLookups: a token of the tenant whose user
// may not read it (no admin role, deleted, or not a user at all) gets 403
// from a Graph write whatever the path and body name: the answer must not
// tell it which users, groups and products the tenant has (404 for a
// missing user, 400 for a product the tenant lacks, 403 otherwise would).
func TestGraphWritesCheckRolesBeforeLookups(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.buy("contoso", "admin", "s1", "SPB", 5)
	e.addUser("contoso", "admin", "bob", "US", "Member")
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: token(t, "contoso", "admin"), Body: `{"id":"g1","displayName":"G"}`})
	before := e.version("contoso")
	add := func(sku string) string {
		return `{"addLicenses":[{"skuId":"` + sku + `"}],"removeLicenses":[]}`
	}
	for _, who := range []string{"bob", "ghost"} {
		tok := token(t, "contoso", who)
		for _, c := range []struct{ name, path, body string }{
			{"a user that exists", "/users/admin/assignLicense", add("SPB")},
			{"a user that does not", "/users/nobody/assignLicense", add("SPB")},
			{"a product the tenant lacks", "/users/admin/assignLicense", add("ENTERPRISEPACK")},
			{"a group that exists", "/groups/g1/assignLicense", add("SPB")},
			{"a group that does not", "/groups/nog/assignLicense", add("SPB")},
			{"a group and a product the tenant lacks", "/groups/g1/assignLicense", add("ENTERPRISEPACK")},
		} {
			t.Run(who+" "+c.name, func(t *testing.T) {
				graphError(t, e.graph("POST", c.path, tok, c.body), http.StatusForbidden, "Authorization_RequestDenied")
			})
		}
	}
	if v := e.version("contoso"); v != before {
		t.Fatalf("refused writes wrote: version %d -> %d", before, v)
	}
}
