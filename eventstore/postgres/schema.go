package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrateLockKey guards schema creation in every database the store is used
// with (pg_advisory_xact_lock), so that processes opening the same schema at
// the same time do not race on the catalog.
const migrateLockKey int64 = 0x5ea71ed9e0000001

var schemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func validSchema(s string) error {
	if !schemaRE.MatchString(s) {
		return fmt.Errorf("eventstore: postgres schema name %q: want 1 to 63 letters, digits or underscores, not starting with a digit", s)
	}
	return nil
}

// names holds the identifiers of one schema's objects.
type names struct {
	schema   string // quoted
	events   string // quoted and qualified
	meta     string
	snaps    string
	appendFn string
	batchFn  string
	knownFn  string
	channel  string // LISTEN/NOTIFY channel (plain)
	// v1LockKey is the pg_advisory_xact_lock key that schema v1's appends
	// took; the migration to v2 takes it to wait for them.
	v1LockKey int64
}

func newNames(schema string) names {
	q := pgx.Identifier{schema}.Sanitize()
	h := fnv.New64a()
	h.Write([]byte(schema))
	sum := h.Sum64()
	return names{
		schema:    q,
		events:    q + ".events",
		meta:      q + ".meta",
		snaps:     q + ".snapshots",
		appendFn:  q + ".append_events",
		batchFn:   q + ".append_batch",
		knownFn:   q + ".append_known",
		channel:   fmt.Sprintf("seatledger_events_%016x", sum),
		v1LockKey: int64(sum &^ (1 << 63)),
	}
}

// Positions (see the package doc): position = tx<<idxBits | idx, where tx
// is the appending transaction's id (xid8) plus the schema's tx_offset and
// idx the event's index in that transaction.
const (
	idxBits = 16
	// maxTxEvents is how many events one transaction may append.
	maxTxEvents = 1 << idxBits
)

// Signatures of the append function: v1's (kept as a stub that refuses old
// binaries) and the current one.
const (
	appendSigV1 = "(text,bigint,uuid[],text[],bytea[])"
	appendSig   = "(text,bigint,uuid[],text[],bytea[],integer)"
	// batchSig is append_batch's since revision 5 (known heads);
	// batchSigRev4 the signature revisions 3 and 4 call, kept for them.
	batchSig     = "(text[],bigint[],integer[],uuid[],text[],bytea[],bigint[],oid)"
	batchSigRev4 = "(text[],bigint[],integer[],uuid[],text[],bytea[])"
	// knownSig is append_known's (revision 6).
	knownSig = "(text[],bigint[],uuid[],text[],bytea[],bigint,oid)"
)

