package api

import (
	"testing"

	"github.com/google/uuid"
)

// newUUID gives what uuid.NewString gave: random version 4 UUIDs in
// lowercase, 36 characters, distinct.
func TestNewUUIDIsAVersion4UUID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := newUUID()
		u, err := uuid.Parse(s)
		if err != nil || len(s) != 36 || u.String() != s {
			t.Fatalf("%q: %v (parsed %s)", s, err, u)
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%q: version %d, variant %v", s, u.Version(), u.Variant())
		}
		if seen[s] {
			t.Fatalf("%q twice", s)
		}
		seen[s] = true
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, func() { _ = newUUID() }); n > 1 {
		t.Errorf("%v allocations per UUID, want 1", n)
	}
}
