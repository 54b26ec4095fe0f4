package cputime

import (
	"runtime"
	"testing"
)

// Busy work moves the process's CPU time forward (on systems that tell).
func TestProcessCountsWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no CPU time here")
	}
	before := Process()
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i ^ (x >> 3)
	}
	if after := Process(); after <= before || x == 42 {
		t.Fatalf("CPU time %v before the work, %v after", before, after)
	}
}
