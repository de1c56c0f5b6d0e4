/* check_detect_ctx.c - contextual novelty (a pattern broken inside the usual
 * range scores; its routine does not), the trigger's home (a plant back at
 * the level it had before an event is no new event) and the significance of
 * the channel a crossing names. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/core/detect_ctx.h"
#include "agent/core/detect_range.h"
#include "agent/core/detect_seq.h"
#include "testnoise.h"

static unsigned char arena[1 << 18];
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static double uniform(void)
{
    return testnoise_uniform(&rng);
}

/* A saw-tooth of period 8 through every symbol: after a few cycles each
 * symbol is certain given the three before it; one sample out of order (a
 * value the stream takes every cycle, so no level detector sees it) is not. */
START_TEST(ctx_pattern_break)
{
    static const float saw[8] = { -1.5f, -0.9f, -0.5f, -0.1f, 0.1f, 0.5f, 0.9f, 1.5f };
    struct detect_ctx cx;
    float p, worst_routine = 1.0f;
    int i;

    detect_ctx_init(&cx);
    for (i = 0; i < 800; i++) {
        p = detect_ctx_step(&cx, saw[i % 8], 0.0f, 1e-6f, 0.001f);
        if (i >= 400 && p < worst_routine)
            worst_routine = p;
    }
    ck_assert_float_ge(worst_routine, 0.9f);
    p = detect_ctx_step(&cx, saw[4], 0.0f, 1e-6f, 0.001f);           /* 800 % 8 = 0: expected saw[0] */
    ck_assert_float_le(p, 0.01f);
    /* bounded memory: counts saturate and halve, the routine stays certain */
    for (i = 801; i < 20000; i++)
        p = detect_ctx_step(&cx, saw[i % 8], 0.0f, 1e-6f, 0.001f);
    ck_assert_float_ge(p, 0.9f);
}
END_TEST

/* The same through the exported score at 1 Hz (process profile): a sine of
 * period 16 with noise that sticks at its mean for 16 samples (a stuck
 * sensor: every value in range, no step, less spread).  Without the range
 * detector: a plain record of the noise at a crest scores about as much
 * (0.38 after 2000 frames, the chance of a record), and what is under test
 * here is what the context adds over the level detector. */
START_TEST(ctx_exported_score)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    float x, before = 0.0f, at = 0.0f;
    int i;

    detect_config_defaults(&c);
    c.enable = DETECT_LEVEL | DETECT_MULTI | DETECT_CONTEXT;
    d = detect_init(&c, 1, 1.0, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < 4000; i++) {
        double v = (i >= 3000 && i < 3016) ? 0.0 : sin(2.0 * M_PI * i / 16.0);

        x = (float)(10.0 + v + 0.05 * (uniform() - 0.5));
        detect_step(d, &x, (int64_t)i * 1000000, &r);
        if (i >= 2000 && i < 3000 && r.score > before)
            before = r.score;
        if (i >= 3000 && i < 3020 && r.score > at)
            at = r.score;
    }
    ck_assert_float_gt(at, before + 0.05f);
}
END_TEST

/* Process profile, 8 channels at 1 Hz: a step away (an event) triggers; the
 * step back to the level before it does not; a later step to a level never
 * seen does. */
START_TEST(home_return_is_no_event)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    float x[8];
    long i, at_away = 0, at_back = 0, at_new = 0;
    unsigned k;

    detect_config_defaults(&c);
    d = detect_init(&c, 8, 1.0, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < 9000; i++) {
        float lvl = (i >= 2000 && i < 4000) ? 3.0f : (i >= 6000 ? -3.0f : 0.0f);

        for (k = 0; k < 8; k++)
            x[k] = (float)(10.0 * (k + 1) + (k == 2 ? lvl : 0.0f) + 0.2 * (uniform() - 0.5));
        detect_step(d, x, (int64_t)i * 1000000, &r);
        if (!r.triggered)
            continue;
        if (i >= 2000 && i < 2100)
            at_away++;
        else if (i >= 4000 && i < 4600)
            at_back++;
        else if (i >= 6000 && i < 6100)
            at_new++;
    }
    ck_assert_int_eq(at_away, 1);
    ck_assert_int_eq(at_back, 0);
    ck_assert_int_eq(at_new, 1);
}
END_TEST