// migration returns the idempotent DDL of a schema (schema v2), which also
// migrates a schema v1 in place (see migrate).
//
// append_events(stream, expected, ids, types, data, idx) does a whole append
// without any lock shared by other streams:
//
//  1. read the stream's head (its last version and position);
//  2. expected version and idempotency checks against it (the slow path,
//     taken only when expected does not match or an ID is already stored);
//  3. positions ((xid + tx_offset) << 16) + idx + i: the caller gives idx,
//     the first free index in its transaction;
//  4. INSERT of the first event ... ON CONFLICT DO NOTHING claims the
//     stream's next version (or meets an event ID already stored): a
//     concurrent append of the same stream holding it makes this one wait
//     for its commit, then go round again with a fresh snapshot (READ
//     COMMITTED) and find a conflict, a retry or, with Any, the next
//     version. Once the first event is in, no other append can take the
//     stream's next versions, so the other events are a plain INSERT.
//
// The positions of one stream grow with its versions: an append whose
// transaction took its id before another transaction that has appended to
// the stream since (possible only when the id was taken by an earlier
// append of the group, or before a lost race) writes nothing and answers
// 3: run it again alone, in a new transaction.
//
// append_batch does a group in one statement (and so one transaction of
// its own): it reads the heads of the whole group before the transaction
// takes its id, inserts every append that is the first of its stream in
// the group and expects the right version, and hands the others to
// append_events with the next free idx. p_known (revision 5) gives, per
// append, the position of the stream's event at the expected version when
// the caller knows it (it appended that event itself, or the expected
// version is 0): such an append's head is not read; its INSERT at the next
// version either succeeds (the expected version was the head) or meets
// the stream's next version and goes to append_events, which reads the
// head. p_rel is the events table's oid when the caller learnt those
// positions: if the table was replaced since (a backup restored), they
// are ignored. The six-argument append_batch of revisions 3 and 4 calls
// it with no known heads. The position
// indexes start at 0 in each call: neither function may be called twice
// in one transaction except as append_batch does.
//
// append_known (revision 6) does a group whose every append has a known
// head and a stream of its own: the caller gives each event's stream and
// version, the function takes the transaction's id and inserts the events
// at base + 0, 1, ... in one plain INSERT. A taken version or a stored ID
// fails the call (nothing is written; the caller runs the group through
// append_batch), and so do positions behind p_maxp, the largest known
// head position. It writes nothing and answers o_base NULL if the events
// table is not p_rel. Besides o_xid and o_clear it answers o_older, the
// transactions with smaller ids still running at its end (NULL when
// clear), so that the caller can tell when it enters the global log from
// the ends of its own transactions. The 8-argument append_batch carries
// revision 5's mark: revision 5 nodes neither rerun their DDL nor drop
// append_known.
//
// outcome is 0 (written, or nothing to write), 1 (idempotent retry: the
// events are already there; version/position are the original result),
// 2 (conflict: version is the stream's current version) or 3 (run again in
// a new transaction). xid is the
// transaction's id if it has one (0 if it wrote nothing), and clear tells
// that no transaction with a smaller id was running when the call ended, so
// that everything the transaction wrote is in the global log as soon as it
// commits.
// groupBase is PL/pgSQL that sets variable base to the first position of
// the calling transaction's group (its id, offset, shifted by idxBits),
// refusing ids that exhausted the position space or that are not above
// maxp, the largest position the caller knows (a schema restored into
// another cluster). Lines are indented by indent; the text still holds
// the {meta}, {idxbits} and {schema} placeholders.
func groupBase(indent, base, maxp string) string {
	lines := []string{
		"SELECT pg_current_xact_id()::text::bigint + m.tx_offset INTO " + base + " FROM {meta} m;",
		"IF " + base + " >= (1::bigint << (63 - {idxbits})) THEN",
		"\tRAISE EXCEPTION 'seatledger: transaction ids exhausted the position space of schema %', '{schema}';",
		"END IF;",
		base + " := " + base + " << {idxbits};",
		"IF " + base + " <= " + maxp + " THEN",
		"\tRAISE EXCEPTION 'seatledger: transaction ids of this server are behind the positions of schema % (restored into another cluster?): reopen the store', '{schema}'",
		"\t\tUSING ERRCODE = 'object_not_in_prerequisite_state';",
		"END IF;",
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(indent + l)
	}
	return b.String()
}

