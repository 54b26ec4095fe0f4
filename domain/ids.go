package domain

import (
	"crypto/sha1"
	"encoding/hex"
)

// ValidID reports whether s is a well-formed client-chosen id:
// 1 to 128 characters of [A-Za-z0-9._@-], other than "." and ".." (path
// segments that name no resource: an id must be reachable by its path).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

func checkID(field, s string) error {
	if !ValidID(s) {
		return invalid(field, "%s %q is not a valid id: use 1 to 128 characters of A-Z a-z 0-9 . _ @ - (not . or ..)", field, Echo(s))
	}
	return nil
}

// eventNamespace is the UUID namespace of seatledger event ids.
var eventNamespace = [16]byte{0x5e, 0xa7, 0x1e, 0xd6, 0x0d, 0x6a, 0x4c, 0x1b, 0x9a, 0x41, 0x3f, 0x0e, 0x8c, 0x55, 0x21, 0x7d}

// EventID derives the id of an event decided for a command at a version of
// the tenant's stream: a name-based UUID (version 5) of the tenant, the
// command id and the version. A command retried at the same place produces
// the same ids, which the event store recognises as already appended.
func EventID(tenantID, commandID string, version uint64) string {
	index := version
	var stack [320]byte
	name := append(stack[:0], eventNamespace[:]...)
	name = append(name, tenantID...)
	name = append(name, 0)
	name = append(name, commandID...)
	name = append(name, 0, byte(index>>56), byte(index>>48), byte(index>>40), byte(index>>32),
		byte(index>>24), byte(index>>16), byte(index>>8), byte(index))
	sum := sha1.Sum(name)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:])
}
