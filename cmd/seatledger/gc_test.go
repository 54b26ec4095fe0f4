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
	if got := runtime.GOMAXPROCS(0); got != 3*serveProcsFactor {
		t.Fatalf("GOMAXPROCS unset: %d, want %d × 3", got, serveProcsFactor)
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
