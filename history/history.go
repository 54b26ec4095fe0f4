// Package history answers "who changed what, when" and "what did this
// tenant look like then" from the event store: the audit log, the state of a
// tenant at any version or time, and the difference between two points.
package history

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// Service reads tenants' history.
type Service struct {
	Store     eventstore.Store
	Snapshots eventstore.SnapshotStore // nil: fold from the first event
	Upcasters domain.Upcasters
	Catalog   *domain.Catalog
}

// Head returns the tenant's current version (0: no such tenant).
func (s *Service) Head(ctx context.Context, tenantID string) (uint64, error) {
	return s.Store.StreamVersion(ctx, tenantstream.Name(tenantID))
}

// occurredAt reads the time of one event.
func (s *Service) occurredAt(ctx context.Context, stream string, v uint64) (time.Time, error) {
	recs, err := s.Store.ReadStream(ctx, stream, v, 1)
	if err != nil {
		return time.Time{}, err
	}
	if len(recs) == 0 {
		return time.Time{}, fmt.Errorf("%s has no version %d", stream, v)
	}
	var env struct {
		OccurredAt time.Time `json:"occurredAt"`
	}
	if err := json.Unmarshal(recs[0].Data, &env); err != nil {
		return time.Time{}, fmt.Errorf("%s version %d: %w", stream, v, err)
	}
	return env.OccurredAt, nil
}

// VersionAt returns the last version whose event occurred at or before t
// (0 when the tenant did not exist yet). Events never go back in time within
// a stream, so a binary search over versions finds it in O(log n) reads.
func (s *Service) VersionAt(ctx context.Context, tenantID string, t time.Time) (uint64, error) {
	head, err := s.Head(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	stream := tenantstream.Name(tenantID)
	lo, hi := uint64(0), head // invariant: version lo is at or before t (0: none); versions > hi are after t
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		at, err := s.occurredAt(ctx, stream, mid)
		if err != nil {
			return 0, err
		}
		if at.After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo, nil
}

// StateAt folds the tenant up to version (0: the latest), from the nearest
// snapshot at or below it.
func (s *Service) StateAt(ctx context.Context, tenantID string, version uint64) (*domain.Tenant, error) {
	return tenantstream.Fold(ctx, s.Store, s.Snapshots, s.Upcasters, tenantID, version)
}

// Point is a place in a tenant's history: a version, or a time.
type Point struct {
	Version uint64
	Time    time.Time // used when Version is 0 and Time is set
	// Field is the request parameter that named the point, for the field
	// of Resolve's errors ("" : version).
	Field string
}

// Resolve turns a point into a version (bounded by the head).
func (s *Service) Resolve(ctx context.Context, tenantID string, p Point) (uint64, error) {
	field := p.Field
	if field == "" {
		field = "version"
	}
	head, err := s.Head(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	if p.Version == 0 && !p.Time.IsZero() {
		return s.VersionAt(ctx, tenantID, p.Time)
	}
	if p.Version > head {
		return 0, domain.Errorf(domain.CodeNotFound, field, "tenant %s is at version %d; version %d does not exist yet", tenantID, head, p.Version)
	}
	if p.Version == 0 {
		return head, nil
	}
	return p.Version, nil
}
