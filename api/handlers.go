package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
)

// CommandAnswer is the answer of every command endpoint.
type CommandAnswer struct {
	// Version is the tenant stream's version after the command.
	Version uint64 `json:"version"`
	// Events are the events the command appended (JSON envelopes).
	Events []json.RawMessage `json:"events"`
	// ID names the resource a create made (tenant, user, group, subscription).
	ID string `json:"id,omitempty"`
	// RedirectURL is the vendor's install page (apps/{sku}/install).
	RedirectURL string `json:"redirectUrl,omitempty"`
}

// request is what every command handler starts from: the body, the
// Idempotency-Key and the actor.
type request struct {
	c     *gin.Context
	body  []byte
	key   string
	actor domain.Actor
	// fields maps the field a domain error names to its JSON path in this
	// request's body, where the two differ (nil: they do not).
	fields func(string) string
}

// begin reads the body and the Idempotency-Key and decodes the body into v
// (nil: the endpoint takes no body; an empty body or {} is accepted).
func (s *Server) begin(c *gin.Context, v any, required bool) (*request, bool) {
	if err := CheckQuery(c); err != nil { // commands take no query parameters
		WriteProblem(c, err)
		return nil, false
	}
	key, err := idempotencyKey(c)
	if err != nil {
		WriteProblem(c, err)
		return nil, false
	}
	body, err := readBody(c)
	if err != nil {
		WriteProblem(c, err)
		return nil, false
	}
	if v == nil {
		v = &struct{}{}
	}
	if err := decodeBody(body, v, required); err != nil {
		WriteProblem(c, err)
		return nil, false
	}
	return &request{c: c, body: body, key: key, actor: ActorOf(c)}, true
}

// ids validates path parameters: pairs of (param, field name).
func ids(c *gin.Context, pairs ...string) ([]string, bool) {
	out := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		v, err := pathID(c, pairs[i], pairs[i+1])
		if err != nil {
			WriteProblem(c, err)
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// exec fills the command's metadata, runs it and answers.
func (s *Server) exec(r *request, tenantID string, status int, cmd domain.Command, createdID string) {
	c := r.c
	m := domain.Meta(cmd)
	m.TenantID = tenantID
	m.Actor = r.actor
	m.CorrelationID = RequestIDOf(c)
	if r.key != "" {
		// Only a command a client may retry carries a request hash: the
		// tenant remembers it (domain: Tenant.Commands) to answer the retry.
		m.RequestHash = RequestHash(c.Request.Method, c.Request.URL.Path, r.body)
		m.CommandID = CommandID(tenantID, r.actor, r.key)
	} else {
		m.CommandID = newID("command", "", domain.Actor{}, "")
	}
	res, err := s.cfg.Commands.Handle(c.Request.Context(), cmd)
	if err != nil {
		WriteProblem(c, r.inTermsOfRequest(err))
		return
	}
	ans, err := answer(res)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	ans.ID = createdID
	if res.Replayed {
		c.Writer.Header().Set(HeaderReplayed, "true")
	}
	size := 96 + len(ans.ID) + len(ans.RedirectURL)
	for _, e := range ans.Events {
		size += len(e) + 1
	}
	b, err := ans.appendJSON(make([]byte, 0, size))
	if err != nil {
		WriteProblem(c, err)
		return
	}
	c.Writer.Header().Set("Content-Type", "application/json")
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(b)
}

// appendJSON appends the answer as writeJSON would encode it, without
// re-scanning the events: they are the compact JSON the event encoder wrote
// (re-validating and compacting them was a tenth of a command's CPU time).
func (a CommandAnswer) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, a.Version, 10)
	b = append(b, `,"events":[`...)
	for i, e := range a.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	b = append(b, ']')
	for _, f := range [...]struct{ name, value string }{{"id", a.ID}, {"redirectUrl", a.RedirectURL}} {
		if f.value == "" {
			continue
		}
		v, err := eventcodec.MarshalNoEscapeHTML(f.value)
		if err != nil {
			return nil, err
		}
		b = append(append(append(append(b, `,"`...), f.name...), `":`...), v...)
	}
	return append(b, "}\n"...), nil
}

