/* alerts.c - acknowledgement and disposition of alerts, and the alert list
 * the UI shows with one-click dispositions.  Each write is one statement
 * that also proves the snapshot exists, so an unknown alert is a 404 with
 * nothing written.  A snapshot whose detector is "schedule" is an agent's
 * scheduled baseline capture (--capture-every-s), not an event: it is
 * stored and labeled like any other but is never listed as an alert. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/alerts/alerts.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/labels/labels.h"
#include "server/text/text.h"
#include "server/rules/rules.h"

#define ALERTS_MAX_IDS 500
#define TS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

enum { AQ_ACK, AQ_DISPOSE, AQ_LIST, AQ_COUNT };

static const struct db_sql alerts_sql[AQ_COUNT] = {
    /* a second acknowledgement keeps the first one's who and when */
    [AQ_ACK] = { "alerts_ack",
        "WITH s AS (SELECT id FROM snapshots WHERE id = $1::bigint LIMIT 1)"
        " INSERT INTO alert_dispositions (snapshot_id, acknowledged_by) SELECT id, $2 FROM s"
        " ON CONFLICT (snapshot_id) DO UPDATE SET acknowledged_by = alert_dispositions.acknowledged_by"
        " RETURNING snapshot_id, " TS("acknowledged_at") " AS acknowledged_us", 2 },
    [AQ_DISPOSE] = { "alerts_dispose",
        "WITH s AS (SELECT id FROM snapshots WHERE id = $1::bigint LIMIT 1)"
        " INSERT INTO alert_dispositions (snapshot_id, acknowledged_by, disposition, work_order,"
        "  outcome, class, disposed_at, disposed_by)"
        " SELECT id, $2, $3, $4, $5, $6, now(), $2 FROM s"
        " ON CONFLICT (snapshot_id) DO UPDATE SET disposition = EXCLUDED.disposition,"
        "  work_order = EXCLUDED.work_order, outcome = EXCLUDED.outcome, class = EXCLUDED.class,"
        "  disposed_at = now(), disposed_by = EXCLUDED.disposed_by"
        " RETURNING snapshot_id, " TS("acknowledged_at") " AS acknowledged_us, "
        TS("disposed_at") " AS disposed_us", 6 },
    [AQ_LIST] = { "alerts_list",
        "SELECT s.id, s.device_id, d.site, d.equipment_type, " TS("s.trigger_time") " AS trigger_us,"
        " s.score, a.disposition, " TS("a.acknowledged_at") " AS acknowledged_us, a.work_order,"
        " a.outcome, w.class AS weak_class, w.source AS weak_source,"
        " (a.disposition IS NULL AND s.trigger_time < now() - o.ack_window_s * interval '1 second')"
        "  AS ignored"
        " FROM snapshots s LEFT JOIN devices d ON d.id = s.device_id"
        " LEFT JOIN alert_dispositions a ON a.snapshot_id = s.id"
        " LEFT JOIN weak_labels w ON w.snapshot_id = s.id"
        " CROSS JOIN ops_settings o"
        " WHERE ($1::bigint = 0 OR s.id < $1::bigint)"
        "  AND s.detector <> 'schedule'"
        "  AND (NOT $3::boolean OR a.disposition IS NULL)"
        "  AND ($4::bigint[] IS NULL OR s.id = ANY ($4::bigint[]))"
        " ORDER BY s.id DESC LIMIT $2::int", 4 },
};

static int q(int i, const char *const *vals, PGresult **out)
{
    return db_exec_own(&alerts_sql[i], vals, NULL, NULL, 0, out);
}

int alerts_valid_disposition(const char *d)
{
    static const char *const ok[] = { "action_taken", "no_fault_found", "not_actionable",
                                      "duplicate" };
    size_t i;

    for (i = 0; d && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(d, ok[i]) == 0)
            return 1;
    return 0;
}

/* A unix-microseconds column as RFC 3339 text, null when NULL. */
static json_t *ts_json(const PGresult *r, int row, const char *col)
{
    char b[40];

    if (db_isnull(r, row, col) || text_rfc3339(db_int64(r, row, col), b, sizeof b) != 0)
        return json_null();
    return json_string(b);
}

