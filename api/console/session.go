package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/seatledger/seatledger/i18n"
)

// The console's cookies.
const (
	sessionCookie = "seatledger_session" // the bearer token
	langCookie    = "seatledger_lang"    // the language chosen with the switcher
)

// Admin roles as the API names them (/me's roles).
const (
	roleGlobalAdmin  = "GlobalAdministrator"
	roleLicenseAdmin = "LicenseAdministrator"
	roleUserAdmin    = "UserAdministrator"
	roleBillingAdmin = "BillingAdministrator"
)

// session is who is signed in, as far as the console needs to know to draw
// a page. The API decides what they may do on every call.
type session struct {
	Token    string
	Lang     i18n.Lang
	Operator bool     // the token is not a tenant user's JWT
	Tenant   string   // the token's tid (not verified here; the API does)
	User     string   // the token's sub
	Name     string   // display name (or user principal name) from /me
	Roles    []string // from /me
}

// Admin reports whether the person holds one of roles (the operator holds
// them all).
func (s *session) Admin(roles ...string) bool {
	if s.Operator {
		return true
	}
	if len(roles) == 0 {
		roles = adminRoles
	}
	for _, r := range roles {
		if slices.Contains(s.Roles, r) {
			return true
		}
	}
	return false
}

var adminRoles = []string{roleGlobalAdmin, roleLicenseAdmin, roleUserAdmin, roleBillingAdmin}

// start is the page a person lands on after signing in.
func (s *session) start() string {
	switch {
	case s.Operator:
		return "/console/tenants"
	case s.Admin():
		return "/console/t/" + url.PathEscape(s.Tenant) + "/licenses"
	default:
		return "/console/t/" + url.PathEscape(s.Tenant) + "/me"
	}
}

// claims reads the tid and sub of a JWT without verifying it: only to know
// which tenant to ask; the API verifies the token on every call. ok is false
// for what is not a JWT with a tid (the operator token).
func claims(token string) (tenant, user string, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", "", false
	}
	var c struct {
		Tid string `json:"tid"`
		Sub string `json:"sub"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Tid == "" {
		return "", "", false
	}
	return c.Tid, c.Sub, true
}

// me is the part of GET /v1/tenants/{t}/me a session needs.
type meAnswer struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	Roles             []string `json:"roles"`
}

// open checks token with the API and answers the session it is: a tenant
// token must read its /me, the operator token the tenant list. The error is
// the API's *problem (401 for a bad token).
func (c *Console) open(r *http.Request, token string) (*session, error) {
	s := &session{Token: token, Lang: language(r)}
	if tenant, user, ok := claims(token); ok {
		s.Tenant, s.User = tenant, user
		var me meAnswer
		if _, err := c.get(r.Context(), s, "/v1/tenants/"+url.PathEscape(tenant)+"/me", &me); err != nil && !unavailable(err) {
			return nil, err
		}
		s.Name, s.Roles = me.DisplayName, me.Roles
		if s.Name == "" {
			s.Name = me.UserPrincipalName
		}
		return s, nil
	}
	s.Operator = true
	if _, err := c.get(r.Context(), s, "/v1/tenants?limit=1", nil); err != nil && !unavailable(err) {
		return nil, err
	}
	return s, nil
}

// unavailable reports a 503 of the API: the token was accepted (auth runs
// before the handler) but the read models are not ready yet, as at the
// first seconds of a server. The session holds; its pages show the 503
// until the read models catch up (without /me, a tenant user's roles are
// unknown and the navigation shows only their own pages meanwhile).
func unavailable(err error) bool {
	p, ok := err.(*problem)
	return ok && p.Status == http.StatusServiceUnavailable
}

// current is the request's session, checked with the API; nil when nobody
// is signed in or the token no longer holds.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	s, err := c.open(r, ck.Value)
	if err != nil {
		return nil
	}
	return s
}

func setSession(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: overHTTPS(r)})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: overHTTPS(r)})
}

// overHTTPS reports whether the browser reached the console over HTTPS:
// TLS here, or a proxy's (X-Forwarded-Proto: https, as api/graph.go reads
// it; serve has no TLS of its own). A forged header only makes the
// cookie stricter.
func overHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// csrfToken is the CSRF token of the forms of a page: HMAC-SHA256 of the
// session cookie's value (empty before sign-in, where the cross-origin
// check and SameSite do the work).
func (c *Console) csrfToken(r *http.Request) string {
	value := ""
	if ck, err := r.Cookie(sessionCookie); err == nil {
		value = ck.Value
	}
	m := hmac.New(sha256.New, c.cfg.CSRFKey)
	m.Write([]byte("seatledger console csrf\x00" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK reports whether a POST carries the csrf field of its session.
func (c *Console) csrfOK(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(c.csrfToken(r)))
}

// language is the person's language: the switcher's cookie, else the
// browser's Accept-Language.
func language(r *http.Request) i18n.Lang {
	if ck, err := r.Cookie(langCookie); err == nil {
		if l, ok := i18n.Parse(ck.Value); ok {
			return l
		}
	}
	return i18n.Negotiate(r.Header.Get("Accept-Language"))
}

// setLang answers the language switcher's links: GET
// /console/lang?to=fr&back=/console/… sets the cookie and goes back.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	if l, ok := i18n.Parse(r.URL.Query().Get("to")); ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: overHTTPS(r)})
	}
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath is back if it is a path of the console, else /.
func localPath(back string) string {
	if strings.HasPrefix(back, "/console/") && !strings.ContainsAny(back, "\\\r\n") {
		return back
	}
	return "/"
}

// home answers / : the signed-in person's start page, else sign-in.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	s := c.current(r)
	if s == nil {
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, s.start(), http.StatusSeeOther)
}
