/* rules_sql.c - every SQL statement of the rules module, listed once and
 * prepared on each connection at first use (db_exec_own), and the small
 * helpers that pass ids to them and read ids back.
 *
 * Human labels are read only here (RQ_STATS, RQ_WEAK_GET), from the labels
 * table of the labeling module: a snapshot's human classes are the distinct
 * classes of its labels. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/db/db.h"
#include "server/rules/rules_int.h"

#define RULE_COLS "id, name, expr, class, weight, enabled, created_by, " \
    "(extract(epoch FROM created_at) * 1000000)::bigint AS created_us, " \
    "(extract(epoch FROM updated_at) * 1000000)::bigint AS updated_us"

static const struct db_sql qs[RQ_COUNT] = {
    [RQ_CONTEXT] = { "rules_context",
        "SELECT s.id, s.device_id, d.site, d.equipment_type, s.detector, s.score,"
        " s.sample_rate, f.channel, f.mean, f.std, f.rms, f.peak, f.crest, f.kurtosis,"
        " f.dominant_hz, f.bin_hz, f.spectrum::text AS spectrum"
        " FROM snapshots s JOIN snapshot_features f ON f.snapshot_id = s.id"
        " LEFT JOIN devices d ON d.id = s.device_id"
        " WHERE s.id IN (SELECT snapshot_id FROM feature_jobs WHERE snapshot_id > $1::bigint"
        "  AND snapshot_id <= $2::bigint AND error IS NULL ORDER BY snapshot_id LIMIT $3::int)"
        " ORDER BY s.id, f.channel", 3 },
    [RQ_RULES_ENABLED] = { "rules_enabled",
        "SELECT id, expr, class, weight FROM rules WHERE enabled ORDER BY id", 0 },
    [RQ_RULE_GET] = { "rules_get", "SELECT " RULE_COLS " FROM rules WHERE id = $1::bigint", 1 },
    [RQ_RULES_LIST] = { "rules_list", "SELECT " RULE_COLS " FROM rules ORDER BY id", 0 },
    [RQ_RULE_INSERT] = { "rules_insert",
        "INSERT INTO rules (name, expr, class, weight, enabled, created_by)"
        " VALUES ($1, $2, $3, $4::real, $5::boolean, $6) RETURNING id", 6 },
    [RQ_RULE_UPDATE] = { "rules_update",
        "UPDATE rules SET name = $2, expr = $3, class = $4, weight = $5::real,"
        " enabled = $6::boolean, updated_at = now() WHERE id = $1::bigint RETURNING id", 6 },
    [RQ_RULE_DELETE] = { "rules_delete",
        "WITH h AS (SELECT snapshot_id FROM rule_hits WHERE rule_id = $1::bigint),"
        " d AS (DELETE FROM rules WHERE id = $1::bigint RETURNING id)"
        " SELECT (SELECT count(*) FROM d) AS deleted, h.snapshot_id"
        " FROM (SELECT 1) one LEFT JOIN h ON true", 1 },
    [RQ_RULE_HITS] = { "rules_hits",
        "SELECT snapshot_id FROM rule_hits WHERE rule_id = $1::bigint", 1 },
    [RQ_RULE_HITS_SET] = { "rules_hits_set",
        "WITH d AS (DELETE FROM rule_hits WHERE rule_id = $1::bigint"
        "  AND NOT (snapshot_id = ANY ($2::bigint[])))"
        " INSERT INTO rule_hits (rule_id, snapshot_id)"
        " SELECT $1::bigint, unnest($2::bigint[]) WHERE EXISTS"
        "  (SELECT 1 FROM rules WHERE id = $1::bigint) ON CONFLICT DO NOTHING", 2 },
    /* Several snapshots at once: $1 the snapshots, $2/$3 the (snapshot,
     * rule) pairs that hit; each snapshot's other hits go. */
    [RQ_SNAPSHOTS_HITS_SET] = { "rules_snapshots_hits_set",
        "WITH p AS (SELECT * FROM unnest($2::bigint[], $3::bigint[]) AS p(sid, rid)),"
        " d AS (DELETE FROM rule_hits h WHERE h.snapshot_id = ANY ($1::bigint[])"
        "  AND NOT EXISTS (SELECT 1 FROM p WHERE p.sid = h.snapshot_id AND p.rid = h.rule_id))"
        " INSERT INTO rule_hits (rule_id, snapshot_id)"
        " SELECT r.id, p.sid FROM p JOIN rules r ON r.id = p.rid"
        " ON CONFLICT DO NOTHING", 3 },
    [RQ_WEAK_DELETE_MANY] = { "rules_weak_delete_many",
        "DELETE FROM weak_labels WHERE snapshot_id = ANY ($1::bigint[])", 1 },
    [RQ_VOTE_INPUT] = { "rules_vote_input",
        "SELECT h.snapshot_id, r.id AS rule_id, r.class, r.weight FROM rule_hits h"
        " JOIN rules r ON r.id = h.rule_id WHERE r.enabled"
        " AND h.snapshot_id = ANY ($1::bigint[]) ORDER BY h.snapshot_id, r.id", 1 },
    [RQ_DISPOSITION_CLASS] = { "rules_disposition_class",
        "SELECT snapshot_id, class FROM alert_dispositions WHERE class IS NOT NULL"
        " AND snapshot_id = ANY ($1::bigint[])", 1 },
    [RQ_WEAK_PUT] = { "rules_weak_put",
        "INSERT INTO weak_labels (snapshot_id, class, source, confidence, votes)"
        " VALUES ($1::bigint, $2, $3, $4::real, $5::jsonb) ON CONFLICT (snapshot_id)"
        " DO UPDATE SET class = EXCLUDED.class, source = EXCLUDED.source,"
        " confidence = EXCLUDED.confidence, votes = EXCLUDED.votes, computed_at = now()", 5 },
    [RQ_WEAK_GET] = { "rules_weak_get",
        "SELECT (SELECT count(*) FROM snapshots WHERE id = $1::bigint) AS found,"
        " w.class, w.source, w.confidence, w.votes::text AS votes,"
        " (SELECT coalesce(json_agg(DISTINCT l.class), '[]') FROM labels l"
        "  WHERE l.snapshot_id = $1::bigint)::text AS human"
        " FROM (SELECT 1) one LEFT JOIN weak_labels w ON w.snapshot_id = $1::bigint", 1 },
    /* $2 demo (srv_query_demo): the snapshots counted, and so the hits
     * (the other rules' hits and the labels are those on the hits) */
    [RQ_STATS] = { "rules_stats",
        "WITH r AS (SELECT class FROM rules WHERE id = $1::bigint),"
        " mine AS (SELECT h.snapshot_id FROM rule_hits h JOIN snapshots s ON s.id = h.snapshot_id"
        "  WHERE h.rule_id = $1::bigint AND ($2::int = 1 OR s.demo = ($2::int = 2))),"
        " other AS (SELECT h.snapshot_id, ro.class FROM rule_hits h"
        "  JOIN rules ro ON ro.id = h.rule_id JOIN mine m ON m.snapshot_id = h.snapshot_id"
        "  WHERE h.rule_id <> $1::bigint AND ro.enabled),"
        " human AS (SELECT DISTINCT l.snapshot_id, l.class FROM labels l"
        "  JOIN mine m ON m.snapshot_id = l.snapshot_id)"
        " SELECT (SELECT count(*) FROM snapshots WHERE $2::int = 1 OR demo = ($2::int = 2)) AS snapshots,"
        " (SELECT count(*) FROM mine) AS hits,"
        " (SELECT count(DISTINCT snapshot_id) FROM other) AS overlapping,"
        " (SELECT count(DISTINCT snapshot_id) FROM other"
        "  WHERE class <> (SELECT class FROM r)) AS conflicting,"
        " (SELECT count(DISTINCT snapshot_id) FROM human) AS labeled,"
        " (SELECT count(DISTINCT snapshot_id) FROM human"
        "  WHERE class = (SELECT class FROM r)) AS agreeing", 2 },
    /* Where the rule applies: snapshots with features that have every
     * channel it reads, grouped by their device's equipment type ('' for
     * none), so pumps do not dilute a rule on a bearing's accel_x.  $3 demo
     * (srv_query_demo). */
    [RQ_STATS_BY_TYPE] = { "rules_stats_by_type",
        "WITH a AS (SELECT s.id, COALESCE(d.equipment_type, '') AS et FROM snapshots s"
        "  LEFT JOIN devices d ON d.id = s.device_id"
        "  WHERE ($3::int = 1 OR s.demo = ($3::int = 2))"
        "  AND EXISTS (SELECT 1 FROM snapshot_features f WHERE f.snapshot_id = s.id)"
        "  AND (SELECT count(DISTINCT f.channel) FROM snapshot_features f"
        "   WHERE f.snapshot_id = s.id AND f.channel = ANY($2::text[])) = cardinality($2::text[])),"
        " r AS (SELECT class FROM rules WHERE id = $1::bigint)"
        " SELECT a.et AS equipment_type, count(*) AS snapshots, count(h.snapshot_id) AS hits,"
        " count(*) FILTER (WHERE h.snapshot_id IS NOT NULL AND EXISTS"
        "  (SELECT 1 FROM labels l WHERE l.snapshot_id = a.id)) AS labeled,"
        " count(*) FILTER (WHERE h.snapshot_id IS NOT NULL AND EXISTS"
        "  (SELECT 1 FROM labels l WHERE l.snapshot_id = a.id AND l.class = (SELECT class FROM r)))"
        "  AS agreeing"
        " FROM a LEFT JOIN rule_hits h ON h.snapshot_id = a.id AND h.rule_id = $1::bigint"
        " GROUP BY a.et ORDER BY a.et", 3 },
    [RQ_UNKNOWN_CHANNELS] = { "rules_unknown_channels",
        "SELECT c AS channel FROM unnest($1::text[]) c WHERE EXISTS (SELECT 1 FROM snapshot_features)"
        " AND NOT EXISTS (SELECT 1 FROM snapshot_features f WHERE f.channel = c)", 1 },
};

