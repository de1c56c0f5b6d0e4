/* opsmetrics.h - operational metrics of alerts: what the customer
 * experiences, not what the model scores.
 *
 * Per bucket (ISO week from Monday 00:00 UTC, or calendar month UTC):
 *   alerts                   alerts triggered in the bucket
 *   follow_through           (action_taken + no_fault_found) / (alerts - duplicate - pending);
 *                            an alert with no disposition after the acknowledgement
 *                            window counts as ignored (in the denominator); one still
 *                            inside the window is pending (left out)
 *   operational_precision    action_taken / dispositioned alerts
 *   alerts_per_operator_hour alerts / bucket hours / sites with alerts (one operator
 *                            console per site); ISA-18.2: ~6 acceptable, 12 at most
 *   max_alerts_per_10min     most alerts at one site in any 10-minute window (<= 10)
 *   chattering               alerts that are the 3rd or later from one device within 60 s
 *   median_time_to_ack_s     median of acknowledgement minus trigger time
 * Ratios with an empty denominator are NaN (null in JSON).
 * The module's prefix is opsm_ (metrics_ belongs to the Prometheus endpoint). */
#ifndef PRECURSOR_OPSMETRICS_H
#define PRECURSOR_OPSMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/srv/srv.h"

enum opsm_disp { OPSM_NONE, OPSM_ACTION, OPSM_NFF, OPSM_NOT_ACTIONABLE, OPSM_DUPLICATE };
enum opsm_bucket_kind { OPSM_WEEK, OPSM_MONTH };

struct opsm_alert {
    int64_t trigger_us;
    int64_t ack_us;             /* 0: not acknowledged */
    enum opsm_disp disp;
    const char *device;         /* borrowed */
    const char *site;           /* borrowed; "" when unknown */
};

struct opsm_bucket {
    int64_t start_us, end_us;
    long alerts, action, nff, not_actionable, duplicate, ignored, pending;
    double follow_through, operational_precision, alerts_per_operator_hour;
    long max_alerts_per_10min, chattering;
    double median_time_to_ack_s;
};

#define OPSM_MAX_BUCKETS 520    /* ten years of weeks */

/* Buckets covering [from_us, to_us) (clipped to it); a must be sorted by
 * trigger time.  *out malloc'd, *n buckets.  0, SRV_EBADREQ (range empty or
 * too many buckets) or SRV_ENOMEM. */
int opsm_compute(const struct opsm_alert *a, size_t n, int64_t from_us, int64_t to_us,
                 enum opsm_bucket_kind kind, int64_t now_us, int64_t ack_window_us,
                 struct opsm_bucket **out, size_t *nb);

/* Start of the bucket containing t (UTC). */
int64_t opsm_bucket_start(int64_t t_us, enum opsm_bucket_kind kind);
int64_t opsm_bucket_next(int64_t start_us, enum opsm_bucket_kind kind);

/* A warning when follow-through is falling: the last bucket with data is at
 * least 10 points below the best earlier one, or it fell three buckets in a
 * row.  Writes a message into buf and returns 1, else 0. */
int opsm_trend_warning(const struct opsm_bucket *b, size_t n, char *buf, size_t cap);

/* How many of the n buckets (oldest first) the trend warning judges: all,
 * but the newest while less than half of its week or month has passed (a
 * bucket that has just opened holds a few alerts, and one or two
 * dispositions swing it), as long as an older one is left. */
size_t opsm_judged_buckets(const struct opsm_bucket *b, size_t n, enum opsm_bucket_kind kind,
                           int64_t now_us);

/* "2026-01-31" or "2026-01-31T12:00:00Z" -> unix microseconds.  0 or -1. */
int opsm_parse_time(const char *s, int64_t *out);

int opsm_api_operational(struct srv_request *rq, struct srv_response *rs);

#endif