func (n names) migration() string {
	r := strings.NewReplacer(
		"{schema}", n.schema,
		"{events}", n.events,
		"{meta}", n.meta,
		"{head}", n.schema+".head",
		"{snaps}", n.snaps,
		"{append}", n.appendFn,
		"{batch}", n.batchFn,
		"{known}", n.knownFn,
		"{v1lock}", fmt.Sprint(n.v1LockKey),
		"{idxbits}", fmt.Sprint(idxBits),
		"{v1mark}", migrationMarkV1,
		"{mark}", migrationMark,
		"{oldmarks}", compatMarks,
		"{rev5mark}", compatMarkRev5,
	)
	// A group's first position, in append_batch's fast path and in
	// append_known: one text, so that their checks cannot drift apart
	// (expanded first: its text holds the placeholders above).
	g := strings.NewReplacer(
		"{groupbase:base:maxhp}", groupBase("\t\t", "base", "maxhp"),
		"{groupbase:o_base:p_maxp}", groupBase("\t", "o_base", "p_maxp"),
	)
	return r.Replace(g.Replace(`
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {events} (
	position    bigint      PRIMARY KEY,
	stream      text        NOT NULL,
	version     bigint      NOT NULL,
	id          uuid        NOT NULL UNIQUE,
	type        text        NOT NULL,
	recorded_at timestamptz NOT NULL,
	data        bytea       NOT NULL,
	UNIQUE (stream, version)
);

CREATE TABLE IF NOT EXISTS {snaps} (
	stream  text    NOT NULL,
	version bigint  NOT NULL,
	schema  integer NOT NULL,
	data    bytea   NOT NULL,
	PRIMARY KEY (stream, version)
);

-- A schema v1 (head table, one lock for every append): wait for the
-- appends of old processes still running, and keep new ones out until
-- this transaction commits and the old function is gone.
DO $migrate$
BEGIN
	IF to_regclass('{head}') IS NOT NULL THEN
		PERFORM pg_advisory_xact_lock({v1lock});
		LOCK TABLE {events} IN EXCLUSIVE MODE;
	END IF;
END
$migrate$;

CREATE TABLE IF NOT EXISTS {meta} (
	one       boolean PRIMARY KEY DEFAULT true CHECK (one),
	tx_offset bigint  NOT NULL
);
-- Every later transaction has a larger id than this one, so its positions
-- are above every position stored so far (v1's are 1, 2, 3, ...).
INSERT INTO {meta} (one, tx_offset)
	SELECT true, (coalesce((SELECT max(position) FROM {events}), 0) >> {idxbits}) + 1
		- pg_current_xact_id()::text::bigint
	ON CONFLICT (one) DO NOTHING;
DROP TABLE IF EXISTS {head};

-- v1's signature stays as a stub: an older seatledger finds its mark, skips
-- its own DDL, and its appends fail with this message.
CREATE OR REPLACE FUNCTION {append}(
	p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_data bytea[],
	OUT o_outcome integer, OUT o_version bigint, OUT o_position bigint)
LANGUAGE plpgsql AS $seatledger$
{v1mark}: retired. This schema was upgraded to v2 by a newer seatledger.
BEGIN
	RAISE EXCEPTION 'seatledger: the event store schema % was upgraded to v2 by a newer seatledger; upgrade this process', '{schema}'
		USING ERRCODE = 'feature_not_supported';
END
$seatledger$;

CREATE OR REPLACE FUNCTION {append}(
	p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_data bytea[], p_idx integer,
	OUT o_outcome integer, OUT o_version bigint, OUT o_position bigint,
	OUT o_xid bigint, OUT o_clear boolean)
LANGUAGE plpgsql AS $seatledger$
{mark}
DECLARE
	n       integer := coalesce(array_length(p_ids, 1), 0);
	cur_v   bigint;
	cur_p   bigint;
	found_n integer;
	match_n integer;
	first_v bigint;
	last_v  bigint;
	last_p  bigint;
	base    bigint;
	from_id integer := 2; -- the first event's ID is checked by its INSERT
	tries   integer := 0;
	fresh   boolean;
	ts      timestamptz := clock_timestamp();
BEGIN
	<<attempt>>
	LOOP
		tries := tries + 1;
		SELECT e.version, e.position INTO cur_v, cur_p
			FROM {events} e WHERE e.stream = p_stream
			ORDER BY e.version DESC LIMIT 1;
		IF NOT FOUND THEN
			cur_v := 0;
			cur_p := 0;
		END IF;

		IF n = 0 THEN
			IF p_expected >= 0 AND p_expected <> cur_v THEN
				o_outcome := 2; o_version := cur_v; o_position := 0;
			ELSE
				o_outcome := 0; o_version := cur_v; o_position := cur_p;
			END IF;
			EXIT attempt;
		END IF;

		-- Not EXISTS: its generic plan (cached after five calls, while
		-- the table is small) stops at the first match, so the planner
		-- picks a sequential scan of the events, which reads the whole
		-- table when no ID matches. count(*) has no early stop: an index
		-- scan. With a single event the INSERT checks its ID.
		found_n := 0;
		IF from_id <= n THEN
			SELECT count(*) INTO found_n FROM {events} e WHERE e.id = ANY (p_ids[from_id:n]);
		END IF;
		IF (p_expected >= 0 AND p_expected <> cur_v) OR found_n > 0 THEN
			-- A retry is recognised when every event is already stored,
			-- in this stream, in this order, right after the expected
			-- version (any place with Any); anything else is a conflict.
			o_outcome := 2; o_version := cur_v; o_position := 0;
			SELECT count(*) INTO found_n FROM {events} e WHERE e.id = ANY (p_ids);
			IF found_n = n THEN
				SELECT e.version INTO first_v FROM {events} e
					WHERE e.id = p_ids[1] AND e.stream = p_stream;
				IF first_v IS NOT NULL AND (p_expected < 0 OR first_v = p_expected + 1) THEN
					SELECT count(*), max(e.version), max(e.position)
						INTO match_n, last_v, last_p
						FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
						JOIN {events} e ON e.id = u.id
						WHERE e.stream = p_stream AND e.version = first_v + u.ord - 1;
					IF match_n = n THEN
						o_outcome := 1; o_version := last_v; o_position := last_p;
					END IF;
				END IF;
			END IF;
			EXIT attempt;
		END IF;

		fresh := base IS NULL AND pg_current_xact_id_if_assigned() IS NULL;
		IF base IS NULL THEN
			SELECT pg_current_xact_id()::text::bigint + m.tx_offset INTO base FROM {meta} m;
			IF base >= (1::bigint << (63 - {idxbits})) THEN
				RAISE EXCEPTION 'seatledger: transaction ids exhausted the position space of schema %', '{schema}';
			END IF;
			base := (base << {idxbits}) + p_idx;
		END IF;
		IF base <= cur_p THEN
			IF fresh THEN
				-- This transaction's id was taken after the stream's last
				-- event was read, so it is larger than that event's:
				-- unless transaction ids went backwards (a dump restored
				-- into another cluster). Open fixes tx_offset; until then,
				-- write nothing.
				RAISE EXCEPTION 'seatledger: transaction ids of this server are behind the positions of schema % (restored into another cluster?): reopen the store', '{schema}'
					USING ERRCODE = 'object_not_in_prerequisite_state';
			END IF;
			-- A transaction with a larger id appended to the stream and
			-- committed since this one took its id: positions of one
			-- stream must grow with its versions, so this append must run
			-- again in a new transaction (which takes its id after reading
			-- the stream).
			o_outcome := 3; o_version := cur_v; o_position := 0;
			EXIT attempt;
		END IF;

		INSERT INTO {events} (position, stream, version, id, type, recorded_at, data)
			VALUES (base, p_stream, cur_v + 1, p_ids[1], p_types[1], ts, p_data[1])
			ON CONFLICT DO NOTHING;
		IF FOUND THEN
			IF n > 1 THEN
				INSERT INTO {events} (position, stream, version, id, type, recorded_at, data)
					SELECT base + u.ord - 1, p_stream, cur_v + u.ord, u.id, u.type, ts, u.data
					FROM unnest(p_ids, p_types, p_data) WITH ORDINALITY AS u(id, type, data, ord)
					WHERE u.ord > 1 ORDER BY u.ord;
			END IF;
			o_outcome := 0; o_version := cur_v + n; o_position := base + n - 1;
			EXIT attempt;
		END IF;
		-- Another append took the stream's next version or the first
		-- event's ID, and committed: look again, IDs included.
		from_id := 1;
		IF tries >= 100 THEN
			RAISE EXCEPTION 'seatledger: append to stream % kept losing races', p_stream
				USING ERRCODE = 'serialization_failure';
		END IF;
	END LOOP;

	o_xid := coalesce(pg_current_xact_id_if_assigned()::text::bigint, 0);
	o_clear := o_xid = 0 OR pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= o_xid;
END
$seatledger$;

CREATE OR REPLACE FUNCTION {batch}(
	p_streams text[], p_expected bigint[], p_counts integer[],
	p_ids uuid[], p_types text[], p_data bytea[], p_known bigint[], p_rel oid,
	OUT o_outcome integer[], OUT o_version bigint[], OUT o_position bigint[],
	OUT o_xid bigint, OUT o_clear boolean)
-- The planner guesses 1,000 rows for each set-returning function over the
-- arguments, so the generic plan of the INSERT of a group's events looks
-- big enough to be compiled (JIT) on every call: hundreds of microseconds
-- for a few dozen rows.
LANGUAGE plpgsql SET jit = off AS $seatledger$
{mark}
{rev5mark}
DECLARE
	k       integer := coalesce(array_length(p_streams, 1), 0);
	starts  integer[]; -- index of each append's first event in p_ids
	hv      bigint[];  -- each append's stream head (version)
	fast    boolean[];
	offs    integer[]; -- each fast append's first index in the transaction
	won     boolean[];
	anyfast boolean;
	multi   boolean;
	maxhp   bigint;
	idx     integer;
	base    bigint;
	a_out   integer;
	a_ver   bigint;
	a_pos   bigint;
	r       integer;
	ts      timestamptz := clock_timestamp();
BEGIN
	-- Set-based, no loop per append: one statement reads the heads of the
	-- group's streams (before this transaction takes its id) and decides
	-- which appends are fast: the first append of its stream in the group,
	-- with events, expected version right. Everything else goes through
	-- append_events below. Stored IDs are not looked up: the unique index
	-- on id refuses them, and the whole group, which then fails, is run
	-- again one append at a time (the store does that), where
	-- append_events tells retries from conflicts.
	SELECT array_agg(b.st ORDER BY b.i), array_agg(b.hv ORDER BY b.i),
		array_agg(b.fast ORDER BY b.i), array_agg(b.off ORDER BY b.i),
		coalesce(bool_or(b.fast), false), coalesce(bool_or(b.fast AND b.c > 1), false),
		max(b.hp - b.off) FILTER (WHERE b.fast),
		coalesce(sum(b.c) FILTER (WHERE b.fast), 0)
		INTO starts, hv, fast, offs, anyfast, multi, maxhp, idx
		FROM (SELECT f.*, (sum(CASE WHEN f.fast THEN f.c ELSE 0 END)
				OVER (ORDER BY f.i ROWS UNBOUNDED PRECEDING)
				- CASE WHEN f.fast THEN f.c ELSE 0 END)::integer AS off
			FROM (SELECT a.i, a.c, a.st,
					CASE WHEN a.known IS NULL THEN coalesce(x.version, 0) ELSE p_expected[a.i] END AS hv,
					coalesce(a.known, x.position, 0) AS hp,
					a.c > 0 AND a.rn = 1 AND (a.known IS NOT NULL OR p_expected[a.i] < 0
						OR p_expected[a.i] = coalesce(x.version, 0)) AS fast
				FROM (SELECT i, p_counts[i] AS c,
						CASE WHEN p_expected[i] >= 0 AND p_rel = '{events}'::regclass THEN p_known[i] END AS known,
						(sum(p_counts[i]) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING) - p_counts[i] + 1)::integer AS st,
						row_number() OVER (PARTITION BY p_streams[i] ORDER BY i) AS rn
					FROM generate_subscripts(p_streams, 1) AS i) a
				-- A one-time filter: no index scan for a known head.
				LEFT JOIN LATERAL (SELECT e.version, e.position FROM {events} e
					WHERE a.known IS NULL AND e.stream = p_streams[a.i]
					ORDER BY e.version DESC LIMIT 1) x ON true) f) b;

	IF anyfast THEN
{groupbase:base:maxhp}
		-- Every fast append's events in one plain INSERT: no speculative
		-- insertion, no arbiter probe per row. If a stream's next version
		-- is taken (a lost race, a head this Store knew that is no longer
		-- the head) or an ID is stored, the INSERT fails, the block's
		-- subtransaction rolls back, and the fast appends claim their
		-- streams again, arbitrated, below.
		BEGIN
			INSERT INTO {events} (position, stream, version, id, type, recorded_at, data)
				SELECT base + offs[a.i] + (a.j - starts[a.i]), p_streams[a.i],
					hv[a.i] + 1 + (a.j - starts[a.i]),
					p_ids[a.j], p_types[a.j], ts, p_data[a.j]
				FROM (SELECT i, generate_series(starts[i], starts[i] + p_counts[i] - 1) AS j
					FROM generate_subscripts(p_streams, 1) AS i
					WHERE fast[i]) a
				ORDER BY a.j;
			SELECT array_agg(fast[g.i] ORDER BY g.i),
				array_agg(CASE WHEN fast[g.i] THEN hv[g.i] + p_counts[g.i] ELSE 0 END ORDER BY g.i),
				array_agg(CASE WHEN fast[g.i] THEN base + offs[g.i] + p_counts[g.i] - 1 ELSE 0 END ORDER BY g.i)
				INTO won, o_version, o_position
				FROM generate_subscripts(p_streams, 1) AS g(i);
		EXCEPTION WHEN unique_violation THEN
			-- Claim each stream's next version with the append's first event.
			-- Only (stream, version) arbitrates: a speculative insertion
			-- probes each arbiter index before inserting, and the other two
			-- cannot conflict but through a stored ID (see above). An append
			-- that lost the race (no row back) goes to append_events.
			WITH ins AS (
				INSERT INTO {events} (position, stream, version, id, type, recorded_at, data)
					SELECT base + offs[i], p_streams[i], hv[i] + 1,
						p_ids[starts[i]], p_types[starts[i]], ts, p_data[starts[i]]
					FROM generate_subscripts(p_streams, 1) AS i
					WHERE fast[i] ORDER BY i
					ON CONFLICT (stream, version) DO NOTHING
					RETURNING position)
			SELECT array_agg(ins.position IS NOT NULL ORDER BY g.i),
				array_agg(CASE WHEN ins.position IS NOT NULL THEN hv[g.i] + p_counts[g.i] ELSE 0 END ORDER BY g.i),
				array_agg(CASE WHEN ins.position IS NOT NULL THEN ins.position + p_counts[g.i] - 1 ELSE 0 END ORDER BY g.i)
				INTO won, o_version, o_position
				FROM generate_subscripts(p_streams, 1) AS g(i)
				LEFT JOIN ins ON fast[g.i] AND ins.position = base + offs[g.i];
			IF multi THEN
				INSERT INTO {events} (position, stream, version, id, type, recorded_at, data)
					SELECT base + offs[a.i] + (a.j - starts[a.i]), p_streams[a.i],
						hv[a.i] + 1 + (a.j - starts[a.i]),
						p_ids[a.j], p_types[a.j], ts, p_data[a.j]
					FROM (SELECT i, generate_series(starts[i] + 1, starts[i] + p_counts[i] - 1) AS j
						FROM generate_subscripts(p_streams, 1) AS i
						WHERE won[i] AND p_counts[i] > 1) a
					ORDER BY a.j;
			END IF;
		END;
	ELSE
		won := array_fill(false, ARRAY[k]);
		o_version := array_fill(0::bigint, ARRAY[k]);
		o_position := array_fill(0::bigint, ARRAY[k]);
	END IF;
	o_outcome := array_fill(0, ARRAY[k]);

	-- The rest (rare: a stream twice in the group, an expected version
	-- that does not match, a lost race), one by one after the fast
	-- appends' indexes.
	FOR r IN SELECT g FROM generate_subscripts(p_streams, 1) AS g WHERE NOT won[g] ORDER BY g LOOP
		SELECT a.o_outcome, a.o_version, a.o_position INTO a_out, a_ver, a_pos
			FROM {append}(p_streams[r], p_expected[r],
				p_ids[starts[r]:starts[r] + p_counts[r] - 1],
				p_types[starts[r]:starts[r] + p_counts[r] - 1],
				p_data[starts[r]:starts[r] + p_counts[r] - 1], idx) a;
		o_outcome[r] := a_out; o_version[r] := a_ver; o_position[r] := a_pos;
		idx := idx + p_counts[r];
	END LOOP;

	o_xid := coalesce(pg_current_xact_id_if_assigned()::text::bigint, 0);
	o_clear := o_xid = 0 OR pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= o_xid;
END
$seatledger$;

-- A group whose every append has a known head, one per stream (the
-- common case): no head to read, nothing to decide, one INSERT. Event j of
-- the group gets position base + j - 1 and version p_versions[j]; p_maxp
-- is the largest known head position. A taken version or a stored ID
-- fails the statement (unique_violation): the caller runs the group
-- again through append_batch, which tells them apart. Answers o_base
-- NULL, writing nothing, if the events table was replaced since the
-- caller learnt the heads (p_rel). o_older: the transactions with smaller
-- ids still running when it ended (NULL if none: o_clear).
CREATE OR REPLACE FUNCTION {known}(
	p_streams text[], p_versions bigint[], p_ids uuid[], p_types text[], p_data bytea[],
	p_maxp bigint, p_rel oid,
	OUT o_base bigint, OUT o_xid bigint, OUT o_clear boolean, OUT o_older bigint[])
LANGUAGE plpgsql SET jit = off AS $seatledger$
{mark}
DECLARE
	ts   timestamptz := clock_timestamp();
	snap pg_snapshot;
BEGIN
	IF p_rel <> '{events}'::regclass THEN
		o_xid := 0; o_clear := true;
		RETURN;
	END IF;
{groupbase:o_base:p_maxp}
	INSERT INTO {events} (position, stream, version, id, type, recorded_at, data)
		SELECT o_base + u.ord - 1, u.stream, u.version, u.id, u.type, ts, u.data
		FROM unnest(p_streams, p_versions, p_ids, p_types, p_data)
			WITH ORDINALITY AS u(stream, version, id, type, data, ord)
		ORDER BY u.ord;
	o_xid := pg_current_xact_id()::text::bigint;
	snap := pg_current_snapshot();
	o_clear := pg_snapshot_xmin(snap)::text::bigint >= o_xid;
	IF NOT o_clear THEN
		-- The snapshot's running ids below its xmax, and every id from
		-- xmax (none of them had ended) to this transaction's own: any
		-- other transaction with a smaller id has ended, and no later one
		-- can get a smaller id.
		o_older := ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(snap) x
				WHERE x::text::bigint < o_xid
			UNION ALL
			SELECT generate_series(pg_snapshot_xmax(snap)::text::bigint, o_xid - 1));
	END IF;
END
$seatledger$;

-- The signature of revisions 3 and 4, for their nodes: the same answers,
-- every head read. It carries their marks.
CREATE OR REPLACE FUNCTION {batch}(
	p_streams text[], p_expected bigint[], p_counts integer[],
	p_ids uuid[], p_types text[], p_data bytea[],
	OUT o_outcome integer[], OUT o_version bigint[], OUT o_position bigint[],
	OUT o_xid bigint, OUT o_clear boolean)
LANGUAGE plpgsql AS $seatledger$
{mark}
{oldmarks}
BEGIN
	SELECT b.o_outcome, b.o_version, b.o_position, b.o_xid, b.o_clear
		INTO o_outcome, o_version, o_position, o_xid, o_clear
		FROM {batch}(p_streams, p_expected, p_counts, p_ids, p_types, p_data, NULL::bigint[], NULL::oid) b;
END
$seatledger$;
`))
}

