package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/lease"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/readmodel"
)

func init() { serveHooks = append(serveHooks, readSide) }

// readSide runs the projections into Redis and mounts the query endpoints.
func readSide(ctx context.Context, d *serveDeps) ([]func(api.RouteGroups), func(), error) {
	proj, err := projections.New(projections.Config{
		Store: d.Store, Snapshots: d.Snapshots, Catalog: d.Decider.Catalog, Redis: d.Redis,
		Logger: d.Logger.With("component", "projections"), Registerer: d.Registerer,
	})
	if err != nil {
		return nil, nil, err
	}
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
			Logger: d.Logger.With("component", "lease")},
			func(jctx context.Context, token int64) error {
				for jctx.Err() == nil {
					err := runWatched(jctx, d, proj)
					if errors.Is(err, errReadModelsLost) || errors.Is(err, errPrefixMoved) {
						continue // rebuild from the start, or follow the new prefix
					}
					if err != nil && !errors.Is(err, context.Canceled) {
						d.Logger.Error("projection stopped", "projection", proj.Name(), "err", err)
						// A stopped projection keeps the lease: it says why in
						// its status, and another node would stop at the same event.
						<-jctx.Done()
					}
					return err
				}
				return jctx.Err()
			})
	}()
	q := queries.New(queries.Config{Redis: d.Redis, Catalog: d.Decider.Catalog})
	// Not ready while the read models (and with them the held-data
	// schedule) are being rebuilt.
	d.ReadyChecks = append(d.ReadyChecks, q.Ready)
	routes := func(g api.RouteGroups) {
		q.Mount(g.Readers)
		g.Operator.GET("/projections", func(c *gin.Context) {
			api.WriteJSON(c, http.StatusOK, []projections.Status{proj.Status()})
		})
		// POST /v1/projections/rebuild[?tenant=T] rebuilds every read model
		// into a fresh prefix and swaps to it (or one tenant in place);
		// with Accept: application/x-ndjson it streams progress lines.
		g.Operator.POST("/projections/rebuild", func(c *gin.Context) { rebuild(c, d) })
		// POST /v1/projections/verify folds every tenant from the event store
		// and compares the result with the read models (seatledger verify).
		g.Operator.POST("/projections/verify", func(c *gin.Context) {
			ctx := c.Request.Context()
			if err := waitCheckpoint(ctx, d, proj, headOf(d)); err != nil {
				api.WriteProblem(c, fmt.Errorf("%w: the projection did not catch up: %v", eventstore.ErrUnavailable, err))
				return
			}
			prefix, err := readmodel.ActivePrefix(ctx, d.Redis)
			if err != nil {
				api.WriteProblem(c, err)
				return
			}
			rep, err := projections.Verify(ctx, d.Store, d.Redis, prefix, projections.VerifyOptions{Snapshots: d.Snapshots})
			if err != nil {
				api.WriteProblem(c, err)
				return
			}
			api.WriteJSON(c, http.StatusOK, rep)
		})
	}
	stop := func() {
		cancel()
		<-done
	}
	return []func(api.RouteGroups){routes}, stop, nil
}

// headOf returns the event store's last global position, for waiting until
// the projection has caught up with everything written so far.
func headOf(d *serveDeps) eventstore.Position {
	if h, ok := d.Store.(interface{ LastPosition() eventstore.Position }); ok {
		return h.LastPosition()
	}
	return 0
}

