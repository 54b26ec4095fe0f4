package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/readmodel"
)

// List is the answer of every list query. It is written as a bare JSON
// array (the shape API.md shows); the cursor of the next page travels in the
// X-Next-Cursor header and a Link header with rel="next" (docs/API.md,
// "Lists").
type List[T any] struct {
	Value      []T    `json:"value"`
	NextCursor string `json:"nextCursor,omitempty"`
}

func (l List[T]) items() any {
	if l.Value == nil {
		return []T{}
	}
	return l.Value
}

func (l List[T]) cursor() string { return l.NextCursor }

// UnmarshalJSON reads a list answer: the bare array (the cursor comes from
// the X-Next-Cursor header, see SetCursor) or the object form.
func (l *List[T]) UnmarshalJSON(b []byte) error {
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "[") {
		return json.Unmarshal(b, &l.Value)
	}
	type plain List[T]
	return json.Unmarshal(b, (*plain)(l))
}

// SetCursor records the X-Next-Cursor header of a list answer.
func (l *List[T]) SetCursor(next string) { l.NextCursor = next }

// paged is an answer with a page of a list in it: a List, or a detail
// with its paged members. Its cursor goes in X-Next-Cursor and Link
// (api.SetNextCursor), the one way every paged answer says there is more.
type paged interface{ cursor() string }

// lister is a List: written as its bare array.
type lister interface {
	paged
	items() any
}

func (d ProductDetail) cursor() string { return d.NextCursor }
func (d GroupDetail) cursor() string   { return d.NextCursor }

func sortRows[T any](rows []T, less func(a, b T) bool) {
	sort.Slice(rows, func(i, j int) bool { return less(rows[i], rows[j]) })
}

// Licenses answers GET /v1/tenants/:t/licenses: one row per product, summed
// over its subscriptions (R5), ordered by product name.
func (s *Service) Licenses(c *gin.Context) {
	p, err := parsePage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.run(c, func(r *request) (any, error) {
		rows, next, err := hashPage(r.ctx, s.cfg.Redis, r.key(readmodel.Licenses), p,
			func(sku string, v *readmodel.LicenseRow) string { return v.ProductName + "\x00" + sku })
		if err != nil {
			return nil, err
		}
		return List[readmodel.LicenseRow]{Value: rows, NextCursor: next}, nil
	})
}

