/* check_detect_range.c - the range detector (a value beyond the range the
 * channel has shown) on its own, and the exported score it feeds: a spike,
 * a level shift, a changed periodic pattern and an anomaly-free stream; and
 * the exported score's calibration against the stream's own tail. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/core/detect_range.h"
#include "testnoise.h"

static unsigned char arena[1 << 18];
static uint64_t rng = 0xD1B54A32D192ED03ull;

static double gauss(void)
{
    return testnoise_gauss(&rng);
}

/* Inside the range: no surprise.  Just beyond it after n values: the chance
 * of a record, 2 / (n + 1).  Further beyond: rarer, by e^(-overshoot /
 * beta), beta starting at 5 % of the range. */
START_TEST(range_record_chance)
{
    struct detect_range r;
    float u;
    int i;

    detect_range_init(&r);
    ck_assert_float_eq(detect_range_step(&r, 0.0f, 0.01f, 50000), 0.0f);
    /* n = 1 value seen, range floored at 8 steps of 0.01: overshoot 12.5 ranges */
    ck_assert_float_eq_tol(detect_range_step(&r, 1.0f, 0.01f, 50000), 12.5f / 0.05f, 1e-2f);
    detect_range_init(&r);
    detect_range_step(&r, 0.0f, 0.01f, 50000);
    detect_range_step(&r, 1.0f, 0.01f, 50000);  /* a record: the range is [0, 1] from here */
    for (i = 2; i < 999; i++)
        ck_assert_float_eq(detect_range_step(&r, (float)(i % 2), 0.01f, 50000), 0.0f);
    /* 999 values of 0 and 1 seen; 1.001 is a record by 0.1 % of the range */
    u = detect_range_step(&r, 1.001f, 0.01f, 50000);
    ck_assert_float_eq_tol(u, logf(500.0f) + 0.001f / 0.05f, 1e-3f);
    /* 1.5 overshoots by half the range: e^-10 rarer than a bare record */
    u = detect_range_step(&r, 1.5f, 0.01f, 50000);
    ck_assert_float_gt(u, logf(500.0f) + 5.0f);
    ck_assert_float_eq(detect_range_step(&r, 0.5f, 0.01f, 50000), 0.0f);
}
END_TEST

/* Records in a cluster: a value creeping beyond the range (each sample a
 * record by a hair) is a chance of 2 / (n + 1) once, at the cluster's first
 * record; the next records fewer than RANGE_RUN (8) frames apart count by
 * their overshoot alone, and a record after a longer pause starts a new
 * cluster. */
START_TEST(range_records_cluster)
{
    struct detect_range r;
    float u;
    int i;

    detect_range_init(&r);
    for (i = 0; i < 999; i++)
        detect_range_step(&r, (float)(i % 2), 0.01f, 50000);
    u = detect_range_step(&r, 1.001f, 0.01f, 50000);    /* first of a cluster */
    ck_assert_float_gt(u, logf(400.0f));
    for (i = 0; i < 5; i++) {                           /* creeping on */
        u = detect_range_step(&r, 1.002f + 0.001f * (float)i, 0.01f, 50000);
        ck_assert_float_lt(u, 0.5f);
        ck_assert_float_gt(u, 0.0f);
        detect_range_step(&r, 0.5f, 0.01f, 50000);
    }
    /* a jump beyond the creep, inside the cluster: its overshoot still counts */
    ck_assert_float_gt(detect_range_step(&r, 1.5f, 0.01f, 50000), 5.0f);
    for (i = 0; i < 8; i++)
        ck_assert_float_eq(detect_range_step(&r, 0.5f, 0.01f, 50000), 0.0f);
    u = detect_range_step(&r, 1.501f, 0.01f, 50000);    /* after 8 frames: a new cluster */
    ck_assert_float_gt(u, logf(400.0f));
}
END_TEST

/* Bounded memory: the range is that of the current and the last complete
 * block; a spike is forgotten two blocks later, not before. */
START_TEST(range_forgets_by_blocks)
{
    struct detect_range r;
    int i;

    detect_range_init(&r);
    for (i = 0; i < 50; i++)
        detect_range_step(&r, (float)(i % 2), 0.01f, 100);
    ck_assert_float_gt(detect_range_step(&r, 10.0f, 0.01f, 100), 0.0f);     /* frame 50 */
    for (i = 51; i < 150; i++)
        detect_range_step(&r, (float)(i % 2), 0.01f, 100);
    ck_assert_float_eq(detect_range_step(&r, 5.0f, 0.01f, 100), 0.0f);      /* 10 still known */
    for (i = 151; i < 300; i++)
        detect_range_step(&r, (float)(i % 2), 0.01f, 100);
    ck_assert_float_gt(detect_range_step(&r, 5.0f, 0.01f, 100), 0.0f);      /* forgotten */
}
END_TEST

/* The exported score of one 1 Hz channel (process profile, defaults) over
 * `n` frames of unit noise around 100 plus `event(i)`; the largest score in
 * [from, to) and in [0, from) after the first 500 frames. */
struct run { float before, at, after; };

