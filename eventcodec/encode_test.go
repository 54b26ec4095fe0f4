package eventcodec

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
)

// encodeSame fails t unless Encode writes e byte for byte as sonic writes
// domain's wire form (domain.EncodeEventWith with this package's config),
// as Encode did before it wrote the envelope itself.
func encodeSame(t *testing.T, e domain.Event) {
	t.Helper()
	want, wantErr := domain.EncodeEventWith(e, api.Marshal)
	got, err := Encode(e)
	if (err == nil) != (wantErr == nil) || string(got) != string(want) {
		t.Fatalf("%#v:\n got %s (%v)\nwant %s (%v)", e, got, err, want, wantErr)
	}
}

// envelopeVariants are sample's events with envelopes of every shape:
// strings that need escaping, actors of each kind, times in other zones
// and years, no correlation or request hash, data that is not compact.
func envelopeVariants() []domain.Event {
	var events []domain.Event
	zones := []*time.Location{time.UTC, time.FixedZone("plus", 5*3600+30*60), time.FixedZone("odd", -(3*3600 + 17)), time.FixedZone("far", 30*3600)}
	actors := []domain.Actor{{}, {Operator: true}, {System: "scheduler"}, {UserID: "u", Roles: []domain.Role{domain.RoleGlobalAdmin, "x\"y"}},
		{UserID: "u", Operator: true, System: "s"}, {Roles: []domain.Role{domain.RoleGlobalAdmin}}, {UserID: "é<&>"}}
	strs := []string{"", "plain-id_1", "quote\"d", "back\\slash", "ctl\x01", "<html>&", "é", "\u2028", "\xff"}
	for i, e := range sample() {
		for j, z := range zones {
			e := e
			e.OccurredAt = e.OccurredAt.In(z).AddDate(i*j*1500, 0, 0)
			e.Actor = actors[(i+j)%len(actors)]
			e.CorrelationID = strs[(i+2*j)%len(strs)]
			e.RequestHash = strs[(i+j+3)%len(strs)]
			e.TenantID = strs[(i*j+1)%len(strs)]
			events = append(events, e)
		}
	}
	e := sample()[0]
	e.Payload = domain.UnknownPayload{TypeName: "Spaced", Raw: json.RawMessage(`{ "a" : [1, 2] }`)}
	return append(events, e)
}

func TestEncodeMatchesSonicWireEvent(t *testing.T) {
	for _, e := range append(sample(), envelopeVariants()...) {
		encodeSame(t, e)
	}
	for _, e := range sample() { // a command's events take the fast path
		if _, ok := appendEnvelope(nil, &e.Envelope, []byte(`{}`)); !ok {
			t.Errorf("%s: the envelope was left to sonic", e.Type)
		}
	}
}

// FuzzEncode: any strings in the envelope, any time, encode as before.
func FuzzEncode(f *testing.F) {
	f.Add("e-1", "t", "c-1", "corr", "hash", "admin", "", int64(1772359200123456789), 0, false)
	f.Add("e\"1", "t<", "c\\1", "", "", "", "system", int64(-62135596800), 3601, true)
	f.Fuzz(func(t *testing.T, id, tenant, cmd, corr, hash, user, system string, nanos int64, offset int, operator bool) {
		e := sample()[2]
		e.EventID, e.TenantID, e.CommandID, e.CorrelationID, e.RequestHash = id, tenant, cmd, corr, hash
		e.Actor = domain.Actor{UserID: user, System: system, Operator: operator, Roles: []domain.Role{domain.Role(user)}}
		e.OccurredAt = time.Unix(0, nanos).In(time.FixedZone("z", offset%(48*3600)))
		encodeSame(t, e)
	})
}

// BenchmarkEncode measures encoding a command's event: the envelope by
// hand (new) against sonic's reflection over domain's wire form (old).
func BenchmarkEncode(b *testing.B) {
	e := sample()[2]
	e.CorrelationID = "9b2f8c8e-5d1c-4d3e-9a59-2f0c6f2a1b7e"
	for _, impl := range []struct {
		name   string
		encode func(domain.Event) ([]byte, error)
	}{{"old", func(e domain.Event) ([]byte, error) { return domain.EncodeEventWith(e, api.Marshal) }}, {"new", Encode}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := impl.encode(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEncodeLargeEvents: an event larger than the pooled buffers keep
// encodes the same, and so do the small ones after it.
func TestEncodeLargeEvents(t *testing.T) {
	big := sample()[4]
	p := big.Payload.(domain.ProductRegistered)
	for i := range 3000 {
		p.Product.ServicePlans = append(p.Product.ServicePlans, domain.ServicePlan{ID: fmt.Sprint("plan-", i), Name: fmt.Sprint("PLAN_", i), Workload: "Other"})
	}
	big.Payload = p
	for range 3 {
		encodeSame(t, big)
		for _, e := range sample() {
			encodeSame(t, e)
		}
	}
}
