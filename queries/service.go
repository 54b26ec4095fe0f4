// Package queries answers the read side of the API from the Redis read
// models the projections package writes. Handlers are gin.HandlerFuncs the
// api package mounts (behind its auth and tenant-isolation middleware).
package queries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/readmodel"
)

// Config configures a Service. Redis is required.
type Config struct {
	Redis   redis.UniversalClient
	Catalog *domain.Catalog // default domain.DefaultCatalog()
	// Prefix pins the key prefix; empty: the active prefix
	// (readmodel.ActivePrefixKey), cached for PrefixTTL.
	Prefix    string
	PrefixTTL time.Duration // default 1s
	// MaxWait bounds the wait for ?minVersion (default 5s).
	MaxWait time.Duration
	// PollInterval is how often the applied version is read while waiting (default 20ms).
	PollInterval time.Duration
	// RetryAfter is the Retry-After of a 503 answer (default 1s).
	RetryAfter time.Duration
	// Timeout bounds the Redis calls of one request (default 5s).
	Timeout time.Duration
	// StaleWait bounds the wait, on a request without ?minVersion, for the
	// read model of a tenant to reach the version this process already
	// answered (default 1s); then the answer is 503 unavailable.
	StaleWait time.Duration
	// Tracked bounds the tenants whose answered version is remembered
	// (default 100,000); see highWater.
	Tracked int
}

// Route is one query endpoint in gin path syntax.
type Route struct {
	Method  string
	Path    string
	Handler gin.HandlerFunc
}

// Service answers queries from Redis.
type Service struct {
	cfg Config

	mu       sync.Mutex
	prefix   string
	prefixAt time.Time

	served  *highWater // the highest version answered per tenant
	cluster bool       // Redis is a cluster: check slot markers too
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Catalog == nil {
		cfg.Catalog = domain.DefaultCatalog()
	}
	if cfg.PrefixTTL <= 0 {
		cfg.PrefixTTL = time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.StaleWait <= 0 {
		cfg.StaleWait = time.Second
	}
	if cfg.Tracked <= 0 {
		cfg.Tracked = 100_000
	}
	return &Service{cfg: cfg, served: newHighWater(cfg.Tracked), cluster: readmodel.IsCluster(cfg.Redis)}
}

// Routes lists the query endpoints of API.md ("Queries").
func (s *Service) Routes() []Route {
	return []Route{
		{http.MethodGet, "/v1/tenants/:t/licenses", s.Licenses},
		{http.MethodGet, "/v1/tenants/:t/licenses/:sku", s.License},
		{http.MethodGet, "/v1/tenants/:t/subscriptions", s.Subscriptions},
		{http.MethodGet, "/v1/tenants/:t/users", s.Users},
		{http.MethodGet, "/v1/tenants/:t/users/:u", s.User},
		{http.MethodGet, "/v1/tenants/:t/groups/:g", s.Group},
		{http.MethodGet, "/v1/tenants/:t/heldData", s.HeldData},
	}
}

// Ping reports whether Redis answers (for /readyz).
func (s *Service) Ping(ctx context.Context) error { return s.cfg.Redis.Ping(ctx).Err() }

// errRebuilding says the active prefix has no Present marker: Redis lost the
// read models (or never had them) and they are being rebuilt.
// fail answers it 503 with Retry-After.
var errRebuilding = errors.New("the read models are being rebuilt (Redis lost its data); retry shortly")

// Ready reports whether the read models can be served (for /readyz): Redis
// answers and the active prefix is complete (its Present marker is set).
func (s *Service) Ready(ctx context.Context) error {
	keys, err := s.keys(ctx)
	if err != nil {
		return fmt.Errorf("read models: %w", err)
	}
	complete, err := readmodel.Complete(ctx, s.cfg.Redis, keys.Prefix, false)
	if err != nil {
		return fmt.Errorf("read models: %w", err)
	}
	if !complete {
		return errors.New("read models: being rebuilt (Redis lost its data, or a first start catches up)")
	}
	return nil
}

// applied reads, in one round trip, whether the read models under keys are
// complete and the applied version of tenant. On a Redis Cluster complete
// also needs the slot marker of the tenant's slot (readmodel.MarkSlots): it
// lives and dies with the tenant's keys, so a master that came back empty
// answers 503, not "no such tenant".
func (s *Service) applied(ctx context.Context, keys readmodel.Keys, tenant string) (present bool, version uint64, err error) {
	pipe := s.cfg.Redis.Pipeline()
	ex := pipe.Exists(ctx, keys.Present())
	var slot *redis.IntCmd
	if s.cluster {
		slot = pipe.Exists(ctx, keys.TenantSlotMarker(tenant))
	}
	ver := pipe.HGet(ctx, keys.Key(tenant, readmodel.Meta), "version")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, 0, err
	}
	if err := ex.Err(); err != nil {
		return false, 0, err
	}
	present = ex.Val() > 0
	if slot != nil {
		present = present && slot.Val() > 0
	}
	version, err = ver.Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, 0, err
	}
	return present, version, nil
}

