//go:build race

package console_test

// raceEnabled: the race detector slows everything; timing assertions
// only log under it.
const raceEnabled = true
