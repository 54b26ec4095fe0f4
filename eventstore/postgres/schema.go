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
	head     string
	snaps    string
	appendFn string
	channel  string // LISTEN/NOTIFY channel (plain)
	lockKey  int64  // pg_advisory_xact_lock key serializing appends
}

func newNames(schema string) names {
	q := pgx.Identifier{schema}.Sanitize()
	h := fnv.New64a()
	h.Write([]byte(schema))
	sum := h.Sum64()
	return names{
		schema:   q,
		events:   q + ".events",
		head:     q + ".head",
		snaps:    q + ".snapshots",
		appendFn: q + ".append_events",
		channel:  fmt.Sprintf("seatledger_events_%016x", sum),
		// The key depends on the schema so that stores in different
		// schemas of one database do not serialize each other.
		lockKey: int64(sum &^ (1 << 63)),
	}
}

// migration returns the idempotent DDL of a schema.
//
// append_events(stream, expected, ids, types, data) does a whole append in
// one statement (one round trip, one implicit transaction):
//
//  1. pg_advisory_xact_lock(lockKey): appends of this schema run one at a
//     time, and the lock is released only after the commit is visible;
//  2. expected version and idempotency checks against the stream's head;
//  3. UPDATE head ... RETURNING assigns the next positions from the counter
//     row, so positions are contiguous and grow in commit order;
//  4. INSERT of the events, pg_notify(channel, last position).
//
// outcome is 0 (written, or nothing to write), 1 (idempotent retry: the
// events are already there; version/position are the original result) or
// 2 (conflict: version is the stream's current version).
func (n names) migration() string {
	r := strings.NewReplacer(
		"{schema}", n.schema,
		"{events}", n.events,
		"{head}", n.head,
		"{snaps}", n.snaps,
		"{append}", n.appendFn,
		"{channel}", n.channel,
		"{lock}", fmt.Sprint(n.lockKey),
	)
	return r.Replace(`
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
`)
}

// migrate creates the schema's objects if they are missing. Concurrent
// callers (several processes starting together) are serialized by an
// advisory transaction lock.
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
	var fn *string
	if err := tx.QueryRow(ctx, `SELECT to_regprocedure($1)::text`, n.appendFn+"(text,bigint,uuid[],text[],bytea[])").Scan(&fn); err != nil {
		return err
	}
	if fn != nil {
		// Already migrated by this version of the code or a concurrent
		// opener: skip the DDL (CREATE OR REPLACE FUNCTION would take locks
		// that running appends of other processes hold).
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT strpos(prosrc, $2) > 0 FROM pg_proc WHERE oid = to_regprocedure($1)`,
			n.appendFn+"(text,bigint,uuid[],text[],bytea[])", migrationMark).Scan(&ok); err != nil {
			return err
		}
		if ok {
			return tx.Commit(ctx)
		}
	}
	// Simple protocol: several statements in one Exec.
	if _, err := tx.Exec(ctx, n.migration(), pgx.QueryExecModeSimpleProtocol); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// migrationMark is a string in the current append function's body; bump it
// when the DDL changes so that existing schemas are migrated again.
const migrationMark = "-- seatledger schema v1"
