package queries

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/readmodel"
)

// UserFilter is what the users list is filtered, searched and ordered by,
// as the client gave it ("" for a parameter not given). Values are checked
// by FindUsers; a bad one is an invalid request naming its parameter.
type UserFilter struct {
	UserType     string // Member or Guest
	Status       string // active or deleted
	Licensed     string // true or false
	SkuID        string // a product's skuId or skuPartNumber: its holders
	LicenseState string // error: users with a product in error
	Search       string // a prefix of the display name or the user principal name
	OrderBy      string // displayName (default) or userPrincipalName
}

// IsZero reports whether f asks for nothing (the list by id).
func (f UserFilter) IsZero() bool { return f == UserFilter{} }

// Bounds of a filtered page's work (docs/API.md, "Users: filters and search").
const (
	// MaxScan bounds the members of the driving index a filtered page
	// reads; a page that reached it may hold fewer rows than asked, with a
	// cursor to go on.
	MaxScan = 5000
	// MaxSearchMatches bounds the users a search may match on each of its
	// two fields; a broader search is refused (type more of the name).
	MaxSearchMatches = 20000
	// maxSearchLen bounds a search term (bytes).
	maxSearchLen = 256
)

// usersQuery is a UserFilter checked: the order, the filter sets and the
// folded search term.
type usersQuery struct {
	order   string
	filters []string // readmodel.Filter… values
	sku     string   // to resolve within the tenant
	search  string   // folded
}

func parseUserFilter(f UserFilter) (usersQuery, error) {
	q := usersQuery{order: readmodel.OrderDisplayName}
	switch {
	case f.OrderBy == "":
	case strings.EqualFold(f.OrderBy, readmodel.OrderDisplayName):
	case strings.EqualFold(f.OrderBy, readmodel.OrderUPN):
		q.order = readmodel.OrderUPN
	default:
		return q, invalid("orderBy", "orderBy must be displayName or userPrincipalName, got %q", bounded(f.OrderBy))
	}
	switch {
	case f.UserType == "":
	case strings.EqualFold(f.UserType, "Member"):
		q.filters = append(q.filters, readmodel.FilterMember)
	case strings.EqualFold(f.UserType, "Guest"):
		q.filters = append(q.filters, readmodel.FilterGuest)
	default:
		return q, invalid("userType", "userType must be Member or Guest, got %q", bounded(f.UserType))
	}
	switch {
	case f.Status == "":
	case strings.EqualFold(f.Status, "active"):
		q.filters = append(q.filters, readmodel.FilterActive)
	case strings.EqualFold(f.Status, "deleted"):
		q.filters = append(q.filters, readmodel.FilterDeleted)
	default:
		return q, invalid("status", "status must be active or deleted, got %q", bounded(f.Status))
	}
	switch f.Licensed {
	case "":
	case "true":
		q.filters = append(q.filters, readmodel.FilterLicensed)
	case "false":
		q.filters = append(q.filters, readmodel.FilterUnlicensed)
	default:
		return q, invalid("licensed", "licensed must be true or false, got %q", bounded(f.Licensed))
	}
	switch {
	case f.LicenseState == "":
	case strings.EqualFold(f.LicenseState, "error"):
		q.filters = append(q.filters, readmodel.FilterError)
	default:
		return q, invalid("licenseState", "licenseState must be error, got %q", bounded(f.LicenseState))
	}
	q.sku = f.SkuID
	if s := strings.TrimSpace(f.Search); s != "" {
		if len(s) > maxSearchLen {
			return q, invalid("search", "search must be at most %d bytes, got %d", maxSearchLen, len(s))
		}
		q.search = readmodel.Fold(s)
	}
	return q, nil
}

// userCursor is a filtered page's cursor: the order's letter, then the
// last member of the previous page.
func userCursor(order, member string) string {
	c := "n"
	if order == readmodel.OrderUPN {
		c = "p"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(c + member))
}

func parseUserCursor(order, cur string) (string, error) {
	if cur == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cur)
	want := byte('n')
	if order == readmodel.OrderUPN {
		want = 'p'
	}
	if err != nil || len(b) < 2 || b[0] != want {
		return "", invalid("cursor", "cursor %q is not one this API gave for this order", bounded(cur))
	}
	return string(b[1:]), nil
}

