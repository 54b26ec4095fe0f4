// Package textlog is slog's TextHandler with a fast path for the lines a
// server writes most (a request's line of plain strings and numbers): the
// same bytes, without slog's record, handler state and per-attribute
// dispatch. Everything else goes through the TextHandler unchanged.
package textlog

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Handler is a slog.TextHandler (its Enabled, Handle, WithAttrs and
// WithGroup are the TextHandler's) that can also write a line directly
// with WriteAttrs.
type Handler struct {
	*slog.TextHandler
	w    *lockedWriter
	fast bool   // no ReplaceAttr, no AddSource, no group, plain With attributes: WriteAttrs may write
	pre  []byte // the With attributes, as the TextHandler writes them (each after a space)
}

// WithAttrs is the TextHandler's; the handler it returns still writes
// directly when the attributes are plain.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	next := h.TextHandler.WithAttrs(attrs)
	th, ok := next.(*slog.TextHandler)
	if !ok {
		return next
	}
	n := &Handler{TextHandler: th, w: h.w, fast: h.fast}
	if n.fast {
		pre, ok := appendAttrs(append([]byte(nil), h.pre...), attrs)
		n.pre, n.fast = pre, ok
	}
	return n
}

// WithGroup is the TextHandler's; the handler it returns leaves every line
// to slog.
func (h *Handler) WithGroup(name string) slog.Handler {
	next := h.TextHandler.WithGroup(name)
	th, ok := next.(*slog.TextHandler)
	if !ok || name == "" {
		return next
	}
	return &Handler{TextHandler: th, w: h.w}
}

// lockedWriter serializes the TextHandler's writes and WriteAttrs's: one
// Write per line, never interleaved.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// New returns a text handler writing to w with opts, as
// slog.NewTextHandler(w, opts).
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	lw := &lockedWriter{w: w}
	h := &Handler{TextHandler: slog.NewTextHandler(lw, opts), w: lw, fast: true}
	if opts != nil && (opts.ReplaceAttr != nil || opts.AddSource) {
		h.fast = false
	}
	return h
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// WriteAttrs writes the line the TextHandler would write for a record of
// t, level, msg and attrs (the caller has checked the level is enabled),
// and reports true. When it cannot vouch for the same bytes (an attribute
// of another kind than string, int or float, a string needing quotes
// other than the message, a ReplaceAttr or AddSource option) it writes
// nothing and reports false: log through slog then.
func (h *Handler) WriteAttrs(t time.Time, level slog.Level, msg string, attrs []slog.Attr) bool {
	if !h.fast {
		return false
	}
	bp := bufs.Get().(*[]byte)
	b, ok := appendLine((*bp)[:0], t, level, msg, h.pre, attrs)
	if ok {
		_, _ = h.w.Write(b)
	}
	if cap(b) <= 4<<10 {
		*bp = b
		bufs.Put(bp)
	}
	return ok
}

// appendLine appends the TextHandler's line, or reports false.
func appendLine(b []byte, t time.Time, level slog.Level, msg string, pre []byte, attrs []slog.Attr) ([]byte, bool) {
	if !t.IsZero() {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, t.Round(0))
		b = append(b, ' ')
	}
	lv := level.String()
	if !plain(lv) {
		return b, false
	}
	b = append(b, "level="...)
	b = append(b, lv...)
	b = append(b, " msg="...)
	if plain(msg) {
		b = append(b, msg...)
	} else if quotable(msg) {
		b = strconv.AppendQuote(b, msg)
	} else {
		return b, false
	}
	b = append(b, pre...)
	b, ok := appendAttrs(b, attrs)
	if !ok {
		return b, false
	}
	return append(b, '\n'), true
}

// appendAttrs appends each attribute after a space as key=value, or
// reports false for one the TextHandler might write otherwise.
func appendAttrs(b []byte, attrs []slog.Attr) ([]byte, bool) {
	for _, a := range attrs {
		if a.Key == "" || !plain(a.Key) {
			return b, false
		}
		b = append(b, ' ')
		b = append(b, a.Key...)
		b = append(b, '=')
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			s := v.String()
			if !plain(s) {
				return b, false
			}
			b = append(b, s...)
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindFloat64:
			b = strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
		default:
			return b, false
		}
	}
	return b, true
}

// plain reports whether the TextHandler writes s as it is: not empty, and
// only printable ASCII other than space, '"' and '=' (its needsQuoting;
// non-ASCII is left to it).
func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '=' {
			return false
		}
	}
	return true
}

// quotable reports whether s is printable ASCII, which the TextHandler
// quotes with strconv.Quote when it is not plain.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// appendRFC3339Millis is log/slog's: RFC 3339 with exactly three digits of
// milliseconds, truncated.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
	return b
}
