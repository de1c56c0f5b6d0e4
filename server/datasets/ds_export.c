/* ds_export.c - a stored version as npz, jsonl or csv, produced in small
 * steps (one window of samples, or 256 rows) into a buffer the caller
 * drains (or straight into the caller's, ds__export_read): the HTTP stream
 * callback and the export-job thread drive the same code, and memory stays
 * bounded whatever the version's size (the reader's, and the caches below,
 * ds__mem_limits).
 *
 * npz entries in order: X, y, classes, groups, split, snapshot_id, start_us,
 * F, manifest.json (schema/EXPORT.md).  Only X's pass decodes samples: it
 * also computes F and keeps the rows the small arrays need, whose passes
 * then read nothing again (past the caches' limits they read the rows, and
 * F decodes, again). */
#include "server/datasets/ds_int.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/featureset.h"
#include "server/db/db.h"
#include "schema/model.h"
#include "server/datasets/ds_relations.h"
#include "server/srv/srv.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npz arrays are written as little-endian host memory"
#endif

#define EX_ROWS_PER_STEP 256
#define N_ARRAYS 8
/* F is computed from the samples the X pass has decoded anyway and held
 * until its entry, up to ds__mem_limits.f_cache bytes (4 MB: 8,000 windows
 * of 4 channels take 0.9 MB); the windows past it are decoded a second time
 * in F's own pass, as all of them were before, so memory stays bounded
 * whatever the version's size.  Likewise the window rows' fields the five
 * small arrays hold, when all of them fit in .row_cache (2 MB: 87,000
 * windows): those passes then read no page of rows, which were 16 queries
 * each for 8,000 windows, the export waiting on each. */
struct ds_mem_limits ds__mem_limits = DS_MEM_LIMITS_DEFAULT;

/* What the small arrays need of a window row. */
struct ex_row {
    int64_t snapshot_id, start_us;
    uint32_t group;
    int16_t cls;
    int8_t split;
};

enum { A_X, A_Y, A_CLASSES, A_GROUPS, A_SPLIT, A_SNAP, A_START, A_F };

static const char *const array_names[N_ARRAYS] = {
    "X", "y", "classes", "groups", "split", "snapshot_id", "start_us", "F"
};

struct ds_export {
    enum ds_format fmt;
    struct ds_reader *rd;
    const struct ds_info *in;
    struct ds_npz *z;
    json_t *files;              /* manifest "files" */
    char *manifest;
    struct srv_buf out;         /* produced; bytes before out_off are taken */
    size_t out_off;
    char *direct;               /* ds__export_read's buffer while a step runs */
    size_t direct_cap, direct_len;
    int stage;                  /* npz: array index, N_ARRAYS = manifest; text: 0 header, 1 rows */
    int in_array;
    int done;
    int64_t rows_done, rows_total;
    /* features=relations: F through this map of normal operation (NULL:
     * the version's own set), fitted on rel_fit_rows windows; the
     * set's scratch */
    struct relations_fit *rel;
    size_t rel_fit_rows;
    size_t rel_unlabeled;       /* the devices' unlabeled windows among its candidates */
    float *rel_scratch;
    size_t rel_ns;
    unsigned nf;                /* F's columns (ds_feature_count) */
    float *fscratch;            /* the feature set's working memory, once */
    size_t fscratch_n;
    float *fcache;              /* F of the first fcache_rows windows, from the X pass */
    size_t fcache_rows, fcache_cap;
    int64_t fcache_next_row;    /* the row after the last one cached */
    struct ex_row *rows;        /* every window row, from the X pass, when they fit */
    size_t rows_n, rows_i;      /* cached; the next one a small array's pass reads */
    int rows_all;               /* rows holds the version's every row, in order */
};

int ds__format_parse(const char *s, enum ds_format *out)
{
    if (!s || strcmp(s, "npz") == 0)
        *out = DS_FMT_NPZ;
    else if (strcmp(s, "jsonl") == 0)
        *out = DS_FMT_JSONL;
    else if (strcmp(s, "csv") == 0)
        *out = DS_FMT_CSV;
    else
        return SRV_EBADREQ;
    return SRV_OK;
}

const char *ds__format_ctype(enum ds_format f)
{
    return f == DS_FMT_NPZ ? "application/zip"
         : f == DS_FMT_JSONL ? "application/x-ndjson" : "text/csv";
}

const char *ds__format_ext(enum ds_format f)
{
    return f == DS_FMT_NPZ ? "npz" : f == DS_FMT_JSONL ? "jsonl" : "csv";
}

