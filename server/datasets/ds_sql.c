/* ds_sql.c - every SQL statement the datasets module runs, listed once and
 * prepared on a connection's first use (db_exec_own).  Result columns carry
 * names, and the module's files read them by name. */
#include "server/datasets/ds_int.h"

#include <stdio.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

/* An export job as its answer reads it (ds_jobs.c, job_json). */
#define JOB_COLS \
    "id, dataset_id, version, format, status, rows_total, rows_done, bytes," \
    " encode(sha256, 'hex') AS sha256, error, " DB_RFC3339("created_at") " AS created_at," \
    " " DB_RFC3339("finished_at") " AS finished_at"

/* The snapshots of a version's devices ($1 dataset, $2 version) that it
 * does not hold, not demo ones, received up to its freeze: vs, the
 * version's snapshots, then a CTE's FROM and WHERE over snapshots s (the
 * unlabeled readers, ds_reader.c). */
#define VERSION_OTHERS_WITH \
    "WITH vs AS (SELECT DISTINCT snapshot_id FROM dataset_windows" \
    "  WHERE dataset_id = $1::bigint AND version = $2::int),"
#define VERSION_OTHERS_FROM \
    " FROM snapshots s" \
    "  JOIN dataset_versions v ON v.dataset_id = $1::bigint AND v.version = $2::int" \
    "  WHERE NOT s.demo AND s.received_at <= v.created_at" \
    "   AND s.device_id IN (SELECT device_id FROM snapshots WHERE id IN (SELECT snapshot_id FROM vs))" \
    "   AND s.id NOT IN (SELECT snapshot_id FROM vs)"

