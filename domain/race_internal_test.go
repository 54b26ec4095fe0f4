//go:build race

package domain

// raceEnabled: the race detector changes what escapes; allocation counts
// are checked only without it.
const raceEnabled = true
