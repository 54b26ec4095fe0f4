package render

import (
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// A tenant's changes are written as a diff from its state at a base
// version: most entities are written whole, but the users list's indexes
// as entries added and removed. The diff is right only on a read model at
// that base. A read model past it but short of the new version (a flush
// that wrote some tenants and failed before its checkpoint moved, then
// staged again from the checkpoint) or behind it would keep entries that
// neither state has. So ApplyScript and FlushScript refuse such a tenant
// with a BaseError, and the projection writes it again as a diff from the
// version the read model holds.

// baseErrorPrefix starts the scripts' error reply.
const baseErrorPrefix = "SLBASE"

// StaleTenant is a tenant refused for being off its diff's base: its place
// in the flush (1-based; 1 for ApplyScript) and the version its read model
// holds.
type StaleTenant struct {
	Place   int
	Version uint64
}

// BaseError is ApplyScript's or FlushScript's refusal to write a diff onto
// a read model that is not at the diff's base. Nothing was written.
type BaseError struct {
	Stale []StaleTenant
}

func (e *BaseError) Error() string {
	var b strings.Builder
	b.WriteString(baseErrorPrefix)
	for _, s := range e.Stale {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(s.Place))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(s.Version, 10))
	}
	return b.String()
}

// AsBaseError finds the refusal in err: a *BaseError (the in-process
// flush) or the scripts' error reply from Redis. ApplyScript's reply names
// no place: its tenant is place 1.
func AsBaseError(err error) (*BaseError, bool) {
	var be *BaseError
	if errors.As(err, &be) {
		return be, true
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return nil, false
	}
	rest, ok := strings.CutPrefix(re.Error(), baseErrorPrefix+" ")
	if !ok {
		return nil, false
	}
	f := strings.Fields(rest)
	if len(f) == 1 {
		f = []string{"1", f[0]}
	}
	if len(f) == 0 || len(f)%2 != 0 {
		return nil, false
	}
	be = &BaseError{}
	for i := 0; i < len(f); i += 2 {
		place, err1 := strconv.Atoi(f[i])
		v, err2 := strconv.ParseUint(f[i+1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		be.Stale = append(be.Stale, StaleTenant{Place: place, Version: v})
	}
	return be, true
}
