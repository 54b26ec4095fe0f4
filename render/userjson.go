package render

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/readmodel"
)

// The user view is the projection's most frequent value (every event about
// a user renders it). appendUserView writes its JSON by hand, with the
// bytes the projection wrote before with eventcodec.Marshal (which the
// read models hold and Verify compares): encoding/json's, the fields in
// declaration order, the same omitempty, nil slices as null, strings
// escaped as encoding/json escapes them (HTML characters, control
// characters, invalid UTF-8, U+2028 and U+2029) and times as
// time.Time.MarshalJSON writes them, except \b and \f, which eventcodec
// (sonic) writes \u0008 and \u000c where encoding/json, since Go 1.22,
// writes \b and \f. TestUserViewJSONMatches and FuzzUserViewJSON hold it
// to eventcodec's bytes and to encoding/json's meaning.

// appendUserView appends v's JSON to b. ok is false (b unchanged) when a
// time cannot be written (encoding/json fails on it too): the caller then
// takes the reflective path, which reports the error.
func appendUserView(b []byte, v *readmodel.UserView) (_ []byte, ok bool) {
	n0 := len(b)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, v.ID)
	b = append(b, `,"userPrincipalName":`...)
	b = appendJSONString(b, v.UserPrincipalName)
	b = append(b, `,"displayName":`...)
	b = appendJSONString(b, v.DisplayName)
	b = append(b, `,"userType":`...)
	b = appendJSONString(b, v.UserType)
	if v.UsageLocation != "" {
		b = append(b, `,"usageLocation":`...)
		b = appendJSONString(b, v.UsageLocation)
	}
	b = append(b, `,"status":`...)
	b = appendJSONString(b, v.Status)
	if v.DeletedAt != nil {
		b = append(b, `,"deletedAt":`...)
		if b, ok = appendJSONTime(b, *v.DeletedAt); !ok {
			return b[:n0], false
		}
	}
	b = append(b, `,"roles":`...)
	b = appendJSONRoles(b, v.Roles)
	b = append(b, `,"groups":`...)
	b = appendJSONStrings(b, v.Groups)
	b = append(b, `,"licenses":`...)
	if v.Licenses == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range v.Licenses {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLicenseView(b, &v.Licenses[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"enabledServices":`...)
	b = appendJSONStrings(b, v.EnabledServices)
	b = append(b, `,"autoAssignedServices":`...)
	b = appendJSONStrings(b, v.AutoAssignedServices)
	b = append(b, `,"heldData":`...)
	if v.HeldData == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range v.HeldData {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendHeldRow(b, &v.HeldData[i]); !ok {
				return b[:n0], false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"retentionHold":`...)
	b = strconv.AppendBool(b, v.RetentionHold)
	if v.RestorableUntil != nil {
		b = append(b, `,"restorableUntil":`...)
		if b, ok = appendJSONTime(b, *v.RestorableUntil); !ok {
			return b[:n0], false
		}
	}
	return append(b, '}'), true
}

// appendLicenseView appends a domain.LicenseView as encoding/json does.
func appendLicenseView(b []byte, l *domain.LicenseView) []byte {
	b = append(b, `{"skuId":`...)
	b = appendJSONString(b, l.SkuID)
	if l.SkuPartNumber != "" {
		b = append(b, `,"skuPartNumber":`...)
		b = appendJSONString(b, l.SkuPartNumber)
	}
	b = append(b, `,"disabledPlans":`...)
	b = appendJSONStrings(b, l.DisabledPlans)
	b = append(b, `,"enabledPlans":`...)
	b = appendJSONStrings(b, l.EnabledPlans)
	b = append(b, `,"sources":`...)
	b = appendJSONStrings(b, l.Sources)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, l.State)
	if l.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, l.Error)
	}
	if l.ErrorDetail != "" {
		b = append(b, `,"errorDetail":`...)
		b = appendJSONString(b, l.ErrorDetail)
	}
	if len(l.ErrorGroups) > 0 {
		b = append(b, `,"errorGroups":`...)
		b = appendJSONStrings(b, l.ErrorGroups)
	}
	return append(b, '}')
}

// appendHeldRow appends a readmodel.HeldRow as eventcodec does (ok false,
// b unchanged: a time it cannot write).
func appendHeldRow(b []byte, h *readmodel.HeldRow) (_ []byte, ok bool) {
	n0 := len(b)
	b = append(b, `{"userId":`...)
	b = appendJSONString(b, h.UserID)
	b = append(b, `,"workload":`...)
	b = appendJSONString(b, h.Workload)
	b = append(b, `,"heldSince":`...)
	if b, ok = appendJSONTime(b, h.HeldSince); !ok {
		return b[:n0], false
	}
	b = append(b, `,"purgeAfter":`...)
	if b, ok = appendJSONTime(b, h.PurgeAfter); !ok {
		return b[:n0], false
	}
	b = append(b, `,"retained":`...)
	b = strconv.AppendBool(b, h.Retained)
	if h.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, h.Reason)
	}
	return append(b, '}'), true
}

func appendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

func appendJSONRoles(b []byte, rs []domain.Role) []byte {
	if rs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, string(r))
	}
	return append(b, ']')
}

// appendJSONTime appends t as time.Time.MarshalJSON writes it (RFC 3339
// with nanoseconds, trailing zeros cut). ok is false where MarshalJSON
// fails: a year outside [0,9999] or a zone offset of 24 hours or more
// (the checks of its appendStrictRFC3339).
func appendJSONTime(b []byte, t time.Time) (_ []byte, ok bool) {
	n0 := len(b)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	s := b[n0+1:]
	switch {
	case len(s) < len("9999-") || s[len("9999")] != '-':
		return b[:n0], false
	case s[len(s)-1] != 'Z':
		c := s[len(s)-len("Z07:00")]
		if ('0' <= c && c <= '9') || 10*(s[len(s)-5]-'0')+(s[len(s)-4]-'0') >= 24 {
			return b[:n0], false
		}
	}
	return append(b, '"'), true
}

const jsonHex = "0123456789abcdef"

// Bytes tested eight at a time (in a uint64): swarLess is non-zero if a
// byte of x below 0x80 is below n (n <= 0x80), swarHas if a byte is c.
const swarLow, swarHigh = 0x0101010101010101, 0x8080808080808080

func swarLess(x, n uint64) uint64 { return (x - swarLow*n) &^ x & swarHigh }
func swarHas(x, c uint64) uint64  { return swarLess(x^(swarLow*c), 1) }

// jsonSafe tells the ASCII bytes a JSON string holds as they are:
// encoding/json's htmlSafeSet.
var jsonSafe = func() (safe [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return safe
}()

// appendJSONString appends s quoted as eventcodec.Marshal writes a string:
// encoding/json's appendString with HTML escaping (json.Marshal's), but
// \b and \f as \u0008 and \u000c.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start, i := 0, 0
	// Eight bytes at a time while none needs a look (most strings: ids,
	// names, plan names).
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if x&swarHigh != 0 || swarLess(x, 0x20) != 0 || swarHas(x, '"') != 0 || swarHas(x, '\\') != 0 ||
			swarHas(x, '<') != 0 || swarHas(x, '>') != 0 || swarHas(x, '&') != 0 {
			break
		}
	}
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other control characters (\b and \f too), and <, > and &
				dst = append(dst, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', jsonHex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
