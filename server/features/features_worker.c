/* features_worker.c - the background thread that computes the features of
 * every new snapshot off the ingest path: it polls for snapshots without a
 * feature_jobs row, decodes each stored envelope, stores one
 * snapshot_features row per channel, records the job, and calls the
 * registered after() (the rules' evaluation) for the snapshot.
 *
 * A snapshot that cannot be decoded is recorded with its error, so the
 * worker does not retry it forever. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/features/features.h"
#include "server/features/features_int.h"
#include "server/ingest/ingest.h"
#include "server/srv/srv.h"
#include "server/srv/srv_worker.h"


/* One channel's row; non-finite numbers are stored as 0 (the columns are
 * NOT NULL and a rule must not see NaN as a value). */
static int store_channel(const char *idb, const struct feat_channel *f)
{
    const double v[8] = { f->mean, f->std, f->rms, f->peak, f->crest, f->kurtosis,
                          f->dominant_hz, f->bin_hz };
    char nums[8][32], tok[32];
    const char *vals[11];
    struct srv_buf spec = { 0 };
    size_t k;
    int err;

    vals[0] = idb;
    vals[1] = f->name;
    for (k = 0; k < 8; k++) {
        snprintf(nums[k], sizeof nums[k], "%.9g", isfinite(v[k]) ? v[k] : 0.0);
        vals[2 + k] = nums[k];
    }
    db_array_begin(&spec);
    for (k = 0; k < FEAT_BINS; k++) {
        snprintf(tok, sizeof tok, "%.6g", f->spectrum[k]);
        db_array_raw(&spec, tok);
    }
    db_array_end(&spec);
    vals[10] = srv_buf_take(&spec, NULL);
    if (!vals[10])
        return SRV_ENOMEM;
    err = db_exec_own(&features__sql[FQ_PUT], vals, NULL, NULL, 0, NULL);
    free((char *)vals[10]);
    return err;
}

/* Decode the stored envelope of snapshot idb.  0 with *fc and *n (both may be
 * empty) and *why set when the snapshot has no features to give; SRV_E* on
 * a database or memory failure. */
static int decode_snapshot(int64_t id, struct feat_channel **fc, size_t *n,
                           const char **why)
{
    PGresult *r = NULL;
    const uint8_t *env = NULL;
    size_t len = 0;
    int err;

    *fc = NULL;
    *n = 0;
    *why = NULL;
    err = ingest_stored(id, &r, &env, &len);
    if (err == SRV_ENOTFOUND) {
        *why = "snapshot vanished";
        err = SRV_OK;
    } else if (err == SRV_OK) {
        err = features_from_envelope(env, len, fc, n);
        if (err != SRV_OK && err != SRV_ENOMEM) {
            *why = "envelope could not be decoded";
            err = SRV_OK;
        }
    }
    PQclear(r);
    return err;
}

static int features_one(int64_t id)
{
    char idb[24];
    const char *vals[2] = { idb, NULL };
    struct feat_channel *fc = NULL;
    const char *why;
    size_t n, c;
    int err;

    snprintf(idb, sizeof idb, "%" PRId64, id);
    err = decode_snapshot(id, &fc, &n, &why);
    for (c = 0; c < n && err == SRV_OK; c++)
        err = store_channel(idb, &fc[c]);
    free(fc);
    if (err != SRV_OK)
        return err;
    vals[1] = why;
    err = db_exec_own(&features__sql[FQ_JOB_DONE], vals, NULL, NULL, 0, NULL);
    if (err == SRV_OK && why)
        srv_log("warn", "features: snapshot %" PRId64 ": %s", id, why);
    return err;
}

int features_worker_pass(int batch, features_after_fn after)
{
    char lim[16];
    const char *vals[1] = { lim };
    PGresult *r = NULL;
    int i, n, err;

    snprintf(lim, sizeof lim, "%d", batch > 0 ? batch : 1);
    err = db_exec_own(&features__sql[FQ_PENDING], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    n = PQntuples(r);
    for (i = 0; i < n && err == SRV_OK; i++) {
        int64_t id = db_int64(r, i, "id");

        err = features_one(id);
        if (err == SRV_OK && after)
            err = after(id);
    }
    PQclear(r);
    return err == SRV_OK ? n : err;
}

#define FEATURES_BATCH 32
/* On a small machine the worker's FFTs competed with ingest for the same
 * cores (docs/BENCHMARKS.md): its thread runs this much nicer. */
#define FEATURES_WORKER_NICE 10

static features_after_fn g_after;

/* Work done means more may have arrived meanwhile: the worker looks again
 * at once, and sleeps only when a pass finds nothing (or fails). */
static int worker_pass(void *arg)
{
    (void)arg;
    return features_worker_pass(FEATURES_BATCH, g_after) > 0;
}

static struct srv_worker g_worker = {
    .name = "features", .nice = FEATURES_WORKER_NICE, .pass = worker_pass,
    .finish = db_thread_release,
};

int features_worker_start(unsigned poll_ms, features_after_fn after)
{
    g_after = after;
    g_worker.period_ms = poll_ms ? poll_ms : 1000;
    if (srv_worker_start(&g_worker) != 0)
        return SRV_EINTERNAL;
    srv_log("info", "features: worker started (poll %u ms)", g_worker.period_ms);
    return SRV_OK;
}

void features_worker_stop(void)
{
    srv_worker_stop(&g_worker);
}
