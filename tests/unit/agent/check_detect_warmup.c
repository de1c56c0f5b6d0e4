/* check_detect_warmup.c - no trigger before a detector has its baseline, at
 * any rate; anomaly-free streams stay silent; the exported score is
 * continuous and never gated; rate profiles. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/config/detect_opts.h"
#include "testnoise.h"

static unsigned char arena[1 << 20];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double gauss(void)
{
    return testnoise_gauss(&rng);
}

static struct detect *make(struct detect_config *c, unsigned ch, double rate)
{
    struct detect *d = detect_init(c, ch, rate, arena, sizeof(arena));

    ck_assert_ptr_nonnull(d);
    return d;
}

/* A process-like stream: each channel an AR(1) around its own level plus
 * measurement noise, channels sharing a common factor (time constant 10
 * frames, spread 2x the noise).  No events. */
static void process_frame(float *x, unsigned ch, double *state)
{
    unsigned c;

    state[0] = 0.9 * state[0] + 0.044 * gauss();
    for (c = 0; c < ch; c++)
        x[c] = (float)(10.0 * (c + 1) + state[0] * (1.0 + 0.2 * c) + 0.05 * gauss());
}

static long triggers_on_clean(unsigned ch, double rate, long frames)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    double st[1] = { 0 };
    float x[8];
    long i, trig = 0;

    detect_config_defaults(&c);
    d = make(&c, ch, rate);
    for (i = 0; i < frames; i++) {
        process_frame(x, ch, st);
        detect_step(d, x, (int64_t)((double)i * 1e6 / rate), &r);
        trig += r.triggered;
    }
    return trig;
}

/* Six hours of an anomaly-free 1 Hz process stream, 1 and 8 channels,
 * defaults: not one trigger (the old feature detector fired at its first
 * word, 11.7 minutes in). */
START_TEST(clean_process_1hz_silent)
{
    ck_assert_int_eq(triggers_on_clean(1, 1.0, 6 * 3600), 0);
    ck_assert_int_eq(triggers_on_clean(8, 1.0, 6 * 3600), 0);
}
END_TEST

/* The same at kHz rates: 30 s at 1 kHz, 4 s at 50 kHz. */
START_TEST(clean_stream_khz_silent)
{
    ck_assert_int_eq(triggers_on_clean(4, 1000.0, 30000), 0);
    ck_assert_int_eq(triggers_on_clean(4, 50000.0, 200000), 0);
}
END_TEST

/* Historian data: a temperature stored as straight segments between sparse
 * readings (interpolated or swinging-door compressed), slope changing every
 * 1 to 10 minutes, 6 hours at 1 Hz, 4 such channels.  Every kink is a large
 * first difference against the usual one; none is an event. */
START_TEST(piecewise_linear_1hz_silent)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    float x[4] = { 20.0f, 21.0f, 35.0f, 50.0f }, slope[4] = { 0, 0, 0, 0 };
    long i, next[4] = { 0, 0, 0, 0 }, trig = 0;
    unsigned k;

    detect_config_defaults(&c);
    d = make(&c, 4, 1.0);
    for (i = 0; i < 6 * 3600; i++) {
        for (k = 0; k < 4; k++) {
            if (i == next[k]) {
                slope[k] = (float)(0.004 * gauss());
                next[k] = i + 60 + (long)(540.0 * fabs(gauss()) / 2.0);
            }
            x[k] += slope[k];
        }
        detect_step(d, x, (int64_t)i * 1000000, &r);
        trig += r.triggered;
    }
    ck_assert_int_eq(trig, 0);
}
END_TEST

/* The feature detector cannot trigger before its own FEAT_WARM_EVALS (24)
 * evaluations, whatever the rate, but does right after.  An impulse train
 * is what only the feature detector sees (crest factor, kurtosis). */
static long feature_triggers(double rate, long from, long to, long total)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    long i, trig = 0;

    detect_config_defaults(&c);
    c.enable = DETECT_FEATURE;
    c.warmup_s = 0.0f;
    c.hold_off_s = 0.0f;
    d = make(&c, 1, rate);
    for (i = 0; i < total; i++) {
        float x = (float)gauss();

        if (i >= from && i < to && i % 7 == 0)
            x += 12.0f;
        detect_step(d, &x, (int64_t)((double)i * 1e6 / rate), &r);
        if (i < to)
            trig += r.triggered;
    }
    return trig;
}

START_TEST(feature_warmup_by_evaluations)
{
    /* 1 Hz: window 64 (process profile), hop 16, 24 evaluations end at
     * frame 64 + 23 * 16 = 432.  Impulses in frames 70..420: silent. */
    ck_assert_int_eq(feature_triggers(1.0, 70, 420, 420), 0);
    /* 10 kHz: window 256, hop 64: 24 evaluations end at frame 1728. */
    ck_assert_int_eq(feature_triggers(10000.0, 300, 1700, 1700), 0);
    /* After the warm-up the same impulses trigger, at both rates. */
    ck_assert_int_ge(feature_triggers(1.0, 800, 1200, 1200), 1);
    ck_assert_int_ge(feature_triggers(10000.0, 4000, 6000, 6000), 1);
}
END_TEST

/* The exported score is a calibrated surprise: continuous (almost never
 * exactly 0 once the baselines exist; at 1 Hz, where the old score was 0 on
 * 94.5 % of rows), and not gated by the quiet period (a second, smaller
 * spike right after a detected one scores well above the noise there,
 * while the trigger's own score is held at 0). */
