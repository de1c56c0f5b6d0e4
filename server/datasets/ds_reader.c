/* ds_reader.c - walking a stored version: its summary as struct ds_info,
 * then its window rows a page at a time in export order and, when asked,
 * each window's samples cut out of the snapshot (decoded once per snapshot:
 * rows come ordered by snapshot).  Export and training both read versions
 * this way, so memory is two pages, two batches of envelopes (at most
 * DS_BATCH_BYTES each) and their decoded samples (ds__mem_limits.decoded
 * each) and one decoded snapshot whatever the version's size.
 *
 * Envelopes come DS_BATCH_IDS at a time in one round trip
 * (ingest_stored_many) and are decoded with one zstd context and buffers
 * kept for the reader's life: a query, a context and three allocations per
 * snapshot made the export a quarter of PostgreSQL's own speed.  The next
 * batch is fetched while this one is decoded, on a thread of the reader's
 * with its own connection: PostgreSQL reading and sending the envelopes and
 * this thread decoding them took about as long each, one after the other.
 * That thread also decodes the batch it fetched (up to 4 MB of samples:
 * ds__mem_limits.decoded), so the caller, which zips and sends what it
 * reads, finds the samples ready: decoding was a fifth of its time. */
#include "server/datasets/ds_int.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif
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
#define DS_BATCH_IDS 64
#define DS_BATCH_BYTES (8u << 20)
/* Samples (float32) of a batch are decoded on the prefetch thread up to
 * ds__mem_limits.decoded bytes (4 MB); the rest of a batch past it, or a
 * snapshot larger, is decoded by the caller.  Two such buffers at most (the
 * batch read and the one decoded ahead). */

/* What decoding needs, kept between snapshots (one per thread). */
struct ds_decoder {
    ZSTD_DCtx *dctx;
    void *raw;                  /* decoded samples of the wire type */
    size_t raw_cap;
    void *scratch;              /* the v2 decoder's payload */
    size_t scratch_cap;
};

/* A batch's first rows decoded: row i's samples (channel-major, n[i] per
 * channel) at f + off[i], for i < rows. */
struct ds_decoded {
    float *f;
    size_t cap;                 /* bytes allocated */
    size_t off[DS_BATCH_IDS], n[DS_BATCH_IDS];
    int rows;
};

/* The batch asked ahead: ids[0, n) while busy, then res (or err) and its
 * decoded rows until the reader takes them.  Everything under mu. */
struct ds_prefetch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, busy, quit;
    int64_t ids[DS_BATCH_IDS];
    size_t n;
    PGresult *res;
    int err;
    unsigned channels;          /* the version's (set before the thread starts) */
    struct ds_decoder dec;      /* the thread's own */
    struct ds_decoded done;
};

struct ds_reader {
    struct ds_info info;
    char **groups;
    PGresult *page;
    PGresult *next_page;        /* the page after it, read early for the prefetch's ids */
    int page_i;
    int64_t next_row;
    PGresult *batch;            /* envelopes of the next snapshots, in row order */
    int batch_i;
    struct ds_decoded bdec;     /* the batch's rows the prefetch thread decoded */
    int64_t cur_snap;
    const float *cur;           /* its samples: snap, or in bdec */
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
    PQclear(r->batch);
    free(r->bdec.f);
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

/* Samples per channel of an envelope with the version's layout; 0 when it
 * does not parse as one (the database is outside input too). */
static size_t env_samples(unsigned channels, const uint8_t *env, size_t len)
{
    struct wire_meta m;
    struct wire_view v;

    if (wire_parse(env, len, &m, &v) != WIRE_OK || wire_samples_bytes(&m) == 0 ||
        m.channel_count != channels)
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
    size_t n = env_samples(r->info.channel_count, env, len);
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

/* The prefetch thread: decode res's first rows into p->done while they fit
 * in ds__mem_limits.decoded; it stops at the first it cannot (too large, or an
 * error the reader then meets and reports on its own decode). */
static void prefetch_decode(struct ds_prefetch *p, const PGresult *res)
{
    struct ds_decoded *d = &p->done;
    size_t at = 0, limit = ds__mem_limits.decoded;
    int i, rows = PQntuples(res);

    d->rows = 0;
    if (!p->dec.dctx && !(p->dec.dctx = ZSTD_createDCtx()))
        return;
    for (i = 0; i < rows && i < DS_BATCH_IDS; i++) {
        const uint8_t *env = (const uint8_t *)db_text(res, i, "envelope");
        size_t len = (size_t)db_len(res, i, "envelope");
        size_t n = env ? env_samples(p->channels, env, len) : 0;
        size_t bytes = n * p->channels * sizeof *d->f;

        if (n == 0 || bytes > limit - at ||
            reserve((void **)&d->f, &d->cap, at + bytes) != SRV_OK ||
            decode_into(&p->dec, env, len, (float *)((char *)d->f + at)) != SRV_OK)
            break;
        d->off[i] = at / sizeof *d->f;
        d->n[i] = n;
        d->rows = i + 1;
        at += bytes;
    }
}

static void *prefetch_main(void *arg)
{
    struct ds_prefetch *p = arg;
    PGresult *res;
    int err;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && !p->busy)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit)
            break;
        pthread_mutex_unlock(&p->mu);
        /* ids, n and done are not touched by the reader while busy */
        err = ingest_stored_many(p->ids, p->n, DS_BATCH_BYTES, &res);
        p->done.rows = 0;
        if (err == SRV_OK)
            prefetch_decode(p, res);
        pthread_mutex_lock(&p->mu);
        p->res = res;
        p->err = err;
        p->busy = 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    db_thread_release();
    return NULL;
}

