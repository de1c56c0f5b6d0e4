/* check_detect_multi.c - the multivariate detector: a broken relation
 * between channels that each stay in their own range. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/core/detect_multi.h"
#include "testnoise.h"

#define RATE 1.0
#define CH 4

static unsigned char arena[1 << 20];
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static double gauss(void)
{
    return testnoise_gauss(&rng);
}

/* Flow, current and pressure follow one load factor u (a pump).  From frame
 * `broken` on, channel 2 moves against it from where it was (a mirror of
 * the load about its value at the break): no step, the same spread, every
 * channel in its own range; only the relation breaks.  related = 0:
 * independent channels. */
static void pump_frame(float *x, long i, long broken, int related, double *u)
{
    static double own, at_break;
    unsigned c;

    *u = 0.99 * *u + 0.14 * gauss();
    if (i <= broken)
        own = at_break = *u;
    else
        own = 2.0 * at_break - *u;
    for (c = 0; c < CH; c++) {
        double load = related ? (c == 2 ? own : *u) : gauss();

        x[c] = (float)(5.0 + c + load + 0.05 * gauss());
    }
}

/* Triggers in [from, to); *best: the highest exported score there. */
static long run_triggers_best(uint32_t enable, long from, long to, long broken, int related,
                              float *best)
{
    struct detect_config c;
    struct detect *d;
    struct detect_result r;
    double u = 0.0;
    float x[CH];
    long i, trig = 0;

    detect_config_defaults(&c);
    c.enable = enable;
    d = detect_init(&c, CH, RATE, arena, sizeof(arena));
    ck_assert_ptr_nonnull(d);
    for (i = 0; i < to; i++) {
        pump_frame(x, i, broken, related, &u);
        detect_step(d, x, (int64_t)i * 1000000, &r);
        if (i >= from) {
            trig += r.triggered;
            if (r.score > *best)
                *best = r.score;
            if (r.triggered && enable == DETECT_MULTI)
                ck_assert_str_eq(detect_name(r.detector), "multi");
        }
    }
    return trig;
}

static long run_triggers(uint32_t enable, long from, long to, long broken, int related)
{
    float best = 0.0f;

    return run_triggers_best(enable, from, to, broken, related, &best);
}

/* The relation breaks at 3000 s: within ten minutes the multivariate
 * detector triggers and its calibrated score passes 0.5 (a chance of 1e-5 a
 * second), well above anything in the 40 minutes before, and the level
 * detector on the same channels does not trigger; with no break nothing
 * triggers in six hours. */
START_TEST(broken_relation_triggers)
{
    float before = 0.0f, after = 0.0f;

    ck_assert_int_ge(run_triggers_best(DETECT_MULTI, 3000, 3600, 3000, 1, &after), 1);
    ck_assert_int_eq(run_triggers_best(DETECT_MULTI, 600, 3000, 3000, 1, &before), 0);
    ck_assert_float_ge(after, 0.5f);
    ck_assert_float_lt(before, after - 0.1f);
    ck_assert_int_eq(run_triggers(DETECT_LEVEL, 3000, 3600, 3000, 1), 0);
    ck_assert_int_eq(run_triggers(DETECT_LEVEL | DETECT_MULTI, 0, 6 * 3600,
                                  1L << 30, 1), 0);
}
END_TEST

/* Independent channels: the detector keeps its state but never scores. */
START_TEST(uncorrelated_never_scores)
{
    static unsigned char mem[4096] __attribute__((aligned(8)));
    struct detect_multi *m = detect_multi_init(mem, sizeof(mem), CH, 0.001f);
    double u = 0.0;
    float x[CH];
    long i;

    ck_assert_ptr_nonnull(m);
    for (i = 0; i < 5000; i++) {
        unsigned ch;

        pump_frame(x, i, 1L << 30, 0, &u);
        if (i == 4000)
            x[1] += 30.0f;      /* huge, but no relation to break */
        ck_assert_float_eq(detect_multi_step(m, x, NULL, &ch), 0.0f);
    }
    ck_assert_int_eq(detect_multi_correlated(m), 0);
}
END_TEST

/* Warm-up: nothing during its first detect_multi_warm_frames frames, even a
 * frame far outside the relation. */
START_TEST(warmup_and_channel)
{
    static unsigned char mem[4096] __attribute__((aligned(8)));
    struct detect_multi *m = detect_multi_init(mem, sizeof(mem), CH, 0.001f);
    uint32_t warm = detect_multi_warm_frames(CH, 0.001f);
    double u = 0.0;
    float x[CH], z = 0.0f;
    unsigned ch = 99;
    long i;

    for (i = 0; i < 2000; i++) {
        pump_frame(x, i, 1L << 30, 1, &u);
        if (i == (long)warm - 5 || i == 1999)
            x[3] -= 3.0f;       /* channel 3 against the others */
        z = detect_multi_step(m, x, NULL, &ch);
        if (i < (long)warm)
            ck_assert_float_eq(z, 0.0f);
    }
    ck_assert_float_gt(z, 4.0f);
    ck_assert_uint_eq(ch, 3);
}
END_TEST

/* The named channel is the one whose relation broke, whichever it is: each
 * channel is judged against all the others (its leave-one-out residual).
 * The Cholesky-ordered residual it used before regressed channel 0 on
 * nothing, so a break on channel 0 showed in channel 1's residual and was
 * named 1. */
