package domain

import "time"

// Command is a request to change a tenant. Decide turns it into events or
// refuses it with an *Error.
type Command interface {
	meta() *CommandMeta
	// CommandName is the command's name, e.g. "AssignLicenses" (for metrics and logs).
	CommandName() string
}

// CommandMeta is what every command carries.
type CommandMeta struct {
	TenantID  string
	CommandID string // unique per intent; a retry reuses it (idempotency)
	Actor     Actor  // who asks; their roles are read from the tenant
	// Now is the time of the decision, stamped by the server's clock (the
	// domain has none). Events never go back in time within a tenant.
	Now           time.Time
	CorrelationID string
	RequestHash   string // fingerprint of the request body, for idempotency
}

func (m *CommandMeta) meta() *CommandMeta { return m }

// Meta returns the metadata of any command.
func Meta(c Command) *CommandMeta { return c.meta() }

// NewUser describes a user to add.
type NewUser struct {
	ID                string
	UserPrincipalName string
	DisplayName       string
	UserType          string // Member (default) or Guest
	UsageLocation     string // ISO 3166-1 alpha-2, e.g. "US"
}

// LicenseRequest is a product to give, with the service plans to turn off.
type LicenseRequest struct {
	SkuID         string   // skuId or skuPartNumber
	DisabledPlans []string // service plan ids or names
}

// CreateTenant opens a tenant with its first Global admin (operator only).
type CreateTenant struct {
	CommandMeta
	Name        string
	GlobalAdmin NewUser
}

// AddUser adds a member or guest user, with the licenses to give them
// (the admin center's "Add a user"): one decision, all or nothing, under
// the rules of assigning (R1–R3, R6, R7, R14).
type AddUser struct {
	CommandMeta
	User     NewUser
	Licenses []LicenseRequest // none: the user is added unlicensed
}

// UpdateUser changes a user's display name or usage location (R14).
type UpdateUser struct {
	CommandMeta
	UserID        string
	DisplayName   string
	UsageLocation string
}

// DeleteUser deletes a user and frees their licenses (R9).
type DeleteUser struct {
	CommandMeta
	UserID string
}

// RestoreUser restores a deleted user within the restore window (R9).
type RestoreUser struct {
	CommandMeta
	UserID string
}

// SetAdminRoles sets a user's admin roles (the whole set; empty removes all).
type SetAdminRoles struct {
	CommandMeta
	UserID string
	Roles  []Role
}

// SetRetentionHold turns a retention (litigation) hold on or off (R10).
type SetRetentionHold struct {
	CommandMeta
	UserID  string
	Enabled bool
}

// CreateGroup creates a group.
type CreateGroup struct {
	CommandMeta
	GroupID     string
	DisplayName string
}

// RenameGroup changes a group's display name.
type RenameGroup struct {
	CommandMeta
	GroupID     string
	DisplayName string
}

// DeleteGroup deletes a group. A group that gives licenses cannot be
// deleted until they are removed from it (R18), so no member loses a
// license by it; its members simply stop being members.
type DeleteGroup struct {
	CommandMeta
	GroupID string
}

// AddGroupMember puts a user in a group; they inherit its licenses (R11).
type AddGroupMember struct {
	CommandMeta
	GroupID string
	UserID  string
}

// RemoveGroupMember takes a user out of a group; only the inherited
// assignments go (R11).
type RemoveGroupMember struct {
	CommandMeta
	GroupID string
	UserID  string
}

// AssignGroupLicenses adds and removes the products a group gives (R11).
type AssignGroupLicenses struct {
	CommandMeta
	GroupID string
	Add     []LicenseRequest
	Remove  []string
}

// PurchaseSubscription buys a subscription of a catalog product (SkuID) or of
// an ISV app (App).
type PurchaseSubscription struct {
	CommandMeta
	SubscriptionID string
	SkuID          string
	App            *Product // an ISV app bought with this subscription (R12)
	Quantity       int
	Kind           string // Paid (default), Trial, SelfService
	Channel        string // Direct (default), Marketplace, Vendor
	PurchasedBy    string
	// Term is the length of a paid term, P1M or P1Y (default); a trial
	// converts to it (R17).
	Term string
	// RecurringBilling: nil for the default (on for a paid purchase, off
	// for a trial).
	RecurringBilling *bool
}

// ChangeSubscriptionQuantity buys or removes licenses (R12, R13).
type ChangeSubscriptionQuantity struct {
	CommandMeta
	SubscriptionID string
	Quantity       int
}

// ChangeSubscriptionStatus moves a subscription between Enabled, Warning,
// Suspended and Deleted (R13 applies to the licenses it takes away).
type ChangeSubscriptionStatus struct {
	CommandMeta
	SubscriptionID string
	Status         string
}

// CancelSubscription cancels a subscription with a refund within its
// cancellation window, or a trial at any time (R16): it is Disabled at once
// and deleted after the disabled period (R17). After the window it is
// refused: turn recurring billing off instead.
type CancelSubscription struct {
	CommandMeta
	SubscriptionID string
}

