package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestServeOnAnUnreachableKurrentDB: a node whose KurrentDB does not answer
// says it is not ready (/readyz 503) but still live (/healthz 200: the
// store's client can recover when the server returns), and exports the
// store's supervisor counters, failed snapshots among them.
func TestServeOnAnUnreachableKurrentDB(t *testing.T) {
	cfg := testServeConfig(t.TempDir())
	cfg.EventStore = "kurrentdb://127.0.0.1:1?tls=false" // nothing listens on port 1
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.close() })
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "event store") {
		t.Fatalf("/readyz with the store unreachable: %d %s", code, body)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while the store can still recover: %d %s", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "seatledger_snapshot_failures_total") || !strings.Contains(body, "seatledger_eventstore_down_seconds") {
		t.Fatal("/metrics lacks the KurrentDB store's counters")
	}
}