/* The output buffer, emptied first when everything in it was taken. */
static struct srv_buf *out_buf(struct ds_export *e)
{
    if (e->out_off == e->out.len)
        e->out_off = e->out.len = 0;
    return &e->out;
}

/* Produced bytes: straight into ds__export_read's buffer while it has room
 * and nothing is pending before them, else into out. */
static int ex_put(struct ds_export *e, const void *buf, size_t len)
{
    if (e->direct && e->out_off == e->out.len) {
        size_t n = e->direct_cap - e->direct_len < len ? e->direct_cap - e->direct_len : len;

        memcpy(e->direct + e->direct_len, buf, n);
        e->direct_len += n;
        buf = (const char *)buf + n;
        len -= n;
    }
    if (len == 0)
        return 0;
    srv_buf_put(out_buf(e), buf, len);
    return e->out.oom ? -1 : 0;
}

static int npz_sink(void *ctx, const void *buf, size_t len)
{
    return ex_put(ctx, buf, len);
}

static int rel_prepare(struct ds_export *e, const char **why);

/* features: NULL, or "relations" (rel_prepare, before the npz writer
 * exists: a refusal leaves nothing half made) */
static int export_open(int64_t dataset_id, int version, enum ds_format f, const char *features,
                       struct ds_export **out, const char **why)
{
    struct ds_export *e = calloc(1, sizeof *e);
    int err;

    if (!e)
        return SRV_ENOMEM;
    e->fmt = f;
    if ((err = ds_reader_open(dataset_id, version, &e->rd)) != SRV_OK) {
        free(e);
        return err;
    }
    e->in = ds_reader_info(e->rd);
    e->rows_total = f == DS_FMT_NPZ ? e->in->n_windows * (N_ARRAYS - 1) : e->in->n_windows;
    if (features && (err = rel_prepare(e, why)) != SRV_OK) {
        ds__export_free(e);
        return err;
    }
    if (f == DS_FMT_NPZ) {
        e->nf = e->rel ? featureset_count(FEATURESET_RELATIONS, FEATURESET_RELATIONS_VERSION,
                                          e->in->channel_count)
                       : ds_feature_count(e->in);
        e->fscratch_n = e->nf && !e->rel ? ds_feature_scratch_floats(e->in) : 0;
        if (e->nf) {
            uint64_t want = (uint64_t)e->in->n_windows * e->nf * sizeof *e->fcache;
            uint64_t cap = ds__mem_limits.f_cache;

            e->fcache_cap = (size_t)((want < cap ? want : cap) / (e->nf * sizeof *e->fcache));
        }
        if (e->in->n_windows > 0 &&
            (uint64_t)e->in->n_windows <= ds__mem_limits.row_cache / sizeof *e->rows &&
            !(e->rows = malloc((size_t)e->in->n_windows * sizeof *e->rows))) {
            ds__export_free(e);
            return SRV_ENOMEM;
        }
        e->files = json_object();
        if (!e->files || ds_npz_open(npz_sink, e, &e->z) != DS_OK ||
            (e->fscratch_n && !(e->fscratch = malloc(e->fscratch_n * sizeof *e->fscratch))) ||
            (e->fcache_cap && !(e->fcache = malloc(e->fcache_cap * e->nf * sizeof *e->fcache)))) {
            ds__export_free(e);
            return SRV_ENOMEM;
        }
    }
    *out = e;
    return SRV_OK;
}

int ds__export_open(int64_t dataset_id, int version, enum ds_format f, struct ds_export **out)
{
    const char *why;

    return export_open(dataset_id, version, f, NULL, out, &why);
}