// FindUsers answers a page of the tenant's users filtered, searched and
// ordered as f says, from the users indexes (readmodel.UsersBy): with no
// filter, search or order it is Users (by id).
//
// Cost: without search, the smallest of the filter sets (ZCARD of each)
// is read in order from the cursor, in batches, and each batch checked
// against the other sets (one ZMSCORE per set and batch); at most MaxScan
// members are read, so a rare combination answers a short page with a
// cursor rather than scanning the tenant. A search reads the matches of
// the prefix on both names (two ZRANGEBYLEX, at most MaxSearchMatches
// each), sorts them in the order and checks them against the filter sets
// the same way.
func (s *Service) FindUsers(ctx context.Context, tenant string, f UserFilter, o Options) (Answer[[]UserSummary], error) {
	if f.IsZero() {
		return s.Users(ctx, tenant, o)
	}
	q, err := parseUserFilter(f)
	if err != nil {
		return Answer[[]UserSummary]{}, err
	}
	p, err := pageOf(Options{Limit: o.Limit})
	if err != nil {
		return Answer[[]UserSummary]{}, err
	}
	after, err := parseUserCursor(q.order, o.Cursor)
	if err != nil {
		return Answer[[]UserSummary]{}, err
	}
	return answer(s, ctx, tenant, o, func(r *request) ([]UserSummary, string, error) {
		if q.sku != "" {
			prod, err := s.resolveSku(r, q.sku)
			if err != nil {
				return nil, "", invalid("skuId", "skuId %q is not a product of the catalog or of tenant %s", bounded(q.sku), r.tenant)
			}
			q.filters = append(q.filters, readmodel.FilterSku(prod.SkuID))
		}
		var members []string
		var next string
		if q.search != "" {
			members, next, err = s.searchUsers(r, q, after, p.limit)
		} else {
			members, next, err = s.scanUsers(r, q, after, p.limit)
		}
		if err != nil {
			return nil, "", err
		}
		ids := make([]string, 0, len(members))
		for _, m := range members {
			if _, id, _, ok := readmodel.SplitMember(m); ok {
				ids = append(ids, id)
			}
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

// keep returns the members of ms that are in every set of keys (ZMSCORE).
func (s *Service) keep(ctx context.Context, keys []string, ms []string) ([]string, error) {
	if len(keys) == 0 || len(ms) == 0 {
		return ms, nil
	}
	// ZMSCORE through Do: go-redis's ZMScore answers 0 for a missing
	// member, and every index scores 0; the raw answer keeps the nil.
	pipe := s.cfg.Redis.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		args := make([]any, 0, 2+len(ms))
		args = append(args, "zmscore", k)
		for _, m := range ms {
			args = append(args, m)
		}
		cmds[i] = pipe.Do(ctx, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	in := make([]bool, len(ms))
	for i := range in {
		in[i] = true
	}
	for _, c := range cmds {
		raw, err := c.Slice()
		if err != nil {
			return nil, err
		}
		for i, v := range raw {
			if v == nil && i < len(in) {
				in[i] = false
			}
		}
	}
	out := ms[:0:0]
	for i, m := range ms {
		if in[i] {
			out = append(out, m)
		}
	}
	return out, nil
}

// scanUsers reads a page of the smallest filter set from after, checking
// the other sets; see FindUsers for the bounds.
func (s *Service) scanUsers(r *request, q usersQuery, after string, limit int) ([]string, string, error) {
	drive := r.key(readmodel.UsersBy(q.order))
	var others []string
	batch := limit + 1
	if len(q.filters) > 0 {
		pipe := s.cfg.Redis.Pipeline()
		all := pipe.ZCard(r.ctx, drive)
		cards := make([]*redis.IntCmd, len(q.filters))
		for i, f := range q.filters {
			cards[i] = pipe.ZCard(r.ctx, r.key(readmodel.UsersByFilter(q.order, f)))
		}
		if _, err := pipe.Exec(r.ctx); err != nil {
			return nil, "", err
		}
		best := 0
		for i, c := range cards {
			if c.Val() == 0 {
				return []string{}, "", nil
			}
			if c.Val() < cards[best].Val() {
				best = i
			}
		}
		// The share of the driving set expected to pass the other filters
		// (as if independent) sizes the batches: about one round trip a page.
		pass := 1.0
		for i, f := range q.filters {
			k := r.key(readmodel.UsersByFilter(q.order, f))
			if i == best {
				drive = k
			} else {
				others = append(others, k)
				pass *= float64(cards[i].Val()) / float64(max(all.Val(), 1))
			}
		}
		if len(others) > 0 {
			batch = int(min(float64(batch)*1.25/max(pass, 0.001), 2000))
			batch = max(batch, limit+1)
		}
	}
	var got []string
	scanned := 0
	for {
		min := "-"
		if after != "" {
			min = "(" + after
		}
		ms, err := s.cfg.Redis.ZRangeByLex(r.ctx, drive, &redis.ZRangeBy{Min: min, Max: "+", Count: int64(batch)}).Result()
		if err != nil {
			return nil, "", err
		}
		kept, err := s.keep(r.ctx, others, ms)
		if err != nil {
			return nil, "", err
		}
		for _, m := range kept {
			got = append(got, m)
			if len(got) > limit {
				return got[:limit], userCursor(q.order, got[limit-1]), nil
			}
		}
		scanned += len(ms)
		if len(ms) < batch {
			return got, "", nil
		}
		after = ms[len(ms)-1]
		if scanned >= MaxScan {
			if len(got) == 0 {
				got = []string{}
			}
			return got, userCursor(q.order, after), nil
		}
	}
}

// searchUsers reads the users whose folded display name or user principal
// name begins with q.search, in q.order, after after, that pass the filters.
func (s *Service) searchUsers(r *request, q usersQuery, after string, limit int) ([]string, string, error) {
	other := readmodel.OrderUPN
	if q.order == readmodel.OrderUPN {
		other = readmodel.OrderDisplayName
	}
	// The other field's matches are read whole (to order them by this
	// one); this field's from the cursor on, and without filters only as
	// many as a page can take.
	lo, hi := "["+q.search, "["+q.search+"\xff"
	ownRng := &redis.ZRangeBy{Min: lo, Max: hi, Count: MaxSearchMatches + 1}
	if after != "" && after >= q.search {
		ownRng.Min = "(" + after
	}
	if len(q.filters) == 0 {
		ownRng.Count = int64(limit + 1)
	} else {
		// Filters passing a tenth of the matches fill a page from one
		// read; rarer ones answer a short page with a cursor (MaxScan's rule).
		ownRng.Count = int64(min(MaxSearchMatches+1, 10*(limit+1)))
	}
	pipe := s.cfg.Redis.Pipeline()
	own := pipe.ZRangeByLex(r.ctx, r.key(readmodel.UsersBy(q.order)), ownRng)
	// The users the other field matches and this one does not share fewer
	// bytes of the two than the term has (readmodel.UsersDiverging).
	var diverging []*redis.StringSliceCmd
	for k := 0; k < len(q.search) && k <= readmodel.MaxDiverge; k++ {
		diverging = append(diverging, pipe.ZRangeByLex(r.ctx, r.key(readmodel.UsersDiverging(other, k)),
			&redis.ZRangeBy{Min: lo, Max: hi, Count: MaxSearchMatches + 1}))
	}
	if _, err := pipe.Exec(r.ctx); err != nil {
		return nil, "", err
	}
	var othVal []string
	for _, c := range diverging {
		othVal = append(othVal, c.Val()...)
	}
	if len(othVal) > MaxSearchMatches {
		return nil, "", invalid("search", "search %q matches more than %d users; type more of the name", bounded(q.search), MaxSearchMatches)
	}
	all := make([]string, 0, len(own.Val())+len(othVal))
	for _, m := range own.Val() {
		if m > after {
			all = append(all, m)
		}
	}
	// A user the other field matches whose own field matches too is in
	// own already (own holds every match from the cursor up to its last
	// member when it was cut at a page): only the others are converted.
	boundary, cut := "", len(own.Val()) == int(ownRng.Count)
	if cut {
		boundary = own.Val()[len(own.Val())-1]
	}
	for _, m := range othVal {
		if _, _, field, ok := readmodel.SplitMember(m); ok && strings.HasPrefix(field, q.search) {
			continue
		}
		if m := readmodel.OtherMember(m); m > after && (!cut || m <= boundary) {
			all = append(all, m)
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	keys := make([]string, len(q.filters))
	for i, f := range q.filters {
		keys[i] = r.key(readmodel.UsersByFilter(q.order, f))
	}
	var got []string
	for start := 0; start < len(all); start += 512 {
		kept, err := s.keep(r.ctx, keys, all[start:min(start+512, len(all))])
		if err != nil {
			return nil, "", err
		}
		for _, m := range kept {
			got = append(got, m)
			if len(got) > limit {
				return got[:limit], userCursor(q.order, got[limit-1]), nil
			}
		}
	}
	if got == nil {
		got = []string{}
	}
	if cut {
		return got, userCursor(q.order, boundary), nil
	}
	return got, "", nil
}
