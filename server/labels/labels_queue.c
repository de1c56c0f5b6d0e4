/* labels_queue.c - GET /api/v1/queue (what to label next: unlabeled first,
 * filters, how many are left) and GET /api/v1/snapshots/{id}/context (the
 * device's and the equipment type's recent snapshots).  The SQL builds the
 * JSON of every item; this file bounds the filters and assembles the page. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/text/text.h"
#include "server/labels/labels.h"
#include "server/labels/labels_int.h"

enum { QQ_QUEUE, QQ_FACETS, QQ_CONTEXT, QQ_MODEL };

static const struct db_sql queue_sql[] = {
    /* $1 device, $2 equipment type, $3 site, $4 min score, $5 from us,
     * $6 to us (NULL: no filter), $7 sort (score|time|device|uncertain),
     * $8 limit, $9 offset, $10 1 = unlabeled only, $11 demo
     * (srv_query_demo), $12 a done classifier's id (NULL: none): what it
     * predicted for the snapshot (model_snapshot_predictions) rides along
     * as p_class, p_probability, p_margin (NULL: not predicted), and sort
     * uncertain puts the smallest margin first, the snapshots it did not
     * predict after them.  Unlabeled first whatever the sort; the counts
     * ride along on every row (window functions). */
    [QQ_QUEUE] = { "labels_queue",
        "SELECT json_build_object('id', s.id, 'device_id', s.device_id, 'seq', s.seq,"
        "  'trigger_time', " DB_RFC3339("s.trigger_time") ", 'score', s.score,"
        "  'detector', s.detector, 'equipment_type', d.equipment_type, 'site', d.site,"
        "  'labeled_at', " DB_RFC3339("s.labeled_at") ","
        "  'channel_count', s.channel_count, 'demo', s.demo,"
        "  'duration_s', (s.pre_samples + s.post_samples) / s.sample_rate) AS item,"
        " p.class AS p_class, p.probability AS p_probability, p.margin AS p_margin,"
        " count(*) OVER () AS total,"
        " count(*) FILTER (WHERE s.labeled_at IS NULL) OVER () AS unlabeled"
        " FROM snapshots s JOIN devices d ON d.id = s.device_id"
        " LEFT JOIN model_snapshot_predictions p ON p.model_id = $12::bigint AND p.snapshot_id = s.id"
        " WHERE ($1::text IS NULL OR s.device_id = $1)"
        "  AND ($2::text IS NULL OR d.equipment_type = $2)"
        "  AND ($3::text IS NULL OR d.site = $3)"
        "  AND ($4::real IS NULL OR s.score >= $4::real)"
        "  AND ($5::bigint IS NULL OR s.trigger_time >= timestamptz 'epoch' + $5::bigint * interval '1 microsecond')"
        "  AND ($6::bigint IS NULL OR s.trigger_time < timestamptz 'epoch' + $6::bigint * interval '1 microsecond')"
        "  AND ($10::int = 0 OR s.labeled_at IS NULL)"
        "  AND ($11::int = 1 OR s.demo = ($11::int = 2))"
        " ORDER BY (s.labeled_at IS NOT NULL),"
        "  CASE WHEN $7 = 'uncertain' THEN p.margin IS NULL END,"
        "  CASE WHEN $7 = 'uncertain' THEN p.margin END,"
        "  CASE WHEN $7 = 'score' THEN s.score END DESC,"
        "  CASE WHEN $7 = 'device' THEN s.device_id END,"
        "  s.trigger_time DESC, s.id DESC"
        " LIMIT $8::int OFFSET $9::int", 12 },
    /* $1 demo (srv_query_demo): the facets of the devices the queue lists */
    [QQ_FACETS] = { "labels_queue_facets",
        "WITH d AS (SELECT * FROM devices WHERE $1::int = 1 OR demo = ($1::int = 2))"
        " SELECT json_build_object("
        " 'devices', (SELECT coalesce(json_agg(id ORDER BY id), '[]') FROM d),"
        " 'equipment_types', (SELECT coalesce(json_agg(DISTINCT equipment_type), '[]')"
        "   FROM d WHERE equipment_type IS NOT NULL),"
        " 'sites', (SELECT coalesce(json_agg(DISTINCT site), '[]') FROM d"
        "   WHERE site IS NOT NULL)) AS facets", 1 },
    /* Context of snapshot $1: the device's latest $2 others, the same
     * equipment type's latest $2 on other devices, a normal reference, and
     * the latest $3 labeled of each class on the device or its type (what
     * the spectra may be compared with).  $4 demo (srv_query_demo) filters
     * the two lists, as it does every listing of snapshots, except that a
     * demo snapshot's neighbours are always its own history; the
     * comparisons keep demo ones, marked, as a reference may be all the
     * type has. */
    [QQ_CONTEXT] = { "labels_context",
        "WITH me AS (SELECT s.id, s.device_id, s.demo, d.equipment_type FROM snapshots s"
        "  JOIN devices d ON d.id = s.device_id WHERE s.id = $1::bigint)"
        " SELECT json_build_object('device', coalesce((SELECT json_agg(x) FROM (SELECT s.id, s.device_id,"
        "   " DB_RFC3339("s.trigger_time") " AS trigger_time, s.score, s.labeled_at IS NOT NULL AS labeled,"
        "   (SELECT array_agg(DISTINCT class) FROM labels WHERE snapshot_id = s.id) AS classes"
        "   FROM snapshots s, me WHERE s.device_id = me.device_id AND s.id <> me.id"
        "    AND ($4::int = 1 OR s.demo = ($4::int = 2) OR me.demo)"
        "   ORDER BY s.trigger_time DESC LIMIT $2::int) x), '[]'),"
        "  'equipment', coalesce((SELECT json_agg(y) FROM (SELECT s.id, s.device_id,"
        "   " DB_RFC3339("s.trigger_time") " AS trigger_time, s.score, s.labeled_at IS NOT NULL AS labeled,"
        "   (SELECT array_agg(DISTINCT class) FROM labels WHERE snapshot_id = s.id) AS classes"
        "   FROM snapshots s JOIN devices d ON d.id = s.device_id, me"
        "   WHERE d.equipment_type = me.equipment_type AND s.device_id <> me.device_id"
        "    AND ($4::int = 1 OR s.demo = ($4::int = 2) OR me.demo)"
        "   ORDER BY s.trigger_time DESC LIMIT $2::int) y), '[]'),"
        "  'equipment_type', (SELECT equipment_type FROM me),"
        /* what normal looks like on this machine: the newest snapshot a
         * person labeled normal, of the same device first, else of the
         * same equipment type */
        "  'reference', (SELECT json_build_object('id', s.id, 'device_id', s.device_id,"
        "   'trigger_time', " DB_RFC3339("s.trigger_time") ", 'same_device', s.device_id = me.device_id,"
        "   'demo', s.demo)"
        "   FROM snapshots s JOIN devices d ON d.id = s.device_id, me"
        "   WHERE s.id <> me.id"
        "    AND (s.device_id = me.device_id OR d.equipment_type = me.equipment_type)"
        "    AND EXISTS (SELECT 1 FROM labels l WHERE l.snapshot_id = s.id AND l.class = 'normal')"
        "   ORDER BY (s.device_id = me.device_id) DESC, s.trigger_time DESC LIMIT 1),"
        "  'labeled', coalesce((SELECT json_agg(json_build_object('id', z.id, 'device_id', z.device_id,"
        "   'trigger_time', " DB_RFC3339("z.trigger_time") ", 'class', z.class, 'same_device', z.same_device,"
        "   'demo', z.demo) ORDER BY z.class, z.trigger_time DESC) FROM (SELECT x.*,"
        "   row_number() OVER (PARTITION BY x.class ORDER BY x.trigger_time DESC, x.id DESC) AS n"
        /* from the labels, far fewer than the type's snapshots */
        "   FROM (SELECT DISTINCT s.id, s.device_id, s.trigger_time, s.demo, l.class,"
        "    s.device_id = me.device_id AS same_device"
        "    FROM labels l JOIN snapshots s ON s.id = l.snapshot_id"
        "    JOIN devices d ON d.id = s.device_id, me WHERE s.id <> me.id"
        "    AND (s.device_id = me.device_id OR d.equipment_type = me.equipment_type)) x) z"
        "   WHERE z.n <= $3::int), '[]')) AS context"
        " FROM me", 4 },
    /* the model a queue reads predictions of: may it have any? */
    [QQ_MODEL] = { "labels_queue_model",
        "SELECT kind, status FROM models WHERE id = $1::bigint", 1 },
};

