/* alerts.c - acknowledgement and disposition of alerts, and the alert list
 * the UI shows with one-click dispositions.  Each write is one statement
 * that also proves the snapshot exists, so an unknown alert is a 404 with
 * nothing written. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/alerts/alerts.h"
#include "server/db/db.h"
#include "server/text/text.h"
#include "server/rules/rules.h"

#define ALERTS_MAX_IDS 500
#define TS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

enum { AQ_ACK, AQ_DISPOSE, AQ_LIST, AQ_CLASS, AQ_COUNT };

static const struct { const char *name, *sql; int n; } qs[AQ_COUNT] = {
    [AQ_ACK] = { "alerts_ack",
        "WITH s AS (SELECT id FROM snapshots WHERE id = $1::bigint LIMIT 1)"
        " INSERT INTO alert_dispositions (snapshot_id, acknowledged_by) SELECT id, $2 FROM s"
        " ON CONFLICT (snapshot_id) DO UPDATE SET acknowledged_by = alert_dispositions.acknowledged_by"
        " RETURNING snapshot_id, " TS("acknowledged_at"), 2 },
    [AQ_DISPOSE] = { "alerts_dispose",
        "WITH s AS (SELECT id FROM snapshots WHERE id = $1::bigint LIMIT 1)"
        " INSERT INTO alert_dispositions (snapshot_id, acknowledged_by, disposition, work_order,"
        "  outcome, class, disposed_at, disposed_by)"
        " SELECT id, $2, $3, $4, $5, $6, now(), $2 FROM s"
        " ON CONFLICT (snapshot_id) DO UPDATE SET disposition = EXCLUDED.disposition,"
        "  work_order = EXCLUDED.work_order, outcome = EXCLUDED.outcome, class = EXCLUDED.class,"
        "  disposed_at = now(), disposed_by = EXCLUDED.disposed_by"
        " RETURNING snapshot_id, " TS("acknowledged_at") ", " TS("disposed_at"), 6 },
    [AQ_LIST] = { "alerts_list",
        "SELECT s.id, s.device_id, d.site, d.equipment_type, " TS("s.trigger_time") ", s.score,"
        " a.disposition, " TS("a.acknowledged_at") ", a.work_order, a.outcome, w.class, w.source,"
        " (a.disposition IS NULL AND s.trigger_time < now() - o.ack_window_s * interval '1 second')"
        " FROM snapshots s LEFT JOIN devices d ON d.id = s.device_id"
        " LEFT JOIN alert_dispositions a ON a.snapshot_id = s.id"
        " LEFT JOIN weak_labels w ON w.snapshot_id = s.id"
        " CROSS JOIN ops_settings o"
        " WHERE ($1::bigint = 0 OR s.id < $1::bigint)"
        "  AND (NOT $3::boolean OR a.disposition IS NULL)"
        "  AND ($4::bigint[] IS NULL OR s.id = ANY ($4::bigint[]))"
        " ORDER BY s.id DESC LIMIT $2::int", 4 },
    [AQ_CLASS] = { "alerts_class", "SELECT 1 FROM label_classes WHERE name = $1 AND active", 1 },
};

static int q(int i, const char *const *vals, PGresult **out)
{
    return db_exec_sql(qs[i].name, qs[i].sql, qs[i].n, vals, NULL, NULL, 0, out);
}

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

static const char *actor(const struct srv_request *rq, char *buf, size_t cap)
{
    if (rq->user_id > 0 && rq->user_name[0])
        snprintf(buf, cap, "%s", rq->user_name);
    else
        snprintf(buf, cap, "token:%" PRId64, rq->token_id);
    return buf;
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

static json_t *ts_json(PGresult *r, int row, int col)
{
    char b[40];

    if (PQgetisnull(r, row, col) ||
        text_rfc3339(strtoll(PQgetvalue(r, row, col), NULL, 10), b, sizeof b) != 0)
        return json_null();
    return json_string(b);
}

int alerts_api_ack(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24], who[80];
    const char *vals[2] = { idb, who };
    PGresult *r = NULL;
    int64_t id;
    json_t *j;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "alert id must be a positive integer");
    snprintf(idb, sizeof idb, "%" PRId64, id);
    actor(rq, who, sizeof who);
    err = q(AQ_ACK, vals, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such alert");
    }
    j = json_pack("{s:I,s:o}", "snapshot_id", (json_int_t)id, "acknowledged_at",
                  ts_json(r, 0, 1));
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

static int opt_string(json_t *j, const char *key, size_t max, const char **out)
{
    json_t *v = json_object_get(j, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) > max)
        return -1;
    *out = json_string_value(v);
    return 0;
}

int alerts_api_disposition(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24], who[80];
    const char *vals[6], *disp, *wo, *outcome, *cls;
    json_error_t je;
    json_t *j = NULL, *res;
    PGresult *r = NULL;
    int64_t id;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "alert id must be a positive integer");
    if (rq->body)
        j = json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    disp = json_string_value(json_object_get(j, "disposition"));
    if (!alerts_valid_disposition(disp)) {
        err = fail(rs, SRV_EBADREQ, "disposition must be one of action_taken, no_fault_found, "
                   "not_actionable, duplicate");
        goto out;
    }
    if (opt_string(j, "work_order", 100, &wo) != 0 ||
        opt_string(j, "outcome", 2000, &outcome) != 0 || opt_string(j, "class", 64, &cls) != 0) {
        err = fail(rs, SRV_EBADREQ, "work_order (<= 100 bytes), outcome (<= 2000) and class "
                   "must be strings");
        goto out;
    }
    /* no fault found says what the snapshot was: normal operation */
    if (!cls && strcmp(disp, "no_fault_found") == 0)
        cls = "normal";
    if (cls) {
        vals[0] = cls;
        err = q(AQ_CLASS, vals, &r);
        if (err != SRV_OK)
            goto out;
        if (PQntuples(r) != 1) {
            err = fail(rs, SRV_EBADREQ, "unknown class (see GET /api/v1/classes)");
            goto out;
        }
        PQclear(r);
        r = NULL;
    }
    snprintf(idb, sizeof idb, "%" PRId64, id);
    vals[0] = idb;
    vals[1] = actor(rq, who, sizeof who);
    vals[2] = disp;
    vals[3] = wo;
    vals[4] = outcome;
    vals[5] = cls;
    err = q(AQ_DISPOSE, vals, &r);
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) != 1) {
        err = fail(rs, SRV_ENOTFOUND, "no such alert");
        goto out;
    }
    res = json_pack("{s:I,s:s,s:s?,s:s?,s:s?,s:o,s:o}", "snapshot_id", (json_int_t)id,
                    "disposition", disp, "work_order", wo, "outcome", outcome, "class", cls,
                    "acknowledged_at", ts_json(r, 0, 1), "disposed_at", ts_json(r, 0, 2));
    /* the disposition is a label source: re-vote this snapshot */
    err = rules_revote(&id, 1);
    if (err == SRV_OK)
        err = srv_respond_json_take(rs, 200, res);
    else
        json_decref(res);
