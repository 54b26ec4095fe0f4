package main

import (
	"bytes"
	"os"
	"runtime"
)

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
// fourth session; the bench's load clients run in the same process, so a
// server with remote clients may gain less). Eight and sixteen Ps per CPU
// were no better than four.
const serveProcsFactor = 4

// tuneProcs sets GOMAXPROCS to serveProcs unless the operator set it. It
// starts from Go's default each time, so calling it twice changes nothing,
// and it leaves GOMAXPROCS alone (Go then keeps following a changing CPU
// quota) when serveProcs keeps the default.
func tuneProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	if n := serveProcs(def, runtime.NumCPU(), cpuQuota(os.ReadFile)); n != def {
		runtime.GOMAXPROCS(n)
	}
}

// serveProcs is the GOMAXPROCS serve runs with, given Go's default, the CPUs
// the process may run on and whether a CPU quota limits it. Under a quota
// (a container's CPU limit) more threads than it lets run would be
// throttled in bursts, so Go's default, which follows the quota, is kept; a
// default below the CPU count is taken as a quota too.
func serveProcs(goDefault, numCPU int, quota bool) int {
	if quota || goDefault < numCPU {
		return goDefault
	}
	return serveProcsFactor * goDefault
}

// cpuQuota reports whether the process's cgroup, as mounted at
// /sys/fs/cgroup (a container's own cgroup, with cgroup namespaces), caps
// its CPU time: cgroup v2's cpu.max or v1's cpu.cfs_quota_us. A quota set
// further up a hierarchy that is not the container's root is not seen: set
// GOMAXPROCS there.
func cpuQuota(readFile func(string) ([]byte, error)) bool {
	if b, err := readFile("/sys/fs/cgroup/cpu.max"); err == nil { // v2: "max 100000" or "150000 100000"
		f := bytes.Fields(b)
		return len(f) > 0 && string(f[0]) != "max"
	}
	b, ok := firstFile(readFile, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")
	q := string(bytes.TrimSpace(b)) // v1: -1 when unlimited
	return ok && q != "" && q != "-1"
}
