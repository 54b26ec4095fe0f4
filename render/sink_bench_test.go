package render

import (
	"testing"

	"github.com/seatledger/seatledger/internal/cputime"
)

// BenchmarkScriptSink encodes the writes of one bench command (a license
// assigned: the user's row and indexes, the product's row and users, the
// held data released) as the projection does for each tenant it flushes.
func BenchmarkScriptSink(b *testing.B) {
	ss := NewScriptSink(func(s string) string { return "sl:{bench-1}:" + s })
	m := "u3@bench.example\x00u3\x00u3@bench.example"
	row, user := make([]byte, 300), make([]byte, 600)
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		ss.Reset(func(s string) string { return "sl:{bench-1}:" + s })
		ss.HSet("licenses", "SPB", row)
		ss.HSet("users", "u3", user)
		ss.ZRem("users:by:name:unlicensed", m)
		ss.ZRem("users:by:upn:unlicensed", m)
		ss.ZAdd("users:by:name:licensed", 0, m)
		ss.ZAdd("users:by:upn:licensed", 0, m)
		ss.ZAdd("users:by:name:sku:SPB", 0, m)
		ss.ZAdd("users:by:upn:sku:SPB", 0, m)
		ss.ZAdd("license:SPB:users", 0, "u3")
		ss.HDel("held", "u3|Exchange")
		ss.ZRem("held:index", "u3|Exchange")
		ss.ZRem("held:due", "u3|Exchange")
		if f, ok := any(ss).(interface{ Finish() }); ok {
			f.Finish()
		}
	}
	reportCPU(b, cputime.Process()-cpu0)
}
