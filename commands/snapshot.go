package commands

import (
	"context"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
)

// SnapshotSchema is the version of the snapshot format (the JSON of
// domain.Tenant). A snapshot of another schema is ignored.
const SnapshotSchema = 1

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
	st, err := Fold(ctx, h.cfg.Store, h.cfg.Snapshots, h.cfg.Upcasters, tenantID, version)
	if err != nil {
		return err
	}
	if !st.Exists() || (version > 0 && st.Version != version) {
		return nil
	}
	data, err := eventcodec.MarshalSnapshot(st)
	if err != nil {
		return err
	}
	return h.cfg.Snapshots.SaveSnapshot(ctx, eventstore.Snapshot{Stream: StreamName(tenantID), Version: st.Version, Schema: SnapshotSchema, Data: data})
}

// BackfillSnapshots folds a tenant once from its first event and writes a
// snapshot at every multiple of k, for streams written before snapshots (or
// after they were deleted). progress, if not nil, is called with the version
// reached after each snapshot.
func BackfillSnapshots(ctx context.Context, store eventstore.Store, snaps eventstore.SnapshotStore, ups domain.Upcasters,
	tenantID string, k uint64, progress func(version uint64)) error {
	st := domain.NewTenant()
	stream := StreamName(tenantID)
	for {
		next := (st.Version/k + 1) * k
		if err := foldFrom(ctx, store, ups, st, stream, next); err != nil {
			return err
		}
		if st.Version < next {
			return nil // the head is below the next multiple
		}
		data, err := eventcodec.MarshalSnapshot(st)
		if err != nil {
			return err
		}
		if err := snaps.SaveSnapshot(ctx, eventstore.Snapshot{Stream: stream, Version: st.Version, Schema: SnapshotSchema, Data: data}); err != nil {
			return err
		}
		if progress != nil {
			progress(st.Version)
		}
	}
}
