package render

import (
	"testing"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/cputime"
)

// BenchmarkTouchedRender stages and renders one bench command into a
// ScriptSink, as the projection does for each tenant of a live flush: a
// license assigned to a user who held none (Touched.Event on the state
// before, Touched.Render of the state after: the user's row and index
// moves, the product's row and users) and the sink's Finish.
func BenchmarkTouchedRender(b *testing.B) {
	cat := domain.DefaultCatalog()
	before, after := benchTenant(), benchTenant()
	const spb = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
	before.Users["bench"].Licenses = map[string]*domain.UserLicense{}
	e := domain.Event{Envelope: domain.Envelope{TenantID: "t", Version: 2, Type: domain.TypeLicenseAssigned},
		Payload: domain.LicenseAssigned{UserID: "bench", SkuID: spb, Source: domain.SourceDirect}}
	tc := NewTouched()
	keyOf := func(s string) string { return "sl:tenant:{bench-1}:" + s }
	ss := NewScriptSink(keyOf)
	var arena JSONArena
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		tc.Reset()
		tc.Event(before, e)
		ss.Reset(keyOf)
		tc.Render(NewRenderer(cat, after, ss, &arena))
		arena.Reset()
	}
	reportCPU(b, cputime.Process()-cpu0)
}
