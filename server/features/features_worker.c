/* features_worker.c - the background thread that computes the features of
 * every new snapshot off the ingest path: it polls for snapshots without a
 * feature_jobs row, takes their envelopes from the ingest handoff (the copy
 * the upload left in memory) or, for those not held there, reads them back
 * (up to FEATURES_BATCH in one round trip), decodes each, stores one
 * snapshot_features row per channel and records the jobs (one statement for
 * the whole pass), and calls the registered after() (the rules'
 * evaluation) once for the pass.  Per
 * snapshot that was ten statements, each a round trip and a commit: the
 * PostgreSQL backend's CPU for them was several times the server's own cost
 * of an upload (docs/BENCHMARKS.md).
 *
 * A snapshot that cannot be decoded is recorded with its error, so the
 * worker does not retry it forever. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/features/features.h"
#include "server/features/features_int.h"
#include "server/ingest/ingest.h"
#include "server/srv/srv.h"
#include "server/srv/srv_worker.h"

#include <zstd.h>

/* The worker thread's decompression context (NULL elsewhere: one per call). */
static __thread ZSTD_DCtx *g_dctx;
/* Envelopes of this thread's last pass that came from the upload's handoff
 * rather than the database (debug timings). */
static __thread size_t g_pass_from_memory;
/* Where the last pass's time went (debug timings): the pending ids, the
 * features (decode, FFTs, the one statement of rows), the after(). */
static __thread double g_pass_ms[3];

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}


/* The rows of one pass, as the text arrays of FQ_PUT_MANY: one element per
 * channel row in the first eleven, one per snapshot in the last two. */
#define PUT_COLS 13

struct put_rows {
    struct srv_buf col[PUT_COLS];
};

static void put_begin(struct put_rows *p)
{
    int k;

    memset(p, 0, sizeof *p);
    for (k = 0; k < PUT_COLS; k++)
        db_array_begin(&p->col[k]);
}

static void put_free(struct put_rows *p)
{
    int k;

    for (k = 0; k < PUT_COLS; k++)
        srv_buf_free(&p->col[k]);
}

/* One channel's row; non-finite numbers are stored as 0 (the columns are
 * NOT NULL and a rule must not see NaN as a value). */
static void put_channel(struct put_rows *p, int64_t id, const struct feat_channel *f)
{
    const double v[8] = { f->mean, f->std, f->rms, f->peak, f->crest, f->kurtosis,
                          f->dominant_hz, f->bin_hz };
    struct srv_buf spec = { 0 };
    char tok[32];
    size_t k;

    db_array_int64(&p->col[0], id);
    db_array_text(&p->col[1], f->name);
    for (k = 0; k < 8; k++) {
        snprintf(tok, sizeof tok, "%.9g", isfinite(v[k]) ? v[k] : 0.0);
        db_array_raw(&p->col[2 + k], tok);
    }
    db_array_begin(&spec);
    for (k = 0; k < FEAT_BINS; k++) {
        snprintf(tok, sizeof tok, "%.6g", f->spectrum[k]);
        db_array_raw(&spec, tok);
    }
    db_array_end(&spec);
    if (spec.oom) {
        p->col[10].oom = 1;
        srv_buf_free(&spec);
        return;
    }
    db_array_text(&p->col[10], spec.p);
    srv_buf_free(&spec);
}

/* A snapshot's channels (two with the same name: the last one is stored,
 * as one upsert after the other did) and its job row. */
static void put_snapshot(struct put_rows *p, int64_t id, const struct feat_channel *fc,
                         size_t n, const char *why)
{
    size_t c, d;

    for (c = 0; c < n; c++) {
        for (d = c + 1; d < n && strcmp(fc[c].name, fc[d].name) != 0; d++)
            ;
        if (d == n)
            put_channel(p, id, &fc[c]);
    }
    db_array_int64(&p->col[11], id);
    db_array_text(&p->col[12], why);
    if (why)
        srv_log("warn", "features: snapshot %" PRId64 ": %s", id, why);
}

