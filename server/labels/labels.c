/* labels.c - see labels.h: label bodies, parsed and bounded here before
 * anything reaches the database, and the label handlers.  The SQL builds the
 * JSON of label rows (LABELS_ROW_JSON) so their shape is written once, next
 * to the columns it comes from.  The waveform view is in labels_samples.c,
 * the queue and context in labels_queue.c. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/text/text.h"
#include "server/labels/labels.h"
#include "server/labels/labels_int.h"

/* One label as the API shows it (and as its audit rows keep it). */
#define LABELS_ROW_JSON \
    "json_build_object('id', l.id, 'snapshot_id', l.snapshot_id, 'start_s', l.start_s," \
    " 'end_s', l.end_s, 'channels', to_json(l.channels), 'class', l.class," \
    " 'confidence', l.confidence, 'notes', l.notes, 'failure_mode', l.failure_mode," \
    " 'mechanism', l.mechanism, 'cause', l.cause, 'created_by', l.created_by," \
    " 'created_at', " DB_RFC3339("l.created_at") ", 'updated_by', l.updated_by," \
    " 'updated_at', " DB_RFC3339("l.updated_at") ")"

enum {
    LQ_SNAPSHOT_META, LQ_CLASSES, LQ_CLASS_ACTIVE, LQ_LIST, LQ_GET, LQ_INSERT, LQ_UPDATE,
    LQ_DELETE, LQ_HISTORY
};

static const struct db_sql labels_sql[] = {
    /* channel_count from the channel list the envelope declared */
    [LQ_SNAPSHOT_META] = { "labels_snapshot_meta",
        "SELECT sample_rate, pre_samples, post_samples,"
        " CASE WHEN jsonb_typeof(channels) = 'array' THEN jsonb_array_length(channels)"
        "  ELSE 0 END AS channel_count"
        " FROM snapshots WHERE id = $1::bigint", 1 },
    [LQ_CLASSES] = { "labels_classes",
        "SELECT name, description, equipment_type FROM label_classes WHERE active"
        " ORDER BY position, name", 0 },
    [LQ_CLASS_ACTIVE] = { "labels_class_active",
        "SELECT 1 FROM label_classes WHERE name = $1 AND active", 1 },
    [LQ_LIST] = { "labels_of_snapshot",
        "SELECT " LABELS_ROW_JSON " AS label FROM labels l WHERE l.snapshot_id = $1::bigint"
        " ORDER BY l.start_s, l.id", 1 },
    [LQ_GET] = { "labels_snapshot_of",
        "SELECT l.snapshot_id FROM labels l WHERE l.id = $1::bigint", 1 },
    /* $1 snapshot, $2 start, $3 end, $4 channels int[], $5 class, $6 confidence,
     * $7 notes, $8 failure_mode, $9 mechanism, $10 cause, $11 actor; the
     * audit row and the snapshot's labeled_at in the same statement */
    [LQ_INSERT] = { "labels_insert",
        "WITH l AS (INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, confidence,"
        "  notes, failure_mode, mechanism, cause, created_by)"
        " VALUES ($1::bigint, $2::float8, $3::float8, $4::int[], $5, $6::real, $7, $8, $9, $10, $11)"
        " RETURNING *),"
        " a AS (INSERT INTO label_audit (label_id, snapshot_id, action, actor, row)"
        "  SELECT l.id, l.snapshot_id, 'create', $11, " LABELS_ROW_JSON "::jsonb FROM l),"
        " s AS (UPDATE snapshots SET labeled_at = now()"
        "  WHERE id = $1::bigint AND labeled_at IS NULL)"
        " SELECT " LABELS_ROW_JSON " AS label FROM l", 11 },
    /* $1 label id, $2..$10 as above (NULL keeps the value), $11 actor */
    [LQ_UPDATE] = { "labels_update",
        "WITH l AS (UPDATE labels SET start_s = coalesce($2::float8, start_s),"
        "  end_s = coalesce($3::float8, end_s), channels = coalesce($4::int[], channels),"
        "  class = coalesce($5, class), confidence = coalesce($6::real, confidence),"
        "  notes = coalesce($7, notes), failure_mode = coalesce($8, failure_mode),"
        "  mechanism = coalesce($9, mechanism), cause = coalesce($10, cause),"
        "  updated_by = $11, updated_at = now()"
        " WHERE id = $1::bigint RETURNING *),"
        " a AS (INSERT INTO label_audit (label_id, snapshot_id, action, actor, row)"
        "  SELECT l.id, l.snapshot_id, 'update', $11, " LABELS_ROW_JSON "::jsonb FROM l)"
        " SELECT " LABELS_ROW_JSON " AS label FROM l", 11 },
    /* the snapshot is unlabeled again when its last label goes */
    [LQ_DELETE] = { "labels_delete",
        "WITH l AS (DELETE FROM labels WHERE id = $1::bigint RETURNING *),"
        " a AS (INSERT INTO label_audit (label_id, snapshot_id, action, actor, row)"
        "  SELECT l.id, l.snapshot_id, 'delete', $2, " LABELS_ROW_JSON "::jsonb FROM l),"
        " s AS (UPDATE snapshots SET labeled_at = NULL FROM l WHERE snapshots.id = l.snapshot_id"
        "  AND NOT EXISTS (SELECT 1 FROM labels o WHERE o.snapshot_id = l.snapshot_id"
        "  AND o.id <> l.id))"
        " SELECT l.id FROM l", 2 },
    [LQ_HISTORY] = { "labels_history",
        "SELECT json_build_object('id', a.id, 'label_id', a.label_id, 'action', a.action,"
        " 'actor', a.actor, 'at', " DB_RFC3339("a.at") ", 'row', a.row || jsonb_build_object("
        "  'created_at', " DB_RFC3339("(a.row->>'created_at')::timestamptz") ","
        "  'updated_at', " DB_RFC3339("(a.row->>'updated_at')::timestamptz") ")) AS entry"
        " FROM label_audit a WHERE a.label_id = $1::bigint ORDER BY a.id", 1 },
};

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

