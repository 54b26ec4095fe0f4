package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/readmodel"
)

// The queries: one method of Service per page of the admin center (the
// routes of docs/API.md "Queries"). A list answers one page of rows, never
// nil; a detail with a paged list in it also carries the next page's
// cursor in its NextCursor.

// Licenses answers the tenant's licenses: one row per product, summed over
// its subscriptions (R5), ordered by product name.
func (s *Service) Licenses(ctx context.Context, tenant string, o Options) (Answer[[]readmodel.LicenseRow], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]readmodel.LicenseRow]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]readmodel.LicenseRow, string, error) {
		return hashPage(r.ctx, s.cfg.Redis, r.key(readmodel.Licenses), p,
			func(sku string, v *readmodel.LicenseRow) string { return v.ProductName + "\x00" + sku })
	})
}

// Subscriptions answers the tenant's subscriptions ("Your products"),
// ordered by subscription id.
func (s *Service) Subscriptions(ctx context.Context, tenant string, o Options) (Answer[[]readmodel.SubscriptionRow], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]readmodel.SubscriptionRow]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]readmodel.SubscriptionRow, string, error) {
		return hashPage(r.ctx, s.cfg.Redis, r.key(readmodel.Subscriptions), p,
			func(id string, _ *readmodel.SubscriptionRow) string { return id })
	})
}

// Subscription answers one subscription of the tenant, with its term
// (o's page is not used).
func (s *Service) Subscription(ctx context.Context, tenant, id string, o Options) (Answer[readmodel.SubscriptionRow], error) {
	return answer(s, ctx, tenant, o, func(r *request) (readmodel.SubscriptionRow, string, error) {
		var row readmodel.SubscriptionRow
		raw, err := s.cfg.Redis.HGet(r.ctx, r.key(readmodel.Subscriptions), id).Result()
		if errors.Is(err, redis.Nil) {
			return row, "", notFound("subscription %q does not exist in tenant %s", bounded(id), r.tenant)
		}
		if err != nil {
			return row, "", err
		}
		if err := json.Unmarshal([]byte(raw), &row); err != nil {
			return row, "", fmt.Errorf("subscription %s: %w", id, err)
		}
		return row, "", nil
	})
}

// UserSummary is a row of the users list.
type UserSummary struct {
	ID                string           `json:"id"`
	UserPrincipalName string           `json:"userPrincipalName"`
	DisplayName       string           `json:"displayName"`
	UserType          string           `json:"userType"`
	UsageLocation     string           `json:"usageLocation,omitempty"`
	Status            string           `json:"status"`
	Roles             []domain.Role    `json:"roles"`
	Licenses          []LicenseSummary `json:"licenses"`
}

// LicenseSummary is a product of a user in a list.
type LicenseSummary struct {
	SkuID         string   `json:"skuId"`
	SkuPartNumber string   `json:"skuPartNumber,omitempty"`
	Sources       []string `json:"sources"`
	State         string   `json:"state"`
	Error         string   `json:"error,omitempty"`
}

func summarize(v readmodel.UserView) UserSummary {
	s := UserSummary{ID: v.ID, UserPrincipalName: v.UserPrincipalName, DisplayName: v.DisplayName, UserType: v.UserType,
		UsageLocation: v.UsageLocation, Status: v.Status, Roles: v.Roles, Licenses: []LicenseSummary{}}
	for _, l := range v.Licenses {
		s.Licenses = append(s.Licenses, LicenseSummary{SkuID: l.SkuID, SkuPartNumber: l.SkuPartNumber, Sources: l.Sources, State: l.State, Error: l.Error})
	}
	return s
}

// userViews reads the views of ids (in order; missing ones are skipped).
func (s *Service) userViews(ctx context.Context, r *request, ids []string) ([]readmodel.UserView, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := s.cfg.Redis.HMGet(ctx, r.key(readmodel.Users), ids...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]readmodel.UserView, 0, len(ids))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var uv readmodel.UserView
		if err := json.Unmarshal([]byte(str), &uv); err != nil {
			return nil, fmt.Errorf("user %s: %w", ids[i], err)
		}
		out = append(out, uv)
	}
	return out, nil
}

// Users answers the tenant's users with a license summary, ordered by id.
func (s *Service) Users(ctx context.Context, tenant string, o Options) (Answer[[]UserSummary], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]UserSummary]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]UserSummary, string, error) {
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.UsersIndex), p)
		if err != nil {
			return nil, "", err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return nil, "", err
		}
		out := make([]UserSummary, 0, len(views))
		for _, v := range views {
			out = append(out, summarize(v))
		}
		return out, next, nil
	})
}

// UserDetail is the answer of GET /users/:u: the user's view and the
// service plans of its licenses by name (the view gives their ids).
type UserDetail struct {
	readmodel.UserView
	ServicePlans []UserServicePlan `json:"servicePlans"`
}

// UserServicePlan is a service plan of one of a user's licenses, by name,
// in the product's order of plans.
type UserServicePlan struct {
	SkuID           string `json:"skuId"`
	ServicePlanID   string `json:"servicePlanId"`
	ServicePlanName string `json:"servicePlanName"`
	Enabled         bool   `json:"enabled"`
}