/* Wait for the batch in flight, if any; its answer stays in p->res. */
static void prefetch_wait(struct ds_prefetch *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->busy)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void prefetch_stop(struct ds_prefetch *p)
{
    if (!p->started)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    PQclear(p->res);
    p->res = NULL;
    p->started = 0;
    free(p->done.f);
    free(p->dec.raw);
    free(p->dec.scratch);
    ZSTD_freeDCtx(p->dec.dctx);
    memset(&p->done, 0, sizeof p->done);
    memset(&p->dec, 0, sizeof p->dec);
}

/* Ask for ids[0, n) ahead; without a thread (it could not start) nothing
 * is asked and the reader fetches on its own. */
static void prefetch_ask(struct ds_prefetch *p, const int64_t *ids, size_t n)
{
    if (!p->started) {
        p->done.rows = 0;
        if (pthread_mutex_init(&p->mu, NULL) != 0)
            return;
        if (pthread_cond_init(&p->cv, NULL) != 0) {
            pthread_mutex_destroy(&p->mu);
            return;
        }
        if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
            pthread_cond_destroy(&p->cv);
            pthread_mutex_destroy(&p->mu);
            return;
        }
        p->started = 1;
    }
    prefetch_wait(p);
    pthread_mutex_lock(&p->mu);
    PQclear(p->res);
    p->res = NULL;
    memcpy(p->ids, ids, n * sizeof *ids);
    p->n = n;
    p->busy = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The batch asked ahead when it starts with id: 1 and *res, *err and its
 * decoded rows taken (into *dec, whose buffer goes to the thread for the
 * next batch); else 0 (and a batch that does not fit is dropped). */
static int prefetch_take(struct ds_prefetch *p, int64_t id, PGresult **res, int *err,
                         struct ds_decoded *dec)
{
    int got;

