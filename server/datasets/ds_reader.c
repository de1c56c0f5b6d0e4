/* ds_reader.c - walking a stored version: its summary as struct ds_info,
 * then its window rows a page at a time in export order and, when asked,
 * each window's samples cut out of the snapshot (decoded once per snapshot:
 * rows come ordered by snapshot).  Export and training both read versions
 * this way, so memory is two pages, three batches of envelopes (at most
 * DS_BATCH_BYTES each) and their decoded samples (ds__mem_limits.decoded
 * each) and one decoded snapshot whatever the version's size.
 *
 * Envelopes come DS_BATCH_IDS at a time in one round trip
 * (ingest_stored_many) and are decoded with one zstd context and buffers
 * kept for the reader's life: a query, a context and three allocations per
 * snapshot made the export a quarter of PostgreSQL's own speed.  The next
 * two batches are asked for as soon as the reader takes one, from a thread
 * of the reader's with its own connection, which sends the next query as
 * soon as an answer is in (waiting for the reader's turn to ask left
 * PostgreSQL idle a scheduler's wake-up or two per batch on a loaded
 * machine); and a batch is decoded by both threads: its rows
 * are claimed in order by whichever is free, the prefetch thread (up to
 * ds__mem_limits.decoded of samples, into a buffer of the batch) or the
 * reader when it reaches a row nobody has claimed.  The thread sends the
 * query and decodes rows of the reader's batch while PostgreSQL answers it,
 * then rows of the batch that came until the reader takes it: fetching a
 * batch took longer than decoding it, and with the thread fetching then
 * decoding, one after the other, the reader waited for it about 40% of an
 * export and PostgreSQL sat idle during each decode. */
#include "server/datasets/ds_int.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "schema/wire.h"
#include "server/datasets/ds_relations.h"
#include "server/db/db.h"
#include "server/ingest/ingest.h"
#include "server/srv/srv.h"

#define DS_PAGE 512
/* Three batches are in memory (the reader's and DS_AHEAD = 2 asked ahead),
 * each with its decoded samples: 43 snapshots a batch keeps that to what the
 * two batches of 64 held before the second one ahead (3 x 43 ~ 2 x 64); at
 * 64 the server's peak at 33,000 windows passed 64 MB. */
#define DS_BATCH_IDS 43
#define DS_BATCH_BYTES (8u << 20)
/* Samples (float32) the prefetch thread decodes go in a buffer of the
 * batch, sized to its rows up to ds__mem_limits.decoded bytes (4 MB); rows
 * past it, or larger, the reader decodes into its own snapshot buffer. */

/* What decoding needs, kept between snapshots (one per thread). */
struct ds_decoder {
    ZSTD_DCtx *dctx;
    void *raw;                  /* decoded samples of the wire type */
    size_t raw_cap;
    void *scratch;              /* the v2 decoder's payload */
    size_t scratch_cap;
};

/* A batch row's decode: not claimed yet, being decoded by the prefetch
 * thread, decoded into the batch's buffer, or the reader's to decode. */
enum { ROW_FREE = 0, ROW_BUSY, ROW_DONE, ROW_READER };

/* A batch asked ahead: not sent yet, its query running, its answer in (or
 * its error), or dropped by the reader (then closed). */
enum { FETCH_NONE = 0, FETCH_ASKED, FETCH_BUSY, FETCH_DONE, FETCH_DROPPED };

#define DS_AHEAD 2                      /* batches asked ahead of the reader's */
#define DS_SLOTS (DS_AHEAD + 1)

/* A batch of envelopes (res, rows of it) and the samples of the rows the
 * prefetch thread decoded: row i's (channel-major, n[i] per channel) at
 * f + off[i] once state[i] is ROW_DONE.  Rows are claimed in order (rows
 * [0, claim) are), each by whichever thread is free first: the prefetch
 * thread, or the reader when it reaches a row nobody has claimed (it then
 * decodes it into its own buffer).  f is sized when the batch comes in
 * (batch_room) and not moved after: the reader reads rows from it while
 * the thread decodes the next.  claim, busy, full, used and
 * state under the prefetch's mu while the thread may see the batch. */
struct ds_batch {
    PGresult *res;
    int rows;
    int claim;
    int busy;                   /* a row of it is being decoded by the thread */
    int full;                   /* the thread stopped: the next row did not fit */
    float *f;
    size_t cap, used;           /* bytes allocated, bytes claimed */
    unsigned char state[DS_BATCH_IDS];
    size_t off[DS_BATCH_IDS], n[DS_BATCH_IDS];
    /* asked ahead: its snapshots, and where its query is */
    int64_t ids[DS_BATCH_IDS];
    size_t n_ids;
    int fetch;                  /* FETCH_* */
    int err;                    /* the query's, once FETCH_DONE */
};

/* The prefetch thread and what it shares with the reader, all under mu.
 * The reader asks for the DS_AHEAD batches after the one it reads (cur)
 * into the queue q; the thread sends their queries one after the other,
 * and while PostgreSQL answers, and when idle, decodes rows of cur and of
 * the queued batches that have come, nearest first.  The reader takes q[0]
 * when it needs its first snapshot, and closes the batch it leaves (no more
 * claims, the row in hand finished) so its slot can be asked into again. */
struct ds_prefetch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inited, started, quit;
    unsigned channels;          /* the version's (set before the thread starts) */
    struct ds_decoder dec;      /* the thread's own */
    struct ds_batch slot[DS_SLOTS];
    struct ds_batch *cur;       /* the reader's batch, when it is a slot */
    struct ds_batch *q[DS_AHEAD];
    int nq;
};

