package render

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"
)

// The in-process Redis (miniredis) runs Lua in a Go interpreter: a fresh
// interpreter and a compile of the script per call, and per redis.call a
// reply written and parsed back through new buffers. The flush script's
// calls were a quarter of the zero-setup server's CPU. On an in-process
// Redis set up with ServeFlushNatively a projection in the same process
// runs a Go port of flush.lua (NativeFlusher.apply) on the KEYS and ARGV
// it built, without a connection: holding miniredis's lock for the whole
// flush (which every command takes, and a script holds for its whole
// run), it dispatches each command as a script's redis.call would be
// dispatched, with the connection state of a script run. So the flush is
// as atomic as the Lua flush, with the same commands on the same keys in
// the same order.
//
// A script run's connection state (miniredis's, opaque here) is taken
// once per database from a command of ours that a script calls
// (nativeCaptureCommand), and checked to behave as a script's (it refuses
// MULTI); if it does not, the projection keeps to the Lua script.

// nativeCaptureCommand hands its caller's connection state to
// NativeFlusher.scriptState.
const nativeCaptureCommand = "SEATLEDGER.SCRIPTSTATE"

// nativeFlushers maps the address of each in-process Redis set up with
// ServeFlushNatively to its flusher.
var nativeFlushers sync.Map // string → *NativeFlusher

// ServeFlushNatively sets up the in-process Redis m (started) to run the
// flushes of projections of this process in Go: a Projection whose Redis
// client connects to m's address (one node, no PerTenantWrites) uses it.
// The read models are the same, byte for byte. release forgets m (call it
// when m is closed).
func ServeFlushNatively(m *miniredis.Miniredis) (release func(), err error) {
	n := &NativeFlusher{m: m, srv: m.Server(), states: map[int]any{}}
	if err := m.Server().Register(nativeCaptureCommand, n.captureCommand); err != nil {
		return nil, fmt.Errorf("projections: in-process Redis: %w", err)
	}
	addr := m.Addr()
	nativeFlushers.Store(addr, n)
	return func() { nativeFlushers.CompareAndDelete(addr, n) }, nil
}

// NativeFlusherFor returns the flusher of the in-process Redis rdb talks
// to and rdb's database, if it has one and it works there.
func NativeFlusherFor(rdb redis.UniversalClient) (*NativeFlusher, int) {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return nil, 0
	}
	v, _ := nativeFlushers.Load(c.Options().Addr)
	n, _ := v.(*NativeFlusher)
	if n == nil || n.scriptState(c.Options().DB) == nil {
		return nil, 0
	}
	return n, c.Options().DB
}

type NativeFlusher struct {
	m   *miniredis.Miniredis
	srv *server.Server

	mu     sync.Mutex  // one flush at a time: the buffers below
	states map[int]any // a script run's connection state by database (nil: does not work)

	capMu     sync.Mutex
	capturing bool // scriptState is taking a script run's state
	captured  any  // set by captureCommand
	out       bytes.Buffer
	w         *bufio.Writer
	argv      []string
	cmd       []string           // apply's command of an op
	commands  int                // commands dispatched (tests count them)
	cur       []float64          // the tenants' versions in apply
	after     map[string]float64 // apply's versions by meta key, as each place leaves them
}

// scriptState returns the connection state of a script run on database
// db, taken the first time, or nil if it cannot be had or does not behave
// as a script's.
func (n *NativeFlusher) scriptState(db int) any {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st, ok := n.states[db]; ok {
		return st
	}
	// On a connection of our own (no socket): select db, then run a script
	// that calls captureCommand.
	p := server.NewPeer(n.writer())
	n.capMu.Lock()
	n.capturing, n.captured = true, nil
	n.capMu.Unlock()
	if _, err := n.reply(p, "SELECT", strconv.Itoa(db)); err == nil {
		_, _ = n.reply(p, "EVAL", "return redis.call('"+nativeCaptureCommand+"')", "0")
	}
	n.capMu.Lock()
	st := n.captured
	n.capturing, n.captured = false, nil
	n.capMu.Unlock()
	if st != nil && !n.scriptLike(st) {
		st = nil
	}
	n.states[db] = st
	return st
}

// scriptLike reports whether connection state st is a script run's: it
// refuses MULTI, where a connection's would start a transaction (which is
// then discarded).
func (n *NativeFlusher) scriptLike(st any) bool {
	q := server.NewPeer(n.writer())
	q.Ctx = st
	if _, err := n.reply(q, "MULTI"); err == nil {
		_, _ = n.reply(q, "DISCARD")
		return false
	}
	return true
}

