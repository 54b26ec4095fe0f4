// Package postgres implements eventstore.Store and eventstore.SnapshotStore
// on PostgreSQL (pgx/v5), so that several seatledger processes can share one
// event store.
//
// Layout (in one schema, "seatledger" by default; schema v2):
//
//	events(position bigint PK, stream, version, id uuid UNIQUE, type,
//	       recorded_at, data bytea, UNIQUE (stream, version))
//	meta(tx_offset)                see Positions
//	snapshots(stream, version, schema, data, PK (stream, version))
//	append_events(...)             one append, in PL/pgSQL
//	append_batch(...)              a group of appends, set-based
//	append_known(...)              a group of appends to known heads
//
// # Positions
//
// No lock is shared by appends of different streams. An event's position
// is
//
//	position = (xid + tx_offset) << 16 | idx
//
// where xid is the id (xid8) of the transaction that appended it and idx
// its index among the events that transaction appends (at most 65,536; a
// larger append fails with eventstore.ErrTooLarge). The events of one
// transaction are contiguous and in order; positions need not be
// contiguous across transactions. tx_offset (one row in meta) is set when
// the schema is created so that every later position is above every stored
// one (and moved again by Open if a dump is restored into a cluster whose
// transaction ids are behind; appends refuse until then).
//
// # The global log and the gap problem
//
// Transactions commit in any order, so an event with a smaller position can
// become visible after one with a larger position. A reader that went past
// the larger one would skip the smaller one for good. The store reads the
// global log only up to the visibility horizon:
//
//	horizon = (pg_snapshot_xmin(pg_current_snapshot()) + tx_offset) << 16
//
// pg_snapshot_xmin is the oldest transaction id still running, taken from
// the very snapshot the read runs on: every transaction with a smaller id
// has ended, its events (if it committed) are visible to that snapshot,
// and no new event can ever get a position below the horizon. So:
//
//   - ReadAll(after) returns the events with after < position < horizon,
//     in position order: a prefix of what the log will ever hold after
//     `after`, never with a hole that fills later.
//   - A subscriber that has delivered up to p and resumes strictly after p
//     (the checkpoint is the Position alone; it encodes the pair
//     (transaction id, index)) gets every later event exactly once: p was
//     below an earlier horizon, and everything appearing later is at or
//     above that horizon, hence above p.
//   - Positions of one stream grow with its versions: an append's
//     positions must be above the stream's last event's. A transaction
//     that takes its id after reading the stream's head always has a
//     larger id than the transaction that wrote it; when a group's
//     transaction took its id earlier and another transaction with a
//     larger id appended to the stream since, that append is run again
//     alone, in a new transaction (outcome 3 of append_events).
//
// The price: the horizon is cluster-wide. Any transaction that has written
// something (in any database of the PostgreSQL server) and is still open
// holds back the global log for every transaction that began after it:
// their events are committed and readable by stream, but ReadAll and
// subscriptions deliver them only once it ends. Appends wait up to
// Options.VisibleWait (default 1 s) for their events to enter the log, so
// that a read of the log after an Append sees it; after that Append returns
// success anyway (the events are committed and will be delivered). Keep
// write transactions of other applications on the same server short
// (idle_in_transaction_session_timeout helps).
//
// # Appends
//
// A stream's optimistic concurrency is its unique (stream, version): an
// append reads the stream's head, checks the expected version and the
// event IDs (idempotent retries), and inserts its first event at the next
// version with ON CONFLICT DO NOTHING: a concurrent append of the same
// stream that took that version makes it wait for that commit, then look
// again (conflict, retry, or with Any the next version).
//
// Appends of one Store are committed by Options.Writers goroutines (default
// 1; the connection string's writers parameter), each taking up to 64 concurrent appends per transaction (group
// commit): one statement, append_batch, which reads the heads of the whole
// group at once and inserts the events of the appends that need nothing
// more with one plain INSERT (no arbiter probe; if a version is taken or
// an ID stored, it fails, and those appends claim their streams with an
// INSERT arbitrated on (stream, version) only); the others go through
// append_events in the same transaction. A Store remembers, per stream,
// the version and position of the last event it appended (up to 65,536
// streams): an append that expects that version (or version 0) does not
// read its stream's head. Its INSERT of the next version succeeds only if
// that version was the head; if another append has taken it, the append
// goes through append_events, which reads the head. Events are never
// removed, so what a Store remembers stays true, unless the schema is
// restored from an older backup: a restore that recreates the events
// table (pg_restore) makes append_batch and append_known ignore what
// Stores opened before it remember; restart every node after a restore
// anyway.
//
// A group whose every append has a known head, one append per stream (the
// common case under load: each append continues what this Store appended),
// skips even that: append_known inserts its events with one INSERT,
// reading and deciding nothing (the Store computes the versions and
// positions). If another Store took a version or an ID is stored, the
// INSERT fails, nothing is written, and the group goes through
// append_batch.
//
// Stored event IDs are not looked up for the group: the unique index on id
// refuses a reused one, and the group is then run again one append at a
// time, where append_events tells an idempotent retry from a conflict. Groups sort their appends by
// stream, so two groups wait for each other in one order and cannot
// deadlock.
//
// An append returns once its transaction is below the horizon. The Store
// learns the horizon mostly without asking: every append statement
// returns the horizon of its snapshot, a group that commits with no older
// transaction running shows that every id up to its own has ended, and
// other Stores' notifications carry what they know. A group committed by
// append_known also names the older transactions still running at its
// end; when those are this Store's own (its other writer's group, the
// usual case), it enters the log as soon as they have committed. The
// Store asks the server (at most once a millisecond) only for what that
// leaves waiting.
//
// # Subscriptions
//
// Subscriptions read batches after their position; when caught up they wait
// for a wake-up or a poll interval (200 ms by default), so a lost
// notification only delays delivery. A Store wakes its own subscriptions
// when its appends enter the log, and tells other processes with one
// NOTIFY at a time, at most one per 2 ms, sent outside the append
// transactions (a transaction that notifies holds a database-wide lock
// through its commit, which would make appends commit one at a time
// again); each Store LISTENs on one connection once something subscribes
// or waits for visibility, and ignores its own notifications.
//
// # Migration
//
// Open migrates a schema v1 (made by seatledger before this design: a
// head row and one advisory lock per append) in place: it waits for v1
// appends in flight, keeps every stored event and position, sets
// tx_offset above them, drops the head row and replaces v1's append
// function with a stub that fails with "was upgraded to v2 by a newer
// seatledger; upgrade this process". Stop every older process before
// starting a newer one on the same schema: their appends fail, and their
// reads of the global log do not honour the horizon.
//
// Use: SEATLEDGER_EVENTSTORE=postgres://user@host:5432/db?sslmode=disable
// (IsURL recognises it); add &schema=name to use another schema, e.g. a
// fresh one per test run, removed afterwards with DropSchema. Several
// processes may open the same schema at once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seatledger/seatledger/eventstore"
)

