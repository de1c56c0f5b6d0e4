/* opsmetrics_api.c - GET /api/v1/metrics/operational: reads the alert
 * history of the range (bounded), computes the buckets with opsm_compute
 * and adds the bad actors (top 10 devices and rules by alert count). */
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

static const struct { const char *name, *sql; int n; } qs[OQ_COUNT] = {
    [OQ_ALERTS] = { "opsm_alerts",
        "SELECT " TS("s.trigger_time") ", coalesce(" TS("a.acknowledged_at") ", 0),"
        " coalesce(a.disposition, ''), s.device_id, coalesce(d.site, '')"
        " FROM snapshots s LEFT JOIN alert_dispositions a ON a.snapshot_id = s.id"
        " LEFT JOIN devices d ON d.id = s.device_id"
        " WHERE s.trigger_time >= timestamptz 'epoch' + $1::bigint * interval '1 microsecond'"
        "  AND s.trigger_time < timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"
        " ORDER BY s.trigger_time LIMIT $3::int", 3 },
    [OQ_WINDOW] = { "opsm_window", "SELECT ack_window_s FROM ops_settings WHERE id = 1", 0 },
    [OQ_TOP_DEVICES] = { "opsm_top_devices",
        "SELECT s.device_id, count(*) FROM snapshots s"
        " WHERE s.trigger_time >= timestamptz 'epoch' + $1::bigint * interval '1 microsecond'"
        "  AND s.trigger_time < timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10", 2 },
    [OQ_TOP_RULES] = { "opsm_top_rules",
        "SELECT r.name, count(*) FROM rule_hits h JOIN rules r ON r.id = h.rule_id"
        " JOIN snapshots s ON s.id = h.snapshot_id"
        " WHERE s.trigger_time >= timestamptz 'epoch' + $1::bigint * interval '1 microsecond'"
        "  AND s.trigger_time < timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10", 2 },
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

static json_t *top_json(PGresult *r, long total, const char *key, double *share)
{
    json_t *arr = json_array();
    long sum = 0;
    int i;

    for (i = 0; i < PQntuples(r); i++) {
        long c = strtol(PQgetvalue(r, i, 1), NULL, 10);

        sum += c;
        json_array_append_new(arr, json_pack("{s:s,s:i,s:o}", key, PQgetvalue(r, i, 0),
                                             "alerts", (int)c, "share",
                                             ratio(total > 0 ? (double)c / (double)total : NAN)));
    }
    *share = total > 0 ? (double)sum / (double)total : NAN;
    return arr;
}

int opsm_api_operational(struct srv_request *rq, struct srv_response *rs)
{
    const char *from_s = rq->query ? rq->query(rq, "from") : NULL;
    const char *to_s = rq->query ? rq->query(rq, "to") : NULL;
    const char *bucket_s = rq->query ? rq->query(rq, "bucket") : NULL;
    enum opsm_bucket_kind kind = OPSM_WEEK;
    int64_t from, to, now = (int64_t)time(NULL) * 1000000LL, win = 28800LL * 1000000LL;
    char fb[24], tb[24], lim[16], warn[160];
    const char *vals[3] = { fb, tb, lim };
    struct opsm_alert *a = NULL;
    struct opsm_bucket *b = NULL;
    PGresult *r = NULL, *td = NULL, *tr = NULL;
    json_t *buckets, *out;
    double share_dev, share_rule;
    json_t *top_dev, *top_rule;
    size_t n = 0, nb = 0, i;
    long total = 0;
    int err;

    if (bucket_s && strcmp(bucket_s, "month") == 0)
        kind = OPSM_MONTH;
    else if (bucket_s && strcmp(bucket_s, "week") != 0)
        return fail(rs, SRV_EBADREQ, "bucket must be week or month");
    to = now;
    if (to_s && opsm_parse_time(to_s, &to) != 0)
        return fail(rs, SRV_EBADREQ, "to must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    from = to - 183LL * 86400LL * 1000000LL;
    if (from_s && opsm_parse_time(from_s, &from) != 0)
        return fail(rs, SRV_EBADREQ, "from must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    if (to <= from)
        return fail(rs, SRV_EBADREQ, "from must be before to");
    err = q(OQ_WINDOW, NULL, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) == 1)
        win = strtoll(PQgetvalue(r, 0, 0), NULL, 10) * 1000000LL;
    PQclear(r);
    r = NULL;
    snprintf(fb, sizeof fb, "%" PRId64, from);
    snprintf(tb, sizeof tb, "%" PRId64, to);
    snprintf(lim, sizeof lim, "%d", OPSM_MAX_ALERTS + 1);
    err = q(OQ_ALERTS, vals, &r);
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) > OPSM_MAX_ALERTS) {
        err = fail(rs, SRV_ETOOBIG, "more than 1000000 alerts in the range: narrow it");
        goto out;
    }
    n = (size_t)PQntuples(r);
    a = calloc(n + 1, sizeof *a);
    if (!a) {
        err = SRV_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        a[i].trigger_us = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        a[i].ack_us = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
        a[i].disp = disp_of(PQgetvalue(r, (int)i, 2));
        a[i].device = PQgetvalue(r, (int)i, 3);
        a[i].site = PQgetvalue(r, (int)i, 4);
    }
    err = opsm_compute(a, n, from, to, kind, now, win, &b, &nb);
    if (err != SRV_OK) {
        err = fail(rs, err, "range holds too many buckets");
        goto out;
    }
    err = q(OQ_TOP_DEVICES, vals, &td);
    if (err == SRV_OK)
        err = q(OQ_TOP_RULES, vals, &tr);
    if (err != SRV_OK)
        goto out;
    buckets = json_array();
    for (i = 0; i < nb; i++) {
        char s[40], e[40];

        total += b[i].alerts;
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
                    "warning", opsm_trend_warning(b, nb, warn, sizeof warn) ? json_string(warn)
                                                                            : json_null(),
                    "targets", "alerts_per_operator_hour_acceptable", 6.0,
                    "alerts_per_operator_hour_max", 12.0, "max_alerts_per_10min", 10.0);
    json_object_set_new(out, "ack_window_s", json_integer(win / 1000000LL));
    err = srv_respond_json_take(rs, 200, out);
out:
    PQclear(r);
    PQclear(td);
    PQclear(tr);
    free(a);
    free(b);
    return err;
}
