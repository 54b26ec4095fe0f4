package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestServeConsole: serve answers / with the console, and offers the
// one-click dev sign-in only while both secrets are the generated ones and
// the server listens on a loopback address (elsewhere anyone who reaches
// it would be the operator in one click).
func TestServeConsole(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string // "": generated
		addr   string // "": testServeConfig's (loopback)
		picker bool
	}{
		{"generated secrets", "", "", true},
		{"generated secrets on localhost", "", "localhost:0", true},
		{"configured secrets", "configured-jwt-secret-0123456789", "", false},
		{"generated secrets on every interface", "", "0.0.0.0:0", false},
		{"generated secrets on every interface, no host", "", ":0", false},
		{"generated secrets on an external address", "", "192.0.2.10:8080", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testServeConfig(t.TempDir())
			if tc.addr != "" {
				cfg.Addr = tc.addr
			}
			if tc.secret != "" {
				cfg.JWTSecret, cfg.OperatorToken = tc.secret, "configured-operator-token-0123456789abcdef"
			}
			a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = a.close() })

			w := httptest.NewRecorder()
			a.handler.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/signin" {
				t.Fatalf("GET /: %d to %q", w.Code, w.Header().Get("Location"))
			}
			w = httptest.NewRecorder()
			a.handler.ServeHTTP(w, httptest.NewRequest("GET", "/console/signin", nil))
			body := w.Body.String()
			if w.Code != http.StatusOK || strings.Contains(body, "/console/signin/dev") != tc.picker {
				t.Fatalf("sign-in page: %d, picker %v, want %v", w.Code, strings.Contains(body, "/console/signin/dev"), tc.picker)
			}
			if !tc.picker {
				// Nor does the dev sign-in answer a direct POST.
				csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
				r := httptest.NewRequest("POST", "/console/signin/dev", strings.NewReader("operator=1&csrf="+csrf[1]))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				w = httptest.NewRecorder()
				a.handler.ServeHTTP(w, r)
				if w.Code != http.StatusNotFound || len(w.Result().Cookies()) != 0 {
					t.Fatalf("dev sign-in without the picker: %d, cookies %v", w.Code, w.Result().Cookies())
				}
				return
			}
			csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
			r := httptest.NewRequest("POST", "/console/signin/dev", strings.NewReader("operator=1&csrf="+csrf[1]))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w = httptest.NewRecorder()
			a.handler.ServeHTTP(w, r)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/tenants" {
				t.Fatalf("sign in as the operator: %d to %q: %s", w.Code, w.Header().Get("Location"), w.Body)
			}
		})
	}
}

// TestConsoleFormsAcrossNodes: nodes configured with the same secrets
// accept each other's console forms. docker/ runs two nodes behind one
// round-robin proxy: a form drawn by one node is often posted to the
// other, which must not refuse its CSRF token.
func TestConsoleFormsAcrossNodes(t *testing.T) {
	const op = "configured-operator-token-0123456789abcdef"
	var nodes [2]*app
	for i := range nodes {
		cfg := testServeConfig(t.TempDir())
		cfg.JWTSecret, cfg.OperatorToken = "configured-jwt-secret-0123456789", op
		a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.close() })
		nodes[i] = a
	}
	session := &http.Cookie{Name: "seatledger_session", Value: op}
	r := httptest.NewRequest("GET", "/console/signin", nil)
	r.AddCookie(session)
	w := httptest.NewRecorder()
	nodes[0].handler.ServeHTTP(w, r)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(w.Body.String())
	if csrf == nil {
		t.Fatalf("no csrf field on node 1's sign-in page: %d %s", w.Code, w.Body)
	}
	r = httptest.NewRequest("POST", "/console/signout", strings.NewReader("csrf="+csrf[1]))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(session)
	w = httptest.NewRecorder()
	nodes[1].handler.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("node 2 answered node 1's form with %d: %s", w.Code, w.Body)
	}
}
