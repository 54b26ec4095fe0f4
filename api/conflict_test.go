package api_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/seatledger/seatledger/eventstore"
)

// conflictingStore answers every append, while refusing is set, as if
// another writer had always just appended to the stream: a
// *eventstore.ConflictError, nothing written. Embedding the Store
// interface hides the real store's AsyncAppender, so the command handler
// takes its plain append-and-retry path.
type conflictingStore struct {
	eventstore.Store
	refusing atomic.Bool
	refused  atomic.Int64
}

func (s *conflictingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if !s.refusing.Load() {
		return s.Store.Append(ctx, stream, expected, events)
	}
	s.refused.Add(1)
	v, err := s.Store.StreamVersion(ctx, stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: v}
}

// TestConflictsPastTheRetriesAnswerConcurrencyConflict: when every append
// of a command conflicts, the command is retried and then answered 409
// concurrency_conflict (problem+json), with nothing written, on a tenant's
// command and on a tenant create; once appends go through, the same
// requests succeed.
func TestConflictsPastTheRetriesAnswerConcurrencyConflict(t *testing.T) {
	cs := &conflictingStore{}
	e := newEnvOver(t, func(st eventstore.Store) eventstore.Store { cs.Store = st; return cs })
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	group := req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin, Body: `{"id":"g1","displayName":"Sales"}`}
	tenant := req{Method: "POST", Path: "/v1/tenants", Token: testOperator,
		Body: `{"id":"fabrikam","name":"Fabrikam","globalAdmin":{"id":"ga","userPrincipalName":"ga@fabrikam.example"}}`}

	cs.refusing.Store(true)
	for _, c := range []struct {
		name, tenant string
		r            req
	}{{"tenant command", "contoso", group}, {"tenant create", "fabrikam", tenant}} {
		t.Run(c.name, func(t *testing.T) {
			attempts := cs.refused.Load()
			e.refused(t, c.tenant, c.r, http.StatusConflict, "concurrency_conflict")
			if n := cs.refused.Load() - attempts; n < 2 {
				t.Errorf("the command tried %d appends: a conflict must be retried before it is answered", n)
			}
		})
	}

	cs.refusing.Store(false)
	wantOK(t, e.do(group), http.StatusCreated)
	wantOK(t, e.do(tenant), http.StatusCreated)
}
