package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
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
	go func() {
		defer close(done)
		if err := proj.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.Logger.Error("projection stopped", "projection", proj.Name(), "err", err)
		}
	}()
	q := queries.New(queries.Config{Redis: d.Redis, Catalog: d.Decider.Catalog})
	routes := func(g api.RouteGroups) {
		q.Mount(g.Readers)
		g.Operator.GET("/projections", func(c *gin.Context) {
			api.WriteJSON(c, http.StatusOK, []projections.Status{proj.Status()})
		})
		// POST /v1/projections/verify folds every tenant from the event store
		// and compares the result with the read models (seatledger verify).
		g.Operator.POST("/projections/verify", func(c *gin.Context) {
			ctx := c.Request.Context()
			if err := proj.WaitFor(ctx, headOf(d)); err != nil {
				api.WriteProblem(c, fmt.Errorf("%w: the projection did not catch up: %v", eventstore.ErrUnavailable, err))
				return
			}
			rep, err := projections.Verify(ctx, d.Store, d.Redis, proj.Prefix(), projections.VerifyOptions{Snapshots: d.Snapshots})
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
