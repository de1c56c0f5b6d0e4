/* features_worker.c - the background thread that computes the features of
 * every new snapshot off the ingest path: it polls for snapshots without a
 * feature_jobs row, decodes each stored envelope, stores one
 * snapshot_features row per channel, records the job, and calls the
 * registered after() (the rules' evaluation) for the snapshot.
 *
 * A snapshot that cannot be decoded is recorded with its error, so the
 * worker does not retry it forever. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/db/db.h"
#include "server/features/features.h"
#include "server/features/features_int.h"
#include "server/ingest/ingest.h"
#include "server/srv/srv.h"


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
 * cores (docs/BENCHMARKS.md): its thread runs this much nicer (Linux sets
 * priorities per thread). */
#define FEATURES_WORKER_NICE 10

static pthread_t g_thread;
static int g_running;
static unsigned g_poll_ms;
static features_after_fn g_after;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;

/* Idle or the database is away: wait poll_ms, woken early by stop.  Called
 * with g_lock held. */
static void idle_wait(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += g_poll_ms / 1000;
    ts.tv_nsec += (long)(g_poll_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_cond, &g_lock, &ts);
}

static void *worker_main(void *arg)
{
    (void)arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), FEATURES_WORKER_NICE) != 0)
        srv_log("warn", "features: cannot lower the worker's priority: %s", strerror(errno));
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        int n;

        pthread_mutex_unlock(&g_lock);
        n = features_worker_pass(FEATURES_BATCH, g_after);
        pthread_mutex_lock(&g_lock);
        if (n <= 0 && g_running)
            idle_wait();
    }
    pthread_mutex_unlock(&g_lock);
    db_thread_release();
    return NULL;
}

int features_worker_start(unsigned poll_ms, features_after_fn after)
{
    int rc;

    pthread_mutex_lock(&g_lock);
    if (g_running) {
        pthread_mutex_unlock(&g_lock);
        return SRV_OK;
    }
    g_running = 1;
    g_poll_ms = poll_ms ? poll_ms : 1000;
    g_after = after;
    rc = pthread_create(&g_thread, NULL, worker_main, NULL);
    if (rc != 0)
        g_running = 0;
    pthread_mutex_unlock(&g_lock);
    if (rc != 0) {
        srv_log("error", "features: worker thread: %s", strerror(rc));
        return SRV_EINTERNAL;
    }
    srv_log("info", "features: worker started (poll %u ms)", g_poll_ms);
    return SRV_OK;
}

void features_worker_stop(void)
{
    int was;

    pthread_mutex_lock(&g_lock);
    was = g_running;
    g_running = 0;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (was)
        pthread_join(g_thread, NULL);
}
