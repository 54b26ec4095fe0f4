package projections

import (
	"testing"
)

func TestProjectionMatchesTheFold(t *testing.T) {
	rdb, prefix := testRedis(t)
	store := openStore(t)
	h := newHandler(store)
	defer h.Close()
	runScenario(t, h, "contoso", 1)
	runScenario(t, h, "fabrikam", 2)
	rp := startProjection(t, Config{Store: store, Snapshots: store, Redis: rdb, Prefix: prefix})
	rp.waitFor(t, lastPosition(t, store))
	rep := verifyClean(t, store, rdb, prefix)
	if rep.Tenants != 2 || rep.Keys < 10 {
		t.Fatalf("report %+v", rep)
	}
	if st := rp.p.Status(); st.Status == StatusStopped || st.EventsApplied == 0 {
		t.Fatalf("status %+v", st)
	}
}