struct ds_reader {
    struct ds_info info;
    char **groups;
    PGresult *page;
    PGresult *next_page;        /* the page after it, read early for the prefetch's ids */
    int page_i;
    int64_t next_row;
    struct ds_batch *batch;     /* envelopes of the next snapshots, in row order */
    struct ds_batch own;        /* a batch the reader fetched itself */
    int batch_i;
    int64_t cur_snap;
    const float *cur;           /* its samples: snap, or in the batch's f */
    float *snap;                /* channel-major, info.channel_count * snap_n */
    size_t snap_n, snap_cap;    /* samples per channel; bytes allocated */
    struct ds_decoder dec;
    float *x;                   /* one window */
    struct ds_prefetch pre;
};

static void prefetch_stop(struct ds_prefetch *p);

void ds_reader_free(struct ds_reader *r)
{
    uint32_t i;

    if (!r)
        return;
    for (i = 0; r->groups && i < r->info.n_groups; i++)
        free(r->groups[i]);
    free(r->groups);
    prefetch_stop(&r->pre);
    PQclear(r->page);
    PQclear(r->next_page);
    PQclear(r->own.res);
    free(r->snap);
    free(r->dec.raw);
    free(r->dec.scratch);
    ZSTD_freeDCtx(r->dec.dctx);
    free(r->x);
    free(r);
#if defined(__GLIBC__)
    /* A reader held megabytes (two batches, their samples) in the arenas
     * of the request's thread and of its prefetch thread; freed, glibc
     * keeps them resident, and with exports landing on different worker
     * threads each arena kept its own: the server's resident set grew by
     * an export's buffers per worker.  Given back now (a few ms). */
    malloc_trim(0);
#endif
}

static int info_from_summary(struct ds_reader *r, const char *text)
{
    json_t *s = json_loads(text, 0, NULL), *v;
    struct ds_info *in = &r->info;
    size_t i;
    int rc = SRV_EINTERNAL;

    if (!s)
        return rc;
    v = json_object_get(s, "classes");
    if (json_array_size(v) > DS_MAX_CLASSES)
        goto out;
    in->normal_class = -1;
    in->n_classes = (unsigned)json_array_size(v);
    for (i = 0; i < in->n_classes; i++) {
        snprintf(in->classes[i], sizeof in->classes[i], "%s",
                 json_string_value(json_array_get(v, i)) ? json_string_value(json_array_get(v, i)) : "");
        if (strcmp(in->classes[i], "normal") == 0)
            in->normal_class = (int)i;
    }
    v = json_object_get(s, "groups");
    in->n_groups = (uint32_t)json_array_size(v);
    if (!(r->groups = calloc(in->n_groups ? in->n_groups : 1, sizeof *r->groups)))
        goto out;
    for (i = 0; i < in->n_groups; i++) {
        const char *gs = json_string_value(json_array_get(v, i));

        if (!(r->groups[i] = strdup(gs ? gs : "")))
            goto out;
    }
    v = json_object_get(s, "channels");
    in->channel_count = (unsigned)json_array_size(v);
    if (in->channel_count == 0 || in->channel_count > 64)
        goto out;
    for (i = 0; i < in->channel_count; i++) {
        const char *nm = json_string_value(json_object_get(json_array_get(v, i), "name"));
        const char *un = json_string_value(json_object_get(json_array_get(v, i), "unit"));

        snprintf(in->channel_names[i], sizeof in->channel_names[i], "%s", nm ? nm : "");
        snprintf(in->channel_units[i], sizeof in->channel_units[i], "%s", un ? un : "");
    }
    in->sample_rate = json_number_value(json_object_get(s, "sample_rate"));
    in->window_samples = (uint32_t)json_integer_value(json_object_get(s, "window_samples"));
    in->n_devices = (unsigned)json_integer_value(json_object_get(s, "devices"));
    in->t_min_us = json_integer_value(json_object_get(s, "t_min_us"));
    in->t_max_us = json_integer_value(json_object_get(s, "t_max_us"));
    if (in->window_samples == 0 || in->window_samples > (1u << 24))
        goto out;
    rc = SRV_OK;
out:
    json_decref(s);
    return rc;
}

int ds_reader_open(int64_t dataset_id, int version, struct ds_reader **out)
{
    struct ds_reader *r;
    PGresult *res = NULL;
    int err;

    if ((err = ds__version_row(dataset_id, version, &res)) != SRV_OK)
        return err;
    if (!(r = calloc(1, sizeof *r))) {
        PQclear(res);
        return SRV_ENOMEM;
    }
    r->info.dataset_id = dataset_id;
    r->info.version = version;
    r->info.n_windows = db_int64(res, 0, "n_windows");
    err = info_from_summary(r, db_text_or(res, 0, "summary", ""));
    PQclear(res);
    if (err == SRV_OK &&
        (!(r->x = malloc((size_t)r->info.channel_count * r->info.window_samples * sizeof *r->x)) ||
         !(r->dec.dctx = ZSTD_createDCtx())))
        err = SRV_ENOMEM;
    if (err != SRV_OK) {
        ds_reader_free(r);
        return err;
    }
    r->cur_snap = -1;
    r->pre.channels = r->info.channel_count;
    if (pthread_mutex_init(&r->pre.mu, NULL) == 0) {
        if (pthread_cond_init(&r->pre.cv, NULL) == 0)
            r->pre.inited = 1;
        else
            pthread_mutex_destroy(&r->pre.mu);
    }
    *out = r;
    return SRV_OK;
}

