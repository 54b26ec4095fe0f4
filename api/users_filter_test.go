package api_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
	add("aaron", "Aaron X", "patx", "Guest") // "pat" finds him by his UPN only
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
		"userType=Guest": {"aaron", "eloise"},
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
		"search=pat&limit=3":                           append([]string{"aaron"}, pats...),
		"search=pat&limit=1":                           append([]string{"aaron"}, pats...),
		"search=pat&userType=Guest&limit=1":            {"aaron"},
		"search=pat&orderBy=userPrincipalName&limit=2": append(pats, "aaron"),
		"userType=Member&limit=2":                      append([]string{"admin", "bob", "carl", "dan", "elodie"}, append(pats, "zoe")...),
		"orderBy=userPrincipalName&limit=4":            append(append([]string{"zoe", "admin", "bob", "carl", "dan", "elodie", "eloise"}, pats...), "aaron"),
		"orderBy=displayName&status=active&limit=5":    append([]string{"aaron", "admin", "bob", "carl", "elodie", "eloise"}, append(pats, "zoe")...),
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

// TestReadSideGaps: the product page lists the groups giving the product,
// the user view names its service plans and says until when a deleted user
// can be restored, and an ISV app's page says whether it is installed.
func TestReadSideGaps(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	const c = "/v1/tenants/contoso"
	tok := token(t, "contoso", "admin")
	e.must(200, req{Method: "DELETE", Path: c + "/users/u12", Token: tok})
	app := map[string]any{"skuId": "contoso-crm", "skuPartNumber": "CRM", "displayName": "CRM", "publisher": "Vendor Inc",
		"installUrl": "https://vendor.example/install", "servicePlans": []map[string]any{{"servicePlanId": "crm-core", "servicePlanName": "CRM_CORE"}}}
	e.must(201, req{Method: "POST", Path: c + "/subscriptions", Token: tok, Body: map[string]any{"id": "app1", "quantity": 5, "channel": "Vendor", "product": app}})
	mv := "?minVersion=" + strconv.FormatUint(e.version("contoso"), 10)
	get := func(path string, v any) {
		t.Helper()
		if err := json.Unmarshal(e.must(200, req{Method: "GET", Path: c + path, Token: tok}).Body, v); err != nil {
			t.Fatal(err)
		}
	}

	var bi struct {
		Users  []map[string]any `json:"users"`
		Groups []struct {
			ID          string `json:"id"`
			DisplayName string `json:"displayName"`
			MemberCount int    `json:"memberCount"`
		} `json:"groups"`
	}
	get("/licenses/POWER_BI_PRO"+mv, &bi)
	if len(bi.Groups) != 1 || bi.Groups[0].ID != "g1" || bi.Groups[0].DisplayName != "Analysts" || bi.Groups[0].MemberCount != 3 || len(bi.Users) != 3 {
		t.Errorf("POWER_BI_PRO: groups %+v, %d users", bi.Groups, len(bi.Users))
	}
	var e3 map[string]any
	get("/licenses/SPE_E3"+mv, &e3)
	if g, ok := e3["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("SPE_E3 groups %v, want []", e3["groups"])
	}
	if _, ok := e3["installed"]; ok {
		t.Errorf("a catalog product says installed: %v", e3["installed"])
	}

	var u1 struct {
		Licenses []struct {
			EnabledPlans []string `json:"enabledPlans"`
		} `json:"licenses"`
		ServicePlans []struct {
			SkuID, ServicePlanID, ServicePlanName string
			Enabled                               bool
		} `json:"servicePlans"`
	}
	get("/users/u01"+mv, &u1)
	if len(u1.Licenses) != 1 || len(u1.ServicePlans) != len(u1.Licenses[0].EnabledPlans) || len(u1.ServicePlans) == 0 {
		t.Fatalf("u01: %d licenses, plans %+v", len(u1.Licenses), u1.ServicePlans)
	}
	for _, sp := range u1.ServicePlans {
		if !sp.Enabled || sp.ServicePlanName == "" || sp.ServicePlanName == sp.ServicePlanID || !slices.Contains(u1.Licenses[0].EnabledPlans, sp.ServicePlanID) {
			t.Errorf("u01 plan %+v", sp)
		}
	}

	var gone struct {
		DeletedAt       time.Time  `json:"deletedAt"`
		RestorableUntil *time.Time `json:"restorableUntil"`
	}
	get("/users/u12"+mv, &gone)
	if gone.RestorableUntil == nil || !gone.RestorableUntil.Equal(gone.DeletedAt.Add(30*24*time.Hour)) {
		t.Errorf("deleted u12: deletedAt %s, restorableUntil %v", gone.DeletedAt, gone.RestorableUntil)
	}
	var live map[string]any
	get("/users/u01"+mv, &live)
	if _, ok := live["restorableUntil"]; ok {
		t.Errorf("an active user has restorableUntil %v", live["restorableUntil"])
	}

	var crm map[string]any
	get("/licenses/contoso-crm"+mv, &crm)
	if crm["installed"] != false {
		t.Errorf("app before install: installed %v", crm["installed"])
	}
	e.must(200, req{Method: "POST", Path: c + "/apps/contoso-crm/install", Token: tok})
	get("/licenses/CRM?minVersion="+strconv.FormatUint(e.version("contoso"), 10), &crm)
	if crm["installed"] != true {
		t.Errorf("app after install: installed %v", crm["installed"])
	}
}
