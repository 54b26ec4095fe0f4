package api_test

import (
	"net/http"
	"testing"
)

// TestProblemDetailsSpeakTheRequestsLanguage sends the same refused
// requests with several Accept-Language headers: the detail is French,
// Chinese or English as asked (English for a language seatledger does not
// speak), Content-Language says which, and nothing else of the problem
// changes: a client matches on code, field, rule and missing, never on the
// detail.
func TestProblemDetailsSpeakTheRequestsLanguage(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	e.addUser("contoso", "admin", "alice", "US", "Member")
	e.addUser("contoso", "admin", "bob", "US", "Member")
	e.addUser("contoso", "admin", "carol", "US", "Member")
	e.buy("contoso", "admin", "s1", "SPB", 1)
	admin, carol := token(t, "contoso", "admin"), token(t, "contoso", "carol")

	type refusal struct {
		name   string
		r      req
		status int
		code   string
		detail map[string]string // by Content-Language
	}
	two := map[string]any{"users": []string{"alice", "bob"}}
	refusals := []refusal{{
		name:   "insufficient licenses (domain, numbers)",
		r:      req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: admin, Body: two},
		status: http.StatusConflict, code: "insufficient_licenses",
		detail: map[string]string{
			"en":    "not enough licenses of Microsoft 365 Business Premium: 1 available, 2 needed; buy 1 more licenses or unassign some",
			"fr":    "pas assez de licences de Microsoft 365 Business Premium : disponibles : 1, nécessaires : 2 ; vous devez acheter 1 licence(s) supplémentaire(s) ou annuler l'attribution de certaines",
			"zh-TW": "Microsoft 365 Business Premium 的授權不足：可用 1 個，需要 2 個；您需要再購買 1 個授權，或取消指派部分授權",
		},
	}, {
		name:   "a role that does not allow it (a translated phrase inside)",
		r:      req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: carol, Body: two},
		status: http.StatusForbidden, code: "not_allowed_for_role",
		detail: map[string]string{
			"en":    "to assign licenses you must be one of GlobalAdministrator, LicenseAdministrator, UserAdministrator; ask a Global admin for the role",
			"fr":    "pour attribuer des licences, vous devez avoir l'un de ces rôles : GlobalAdministrator (administrateur général), LicenseAdministrator (administrateur de licences), UserAdministrator (administrateur d'utilisateurs) ; demandez le rôle à un administrateur général",
			"zh-TW": "若要指派授權，您必須是下列其中一個角色：GlobalAdministrator（全域系統管理員）, LicenseAdministrator（授權系統管理員）, UserAdministrator（使用者系統管理員）；請向全域系統管理員要求此角色",
		},
	}, {
		name:   "an unknown query parameter (the HTTP layer, a field)",
		r:      req{Method: "GET", Path: "/v1/tenants/contoso/events?bogus=1", Token: admin},
		status: http.StatusBadRequest, code: "invalid_request",
		detail: map[string]string{
			"en":    `unknown query parameter "bogus": this endpoint takes fromVersion, cursor, toVersion, limit`,
			"fr":    `paramètre de requête inconnu "bogus" : ce point de terminaison prend fromVersion, cursor, toVersion, limit`,
			"zh-TW": `未知的查詢參數 "bogus"：此端點接受 fromVersion, cursor, toVersion, limit`,
		},
	}}
	headers := []struct{ acceptLanguage, want string }{
		{"fr-FR,fr;q=0.9,en;q=0.8", "fr"},
		{"zh-TW", "zh-TW"},
		{"de-DE,de;q=0.9", "en"},
		{"", "en"},
	}
	for _, rf := range refusals {
		var first map[string]any
		for _, h := range headers {
			r := rf.r
			if h.acceptLanguage != "" {
				r.Header = map[string]string{"Accept-Language": h.acceptLanguage}
			}
			got := e.do(r)
			p := problem(t, got, rf.status, rf.code)
			if cl := got.Header.Get("Content-Language"); cl != h.want {
				t.Errorf("%s, Accept-Language %q: Content-Language %q, want %q", rf.name, h.acceptLanguage, cl, h.want)
			}
			if p["detail"] != rf.detail[h.want] {
				t.Errorf("%s, Accept-Language %q: detail\n %q\nwant\n %q", rf.name, h.acceptLanguage, p["detail"], rf.detail[h.want])
			}
			delete(p, "detail")
			delete(p, "requestId")
			if first == nil {
				first = p
				continue
			}
			for k, v := range first {
				if k != "plans" && p[k] != v {
					t.Errorf("%s, Accept-Language %q: %s is %v, in English %v", rf.name, h.acceptLanguage, k, p[k], v)
				}
			}
			if len(p) != len(first) {
				t.Errorf("%s, Accept-Language %q: members %v, in English %v", rf.name, h.acceptLanguage, p, first)
			}
		}
	}
	if e.version("contoso") == 0 {
		t.Fatal("no tenant")
	}
}

// TestImportRowProblemsSpeakTheRequestsLanguage: the problems of a CSV
// import's rows are problems too, in the language asked for.
func TestImportRowProblemsSpeakTheRequestsLanguage(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	file := "User principal name,Display name,Usage location\n,No Name,US\nann@contoso.example,Ann,US\nann@contoso.example,Ann again,US\n"
	for lang, want := range map[string][]string{
		"":           {"the user principal name is required", `row 2 already has user principal name "ann@contoso.example"`},
		"fr":         {"le nom d'utilisateur principal est obligatoire", `la ligne 2 a déjà le nom d'utilisateur principal "ann@contoso.example"`},
		"zh-Hant-TW": {"使用者主體名稱為必填", `第 2 列已有使用者主體名稱 "ann@contoso.example"`},
	} {
		r := e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users/import?dryRun=true", Token: admin, Body: file,
			Header: map[string]string{"Content-Type": "text/csv", "Accept-Language": lang}})
		a := importAnswer(t, r)
		var got []string
		for _, res := range a.Results {
			if res.Problem != nil {
				got = append(got, res.Problem.Detail)
			}
		}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("Accept-Language %q: row problems %q, want %q", lang, got, want)
		}
	}
}
