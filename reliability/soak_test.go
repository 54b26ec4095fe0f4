//go:build soak

package reliability_test

import (
	"os/exec"
	"testing"
)

// With -tags soak every scenario runs its long version.
func init() { soak = true }

// TestFuzzSoak runs every fuzz target of the API for 30 s.
func TestFuzzSoak(t *testing.T) {
	for _, target := range []string{"FuzzCommandBody", "FuzzAuthorizationHeader", "FuzzEventcodecDecode"} {
		out, err := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+target+"$", "-fuzztime", "30s", "../api/").CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", target, err, out)
			continue
		}
		t.Logf("%s: 30 s without a failure", target)
	}
}
