package domain

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// Role is an admin role of a tenant user. Roles come from the tenant's own
// AdminRolesChanged events, never from a token.
type Role string

// The admin roles seatledger knows.
const (
	RoleGlobalAdmin  Role = "GlobalAdministrator"
	RoleLicenseAdmin Role = "LicenseAdministrator"
	RoleUserAdmin    Role = "UserAdministrator"
	RoleBillingAdmin Role = "BillingAdministrator"
)

// ValidRole reports whether r is one of the known admin roles.
func ValidRole(r Role) bool {
	switch r {
	case RoleGlobalAdmin, RoleLicenseAdmin, RoleUserAdmin, RoleBillingAdmin:
		return true
	}
	return false
}

// User types.
const (
	UserTypeMember = "Member"
	UserTypeGuest  = "Guest"
)

// Subscription kinds, channels and statuses.
const (
	KindPaid        = "Paid"
	KindTrial       = "Trial"
	KindSelfService = "SelfService"

	ChannelDirect      = "Direct"
	ChannelMarketplace = "Marketplace"
	ChannelVendor      = "Vendor"

	StatusEnabled   = "Enabled"
	StatusWarning   = "Warning"
	StatusSuspended = "Suspended"
	StatusDeleted   = "Deleted"
	// A term that ended without recurring billing (R17): Expired (the
	// licenses still work), then Disabled (assigned, but users lose access),
	// then Deleted. A cancelled subscription is Disabled at once (R16).
	StatusExpired  = "Expired"
	StatusDisabled = "Disabled"
)

// License sources.
const (
	SourceDirect      = "direct"
	SourceSelfService = "selfService"
	groupSourcePrefix = "group:"
)

// GroupSource is the source of a license inherited from a group.
func GroupSource(groupID string) string { return groupSourcePrefix + groupID }

// GroupOfSource returns the group id of a "group:<id>" source.
func GroupOfSource(source string) (string, bool) {
	if strings.HasPrefix(source, groupSourcePrefix) {
		return source[len(groupSourcePrefix):], true
	}
	return "", false
}

// Tenant is the aggregate: everything the licensing rules are checked against.
// It is built by Evolve from the tenant's events and is JSON-serialisable so
// it can be snapshotted.
type Tenant struct {
	ID             string                   `json:"id"`
	Name           string                   `json:"name"`
	Version        uint64                   `json:"version"`
	LastOccurredAt time.Time                `json:"lastOccurredAt"`
	Users          map[string]*User         `json:"users"`
	Groups         map[string]*Group        `json:"groups"`
	Subscriptions  map[string]*Subscription `json:"subscriptions"`
	Apps           map[string]*Product      `json:"apps"`  // ISV products by skuId
	Pools          map[string]*Pool         `json:"pools"` // license counts by skuId (R5)
	Installs       map[string]int           `json:"installs,omitempty"`
	// Errored indexes group-license error states: skuId -> "user\x00group".
	Errored map[string]map[string]bool `json:"errored,omitempty"`
	// Commands remembers the last CommandHistory commands for idempotency.
	Commands   map[string]CommandRecord `json:"commands"`
	CommandLog []string                 `json:"commandLog"`

	// upns indexes users by user principal name in lower case (see
	// UserByUPN); Evolve keeps it, reading a snapshot builds it.
	upns map[string]string
}

// CommandHistory is how many recent commands a tenant remembers at least
// (up to twice as many) for idempotent retries.
const CommandHistory = 10000

// CommandRecord is what a tenant remembers of a command it decided.
type CommandRecord struct {
	RequestHash  string `json:"requestHash,omitempty"`
	FirstVersion uint64 `json:"firstVersion"`
	LastVersion  uint64 `json:"lastVersion"`
}

// Pool holds the license counts of one product (the Licenses page row).
// Self-service subscriptions form their own pool until taken over (R8).
type Pool struct {
	SkuID               string `json:"skuId"`
	Total               int    `json:"total"`
	Assigned            int    `json:"assigned"`
	SelfServiceTotal    int    `json:"selfServiceTotal,omitempty"`
	SelfServiceAssigned int    `json:"selfServiceAssigned,omitempty"`
	Subscriptions       int    `json:"subscriptions"`      // not deleted
	AdminSubscriptions  int    `json:"adminSubscriptions"` // not deleted, not self-service
}

// Available is the number of licenses admins can still assign.
func (p *Pool) Available() int { return p.Total - p.Assigned }