// DefaultSchema is the schema the store uses unless told otherwise.
const DefaultSchema = "seatledger"

// SchemaParam is the connection-string query parameter naming the schema
// (postgres://host/db?schema=name). It is removed before connecting.
const SchemaParam = "schema"

// WritersParam is the connection-string query parameter setting
// Options.Writers (postgres://host/db?writers=2), from 1 to MaxWriters.
// It is removed before connecting.
const WritersParam = "writers"

// MaxWriters bounds Options.Writers as WritersParam gives it.
const MaxWriters = 16

// Options tune Open.
type Options struct {
	// Schema holds the store's tables; created if missing. Default: the
	// connection string's "schema" parameter, else DefaultSchema.
	Schema string
	// PollInterval bounds how long a caught-up subscription waits when a
	// notification is lost. Default 200 ms.
	PollInterval time.Duration
	// ReadBatch is how many events a subscription reads per query.
	// Default 512.
	ReadBatch int
	// MaxConns caps the connection pool (0: the connection string's
	// pool_max_conns, else pgxpool's default raised to Writers+4). Each
	// Store also uses one connection for LISTEN once something subscribes.
	MaxConns int32
	// Writers is how many group-commit transactions one Store runs at a
	// time (0: the connection string's WritersParam, else 1). One writer
	// costs the least CPU per event: every group commits "clear" of the
	// Store's own transactions and holds up to 64 appends. With the
	// PostgreSQL server on the same two cores it also had the most
	// events/s and the lowest subscription lag (docs/BENCHMARKS.md,
	// session 11); more writers overlap commits, which may pay when the
	// server has cores of its own and commits wait on the network.
	Writers int
	// VisibleWait bounds how long Append waits, after its commit, for its
	// events to enter the global log (for every transaction that began
	// before its own to end, anywhere on the server). The append is
	// committed either way; subscriptions deliver it once it is in.
	// Default 1 s.
	VisibleWait time.Duration
}

