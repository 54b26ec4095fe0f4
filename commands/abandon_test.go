package commands

import (
	"context"
	"sync"
	"testing"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
)

// stopOnWait is an embedded store whose next queued append, once armed,
// is one whose command stops: its Wait panics when gate closes. The
// append queued after it closes queuedAfter.
type stopOnWait struct {
	*embedded.Store
	mu          sync.Mutex
	gate        chan struct{} // non-nil: armed
	queued      chan struct{} // closed when the stopping append is queued
	queuedAfter chan struct{}
}

type stoppingWait struct {
	eventstore.QueuedAppend
	gate <-chan struct{}
}

func (w stoppingWait) Wait() (eventstore.AppendResult, error) {
	<-w.gate
	panic("the command stopped")
}

func (s *stopOnWait) QueueAppend(ctx context.Context, stream string, exp eventstore.ExpectedVersion, evs []eventstore.EventData, after eventstore.QueuedAppend) eventstore.QueuedAppend {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := after.(stoppingWait); ok {
		after = w.QueuedAppend
		defer close(s.queuedAfter)
	}
	q := s.Store.QueueAppend(ctx, stream, exp, evs, after)
	if s.gate != nil {
		q, s.gate = stoppingWait{q, s.gate}, nil
		close(s.queued)
	}
	return q
}

// TestACommandThatStopsWithItsAppendQueuedDoesNotHoldUpItsTenant: a
// command that stops (panics) while its append is queued ends the append
// (errAbandoned): the command queued after it gets its answer instead of
// waiting for it forever, and the handler's state is the log's.
func TestACommandThatStopsWithItsAppendQueuedDoesNotHoldUpItsTenant(t *testing.T) {
	store := &stopOnWait{Store: openStore(t)}
	h := newHandler(store, nil, nil)
	defer h.Close()
	createTenant(t, h, "t1", "u1", "u2")
	sku := mustSku(t, "SPB")
	must(t, h, &domain.PurchaseSubscription{CommandMeta: meta("t1", admin), SubscriptionID: "s", SkuID: sku, Quantity: 5})

	gate := make(chan struct{})
	store.gate, store.queued, store.queuedAfter = gate, make(chan struct{}), make(chan struct{})
	stopped := make(chan any)
	go func() {
		defer func() { stopped <- recover() }()
		_, _ = h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: sku, Users: []string{"u1"}})
	}()
	<-store.queued
	second := make(chan error, 1)
	go func() {
		_, err := h.Handle(context.Background(), &domain.AssignLicenses{CommandMeta: meta("t1", admin), SkuID: sku, Users: []string{"u2"}})
		second <- err
	}()
	<-store.queuedAfter // the second command queued behind the first
	close(gate)
	if r := <-stopped; r == nil {
		t.Fatal("the first command did not stop")
	}
	if err := <-second; err != nil {
		t.Fatalf("the command queued after the one that stopped: %v", err)
	}
	checkHandlerMatchesLog(t, h, store, "t1")
}
