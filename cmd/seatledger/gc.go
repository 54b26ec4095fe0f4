package main

import "runtime/debug"

// serveGCPercent is the garbage collector's target for `serve` when GOGC is
// not set. Almost all of a command's allocations (HTTP, JSON, the events'
// encoding) die with the request, and the live heap is small (cached tenant
// states), so collecting at 4× the live heap instead of Go's 2× halves the
// collector's share of the CPU at the cost of a larger peak heap; GOGC
// overrides it and GOMEMLIMIT caps the heap as usual.
const serveGCPercent = 400

// tuneGC applies serveGCPercent unless the operator set GOGC.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}
