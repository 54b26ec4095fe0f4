package domain

import (
	"testing"
	"time"
)

// BenchmarkDecodeEvolve measures the fold: decoding an envelope and applying
// it, the work of every load, replay and time-travel query.
func BenchmarkDecodeEvolve(b *testing.B) {
	e := Event{Envelope: Envelope{EventID: EventID("t", "c", 0), Type: TypeLicenseAssigned, TenantID: "contoso", Version: 7,
		OccurredAt: time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC), Actor: Actor{UserID: "admin", Roles: []Role{RoleGlobalAdmin}},
		CommandID: "idem-0123456789abcdef0123456789abcdef", RequestHash: "5f1d8d0f5f4f3e2d1c0b5f1d8d0f5f4f3e2d1c0b5f1d8d0f5f4f3e2d1c0b1234", Schema: 1},
		Payload: LicenseAssigned{UserID: "alice", SkuID: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", Source: SourceDirect}}
	raw, err := EncodeEvent(e)
	if err != nil {
		b.Fatal(err)
	}
	st := NewTenant()
	st.Users["alice"] = &User{ID: "alice", Licenses: map[string]*UserLicense{}}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ev, err := DecodeEvent(raw, nil)
		if err != nil {
			b.Fatal(err)
		}
		ev.Version = uint64(i + 1)
		Evolve(st, ev)
	}
}