START_TEST(names_the_broken_channel)
{
    static unsigned char mem[4096] __attribute__((aligned(8)));
    unsigned broken;

    for (broken = 0; broken < CH; broken++) {
        struct detect_multi *m = detect_multi_init(mem, sizeof(mem), CH, 0.001f);
        double u = 0.0, own = 0.0, at_break = 0.0;
        long i, named[CH] = { 0 }, loud = 0;

        for (i = 0; i < 3600; i++) {
            float x[CH], z;
            unsigned c, ch = 99;

            u = 0.99 * u + 0.14 * gauss();
            if (i <= 3000)
                own = at_break = u;
            else
                own = 2.0 * at_break - u;
            for (c = 0; c < CH; c++)
                x[c] = (float)(5.0 + c + (c == broken ? own : u) + 0.05 * gauss());
            z = detect_multi_step(m, x, NULL, &ch);
            if (i > 3000 && z > 3.0f) {
                ck_assert_uint_lt(ch, CH);
                named[ch]++;
                loud++;
            }
        }
        ck_assert_int_ge(loud, 10);
        ck_assert_int_eq(named[broken], loud);
    }
}
END_TEST

/* What the residuals tell apart: a move of the common load (an operator's
 * new set-point moving flow, current and pressure together, 60 noise
 * standard deviations) keeps every channel where the others predict it
 * (|r| within the 3 conditional standard deviations that plain noise stays
 * inside here), while the same move of one channel alone breaks its relation
 * (its |r| the largest, well beyond).  T-squared rises in both. */
START_TEST(coordinated_move_keeps_residuals)
{
    static unsigned char mem[4096] __attribute__((aligned(8)));
    int alone;

    for (alone = 0; alone < 2; alone++) {
        struct detect_multi *m = detect_multi_init(mem, sizeof(mem), CH, 0.001f);
        double u = 0.0;
        float top[CH] = { 0 }, noise_top = 0.0f, t2_noise = 0.0f, t2_move = 0.0f;
        long i, seen_noise = 0, seen_move = 0;
        unsigned c, ch;

        for (i = 0; i < 3010; i++) {
            float x[CH];
            double step = i >= 3000 ? 3.0 : 0.0;

            u = 0.99 * u + 0.14 * gauss();
            for (c = 0; c < CH; c++)
                x[c] = (float)(5.0 + c + u + 0.05 * gauss() + (!alone || c == 2 ? step : 0.0));
            detect_multi_step(m, x, NULL, &ch);
            /* The residuals exist on the frames that score (NaN otherwise). */
            if (isfinite(detect_multi_resid(m, 0))) {
                if (i >= 3000)
                    seen_move++;
                else if (i >= 1000)
                    seen_noise++;
            }
            for (c = 0; c < CH; c++) {
                float r = fabsf(detect_multi_resid(m, c));

                if (i >= 3000 && r > top[c])
                    top[c] = r;
                if (i >= 1000 && i < 3000 && r > noise_top)
                    noise_top = r;
            }
            if (i >= 1000 && i < 3000 && detect_multi_t2(m) > t2_noise)
                t2_noise = detect_multi_t2(m);
            if (i >= 3000 && detect_multi_t2(m) > t2_move)
                t2_move = detect_multi_t2(m);
        }
        ck_assert_int_ge(seen_noise, 500);
        ck_assert_int_ge(seen_move, 5);
        ck_assert_float_lt(noise_top, 3.0f);
        ck_assert_float_gt(t2_move, t2_noise);
        if (!alone) {
            for (c = 0; c < CH; c++)
                ck_assert_float_lt(top[c], 3.0f);
        } else {
            ck_assert_float_gt(top[2], 10.0f);
            for (c = 0; c < CH; c++)
                if (c != 2)
                    ck_assert_float_lt(top[c], top[2]);
        }
    }
}
END_TEST

/* State budget: 4 (N^2 + 7N) bytes plus the struct, under 4 KB for 8
 * channels; the arena grows by exactly that when the detector is on. */
START_TEST(state_budget)
{
    struct detect_config c;
    size_t with, without;

    ck_assert_uint_le(detect_multi_size(8), 4096);
    ck_assert_uint_ge(detect_multi_size(8), 4 * (64 + 56));
    ck_assert_ptr_null(detect_multi_init(arena + 4, 4096, 8, 0.001f));   /* misaligned */
    ck_assert_ptr_null(detect_multi_init(arena, 16, 8, 0.001f));
    detect_config_defaults(&c);
    with = detect_arena_size(&c, 8);
    c.enable &= ~DETECT_MULTI;
    without = detect_arena_size(&c, 8);
    ck_assert_uint_le(with - without, detect_multi_size(8) + 8);
    /* One channel: nothing to relate, no state. */
    c.enable |= DETECT_MULTI;
    with = detect_arena_size(&c, 1);
    c.enable &= ~DETECT_MULTI;
    ck_assert_uint_eq(with, detect_arena_size(&c, 1));
}
END_TEST

Suite *detect_multi_suite(void);

Suite *detect_multi_suite(void)
{
    Suite *s = suite_create("detect_multi");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, broken_relation_triggers);
    tcase_add_test(tc, uncorrelated_never_scores);
    tcase_add_test(tc, warmup_and_channel);
    tcase_add_test(tc, state_budget);
    tcase_add_test(tc, names_the_broken_channel);
    tcase_add_test(tc, coordinated_move_keeps_residuals);
    suite_add_tcase(s, tc);
    return s;
}