START_TEST(score_continuous_never_gated)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    long i, zeros = 0, n = 0;
    float x, after = 0.0f, after_trig = 1.0f;
    double noise_sum = 0.0;

    detect_config_defaults(&c);
    d = make(&c, 1, 1.0);
    for (i = 0; i < 20000; i++) {
        x = (float)gauss();
        if (i == 15000)
            x = 40.0f;
        if (i == 15020)
            x = 30.0f;
        detect_step(d, &x, (int64_t)i * 1000000, &r);
        if (i >= 5000 && i < 15000) {
            zeros += r.score == 0.0f;
            n++;
            noise_sum += r.score;
        }
        ck_assert(r.score >= 0.0f && r.score <= 1.0f);
        if (i == 15020) {
            after = r.score;
            after_trig = r.trigger_score;
        }
    }
    ck_assert_int_lt(zeros, n / 100);
    /* Not 0.5 and up like the first: this stream has now seen a spike that
     * size, and the score is calibrated on its own history too. */
    ck_assert_float_gt(after, 0.3f);
    ck_assert_float_gt(after, 3.0 * noise_sum / (double)n);
    ck_assert_float_eq(after_trig, 0.0f);
}
END_TEST

/* Known answers of the calibration: two-sided z 4.417 is a tail of 1e-5,
 * S = 5, score 0.5; ten such scores a second is a chance of 1e-4 a second. */
START_TEST(surprise_known_answers)
{
    ck_assert_float_eq(detect_surprise(0.0f, 2, 1.0f), 0.0f);
    ck_assert_float_eq(detect_surprise(NAN, 2, 1.0f), 0.0f);
    ck_assert_float_eq_tol(detect_surprise(4.4172f, 2, 1.0f), 0.5f, 0.002f);
    ck_assert_float_eq_tol(detect_surprise(4.4172f, 2, 10.0f), 4.0f / 9.0f, 0.002f);
    ck_assert_float_eq_tol(detect_surprise(4.2649f, 1, 1.0f), 0.5f, 0.002f);
    ck_assert_float_gt(detect_surprise(0.5f, 2, 1.0f), 0.0f);
    ck_assert_float_gt(detect_surprise(40.0f, 2, 1.0f), detect_surprise(20.0f, 2, 1.0f));
    ck_assert_float_lt(detect_surprise(1e6f, 2, 1.0f), 1.0f);
}
END_TEST

START_TEST(profiles_by_rate)
{
    struct detect_config c, p;

    detect_config_defaults(&c);
    p = c;
    detect_config_resolve(&p, 1.0);
    ck_assert_uint_eq(p.window, 64);
    ck_assert_float_eq(p.hold_off_s, 300.0f);
    ck_assert_uint_eq(p.max_per_hour, 6);
    p = c;
    detect_config_resolve(&p, 10000.0);
    ck_assert_uint_eq(p.window, 256);
    ck_assert_float_eq(p.hold_off_s, 10.0f);
    ck_assert_uint_eq(p.max_per_hour, 30);
    /* A key set by the user is kept; profile= forces the other profile. */
    ck_assert_int_eq(detect_opts_set(&c, "window", "64"), 0);
    ck_assert_int_eq(detect_opts_set(&c, "profile", "vibration"), 0);
    p = c;
    detect_config_resolve(&p, 1.0);
    ck_assert_uint_eq(p.window, 64);
    ck_assert_float_eq(p.hold_off_s, 10.0f);
    ck_assert_int_eq(detect_opts_set(&c, "window", "auto"), 0);
    ck_assert_uint_eq(c.window, 0);
    ck_assert_int_eq(detect_opts_set(&c, "profile", "fast"), -2);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "level,multi"), 0);
    ck_assert_uint_eq(c.enable, DETECT_LEVEL | DETECT_MULTI);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "auto"), 0);
    p = c;
    p.profile = DETECT_PROFILE_AUTO;
    detect_config_resolve(&p, 1.0);
    ck_assert_uint_eq(p.enable, DETECT_LEVEL | DETECT_MULTI | DETECT_CONTEXT | DETECT_RANGE);
    p = c;
    p.profile = DETECT_PROFILE_AUTO;
    detect_config_resolve(&p, 5000.0);
    ck_assert_uint_eq(p.enable, DETECT_LEVEL | DETECT_FEATURE | DETECT_MULTI);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "range,level"), 0);
    ck_assert_uint_eq(c.enable, DETECT_LEVEL | DETECT_RANGE);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "sequence"), 0);
    ck_assert_uint_eq(c.enable, DETECT_SEQUENCE);
    ck_assert_int_eq(detect_opts_set(&c, "detectors", "sequences"), -2);
}
END_TEST

Suite *detect_warmup_suite(void);

Suite *detect_warmup_suite(void)
{
    Suite *s = suite_create("detect_warmup");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, clean_process_1hz_silent);
    tcase_add_test(tc, clean_stream_khz_silent);
    tcase_add_test(tc, piecewise_linear_1hz_silent);
    tcase_add_test(tc, feature_warmup_by_evaluations);
    tcase_add_test(tc, score_continuous_never_gated);
    tcase_add_test(tc, surprise_known_answers);
    tcase_add_test(tc, profiles_by_rate);
    suite_add_tcase(s, tc);
    return s;
}
