//go:build soak

package reliability_test

// With -tags soak every scenario runs its long version (TestFuzzTargets:
// 5 min per fuzz target).
func init() { soak = true }
