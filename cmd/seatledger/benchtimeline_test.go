package main

import (
	"math"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestWriteTimelineBucketsRequestsByStart(t *testing.T) {
	ms := time.Millisecond
	reqs := []timelineSample{
		{start: 10 * ms, took: 2 * ms}, {start: 20 * ms, took: 4 * ms}, {start: 240 * ms, took: 40 * ms}, // bucket 0
		{start: 600 * ms, took: 3 * ms}, // bucket 2; bucket 1 is empty
	}
	h := func(counts ...uint64) *metrics.Float64Histogram {
		return &metrics.Float64Histogram{Buckets: []float64{0, 0.001, 0.01, math.Inf(1)}, Counts: counts}
	}
	samples := []runtimeSample{
		{at: 0, gcCycles: 3, gcCPU: 1, schedLat: h(0, 0, 0), gcPauses: h(0, 0, 0), mutexWait: 0},
		{at: 250 * ms, gcCycles: 4, gcCPU: 1.05, schedLat: h(90, 9, 1), gcPauses: h(1, 1, 0), mutexWait: 0.002},
		{at: 500 * ms, gcCycles: 4, gcCPU: 1.05, schedLat: h(190, 10, 1), gcPauses: h(1, 1, 0), mutexWait: 0.002},
		{at: 750 * ms, gcCycles: 4, gcCPU: 1.05, schedLat: h(290, 10, 1), gcPauses: h(1, 1, 0), mutexWait: 0.002},
	}
	var b strings.Builder
	if err := writeTimeline(&b, 250*ms, reqs, samples); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"t_ms\trequests\tp50_ms\tp90_ms\tp99_ms\tmax_ms\tgc_cycles\tgc_cpu_ms\tgc_pause_max_ms\tsched_p99_ms\tsched_max_ms\tmutex_wait_ms",
		// sched: 100 samples, the 99th in the (1 ms, 10 ms] bucket; the
		// largest in the unbounded one, reported by its lower bound.
		"0\t3\t4.00\t40.00\t40.00\t40.00\t1\t50.0\t10.000\t10.000\t10.000\t2.0",
		"250\t0\t0.00\t0.00\t0.00\t0.00\t0\t0.0\t0.000\t1.000\t10.000\t0.0",
		"500\t1\t3.00\t3.00\t3.00\t3.00\t0\t0.0\t0.000\t1.000\t1.000\t0.0",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], want[i])
		}
	}
}

func TestHistQuantileOfAnEmptyHistogramIsZero(t *testing.T) {
	h := &metrics.Float64Histogram{Buckets: []float64{0, 1, 2}, Counts: []uint64{0, 0}}
	if q, m := histQuantile(h, 0.99), histMax(h); q != 0 || m != 0 {
		t.Fatalf("empty histogram: quantile %v, max %v; want 0, 0", q, m)
	}
	if q := histQuantile(nil, 0.5); q != 0 {
		t.Fatalf("nil histogram: %v", q)
	}
}