// captureCommand is nativeCaptureCommand: it keeps its caller's state
// while scriptState asks for it (another client's call changes nothing).
func (n *NativeFlusher) captureCommand(c *server.Peer, cmd string, args []string) {
	n.capMu.Lock()
	if n.capturing {
		n.captured = c.Ctx
	}
	n.capMu.Unlock()
	c.WriteInt(1)
}

// flush applies keys and args (flush.lua's) to database db as one script
// run would.
func (n *NativeFlusher) Flush(db int, keys []string, args []any) error {
	st := n.scriptState(db)
	if st == nil {
		return errors.New("projections: the in-process Redis cannot run the flush in Go")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.m.Lock() // as a script run holds it: no other command runs meanwhile
	defer n.m.Unlock()
	p := server.NewPeer(n.writer())
	p.Ctx = st
	return n.apply(p, keys, args)
}

func (n *NativeFlusher) writer() *bufio.Writer {
	if n.w == nil {
		n.w = bufio.NewWriter(&n.out)
	}
	return n.w
}

// errNativeArgs is a KEYS/ARGV layout flush.lua would fail on.
var errNativeArgs = errors.New("ERR seatledger: malformed flush arguments")

// apply is flush.lua: first each tenant's version (for a tenant given
// again, the version its earlier place leaves), refusing the whole flush
// with a *BaseError if one is neither at its ops' base nor past their
// version; then for each tenant, if its version is below the new
// one, its ops and then the version; the tenant added to the tenant set
// unless its id is empty; then the checkpoint moved forward.
func (n *NativeFlusher) apply(p *server.Peer, keys []string, args []any) error {
	argv := func(i int) (string, error) { // ARGV[i], 1-based
		if i < 1 || i > len(args) {
			return "", errNativeArgs
		}
		return argString(args[i-1])
	}
	key := func(i int) (string, error) { // KEYS[i], 1-based
		if i < 1 || i > len(keys) {
			return "", errNativeArgs
		}
		return keys[i-1], nil
	}
	num := func(i int) (int, error) {
		s, err := argv(i)
		if err != nil {
			return 0, err
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			return 0, errNativeArgs
		}
		return v, nil
	}
	luaArg := func(i int) (float64, error) {
		s, err := argv(i)
		if err != nil {
			return 0, err
		}
		return luaNumber(s)
	}
	if len(keys) < 2 {
		return errNativeArgs
	}
	tenants, ck := keys[len(keys)-2], keys[len(keys)-1]
	nt, err := num(2)
	if err != nil {
		return err
	}
	// The versions first, as flush.lua reads them.
	cur := n.cur[:0]
	var stale []StaleTenant
	if n.after == nil {
		n.after = map[string]float64{}
	}
	after := n.after
	defer clear(after)
	i, kb := 3, 0
	for t := range nt {
		meta, err := key(kb + 1)
		if err != nil {
			return err
		}
		c, seen := after[meta]
		if !seen {
			if c, err = n.number(p, "HGET", meta, "version"); err != nil {
				return err
			}
		}
		cur = append(cur, c)
		v, err := luaArg(i + 1)
		if err != nil {
			return err
		}
		base, err := luaArg(i + 2)
		if err != nil {
			return err
		}
		if c < v && c != base {
			stale = append(stale, StaleTenant{Place: t + 1, Version: uint64(c)})
		}
		after[meta] = max(c, v) // a tenant given again: what this place leaves
		nkeys, err := num(i)
		if err != nil {
			return err
		}
		nops, err := num(i + 4)
		if err != nil {
			return err
		}
		kb += nkeys
		i += 5 + nops
	}
	n.cur = cur
	if len(stale) > 0 {
		return &BaseError{Stale: stale}
	}
	i, kb = 3, 0
	for t := range nt {
		nkeys, err := num(i)
		if err != nil {
			return err
		}
		vs, err := argv(i + 1)
		if err != nil {
			return err
		}
		tid, err := argv(i + 3)
		if err != nil {
			return err
		}
		nops, err := num(i + 4)
		if err != nil {
			return err
		}
		end := i + 4 + nops
		i += 5
		meta, err := key(kb + 1)
		if err != nil {
			return err
		}
		v, err := luaNumber(vs)
		if err != nil {
			return err
		}
		if cur[t] < v {
			x := 1 // the last op's key (ops.lua)
			// The field or member of the last op, when that op was a '>'
			// op of one item (ops.lua's m): >z0= and >zr= repeat it.
			item, itemOK := "", false
			for i <= end {
				op, err := argv(i)
				if err != nil {
					return err
				}
				if op == opZAdd0Again || op == opZRemAgain {
					if !itemOK {
						return errNativeArgs // ops.lua: m is nil
					}
					x++
					k, err := key(kb + x)
					if err != nil {
						return err
					}
					if op == opZAdd0Again {
						err = n.call(p, "ZADD", k, "0", item)
					} else {
						err = n.call(p, "ZREM", k, item)
					}
					if err != nil {
						return err
					}
					i++
					continue
				}
				name, per, several, next := nativeOp(op)
				if name == "" {
					return fmt.Errorf("projections: unknown op %s", op)
				}
				j := i + 1
				if next {
					x++
				} else {
					if x, err = num(j); err != nil {
						return err
					}
					j++
				}
				k, err := key(kb + x)
				if err != nil {
					return err
				}
				items := 1
				if several {
					if items, err = num(j); err != nil {
						return err
					}
					j++
				}
				cmd := append(n.cmd[:0], name, k)
				if op == ">z0" {
					cmd = append(cmd, "0")
				}
				for end := j + per*items; j < end; j++ {
					a, err := argv(j)
					if err != nil {
						return err
					}
					cmd = append(cmd, a)
				}
				n.cmd = cmd
				item, itemOK = "", false
				if next && !several {
					item, itemOK = cmd[len(cmd)-1], true // a member
					if name == "HSET" {
						item = cmd[2] // the field
					}
				}
				if err := n.call(p, cmd...); err != nil {
					return err
				}
				i = j
			}
			if err := n.call(p, "HSET", meta, "version", vs); err != nil {
				return err
			}
		}
		i = end + 1
		if tid != "" {
			if err := n.call(p, "SADD", tenants, tid); err != nil {
				return err
			}
		}
		kb += nkeys
	}
	pos, err := argv(1)
	if err != nil {
		return err
	}
	pv, err := luaNumber(pos)
	if err != nil {
		return err
	}
	c, err := n.number(p, "GET", ck)
	if err != nil {
		return err
	}
	if pv > c {
		return n.call(p, "SET", ck, pos)
	}
	return nil
}

// nativeOp is the command of an op of ops.lua, the arguments of each of
// its items (of its member only for >z0: the score is 0), whether it is an
// op of several (its count first) and whether it is on the key after the
// last op's (it names no key).
func nativeOp(op string) (name string, per int, several, next bool) {
	next = strings.HasPrefix(op, ">")
	base := strings.TrimPrefix(op, ">")
	several = strings.HasSuffix(base, "*")
	base = strings.TrimSuffix(base, "*")
	switch base {
	case "hs":
		name, per = "HSET", 2
	case "hd":
		name, per = "HDEL", 1
	case "za":
		name, per = "ZADD", 2
	case "zr":
		name, per = "ZREM", 1
	case "z0":
		if !next || several {
			return "", 0, false, false
		}
		name, per = "ZADD", 1
	default:
		return "", 0, false, false
	}
	return name, per, several, next
}

// call runs one command as the script's redis.call would, and returns its
// error reply as an error.
func (n *NativeFlusher) call(p *server.Peer, args ...string) error {
	_, err := n.reply(p, args...)
	return err
}

// number runs a command that answers a string or nil and reads the answer
// as Lua's tonumber(reply or '0') does.
func (n *NativeFlusher) number(p *server.Peer, args ...string) (float64, error) {
	r, err := n.reply(p, args...)
	if err != nil {
		return 0, err
	}
	if r == nil {
		return 0, nil
	}
	return luaNumber(string(r))
}

// reply dispatches a command and returns its bulk string reply (nil for a
// nil or non-bulk reply) or its error reply. The bytes are valid until the
// next command.
func (n *NativeFlusher) reply(p *server.Peer, args ...string) ([]byte, error) {
	n.commands++
	n.argv = append(n.argv[:0], args...)
	n.out.Reset()
	n.writer().Reset(&n.out)
	n.srv.Dispatch(p, n.argv)
	_ = n.w.Flush()
	b := n.out.Bytes()
	if len(b) == 0 {
		return nil, errors.New("ERR seatledger: no reply from " + args[0])
	}
	switch b[0] {
	case '-':
		return nil, errors.New(string(bytes.TrimRight(b[1:], "\r\n")))
	case '$':
		hdr, rest, ok := bytes.Cut(b[1:], []byte("\r\n"))
		if !ok {
			return nil, errors.New("ERR seatledger: malformed reply")
		}
		size, err := strconv.Atoi(string(hdr))
		if err != nil || size < 0 {
			return nil, nil
		}
		if len(rest) < size {
			return nil, errors.New("ERR seatledger: short reply")
		}
		return rest[:size], nil
	}
	return nil, nil
}

// luaNumber is Lua's tonumber of a number Redis gave as a string; a value
// that is not a number fails, as the script's comparison with nil does.
func luaNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("ERR seatledger: %q is not a number", s)
	}
	return v, nil
}

// argString is an argument as go-redis sends it.
func argString(a any) (string, error) {
	switch v := a.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case int:
		return strconv.Itoa(v), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("projections: cannot send a %T to the in-process Redis", a)
}