// Subscription is one purchase of a product ("Your products" row).
type Subscription struct {
	ID          string    `json:"id"`
	SkuID       string    `json:"skuId"`
	Quantity    int       `json:"quantity"`
	Kind        string    `json:"kind"`
	Channel     string    `json:"channel"`
	Status      string    `json:"status"`
	PurchasedBy string    `json:"purchasedBy,omitempty"`
	PurchasedAt time.Time `json:"purchasedAt"`
	TakenOver   bool      `json:"takenOver,omitempty"`
	// SelfService: bought by a user for themself (a SelfService purchase or
	// a Trial a user started), R8.
	SelfService bool `json:"selfService,omitempty"`

	// The term (R16, R17; terms.go). Every subscription has one: a purchase
	// that names none, and every purchase made before terms existed, gets
	// the defaults when folded.
	Term      string    `json:"term"` // P1M or P1Y: the length of a paid term
	TermStart time.Time `json:"termStart"`
	// TermEnd is when the term renews (RecurringBilling) or ends.
	TermEnd time.Time `json:"termEnd"`
	// TrialEnd is when a trial's free month ends (kept after it converted).
	TrialEnd time.Time `json:"trialEnd,omitzero"`
	// CancellationWindowEnd: a cancel with refund is possible before it
	// (R16); zero for a trial, which can be cancelled at any time.
	CancellationWindowEnd time.Time `json:"cancellationWindowEnd,omitzero"`
	RecurringBilling      bool      `json:"recurringBilling"`
	// DisableAt is when an Expired subscription becomes Disabled; DeleteAt
	// when a Disabled one is deleted (R17).
	DisableAt time.Time `json:"disableAt,omitzero"`
	DeleteAt  time.Time `json:"deleteAt,omitzero"`
	// TermAnchor is the date terms are counted from (the purchase, a trial's
	// conversion or a reactivation), so that a term bought on the 31st ends
	// on the last day of shorter months and returns to the 31st after.
	TermAnchor time.Time `json:"termAnchor"`
}

// counts reports whether the subscription's licenses count toward a total:
// an Expired subscription's still do, a Disabled one's no longer (R17).
func (s *Subscription) counts() bool {
	return s.Status == StatusEnabled || s.Status == StatusWarning || s.Status == StatusExpired
}

// Ended reports whether the subscription's term is over: it is Expired,
// Disabled or Deleted (R17).
func (s *Subscription) Ended() bool {
	return s.Status == StatusExpired || s.Status == StatusDisabled || s.Status == StatusDeleted
}

// selfServicePool reports whether the subscription's licenses are in the
// self-service pool admins cannot use (R8).
func (s *Subscription) selfServicePool() bool { return s.selfServiceBought() && !s.TakenOver }

// selfServiceBought reports whether a user bought the subscription for
// themself (R8), taken over or not. A SelfService kind of an older event
// does not carry the flag.
func (s *Subscription) selfServiceBought() bool { return s.SelfService || s.Kind == KindSelfService }

// User is a member or guest of the tenant.
type User struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	UserType          string `json:"userType"`
	UsageLocation     string `json:"usageLocation,omitempty"`
	// Roles is never changed in place (Evolve replaces the slice): the
	// events a decision stamps share it as their actor's roles.
	Roles         []Role                  `json:"roles,omitempty"`
	Deleted       bool                    `json:"deleted,omitempty"`
	DeletedAt     time.Time               `json:"deletedAt,omitempty"`
	Licenses      map[string]*UserLicense `json:"licenses"`
	Groups        map[string]bool         `json:"groups,omitempty"`
	Holds         map[string]*Hold        `json:"holds,omitempty"` // by workload
	RetentionHold bool                    `json:"retentionHold,omitempty"`
	// Stash is what a restore gives back while the user is deleted.
	Stash *UserStash `json:"stash,omitempty"`
}

// UserStash keeps a deleted user's direct licenses and groups for a restore.
type UserStash struct {
	Licenses map[string][]string `json:"licenses,omitempty"` // skuId -> disabled plans (direct)
	Groups   []string            `json:"groups,omitempty"`
}