static const char *query_text(const struct srv_request *rq, const char *key, size_t max)
{
    const char *s = rq->query ? rq->query(rq, key) : NULL;

    return s && *s && strlen(s) <= max ? s : NULL;
}

/* A filter too long to be any stored value is refused, never taken for an
 * absent one: "device=<70 characters>" must not list every device's rows. */
static int query_lengths_ok(const struct srv_request *rq, struct srv_response *rs)
{
    static const struct { const char *key; size_t max; } bounded[] = {
        { "device", 64 }, { "equipment_type", 128 }, { "site", 128 }, { "sort", 16 },
        { "offset", 9 },
    };
    size_t i;

    for (i = 0; i < sizeof bounded / sizeof bounded[0]; i++) {
        const char *s = rq->query ? rq->query(rq, bounded[i].key) : NULL;

        if (s && strlen(s) > bounded[i].max) {
            srv_failf(rs, SRV_EBADREQ, "%s is longer than %zu characters", bounded[i].key,
                      bounded[i].max);
            return 0;
        }
    }
    return 1;
}

/* The queue's twelve parameters, as text the values point into. */
struct queue_params {
    char score[32], from[24], to[24], lim[16], off[16], model[24];
    const char *v[12];
};

/* Query parameter key in unix seconds (as the page's date inputs give
 * them) into microseconds text at out; v NULL when absent. */
