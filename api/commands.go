package api

import (
	"strings"

	"github.com/seatledger/seatledger/domain"
)

// The command endpoints: one function per command route, each turning its
// decoded body (and the path's ids) into a domain command. command (in
// command_adapter.go) does the rest; the route table says which route runs
// which.

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

func createTenant(r *commandRequest, body *createTenantRequest) (commandCall, error) {
	if body.GlobalAdmin == nil {
		return commandCall{}, invalidRequest("globalAdmin", "globalAdmin is required: the tenant's first Global admin")
	}
	if body.ID == "" {
		body.ID = r.newID("tenant", "")
	}
	if body.GlobalAdmin.ID == "" {
		body.GlobalAdmin.ID = r.newID("user", body.ID)
	}
	return commandCall{
		cmd:    &domain.CreateTenant{Name: body.Name, GlobalAdmin: body.GlobalAdmin.toDomain()},
		tenant: body.ID, created: body.ID,
		fields: func(f string) string {
			if f == "usageLocation" { // the domain's check of any user's
				return "globalAdmin.usageLocation"
			}
			return f
		},
	}, nil
}

// addUserRequest is a user to add, with the licenses to give them (the
// admin center's "Add a user": all or nothing).
type addUserRequest struct {
	ID                string           `json:"id"`
	UserPrincipalName string           `json:"userPrincipalName"`
	DisplayName       string           `json:"displayName"`
	UserType          string           `json:"userType"`
	UsageLocation     string           `json:"usageLocation"`
	Licenses          []LicenseRequest `json:"licenses"`
}

func addUser(r *commandRequest, body *addUserRequest) (commandCall, error) {
	if body.ID == "" {
		body.ID = r.newID("user", r.tenant())
	}
	u := NewUserRequest{ID: body.ID, UserPrincipalName: body.UserPrincipalName, DisplayName: body.DisplayName,
		UserType: body.UserType, UsageLocation: body.UsageLocation}
	return commandCall{cmd: &domain.AddUser{User: u.toDomain(), Licenses: licenses(body.Licenses)}, created: body.ID,
		fields: func(f string) string { return strings.TrimPrefix(f, "user.") }}, nil // the body is the user
}

type updateUserRequest struct {
	DisplayName   string `json:"displayName"`
	UsageLocation string `json:"usageLocation"`
}

func updateUser(r *commandRequest, body *updateUserRequest) (commandCall, error) {
	if body.DisplayName == "" && body.UsageLocation == "" {
		return commandCall{}, invalidRequest("body", "give displayName or usageLocation")
	}
	return commandCall{cmd: &domain.UpdateUser{UserID: r.param("u"), DisplayName: body.DisplayName, UsageLocation: body.UsageLocation}}, nil
}

func deleteUser(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.DeleteUser{UserID: r.param("u")}}, nil
}

func restoreUser(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.RestoreUser{UserID: r.param("u")}}, nil
}

type rolesRequest struct {
	Roles *[]domain.Role `json:"roles"`
}

func setRoles(r *commandRequest, body *rolesRequest) (commandCall, error) {
	if body.Roles == nil {
		return commandCall{}, invalidRequest("roles", "roles is required ([] removes every admin role)")
	}
	return commandCall{cmd: &domain.SetAdminRoles{UserID: r.param("u"), Roles: *body.Roles}}, nil
}

type retentionHoldRequest struct {
	Enabled *bool `json:"enabled"`
}

func setRetentionHold(r *commandRequest, body *retentionHoldRequest) (commandCall, error) {
	if body.Enabled == nil {
		return commandCall{}, invalidRequest("enabled", "enabled (true or false) is required")
	}
	return commandCall{cmd: &domain.SetRetentionHold{UserID: r.param("u"), Enabled: *body.Enabled}}, nil
}

// ---- groups

type createGroupRequest struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

func createGroup(r *commandRequest, body *createGroupRequest) (commandCall, error) {
	if body.ID == "" {
		body.ID = r.newID("group", r.tenant())
	}
	return commandCall{cmd: &domain.CreateGroup{GroupID: body.ID, DisplayName: body.DisplayName}, created: body.ID}, nil
}

type renameGroupRequest struct {
	DisplayName *string `json:"displayName"`
}

func renameGroup(r *commandRequest, body *renameGroupRequest) (commandCall, error) {
	if body.DisplayName == nil {
		return commandCall{}, invalidRequest("displayName", "displayName is required: the group's new name")
	}
	return commandCall{cmd: &domain.RenameGroup{GroupID: r.param("g"), DisplayName: *body.DisplayName}}, nil
}

func deleteGroup(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.DeleteGroup{GroupID: r.param("g")}}, nil
}

func addGroupMember(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.AddGroupMember{GroupID: r.param("g"), UserID: r.param("u")}}, nil
}

func removeGroupMember(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.RemoveGroupMember{GroupID: r.param("g"), UserID: r.param("u")}}, nil
}

type assignLicenseRequest struct {
	AddLicenses    []LicenseRequest `json:"addLicenses"`
	RemoveLicenses []string         `json:"removeLicenses"`
}

func assignGroupLicenses(r *commandRequest, body *assignLicenseRequest) (commandCall, error) {
	return commandCall{cmd: &domain.AssignGroupLicenses{GroupID: r.param("g"), Add: licenses(body.AddLicenses), Remove: body.RemoveLicenses}}, nil
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
	// Term is P1M or P1Y (the default); recurringBilling defaults to on
	// for a paid purchase, off for a trial (R16, R17).
	Term             string `json:"term"`
	RecurringBilling *bool  `json:"recurringBilling"`
}