static void rel_spec(const struct ds_export *e, struct featureset_spec *fs);

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* F as relations: one pass over the version's windows for their channel
 * means and which of them are assumed normal (labeled normal by a human, or
 * of a scheduled baseline snapshot labeled normal by any source: the
 * training's rule, models_train.c), then the map fitted on those as the
 * training fits it (same rows, same order: the same map), all before the
 * first byte of the answer. */
static int rel_prepare(struct ds_export *e, const char **why)
{
    static _Thread_local char buf[200];
    const struct ds_info *in = e->in;
    uint32_t C = in->channel_count, W = in->window_samples;
    size_t n = in->n_windows > 0 ? (size_t)in->n_windows : 0, k = 0, nfit = 0, ns = 0;
    size_t need = C + 1u > 10u ? C + 1u : 10u;
    char db[24], vb[16];
    const char *vals[2] = { db, vb };
    PGresult *r = NULL;
    int64_t *sched = NULL;
    float *means = NULL;
    uint8_t *use = NULL, *cand = NULL, *fault = NULL;
    struct ds_row row;
    const float *x;
    int rc = SRV_ENOMEM;

    if (C < 2 || C > RELATIONS_MAX_CH || W < FEATURESET_MIN_WINDOW || W > FEATURESET_MAX_WINDOW ||
        n == 0) {
        *why = "the relations set needs 2..64 channels, windows of 8..65536 samples and a window";
        return SRV_EUNPROCESSABLE;
    }
    snprintf(db, sizeof db, "%lld", (long long)in->dataset_id);
    snprintf(vb, sizeof vb, "%d", in->version);
    if (ds__exec(DS_SQL_SCHEDULED, vals, 0, &r) != SRV_OK)
        return SRV_EINTERNAL;
    ns = (size_t)PQntuples(r);
    means = malloc(n * C * sizeof *means);
    use = calloc(n, 1);
    cand = calloc(n, 1);
    fault = calloc(n, 1);
    sched = malloc((ns ? ns : 1) * sizeof *sched);
    if (!(e->rel = calloc(1, sizeof *e->rel)) || !means || !use || !cand || !fault || !sched)
        goto out;
    for (size_t i = 0; i < ns; i++)
        sched[i] = db_int64(r, (int)i, "snapshot_id");
    while ((rc = ds_reader_next(e->rd, &row, &x)) == 1) {
        int normal, ok;

        rc = SRV_EINTERNAL;
        if (k == n)
            goto out;
        ok = ds_relations_window_means(x, C, W, means + k * C);
        normal = in->normal_class >= 0 && row.cls == in->normal_class &&
                 ((strcmp(row.source, "rule") != 0 && strcmp(row.source, "vote") != 0) ||
                  bsearch(&row.snapshot_id, sched, ns, sizeof *sched, cmp_i64));
        use[k] = (uint8_t)(normal && ok);
        cand[k] = (uint8_t)(row.cls < 0 || row.cls == in->normal_class);
        fault[k] = (uint8_t)(row.cls >= 0 && row.cls != in->normal_class);
        nfit += use[k];
        k++;
    }
    if (rc < 0)
        goto out;
    e->rel_fit_rows = nfit;
    if (nfit < need) {
        snprintf(buf, sizeof buf, "the relations set fits its map on windows assumed normal "
                 "(labeled normal by a human, or from scheduled baseline snapshots): the version "
                 "has %zu, it needs at least %zu", nfit, need);
        *why = buf;
        rc = SRV_EUNPROCESSABLE;
        goto out;
    }
    {
        /* the devices' unlabeled windows behind the version's, candidates
         * only: as the training fits the map (models_train.c) */
        struct ds_unlabeled u;
        float *m2;
        uint8_t *u2, *c2, *f2;

        if ((rc = ds_unlabeled_read(in, 0, &u)) != SRV_OK)
            goto out;
        rc = SRV_ENOMEM;
        if ((m2 = realloc(means, (k + u.n) * C * sizeof *means)))
            means = m2;
        if ((u2 = realloc(use, k + u.n)))
            use = u2;
        if ((c2 = realloc(cand, k + u.n)))
            cand = c2;
        if ((f2 = realloc(fault, k + u.n)))
            fault = f2;
        if (!m2 || !u2 || !c2 || !f2) {
            ds_unlabeled_free(&u);
            goto out;
        }
        if (u.n)
            memcpy(means + k * C, u.means, u.n * C * sizeof *means);
        memset(use + k, 0, u.n);
        memset(cand + k, 1, u.n);
        memset(fault + k, 0, u.n);
        e->rel_unlabeled = u.n;
        k += u.n;
        ds_unlabeled_free(&u);
    }
    {
        uint32_t n_final = 0;

        if (ds_relations_fit_trimmed(means, (uint32_t)k, C, use, cand, fault, RELATIONS_VAR_KEEP, e->rel,
                                     &n_final, NULL) != MODEL_OK) {
            *why = "fitting the relations map failed";
            rc = SRV_EUNPROCESSABLE;
            goto out;
        }
        e->rel_fit_rows = n_final;
    }
    {
        struct featureset_spec fs;

        rel_spec(e, &fs);
        e->rel_ns = featureset_scratch_floats(&fs);
        rc = SRV_ENOMEM;
        if (!(e->rel_scratch = malloc((e->rel_ns ? e->rel_ns : 1) * sizeof *e->rel_scratch)))
            goto out;
    }
    ds_reader_rewind(e->rd);
    rc = SRV_OK;
out:
    PQclear(r);
    free(means);
    free(use);
    free(cand);
    free(fault);
    free(sched);
    return rc;
}

int ds__export_open_features(int64_t dataset_id, int version, enum ds_format f,
                             const char *features, struct ds_export **out, const char **why)
{
    *why = NULL;
    if (!features)
        return ds__export_open(dataset_id, version, f, out);
    if (strcmp(features, "relations") != 0) {
        *why = "features must be relations (or absent: the version's own set)";
        return SRV_EBADREQ;
    }
    if (f != DS_FMT_NPZ) {
        *why = "features=relations needs format=npz (its F array)";
        return SRV_EBADREQ;
    }
    return export_open(dataset_id, version, f, features, out, why);
}

void ds__export_free(struct ds_export *e)
{
    if (!e)
        return;
    if (e->z)
        ds_npz_abort(e->z);
    ds_reader_free(e->rd);
    free(e->rel);
    free(e->rel_scratch);
    json_decref(e->files);
    free(e->fscratch);
    free(e->fcache);
    free(e->rows);
    free(e->manifest);
    srv_buf_free(&e->out);
    free(e);
}

const char *ds__export_pending(struct ds_export *e, size_t *len)
{
    *len = e->out.len - e->out_off;
    return e->out.p ? e->out.p + e->out_off : "";
}

void ds__export_consume(struct ds_export *e, size_t n)
{
    e->out_off += n;
}

ssize_t ds__export_read(struct ds_export *e, char *buf, size_t max)
{
    size_t len;
    const char *p = ds__export_pending(e, &len);
    int rc = 1;

    if (len > 0) {
        len = len < max ? len : max;
        memcpy(buf, p, len);
        ds__export_consume(e, len);
        return (ssize_t)len;
    }
    /* nothing pending: the steps write into buf itself (one copy of every
     * byte fewer), what does not fit stays pending for the next read */
    e->direct = buf;
    e->direct_cap = max;
    e->direct_len = 0;
    while (e->direct_len < max && e->out_off == e->out.len && (rc = ds__export_step(e)) == 1)
        ;
    e->direct = NULL;
    if (rc < 0)
        return rc;
    if (e->direct_len > 0)
        return (ssize_t)e->direct_len;
    if (rc == 0)
        return 0;
    p = ds__export_pending(e, &len);
    len = len < max ? len : max;
    memcpy(buf, p, len);
    ds__export_consume(e, len);
    return (ssize_t)len;
}

void ds__export_progress(const struct ds_export *e, int64_t *done, int64_t *total)
{
    *done = e->rows_done;
    *total = e->rows_total;
}

const char *ds__export_manifest(const struct ds_export *e)
{
    return e->manifest;
}

static int npz_err(int drc)
{
    return drc == DS_ENOMEM ? SRV_ENOMEM : SRV_EINTERNAL;
}

/* class -> balanced weight, from the summary's class counts. */
static json_t *class_weights(const struct ds_info *in, const json_t *sum)
{
    size_t counts[DS_MAX_CLASSES] = { 0 };
    double weights[DS_MAX_CLASSES];
    json_t *w = json_object();
    unsigned i;

    for (i = 0; i < in->n_classes; i++)
        counts[i] = (size_t)json_integer_value(json_object_get(json_object_get(sum, "class_counts"),
                                                               in->classes[i]));
    ds_class_weights(counts, in->n_classes, weights);
    for (i = 0; w && i < in->n_classes; i++)
        json_object_set_new(w, in->classes[i], json_real(weights[i]));
    return w;
}

static json_t *channels_json(const struct ds_info *in)
{
    json_t *ch = json_array();
    unsigned i;

    for (i = 0; ch && i < in->channel_count; i++)
        json_array_append_new(ch, json_pack("{s:s,s:s}", "name", in->channel_names[i],
                                            "unit", in->channel_units[i]));
    return ch;
}

/* The relations set as spec (its map in e->rel). */
static void rel_spec(const struct ds_export *e, struct featureset_spec *fs)
{
    *fs = (struct featureset_spec){ FEATURESET_RELATIONS, FEATURESET_RELATIONS_VERSION,
                                    e->in->window_samples, e->in->window_samples,
                                    (float)e->in->sample_rate, FEATURESET_NO_KIN, &e->rel->map };
}

static json_t *floats_json(const float *v, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_real((double)v[i]));
    return a;
}

