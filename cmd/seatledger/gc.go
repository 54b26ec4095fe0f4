package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
)

// serveGCPercent is the garbage collector's target for `serve` when GOGC is
// not set. Almost all of a command's allocations (HTTP, JSON, the events'
// encoding) die with the request, and the live heap is small (cached tenant
// states), so the collector's cost is how often it runs: each cycle's mark
// phase (~100 ms on two cores for the benchmark's ~40 MB of tenant states)
// doubled the latency of the requests it overlapped, and at Go's default
// it ran several times a second. Collecting at 9× the live heap instead of
// 2× makes cycles rarer at the cost of a larger peak heap, which
// serveMemoryLimit bounds; GOGC and GOMEMLIMIT override them.
const serveGCPercent = 800

// serveMemoryShare is the share of the memory the process may use (the
// cgroup's limit, else the machine's) that serve gives Go as GOMEMLIMIT
// when it is not set: when a large live heap (many big tenants cached)
// would take GOGC 800's peak past it, the collector runs more often
// instead. It is a safety net, set high so that it engages only when
// memory is short: Pebble's cache and memtables (up to ~384 MiB) are in Go's
// heap in a build without cgo (the Docker image) and outside it with cgo,
// and the rest is stacks and the host.
const serveMemoryShare = 0.8

// tuneGC applies serveGCPercent unless the operator set GOGC, and a memory
// limit of serveMemoryShare unless the operator set GOMEMLIMIT.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit := serveMemoryLimit(availableMemory(os.ReadFile)); limit > 0 {
			debug.SetMemoryLimit(limit)
		}
	}
}

// serveMemoryLimit is serve's GOMEMLIMIT for a process that may use avail
// bytes (0: unknown, no limit).
func serveMemoryLimit(avail int64) int64 {
	if avail <= 0 {
		return 0
	}
	return int64(float64(avail) * serveMemoryShare)
}

// availableMemory is the memory the process may use: the cgroup's limit
// (v2 memory.max, v1 memory.limit_in_bytes, as mounted at /sys/fs/cgroup)
// when it is below the machine's (/proc/meminfo's MemTotal), else the
// machine's; 0 when neither can be read.
func availableMemory(readFile func(string) ([]byte, error)) int64 {
	var total int64
	if b, err := readFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := bytes.Fields(sc.Bytes())
			if len(f) >= 2 && string(f[0]) == "MemTotal:" {
				if kb, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil && kb < math.MaxInt64/1024 {
					total = kb * 1024
				}
			}
		}
	}
	// "max" (v2) or a huge number (v1) when unlimited.
	if b, ok := firstFile(readFile, "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); ok {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}

// firstFile returns the content of the first of paths that readFile can
// read (the cgroup v2 file, then the v1 ones).
func firstFile(readFile func(string) ([]byte, error), paths ...string) ([]byte, bool) {
	for _, p := range paths {
		if b, err := readFile(p); err == nil {
			return b, true
		}
	}
	return nil, false
}

// gcSettings reads the collector's GOGC and memory limit in effect
// ("off" when there is none) for the start-up log.
func gcSettings() (gogc, memLimit string) {
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	gogc, memLimit = "off", "off"
	if s := samples[0]; s.Value.Kind() == metrics.KindUint64 && s.Value.Uint64() > 0 && s.Value.Uint64() < math.MaxInt32 {
		gogc = strconv.FormatUint(s.Value.Uint64(), 10)
	}
	if s := samples[1]; s.Value.Kind() == metrics.KindUint64 && s.Value.Uint64() < math.MaxInt64 {
		memLimit = strconv.FormatUint(s.Value.Uint64()>>20, 10) + "MiB"
	}
	return gogc, memLimit
}
