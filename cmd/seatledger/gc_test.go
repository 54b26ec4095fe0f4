package main

import (
	"io/fs"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneGCLeavesAnOperatorsGOGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Fatalf("GOGC unset: GC percent %d, want %d", got, serveGCPercent)
	}
	tuneGC(envWith("GOGC", "100"))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=100: GC percent %d, want 100 (the operator's)", got)
	}
}

func TestTuneProcsLeavesAnOperatorsGOMAXPROCS(t *testing.T) {
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)

	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	want := serveProcs(def, runtime.NumCPU(), cpuQuota(os.ReadFile))
	for i := 0; i < 2; i++ { // twice: it starts from Go's default each time
		tuneProcs(func(string) string { return "" })
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Fatalf("GOMAXPROCS unset, call %d: %d, want %d (Go's default %d)", i+1, got, want, def)
		}
	}
	runtime.GOMAXPROCS(3)
	tuneProcs(envWith("GOMAXPROCS", "3"))
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("GOMAXPROCS=3: %d, want 3 (the operator's)", got)
	}
}

func TestServeProcsKeepsACPUQuota(t *testing.T) {
	for _, c := range []struct {
		goDefault, numCPU int
		quota             bool
		want              int
	}{
		{2, 2, false, 2 * serveProcsFactor}, // no quota: four per CPU
		{8, 8, false, 8 * serveProcsFactor}, // the same on a bigger machine
		{2, 2, true, 2},                     // a quota of 0.5–2 CPUs on 2 (Go rounds up, at least 2)
		{4, 4, true, 4},                     // 3.5 CPUs on 4
		{2, 16, false, 2},                   // a default below the CPUs: a quota not seen in the files
	} {
		if got := serveProcs(c.goDefault, c.numCPU, c.quota); got != c.want {
			t.Errorf("serveProcs(%d, %d, %v) = %d, want %d", c.goDefault, c.numCPU, c.quota, got, c.want)
		}
	}
}

func TestCPUQuotaReadsCgroupFiles(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"v2 unlimited", map[string]string{"/sys/fs/cgroup/cpu.max": "max 100000\n"}, false},
		{"v2 1.5 CPUs", map[string]string{"/sys/fs/cgroup/cpu.max": "150000 100000\n"}, true},
		{"v1 unlimited", map[string]string{"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n"}, false},
		{"v1 2 CPUs", map[string]string{"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000\n"}, true},
		{"v1 cpu,cpuacct", map[string]string{"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "50000\n"}, true},
		{"no cgroup files", map[string]string{}, false},
	} {
		if got := cpuQuota(fakeFiles(c.files)); got != c.want {
			t.Errorf("%s: cpuQuota = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAvailableMemoryReadsCgroupAndMeminfo(t *testing.T) {
	meminfo := "MemTotal:       24684132 kB\nMemFree:        22918720 kB\n"
	for _, c := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine only", map[string]string{"/proc/meminfo": meminfo}, 24684132 * 1024},
		{"v2 unlimited", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 24684132 * 1024},
		{"v2 2 GiB", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "2147483648\n"}, 2 << 30},
		{"v1 unlimited", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 24684132 * 1024},
		{"v1 1 GiB", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n"}, 1 << 30},
		{"cgroup only", map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n"}, 1 << 30},
		{"nothing readable", map[string]string{}, 0},
	} {
		if got := availableMemory(fakeFiles(c.files)); got != c.want {
			t.Errorf("%s: availableMemory = %d, want %d", c.name, got, c.want)
		}
	}
	if got, want := serveMemoryLimit(10<<30), int64(8<<30); got != want {
		t.Errorf("serveMemoryLimit(10 GiB) = %d, want 8 GiB", got)
	}
	if got := serveMemoryLimit(0); got != 0 {
		t.Errorf("serveMemoryLimit(unknown) = %d, want 0 (no limit)", got)
	}
}

func TestTuneGCSetsAMemoryLimitUnlessGOMEMLIMIT(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(old)
	oldPct := debug.SetGCPercent(100)
	defer debug.SetGCPercent(oldPct)

	tuneGC(func(string) string { return "" })
	want := serveMemoryLimit(availableMemory(os.ReadFile))
	if want == 0 {
		want = math.MaxInt64 // nothing readable here: no limit set
	}
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Fatalf("GOMEMLIMIT unset: limit %d, want %d", got, want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	tuneGC(envWith("GOMEMLIMIT", "1GiB"))
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("GOMEMLIMIT set: limit changed to %d", got)
	}
}

func TestGCSettingsReportsWhatIsInEffect(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(250))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(3 << 30))
	if gogc, limit := gcSettings(); gogc != "250" || limit != "3072MiB" {
		t.Fatalf("gcSettings() = %q, %q; want 250, 3072MiB", gogc, limit)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(-1)
	if gogc, limit := gcSettings(); gogc != "off" || limit != "off" {
		t.Fatalf("gcSettings() = %q, %q; want off, off", gogc, limit)
	}
}

// envWith is a getenv that knows only key=value.
func envWith(key, value string) func(string) string {
	return func(k string) string {
		if k == key {
			return value
		}
		return ""
	}
}

// fakeFiles is a readFile over the files in m (path → content).
func fakeFiles(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := m[p]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
}