/* manifest.features for F as relations: the set, its columns and the map
 * (floats printed with 10 significant digits: each reads back as the same
 * float), so a loader can compute the same vector from X. */
static json_t *rel_feature_json(const struct ds_export *e)
{
    const struct ds_info *in = e->in;
    const struct relations_map *m = &e->rel->map;
    json_t *names = json_array();

    for (unsigned c = 0; names && c < in->channel_count; c++)
        for (unsigned k = 0; k < 2; k++)
            json_array_append_new(names, json_sprintf("%s.%s", in->channel_names[c],
                                                      featureset_feature_name(FEATURESET_RELATIONS,
                                                                              FEATURESET_RELATIONS_VERSION, k)));
    if (names)
        json_array_append_new(names, json_string(featureset_feature_name(FEATURESET_RELATIONS,
                                                                         FEATURESET_RELATIONS_VERSION, 2)));
    return json_pack("{s:s,s:i,s:i,s:i,s:i,s:f,s:o,s:{s:i,s:o,s:o,s:o,s:f,s:f,s:I,s:I,s:s}}",
                     "set", "relations", "id", FEATURESET_RELATIONS, "version",
                     FEATURESET_RELATIONS_VERSION, "window", (int)in->window_samples, "hop",
                     (int)in->window_samples, "sample_rate", in->sample_rate, "names", names, "map",
                     "rank", (int)m->rank, "mean", floats_json(m->mean, m->n_ch), "scale",
                     floats_json(m->scale, m->n_ch), "basis",
                     floats_json(m->basis, (size_t)m->n_ch * m->rank), "explained",
                     e->rel->explained, "variance_kept", RELATIONS_VAR_KEEP, "fit_windows",
                     (json_int_t)e->rel_fit_rows, "unlabeled_windows",
                     (json_int_t)e->rel_unlabeled, "fit_on",
                     "windows labeled normal by a human and windows of scheduled baseline "
                     "snapshots labeled normal by any source, then refitted with the windows "
                     "nobody labeled a fault that the first map finds normal: the version's and "
                     "the unlabeled windows of its devices' scheduled baseline snapshots "
                     "received up to its freeze (as a relations model of this version fits "
                     "its map)");
}

