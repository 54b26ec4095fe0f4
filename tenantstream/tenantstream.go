// Package tenantstream owns a tenant's event stream: its name, how its
// events fold into the tenant's state, and the snapshots that cache that
// fold. The write side (commands) and the read side (projections, history)
// both fold through it, so neither depends on the other.
//
// Invariants: a tenant's stream is named "tenant-<id>" and its versions are
// contiguous from 1; Fold with or without snapshots gives the same state.
package tenantstream

import (
	"context"
	"fmt"
	"strings"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
)

// prefix begins the name of every tenant stream.
const prefix = "tenant-"

// readBatch is how many events one read of a stream returns.
const readBatch = 4096

// Name is the event stream of a tenant.
func Name(tenantID string) string { return prefix + tenantID }

// TenantID returns the tenant whose stream is stream; ok is false for a
// stream that is not a tenant's.
func TenantID(stream string) (tenantID string, ok bool) {
	return strings.CutPrefix(stream, prefix)
}

// Fold computes a tenant's state at version upTo (0: the latest) from the
// newest snapshot at or below it (if snaps is not nil) and the events after.
// Snapshots are a cache: Fold with snaps nil gives the same state.
func Fold(ctx context.Context, store eventstore.Store, snaps eventstore.SnapshotStore, ups domain.Upcasters, tenantID string, upTo uint64) (*domain.Tenant, error) {
	st := domain.NewTenant()
	if snaps != nil {
		snap, ok, err := snaps.LoadSnapshot(ctx, Name(tenantID), upTo)
		if err != nil {
			return nil, fmt.Errorf("load snapshot of tenant %s: %w", tenantID, err)
		}
		if ok && snap.Schema == SnapshotSchema {
			if s, err := eventcodec.UnmarshalSnapshot(snap.Data); err == nil && s.Version == snap.Version {
				st = s
			}
			// An unreadable snapshot is ignored: the events are the truth.
		}
	}
	if err := FoldFrom(ctx, store, ups, st, tenantID, upTo); err != nil {
		return nil, err
	}
	return st, nil
}

// FoldFrom applies to st the events of tenantID's stream after st.Version,
// up to upTo (0: all). It fails on a gap in the stream's versions.
func FoldFrom(ctx context.Context, store eventstore.Store, ups domain.Upcasters, st *domain.Tenant, tenantID string, upTo uint64) error {
	stream := Name(tenantID)
	for {
		if upTo > 0 && st.Version >= upTo {
			return nil
		}
		n := readBatch
		if upTo > 0 && upTo-st.Version < uint64(n) {
			n = int(upTo - st.Version)
		}
		recs, err := store.ReadStream(ctx, stream, st.Version+1, n)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		for _, r := range recs {
			if r.Version != st.Version+1 {
				return fmt.Errorf("read %s: expected version %d, got %d: the stream has a gap", stream, st.Version+1, r.Version)
			}
			e, err := eventcodec.Decode(r.Data, ups)
			if err != nil {
				return fmt.Errorf("%s version %d: %w", stream, r.Version, err)
			}
			e.Version = r.Version
			domain.Evolve(st, e)
		}
		if len(recs) < n {
			return nil
		}
	}
}
