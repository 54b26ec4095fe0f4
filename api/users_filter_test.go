package api_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/queries"
)

// usersOf lists the users of path (every page, following X-Next-Cursor)
// once the read models applied version v, and returns their ids in order.
func usersOf(t *testing.T, e *env, tok, path string, v uint64) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatalf("GET %s: more than 50 pages", path)
		}
		p := path + "&minVersion=" + strconv.FormatUint(v, 10)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		a := e.must(200, req{Method: "GET", Path: p, Token: tok})
		var rows []queries.UserSummary
		if err := json.Unmarshal(a.Body, &rows); err != nil {
			t.Fatalf("GET %s: %v: %s", p, err, a.Body)
		}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		if cursor = a.Header.Get("X-Next-Cursor"); cursor == "" {
			return ids
		}
	}
}

// TestUsersFiltersSearchAndOrder: GET /users filters by userType, status,
// licensed, skuId and licenseState, searches a prefix of the display name
// or the UPN with case and accents folded, orders by display name or UPN,
// pages through every filter, refuses bad values naming the parameter, and
// a rename, a delete and a license move a user in the indexes.
func TestUsersFiltersSearchAndOrder(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	e.createTenant("fab")
	const c = "/v1/tenants/fab"
	tok := token(t, "fab", "admin")
	add := func(id, name, upn, typ string) {
		e.must(201, req{Method: "POST", Path: c + "/users", Token: tok, Body: map[string]any{
			"id": id, "displayName": name, "userPrincipalName": upn + "@fab.example", "userType": typ, "usageLocation": "FR"}})
	}
	add("elodie", "Élodie Durand", "elodie.durand", "Member")
	add("eloise", "ELOÏSE Martin", "eloise", "Guest")
	add("zoe", "Zoë Adams", "adams.z", "Member")
	add("bob", "Bob Élan", "bob", "Member")
	add("carl", "carl Elm", "carl", "Member")
	add("dan", "Dan Gone", "dan", "Member")
	for i := 1; i <= 7; i++ {
		add("p"+strconv.Itoa(i), "Pat "+strconv.Itoa(i), "pat"+strconv.Itoa(i), "Member")
	}
	e.must(200, req{Method: "DELETE", Path: c + "/users/dan", Token: tok})
	e.buy("fab", "admin", "s1", "SPE_E3", 5)
	e.buy("fab", "admin", "s2", "POWER_BI_PRO", 1)
	e.must(200, req{Method: "POST", Path: c + "/licenses/SPE_E3/assign", Token: tok, Body: map[string]any{"users": []string{"elodie", "bob"}}})
	e.must(201, req{Method: "POST", Path: c + "/groups", Token: tok, Body: `{"id":"g1","displayName":"BI"}`})
	e.must(200, req{Method: "POST", Path: c + "/groups/g1/assignLicense", Token: tok, Body: `{"addLicenses":[{"skuId":"POWER_BI_PRO"}]}`})
	e.must(200, req{Method: "PUT", Path: c + "/groups/g1/members/zoe", Token: tok})
	e.must(200, req{Method: "PUT", Path: c + "/groups/g1/members/carl", Token: tok}) // one seat: carl is in error (R11)
	v := e.version("fab")

	pats := []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7"}
	for q, want := range map[string][]string{
		"userType=Guest": {"eloise"},
		"userType=Member&status=active&licensed=false": append([]string{"admin", "carl"}, pats...),
		"status=deleted":          {"dan"},
		"licensed=true":           {"bob", "elodie", "zoe"},
		"skuId=SPE_E3":            {"bob", "elodie"},
		"skuId=ENTERPRISEPREMIUM": nil, // a catalog product the tenant holds none of
		"skuId=POWER_BI_PRO&orderBy=userPrincipalName": {"zoe", "carl"},
		"licenseState=error":                           {"carl"},
		"search=ELO":                                   {"elodie", "eloise"},
		"search=%C3%A9lo":                              {"elodie", "eloise"}, // "élo"
		"search=adams":                                 {"zoe"},              // the UPN's prefix
		"search=zoe":                                   {"zoe"},              // "Zoë"
		"search=elan":                                  nil,                  // not a prefix of "Bob Élan"
		"search=elo&userType=Member":                   {"elodie"},
		"search=pat&limit=3":                           pats,
		"search=pat&orderBy=userPrincipalName&limit=2": pats,
		"userType=Member&limit=2":                      append([]string{"admin", "bob", "carl", "dan", "elodie"}, append(pats, "zoe")...),
		"orderBy=userPrincipalName&limit=4":            append([]string{"zoe", "admin", "bob", "carl", "dan", "elodie", "eloise"}, pats...),
		"orderBy=displayName&status=active&limit=5":    append([]string{"admin", "bob", "carl", "elodie", "eloise"}, append(pats, "zoe")...),
	} {
		got := usersOf(t, e, tok, c+"/users?"+q, v)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("GET users?%s: %v, want %v", q, got, want)
		}
	}

	// Pages of a filtered list are the list cut in order.
	a := e.must(200, req{Method: "GET", Path: c + "/users?search=pat&limit=3", Token: tok})
	if a.Header.Get("X-Next-Cursor") == "" || !strings.Contains(a.Header.Get("Link"), "search=pat") {
		t.Errorf("first page of a search: X-Next-Cursor %q, Link %q", a.Header.Get("X-Next-Cursor"), a.Header.Get("Link"))
	}
	upnCursor := e.must(200, req{Method: "GET", Path: c + "/users?orderBy=userPrincipalName&limit=1", Token: tok}).Header.Get("X-Next-Cursor")
	idCursor := e.must(200, req{Method: "GET", Path: c + "/users?limit=1", Token: tok}).Header.Get("X-Next-Cursor")

	for q, field := range map[string]string{
		"userType=Robot":                     "userType",
		"userType=":                          "userType",
		"status=gone":                        "status",
		"licensed=yes":                       "licensed",
		"licenseState=ok":                    "licenseState",
		"orderBy=id":                         "orderBy",
		"skuId=NOPE":                         "skuId",
		"search=" + strings.Repeat("a", 257): "search",
		"cursor=" + upnCursor + "&userType=Member": "cursor", // a cursor of another order
		"cursor=" + idCursor + "&userType=Member":  "cursor", // the id list's cursor
		"$filter=x": "$filter",
	} {
		p := problem(t, e.do(req{Method: "GET", Path: c + "/users?" + q, Token: tok}), 400, "invalid_request")
		if f, _ := p["field"].(string); f != field {
			t.Errorf("GET users?%.60s: field %q, want %q", q, f, field)
		}
	}

	// A rename, a delete and a license move the user in the indexes.
	e.must(200, req{Method: "PATCH", Path: c + "/users/elodie", Token: tok, Body: `{"displayName":"Zélie Durand"}`})
	e.must(200, req{Method: "DELETE", Path: c + "/users/bob", Token: tok})
	e.must(200, req{Method: "POST", Path: c + "/licenses/SPE_E3/assign", Token: tok, Body: map[string]any{"users": []string{"eloise"}}})
	e.must(200, req{Method: "DELETE", Path: c + "/groups/g1/members/zoe", Token: tok}) // carl gets the seat
	v = e.version("fab")
	for q, want := range map[string][]string{
		"search=elo":                    {"eloise", "elodie"}, // elodie by her UPN now, ordered by her new name
		"userType=Member&status=active": append([]string{"admin", "carl"}, append(pats, "elodie", "zoe")...),
		"search=zel":                    {"elodie"},
		"search=ZE":                     {"elodie"},
		"status=deleted":                {"bob", "dan"},
		"skuId=SPE_E3":                  {"eloise", "elodie"},
		"licensed=true":                 {"carl", "eloise", "elodie"},
		"licenseState=error":            nil,
		"skuId=POWER_BI_PRO":            {"carl"},
	} {
		got := usersOf(t, e, tok, c+"/users?"+q, v)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("after the changes, GET users?%s: %v, want %v", q, got, want)
		}
	}
}