// User answers one user of the tenant (o's page is not used).
func (s *Service) User(ctx context.Context, tenant, userID string, o Options) (Answer[UserDetail], error) {
	return answer(s, ctx, tenant, o, func(r *request) (UserDetail, string, error) {
		views, err := s.userViews(r.ctx, r, []string{userID})
		if err != nil {
			return UserDetail{}, "", err
		}
		if len(views) == 0 {
			return UserDetail{}, "", notFound("user %q does not exist in tenant %s", bounded(userID), r.tenant)
		}
		out := UserDetail{UserView: views[0], ServicePlans: []UserServicePlan{}}
		for _, l := range out.Licenses {
			prod, err := s.resolveSku(r, l.SkuID)
			var de *domain.Error
			if errors.As(err, &de) {
				continue // an app the tenant no longer lists: ids only
			}
			if err != nil {
				return UserDetail{}, "", err
			}
			for _, sp := range prod.ServicePlans {
				on := slices.Contains(l.EnabledPlans, sp.ID)
				if on || slices.Contains(l.DisabledPlans, sp.ID) {
					out.ServicePlans = append(out.ServicePlans, UserServicePlan{SkuID: l.SkuID, ServicePlanID: sp.ID, ServicePlanName: sp.Name, Enabled: on})
				}
			}
		}
		return out, "", nil
	})
}

// ProductUser is a user holding the product of GET /licenses/:sku.
type ProductUser struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	Status            string   `json:"status"`
	Sources           []string `json:"sources"`
	DisabledPlans     []string `json:"disabledPlans"`
	State             string   `json:"state"`
	Error             string   `json:"error,omitempty"`
}

// ProductDetail is the answer of GET /licenses/:sku.
type ProductDetail struct {
	readmodel.LicenseRow
	DisplayName  string               `json:"displayName"`
	Publisher    string               `json:"publisher,omitempty"`
	ServicePlans []domain.ServicePlan `json:"servicePlans"`
	Users        []ProductUser        `json:"users"`
	NextCursor   string               `json:"nextCursor,omitempty"`
	// Groups are every group giving the product to its members.
	Groups []ProductGroup `json:"groups"`
	// Installed says, for an ISV app, whether it was installed (R12).
	Installed *bool `json:"installed,omitempty"`
}

// ProductGroup is a group giving the product of GET /licenses/:sku.
type ProductGroup struct {
	ID            string   `json:"id"`
	DisplayName   string   `json:"displayName"`
	DisabledPlans []string `json:"disabledPlans"`
	MemberCount   int      `json:"memberCount"`
}

// resolveSku finds the product of a skuId or skuPartNumber: the catalog,
// then the tenant's ISV apps.
func (s *Service) resolveSku(r *request, sku string) (*domain.Product, error) {
	if p, ok := s.cfg.Catalog.Lookup(sku); ok {
		return p, nil
	}
	apps, err := s.cfg.Redis.HGetAll(r.ctx, r.key(readmodel.Apps)).Result()
	if err != nil {
		return nil, err
	}
	var found *domain.Product
	for id, raw := range apps {
		var p domain.Product
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, fmt.Errorf("app %s: %w", id, err)
		}
		if id == sku {
			return &p, nil
		}
		if strings.EqualFold(p.SkuPartNumber, sku) {
			found = &p
		}
	}
	if found != nil {
		return found, nil
	}
	return nil, notFound("product %q is not a product of tenant %s", bounded(sku), r.tenant)
}

// License answers one product of the tenant, by skuId or skuPartNumber: the
// product, its service plans, its counts and the users holding it (a page,
// by id).
func (s *Service) License(ctx context.Context, tenant, sku string, o Options) (Answer[ProductDetail], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[ProductDetail]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) (ProductDetail, string, error) {
		prod, err := s.resolveSku(r, sku)
		if err != nil {
			return ProductDetail{}, "", err
		}
		raw, err := s.cfg.Redis.HGet(r.ctx, r.key(readmodel.Licenses), prod.SkuID).Result()
		if errors.Is(err, redis.Nil) {
			return ProductDetail{}, "", notFound("tenant %s has no licenses of %s", r.tenant, prod.SkuPartNumber)
		}
		if err != nil {
			return ProductDetail{}, "", err
		}
		out := ProductDetail{DisplayName: prod.DisplayName, Publisher: prod.Publisher,
			ServicePlans: append([]domain.ServicePlan{}, prod.ServicePlans...), Users: []ProductUser{}}
		if err := json.Unmarshal([]byte(raw), &out.LicenseRow); err != nil {
			return ProductDetail{}, "", err
		}
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.LicenseUsers(prod.SkuID)), p)
		if err != nil {
			return ProductDetail{}, "", err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return ProductDetail{}, "", err
		}
		for _, v := range views {
			for _, l := range v.Licenses {
				if l.SkuID == prod.SkuID {
					out.Users = append(out.Users, ProductUser{ID: v.ID, UserPrincipalName: v.UserPrincipalName, DisplayName: v.DisplayName,
						Status: v.Status, Sources: l.Sources, DisabledPlans: l.DisabledPlans, State: l.State, Error: l.Error})
				}
			}
		}
		out.NextCursor = next
		if out.Groups, err = s.productGroups(r, prod.SkuID); err != nil {
			return ProductDetail{}, "", err
		}
		if prod.IsApp() {
			raw, err := s.cfg.Redis.HGet(r.ctx, r.key(readmodel.Apps), prod.SkuID).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return ProductDetail{}, "", err
			}
			var app readmodel.AppRow
			if raw != "" {
				if err := json.Unmarshal([]byte(raw), &app); err != nil {
					return ProductDetail{}, "", fmt.Errorf("app %s: %w", prod.SkuID, err)
				}
			}
			out.Installed = &app.Installed
		}
		return out, next, nil
	})
}

