package main

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/seatledger/seatledger/domain"
)

// cell makes a stored value safe for a terminal table: control characters
// (tab and newline included, which would break the table), bidirectional
// controls and bytes that are not UTF-8 are shown escaped (\x1b, \u202e),
// so what a tenant stored cannot drive the operator's terminal.
func cell(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || domain.ControlRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && domain.ControlRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case domain.ControlRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
