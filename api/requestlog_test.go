package api

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/seatledger/seatledger/internal/textlog"
)

// logOld is the request's log line as observe wrote it before requestLine:
// Logger.Log with key-value pairs. The oracle of TestRequestLineSame.
func (l *requestLine) logOld(ctx context.Context, logger *slog.Logger) {
	attrs := []any{
		"request_id", l.id,
		"method", l.method,
		"route", l.route,
		"path", l.path,
		"status", l.status,
		"latency_ms", float64(l.latency.Microseconds()) / 1000,
	}
	if l.tenant != "" {
		attrs = append(attrs, "tenant", l.tenant)
	}
	if l.actor != "" {
		attrs = append(attrs, "actor", l.actor)
	}
	level := slog.LevelInfo
	if l.status >= 500 {
		level = slog.LevelError
	}
	logger.Log(ctx, level, "http request", attrs...)
}

func requestLines() []requestLine {
	return []requestLine{
		{id: "r-1", method: "POST", route: "/v1/tenants/:t/licenses/:sku/assign", path: "/v1/tenants/t1/licenses/SPB/assign",
			status: 200, latency: 1234567 * time.Nanosecond, tenant: "t1", actor: "admin@t1"},
		{id: "r-2", method: "GET", route: "unmatched", path: "/nowhere \"quoted\"", status: 404, latency: time.Millisecond},
		{id: "r-3", method: "HEAD", route: "/v1/tenants/:t", path: "/v1/tenants/t2", status: 503, latency: 0, actor: "operator"},
		{id: "r-4", method: "DELETE", route: "/v1/tenants/:t/users/:u", path: "/v1/tenants/t3/users/ü", status: 500, tenant: "t3"},
	}
}

// TestRequestLineSame: the log line is byte for byte what it was, in text
// and in JSON, at every level the logger may be set to.
func TestRequestLineSame(t *testing.T) {
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 1} {
		opts := &slog.HandlerOptions{Level: level, ReplaceAttr: noTime}
		for _, json := range []bool{false, true} {
			var got, want bytes.Buffer
			newLogger := func(w *bytes.Buffer) *slog.Logger {
				if json {
					return slog.New(slog.NewJSONHandler(w, opts))
				}
				return slog.New(slog.NewTextHandler(w, opts))
			}
			for _, l := range requestLines() {
				l.log(context.Background(), newLogger(&got))
				l.logOld(context.Background(), newLogger(&want))
			}
			if got.String() != want.String() {
				t.Errorf("level %v, json %v:\n got %s\nwant %s", level, json, got.String(), want.String())
			}
		}
	}
}

// TestRequestLineSameThroughTextlog: serve's text handler (textlog, which
// writes a plain request line itself) gives slog's TextHandler's line, the
// time aside, at every level.
func TestRequestLineSameThroughTextlog(t *testing.T) {
	stripTime := func(s string) string {
		var out []string
		for _, line := range strings.Split(s, "\n") {
			if strings.HasPrefix(line, "time=") {
				_, line, _ = strings.Cut(line, " ")
			}
			out = append(out, line)
		}
		return strings.Join(out, "\n")
	}
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 1} {
		opts := &slog.HandlerOptions{Level: level}
		var got, want bytes.Buffer
		lines := requestLines()
		lines = append(lines, requestLine{id: "3f0c8a52-5d8e-4a55-9a55-0c1a1b2c3d4e", method: "POST", route: "/v1/tenants/:t/licenses/:sku/unassign",
			path: "/v1/tenants/bench-7/licenses/SPB/unassign", status: 200, latency: 987 * time.Microsecond, tenant: "bench-7", actor: "admin"})
		for _, l := range lines {
			l.log(context.Background(), slog.New(textlog.New(&got, opts)))
			l.log(context.Background(), slog.New(slog.NewTextHandler(&want, opts)))
			// serve's: the http component's logger
			l.log(context.Background(), slog.New(textlog.New(&got, opts)).With("component", "http"))
			l.log(context.Background(), slog.New(slog.NewTextHandler(&want, opts)).With("component", "http"))
		}
		if g, w := stripTime(got.String()), stripTime(want.String()); g != w || !strings.HasPrefix(got.String(), "time=") && got.Len() > 0 {
			t.Errorf("level %v:\n got %s\nwant %s", level, got.String(), want.String())
		}
	}
}

// BenchmarkRequestLog measures a command's log line through a text
// handler (as serve's default) to a discarding writer: old (key-value
// pairs) against new (slog.Attrs).
func BenchmarkRequestLog(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(discardWriter{}, nil))
	l := requestLines()[0]
	for _, impl := range []struct {
		name string
		log  func(*requestLine, context.Context, *slog.Logger)
	}{{"old", (*requestLine).logOld}, {"new", (*requestLine).log}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				impl.log(&l, context.Background(), logger)
			}
		})
	}
	// serve's handler since: slog's TextHandler writing request lines itself.
	direct := slog.New(textlog.New(discardWriter{}, nil)).With("component", "http")
	b.Run("impl=textlog", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.log(context.Background(), direct)
		}
	})
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