/* A crossing is judged by the channel it names: channel 0's 4.6-sigma blip
 * (trigger score above the threshold, not significant on its own with two
 * channels at 1 Hz) comes one frame after channel 1 returned home from a
 * 480-sigma excursion, which is no news to the trigger but still the frame's
 * largest z.  Judged by that z (the frame's largest, any channel's), the
 * blip fired; a 12-sigma blip later does fire. */
START_TEST(significance_of_named_channel)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    float x[2];
    long i, at_away = 0, at_blip = 0, at_big = 0;

    detect_config_defaults(&c);
    d = detect_init(&c, 2, 1.0, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < 7000; i++) {
        /* noise: uniform, 0.2 wide; its scale (1.2533 x mean abs deviation) is 0.0627 */
        x[0] = (float)(10.0 + 0.2 * (uniform() - 0.5));
        x[1] = (float)(20.0 + ((i >= 2000 && i < 4000) ? 30.0 : 0.0) + 0.2 * (uniform() - 0.5));
        if (i == 4001)
            x[0] = 10.0f + 4.6f * 0.0627f;
        if (i == 6000)
            x[0] = 10.0f + 12.0f * 0.0627f;
        detect_step(d, x, (int64_t)i * 1000000, &r);
        if (i == 4001)
            ck_assert_float_ge(r.trigger_score, c.threshold);   /* it did cross */
        if (!r.triggered)
            continue;
        if (i >= 2000 && i < 2100)
            at_away++;
        else if (i >= 4000 && i < 4600)
            at_blip++;
        else if (i >= 6000 && i < 6010)
            at_big++;
    }
    ck_assert_int_eq(at_away, 1);
    ck_assert_int_eq(at_blip, 0);
    ck_assert_int_eq(at_big, 1);
}
END_TEST

/* The context and range detectors' room is held only where they run
 * (process rates); the sequence detector's only when asked for. */
START_TEST(arena_by_rate)
{
    struct detect_config c;
    size_t fast, slow;

    detect_config_defaults(&c);
    fast = detect_arena_size_at(&c, 8, 10000.0);
    slow = detect_arena_size_at(&c, 8, 1.0);
    ck_assert_uint_eq(slow - fast, 8 * sizeof(struct detect_ctx) +
                      8 * sizeof(struct detect_range) + 8 * sizeof(float));
    ck_assert_uint_eq(detect_arena_size(&c, 8), slow);
    ck_assert_ptr_nonnull(detect_init(&c, 8, 10000.0, arena, fast));
    ck_assert_ptr_null(detect_init(&c, 8, 1.0, arena, fast));
    ck_assert_ptr_nonnull(detect_init(&c, 8, 1.0, arena, slow));
    ck_assert_uint_eq(detect_arena_size_at(&c, 8, 0.0), 0);
    c.enable |= DETECT_SEQUENCE;
    ck_assert_uint_eq(detect_arena_size_at(&c, 8, 1.0) - slow, 8 * sizeof(struct detect_seq));
    ck_assert_uint_eq(detect_arena_size_at(&c, 8, 10000.0), fast);
}
END_TEST

Suite *detect_ctx_suite(void);

Suite *detect_ctx_suite(void)
{
    Suite *s = suite_create("detect_ctx");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ctx_pattern_break);
    tcase_add_test(tc, ctx_exported_score);
    tcase_add_test(tc, home_return_is_no_event);
    tcase_add_test(tc, significance_of_named_channel);
    tcase_add_test(tc, arena_by_rate);
    suite_add_tcase(s, tc);
    return s;
}
