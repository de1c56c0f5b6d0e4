/* ingest_sql.c - the ingest module's SQL, listed once.  The committer
 * prepares these on its own connections; the seq lookup and the one-row
 * insert also run on the worker threads' connections (db_exec_own) when no
 * committer runs or a batch failed, and every module that reads a stored
 * envelope back does so through ingest_stored (ingest.c). */
#include "server/db/db.h"
#include "server/ingest/ingest_int.h"

const struct db_sql ingest__sql[INGEST_SQL_COUNT] = {
    [INGEST_SQL_SEQ_LOOKUP] = { "ingest_seq_lookup",
        "SELECT snapshot_id, sha256 = $3::bytea AS same_bytes FROM snapshot_seqs "
        "WHERE device_id = $1 AND seq = $2::bigint", 3 },
    [INGEST_SQL_INSERT] = { "ingest_insert",
        /* snapshots is partitioned: snapshot_seqs holds the (device, seq)
         * uniqueness, claimed first in the same statement. */
        "WITH nid AS (SELECT nextval('snapshots_id_seq') AS id),"
        " s AS (INSERT INTO snapshot_seqs (device_id, seq, snapshot_id, sha256)"
        "  SELECT $1, $2::bigint, nid.id, $13::bytea FROM nid"
        "  ON CONFLICT (device_id, seq) DO NOTHING RETURNING snapshot_id),"
        " ins AS ("
        " INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate,"
        "  sample_type, channel_count, channels, pre_samples, post_samples,"
        "  detector, score, envelope, bytes, sha256)"
        " SELECT s.snapshot_id, $1, $2::bigint,"
        "  timestamptz 'epoch' + $3::bigint * interval '1 microsecond',"
        "  $4::float8, $5::smallint, $6::smallint, $7::jsonb, $8::int, $9::int,"
        "  $10, $11::real, $12::bytea, octet_length($12::bytea), $13::bytea"
        " FROM s RETURNING id, device_id, seq),"
        " upd AS (UPDATE devices SET last_seen = now(),"
        "  last_seq = GREATEST(devices.last_seq, ins.seq)"
        "  FROM ins WHERE devices.id = ins.device_id)"
        " SELECT id FROM ins", 13 },
    /* Columns 1-11 come as text[] of the rows' formatted parameters (cast
     * here exactly as INGEST_SQL_INSERT casts them), 12-13 as bytea[]; the
     * caller sends each (device, seq) once. */
    [INGEST_SQL_BATCH_INSERT] = { "ingest_batch_insert",
        "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        "  $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
        "  $11::text[], $12::bytea[], $13::bytea[]) WITH ORDINALITY"
        "  AS v(dev, seq, tt, rate, stype, nch, chans, pre, post, det, score, env, sha, ord)),"
        " s AS (INSERT INTO snapshot_seqs (device_id, seq, snapshot_id, sha256)"
        "  SELECT dev, seq::bigint, nextval('snapshots_id_seq'), sha FROM v ORDER BY ord"
        "  ON CONFLICT (device_id, seq) DO NOTHING RETURNING device_id, seq, snapshot_id),"
        " ins AS (INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate,"
        "  sample_type, channel_count, channels, pre_samples, post_samples,"
        "  detector, score, envelope, bytes, sha256)"
        "  SELECT s.snapshot_id, v.dev, s.seq,"
        "  timestamptz 'epoch' + v.tt::bigint * interval '1 microsecond',"
        "  v.rate::float8, v.stype::smallint, v.nch::smallint, v.chans::jsonb, v.pre::int,"
        "  v.post::int, v.det, v.score::real, v.env, octet_length(v.env), v.sha"
        "  FROM s JOIN v ON v.dev = s.device_id AND v.seq::bigint = s.seq"
        "  RETURNING id, device_id, seq)"
        " SELECT device_id, seq, id FROM ins", INGEST_NPARAMS },
    /* Every device of a batch in one statement: $1 device ids, $2 the
     * highest new seq of each.  The rows are locked in id order first (the
     * aggregate over l is complete before the join emits a row to update),
     * so two committers or two servers still take the locks in the same
     * order. */
    [INGEST_SQL_DEVICES_SEEN] = { "ingest_devices_seen",
        "WITH v AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS v(id, seq)),"
        " l AS MATERIALIZED (SELECT d.id FROM devices d WHERE d.id IN (SELECT id FROM v)"
        "  ORDER BY d.id FOR UPDATE)"
        " UPDATE devices d SET last_seen = now(), last_seq = GREATEST(d.last_seq, v.seq)"
        " FROM v, (SELECT count(*) FROM l) AS locked WHERE d.id = v.id", 2 },
    [INGEST_SQL_STORED] = { "ingest_stored",
        "SELECT envelope FROM snapshots WHERE id = $1::bigint", 1 },
    /* The ids in the order given, as many as fit the byte budget (at least
     * one): sizes come from the bytes column, so envelopes beyond the
     * budget are never read. */
    [INGEST_SQL_STORED_MANY] = { "ingest_stored_many",
        "WITH b AS (SELECT u.ord, s.id, sum(s.bytes) OVER (ORDER BY u.ord) - s.bytes AS before"
        "  FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, ord) JOIN snapshots s ON s.id = u.id)"
        " SELECT b.id::text AS id, s.envelope FROM b JOIN snapshots s ON s.id = b.id"
        " WHERE b.before = 0 OR b.before < $2::bigint ORDER BY b.ord", 2 },
};
