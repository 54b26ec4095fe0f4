-- seatledger schema v2, revision 5 (eventstore/postgres at d204bd0): the DDL such a node runs.

CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.events (
	position    bigint      PRIMARY KEY,
	stream      text        NOT NULL,
	version     bigint      NOT NULL,
	id          uuid        NOT NULL UNIQUE,
	type        text        NOT NULL,
	recorded_at timestamptz NOT NULL,
	data        bytea       NOT NULL,
	UNIQUE (stream, version)
);

CREATE TABLE IF NOT EXISTS {schema}.snapshots (
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
	IF to_regclass('{schema}.head') IS NOT NULL THEN
		PERFORM pg_advisory_xact_lock({v1lock});
		LOCK TABLE {schema}.events IN EXCLUSIVE MODE;
	END IF;
END
$migrate$;

CREATE TABLE IF NOT EXISTS {schema}.meta (
	one       boolean PRIMARY KEY DEFAULT true CHECK (one),
	tx_offset bigint  NOT NULL
);
-- Every later transaction has a larger id than this one, so its positions
-- are above every position stored so far (v1's are 1, 2, 3, ...).
INSERT INTO {schema}.meta (one, tx_offset)
	SELECT true, (coalesce((SELECT max(position) FROM {schema}.events), 0) >> 16) + 1
		- pg_current_xact_id()::text::bigint
	ON CONFLICT (one) DO NOTHING;
DROP TABLE IF EXISTS {schema}.head;

-- v1's signature stays as a stub: an older seatledger finds its mark, skips
-- its own DDL, and its appends fail with this message.
CREATE OR REPLACE FUNCTION {schema}.append_events(
	p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_data bytea[],
	OUT o_outcome integer, OUT o_version bigint, OUT o_position bigint)
LANGUAGE plpgsql AS $seatledger$
-- seatledger schema v1: retired. This schema was upgraded to v2 by a newer seatledger.
BEGIN
	RAISE EXCEPTION 'seatledger: the event store schema % was upgraded to v2 by a newer seatledger; upgrade this process', '{schema}'
		USING ERRCODE = 'feature_not_supported';
END
$seatledger$;

CREATE OR REPLACE FUNCTION {schema}.append_events(
	p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_data bytea[], p_idx integer,
	OUT o_outcome integer, OUT o_version bigint, OUT o_position bigint,
	OUT o_xid bigint, OUT o_clear boolean)
LANGUAGE plpgsql AS $seatledger$
-- seatledger schema v2, revision 5
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
			FROM {schema}.events e WHERE e.stream = p_stream
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
			SELECT count(*) INTO found_n FROM {schema}.events e WHERE e.id = ANY (p_ids[from_id:n]);
		END IF;
		IF (p_expected >= 0 AND p_expected <> cur_v) OR found_n > 0 THEN
			-- A retry is recognised when every event is already stored,
			-- in this stream, in this order, right after the expected
			-- version (any place with Any); anything else is a conflict.
			o_outcome := 2; o_version := cur_v; o_position := 0;
			SELECT count(*) INTO found_n FROM {schema}.events e WHERE e.id = ANY (p_ids);
			IF found_n = n THEN
				SELECT e.version INTO first_v FROM {schema}.events e
					WHERE e.id = p_ids[1] AND e.stream = p_stream;
				IF first_v IS NOT NULL AND (p_expected < 0 OR first_v = p_expected + 1) THEN
					SELECT count(*), max(e.version), max(e.position)
						INTO match_n, last_v, last_p
						FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
						JOIN {schema}.events e ON e.id = u.id
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
			SELECT pg_current_xact_id()::text::bigint + m.tx_offset INTO base FROM {schema}.meta m;
			IF base >= (1::bigint << (63 - 16)) THEN
				RAISE EXCEPTION 'seatledger: transaction ids exhausted the position space of schema %', '{schema}';
			END IF;
			base := (base << 16) + p_idx;
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

		INSERT INTO {schema}.events (position, stream, version, id, type, recorded_at, data)
			VALUES (base, p_stream, cur_v + 1, p_ids[1], p_types[1], ts, p_data[1])
			ON CONFLICT DO NOTHING;
		IF FOUND THEN
			IF n > 1 THEN
				INSERT INTO {schema}.events (position, stream, version, id, type, recorded_at, data)
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

CREATE OR REPLACE FUNCTION {schema}.append_batch(
	p_streams text[], p_expected bigint[], p_counts integer[],
	p_ids uuid[], p_types text[], p_data bytea[], p_known bigint[], p_rel oid,
	OUT o_outcome integer[], OUT o_version bigint[], OUT o_position bigint[],
	OUT o_xid bigint, OUT o_clear boolean)
-- The planner guesses 1,000 rows for each set-returning function over the
-- arguments, so the generic plan of the INSERT of a group's events looks
-- big enough to be compiled (JIT) on every call: hundreds of microseconds
-- for a few dozen rows.
LANGUAGE plpgsql SET jit = off AS $seatledger$
-- seatledger schema v2, revision 5
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
						CASE WHEN p_expected[i] >= 0 AND p_rel = '{schema}.events'::regclass THEN p_known[i] END AS known,
						(sum(p_counts[i]) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING) - p_counts[i] + 1)::integer AS st,
						row_number() OVER (PARTITION BY p_streams[i] ORDER BY i) AS rn
					FROM generate_subscripts(p_streams, 1) AS i) a
				-- A one-time filter: no index scan for a known head.
				LEFT JOIN LATERAL (SELECT e.version, e.position FROM {schema}.events e
					WHERE a.known IS NULL AND e.stream = p_streams[a.i]
					ORDER BY e.version DESC LIMIT 1) x ON true) f) b;

	IF anyfast THEN
		SELECT pg_current_xact_id()::text::bigint + m.tx_offset INTO base FROM {schema}.meta m;
		IF base >= (1::bigint << (63 - 16)) THEN
			RAISE EXCEPTION 'seatledger: transaction ids exhausted the position space of schema %', '{schema}';
		END IF;
		base := base << 16;
		IF base <= maxhp THEN
			RAISE EXCEPTION 'seatledger: transaction ids of this server are behind the positions of schema % (restored into another cluster?): reopen the store', '{schema}'
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		-- Every fast append's events in one plain INSERT: no speculative
		-- insertion, no arbiter probe per row. If a stream's next version
		-- is taken (a lost race, a head this Store knew that is no longer
		-- the head) or an ID is stored, the INSERT fails, the block's
		-- subtransaction rolls back, and the fast appends claim their
		-- streams again, arbitrated, below.
		BEGIN
			INSERT INTO {schema}.events (position, stream, version, id, type, recorded_at, data)
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
				INSERT INTO {schema}.events (position, stream, version, id, type, recorded_at, data)
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
				INSERT INTO {schema}.events (position, stream, version, id, type, recorded_at, data)
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
			FROM {schema}.append_events(p_streams[r], p_expected[r],
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

-- The signature of revisions 3 and 4, for their nodes: the same answers,
-- every head read. It carries their marks.
CREATE OR REPLACE FUNCTION {schema}.append_batch(
	p_streams text[], p_expected bigint[], p_counts integer[],
	p_ids uuid[], p_types text[], p_data bytea[],
	OUT o_outcome integer[], OUT o_version bigint[], OUT o_position bigint[],
	OUT o_xid bigint, OUT o_clear boolean)
LANGUAGE plpgsql AS $seatledger$
-- seatledger schema v2, revision 5
-- seatledger schema v2, revision 4 (compatible: same signatures and answers)
-- seatledger schema v2, revision 3 (compatible: same signatures and answers)
BEGIN
	SELECT b.o_outcome, b.o_version, b.o_position, b.o_xid, b.o_clear
		INTO o_outcome, o_version, o_position, o_xid, o_clear
		FROM {schema}.append_batch(p_streams, p_expected, p_counts, p_ids, p_types, p_data, NULL::bigint[], NULL::oid) b;
END
$seatledger$;