    if (!p->started || p->n == 0)
        return 0;
    prefetch_wait(p);
    got = p->ids[0] == id;
    if (got) {
        struct ds_decoded spare = *dec;

        *res = p->res;
        *err = p->err;
        *dec = p->done;
        p->done = spare;
        p->done.rows = 0;
    } else {
        PQclear(p->res);
    }
    p->res = NULL;
    p->n = 0;
    return got;
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

/* The batch that starts with snapshot id: the one asked ahead when it does,
 * else fetched now (the distinct snapshots of the rest of the page); then
 * the batch after it is asked for. */
static int batch_fetch(struct ds_reader *r, int64_t id)
{
    int64_t ids[DS_BATCH_IDS];
    size_t n = 0;
    int err = SRV_OK, rows;

    PQclear(r->batch);
    r->batch = NULL;
    r->batch_i = 0;
    r->bdec.rows = 0;
    r->cur_snap = -1;           /* r->cur may point into bdec, which is swapped now */
    if (!prefetch_take(&r->pre, id, &r->batch, &err, &r->bdec)) {
        ids[0] = id;
        n = ids_after(r, id, ids + 1, DS_BATCH_IDS - 1) + 1;
        err = ingest_stored_many(ids, n, DS_BATCH_BYTES, &r->batch);
    }
    if (err != SRV_OK || (rows = PQntuples(r->batch)) == 0)
        return err;
    n = ids_after(r, db_int64(r->batch, rows - 1, "id"), ids, DS_BATCH_IDS);
    if (n > 0)
        prefetch_ask(&r->pre, ids, n);
    return SRV_OK;
}

static int load_snapshot(struct ds_reader *r, int64_t id)
{
    int err;

    if (!r->batch || r->batch_i >= PQntuples(r->batch) ||
        db_int64(r->batch, r->batch_i, "id") != id) {
        if ((err = batch_fetch(r, id)) != SRV_OK)
            return err;
    }
    if (!r->batch || PQntuples(r->batch) == 0 || db_int64(r->batch, r->batch_i, "id") != id ||
        db_isnull(r->batch, r->batch_i, "envelope")) {
        srv_log("error", "datasets: snapshot %lld of a version is gone", (long long)id);
        return SRV_EINTERNAL;
    }
    if (r->batch_i < r->bdec.rows) {
        r->cur = r->bdec.f + r->bdec.off[r->batch_i];
        r->snap_n = r->bdec.n[r->batch_i];
        r->cur_snap = id;
        err = SRV_OK;
    } else {
        err = decode_snapshot(r, id, (const uint8_t *)db_text(r->batch, r->batch_i, "envelope"),
                              (size_t)db_len(r->batch, r->batch_i, "envelope"));
    }
    r->batch_i++;
    return err;
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
            size_t ns = db_isnull(res, i, "envelope") ? 0 : env_samples(in->channel_count, env, len);
            struct wire_meta m;
            struct wire_view v;

            /* another layout (channels, rate) than the version's: not its
             * windows; the database is outside input too */
            if (ns < in->window_samples || wire_parse(env, len, &m, &v) != WIRE_OK ||
                m.sample_rate != in->sample_rate) {
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

/* ds_unlabeled_read's walk: up to per_snap windows of each snapshot. */
struct unlabeled_walk {
    const struct ds_info *in;
    struct ds_unlabeled *u;
    size_t cap, per_snap;
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
    float *win = NULL;

    (void)id;
    if (!u->raw && !(win = malloc(C * T * sizeof *win)))
        return SRV_ENOMEM;
    for (size_t j = 0; j < take && u->n < w->cap; j++) {
        size_t at = take == nw ? j : j * nw / take;
        float *dst = u->raw ? u->raw + u->n * C * T : win;

        for (size_t c = 0; c < C; c++)
            memcpy(dst + c * T, x + c * samples + at * T, T * sizeof *dst);
        ds_relations_window_means(dst, (uint32_t)C, (uint32_t)T, u->means + u->n * C);
        u->n++;
    }
    u->snapshots++;
    free(win);
    return SRV_OK;
}

int ds_unlabeled_read(const struct ds_info *in, int keep_samples, struct ds_unlabeled *u)
{
    char db[24], vb[16], cb[24];
    const char *vals[3] = { db, vb, cb };
    size_t C = in->channel_count, T = in->window_samples, per_row = C * T * sizeof(float);
    size_t cap = per_row ? DS_UNLABELED_MAX_BYTES / per_row : 0, k;
    struct unlabeled_walk w = { in, u, 0, 1 };
    PGresult *r = NULL;
    int64_t *ids;
    int err;

    memset(u, 0, sizeof *u);
    if (cap > DS_UNLABELED_MAX_WINDOWS)
        cap = DS_UNLABELED_MAX_WINDOWS;
    if (cap == 0 || C == 0 || T == 0)
        return SRV_OK;
    snprintf(db, sizeof db, "%lld", (long long)in->dataset_id);
    snprintf(vb, sizeof vb, "%d", in->version);
    snprintf(cb, sizeof cb, "%zu", cap);
    if (ds__exec(DS_SQL_UNLABELED, vals, 0, &r) != SRV_OK)
        return SRV_EINTERNAL;
    if ((k = (size_t)PQntuples(r)) == 0) {
        PQclear(r);
        return SRV_OK;
    }
    if (!(ids = malloc(k * sizeof *ids))) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    for (size_t i = 0; i < k; i++)
        ids[i] = db_int64(r, (int)i, "id");
    PQclear(r);
    /* the windows each snapshot may give so that all of them fit the cap */
    w.per_snap = cap / k > 0 ? cap / k : 1;
    w.cap = k * w.per_snap < cap ? k * w.per_snap : cap;
    err = SRV_ENOMEM;
    if ((keep_samples && !(u->raw = malloc(w.cap * per_row))) ||
        !(u->means = malloc(w.cap * C * sizeof *u->means)))
        goto out;
    err = ds_snapshots_read(in, ids, k, unlabeled_take, &w, &u->skipped);
out:
    free(ids);
    if (err != SRV_OK)
        ds_unlabeled_free(u);
    return err;
}

void ds_unlabeled_free(struct ds_unlabeled *u)
{
    free(u->raw);
    free(u->means);
    memset(u, 0, sizeof *u);
}
