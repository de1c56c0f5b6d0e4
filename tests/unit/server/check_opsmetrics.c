/* check_opsmetrics.c - operational metrics on a fixed alert history.  The
 * expected values are counted by hand from the history below (comments show
 * the arithmetic), not by calling the code under test. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics_ops/opsmetrics.h"

#define H (3600LL * 1000000LL)
#define M (60LL * 1000000LL)

static int64_t t0(void)
{
    int64_t t;

    ck_assert_int_eq(opsm_parse_time("2026-03-02", &t), 0);    /* a Monday */
    return t;
}

START_TEST(test_weeks)
{
    int64_t w1 = t0(), w2 = w1 + 7 * 24 * H, now = w2 + 30 * 24 * H;
    /* Week 1, site A: 5 alerts (two dev1 alerts 10 s apart + a third 20 s later
     * = a chattering burst); site B: 1 alert.
     * Week 2: 4 alerts at site A. */
    struct opsm_alert a[] = {
        { w1 + 1 * H,           w1 + 1 * H + 60 * 1000000LL, OPSM_ACTION, "dev1", "A" },
        { w1 + 1 * H + 10000000LL, w1 + 1 * H + 120 * 1000000LL, OPSM_DUPLICATE, "dev1", "A" },
        { w1 + 1 * H + 30000000LL, w1 + 1 * H + 300 * 1000000LL, OPSM_NFF, "dev1", "A" },
        { w1 + 1 * H + 5 * M,   0, OPSM_NONE, "dev2", "A" },
        { w1 + 3 * H,           w1 + 3 * H + 600 * 1000000LL, OPSM_NOT_ACTIONABLE, "dev3", "B" },
        { w1 + 50 * H,          0, OPSM_NONE, "dev2", "A" },
        { w2 + 2 * H,           w2 + 2 * H + 30 * 1000000LL, OPSM_ACTION, "dev1", "A" },
        { w2 + 4 * H,           0, OPSM_NONE, "dev1", "A" },
        { w2 + 6 * H,           0, OPSM_NONE, "dev1", "A" },
        { w2 + 8 * H,           0, OPSM_NONE, "dev1", "A" },
    };
    struct opsm_bucket *b = NULL;
    size_t nb = 0;
    char warn[160];

    ck_assert_int_eq(opsm_compute(a, 10, w1, w2 + 7 * 24 * H, OPSM_WEEK, now, 8 * H, &b, &nb), 0);
    ck_assert_uint_eq(nb, 2);
    /* week 1: 6 alerts; action 1, nff 1, na 1, dup 1, ignored 2 (no disposition,
     * far older than 8 h) -> follow-through (1+1)/(6-1-0) = 0.4;
     * precision 1/4; per operator hour 6 / 168 h / 2 sites;
     * max in 10 min: site A has 4 alerts within 5 minutes; chattering: the
     * third dev1 alert within 60 s -> 1;
     * ack delays 60, 110, 270, 600 s -> median (110+270)/2 = 190 */
    ck_assert_int_eq(b[0].alerts, 6);
    ck_assert_int_eq(b[0].ignored, 2);
    ck_assert_double_eq_tol(b[0].follow_through, 0.4, 1e-12);
    ck_assert_double_eq_tol(b[0].operational_precision, 0.25, 1e-12);
    ck_assert_double_eq_tol(b[0].alerts_per_operator_hour, 6.0 / 168.0 / 2.0, 1e-12);
    ck_assert_int_eq(b[0].max_alerts_per_10min, 4);
    ck_assert_int_eq(b[0].chattering, 1);
    ck_assert_double_eq_tol(b[0].median_time_to_ack_s, 190, 1e-9);
    /* week 2: 4 alerts, 1 action, 3 ignored -> 1/4; precision 1/1; one ack of 30 s */
    ck_assert_int_eq(b[1].alerts, 4);
    ck_assert_double_eq_tol(b[1].follow_through, 0.25, 1e-12);
    ck_assert_double_eq_tol(b[1].operational_precision, 1.0, 1e-12);
    ck_assert_double_eq_tol(b[1].median_time_to_ack_s, 30, 1e-9);
    ck_assert_int_eq(b[1].max_alerts_per_10min, 1);
    ck_assert_int_eq(b[1].chattering, 0);
    /* 0.40 -> 0.25 is a fall of 15 points: warned */
    ck_assert_int_eq(opsm_trend_warning(b, nb, warn, sizeof warn), 1);
    free(b);

    /* the same history with "now" right after the last alert: the week-2
     * alerts without disposition are pending (inside the window), not ignored:
     * follow-through 1 / (4 - 0 - 3) = 1.0 and no warning */
    ck_assert_int_eq(opsm_compute(a, 10, w1, w2 + 7 * 24 * H, OPSM_WEEK, w2 + 9 * H, 8 * H,
                                  &b, &nb), 0);
    ck_assert_int_eq(b[1].pending, 3);
    ck_assert_double_eq_tol(b[1].follow_through, 1.0, 1e-12);
    ck_assert_int_eq(opsm_trend_warning(b, nb, warn, sizeof warn), 0);
    free(b);
}
END_TEST

