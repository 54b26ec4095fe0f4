// Package history answers "who changed what, when" and "what did this
// tenant look like then" from the event store: the audit log, the state of a
// tenant at any version or time, and the difference between two points.
package history

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// Service reads tenants' history.
type Service struct {
	Store     eventstore.Store
	Snapshots eventstore.SnapshotStore // nil: fold from the first event
	Upcasters domain.Upcasters
	Catalog   *domain.Catalog
}

// Head returns the tenant's current version (0: no such tenant).
func (s *Service) Head(ctx context.Context, tenantID string) (uint64, error) {
	return s.Store.StreamVersion(ctx, tenantstream.Name(tenantID))
}

// occurredAt reads the time of one event.
func (s *Service) occurredAt(ctx context.Context, stream string, v uint64) (time.Time, error) {
	recs, err := s.Store.ReadStream(ctx, stream, v, 1)
	if err != nil {
		return time.Time{}, err
	}
	if len(recs) == 0 {
		return time.Time{}, fmt.Errorf("%s has no version %d", stream, v)
	}
	var env struct {
		OccurredAt time.Time `json:"occurredAt"`
	}
	if err := json.Unmarshal(recs[0].Data, &env); err != nil {
		return time.Time{}, fmt.Errorf("%s version %d: %w", stream, v, err)
	}
	return env.OccurredAt, nil
}