/* One snapshot's features from its envelope into the pass's rows (an
 * envelope that cannot be decoded is recorded as such).  SRV_OK or
 * SRV_ENOMEM. */
static int features_one(struct put_rows *p, struct ZSTD_DCtx_s *dctx, int64_t id,
                        const uint8_t *buf, size_t len)
{
    struct feat_channel *fc = NULL;
    size_t nch = 0;
    int ferr = features_from_envelope_ctx(dctx, buf, len, &fc, &nch);

    if (ferr != SRV_ENOMEM)
        put_snapshot(p, id, fc, ferr == SRV_OK ? nch : 0,
                     ferr == SRV_OK ? NULL : "envelope could not be decoded");
    free(fc);
    return ferr == SRV_ENOMEM ? ferr : SRV_OK;
}

/* Features of the snapshots ids[0..n) (ascending), stored in one statement
 * with their job rows.  The envelopes the upload handed over in memory
 * (ingest_handoff) are used as they are; the rest come from the database in
 * as few round trips as the byte budget allows (one for small ones).  Both
 * are the same bytes: the envelope as received is what is stored.
 * *from_memory gets how many were handed over. */
#define PASS_ENVELOPE_BYTES (8u << 20)

static int features_many(struct ZSTD_DCtx_s *dctx, const int64_t *ids_in, size_t n_in,
                         size_t *from_memory)
{
    struct put_rows p;
    const char *vals[PUT_COLS];
    char *own[PUT_COLS] = { NULL };
    uint8_t **held = calloc(n_in ? n_in : 1, sizeof *held);
    size_t *held_len = calloc(n_in ? n_in : 1, sizeof *held_len);
    int64_t *ids = malloc((n_in ? n_in : 1) * sizeof *ids);
    size_t at = 0, k, n = 0;
    int err = SRV_OK;

    *from_memory = 0;
    put_begin(&p);
    if (!held || !held_len || !ids)
        err = SRV_ENOMEM;
    if (err == SRV_OK)
        *from_memory = ingest_handoff_take(ids_in, n_in, held, held_len);
    /* The handed-over ones first; ids keeps the rest, still ascending. */
    for (k = 0; k < n_in && err == SRV_OK; k++) {
        if (held[k])
            err = features_one(&p, dctx, ids_in[k], held[k], held_len[k]);
        else
            ids[n++] = ids_in[k];
    }
    for (k = 0; held && k < n_in; k++)
        free(held[k]);
    free(held);
    free(held_len);
    while (at < n && err == SRV_OK) {
        PGresult *r = NULL;
        int row, rows;

        err = ingest_stored_many(ids + at, n - at, PASS_ENVELOPE_BYTES, &r);
        rows = err == SRV_OK ? PQntuples(r) : 0;
        for (row = 0; row < rows && err == SRV_OK; row++) {
            int64_t id = strtoll(db_text(r, row, "id"), NULL, 10);

            /* ids with no row before this one: deleted since the pass began */
            while (at < n && ids[at] != id)
                put_snapshot(&p, ids[at++], NULL, 0, "snapshot vanished");
            if (at == n)
                break;
            err = features_one(&p, dctx, ids[at], (const uint8_t *)db_text(r, row, "envelope"),
                               (size_t)db_len(r, row, "envelope"));
            if (err == SRV_OK)
                at++;
        }
        PQclear(r);
        if (rows == 0)      /* none of the rest exists any more */
            while (at < n && err == SRV_OK)
                put_snapshot(&p, ids[at++], NULL, 0, "snapshot vanished");
    }
    for (k = 0; k < PUT_COLS && err == SRV_OK; k++) {
        db_array_end(&p.col[k]);
        own[k] = srv_buf_take(&p.col[k], NULL);
        if (!own[k])
            err = SRV_ENOMEM;
        vals[k] = own[k];
    }
    if (err == SRV_OK)
        err = db_exec_own(&features__sql[FQ_PUT_MANY], vals, NULL, NULL, 0, NULL);
    for (k = 0; k < PUT_COLS; k++)
        free(own[k]);
    put_free(&p);
    free(ids);
    return err;
}