// Store is a PostgreSQL-backed event store. It is safe for concurrent use,
// also by several processes sharing the database and schema.
type Store struct {
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig
	n         names
	opts      Options

	qAppend, qReadFwd, qReadBwd, qVersion, qReadAll, qHorizon, qBatch, qKnown string
	qSnapSave, qSnapLoad, qSnapDel, qSnapDelAll                               string

	rootCtx context.Context
	cancel  context.CancelFunc

	mu         sync.Mutex
	closed     bool
	closedCh   chan struct{}
	listening  bool
	listenDone chan struct{}

	notifyMu sync.Mutex
	notifyCh chan struct{}

	reqs        chan *appendReq
	writers     sync.WaitGroup
	appendsDone chan struct{} // closed when writers and visibility are done

	visMu   sync.Mutex
	pending []pendingVis
	// seenXmin is the largest horizon (a pg_snapshot_xmin: every
	// transaction id below it has ended) this Store has seen, mostly from
	// its append statements: under load the visibility waiter need not
	// ask the server.
	seenXmin atomic.Int64
	// ended holds the ids of this Store's transactions that ended last
	// (a ring; endedNext is the next slot): a pending transaction that
	// waits only for them is in the global log.
	ended     [64]int64
	endedNext int
	visKick   chan struct{}
	visStop   chan struct{}
	visDone   chan struct{}

	notifyKick   chan struct{}
	notifierDone chan struct{}

	// heads: see knownHeads. eventsRel is the events table's oid when
	// the Store opened: append_batch and append_known ignore the known
	// heads if the table was replaced since (a backup restored).
	heads     knownHeads
	eventsRel uint32
	// token is the payload of this Store's notifications.
	token string
}

var (
	_ eventstore.Store         = (*Store)(nil)
	_ eventstore.SnapshotStore = (*Store)(nil)
)