func (s *Server) purchase(r *commandRequest, body *purchaseRequest) (commandCall, error) {
	n, err := s.quantity(body.Quantity)
	if err != nil {
		return commandCall{}, err
	}
	if body.ID == "" {
		body.ID = r.newID("subscription", r.tenant())
	}
	cmd := &domain.PurchaseSubscription{SubscriptionID: body.ID, SkuID: body.SkuID, Quantity: n,
		Kind: body.Kind, Channel: body.Channel, PurchasedBy: body.PurchasedBy,
		Term: body.Term, RecurringBilling: body.RecurringBilling}
	if a := body.Product; a != nil {
		app := &domain.Product{SkuID: a.SkuID, SkuPartNumber: a.SkuPartNumber, DisplayName: a.DisplayName,
			Publisher: a.Publisher, InstallURL: a.InstallURL, ServicePlans: []domain.ServicePlan{}}
		for _, sp := range a.ServicePlans {
			app.ServicePlans = append(app.ServicePlans, domain.ServicePlan{ID: sp.ServicePlanID, Name: sp.ServicePlanName,
				DisplayName: sp.DisplayName, Workload: sp.Workload})
		}
		cmd.App = app
	}
	return commandCall{cmd: cmd, created: body.ID}, nil
}

type patchSubscriptionRequest struct {
	Quantity         *quantity `json:"quantity"`
	Status           *string   `json:"status"`
	RecurringBilling *bool     `json:"recurringBilling"`
}

// patchSubscription changes one thing of a subscription: its quantity
// (R12, R13), its recurring billing (R16; on for an Expired or Disabled
// subscription it reactivates it, R17), or its status (not in the
// contract, kept: {"status":"Deleted"} deletes at once; the documented
// cancel is POST …/cancel).
func (s *Server) patchSubscription(r *commandRequest, body *patchSubscriptionRequest) (commandCall, error) {
	id := r.param("s")
	given := 0
	for _, set := range []bool{body.Quantity != nil, body.Status != nil, body.RecurringBilling != nil} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		field := "status"
		if body.RecurringBilling != nil {
			field = "recurringBilling"
		}
		return commandCall{}, invalidRequest(field, "change one of quantity, recurringBilling or status per request, not several")
	case body.Quantity != nil:
		n, err := s.quantity(body.Quantity)
		if err != nil {
			return commandCall{}, err
		}
		return commandCall{cmd: &domain.ChangeSubscriptionQuantity{SubscriptionID: id, Quantity: n}}, nil
	case body.RecurringBilling != nil:
		return commandCall{cmd: &domain.SetRecurringBilling{SubscriptionID: id, Enabled: *body.RecurringBilling}}, nil
	case body.Status != nil:
		return commandCall{cmd: &domain.ChangeSubscriptionStatus{SubscriptionID: id, Status: *body.Status}}, nil
	}
	return commandCall{}, invalidRequest("quantity", "give quantity or recurringBilling")
}

// cancelSubscription cancels a subscription with a refund within its
// cancellation window, a trial at any time (R16).
func cancelSubscription(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.CancelSubscription{SubscriptionID: r.param("s")}}, nil
}

func takeOver(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.TakeOverSubscription{SubscriptionID: r.param("s")}}, nil
}

// ---- licenses

type bulkAssignRequest struct {
	Users         []string `json:"users"`
	DisabledPlans []string `json:"disabledPlans"`
}

func assignLicenses(r *commandRequest, body *bulkAssignRequest) (commandCall, error) {
	return commandCall{cmd: &domain.AssignLicenses{SkuID: r.param("sku"), Users: body.Users, DisabledPlans: body.DisabledPlans}}, nil
}

type bulkUnassignRequest struct {
	Users []string `json:"users"`
}

func unassignLicenses(r *commandRequest, body *bulkUnassignRequest) (commandCall, error) {
	return commandCall{cmd: &domain.UnassignLicenses{SkuID: r.param("sku"), Users: body.Users}}, nil
}

func updateUserLicenses(r *commandRequest, body *assignLicenseRequest) (commandCall, error) {
	return commandCall{cmd: &domain.UpdateUserLicenses{UserID: r.param("u"), Add: licenses(body.AddLicenses), Remove: body.RemoveLicenses}}, nil
}

type manageLicensesRequest struct {
	Users       []string         `json:"users"`
	Mode        string           `json:"mode"`
	AddLicenses []LicenseRequest `json:"addLicenses"`
}

func manageLicenses(_ *commandRequest, body *manageLicensesRequest) (commandCall, error) {
	return commandCall{cmd: &domain.ManageLicenses{Users: body.Users, Mode: body.Mode, Add: licenses(body.AddLicenses)}}, nil
}

type licensePlansRequest struct {
	// DisabledPlans is required: [] turns every plan on; absent or null
	// would too if taken as empty, so it is refused instead.
	DisabledPlans *[]string `json:"disabledPlans"`
}

func changeLicensePlans(r *commandRequest, body *licensePlansRequest) (commandCall, error) {
	if body.DisabledPlans == nil {
		return commandCall{}, invalidRequest("disabledPlans", "disabledPlans is required: the plans to turn off ([] turns every plan on)")
	}
	return commandCall{cmd: &domain.ChangeLicensePlans{UserID: r.param("u"), SkuID: r.param("sku"), DisabledPlans: *body.DisabledPlans}}, nil
}

func installApp(r *commandRequest, _ *noBody) (commandCall, error) {
	return commandCall{cmd: &domain.InstallApp{SkuID: r.param("sku")}}, nil
}
