/* opsmetrics.c - the bucketed operational metrics (definitions in
 * opsmetrics.h) as a pure function over a sorted alert history. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/metrics_ops/opsmetrics.h"

#define US 1000000LL

int64_t opsm_bucket_start(int64_t t_us, enum opsm_bucket_kind kind)
{
    time_t t = (time_t)(t_us >= 0 ? t_us / US : (t_us - US + 1) / US);
    struct tm tm;

    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (kind == OPSM_MONTH)
        tm.tm_mday = 1;
    else
        tm.tm_mday -= (tm.tm_wday + 6) % 7;     /* back to Monday */
    return (int64_t)timegm(&tm) * US;
}

int64_t opsm_bucket_next(int64_t start_us, enum opsm_bucket_kind kind)
{
    time_t t = (time_t)(start_us / US);
    struct tm tm;

    gmtime_r(&t, &tm);
    if (kind == OPSM_MONTH)
        tm.tm_mon += 1;
    else
        tm.tm_mday += 7;
    return (int64_t)timegm(&tm) * US;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Metrics of a[0..n) (sorted, all inside b's span) into b.  tmp has room
 * for n int64 and n pointers. */
static void bucket_fill(const struct opsm_alert *a, size_t n, int64_t now_us, int64_t win_us,
                        struct opsm_bucket *b, int64_t *tmp, const char **sites)
{
    size_t i, j, nack = 0, nsites = 0;
    double hours = (double)(b->end_us - b->start_us) / (3600.0 * US);
    long dispositioned, denom;

    for (i = 0; i < n; i++) {
        const struct opsm_alert *x = &a[i];
        long run = 0;

        b->alerts++;
        switch (x->disp) {
        case OPSM_ACTION: b->action++; break;
        case OPSM_NFF: b->nff++; break;
        case OPSM_NOT_ACTIONABLE: b->not_actionable++; break;
        case OPSM_DUPLICATE: b->duplicate++; break;
        default:
            if (now_us - x->trigger_us > win_us)
                b->ignored++;
            else
                b->pending++;
        }
        if (x->ack_us > 0)
            tmp[nack++] = x->ack_us > x->trigger_us ? x->ack_us - x->trigger_us : 0;
        /* chattering: 3rd or later alert of this device within 60 s */
        for (j = i; j-- > 0 && x->trigger_us - a[j].trigger_us <= 60 * US; )
            run += strcmp(a[j].device, x->device) == 0;
        if (run >= 2)
            b->chattering++;
        /* sliding 10-minute window at this alert's site, ending here */
        run = 0;
        for (j = i + 1; j-- > 0 && x->trigger_us - a[j].trigger_us < 600 * US; )
            run += strcmp(a[j].site, x->site) == 0;
        if (run > b->max_alerts_per_10min)
            b->max_alerts_per_10min = run;
        sites[i] = x->site;
    }
    qsort(sites, n, sizeof *sites, cmp_str);
    for (i = 0; i < n; i++)
        nsites += i == 0 || strcmp(sites[i], sites[i - 1]) != 0;
    dispositioned = b->action + b->nff + b->not_actionable + b->duplicate;
    denom = b->alerts - b->duplicate - b->pending;
    b->follow_through = denom > 0 ? (double)(b->action + b->nff) / (double)denom : NAN;
    b->operational_precision = dispositioned > 0 ? (double)b->action / (double)dispositioned
                                                 : NAN;
    b->alerts_per_operator_hour = hours > 0 && nsites > 0
        ? (double)b->alerts / hours / (double)nsites : (n == 0 ? 0 : NAN);
    if (nack > 0) {
        qsort(tmp, nack, sizeof *tmp, cmp_i64);
        b->median_time_to_ack_s = nack % 2
            ? (double)tmp[nack / 2] / US
            : ((double)tmp[nack / 2 - 1] + (double)tmp[nack / 2]) / 2.0 / US;
    } else {
        b->median_time_to_ack_s = NAN;
    }
}

int opsm_compute(const struct opsm_alert *a, size_t n, int64_t from_us, int64_t to_us,
                 enum opsm_bucket_kind kind, int64_t now_us, int64_t ack_window_us,
                 struct opsm_bucket **out, size_t *nb)
{
    struct opsm_bucket *bs;
    int64_t *tmp;
    const char **sites;
    int64_t s;
    size_t count = 0, at = 0, k;

    if (to_us <= from_us)
        return SRV_EBADREQ;
    for (s = opsm_bucket_start(from_us, kind); s < to_us; s = opsm_bucket_next(s, kind))
        if (++count > OPSM_MAX_BUCKETS)
            return SRV_EBADREQ;
    bs = calloc(count, sizeof *bs);
    tmp = malloc((n + 1) * sizeof *tmp);
    sites = malloc((n + 1) * sizeof *sites);
    if (!bs || !tmp || !sites) {
        free(bs);
        free(tmp);
        free(sites);
        return SRV_ENOMEM;
    }
    s = opsm_bucket_start(from_us, kind);
    for (k = 0; k < count; k++) {
        int64_t e = opsm_bucket_next(s, kind);
        size_t first;

        bs[k].start_us = s > from_us ? s : from_us;
        bs[k].end_us = e < to_us ? e : to_us;
        while (at < n && a[at].trigger_us < bs[k].start_us)
            at++;
        first = at;
        while (at < n && a[at].trigger_us < bs[k].end_us)
            at++;
        bucket_fill(a + first, at - first, now_us, ack_window_us, &bs[k], tmp, sites);
        s = e;
    }
    free(tmp);
    free(sites);
    *out = bs;
    *nb = count;
    return SRV_OK;
}

size_t opsm_judged_buckets(const struct opsm_bucket *b, size_t n, enum opsm_bucket_kind kind,
                           int64_t now_us)
{
    int64_t s, e;

    if (n < 2)
        return n;
    s = opsm_bucket_start(b[n - 1].start_us, kind);
    e = opsm_bucket_next(s, kind);
    return now_us - s < (e - s) / 2 ? n - 1 : n;
}

int opsm_trend_warning(const struct opsm_bucket *b, size_t n, char *buf, size_t cap)
{
    size_t i, last = n, k;
    double best = NAN;

    for (i = n; i-- > 0; )
        if (!isnan(b[i].follow_through)) {
            last = i;
            break;
        }
    if (last == n)
        return 0;
    for (i = 0; i < last; i++)
        if (!isnan(b[i].follow_through) && (isnan(best) || b[i].follow_through > best))
            best = b[i].follow_through;
    if (!isnan(best) && b[last].follow_through <= best - 0.10) {
        snprintf(buf, cap, "follow-through fell to %.0f%% from %.0f%%: operators are "
                 "ignoring alerts", 100 * b[last].follow_through, 100 * best);
        return 1;
    }
    /* three falls in a row among buckets with data */
    {
        double prev = NAN;
        int falls = 0;

        for (k = 0; k <= last; k++) {
            if (isnan(b[k].follow_through))
                continue;
            falls = !isnan(prev) && b[k].follow_through < prev ? falls + 1 : 0;
            prev = b[k].follow_through;
        }
        if (falls >= 3) {
            snprintf(buf, cap, "follow-through fell %d buckets in a row, now %.0f%%", falls,
                     100 * b[last].follow_through);
            return 1;
        }
    }
    return 0;
}

int opsm_parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    size_t len;

    if (!s)
        return -1;
    len = strlen(s);
    if (len == 10) {
        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
            return -1;
    } else if (len == 20 && s[10] == 'T' && s[19] == 'Z') {
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n != 20)
            return -1;
    } else {
        return -1;
    }
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60 || h < 0 || mi < 0 || se < 0)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm) * US;
    return 0;
}
