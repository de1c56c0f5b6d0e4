/* check_detect.c - detectors and trigger on synthetic signals with known answers. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/config/detect_opts.h"
#include "testnoise.h"

#define RATE 1000.0
#define US(i) ((int64_t)(i) * 1000)     /* frame i at RATE */

static unsigned char arena[1 << 20];

static uint64_t rng = 88172645463325252ull;

static double gauss(void)
{
    return testnoise_gauss(&rng);
}

static struct detect *make(struct detect_config *c, unsigned channels)
{
    struct detect *d = detect_init(c, channels, RATE, arena, sizeof(arena));

    ck_assert_ptr_nonnull(d);
    return d;
}

/* Max trigger score over frames [from, to) of a signal given by fn(i) (the
 * exported score must stay in [0, 1] too). */
typedef float (*signal_fn)(long i);

static float run(struct detect *d, signal_fn fn, long from, long to, long *ntrig)
{
    float best = 0.0f;
    long i;

    for (i = from; i < to; i++) {
        struct detect_result r;
        float x = fn(i);

        detect_step(d, &x, US(i), &r);
        ck_assert(r.score >= 0.0f && r.score <= 1.0f);
        ck_assert(r.trigger_score >= 0.0f && r.trigger_score <= 1.0f);
        if (r.trigger_score > best)
            best = r.trigger_score;
        if (ntrig && r.triggered)
            (*ntrig)++;
    }
    return best;
}

static float sig_sine(long i) { return (float)(sin(2.0 * M_PI * 50.0 * i / RATE) + 0.05 * gauss()); }
static float sig_step(long i) { return (float)(0.1 * gauss() + (i >= 20000 ? 3.0 : 0.0)); }
static float sig_burst(long i) { return (float)(gauss() * (i >= 20000 && i < 20500 ? 6.0 : 1.0)); }
static float sig_impulses(long i)
{
    /* Sine plus, after 20000, a sharp impulse every 100 samples (bearing fault). */
    float x = (float)(sin(2.0 * M_PI * 50.0 * i / RATE) + 0.05 * gauss());

    if (i >= 20000 && i % 100 == 0)
        x += 4.0f;
    return x;
}

START_TEST(clean_sine_scores_low)
{
    struct detect_config c;
    struct detect *d;

    detect_config_defaults(&c);
    d = make(&c, 1);
    run(d, sig_sine, 0, 10000, NULL);               /* baseline forms */
    ck_assert_float_lt(run(d, sig_sine, 10000, 40000, NULL), 0.5f);
}
END_TEST

START_TEST(step_in_level)
{
    struct detect_config c;
    struct detect *d;

    detect_config_defaults(&c);
    c.enable = DETECT_LEVEL;
    d = make(&c, 1);
    ck_assert_float_lt(run(d, sig_step, 0, 20000, NULL) , 1.0f);
    ck_assert_float_lt(run(d, sig_step, 5000, 20000, NULL), 0.75f);
    ck_assert_float_gt(run(d, sig_step, 20000, 20010, NULL), 0.95f);
}
END_TEST

/* A burst of 6x the noise triggers, the noise before it does not.  The
 * score asked for is modest: novelty scores only the z beyond the recent
 * peak and the last detection, so a burst scores by its first large
 * samples, about 0.3 to 0.8 (docs/DETECTORS.md). */
START_TEST(variance_burst)
{
    struct detect_config c;
    struct detect *d;
    long clean = 0, burst = 0;

    detect_config_defaults(&c);
    c.hold_off_s = 0.0f;        /* count every trigger the scores make */
    d = make(&c, 1);
    run(d, sig_burst, 0, 5000, NULL);
    ck_assert_float_lt(run(d, sig_burst, 5000, 20000, &clean), 0.3f);
    ck_assert_float_ge(run(d, sig_burst, 20000, 20500, &burst), 0.3f);
    ck_assert_int_le(clean, 2);  /* 15 s of plain noise at the low shipped threshold */
    ck_assert_int_ge(burst, 1);
}
END_TEST

START_TEST(impulses_raise_feature_score)
{
    struct detect_config c;
    struct detect *d;
    float before, after;

    detect_config_defaults(&c);
    c.enable = DETECT_FEATURE;
    d = make(&c, 1);
    run(d, sig_impulses, 0, 5000, NULL);
    before = run(d, sig_impulses, 5000, 20000, NULL);
    after = run(d, sig_impulses, 20000, 21000, NULL);
    ck_assert_float_lt(before, 0.5f);
    ck_assert_float_gt(after, 0.9f);
}
END_TEST

/* Frame-by-frame control of the score: a step of height h on a quiet
 * channel gives a known large z; we drive the trigger with steps. */
static void feed(struct detect *d, float x, long i, struct detect_result *r)
{
    detect_step(d, &x, US(i), r);
}

