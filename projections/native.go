package projections

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"
)

// The in-process Redis (miniredis) runs Lua in a Go interpreter: a fresh
// interpreter and a compile of the script per call, and per redis.call a
// reply written and parsed back through new buffers. The flush script's
// calls were a quarter of the zero-setup server's CPU. On an in-process
// Redis set up with ServeFlushNatively the projection stages each flush's
// KEYS and ARGV in memory and calls a one-line script whose one
// redis.call runs a Go port of flush.lua (nativeFlush.apply) on them:
// inside the script's run, so as atomic as the Lua flush (miniredis holds
// its lock for a script's whole run), with the same commands on the same
// keys in the same order.

// nativeFlushCommand is the command the wrapper script calls.
const nativeFlushCommand = "SEATLEDGER.FLUSH"

// nativeFlushScript calls the flush staged under ARGV[1].
var nativeFlushScript = redis.NewScript("return redis.call('" + nativeFlushCommand + "', ARGV[1])")

// nativeFlushers maps the address of each in-process Redis set up with
// ServeFlushNatively to its flusher.
var nativeFlushers sync.Map // string → *nativeFlusher

// ServeFlushNatively sets up the in-process Redis m (started) to run the
// projection's flushes in Go: a Projection whose Redis client connects to
// m's address (one node, no PerTenantWrites) uses it. The read models are
// the same, byte for byte. release forgets m (call it when m is closed).
func ServeFlushNatively(m *miniredis.Miniredis) (release func(), err error) {
	n := &nativeFlusher{srv: m.Server(), staged: map[string]*stagedFlush{}}
	if err := m.Server().Register(nativeFlushCommand, n.command); err != nil {
		return nil, fmt.Errorf("projections: in-process Redis: %w", err)
	}
	addr := m.Addr()
	nativeFlushers.Store(addr, n)
	return func() { nativeFlushers.CompareAndDelete(addr, n) }, nil
}

// nativeFlusherFor returns the flusher of the in-process Redis rdb talks
// to, or nil.
func nativeFlusherFor(rdb redis.UniversalClient) *nativeFlusher {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return nil
	}
	n, _ := nativeFlushers.Load(c.Options().Addr)
	f, _ := n.(*nativeFlusher)
	return f
}

type nativeFlusher struct {
	srv    *server.Server
	mu     sync.Mutex
	staged map[string]*stagedFlush // by token
	// Buffers of apply; the script's lock serializes applies.
	out  bytes.Buffer
	w    *bufio.Writer
	argv []string
}

// stagedFlush is a flush's KEYS and ARGV as flushOnce builds them. mu is
// held while it is applied, so that flush does not return (and reuse the
// slices) while a late command still reads them.
type stagedFlush struct {
	mu   sync.Mutex
	keys []string
	args []any
}

// flush applies keys and args (flush.lua's) through the in-process Redis.
func (n *nativeFlusher) flush(ctx context.Context, rdb redis.Scripter, keys []string, args []any) error {
	var raw [16]byte
	_, _ = crand.Read(raw[:])
	token := hex.EncodeToString(raw[:]) // not guessable: only this call applies it
	f := &stagedFlush{keys: keys, args: args}
	n.mu.Lock()
	n.staged[token] = f
	n.mu.Unlock()
	err := nativeFlushScript.Run(ctx, rdb, nil, token).Err()
	n.mu.Lock()
	delete(n.staged, token)
	n.mu.Unlock()
	f.mu.Lock() // wait out an apply still running
	f.mu.Unlock()
	return err
}

// command is SEATLEDGER.FLUSH token, called by nativeFlushScript.
func (n *nativeFlusher) command(c *server.Peer, cmd string, args []string) {
	if len(args) != 1 {
		c.WriteError("ERR wrong number of arguments for '" + cmd + "' command")
		return
	}
	n.mu.Lock()
	f := n.staged[args[0]]
	delete(n.staged, args[0])
	if f != nil {
		f.mu.Lock()
	}
	n.mu.Unlock()
	if f == nil {
		c.WriteError("ERR seatledger: no flush staged under this token")
		return
	}
	defer f.mu.Unlock()
	// The commands run as the script's own redis.calls: on the script's
	// connection state (database, and no lock taken again).
	p := server.NewPeer(n.writer())
	p.Ctx = c.Ctx
	if err := n.apply(p, f.keys, f.args); err != nil {
		c.WriteError(err.Error())
		return
	}
	c.WriteInt(1)
}

func (n *nativeFlusher) writer() *bufio.Writer {
	if n.w == nil {
		n.w = bufio.NewWriter(&n.out)
	}
	return n.w
}

// errNativeArgs is a KEYS/ARGV layout flush.lua would fail on.
var errNativeArgs = errors.New("ERR seatledger: malformed flush arguments")

// apply is flush.lua: for each tenant, if its meta hash's version is below
// the new one, its ops and then the version; the tenant added to the
// tenant set; then the checkpoint moved forward.
func (n *nativeFlusher) apply(p *server.Peer, keys []string, args []any) error {
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
	if len(keys) < 2 {
		return errNativeArgs
	}
	tenants, ck := keys[len(keys)-2], keys[len(keys)-1]
	nt, err := num(2)
	if err != nil {
		return err
	}
	i, kb := 3, 0
	for range nt {
		nkeys, err := num(i)
		if err != nil {
			return err
		}
		vs, err := argv(i + 1)
		if err != nil {
			return err
		}
		tid, err := argv(i + 2)
		if err != nil {
			return err
		}
		nops, err := num(i + 3)
		if err != nil {
			return err
		}
		end := i + 3 + nops
		i += 4
		meta, err := key(kb + 1)
		if err != nil {
			return err
		}
		cur, err := n.number(p, "HGET", meta, "version")
		if err != nil {
			return err
		}
		v, err := luaNumber(vs)
		if err != nil {
			return err
		}
		if cur < v {
			for i <= end {
				op, err := argv(i)
				if err != nil {
					return err
				}
				ki, err := num(i + 1)
				if err != nil {
					return err
				}
				k, err := key(kb + ki)
				if err != nil {
					return err
				}
				a, err := argv(i + 2)
				if err != nil {
					return err
				}
				switch op {
				case "hs", "za":
					b, err := argv(i + 3)
					if err != nil {
						return err
					}
					name := "HSET"
					if op == "za" {
						name = "ZADD"
					}
					err = n.call(p, name, k, a, b)
					if err != nil {
						return err
					}
					i += 4
				case "hd", "zr":
					name := "HDEL"
					if op == "zr" {
						name = "ZREM"
					}
					if err := n.call(p, name, k, a); err != nil {
						return err
					}
					i += 3
				default:
					return fmt.Errorf("projections: unknown op %s", op)
				}
			}
			if err := n.call(p, "HSET", meta, "version", vs); err != nil {
				return err
			}
		}
		i = end + 1
		if err := n.call(p, "SADD", tenants, tid); err != nil {
			return err
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
	cur, err := n.number(p, "GET", ck)
	if err != nil {
		return err
	}
	if pv > cur {
		return n.call(p, "SET", ck, pos)
	}
	return nil
}

// call runs one command as the script's redis.call would, and returns its
// error reply as an error.
func (n *nativeFlusher) call(p *server.Peer, args ...string) error {
	_, err := n.reply(p, args...)
	return err
}

// number runs a command that answers a string or nil and reads the answer
// as Lua's tonumber(reply or '0') does.
func (n *nativeFlusher) number(p *server.Peer, args ...string) (float64, error) {
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
func (n *nativeFlusher) reply(p *server.Peer, args ...string) ([]byte, error) {
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
