package projections

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

func TestWatermillLoggerDropsOnlyWhatTheLevelDrops(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wl := NewWatermillLogger(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}).With(watermill.LogFields{"router": "r1"})
	wl.Trace("per-message trace", watermill.LogFields{"uuid": "m1"})
	wl.Debug("debug line", watermill.LogFields{"k": "v"})
	wl.Info("router started", nil) // mapped to debug: kept at debug level
	wl.Error("handler failed", nil, watermill.LogFields{"uuid": "m2"})
	out := buf.String()
	for _, want := range []string{"debug line", "k=v", "router started", "handler failed", "uuid=m2", "router=r1"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "per-message trace") {
		t.Errorf("a trace line passed a debug-level logger:\n%s", out)
	}

	buf.Reset()
	l = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: watermill.LevelTrace}))
	NewWatermillLogger(l, nil).Trace("per-message trace", watermill.LogFields{"uuid": "m1"})
	if !strings.Contains(buf.String(), "per-message trace") || !strings.Contains(buf.String(), "uuid=m1") {
		t.Errorf("a trace-level logger lost the trace line: %q", buf.String())
	}
}
