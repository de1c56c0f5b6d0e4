/* check_detect_seq.c - sequence novelty (n-grams never seen): a repeating
 * pattern becomes familiar and stays silent, a pattern inside the usual
 * range that the stream never made scores, the state is what the docs say,
 * and streams without events stay quiet at 1 Hz and at kHz rates. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/core/detect_seq.h"
#include "testnoise.h"

static unsigned char arena[1 << 18];
static uint64_t rng = 0xD1B54A32D192ED03ull;

/* A cycle of 24 values over the whole range, in an order no simple level
 * or step statistic finds remarkable. */
static const float cycle[24] = { 0.0f, 3.0f, 5.0f, 7.9f, 6.0f, 2.0f, 1.0f, 4.0f,
                                 6.5f, 7.5f, 3.5f, 0.5f, 2.5f, 5.5f, 7.0f, 4.5f,
                                 1.5f, 0.2f, 3.2f, 6.2f, 7.7f, 5.2f, 2.2f, 1.2f };

START_TEST(seq_repeating_pattern_stays_silent)
{
    struct detect_seq s;
    float p, worst = 1.0f;
    long i;

    detect_seq_init(&s);
    for (i = 0; i < 24 * 10; i++)
        detect_seq_step(&s, cycle[i % 24], 1e-6f);
    /* Familiar from the second cycle on: no n-gram is new, p is exactly 1,
     * also across the halvings of the counts (every 255 cycles). */
    for (; i < 24 * 3000; i++) {
        p = detect_seq_step(&s, cycle[i % 24], 1e-6f);
        if (p < worst)
            worst = p;
    }
    ck_assert_float_eq(worst, 1.0f);
}
END_TEST

START_TEST(seq_novel_pattern_scores)
{
    struct detect_seq s;
    float p, least = 1.0f;
    long i;

    detect_seq_init(&s);
    for (i = 0; i < 24 * 200; i++)
        detect_seq_step(&s, cycle[i % 24], 1e-6f);
    /* The same values, the cycle run backwards for 12 samples: every value
     * is inside the range and the stream has shown it, the order is new. */
    for (i = 0; i < 12; i++) {
        p = detect_seq_step(&s, cycle[23 - i], 1e-6f);
        if (p < least)
            least = p;
    }
    ck_assert_float_lt(least, 1e-3f);
    /* And back to the cycle: familiar again within a few cycles. */
    for (i = 0; i < 24 * 5; i++)
        detect_seq_step(&s, cycle[i % 24], 1e-6f);
    for (i = 0; i < 24 * 5; i++)
        ck_assert_float_eq(detect_seq_step(&s, cycle[i % 24], 1e-6f), 1.0f);
}
END_TEST

/* The state is a fixed struct: the n-gram counts plus a few words
 * (docs/DETECTORS.md gives the bytes per channel). */
START_TEST(seq_state_size)
{
    struct detect_config c;
    size_t with, without;

    ck_assert_uint_eq(sizeof(struct detect_seq), DETECT_SEQ_SLOTS + 48u + 6u * DETECT_SEQ_ORDERS);
    ck_assert_uint_le(sizeof(struct detect_seq), 1620);
    detect_config_defaults(&c);
    c.enable = DETECT_LEVEL | DETECT_SEQUENCE;
    with = detect_arena_size_at(&c, 8, 1.0);
    c.enable = DETECT_LEVEL;
    without = detect_arena_size_at(&c, 8, 1.0);
    ck_assert_uint_eq(with - without, 8 * sizeof(struct detect_seq));
    ck_assert_str_eq(detect_name(DETECT_SEQUENCE), "sequence");
}
END_TEST

/* Through the exported score at 1 Hz, the sequence detector alone: a noisy
 * cycle of 24 samples whose order breaks for one cycle (values in range,
 * no level or spread change) scores well above anything the routine
 * scored after its first hour. */
START_TEST(seq_exported_score)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    float x, before = 0.0f, at = 0.0f;
    long i;

    detect_config_defaults(&c);
    c.enable = DETECT_SEQUENCE;
    d = detect_init(&c, 1, 1.0, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < 24 * 400; i++) {
        long k = i % 24;
        int broken = i >= 24 * 300 && i < 24 * 301;

        x = (broken ? cycle[23 - k] : cycle[k]) + 0.05f * (float)testnoise_gauss(&rng);
        detect_step(d, &x, (int64_t)i * 1000000, &r);
        if (i >= 3600 && i < 24 * 300 && r.score > before)
            before = r.score;
        if (broken && r.score > at)
            at = r.score;
    }
    ck_assert_float_gt(at, before + 0.1f);
    ck_assert_float_ge(at, 0.5f);
}
END_TEST

/* Anomaly-free streams: the sequence detector alone, its exported score
 * over six hours of 1 Hz process noise (AR(1) plus measurement noise) and
 * over a minute of 1 kHz noise.  A young table makes runs of new n-grams on
 * plain noise: 0.5 (a chance of 1e-5 a second) is passed at most 3 times,
 * all in the first 300 samples (docs/DETECTORS.md, what it does not see),
 * and the default detectors with it never trigger. */
static void clean_run(double rate, long frames, int seq_only, long *loud, long *trig,
                      long *last_loud)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    double ar = 0.0;
    float x;
    long i;

    detect_config_defaults(&c);
    /* Alone, or added to the rate's profile's detectors. */
    if (seq_only)
        c.enable = DETECT_SEQUENCE;
    else if (rate < DETECT_PROCESS_MAX_HZ)
        c.enable = DETECT_LEVEL | DETECT_MULTI | DETECT_CONTEXT | DETECT_RANGE | DETECT_SEQUENCE;
    else
        c.enable = DETECT_LEVEL | DETECT_FEATURE | DETECT_MULTI | DETECT_SEQUENCE;
    d = detect_init(&c, 1, rate, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    *loud = *trig = 0;
    *last_loud = -1;
    for (i = 0; i < frames; i++) {
        ar = 0.9 * ar + 0.044 * testnoise_gauss(&rng);
        x = (float)(10.0 + ar + 0.05 * testnoise_gauss(&rng));
        detect_step(d, &x, (int64_t)((double)i * 1e6 / rate), &r);
        if (r.score >= 0.5f) {
            (*loud)++;
            *last_loud = i;
        }
        *trig += r.triggered;
    }
}

START_TEST(seq_clean_streams_quiet)
{
    long loud, trig, last;

    clean_run(1.0, 6 * 3600, 1, &loud, &trig, &last);
    ck_assert_int_le(loud, 3);
    ck_assert_int_lt(last, 300);
    ck_assert_int_eq(trig, 0);
    clean_run(1.0, 6 * 3600, 0, &loud, &trig, &last);
    ck_assert_int_eq(trig, 0);
    clean_run(1000.0, 60 * 1000, 0, &loud, &trig, &last);
    ck_assert_int_eq(trig, 0);
    clean_run(1000.0, 60 * 1000, 1, &loud, &trig, &last);
    ck_assert_int_le(loud, 3);
    ck_assert_int_lt(last, 300);
    ck_assert_int_eq(trig, 0);
}
END_TEST

Suite *detect_seq_suite(void);

Suite *detect_seq_suite(void)
{
    Suite *s = suite_create("detect_seq");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, seq_repeating_pattern_stays_silent);
    tcase_add_test(tc, seq_novel_pattern_scores);
    tcase_add_test(tc, seq_state_size);
    tcase_add_test(tc, seq_exported_score);
    tcase_add_test(tc, seq_clean_streams_quiet);
    suite_add_tcase(s, tc);
    return s;
}
