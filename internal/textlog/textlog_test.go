package textlog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogLine is what slog's TextHandler writes for the record.
func slogLine(t *testing.T, tm time.Time, level slog.Level, msg string, with, attrs []slog.Attr) string {
	t.Helper()
	var buf bytes.Buffer
	r := slog.NewRecord(tm, level, msg, 0)
	r.AddAttrs(attrs...)
	var h slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	if with != nil {
		h = h.WithAttrs(with)
	}
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func randString(r *rand.Rand) string {
	const chars = `abcXYZ019-_./:@~+%&?!*()[]{}<>' "=\` + "\t\n\x00\x7fé€\u2028"
	runes := []rune(chars)
	n := r.IntN(12)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if r.IntN(4) == 0 {
			sb.WriteRune(runes[r.IntN(len(runes))])
		} else {
			sb.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789-_./"[r.IntN(40)])
		}
	}
	return sb.String()
}

var zones = []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("X", -7*3600), time.Local}

// Whenever WriteAttrs writes, it writes slog's bytes; it writes the
// request line of a usual request.
func TestWriteAttrsMatchesTextHandler(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 22))
	floats := []float64{0, 1, -1, 0.001, 1.234, 1e21, 1e-7, 123456789.125, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64}
	wrote := 0
	for i := 0; i < 50_000; i++ {
		tm := time.Unix(r.Int64N(4e9)-1e9, r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
		if r.IntN(50) == 0 {
			tm = time.Time{}
		}
		level := []slog.Level{slog.LevelInfo, slog.LevelError, slog.LevelWarn, slog.LevelDebug, slog.LevelInfo + 2}[r.IntN(5)]
		msg := "http request"
		if r.IntN(4) == 0 {
			msg = randString(r)
		}
		var attrs []slog.Attr
		for n := r.IntN(10); n > 0; n-- {
			key := []string{"request_id", "method", "route", "status", "a b", "k=v", "", "ключ"}[r.IntN(8)]
			if r.IntN(3) != 0 {
				key = "request_id"
			}
			switch r.IntN(6) {
			case 0, 1, 2:
				attrs = append(attrs, slog.String(key, randString(r)))
			case 3:
				attrs = append(attrs, slog.Int(key, r.IntN(1000)-500))
			case 4:
				f := floats[r.IntN(len(floats))]
				if r.IntN(2) == 0 {
					f = float64(r.Int64N(1e7)) / 1000
				}
				attrs = append(attrs, slog.Float64(key, f))
			case 5:
				attrs = append(attrs, slog.Bool(key, true), slog.Duration(key, time.Second))
			}
		}
		var with []slog.Attr
		if r.IntN(3) == 0 {
			with = append(with, slog.String("component", "http"))
			if r.IntN(3) == 0 {
				with = append(with, slog.String(randString(r), randString(r)), slog.Int("n", r.IntN(9)))
			}
		}
		var buf bytes.Buffer
		h := New(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
		if with != nil {
			h = h.WithAttrs(with).(*Handler)
		}
		if h.WriteAttrs(tm, level, msg, attrs) {
			wrote++
			if want := slogLine(t, tm, level, msg, with, attrs); buf.String() != want {
				t.Fatalf("wrote\n%q\nslog writes\n%q", buf.String(), want)
			}
		} else if buf.Len() != 0 {
			t.Fatalf("reported false but wrote %q", buf.String())
		}
	}
	if wrote < 5_000 {
		t.Fatalf("only %d of 50,000 lines written directly", wrote)
	}

	// A usual request line (api's requestLine) is written directly.
	attrs := []slog.Attr{slog.String("request_id", "3f0c8a52-5d8e-4a55-9a55-0c1a1b2c3d4e"), slog.String("method", "POST"),
		slog.String("route", "/v1/tenants/:t/licenses/:sku/assign"), slog.String("path", "/v1/tenants/bench-1/licenses/SPB/assign"),
		slog.Int("status", 200), slog.Float64("latency_ms", 1.234), slog.String("tenant", "bench-1"), slog.String("actor", "admin")}
	var buf bytes.Buffer
	tm := time.Now()
	with := []slog.Attr{slog.String("component", "http")} // serve's api logger
	if !New(&buf, nil).WithAttrs(with).(*Handler).WriteAttrs(tm, slog.LevelInfo, "http request", attrs) {
		t.Fatal("a request line was not written directly")
	}
	if want := slogLine(t, tm, slog.LevelInfo, "http request", with, attrs); buf.String() != want {
		t.Fatalf("wrote %q, slog writes %q", buf.String(), want)
	}
}

// After WithGroup every line goes through slog (its keys are qualified).
func TestWithGroupLeavesLinesToSlog(t *testing.T) {
	var buf bytes.Buffer
	h := New(&buf, nil).WithGroup("g")
	if d, ok := h.(*Handler); ok && d.WriteAttrs(time.Now(), slog.LevelInfo, "m", []slog.Attr{slog.String("k", "v")}) {
		t.Fatalf("wrote %q directly", buf.String())
	}
	if d, ok := h.WithAttrs([]slog.Attr{slog.String("a", "b")}).(*Handler); ok && d.WriteAttrs(time.Now(), slog.LevelInfo, "m", nil) {
		t.Fatalf("wrote %q directly", buf.String())
	}
}

// With ReplaceAttr or AddSource the handler leaves every line to slog.
func TestWriteAttrsDeclinesOptions(t *testing.T) {
	for _, o := range []*slog.HandlerOptions{{AddSource: true}, {ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}} {
		var buf bytes.Buffer
		if New(&buf, o).WriteAttrs(time.Now(), slog.LevelInfo, "m", []slog.Attr{slog.String("k", "v")}) || buf.Len() != 0 {
			t.Errorf("options %+v: wrote %q", o, buf.String())
		}
	}
}

// Lines written directly and through slog (the handler itself and one
// made by With) never interleave.
func TestLinesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	h := New(&buf, nil)
	l := slog.New(h).With("component", "x")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if g%2 == 0 {
					h.WriteAttrs(time.Now(), slog.LevelInfo, "direct", []slog.Attr{slog.Int("i", i)})
				} else {
					l.Info("through slog", "i", i)
				}
			}
		}()
	}
	wg.Wait()
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if !strings.HasPrefix(line, "time=") || strings.Count(line, "time=") != 1 {
			t.Fatalf("mangled line %q", line)
		}
	}
}

var _ io.Writer = (*lockedWriter)(nil)
