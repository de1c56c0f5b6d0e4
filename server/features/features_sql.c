/* features_sql.c - the features module's SQL, listed once: the worker's
 * statements and the read behind GET /api/v1/snapshots/{id}/features. */
#include "server/db/db.h"
#include "server/features/features_int.h"

const struct db_sql features__sql[FQ_COUNT] = {
    [FQ_PENDING] = { "features_pending",
        /* Ids in ($2, $3] only: the worker's floor keeps this an index
         * range of a few rows, where an anti-join over the whole table took
         * 170 ms at 60,000 snapshots (and grows with the table). */
        "SELECT s.id FROM snapshots s WHERE s.id > $2::bigint AND s.id <= $3::bigint"
        " AND NOT EXISTS (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)"
        " ORDER BY s.id LIMIT $1::int", 3 },
    [FQ_MAX_ID] = { "features_max_id",
        "SELECT coalesce(max(id), 0) AS id FROM snapshots", 0 },
    /* A pass's rows as arrays ($1-$11 one element per channel row, the
     * spectrum as the text of a real[]; $12-$13 one per snapshot, error NULL
     * when its features were computed): every channel row and every job row
     * in one statement, so one round trip and one commit. */
    [FQ_PUT_MANY] = { "features_put_many",
        "WITH f AS (INSERT INTO snapshot_features (snapshot_id, channel, mean, std, rms, peak,"
        "  crest, kurtosis, dominant_hz, bin_hz, spectrum)"
        "  SELECT sid, ch, mean, std, rms, peak, crest, kurt, dom, binhz, spec::real[]"
        "  FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[], $5::float8[],"
        "   $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::text[])"
        "   AS v(sid, ch, mean, std, rms, peak, crest, kurt, dom, binhz, spec)"
        "  ON CONFLICT (snapshot_id, channel) DO UPDATE SET"
        "  mean = EXCLUDED.mean, std = EXCLUDED.std, rms = EXCLUDED.rms, peak = EXCLUDED.peak,"
        "  crest = EXCLUDED.crest, kurtosis = EXCLUDED.kurtosis,"
        "  dominant_hz = EXCLUDED.dominant_hz, bin_hz = EXCLUDED.bin_hz,"
        "  spectrum = EXCLUDED.spectrum)"
        " INSERT INTO feature_jobs (snapshot_id, error)"
        " SELECT * FROM unnest($12::bigint[], $13::text[])"
        " ON CONFLICT (snapshot_id) DO UPDATE SET error = EXCLUDED.error, computed_at = now()",
        13 },
    [FQ_SNAPSHOT] = { "features_snapshot",
        "SELECT channel, mean, std, rms, peak, crest, kurtosis, dominant_hz, bin_hz,"
        " spectrum::text AS spectrum FROM snapshot_features WHERE snapshot_id = $1::bigint"
        " ORDER BY channel", 1 },
};
