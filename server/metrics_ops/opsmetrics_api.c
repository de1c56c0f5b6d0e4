/* opsmetrics_api.c - GET /api/v1/metrics/operational: reads the alert
 * history of the range (bounded), computes the buckets with opsm_compute
 * and adds the bad actors (top 10 devices and rules by alert count).
 * Scheduled baseline captures (detector "schedule") are not alerts and are
 * left out (server/alerts/alerts.c). */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/text/text.h"
#include "server/metrics_ops/opsmetrics.h"

#define OPSM_MAX_ALERTS 1000000
#define TS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

enum { OQ_ALERTS, OQ_WINDOW, OQ_TOP_DEVICES, OQ_TOP_RULES, OQ_COUNT };

static const struct db_sql opsm_sql[OQ_COUNT] = {
    [OQ_ALERTS] = { "opsm_alerts",
        "SELECT " TS("s.trigger_time") " AS trigger_us,"
        " coalesce(" TS("a.acknowledged_at") ", 0) AS ack_us,"
        " coalesce(a.disposition, '') AS disposition, s.device_id, coalesce(d.site, '') AS site"
        " FROM snapshots s LEFT JOIN alert_dispositions a ON a.snapshot_id = s.id"
        " LEFT JOIN devices d ON d.id = s.device_id"
        " WHERE s.trigger_time >= timestamptz 'epoch' + $1::bigint * interval '1 microsecond'"
        "  AND s.trigger_time < timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"
        "  AND ($4::int = 1 OR s.demo = ($4::int = 2)) AND s.detector <> 'schedule'"
        " ORDER BY s.trigger_time LIMIT $3::int", 4 },
    [OQ_WINDOW] = { "opsm_window", "SELECT ack_window_s FROM ops_settings WHERE id = 1", 0 },
    [OQ_TOP_DEVICES] = { "opsm_top_devices",
        "SELECT s.device_id AS name, count(*) AS alerts FROM snapshots s"
        " WHERE s.trigger_time >= timestamptz 'epoch' + $1::bigint * interval '1 microsecond'"
        "  AND s.trigger_time < timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"
        "  AND ($3::int = 1 OR s.demo = ($3::int = 2)) AND s.detector <> 'schedule'"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10", 3 },
    [OQ_TOP_RULES] = { "opsm_top_rules",
        "SELECT r.name, count(*) AS alerts FROM rule_hits h JOIN rules r ON r.id = h.rule_id"
        " JOIN snapshots s ON s.id = h.snapshot_id"
        " WHERE s.trigger_time >= timestamptz 'epoch' + $1::bigint * interval '1 microsecond'"
        "  AND s.trigger_time < timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"
        "  AND ($3::int = 1 OR s.demo = ($3::int = 2))"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10", 3 },
};

static int q(int i, const char *const *vals, PGresult **out)
{
    return db_exec_own(&opsm_sql[i], vals, NULL, NULL, 0, out);
}

static json_t *ratio(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static enum opsm_disp disp_of(const char *s)
{
    if (strcmp(s, "action_taken") == 0)
        return OPSM_ACTION;
    if (strcmp(s, "no_fault_found") == 0)
        return OPSM_NFF;
    if (strcmp(s, "not_actionable") == 0)
        return OPSM_NOT_ACTIONABLE;
    if (strcmp(s, "duplicate") == 0)
        return OPSM_DUPLICATE;
    return OPSM_NONE;
}

/* A top-10 list (columns name, alerts) with each entry's share of total;
 * *share is the whole list's. */
static json_t *top_json(const PGresult *r, long total, const char *key, double *share)
{
    json_t *arr = json_array();
    long sum = 0;
    int i;

    for (i = 0; i < PQntuples(r); i++) {
        long c = (long)db_int64(r, i, "alerts");

        sum += c;
        json_array_append_new(arr, json_pack("{s:s,s:i,s:o}", key, db_text_or(r, i, "name", ""),
                                             "alerts", (int)c, "share",
                                             ratio(total > 0 ? (double)c / (double)total : NAN)));
    }
    *share = total > 0 ? (double)sum / (double)total : NAN;
    return arr;
}

/* The request's range and bucket kind: to defaults to now, from to about
 * six months before to. */
struct opsm_range {
    int64_t from, to, now;
    enum opsm_bucket_kind kind;
};

static int range_parse(const struct srv_request *rq, struct opsm_range *g,
                       struct srv_response *rs)
{
    const char *from_s = rq->query ? rq->query(rq, "from") : NULL;
    const char *to_s = rq->query ? rq->query(rq, "to") : NULL;
    const char *bucket_s = rq->query ? rq->query(rq, "bucket") : NULL;

    g->now = (int64_t)time(NULL) * 1000000LL;
    g->kind = OPSM_WEEK;
    if (bucket_s && strcmp(bucket_s, "month") == 0)
        g->kind = OPSM_MONTH;
    else if (bucket_s && strcmp(bucket_s, "week") != 0)
        return srv_fail(rs, SRV_EBADREQ, "bucket must be week or month");
    g->to = g->now;
    if (to_s && opsm_parse_time(to_s, &g->to) != 0)
        return srv_fail(rs, SRV_EBADREQ, "to must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    g->from = g->to - 183LL * 86400LL * 1000000LL;
    if (from_s && opsm_parse_time(from_s, &g->from) != 0)
        return srv_fail(rs, SRV_EBADREQ, "from must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    if (g->to <= g->from)
        return srv_fail(rs, SRV_EBADREQ, "from must be before to");
    return SRV_OK;
}

/* The acknowledgement window in microseconds (8 h when not configured). */
static int ack_window(int64_t *win)
{
    PGresult *r = NULL;
    int err = q(OQ_WINDOW, NULL, &r);

    if (err != SRV_OK)
        return err;
    *win = PQntuples(r) == 1 ? db_int64(r, 0, "ack_window_s") * 1000000LL : 28800LL * 1000000LL;
    PQclear(r);
    return SRV_OK;
}

/* The alerts of the range as opsm_compute takes them, borrowing strings
 * from *rp (which the caller clears).  *a malloc'd. */
static int alerts_load(const char *const vals[4], PGresult **rp, struct opsm_alert **a,
                       size_t *n, struct srv_response *rs)
{
    PGresult *r;
    size_t i;
    int err = q(OQ_ALERTS, vals, rp);

    if (err != SRV_OK)
        return err;
    r = *rp;
    if (PQntuples(r) > OPSM_MAX_ALERTS)
        return srv_fail(rs, SRV_ETOOBIG, "more than 1000000 alerts in the range: narrow it");
    *n = (size_t)PQntuples(r);
    if (!(*a = calloc(*n + 1, sizeof **a)))
        return SRV_ENOMEM;
    for (i = 0; i < *n; i++) {
        (*a)[i].trigger_us = db_int64(r, (int)i, "trigger_us");
        (*a)[i].ack_us = db_int64(r, (int)i, "ack_us");
        (*a)[i].disp = disp_of(db_text_or(r, (int)i, "disposition", ""));
        (*a)[i].device = db_text_or(r, (int)i, "device_id", "");
        (*a)[i].site = db_text_or(r, (int)i, "site", "");
    }
    return SRV_OK;
}

static json_t *buckets_json(const struct opsm_bucket *b, size_t nb, long *total)
{
    json_t *buckets = json_array();
    size_t i;

    for (i = 0; i < nb; i++) {
        char s[40], e[40];

        *total += b[i].alerts;
        text_rfc3339(b[i].start_us, s, sizeof s);
        text_rfc3339(b[i].end_us, e, sizeof e);
        json_array_append_new(buckets, json_pack(
            "{s:s,s:s,s:i,s:o,s:o,s:o,s:i,s:o,s:i,s:{s:i,s:i,s:i,s:i,s:i,s:i}}",
            "start", s, "end", e, "alerts", (int)b[i].alerts,
            "follow_through", ratio(b[i].follow_through),
            "operational_precision", ratio(b[i].operational_precision),
            "alerts_per_operator_hour", ratio(b[i].alerts_per_operator_hour),
            "max_alerts_per_10min", (int)b[i].max_alerts_per_10min,
            "median_time_to_ack_s", ratio(b[i].median_time_to_ack_s),
            "chattering", (int)b[i].chattering,
            "counts", "action_taken", (int)b[i].action, "no_fault_found", (int)b[i].nff,
            "not_actionable", (int)b[i].not_actionable, "duplicate", (int)b[i].duplicate,
            "ignored", (int)b[i].ignored, "pending", (int)b[i].pending));
    }
    return buckets;
}

/* The answer from the buckets and the two top-10 results. */
static json_t *answer_json(enum opsm_bucket_kind kind, const struct opsm_bucket *b, size_t nb,
                           const PGresult *td, const PGresult *tr, int64_t win, int64_t now)
{
    char warn[160];
    long total = 0;
    double share_dev, share_rule;
    json_t *buckets = buckets_json(b, nb, &total), *top_dev, *top_rule, *out;

    /* The top lists set the shares: build them before the shares are read
     * (argument evaluation order is unspecified). */
    top_dev = top_json(td, total, "device_id", &share_dev);
    top_rule = top_json(tr, total, "rule", &share_rule);
    out = json_pack("{s:s,s:o,s:{s:o,s:o,s:o,s:o},s:o,s:{s:f,s:f,s:f}}",
                    "bucket", kind == OPSM_MONTH ? "month" : "week", "buckets", buckets,
                    "bad_actors", "devices", top_dev,
                    "devices_top10_share", ratio(share_dev),
                    "rules", top_rule,
                    "rules_top10_share", ratio(share_rule),
                    "warning", opsm_trend_warning(b, opsm_judged_buckets(b, nb, kind, now), warn,
                                                  sizeof warn) ? json_string(warn) : json_null(),
                    "targets", "alerts_per_operator_hour_acceptable", 6.0,
                    "alerts_per_operator_hour_max", 12.0, "max_alerts_per_10min", 10.0);
    json_object_set_new(out, "ack_window_s", json_integer(win / 1000000LL));
    return out;
}

int opsm_api_operational(struct srv_request *rq, struct srv_response *rs)
{
    struct opsm_range g;
    int64_t win;
    char fb[24], tb[24], lim[16];
    /* the alerts' statement takes a limit, the top-10 lists do not */
    const char *vals[4] = { fb, tb, lim, NULL }, *top_vals[3] = { fb, tb, NULL };
    struct opsm_alert *a = NULL;
    struct opsm_bucket *b = NULL;
    PGresult *r = NULL, *td = NULL, *tr = NULL;
    size_t n = 0, nb = 0;
    int err;

    if ((err = range_parse(rq, &g, rs)) != SRV_OK || (err = ack_window(&win)) != SRV_OK ||
        (err = srv_query_demo(rq, rs, &vals[3])) != SRV_OK)
        return err;
    top_vals[2] = vals[3];
    snprintf(fb, sizeof fb, "%" PRId64, g.from);
    snprintf(tb, sizeof tb, "%" PRId64, g.to);
    snprintf(lim, sizeof lim, "%d", OPSM_MAX_ALERTS + 1);
    if ((err = alerts_load(vals, &r, &a, &n, rs)) != SRV_OK)
        goto out;
    err = opsm_compute(a, n, g.from, g.to, g.kind, g.now, win, &b, &nb);
    if (err != SRV_OK) {
        err = srv_fail(rs, err, "range holds too many buckets");
        goto out;
    }
    if ((err = q(OQ_TOP_DEVICES, top_vals, &td)) != SRV_OK ||
        (err = q(OQ_TOP_RULES, top_vals, &tr)) != SRV_OK)
        goto out;
    err = srv_respond_json_take(rs, 200, answer_json(g.kind, b, nb, td, tr, win, g.now));
out:
    PQclear(r);
    PQclear(td);
    PQclear(tr);
    free(a);
    free(b);
    return err;
}