static struct run exported(double (*event)(long), long n, long from, long to, long after)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    struct run out = { 0, 0, 0 };
    long i;

    detect_config_defaults(&c);
    d = detect_init(&c, 1, 1.0, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < n; i++) {
        float x = (float)(100.0 + gauss() + event(i));

        detect_step(d, &x, (int64_t)i * 1000000, &r);
        ck_assert(r.score >= 0.0f && r.score <= 1.0f);
        if (i >= 500 && i < from && r.score > out.before)
            out.before = r.score;
        if (i >= from && i < to && r.score > out.at)
            out.at = r.score;
        if (i >= after && r.score > out.after)
            out.after = r.score;
    }
    return out;
}

static double spike(long i)
{
    return i == 3000 ? 12.0 : 0.0;
}

static double shift_down(long i)
{
    return i >= 3000 ? -8.0 : 0.0;
}

/* A periodic pattern that changes: a square wave between 0 and 6 (period
 * 100) whose high level becomes 15 from frame 3000 on.  Its first new
 * plateau is beyond anything the stream showed; the next ones are not. */
static double square_grows(long i)
{
    return (i % 100) < 50 ? 0.0 : (i >= 3000 ? 15.0 : 6.0);
}

START_TEST(exported_spike)
{
    struct run r = exported(spike, 4000, 3000, 3001, 3100);

    ck_assert_float_ge(r.at, 0.6f);
    ck_assert_float_gt(r.at, r.before + 0.15f);
}
END_TEST

/* A drop to a level never seen scores; the level, once seen, is the range's
 * and the rows after it are no longer news to this detector: the score
 * falls back (the model learned, nothing gated it). */
START_TEST(exported_level_shift)
{
    struct run r = exported(shift_down, 5000, 3000, 3010, 3300);

    ck_assert_float_ge(r.at, 0.6f);
    ck_assert_float_gt(r.at, r.before + 0.15f);
    ck_assert_float_lt(r.after, r.at - 0.15f);
}
END_TEST

START_TEST(exported_changed_pattern)
{
    struct run r = exported(square_grows, 4000, 3000, 3100, 3100);

    ck_assert_float_ge(r.at, 0.5f);
    ck_assert_float_gt(r.at, r.before + 0.1f);
    ck_assert_float_lt(r.after, r.at - 0.1f);
}
END_TEST

/* Six hours of plain noise at 1 Hz: a record now and then is what noise
 * does (after n values the chance is 2 / (n + 1) a frame), so the score
 * rarely passes 0.5, a chance of 1e-5 a second, and never triggers. */
START_TEST(exported_anomaly_free)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    long i, above = 0, trig = 0;

    detect_config_defaults(&c);
    d = detect_init(&c, 1, 1.0, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < 6 * 3600; i++) {
        float x = (float)(100.0 + gauss());

        detect_step(d, &x, (int64_t)i * 1000000, &r);
        above += i >= 500 && r.score >= 0.5f;
        trig += r.triggered;
    }
    ck_assert_int_le(above, 2);
    ck_assert_int_eq(trig, 0);
}
END_TEST

/* The exported score's calibration against the stream's own tail (level
 * detector alone, 1 Hz): in plain noise a 7-sigma sample is news; in a
 * stream that shows 5-sigma bursts twice a minute it is routine (below the
 * bursts' own scores), while a far larger one still stands out. */
static float level_score_of(int spiky, double big)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    float at = 0.0f;
    long i;

    detect_config_defaults(&c);
    c.enable = DETECT_LEVEL;
    d = detect_init(&c, 1, 1.0, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < 5001; i++) {
        double x = 100.0 + gauss();
        float f;

        if (spiky && i % 50 == 25)
            x += (i % 100 == 25 ? 1.0 : -1.0) * (5.0 + 0.5 * gauss());
        if (i == 5000)
            x = 100.0 + big;
        f = (float)x;
        detect_step(d, &f, (int64_t)i * 1000000, &r);
        at = r.score;
    }
    return at;
}

START_TEST(calibration_own_tail)
{
    float plain7 = level_score_of(0, 7.0), spiky7 = level_score_of(1, 7.0);
    float spiky12 = level_score_of(1, 12.0);

    ck_assert_float_ge(plain7, 0.6f);
    ck_assert_float_lt(spiky7, 0.45f);
    ck_assert_float_lt(spiky7, plain7 - 0.2f);
    ck_assert_float_gt(spiky12, spiky7 + 0.1f);
}
END_TEST

/* detectors=range alone is accepted and scores; the name is known. */
START_TEST(range_alone)
{
    struct detect_config c;

    detect_config_defaults(&c);
    c.enable = DETECT_RANGE;
    ck_assert_ptr_nonnull(detect_init(&c, 2, 1.0, arena, sizeof(arena)));
    ck_assert_str_eq(detect_name(DETECT_RANGE), "range");
}
END_TEST

Suite *detect_range_suite(void);

Suite *detect_range_suite(void)
{
    Suite *s = suite_create("detect_range");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, range_record_chance);
    tcase_add_test(tc, range_forgets_by_blocks);
    tcase_add_test(tc, range_records_cluster);
    tcase_add_test(tc, exported_spike);
    tcase_add_test(tc, exported_level_shift);
    tcase_add_test(tc, exported_changed_pattern);
    tcase_add_test(tc, exported_anomaly_free);
    tcase_add_test(tc, range_alone);
    tcase_add_test(tc, calibration_own_tail);
    suite_add_tcase(s, tc);
    return s;
}
