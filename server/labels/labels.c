/* labels.c - see labels.h.
 *
 * Inputs are bounded here before anything reaches the database; the SQL
 * (labels_stmts.def) builds the JSON of label rows so their shape is written
 * once.  Sample requests decode the stored envelope (the same wire code the
 * ingest path validated it with) and decimate it per pixel column. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/decimate/decimate.h"
#include "server/text/text.h"
#include "server/labels/labels.h"
#include "server/labels/labels_int.h"
#include "server/session/session.h"

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

/* ---- parsing and checks (pure) ------------------------------------------- */

static int opt_string(const json_t *body, const char *key, size_t max, const char **out,
                      const char **why, const char *msg)
{
    const json_t *v = json_object_get(body, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        *why = msg;
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int valid_class_name(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > LABELS_CLASS_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

int labels_parse(const json_t *body, int partial, struct labels_input *in, const char **why)
{
    const json_t *js = json_object_get(body, "start_s"), *je = json_object_get(body, "end_s");
    const json_t *jc = json_object_get(body, "channels"), *jconf = json_object_get(body, "confidence");
    size_t i;

    memset(in, 0, sizeof *in);
    if (!json_is_object(body)) {
        *why = "body must be a JSON object";
        return SRV_EBADREQ;
    }
    if (js || je) {
        if (!json_is_number(js) || !json_is_number(je)) {
            *why = "start_s and end_s must both be numbers";
            return SRV_EBADREQ;
        }
        in->has_span = 1;
        in->start_s = json_number_value(js);
        in->end_s = json_number_value(je);
        if (!isfinite(in->start_s) || !isfinite(in->end_s) || in->start_s < 0 ||
            in->end_s <= in->start_s) {
            *why = "need 0 <= start_s < end_s";
            return SRV_EBADREQ;
        }
    } else if (!partial) {
        *why = "start_s and end_s are required";
        return SRV_EBADREQ;
    }
    if (jc) {
        if (!json_is_array(jc) || json_array_size(jc) == 0 ||
            json_array_size(jc) > LABELS_MAX_CHANNELS) {
            *why = "channels must be a non-empty array of channel indexes";
            return SRV_EBADREQ;
        }
        for (i = 0; i < json_array_size(jc); i++) {
            const json_t *c = json_array_get(jc, i);
            json_int_t v;
            unsigned k;

            if (!json_is_integer(c) || (v = json_integer_value(c)) < 0 ||
                v >= LABELS_MAX_CHANNELS) {
                *why = "channels must be a non-empty array of channel indexes";
                return SRV_EBADREQ;
            }
            for (k = 0; k < in->n_channels; k++)
                if (in->channels[k] == (int)v) {
                    *why = "a channel is listed twice";
                    return SRV_EBADREQ;
                }
            in->channels[in->n_channels++] = (int)v;
        }
        in->has_channels = 1;
    } else if (!partial) {
        *why = "channels is required";
        return SRV_EBADREQ;
    }
    if (opt_string(body, "class", LABELS_CLASS_MAX, &in->class_name, why,
                   "class must be a class name") != 0)
        return SRV_EBADREQ;
    if (in->class_name && !valid_class_name(in->class_name)) {
        *why = "class must be a class name";
        return SRV_EBADREQ;
    }
    if (!in->class_name && !partial) {
        *why = "class is required";
        return SRV_EBADREQ;
    }
    if (jconf && !json_is_null(jconf)) {
        if (!json_is_number(jconf) || !(json_number_value(jconf) >= 0) ||
            !(json_number_value(jconf) <= 1)) {
            *why = "confidence must be a number in [0, 1]";
            return SRV_EBADREQ;
        }
        in->has_confidence = 1;
        in->confidence = json_number_value(jconf);
    }
    if (opt_string(body, "notes", LABELS_NOTES_MAX, &in->notes, why,
                   "notes must be a string of at most 4000 bytes") != 0 ||
        opt_string(body, "failure_mode", LABELS_FIELD_MAX, &in->failure_mode, why,
                   "failure_mode must be a string of at most 200 bytes") != 0 ||
        opt_string(body, "mechanism", LABELS_FIELD_MAX, &in->mechanism, why,
                   "mechanism must be a string of at most 200 bytes") != 0 ||
        opt_string(body, "cause", LABELS_FIELD_MAX, &in->cause, why,
                   "cause must be a string of at most 200 bytes") != 0)
        return SRV_EBADREQ;
    return SRV_OK;
}

int labels_check(const struct labels_input *in, double rate, size_t n_samples,
                 unsigned channel_count, const char **why)
{
    unsigned k;

    if (in->has_span) {
        /* The last sample sits at (n - 1) / rate; a span may end one sample
         * period later so that it can cover it. */
        double dur = (double)n_samples / rate;

        if (in->start_s >= dur || in->end_s > dur + 1e-9) {
            *why = "span is outside the snapshot";
            return SRV_EBADREQ;
        }
    }
    if (in->has_channels)
        for (k = 0; k < in->n_channels; k++)
            if ((unsigned)in->channels[k] >= channel_count) {
                *why = "channel index beyond the snapshot's channels";
                return SRV_EBADREQ;
            }
    return SRV_OK;
}

/* ---- helpers ------------------------------------------------------------ */

static int need_writer(const struct srv_request *rq, struct srv_response *rs)
{
    if (rq->role != SRV_ROLE_OPERATOR && rq->role != SRV_ROLE_ADMIN)
        return fail(rs, SRV_EFORBIDDEN, "labeling needs the operator or admin role");
    return SRV_OK;
}

static int need_reader(const struct srv_request *rq, struct srv_response *rs)
{
    if (rq->role == SRV_ROLE_NONE)
        return fail(rs, SRV_EFORBIDDEN, "no role");
    return SRV_OK;
}

static json_t *parse_body(const struct srv_request *rq)
{
    json_error_t je;

    if (!rq->body || rq->body_len == 0)
        return NULL;
    return json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
}

/* A growable text buffer for answers assembled from SQL-made JSON. */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

__attribute__((format(printf, 2, 3)))
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t ncap = b->cap ? b->cap * 2 : 4096;
            char *np;

            while (ncap < b->len + (size_t)n + 1)
                ncap *= 2;
            np = realloc(b->p, ncap);
            if (!np) {
                b->oom = 1;
                return;
            }
            b->p = np;
            b->cap = ncap;
        }
    }
}

