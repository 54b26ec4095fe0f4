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

CREATE TABLE IF NOT EXISTS {head} (
	one      boolean PRIMARY KEY DEFAULT true CHECK (one),
	position bigint  NOT NULL
);
INSERT INTO {head} (one, position)
	SELECT true, coalesce((SELECT max(position) FROM {events}), 0)
	ON CONFLICT (one) DO NOTHING;

CREATE TABLE IF NOT EXISTS {snaps} (
	stream  text    NOT NULL,
	version bigint  NOT NULL,
	schema  integer NOT NULL,
	data    bytea   NOT NULL,
	PRIMARY KEY (stream, version)
);

CREATE OR REPLACE FUNCTION {append}(
	p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_data bytea[],
	OUT o_outcome integer, OUT o_version bigint, OUT o_position bigint)
LANGUAGE plpgsql AS $seatledger$
-- seatledger schema v1
DECLARE
	n       integer := coalesce(array_length(p_ids, 1), 0);
	cur_v   bigint := 0;
	cur_p   bigint := 0;
	found_n integer;
	match_n integer;
	first_v bigint;
	last_v  bigint;
	last_p  bigint;
	ts      timestamptz;
BEGIN
	PERFORM pg_advisory_xact_lock({lock});
	ts := clock_timestamp();

	SELECT e.version, e.position INTO cur_v, cur_p
		FROM {events} e WHERE e.stream = p_stream
		ORDER BY e.version DESC LIMIT 1;
	IF NOT FOUND THEN
		cur_v := 0;
		cur_p := 0;
	END IF;

	IF n > 0 THEN
		SELECT count(*) INTO found_n FROM {events} e WHERE e.id = ANY (p_ids);
		IF found_n > 0 THEN
			-- A retry is recognised when every event is already stored,
			-- in this stream, in this order, right after the expected
			-- version (any place with Any).
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
						RETURN;
					END IF;
				END IF;
			END IF;
			o_outcome := 2; o_version := cur_v; o_position := 0;
			RETURN;
		END IF;
	END IF;

	IF p_expected >= 0 AND p_expected <> cur_v THEN
		o_outcome := 2; o_version := cur_v; o_position := 0;
		RETURN;
	END IF;
	IF n = 0 THEN
		o_outcome := 0; o_version := cur_v; o_position := cur_p;
		RETURN;
	END IF;

	UPDATE {head} SET position = position + n RETURNING position INTO last_p;
	INSERT INTO {events} (position, stream, version, id, type, recorded_at, data)
		SELECT last_p - n + u.ord, p_stream, cur_v + u.ord, u.id, u.type, ts, u.data
		FROM unnest(p_ids, p_types, p_data) WITH ORDINALITY AS u(id, type, data, ord);
	PERFORM pg_notify('{channel}', last_p::text);
	o_outcome := 0; o_version := cur_v + n; o_position := last_p;
END
$seatledger$;