// productGroups reads the groups giving sku, by id. It reads the tenant's
// groups hash whole: a tenant has few groups beside its users.
func (s *Service) productGroups(r *request, sku string) ([]ProductGroup, error) {
	h, err := s.cfg.Redis.HGetAll(r.ctx, r.key(readmodel.Groups)).Result()
	if err != nil {
		return nil, err
	}
	out := []ProductGroup{}
	for _, id := range slices.Sorted(maps.Keys(h)) {
		var g readmodel.GroupView
		if err := json.Unmarshal([]byte(h[id]), &g); err != nil {
			return nil, fmt.Errorf("group %s: %w", id, err)
		}
		for _, l := range g.Licenses {
			if l.SkuID == sku {
				out = append(out, ProductGroup{ID: g.ID, DisplayName: g.DisplayName, DisabledPlans: l.DisabledPlans, MemberCount: g.MemberCount})
			}
		}
	}
	return out, nil
}

// GroupMember is a member of a group in GET /groups/:g.
type GroupMember struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
}

// GroupDetail is the answer of GET /groups/:g.
type GroupDetail struct {
	readmodel.GroupView
	Members                  []GroupMember           `json:"members"`
	NextCursor               string                  `json:"nextCursor,omitempty"`
	MembersWithLicenseErrors []readmodel.MemberError `json:"membersWithLicenseErrors"`
}

// Group answers one group of the tenant: the group, its licenses, a page of
// members (by id) and every member the group could not license.
func (s *Service) Group(ctx context.Context, tenant, groupID string, o Options) (Answer[GroupDetail], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[GroupDetail]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) (GroupDetail, string, error) {
		g := groupID
		raw, err := s.cfg.Redis.HGet(r.ctx, r.key(readmodel.Groups), g).Result()
		if errors.Is(err, redis.Nil) {
			return GroupDetail{}, "", notFound("group %q does not exist in tenant %s", bounded(g), r.tenant)
		}
		if err != nil {
			return GroupDetail{}, "", err
		}
		out := GroupDetail{Members: []GroupMember{}, MembersWithLicenseErrors: []readmodel.MemberError{}}
		if err := json.Unmarshal([]byte(raw), &out.GroupView); err != nil {
			return GroupDetail{}, "", err
		}
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.GroupMembers(g)), p)
		if err != nil {
			return GroupDetail{}, "", err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return GroupDetail{}, "", err
		}
		for _, v := range views {
			out.Members = append(out.Members, GroupMember{ID: v.ID, UserPrincipalName: v.UserPrincipalName, DisplayName: v.DisplayName})
		}
		out.NextCursor = next
		errs, err := s.cfg.Redis.HGetAll(r.ctx, r.key(readmodel.GroupErrors(g))).Result()
		if err != nil {
			return GroupDetail{}, "", err
		}
		for _, u := range slices.Sorted(maps.Keys(errs)) {
			var list []readmodel.MemberError
			if err := json.Unmarshal([]byte(errs[u]), &list); err != nil {
				return GroupDetail{}, "", err
			}
			out.MembersWithLicenseErrors = append(out.MembersWithLicenseErrors, list...)
		}
		return out, next, nil
	})
}

// HeldData answers the tenant's held data, ordered by user then workload.
func (s *Service) HeldData(ctx context.Context, tenant string, o Options) (Answer[[]readmodel.HeldRow], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]readmodel.HeldRow]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]readmodel.HeldRow, string, error) {
		ms, next, err := s.lexPage(r.ctx, r.key(readmodel.HeldIndex), p)
		if err != nil {
			return nil, "", err
		}
		out := []readmodel.HeldRow{}
		if len(ms) == 0 {
			return out, next, nil
		}
		vals, err := s.cfg.Redis.HMGet(r.ctx, r.key(readmodel.Held), ms...).Result()
		if err != nil {
			return nil, "", err
		}
		for _, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			var row readmodel.HeldRow
			if err := json.Unmarshal([]byte(str), &row); err != nil {
				return nil, "", err
			}
			out = append(out, row)
		}
		return out, next, nil
	})
}