/* The manifest: everything a loader needs to trust and weigh the arrays.
 * Built from the version's summary and the entries' hashes only, so it is
 * as reproducible as the arrays. */
static char *build_manifest(struct ds_export *e)
{
    const struct ds_info *in = e->in;
    PGresult *r = NULL;
    json_t *sum = NULL, *def = NULL, *m = NULL;
    char *s = NULL;

    if (ds__version_row(in->dataset_id, in->version, &r) != SRV_OK)
        return NULL;
    sum = json_loads(db_text_or(r, 0, "summary", ""), 0, NULL);
    def = json_loads(db_text_or(r, 0, "definition", ""), 0, NULL);
    if (!sum || !def)
        goto out;
    m = json_pack("{s:I,s:i,s:s,s:I,s:O,s:O,s:o,s:O,s:f,s:I,s:o,s:O,s:O,s:O}",
                  "dataset_id", (json_int_t)in->dataset_id, "version", in->version,
                  "content_sha256", db_text_or(r, 0, "content_sha256", ""),
                  "n_windows", (json_int_t)in->n_windows,
                  "files", e->files, "class_counts", json_object_get(sum, "class_counts"),
                  "class_weights", class_weights(in, sum),
                  "label_sources", json_object_get(sum, "label_sources"),
                  "sample_rate", in->sample_rate, "window_samples", (json_int_t)in->window_samples,
                  "channels", channels_json(in), "window", json_object_get(def, "window"),
                  "split", json_object_get(def, "split"), "filter", json_object_get(def, "filter"));
    if (m)
        json_object_set_new(m, "features", e->rel ? rel_feature_json(e) : (json_t *)ds_feature_json(in));
    if (m)
        s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
out:
    json_decref(m);
    json_decref(sum);
    json_decref(def);
    PQclear(r);
    return s;
}

/* The last entry: the manifest, then the zip's central directory. */
static int npz_finish(struct ds_export *e)
{
    int drc;

    if (!(e->manifest = build_manifest(e)))
        return SRV_EINTERNAL;
    if ((drc = ds_npz_file(e->z, "manifest.json", e->manifest, strlen(e->manifest))) != DS_OK)
        return npz_err(drc);
    drc = ds_npz_close(e->z);
    e->z = NULL;
    e->done = 1;
    return drc == DS_OK ? 1 : npz_err(drc);
}