static int query_time(const struct srv_request *rq, const char *key, char *out, size_t cap,
                      const char **v)
{
    double d;

    if (labels_query_double(rq, key, NAN, &d) != 0 || (!isnan(d) && fabs(d) > 1e11))
        return -1;
    *v = NULL;
    if (!isnan(d)) {
        snprintf(out, cap, "%lld", (long long)(d * 1e6));
        *v = out;
    }
    return 0;
}

/* The model whose predictions the queue shows (model=ID, p->v[11]; NULL
 * without one): a positive integer, a model that exists, a classifier
 * (centroid or few-shot: an anomaly model predicts no class) that is done
 * (only then has it predicted the snapshots).  sort=uncertain needs one. */
static int queue_model(const struct srv_request *rq, struct queue_params *p, const char *sort,
                       struct srv_response *rs)
{
    const char *s = rq->query ? rq->query(rq, "model") : NULL;
    const char *kind, *status;
    PGresult *r = NULL;
    int64_t id;
    int err;

    p->v[11] = NULL;
    if (!s) {
        if (sort && strcmp(sort, "uncertain") == 0)
            return srv_fail(rs, SRV_EBADREQ, "sort=uncertain needs model (the id of a done "
                                             "centroid or fewshot model)");
        return SRV_OK;
    }
    if (text_parse_id(s, &id) != 0)
        return srv_fail(rs, SRV_EBADREQ, "model must be a positive integer");
    snprintf(p->model, sizeof p->model, "%lld", (long long)id);
    p->v[11] = p->model;
    if ((err = db_exec_own(&queue_sql[QQ_MODEL], &p->v[11], NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_failf(rs, SRV_ENOTFOUND, "no model %s", p->model);
    }
    kind = db_text_or(r, 0, "kind", "");
    status = db_text_or(r, 0, "status", "");
    if (strcmp(kind, "anomaly") == 0)
        err = srv_failf(rs, SRV_EUNPROCESSABLE, "model %s is an anomaly model: it predicts no "
                        "class (a centroid or fewshot model does)", p->model);
    else if (strcmp(status, "done") != 0)
        err = srv_failf(rs, SRV_EUNPROCESSABLE, "model %s is %s, not done: only a done model "
                        "has predicted the snapshots", p->model, status);
    PQclear(r);
    return err;
}

static int queue_params(const struct srv_request *rq, struct queue_params *p,
                        struct srv_response *rs)
{
    const char *sort = query_text(rq, "sort", 16), *s;
    int limit, offset = 0, err;
    double d;

    if (!query_lengths_ok(rq, rs))
        return SRV_EBADREQ;
    if (text_parse_limit(rq->query(rq, "limit"), 50, LABELS_QUEUE_LIMIT_MAX, &limit) != 0)
        return srv_fail(rs, SRV_EBADREQ, "limit must be an integer in 1..500");
    if ((s = query_text(rq, "offset", 9))) {
        char *end;
        long o = strtol(s, &end, 10);

        if (*end || o < 0 || o > 100000000L)
            return srv_fail(rs, SRV_EBADREQ, "offset must be a non-negative integer");
        offset = (int)o;
    }
    if (sort && strcmp(sort, "score") != 0 && strcmp(sort, "time") != 0 &&
        strcmp(sort, "device") != 0 && strcmp(sort, "uncertain") != 0)
        return srv_fail(rs, SRV_EBADREQ, "sort must be score, time, device or uncertain");
    if ((err = queue_model(rq, p, sort, rs)) != SRV_OK)
        return err;
    p->v[0] = query_text(rq, "device", 64);
    p->v[1] = query_text(rq, "equipment_type", 128);
    p->v[2] = query_text(rq, "site", 128);
    p->v[3] = NULL;
    if (labels_query_double(rq, "min_score", NAN, &d) != 0)
        return srv_fail(rs, SRV_EBADREQ, "min_score must be a number");
    if (!isnan(d)) {
        snprintf(p->score, sizeof p->score, "%.9g", d);
        p->v[3] = p->score;
    }
    if (query_time(rq, "from", p->from, sizeof p->from, &p->v[4]) != 0)
        return srv_fail(rs, SRV_EBADREQ, "from must be unix seconds");
    if (query_time(rq, "to", p->to, sizeof p->to, &p->v[5]) != 0)
        return srv_fail(rs, SRV_EBADREQ, "to must be unix seconds");
    p->v[6] = sort ? sort : "score";
    snprintf(p->lim, sizeof p->lim, "%d", limit);
    snprintf(p->off, sizeof p->off, "%d", offset);
    p->v[7] = p->lim;
    p->v[8] = p->off;
    s = query_text(rq, "unlabeled", 1);
    p->v[9] = s && strcmp(s, "1") == 0 ? "1" : "0";
    if (srv_query_demo(rq, rs, &p->v[10]) != SRV_OK)
        return SRV_EBADREQ;
    return SRV_OK;
}

int labels_queue(struct srv_request *rq, struct srv_response *rs)
{
    struct queue_params p;
    PGresult *r = NULL, *f = NULL;
    json_t *items, *j;
    int err, i, n;

    if ((err = queue_params(rq, &p, rs)) != SRV_OK)
        return err;
    if ((err = db_exec_own(&queue_sql[QQ_QUEUE], p.v, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if ((err = db_exec_own(&queue_sql[QQ_FACETS], &p.v[10], NULL, NULL, 0, &f)) != SRV_OK) {
        PQclear(r);
        return err;
    }
    n = PQntuples(r);
    items = json_array();
    for (i = 0; items && i < n; i++) {
        json_t *item = labels_sql_json(db_text_or(r, i, "item", "null"));

        /* with a model, every item says what it predicted (null: nothing);
         * the numbers as reals, 1.0 included */
        if (p.v[11] && json_is_object(item))
            json_object_set_new(item, "model_prediction",
                                db_isnull(r, i, "p_class")
                                    ? json_null()
                                    : json_pack("{s:s,s:f,s:f}", "class", db_text(r, i, "p_class"),
                                                "probability", db_double(r, i, "p_probability"),
                                                "margin", db_double(r, i, "p_margin")));
        json_array_append_new(items, item);
    }
    /* An empty page past the end has no row to carry the counts, which
     * reads as 0 and is only off for that page. */
    j = items ? json_pack("{s:o,s:I,s:I,s:o}", "items", items,
                          "total", (json_int_t)(n ? db_int64(r, 0, "total") : 0),
                          "left", (json_int_t)(n ? db_int64(r, 0, "unlabeled") : 0),
                          "facets", labels_sql_json(db_text_or(f, 0, "facets", "{}"))) : NULL;
    PQclear(r);
    PQclear(f);
    return srv_respond_json_take(rs, 200, j);
}

int labels_context(struct srv_request *rq, struct srv_response *rs)
{
    char id[24];
    const char *vals[4] = { id, "10", "3", NULL };
    PGresult *r = NULL;
    int err;

    if ((err = labels_id_param(rq, id, sizeof id, rs)) != SRV_OK)
        return err;
    if ((err = srv_query_demo(rq, rs, &vals[3])) != SRV_OK)
        return err;
    if ((err = db_exec_own(&queue_sql[QQ_CONTEXT], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = PQntuples(r) != 1 ? srv_fail(rs, SRV_ENOTFOUND, "no such snapshot")
                            : srv_respond_json_take(rs, 200,
                                                    labels_sql_json(db_text_or(r, 0, "context", "")));
    PQclear(r);
    return err;
}