// Open repairs tx_offset when the server's transaction ids are behind the
// stored positions (a dump restored into another cluster): every later
// transaction id is at least the snapshot's xmax, so the new offset puts
// its positions above all of them. On a healthy server every stored
// position's transaction is below xmax and nothing changes.
func (n names) repairOffset() string {
	return strings.NewReplacer("{events}", n.events, "{meta}", n.meta, "{idxbits}", fmt.Sprint(idxBits)).Replace(`
UPDATE {meta} SET tx_offset = (h.maxp >> {idxbits}) + 1 - h.xmax
	FROM (SELECT coalesce((SELECT max(position) FROM {events}), 0) AS maxp,
		pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax) h
	WHERE (h.maxp >> {idxbits}) >= h.xmax + {meta}.tx_offset`)
}

// migrate creates the schema's objects if they are missing, and migrates a
// schema of the previous version (v1, one advisory lock for every append)
// in place: positions already stored stay as they are, every later one is
// above them. Concurrent callers (several processes starting together) are
// serialized by an advisory transaction lock.
func migrate(ctx context.Context, conn interface {
	Begin(context.Context) (pgx.Tx, error)
}, n names) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
		return err
	}
	var current bool
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT strpos(prosrc, $2) > 0 FROM pg_proc WHERE oid = to_regprocedure($1)), false)`,
		n.knownFn+knownSig, migrationMark).Scan(&current); err != nil {
		return err
	}
	if !current {
		// Simple protocol: several statements in one Exec. (Skipped when
		// already migrated: CREATE OR REPLACE FUNCTION would take locks
		// that running appends of other processes hold.)
		if _, err := tx.Exec(ctx, n.migration(), pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, n.repairOffset()); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// migrationMark is a string in the current append function's body; bump it
// when the DDL changes so that existing schemas are migrated again.
// migrationMarkV1 is v1's: an older seatledger skips its DDL when it finds
// it, so the v1 stub carries it.
const (
	migrationMark   = "-- seatledger schema v2, revision 6"
	migrationMarkV1 = "-- seatledger schema v1"
)

// compatMarks are the marks of earlier v2 revisions whose builds may run
// beside this one, carried by the function they check (append_batch of
// their signature, batchSigRev4): it answers as theirs does, so those
// builds find their mark and neither rerun their DDL nor downgrade the
// functions.
const compatMarkRev5 = "-- seatledger schema v2, revision 5 (compatible: same signatures and answers)"

const compatMarks = "-- seatledger schema v2, revision 4 (compatible: same signatures and answers)\n" +
	"-- seatledger schema v2, revision 3 (compatible: same signatures and answers)"
