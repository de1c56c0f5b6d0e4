/* labels_samples.c - GET /api/v1/snapshots/{id}/samples: the samples a
 * waveform view draws, decimated to min/max per pixel column (or raw when
 * the range is narrow), as JSON or as the compact form of
 * schema/SAMPLES.md.  The stored envelope is decoded with the same wire code
 * the ingest path validated it with, once per snapshot while it stays in the
 * cache (labels_cache.c). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/decimate/decimate.h"
#include "server/ingest/ingest.h"
#include "server/labels/labels.h"
#include "server/labels/labels_int.h"


/* What the request asks for: a time range in seconds (to_s infinite: to the
 * end) at px columns. */
struct samples_args {
    double from_s, to_s;
    unsigned px;
    int binary;
};

/* format=bin, or format absent and an Accept naming octet-stream: the
 * compact form of schema/SAMPLES.md; JSON otherwise. */
static int want_binary(const struct srv_request *rq)
{
    const char *f = rq->query ? rq->query(rq, "format") : NULL;
    const char *a;

    if (f)
        return strcmp(f, "bin") == 0;
    a = rq->header ? rq->header(rq, "Accept") : NULL;
    return a && strstr(a, "application/octet-stream") != NULL;
}

static int samples_args(const struct srv_request *rq, struct samples_args *a,
                        struct srv_response *rs)
{
    const char *f = rq->query ? rq->query(rq, "format") : NULL;
    double pxd;

    if (labels_query_double(rq, "from_s", 0, &a->from_s) != 0 ||
        labels_query_double(rq, "to_s", INFINITY, &a->to_s) != 0 ||
        labels_query_double(rq, "px", LABELS_PX_DEFAULT, &pxd) != 0)
        return srv_fail(rs, SRV_EBADREQ, "from_s, to_s and px must be numbers");
    if (pxd < DECIMATE_PX_MIN || pxd > DECIMATE_PX_MAX || pxd != floor(pxd))
        return srv_fail(rs, SRV_EBADREQ, "px must be an integer in [1, 8192]");
    if (f && strcmp(f, "bin") != 0 && strcmp(f, "json") != 0)
        return srv_fail(rs, SRV_EBADREQ, "format must be json or bin");
    a->px = (unsigned)pxd;
    a->binary = want_binary(rq);
    return SRV_OK;
}

/* Codes with a scale or offset (wire v2) are served in physical units, as
 * float32: the one conversion is the schema's (wire_to_physical). */
static int calibrated(struct labels_decoded *d)
{
    size_t n = (size_t)d->m.pre_samples + d->m.post_samples;
    float *phys;

    if (wire_is_identity_calibration(&d->m))
        return SRV_OK;
    if (!(phys = malloc(n * d->m.channel_count * sizeof *phys)))
        return SRV_ENOMEM;
    if (wire_to_physical(&d->m, d->samples, phys) != WIRE_OK) {
        free(phys);
        return SRV_EINTERNAL;
    }
    free(d->samples);
    d->samples = phys;
    d->bytes = n * d->m.channel_count * sizeof *phys;
    d->m.sample_type = WIRE_F32;
    return SRV_OK;
}

/* Parse and decode an envelope read back from the database into d. */
static int decode_into(const uint8_t *env, size_t len, struct labels_decoded *d,
                       struct srv_response *rs)
{
    struct wire_view v;
    struct decimate_src src;
    size_t need, pyr_bytes = 0;
    int werr;

    /* The envelope passed the same parser at ingest; parse again anyway,
     * the database is outside input to this process too. */
    werr = wire_parse(env, len, &d->m, &v);
    need = werr == WIRE_OK ? wire_samples_bytes(&d->m) : 0;
    if (werr != WIRE_OK || need == 0)
        return srv_fail(rs, SRV_EINTERNAL, "stored envelope does not parse");
    if (!(d->samples = malloc(need)))
        return SRV_ENOMEM;
    if (wire_decode_samples(&d->m, &v, d->samples, need) != WIRE_OK)
        return srv_fail(rs, SRV_EINTERNAL, "stored envelope does not decode");
    d->bytes = need;
    werr = calibrated(d);
    if (werr != SRV_OK)
        return werr;
    /* Built once with the decoded (physical) samples and cached with them:
     * every later view of this snapshot, at any zoom, reads one pyramid level
     * instead of every sample (a million-sample channel is 8 ms a channel to
     * scan). */
    src.samples = d->samples;
    src.sample_type = d->m.sample_type;
    src.n = (size_t)d->m.pre_samples + d->m.post_samples;
    src.channels = d->m.channel_count;
    src.pyr = NULL;
    d->pyr = decimate_pyramid_build(&src, &pyr_bytes);
    if (d->pyr)
        d->bytes += pyr_bytes;
    return SRV_OK;
}