/* start_s and end_s, both or neither (then required unless partial). */
static const char *parse_span(const json_t *body, int partial, struct labels_input *in)
{
    const json_t *js = json_object_get(body, "start_s"), *je = json_object_get(body, "end_s");

    if (!js && !je)
        return partial ? NULL : "start_s and end_s are required";
    if (!js || !je)
        return "start_s and end_s go together: give both (seconds from the snapshot's first sample)";
    if (!json_is_number(js) || !json_is_number(je))
        return "start_s and end_s must both be numbers";
    in->has_span = 1;
    in->start_s = json_number_value(js);
    in->end_s = json_number_value(je);
    if (!isfinite(in->start_s) || !isfinite(in->end_s) || in->start_s < 0 ||
        in->end_s <= in->start_s)
        return "need 0 <= start_s < end_s";
    return NULL;
}

/* channels: distinct indexes below LABELS_MAX_CHANNELS. */
static const char *parse_channels(const json_t *body, int partial, struct labels_input *in)
{
    const json_t *jc = json_object_get(body, "channels");
    size_t i;

    if (!jc)
        return partial ? NULL : "channels is required";
    if (!json_is_array(jc) || json_array_size(jc) == 0 ||
        json_array_size(jc) > LABELS_MAX_CHANNELS)
        return "channels must be a non-empty array of channel indexes";
    for (i = 0; i < json_array_size(jc); i++) {
        const json_t *c = json_array_get(jc, i);
        json_int_t v;
        unsigned k;

        if (!json_is_integer(c) || (v = json_integer_value(c)) < 0 ||
            v >= LABELS_MAX_CHANNELS)
            return "channels must be a non-empty array of channel indexes";
        for (k = 0; k < in->n_channels; k++)
            if (in->channels[k] == (int)v)
                return "a channel is listed twice";
        in->channels[in->n_channels++] = (int)v;
    }
    in->has_channels = 1;
    return NULL;
}

