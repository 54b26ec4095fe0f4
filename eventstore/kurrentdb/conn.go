package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/seatledger/seatledger/eventstore"
)

// DefaultMaxAppendSize is the server's default MaxAppendSize (1 MiB): the
// largest append, event data, metadata and types together, it accepts.
const DefaultMaxAppendSize = 1 << 20

// Options tune a Store. The zero value is the default.
type Options struct {
	// Logger receives the client's log lines (default slog.Default()),
	// with component=kurrentdb.
	Logger *slog.Logger
	// MaxAppendSize is the server's MaxAppendSize setting (default
	// DefaultMaxAppendSize). Appends larger than it fail with
	// eventstore.ErrTooLarge before anything is sent; snapshots larger
	// than it are written in parts.
	MaxAppendSize int
}

// Store is a KurrentDB-backed event store.
//
// A supervisor keeps it alive: the client marks itself closed for good when
// a discovery fails (the server was unreachable for longer than
// maxDiscoverAttempts × (gossipTimeout + discoveryInterval)); the Store then
// builds a new client from the same configuration, so an outage of any
// length ends when the server is back. Every call runs under a recover
// guard and waits for the client only as long as the caller's ctx allows.
type Store struct {
	cfg       kdb.Configuration
	log       *slog.Logger
	maxAppend int

	mu     sync.Mutex
	client *kdb.Client
	gen    uint64 // bumped on every rebuild
	fatal  error  // the client can no longer be built (see Health)

	rebuilds  atomic.Uint64
	panics    atomic.Uint64
	snapFails atomic.Uint64
	downSince atomic.Int64 // unix nanos of the first failure of an outage; 0: reachable

	closeOnce sync.Once
	closed    chan struct{}
	rootCtx   context.Context
	cancel    context.CancelFunc
}

var (
	_ eventstore.Store         = (*Store)(nil)
	_ eventstore.SnapshotStore = (*Store)(nil)
)

// schemes are the connection-string schemes the client accepts.
var schemes = []string{"kurrentdb", "kurrent", "kdb", "esdb"}

// IsConnString reports whether conn is a KurrentDB connection string
// (kurrentdb://, kurrent://, kdb:// or esdb://, each also with +discover).
func IsConnString(conn string) bool {
	scheme, _, ok := strings.Cut(strings.TrimSpace(conn), "://")
	if !ok {
		return false
	}
	scheme = strings.TrimSuffix(strings.ToLower(scheme), "+discover")
	for _, s := range schemes {
		if scheme == s {
			return true
		}
	}
	return false
}

// NormalizeConnString trims conn and checks that its scheme is one the
// client accepts (see IsConnString).
func NormalizeConnString(conn string) (string, error) {
	conn = strings.TrimSpace(conn)
	if IsConnString(conn) {
		return conn, nil
	}
	return "", fmt.Errorf("eventstore: unsupported KurrentDB connection string %q (want kurrentdb://, kurrent://, kdb:// or esdb://, each optionally +discover)", redact(conn))
}

// redact hides the user information of a connection string: everything
// between the scheme and the last '@' before the host list (a password may
// itself contain '@').
func redact(conn string) string {
	j := strings.Index(conn, "://")
	if j < 0 {
		return conn
	}
	rest := conn[j+3:]
	end := len(rest)
	if k := strings.IndexAny(rest, "/?#"); k >= 0 {
		end = k
	}
	if i := strings.LastIndex(rest[:end], "@"); i >= 0 {
		return conn[:j+3] + "***" + rest[i:]
	}
	return conn
}

// Open connects to KurrentDB with default Options (the connection string
// comes from SEATLEDGER_EVENTSTORE).
func Open(connString string) (*Store, error) { return OpenOptions(connString, Options{}) }