// SetRecurringBilling turns a subscription's recurring billing on or off
// (R16). Turned on for an Expired or Disabled subscription, it reactivates
// it with a new term from now (R17).
type SetRecurringBilling struct {
	CommandMeta
	SubscriptionID string
	Enabled        bool
}

// AdvanceSubscriptions moves subscriptions along their lifecycle once it is
// due (R17): a term that ends is renewed (recurring billing on) or Expired;
// an Expired one becomes Disabled, a Disabled one Deleted; what fell due
// meanwhile is caught up in one decision. The scheduler sends it with its
// own clock as Now. A subscription with nothing due is refused
// (lifecycle_not_due) when it is the only one named; a batch moves what is
// due and fails only when nothing is — a duplicate or stale schedule entry
// appends nothing.
type AdvanceSubscriptions struct {
	CommandMeta
	Subscriptions []string
}

// TakeOverSubscription puts a self-service subscription under the admins (R8).
type TakeOverSubscription struct {
	CommandMeta
	SubscriptionID string
}

// AssignLicenses gives one product to up to BulkLimit users, all or nothing
// (the Licenses page; R1–R4, R6, R7, R14).
type AssignLicenses struct {
	CommandMeta
	SkuID         string
	Users         []string
	DisabledPlans []string
}

// UnassignLicenses removes one product's direct assignment from up to
// BulkLimit users, all or nothing.
type UnassignLicenses struct {
	CommandMeta
	SkuID string
	Users []string
}

// UpdateUserLicenses adds and removes products of one user atomically (the
// Graph assignLicense shape).
type UpdateUserLicenses struct {
	CommandMeta
	UserID string
	Add    []LicenseRequest
	Remove []string
}

// Modes of ManageLicenses (the Active users page).
const (
	ModeAssignMore  = "AssignMore"
	ModeReplace     = "Replace"
	ModeUnassignAll = "UnassignAll"
)

// ManageLicenses changes the licenses of up to BulkLimit users at once.
type ManageLicenses struct {
	CommandMeta
	Users []string
	Mode  string
	Add   []LicenseRequest
}

// ChangeLicensePlans turns apps and services of a user's direct license on
// or off (R7).
type ChangeLicensePlans struct {
	CommandMeta
	UserID        string
	SkuID         string
	DisabledPlans []string
}

// InstallApp records the install of an ISV app and yields the vendor's
// redirect (R12).
type InstallApp struct {
	CommandMeta
	SkuID string
}

// PurgeHeldData deletes held data for good once its hold period is over
// (R10). The scheduler sends it with its own clock as Now. A hold is refused
// early, after a release, after a purge, and under a retention hold: a
// command naming one hold fails with the reason; a batch purges the holds
// that are due and fails only when none is.
type PurgeHeldData struct {
	CommandMeta
	UserID   string // one hold: UserID and Workload
	Workload string
	Batch    []HeldDataRef // or many, of one tenant
}

// HeldDataRef names one hold: a user's data in a workload.
type HeldDataRef struct {
	UserID   string `json:"userId"`
	Workload string `json:"workload"`
}

func (*CreateTenant) CommandName() string               { return "CreateTenant" }
func (*AddUser) CommandName() string                    { return "AddUser" }
func (*UpdateUser) CommandName() string                 { return "UpdateUser" }
func (*DeleteUser) CommandName() string                 { return "DeleteUser" }
func (*RestoreUser) CommandName() string                { return "RestoreUser" }
func (*SetAdminRoles) CommandName() string              { return "SetAdminRoles" }
func (*SetRetentionHold) CommandName() string           { return "SetRetentionHold" }
func (*CreateGroup) CommandName() string                { return "CreateGroup" }
func (*RenameGroup) CommandName() string                { return "RenameGroup" }
func (*DeleteGroup) CommandName() string                { return "DeleteGroup" }
func (*AddGroupMember) CommandName() string             { return "AddGroupMember" }
func (*RemoveGroupMember) CommandName() string          { return "RemoveGroupMember" }
func (*AssignGroupLicenses) CommandName() string        { return "AssignGroupLicenses" }
func (*PurchaseSubscription) CommandName() string       { return "PurchaseSubscription" }
func (*ChangeSubscriptionQuantity) CommandName() string { return "ChangeSubscriptionQuantity" }
func (*ChangeSubscriptionStatus) CommandName() string   { return "ChangeSubscriptionStatus" }
func (*TakeOverSubscription) CommandName() string       { return "TakeOverSubscription" }
func (*AssignLicenses) CommandName() string             { return "AssignLicenses" }
func (*UnassignLicenses) CommandName() string           { return "UnassignLicenses" }
func (*UpdateUserLicenses) CommandName() string         { return "UpdateUserLicenses" }
func (*ManageLicenses) CommandName() string             { return "ManageLicenses" }
func (*ChangeLicensePlans) CommandName() string         { return "ChangeLicensePlans" }
func (*InstallApp) CommandName() string                 { return "InstallApp" }
func (*PurgeHeldData) CommandName() string              { return "PurgeHeldData" }
func (*CancelSubscription) CommandName() string         { return "CancelSubscription" }
func (*SetRecurringBilling) CommandName() string        { return "SetRecurringBilling" }
func (*AdvanceSubscriptions) CommandName() string       { return "AdvanceSubscriptions" }