// keys returns the key layout of the active prefix.
func (s *Service) keys(ctx context.Context) (readmodel.Keys, error) {
	if s.cfg.Prefix != "" {
		return readmodel.Keys{Prefix: s.cfg.Prefix}, nil
	}
	s.mu.Lock()
	if s.prefix != "" && time.Since(s.prefixAt) < s.cfg.PrefixTTL {
		p := s.prefix
		s.mu.Unlock()
		return readmodel.Keys{Prefix: p}, nil
	}
	s.mu.Unlock()
	p, err := s.cfg.Redis.Get(ctx, readmodel.ActivePrefixKey).Result()
	if errors.Is(err, redis.Nil) || (err == nil && p == "") {
		p, err = readmodel.DefaultPrefix, nil
	}
	if err != nil {
		return readmodel.Keys{}, err
	}
	s.mu.Lock()
	s.prefix, s.prefixAt = p, time.Now()
	s.mu.Unlock()
	return readmodel.Keys{Prefix: p}, nil
}

// Problem codes (the api package's).
const (
	CodeNotFound       = string(domain.CodeNotFound)
	CodeInvalidRequest = string(domain.CodeInvalidRequest)
	CodeUnavailable    = string(api.CodeUnavailable)
)

// Problem is an RFC 9457 problem: the api package writes every one.
type Problem = api.Problem

func notFound(format string, args ...any) error { return api.NotFound(format, args...) }

func invalid(field, format string, args ...any) error {
	return api.InvalidRequest(field, format, args...)
}

func (s *Service) unavailable(format string, args ...any) error {
	return api.Unavailable(s.cfg.RetryAfter, format, args...)
}

// fail answers err through api.WriteProblem, the one writer of problems,
// so query and command routes answer alike. Errors that are not problems
// of the request (Redis down, timeouts) answer 503 unavailable.
func (s *Service) fail(c *gin.Context, err error) {
	var (
		he *api.HTTPError
		de *domain.Error
	)
	switch {
	case errors.Is(err, errRebuilding):
		err = s.unavailable("%s", errRebuilding.Error())
	case !errors.As(err, &he) && !errors.As(err, &de):
		_ = c.Error(err)
		err = s.unavailable("the read models cannot be reached; retry later")
	}
	api.WriteProblem(c, err)
}

// request is what every query starts with: the tenant, its keys, and the
// wait for ?minVersion.
type request struct {
	ctx     context.Context
	tenant  string
	keys    readmodel.Keys
	version uint64 // the tenant's applied version
}

func (r *request) key(suffix string) string { return r.keys.Key(r.tenant, suffix) }

