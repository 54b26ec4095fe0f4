package console

import (
	"net/http"
	"net/url"
	"strings"
)

// signinData is the sign-in page's: the dev picker when Config.DevSignIn
// is set.
type signinData struct {
	Dev     bool
	Tenants []devTenant
}

type devTenant struct {
	ID, Name string
	Users    []devUser
}

type devUser struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	Roles             []string `json:"roles"`
}

// signinPage shows the token form, and in development the picker.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, nil)
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, p *problem) {
	v := c.newView(r, nil, msg("signin.title"))
	v.Problem = p
	d := &signinData{}
	if c.cfg.DevSignIn != nil {
		d.Dev = true
		d.Tenants = c.devTenants(r)
	}
	v.Data = d
	c.render(w, status, "signin", v)
}

// devTenants lists up to 20 tenants and 50 users of each, read with the
// operator token, for the picker.
func (c *Console) devTenants(r *http.Request) []devTenant {
	op, err := c.cfg.DevSignIn("", "")
	if err != nil {
		c.cfg.Logger.Warn("console: dev sign-in: operator token", "err", err)
		return nil
	}
	s := &session{Token: op, Operator: true, Lang: language(r)}
	var tenants []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if _, err := c.get(r.Context(), s, "/v1/tenants?limit=20", &tenants); err != nil {
		c.cfg.Logger.Warn("console: dev sign-in: tenants", "err", err)
		return nil
	}
	out := make([]devTenant, 0, len(tenants))
	for _, t := range tenants {
		dt := devTenant{ID: t.ID, Name: t.Name}
		if _, err := c.get(r.Context(), s, "/v1/tenants/"+url.PathEscape(t.ID)+"/users?limit=50", &dt.Users); err != nil {
			c.cfg.Logger.Warn("console: dev sign-in: users", "tenant", t.ID, "err", err)
		}
		out = append(out, dt)
	}
	return out
}

// signin takes a pasted token: it holds if the API answers with it.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	c.start(w, r, strings.TrimSpace(r.PostFormValue("token")))
}

// devSignin mints a token with Config.DevSignIn: operator=1 for the
// operator, else tenant and user.
func (c *Console) devSignin(w http.ResponseWriter, r *http.Request) {
	if c.cfg.DevSignIn == nil {
		http.NotFound(w, r)
		return
	}
	tenant, user := r.PostFormValue("tenant"), r.PostFormValue("user")
	if r.PostFormValue("operator") != "" {
		tenant, user = "", ""
	}
	token, err := c.cfg.DevSignIn(tenant, user)
	if err != nil {
		c.renderSignin(w, r, http.StatusBadRequest, &problem{Status: http.StatusBadRequest, Detail: err.Error()})
		return
	}
	c.start(w, r, token)
}

// start signs in with token, if the API accepts it.
func (c *Console) start(w http.ResponseWriter, r *http.Request, token string) {
	if token == "" {
		v := c.newView(r, nil, "")
		c.renderSignin(w, r, http.StatusBadRequest, &problem{Status: http.StatusBadRequest, Field: "token", Detail: v.T("signin.empty")})
		return
	}
	s, err := c.open(r, token)
	if err != nil {
		p, ok := err.(*problem)
		if !ok {
			c.cfg.Logger.Error("console: sign in", "err", err)
			p = &problem{Status: http.StatusInternalServerError, Detail: err.Error()}
		}
		c.renderSignin(w, r, p.Status, p)
		return
	}
	setSession(w, r, token)
	http.Redirect(w, r, s.start(), http.StatusSeeOther)
}

// signout forgets the token.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	clearSession(w, r)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