START_TEST(test_months_and_empty)
{
    int64_t jan, feb, mar, apr;
    struct opsm_alert a[] = {
        { 0, 0, OPSM_ACTION, "d", "S" },
        { 0, 0, OPSM_NFF, "d", "S" },
    };
    struct opsm_bucket *b = NULL;
    size_t nb = 0;

    ck_assert_int_eq(opsm_parse_time("2026-01-15T12:00:00Z", &jan), 0);
    ck_assert_int_eq(opsm_parse_time("2026-02-01", &feb), 0);
    ck_assert_int_eq(opsm_parse_time("2026-03-01", &mar), 0);
    ck_assert_int_eq(opsm_parse_time("2026-04-01", &apr), 0);
    a[0].trigger_us = jan;
    a[1].trigger_us = feb + H;
    ck_assert_int_eq(opsm_compute(a, 2, jan, apr, OPSM_MONTH, apr, H, &b, &nb), 0);
    ck_assert_uint_eq(nb, 3);
    /* the first bucket is clipped to the range: Jan 15 12:00 .. Feb 1 */
    ck_assert_int_eq(b[0].start_us, jan);
    ck_assert_int_eq(b[0].end_us, feb);
    ck_assert_int_eq(b[1].start_us, feb);
    ck_assert_int_eq(b[1].end_us, mar);
    ck_assert_double_eq_tol(b[0].alerts_per_operator_hour, 1.0 / (16.5 * 24), 1e-12);
    ck_assert(isnan(b[2].follow_through));           /* no alerts in March */
    ck_assert(isnan(b[2].median_time_to_ack_s));
    ck_assert_double_eq(b[2].alerts_per_operator_hour, 0);
    free(b);
    ck_assert_int_eq(opsm_compute(a, 2, apr, jan, OPSM_MONTH, apr, H, &b, &nb), SRV_EBADREQ);
    ck_assert_int_ne(opsm_parse_time("2026-13-01", &jan), 0);
    ck_assert_int_ne(opsm_parse_time("2026-01-01 00:00", &jan), 0);
    ck_assert_int_ne(opsm_parse_time(NULL, &jan), 0);
    /* week starts: Sunday 2026-03-08 belongs to the week of Monday 03-02 */
    ck_assert_int_eq(opsm_parse_time("2026-03-08T23:00:00Z", &jan), 0);
    ck_assert_int_eq(opsm_bucket_start(jan, OPSM_WEEK), t0());
}
END_TEST

/* The newest week counts for the warning once half of it has passed; a
 * range that ends in the past keeps it; one bucket is always judged. */
START_TEST(test_judged_buckets)
{
    const int64_t D = 86400LL * 1000000LL;
    int64_t w = opsm_bucket_start(400 * 7 * D, OPSM_WEEK);
    struct opsm_bucket b[3];

    memset(b, 0, sizeof b);
    b[0].start_us = w - 14 * D;
    b[0].end_us = b[1].start_us = w - 7 * D;
    b[1].end_us = b[2].start_us = w;
    b[2].end_us = w + 7 * D;

    ck_assert_uint_eq(opsm_judged_buckets(b, 3, OPSM_WEEK, w + D), 2);
    ck_assert_uint_eq(opsm_judged_buckets(b, 3, OPSM_WEEK, w + 3 * D), 2);
    ck_assert_uint_eq(opsm_judged_buckets(b, 3, OPSM_WEEK, w + 4 * D), 3);
    b[2].end_us = w + D;        /* clipped to "to": still judged by its whole week */
    ck_assert_uint_eq(opsm_judged_buckets(b, 3, OPSM_WEEK, w + D), 2);
    ck_assert_uint_eq(opsm_judged_buckets(b, 3, OPSM_WEEK, w + 30 * D), 3);
    ck_assert_uint_eq(opsm_judged_buckets(b + 2, 1, OPSM_WEEK, w + D), 1);
}
END_TEST

START_TEST(test_falling_three_in_a_row)
{
    struct opsm_bucket b[4];
    char w[160];
    int i;

    for (i = 0; i < 4; i++)
        b[i].follow_through = 0.97 - 0.03 * i;    /* 97, 94, 91, 88: 9 points, 3 falls */
    ck_assert_int_eq(opsm_trend_warning(b, 4, w, sizeof w), 1);
    b[3].follow_through = 0.95;                   /* recovered */
    ck_assert_int_eq(opsm_trend_warning(b, 4, w, sizeof w), 0);
}
END_TEST

Suite *opsmetrics_suite(void);
Suite *opsmetrics_suite(void)
{
    Suite *s = suite_create("opsmetrics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_weeks);
    tcase_add_test(tc, test_months_and_empty);
    tcase_add_test(tc, test_falling_three_in_a_row);
    tcase_add_test(tc, test_judged_buckets);
    suite_add_tcase(s, tc);
    return s;
}