// IsURL reports whether s is a PostgreSQL connection URL (postgres:// or
// postgresql://), i.e. whether SEATLEDGER_EVENTSTORE selects this store.
func IsURL(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to PostgreSQL and creates the store's schema if missing.
// connString is a postgres:// or postgresql:// URL (any form pgx accepts
// works); its "schema" query parameter, if any, names the schema. A server
// that cannot be reached gives an error wrapping eventstore.ErrUnavailable.
func Open(ctx context.Context, connString string) (*Store, error) {
	return OpenOptions(ctx, connString, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, connString string, opts Options) (*Store, error) {
	conn, urlSchema, urlWriters, err := splitSchema(strings.TrimSpace(connString))
	if err != nil {
		return nil, err
	}
	if opts.Schema == "" {
		opts.Schema = urlSchema
	}
	if opts.Writers <= 0 {
		opts.Writers = urlWriters
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if err := validSchema(opts.Schema); err != nil {
		return nil, err
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.ReadBatch <= 0 {
		opts.ReadBatch = 512
	}
	if opts.Writers <= 0 {
		opts.Writers = 1
	}
	if opts.VisibleWait <= 0 {
		opts.VisibleWait = time.Second
	}
	cfg, err := pgxpool.ParseConfig(conn)
	if err != nil {
		return nil, fmt.Errorf("eventstore: postgres connection string: %w", err)
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(conn, "pool_max_conns"):
		// Writers, the visibility waiter and the notifier, and room for
		// reads.
		cfg.MaxConns = max(cfg.MaxConns, int32(opts.Writers+4))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	// append_events relies on each of its statements seeing the appends
	// committed before it (fresh snapshots per statement), and reads of the
	// global log on a snapshot per statement.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "seatledger"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres: %v", eventstore.ErrUnavailable, err)
	}
	n := newNames(opts.Schema)
	if err := migrate(ctx, pool, n); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify("migrate schema "+opts.Schema, err)
	}
	var eventsRel uint32
	if err := pool.QueryRow(ctx, "SELECT $1::regclass::oid", n.events).Scan(&eventsRel); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify("open schema "+opts.Schema, err)
	}
	root, cancel := context.WithCancel(context.Background())
	cols := "position, stream, version, id, type, recorded_at, data"
	s := &Store{
		pool:         pool,
		listenCfg:    cfg.ConnConfig.Copy(),
		n:            n,
		opts:         opts,
		rootCtx:      root,
		cancel:       cancel,
		closedCh:     make(chan struct{}),
		notifyCh:     make(chan struct{}),
		reqs:         make(chan *appendReq),
		appendsDone:  make(chan struct{}),
		visKick:      make(chan struct{}, 1),
		visStop:      make(chan struct{}),
		visDone:      make(chan struct{}),
		notifyKick:   make(chan struct{}, 1),
		notifierDone: make(chan struct{}),
		token:        uuid.NewString(),
		heads:        knownHeads{m: make(map[string]knownHead)},
		eventsRel:    eventsRel,

		qAppend:  "SELECT o_outcome, o_version, o_position, o_xid, o_clear, " + xminSQL + " FROM " + n.appendFn + "($1, $2, $3, $4, $5, $6)",
		qReadFwd: "SELECT " + cols + " FROM " + n.events + " WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3",
		qReadBwd: "SELECT " + cols + " FROM " + n.events + " WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3",
		qVersion: "SELECT coalesce(max(version), 0) FROM " + n.events + " WHERE stream = $1",
		qReadAll: "SELECT " + cols + " FROM " + n.events + " WHERE position > $1 AND position < (SELECT " +
			horizonSQL + " FROM " + n.meta + " m) ORDER BY position LIMIT $2",
		qBatch:      "SELECT o_outcome, o_version, o_position, o_xid, o_clear, " + xminSQL + " FROM " + n.batchFn + "($1, $2, $3, $4, $5, $6, $7, $8)",
		qKnown:      "SELECT o_base, o_xid, o_clear, o_older, " + xminSQL + " FROM " + n.knownFn + "($1, $2, $3, $4, $5, $6, $7)",
		qHorizon:    "SELECT " + xminSQL,
		qSnapSave:   "INSERT INTO " + n.snaps + " (stream, version, schema, data) VALUES ($1, $2, $3, $4) ON CONFLICT (stream, version) DO UPDATE SET schema = EXCLUDED.schema, data = EXCLUDED.data",
		qSnapLoad:   "SELECT version, schema, data FROM " + n.snaps + " WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT 1",
		qSnapDel:    "DELETE FROM " + n.snaps + " WHERE stream = $1",
		qSnapDelAll: "DELETE FROM " + n.snaps,
	}
	for range opts.Writers {
		s.writers.Add(1)
		go s.writer()
	}
	go s.visibility()
	go s.notifier()
	return s, nil
}

// splitSchema removes the schema and writers parameters from a URL
// connection string, and returns them (writers 0: not given).
func splitSchema(conn string) (rest, schema string, writers int, err error) {
	if !IsURL(conn) {
		return conn, "", 0, nil
	}
	u, err := url.Parse(conn)
	if err != nil {
		return "", "", 0, errors.New("eventstore: postgres connection string is not a valid URL")
	}
	q := u.Query()
	if !q.Has(SchemaParam) && !q.Has(WritersParam) {
		return conn, "", 0, nil
	}
	schema = q.Get(SchemaParam)
	if q.Has(WritersParam) {
		w, err := strconv.Atoi(q.Get(WritersParam))
		if err != nil || w < 1 || w > MaxWriters {
			return "", "", 0, fmt.Errorf("eventstore: postgres connection string: %s must be a whole number from 1 to %d", WritersParam, MaxWriters)
		}
		writers = w
	}
	q.Del(SchemaParam)
	q.Del(WritersParam)
	u.RawQuery = q.Encode()
	return u.String(), schema, writers, nil
}

// Schema returns the schema the store uses.
func (s *Store) Schema() string { return s.opts.Schema }

// DropSchema drops a store's schema and everything in it (for tests that
// give every run a fresh schema). Stores using it must be closed.
func DropSchema(ctx context.Context, connString, schema string) error {
	conn, urlSchema, _, err := splitSchema(strings.TrimSpace(connString))
	if err != nil {
		return err
	}
	if schema == "" {
		schema = urlSchema
	}
	if err := validSchema(schema); err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return classify("connect", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return classify("drop schema", err)
	}
	return nil
}

// Close implements eventstore.Store: subscriptions end with ErrClosed, later
// calls return ErrClosed. It waits for calls in flight to release their
// connections.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closedCh)
	listening := s.listening
	s.mu.Unlock()
	s.cancel()
	if listening {
		<-s.listenDone
	}
	// Appends already committed are completed (with their results) by the
	// visibility goroutine as it stops.
	s.writers.Wait()
	close(s.visStop)
	<-s.visDone
	close(s.appendsDone)
	<-s.notifierDone
	s.pool.Close()
	return nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closedCh:
		return true
	default:
		return false
	}
}