/* A fixed-width name field of an |S64 array: zero-padded, cut at 64. */
static void name64(char out[64], const char *s)
{
    memset(out, 0, 64);
    memcpy(out, s, strnlen(s, 64));
}

/* Record the finished entry's hash for the manifest and move on. */
static int npz_entry_done(struct ds_export *e)
{
    uint8_t sha[32];
    char hex[65], fname[80];

    /* ds_npz_data finishes the entry on its last byte: a short count
     * means the version's rows and its summary disagree. */
    if (ds_npz_last_sha256(e->z, sha) != DS_OK)
        return SRV_EINTERNAL;
    sodium_bin2hex(hex, sizeof hex, sha, sizeof sha);
    snprintf(fname, sizeof fname, "%s.npy", array_names[e->stage]);
    json_object_set_new(e->files, fname, json_pack("{s:s}", "sha256", hex));
    e->in_array = 0;
    e->stage++;
    return 1;
}

/* Start the entry of the current stage: its .npy header; the classes
 * array, which needs no pass over the rows, is written whole. */
static int npz_entry_begin(struct ds_export *e)
{
    static const char *const descr[N_ARRAYS] = { "<f4", "<i8", "|S64", "|S64", "|i1", "<i8", "<i8",
                                                 "<f4" };
    static const size_t isz[N_ARRAYS] = { 4, 8, 64, 64, 1, 8, 8, 4 };
    const struct ds_info *in = e->in;
    uint64_t shape[3] = { (uint64_t)in->n_windows, in->channel_count, in->window_samples };
    char name[64];
    unsigned i;
    int drc;

    if (e->stage == A_CLASSES)
        shape[0] = in->n_classes;
    if (e->stage == A_F)
        shape[1] = e->nf;
    if ((drc = ds_npz_begin(e->z, array_names[e->stage], descr[e->stage], isz[e->stage],
                            shape, e->stage == A_X ? 3 : e->stage == A_F ? 2 : 1)) != DS_OK)
        return npz_err(drc);
    e->in_array = 1;
    e->rows_i = 0;
    ds_reader_rewind(e->rd);
    if (e->stage != A_CLASSES)
        return 1;
    for (i = 0; i < in->n_classes; i++) {
        name64(name, in->classes[i]);
        if ((drc = ds_npz_data(e->z, name, sizeof name)) != DS_OK)
            return npz_err(drc);
    }
    return npz_entry_done(e);
}

/* One window's model features (schema/featureset.h, the function the
 * agent runs): what a model of this version is trained on, or with
 * features=relations the relation features through e->rel's map.  Out of
 * the set's range F has no columns. */
static int window_features(struct ds_export *e, const float *x, float *f)
{
    if (e->nf == 0)
        return SRV_OK;
    if (e->rel) {
        struct featureset_spec fs;

        rel_spec(e, &fs);
        return featureset_compute(&fs, x, e->in->window_samples, e->in->channel_count,
                                  e->rel_scratch, e->rel_ns, f) == FEATURESET_OK
                   ? SRV_OK : SRV_EINTERNAL;
    }
    return ds_window_features_scratch(e->in, x, e->fscratch, e->fscratch_n, f) == DS_OK
               ? SRV_OK : SRV_EINTERNAL;
}

/* One window's samples into X, and its features into the cache while it
 * has room. */
static int npz_x_step(struct ds_export *e)
{
    struct ds_row row;
    const float *x;
    int rc, drc;

    if ((rc = ds_reader_next(e->rd, &row, &x)) < 0)
        return rc;
    if (rc == 0) {
        e->rows_all = e->rows && (int64_t)e->rows_n == e->in->n_windows;
        return npz_entry_done(e);
    }
    if ((drc = ds_npz_data(e->z, x, (size_t)e->in->channel_count * e->in->window_samples * 4)) != DS_OK)
        return npz_err(drc);
    /* (a row past the summary's count failed in ds_npz_data above; cls is
     * below DS_MAX_CLASSES, checked by the reader) */
    if (e->rows && (int64_t)e->rows_n < e->in->n_windows)
        e->rows[e->rows_n++] = (struct ex_row){ row.snapshot_id, row.start_us, row.group,
                                                (int16_t)row.cls, (int8_t)row.split };
    if (e->fcache_rows < e->fcache_cap) {
        if ((rc = window_features(e, x, e->fcache + e->fcache_rows * e->nf)) != SRV_OK)
            return rc;
        e->fcache_rows++;
        e->fcache_next_row = row.row + 1;
    }
    e->rows_done++;
    return 1;
}

