package main

import "runtime/debug"

// serveGCPercent is the garbage collector's target for `serve` when GOGC is
// not set. Almost all of a command's allocations (HTTP, JSON, the events'
// encoding) die with the request, and the live heap is small (cached tenant
// states), so the collector's cost is how often it runs: each cycle's mark
// phase (~100 ms on two cores for the benchmark's ~40 MB of tenant states)
// doubled the latency of the requests it overlapped, and at Go's default
// it ran several times a second. Collecting at 9× the live heap instead of
// 2× makes cycles rarer at the cost of a larger peak heap; GOGC overrides it
// and GOMEMLIMIT caps the heap as usual.
const serveGCPercent = 800

// tuneGC applies serveGCPercent unless the operator set GOGC.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}
