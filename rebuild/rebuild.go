package rebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/render"
	"github.com/seatledger/seatledger/tenantstream"
)

// rebuildScript replaces one tenant's read model: KEYS are the tenant's keys
// (KEYS[1] its meta hash), all deleted, then the ops of render.ApplyScript are
// applied and the version set. ARGV[1] is the applied version seen when the
// keys were listed (nothing is done, -1, if it changed meanwhile: a key may
// have appeared), ARGV[2] the version written, ARGV[3] "1" to overwrite a
// read model ahead of it (else -2).
var rebuildScript = render.Script("rebuild.lua")

var rebuildTenantScript = redis.NewScript(rebuildScript)

// Tenant rebuilds one tenant's read model (cfg.Tenant) in place under
// the active prefix: it folds the tenant from its stream, then deletes every
// key of the tenant and writes the rendered state with the stream version
// as the applied version, in one script call (the tenant's keys share a
// hash tag). The live projection continues from there: its later events
// have higher versions, and a write of an older version is ignored. If the
// live projection wrote the tenant meanwhile, the rebuild starts again.
func Tenant(ctx context.Context, cfg ReplayConfig) (ReplayResult, error) {
	if cfg.Store == nil || cfg.Redis == nil || cfg.Tenant == "" {
		return ReplayResult{}, errors.New("projections: rebuild: Store, Redis and Tenant are required")
	}
	cfg.defaults()
	start := time.Now()
	rdb := cfg.Redis
	prefix, err := readmodel.ActivePrefix(ctx, rdb)
	if err != nil {
		return ReplayResult{}, err
	}
	keys := readmodel.Keys{Prefix: prefix}
	tid := cfg.Tenant
	res := ReplayResult{Prefix: prefix, Tenant: tid, Tenants: 1}
	fail := func(err error) (ReplayResult, error) {
		return res, fmt.Errorf("projections: rebuild tenant %s: %w", tid, err)
	}
	st, err := tenantstream.Fold(ctx, cfg.Store, cfg.Snapshots, cfg.Upcasters, tid, 0)
	if err != nil {
		return fail(err)
	}
	force := false
	var ss *render.ScriptSink
	for attempt := 0; ; attempt++ {
		if attempt == 200 {
			return fail(errors.New("the read model kept changing"))
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if ss == nil { // (re)render the state
			ss = render.NewScriptSink(func(suffix string) string { return keys.Key(tid, suffix) })
			if st.Version > 0 {
				render.NewRenderer(cfg.Catalog, st, ss, nil).All()
			}
		}
		// The applied version is read before the keys are listed: a write
		// in between changes it, and the script then does nothing.
		cur, err := rdb.HGet(ctx, keys.Key(tid, readmodel.Meta), "version").Result()
		if errors.Is(err, redis.Nil) {
			cur, err = "", nil
		}
		if err != nil {
			return fail(err)
		}
		existing, err := readmodel.TenantKeys(ctx, rdb, keys, tid)
		if err != nil {
			return res, err
		}
		ks := ss.Keys
		for _, k := range existing {
			if !ss.Has(strings.TrimPrefix(k, keys.Tenant(tid))) {
				ks = append(ks, k)
			}
		}
		f := "0"
		if force {
			f = "1"
		}
		args := make([]any, 0, len(ss.Args)+3)
		args = append(args, cur, st.Version, f)
		args = append(args, ss.Args...)
		n, err := rebuildTenantScript.Run(ctx, rdb, ks, args...).Int()
		if err != nil {
			return fail(err)
		}
		switch n {
		case -1: // written meanwhile: list the keys again, after a pause that
			// grows, so a busy tenant's live writes cannot starve the rebuild
			select {
			case <-ctx.Done():
				return fail(ctx.Err())
			case <-time.After(time.Duration(min(attempt, 50)) * time.Millisecond):
			}
			continue
		case -2: // the read model is ahead of the state: catch the state up
			before := st.Version
			if err := catchUpTenant(ctx, cfg, st); err != nil {
				return fail(err)
			}
			if st.Version == before { // no new event: the stored version is wrong
				force = true
			}
			ss = nil
			continue
		}
		if st.Version > 0 {
			err = rdb.SAdd(ctx, keys.Tenants(), tid).Err()
		} else {
			err = rdb.SRem(ctx, keys.Tenants(), tid).Err()
		}
		if err != nil {
			return fail(err)
		}
		res.Version = st.Version
		res.Duration = time.Since(start)
		res.BulkDuration = res.Duration
		cfg.report(ReplayProgress{Phase: PhaseTenant, Tenants: 1})
		cfg.Logger.Info("tenant read model rebuilt", "tenant", tid, "prefix", prefix, "version", st.Version,
			"keys_deleted", len(existing), "attempts", attempt+1)
		return res, nil
	}
}

// catchUpTenant applies the events of the tenant's stream after st.Version.
func catchUpTenant(ctx context.Context, cfg ReplayConfig, st *domain.Tenant) error {
	stream := tenantstream.Name(cfg.Tenant)
	for {
		recs, err := cfg.Store.ReadStream(ctx, stream, st.Version+1, 4096)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Version != st.Version+1 {
				return fmt.Errorf("%s: expected version %d, got %d", stream, st.Version+1, r.Version)
			}
			e, err := eventcodec.Decode(r.Data, cfg.Upcasters)
			if err != nil {
				return fmt.Errorf("%s version %d: %w", stream, r.Version, err)
			}
			e.Version = r.Version
			domain.Evolve(st, e)
		}
		if len(recs) < 4096 {
			return nil
		}
	}
}