/* F: the cached windows' features in one piece, then one window at a time
 * for the rest (decoded again). */
static int npz_f_step(struct ds_export *e)
{
    float f[FEATURESET_MAX_CHANNELS * FEATURESET_MAX_PER_CHANNEL];
    struct ds_row row;
    const float *x;
    int rc, drc;

    if (e->fcache_rows > 0) {
        if ((drc = ds_npz_data(e->z, e->fcache, e->fcache_rows * e->nf * sizeof *e->fcache)) != DS_OK)
            return npz_err(drc);
        e->rows_done += (int64_t)e->fcache_rows;
        e->fcache_rows = 0;
        ds_reader_seek(e->rd, e->fcache_next_row);
        return 1;
    }
    if (e->nf > sizeof f / sizeof f[0])
        return SRV_EINTERNAL;
    /* no columns: the rows are walked (the count must agree), not decoded */
    if ((rc = ds_reader_next(e->rd, &row, e->nf ? &x : NULL)) < 0)
        return rc;
    if (rc == 0)
        return npz_entry_done(e);
    if ((rc = window_features(e, x, f)) != SRV_OK)
        return rc;
    if ((drc = ds_npz_data(e->z, f, (size_t)e->nf * sizeof f[0])) != DS_OK)
        return npz_err(drc);
    e->rows_done++;
    return 1;
}

/* The current stage's field of one row, as the array stores it. */
static size_t row_field(const struct ds_export *e, const struct ex_row *row, char *buf)
{
    int64_t v64;

    switch (e->stage) {
    case A_Y: v64 = row->cls; memcpy(buf, &v64, 8); return 8;
    case A_GROUPS: name64(buf, ds_reader_group(e->rd, row->group)); return 64;
    case A_SPLIT: buf[0] = (char)row->split; return 1;
    case A_SNAP: memcpy(buf, &row->snapshot_id, 8); return 8;
    default: memcpy(buf, &row->start_us, 8); return 8;
    }
}

/* Up to EX_ROWS_PER_STEP rows of a small array, written in one piece:
 * from the rows the X pass kept when it kept them all, else read again. */
static int npz_rows_step(struct ds_export *e)
{
    char buf[EX_ROWS_PER_STEP * 64];
    size_t len = 0;
    int drc, rc = 1, k;

    for (k = 0; k < EX_ROWS_PER_STEP; k++) {
        struct ex_row cur;

        if (e->rows_all) {
            if (e->rows_i == e->rows_n) {
                rc = 0;
                break;
            }
            cur = e->rows[e->rows_i++];
        } else {
            struct ds_row row;

            if ((rc = ds_reader_next(e->rd, &row, NULL)) <= 0)
                break;
            cur = (struct ex_row){ row.snapshot_id, row.start_us, row.group, (int16_t)row.cls,
                                   (int8_t)row.split };
        }
        len += row_field(e, &cur, buf + len);
        e->rows_done++;
    }
    if (rc < 0)
        return rc;
    if (len > 0 && (drc = ds_npz_data(e->z, buf, len)) != DS_OK)
        return npz_err(drc);
    return rc == 0 ? npz_entry_done(e) : 1;
}

static int npz_step(struct ds_export *e)
{
    if (e->stage == N_ARRAYS)
        return npz_finish(e);
    if (!e->in_array)
        return npz_entry_begin(e);
    if (e->stage == A_X)
        return npz_x_step(e);
    if (e->stage == A_F)
        return npz_f_step(e);
    return npz_rows_step(e);
}

static const char *const split_names[DS_SPLITS] = { "train", "validation", "test" };

/* Group names are device ids, asset ids, types or day numbers: quote only
 * when one ever holds a separator. */
static void csv_field(char q[160], const char *g)
{
    size_t o = 0;

    if (strcspn(g, ",\"\r\n") == strlen(g)) {
        snprintf(q, 160, "%s", g);
        return;
    }
    q[o++] = '"';
    for (; *g && o < 160 - 3; g++) {
        if (*g == '"')
            q[o++] = '"';
        q[o++] = *g;
    }
    q[o++] = '"';
    q[o] = '\0';
}

