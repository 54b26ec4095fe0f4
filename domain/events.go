package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Actor is who caused an event, with the admin roles they held then.
type Actor struct {
	UserID   string `json:"userId,omitempty"`
	Roles    []Role `json:"roles,omitempty"`
	Operator bool   `json:"operator,omitempty"` // the platform operator
	System   string `json:"system,omitempty"`   // a seatledger component, e.g. "scheduler"
}

// String is a short human form, unique to each actor: "operator" for the
// platform operator, "system:<name>" for a seatledger component, the user
// id for a tenant user. A user id that could be read as another kind of
// actor ("operator", which the domain no longer lets a user take, or one
// holding a colon, which no valid id does) is shown as "user:<id>". It keys
// idempotency and generated ids, and the audit's actor filter.
func (a Actor) String() string {
	kind, name := a.parts()
	if kind == "" {
		return name
	}
	return kind + name
}

// appendString appends a.String() to b without making the string (the
// prefixed forms would cost an allocation each).
func (a Actor) appendString(b []byte) []byte {
	kind, name := a.parts()
	return append(append(b, kind...), name...)
}

// parts is String's form as a kind prefix ("", "system:" or "user:") and
// a name.
func (a Actor) parts() (kind, name string) {
	switch {
	case a.Operator:
		return "", OperatorActor
	case a.System != "":
		return "system:", a.System
	case reservedUserID(a.UserID) || strings.Contains(a.UserID, ":"):
		return "user:", a.UserID
	default:
		return "", a.UserID
	}
}

// OperatorActor is how the platform operator is named (Actor.String).
const OperatorActor = "operator"

// reservedUserID reports whether id names the operator, which no tenant
// user may be called, without regard to case.
func reservedUserID(id string) bool { return strings.EqualFold(id, OperatorActor) }

// Envelope is the metadata every event carries (DESIGN.md "Streams and events").
type Envelope struct {
	EventID       string    `json:"eventId"`
	Type          string    `json:"type"`
	TenantID      string    `json:"tenantId"`
	Version       uint64    `json:"version"`
	OccurredAt    time.Time `json:"occurredAt"`
	Actor         Actor     `json:"actor"`
	CommandID     string    `json:"commandId"`
	CorrelationID string    `json:"correlationId,omitempty"`
	// RequestHash fingerprints the request that caused the event, so a
	// retried command id with another body is recognised (idempotency).
	RequestHash string `json:"requestHash,omitempty"`
	Schema      int    `json:"schema"`
}

// Event is a fact of a tenant: an envelope and a typed payload.
type Event struct {
	Envelope
	Payload Payload
}

// Payload is the data of one event type.
type Payload interface{ EventType() string }

// CurrentSchema is the schema number written on new events.
const CurrentSchema = 1

// Event type names.
const (
	TypeTenantCreated               = "TenantCreated"
	TypeUserAdded                   = "UserAdded"
	TypeUserUpdated                 = "UserUpdated"
	TypeUserDeleted                 = "UserDeleted"
	TypeUserRestored                = "UserRestored"
	TypeAdminRolesChanged           = "AdminRolesChanged"
	TypeGroupCreated                = "GroupCreated"
	TypeGroupRenamed                = "GroupRenamed"
	TypeGroupDeleted                = "GroupDeleted"
	TypeGroupMemberAdded            = "GroupMemberAdded"
	TypeGroupMemberRemoved          = "GroupMemberRemoved"
	TypeProductRegistered           = "ProductRegistered"
	TypeSubscriptionPurchased       = "SubscriptionPurchased"
	TypeSubscriptionQuantityChanged = "SubscriptionQuantityChanged"
	TypeSubscriptionTakenOver       = "SubscriptionTakenOver"
	TypeSubscriptionStatusChanged   = "SubscriptionStatusChanged"
	TypeLicenseAssigned             = "LicenseAssigned"
	TypeLicenseUnassigned           = "LicenseUnassigned"
	TypeLicensePlansChanged         = "LicensePlansChanged"
	TypeGroupLicenseAssigned        = "GroupLicenseAssigned"
	TypeGroupLicenseUnassigned      = "GroupLicenseUnassigned"
	TypeGroupLicenseErrored         = "GroupLicenseErrored"
	TypeDataHeld                    = "DataHeld"
	TypeDataHoldReleased            = "DataHoldReleased"
	TypeHeldDataPurged              = "HeldDataPurged"
	TypeRetentionHoldSet            = "RetentionHoldSet"
	TypeAppInstalled                = "AppInstalled"
	TypeNothingChanged              = "NothingChanged"

	TypeSubscriptionRecurringBillingSet = "SubscriptionRecurringBillingSet"
	TypeSubscriptionCancelled           = "SubscriptionCancelled"
	TypeSubscriptionRenewed             = "SubscriptionRenewed"
	TypeSubscriptionExpired             = "SubscriptionExpired"
	TypeSubscriptionDisabled            = "SubscriptionDisabled"
)