static int buf_respond(struct buf *b, struct srv_response *rs, unsigned status)
{
    if (b->oom || !b->p) {
        free(b->p);
        return SRV_ENOMEM;
    }
    rs->status = status;
    rs->content_type = "application/json";
    rs->body = b->p;
    rs->body_len = b->len;
    return SRV_OK;
}

/* {"items":[<column 0 of every row>]} */
static int respond_items(PGresult *r, struct srv_response *rs)
{
    struct buf b = { 0 };
    int i;

    buf_printf(&b, "{\"items\":[");
    for (i = 0; i < PQntuples(r); i++)
        buf_printf(&b, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
    buf_printf(&b, "]}");
    return buf_respond(&b, rs, 200);
}

struct snap_meta {
    double rate;
    uint8_t sample_type;
    size_t n;               /* samples per channel */
    size_t pre;
    unsigned channels;
};

/* Snapshot metadata through the server's own snapshot_get. */
static int snapshot_meta(const char *id, struct snap_meta *m, struct srv_response *rs)
{
    const char *vals[1] = { id };
    PGresult *r = NULL;
    json_t *ch;
    json_error_t je;
    int err = db_exec(DB_SNAPSHOT_GET, vals, NULL, NULL, 0, &r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such snapshot");
    }
    m->rate = strtod(PQgetvalue(r, 0, 4), NULL);
    m->sample_type = (uint8_t)atoi(PQgetvalue(r, 0, 5));
    ch = json_loads(PQgetvalue(r, 0, 6), 0, &je);
    m->channels = json_is_array(ch) ? (unsigned)json_array_size(ch) : 0;
    json_decref(ch);
    m->pre = (size_t)strtoul(PQgetvalue(r, 0, 7), NULL, 10);
    m->n = m->pre + (size_t)strtoul(PQgetvalue(r, 0, 8), NULL, 10);
    PQclear(r);
    if (!(m->rate > 0) || m->channels == 0 || m->n == 0)
        return fail(rs, SRV_EINTERNAL, "stored snapshot metadata is inconsistent");
    return SRV_OK;
}

static int parse_id_param(const struct srv_request *rq, char *out, size_t cap,
                          struct srv_response *rs)
{
    int64_t id;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "id must be a positive integer");
    snprintf(out, cap, "%lld", (long long)id);
    return SRV_OK;
}