int features_worker_pass_range(int batch, int64_t above, int64_t upto, features_after_fn after,
                               int64_t *last)
{
    char lim[16], lo[24], hi[24];
    const char *vals[3] = { lim, lo, hi };
    PGresult *r = NULL;
    int64_t top = 0, *ids = NULL;
    double t0 = mono_ms(), t1, t2;
    int i, n, err;

    g_pass_ms[0] = g_pass_ms[1] = g_pass_ms[2] = 0;
    if (last) {
        /* Read before the pending ids: every id up to top that is visible
         * now is visible to that query too. */
        err = db_exec_own(&features__sql[FQ_MAX_ID], NULL, NULL, NULL, 0, &r);
        if (err != SRV_OK)
            return err;
        top = db_int64(r, 0, "id");
        PQclear(r);
        r = NULL;
    }
    snprintf(lim, sizeof lim, "%d", batch > 0 ? batch : 1);
    snprintf(lo, sizeof lo, "%" PRId64, above);
    snprintf(hi, sizeof hi, "%" PRId64, upto);
    err = db_exec_own(&features__sql[FQ_PENDING], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    n = PQntuples(r);
    ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids)
        err = SRV_ENOMEM;
    for (i = 0; i < n && err == SRV_OK; i++)
        ids[i] = db_int64(r, i, "id");
    g_pass_from_memory = 0;
    t1 = mono_ms();
    if (err == SRV_OK && n > 0)
        err = features_many(g_dctx, ids, (size_t)n, &g_pass_from_memory);
    t2 = mono_ms();
    if (err == SRV_OK && n > 0 && after)
        err = after(ids, (size_t)n);
    g_pass_ms[0] = t1 - t0;
    g_pass_ms[1] = t2 - t1;
    g_pass_ms[2] = mono_ms() - t2;
    if (err == SRV_OK && n > 0 && last)
        *last = ids[n - 1];
    free(ids);
    PQclear(r);
    /* A short pass took every pending id in range: what else is there up
     * to top was done already (here, or by another server's worker). */
    if (err == SRV_OK && last && n < (batch > 0 ? batch : 1) && top > *last)
        *last = top < upto ? top : upto;
    return err == SRV_OK ? n : err;
}

int features_worker_pass(int batch, features_after_fn after)
{
    return features_worker_pass_range(batch, 0, INT64_MAX, after, NULL);
}

#define FEATURES_BATCH 64
/* After a pass that found fewer snapshots than it could take, the worker
 * waits this long before the next one: a pass costs about ten statements
 * whatever its size, and passes of two or three snapshots each, back to
 * back, cost PostgreSQL three times as much per snapshot as full ones
 * (docs/BENCHMARKS.md).  Features then come at most this much later. */
#define FEATURES_SHORT_PASS_MS 250

static features_after_fn g_after;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Uploads first: while the group committer's queue holds a burst (at least
 * FEATURES_YIELD_DEPTH rows: the committers are behind the arrivals), a pass
 * would take cores from them, and the worker's PostgreSQL backend is out of
 * reach of its nice.  So the worker waits in steps of FEATURES_YIELD_MS, at
 * most FEATURES_YIELD_MAX_MS in a row: under load that never lets up the
 * features still advance, a pass per second at least, and they catch up
 * when it ends.  At moderate rates the queue stays short and nothing waits.
 * (A stop waits for this too: at most a second.) */
#define FEATURES_YIELD_DEPTH 64
#define FEATURES_YIELD_MS 20
#define FEATURES_YIELD_MAX_MS 1000

static void yield_to_ingest(void)
{
    unsigned waited = 0;

    while (waited < FEATURES_YIELD_MAX_MS && ingest_queue_depth() >= FEATURES_YIELD_DEPTH) {
        sleep_ms(FEATURES_YIELD_MS);
        waited += FEATURES_YIELD_MS;
    }
}

