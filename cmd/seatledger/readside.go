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
		return nil, nil, err
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
		// and compares the result with the read models (seatledger verify);
		// with Accept: application/x-ndjson it streams progress lines.
		g.Operator.POST("/projections/verify", func(c *gin.Context) { verifyReadModels(c, d, mgr) })
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

// projectionLeaseTTL is how long a dead holder of the projection's lease
// blocks the others, and so how long a holder that lost the lease keeps
// writing at most before it notices (it renews every third of it).
const projectionLeaseTTL = 5 * time.Second

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
				marked = d.Redis.Set(c.Request.Context(), readmodel.Keys{Prefix: newPrefix}.Present(), time.Now().UTC().Format(time.RFC3339), 0).Err() == nil
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

// verifyProgressInterval is how often a streamed verify writes a progress line.
var verifyProgressInterval = time.Second

// verifyReadModels runs projections.Verify for POST /v1/projections/verify,
// once the projection has caught up with the store's head (else 503). With
// Accept: application/x-ndjson it then answers 200 and writes a line
// {"progress":…} about every second and a last line {"result":<report>} or
// {"error":"…"}; otherwise the report alone, when it is done. Either way the
// server's write timeout does not cut it short.
func verifyReadModels(c *gin.Context, d *serveDeps, mgr *projections.Manager) {
	ctx := c.Request.Context()
	// A verify of many tenants can outlast the server's write timeout.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := mgr.WaitCheckpoint(wctx, headOf(d))
	cancel()
	if err != nil {
		api.WriteProblem(c, fmt.Errorf("%w: the projection did not catch up: %v", eventstore.ErrUnavailable, err))
		return
	}
	prefix, err := readmodel.ActivePrefix(ctx, d.Redis)
	if err != nil {
		api.WriteProblem(c, err)
		return
	}
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
		c.Writer.Flush()
	}
	logger := d.Logger.With("component", "verify")
	var logged time.Time
	rep, err := projections.Verify(ctx, d.Store, d.Redis, prefix, projections.VerifyOptions{
		Snapshots: d.Snapshots, Catalog: d.Decider.Catalog, ProgressInterval: verifyProgressInterval,
		Progress: func(p projections.VerifyProgress) {
			if time.Since(logged) >= 10*time.Second || p.Phase == projections.VerifyPhaseDone {
				logged = time.Now()
				logger.Info("verify progress", "phase", p.Phase, "tenants", p.Tenants, "total", p.Total,
					"differences", p.Differences, "tenants_per_s", int(p.TenantsPerSec), "eta", p.ETA.Round(time.Second))
			}
			if stream {
				line(map[string]any{"progress": p})
			}
		}})
	if err != nil {
		if stream {
			line(map[string]any{"error": err.Error()})
			return
		}
		api.WriteProblem(c, err)
		return
	}
	if stream {
		line(map[string]any{"result": rep})
		return
	}
	api.WriteJSON(c, http.StatusOK, rep)
}