const struct ds_info *ds_reader_info(const struct ds_reader *r)
{
    return &r->info;
}

const char *ds_reader_group(const struct ds_reader *r, uint32_t g)
{
    return g < r->info.n_groups ? r->groups[g] : "";
}

void ds_reader_rewind(struct ds_reader *r)
{
    PQclear(r->page);
    PQclear(r->next_page);
    r->page = r->next_page = NULL;
    r->page_i = 0;
    r->next_row = 0;
}

/* The page of window rows from row `from` on. */
static int page_load(const struct ds_reader *r, int64_t from, PGresult **out)
{
    char idb[24], vb[16], fb[24], lb[16];
    const char *vals[4] = { idb, vb, fb, lb };

    snprintf(idb, sizeof idb, "%lld", (long long)r->info.dataset_id);
    snprintf(vb, sizeof vb, "%d", r->info.version);
    snprintf(fb, sizeof fb, "%lld", (long long)from);
    snprintf(lb, sizeof lb, "%d", DS_PAGE);
    return ds__exec(DS_SQL_WINDOWS_PAGE, vals, 0, out);
}

void ds_reader_seek(struct ds_reader *r, int64_t row)
{
    ds_reader_rewind(r);
    r->next_row = row;
}

/* Grow *p to hold need bytes (kept: snapshots of a version are alike). */
static int reserve(void **p, size_t *cap, size_t need)
{
    void *q;

    if (need <= *cap)
        return SRV_OK;
    if (!(q = realloc(*p, need)))
        return SRV_ENOMEM;
    *p = q;
    *cap = need;
    return SRV_OK;
}

/* Samples per channel of an envelope with the version's layout (channels,
 * and rate unless 0); 0 when it does not parse as one (the database is
 * outside input too). */
static size_t env_samples(unsigned channels, double rate, const uint8_t *env, size_t len)
{
    struct wire_meta m;
    struct wire_view v;

    if (wire_parse(env, len, &m, &v) != WIRE_OK || wire_samples_bytes(&m) == 0 ||
        m.channel_count != channels || (rate != 0.0 && m.sample_rate != rate))
        return 0;
    return (size_t)m.pre_samples + m.post_samples;
}

/* Decode an envelope env_samples accepted into out (its channels x
 * samples, in physical units: code * scale + offset, wire v2). */
static int decode_into(struct ds_decoder *d, const uint8_t *env, size_t len, float *out)
{
    struct wire_meta m;
    struct wire_view v;
    size_t need, scratch;

    if (wire_parse(env, len, &m, &v) != WIRE_OK || (need = wire_samples_bytes(&m)) == 0)
        return SRV_EINTERNAL;
    scratch = wire_decode_scratch_bound(&m);
    if (reserve(&d->raw, &d->raw_cap, need) != SRV_OK ||
        (scratch && reserve(&d->scratch, &d->scratch_cap, scratch) != SRV_OK))
        return SRV_ENOMEM;
    if (wire_decode_samples_scratch(d->dctx, &m, &v, d->scratch, scratch ? d->scratch_cap : 0,
                                    d->raw, need) != WIRE_OK) {
        /* a failed frame may leave the context mid-stream */
        ZSTD_DCtx_reset(d->dctx, ZSTD_reset_session_only);
        return SRV_EINTERNAL;
    }
    return wire_to_physical(&m, d->raw, out) == WIRE_OK ? SRV_OK : SRV_EINTERNAL;
}

/* Decode one envelope into r->snap. */
static int decode_snapshot(struct ds_reader *r, int64_t id, const uint8_t *env, size_t len)
{
    size_t n = env_samples(r->info.channel_count, 0.0, env, len);
    int err;

    r->cur_snap = -1;
    if (n == 0)
        return SRV_EINTERNAL;
    if (reserve((void **)&r->snap, &r->snap_cap, n * r->info.channel_count * sizeof *r->snap) != SRV_OK)
        return SRV_ENOMEM;
    if ((err = decode_into(&r->dec, env, len, r->snap)) != SRV_OK)
        return err;
    r->cur = r->snap;
    r->snap_n = n;
    r->cur_snap = id;
    return SRV_OK;
}

/* The prefetch's lock; without it (its mutex could not be made) nothing
 * is shared: no thread, and the reader decodes every row itself. */
static void pf_lock(struct ds_prefetch *p)
{
    if (p->inited)
        pthread_mutex_lock(&p->mu);
}

static void pf_unlock(struct ds_prefetch *p)
{
    if (p->inited)
        pthread_mutex_unlock(&p->mu);
}

/* b made the batch of res (NULL: none), no row claimed; its buffer kept. */
static void batch_reset(struct ds_batch *b, PGresult *res)
{
    int rows = res ? PQntuples(res) : 0;

    b->res = res;
    b->rows = rows < DS_BATCH_IDS ? rows : DS_BATCH_IDS;
    b->claim = 0;
    b->busy = 0;
    b->full = 0;
    b->used = 0;
    memset(b->state, ROW_FREE, sizeof b->state);
}

/* The prefetch thread, mu held: claim b's next row and decode it into b->f
 * (mu released meanwhile).  0 when there is none to claim, or the thread
 * stops on this batch (its row does not fit what is left of the buffer, or
 * does not parse: the reader decodes it and the rest, and reports). */
