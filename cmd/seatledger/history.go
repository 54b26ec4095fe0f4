package main

import (
	"context"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/history"
)

func init() { serveHooks = append(serveHooks, historyRoutes) }

// historyRoutes serves the audit log, raw events and time travel, read from
// the event store directly.
func historyRoutes(_ context.Context, d *serveDeps) ([]func(api.RouteGroups), func(), error) {
	svc := &history.Service{Store: d.Store, Snapshots: d.Snapshots, Catalog: d.Decider.Catalog}
	return []func(api.RouteGroups){func(g api.RouteGroups) { api.MountHistory(g.Auditors, svc) }}, nil, nil
}