/* class (a class name; required unless partial) and confidence in [0, 1]. */
static const char *parse_class(const json_t *body, int partial, struct labels_input *in)
{
    const json_t *jconf = json_object_get(body, "confidence");
    const char *why = NULL;

    if (opt_string(body, "class", LABELS_CLASS_MAX, &in->class_name, &why,
                   "class must be a class name") != 0)
        return why;
    if (in->class_name && !text_valid_name(in->class_name))
        return "class must be a class name";
    if (!in->class_name && !partial)
        return "class is required";
    if (jconf && !json_is_null(jconf)) {
        if (!json_is_number(jconf) || !(json_number_value(jconf) >= 0) ||
            !(json_number_value(jconf) <= 1))
            return "confidence must be a number in [0, 1]";
        in->has_confidence = 1;
        in->confidence = json_number_value(jconf);
    }
    return NULL;
}

int labels_parse(const json_t *body, int partial, struct labels_input *in, const char **why)
{
    memset(in, 0, sizeof *in);
    if (!json_is_object(body)) {
        *why = "body must be a JSON object";
        return SRV_EBADREQ;
    }
    if ((*why = parse_span(body, partial, in)) || (*why = parse_channels(body, partial, in)) ||
        (*why = parse_class(body, partial, in)))
        return SRV_EBADREQ;
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

/* ---- shared helpers (labels_int.h) ------------------------------------- */

int labels_id_param(const struct srv_request *rq, char *out, size_t cap,
                    struct srv_response *rs)
{
    int64_t id;

    if (text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_EBADREQ, "id must be a positive integer");
    snprintf(out, cap, "%lld", (long long)id);
    return SRV_OK;
}

int labels_snapshot_meta(const char *id, struct labels_snap *m, struct srv_response *rs)
{
    const char *vals[1] = { id };
    PGresult *r = NULL;
    int err = db_exec_own(&labels_sql[LQ_SNAPSHOT_META], vals, NULL, NULL, 0, &r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such snapshot");
    }
    m->rate = db_double(r, 0, "sample_rate");
    m->channels = (unsigned)db_int64(r, 0, "channel_count");
    m->n = (size_t)db_int64(r, 0, "pre_samples") + (size_t)db_int64(r, 0, "post_samples");
    PQclear(r);
    if (!(m->rate > 0) || m->channels == 0 || m->n == 0)
        return srv_fail(rs, SRV_EINTERNAL, "stored snapshot metadata is inconsistent");
    return SRV_OK;
}

int labels_respond_buf(struct srv_buf *b, unsigned status, struct srv_response *rs)
{
    size_t len;
    char *p = srv_buf_take(b, &len);

    if (!p)
        return SRV_ENOMEM;
    rs->status = status;
    rs->content_type = "application/json";
    rs->body = p;
    rs->body_len = len;
    return SRV_OK;
}

int labels_query_double(const struct srv_request *rq, const char *key, double def, double *out)
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

/* labels_sql_json's walk: every integer under one of the real keys, in
 * objects and arrays at any depth, becomes the real it stands for. */
static void reals_deep(json_t *j)
{
    static const char *const reals[] = { "start_s", "end_s", "confidence", "score",
                                         "duration_s" };
    const char *key;
    json_t *v;
    size_t i, k;

    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            reals_deep(v);
        return;
    }
    json_object_foreach(j, key, v) {
        for (k = 0; k < sizeof reals / sizeof reals[0]; k++)
            if (strcmp(key, reals[k]) == 0 && json_is_integer(v))
                json_object_set_new(j, key, json_real((double)json_integer_value(v)));
        reals_deep(json_object_get(j, key));
    }
}

json_t *labels_sql_json(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    reals_deep(j);
    return j;
}

/* {"items":[<column col of every row>]}: labels, or history entries whose
 * "row" is the label as it was. */
static int respond_items(const PGresult *r, const char *col, struct srv_response *rs)
{
    json_t *items = json_array(), *it;
    int i;

    for (i = 0; items && i < PQntuples(r); i++) {
        if (!(it = labels_sql_json(db_text_or(r, i, col, "null")))) {
            json_decref(items);
            return SRV_ENOMEM;
        }
        json_array_append_new(items, it);
    }
    return srv_respond_json_take(rs, 200, items ? json_pack("{s:o}", "items", items) : NULL);
}