static int prefetch_help(struct ds_prefetch *p, struct ds_batch *b)
{
    size_t len, n, bytes, at;
    const uint8_t *env;
    int i, ok;

    if (!b || b->fetch != FETCH_DONE || !b->res || p->quit || b->full || b->claim >= b->rows)
        return 0;
    i = b->claim;
    env = (const uint8_t *)db_text(b->res, i, "envelope");
    len = (size_t)db_len(b->res, i, "envelope");
    n = env ? env_samples(p->channels, 0.0, env, len) : 0;
    bytes = n * p->channels * sizeof(float);
    if (n == 0 || bytes > b->cap - b->used || (!p->dec.dctx && !(p->dec.dctx = ZSTD_createDCtx()))) {
        b->full = 1;
        return 0;
    }
    b->claim++;
    b->state[i] = ROW_BUSY;
    b->busy = 1;
    at = b->used;
    b->used += bytes;
    pthread_mutex_unlock(&p->mu);
    ok = decode_into(&p->dec, env, len, (float *)(void *)((char *)b->f + at)) == SRV_OK;
    pthread_mutex_lock(&p->mu);
    b->off[i] = at / sizeof(float);
    b->n[i] = n;
    b->state[i] = ok ? ROW_DONE : ROW_READER;   /* an error: the reader meets it again */
    b->busy = 0;
    pthread_cond_broadcast(&p->cv);
    return 1;
}

/* b's buffer made to hold its rows' samples, up to ds__mem_limits.decoded
 * (none of its rows is decoded yet: it may move).  Sized to what the batch
 * needs, not to the limit: the buffer of a slot is reused from batch to
 * batch and malloc hands back memory already touched, so three buffers at
 * the limit were 12 MB resident where the batches need 2 MB each. */
static void batch_room(struct ds_prefetch *p, struct ds_batch *b)
{
    size_t need = 0, limit = ds__mem_limits.decoded;
    int i;

    for (i = 0; i < b->rows && need < limit; i++) {
        const uint8_t *env = (const uint8_t *)db_text(b->res, i, "envelope");
        size_t n = env ? env_samples(p->channels, 0.0, env, (size_t)db_len(b->res, i, "envelope")) : 0;

        need += n * p->channels * sizeof(float);
    }
    if (need > limit)
        need = limit;
    if (need > b->cap && reserve((void **)&b->f, &b->cap, need) != SRV_OK)
        b->full = 1;
}

/* One row decoded for the reader, the nearest first: its batch, then the
 * batches asked ahead that have come; 0 when there is nothing to decode. */
static int prefetch_help_any(struct ds_prefetch *p)
{
    int i;

    if (prefetch_help(p, p->cur))
        return 1;
    for (i = 0; i < p->nq; i++)
        if (prefetch_help(p, p->q[i]))
            return 1;
    return 0;
}

/* The batch to ask PostgreSQL for now: the first asked one, once every
 * batch before it in the queue has come (one query at a time). */
static struct ds_batch *prefetch_to_send(const struct ds_prefetch *p)
{
    int i;

    for (i = 0; i < p->nq; i++) {
        if (p->q[i]->fetch == FETCH_ASKED)
            return p->q[i];
        if (p->q[i]->fetch != FETCH_DONE)
            return NULL;
    }
    return NULL;
}

/* Rows to decode (mu held), as prefetch_help_any would find them. */
static int batch_open_rows(const struct ds_batch *b)
{
    return b && b->fetch == FETCH_DONE && b->res && !b->full && b->claim < b->rows;
}

static int prefetch_has_work(const struct ds_prefetch *p)
{
    int i;

    if (prefetch_to_send(p) || batch_open_rows(p->cur))
        return 1;
    for (i = 0; i < p->nq; i++)
        if (batch_open_rows(p->q[i]))
            return 1;
    return 0;
}

static void *prefetch_main(void *arg)
{
    struct ds_prefetch *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct ds_batch *b;

        while (!p->quit && !prefetch_has_work(p))
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit)
            break;
        if ((b = prefetch_to_send(p))) {
            PGresult *res = NULL;
            int err;

            /* b's ids are not touched by the reader while it is fetched */
            b->fetch = FETCH_BUSY;
            pthread_mutex_unlock(&p->mu);
            err = ingest_stored_many_send(b->ids, b->n_ids, DS_BATCH_BYTES);
            pthread_mutex_lock(&p->mu);
            /* while PostgreSQL reads and sends them: rows for the reader,
             * taking in what has come between them */
            while (err == SRV_OK && prefetch_help_any(p)) {
                pthread_mutex_unlock(&p->mu);
                db_poll_own();
                pthread_mutex_lock(&p->mu);
            }
            pthread_mutex_unlock(&p->mu);
            if (err == SRV_OK)
                err = ingest_stored_many_wait(&res);
            pthread_mutex_lock(&p->mu);
            if (err != SRV_OK) {
                PQclear(res);
                res = NULL;
            }
            batch_reset(b, res);
            batch_room(p, b);
            b->err = err;
            b->fetch = FETCH_DONE;
            pthread_cond_broadcast(&p->cv);
            continue;
        }
        (void)prefetch_help_any(p);
    }
    pthread_mutex_unlock(&p->mu);
    db_thread_release();
    return NULL;
}

