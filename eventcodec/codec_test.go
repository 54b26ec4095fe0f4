package eventcodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
)

func sample() []domain.Event {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	env := func(v uint64, p domain.Payload) domain.Event {
		return domain.Event{Envelope: domain.Envelope{EventID: domain.EventID("t", "c", v), Type: p.EventType(), TenantID: "t", Version: v,
			OccurredAt: at.Add(time.Duration(v) * time.Minute), Actor: domain.Actor{UserID: "admin", Roles: []domain.Role{domain.RoleGlobalAdmin}},
			CommandID: fmt.Sprint("c", v), RequestHash: "h", Schema: 1}, Payload: p}
	}
	return []domain.Event{
		env(1, domain.TenantCreated{TenantID: "t", Name: "Tée ☃ \"quoted\" <b>"}),
		env(2, domain.UserAdded{UserID: "a", UserPrincipalName: "a@t.com", DisplayName: "Ä", UserType: "Member", UsageLocation: "FR"}),
		env(3, domain.LicenseAssigned{UserID: "a", SkuID: "s", Source: "group:g", DisabledPlans: []string{"p1", "p2"}}),
		env(4, domain.DataHeld{UserID: "a", Workload: "Exchange", HeldSince: at, PurgeAfter: at.Add(720 * time.Hour), Reason: "licenseRemoved"}),
		env(5, domain.ProductRegistered{Product: domain.Product{SkuID: "x", SkuPartNumber: "X", DisplayName: "X", Publisher: "P",
			ServicePlans: []domain.ServicePlan{{ID: "p", Name: "P", Workload: "Other"}}}}),
		env(6, domain.AdminRolesChanged{UserID: "a", Roles: []domain.Role{}}),
		env(7, domain.UnknownPayload{TypeName: "FromTheFuture", Raw: json.RawMessage(`{"a":[1,2,{"b":null}]}`)}),
	}
}

func TestDecodeMatchesTheStandardDecoder(t *testing.T) {
	for _, e := range sample() {
		b, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := domain.DecodeEvent(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %#v\nwant %#v", e.Type, got, want)
		}
	}
	// Unknown fields are ignored, as by encoding/json.
	if _, err := Decode([]byte(`{"type":"UserDeleted","version":1,"extra":{"x":1},"data":{"userId":"a","more":true}}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode([]byte(`{"type":`), nil); err == nil {
		t.Fatal("truncated input is an error")
	}
}

// TestDecodeKeepsNothingOfItsInput: a decoded event holds no bytes of the
// input (strings and raw payloads are copies), so the caller may reuse the
// buffer at once; the projection's subscriber relies on it
// (projections.SubscriberConfig.ReusePayloads).
func TestDecodeKeepsNothingOfItsInput(t *testing.T) {
	for _, e := range sample() {
		b, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Decode(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := append([]byte(nil), b...)
		got, err := Decode(buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = 'X'
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s changed when its input was overwritten:\n got %#v\nwant %#v", e.Type, got, want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	raw, _ := domain.EncodeEvent(sample()[2])
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(raw, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMarshalMatchesEncodingJSON: the read models and API answers encoded
// with Marshal / MarshalNoEscapeHTML are the bytes encoding/json would give,
// so a store written by either compares equal.
func TestMarshalMatchesEncodingJSON(t *testing.T) {
	type inner struct {
		When  time.Time       `json:"when"`
		Raw   json.RawMessage `json:"raw,omitempty"`
		Ptr   *time.Time      `json:"ptr,omitempty"`
		Score float64         `json:"score"`
	}
	type view struct {
		ID      string            `json:"id"`
		Name    string            `json:"displayName,omitempty"`
		Tags    []string          `json:"tags"`
		Nil     []string          `json:"nil"`
		Counts  map[string]int    `json:"counts"`
		Nested  []inner           `json:"nested"`
		Any     any               `json:"any"`
		Labels  map[string]string `json:"labels,omitempty"`
		Enabled bool              `json:"enabled"`
		N       int64             `json:"n"`
	}
	at := time.Date(2026, 11, 23, 14, 3, 0, 123456789, time.FixedZone("x", 3600))
	values := []any{
		view{ID: "u1", Name: "<Ann & Bob>", Tags: []string{"a\u2028b", "é", "\x00\x1f", "\xff\xfe bad utf-8"}, Counts: map[string]int{"z": 1, "a": 2, "M": 3},
			Nested: []inner{{When: at, Raw: json.RawMessage(`{ "b" : [1, 2] ,"a":"<x>" }`), Ptr: &at, Score: 0.1}, {Score: 1e21}, {Score: -0}},
			Any:    map[string]any{"k": []any{1.5, "s", nil, true}}, Labels: map[string]string{"&": "<"}, N: -1 << 62},
		map[string]any{"b": 1, "a": map[string]int{"y": 2, "x": 1}},
		[]view{{}, {ID: "\u00e9\U0001F600"}},
		"plain <string>",
	}
	for i, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("value %d: Marshal\n got %s\nwant %s", i, got, want)
		}
		// Appended after other bytes, with a scratch buffer already used.
		scratch := []byte("left over from the last value <&>")
		got, err = AppendMarshal([]byte("<before>"), &scratch, v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "<before>"+string(want) {
			t.Errorf("value %d: AppendMarshal\n got %s\nwant <before>%s", i, got, want)
		}
		// After a long buffer (many views of one flush), full to capacity.
		long := bytes.Repeat([]byte("x"), 10_000)
		got, err = AppendMarshal(long[:len(long):len(long)], &scratch, v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(long)+string(want) {
			t.Errorf("value %d: AppendMarshal after 10,000 bytes\n got …%s\nwant …%s", i, got[len(long):], want)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		got, err = MarshalNoEscapeHTML(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got)+"\n" != buf.String() {
			t.Errorf("value %d: MarshalNoEscapeHTML\n got %s\nwant %s", i, got, buf.String())
		}
	}
}