static void csv_line(struct srv_buf *out, const struct ds_row *row, const char *cls, const char *g)
{
    char q[160];

    csv_field(q, g);
    srv_buf_printf(out, "%lld,%lld,%lld,%u,%s,%s,%s,%s\n", (long long)row->row,
                   (long long)row->snapshot_id, (long long)row->start_us, row->start_sample,
                   cls, row->source, q, split_names[row->split % DS_SPLITS]);
}

static void jsonl_line(struct srv_buf *out, const struct ds_row *row, const char *cls, const char *g)
{
    json_t *gs = json_string(g);
    char *gj = gs ? json_dumps(gs, JSON_ENCODE_ANY) : NULL;

    srv_buf_printf(out, "{\"row\":%lld,\"snapshot_id\":%lld,\"start_us\":%lld,"
                   "\"start_sample\":%u,\"class\":\"%s\",\"label_source\":\"%s\","
                   "\"group\":%s,\"split\":\"%s\"}\n", (long long)row->row,
                   (long long)row->snapshot_id, (long long)row->start_us, row->start_sample,
                   cls, row->source, gj ? gj : "\"\"", split_names[row->split % DS_SPLITS]);
    free(gj);
    json_decref(gs);
}

static int text_step(struct ds_export *e)
{
    static const char csv_header[] =
        "row,snapshot_id,start_us,start_sample,class,label_source,group,split\n";
    struct ds_row row;
    int rc, k;

    if (e->stage == 0) {
        e->stage = 1;
        ds_reader_rewind(e->rd);
        if (e->fmt == DS_FMT_CSV)
            return ex_put(e, csv_header, sizeof csv_header - 1) == 0 ? 1 : SRV_ENOMEM;
        return 1;
    }
    for (k = 0; k < EX_ROWS_PER_STEP; k++) {
        const char *g, *cls;

        if ((rc = ds_reader_next(e->rd, &row, NULL)) < 0)
            return rc;
        if (rc == 0) {
            e->done = 1;
            return 1;
        }
        g = ds_reader_group(e->rd, row.group);
        cls = e->in->classes[row.cls];
        if (e->fmt == DS_FMT_CSV)
            csv_line(out_buf(e), &row, cls, g);
        else
            jsonl_line(out_buf(e), &row, cls, g);
        if (e->out.oom)
            return SRV_ENOMEM;
        e->rows_done++;
    }
    return 1;
}

int ds__export_step(struct ds_export *e)
{
    int rc;

    if (e->done)
        return 0;
    rc = e->fmt == DS_FMT_NPZ ? npz_step(e) : text_step(e);
    if (rc == 1 && e->fmt == DS_FMT_NPZ && e->z == NULL && !e->done)
        return SRV_EINTERNAL;
    return rc;
}

/* The manifest of a version not asked for before: one npz pass, the bytes
 * discarded. */
static int manifest_compute(int64_t dataset_id, int version, char **out)
{
    struct ds_export *e = NULL;
    size_t pend;
    int err, rc;

    if ((err = ds__export_open(dataset_id, version, DS_FMT_NPZ, &e)) != SRV_OK)
        return err;
    while ((rc = ds__export_step(e)) == 1) {
        ds__export_pending(e, &pend);
        ds__export_consume(e, pend);
    }
    if (rc < 0 || !ds__export_manifest(e)) {
        ds__export_free(e);
        return rc < 0 ? rc : SRV_EINTERNAL;
    }
    *out = strdup(ds__export_manifest(e));
    ds__export_free(e);
    return *out ? SRV_OK : SRV_ENOMEM;
}

int ds__manifest(int64_t dataset_id, int version, char **out, size_t *len)
{
    char idb[24], vb[16];
    const char *vals[3] = { idb, vb, NULL };
    PGresult *r = NULL;
    int err;

    if ((err = ds__version_row(dataset_id, version, &r)) != SRV_OK)
        return err;
    if (db_text(r, 0, "manifest")) {
        *out = strdup(db_text(r, 0, "manifest"));
        PQclear(r);
    } else {
        PQclear(r);
        if ((err = manifest_compute(dataset_id, version, out)) != SRV_OK)
            return err;
        snprintf(idb, sizeof idb, "%lld", (long long)dataset_id);
        snprintf(vb, sizeof vb, "%d", version);
        vals[2] = *out;
        (void)ds__exec(DS_SQL_MANIFEST_SET, vals, 0, NULL);
    }
    *len = *out ? strlen(*out) : 0;
    return *out ? SRV_OK : SRV_ENOMEM;
}
