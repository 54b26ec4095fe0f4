// Package queries answers questions about a tenant's present from the Redis
// read models the projector writes (through readmodel's keys and rows): its
// licenses, subscriptions, users, groups and held data. Each query is a
// method of Service returning its answer or a typed error; the api package
// serves them over HTTP.
//
// No answer goes back in time: a tenant's answers come from complete read
// models (their Present marker is set) at a version no older than any this
// Service has already answered from (the version the read models had when
// an answer's reads were done), else the query fails with an
// *UnavailableError after a bounded wait.
package queries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

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
	// RetryAfter is the RetryAfter of an UnavailableError (default 1s).
	RetryAfter time.Duration
	// Timeout bounds the Redis calls of one request (default 5s).
	Timeout time.Duration
	// StaleWait bounds the wait, on a query without MinVersion, for the
	// read model of a tenant to reach the version this Service already
	// answered (default 1s); then the query fails with an UnavailableError.
	StaleWait time.Duration
	// Tracked bounds the tenants whose answered version is remembered
	// (default 100,000); see highWater.
	Tracked int
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

// Ping reports whether Redis answers (for /readyz).
func (s *Service) Ping(ctx context.Context) error { return s.cfg.Redis.Ping(ctx).Err() }

// errRebuilding says the active prefix has no Present marker: Redis lost the
// read models (or never had them) and they are being rebuilt. fail turns it
// into an UnavailableError.
var errRebuilding = errors.New(rebuildingReason)

const rebuildingReason = "the read models are being rebuilt (Redis lost its data); retry shortly"

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

// UnavailableError is the error of a query the read models cannot answer
// now: they are being rebuilt, they are behind the version asked for or
// already answered, or Redis cannot be reached. The query may succeed if
// tried again after RetryAfter.
type UnavailableError struct {
	// Reason says why, for the client.
	Reason string
	// RetryAfter is when to try again (Config.RetryAfter).
	RetryAfter time.Duration
	// Err is the cause when it is Redis's error (nil otherwise).
	Err error
	// Format and Args are Reason before formatting, for the API to
	// translate (as domain.Error's); empty Format: Reason is a literal.
	Format string
	Args   []any
}

func (e *UnavailableError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *UnavailableError) Unwrap() error { return e.Err }

func notFound(format string, args ...any) error {
	return domain.Errorf(domain.CodeNotFound, "", format, args...)
}

func invalid(field, format string, args ...any) error {
	return domain.Errorf(domain.CodeInvalidRequest, field, format, args...)
}

func (s *Service) unavailable(format string, args ...any) error {
	return &UnavailableError{Reason: fmt.Sprintf(format, args...), RetryAfter: s.cfg.RetryAfter, Format: format, Args: args}
}

// fail gives a query's error its type: a *domain.Error (not found, invalid
// request) or an *UnavailableError stays; the rebuilding read models and
// any other error (Redis down, a timeout) become an *UnavailableError.
func (s *Service) fail(err error) error {
	var (
		de *domain.Error
		ue *UnavailableError
	)
	switch {
	case errors.As(err, &de), errors.As(err, &ue):
		return err
	case errors.Is(err, errRebuilding):
		return &UnavailableError{Reason: rebuildingReason, RetryAfter: s.cfg.RetryAfter}
	}
	return &UnavailableError{Reason: "the read models cannot be reached; retry later", RetryAfter: s.cfg.RetryAfter, Err: err}
}

// bounded is s cut for repeating in an error (domain.Echo: docs/API.md
// promises "echoed input in a detail is cut to 64 bytes", in every layer).
func bounded(s string) string { return domain.Echo(s) }

// Options say how fresh a query's answer must be and, for a list (or a
// detail with a paged list in it), which page to answer.
type Options struct {
	// MinVersion waits (up to Config.MaxWait) until the read models have
	// applied this version of the tenant; 0: no older than what this
	// Service already answered (waiting up to Config.StaleWait).
	MinVersion uint64
	// Checked is a version of the tenant the caller saw on the command
	// side (the request's role check found the tenant there; 0: none). An
	// answer that something does not exist (the tenant, a user, a group, a
	// product, a subscription) is then given only from read models that
	// have applied Checked, as they may only be behind: until they have,
	// the query waits as it waits without MinVersion (up to StaleWait;
	// MaxWait with MinVersion, one bound for both waits) and then fails
	// unavailable. Other answers do not wait for it.
	Checked uint64
	// Limit is the page's length, 1 to MaxLimit; 0: DefaultLimit.
	Limit int
	// Cursor is the NextCursor of the previous page; "": the first page.
	Cursor string
}

// Page lengths.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

// Answer is a query's answer: its value, the tenant's version the read
// models had applied when it was read, and, when the value holds one page
// of a list, the cursor of the next page ("" on the last).
type Answer[T any] struct {
	Value      T
	Version    uint64
	NextCursor string
}

// request is what every query starts with: the tenant, its keys, and the
// wait for MinVersion.
type request struct {
	ctx     context.Context
	tenant  string
	keys    readmodel.Keys
	version uint64 // the tenant's applied version
	// deadline ends begin's wait: StaleWait, or MaxWait with MinVersion,
	// after the query began (answer's second wait, for Options.Checked,
	// ends there too).
	deadline time.Time
}

