package tenantstream

import (
	"context"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
)

// SnapshotSchema is the version of the snapshot format (the JSON of
// domain.Tenant). Fold ignores a snapshot of another schema. 2: a
// subscription has a term (R16, R17), which a fold derives from its
// purchase; a schema 1 snapshot lacks it, so those are folded again.
const SnapshotSchema = 2

// Snapshot encodes st as the snapshot of its tenant's stream at st.Version.
func Snapshot(tenantID string, st *domain.Tenant) (eventstore.Snapshot, error) {
	data, err := eventcodec.MarshalSnapshot(st)
	if err != nil {
		return eventstore.Snapshot{}, err
	}
	return eventstore.Snapshot{Stream: Name(tenantID), Version: st.Version, Schema: SnapshotSchema, Data: data}, nil
}

// BackfillSnapshots folds a tenant once from its first event and writes a
// snapshot at every multiple of k, for streams written before snapshots (or
// after they were deleted). progress, if not nil, is called with the version
// reached after each snapshot.
func BackfillSnapshots(ctx context.Context, store eventstore.Store, snaps eventstore.SnapshotStore, ups domain.Upcasters,
	tenantID string, k uint64, progress func(version uint64)) error {
	st := domain.NewTenant()
	for {
		next := (st.Version/k + 1) * k
		if err := FoldFrom(ctx, store, ups, st, tenantID, next); err != nil {
			return err
		}
		if st.Version < next {
			return nil // the head is below the next multiple
		}
		snap, err := Snapshot(tenantID, st)
		if err != nil {
			return err
		}
		if err := snaps.SaveSnapshot(ctx, snap); err != nil {
			return err
		}
		if progress != nil {
			progress(st.Version)
		}
	}
}