int labels_class_active(const char *name, int *active)
{
    const char *vals[1] = { name };
    PGresult *r = NULL;
    int err = db_exec_own(&labels_sql[LQ_CLASS_ACTIVE], vals, NULL, NULL, 0, &r);

    *active = err == SRV_OK && PQntuples(r) == 1;
    PQclear(r);
    return err;
}

static int class_known(const char *name, struct srv_response *rs)
{
    int active, err = labels_class_active(name, &active);

    if (err == SRV_OK && !active)
        err = srv_fail(rs, SRV_EBADREQ, "class is not in GET /api/v1/classes");
    return err;
}

/* ---- handlers ----------------------------------------------------------- */

int labels_classes(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *items;
    int i, err;

    if ((err = db_exec_own(&labels_sql[LQ_CLASSES], NULL, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++)
        json_array_append_new(items, json_pack("{s:s,s:s,s:s?,s:i}",
                                               "name", db_text_or(r, i, "name", ""),
                                               "description", db_text_or(r, i, "description", ""),
                                               "equipment_type", db_text(r, i, "equipment_type"),
                                               "key", i < 9 ? i + 1 : 0));
    PQclear(r);
    return srv_respond_json_take(rs, 200, items ? json_pack("{s:o}", "items", items) : NULL);
}

int labels_list(struct srv_request *rq, struct srv_response *rs)
{
    char id[24];
    const char *vals[1] = { id };
    struct labels_snap m;
    PGresult *r = NULL;
    int err;

    if ((err = labels_id_param(rq, id, sizeof id, rs)) != SRV_OK ||
        (err = labels_snapshot_meta(id, &m, rs)) != SRV_OK)
        return err;
    if ((err = db_exec_own(&labels_sql[LQ_LIST], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = respond_items(r, "label", rs);
    PQclear(r);
    return err;
}

/* The snapshot a label belongs to, as text; SRV_ENOTFOUND when none. */
static int label_snapshot(const char *label_id, char *snap, size_t cap, struct srv_response *rs)
{
    const char *vals[1] = { label_id };
    PGresult *r = NULL;
    int err = db_exec_own(&labels_sql[LQ_GET], vals, NULL, NULL, 0, &r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such label");
    }
    snprintf(snap, cap, "%s", db_text_or(r, 0, "snapshot_id", ""));
    PQclear(r);
    return SRV_OK;
}

/* How a write goes: insert (the route's id is the snapshot, absent optional
 * fields get defaults) or update (the id is the label, absent fields keep
 * their stored value).  Both statements take the same eleven parameters. */
struct label_op {
    int stmt;
    int partial;            /* labels_parse mode; also "keep stored values" */
    unsigned status;
    int missing_err;        /* when the statement returns no row */
    const char *missing_msg;
};

static const struct label_op op_insert = {
    LQ_INSERT, 0, 201, SRV_EINTERNAL, "label not stored"
};
static const struct label_op op_update = {
    LQ_UPDATE, 1, 200, SRV_ENOTFOUND, "no such label"
};

/* Parameters $2 (start_s) .. $10 (cause) of a write from in; chans holds
 * the int[] literal the values point into. */
static void label_params(const struct labels_input *in, int defaults, struct srv_buf *chans,
                         char num[3][32], const char *v[9])
{
    unsigned k;

    snprintf(num[0], 32, "%.17g", in->start_s);
    snprintf(num[1], 32, "%.17g", in->end_s);
    snprintf(num[2], 32, "%.9g", in->confidence);
    db_array_begin(chans);
    for (k = 0; k < in->n_channels; k++)
        db_array_int64(chans, in->channels[k]);
    db_array_end(chans);
    v[0] = in->has_span ? num[0] : NULL;
    v[1] = in->has_span ? num[1] : NULL;
    v[2] = in->has_channels ? chans->p : NULL;
    v[3] = in->class_name;
    v[4] = in->has_confidence ? num[2] : (defaults ? "1" : NULL);
    v[5] = in->notes ? in->notes : (defaults ? "" : NULL);
    v[6] = in->failure_mode ? in->failure_mode : (defaults ? "" : NULL);
    v[7] = in->mechanism ? in->mechanism : (defaults ? "" : NULL);
    v[8] = in->cause ? in->cause : (defaults ? "" : NULL);
}

static int label_store(const struct label_op *w, const char *id,
                       const struct labels_input *in, const char *actor,
                       struct srv_response *rs)
{
    struct srv_buf chans = { 0 };
    char num[3][32];
    const char *vals[11];
    PGresult *r = NULL;
    int err;

    label_params(in, !w->partial, &chans, num, vals + 1);
    if (chans.oom) {
        srv_buf_free(&chans);
        return SRV_ENOMEM;
    }
    vals[0] = id;
    vals[10] = actor;
    err = db_exec_own(&labels_sql[w->stmt], vals, NULL, NULL, 0, &r);
    if (err == SRV_OK)
        err = PQntuples(r) != 1 ? srv_fail(rs, w->missing_err, w->missing_msg)
                                : srv_respond_json_take(rs, w->status,
                                                        labels_sql_json(db_text_or(r, 0, "label", "")));
    PQclear(r);
    srv_buf_free(&chans);
    return err;
}

/* POST /snapshots/{id}/labels and PATCH /labels/{id}: parse the body, check
 * it against the snapshot the label is on, check the class, store. */
static int label_write(const struct label_op *w, struct srv_request *rq,
                       struct srv_response *rs)
{
    static const char *const label_fields[] = { "start_s", "end_s", "channels", "class",
                                                "confidence", "notes", "failure_mode",
                                                "mechanism", "cause", NULL };

    char id[24], snap[24], actor[AUTH_ACTOR_MAX];
    struct labels_snap m;
    struct labels_input in;
    const char *why = NULL;
    json_t *j = NULL;
    int err;

    if ((err = labels_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    j = srv_body_json(rq);
    if ((err = labels_parse(j, w->partial, &in, &why)) != SRV_OK) {
        err = srv_fail(rs, err, why);
        goto out;
    }
    rs->ignored = srv_json_ignored(rq, j, label_fields);
    if (w->partial)
        err = label_snapshot(id, snap, sizeof snap, rs);
    else
        snprintf(snap, sizeof snap, "%s", id);
    if (err != SRV_OK || (err = labels_snapshot_meta(snap, &m, rs)) != SRV_OK)
        goto out;
    if ((err = labels_check(&in, m.rate, m.n, m.channels, &why)) != SRV_OK) {
        err = srv_fail(rs, err, why);
        goto out;
    }
    if (in.class_name && (err = class_known(in.class_name, rs)) != SRV_OK)
        goto out;
    err = label_store(w, id, &in, auth_actor(rq, actor, sizeof actor), rs);
out:
    json_decref(j);
    return err;
}

int labels_create(struct srv_request *rq, struct srv_response *rs)
{
    return label_write(&op_insert, rq, rs);
}

int labels_update(struct srv_request *rq, struct srv_response *rs)
{
    return label_write(&op_update, rq, rs);
}

int labels_delete(struct srv_request *rq, struct srv_response *rs)
{
    char id[24], actor[AUTH_ACTOR_MAX];
    const char *vals[2] = { id, auth_actor(rq, actor, sizeof actor) };
    PGresult *r = NULL;
    int err;

    if ((err = labels_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    if ((err = db_exec_own(&labels_sql[LQ_DELETE], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = PQntuples(r) == 1 ? SRV_OK : srv_fail(rs, SRV_ENOTFOUND, "no such label");
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

    if ((err = labels_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    if ((err = db_exec_own(&labels_sql[LQ_HISTORY], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = PQntuples(r) ? respond_items(r, "entry", rs)
                       : srv_fail(rs, SRV_ENOTFOUND, "no such label");
    PQclear(r);
    return err;
}