int alerts_api_ack(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24], who[AUTH_ACTOR_MAX];
    const char *vals[2] = { idb, who };
    PGresult *r = NULL;
    int64_t id;
    json_t *j;
    int err;

    static const char *const ack_fields[] = { NULL };  /* no body is read */

    if (text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_EBADREQ, "alert id must be a positive integer");
    srv_body_ignored(rq, rs, ack_fields);
    snprintf(idb, sizeof idb, "%" PRId64, id);
    auth_actor(rq, who, sizeof who);
    err = q(AQ_ACK, vals, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such alert");
    }
    j = json_pack("{s:I,s:o}", "snapshot_id", (json_int_t)id, "acknowledged_at",
                  ts_json(r, 0, "acknowledged_us"));
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

/* What a disposition body says, checked: strings borrowed from j.  No
 * fault found without a class says what the snapshot was: normal
 * operation. */
struct dispo {
    const char *disp, *work_order, *outcome, *cls;
};

static int dispo_parse(json_t *j, struct dispo *d, struct srv_response *rs)
{
    d->disp = json_string_value(json_object_get(j, "disposition"));
    if (!alerts_valid_disposition(d->disp))
        return srv_fail(rs, SRV_EBADREQ, "disposition must be one of action_taken, "
                        "no_fault_found, not_actionable, duplicate");
    if (srv_json_opt_string(j, "work_order", 100, &d->work_order) != 0 ||
        srv_json_opt_string(j, "outcome", 2000, &d->outcome) != 0 ||
        srv_json_opt_string(j, "class", 64, &d->cls) != 0)
        return srv_fail(rs, SRV_EBADREQ, "work_order (<= 100 bytes), outcome (<= 2000) and "
                        "class must be strings");
    if (!d->cls && strcmp(d->disp, "no_fault_found") == 0)
        d->cls = "normal";
    return SRV_OK;
}

static int class_known(const char *cls, struct srv_response *rs)
{
    int active, err = labels_class_active(cls, &active);

    if (err == SRV_OK && !active)
        err = srv_fail(rs, SRV_EBADREQ, "unknown class (see GET /api/v1/classes)");
    return err;
}

static int dispo_store(const struct srv_request *rq, int64_t id, const struct dispo *d,
                       struct srv_response *rs)
{
    char idb[24], who[AUTH_ACTOR_MAX];
    const char *vals[6] = { idb, who, d->disp, d->work_order, d->outcome, d->cls };
    PGresult *r = NULL;
    json_t *res;
    int err;