// TenantCreated opens a tenant.
type TenantCreated struct {
	TenantID string `json:"tenantId"`
	Name     string `json:"name"`
}

// UserAdded adds a member or guest user.
type UserAdded struct {
	UserID            string `json:"userId"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	UserType          string `json:"userType"`
	UsageLocation     string `json:"usageLocation,omitempty"`
}

// UserUpdated changes a user's display name or usage location.
type UserUpdated struct {
	UserID        string `json:"userId"`
	DisplayName   string `json:"displayName,omitempty"`
	UsageLocation string `json:"usageLocation,omitempty"`
}

// UserDeleted soft-deletes a user: their licenses are freed at once (R9) and
// their group memberships suspended until a restore.
type UserDeleted struct {
	UserID string `json:"userId"`
}

// UserRestored brings a deleted user back; LicenseAssigned and
// GroupMemberAdded events that follow give back what they had.
type UserRestored struct {
	UserID string `json:"userId"`
}

// AdminRolesChanged sets the admin roles of a user (the whole set).
type AdminRolesChanged struct {
	UserID string `json:"userId"`
	Roles  []Role `json:"roles"`
}

// GroupCreated creates a security group for group-based licensing.
type GroupCreated struct {
	GroupID     string `json:"groupId"`
	DisplayName string `json:"displayName"`
}

// GroupRenamed changes a group's display name.
type GroupRenamed struct {
	GroupID     string `json:"groupId"`
	DisplayName string `json:"displayName"`
}

// GroupDeleted deletes a group that gives no license (R16): its members
// (and the deleted users a restore would put back in it) stop being members.
type GroupDeleted struct {
	GroupID string `json:"groupId"`
}

// GroupMemberAdded puts a user in a group.
type GroupMemberAdded struct {
	GroupID string `json:"groupId"`
	UserID  string `json:"userId"`
}

// GroupMemberRemoved takes a user out of a group.
type GroupMemberRemoved struct {
	GroupID string `json:"groupId"`
	UserID  string `json:"userId"`
}

// ProductRegistered records an ISV app product the tenant bought (R12).
type ProductRegistered struct {
	Product Product `json:"product"`
}

// SubscriptionPurchased adds a subscription of a product.
type SubscriptionPurchased struct {
	SubscriptionID string `json:"subscriptionId"`
	SkuID          string `json:"skuId"`
	Quantity       int    `json:"quantity"`
	Kind           string `json:"kind"`    // Paid, Trial, SelfService
	Channel        string `json:"channel"` // Direct, Marketplace, Vendor
	PurchasedBy    string `json:"purchasedBy,omitempty"`
	// SelfService marks a purchase a user made for themself: every
	// SelfService one and a Trial a user started (R8). Its licenses form the
	// self-service pool until taken over.
	SelfService bool `json:"selfService,omitempty"`
	// Term is the length of a paid term (P1M, P1Y) the buyer chose; empty:
	// DefaultTerm. The term's dates follow from the event's occurredAt
	// (Subscription.startTerm), so a purchase that takes the defaults, and
	// every purchase made before terms existed, carries neither field.
	Term string `json:"term,omitempty"`
	// RecurringBilling is the buyer's choice; nil: on for a paid purchase,
	// off for a trial.
	RecurringBilling *bool `json:"recurringBilling,omitempty"`
}

// SubscriptionQuantityChanged changes the number of licenses of a subscription.
type SubscriptionQuantityChanged struct {
	SubscriptionID string `json:"subscriptionId"`
	SkuID          string `json:"skuId"`
	Quantity       int    `json:"quantity"`
	Previous       int    `json:"previous"`
}

// SubscriptionTakenOver moves a self-service subscription under the admins
// (R8): its licenses join the product's admin pool.
type SubscriptionTakenOver struct {
	SubscriptionID string `json:"subscriptionId"`
	SkuID          string `json:"skuId"`
}

// SubscriptionStatusChanged changes a subscription's lifecycle status.
type SubscriptionStatusChanged struct {
	SubscriptionID string `json:"subscriptionId"`
	SkuID          string `json:"skuId"`
	Status         string `json:"status"`
	Previous       string `json:"previous"`
}

// SubscriptionRecurringBillingSet turns a subscription's recurring billing
// on or off (R16): off, the subscription ends with its term (R17).
type SubscriptionRecurringBillingSet struct {
	SubscriptionID string `json:"subscriptionId"`
	SkuID          string `json:"skuId"`
	Enabled        bool   `json:"enabled"`
}

// SubscriptionCancelled cancels a subscription within its cancellation
// window, or a trial at any time (R16): it is Disabled at once (its users
// lose access, its licenses leave the total but stay assigned) and deleted
// at DeleteAt (R17). Refund is true for a paid subscription.
type SubscriptionCancelled struct {
	SubscriptionID string    `json:"subscriptionId"`
	SkuID          string    `json:"skuId"`
	Previous       string    `json:"previous"`
	Refund         bool      `json:"refund"`
	DeleteAt       time.Time `json:"deleteAt"`
}

// SubscriptionRenewed starts a new term (R17): at the end of the last one
// when recurring billing is on (the scheduler decides it), or now when
// recurring billing is turned on for an Expired or Disabled subscription
// (Reactivated: it is Enabled again). Converted marks a trial that became a
// paid subscription. A renewal opens a new cancellation window (R16).
type SubscriptionRenewed struct {
	SubscriptionID        string    `json:"subscriptionId"`
	SkuID                 string    `json:"skuId"`
	TermStart             time.Time `json:"termStart"`
	TermEnd               time.Time `json:"termEnd"`
	CancellationWindowEnd time.Time `json:"cancellationWindowEnd"`
	Converted             bool      `json:"converted,omitempty"`
	Reactivated           bool      `json:"reactivated,omitempty"`
	Previous              string    `json:"previous,omitempty"` // the status a reactivation left
}

// SubscriptionExpired records that a term ended without recurring billing
// (R17): the subscription is Expired, its licenses still work, until
// DisableAt.
type SubscriptionExpired struct {
	SubscriptionID string    `json:"subscriptionId"`
	SkuID          string    `json:"skuId"`
	TermEnd        time.Time `json:"termEnd"`
	DisableAt      time.Time `json:"disableAt"`
}

// SubscriptionDisabled records that an Expired subscription's grace period
// ended, or that a Suspended one's term ended (R17): Disabled, its users
// lose access, its licenses leave the total but stay assigned, until
// DeleteAt.
type SubscriptionDisabled struct {
	SubscriptionID string    `json:"subscriptionId"`
	SkuID          string    `json:"skuId"`
	Previous       string    `json:"previous"`
	DeleteAt       time.Time `json:"deleteAt"`
}

// LicenseAssigned gives a user a product from one source ("direct",
// "group:<id>" or "selfService").
type LicenseAssigned struct {
	UserID        string   `json:"userId"`
	SkuID         string   `json:"skuId"`
	Source        string   `json:"source"`
	DisabledPlans []string `json:"disabledPlans,omitempty"` // service plan ids
}

// LicenseUnassigned removes one source of a user's product; the license is
// freed when no source is left.
type LicenseUnassigned struct {
	UserID string `json:"userId"`
	SkuID  string `json:"skuId"`
	Source string `json:"source"`
}

// LicensePlansChanged turns apps and services of a user's license on or off
// (R7).
type LicensePlansChanged struct {
	UserID        string   `json:"userId"`
	SkuID         string   `json:"skuId"`
	Source        string   `json:"source"`
	DisabledPlans []string `json:"disabledPlans"`
}

// GroupLicenseAssigned gives a group a product its members inherit (R11).
type GroupLicenseAssigned struct {
	GroupID       string   `json:"groupId"`
	SkuID         string   `json:"skuId"`
	DisabledPlans []string `json:"disabledPlans,omitempty"`
}

// GroupLicenseUnassigned takes a product away from a group.
type GroupLicenseUnassigned struct {
	GroupID string `json:"groupId"`
	SkuID   string `json:"skuId"`
}

// Group license error states (Graph licenseAssignmentStates.error).
const (
	GroupErrCountViolation    = "CountViolation"
	GroupErrMutuallyExclusive = "MutuallyExclusiveViolation"
	GroupErrDependency        = "DependencyViolation"
	GroupErrUsageLocation     = "UsageLocation"
)

// GroupLicenseErrored records that a member could not get the license their
// group gives: the intent is kept, in an error state, and retried when
// licenses free up (R11).
type GroupLicenseErrored struct {
	GroupID string `json:"groupId"`
	UserID  string `json:"userId"`
	SkuID   string `json:"skuId"`
	Error   string `json:"error"`
	Detail  string `json:"detail,omitempty"`
}

// DataHeld starts a hold on a user's data in a workload (R10).
type DataHeld struct {
	UserID     string    `json:"userId"`
	Workload   string    `json:"workload"` // Exchange or OneDrive
	HeldSince  time.Time `json:"heldSince"`
	PurgeAfter time.Time `json:"purgeAfter"`
	Reason     string    `json:"reason"` // licenseRemoved, userDeleted, retentionHoldRemoved
}

// DataHoldReleased ends a hold because the data is in use again.
type DataHoldReleased struct {
	UserID   string `json:"userId"`
	Workload string `json:"workload"`
	Reason   string `json:"reason"` // licenseAssigned, userRestored
}

// HeldDataPurged deletes held data for good.
type HeldDataPurged struct {
	UserID   string `json:"userId"`
	Workload string `json:"workload"`
}

// RetentionHoldSet turns a retention (litigation) hold on or off for a user.
type RetentionHoldSet struct {
	UserID  string `json:"userId"`
	Enabled bool   `json:"enabled"`
}

// AppInstalled records the install of an ISV app (R12).
type AppInstalled struct {
	SkuID       string `json:"skuId"`
	RedirectURL string `json:"redirectUrl"`
}

// NothingChanged records that a command a client may retry (it carried a
// request hash: an Idempotency-Key) was accepted but changed nothing — a
// license assigned that the user already had, say. Without it the tenant
// could not remember the command, and a retry would be decided again
// against a tenant that may have changed since.
type NothingChanged struct {
	Command string `json:"command"`
}

func (TenantCreated) EventType() string               { return TypeTenantCreated }
func (UserAdded) EventType() string                   { return TypeUserAdded }
func (UserUpdated) EventType() string                 { return TypeUserUpdated }
func (UserDeleted) EventType() string                 { return TypeUserDeleted }
func (UserRestored) EventType() string                { return TypeUserRestored }
func (AdminRolesChanged) EventType() string           { return TypeAdminRolesChanged }
func (GroupCreated) EventType() string                { return TypeGroupCreated }
func (GroupRenamed) EventType() string                { return TypeGroupRenamed }
func (GroupDeleted) EventType() string                { return TypeGroupDeleted }
func (GroupMemberAdded) EventType() string            { return TypeGroupMemberAdded }
func (GroupMemberRemoved) EventType() string          { return TypeGroupMemberRemoved }
func (ProductRegistered) EventType() string           { return TypeProductRegistered }
func (SubscriptionPurchased) EventType() string       { return TypeSubscriptionPurchased }
func (SubscriptionQuantityChanged) EventType() string { return TypeSubscriptionQuantityChanged }
func (SubscriptionTakenOver) EventType() string       { return TypeSubscriptionTakenOver }
func (SubscriptionStatusChanged) EventType() string   { return TypeSubscriptionStatusChanged }
func (LicenseAssigned) EventType() string             { return TypeLicenseAssigned }
func (LicenseUnassigned) EventType() string           { return TypeLicenseUnassigned }
func (LicensePlansChanged) EventType() string         { return TypeLicensePlansChanged }
func (GroupLicenseAssigned) EventType() string        { return TypeGroupLicenseAssigned }
func (GroupLicenseUnassigned) EventType() string      { return TypeGroupLicenseUnassigned }
func (GroupLicenseErrored) EventType() string         { return TypeGroupLicenseErrored }
func (DataHeld) EventType() string                    { return TypeDataHeld }
func (DataHoldReleased) EventType() string            { return TypeDataHoldReleased }
func (HeldDataPurged) EventType() string              { return TypeHeldDataPurged }
func (RetentionHoldSet) EventType() string            { return TypeRetentionHoldSet }
func (AppInstalled) EventType() string                { return TypeAppInstalled }
func (NothingChanged) EventType() string              { return TypeNothingChanged }
func (SubscriptionRecurringBillingSet) EventType() string {
	return TypeSubscriptionRecurringBillingSet
}
func (SubscriptionCancelled) EventType() string { return TypeSubscriptionCancelled }
func (SubscriptionRenewed) EventType() string   { return TypeSubscriptionRenewed }
func (SubscriptionExpired) EventType() string   { return TypeSubscriptionExpired }
func (SubscriptionDisabled) EventType() string  { return TypeSubscriptionDisabled }

// UnknownPayload holds an event of a type this build does not know (written
// by a newer seatledger). Evolve ignores it; it is kept so nothing is lost.
type UnknownPayload struct {
	TypeName string
	Raw      json.RawMessage
}

// EventType returns the unknown type's name.
func (u UnknownPayload) EventType() string { return u.TypeName }

// MarshalJSON writes the raw data back unchanged.
func (u UnknownPayload) MarshalJSON() ([]byte, error) {
	if len(u.Raw) == 0 {
		return []byte("null"), nil
	}
	return u.Raw, nil
}

// payloadTypes are the event types this build knows, each with how to
// decode its data.
var payloadTypes = map[string]payloadType{
	TypeTenantCreated:                   payloadOf[TenantCreated](),
	TypeUserAdded:                       payloadOf[UserAdded](),
	TypeUserUpdated:                     payloadOf[UserUpdated](),
	TypeUserDeleted:                     payloadOf[UserDeleted](),
	TypeUserRestored:                    payloadOf[UserRestored](),
	TypeAdminRolesChanged:               payloadOf[AdminRolesChanged](),
	TypeGroupCreated:                    payloadOf[GroupCreated](),
	TypeGroupRenamed:                    payloadOf[GroupRenamed](),
	TypeGroupDeleted:                    payloadOf[GroupDeleted](),
	TypeGroupMemberAdded:                payloadOf[GroupMemberAdded](),
	TypeGroupMemberRemoved:              payloadOf[GroupMemberRemoved](),
	TypeProductRegistered:               payloadOf[ProductRegistered](),
	TypeSubscriptionPurchased:           payloadOf[SubscriptionPurchased](),
	TypeSubscriptionQuantityChanged:     payloadOf[SubscriptionQuantityChanged](),
	TypeSubscriptionTakenOver:           payloadOf[SubscriptionTakenOver](),
	TypeSubscriptionStatusChanged:       payloadOf[SubscriptionStatusChanged](),
	TypeLicenseAssigned:                 payloadOf[LicenseAssigned](),
	TypeLicenseUnassigned:               payloadOf[LicenseUnassigned](),
	TypeLicensePlansChanged:             payloadOf[LicensePlansChanged](),
	TypeGroupLicenseAssigned:            payloadOf[GroupLicenseAssigned](),
	TypeGroupLicenseUnassigned:          payloadOf[GroupLicenseUnassigned](),
	TypeGroupLicenseErrored:             payloadOf[GroupLicenseErrored](),
	TypeDataHeld:                        payloadOf[DataHeld](),
	TypeDataHoldReleased:                payloadOf[DataHoldReleased](),
	TypeHeldDataPurged:                  payloadOf[HeldDataPurged](),
	TypeRetentionHoldSet:                payloadOf[RetentionHoldSet](),
	TypeAppInstalled:                    payloadOf[AppInstalled](),
	TypeNothingChanged:                  payloadOf[NothingChanged](),
	TypeSubscriptionRecurringBillingSet: payloadOf[SubscriptionRecurringBillingSet](),
	TypeSubscriptionCancelled:           payloadOf[SubscriptionCancelled](),
	TypeSubscriptionRenewed:             payloadOf[SubscriptionRenewed](),
	TypeSubscriptionExpired:             payloadOf[SubscriptionExpired](),
	TypeSubscriptionDisabled:            payloadOf[SubscriptionDisabled](),
}

// payloadType is one event type's data: new makes the *T the JSON decoder
// fills; decode reads a whole event of the type in one pass of unmarshal.
type payloadType struct {
	new    func() Payload
	decode func(b []byte, unmarshal func([]byte, any) error) (Envelope, Payload, error)
}

func payloadOf[T Payload]() payloadType {
	return payloadType{
		new: func() Payload { return any(new(T)).(Payload) },
		decode: func(b []byte, unmarshal func([]byte, any) error) (Envelope, Payload, error) {
			var w wireOf[T]
			if err := unmarshal(b, &w); err != nil {
				return Envelope{}, nil, err
			}
			return w.Envelope, w.Data, nil
		},
	}
}

// wireOf is wireEvent with its data decoded as T in the same pass (a
// missing or null "data" leaves it zero, as DecodeEventWith does).
type wireOf[T any] struct {
	Envelope
	Data T `json:"data"`
}

// EventTypes lists every event type this build knows.
func EventTypes() []string { return slices.Sorted(maps.Keys(payloadTypes)) }

// wireEvent is the JSON form of an event: the envelope fields and "data".
type wireEvent struct {
	Envelope
	Data json.RawMessage `json:"data"`
}

// EncodeEvent returns the JSON form of e, envelope and data.
func EncodeEvent(e Event) ([]byte, error) { return EncodeEventWith(e, json.Marshal) }

// EncodeEventWith is EncodeEvent with another JSON encoder.
func EncodeEventWith(e Event, marshal func(any) ([]byte, error)) ([]byte, error) {
	data, err := marshal(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.Type, err)
	}
	return marshal(wireEvent{Envelope: e.Envelope, Data: data})
}

// Upcaster upgrades the JSON data of one event type from schema From to
// From+1. Upcasters are registered by the package that owns the change,
// before any event is decoded.
type Upcaster struct {
	Type    string
	From    int
	Upgrade func(data json.RawMessage) (json.RawMessage, error)
}

// Registered is the upcaster chain of this build, used when a caller gives
// none. A change to an event's data adds its step here, in the same commit,
// with a test that folds old events to the same state (see
// history/upcast_test.go for the pattern).
var Registered Upcasters

// Upcasters is the chain applied by DecodeEvent; each entry upgrades one
// (type, schema) step. An event is upgraded step by step to the newest schema
// its chain reaches.
type Upcasters []Upcaster

// upgrades reports whether the chain has a step for eventType at schema.
func (us Upcasters) upgrades(eventType string, schema int) bool {
	for _, u := range us {
		if u.Type == eventType && u.From == schema {
			return true
		}
	}
	return false
}

// Apply upgrades data of eventType from schema to the newest schema the chain
// reaches, returning the new data and schema.
func (us Upcasters) Apply(eventType string, schema int, data json.RawMessage) (json.RawMessage, int, error) {
	for {
		step := -1
		for i, u := range us {
			if u.Type == eventType && u.From == schema {
				step = i
				break
			}
		}
		if step < 0 {
			return data, schema, nil
		}
		up, err := us[step].Upgrade(data)
		if err != nil {
			return nil, schema, fmt.Errorf("upcast %s from schema %d: %w", eventType, schema, err)
		}
		data, schema = up, schema+1
	}
}

// DecodeEvent reads an event written by EncodeEvent, upgrading its data with
// the given upcasters (nil: Registered). Unknown fields are ignored; an unknown
// event type decodes to UnknownPayload.
func DecodeEvent(b []byte, upcasters Upcasters) (Event, error) {
	return DecodeEventWith(b, upcasters, json.Unmarshal)
}

// DecodeEventWith is DecodeEvent with another JSON decoder (one that, like
// encoding/json, ignores unknown fields), for callers that fold many events
// and can afford a faster library than the standard one.
func DecodeEventWith(b []byte, upcasters Upcasters, unmarshal func([]byte, any) error) (Event, error) {
	if upcasters == nil {
		upcasters = Registered
	}
	// The common event, written by this build's encoders, decodes in one
	// pass: its type is known from its first fields (eventId, then type),
	// and nothing upgrades its data. The pass must find the same type (a
	// later "type" key wins, as below), else the event decodes as below.
	if typ, ok := peekType(b); ok {
		if pt, ok := payloadTypes[string(typ)]; ok {
			env, p, err := pt.decode(b, unmarshal)
			if err == nil && env.Type == string(typ) && !upcasters.upgrades(env.Type, env.Schema) {
				return Event{Envelope: env, Payload: p}, nil
			}
		}
	}
	var w wireEvent
	if err := unmarshal(b, &w); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	if w.Type == "" {
		return Event{}, fmt.Errorf("decode event: no type")
	}
	data, schema, err := upcasters.Apply(w.Type, w.Schema, w.Data)
	if err != nil {
		return Event{}, err
	}
	w.Schema = schema
	pt, ok := payloadTypes[w.Type]
	if !ok {
		return Event{Envelope: w.Envelope, Payload: UnknownPayload{TypeName: w.Type, Raw: data}}, nil
	}
	p := pt.new()
	if len(data) > 0 && string(data) != "null" {
		if err := unmarshal(data, p); err != nil {
			return Event{}, fmt.Errorf("decode %s event data: %w", w.Type, err)
		}
	}
	return Event{Envelope: w.Envelope, Payload: deref(p)}, nil
}

// peekType returns the type of an event whose JSON starts as the encoders
// write it, {"eventId":"…","type":"…", with neither string escaped.
func peekType(b []byte) ([]byte, bool) {
	const (
		head = `{"eventId":"`
		mid  = `","type":"`
	)
	if !bytes.HasPrefix(b, []byte(head)) {
		return nil, false
	}
	b = b[len(head):]
	i := bytes.IndexByte(b, '"')
	if i < 0 || bytes.IndexByte(b[:i], '\\') >= 0 || !bytes.HasPrefix(b[i:], []byte(mid)) {
		return nil, false
	}
	b = b[i+len(mid):]
	j := bytes.IndexByte(b, '"')
	if j <= 0 || bytes.IndexByte(b[:j], '\\') >= 0 {
		return nil, false
	}
	return b[:j], true
}

// deref turns the *T a factory made into the T value Evolve switches on.
func deref(p Payload) Payload {
	return reflect.ValueOf(p).Elem().Interface().(Payload)
}
