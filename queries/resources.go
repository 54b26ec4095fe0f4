package queries

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/readmodel"
)

// The queries of the admin center's resources beside its pages: the list of
// groups, one subscription, and the operator's tenants.

// Groups answers the tenant's groups (without their members: GET
// /groups/:g has them), ordered by group id.
func (s *Service) Groups(ctx context.Context, tenant string, o Options) (Answer[[]readmodel.GroupView], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]readmodel.GroupView]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]readmodel.GroupView, string, error) {
		return hashPage(r.ctx, s.cfg.Redis, r.key(readmodel.Groups), p,
			func(id string, _ *readmodel.GroupView) string { return id })
	})
}

// TenantSummary is a tenant as the operator sees it: its name, the version
// its read models applied, and how many users, groups and subscriptions it has.
type TenantSummary struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Version       uint64 `json:"version"`
	Users         int64  `json:"users"`
	Groups        int64  `json:"groups"`
	Subscriptions int64  `json:"subscriptions"`
}

// tenantSummaries reads the summaries of ids in one round trip (in order).
// seen[i] is the applied version of out[i]'s tenant read after its counts:
// the newest what the row holds can be (the projection may apply events
// between the row's reads). A tenant without read models is left out.
func (s *Service) tenantSummaries(ctx context.Context, keys readmodel.Keys, ids []string) (out []TenantSummary, seen []uint64, err error) {
	type cmds struct {
		meta                 *redis.SliceCmd
		users, groups, subsc *redis.IntCmd
		after                *redis.StringCmd
	}
	pipe := s.cfg.Redis.Pipeline()
	cs := make([]cmds, len(ids))
	for i, id := range ids {
		cs[i] = cmds{
			meta:   pipe.HMGet(ctx, keys.Key(id, readmodel.Meta), "id", "name", "version"),
			users:  pipe.ZCard(ctx, keys.Key(id, readmodel.UsersIndex)),
			groups: pipe.HLen(ctx, keys.Key(id, readmodel.Groups)),
			subsc:  pipe.HLen(ctx, keys.Key(id, readmodel.Subscriptions)),
			after:  pipe.HGet(ctx, keys.Key(id, readmodel.Meta), "version"),
		}
	}
	if len(ids) > 0 {
		// Exec's error is the first command's: a tenant without read
		// models (after's redis.Nil) may hide another's failure, so each
		// command's own error is checked below.
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, nil, err
		}
	}
	out = make([]TenantSummary, 0, len(ids))
	seen = make([]uint64, 0, len(ids))
	for i, id := range ids {
		var m struct {
			ID      string `redis:"id"`
			Name    string `redis:"name"`
			Version uint64 `redis:"version"`
		}
		if err := cs[i].meta.Scan(&m); err != nil {
			return nil, nil, err
		}
		if m.Version == 0 {
			continue // in the set, not (or no longer) in the read models
		}
		after, err := cs[i].after.Uint64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, nil, err
		}
		if err := errors.Join(cs[i].users.Err(), cs[i].groups.Err(), cs[i].subsc.Err()); err != nil {
			return nil, nil, err
		}
		out = append(out, TenantSummary{ID: id, Name: m.Name, Version: m.Version,
			Users: cs[i].users.Val(), Groups: cs[i].groups.Val(), Subscriptions: cs[i].subsc.Val()})
		seen = append(seen, max(after, m.Version))
	}
	return out, seen, nil
}

// Tenant answers one tenant's summary (o's page is not used).
func (s *Service) Tenant(ctx context.Context, tenant string, o Options) (Answer[TenantSummary], error) {
	return answer(s, ctx, tenant, o, func(r *request) (TenantSummary, string, error) {
		ts, _, err := s.tenantSummaries(r.ctx, r.keys, []string{r.tenant})
		if err != nil {
			return TenantSummary{}, "", err
		}
		if len(ts) == 0 {
			return TenantSummary{}, "", notFound("tenant %q does not exist", r.tenant)
		}
		return ts[0], "", nil
	})
}

