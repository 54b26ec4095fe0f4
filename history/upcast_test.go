package history

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/tenantstream"
)

// legacyUserAdded is how an older seatledger wrote UserAdded (schema 0):
// "upn" and "country" instead of "userPrincipalName" and "usageLocation".
func legacyUserAdded(t *testing.T, raw []byte) []byte {
	var w map[string]json.RawMessage
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(w["data"], &d); err != nil {
		t.Fatal(err)
	}
	d["upn"], d["country"] = d["userPrincipalName"], d["usageLocation"]
	delete(d, "userPrincipalName")
	delete(d, "usageLocation")
	w["data"], _ = json.Marshal(d)
	w["schema"] = json.RawMessage("0")
	b, _ := json.Marshal(w)
	return b
}

var userAddedV0 = domain.Upcaster{Type: domain.TypeUserAdded, From: 0, Upgrade: func(data json.RawMessage) (json.RawMessage, error) {
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	d["userPrincipalName"], d["usageLocation"] = d["upn"], d["country"]
	delete(d, "upn")
	delete(d, "country")
	return json.Marshal(d)
}}

// TestUpcastingKeepsStateAtEveryPoint writes a workload's log a second time
// with every UserAdded in the legacy schema 0. Read with the upcaster, the
// state at every version is the same as the original log's; without it,
// the users lose their usage location (so the check can fail).
func TestUpcastingKeepsStateAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	w := randomWorkload(t, 21, 150)
	legacy, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()
	recs, err := w.store.ReadStream(ctx, tenantstream.Name("t"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := 0
	for _, r := range recs {
		data := r.Data
		if r.Type == domain.TypeUserAdded {
			data = legacyUserAdded(t, data)
			rewritten++
		}
		if _, err := legacy.Append(ctx, r.Stream, eventstore.Exactly(r.Version-1), []eventstore.EventData{{ID: r.ID, Type: r.Type, Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	if rewritten == 0 {
		t.Fatal("the workload added no user")
	}
	ups := domain.Upcasters{userAddedV0}
	upcast := &Service{Store: legacy, Upcasters: ups, Catalog: domain.DefaultCatalog()}
	plain := &Service{Store: legacy, Catalog: domain.DefaultCatalog()}
	differs := 0
	for v := uint64(1); v <= uint64(len(recs)); v++ {
		want, _ := w.svc.StateAt(ctx, "t", v)
		got, err := upcast.StateAt(ctx, "t", v)
		if err != nil {
			t.Fatal(err)
		}
		if asJSON(t, Render(w.svc.Catalog, got)) != asJSON(t, Render(w.svc.Catalog, want)) {
			t.Fatalf("version %d: the upcast legacy log folds to another state", v)
		}
		noUp, _ := plain.StateAt(ctx, "t", v)
		if asJSON(t, Render(w.svc.Catalog, noUp)) != asJSON(t, Render(w.svc.Catalog, want)) {
			differs++
		}
	}
	if differs == 0 {
		t.Fatal("without the upcaster the legacy log folds to the same states: the check proves nothing")
	}
	// The audit log and diffs read through the same chain.
	page, err := upcast.Audit(ctx, "t", Filter{Type: domain.TypeUserAdded}, "", false, 500)
	if err != nil || len(page.Records) != rewritten {
		t.Fatalf("audit of upcast events: %v %d/%d", err, len(page.Records), rewritten)
	}
}