START_TEST(hysteresis_and_holdoff)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    long i, trig = 0, supp = 0;

    detect_config_defaults(&c);
    c.enable = DETECT_LEVEL;
    c.hold_off_s = 2.0f;
    c.warmup_s = 1.0f;
    c.max_per_hour = 0;
    d = make(&c, 1);
    for (i = 0; i < 5000; i++)
        feed(d, (float)(0.1 * gauss()), i, &r);
    /* Spike: fires. */
    feed(d, 50.0f, i++, &r);
    ck_assert_int_eq(r.triggered, 1);
    ck_assert_int_eq(r.detector, DETECT_LEVEL);
    /* Still high on the next frame: no second trigger (not re-armed). */
    feed(d, 50.0f, i++, &r);
    ck_assert_int_eq(r.triggered, 0);
    ck_assert_int_eq(r.suppressed, 0);
    for (; i < 5500; i++)
        feed(d, (float)(0.1 * gauss()), i, &r);
    /* Re-armed but within the 2 s hold-off: suppressed. */
    feed(d, 60.0f, i++, &r);
    ck_assert_int_eq(r.triggered, 0);
    ck_assert_int_eq(r.suppressed, 1);
    for (; i < 8000; i++) {
        feed(d, (float)(0.1 * gauss()), i, &r);
        trig += r.triggered;
        supp += r.suppressed;
    }
    ck_assert_int_eq(trig, 0);
    feed(d, 70.0f, i++, &r);
    ck_assert_int_eq(r.triggered, 1);
}
END_TEST

START_TEST(hourly_cap_by_timestamp)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    long k, i = 0, trig = 0, supp = 0;
    int64_t t = 0;
    float x;

    detect_config_defaults(&c);
    c.enable = DETECT_LEVEL;
    c.hold_off_s = 0.0f;
    c.warmup_s = 0.0f;
    c.max_per_hour = 3;
    c.novelty_half = 0;         /* identical spikes: the cap, not novelty, must stop them */
    c.quiet_frames = 0;
    c.threshold = 0.9f;
    c.rearm = 0.6f;
    d = make(&c, 1);
    /* One spike every 10 minutes for 2 hours, quiet samples between them;
     * timestamps jump (the cap must count by time, not frames). */
    for (k = 0; k < 12; k++) {
        for (i = 0; i < 200; i++) {
            x = (float)(0.1 * gauss());
            detect_step(d, &x, t, &r);
            t += 1000;
        }
        x = 100.0f;
        detect_step(d, &x, t, &r);
        if (k < 3)
            ck_assert_int_eq(r.triggered, 1);
        if (k >= 3 && k < 6)
            ck_assert_int_eq(r.suppressed, 1);  /* 4th..6th within the first hour */
        trig += r.triggered;
        supp += r.suppressed;
        t += INT64_C(600000000);
    }
    /* Spikes at 0,10,..,110 min (+ small offsets): each hour window holds 3. */
    ck_assert_int_eq(trig, 6);
    ck_assert_int_eq(supp, 6);
}
END_TEST

START_TEST(warmup_blocks_triggers)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    long i, trig = 0;
    float x;

    detect_config_defaults(&c);
    c.enable = DETECT_LEVEL;
    c.warmup_s = 3.0f;
    d = make(&c, 1);
    for (i = 0; i < 2900; i++) {
        x = (i % 500 == 499) ? 100.0f : (float)(0.1 * gauss());
        detect_step(d, &x, US(i), &r);
        trig += r.triggered;
    }
    ck_assert_int_eq(trig, 0);
    for (; i < 3200; i++) {
        x = (i == 3100) ? 100.0f : (float)(0.1 * gauss());
        detect_step(d, &x, US(i), &r);
        trig += r.triggered;
    }
    ck_assert_int_eq(trig, 1);
}
END_TEST

START_TEST(arena_and_config_checked)
{
    struct detect_config c;
    size_t need;

    detect_config_defaults(&c);
    /* the exact need at this rate; the rate-free size is an upper bound */
    need = detect_arena_size_at(&c, 8, RATE);
    ck_assert_uint_gt(need, 0);
    ck_assert_uint_ge(detect_arena_size(&c, 8), need);
    ck_assert_ptr_null(detect_init(&c, 8, RATE, arena, need - 1));
    ck_assert_ptr_nonnull(detect_init(&c, 8, RATE, arena, need));
    ck_assert_ptr_nonnull(detect_init(&c, 8, RATE, arena + 3, need));   /* misaligned */
    ck_assert_ptr_null(detect_init(&c, 0, RATE, arena, sizeof(arena)));
    ck_assert_ptr_null(detect_init(&c, DETECT_MAX_CHANNELS + 1, RATE, arena, sizeof(arena)));
    ck_assert_ptr_null(detect_init(&c, 1, 0.0, arena, sizeof(arena)));
    c.rearm = c.threshold + 0.05f;
    ck_assert_ptr_null(detect_init(&c, 1, RATE, arena, sizeof(arena)));
    detect_config_defaults(&c);
    c.threshold = NAN;
    ck_assert_uint_eq(detect_arena_size(&c, 1), 0);
}
END_TEST

static float const_model(const void *m, const float *f, uint32_t n)
{
    (void)f;
    (void)n;
    return *(const float *)m;
}