/* Ids come from a sequence in the committers' transactions, so one may
 * commit after a higher one was already taken here (two committers): the
 * passes start above a floor (the highest id taken), and every
 * FEATURES_SWEEP_S a sweep looks again at the ids between the floor of two
 * sweeps ago and the floor, for such stragglers.  A pass that comes back
 * short moves the floor to the highest id there was (so ids done by
 * another server's worker are not walked over again).  The first pass after
 * a start looks at every id (what a stop left undone). */
#define FEATURES_SWEEP_S 30

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The sweep of (above, upto]: passes until one comes back short. */
static int sweep(int64_t above, int64_t upto)
{
    int n;

    do {
        int64_t last = above;

        n = features_worker_pass_range(FEATURES_BATCH, above, upto, g_after, &last);
        above = last;
    } while (n == FEATURES_BATCH && above < upto);
    return n;
}

/* The worker thread's state between passes (only that thread touches it). */
static int64_t g_floor, g_swept_to[2];
static int g_first = 1;
static double g_next_sweep;

/* One pass; > 0 when the worker should look again at once. */
static int worker_pass(void *arg)
{
    int64_t last = g_floor;
    double t0;
    int n;

    (void)arg;
    if (!g_dctx)
        g_dctx = ZSTD_createDCtx();     /* NULL: each envelope makes its own */
    if (g_next_sweep == 0)
        g_next_sweep = mono_s() + FEATURES_SWEEP_S;
    yield_to_ingest();
    if (mono_s() >= g_next_sweep) {
        if (sweep(g_swept_to[0], g_floor) >= 0) {
            g_swept_to[0] = g_swept_to[1];
            g_swept_to[1] = g_floor;
            /* No pass or sweep looks at these ids again: what the handoff
             * still holds of them was done from the database (or
             * elsewhere) and only takes room. */
            ingest_handoff_forget_upto(g_swept_to[0]);
        }
        g_next_sweep = mono_s() + FEATURES_SWEEP_S;
    }
    t0 = mono_s();
    n = features_worker_pass_range(FEATURES_BATCH, g_floor, INT64_MAX, g_after, &last);
    if (srv_log_debug() && n > 0)
        srv_log("debug", "features pass: %d snapshots in %.2fms, %zu handed over"
                " (pending %.2fms, features %.2fms, after %.2fms)", n, (mono_s() - t0) * 1e3,
                g_pass_from_memory, g_pass_ms[0], g_pass_ms[1], g_pass_ms[2]);
    g_floor = last;
    if (g_first && n >= 0) {
        /* Below the first pass's ids, every snapshot was done. */
        g_swept_to[0] = g_swept_to[1] = g_floor;
        g_first = 0;
    }
    if (n <= 0)
        return 0;       /* nothing (or failed): the worker's period */
    if (n < FEATURES_BATCH)
        sleep_ms(FEATURES_SHORT_PASS_MS);
    return 1;
}

static void worker_finish(void)
{
    ZSTD_freeDCtx(g_dctx);
    g_dctx = NULL;
    db_thread_release();
}

static struct srv_worker g_worker = {
    .name = "features", .pass = worker_pass,
    .finish = worker_finish,
};

int features_worker_start(unsigned poll_ms, size_t handoff_bytes, features_after_fn after)
{
    if (g_worker.started)
        return SRV_OK;
    g_after = after;
    g_floor = 0;
    g_swept_to[0] = g_swept_to[1] = 0;
    g_first = 1;
    g_next_sweep = 0;
    g_worker.period_ms = poll_ms ? poll_ms : 1000;
    /* Before the thread: every snapshot stored from now on may be handed
     * over; the ones stored before (a restart) are read back. */
    ingest_handoff_configure(handoff_bytes);
    if (srv_worker_start(&g_worker) != 0) {
        ingest_handoff_configure(0);
        return SRV_EINTERNAL;
    }
    srv_log("info", "features: worker started (poll %u ms, handoff %zu MB)", g_worker.period_ms,
            handoff_bytes >> 20);
    return SRV_OK;
}

void features_worker_stop(void)
{
    srv_worker_stop(&g_worker);
    ingest_handoff_configure(0);
}
