package main

import (
	"fmt"
	"io"
	"math"
	"runtime/metrics"
	"slices"
	"time"
)

// The bench's latency over time (--timeline): the load's requests by the
// bucket they started in, with what the Go runtime did in that bucket, to
// tell a steady tail from stalls (a GC cycle, a flush, a slow second of the
// machine).

// timelineSample is one request of the load: when it started (since the
// load began) and how long it took.
type timelineSample struct {
	start, took time.Duration
}

// runtimeSample is the runtime's cumulative counters at one instant.
type runtimeSample struct {
	at        time.Duration // since the load began
	gcCycles  uint64
	gcCPU     float64 // seconds
	schedLat  *metrics.Float64Histogram
	gcPauses  *metrics.Float64Histogram
	mutexWait float64 // seconds
}

var timelineMetrics = []string{
	"/gc/cycles/total:gc-cycles",
	"/cpu/classes/gc/total:cpu-seconds",
	"/sched/latencies:seconds",
	"/sched/pauses/total/gc:seconds",
	"/sync/mutex/wait/total:seconds",
}

// readRuntimeSample reads the runtime's counters now.
func readRuntimeSample(at time.Duration) runtimeSample {
	s := make([]metrics.Sample, len(timelineMetrics))
	for i, n := range timelineMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	r := runtimeSample{at: at}
	if s[0].Value.Kind() == metrics.KindUint64 {
		r.gcCycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		r.gcCPU = s[1].Value.Float64()
	}
	if s[2].Value.Kind() == metrics.KindFloat64Histogram {
		r.schedLat = s[2].Value.Float64Histogram()
	}
	if s[3].Value.Kind() == metrics.KindFloat64Histogram {
		r.gcPauses = s[3].Value.Float64Histogram()
	}
	if s[4].Value.Kind() == metrics.KindFloat64 {
		r.mutexWait = s[4].Value.Float64()
	}
	return r
}

// histDelta returns b−a of two snapshots of one histogram (nil if either is
// missing or their buckets differ).
func histDelta(a, b *metrics.Float64Histogram) *metrics.Float64Histogram {
	if a == nil || b == nil || len(a.Counts) != len(b.Counts) {
		return nil
	}
	d := &metrics.Float64Histogram{Buckets: b.Buckets, Counts: make([]uint64, len(b.Counts))}
	for i := range b.Counts {
		d.Counts[i] = b.Counts[i] - a.Counts[i]
	}
	return d
}

// histQuantile is the upper bound of the bucket holding quantile q of h (0
// if empty); an unbounded last bucket reports its lower bound.
func histQuantile(h *metrics.Float64Histogram, q float64) float64 {
	if h == nil {
		return 0
	}
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank && c > 0 {
			if hi := h.Buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return h.Buckets[i]
		}
	}
	return 0
}

// histMax is the upper bound of the highest non-empty bucket of h.
func histMax(h *metrics.Float64Histogram) float64 {
	if h == nil {
		return 0
	}
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > 0 {
			if hi := h.Buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return h.Buckets[i]
		}
	}
	return 0
}

// writeTimeline writes one tab-separated line per bucket of width: when it
// began, the requests that started in it and their latency percentiles,
// and the runtime's work in it (samples holds the runtime's counters at
// each bucket's edges, in order).
func writeTimeline(w io.Writer, width time.Duration, reqs []timelineSample, samples []runtimeSample) error {
	if width <= 0 {
		return fmt.Errorf("timeline bucket must be positive")
	}
	var buckets [][]time.Duration
	for _, r := range reqs {
		i := int(r.start / width)
		if i < 0 {
			continue
		}
		for len(buckets) <= i {
			buckets = append(buckets, nil)
		}
		buckets[i] = append(buckets[i], r.took)
	}
	if _, err := fmt.Fprintln(w, "t_ms\trequests\tp50_ms\tp90_ms\tp99_ms\tmax_ms\tgc_cycles\tgc_cpu_ms\tgc_pause_max_ms\tsched_p99_ms\tsched_max_ms\tmutex_wait_ms"); err != nil {
		return err
	}
	for i, b := range buckets {
		slices.Sort(b)
		pct := func(q float64) float64 {
			if len(b) == 0 {
				return 0
			}
			return ms(b[min(int(q*float64(len(b))), len(b)-1)])
		}
		begin, end := time.Duration(i)*width, time.Duration(i+1)*width
		var gc uint64
		var gcCPU, pauseMax, schedP99, schedMax, mutex float64
		if a, z, ok := sampleSpan(samples, begin, end); ok {
			gc = z.gcCycles - a.gcCycles
			gcCPU = 1000 * (z.gcCPU - a.gcCPU)
			pauseMax = 1000 * histMax(histDelta(a.gcPauses, z.gcPauses))
			sl := histDelta(a.schedLat, z.schedLat)
			schedP99, schedMax = 1000*histQuantile(sl, 0.99), 1000*histMax(sl)
			mutex = 1000 * (z.mutexWait - a.mutexWait)
		}
		if _, err := fmt.Fprintf(w, "%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.1f\n", begin.Milliseconds(), len(b),
			pct(0.5), pct(0.9), pct(0.99), pct(1), gc, gcCPU, pauseMax, schedP99, schedMax, mutex); err != nil {
			return err
		}
	}
	return nil
}

// sampleSpan returns the samples taken nearest the bucket's edges (the last
// at or before begin, the first at or after end).
func sampleSpan(samples []runtimeSample, begin, end time.Duration) (a, z runtimeSample, ok bool) {
	ai, zi := -1, -1
	for i, s := range samples {
		if s.at <= begin+time.Millisecond {
			ai = i
		}
		if zi < 0 && s.at >= end-time.Millisecond {
			zi = i
		}
	}
	if ai < 0 || zi < 0 || zi <= ai {
		return a, z, false
	}
	return samples[ai], samples[zi], true
}
