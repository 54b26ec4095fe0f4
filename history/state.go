package history

import (
	"slices"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/readmodel"
)

// The rendered state: what GET /v1/tenants/{t}/state answers, and what
// DiffStates compares entity by entity.

// State is the whole tenant as it was at a version. Its rows are the read
// model's (package readmodel) wherever time travel shows the same thing
// in the same shape; the types below are only where it does not, and say
// why. /state answers this struct as it is: a field moved or retyped here
// changes the bytes of that answer and of the diffs (the JSON key order
// included), so keep them unless the answer is meant to change.
type State struct {
	TenantID string    `json:"tenantId"`
	Name     string    `json:"name"`
	Version  uint64    `json:"version"`
	AsOf     time.Time `json:"asOf"`
	// Products are the Licenses page's rows (R5), rendered as time travel
	// renders them: only products with a subscription, named by their skuId
	// when the catalog does not know them (the projector keeps a row while
	// any count is non-zero and leaves unknown names empty).
	Products []readmodel.LicenseRow `json:"products"`
	// Subscriptions are the aggregate's own records, not the read model's
	// SubscriptionRow: time travel shows selfService and termAnchor, which
	// the row drops, and no catalog names, which the row adds. Both show the
	// term (R16, R17): its dates, trial end, cancellation window, recurring
	// billing and lifecycle status.
	Subscriptions []domain.Subscription `json:"subscriptions"`
	Users         []UserState           `json:"users"`
	Groups        []GroupState          `json:"groups"`
	HeldData      []HeldData            `json:"heldData"`
	Apps          []domain.Product      `json:"apps"` // as the read model's Apps hash holds them
	Installs      map[string]int        `json:"installs,omitempty"`
}

// UserState is a user with their licenses as the admin center shows them.
// It begins with the read model's UserProfile; the rest is not UserView's
// on purpose: a user's held data is in State.HeldData (not per user),
// mailboxSearchable is only here, and the fields keep /state's key order
// (licenses before groups, retentionHold before autoAssignedServices).
type UserState struct {
	readmodel.UserProfile
	Licenses             []domain.LicenseView `json:"licenses"`
	Groups               []string             `json:"groups"`
	EnabledServices      []string             `json:"enabledServices"`
	RetentionHold        bool                 `json:"retentionHold"`
	MailboxSearchable    bool                 `json:"mailboxSearchable"`
	AutoAssignedServices []string             `json:"autoAssignedServices"`
}

// GroupState is a group with its members, licenses and members in error.
// Not the read model's GroupView: time travel lists every member (the read
// model counts them and keeps the list in a sorted set beside the row) and
// the group's own license records (no part number; disabledPlans left out
// when empty).
type GroupState struct {
	ID          string                `json:"id"`
	DisplayName string                `json:"displayName"`
	Members     []string              `json:"members"`
	Licenses    []domain.GroupLicense `json:"licenses"`
	// Time travel fills userId, skuId and error only; the read model's
	// skuPartNumber and detail stay empty, and omitted, so that /state
	// keeps its shape. Filling them would change its answers.
	MembersWithLicenseErrors []readmodel.MemberError `json:"membersWithLicenseErrors"`
}

// HeldData is data kept after a license or user went (R10). Not the read
// model's HeldRow, whose reason is left out when empty and comes after
// retained: /state answers reason even when empty, before retained.
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
	return render(c, t, sortedKeys(t.Users), nil)
}

// UserPage bounds the users of a rendered state: the first Limit users in the
// state's order (by id) and the users named in IDs (ids the tenant does
// not have are left out). Limit 0 with no IDs is no user.
type UserPage struct {
	Limit int
	IDs   []string
}

// Paged is a state with some of its users: those of a UserPage, with only
// their held data; UsersTotal and HeldDataTotal count the whole state's.
type Paged struct {
	State
	UsersTotal    int `json:"usersTotal"`
	HeldDataTotal int `json:"heldDataTotal"`
}

// RenderPage renders t with the users of p only (and their held data): it
// costs what those users cost, whatever the tenant's size, but the
// sorting of ids. Its users are rendered exactly as Render renders them.
func RenderPage(c *domain.Catalog, t *domain.Tenant, p UserPage) Paged {
	ids := sortedKeys(t.Users)
	held := 0
	for _, u := range t.Users {
		held += len(u.Holds)
	}
	sel := ids[:min(p.Limit, len(ids))]
	var extra []string
	for _, id := range p.IDs {
		if _, ok := t.Users[id]; ok {
			if _, found := slices.BinarySearch(sel, id); !found {
				extra = append(extra, id)
			}
		}
	}
	if len(extra) > 0 {
		sel = append(slices.Clone(sel), extra...)
		slices.Sort(sel)
		sel = slices.Compact(sel)
	}
	return Paged{State: render(c, t, sel, nil), UsersTotal: len(ids), HeldDataTotal: held}
}