out:
    PQclear(r);
    json_decref(j);
    return err;
}

/* "3,1,2" -> "{3,1,2}" for a bigint[] parameter; every id checked, at most
 * ALERTS_MAX_IDS of them, so the SQL array cannot be anything else. */
static int ids_array(const char *s, char *out, size_t cap)
{
    size_t used = 1, n = 0;

    out[0] = '{';
    while (*s) {
        char one[24];
        size_t len = strcspn(s, ",");
        int64_t id;
        int w;

        if (len == 0 || len >= sizeof one || ++n > ALERTS_MAX_IDS)
            return -1;
        memcpy(one, s, len);
        one[len] = '\0';
        if (text_parse_id(one, &id) != 0)
            return -1;
        w = snprintf(out + used, cap - used, "%s%" PRId64, n > 1 ? "," : "", id);
        if (w < 0 || (size_t)w >= cap - used)
            return -1;
        used += (size_t)w;
        s += len;
        if (*s == ',' && *++s == '\0')
            return -1;
    }
    if (n == 0 || used + 2 > cap)
        return -1;
    out[used++] = '}';
    out[used] = '\0';
    return 0;
}

int alerts_api_list(struct srv_request *rq, struct srv_response *rs)
{
    const char *lim_s = rq->query ? rq->query(rq, "limit") : NULL;
    const char *after_s = rq->query ? rq->query(rq, "before") : NULL;
    const char *open_s = rq->query ? rq->query(rq, "open") : NULL;
    const char *ids_s = rq->query ? rq->query(rq, "ids") : NULL;
    char lim[16], bef[24], ids[ALERTS_MAX_IDS * 21 + 3];
    const char *vals[4] = { bef, lim, NULL, NULL };
    int64_t before = 0;
    PGresult *r = NULL;
    json_t *items;
    int limit, i, err;

    if (text_parse_limit(lim_s, 50, 500, &limit) != 0)
        return fail(rs, SRV_EBADREQ, "limit must be 1..500");
    if (after_s && text_parse_id(after_s, &before) != 0)
        return fail(rs, SRV_EBADREQ, "before must be an alert id");
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(bef, sizeof bef, "%" PRId64, before);
    vals[2] = open_s && strcmp(open_s, "1") == 0 ? "true" : "false";
    if (ids_s) {
        if (ids_array(ids_s, ids, sizeof ids) != 0)
            return fail(rs, SRV_EBADREQ, "ids must be up to 500 comma-separated alert ids");
        vals[3] = ids;
    }
    err = q(AQ_LIST, vals, &r);
    if (err != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        const char *state = !PQgetisnull(r, i, 6) ? "dispositioned"
                            : PQgetvalue(r, i, 12)[0] == 't' ? "ignored"
                            : !PQgetisnull(r, i, 7) ? "acknowledged" : "open";
#define OPT(c) (PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c))
        json_array_append_new(items, json_pack(
            "{s:I,s:s,s:s?,s:s?,s:o,s:f,s:s?,s:o,s:s?,s:s?,s:s?,s:s?,s:s}",
            "snapshot_id", (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10),
            "device_id", PQgetvalue(r, i, 1), "site", OPT(2), "equipment_type", OPT(3),
            "trigger_time", ts_json(r, i, 4), "score", strtod(PQgetvalue(r, i, 5), NULL),
            "disposition", OPT(6), "acknowledged_at", ts_json(r, i, 7), "work_order", OPT(8),
            "outcome", OPT(9), "weak_class", OPT(10), "weak_source", OPT(11), "state", state));
#undef OPT
    }
    PQclear(r);
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items));
}