// inTermsOfRequest restates a domain error in the request's terms: the
// field as the body's JSON path, and a reused Idempotency-Key named as the
// client sent it (the domain knows only the command id derived from it).
func (r *request) inTermsOfRequest(err error) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	out := *de // a copy: domain errors may be shared values
	switch {
	case de.Code == domain.CodeIdempotencyKeyReused:
		out.Field = HeaderIdempotencyKey
		out.Detail = fmt.Sprintf("Idempotency-Key %q was already used for another request (another method, path or body); "+
			"send a new key for a new request", Bounded(r.key))
	case r.fields != nil && de.Field != "":
		out.Field = r.fields(de.Field)
	default:
		return err
	}
	return &out
}

func answer(res commands.Result) (CommandAnswer, error) {
	ans := CommandAnswer{Version: res.Version, Events: make([]json.RawMessage, 0, len(res.Events))}
	for i, e := range res.Events {
		var b []byte
		if i < len(res.Raw) {
			b = res.Raw[i]
		}
		if b == nil {
			var err error
			if b, err = domain.EncodeEvent(e); err != nil {
				return CommandAnswer{}, err
			}
		}
		ans.Events = append(ans.Events, b)
		if p, ok := e.Payload.(domain.AppInstalled); ok {
			ans.RedirectURL = p.RedirectURL
		}
	}
	return ans, nil
}

// ---- request bodies

// NewUserRequest is a user to create.
type NewUserRequest struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	UserType          string `json:"userType"`
	UsageLocation     string `json:"usageLocation"`
}

func (u NewUserRequest) toDomain() domain.NewUser {
	return domain.NewUser{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
		UserType: u.UserType, UsageLocation: u.UsageLocation}
}

// LicenseRequest is a product to give (Graph addLicenses item).
type LicenseRequest struct {
	SkuID         string   `json:"skuId"`
	DisabledPlans []string `json:"disabledPlans"`
}

func licenses(in []LicenseRequest) []domain.LicenseRequest {
	out := make([]domain.LicenseRequest, len(in))
	for i, l := range in {
		out[i] = domain.LicenseRequest{SkuID: l.SkuID, DisabledPlans: l.DisabledPlans}
	}
	return out
}

// ---- tenants and users

type createTenantRequest struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	GlobalAdmin *NewUserRequest `json:"globalAdmin"`
}

func (s *Server) createTenant(c *gin.Context) {
	var body createTenantRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	if body.GlobalAdmin == nil {
		WriteProblem(c, invalidRequest("globalAdmin", "globalAdmin is required: the tenant's first Global admin"))
		return
	}
	if body.ID == "" {
		body.ID = newID("tenant", "", r.actor, r.key)
	}
	if body.GlobalAdmin.ID == "" {
		body.GlobalAdmin.ID = newID("user", body.ID, r.actor, r.key)
	}
	r.fields = func(f string) string {
		if f == "usageLocation" { // the domain's check of any user's
			return "globalAdmin.usageLocation"
		}
		return f
	}
	s.exec(r, body.ID, http.StatusCreated, &domain.CreateTenant{Name: body.Name, GlobalAdmin: body.GlobalAdmin.toDomain()}, body.ID)
}

func (s *Server) addUser(c *gin.Context) {
	var body NewUserRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	t := TenantOf(c)
	if body.ID == "" {
		body.ID = newID("user", t, r.actor, r.key)
	}
	r.fields = func(f string) string { return strings.TrimPrefix(f, "user.") } // the body is the user
	s.exec(r, t, http.StatusCreated, &domain.AddUser{User: body.toDomain()}, body.ID)
}

type updateUserRequest struct {
	DisplayName   string `json:"displayName"`
	UsageLocation string `json:"usageLocation"`
}

func (s *Server) updateUser(c *gin.Context) {
	var body updateUserRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "u", "userId")
	if !ok {
		return
	}
	if body.DisplayName == "" && body.UsageLocation == "" {
		WriteProblem(c, invalidRequest("body", "give displayName or usageLocation"))
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.UpdateUser{UserID: p[0], DisplayName: body.DisplayName, UsageLocation: body.UsageLocation}, "")
}