int rules_q(enum rules_q q, const char *const *values, PGresult **out)
{
    return db_exec_own(&qs[q], values, NULL, NULL, 0, out);
}

int rules_q_id(enum rules_q q, int64_t id, PGresult **out)
{
    char idb[24];
    const char *vals[1] = { idb };

    snprintf(idb, sizeof idb, "%" PRId64, id);
    return rules_q(q, vals, out);
}

int rules_ids_push(struct rules_ids *ids, int64_t id)
{
    if (ids->n == ids->cap) {
        size_t nc = ids->cap ? ids->cap * 2 : 256;
        int64_t *nv = realloc(ids->v, nc * sizeof *nv);

        if (!nv)
            return SRV_ENOMEM;
        ids->v = nv;
        ids->cap = nc;
    }
    ids->v[ids->n++] = id;
    return SRV_OK;
}

int rules_ids_from(struct rules_ids *ids, const PGresult *r, const char *col)
{
    int i, err = SRV_OK;

    for (i = 0; i < PQntuples(r) && err == SRV_OK; i++)
        if (!db_isnull(r, i, col))
            err = rules_ids_push(ids, db_int64(r, i, col));
    return err;
}

void rules_ids_free(struct rules_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

char *rules_id_array(const int64_t *ids, size_t n)
{
    struct srv_buf b = { 0 };
    size_t i;

    db_array_begin(&b);
    for (i = 0; i < n; i++)
        db_array_int64(&b, ids[i]);
    db_array_end(&b);
    return srv_buf_take(&b, NULL);
}