func (r *request) key(suffix string) string { return r.keys.Key(r.tenant, suffix) }

// begin checks the tenant exists in the read models, after waiting for
// o.MinVersion when given, and for atLeast (a version the caller must see,
// waited for as the version already answered is). The wait ends at until,
// or when zero StaleWait (MaxWait with o.MinVersion) from now: a query
// that begins again waits only for what is left of its first bound.
//
// No answer goes back in time: the read models must be complete (the
// Present marker of the active prefix) and at least at the version this
// Service has already answered for the tenant. While they are not, the
// query waits (up to MaxWait with minVersion, StaleWait without) and then
// fails unavailable; while they are being rebuilt, a query without
// minVersion fails unavailable at once. Only complete read models that do
// not have the tenant answer "not found", and only when the caller did not
// see it exist (o.Checked): then they wait for its first version.
func (s *Service) begin(ctx context.Context, tenant string, o Options, atLeast uint64, until time.Time) (*request, context.CancelFunc, error) {
	minVersion := o.MinVersion
	if !domain.ValidID(tenant) {
		return nil, nil, notFound("tenant %q does not exist", bounded(tenant))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+s.cfg.MaxWait)
	keys, err := s.keys(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	r := &request{ctx: ctx, tenant: tenant, keys: keys}
	served := s.served.get(tenant)
	floor := max(minVersion, served, atLeast)
	if o.Checked > 0 {
		floor = max(floor, 1) // the tenant's creation
	}
	if until.IsZero() {
		wait := s.cfg.StaleWait
		if minVersion > 0 {
			wait = s.cfg.MaxWait
		}
		until = time.Now().Add(wait)
	}
	r.deadline = until
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
		if time.Now().After(until) {
			cancel()
			if !present {
				return nil, nil, errRebuilding
			}
			if want := max(minVersion, atLeast); want > served && (v > 0 || minVersion > served) {
				return nil, nil, s.unavailable("the read models have applied version %d of tenant %s, not yet %d; retry shortly", v, tenant, want)
			}
			if v == 0 {
				return nil, nil, s.unavailable("the read models have not applied the creation of tenant %s yet; retry shortly", tenant)
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
// "not found" or an empty page for what exists. It returns the version they
// have applied now: what the reads saw is no newer than it (the projection
// may have applied events after begin, and the reads may hold them).
func (s *Service) settled(r *request) (uint64, error) {
	present, v, err := s.applied(r.ctx, r.keys, r.tenant)
	if err != nil {
		return 0, err
	}
	if !present {
		return 0, errRebuilding
	}
	if v < r.version {
		return 0, s.unavailable("the read models of tenant %s went back from version %d to %d while they were read; retry shortly", r.tenant, r.version, v)
	}
	return v, nil
}

// page is the page Options ask for.
type page struct {
	limit int
	after string // decoded cursor: the last key of the previous page
}

// pageOf checks and reads the page of o.
func pageOf(o Options) (page, error) {
	p := page{limit: DefaultLimit}
	if o.Limit != 0 {
		if o.Limit < 1 || o.Limit > MaxLimit {
			return p, invalid("limit", "limit must be an integer from 1 to %d, got %d", MaxLimit, o.Limit)
		}
		p.limit = o.Limit
	}
	if cur := o.Cursor; cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil || len(b) < 2 || b[0] != 'k' {
			return p, invalid("cursor", "cursor %q is not one this API gave", bounded(cur))
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
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.k, b.k) })
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

// answer runs a query of tenant: it waits for the read models (begin), reads
// them with read, which returns the value and the next page's cursor, and
// checks they did not change under it (settled). A "not found" read from
// read models older than o.Checked is read again once they hold it, waited
// for within begin's bound (not a second one). Every error it returns is
// typed (fail).
//
// The answer's Version is the one begin saw, but what the reads saw may be
// newer (the projection keeps applying while they run): the Service
// remembers the version settled saw after them, the newest the answer can
// hold, so that no later answer is older than anything this one showed.
func answer[T any](s *Service, ctx context.Context, tenant string, o Options, read func(r *request) (T, string, error)) (Answer[T], error) {
	r, cancel, err := s.begin(ctx, tenant, o, 0, time.Time{})
	if err != nil {
		return Answer[T]{}, s.fail(err)
	}
	defer func() { cancel() }() // the second begin's, if there is one
	v, next, err := read(r)
	if r.version < o.Checked && isNotFound(err) {
		// The caller saw the tenant at o.Checked: what is missing here
		// may only be missing from read models behind it. The wait for
		// them ends where the first one would have: one bound in all.
		cancel()
		var again context.CancelFunc
		if r, again, err = s.begin(ctx, tenant, o, o.Checked, r.deadline); err != nil {
			return Answer[T]{}, s.fail(err)
		}
		cancel = again
		v, next, err = read(r)
	}
	seen, serr := s.settled(r)
	if serr != nil {
		err = serr
	}
	if err != nil {
		return Answer[T]{}, s.fail(err)
	}
	s.served.observe(r.tenant, seen)
	return Answer[T]{Value: v, Version: r.version, NextCursor: next}, nil
}

// isNotFound reports whether err is a query's "not found".
func isNotFound(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Code == domain.CodeNotFound
}
