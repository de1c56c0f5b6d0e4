/* ingest.c - see ingest.h.  The cheap, stateless checks come first so a
 * flood of garbage costs no database round trip; the device comes from the
 * fleet cache; the signature is checked before the sequence lookup so an
 * unsigned body cannot probe what is stored; decompression (the expensive
 * step) runs once and only for new snapshots; the row is stored by the group
 * committer when one runs. */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <zstd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/ingest/ingest_int.h"
#include "server/srv/srv.h"

int ingest_wire_error(int wire_err)
{
    switch (wire_err) {
    case WIRE_OK: return SRV_OK;
    case WIRE_ETOOBIG: return SRV_ETOOBIG;
    case WIRE_EFRAME: return SRV_EFRAME;
    case WIRE_ESIGNATURE: return SRV_ESIGNATURE;
    case WIRE_ENOMEM: return SRV_ENOMEM;
    case WIRE_EINTERNAL: return SRV_EINTERNAL;
    default: return SRV_EENVELOPE;
    }
}

int ingest_stored(int64_t id, PGresult **r, const uint8_t **buf, size_t *len)
{
    char idb[24];
    const char *vals[1] = { idb };
    int err;

    *r = NULL;
    snprintf(idb, sizeof idb, "%" PRId64, id);
    err = db_exec_own(&ingest__sql[INGEST_SQL_STORED], vals, NULL, NULL, 1, r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(*r) != 1 || db_isnull(*r, 0, "envelope"))
        return SRV_ENOTFOUND;
    *buf = (const uint8_t *)db_text(*r, 0, "envelope");
    *len = (size_t)db_len(*r, 0, "envelope");
    return SRV_OK;
}

int ingest_stored_many_send(const int64_t *ids, size_t n, size_t max_bytes)
{
    struct srv_buf arr = { 0 };
    char budget[24];
    const char *vals[2];
    size_t i;
    int err;

    db_array_begin(&arr);
    for (i = 0; i < n; i++)
        db_array_int64(&arr, ids[i]);
    db_array_end(&arr);
    if (arr.oom) {
        srv_buf_free(&arr);
        return SRV_ENOMEM;
    }
    snprintf(budget, sizeof budget, "%zu", max_bytes);
    vals[0] = arr.p;
    vals[1] = budget;
    err = db_send_own(&ingest__sql[INGEST_SQL_STORED_MANY], vals, NULL, NULL, 1);
    srv_buf_free(&arr);
    return err;
}

int ingest_stored_many_wait(PGresult **r)
{
    *r = NULL;
    return db_wait_own(&ingest__sql[INGEST_SQL_STORED_MANY], r);
}

int ingest_stored_many(const int64_t *ids, size_t n, size_t max_bytes, PGresult **r)
{
    int err = ingest_stored_many_send(ids, n, max_bytes);

    *r = NULL;
    return err == SRV_OK ? ingest_stored_many_wait(r) : err;
}

