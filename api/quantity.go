package api

import (
	"strconv"
	"strings"
)

// quantity is a license count in a request body as written: a JSON number
// in digits. Bounds are checked against the policy's cap by
// Server.quantity, so the answer can say which bound was passed even for a
// number no int holds.
type quantity struct {
	text string // as written, for the message
	n    int64
	// over and under: the number does not fit an int64.
	over, under bool
}

// UnmarshalJSON accepts a JSON integer written in digits; a fraction or an
// exponent (5.5, 1e2) and any other kind of value are refused with a
// message saying which.
func (q *quantity) UnmarshalJSON(b []byte) error {
	s := string(b)
	switch {
	case s == "" || s[0] == '"':
		return invalidRequest("quantity", "quantity must be a JSON number, not a string")
	case s[0] == '{', s[0] == '[', s[0] == 't', s[0] == 'f':
		return invalidRequest("quantity", "quantity must be a JSON number, not %s", jsonValueKind(s[0]))
	case strings.ContainsAny(s, ".eE"):
		return invalidRequest("quantity", "quantity must be a whole number written in digits, not %s", bounded(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	q.text, q.n = s, n
	if err != nil { // out of range: the syntax is JSON's
		q.over, q.under = s[0] != '-', s[0] == '-'
	}
	return nil
}

func jsonValueKind(first byte) string {
	switch first {
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a boolean"
}

// quantity checks a decoded quantity against 1 and the policy's cap.
func (s *Server) quantity(q *quantity) (int, error) {
	max := int64(s.cfg.Decider.Policy.MaxQuantity)
	switch {
	case q == nil:
		return 0, invalidRequest("quantity", "quantity is required: the number of licenses, from 1 to %d", max)
	case q.over || q.n > max:
		return 0, invalidRequest("quantity", "quantity %s is above the cap of %d licenses per subscription", bounded(q.text), max)
	case q.under || q.n < 1:
		return 0, invalidRequest("quantity", "quantity must be at least 1, not %s", bounded(q.text))
	}
	return int(q.n), nil
}