// HasRole reports whether the user holds one of roles.
func (u *User) HasRole(roles ...Role) bool {
	for _, have := range u.Roles {
		for _, want := range roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

// UserLicense is a product a user holds, from one or more sources. It
// consumes one license whatever the number of sources (R11).
type UserLicense struct {
	SkuID   string                    `json:"skuId"`
	Sources map[string]*LicenseSource `json:"sources"`
}

// LicenseSource is one reason a user holds a product.
type LicenseSource struct {
	DisabledPlans []string `json:"disabledPlans,omitempty"`
	// Error is set when a group could not give the license (R11); the source
	// then consumes nothing.
	Error       string `json:"error,omitempty"`
	ErrorDetail string `json:"errorDetail,omitempty"`
}

// Active reports whether the source gives the license.
func (s *LicenseSource) Active() bool { return s.Error == "" }

// pool tells which pool the license consumes from: "admin", "selfService" or
// "" (none: every source is in error).
func (l *UserLicense) pool() string {
	self := false
	for src, s := range l.Sources {
		if !s.Active() {
			continue
		}
		if src != SourceSelfService {
			return "admin"
		}
		self = true
	}
	if self {
		return "selfService"
	}
	return ""
}

// Consumes reports whether the license counts as assigned.
func (l *UserLicense) Consumes() bool { return l.pool() != "" }

// SourceNames lists the sources in a stable order: direct, selfService, groups.
func (l *UserLicense) SourceNames() []string {
	out := slices.AppendSeq(make([]string, 0, len(l.Sources)), maps.Keys(l.Sources)) // never nil: a view encodes [] not null
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b string) int {
			if c := cmp.Compare(sourceRank(a), sourceRank(b)); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
	}
	return out
}

func sourceRank(s string) int {
	switch s {
	case SourceDirect:
		return 0
	case SourceSelfService:
		return 1
	}
	return 2
}

func (l *UserLicense) clone() *UserLicense {
	c := &UserLicense{SkuID: l.SkuID, Sources: make(map[string]*LicenseSource, len(l.Sources))}
	for k, s := range l.Sources {
		cs := *s
		cs.DisabledPlans = append([]string(nil), s.DisabledPlans...)
		c.Sources[k] = &cs
	}
	return c
}

// Hold is data of a user kept after its license or the user went (R10).
type Hold struct {
	Workload   string    `json:"workload"`
	HeldSince  time.Time `json:"heldSince"`
	PurgeAfter time.Time `json:"purgeAfter"`
	Reason     string    `json:"reason"`
}

// Group is a security group used for group-based licensing (R11).
type Group struct {
	ID          string                   `json:"id"`
	DisplayName string                   `json:"displayName"`
	Members     map[string]bool          `json:"members"`
	Licenses    map[string]*GroupLicense `json:"licenses"`
}

// GroupLicense is a product a group gives its members.
type GroupLicense struct {
	SkuID         string   `json:"skuId"`
	DisabledPlans []string `json:"disabledPlans,omitempty"`
}

// NewTenant returns the empty state before a tenant's first event.
func NewTenant() *Tenant {
	return &Tenant{
		Users:         map[string]*User{},
		Groups:        map[string]*Group{},
		Subscriptions: map[string]*Subscription{},
		Apps:          map[string]*Product{},
		Pools:         map[string]*Pool{},
		Commands:      map[string]CommandRecord{},
		upns:          map[string]string{},
	}
}

// Exists reports whether the tenant has been created.
func (t *Tenant) Exists() bool { return t.Version > 0 && t.ID != "" }

// Pool returns the counts of a product (a zero Pool if the tenant never
// bought it).
func (t *Tenant) Pool(skuID string) Pool {
	if p := t.Pools[skuID]; p != nil {
		return *p
	}
	return Pool{SkuID: skuID}
}

// CommandRecord returns what the tenant remembers of a command id.
func (t *Tenant) CommandRecord(commandID string) (CommandRecord, bool) {
	r, ok := t.Commands[commandID]
	return r, ok
}

// MarshalSnapshot encodes the state for a snapshot.
func (t *Tenant) MarshalSnapshot() ([]byte, error) { return json.Marshal(t) }

// UnmarshalSnapshot decodes a state written by MarshalSnapshot.
func UnmarshalSnapshot(b []byte) (*Tenant, error) { return UnmarshalSnapshotWith(b, json.Unmarshal) }

// UnmarshalSnapshotWith is UnmarshalSnapshot with another JSON decoder.
func UnmarshalSnapshotWith(b []byte, unmarshal func([]byte, any) error) (*Tenant, error) {
	t := NewTenant()
	if err := unmarshal(b, t); err != nil {
		return nil, err
	}
	// nil maps of an older snapshot are made usable.
	if t.Users == nil {
		t.Users = map[string]*User{}
	}
	if t.Groups == nil {
		t.Groups = map[string]*Group{}
	}
	if t.Subscriptions == nil {
		t.Subscriptions = map[string]*Subscription{}
	}
	if t.Apps == nil {
		t.Apps = map[string]*Product{}
	}
	if t.Pools == nil {
		t.Pools = map[string]*Pool{}
	}
	if t.Commands == nil {
		t.Commands = map[string]CommandRecord{}
	}
	t.indexUPNs()
	return t, nil
}

// Clone returns a deep copy of the state.
func (t *Tenant) Clone() *Tenant {
	b, err := t.MarshalSnapshot()
	if err != nil {
		panic("domain: tenant state cannot be encoded: " + err.Error())
	}
	c, err := UnmarshalSnapshot(b)
	if err != nil {
		panic("domain: tenant state cannot be decoded: " + err.Error())
	}
	return c
}
