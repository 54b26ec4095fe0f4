package readmodel

import (
	"time"

	"github.com/seatledger/seatledger/domain"
)

// The rows below are the one set of view types of a tenant. They are
// stored as JSON under the keys of keys.go; the projector renders them from
// the tenant's state with the domain's views, queries decode them and
// answer with them (alone, or inside an answer: queries.ProductDetail
// embeds LicenseRow, queries.GroupDetail embeds GroupView), and history's
// time-travel State reuses them where its shape is the same (LicenseRow,
// MemberError, UserProfile). Changing a JSON name changes what a read
// model that was not rebuilt answers: replay after such a change. Field
// order is the order of the answers' keys: moving a field changes the
// bytes of every answer that carries the row, /state's included.

// LicenseRow is one product of the Licenses page, summed over its
// subscriptions (R5). Self-service licenses form their own pool (R8).
type LicenseRow struct {
	SkuID               string `json:"skuId"`
	SkuPartNumber       string `json:"skuPartNumber"`
	ProductName         string `json:"productName"`
	Total               int    `json:"total"`
	Assigned            int    `json:"assigned"`
	Available           int    `json:"available"`
	Subscriptions       int    `json:"subscriptions"`
	SelfServiceTotal    int    `json:"selfServiceTotal,omitempty"`
	SelfServiceAssigned int    `json:"selfServiceAssigned,omitempty"`
}

// SubscriptionRow is one subscription of "Your products".
type SubscriptionRow struct {
	ID            string    `json:"id"`
	SkuID         string    `json:"skuId"`
	SkuPartNumber string    `json:"skuPartNumber"`
	ProductName   string    `json:"productName"`
	Quantity      int       `json:"quantity"`
	Kind          string    `json:"kind"`
	Channel       string    `json:"channel"`
	Status        string    `json:"status"`
	PurchasedBy   string    `json:"purchasedBy,omitempty"`
	PurchasedAt   time.Time `json:"purchasedAt"`
	TakenOver     bool      `json:"takenOver,omitempty"`
	// The term (domain.Subscription's; R16, R17). Status above is the
	// lifecycle status: Enabled, Warning, Suspended, Expired, Disabled or
	// Deleted.
	Term                  string    `json:"term"`
	TermStart             time.Time `json:"termStart"`
	TermEnd               time.Time `json:"termEnd"`
	TrialEnd              time.Time `json:"trialEnd,omitzero"`
	CancellationWindowEnd time.Time `json:"cancellationWindowEnd,omitzero"`
	RecurringBilling      bool      `json:"recurringBilling"`
	DisableAt             time.Time `json:"disableAt,omitzero"`
	DeleteAt              time.Time `json:"deleteAt,omitzero"`
}

// HeldRow is data of a user kept after a license or the user went (R10).
type HeldRow struct {
	UserID     string    `json:"userId"`
	Workload   string    `json:"workload"`
	HeldSince  time.Time `json:"heldSince"`
	PurgeAfter time.Time `json:"purgeAfter"`
	Retained   bool      `json:"retained"`
	Reason     string    `json:"reason,omitempty"`
}

// UserProfile is who a user is, the part every rendering of a whole user
// begins with: UserView here, history.UserState in time travel.
type UserProfile struct {
	ID                string        `json:"id"`
	UserPrincipalName string        `json:"userPrincipalName"`
	DisplayName       string        `json:"displayName"`
	UserType          string        `json:"userType"`
	UsageLocation     string        `json:"usageLocation,omitempty"`
	Status            string        `json:"status"` // Active or Deleted
	DeletedAt         *time.Time    `json:"deletedAt,omitempty"`
	Roles             []domain.Role `json:"roles"`
}

// UserView is a user as the Active users page and its detail pane show them.
type UserView struct {
	UserProfile
	Groups               []string             `json:"groups"`
	Licenses             []domain.LicenseView `json:"licenses"`
	EnabledServices      []string             `json:"enabledServices"`
	AutoAssignedServices []string             `json:"autoAssignedServices"`
	HeldData             []HeldRow            `json:"heldData"`
	RetentionHold        bool                 `json:"retentionHold"`
	// RestorableUntil is, for a deleted user, the end of the window in
	// which they can be restored (R9).
	RestorableUntil *time.Time `json:"restorableUntil,omitempty"`
}

// AppRow is an ISV app of the tenant (the Apps hash): the product, and
// whether it was installed (R12) and how many times.
type AppRow struct {
	domain.Product
	Installed bool `json:"installed"`
	Installs  int  `json:"installs"`
}

// GroupLicenseView is a product a group gives its members.
type GroupLicenseView struct {
	SkuID         string   `json:"skuId"`
	SkuPartNumber string   `json:"skuPartNumber,omitempty"`
	DisabledPlans []string `json:"disabledPlans"`
}

// GroupView is a group without its member list (a sorted set beside it).
type GroupView struct {
	ID          string             `json:"id"`
	DisplayName string             `json:"displayName"`
	Licenses    []GroupLicenseView `json:"licenses"`
	MemberCount int                `json:"memberCount"`
}

// MemberError is a license a group could not give one of its members (R11).
type MemberError struct {
	UserID        string `json:"userId"`
	SkuID         string `json:"skuId"`
	SkuPartNumber string `json:"skuPartNumber,omitempty"`
	Error         string `json:"error"`
	Detail        string `json:"detail,omitempty"`
}
