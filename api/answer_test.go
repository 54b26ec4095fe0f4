package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
)

// TestCommandAnswerJSONIsWhatTheEncoderGave: the hand-written answer is the
// bytes a json.Encoder without HTML escaping gives for the same answer.
func TestCommandAnswerJSONIsWhatTheEncoderGave(t *testing.T) {
	at := time.Date(2026, 11, 23, 14, 3, 0, 0, time.UTC)
	var events []json.RawMessage
	for i, p := range []domain.Payload{
		domain.UserAdded{UserID: "u<1>", UserPrincipalName: "a&b@contoso.example", DisplayName: "Zoë \"Z\" <Z>"},
		domain.LicenseAssigned{UserID: "u1", SkuID: "SPB"},
	} {
		raw, err := eventcodec.Encode(domain.Event{Envelope: domain.Envelope{EventID: domain.EventID("t", "c", uint64(i+1)), Type: p.EventType(),
			TenantID: "t", Version: uint64(i + 1), OccurredAt: at, CommandID: "c", Schema: 1}, Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, raw)
	}
	for _, a := range []CommandAnswer{
		{Version: 7, Events: events},
		{Version: 1 << 63, Events: events[:1], ID: "bob<&>", RedirectURL: "https://isv.example/install?a=1&b=<2>"},
		{Version: 0, Events: []json.RawMessage{}},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a); err != nil {
			t.Fatal(err)
		}
		got, err := a.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want.String() {
			t.Errorf("answer\n got %s\nwant %s", got, want.String())
		}
	}
}