/* "{1,3}" for PostgreSQL's int[] */
static void channels_literal(const struct labels_input *in, char *out, size_t cap)
{
    size_t used = 0;
    unsigned k;

    used += (size_t)snprintf(out, cap, "{");
    for (k = 0; k < in->n_channels && used < cap; k++)
        used += (size_t)snprintf(out + used, cap - used, "%s%d", k ? "," : "", in->channels[k]);
    if (used < cap)
        snprintf(out + used, cap - used, "}");
}

static int class_known(const char *name, struct srv_response *rs)
{
    PGresult *r = NULL;
    int i, found = 0, err = db_exec(DB_CLASSES_LIST, NULL, NULL, NULL, 0, &r);

    if (err != SRV_OK)
        return err;
    for (i = 0; i < PQntuples(r) && !found; i++)
        found = strcmp(PQgetvalue(r, i, 0), name) == 0;
    PQclear(r);
    return found ? SRV_OK : fail(rs, SRV_EBADREQ, "class is not in GET /api/v1/classes");
}

/* ---- handlers ----------------------------------------------------------- */

int labels_classes(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *items;
    int i, err;

    if ((err = need_reader(rq, rs)) != SRV_OK)
        return err;
    if ((err = db_exec(DB_CLASSES_LIST, NULL, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++)
        json_array_append_new(items, json_pack("{s:s,s:s,s:s?,s:i}", "name",
                                               PQgetvalue(r, i, 0), "description",
                                               PQgetvalue(r, i, 1), "equipment_type",
                                               PQgetisnull(r, i, 2) ? NULL
                                                                    : PQgetvalue(r, i, 2),
                                               "key", i < 9 ? i + 1 : 0));
    PQclear(r);
    return srv_respond_json_take(rs, 200, items ? json_pack("{s:o}", "items", items) : NULL);
}

int labels_list(struct srv_request *rq, struct srv_response *rs)
{
    char id[24];
    const char *vals[1] = { id };
    struct snap_meta m;
    PGresult *r = NULL;
    int err;

    if ((err = need_reader(rq, rs)) != SRV_OK ||
        (err = parse_id_param(rq, id, sizeof id, rs)) != SRV_OK ||
        (err = snapshot_meta(id, &m, rs)) != SRV_OK)
        return err;
    if ((err = db_exec(DB_LABELS_LIST, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = respond_items(r, rs);
    PQclear(r);
    return err;
}

/* Text parameters of an insert or update, from $2 (start_s) to $10 (cause). */
struct label_params {
    char start[32], end[32], conf[32], chans[LABELS_MAX_CHANNELS * 4 + 4];
    const char *v[9];
};

static void label_params_fill(const struct labels_input *in, struct label_params *p, int defaults)
{
    snprintf(p->start, sizeof p->start, "%.17g", in->start_s);
    snprintf(p->end, sizeof p->end, "%.17g", in->end_s);
    snprintf(p->conf, sizeof p->conf, "%.9g", in->confidence);
    channels_literal(in, p->chans, sizeof p->chans);
    p->v[0] = in->has_span ? p->start : NULL;
    p->v[1] = in->has_span ? p->end : NULL;
    p->v[2] = in->has_channels ? p->chans : NULL;
    p->v[3] = in->class_name;
    p->v[4] = in->has_confidence ? p->conf : (defaults ? "1" : NULL);
    p->v[5] = in->notes ? in->notes : (defaults ? "" : NULL);
    p->v[6] = in->failure_mode ? in->failure_mode : (defaults ? "" : NULL);
    p->v[7] = in->mechanism ? in->mechanism : (defaults ? "" : NULL);
    p->v[8] = in->cause ? in->cause : (defaults ? "" : NULL);
}

/* Column 0 of r's single row (SQL-made JSON) as the answer with status; no
 * row is missing_err with missing_msg, which the caller chooses because an
 * empty result means different things (an insert that stored nothing is
 * internal, an update or read of what is not there is a 404). */
static int respond_row(PGresult *r, unsigned status, int missing_err, const char *missing_msg,
                       struct srv_response *rs)
{
    if (PQntuples(r) != 1)
        return fail(rs, missing_err, missing_msg);
    rs->body = strdup(PQgetvalue(r, 0, 0));
    if (!rs->body)
        return SRV_ENOMEM;
    rs->body_len = strlen(rs->body);
    rs->status = status;
    rs->content_type = "application/json";
    return SRV_OK;
}

/* Insert (id = snapshot) or update (id = label) a label from in: both
 * statements take the same eleven parameters; defaults fills absent optional
 * fields (confidence 1, texts "") for an insert, where an update keeps the
 * stored value. */
static int label_write(enum db_stmt stmt, const char *id, const struct labels_input *in,
                       int defaults, const char *actor, unsigned status, int missing_err,
                       const char *missing_msg, struct srv_response *rs)
{
    struct label_params p;
    const char *vals[11];
    PGresult *r = NULL;
    int err;

    label_params_fill(in, &p, defaults);
    vals[0] = id;
    memcpy(vals + 1, p.v, sizeof p.v);
    vals[10] = actor;
    if ((err = db_exec(stmt, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = respond_row(r, status, missing_err, missing_msg, rs);
    PQclear(r);
    return err;
}

int labels_create(struct srv_request *rq, struct srv_response *rs)
{
    char id[24], actor[200];
    struct snap_meta m;
    struct labels_input in;
    const char *why = NULL;
    json_t *j = NULL;
    int err;

    if ((err = need_writer(rq, rs)) != SRV_OK ||
        (err = parse_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    j = parse_body(rq);
    if ((err = labels_parse(j, 0, &in, &why)) != SRV_OK) {
        err = fail(rs, err, why);
        goto out;
    }
    if ((err = snapshot_meta(id, &m, rs)) != SRV_OK)
        goto out;
    if ((err = labels_check(&in, m.rate, m.n, m.channels, &why)) != SRV_OK) {
        err = fail(rs, err, why);
        goto out;
    }
    if ((err = class_known(in.class_name, rs)) != SRV_OK ||
        (err = session_actor(rq, actor, sizeof actor)) != SRV_OK)
        goto out;
    err = label_write(DB_LABEL_INSERT, id, &in, 1, actor, 201, SRV_EINTERNAL, "label not stored", rs);
out:
    json_decref(j);
    return err;
}

/* The snapshot a label belongs to, as text; SRV_ENOTFOUND when none. */
static int label_snapshot(const char *label_id, char *snap, size_t cap, struct srv_response *rs)
{
    const char *vals[1] = { label_id };
    PGresult *r = NULL;
    int err = db_exec(DB_LABEL_GET, vals, NULL, NULL, 0, &r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such label");
    }
    snprintf(snap, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return SRV_OK;
}

int labels_update(struct srv_request *rq, struct srv_response *rs)
{
    char id[24], snap[24], actor[200];
    struct snap_meta m;
    struct labels_input in;
    const char *why = NULL;
    json_t *j = NULL;
    int err;

    if ((err = need_writer(rq, rs)) != SRV_OK ||
        (err = parse_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    j = parse_body(rq);
    if ((err = labels_parse(j, 1, &in, &why)) != SRV_OK) {
        err = fail(rs, err, why);
        goto out;
    }
    if ((err = label_snapshot(id, snap, sizeof snap, rs)) != SRV_OK ||
        (err = snapshot_meta(snap, &m, rs)) != SRV_OK)
        goto out;
    if ((err = labels_check(&in, m.rate, m.n, m.channels, &why)) != SRV_OK) {
        err = fail(rs, err, why);
        goto out;
    }
    if ((in.class_name && (err = class_known(in.class_name, rs)) != SRV_OK) ||
        (err = session_actor(rq, actor, sizeof actor)) != SRV_OK)
        goto out;
    err = label_write(DB_LABEL_UPDATE, id, &in, 0, actor, 200, SRV_ENOTFOUND, "no such label", rs);
out:
    json_decref(j);
    return err;
}

int labels_delete(struct srv_request *rq, struct srv_response *rs)
{
    char id[24], actor[200];
    const char *vals[2] = { id, actor };
    PGresult *r = NULL;
    int err;

    if ((err = need_writer(rq, rs)) != SRV_OK ||
        (err = parse_id_param(rq, id, sizeof id, rs)) != SRV_OK ||
        (err = session_actor(rq, actor, sizeof actor)) != SRV_OK)
        return err;
    if ((err = db_exec(DB_LABEL_DELETE, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = PQntuples(r) == 1 ? SRV_OK : fail(rs, SRV_ENOTFOUND, "no such label");
    PQclear(r);
    if (err == SRV_OK)
        rs->status = 204;
    return err;
}

int labels_history(struct srv_request *rq, struct srv_response *rs)
{
    char id[24];
    const char *vals[1] = { id };
    PGresult *r = NULL;
    int err;

    if ((err = need_reader(rq, rs)) != SRV_OK ||
        (err = parse_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    if ((err = db_exec(DB_LABEL_HISTORY, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = PQntuples(r) ? respond_items(r, rs) : fail(rs, SRV_ENOTFOUND, "no such label");
    PQclear(r);
    return err;
}

/* ---- samples -------------------------------------------------------------- */

static int query_double(const struct srv_request *rq, const char *key, double def, double *out)
{
    const char *s = rq->query ? rq->query(rq, key) : NULL;
    char *end;

    if (!s || !*s) {
        *out = def;
        return 0;
    }
    errno = 0;
    *out = strtod(s, &end);
    return (*end || errno || !isfinite(*out)) ? -1 : 0;
}

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

/* The decoded samples of snapshot id (text), from the cache or decoded from
 * the stored envelope and cached.  The caller releases *out. */
static int decoded_get(const char *id, struct labels_decoded **out, struct srv_response *rs)
{
    const char *vals[1] = { id };
    struct snap_meta sm;
    struct wire_view v;
    struct labels_decoded *d;
    PGresult *r = NULL;
    size_t need;
    int err, werr;

    /* Existence first, from the metadata row: a snapshot dropped by
     * retention is gone for the API even while its samples are cached. */
    if ((err = snapshot_meta(id, &sm, rs)) != SRV_OK)
        return err;
    if ((*out = labels_cache_get(strtoll(id, NULL, 10))))
        return SRV_OK;
    if (!(d = calloc(1, sizeof *d)))
        return SRV_ENOMEM;
    d->id = strtoll(id, NULL, 10);
    if ((err = db_exec(DB_SNAPSHOT_RAW, vals, NULL, NULL, 1, &r)) != SRV_OK)
        goto fail;
    if (PQntuples(r) != 1) {
        err = fail(rs, SRV_ENOTFOUND, "no such snapshot");
        goto fail;
    }
    /* The envelope passed the same parser at ingest; parse again anyway,
     * the database is outside input to this process too. */
    werr = wire_parse((const uint8_t *)PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &d->m, &v);
    need = werr == WIRE_OK ? wire_samples_bytes(&d->m) : 0;
    if (werr != WIRE_OK || need == 0) {
        err = fail(rs, SRV_EINTERNAL, "stored envelope does not parse");
        goto fail;
    }
    if (!(d->samples = malloc(need))) {
        err = SRV_ENOMEM;
        goto fail;
    }
    if (wire_decode_samples(&d->m, &v, d->samples, need) != WIRE_OK) {
        err = fail(rs, SRV_EINTERNAL, "stored envelope does not decode");
        goto fail;
    }
    d->bytes = need;
    PQclear(r);
    *out = labels_cache_put(d);
    return SRV_OK;
fail:
    PQclear(r);
    free(d->samples);
    free(d);
    return err;
}

int labels_samples(struct srv_request *rq, struct srv_response *rs)
{
    char id[24];
    struct labels_decoded *d = NULL;
    const struct wire_meta *mp;
    struct decimate_src src;
    struct buf b = { 0 };
    double from_s, to_s, pxd, *mn = NULL, *mx = NULL;
    size_t i0, i1, i;
    unsigned px, ch, c;
    int err, raw;

    if ((err = need_reader(rq, rs)) != SRV_OK ||
        (err = parse_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    if (query_double(rq, "from_s", 0, &from_s) != 0 || query_double(rq, "to_s", INFINITY, &to_s) != 0 ||
        query_double(rq, "px", LABELS_PX_DEFAULT, &pxd) != 0)
        return fail(rs, SRV_EBADREQ, "from_s, to_s and px must be numbers");
    if (pxd < DECIMATE_PX_MIN || pxd > DECIMATE_PX_MAX || pxd != floor(pxd))
        return fail(rs, SRV_EBADREQ, "px must be an integer in [1, 8192]");
    if (rq->query && rq->query(rq, "format") && strcmp(rq->query(rq, "format"), "bin") != 0 &&
        strcmp(rq->query(rq, "format"), "json") != 0)
        return fail(rs, SRV_EBADREQ, "format must be json or bin");
    px = (unsigned)pxd;
    if ((err = decoded_get(id, &d, rs)) != SRV_OK)
        return err;
    mp = &d->m;
    src.samples = d->samples;
    src.sample_type = mp->sample_type;
    src.n = (size_t)mp->pre_samples + mp->post_samples;
    src.channels = mp->channel_count;
    if (isinf(to_s))
        to_s = (double)src.n / mp->sample_rate;
    if (decimate_range(from_s, to_s, mp->sample_rate, src.n, &i0, &i1) != 0) {
        err = fail(rs, SRV_EBADREQ, "need from_s < to_s overlapping the snapshot");
        goto out;
    }
    raw = decimate_is_raw(i0, i1, px);
    if (want_binary(rq)) {
        struct decimate_bin_info info = { mp->sample_rate, mp->pre_samples };
        size_t len = decimate_bin_size(&src, i0, i1, px);
        uint8_t *out = len ? malloc(len) : NULL;

        if (!out) {
            err = len ? SRV_ENOMEM : fail(rs, SRV_EINTERNAL, "cannot size the binary answer");
            goto out;
        }
        if (decimate_bin_write(&src, &info, i0, i1, px, out, len) != len) {
            free(out);
            err = fail(rs, SRV_EINTERNAL, "binary answer not written");
            goto out;
        }
        rs->status = 200;
        rs->content_type = "application/octet-stream";
        rs->body = (char *)out;
        rs->body_len = len;
        err = SRV_OK;
        goto out;
    }
    buf_printf(&b, "{\"snapshot_id\":%s,\"sample_rate\":%.17g,\"samples\":%zu,"
               "\"pre_samples\":%u,\"trigger_s\":%.17g,\"i0\":%zu,\"i1\":%zu,"
               "\"mode\":\"%s\",\"px\":%u,\"t\":[", id, mp->sample_rate, src.n,
               mp->pre_samples, mp->pre_samples / mp->sample_rate, i0, i1,
               raw ? "raw" : "minmax", px);
    /* t: each sample's time when raw, each column's first sample's time
     * when decimated. */
    if (raw) {
        for (i = i0; i < i1; i++)
            buf_printf(&b, "%s%.9g", i > i0 ? "," : "", (double)i / mp->sample_rate);
    } else {
        for (c = 0; c < px; c++)
            buf_printf(&b, "%s%.9g", c ? "," : "",
                       (double)decimate_col_start(i0, i1, px, c) / mp->sample_rate);
        mn = malloc(px * sizeof *mn);
        mx = malloc(px * sizeof *mx);
        if (!mn || !mx) {
            err = SRV_ENOMEM;
            goto out;
        }
    }
    buf_printf(&b, "],\"channels\":[");
    for (ch = 0; ch < src.channels; ch++) {
        json_t *nm = json_string(mp->channels[ch].name), *un = json_string(mp->channels[ch].unit);
        char *nms = nm ? json_dumps(nm, JSON_ENCODE_ANY) : NULL;
        char *uns = un ? json_dumps(un, JSON_ENCODE_ANY) : NULL;

        buf_printf(&b, "%s{\"name\":%s,\"unit\":%s,", ch ? "," : "", nms ? nms : "\"\"",
                   uns ? uns : "\"\"");
        free(nms);
        free(uns);
        json_decref(nm);
        json_decref(un);
        if (raw) {
            buf_printf(&b, "\"values\":[");
            for (i = i0; i < i1; i++)
                buf_printf(&b, "%s%.9g", i > i0 ? "," : "", decimate_value(&src, ch, i));
        } else {
            decimate_minmax(&src, ch, i0, i1, px, mn, mx);
            buf_printf(&b, "\"min\":[");
            for (c = 0; c < px; c++)
                buf_printf(&b, "%s%.9g", c ? "," : "", mn[c]);
            buf_printf(&b, "],\"max\":[");
            for (c = 0; c < px; c++)
                buf_printf(&b, "%s%.9g", c ? "," : "", mx[c]);
        }
        buf_printf(&b, "]}");
    }
    buf_printf(&b, "]}");
    err = buf_respond(&b, rs, 200);
    b.p = NULL;
out:
    free(b.p);
    free(mn);
    free(mx);
    labels_cache_release(d);
    return err;
}

/* ---- queue and context --------------------------------------------------- */

static const char *query_text(const struct srv_request *rq, const char *key, size_t max)
{
    const char *s = rq->query ? rq->query(rq, key) : NULL;

    return s && *s && strlen(s) <= max ? s : NULL;
}

int labels_queue(struct srv_request *rq, struct srv_response *rs)
{
    const char *vals[10];
    char score[32], from[24], to[24], lim[16], off[16];
    const char *sort = query_text(rq, "sort", 16), *s;
    struct buf b = { 0 };
    PGresult *r = NULL, *f = NULL;
    double d;
    int limit, offset = 0, err, i;

    if ((err = need_reader(rq, rs)) != SRV_OK)
        return err;
    if (text_parse_limit(rq->query(rq, "limit"), 50, LABELS_QUEUE_LIMIT_MAX, &limit) != 0)
        return fail(rs, SRV_EBADREQ, "limit must be in [1, 500]");
    if ((s = query_text(rq, "offset", 9))) {
        char *end;
        long o = strtol(s, &end, 10);

        if (*end || o < 0 || o > 100000000L)
            return fail(rs, SRV_EBADREQ, "offset must be a non-negative integer");
        offset = (int)o;
    }
    if (sort && strcmp(sort, "score") != 0 && strcmp(sort, "time") != 0 &&
        strcmp(sort, "device") != 0)
        return fail(rs, SRV_EBADREQ, "sort must be score, time or device");
    vals[0] = query_text(rq, "device", 64);
    vals[1] = query_text(rq, "equipment_type", 128);
    vals[2] = query_text(rq, "site", 128);
    vals[3] = NULL;
    if (query_double(rq, "min_score", NAN, &d) != 0)
        return fail(rs, SRV_EBADREQ, "min_score must be a number");
    if (!isnan(d)) {
        snprintf(score, sizeof score, "%.9g", d);
        vals[3] = score;
    }
    /* from/to: unix seconds, as the page's date inputs give them. */
    vals[4] = vals[5] = NULL;
    if (query_double(rq, "from", NAN, &d) != 0 || (!isnan(d) && fabs(d) > 1e11))
        return fail(rs, SRV_EBADREQ, "from must be unix seconds");
    if (!isnan(d)) {
        snprintf(from, sizeof from, "%lld", (long long)(d * 1e6));
        vals[4] = from;
    }
    if (query_double(rq, "to", NAN, &d) != 0 || (!isnan(d) && fabs(d) > 1e11))
        return fail(rs, SRV_EBADREQ, "to must be unix seconds");
    if (!isnan(d)) {
        snprintf(to, sizeof to, "%lld", (long long)(d * 1e6));
        vals[5] = to;
    }
    vals[6] = sort ? sort : "score";
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(off, sizeof off, "%d", offset);
    vals[7] = lim;
    vals[8] = off;
    s = query_text(rq, "unlabeled", 1);
    vals[9] = s && strcmp(s, "1") == 0 ? "1" : "0";
    if ((err = db_exec(DB_QUEUE, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if ((err = db_exec(DB_QUEUE_FACETS, NULL, NULL, NULL, 0, &f)) != SRV_OK) {
        PQclear(r);
        return err;
    }
    buf_printf(&b, "{\"items\":[");
    for (i = 0; i < PQntuples(r); i++)
        buf_printf(&b, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
    /* Counts come with every row (window functions); an empty page past the
     * end has none, which reads as 0 and is only off for that page. */
    buf_printf(&b, "],\"total\":%s,\"left\":%s,\"facets\":%s}",
               PQntuples(r) ? PQgetvalue(r, 0, 1) : "0",
               PQntuples(r) ? PQgetvalue(r, 0, 2) : "0", PQgetvalue(f, 0, 0));
    PQclear(r);
    PQclear(f);
    return buf_respond(&b, rs, 200);
}

int labels_context(struct srv_request *rq, struct srv_response *rs)
{
    char id[24];
    const char *vals[2] = { id, "10" };
    PGresult *r = NULL;
    int err;

    if ((err = need_reader(rq, rs)) != SRV_OK ||
        (err = parse_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    if ((err = db_exec(DB_CONTEXT, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = respond_row(r, 200, SRV_ENOTFOUND, "no such snapshot", rs);
    PQclear(r);
    return err;
}
