package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/lease"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/rebuild"
)

// startReadSide runs the projection of the event store into Redis, on the
// node holding its lease, and returns the queries over the read models, the
// operator's handle on them, and the function that stops the projection.
func startReadSide(ctx context.Context, d *serveDeps) (*queries.Service, api.ReadModels, func(), error) {
	// A Redis other nodes may share: before rebuilding read models it
	// finds without their marker, wait out a former lease holder. The
	// in-process Redis has no other writer, so a zero-setup start does not
	// wait.
	grace := projectionLeaseTTL
	if d.Config.RedisURL == "" {
		grace = 0
	}
	mgr, err := projections.NewManager(projections.Config{
		Store: d.Store, Snapshots: d.Snapshots, Catalog: d.Decider.Catalog, Redis: d.Redis,
		Logger: d.Logger.With("component", "projections"), Registerer: d.Registerer,
		FormerWriterGrace: grace,
	}, time.Second)
	if err != nil {
		return nil, nil, nil, err
	}
	proj := mgr.Projection()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	// One node at a time writes the read models: the holder of the
	// projection's lease. If it dies, the lease expires and another node's
	// projection resumes from the checkpoint. Writes are guarded by each
	// tenant's applied version, so a late write of a former holder cannot
	// move a read model back.
	owner := fmt.Sprintf("%s:%x", d.Config.NodeID, rand.Uint64())
	go func() {
		defer close(done)
		_ = lease.Run(runCtx, lease.Config{Redis: d.Redis, Name: "projection:" + proj.Name(), Owner: owner,
			TTL: projectionLeaseTTL, Logger: d.Logger.With("component", "lease")},
			func(jctx context.Context, token int64) error {
				// The manager follows replays' prefix swaps and rebuilds
				// read models Redis lost; it returns when the lease is lost
				// or the projection stopped on an event.
				err := mgr.Run(jctx)
				if err != nil {
					d.Logger.Error("projection stopped", "projection", proj.Name(), "err", err)
					// A stopped projection keeps the lease: it says why in
					// its status, and another node would stop at the same event.
					<-jctx.Done()
				}
				return err
			})
	}()
	q := queries.New(queries.Config{Redis: d.Redis, Catalog: d.Decider.Catalog})
	stop := func() {
		cancel()
		<-done
	}
	return q, &readModelAdmin{d: d, mgr: mgr}, stop, nil
}

// readModelAdmin is the operator's handle on the read models
// (api.ReadModels) over the projections package.
type readModelAdmin struct {
	d   *serveDeps
	mgr *projections.Manager
}

// Status is the projection's status, as a list of one.
func (a *readModelAdmin) Status() any {
	return []projections.Status{a.mgr.Projection().Status()}
}

// Verify waits (up to 30 s) for the projection to catch up with the store,
// then folds every tenant from the event store and compares the result with
// the active read models.
func (a *readModelAdmin) Verify(ctx context.Context, progress func(any)) (any, error) {
	d := a.d
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := a.mgr.WaitCheckpoint(wctx, headOf(d))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: the projection did not catch up: %v", eventstore.ErrUnavailable, err)
	}
	prefix, err := readmodel.ActivePrefix(ctx, d.Redis)
	if err != nil {
		return nil, err
	}
	logger := d.Logger.With("component", "verify")
	var logged time.Time
	return rebuild.Verify(ctx, d.Store, d.Redis, prefix, rebuild.VerifyOptions{
		Snapshots: d.Snapshots, Catalog: d.Decider.Catalog, ProgressInterval: verifyProgressInterval,
		Progress: func(p rebuild.VerifyProgress) {
			if time.Since(logged) >= 10*time.Second || p.Phase == rebuild.VerifyPhaseDone {
				logged = time.Now()
				logger.Info("verify progress", "phase", p.Phase, "tenants", p.Tenants, "total", p.Total,
					"differences", p.Differences, "tenants_per_s", int(p.TenantsPerSec), "eta", p.ETA.Round(time.Second))
			}
			progress(p)
		}})
}

// verifyProgressInterval is how often a streamed verify writes a progress line.
var verifyProgressInterval = time.Second

// headOf returns the event store's last global position, for waiting until
// the projection has caught up with everything written so far.
func headOf(d *serveDeps) eventstore.Position {
	if h, ok := d.Store.(interface{ LastPosition() eventstore.Position }); ok {
		return h.LastPosition()
	}
	return 0
}

// projectionLeaseTTL is how long a dead holder of the projection's lease
// blocks the others, and so how long a holder that lost the lease keeps
// writing at most before it notices (it renews every third of it).
const projectionLeaseTTL = 5 * time.Second

// replayTail is the tail of a replay: the live projector on the new prefix,
// until the replay swaps to it and the Manager's projection follows.
func replayTail(cfg rebuild.ReplayConfig) (rebuild.Tail, error) {
	return projections.New(projections.Config{Name: cfg.Name, Store: cfg.Store, Snapshots: cfg.Snapshots, Upcasters: cfg.Upcasters,
		Catalog: cfg.Catalog, Redis: cfg.Redis, Prefix: cfg.NewPrefix, Logger: cfg.Logger})
}

// Rebuild replays every read model into a fresh prefix and swaps to it, or
// rebuilds one tenant's in place.
func (a *readModelAdmin) Rebuild(ctx context.Context, tenant string, progress func(any)) (any, error) {
	d := a.d
	newPrefix := fmt.Sprintf("sl:r%d:", time.Now().UnixNano())
	marked := false
	cfg := rebuild.ReplayConfig{Store: d.Store, Snapshots: d.Snapshots, Redis: d.Redis, Catalog: d.Decider.Catalog,
		Tenant: tenant, Logger: d.Logger.With("component", "replay"), NewTail: replayTail,
		Progress: func(p rebuild.ReplayProgress) {
			// The new prefix is complete up to its checkpoint from the tail
			// phase on: mark it before the swap, so the live projection
			// takes it over instead of rebuilding it.
			if tenant == "" && !marked && p.Phase == rebuild.PhaseCatchUp {
				marked = d.Redis.Set(ctx, readmodel.Keys{Prefix: newPrefix}.Present(), time.Now().UTC().Format(time.RFC3339), 0).Err() == nil
			}
			d.Logger.Info("replay progress", "phase", p.Phase, "events", p.Events, "events_per_s", int(p.EventsPerSec), "eta", p.ETA.Round(time.Second))
			progress(p)
		}}
	var (
		res rebuild.ReplayResult
		err error
	)
	if tenant != "" {
		res, err = rebuild.Tenant(ctx, cfg)
	} else {
		cfg.NewPrefix = newPrefix
		res, err = rebuild.Replay(ctx, cfg)
	}
	if errors.Is(err, rebuild.ErrReplayRunning) {
		return nil, api.RebuildRunning(err)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}