static const struct db_sql stmts[DS_SQL_COUNT] = {
    /* The version's scheduled baseline snapshots (detector "schedule"):
     * windows assumed normal with a normal label from any source, as the
     * relations set's training takes them (server/models/models_train.c). */
    [DS_SQL_SCHEDULED] = { "ds_scheduled",
        "SELECT s.id AS snapshot_id FROM snapshots s WHERE s.detector = 'schedule' AND s.id IN"
        " (SELECT snapshot_id FROM dataset_windows WHERE dataset_id = $1::bigint AND version = $2::int)"
        " ORDER BY s.id", 2 },
    /* The unlabeled windows of a version's devices (ds_unlabeled_read):
     * their scheduled baseline snapshots (not demo ones) that are not in
     * the version, received up to the version's freeze (a retrain reads the
     * same), at most $3 of them spread evenly over time (every n/$3-th in
     * the order received): a machine's normal operation over its history,
     * not only its last days. */
    [DS_SQL_UNLABELED] = { "ds_unlabeled",
        VERSION_OTHERS_WITH
        " c AS (SELECT s.id, row_number() OVER (ORDER BY s.received_at, s.id) AS k,"
        "  count(*) OVER () AS n" VERSION_OTHERS_FROM " AND s.detector = 'schedule')"
        " SELECT id FROM c WHERE n <= $3::bigint"
        "  OR k = 1 OR (k - 1) * $3::bigint / n <> (k - 2) * $3::bigint / n ORDER BY k", 3 },
    /* The snapshots no label reached of a version's devices
     * (ds_unlabeled_snapshots_read): not in the version, not demo, no
     * human label, received up to the version's freeze (a retrain predicts
     * the same), the newest first, at most $3 of them; with the stride the
     * version's windows were cut at (the dataset's definition never
     * changes) and how many there are in all. */
    [DS_SQL_UNLABELED_SNAPSHOTS] = { "ds_unlabeled_snapshots",
        VERSION_OTHERS_WITH
        " c AS (SELECT s.id, s.device_id, s.received_at" VERSION_OTHERS_FROM
        "   AND s.labeled_at IS NULL)"
        " SELECT c.id, c.device_id, (d.definition->'window'->>'stride_s')::float8 AS stride_s,"
        "  count(*) OVER () AS total"
        " FROM c JOIN datasets d ON d.id = $1::bigint"
        " ORDER BY c.received_at DESC, c.id DESC LIMIT $3::bigint", 3 },
    [DS_SQL_CREATE] = { "ds_create",
        "INSERT INTO datasets (name, definition, created_by) VALUES ($1, $2::jsonb, $3) "
        "RETURNING id", 3 },
    /* a filter's from/to as the gathering query will read it, checked
     * when the definition is stored rather than at every freeze */
    [DS_SQL_TIME_CHECK] = { "ds_time_check", "SELECT $1::timestamptz AS t", 1 },
    /* $1 limit, $2 before (NULL: from the newest): the newest page, given
     * oldest first as the unpaged list was */
    [DS_SQL_LIST] = { "ds_list",
        "SELECT * FROM (SELECT d.id, d.name, d.definition::text AS definition, "
        DB_RFC3339("d.created_at") " AS created_at, "
        "(SELECT count(*) FROM dataset_versions v WHERE v.dataset_id = d.id) AS versions "
        "FROM datasets d WHERE $2::bigint IS NULL OR d.id > $2::bigint"
        " ORDER BY d.id LIMIT $1::int) p ORDER BY id", 2 },
    [DS_SQL_GET] = { "ds_get",
        "SELECT id, name, definition::text AS definition, " DB_RFC3339("created_at") " AS created_at"
        " FROM datasets WHERE id = $1", 1 },
    [DS_SQL_VERSIONS] = { "ds_versions",
        "SELECT version, encode(content_sha256, 'hex') AS content_sha256, n_windows, "
        DB_RFC3339("created_at") " AS created_at "
        "FROM dataset_versions WHERE dataset_id = $1 ORDER BY version", 1 },
    /* The label-gathering query: human labels (spans), then weak labels
     * (rule, vote, disposition from the domain tables) on snapshots no human
     * labeled, then dispositions with a class no weak label carries yet.
     * Weak labels and dispositions cover the whole snapshot (end NULL). */
    [DS_SQL_GATHER] = { "ds_gather",
        "WITH lab AS ("
        " SELECT l.snapshot_id, l.start_s, l.end_s, l.class, 'human'::text AS source,"
        "        l.confidence FROM labels l"
        " UNION ALL"
        " SELECT w.snapshot_id, 0, NULL, w.class, w.source, w.confidence FROM weak_labels w"
        "  WHERE NOT EXISTS (SELECT 1 FROM labels h WHERE h.snapshot_id = w.snapshot_id)"
        " UNION ALL"
        " SELECT a.snapshot_id, 0, NULL, a.class, 'disposition', 1 FROM alert_dispositions a"
        "  WHERE a.class IS NOT NULL"
        "    AND NOT EXISTS (SELECT 1 FROM labels h WHERE h.snapshot_id = a.snapshot_id)"
        "    AND NOT EXISTS (SELECT 1 FROM weak_labels w WHERE w.snapshot_id = a.snapshot_id))"
        " SELECT s.id AS snapshot_id,"
        "  (extract(epoch FROM s.trigger_time) * 1000000)::bigint AS trigger_us, s.sample_rate,"
        "  s.pre_samples, s.pre_samples + s.post_samples AS n_samples, s.channels::text AS channels,"
        "  s.device_id, COALESCE(d.asset_id, d.id) AS asset,"
        "  COALESCE(d.equipment_type, '') AS equipment_type, lab.start_s,"
        "  COALESCE(lab.end_s, (s.pre_samples + s.post_samples) / s.sample_rate) AS end_s,"
        "  lab.class, lab.source, lab.confidence"
        " FROM lab JOIN snapshots s ON s.id = lab.snapshot_id JOIN devices d ON d.id = s.device_id"
        " WHERE lab.source = ANY ($1::text[]) AND lab.confidence >= $2::real"
        "  AND ($3::text[] IS NULL OR lab.class = ANY ($3::text[]))"
        "  AND ($4::text[] IS NULL OR d.equipment_type = ANY ($4::text[]))"
        "  AND ($5::text[] IS NULL OR d.site = ANY ($5::text[]))"
        "  AND ($6::timestamptz IS NULL OR s.trigger_time >= $6::timestamptz)"
        "  AND ($7::timestamptz IS NULL OR s.trigger_time < $7::timestamptz)"
        " ORDER BY s.id, lab.start_s, lab.end_s, lab.class, lab.source", 7 },
    [DS_SQL_VERSION_INSERT] = { "ds_version_insert",
        "WITH v AS (INSERT INTO dataset_versions"
        "  (dataset_id, version, content_sha256, n_windows, summary, created_by)"
        "  SELECT $1, COALESCE(max(version), 0) + 1, decode($2, 'hex'), $3, $4::jsonb, $5"
        "  FROM dataset_versions WHERE dataset_id = $1 RETURNING version),"
        " l AS (INSERT INTO dataset_version_labels"
        "  SELECT $1, v.version, u.* FROM v, unnest($6::bigint[], $7::float8[], $8::float8[],"
        "   $9::text[], $10::text[], $11::real[]) AS u RETURNING 1),"
        " w AS (INSERT INTO dataset_windows"
        "  SELECT $1, v.version, u.* FROM v, unnest($12::bigint[], $13::bigint[], $14::int[],"
        "   $15::bigint[], $16::smallint[], $17::text[], $18::int[], $19::smallint[]) AS u"
        "  RETURNING 1)"
        " SELECT v.version, (SELECT count(*) FROM l) AS labels, (SELECT count(*) FROM w) AS windows"
        " FROM v", 19 },
    [DS_SQL_VERSION_GET] = { "ds_version_get",
        "SELECT encode(v.content_sha256, 'hex') AS content_sha256, v.n_windows,"
        " v.summary::text AS summary, v.manifest, d.definition::text AS definition, "
        DB_RFC3339("v.created_at") " AS created_at"
        " FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
        " WHERE v.dataset_id = $1 AND v.version = $2", 2 },
    [DS_SQL_WINDOWS_PAGE] = { "ds_windows_page",
        "SELECT row, snapshot_id, start_sample, start_us, cls, source, grp, split"
        " FROM dataset_windows WHERE dataset_id = $1 AND version = $2 AND row >= $3"
        " ORDER BY row LIMIT $4", 4 },
    [DS_SQL_MANIFEST_SET] = { "ds_manifest_set",
        "UPDATE dataset_versions SET manifest = $3 WHERE dataset_id = $1 AND version = $2"
        " AND manifest IS NULL", 3 },
    [DS_SQL_JOB_INSERT] = { "ds_job_insert",
        "INSERT INTO export_jobs (dataset_id, version, format, rows_total, created_by)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id", 5 },
    [DS_SQL_JOB_GET] = { "ds_job_get",
        "SELECT " JOB_COLS " FROM export_jobs WHERE id = $1", 1 },
    [DS_SQL_JOB_LIST] = { "ds_job_list",
        "SELECT " JOB_COLS " FROM export_jobs WHERE ($1::bigint IS NULL OR dataset_id = $1::bigint)"
        " AND ($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $3::int", 3 },
    [DS_SQL_JOB_PROGRESS] = { "ds_job_progress",
        "UPDATE export_jobs SET rows_done = $2, bytes = $3,"
        " status = CASE WHEN status = 'queued' THEN 'running' ELSE status END"
        " WHERE id = $1 RETURNING status", 3 },
    [DS_SQL_JOB_FINISH] = { "ds_job_finish",
        "UPDATE export_jobs SET status = $2, bytes = $3, sha256 = decode($4, 'hex'), error = $5,"
        " rows_done = CASE WHEN $2 = 'done' THEN rows_total ELSE rows_done END,"
        " finished_at = now() WHERE id = $1 AND status IN ('queued', 'running')", 5 },
    [DS_SQL_JOB_CANCEL] = { "ds_job_cancel",
        "UPDATE export_jobs SET status = CASE WHEN status IN ('queued', 'running')"
        " THEN 'cancelled' ELSE status END,"
        " finished_at = COALESCE(finished_at, now()) WHERE id = $1 RETURNING status", 1 },
    [DS_SQL_FIND_DEF] = { "ds_find_def",
        "SELECT id FROM datasets WHERE definition = $1::jsonb ORDER BY id LIMIT 1", 1 },
};

int ds__exec(enum ds_stmt s, const char *const *vals, int binary, PGresult **out)
{
    return db_exec_own(&stmts[s], vals, NULL, NULL, binary, out);
}

int ds__version_row(int64_t dataset_id, int version, PGresult **out)
{
    char idb[24], vb[16];
    const char *vals[2] = { idb, vb };
    int err;

    snprintf(idb, sizeof idb, "%lld", (long long)dataset_id);
    snprintf(vb, sizeof vb, "%d", version);
    if ((err = ds__exec(DS_SQL_VERSION_GET, vals, 0, out)) != SRV_OK)
        return err;
    if (PQntuples(*out) != 1) {
        PQclear(*out);
        *out = NULL;
        return SRV_ENOTFOUND;
    }
    return SRV_OK;
}
