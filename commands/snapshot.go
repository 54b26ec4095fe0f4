package commands

import (
	"context"

	"github.com/seatledger/seatledger/tenantstream"
)

type snapRequest struct {
	tenantID string
	version  uint64
}

// maybeSnapshot asks for a snapshot when an append crossed a multiple of K.
// It never blocks the command: when the snapshotter is busy the request is
// dropped (the next multiple asks again).
func (h *Handler) maybeSnapshot(tenantID string, version, appended uint64) {
	k := uint64(h.cfg.SnapshotEvery)
	if h.cfg.Snapshots == nil || h.cfg.SnapshotEvery <= 0 || version/k == (version-appended)/k {
		return
	}
	select {
	case h.snaps <- snapRequest{tenantID, version / k * k}:
	default:
	}
}

// snapshotter folds and stores snapshots off the command path: it folds the
// tenant itself from the previous snapshot, so commands never wait for a
// large state to be encoded.
func (h *Handler) snapshotter() {
	defer h.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-h.closed; cancel() }()
	for {
		select {
		case <-h.closed:
			return
		case r := <-h.snaps:
			if err := h.Snapshot(ctx, r.tenantID, r.version); err != nil && ctx.Err() == nil {
				h.cfg.Logger.Warn("snapshot failed; commands are not affected", "tenant", r.tenantID, "version", r.version, "err", err)
			}
		}
	}
}

// Snapshot writes a snapshot of the tenant at version (0: latest).
func (h *Handler) Snapshot(ctx context.Context, tenantID string, version uint64) error {
	if h.cfg.Snapshots == nil {
		return nil
	}
	st, err := tenantstream.Fold(ctx, h.cfg.Store, h.cfg.Snapshots, h.cfg.Upcasters, tenantID, version)
	if err != nil {
		return err
	}
	if !st.Exists() || (version > 0 && st.Version != version) {
		return nil
	}
	snap, err := tenantstream.Snapshot(tenantID, st)
	if err != nil {
		return err
	}
	return h.cfg.Snapshots.SaveSnapshot(ctx, snap)
}