// OpenOptions connects to KurrentDB. The client connects lazily; use Ping to
// check the server.
func OpenOptions(connString string, o Options) (*Store, error) {
	conn, err := NormalizeConnString(connString)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "kurrentdb")
	cfg, err := kdb.ParseConnectionString(conn)
	if err != nil {
		// url.Error quotes the whole string, and its reason can quote
		// part of the password (a bad %-escape): say neither.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = errors.New("not a valid URL")
		}
		return nil, fmt.Errorf("eventstore: parse KurrentDB connection string %q: %v", redact(conn), err)
	}
	if cfg.NodePreference != kdb.NodePreferenceLeader {
		// Appends need the leader, and reads after a write must not
		// see a follower's older copy.
		return nil, fmt.Errorf("eventstore: KurrentDB connection string %q: nodePreference=%s is not supported: seatledger reads and writes on the leader (leave nodePreference unset or set it to leader)", redact(conn), cfg.NodePreference)
	}
	cfg.Logger = slogLogging(log)
	if o.MaxAppendSize <= 0 {
		o.MaxAppendSize = DefaultMaxAppendSize
	}
	client, err := kdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("eventstore: kurrentdb: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{cfg: *cfg, log: log, maxAppend: o.MaxAppendSize, client: client,
		closed: make(chan struct{}), rootCtx: ctx, cancel: cancel}, nil
}

// slogLogging sends the client's log lines to log: its errors and warnings
// at Warn (the Store reports what they mean), the rest at Debug.
func slogLogging(log *slog.Logger) kdb.LoggingFunc {
	return func(level kdb.LogLevel, format string, args ...any) {
		lvl := slog.LevelDebug
		if level == kdb.LogError || level == kdb.LogWarn {
			lvl = slog.LevelWarn
		}
		if !log.Enabled(context.Background(), lvl) {
			return
		}
		log.Log(context.Background(), lvl, "client: "+fmt.Sprintf(format, args...))
	}
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		s.mu.Lock()
		c := s.client
		s.mu.Unlock()
		closeClient(c)
	})
	return nil
}

// closeClient closes c; a panic of the client is swallowed (Close must not
// crash the process on the way out).
func closeClient(c *kdb.Client) {
	defer func() { _ = recover() }()
	_ = c.Close()
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// current returns the client and its generation.
func (s *Store) current() (*kdb.Client, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return nil, 0, eventstore.ErrClosed
	}
	if s.fatal != nil {
		return nil, 0, fmt.Errorf("%w: kurrentdb: %v", eventstore.ErrUnavailable, s.fatal)
	}
	return s.client, s.gen, nil
}

// renew replaces the client of generation gen, which closed itself, with a
// new one built from the same configuration. A later generation is left
// alone (another call renewed it already).
func (s *Store) renew(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() || gen != s.gen || s.fatal != nil {
		return
	}
	cfg := s.cfg
	c, err := kdb.NewClient(&cfg)
	if err != nil {
		s.fatal = err
		s.log.Error("cannot rebuild the KurrentDB client", "err", err)
		return
	}
	old := s.client
	s.client, s.gen = c, s.gen+1
	n := s.rebuilds.Add(1)
	s.log.Warn("KurrentDB client closed itself after a failed discovery; built a new one", "rebuilds", n)
	go closeClient(old)
}

// Health reports whether the store can still recover (for /healthz): nil
// while the store is open and its client can be rebuilt, whether or not
// the server is reachable right now (see Ping for that).
func (s *Store) Health() error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal != nil {
		return fmt.Errorf("eventstore: kurrentdb client cannot be rebuilt: %v", s.fatal)
	}
	return nil
}

// Stats are counters of the store's supervisor.
type Stats struct {
	Rebuilds         uint64        // clients rebuilt after one closed itself
	Panics           uint64        // client panics recovered
	SnapshotFailures uint64        // SaveSnapshot calls that failed
	Down             time.Duration // how long the server has been unreachable (0: reachable)
}

// Stats returns the supervisor's counters.
func (s *Store) Stats() Stats {
	st := Stats{Rebuilds: s.rebuilds.Load(), Panics: s.panics.Load(), SnapshotFailures: s.snapFails.Load()}
	if d := s.downSince.Load(); d != 0 {
		st.Down = time.Since(time.Unix(0, d))
	}
	return st
}

// ---- calls

// errPanic marks an error made of a recovered client panic.
var errPanic = errors.New("client panic")

// clientClosed reports whether err says the client has closed itself (or is
// about to: a failed discovery closes it).
func clientClosed(err error) bool {
	if c, ok := code(err); ok && c == kdb.ErrorCodeConnectionClosed {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "maximum discovery attempt count reached")
}