// Ping implements eventstore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	return s.mapErr(ctx, "ping", s.pool.Ping(ctx))
}

// ---- errors

// mapErr turns pgx errors into the contract's errors.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return classify(op, err)
}

func classify(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if unavailableCode(pe.Code) {
			return fmt.Errorf("%w: postgres %s: %v", eventstore.ErrUnavailable, op, err)
		}
		return fmt.Errorf("eventstore: postgres %s: %w", op, err)
	}
	// Errors without a server error code are connection failures (refused,
	// reset, timed out, closed).
	return fmt.Errorf("%w: postgres %s: %v", eventstore.ErrUnavailable, op, err)
}

// unavailableCode reports SQLSTATEs worth retrying later.
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources (disk full, too many connections)
		return true
	case strings.HasPrefix(code, "58"): // system error (I/O)
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03", // admin/crash shutdown, cannot connect now
		"40001", "40P01", // serialization failure, deadlock
		"55P03", // lock not available
		"25006": // read-only transaction (hot standby)
		return true
	}
	return false
}

// ---- reads

func limitArg(limit int) *int64 {
	if limit <= 0 {
		return nil // LIMIT NULL: no limit
	}
	l := int64(limit)
	return &l
}

func (s *Store) query(ctx context.Context, op, sql string, args ...any) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, s.mapErr(ctx, op, err)
	}
	defer rows.Close()
	var out []eventstore.RecordedEvent
	for rows.Next() {
		var (
			e        eventstore.RecordedEvent
			pos, ver int64
			id       [16]byte
		)
		if err := rows.Scan(&pos, &e.Stream, &ver, &id, &e.Type, &e.RecordedAt, &e.Data); err != nil {
			return nil, s.mapErr(ctx, op, err)
		}
		e.Position = eventstore.Position(pos)
		e.Version = uint64(ver)
		e.ID = uuid.UUID(id).String()
		e.RecordedAt = e.RecordedAt.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(ctx, op, err)
	}
	return out, nil
}

