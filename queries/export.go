package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/readmodel"
)

// The exports: the pages a CSV export is written from. An export reads the
// same read models as the lists (users by id, a product's holders by id),
// one page per call; the caller follows NextCursor and writes each page as
// it comes, so an export of any size holds one page in memory. Each page is
// read at a version no older than the one before it (the Service never
// answers back in time).

// ExportedUser is a user as an export writes them: the profile and the
// products they hold, each with its product name.
type ExportedUser struct {
	readmodel.UserProfile
	Licenses []ExportedLicense
}

// ExportedLicense is a product a user holds, named for people.
type ExportedLicense struct {
	domain.LicenseView
	// ProductName is the product's display name ("Microsoft 365 E3"); the
	// skuPartNumber when the product is unknown.
	ProductName string
	// DisabledPlanNames are the names of the service plans off (the plan
	// id when the product does not name it).
	DisabledPlanNames []string
}

// ExportUsers answers one page of the tenant's users (by id, as Users) with
// their licenses named.
func (s *Service) ExportUsers(ctx context.Context, tenant string, o Options) (Answer[[]ExportedUser], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]ExportedUser]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]ExportedUser, string, error) {
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.UsersIndex), p)
		if err != nil {
			return nil, "", err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return nil, "", err
		}
		names, err := s.productNames(r)
		if err != nil {
			return nil, "", err
		}
		out := make([]ExportedUser, 0, len(views))
		for _, v := range views {
			u := ExportedUser{UserProfile: v.UserProfile, Licenses: make([]ExportedLicense, 0, len(v.Licenses))}
			for _, l := range v.Licenses {
				u.Licenses = append(u.Licenses, s.exported(l, names[l.SkuID]))
			}
			out = append(out, u)
		}
		return out, next, nil
	})
}

// ExportLicenseUsers answers one page of the holders of one product (a
// skuId or skuPartNumber), by id as License's users; each user's Licenses
// holds that product only.
func (s *Service) ExportLicenseUsers(ctx context.Context, tenant, sku string, o Options) (Answer[[]ExportedUser], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]ExportedUser]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]ExportedUser, string, error) {
		prod, err := s.resolveSku(r, sku)
		if err != nil {
			return nil, "", err
		}
		if _, err := s.cfg.Redis.HGet(r.ctx, r.key(readmodel.Licenses), prod.SkuID).Result(); errors.Is(err, redis.Nil) {
			return nil, "", notFound("tenant %s has no licenses of %s", r.tenant, prod.SkuPartNumber)
		} else if err != nil {
			return nil, "", err
		}
		ids, next, err := s.lexPage(r.ctx, r.key(readmodel.LicenseUsers(prod.SkuID)), p)
		if err != nil {
			return nil, "", err
		}
		views, err := s.userViews(r.ctx, r, ids)
		if err != nil {
			return nil, "", err
		}
		out := make([]ExportedUser, 0, len(views))
		for _, v := range views {
			for _, l := range v.Licenses {
				if l.SkuID == prod.SkuID {
					out = append(out, ExportedUser{UserProfile: v.UserProfile,
						Licenses: []ExportedLicense{s.exportedOf(l, prod)}})
				}
			}
		}
		return out, next, nil
	})
}

// productNames reads the tenant's products (skuId → the product), from the
// Licenses page's rows and the tenant's apps: the catalog knows catalog
// products, the tenant its ISV apps.
func (s *Service) productNames(r *request) (map[string]*domain.Product, error) {
	out := map[string]*domain.Product{}
	rows, err := s.cfg.Redis.HGetAll(r.ctx, r.key(readmodel.Licenses)).Result()
	if err != nil {
		return nil, err
	}
	apps, err := s.cfg.Redis.HGetAll(r.ctx, r.key(readmodel.Apps)).Result()
	if err != nil {
		return nil, err
	}
	for id, raw := range apps {
		var p domain.Product
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, fmt.Errorf("app %s: %w", id, err)
		}
		out[id] = &p
	}
	for id, raw := range rows {
		if out[id] != nil {
			continue
		}
		if p, ok := s.cfg.Catalog.Lookup(id); ok {
			out[id] = p
			continue
		}
		var row readmodel.LicenseRow
		if err := json.Unmarshal([]byte(raw), &row); err != nil {
			return nil, fmt.Errorf("license %s: %w", id, err)
		}
		out[id] = &domain.Product{SkuID: id, SkuPartNumber: row.SkuPartNumber, DisplayName: row.ProductName}
	}
	return out, nil
}

// exported names l with its product (nil: the catalog's, if it knows it).
func (s *Service) exported(l domain.LicenseView, p *domain.Product) ExportedLicense {
	if p == nil {
		p, _ = s.cfg.Catalog.Lookup(l.SkuID)
	}
	return s.exportedOf(l, p)
}

func (s *Service) exportedOf(l domain.LicenseView, p *domain.Product) ExportedLicense {
	e := ExportedLicense{LicenseView: l, ProductName: l.SkuPartNumber, DisabledPlanNames: make([]string, 0, len(l.DisabledPlans))}
	if e.ProductName == "" {
		e.ProductName = l.SkuID
	}
	plans := map[string]string{}
	if p != nil {
		if p.DisplayName != "" {
			e.ProductName = p.DisplayName
		}
		for _, sp := range p.ServicePlans {
			plans[strings.ToLower(sp.ID)] = sp.Name
		}
	}
	for _, id := range l.DisabledPlans {
		if n := plans[strings.ToLower(id)]; n != "" {
			id = n
		}
		e.DisabledPlanNames = append(e.DisabledPlanNames, id)
	}
	return e
}