// call runs f on the current client and returns its error as the contract
// maps it (see mapErr). f runs in its own goroutine under a recover guard;
// call returns when f does or when ctx is done, whichever comes first (the
// client can block inside on a discovery that ignores ctx: f then finishes
// on its own, its result dropped). A client that closed itself is rebuilt
// and, when the call never reached a server (ConnectionClosed), f is tried
// once more on the new one. retry allows one more try after Unavailable or
// NotLeader (the client reconnects to the leader it was told of): reads
// and appends refused before they were written set it.
func (s *Store) call(ctx context.Context, op string, retry bool, f func(ctx context.Context, c *kdb.Client) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("eventstore: kurrentdb %s: %w", op, err)
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		c, gen, cerr := s.current()
		if cerr != nil {
			return cerr
		}
		err = s.run(ctx, op, c, f)
		if err == nil {
			s.downSince.Store(0)
			return nil
		}
		if ctx.Err() != nil || s.isClosed() {
			break
		}
		if clientClosed(err) {
			s.renew(gen)
			if cd, ok := code(err); ok && cd == kdb.ErrorCodeConnectionClosed {
				continue // nothing was sent: try the new client
			}
			break
		}
		if !retry || attempt > 0 || !retryable(err) {
			break
		}
		if !sleep(ctx, 50*time.Millisecond) {
			break
		}
	}
	err = s.mapErr(ctx, op, err)
	if errors.Is(err, eventstore.ErrUnavailable) {
		s.downSince.CompareAndSwap(0, time.Now().UnixNano())
	}
	return err
}

// run runs f in a goroutine, recovering a panic, and waits for it or ctx.
func (s *Store) run(ctx context.Context, op string, c *kdb.Client, f func(ctx context.Context, c *kdb.Client) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				s.panics.Add(1)
				s.log.Error("KurrentDB client panicked; the call failed", "op", op, "panic", fmt.Sprint(r))
				done <- fmt.Errorf("%w: %v", errPanic, r)
			}
		}()
		done <- f(ctx, c)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return eventstore.ErrClosed
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ---- errors

func code(err error) (kdb.ErrorCode, bool) {
	var e *kdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func retryable(err error) bool {
	c, ok := code(err)
	return ok && (c == kdb.ErrorUnavailable || c == kdb.ErrorCodeNotLeader)
}

func isNotFound(err error) bool {
	c, ok := code(err)
	return ok && c == kdb.ErrorCodeResourceNotFound
}

func isDeleted(err error) bool {
	c, ok := code(err)
	return ok && (c == kdb.ErrorCodeStreamDeleted || c == kdb.ErrorCodeStreamTombstoned)
}

// tooLarge reports whether the server refused an append for its size.
func tooLarge(err error) bool {
	if c, ok := code(err); ok && (c == kdb.ErrorCodeAppendRecordSizeExceeded || c == kdb.ErrorCodeAppendTransactionSizeExceeded) {
		return true
	}
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "maximum append size")
}

// mapErr turns client errors into the contract's errors: the caller's
// ctx ending wins (context.Canceled / DeadlineExceeded, whatever the
// client made of it), then a closed store (ErrClosed), a deleted stream
// (ErrStreamDeleted), an oversize append (ErrTooLarge); connection-level
// failures and client panics are ErrUnavailable; the rest (access denied,
// a server bug) are plain errors.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("eventstore: kurrentdb %s: %w", op, ctx.Err())
	case s.isClosed() || errors.Is(err, eventstore.ErrClosed):
		return eventstore.ErrClosed
	case isDeleted(err):
		return fmt.Errorf("eventstore: kurrentdb %s: %w: %v", op, eventstore.ErrStreamDeleted, err)
	case tooLarge(err):
		return fmt.Errorf("eventstore: kurrentdb %s: %w: %v", op, eventstore.ErrTooLarge, err)
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrTooLarge),
		errors.Is(err, eventstore.ErrStreamDeleted), errors.Is(err, eventstore.ErrConflict):
		return err
	}
	if c, ok := code(err); ok {
		switch c {
		case kdb.ErrorCodeUnauthenticated, kdb.ErrorCodeAccessDenied, kdb.ErrorCodeUnsupportedFeature,
			kdb.ErrorCodeParsing, kdb.ErrorCodeInternalClient, kdb.ErrorCodeInternalServer:
			return fmt.Errorf("eventstore: kurrentdb %s: %w", op, err)
		}
	}
	// Unavailable, NotLeader, ConnectionClosed, DeadlineExceeded, Aborted,
	// a client panic, a bare transport error (EOF): the server could not
	// be reached or answer; retry later.
	return fmt.Errorf("%w: kurrentdb %s: %v", eventstore.ErrUnavailable, op, err)
}