func (s *Server) deleteUser(c *gin.Context) {
	r, ok := s.begin(c, nil, false)
	if !ok {
		return
	}
	p, ok := ids(c, "u", "userId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.DeleteUser{UserID: p[0]}, "")
}

func (s *Server) restoreUser(c *gin.Context) {
	r, ok := s.begin(c, nil, false)
	if !ok {
		return
	}
	p, ok := ids(c, "u", "userId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.RestoreUser{UserID: p[0]}, "")
}

type rolesRequest struct {
	Roles *[]domain.Role `json:"roles"`
}

func (s *Server) setRoles(c *gin.Context) {
	var body rolesRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "u", "userId")
	if !ok {
		return
	}
	if body.Roles == nil {
		WriteProblem(c, invalidRequest("roles", "roles is required ([] removes every admin role)"))
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.SetAdminRoles{UserID: p[0], Roles: *body.Roles}, "")
}

type retentionHoldRequest struct {
	Enabled *bool `json:"enabled"`
}

func (s *Server) setRetentionHold(c *gin.Context) {
	var body retentionHoldRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "u", "userId")
	if !ok {
		return
	}
	if body.Enabled == nil {
		WriteProblem(c, invalidRequest("enabled", "enabled (true or false) is required"))
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.SetRetentionHold{UserID: p[0], Enabled: *body.Enabled}, "")
}

// ---- groups

type createGroupRequest struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

func (s *Server) createGroup(c *gin.Context) {
	var body createGroupRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	t := TenantOf(c)
	if body.ID == "" {
		body.ID = newID("group", t, r.actor, r.key)
	}
	s.exec(r, t, http.StatusCreated, &domain.CreateGroup{GroupID: body.ID, DisplayName: body.DisplayName}, body.ID)
}

