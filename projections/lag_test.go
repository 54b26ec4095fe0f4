package projections

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/seatledger/seatledger/eventstore"
)

// sparseStore gives the embedded store's events positions 1000 apart, as
// KurrentDB's byte offsets and PostgreSQL's transaction-based positions
// are, and hides its DensePositions.
type sparseStore struct{ eventstore.Store }

func (s sparseStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := s.Store.ReadAll(ctx, after/1000, limit)
	for i := range evs {
		evs[i].Position *= 1000
	}
	return evs, err
}

// Issue 24: the projection's lag is a number of events on every store, not
// a difference of positions (bytes on KurrentDB).
func TestLagIsCountedInEvents(t *testing.T) {
	st := openStore(t)
	var evs []eventstore.EventData
	for range 7 {
		evs = append(evs, eventstore.EventData{ID: uuid.NewString(), Type: "T", Data: []byte(`{}`)})
	}
	if _, err := st.Append(context.Background(), "tenant-lag", eventstore.NoStream, evs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dense := &Projection{cfg: Config{Store: st}}
	if got := dense.lagEvents(ctx, 2, 7); got != 5 {
		t.Fatalf("dense positions: lag %d, want 5", got)
	}
	sparse := &Projection{cfg: Config{Store: sparseStore{st}}}
	if got := sparse.lagEvents(ctx, 2000, 7000); got != 5 {
		t.Fatalf("sparse positions: lag %d events, want 5 (not %d)", got, 7000-2000)
	}
	if got := sparse.lagEvents(ctx, 7000, 7000); got != 0 {
		t.Fatalf("caught up: lag %d", got)
	}
}