// Subscriptions answers GET /v1/tenants/:t/subscriptions ("Your products"),
// ordered by subscription id.
func (s *Service) Subscriptions(c *gin.Context) {
	p, err := parsePage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.run(c, func(r *request) (any, error) {
		rows, next, err := hashPage(r.ctx, s.cfg.Redis, r.key(readmodel.Subscriptions), p,
			func(id string, _ *readmodel.SubscriptionRow) string { return id })
		if err != nil {
			return nil, err
		}
		return List[readmodel.SubscriptionRow]{Value: rows, NextCursor: next}, nil
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

// Users answers GET /v1/tenants/:t/users: users with a license summary,
// ordered by id.
func (s *Service) Users(c *gin.Context) {
	p, err := parsePage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.run(c, func(r *request) (any, error) {
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.UsersIndex), p)
		if err != nil {
			return nil, err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return nil, err
		}
		out := List[UserSummary]{Value: make([]UserSummary, 0, len(views)), NextCursor: next}
		for _, v := range views {
			out.Value = append(out.Value, summarize(v))
		}
		return out, nil
	})
}

// User answers GET /v1/tenants/:t/users/:u.
func (s *Service) User(c *gin.Context) {
	if err := api.CheckQuery(c, itemParams...); err != nil {
		s.fail(c, err)
		return
	}
	id, err := pathID(c, "u", "userId")
	if err != nil {
		s.fail(c, err)
		return
	}
	s.run(c, func(r *request) (any, error) {
		views, err := s.userViews(r.ctx, r, []string{id})
		if err != nil {
			return nil, err
		}
		if len(views) == 0 {
			return nil, notFound("user %q does not exist in tenant %s", id, r.tenant)
		}
		return views[0], nil
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
	return nil, notFound("product %q is not a product of tenant %s", api.Bounded(sku), r.tenant)
}

// License answers GET /v1/tenants/:t/licenses/:sku: the product, its
// service plans, its counts and the users holding it (paginated by id).
func (s *Service) License(c *gin.Context) {
	p, err := parsePage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.run(c, func(r *request) (any, error) {
		prod, err := s.resolveSku(r, c.Param("sku"))
		if err != nil {
			return nil, err
		}
		raw, err := s.cfg.Redis.HGet(r.ctx, r.key(readmodel.Licenses), prod.SkuID).Result()
		if errors.Is(err, redis.Nil) {
			return nil, notFound("tenant %s has no licenses of %s", r.tenant, prod.SkuPartNumber)
		}
		if err != nil {
			return nil, err
		}
		out := ProductDetail{DisplayName: prod.DisplayName, Publisher: prod.Publisher,
			ServicePlans: append([]domain.ServicePlan{}, prod.ServicePlans...), Users: []ProductUser{}}
		if err := json.Unmarshal([]byte(raw), &out.LicenseRow); err != nil {
			return nil, err
		}
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.LicenseUsers(prod.SkuID)), p)
		if err != nil {
			return nil, err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return nil, err
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
		return out, nil
	})
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

// Group answers GET /v1/tenants/:t/groups/:g: the group, its licenses, a
// page of members (by id) and every member the group could not license.
func (s *Service) Group(c *gin.Context) {
	p, err := parsePage(c)
	if err == nil {
		_, err = pathID(c, "g", "groupId")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.run(c, func(r *request) (any, error) {
		g := c.Param("g")
		raw, err := s.cfg.Redis.HGet(r.ctx, r.key(readmodel.Groups), g).Result()
		if errors.Is(err, redis.Nil) {
			return nil, notFound("group %q does not exist in tenant %s", g, r.tenant)
		}
		if err != nil {
			return nil, err
		}
		out := GroupDetail{Members: []GroupMember{}, MembersWithLicenseErrors: []readmodel.MemberError{}}
		if err := json.Unmarshal([]byte(raw), &out.GroupView); err != nil {
			return nil, err
		}
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.GroupMembers(g)), p)
		if err != nil {
			return nil, err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return nil, err
		}
		for _, v := range views {
			out.Members = append(out.Members, GroupMember{ID: v.ID, UserPrincipalName: v.UserPrincipalName, DisplayName: v.DisplayName})
		}
		out.NextCursor = next
		errs, err := s.cfg.Redis.HGetAll(r.ctx, r.key(readmodel.GroupErrors(g))).Result()
		if err != nil {
			return nil, err
		}
		for _, u := range sortedKeys(errs) {
			var list []readmodel.MemberError
			if err := json.Unmarshal([]byte(errs[u]), &list); err != nil {
				return nil, err
			}
			out.MembersWithLicenseErrors = append(out.MembersWithLicenseErrors, list...)
		}
		return out, nil
	})
}

// HeldData answers GET /v1/tenants/:t/heldData, ordered by user then workload.
func (s *Service) HeldData(c *gin.Context) {
	p, err := parsePage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.run(c, func(r *request) (any, error) {
		ms, next, err := s.lexPage(r.ctx, r.key(readmodel.HeldIndex), p)
		if err != nil {
			return nil, err
		}
		out := List[readmodel.HeldRow]{Value: []readmodel.HeldRow{}, NextCursor: next}
		if len(ms) == 0 {
			return out, nil
		}
		vals, err := s.cfg.Redis.HMGet(r.ctx, r.key(readmodel.Held), ms...).Result()
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			var row readmodel.HeldRow
			if err := json.Unmarshal([]byte(str), &row); err != nil {
				return nil, err
			}
			out.Value = append(out.Value, row)
		}
		return out, nil
	})
}

// pathID returns a path parameter that must be a valid id (400 naming
// the parameter otherwise, as the command routes answer).
func pathID(c *gin.Context, param, field string) (string, error) {
	v := c.Param(param)
	if !domain.ValidID(v) {
		return "", invalid(field, "%s %q in the path is not valid: use 1 to 128 characters of A-Z a-z 0-9 . _ @ - (not . or ..)", field, api.Bounded(v))
	}
	return v, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Mount adds the routes to a gin group rooted at /v1/tenants/:t (the api
// package's tenant group), with paths relative to it.
func (s *Service) Mount(tenant gin.IRoutes) {
	for _, rt := range s.Routes() {
		tenant.Handle(rt.Method, strings.TrimPrefix(rt.Path, "/v1/tenants/:t"), rt.Handler)
	}
}