/* The decoded samples of snapshot id (text), from the cache or decoded from
 * the stored envelope and cached.  The caller releases *out. */
static int decoded_get(const char *id, struct labels_decoded **out, struct srv_response *rs)
{
    struct labels_snap sm;
    struct labels_decoded *d;
    PGresult *r = NULL;
    const uint8_t *env = NULL;
    size_t len = 0;
    int err;

    /* Existence first, from the metadata row: a snapshot dropped by
     * retention is gone for the API even while its samples are cached. */
    if ((err = labels_snapshot_meta(id, &sm, rs)) != SRV_OK)
        return err;
    if ((*out = labels_cache_get(strtoll(id, NULL, 10))))
        return SRV_OK;
    if (!(d = calloc(1, sizeof *d)))
        return SRV_ENOMEM;
    d->id = strtoll(id, NULL, 10);
    err = ingest_stored(d->id, &r, &env, &len);
    if (err == SRV_ENOTFOUND)
        err = srv_fail(rs, err, "no such snapshot");
    if (err != SRV_OK)
        goto fail;
    err = decode_into(env, len, d, rs);
    if (err != SRV_OK)
        goto fail;
    PQclear(r);
    *out = labels_cache_put(d);
    return SRV_OK;
fail:
    PQclear(r);
    decimate_pyramid_free(d->pyr);
    free(d->samples);
    free(d);
    return err;
}

int labels_samples_cached(const char *id, const struct wire_meta **m, const void **samples,
                          void **handle, struct srv_response *rs)
{
    struct labels_snap sm;
    struct labels_decoded *d = labels_cache_get(strtoll(id, NULL, 10));
    int err;

    *handle = NULL;
    if (!d)
        return SRV_OK;
    /* held, but the metadata row decides whether the snapshot still is */
    if ((err = labels_snapshot_meta(id, &sm, rs)) != SRV_OK) {
        labels_cache_release(d);
        return err;
    }
    *m = &d->m;
    *samples = d->samples;
    *handle = d;
    return SRV_OK;
}

void labels_samples_release(void *handle)
{
    labels_cache_release(handle);
}

static int respond_binary(const struct decimate_src *src, const struct wire_meta *mp,
                          size_t i0, size_t i1, unsigned px, struct srv_response *rs)
{
    struct decimate_bin_info info = { mp->sample_rate, mp->pre_samples };
    size_t len = decimate_bin_size(src, i0, i1, px);
    uint8_t *out = len ? malloc(len) : NULL;

    if (!out)
        return len ? SRV_ENOMEM : srv_fail(rs, SRV_EINTERNAL, "cannot size the binary answer");
    if (decimate_bin_write(src, &info, i0, i1, px, out, len) != len) {
        free(out);
        return srv_fail(rs, SRV_EINTERNAL, "binary answer not written");
    }
    rs->status = 200;
    rs->content_type = "application/octet-stream";
    rs->body = (char *)out;
    rs->body_len = len;
    return SRV_OK;
}

/* s as a JSON string ("" when it cannot be encoded). */
static void put_json_string(struct srv_buf *b, const char *s)
{
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

    srv_buf_puts(b, t ? t : "\"\"");
    free(t);
    json_decref(j);
}

/* A sample (a float32, or an int16 times its scale, both within the 9
 * significant digits that read a float32 back) or a time, after sep: a
 * real keeps a '.' or an exponent, as in every JSON answer (schema/
 * openapi.json, info), so 12 is written 12.0. */
static void put_value(struct srv_buf *b, const char *sep, double v)
{
    char tok[40];
    int n = snprintf(tok, sizeof tok, "%s%.9g", sep, v);

    if (n > 0 && !strpbrk(tok + strlen(sep), ".en"))
        memcpy(tok + n, ".0", 3);
    srv_buf_puts(b, tok);
}

static void put_doubles(struct srv_buf *b, const double *v, unsigned n)
{
    unsigned c;

    for (c = 0; c < n; c++)
        put_value(b, c ? "," : "", v[c]);
}