/* Look up (device, seq).  *found 0 when absent; else *id and *same. */
static int seq_lookup(const char *dev, uint64_t seq, const uint8_t sha[32],
                      int *found, int64_t *id, int *same)
{
    char seqs[24];
    const char *vals[3] = { dev, seqs, (const char *)sha };
    int lens[3] = { 0, 0, 32 }, fmts[3] = { 0, 0, 1 };
    PGresult *r = NULL;
    int err;

    snprintf(seqs, sizeof seqs, "%" PRIu64, seq);
    err = db_exec_own(&ingest__sql[INGEST_SQL_SEQ_LOOKUP], vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        return err;
    *found = PQntuples(r) == 1;
    if (*found) {
        *id = db_int64(r, 0, "snapshot_id");
        *same = db_bool(r, 0, "same_bytes");
    }
    PQclear(r);
    return SRV_OK;
}

/* One zstd context and scratch buffer per worker thread: creating a context
 * per upload (wire_decode_samples does) showed in the ingest profile, and
 * large short-lived buffers churn malloc.  Freed when the thread ends. */
#define DECODE_KEEP_MAX (1u << 20)      /* scratch kept between uploads up to this */

struct decode_tls {
    ZSTD_DCtx *dctx;
    void *buf;
    size_t cap;
};

static pthread_key_t decode_key;
static pthread_once_t decode_once = PTHREAD_ONCE_INIT;
static int decode_key_ok;

static void decode_tls_free(void *p)
{
    struct decode_tls *t = p;

    ZSTD_freeDCtx(t->dctx);
    free(t->buf);
    free(t);
}

static void decode_key_make(void)
{
    decode_key_ok = pthread_key_create(&decode_key, decode_tls_free) == 0;
}

static struct decode_tls *decode_tls_get(void)
{
    struct decode_tls *t;

    pthread_once(&decode_once, decode_key_make);
    if (!decode_key_ok)
        return NULL;
    t = pthread_getspecific(decode_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->dctx = ZSTD_createDCtx();
    if (!t->dctx || ZSTD_isError(ZSTD_DCtx_setParameter(t->dctx, ZSTD_d_windowLogMax,
                                                        WIRE_MAX_WINDOW_LOG)) ||
        pthread_setspecific(decode_key, t) != 0) {
        ZSTD_freeDCtx(t->dctx);
        free(t);
        return NULL;
    }
    return t;
}

/* Wire v2: decoded in full, since a block's predictor record can be refused
 * (the format's transforms can fail there, unlike v1's). */
static int decode_check_v2(struct decode_tls *t, const struct wire_meta *m,
                           const struct wire_view *v, size_t nbytes, const char **reason)
{
    void *out = malloc(nbytes);
    int werr;

    if (!out)
        return SRV_ENOMEM;
    werr = wire_decode_samples_ctx(t->dctx, m, v, out, nbytes);
    free(out);
    if (werr == WIRE_ENOMEM)
        return SRV_ENOMEM;
    if (werr != WIRE_OK) {
        *reason = wire_strerror(werr);
        return SRV_EFRAME;
    }
    return SRV_OK;
}

/* The bounded decompression check: the frame must decode, within the
 * window limit, to exactly the declared nbytes (already bounded by the
 * caller).  The delta/shuffle transforms are not undone: they cannot fail,
 * and nothing here reads the samples.  SRV_OK, SRV_EFRAME or SRV_ENOMEM. */
static int decode_check(const struct wire_meta *m, const struct wire_view *v, size_t nbytes,
                        const char **reason)
{
    struct decode_tls *t = decode_tls_get();
    void *out;
    size_t r;

    if (!t)
        return SRV_ENOMEM;
    if (m->version == 2 && v->payload)
        return decode_check_v2(t, m, v, nbytes, reason);
    if ((m->flags & ~WIRE_FLAGS_KNOWN) || !v->payload) {
        *reason = "unknown transform flags";
        return SRV_EFRAME;
    }
    if (v->content_size != nbytes || v->payload_len > WIRE_MAX_PAYLOAD_LEN) {
        *reason = "frame size does not match the samples declared";
        return SRV_EFRAME;
    }
    if (nbytes <= t->cap) {
        out = t->buf;
    } else if (nbytes <= DECODE_KEEP_MAX) {
        out = realloc(t->buf, nbytes);
        if (!out)
            return SRV_ENOMEM;
        t->buf = out;
        t->cap = nbytes;
    } else {
        out = malloc(nbytes);
        if (!out)
            return SRV_ENOMEM;
    }
    r = ZSTD_decompressDCtx(t->dctx, out, nbytes, v->payload, v->payload_len);
    if (out != t->buf)
        free(out);
    if (ZSTD_isError(r) || r != nbytes) {
        *reason = ZSTD_isError(r) ? ZSTD_getErrorName(r) : "frame shorter than declared";
        /* A failed frame may leave the context mid-stream. */
        ZSTD_DCtx_reset(t->dctx, ZSTD_reset_session_only);
        return SRV_EFRAME;
    }
    return SRV_OK;
}

static char *channels_json(const struct wire_meta *m)
{
    json_t *a = json_array();
    char *s;
    unsigned i;

    if (!a)
        return NULL;
    for (i = 0; i < m->channel_count; i++) {
        if (json_array_append_new(a, json_pack("{s:s,s:s}", "name", m->channels[i].name,
                                               "unit", m->channels[i].unit)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

/* Format INGEST_SQL_INSERT's parameters; buf and sha stay borrowed. */
static int row_fill(struct ingest_row *w, const uint8_t *buf, size_t len,
                    const struct wire_meta *m, const uint8_t sha[32])
{
    memset(w, 0, sizeof *w);
    w->chans = channels_json(m);
    if (!w->chans)
        return SRV_ENOMEM;
    w->dev = m->device_id;
    w->seq_num = (int64_t)m->seq;
    snprintf(w->seq, sizeof w->seq, "%" PRIu64, m->seq);
    snprintf(w->tt, sizeof w->tt, "%" PRId64, m->trigger_time_us);
    snprintf(w->rate, sizeof w->rate, "%.17g", m->sample_rate);
    snprintf(w->stype, sizeof w->stype, "%u", (unsigned)m->sample_type);
    snprintf(w->nch, sizeof w->nch, "%u", (unsigned)m->channel_count);
    snprintf(w->pre, sizeof w->pre, "%" PRIu32, m->pre_samples);
    snprintf(w->post, sizeof w->post, "%" PRIu32, m->post_samples);
    snprintf(w->score, sizeof w->score, "%.9g", (double)m->score);
    w->vals[0] = m->device_id;
    w->vals[1] = w->seq;
    w->vals[2] = w->tt;
    w->vals[3] = w->rate;
    w->vals[4] = w->stype;
    w->vals[5] = w->nch;
    w->vals[6] = w->chans;
    w->vals[7] = w->pre;
    w->vals[8] = w->post;
    w->vals[9] = m->detector;
    w->vals[10] = w->score;
    w->vals[11] = (const char *)buf;
    w->lens[11] = (int)len;
    w->fmts[11] = 1;
    w->vals[12] = (const char *)sha;
    w->lens[12] = 32;
    w->fmts[12] = 1;
    return SRV_OK;
}

/* Store through the committer, or on this thread when none runs. */
static int store(struct ingest_row *w, int *inserted, int64_t *id)
{
    PGresult *r = NULL;
    int err;

    if (ingest__commit_running()) {
        err = ingest__commit_submit(w);
        if (err == SRV_OK)
            err = w->err;
        if (err == SRV_OK) {
            *inserted = w->inserted;
            *id = w->id;
        }
        if (err != SRV_EUNAVAIL || ingest__commit_running())
            return err;
    }
    err = db_exec_own(&ingest__sql[INGEST_SQL_INSERT], w->vals, w->lens, w->fmts, 0, &r);
    if (err != SRV_OK)
        return err;
    *inserted = PQntuples(r) == 1;
    if (*inserted) {
        *id = db_int64(r, 0, "id");
        fleet_cache_note_seq(w->dev, w->seq_num);
    }
    PQclear(r);
    return SRV_OK;
}

/* What follows the store: a row not inserted lost a race (or repeated a
 * row of its own batch) and is answered from what is stored. */
static int job_stored(struct ingest_job *j, int err, int inserted, int64_t id)
{
    int found = 0, same = 0;

    if (err == SRV_EOVERLOAD) {
        j->reason = "ingest queue full";
        j->res.retry_after = 1;
    }
    if (err != SRV_OK)
        return err;
    if (!inserted) {
        err = seq_lookup(j->m->device_id, j->m->seq, j->sha, &found, &id, &same);
        if (err == SRV_OK && (!found || !same)) {
            j->reason = "sequence number already used with different bytes";
            err = SRV_ECONFLICT;
        }
        if (err != SRV_OK)
            return err;
    }
    if (inserted && j->row.handoff) {
        /* Stored on this thread (no committer): committed now, the copy
         * goes to the feature worker.  The committer hands over its rows'
         * copies itself. */
        ingest__handoff_put_owned(id, j->row.handoff, j->row.handoff_len);
        j->row.handoff = NULL;
    }
    j->res.id = id;
    snprintf(j->res.device_id, sizeof j->res.device_id, "%s", j->m->device_id);
    j->res.seq = j->m->seq;
    j->res.created = inserted;
    return SRV_OK;
}

#define JOB_QUEUED 1    /* job_run: the row waits for the committer */

/* Every step up to the store.  With suspend (async), the row is queued and
 * JOB_QUEUED returned; the committer calls j->row.wake when it is done. */
static int job_run(struct ingest_job *j, const uint8_t *buf, size_t len,
                   void (*suspend)(void *ctx))
{
    struct wire_meta *m;
    struct wire_view v;
    struct fleet_device dev;
    struct ingest_result *out = &j->res;
    size_t nbytes;
    int64_t id = 0;
    int err, werr, found = 0, same = 0, inserted = 0;

    out->stage = INGEST_STAGE_PARSE;
    /* wire_meta holds 64 channels of names: keep it off worker stacks. */
    m = j->m = calloc(1, sizeof *m);
    if (!m)
        return SRV_ENOMEM;
    if (len > INT32_MAX)
        return SRV_ETOOBIG;
    werr = wire_parse(buf, len, m, &v);
    if (werr != WIRE_OK) {
        j->reason = wire_strerror(werr);
        return ingest_wire_error(werr);
    }
    if (m->seq == 0 || m->seq > (uint64_t)INT64_MAX) {
        /* PostgreSQL bigint; the format says sequences start at 1. */
        j->reason = "sequence number out of range";
        return SRV_EENVELOPE;
    }

    out->stage = INGEST_STAGE_DEVICE;
    err = fleet_device_lookup(m->device_id, &dev);
    if (err != SRV_OK)
        return err;
    if (strcmp(dev.status, "active") != 0) {
        j->reason = strcmp(dev.status, "pending") == 0 ? "device is pending approval"
                                                       : "device is revoked";
        return SRV_EDEVSTATE;
    }

    out->stage = INGEST_STAGE_SIGNATURE;
    werr = wire_verify(buf, len, dev.pk);
    if (werr != WIRE_OK) {
        j->reason = wire_strerror(werr);
        return werr == WIRE_ESIGNATURE ? SRV_ESIGNATURE : ingest_wire_error(werr);
    }

    /* After the signature: nobody can drain another device's bucket. */
    out->stage = INGEST_STAGE_RATE;
    err = fleet_bucket_take(m->device_id, &out->retry_after);
    if (err != SRV_OK) {
        j->reason = "device over its upload rate";
        return err;
    }

    out->stage = INGEST_STAGE_SEQ;
    auth_sha256(buf, len, j->sha);
    /* A seq above the highest one known committed (the cache only ever
     * lags) cannot be stored yet, except by a concurrent upload elsewhere,
     * which the INSERT's ON CONFLICT catches below: the common case, a new
     * snapshot, costs no round trip here. */
    if (m->seq <= (uint64_t)dev.last_seq) {
        err = seq_lookup(m->device_id, m->seq, j->sha, &found, &id, &same);
        if (err != SRV_OK)
            return err;
    }
    if (found) {
        if (!same) {
            j->reason = "sequence number already used with different bytes";
            return SRV_ECONFLICT;
        }
        return job_stored(j, SRV_OK, 0, id);
    }
    if (m->seq > (uint64_t)dev.last_seq + FLEET_SEQ_AHEAD_MAX) {
        j->reason = "sequence number far ahead of the device's last stored one";
        return SRV_ESEQRANGE;
    }

    out->stage = INGEST_STAGE_DECODE;
    nbytes = wire_samples_bytes(m);
    if (nbytes == 0 || nbytes > WIRE_MAX_SAMPLES_BYTES) {
        j->reason = "sample payload size out of range";
        return SRV_EENVELOPE;
    }
    if (ingest__commit_running() && ingest_queue_depth() >= ingest_queue_max()) {
        /* Refuse before the expensive step: the queue is the bound. */
        j->reason = "ingest queue full";
        out->retry_after = 1;
        return SRV_EOVERLOAD;
    }
    err = decode_check(m, &v, nbytes, &j->reason);
    if (err != SRV_OK)
        return err;

    out->stage = INGEST_STAGE_STORE;
    err = row_fill(&j->row, buf, len, m, j->sha);
    if (err != SRV_OK)
        return err;
    /* New bytes on their way to the store: the features worker's copy,
     * made here on the pool thread rather than in the committer. */
    j->row.handoff = ingest__handoff_copy(buf, len);
    j->row.handoff_len = len;
    if (suspend) {
        j->row.wake = j->wake;
        j->row.wake_ctx = j->wake_ctx;
        err = ingest__commit_submit_async(&j->row, suspend);
        if (err == SRV_OK) {
            j->queued = 1;
            return JOB_QUEUED;
        }
        if (err != SRV_EUNAVAIL)
            return job_stored(j, err, 0, 0);
        /* No committer: store on this thread, below. */
    }
    err = store(&j->row, &inserted, &id);
    return job_stored(j, err, inserted, id);
}

static void job_free(struct ingest_job *j)
{
    free(j->row.handoff);       /* not stored, or not handed over */
    free(j->row.chans);
    free(j->m);
    free(j);
}

int ingest_envelope(const uint8_t *buf, size_t len, struct ingest_result *out,
                    const char **why)
{
    struct ingest_job *job;

    /* Without a waker the pipeline waits for the committer on this thread. */
    return ingest_envelope_start(buf, len, NULL, &job, out, why);
}

int ingest_envelope_start(const uint8_t *buf, size_t len, const struct srv_waker *w,
                          struct ingest_job **job, struct ingest_result *out, const char **why)
{
    struct ingest_job *j = calloc(1, sizeof *j);
    int err;

    memset(out, 0, sizeof *out);
    *job = NULL;
    if (!j)
        return SRV_ENOMEM;
    j->wake = w ? w->resume : NULL;
    j->wake_ctx = w ? w->ctx : NULL;
    err = job_run(j, buf, len, w ? w->suspend : NULL);
    if (err == JOB_QUEUED) {
        *job = j;
        return SRV_OK;
    }
    *out = j->res;
    if (why)
        *why = j->reason;
    job_free(j);
    return err;
}

int ingest_envelope_finish(struct ingest_job *j, struct ingest_result *out, const char **why)
{
    int err = j->row.err;

    if (err == SRV_OK)
        err = job_stored(j, SRV_OK, j->row.inserted, j->row.id);
    else
        err = job_stored(j, err, 0, 0);
    *out = j->res;
    if (why)
        *why = j->reason;
    job_free(j);
    return err;
}