func clampI64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// ReadStream implements eventstore.Store. limit <= 0 means no limit.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	return s.query(ctx, "read stream", s.qReadFwd, stream, clampI64(from), limitArg(limit))
}

// ReadStreamBackward implements eventstore.Store. limit <= 0 means no limit.
func (s *Store) ReadStreamBackward(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if from == 0 {
		from = math.MaxInt64
	}
	return s.query(ctx, "read stream backward", s.qReadBwd, stream, clampI64(from), limitArg(limit))
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if s.isClosed() {
		return 0, eventstore.ErrClosed
	}
	var v int64
	if err := s.pool.QueryRow(ctx, s.qVersion, stream).Scan(&v); err != nil {
		return 0, s.mapErr(ctx, "stream version", err)
	}
	return uint64(v), nil
}

// xminSQL is the oldest transaction id running when the statement's
// snapshot was taken: every transaction with a smaller id has ended. In an
// append statement it is taken before the append runs, so it never passes
// the append's own transaction.
const xminSQL = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

// horizonSQL is the first position not yet in the global log: the
// positions of the oldest running transaction (m is the meta row). Every
// transaction with a smaller id has ended, so no event below it can appear
// any more.
var horizonSQL = fmt.Sprintf("(pg_snapshot_xmin(pg_current_snapshot())::text::bigint + m.tx_offset) << %d", idxBits)

// ReadAll implements eventstore.Store. limit <= 0 means no limit. It reads
// the global log up to the visibility horizon (see the package doc): an
// event whose transaction began after one still running is not read yet.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if uint64(after) >= math.MaxInt64 {
		if s.isClosed() {
			return nil, eventstore.ErrClosed
		}
		return nil, nil
	}
	return s.query(ctx, "read all", s.qReadAll, int64(after), limitArg(limit))
}

// ---- snapshots

// SaveSnapshot implements eventstore.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := validStream(snap.Stream); err != nil {
		return err
	}
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	_, err := s.pool.Exec(ctx, s.qSnapSave, snap.Stream, clampI64(snap.Version), int32(snap.Schema), data)
	return s.mapErr(ctx, "save snapshot", err)
}

// LoadSnapshot implements eventstore.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, maxVersion uint64) (eventstore.Snapshot, bool, error) {
	if s.isClosed() {
		return eventstore.Snapshot{}, false, eventstore.ErrClosed
	}
	if maxVersion == 0 {
		maxVersion = math.MaxInt64
	}
	snap := eventstore.Snapshot{Stream: stream}
	var ver int64
	var schema int32
	err := s.pool.QueryRow(ctx, s.qSnapLoad, stream, clampI64(maxVersion)).Scan(&ver, &schema, &snap.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Snapshot{}, false, nil
	}
	if err != nil {
		return eventstore.Snapshot{}, false, s.mapErr(ctx, "load snapshot", err)
	}
	snap.Version, snap.Schema = uint64(ver), int(schema)
	return snap, true, nil
}

// DeleteSnapshots implements eventstore.SnapshotStore.
func (s *Store) DeleteSnapshots(ctx context.Context, stream string) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	var err error
	if stream == "" {
		_, err = s.pool.Exec(ctx, s.qSnapDelAll)
	} else {
		_, err = s.pool.Exec(ctx, s.qSnapDel, stream)
	}
	return s.mapErr(ctx, "delete snapshots", err)
}