/* One channel's object: name, unit, and its values (raw) or min and max
 * per column; mn and mx have room for px values when not raw. */
static void put_channel(struct srv_buf *b, const struct decimate_src *src,
                        const struct wire_meta *mp, unsigned ch, size_t i0, size_t i1,
                        unsigned px, int raw, double *mn, double *mx)
{
    size_t i;

    srv_buf_puts(b, ch ? ",{\"name\":" : "{\"name\":");
    put_json_string(b, mp->channels[ch].name);
    srv_buf_puts(b, ",\"unit\":");
    put_json_string(b, mp->channels[ch].unit);
    if (raw) {
        srv_buf_puts(b, ",\"values\":[");
        for (i = i0; i < i1; i++)
            put_value(b, i > i0 ? "," : "", decimate_value(src, ch, i));
    } else {
        decimate_minmax(src, ch, i0, i1, px, mn, mx);
        srv_buf_puts(b, ",\"min\":[");
        put_doubles(b, mn, px);
        srv_buf_puts(b, "],\"max\":[");
        put_doubles(b, mx, px);
    }
    srv_buf_puts(b, "]}");
}

static int respond_json(const char *id, const struct decimate_src *src,
                        const struct wire_meta *mp, size_t i0, size_t i1, unsigned px,
                        struct srv_response *rs)
{
    struct srv_buf b = { 0 };
    int raw = decimate_is_raw(i0, i1, px);
    double *mn = raw ? NULL : malloc(px * sizeof *mn), *mx = raw ? NULL : malloc(px * sizeof *mx);
    size_t i;
    unsigned c;
    char rate[40], trigger[40];

    if (!raw && (!mn || !mx)) {
        free(mn);
        free(mx);
        return SRV_ENOMEM;
    }
    srv_json_real(mp->sample_rate, rate);
    srv_json_real(mp->pre_samples / mp->sample_rate, trigger);
    srv_buf_printf(&b, "{\"snapshot_id\":%s,\"sample_rate\":%s,\"samples\":%zu,"
                   "\"pre_samples\":%u,\"trigger_s\":%s,\"i0\":%zu,\"i1\":%zu,"
                   "\"mode\":\"%s\",\"px\":%u,\"t\":[", id, rate, src->n,
                   mp->pre_samples, trigger, i0, i1, raw ? "raw" : "minmax", px);
    /* t: each sample's time when raw, each column's first sample's time
     * when decimated. */
    if (raw)
        for (i = i0; i < i1; i++)
            put_value(&b, i > i0 ? "," : "", (double)i / mp->sample_rate);
    else
        for (c = 0; c < px; c++)
            put_value(&b, c ? "," : "", (double)decimate_col_start(i0, i1, px, c) / mp->sample_rate);
    srv_buf_puts(&b, "],\"channels\":[");
    for (c = 0; c < src->channels; c++)
        put_channel(&b, src, mp, c, i0, i1, px, raw, mn, mx);
    srv_buf_puts(&b, "]}");
    free(mn);
    free(mx);
    return labels_respond_buf(&b, 200, rs);
}

int labels_samples(struct srv_request *rq, struct srv_response *rs)
{
    char id[24];
    struct samples_args a;
    struct labels_decoded *d = NULL;
    struct decimate_src src;
    size_t i0, i1;
    int err;

    if ((err = labels_id_param(rq, id, sizeof id, rs)) != SRV_OK ||
        (err = samples_args(rq, &a, rs)) != SRV_OK ||
        (err = decoded_get(id, &d, rs)) != SRV_OK)
        return err;
    src.samples = d->samples;
    src.sample_type = d->m.sample_type;
    src.n = (size_t)d->m.pre_samples + d->m.post_samples;
    src.channels = d->m.channel_count;
    src.pyr = d->pyr;
    if (isinf(a.to_s))
        a.to_s = (double)src.n / d->m.sample_rate;
    if (decimate_range(a.from_s, a.to_s, d->m.sample_rate, src.n, &i0, &i1) != 0)
        err = srv_fail(rs, SRV_EBADREQ, "need from_s < to_s overlapping the snapshot");
    else if (a.binary)
        err = respond_binary(&src, &d->m, i0, i1, a.px, rs);
    else
        err = respond_json(id, &src, &d->m, i0, i1, a.px, rs);
    labels_cache_release(d);
    return err;
}