// Tenants answers the tenants of the read models (the projection's tenant
// set: no scan of the event log), ordered by id, one page at a time. The
// answer's Version is 0: it spans tenants; o.MinVersion must be 0.
//
// Each row is an answer of its tenant and goes no more back in time than
// the tenant's own: a page with a row older than what this Service answered
// for that tenant before the page was read waits up to StaleWait for the
// read models and then fails unavailable; the rows' versions are
// remembered as the tenant's answers are. A tenant in the set whose read
// models the prefix lacks is left out, not waited for.
func (s *Service) Tenants(ctx context.Context, o Options) (Answer[[]TenantSummary], error) {
	p, err := pageOf(o)
	if err != nil {
		return Answer[[]TenantSummary]{}, err
	}
	if o.MinVersion != 0 {
		return Answer[[]TenantSummary]{}, invalid("minVersion", "minVersion names a version of one tenant; the tenant list takes none")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+s.cfg.StaleWait)
	defer cancel()
	deadline := time.Now().Add(s.cfg.StaleWait)
	for {
		pg, err := s.tenantsPage(ctx, p)
		if err != nil {
			return Answer[[]TenantSummary]{}, s.fail(err)
		}
		lag := s.behind(pg)
		if lag == nil {
			for i, row := range pg.rows {
				s.served.observe(row.ID, pg.seen[i])
			}
			return Answer[[]TenantSummary]{Value: pg.rows, NextCursor: pg.next}, nil
		}
		if time.Now().After(deadline) {
			return Answer[[]TenantSummary]{}, lag
		}
		select {
		case <-ctx.Done():
			return Answer[[]TenantSummary]{}, s.fail(ctx.Err())
		case <-time.After(s.cfg.PollInterval):
		}
	}
}

// tenantsRead is one read of a page of the tenant list.
type tenantsRead struct {
	rows []TenantSummary
	seen []uint64 // seen[i]: rows[i]'s applied version after its reads
	// answered holds, for the page's tenants, the version this Service had
	// answered before the read (as begin reads it before a tenant's
	// reads): answers that end while the page is read are not before it.
	answered map[string]uint64
	next     string
}

// behind is the UnavailableError of a page of tenants with a row older than
// what this Service answered for its tenant before the page was read, nil
// when there is none.
func (s *Service) behind(pg tenantsRead) error {
	for _, row := range pg.rows {
		if served := pg.answered[row.ID]; row.Version < served {
			return s.unavailable("the read models have applied version %d of tenant %s, behind version %d already answered; retry shortly", row.Version, row.ID, served)
		}
	}
	return nil
}

func (s *Service) tenantsPage(ctx context.Context, p page) (tenantsRead, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return tenantsRead{}, err
	}
	complete, err := readmodel.Complete(ctx, s.cfg.Redis, keys.Prefix, false)
	if err != nil {
		return tenantsRead{}, err
	}
	if !complete {
		return tenantsRead{}, errRebuilding
	}
	// The set holds one member per tenant: sorting it per page is O(tenants),
	// small beside a tenant's own rows.
	ids, err := s.cfg.Redis.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return tenantsRead{}, err
	}
	slices.Sort(ids)
	start, _ := slices.BinarySearch(ids, p.after)
	if start < len(ids) && p.after != "" && ids[start] == p.after {
		start++
	}
	ids = ids[start:]
	pg := tenantsRead{answered: make(map[string]uint64, len(ids))}
	if len(ids) > p.limit {
		ids = ids[:p.limit]
		pg.next = encodeCursor(ids[len(ids)-1])
	}
	for _, id := range ids {
		pg.answered[id] = s.served.get(id)
	}
	if pg.rows, pg.seen, err = s.tenantSummaries(ctx, keys, ids); err != nil {
		return tenantsRead{}, err
	}
	return pg, nil
}