// render renders t with the users of ids (sorted, existing) and the
// groups in groups (nil: every group).
func render(c *domain.Catalog, t *domain.Tenant, ids []string, groups map[string]bool) State {
	s := State{TenantID: t.ID, Name: t.Name, Version: t.Version, AsOf: t.LastOccurredAt,
		Products: make([]readmodel.LicenseRow, 0, len(t.Pools)), Subscriptions: make([]domain.Subscription, 0, len(t.Subscriptions)),
		Users: make([]UserState, 0, len(ids)), Groups: make([]GroupState, 0, len(t.Groups)),
		HeldData: []HeldData{}, Apps: make([]domain.Product, 0, len(t.Apps)), Installs: t.Installs}
	for _, sku := range sortedKeys(t.Pools) {
		p := t.Pools[sku]
		if p.Subscriptions == 0 {
			continue
		}
		ps := readmodel.LicenseRow{SkuID: sku, SkuPartNumber: sku, ProductName: sku, Total: p.Total, Assigned: p.Assigned,
			Available: p.Available(), Subscriptions: p.Subscriptions, SelfServiceTotal: p.SelfServiceTotal, SelfServiceAssigned: p.SelfServiceAssigned}
		if prod, ok := c.Product(t, sku); ok {
			ps.SkuPartNumber, ps.ProductName = prod.SkuPartNumber, prod.DisplayName
		}
		s.Products = append(s.Products, ps)
	}
	for _, id := range sortedKeys(t.Subscriptions) {
		s.Subscriptions = append(s.Subscriptions, *t.Subscriptions[id])
	}
	auto := c.AutoAssignedPlans()
	for _, id := range ids {
		u := t.Users[id]
		us := UserState{
			UserProfile: readmodel.UserProfile{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
				UserType: u.UserType, UsageLocation: u.UsageLocation, Status: domain.UserStatus(u), Roles: append([]domain.Role{}, u.Roles...)},
			Licenses: make([]domain.LicenseView, 0, len(u.Licenses)), Groups: append([]string{}, sortedKeys(u.Groups)...),
			EnabledServices: domain.EnabledServices(c, t, u), RetentionHold: u.RetentionHold, AutoAssignedServices: []string{}}
		if u.Deleted {
			at := u.DeletedAt
			us.DeletedAt = &at
		} else {
			us.AutoAssignedServices = auto
		}
		for _, sku := range sortedKeys(u.Licenses) {
			lv := domain.ViewLicense(c, t, u.Licenses[sku])
			us.Licenses = append(us.Licenses, lv)
		}
		us.MailboxSearchable = mailbox(c, t, us.Licenses)
		s.Users = append(s.Users, us)
		for _, w := range sortedKeys(u.Holds) {
			h := u.Holds[w]
			s.HeldData = append(s.HeldData, HeldData{UserID: u.ID, Workload: w, HeldSince: h.HeldSince, PurgeAfter: h.PurgeAfter,
				Reason: h.Reason, Retained: u.RetentionHold})
		}
	}
	for _, id := range sortedKeys(t.Groups) {
		if groups != nil && !groups[id] {
			continue
		}
		g := t.Groups[id]
		gs := GroupState{ID: g.ID, DisplayName: g.DisplayName, Members: append([]string{}, sortedKeys(g.Members)...),
			Licenses: []domain.GroupLicense{}, MembersWithLicenseErrors: []readmodel.MemberError{}}
		for _, sku := range sortedKeys(g.Licenses) {
			gs.Licenses = append(gs.Licenses, *g.Licenses[sku])
			for _, m := range gs.Members {
				if u := t.Users[m]; u != nil && u.Licenses[sku] != nil {
					if src := u.Licenses[sku].Sources[domain.GroupSource(g.ID)]; src != nil && !src.Active() {
						gs.MembersWithLicenseErrors = append(gs.MembersWithLicenseErrors, readmodel.MemberError{UserID: m, SkuID: sku, Error: src.Error})
					}
				}
			}
		}
		s.Groups = append(s.Groups, gs)
	}
	for _, id := range sortedKeys(t.Apps) {
		s.Apps = append(s.Apps, *t.Apps[id])
	}
	return s
}

// mailbox reports whether the user has an Exchange plan enabled: after the
// license goes, the mailbox is no longer searchable by eDiscovery (R10).
// views are the user's licenses as Render shows them.
func mailbox(c *domain.Catalog, t *domain.Tenant, views []domain.LicenseView) bool {
	for _, v := range views {
		prod, ok := c.Product(t, v.SkuID)
		if !ok {
			continue
		}
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

// sortedKeys is slices.Sorted(maps.Keys(m)) without the iterators'
// allocations, and nil for an empty map: Render calls it several times per
// user, and it was two fifths of Render's time.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	if len(m) == 0 {
		return nil
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
