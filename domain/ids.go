package domain

import (
	"crypto/sha1"
	"encoding/hex"
	"time"
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

// EventID derives the id of an event appended for a command at a version of
// the tenant's stream: a name-based UUID (version 5) of the tenant, the
// command id and the version. Events decided by Decide take decisionEventID
// instead; EventID names the events other writers make (fixtures, tools).
func EventID(tenantID, commandID string, version uint64) string {
	return eventID(tenantID, commandID, version, nil)
}

// decisionEventID derives the id of an event Decide made for m at a
// version: EventID's name with the rest of what the event's envelope takes
// from m appended (the request's hash, the time of decision, the
// correlation id and the actor). The event store recognises an append whose
// ids it already holds at the same place as done and answers it as if it
// were written, so two ids may only be equal when the events are: the same
// command id decided at the same version for another request (the same
// Idempotency-Key with another body, or a retry decided at another time, on
// a node whose cached state is behind) gets other ids, its append conflicts,
// and the command is decided again on the head, which remembers the first.
// A decision repeated with the same metadata (an append retried) keeps its
// ids.
func decisionEventID(tenantID string, m *CommandMeta, version uint64) string {
	var stack [256]byte // room for the usual hash, time, request id and actor: no allocation
	return eventID(tenantID, m.CommandID, version, appendDecisionName(stack[:0], m))
}

// appendDecisionName appends the part of a decided event's id name that
// comes from m (decisionEventID): the same for every event of a decision,
// so stamp makes it once.
func appendDecisionName(b []byte, m *CommandMeta) []byte {
	b = append(b, m.RequestHash...)
	b = append(b, 0)
	b = m.Now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, 0)
	b = append(b, m.CorrelationID...)
	b = append(b, 0)
	return m.Actor.appendString(b)
}

func eventID(tenantID, commandID string, version uint64, extra []byte) string {
	index := version
	var stack [512]byte
	name := append(stack[:0], eventNamespace[:]...)
	name = append(name, tenantID...)
	name = append(name, 0)
	name = append(name, commandID...)
	name = append(name, 0, byte(index>>56), byte(index>>48), byte(index>>40), byte(index>>32),
		byte(index>>24), byte(index>>16), byte(index>>8), byte(index))
	if extra != nil {
		name = append(append(name, 0), extra...)
	}
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