// begin checks the tenant exists in the read models, after waiting for
// ?minVersion when given.
//
// No answer goes back in time: the read models must be complete (the
// Present marker of the active prefix) and at least at the version this
// process has already answered for the tenant. While they are not, the
// request waits (up to MaxWait with ?minVersion, StaleWait without) and then
// answers 503 unavailable; while they are being rebuilt, a request without
// ?minVersion answers 503 at once. 404 is only answered by complete read
// models that do not have the tenant.
func (s *Service) begin(c *gin.Context) (*request, context.CancelFunc, error) {
	tenant := c.Param("t")
	if !domain.ValidID(tenant) {
		return nil, nil, notFound("tenant %q does not exist", tenant)
	}
	var minVersion uint64
	if mv := c.Query("minVersion"); mv != "" {
		n, err := strconv.ParseUint(mv, 10, 64)
		if err != nil {
			return nil, nil, invalid("minVersion", "minVersion must be a non-negative integer, got %q", api.Bounded(mv))
		}
		minVersion = n
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.Timeout+s.cfg.MaxWait)
	keys, err := s.keys(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	r := &request{ctx: ctx, tenant: tenant, keys: keys}
	served := s.served.get(tenant)
	floor := max(minVersion, served)
	wait := s.cfg.StaleWait
	if minVersion > 0 {
		wait = s.cfg.MaxWait
	}
	deadline := time.Now().Add(wait)
	for {
		present, v, err := s.applied(ctx, keys, tenant)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		r.version = v
		switch {
		case present && v >= floor && v > 0:
			return r, cancel, nil
		case present && v == 0 && floor == 0:
			cancel()
			return nil, nil, notFound("tenant %q does not exist", tenant)
		case !present && minVersion == 0:
			cancel()
			return nil, nil, errRebuilding
		}
		if time.Now().After(deadline) {
			cancel()
			if !present {
				return nil, nil, errRebuilding
			}
			if minVersion > served {
				return nil, nil, s.unavailable("the read models have applied version %d of tenant %s, not yet %d; retry shortly", v, tenant, minVersion)
			}
			return nil, nil, s.unavailable("the read models have applied version %d of tenant %s, behind version %d already answered; retry shortly", v, tenant, served)
		}
		select {
		case <-ctx.Done():
			cancel()
			return nil, nil, ctx.Err()
		case <-time.After(s.cfg.PollInterval):
		}
		if keys, err = s.keys(ctx); err != nil { // a replay may have swapped the prefix
			cancel()
			return nil, nil, err
		}
		r.keys = keys
	}
}

// settled checks, after a request's reads, that the read models it read are
// still complete and no older than the version it answers: Redis losing its
// data (or a prefix swap) between begin and the reads could otherwise answer
// "not found" or an empty page for what exists.
func (s *Service) settled(r *request) error {
	present, v, err := s.applied(r.ctx, r.keys, r.tenant)
	if err != nil {
		return err
	}
	if !present {
		return errRebuilding
	}
	if v < r.version {
		return s.unavailable("the read models of tenant %s went back from version %d to %d while they were read; retry shortly", r.tenant, r.version, v)
	}
	return nil
}

// page holds ?limit and ?cursor.
type page struct {
	limit int
	after string // decoded cursor: the last key of the previous page
}

const (
	defaultLimit = 100
	maxLimit     = 500
)

// Query parameters: of a paged answer (lists, and details with a paged
// list in them), and of a single item.
var (
	pageParams = []string{"minVersion", "limit", "cursor"}
	itemParams = []string{"minVersion"}
)

// parsePage checks the query parameters (pageParams only) and reads
// ?limit and ?cursor.
func parsePage(c *gin.Context) (page, error) {
	p := page{limit: defaultLimit}
	if err := api.CheckQuery(c, pageParams...); err != nil {
		return p, err
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return p, invalid("limit", "limit must be an integer from 1 to %d, got %q", maxLimit, api.Bounded(l))
		}
		p.limit = n
	}
	if cur := c.Query("cursor"); cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil || len(b) < 2 || b[0] != 'k' {
			return p, invalid("cursor", "cursor %q is not one this API gave", api.Bounded(cur))
		}
		p.after = string(b[1:])
	}
	return p, nil
}

func encodeCursor(last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("k" + last))
}

// lexPage reads one page of a lexical sorted set after p.after.
func (s *Service) lexPage(ctx context.Context, key string, p page) (members []string, next string, err error) {
	min := "-"
	if p.after != "" {
		min = "(" + p.after
	}
	ms, err := s.cfg.Redis.ZRangeByLex(ctx, key, &redis.ZRangeBy{Min: min, Max: "+", Offset: 0, Count: int64(p.limit + 1)}).Result()
	if err != nil {
		return nil, "", err
	}
	if len(ms) > p.limit {
		ms = ms[:p.limit]
		next = encodeCursor(ms[len(ms)-1])
	}
	return ms, next, nil
}

// hashPage sorts a whole hash by sortKey and returns one page of it (for the
// small per-tenant hashes: licenses, subscriptions).
func hashPage[T any](ctx context.Context, rdb redis.UniversalClient, key string, p page, sortKey func(field string, v *T) string) ([]T, string, error) {
	h, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, "", err
	}
	type row struct {
		k string
		v T
	}
	rows := make([]row, 0, len(h))
	for f, raw := range h {
		var v T
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, "", fmt.Errorf("%s %s: %w", key, f, err)
		}
		k := sortKey(f, &v)
		if p.after != "" && k <= p.after {
			continue
		}
		rows = append(rows, row{k, v})
	}
	sortRows(rows, func(a, b row) bool { return a.k < b.k })
	out := make([]T, 0, min(len(rows), p.limit))
	next := ""
	for i, r := range rows {
		if i == p.limit {
			next = encodeCursor(rows[i-1].k)
			break
		}
		out = append(out, r.v)
	}
	return out, next, nil
}

func (s *Service) run(c *gin.Context, fn func(r *request) (any, error)) {
	r, cancel, err := s.begin(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer cancel()
	out, err := fn(r)
	if serr := s.settled(r); serr != nil {
		err = serr
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.served.observe(r.tenant, r.version)
	c.Header("X-Tenant-Version", strconv.FormatUint(r.version, 10))
	if p, ok := out.(paged); ok {
		if next := p.cursor(); next != "" {
			q := c.Request.URL.Query()
			q.Set("cursor", next)
			api.SetNextCursor(c, next, q)
		}
	}
	if l, ok := out.(lister); ok {
		out = l.items()
	}
	api.WriteJSON(c, http.StatusOK, out)
}
