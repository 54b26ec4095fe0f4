package rebuild

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/render"
	"github.com/seatledger/seatledger/tenantstream"
)

// Difference is one place where Redis does not hold what the events say.
type Difference struct {
	Tenant string `json:"tenant"`
	Key    string `json:"key"`
	Field  string `json:"field,omitempty"` // hash field or sorted-set member
	Want   string `json:"want"`            // "" when the field should not exist
	Got    string `json:"got"`             // "" when it is missing
}

func (d Difference) String() string {
	return fmt.Sprintf("tenant %s: %s %s: want %q, got %q", d.Tenant, d.Key, d.Field, d.Want, d.Got)
}

// Report is the outcome of Verify.
type Report struct {
	Tenants     int          `json:"tenants"`
	Keys        int          `json:"keys"`
	Differences []Difference `json:"differences"`
	Truncated   bool         `json:"truncated,omitempty"`
}

// OK reports whether no difference was found.
func (r Report) OK() bool { return len(r.Differences) == 0 }

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	Snapshots eventstore.SnapshotStore
	Upcasters domain.Upcasters
	Catalog   *domain.Catalog // default domain.DefaultCatalog()
	// Tenants limits the check (default: every tenant of the store's log,
	// of the Redis tenant set and of the keys under the prefix).
	Tenants []string
	// MaxDifferences stops the report after this many (default 1000).
	MaxDifferences int
	// Workers fold and compare tenants in parallel (default GOMAXPROCS).
	Workers int
	// Progress, if set, is called about every ProgressInterval (default
	// 1 s) while Verify runs, and once at the end (phase "done"); never
	// concurrently.
	Progress         func(VerifyProgress)
	ProgressInterval time.Duration
}

// Verify phases (VerifyProgress.Phase), in their order.
const (
	VerifyPhaseKeys    = "keys"    // one SCAN of the prefix, counting each tenant's keys
	VerifyPhaseLog     = "log"     // listing the tenants of the event log
	VerifyPhaseTenants = "tenants" // folding each tenant and comparing its keys
	VerifyPhaseStray   = "stray"   // a second SCAN, only if some tenant has keys no event accounts for
	VerifyPhaseDone    = "done"
)

// VerifyProgress is what Verify reports while it runs.
type VerifyProgress struct {
	Phase         string        `json:"phase"`
	Tenants       int           `json:"tenants"`     // tenants checked
	Total         int           `json:"total"`       // tenants to check (0 until the log phase is done)
	Keys          int           `json:"keys"`        // keys scanned (keys, stray) or compared (tenants, done)
	Events        uint64        `json:"events"`      // events of the log read (log phase)
	Differences   int           `json:"differences"` // found so far
	TenantsPerSec float64       `json:"tenantsPerSec"`
	ETA           time.Duration `json:"eta"`     // estimated time left of the tenants phase (0: unknown)
	Elapsed       time.Duration `json:"elapsed"` // since Verify started
}

