// Package cputime reads the CPU time of this process, which the bench
// command and the CPU-per-op benchmarks divide by the work done: unlike
// wall time, other processes on the machine do not enter it.
package cputime