// VersionAt returns the last version whose event occurred at or before t
// (0 when the tenant did not exist yet). Events never go back in time within
// a stream, so a binary search over versions finds it in O(log n) reads.
func (s *Service) VersionAt(ctx context.Context, tenantID string, t time.Time) (uint64, error) {
	head, err := s.Head(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	stream := tenantstream.Name(tenantID)
	lo, hi := uint64(0), head // invariant: version lo is at or before t (0: none); versions > hi are after t
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		at, err := s.occurredAt(ctx, stream, mid)
		if err != nil {
			return 0, err
		}
		if at.After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo, nil
}

// StateAt folds the tenant up to version (0: the latest), from the nearest
// snapshot at or below it.
func (s *Service) StateAt(ctx context.Context, tenantID string, version uint64) (*domain.Tenant, error) {
	return tenantstream.Fold(ctx, s.Store, s.Snapshots, s.Upcasters, tenantID, version)
}

// Point is a place in a tenant's history: a version, or a time.
type Point struct {
	Version uint64
	Time    time.Time // used when Version is 0 and Time is set
}

// Resolve turns a point into a version (bounded by the head).
func (s *Service) Resolve(ctx context.Context, tenantID string, p Point) (uint64, error) {
	head, err := s.Head(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	if p.Version == 0 && !p.Time.IsZero() {
		return s.VersionAt(ctx, tenantID, p.Time)
	}
	if p.Version > head {
		return 0, &domain.Error{Code: domain.CodeNotFound, Field: "version",
			Detail: fmt.Sprintf("tenant %s is at version %d; version %d does not exist yet", tenantID, head, p.Version)}
	}
	if p.Version == 0 {
		return head, nil
	}
	return p.Version, nil
}

// ---- the rendered state

// State is the whole tenant as it was at a version.
type State struct {
	TenantID      string              `json:"tenantId"`
	Name          string              `json:"name"`
	Version       uint64              `json:"version"`
	AsOf          time.Time           `json:"asOf"`
	Products      []ProductState      `json:"products"`
	Subscriptions []SubscriptionState `json:"subscriptions"`
	Users         []UserState         `json:"users"`
	Groups        []GroupState        `json:"groups"`
	HeldData      []HeldData          `json:"heldData"`
	Apps          []domain.Product    `json:"apps"`
	Installs      map[string]int      `json:"installs,omitempty"`
}

// ProductState is a Licenses page row (R5).
type ProductState struct {
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

// SubscriptionState is a "Your products" row.
type SubscriptionState = domain.Subscription

// UserState is a user with their licenses as the admin center shows them.
type UserState struct {
	ID                   string               `json:"id"`
	UserPrincipalName    string               `json:"userPrincipalName"`
	DisplayName          string               `json:"displayName"`
	UserType             string               `json:"userType"`
	UsageLocation        string               `json:"usageLocation,omitempty"`
	Status               string               `json:"status"`
	DeletedAt            *time.Time           `json:"deletedAt,omitempty"`
	Roles                []domain.Role        `json:"roles"`
	Licenses             []domain.LicenseView `json:"licenses"`
	Groups               []string             `json:"groups"`
	EnabledServices      []string             `json:"enabledServices"`
	RetentionHold        bool                 `json:"retentionHold"`
	MailboxSearchable    bool                 `json:"mailboxSearchable"`
	AutoAssignedServices []string             `json:"autoAssignedServices"`
}

// GroupState is a group with its members, licenses and members in error.
type GroupState struct {
	ID          string                `json:"id"`
	DisplayName string                `json:"displayName"`
	Members     []string              `json:"members"`
	Licenses    []domain.GroupLicense `json:"licenses"`
	Errors      []MemberError         `json:"membersWithLicenseErrors"`
}

// MemberError is a member who could not get a group's license (R11).
type MemberError struct {
	UserID string `json:"userId"`
	SkuID  string `json:"skuId"`
	Error  string `json:"error"`
}

// HeldData is data kept after a license or user went (R10).
type HeldData struct {
	UserID     string    `json:"userId"`
	Workload   string    `json:"workload"`
	HeldSince  time.Time `json:"heldSince"`
	PurgeAfter time.Time `json:"purgeAfter"`
	Reason     string    `json:"reason"`
	Retained   bool      `json:"retained"`
}

// Render turns a folded tenant into its State, in a stable order. Its lists
// are never nil (an empty one is [] in JSON, not null), hence the appends
// to []string{} of the sorted keys.
func Render(c *domain.Catalog, t *domain.Tenant) State {
	s := State{TenantID: t.ID, Name: t.Name, Version: t.Version, AsOf: t.LastOccurredAt,
		Products: []ProductState{}, Subscriptions: []SubscriptionState{}, Users: []UserState{}, Groups: []GroupState{},
		HeldData: []HeldData{}, Apps: []domain.Product{}, Installs: t.Installs}
	for _, sku := range slices.Sorted(maps.Keys(t.Pools)) {
		p := t.Pools[sku]
		if p.Subscriptions == 0 {
			continue
		}
		ps := ProductState{SkuID: sku, SkuPartNumber: sku, ProductName: sku, Total: p.Total, Assigned: p.Assigned,
			Available: p.Available(), Subscriptions: p.Subscriptions, SelfServiceTotal: p.SelfServiceTotal, SelfServiceAssigned: p.SelfServiceAssigned}
		if prod, ok := c.Product(t, sku); ok {
			ps.SkuPartNumber, ps.ProductName = prod.SkuPartNumber, prod.DisplayName
		}
		s.Products = append(s.Products, ps)
	}
	for _, id := range slices.Sorted(maps.Keys(t.Subscriptions)) {
		s.Subscriptions = append(s.Subscriptions, *t.Subscriptions[id])
	}
	auto := c.AutoAssignedPlans()
	for _, id := range slices.Sorted(maps.Keys(t.Users)) {
		u := t.Users[id]
		us := UserState{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName, UserType: u.UserType,
			UsageLocation: u.UsageLocation, Status: domain.UserStatus(u), Roles: append([]domain.Role{}, u.Roles...),
			Licenses: []domain.LicenseView{}, Groups: append([]string{}, slices.Sorted(maps.Keys(u.Groups))...), EnabledServices: domain.EnabledServices(c, t, u),
			RetentionHold: u.RetentionHold, AutoAssignedServices: []string{}}
		if u.Deleted {
			at := u.DeletedAt
			us.DeletedAt = &at
		} else {
			us.AutoAssignedServices = auto
		}
		for _, sku := range slices.Sorted(maps.Keys(u.Licenses)) {
			lv := domain.ViewLicense(c, t, u.Licenses[sku])
			us.Licenses = append(us.Licenses, lv)
		}
		us.MailboxSearchable = mailbox(c, t, u)
		s.Users = append(s.Users, us)
		for _, w := range slices.Sorted(maps.Keys(u.Holds)) {
			h := u.Holds[w]
			s.HeldData = append(s.HeldData, HeldData{UserID: u.ID, Workload: w, HeldSince: h.HeldSince, PurgeAfter: h.PurgeAfter,
				Reason: h.Reason, Retained: u.RetentionHold})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.Groups)) {
		g := t.Groups[id]
		gs := GroupState{ID: g.ID, DisplayName: g.DisplayName, Members: append([]string{}, slices.Sorted(maps.Keys(g.Members))...), Licenses: []domain.GroupLicense{}, Errors: []MemberError{}}
		for _, sku := range slices.Sorted(maps.Keys(g.Licenses)) {
			gs.Licenses = append(gs.Licenses, *g.Licenses[sku])
			for _, m := range gs.Members {
				if u := t.Users[m]; u != nil && u.Licenses[sku] != nil {
					if src := u.Licenses[sku].Sources[domain.GroupSource(g.ID)]; src != nil && !src.Active() {
						gs.Errors = append(gs.Errors, MemberError{UserID: m, SkuID: sku, Error: src.Error})
					}
				}
			}
		}
		s.Groups = append(s.Groups, gs)
	}
	for _, id := range slices.Sorted(maps.Keys(t.Apps)) {
		s.Apps = append(s.Apps, *t.Apps[id])
	}
	return s
}

// mailbox reports whether the user has an Exchange plan enabled: after the
// license goes, the mailbox is no longer searchable by eDiscovery (R10).
func mailbox(c *domain.Catalog, t *domain.Tenant, u *domain.User) bool {
	for _, l := range u.Licenses {
		prod, ok := c.Product(t, l.SkuID)
		if !ok {
			continue
		}
		v := domain.ViewLicense(c, t, l)
		for _, id := range v.EnabledPlans {
			for _, sp := range prod.ServicePlans {
				if sp.ID == id && sp.Workload == domain.WorkloadExchange {
					return true
				}
			}
		}
	}
	return false
}
