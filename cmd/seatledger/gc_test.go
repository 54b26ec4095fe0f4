package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneGCLeavesAnOperatorsGOGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Fatalf("GOGC unset: GC percent %d, want %d", got, serveGCPercent)
	}
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=100: GC percent %d, want 100 (the operator's)", got)
	}
}

func TestTuneProcsLeavesAnOperatorsGOMAXPROCS(t *testing.T) {
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)

	tuneProcs(func(string) string { return "" })
	if got, want := runtime.GOMAXPROCS(0), serveProcs(3, runtime.NumCPU()); got != want {
		t.Fatalf("GOMAXPROCS unset: %d, want %d", got, want)
	}
	runtime.GOMAXPROCS(3)
	tuneProcs(func(k string) string {
		if k == "GOMAXPROCS" {
			return "3"
		}
		return ""
	})
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("GOMAXPROCS=3: %d, want 3 (the operator's)", got)
	}
}

func TestServeProcsKeepsACPUQuota(t *testing.T) {
	for _, c := range []struct{ goDefault, numCPU, want int }{
		{2, 2, 2 * serveProcsFactor},   // no quota: four per CPU
		{8, 8, 8 * serveProcsFactor},   // the same on a bigger machine
		{2, 16, 2},                     // a 2-CPU quota on 16 CPUs: kept
		{1, 4, 1},                      // a quota under one CPU rounds up to 1
		{16, 2, 16 * serveProcsFactor}, // a GOMAXPROCS above the CPUs is not a quota
	} {
		if got := serveProcs(c.goDefault, c.numCPU); got != c.want {
			t.Errorf("serveProcs(%d, %d) = %d, want %d", c.goDefault, c.numCPU, got, c.want)
		}
	}
}