static void prefetch_stop(struct ds_prefetch *p)
{
    int i;

    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->started = 0;
    }
    for (i = 0; i < DS_SLOTS; i++) {
        PQclear(p->slot[i].res);
        free(p->slot[i].f);
    }
    memset(p->slot, 0, sizeof p->slot);
    p->cur = NULL;
    p->nq = 0;
    free(p->dec.raw);
    free(p->dec.scratch);
    ZSTD_freeDCtx(p->dec.dctx);
    memset(&p->dec, 0, sizeof p->dec);
    if (p->inited) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        p->inited = 0;
    }
}

/* Ask for ids[0, n) ahead, after the batches asked already, into a slot
 * neither the reader's nor queued (closed by batch_close when the reader
 * left it, or never used); 0 when the queue is full or there is no thread
 * (it could not start: the reader then fetches on its own). */
static int prefetch_ask(struct ds_prefetch *p, const int64_t *ids, size_t n)
{
    struct ds_batch *b = NULL;
    int i, k;

    if (!p->inited || n == 0 || n > DS_BATCH_IDS)
        return 0;
    if (!p->started) {
        if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0)
            return 0;
        p->started = 1;
    }
    pthread_mutex_lock(&p->mu);
    for (i = 0; i < DS_SLOTS && !b && p->nq < DS_AHEAD; i++) {
        b = &p->slot[i];
        if (b == p->cur)
            b = NULL;
        for (k = 0; b && k < p->nq; k++)
            if (p->q[k] == b)
                b = NULL;
    }
    if (b) {
        batch_reset(b, NULL);
        memcpy(b->ids, ids, n * sizeof *ids);
        b->n_ids = n;
        b->err = SRV_OK;
        b->fetch = FETCH_ASKED;
        p->q[p->nq++] = b;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return b != NULL;
}

/* The reader leaves b: no more rows of it claimed, the one the thread has
 * in hand finished, its envelopes freed. */
static void batch_close(struct ds_prefetch *p, struct ds_batch *b)
{
    if (!b)
        return;
    pf_lock(p);
    if (b->claim < b->rows)
        b->claim = b->rows;
    while (b->busy)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->cur == b)
        p->cur = NULL;
    pf_unlock(p);
    PQclear(b->res);
    batch_reset(b, NULL);
    b->fetch = FETCH_NONE;
}

/* Every batch asked ahead dropped (the reader went elsewhere): those not
 * sent yet forgotten, the one in flight waited for, all closed. */
static void prefetch_drop(struct ds_prefetch *p)
{
    struct ds_batch *q[DS_AHEAD];
    int i, n;

    if (!p->started)
        return;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int busy = 0;
        for (i = 0; i < p->nq; i++)
            busy |= p->q[i]->fetch == FETCH_BUSY;
        if (!busy)
            break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    n = p->nq;
    memcpy(q, p->q, sizeof q);
    for (i = 0; i < n; i++)         /* the thread neither sends nor claims now */
        q[i]->fetch = FETCH_DROPPED;
    p->nq = 0;
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < n; i++)
        batch_close(p, q[i]);
}

/* The first batch asked ahead when it starts with id: 1, *b and *err (the
 * batch now the reader's; the thread may go on decoding its rows); else 0,
 * and every batch asked ahead, which does not fit, is dropped. */