START_TEST(model_slot)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    static const float half = 0.5f, two = 2.0f;
    struct detect_model m = {2 * DETECT_NFEAT, const_model, &half};
    struct detect_model bad = {3, const_model, &two};
    float fr[2] = {0, 0};
    long i;

    detect_config_defaults(&c);
    c.enable = DETECT_MODEL;
    c.threshold = 0.9f;         /* a constant 0.5 must show as it is, not be quieted */
    c.rearm = 0.6f;
    d = make(&c, 2);
    detect_set_model(d, &bad);      /* wrong vector length: ignored */
    for (i = 0; i < 1000; i++)
        detect_step(d, fr, US(i), &r);
    ck_assert_float_eq(r.score, 0.0f);
    detect_set_model(d, &m);
    for (; i < 2000; i++)
        detect_step(d, fr, US(i), &r);
    ck_assert_float_eq(r.score, 0.5f);
    ck_assert_int_eq(r.detector, DETECT_MODEL);
    ck_assert_str_eq(detect_name(r.detector), "model");
}
END_TEST

/* Likelihood stage, known answer: after a long run of raw scores alternating
 * 0 and 1 (mean 0.5, sd 0.5), a short mean of 1.0 is one sd above: tail
 * 0.1587, score -log10(0.1587) / 10 = 0.0799; a constant raw score gives 0. */
START_TEST(likelihood_known_answer)
{
    struct detect_lik l;
    float s = 0.0f;
    int i;

    detect_lik_init(&l);
    for (i = 0; i < 20000; i++)
        detect_lik_step(&l, (float)(i & 1), 1, 1000);
    s = detect_lik_step(&l, 1.0f, 1, 1000);
    ck_assert_float_eq_tol(s, 0.0799f, 0.01f);
    detect_lik_init(&l);
    for (i = 0; i < 5000; i++)
        s = detect_lik_step(&l, 0.3f, 4, 1000);
    ck_assert_float_eq(s, 0.0f);
    /* Far tail: a jump of 100 floor-sds scores 1 (tail far below 1e-10). */
    ck_assert_float_eq(detect_lik_step(&l, 1.3f, 1, 1000), 1.0f);
}
END_TEST

/* Novelty and quiet: a spike that repeats every 300 frames alarms once, a
 * bigger one later alarms again; the score is 0 right after a detection. */
START_TEST(novelty_repeats_alarm_once)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    long i, hits = 0, big = 0;

    detect_config_defaults(&c);
    c.warmup_s = 0.0f;
    c.hold_off_s = 0.0f;
    d = make(&c, 1);
    for (i = 0; i < 6000; i++) {
        float x = (float)(0.1 * gauss());

        if (i >= 2000 && i % 300 == 0)
            x += i == 5700 ? 40.0f : 5.0f;
        detect_step(d, &x, US(i), &r);
        if (i > 2000 && i < 5700)
            hits += r.triggered;
        if (i == 5700)
            big = r.triggered;
        if (i == 5701)
            ck_assert_float_eq(r.trigger_score, 0.0f);
    }
    ck_assert_int_le(hits, 2);
    ck_assert_int_eq(big, 1);
}
END_TEST

START_TEST(opts)
{
    struct detect_config c;

    detect_config_defaults(&c);
    ck_assert_int_eq(detect_opts_set(&c, "threshold", "0.75"), 0);
    ck_assert_float_eq(c.threshold, 0.75f);
    ck_assert_int_eq(detect_opts_set(&c, "threshold", "1.5"), -2);
    ck_assert_int_eq(detect_opts_set(&c, "threshold", "0.5x"), -2);
    ck_assert_float_eq(c.threshold, 0.75f);
    ck_assert_int_eq(detect_opts_set(&c, "window", "512"), 0);
    ck_assert_uint_eq(c.window, 512);
    ck_assert_int_eq(detect_opts_set(&c, "window", "-3"), -2);
    ck_assert_int_eq(detect_opts_set(&c, "max_per_hour", "0"), 0);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "level,model"), 0);
    ck_assert_uint_eq(c.enable, DETECT_LEVEL | DETECT_MODEL);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "level,"), -2);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "fft"), -2);
    ck_assert_int_eq(detect_opts_set(&c, "nope", "1"), -1);
}
END_TEST

Suite *detect_suite(void);

Suite *detect_suite(void)
{
    Suite *s = suite_create("detect");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, clean_sine_scores_low);
    tcase_add_test(tc, step_in_level);
    tcase_add_test(tc, variance_burst);
    tcase_add_test(tc, impulses_raise_feature_score);
    tcase_add_test(tc, hysteresis_and_holdoff);
    tcase_add_test(tc, hourly_cap_by_timestamp);
    tcase_add_test(tc, warmup_blocks_triggers);
    tcase_add_test(tc, arena_and_config_checked);
    tcase_add_test(tc, model_slot);
    tcase_add_test(tc, opts);
    tcase_add_test(tc, likelihood_known_answer);
    tcase_add_test(tc, novelty_repeats_alarm_once);
    suite_add_tcase(s, tc);
    return s;
}
