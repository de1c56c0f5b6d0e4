/* features_sql.c - the features module's SQL, listed once: the worker's
 * statements and the read behind GET /api/v1/snapshots/{id}/features. */
#include "server/db/db.h"
#include "server/features/features_int.h"

const struct db_sql features__sql[FQ_COUNT] = {
    [FQ_PENDING] = { "features_pending",
        "SELECT s.id FROM snapshots s WHERE NOT EXISTS"
        " (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)"
        " ORDER BY s.id LIMIT $1::int", 1 },
    [FQ_PUT] = { "features_put",
        "INSERT INTO snapshot_features (snapshot_id, channel, mean, std, rms, peak, crest,"
        " kurtosis, dominant_hz, bin_hz, spectrum) VALUES ($1::bigint, $2, $3::float8,"
        " $4::float8, $5::float8, $6::float8, $7::float8, $8::float8, $9::float8,"
        " $10::float8, $11::real[]) ON CONFLICT (snapshot_id, channel) DO UPDATE SET"
        " mean = EXCLUDED.mean, std = EXCLUDED.std, rms = EXCLUDED.rms, peak = EXCLUDED.peak,"
        " crest = EXCLUDED.crest, kurtosis = EXCLUDED.kurtosis,"
        " dominant_hz = EXCLUDED.dominant_hz, bin_hz = EXCLUDED.bin_hz,"
        " spectrum = EXCLUDED.spectrum", 11 },
    [FQ_JOB_DONE] = { "features_job_done",
        "INSERT INTO feature_jobs (snapshot_id, error) VALUES ($1::bigint, $2)"
        " ON CONFLICT (snapshot_id) DO UPDATE SET error = EXCLUDED.error, computed_at = now()", 2 },
    [FQ_SNAPSHOT] = { "features_snapshot",
        "SELECT channel, mean, std, rms, peak, crest, kurtosis, dominant_hz, bin_hz,"
        " spectrum::text AS spectrum FROM snapshot_features WHERE snapshot_id = $1::bigint"
        " ORDER BY channel", 1 },
};