static int prefetch_take(struct ds_prefetch *p, int64_t id, struct ds_batch **b, int *err)
{
    struct ds_batch *x;

    if (!p->started)
        return 0;
    pthread_mutex_lock(&p->mu);
    if (p->nq == 0) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    x = p->q[0];
    while (x->fetch != FETCH_DONE)
        pthread_cond_wait(&p->cv, &p->mu);
    if (x->ids[0] != id) {
        pthread_mutex_unlock(&p->mu);
        prefetch_drop(p);
        return 0;
    }
    memmove(p->q, p->q + 1, (size_t)(p->nq - 1) * sizeof *p->q);
    p->nq--;
    *b = x;
    *err = x->err;
    p->cur = x;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

/* The last snapshot asked ahead (mu not needed: only the reader asks), or
 * -1 when nothing is. */
static int64_t prefetch_last_asked(const struct ds_prefetch *p)
{
    const struct ds_batch *b;

    if (p->nq == 0)
        return -1;
    b = p->q[p->nq - 1];
    return b->ids[b->n_ids - 1];
}

/* Snapshot of row k of the current page (from its first unread row on)
 * followed by the next page; -1 past them.  The next page is read when the
 * walk reaches the end of a full current page: without it the batch after
 * each page's last one was fetched while the export waited. */
static int64_t seq_snapshot(struct ds_reader *r, int k)
{
    int rows = PQntuples(r->page);

    if (k < rows)
        return db_int64(r->page, k, "snapshot_id");
    if (rows < DS_PAGE)
        return -1;
    if (!r->next_page) {
        PGresult *np = NULL;

        if (page_load(r, db_int64(r->page, rows - 1, "row") + 1, &np) != SRV_OK)
            return -1;     /* nothing asked ahead; the page is read again when needed */
        r->next_page = np;
    }
    return k - rows < PQntuples(r->next_page) ? db_int64(r->next_page, k - rows, "snapshot_id")
                                              : -1;
}

/* The distinct snapshots of the rows after the last row of snapshot last
 * (from the current row on, into the next page), in row order, at most
 * cap of them. */
static size_t ids_after(struct ds_reader *r, int64_t last, int64_t *ids, size_t cap)
{
    int k, j = -1, first = r->page_i > 0 ? r->page_i - 1 : 0;
    int64_t s;
    size_t n = 0;

    /* rows of one snapshot are adjacent: its last row ends the run that
     * starts at its first */
    for (k = first; (s = seq_snapshot(r, k)) >= 0; k++) {
        if (s == last)
            j = k;
        else if (j >= 0)
            break;
    }
    for (k = j + 1; j >= 0 && n < cap && (s = seq_snapshot(r, k)) >= 0; k++)
        if (s != last && (n == 0 || s != ids[n - 1]))
            ids[n++] = s;
    return n;
}

/* The batch that starts with snapshot id: the first asked ahead when it
 * does, else fetched now (the distinct snapshots of the rest of the page);
 * then the batches after the last asked are asked for, DS_AHEAD in all:
 * the thread sends the next query as soon as one answer is in, without
 * waiting for the reader (whose turn, on a loaded machine, may be long in
 * coming).  A batch that comes back short (DS_BATCH_BYTES) does not end
 * where the next asked starts: those are dropped at their take. */
static int batch_fetch(struct ds_reader *r, int64_t id)
{
    int64_t ids[DS_BATCH_IDS], last;
    PGresult *res = NULL;
    size_t n = 0;
    int err = SRV_OK, rows;

    batch_close(&r->pre, r->batch);
    r->batch = NULL;
    r->batch_i = 0;
    r->cur_snap = -1;           /* r->cur may point into the batch left */
    if (!prefetch_take(&r->pre, id, &r->batch, &err)) {
        ids[0] = id;
        n = ids_after(r, id, ids + 1, DS_BATCH_IDS - 1) + 1;
        err = ingest_stored_many(ids, n, DS_BATCH_BYTES, &res);
        if (err != SRV_OK) {
            PQclear(res);
            res = NULL;
        }
        batch_reset(&r->own, res);
        r->batch = &r->own;
    }
    if (err != SRV_OK || (rows = PQntuples(r->batch->res)) == 0)
        return err;
    last = prefetch_last_asked(&r->pre);
    if (last < 0)
        last = db_int64(r->batch->res, rows - 1, "id");
    while ((n = ids_after(r, last, ids, DS_BATCH_IDS)) > 0 && prefetch_ask(&r->pre, ids, n))
        last = ids[n - 1];
    return SRV_OK;
}

static int load_snapshot(struct ds_reader *r, int64_t id)
{
    struct ds_batch *b = r->batch;
    int err, i, st = ROW_READER;

    if (!b || !b->res || r->batch_i >= PQntuples(b->res) ||
        db_int64(b->res, r->batch_i, "id") != id) {
        if ((err = batch_fetch(r, id)) != SRV_OK)
            return err;
        b = r->batch;
    }
    if (!b || PQntuples(b->res) == 0 || r->batch_i >= PQntuples(b->res) ||
        db_int64(b->res, r->batch_i, "id") != id || db_isnull(b->res, r->batch_i, "envelope")) {
        srv_log("error", "datasets: snapshot %lld of a version is gone", (long long)id);
        return SRV_EINTERNAL;
    }
    i = r->batch_i++;
    if (b != &r->own && i < b->rows) {
        /* rows are read in order: one nobody has claimed is the reader's */
        pf_lock(&r->pre);
        while (b->state[i] == ROW_BUSY)
            pthread_cond_wait(&r->pre.cv, &r->pre.mu);
        if (b->state[i] == ROW_FREE) {
            b->state[i] = ROW_READER;
            if (b->claim <= i)
                b->claim = i + 1;
        }
        st = b->state[i];
        pf_unlock(&r->pre);
    }
    if (st == ROW_DONE) {
        r->cur = b->f + b->off[i];
        r->snap_n = b->n[i];
        r->cur_snap = id;
        return SRV_OK;
    }
    return decode_snapshot(r, id, (const uint8_t *)db_text(b->res, i, "envelope"),
                           (size_t)db_len(b->res, i, "envelope"));
}

int ds_reader_next(struct ds_reader *r, struct ds_row *row, const float **x)
{
    int err, i;

    if (!r->page || r->page_i >= PQntuples(r->page)) {
        if (r->page && PQntuples(r->page) < DS_PAGE)
            return 0;
        PQclear(r->page);
        r->page = r->next_page;     /* read from the row after this page's last */
        r->next_page = NULL;
        if (!r->page && (err = page_load(r, r->next_row, &r->page)) != SRV_OK)
            return err;
        r->page_i = 0;
        if (PQntuples(r->page) == 0)
            return 0;
    }
    i = r->page_i++;
    row->row = db_int64(r->page, i, "row");
    row->snapshot_id = db_int64(r->page, i, "snapshot_id");
    row->start_sample = (uint32_t)db_int64(r->page, i, "start_sample");
    row->start_us = db_int64(r->page, i, "start_us");
    row->cls = (int)db_int64(r->page, i, "cls");
    snprintf(row->source, sizeof row->source, "%s", db_text_or(r->page, i, "source", ""));
    row->group = (uint32_t)db_int64(r->page, i, "grp");
    row->split = (int)db_int64(r->page, i, "split");
    r->next_row = row->row + 1;
    if (row->cls < 0 || (unsigned)row->cls >= r->info.n_classes || row->group >= r->info.n_groups)
        return SRV_EINTERNAL;
    if (x) {
        unsigned c;
        size_t T = r->info.window_samples;

        if (row->snapshot_id != r->cur_snap && (err = load_snapshot(r, row->snapshot_id)) != SRV_OK)
            return err;
        if ((size_t)row->start_sample + T > r->snap_n)
            return SRV_EINTERNAL;
        if (T == r->snap_n) {
            /* the window is the whole snapshot, laid out as x is */
            *x = r->cur;
            return 1;
        }
        for (c = 0; c < r->info.channel_count; c++)
            memcpy(r->x + c * T, r->cur + c * r->snap_n + row->start_sample, T * sizeof *r->x);
        *x = r->x;
    }
    return 1;
}

/* Stored snapshots outside any version, with a version's layout (a
 * relations model's unlabeled candidates, models_train.c): envelopes
 * DS_BATCH_IDS at a time through ingest_stored_many, decoded one at a time
 * with one context and buffers, so memory is one batch of envelopes and one
 * decoded snapshot.  Sequential: the candidates are few next to a version. */
int ds_snapshots_read(const struct ds_info *in, const int64_t *ids, size_t n,
                      int (*each)(void *ctx, int64_t id, const float *x, size_t samples),
                      void *ctx, size_t *skipped)
{
    struct ds_decoder dec = { 0 };
    float *snap = NULL;
    size_t snap_cap = 0, off = 0;
    int err = SRV_OK;

    if (skipped)
        *skipped = 0;
    if (!(dec.dctx = ZSTD_createDCtx()))
        return SRV_ENOMEM;
    while (err == SRV_OK && off < n) {
        PGresult *res = NULL;
        size_t want = n - off < DS_BATCH_IDS ? n - off : DS_BATCH_IDS, got = 0;
        int rows;

        if ((err = ingest_stored_many(ids + off, want, DS_BATCH_BYTES, &res)) != SRV_OK) {
            PQclear(res);
            break;
        }
        rows = PQntuples(res);
        for (int i = 0; err == SRV_OK && i < rows; i++) {
            int64_t id = db_int64(res, i, "id");
            const uint8_t *env = (const uint8_t *)db_text(res, i, "envelope");
            size_t len = (size_t)db_len(res, i, "envelope");
            size_t ns = db_isnull(res, i, "envelope")
                            ? 0 : env_samples(in->channel_count, in->sample_rate, env, len);

            /* another layout (channels, rate) than the version's: not its
             * windows */
            if (ns < in->window_samples) {
                if (skipped)
                    (*skipped)++;
                continue;
            }
            if ((err = reserve((void **)&snap, &snap_cap, ns * in->channel_count * sizeof *snap)) ==
                    SRV_OK &&
                (err = decode_into(&dec, env, len, snap)) != SRV_OK) {
                if (skipped)
                    (*skipped)++;
                err = SRV_OK;       /* one unreadable envelope does not stop the rest */
                continue;
            }
            if (err == SRV_OK)
                err = each(ctx, id, snap, ns);
        }
        /* the batch ends at its last row's id (ids without a snapshot have
         * no row); none at all: none of these exist */
        if (rows > 0) {
            int64_t last = db_int64(res, rows - 1, "id");

            while (got < want && ids[off + got] != last)
                got++;
            got++;
        } else {
            got = want;
        }
        off += got;
        PQclear(res);
    }
    ZSTD_freeDCtx(dec.dctx);
    free(dec.raw);
    free(dec.scratch);
    free(snap);
    return err;
}

/* ds_unlabeled_read's walk: up to per_snap windows of each snapshot; win,
 * one window's room when the samples are not kept. */
struct unlabeled_walk {
    const struct ds_info *in;
    struct ds_unlabeled *u;
    size_t cap, per_snap;
    float *win;
};

/* One snapshot: its whole windows (hop = window, from its first sample, as
 * a version's), every one when it has at most per_snap, else per_snap of
 * them spread evenly over it. */
static int unlabeled_take(void *ctx, int64_t id, const float *x, size_t samples)
{
    struct unlabeled_walk *w = ctx;
    struct ds_unlabeled *u = w->u;
    size_t C = w->in->channel_count, T = w->in->window_samples, nw = samples / T;
    size_t take = nw < w->per_snap ? nw : w->per_snap;

    (void)id;
    for (size_t j = 0; j < take && u->n < w->cap; j++) {
        size_t at = take == nw ? j : j * nw / take;
        float *dst = u->raw ? u->raw + u->n * C * T : w->win;

        for (size_t c = 0; c < C; c++)
            memcpy(dst + c * T, x + c * samples + at * T, T * sizeof *dst);
        ds_relations_window_means(dst, (uint32_t)C, (uint32_t)T, u->means + u->n * C);
        u->n++;
    }
    u->snapshots++;
    return SRV_OK;
}

/* What a DS_SQL_UNLABELED* statement lists for in with cap as its $3: *r
 * (the caller's to PQclear, also on error) and its rows' ids in *ids
 * (malloc'd, NULL when none) and *k. */
static int unlabeled_list(enum ds_stmt st, const struct ds_info *in, size_t cap, PGresult **r,
                          int64_t **ids, size_t *k)
{
    char db[24], vb[16], cb[24];
    const char *vals[3] = { db, vb, cb };

    *r = NULL;
    *ids = NULL;
    *k = 0;
    snprintf(db, sizeof db, "%lld", (long long)in->dataset_id);
    snprintf(vb, sizeof vb, "%d", in->version);
    snprintf(cb, sizeof cb, "%zu", cap);
    if (ds__exec(st, vals, 0, r) != SRV_OK)
        return SRV_EINTERNAL;
    if ((*k = (size_t)PQntuples(*r)) == 0)
        return SRV_OK;
    if (!(*ids = malloc(*k * sizeof **ids)))
        return SRV_ENOMEM;
    for (size_t i = 0; i < *k; i++)
        (*ids)[i] = db_int64(*r, (int)i, "id");
    return SRV_OK;
}

int ds_unlabeled_read(const struct ds_info *in, int keep_samples, struct ds_unlabeled *u)
{
    size_t C = in->channel_count, T = in->window_samples, per_row = C * T * sizeof(float);
    size_t cap = per_row ? DS_UNLABELED_MAX_BYTES / per_row : 0, k;
    struct unlabeled_walk w = { in, u, 0, 1, NULL };
    PGresult *r = NULL;
    int64_t *ids = NULL;
    int err;

    memset(u, 0, sizeof *u);
    if (cap > DS_UNLABELED_MAX_WINDOWS)
        cap = DS_UNLABELED_MAX_WINDOWS;
    if (cap == 0 || C == 0 || T == 0)
        return SRV_OK;
    err = unlabeled_list(DS_SQL_UNLABELED, in, cap, &r, &ids, &k);
    PQclear(r);
    if (err != SRV_OK || k == 0)
        return err;
    /* the windows each snapshot may give so that all of them fit the cap */
    w.per_snap = cap / k > 0 ? cap / k : 1;
    w.cap = k * w.per_snap < cap ? k * w.per_snap : cap;
    err = SRV_ENOMEM;
    if ((keep_samples ? !(u->raw = malloc(w.cap * per_row)) : !(w.win = malloc(per_row))) ||
        !(u->means = malloc(w.cap * C * sizeof *u->means)))
        goto out;
    err = ds_snapshots_read(in, ids, k, unlabeled_take, &w, &u->skipped);
out:
    free(w.win);
    free(ids);
    if (err != SRV_OK)
        ds_unlabeled_free(u);
    return err;
}

/* ds_unlabeled_snapshots_read's walk: the listed ids and their devices
 * (at, the next one ds_snapshots_read may give), the stride in samples,
 * the samples decoded so far and one snapshot's windows. */
struct snapshots_walk {
    const struct ds_info *in;
    const int64_t *ids;
    PGresult *list;
    size_t n, at, stride, bytes;
    struct ds_unlabeled_stats *st;
    int (*each)(void *ctx, int64_t id, const char *device_id, const float *x, size_t n);
    void *ctx;
    float *win;
    size_t win_cap;
    int full;                   /* the byte cap reached: the rest left out */
};

/* One snapshot: its windows cut as ds_windows cuts a version's (every
 * stride from its first sample, each wholly inside it). */
static int snapshots_take(void *ctx, int64_t id, const float *x, size_t samples)
{
    struct snapshots_walk *w = ctx;
    size_t C = w->in->channel_count, T = w->in->window_samples, bytes = samples * C * sizeof *x;
    size_t nw = (samples - T) / w->stride + 1;
    int err;

    /* ids come in the order listed; those with no snapshot were passed */
    while (w->at < w->n && w->ids[w->at] != id)
        w->at++;
    if (w->at == w->n)
        return SRV_EINTERNAL;
    if (w->bytes > 0 && w->bytes + bytes > DS_UNLABELED_SNAPSHOTS_MAX_BYTES) {
        w->full = 1;
        return 1;
    }
    w->bytes += bytes;
    if ((err = reserve((void **)&w->win, &w->win_cap, nw * C * T * sizeof *w->win)) != SRV_OK)
        return err;
    for (size_t j = 0; j < nw; j++)
        for (size_t c = 0; c < C; c++)
            memcpy(w->win + (j * C + c) * T, x + c * samples + j * w->stride, T * sizeof *x);
    w->st->snapshots++;
    return w->each(w->ctx, id, db_text_or(w->list, (int)w->at++, "device_id", ""), w->win, nw);
}

int ds_unlabeled_snapshots_read(const struct ds_info *in,
                                int (*each)(void *ctx, int64_t id, const char *device_id,
                                            const float *x, size_t n),
                                void *ctx, struct ds_unlabeled_stats *st)
{
    struct snapshots_walk w = { in, NULL, NULL, 0, 0, 0, 0, st, each, ctx, NULL, 0, 0 };
    int64_t *ids = NULL;
    size_t total;
    double stride_s;
    int err;

    memset(st, 0, sizeof *st);
    if (in->channel_count == 0 || in->window_samples == 0 || !(in->sample_rate > 0))
        return SRV_OK;
    err = unlabeled_list(DS_SQL_UNLABELED_SNAPSHOTS, in, DS_UNLABELED_SNAPSHOTS_MAX, &w.list, &ids,
                         &w.n);
    if (err != SRV_OK || w.n == 0)
        goto out;
    total = (size_t)db_int64(w.list, 0, "total");
    stride_s = db_double(w.list, 0, "stride_s");
    w.ids = ids;
    w.stride = stride_s > 0 ? (size_t)llround(stride_s * in->sample_rate) : 0;
    if (w.stride < 1) {
        err = SRV_EINTERNAL;
        goto out;
    }
    err = ds_snapshots_read(in, ids, w.n, snapshots_take, &w, &st->skipped);
    if (err == 1 && w.full)
        err = SRV_OK;
    /* left out: beyond the count, and what the bytes did not reach */
    st->capped = total > st->snapshots + st->skipped ? total - st->snapshots - st->skipped : 0;
out:
    PQclear(w.list);
    free(ids);
    free(w.win);
    return err;
}

void ds_unlabeled_free(struct ds_unlabeled *u)
{
    free(u->raw);
    free(u->means);
    memset(u, 0, sizeof *u);
}
