package render

import (
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/cputime"
)

// discardSink drops every write (a benchmark of rendering alone).
type discardSink struct{}

func (discardSink) HSet(string, string, []byte)  {}
func (discardSink) HDel(string, string)          {}
func (discardSink) ZAdd(string, float64, string) {}
func (discardSink) ZRem(string, string)          {}

// benchTenant is a tenant with the users the benchmarks render: "bench"
// (as `seatledger bench` leaves them: one product, directly), "rich" (two
// products, one also from a group that failed to give it, a plan
// disabled, two groups, a hold) and "gone" (deleted).
func benchTenant() *domain.Tenant {
	t := domain.NewTenant()
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	spb, e3 := "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "05e9a617-0261-4cee-bb44-138d3ef5d965"
	t.Users["bench"] = &domain.User{ID: "bench", UserPrincipalName: "u1@live0001.example", DisplayName: "u1", UserType: "Member",
		UsageLocation: "US", Licenses: map[string]*domain.UserLicense{spb: {SkuID: spb, Sources: map[string]*domain.LicenseSource{
			domain.SourceDirect: {}}}}}
	t.Users["rich"] = &domain.User{ID: "rich", UserPrincipalName: "élodie@contoso.example", DisplayName: "Élodie <Durand>", UserType: "Member",
		UsageLocation: "FR", Roles: []domain.Role{domain.RoleGlobalAdmin},
		Licenses: map[string]*domain.UserLicense{
			spb: {SkuID: spb, Sources: map[string]*domain.LicenseSource{domain.SourceDirect: {DisabledPlans: []string{"57ff2da0-773e-42df-b2af-ffb7a2317929"}},
				domain.GroupSource("g2"): {Error: "CountViolation", ErrorDetail: "no license left"}}},
			e3: {SkuID: e3, Sources: map[string]*domain.LicenseSource{domain.GroupSource("g1"): {}}},
		},
		Groups: map[string]bool{"g1": true, "g2": true},
		Holds:  map[string]*domain.Hold{"Exchange": {Workload: "Exchange", HeldSince: at, PurgeAfter: at.Add(720 * time.Hour), Reason: "licenseRemoved"}}}
	t.Users["gone"] = &domain.User{ID: "gone", UserPrincipalName: "gone@contoso.example", DisplayName: "Gone", UserType: "Guest",
		Deleted: true, DeletedAt: at, Licenses: map[string]*domain.UserLicense{}}
	return t
}

// reportCPU reports the process's CPU time per op (the GC's included), less
// sensitive than ns/op to other work on the machine.
func reportCPU(b *testing.B, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkUserView renders one user's view (the view and its JSON), as
// the projection does for every user an event touches.
func BenchmarkUserView(b *testing.B) {
	cat := domain.DefaultCatalog()
	t := benchTenant()
	for _, id := range []string{"bench", "rich", "gone"} {
		b.Run(id, func(b *testing.B) {
			var arena JSONArena
			r := NewRenderer(cat, t, discardSink{}, &arena)
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				r.user(id, false)
				arena.Reset()
			}
			reportCPU(b, cputime.Process()-cpu0)
		})
	}
}
