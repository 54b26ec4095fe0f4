package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHardening06_CLITablesEscapeWhatIsStored: names stored before the
// domain refused control characters (or sent by a hostile server) must not
// drive the terminal from `seatledger audit` or `seatledger diff`.
func TestHardening06_CLITablesEscapeWhatIsStored(t *testing.T) {
	evil := `\u001b[2J\u001b[31mPWNED\u202egnp\u0007\tcol\nrow\u0085\u007f`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/audit"):
			w.Write([]byte(`[{"version":1,"occurredAt":"2026-03-02T09:00:00Z","type":"GroupCreated","actor":{"userId":"admin"},"summary":"admin created group ` + evil + `"}]`))
		case strings.HasSuffix(r.URL.Path, "/state/diff"):
			w.Write([]byte(`{"from":0,"to":1,"changes":[{"entity":"group:` + evil + `","kind":"added","events":[1]}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for name, run := range map[string]func() (int, string){
		"audit": func() (int, string) {
			var out, errb bytes.Buffer
			code := runAudit(context.Background(), []string{"--tenant", "contoso", "--server", srv.URL, "--token", "t"}, &out, &errb)
			return code, out.String() + errb.String()
		},
		"diff": func() (int, string) {
			var out, errb bytes.Buffer
			code := runDiff(context.Background(), []string{"--tenant", "contoso", "--from", "0", "--to", "1", "--server", srv.URL, "--token", "t"}, &out, &errb)
			return code, out.String() + errb.String()
		},
	} {
		code, out := run()
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, out)
		}
		for _, r := range out {
			if r != '\n' && (r < 0x20 || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e) {
				t.Fatalf("%s printed the control character %U: %q", name, r, out)
			}
		}
		if strings.Count(out, "\n") != 2 && name == "audit" {
			t.Fatalf("%s: a stored newline split a row: %q", name, out)
		}
		if !strings.Contains(out, `\x1b[2J`) || !strings.Contains(out, `\u202e`) {
			t.Fatalf("%s does not show the escaped characters: %q", name, out)
		}
	}
}