    snprintf(idb, sizeof idb, "%" PRId64, id);
    auth_actor(rq, who, sizeof who);
    if ((err = q(AQ_DISPOSE, vals, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such alert");
    }
    res = json_pack("{s:I,s:s,s:s?,s:s?,s:s?,s:o,s:o}", "snapshot_id", (json_int_t)id,
                    "disposition", d->disp, "work_order", d->work_order, "outcome", d->outcome,
                    "class", d->cls, "acknowledged_at", ts_json(r, 0, "acknowledged_us"),
                    "disposed_at", ts_json(r, 0, "disposed_us"));
    PQclear(r);
    /* the disposition is a label source: re-vote this snapshot */
    err = rules_revote(&id, 1);
    if (err == SRV_OK)
        return srv_respond_json_take(rs, 200, res);
    json_decref(res);
    return err;
}

int alerts_api_disposition(struct srv_request *rq, struct srv_response *rs)
{
    struct dispo d;
    int64_t id;
    json_t *j;
    int err;

    static const char *const dispo_fields[] = { "disposition", "work_order", "outcome", "class",
                                                NULL };

    if (text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_EBADREQ, "alert id must be a positive integer");
    j = srv_body_json(rq);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    if ((err = dispo_parse(j, &d, rs)) == SRV_OK &&
        (!d.cls || (err = class_known(d.cls, rs)) == SRV_OK)) {
        rs->ignored = srv_json_ignored(rq, j, dispo_fields);
        err = dispo_store(rq, id, &d, rs);
    }
    json_decref(j);
    return err;
}

/* "3,1,2" -> "{3,1,2}" for a bigint[] parameter, appended to b; every id
 * checked, at most ALERTS_MAX_IDS of them, so the SQL array cannot be
 * anything else.  0 or -1. */
static int ids_array(const char *s, struct srv_buf *b)
{
    size_t n = 0;

    db_array_begin(b);
    while (*s) {
        char one[24];
        size_t len = strcspn(s, ",");
        int64_t id;

        if (len == 0 || len >= sizeof one || ++n > ALERTS_MAX_IDS)
            return -1;
        memcpy(one, s, len);
        one[len] = '\0';
        if (text_parse_id(one, &id) != 0)
            return -1;
        db_array_int64(b, id);
        s += len;
        if (*s == ',' && *++s == '\0')
            return -1;
    }
    db_array_end(b);
    return n == 0 ? -1 : 0;
}

/* One row of the alert list.  An alert without disposition is ignored once
 * its acknowledgement window has passed, else acknowledged or open. */
static json_t *alert_json(const PGresult *r, int i)
{
    const char *state = !db_isnull(r, i, "disposition") ? "dispositioned"
                        : db_bool(r, i, "ignored") ? "ignored"
                        : !db_isnull(r, i, "acknowledged_us") ? "acknowledged" : "open";

    return json_pack("{s:I,s:s,s:s?,s:s?,s:o,s:f,s:s?,s:o,s:s?,s:s?,s:s?,s:s?,s:s}",
                     "snapshot_id", (json_int_t)db_int64(r, i, "id"),
                     "device_id", db_text_or(r, i, "device_id", ""),
                     "site", db_text(r, i, "site"),
                     "equipment_type", db_text(r, i, "equipment_type"),
                     "trigger_time", ts_json(r, i, "trigger_us"),
                     "score", db_double(r, i, "score"),
                     "disposition", db_text(r, i, "disposition"),
                     "acknowledged_at", ts_json(r, i, "acknowledged_us"),
                     "work_order", db_text(r, i, "work_order"),
                     "outcome", db_text(r, i, "outcome"),
                     "weak_class", db_text(r, i, "weak_class"),
                     "weak_source", db_text(r, i, "weak_source"), "state", state);
}

int alerts_api_list(struct srv_request *rq, struct srv_response *rs)
{
    const char *lim_s = rq->query ? rq->query(rq, "limit") : NULL;
    const char *before_s = rq->query ? rq->query(rq, "before") : NULL;
    const char *open_s = rq->query ? rq->query(rq, "open") : NULL;
    const char *ids_s = rq->query ? rq->query(rq, "ids") : NULL;
    char lim[16], bef[24];
    const char *vals[4] = { bef, lim, NULL, NULL };
    struct srv_buf ids = { 0 };
    int64_t before = 0;
    PGresult *r = NULL;
    json_t *items;
    int limit, i, err;

    if (text_parse_limit(lim_s, 50, 500, &limit) != 0)
        return srv_fail(rs, SRV_EBADREQ, "limit must be an integer in 1..500");
    if ((err = srv_query_no_offset(rq, rs, "before")) != SRV_OK)
        return err;
    if (before_s && text_parse_id(before_s, &before) != 0)
        return srv_fail(rs, SRV_EBADREQ, "before must be an alert id");
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(bef, sizeof bef, "%" PRId64, before);
    vals[2] = open_s && strcmp(open_s, "1") == 0 ? "true" : "false";
    if (ids_s && ids_array(ids_s, &ids) != 0) {
        srv_buf_free(&ids);
        return srv_fail(rs, SRV_EBADREQ, "ids must be up to 500 comma-separated alert ids");
    }
    if (ids.oom) {
        srv_buf_free(&ids);
        return SRV_ENOMEM;
    }
    vals[3] = ids.p;
    err = q(AQ_LIST, vals, &r);
    srv_buf_free(&ids);
    if (err != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; i < PQntuples(r); i++)
        json_array_append_new(items, alert_json(r, i));
    PQclear(r);
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items));
}
