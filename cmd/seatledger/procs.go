package main

import "runtime"

// serveProcsFactor multiplies Go's default GOMAXPROCS (the CPUs the process
// may use) for `serve` when GOMAXPROCS is not set.
//
// A command's path is mostly system calls and hand-offs: socket reads and
// writes, Redis round trips, the WAL's fsync. With one P per CPU, a P stays
// with a thread blocked in fsync until the runtime's monitor takes it back,
// and while every P is busy the scheduler looks at the network only when a
// P runs out of queued goroutines (or every 10 ms): on two CPUs, 30–60
// goroutines sat in the run queues and the process used 1.4 of its 2 cores.
// With four Ps per CPU the runnable work is spread over more threads and the
// kernel interleaves them: in paired runs of `seatledger bench` on two cores
// commands/s rose 20–40% and p99 fell by a quarter (docs/BENCHMARKS.md,
// fourth session). Eight and sixteen Ps per CPU were no better than four.
const serveProcsFactor = 4

// tuneProcs sets GOMAXPROCS to serveProcs unless the operator set it.
func tuneProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(serveProcs(runtime.GOMAXPROCS(0), runtime.NumCPU()))
	}
}

// serveProcs is the GOMAXPROCS serve runs with, given Go's default and the
// CPUs the process may run on. A default below the CPU count means a CPU
// quota (a container's limit, which Go's default follows): more threads
// than the quota lets run would be throttled in bursts, so the default is
// kept there.
func serveProcs(goDefault, numCPU int) int {
	if goDefault < numCPU {
		return goDefault
	}
	return serveProcsFactor * goDefault
}
