/* rules_sql.c - every SQL statement of the rules module, listed once and
 * prepared on each connection at first use (db_exec_sql).
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
    "(extract(epoch FROM created_at) * 1000000)::bigint, " \
    "(extract(epoch FROM updated_at) * 1000000)::bigint"

static const struct db_sql qs[RQ_COUNT] = {
    [RQ_PENDING_FEATURES] = { "rules_pending_features",
        "SELECT s.id FROM snapshots s WHERE NOT EXISTS"
        " (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)"
        " ORDER BY s.id LIMIT $1::int", 1 },
    [RQ_ENVELOPE] = { "rules_envelope", "SELECT envelope FROM snapshots WHERE id = $1::bigint", 1 },
    [RQ_FEATURES_PUT] = { "rules_features_put",
        "INSERT INTO snapshot_features (snapshot_id, channel, mean, std, rms, peak, crest,"
        " kurtosis, dominant_hz, bin_hz, spectrum) VALUES ($1::bigint, $2, $3::float8,"
        " $4::float8, $5::float8, $6::float8, $7::float8, $8::float8, $9::float8,"
        " $10::float8, $11::real[]) ON CONFLICT (snapshot_id, channel) DO UPDATE SET"
        " mean = EXCLUDED.mean, std = EXCLUDED.std, rms = EXCLUDED.rms, peak = EXCLUDED.peak,"
        " crest = EXCLUDED.crest, kurtosis = EXCLUDED.kurtosis,"
        " dominant_hz = EXCLUDED.dominant_hz, bin_hz = EXCLUDED.bin_hz,"
        " spectrum = EXCLUDED.spectrum", 11 },
    [RQ_JOB_DONE] = { "rules_job_done",
        "INSERT INTO feature_jobs (snapshot_id, error) VALUES ($1::bigint, $2)"
        " ON CONFLICT (snapshot_id) DO UPDATE SET error = EXCLUDED.error, computed_at = now()", 2 },
    [RQ_CONTEXT] = { "rules_context",
        "SELECT s.id, s.device_id, d.site, d.equipment_type, s.detector, s.score,"
        " s.sample_rate, f.channel, f.mean, f.std, f.rms, f.peak, f.crest, f.kurtosis,"
        " f.dominant_hz, f.bin_hz, f.spectrum::text"
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
        " SELECT (SELECT count(*) FROM d), (SELECT coalesce(array_agg(snapshot_id), '{}')"
        " FROM h)::text", 1 },
    [RQ_RULE_HITS] = { "rules_hits",
        "SELECT snapshot_id FROM rule_hits WHERE rule_id = $1::bigint", 1 },
    [RQ_RULE_HITS_SET] = { "rules_hits_set",
        "WITH d AS (DELETE FROM rule_hits WHERE rule_id = $1::bigint"
        "  AND NOT (snapshot_id = ANY ($2::bigint[])))"
        " INSERT INTO rule_hits (rule_id, snapshot_id)"
        " SELECT $1::bigint, unnest($2::bigint[]) WHERE EXISTS"
        "  (SELECT 1 FROM rules WHERE id = $1::bigint) ON CONFLICT DO NOTHING", 2 },
    [RQ_SNAPSHOT_HITS_SET] = { "rules_snapshot_hits_set",
        "WITH d AS (DELETE FROM rule_hits WHERE snapshot_id = $1::bigint"
        "  AND NOT (rule_id = ANY ($2::bigint[])))"
        " INSERT INTO rule_hits (rule_id, snapshot_id)"
        " SELECT r.id, $1::bigint FROM rules r WHERE r.id = ANY ($2::bigint[])"
        " ON CONFLICT DO NOTHING", 2 },
    [RQ_VOTE_INPUT] = { "rules_vote_input",
        "SELECT h.snapshot_id, r.id, r.class, r.weight FROM rule_hits h"
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
    [RQ_WEAK_DELETE] = { "rules_weak_delete",
        "DELETE FROM weak_labels WHERE snapshot_id = $1::bigint", 1 },
    [RQ_WEAK_GET] = { "rules_weak_get",
        "SELECT (SELECT count(*) FROM snapshots WHERE id = $1::bigint),"
        " w.class, w.source, w.confidence, w.votes::text,"
        " (SELECT coalesce(json_agg(DISTINCT l.class), '[]') FROM labels l"
        "  WHERE l.snapshot_id = $1::bigint)::text"
        " FROM (SELECT 1) one LEFT JOIN weak_labels w ON w.snapshot_id = $1::bigint", 1 },
    [RQ_STATS] = { "rules_stats",
        "WITH r AS (SELECT class FROM rules WHERE id = $1::bigint),"
        " mine AS (SELECT snapshot_id FROM rule_hits WHERE rule_id = $1::bigint),"
        " other AS (SELECT h.snapshot_id, ro.class FROM rule_hits h"
        "  JOIN rules ro ON ro.id = h.rule_id JOIN mine m ON m.snapshot_id = h.snapshot_id"
        "  WHERE h.rule_id <> $1::bigint AND ro.enabled),"
        " human AS (SELECT DISTINCT l.snapshot_id, l.class FROM labels l"
        "  JOIN mine m ON m.snapshot_id = l.snapshot_id)"
        " SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM mine),"
        " (SELECT count(DISTINCT snapshot_id) FROM other),"
        " (SELECT count(DISTINCT snapshot_id) FROM other WHERE class <> (SELECT class FROM r)),"
        " (SELECT count(DISTINCT snapshot_id) FROM human),"
        " (SELECT count(DISTINCT snapshot_id) FROM human WHERE class = (SELECT class FROM r))", 1 },
    [RQ_CLASS_EXISTS] = { "rules_class_exists",
        "SELECT 1 FROM label_classes WHERE name = $1 AND active", 1 },
    [RQ_UNKNOWN_CHANNELS] = { "rules_unknown_channels",
        "SELECT c FROM unnest($1::text[]) c WHERE EXISTS (SELECT 1 FROM snapshot_features)"
        " AND NOT EXISTS (SELECT 1 FROM snapshot_features f WHERE f.channel = c)", 1 },
    [RQ_SNAPSHOT_FEATURES] = { "rules_snapshot_features",
        "SELECT channel, mean, std, rms, peak, crest, kurtosis, dominant_hz, bin_hz,"
        " spectrum::text FROM snapshot_features WHERE snapshot_id = $1::bigint ORDER BY channel", 1 },
};

int rules_q(enum rules_q q, const char *const *values, const int *lengths,
            const int *formats, int binary, PGresult **out)
{
    return db_exec_own(&qs[q], values, lengths, formats, binary, out);
}

char *rules_id_array(const int64_t *ids, size_t n)
{
    size_t cap = n * 21 + 3, used = 0, i;
    char *s = malloc(cap);

    if (!s)
        return NULL;
    s[used++] = '{';
    for (i = 0; i < n; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s%" PRId64, i ? "," : "", ids[i]);
    s[used++] = '}';
    s[used] = '\0';
    return s;
}