// Verify folds every tenant from the event store, renders its read models
// with the projection's own code and compares them with what Redis holds
// under prefix, reporting each difference. Run it when the projection has
// caught up (a lagging projection shows as differences).
//
// Its work is linear in the data: one SCAN of the prefix counts each
// tenant's keys (and finds the tenants that only Redis knows); one pass over
// the log lists the tenants; then tenants are folded (Workers in parallel,
// in batches) and the keys their state renders are read by name in one
// pipeline per batch. A tenant whose keys in Redis are not all among those
// (a stray key, of a tenant the events do not even know) is remembered, and
// a second SCAN, only then, finds its stray keys. Memory holds each
// tenant's id and key tally and the batches in flight, not the states or
// the keys of every tenant.
func Verify(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, prefix string, opts VerifyOptions) (Report, error) {
	if opts.Catalog == nil {
		opts.Catalog = domain.DefaultCatalog()
	}
	if opts.MaxDifferences <= 0 {
		opts.MaxDifferences = 1000
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	v := &verifier{store: store, rdb: rdb, keys: readmodel.Keys{Prefix: prefix}, opts: opts, seed: maphash.MakeSeed(), start: time.Now()}
	v.phase.Store(VerifyPhaseKeys)
	stop := v.reportProgress()
	rep, err := v.run(ctx)
	// The last report says what the report says.
	v.tenants.Store(int64(rep.Tenants))
	v.keyCount.Store(int64(rep.Keys))
	v.differences.Store(int64(len(rep.Differences)))
	v.phase.Store(VerifyPhaseDone)
	stop()
	return rep, err
}

// verifier is one run of Verify.
type verifier struct {
	store eventstore.Store
	rdb   redis.UniversalClient
	keys  readmodel.Keys
	opts  VerifyOptions
	seed  maphash.Seed
	start time.Time

	// tally counts each tenant's keys found by the SCAN (only the tenants
	// of opts.Tenants when it is set); read-only once the scan is done.
	tally map[string]keyTally

	// progress, read by reportProgress
	phase        atomic.Value // string
	tenants      atomic.Int64
	total        atomic.Int64
	keyCount     atomic.Int64
	events       atomic.Uint64
	differences  atomic.Int64
	tenantsStart atomic.Int64 // unix nanos when the tenants phase began
}

// keyTally sums the keys of a tenant: how many, and the sum of a hash of
// their suffixes, so that two sets of keys compare without being kept.
type keyTally struct {
	n   int
	sum uint64
}

func (v *verifier) add(t *keyTally, suffix string) {
	t.n++
	t.sum += maphash.String(v.seed, suffix)
}

// strayCandidate is a tenant whose keys in Redis are not only the ones its
// state renders (or a key went or came meanwhile): suffixes are the ones it
// renders, sorted.
type strayCandidate struct {
	tenant   string
	suffixes []string
}

func (v *verifier) run(ctx context.Context) (Report, error) {
	var rep Report
	if err := v.scanKeys(ctx); err != nil {
		return rep, err
	}
	v.phase.Store(VerifyPhaseLog)
	tenants, err := v.listTenants(ctx)
	if err != nil {
		return rep, err
	}
	v.total.Store(int64(len(tenants)))
	v.keyCount.Store(0)
	v.tenantsStart.Store(time.Now().UnixNano())
	v.phase.Store(VerifyPhaseTenants)
	add := func(d Difference) bool {
		if len(rep.Differences) >= v.opts.MaxDifferences {
			rep.Truncated = true
			return false
		}
		rep.Differences = append(rep.Differences, d)
		v.differences.Add(1)
		return true
	}
	strays, err := v.checkTenants(ctx, tenants, &rep, add)
	if err != nil {
		return rep, err
	}
	if len(strays) > 0 && !rep.Truncated {
		v.phase.Store(VerifyPhaseStray)
		if err := v.checkStrays(ctx, strays, &rep, add); err != nil {
			return rep, err
		}
		// Each tenant's differences together, in the order tenants were checked.
		pos := map[string]int{}
		for _, d := range rep.Differences {
			pos[d.Tenant] = -1
		}
		for i, t := range tenants {
			if p, ok := pos[t]; ok && p < 0 {
				pos[t] = i
			}
		}
		slices.SortStableFunc(rep.Differences, func(a, b Difference) int { return cmp.Compare(pos[a.Tenant], pos[b.Tenant]) })
	}
	return rep, nil
}

// scanKeys counts each tenant's keys under the prefix (one SCAN).
func (v *verifier) scanKeys(ctx context.Context) error {
	var only map[string]bool
	if len(v.opts.Tenants) > 0 {
		only = map[string]bool{}
		for _, t := range v.opts.Tenants {
			only[t] = true
		}
	}
	v.tally = map[string]keyTally{}
	err := readmodel.ScanTenantKeys(ctx, v.rdb, v.keys.Prefix, func(ks []string) error {
		for _, k := range ks {
			t, suffix, _ := v.keys.SplitTenantKey(k)
			if only != nil && !only[t] {
				continue
			}
			c, ok := v.tally[t]
			if !ok {
				t = strings.Clone(t) // not the whole key
			}
			v.add(&c, suffix)
			v.tally[t] = c
		}
		v.keyCount.Add(int64(len(ks)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

// listTenants returns the tenants to check: opts.Tenants, or every tenant
// of the log, of the Redis tenant set and of the keys, sorted.
func (v *verifier) listTenants(ctx context.Context) ([]string, error) {
	if len(v.opts.Tenants) > 0 {
		return v.opts.Tenants, nil
	}
	set := map[string]struct{}{}
	after := eventstore.Start
	const batch = 8192
	for {
		evs, err := v.store.ReadAll(ctx, after, batch)
		if err != nil {
			return nil, fmt.Errorf("verify: read the log: %w", err)
		}
		for _, e := range evs {
			if t, ok := tenantstream.TenantID(e.Stream); ok {
				if _, seen := set[t]; !seen {
					set[strings.Clone(t)] = struct{}{}
				}
			}
			after = e.Position
		}
		v.events.Add(uint64(len(evs)))
		if len(evs) < batch {
			break
		}
	}
	inRedis, err := v.rdb.SMembers(ctx, v.keys.Tenants()).Result()
	if err != nil {
		return nil, fmt.Errorf("verify: read tenants: %w", err)
	}
	for _, t := range inRedis {
		set[t] = struct{}{}
	}
	for t := range v.tally {
		set[t] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// verifyBatch is how many tenants a worker checks with one pipeline.
const verifyBatch = 64

type verifyJob struct {
	tenants []string
	done    chan verifyOut // buffered: the worker never waits
}

type verifyOut struct {
	tenants   int
	diffs     []Difference
	truncated bool
	keys      int
	strays    []strayCandidate
	err       error
}

// checkTenants checks tenants in batches, Workers at a time, and adds the
// differences to rep in the order of tenants. It returns the tenants that
// may have stray keys.
func (v *verifier) checkTenants(ctx context.Context, tenants []string, rep *Report, add func(Difference) bool) ([]strayCandidate, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { // stop the workers before leaving
		cancel()
		wg.Wait()
	}()
	jobs := make(chan verifyJob)
	order := make(chan chan verifyOut, 2*v.opts.Workers)
	wg.Add(1)
	go func() { // hand out the batches, and their results' order
		defer wg.Done()
		defer close(order)
		defer close(jobs)
		for i := 0; i < len(tenants); i += verifyBatch {
			job := verifyJob{tenants: tenants[i:min(i+verifyBatch, len(tenants))], done: make(chan verifyOut, 1)}
			select {
			case order <- job.done:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range v.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				job.done <- v.checkBatch(ctx, job.tenants)
			}
		}()
	}
	var strays []strayCandidate
	for done := range order {
		var out verifyOut
		select {
		case out = <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if out.err != nil {
			return nil, out.err
		}
		for _, d := range out.diffs {
			if !add(d) {
				break
			}
		}
		if out.truncated {
			rep.Truncated = true
		}
		for _, s := range out.strays {
			if len(strays) >= v.opts.MaxDifferences { // each adds a difference at least
				rep.Truncated = true
				break
			}
			strays = append(strays, s)
		}
		rep.Tenants += out.tenants
		rep.Keys += out.keys
		v.tenants.Add(int64(out.tenants))
		v.keyCount.Add(int64(out.keys))
		if rep.Truncated { // the report is full: stop, as a full report does
			cancel()
			return nil, nil
		}
	}
	return strays, ctx.Err()
}

// checkBatch folds each tenant, reads the keys its state renders (one
// pipeline for the batch: HGETALL or ZRANGE each, as rendered) and
// compares them.
func (v *verifier) checkBatch(ctx context.Context, tenants []string) verifyOut {
	type check struct {
		tid      string
		want     *render.MapSink
		suffixes []string
		reads    []redis.Cmder // HGETALL or ZRANGE WITHSCORES, as rendered
	}
	out := verifyOut{tenants: len(tenants)}
	checks := make([]check, len(tenants))
	pipe := v.rdb.Pipeline()
	for i, tid := range tenants {
		st, err := tenantstream.Fold(ctx, v.store, v.opts.Snapshots, v.opts.Upcasters, tid, 0)
		if err != nil {
			return verifyOut{err: fmt.Errorf("verify: tenant %s: %w", tid, err)}
		}
		want := render.NewMapSink()
		if st.Version > 0 {
			render.NewRenderer(v.opts.Catalog, st, want, nil).All()
			want.HSet(readmodel.Meta, "version", []byte(strconv.FormatUint(st.Version, 10)))
		}
		c := &checks[i]
		c.tid, c.want = tid, want
		for s := range want.Hashes {
			c.suffixes = append(c.suffixes, s)
		}
		for s := range want.Zsets {
			if _, dup := want.Hashes[s]; !dup {
				c.suffixes = append(c.suffixes, s)
			}
		}
		slices.Sort(c.suffixes)
		for _, s := range c.suffixes {
			key := v.keys.Key(tid, s)
			if _, ok := want.Hashes[s]; ok {
				c.reads = append(c.reads, pipe.HGetAll(ctx, key))
			} else {
				c.reads = append(c.reads, pipe.ZRangeWithScores(ctx, key, 0, -1))
			}
		}
	}
	if pipe.Len() > 0 {
		// A read of a key of another type than rendered fails (WRONGTYPE):
		// each command's outcome is looked at below.
		_, _ = pipe.Exec(ctx)
	}
	add := func(d Difference) bool {
		if len(out.diffs) >= v.opts.MaxDifferences {
			out.truncated = true
			return false
		}
		out.diffs = append(out.diffs, d)
		return true
	}
	for i := range checks {
		c := &checks[i]
		got := render.NewMapSink()
		var found keyTally
		for j, s := range c.suffixes {
			// An empty answer is a missing key (Redis keeps no empty hash
			// or sorted set); WRONGTYPE, a key of another type.
			var n int
			var err error
			switch r := c.reads[j].(type) {
			case *redis.MapStringStringCmd:
				var h map[string]string
				if h, err = r.Result(); err == nil && len(h) > 0 {
					got.Hashes[s], n = h, 1
				}
			case *redis.ZSliceCmd:
				var zs []redis.Z
				if zs, err = r.Result(); err == nil && len(zs) > 0 {
					got.Zsets[s], n = zsetMap(zs), 1
				}
			}
			if err != nil && redis.HasErrorPrefix(err, "WRONGTYPE") {
				// Not the type rendered: read it as what it is.
				var typ string
				if typ, err = v.rdb.Type(ctx, v.keys.Key(c.tid, s)).Result(); err == nil && typ != "none" {
					if err := v.readKey(ctx, c.tid, s, typ, got); err != nil {
						return verifyOut{err: err}
					}
					n = 1
				}
			}
			if err != nil {
				return verifyOut{err: fmt.Errorf("verify: %s: %w", v.keys.Key(c.tid, s), err)}
			}
			if n > 0 {
				v.add(&found, s)
			}
		}
		out.keys += len(got.Hashes) + len(got.Zsets)
		if found != v.tally[c.tid] {
			out.strays = append(out.strays, strayCandidate{tenant: c.tid, suffixes: c.suffixes})
		}
		if !out.truncated {
			compareTenant(c.tid, v.keys, c.want, got, add)
		}
	}
	return out
}

// readKey reads one key of type typ into got, as the comparison sees it:
// hashes and sorted sets by content, any other type as a hash field
// "<type>".
func (v *verifier) readKey(ctx context.Context, tid, suffix, typ string, got *render.MapSink) error {
	key := v.keys.Key(tid, suffix)
	switch typ {
	case "none": // gone meanwhile
	case "hash":
		h, err := v.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("verify: %s: %w", key, err)
		}
		got.Hashes[suffix] = h
	case "zset":
		zs, err := v.rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil {
			return fmt.Errorf("verify: %s: %w", key, err)
		}
		got.Zsets[suffix] = zsetMap(zs)
	default:
		got.Hashes[suffix] = map[string]string{"<type>": typ}
	}
	return nil
}

func zsetMap(zs []redis.Z) map[string]float64 {
	m := make(map[string]float64, len(zs))
	for _, z := range zs {
		m[z.Member.(string)] = z.Score
	}
	return m
}

// checkStrays finds, with a second SCAN, the keys of the candidates that
// their state does not render, and reports each of their fields or members
// as a difference (nothing wanted).
func (v *verifier) checkStrays(ctx context.Context, strays []strayCandidate, rep *Report, add func(Difference) bool) error {
	want := make(map[string][]string, len(strays))
	for _, s := range strays {
		want[s.tenant] = s.suffixes
	}
	extra := map[string][]string{}
	v.keyCount.Store(0)
	err := readmodel.ScanTenantKeys(ctx, v.rdb, v.keys.Prefix, func(ks []string) error {
		for _, k := range ks {
			t, suffix, _ := v.keys.SplitTenantKey(k)
			w, ok := want[t]
			if !ok {
				continue
			}
			if _, rendered := slices.BinarySearch(w, suffix); !rendered {
				extra[t] = append(extra[t], strings.Clone(suffix))
			}
		}
		v.keyCount.Add(int64(len(ks)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, s := range strays {
		suffixes := extra[s.tenant]
		if len(suffixes) == 0 {
			continue // a key came or went meanwhile, or SCAN returned one twice
		}
		slices.Sort(suffixes)
		suffixes = slices.Compact(suffixes)
		pipe := v.rdb.Pipeline()
		types := make([]*redis.StatusCmd, len(suffixes))
		for i, suffix := range suffixes {
			types[i] = pipe.Type(ctx, v.keys.Key(s.tenant, suffix))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("verify: tenant %s: %w", s.tenant, err)
		}
		got := render.NewMapSink()
		for i, suffix := range suffixes {
			if err := v.readKey(ctx, s.tenant, suffix, types[i].Val(), got); err != nil {
				return err
			}
		}
		rep.Keys += len(got.Hashes) + len(got.Zsets)
		if !compareTenant(s.tenant, v.keys, render.NewMapSink(), got, add) {
			break
		}
	}
	return nil
}

// reportProgress calls opts.Progress every ProgressInterval until the
// returned stop is called, which reports once more.
func (v *verifier) reportProgress() (stop func()) {
	if v.opts.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(v.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				v.opts.Progress(v.progress())
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		v.opts.Progress(v.progress())
	}
}

func (v *verifier) progress() VerifyProgress {
	p := VerifyProgress{Phase: v.phase.Load().(string), Tenants: int(v.tenants.Load()), Total: int(v.total.Load()),
		Keys: int(v.keyCount.Load()), Events: v.events.Load(), Differences: int(v.differences.Load()), Elapsed: time.Since(v.start)}
	if s := v.tenantsStart.Load(); s > 0 {
		left := uint64(max(0, p.Total-p.Tenants))
		p.TenantsPerSec, p.ETA = rate(uint64(p.Tenants), time.Since(time.Unix(0, s)), left)
		if p.Phase != VerifyPhaseTenants {
			p.ETA = 0
		}
	}
	return p
}

func compareTenant(tid string, keys readmodel.Keys, want, got *render.MapSink, add func(Difference) bool) bool {
	hk := map[string]bool{}
	for k := range want.Hashes {
		hk[k] = true
	}
	for k := range got.Hashes {
		hk[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(hk)) {
		w, g := want.Hashes[k], got.Hashes[k]
		fields := map[string]bool{}
		for f := range w {
			fields[f] = true
		}
		for f := range g {
			fields[f] = true
		}
		for _, f := range slices.Sorted(maps.Keys(fields)) {
			if w[f] != g[f] {
				if !add(Difference{Tenant: tid, Key: keys.Key(tid, k), Field: f, Want: w[f], Got: g[f]}) {
					return false
				}
			}
		}
	}
	zk := map[string]bool{}
	for k := range want.Zsets {
		zk[k] = true
	}
	for k := range got.Zsets {
		zk[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(zk)) {
		w, g := want.Zsets[k], got.Zsets[k]
		members := map[string]bool{}
		for m := range w {
			members[m] = true
		}
		for m := range g {
			members[m] = true
		}
		for _, m := range slices.Sorted(maps.Keys(members)) {
			ws, wok := w[m]
			gs, gok := g[m]
			if wok != gok || ws != gs {
				if !add(Difference{Tenant: tid, Key: keys.Key(tid, k), Field: m, Want: score(ws, wok), Got: score(gs, gok)}) {
					return false
				}
			}
		}
	}
	return true
}

func score(s float64, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatFloat(s, 'f', -1, 64)
}