// waitCheckpoint waits (up to 30 s) until the projection's checkpoint in
// Redis — written by whichever node holds its lease — reaches pos.
func waitCheckpoint(ctx context.Context, d *serveDeps, proj *projections.Projection, pos eventstore.Position) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	prefix := proj.Prefix()
	if prefix == "" { // this node does not hold the projection's lease
		var err error
		if prefix, err = readmodel.ActivePrefix(ctx, d.Redis); err != nil {
			return err
		}
	}
	key := readmodel.Keys{Prefix: prefix}.Checkpoint(proj.Name())
	for {
		v, err := d.Redis.Get(ctx, key).Uint64()
		if (err == nil || errors.Is(err, redis.Nil)) && eventstore.Position(v) >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// errReadModelsLost says Redis lost the read models while the projection ran;
// errPrefixMoved that a replay swapped the active prefix.
var (
	errReadModelsLost = errors.New("redis lost the read models")
	errPrefixMoved    = errors.New("the active prefix moved")
)

// presentKey marks a prefix whose read models are complete up to their
// checkpoint. It disappears with the rest when Redis loses its data
// (FLUSHALL, a restart without persistence), which a checkpoint alone would
// not show: a running projection would write its checkpoint again and never
// rebuild what was lost. Queries answer 503 while the active prefix has no
// marker, and /readyz is not ready.
func presentKey(prefix string) string { return readmodel.Keys{Prefix: prefix}.Present() }

// runWatched runs the projection and stops it with errReadModelsLost when
// its prefix's markers disappear. Before it starts, a prefix without its
// Present marker is cleared (with its checkpoint), so the projection rebuilds
// it from the first event rather than trusting a half-lost read model; the
// projection marks it present once it has caught up with the store (until
// then it carries the Building marker, and reads answer 503, never a 404 or
// an older version).
func runWatched(ctx context.Context, d *serveDeps, proj *projections.Projection) error {
	prefix, err := readmodel.ActivePrefix(ctx, d.Redis)
	if err != nil {
		return err
	}
	keys := readmodel.Keys{Prefix: prefix}
	n, err := d.Redis.Exists(ctx, keys.Present()).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		removed, err := projections.DeletePrefix(ctx, d.Redis, prefix)
		if err != nil {
			return err
		}
		d.Logger.Warn("read models missing or incomplete (Redis lost data, or a first start): rebuilding them from the first event; reads answer 503 until done",
			"prefix", prefix, "keys_removed", removed)
		if err := d.Redis.Set(ctx, keys.Building(), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if now, err := readmodel.ActivePrefix(wctx, d.Redis); err == nil && now != prefix {
					d.Logger.Info("active prefix changed (replay): the projection follows it", "from", prefix, "to", now)
					cancel(errPrefixMoved)
					return
				}
				// Present once built, Building while it is built: neither
				// means Redis lost them.
				if n, err := d.Redis.Exists(wctx, keys.Present(), keys.Building()).Result(); err == nil && n == 0 {
					d.Logger.Warn("Redis lost the read models; the projection restarts from the first event", "prefix", prefix)
					cancel(errReadModelsLost)
					return
				}
			}
		}
	}()
	err = proj.Run(wctx)
	if cause := context.Cause(wctx); errors.Is(cause, errReadModelsLost) || errors.Is(cause, errPrefixMoved) {
		return cause
	}
	if errors.Is(err, projections.ErrReadModelsLost) {
		return errReadModelsLost
	}
	return err
}

// codeReplayRunning answers a rebuild asked for while another runs.
const codeReplayRunning domain.ErrorCode = "replay_running"

// rebuild runs a replay for POST /v1/projections/rebuild.
func rebuild(c *gin.Context, d *serveDeps) {
	tenant := c.Query("tenant")
	if tenant != "" && !domain.ValidID(tenant) {
		api.WriteProblem(c, &domain.Error{Code: domain.CodeInvalidRequest, Field: "tenant", Detail: "tenant is not a valid id"})
		return
	}
	// A replay can outlast the server's write timeout.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	stream := strings.Contains(c.GetHeader("Accept"), "application/x-ndjson")
	var mu sync.Mutex
	line := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(v)
		_, _ = c.Writer.Write(append(b, '\n'))
		c.Writer.Flush()
	}
	if stream {
		c.Header("Content-Type", "application/x-ndjson")
		c.Status(http.StatusOK)
	}
	newPrefix := fmt.Sprintf("sl:r%d:", time.Now().UnixNano())
	marked := false
	cfg := projections.ReplayConfig{Store: d.Store, Snapshots: d.Snapshots, Redis: d.Redis, Catalog: d.Decider.Catalog,
		Tenant: tenant, Logger: d.Logger.With("component", "replay"),
		Progress: func(p projections.ReplayProgress) {
			// The new prefix is complete up to its checkpoint from the tail
			// phase on: mark it before the swap, so the live projection
			// takes it over instead of rebuilding it.
			if tenant == "" && !marked && p.Phase == projections.PhaseCatchUp {
				marked = d.Redis.Set(c.Request.Context(), presentKey(newPrefix), time.Now().UTC().Format(time.RFC3339), 0).Err() == nil
			}
			d.Logger.Info("replay progress", "phase", p.Phase, "events", p.Events, "events_per_s", int(p.EventsPerSec), "eta", p.ETA.Round(time.Second))
			if stream {
				line(map[string]any{"progress": p})
			}
		}}
	var res projections.ReplayResult
	var err error
	if tenant != "" {
		res, err = projections.RebuildTenant(c.Request.Context(), cfg)
	} else {
		cfg.NewPrefix = newPrefix
		res, err = projections.Replay(c.Request.Context(), cfg)
	}
	if err != nil {
		if stream {
			line(map[string]any{"error": err.Error()})
			return
		}
		if errors.Is(err, projections.ErrReplayRunning) {
			err = &api.HTTPError{Status: http.StatusConflict, Code: codeReplayRunning,
				Detail: err.Error() + "; wait for it to finish (GET /v1/projections shows its progress) and try again"}
		}
		api.WriteProblem(c, err)
		return
	}
	if stream {
		line(map[string]any{"result": res})
		return
	}
	api.WriteJSON(c, http.StatusOK, res)
}