func (s *Server) addGroupMember(c *gin.Context) {
	r, ok := s.begin(c, nil, false)
	if !ok {
		return
	}
	p, ok := ids(c, "g", "groupId", "u", "userId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.AddGroupMember{GroupID: p[0], UserID: p[1]}, "")
}

func (s *Server) removeGroupMember(c *gin.Context) {
	r, ok := s.begin(c, nil, false)
	if !ok {
		return
	}
	p, ok := ids(c, "g", "groupId", "u", "userId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.RemoveGroupMember{GroupID: p[0], UserID: p[1]}, "")
}

type assignLicenseRequest struct {
	AddLicenses    []LicenseRequest `json:"addLicenses"`
	RemoveLicenses []string         `json:"removeLicenses"`
}

func (s *Server) assignGroupLicenses(c *gin.Context) {
	var body assignLicenseRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "g", "groupId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.AssignGroupLicenses{GroupID: p[0], Add: licenses(body.AddLicenses), Remove: body.RemoveLicenses}, "")
}

// ---- subscriptions

// ServicePlanRequest is a service plan of an ISV app.
type ServicePlanRequest struct {
	ServicePlanID   string `json:"servicePlanId"`
	ServicePlanName string `json:"servicePlanName"`
	DisplayName     string `json:"displayName"`
	Workload        string `json:"workload"`
}

// AppRequest is an ISV app bought with a subscription (R12).
type AppRequest struct {
	SkuID         string               `json:"skuId"`
	SkuPartNumber string               `json:"skuPartNumber"`
	DisplayName   string               `json:"displayName"`
	Publisher     string               `json:"publisher"`
	InstallURL    string               `json:"installUrl"`
	ServicePlans  []ServicePlanRequest `json:"servicePlans"`
}

type purchaseRequest struct {
	ID          string      `json:"id"`
	SkuID       string      `json:"skuId"`
	Quantity    *quantity   `json:"quantity"`
	Kind        string      `json:"kind"`
	Channel     string      `json:"channel"`
	PurchasedBy string      `json:"purchasedBy"`
	Product     *AppRequest `json:"product"`
}

func (s *Server) purchase(c *gin.Context) {
	var body purchaseRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	n, err := s.quantity(body.Quantity)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	t := TenantOf(c)
	if body.ID == "" {
		body.ID = newID("subscription", t, r.actor, r.key)
	}
	cmd := &domain.PurchaseSubscription{SubscriptionID: body.ID, SkuID: body.SkuID, Quantity: n,
		Kind: body.Kind, Channel: body.Channel, PurchasedBy: body.PurchasedBy}
	if a := body.Product; a != nil {
		app := &domain.Product{SkuID: a.SkuID, SkuPartNumber: a.SkuPartNumber, DisplayName: a.DisplayName,
			Publisher: a.Publisher, InstallURL: a.InstallURL, ServicePlans: []domain.ServicePlan{}}
		for _, sp := range a.ServicePlans {
			app.ServicePlans = append(app.ServicePlans, domain.ServicePlan{ID: sp.ServicePlanID, Name: sp.ServicePlanName,
				DisplayName: sp.DisplayName, Workload: sp.Workload})
		}
		cmd.App = app
	}
	s.exec(r, t, http.StatusCreated, cmd, body.ID)
}

type patchSubscriptionRequest struct {
	Quantity *quantity `json:"quantity"`
	Status   *string   `json:"status"`
}

func (s *Server) patchSubscription(c *gin.Context) {
	var body patchSubscriptionRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "s", "subscriptionId")
	if !ok {
		return
	}
	switch {
	case body.Quantity != nil && body.Status != nil:
		WriteProblem(c, invalidRequest("status", "change quantity or status, not both in one request"))
	case body.Quantity != nil:
		n, err := s.quantity(body.Quantity)
		if err != nil {
			WriteProblem(c, err)
			return
		}
		s.exec(r, TenantOf(c), http.StatusOK, &domain.ChangeSubscriptionQuantity{SubscriptionID: p[0], Quantity: n}, "")
	case body.Status != nil:
		s.exec(r, TenantOf(c), http.StatusOK, &domain.ChangeSubscriptionStatus{SubscriptionID: p[0], Status: *body.Status}, "")
	default:
		WriteProblem(c, invalidRequest("quantity", "give quantity or status"))
	}
}

func (s *Server) takeOver(c *gin.Context) {
	r, ok := s.begin(c, nil, false)
	if !ok {
		return
	}
	p, ok := ids(c, "s", "subscriptionId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.TakeOverSubscription{SubscriptionID: p[0]}, "")
}

// ---- licenses

type bulkAssignRequest struct {
	Users         []string `json:"users"`
	DisabledPlans []string `json:"disabledPlans"`
}

func (s *Server) assignLicenses(c *gin.Context) {
	var body bulkAssignRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "sku", "skuId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.AssignLicenses{SkuID: p[0], Users: body.Users, DisabledPlans: body.DisabledPlans}, "")
}

type bulkUnassignRequest struct {
	Users []string `json:"users"`
}

func (s *Server) unassignLicenses(c *gin.Context) {
	var body bulkUnassignRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "sku", "skuId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.UnassignLicenses{SkuID: p[0], Users: body.Users}, "")
}

func (s *Server) updateUserLicenses(c *gin.Context) {
	var body assignLicenseRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "u", "userId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.UpdateUserLicenses{UserID: p[0], Add: licenses(body.AddLicenses), Remove: body.RemoveLicenses}, "")
}

type manageLicensesRequest struct {
	Users       []string         `json:"users"`
	Mode        string           `json:"mode"`
	AddLicenses []LicenseRequest `json:"addLicenses"`
}

func (s *Server) manageLicenses(c *gin.Context) {
	var body manageLicensesRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.ManageLicenses{Users: body.Users, Mode: body.Mode, Add: licenses(body.AddLicenses)}, "")
}

type licensePlansRequest struct {
	// DisabledPlans is required: [] turns every plan on; absent or null
	// would too if taken as empty, so it is refused instead.
	DisabledPlans *[]string `json:"disabledPlans"`
}

func (s *Server) changeLicensePlans(c *gin.Context) {
	var body licensePlansRequest
	r, ok := s.begin(c, &body, true)
	if !ok {
		return
	}
	p, ok := ids(c, "u", "userId", "sku", "skuId")
	if !ok {
		return
	}
	if body.DisabledPlans == nil {
		WriteProblem(c, invalidRequest("disabledPlans", "disabledPlans is required: the plans to turn off ([] turns every plan on)"))
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.ChangeLicensePlans{UserID: p[0], SkuID: p[1], DisabledPlans: *body.DisabledPlans}, "")
}

func (s *Server) installApp(c *gin.Context) {
	r, ok := s.begin(c, nil, false)
	if !ok {
		return
	}
	p, ok := ids(c, "sku", "skuId")
	if !ok {
		return
	}
	s.exec(r, TenantOf(c), http.StatusOK, &domain.InstallApp{SkuID: p[0]}, "")
}
