/* check_sim_detect.c - the default detectors on the simulator's equipment.
 *
 * The simulator is what devices look like (2 kHz vibration or current plus a
 * slow temperature), so the shipped defaults must catch every injected fault
 * there with few false triggers, not only score well on NAB's 5-minute data.
 * Each test drives source_sim (speed 0, a fixed seed, 310 s) through
 * detect_init/detect_step with detect_config_defaults, the path the pipeline
 * uses, and checks every fault that starts in the first 300 s against the
 * triggers: caught when one falls in [start - 1 s, start + 10 s]; a trigger
 * outside every fault's [start - 1 s, max(end, start + 10 s)] is false. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/core/detect.h"
#include "agent/source/sim.h"

Suite *sim_detect_suite(void);

#define START_US 1700000000000000LL
#define DURATION_S 310.0
#define COUNTED_S 300.0         /* faults starting later lack a full catch window */
#define BEFORE_US 1000000LL
#define AFTER_US 10000000LL
#define MAX_TRIG 512
#define MAX_FAULTS 64
#define BLOCK 512

struct outcome {
    size_t faults, caught, false_trig, triggers;
};

static void run_equipment(const char *eq, uint64_t seed, struct outcome *o)
{
    struct sim_config sc = { .equipment = eq, .seed = seed, .fault_every_s = 30,
                             .speed = 0, .duration_s = DURATION_S, .start_us = START_US };
    struct detect_config cfg;
    struct source *src = NULL;
    struct detect *d;
    struct sim_fault f[MAX_FAULTS];
    static float buf[BLOCK * 8];
    static int64_t ts[BLOCK];
    static int64_t trig[MAX_TRIG];
    size_t nt = 0, nf, n, i, k, arena_len;
    void *arena;
    int rc;

    ck_assert_int_eq(source_sim_open(&sc, &src), 0);
    ck_assert_uint_le(src->channels, 8);
    detect_config_defaults(&cfg);
    arena_len = detect_arena_size(&cfg, src->channels);
    ck_assert_uint_gt(arena_len, 0);
    arena = malloc(arena_len);
    ck_assert_ptr_nonnull(arena);
    d = detect_init(&cfg, src->channels, src->rate, arena, arena_len);
    ck_assert_ptr_nonnull(d);

    while ((rc = src->next(src, buf, ts, BLOCK, &n)) == 0) {
        for (i = 0; i < n; i++) {
            struct detect_result r;

            detect_step(d, buf + i * src->channels, ts[i], &r);
            if (r.triggered) {
                ck_assert_uint_lt(nt, MAX_TRIG);
                trig[nt++] = ts[i];
            }
        }
    }
    ck_assert_int_eq(rc, SOURCE_EOF);
    nf = sim_faults(src, f, MAX_FAULTS);

    o->faults = o->caught = o->false_trig = 0;
    o->triggers = nt;
    for (k = 0; k < nf; k++) {
        int hit = 0;

        if (f[k].start_us - START_US >= (int64_t)(COUNTED_S * 1e6))
            continue;
        o->faults++;
        for (i = 0; i < nt && !hit; i++)
            hit = trig[i] >= f[k].start_us - BEFORE_US && trig[i] <= f[k].start_us + AFTER_US;
        if (hit)
            o->caught++;
        else
            fprintf(stderr, "sim_detect: %s seed %llu: %s at %.1f s not caught\n", eq,
                    (unsigned long long)seed, f[k].name,
                    (double)(f[k].start_us - START_US) / 1e6);
    }
    for (i = 0; i < nt; i++) {
        int inside = 0;

        for (k = 0; k < nf && !inside; k++) {
            int64_t hi = f[k].start_us + AFTER_US;

            if (f[k].end_us > hi)
                hi = f[k].end_us;
            inside = trig[i] >= f[k].start_us - BEFORE_US && trig[i] <= hi;
        }
        if (!inside) {
            o->false_trig++;
            fprintf(stderr, "sim_detect: %s seed %llu: false trigger at %.2f s\n", eq,
                    (unsigned long long)seed, (double)(trig[i] - START_US) / 1e6);
        }
    }
    free(arena);
    src->close(src);
}

/* Every fault caught, at most one false trigger in the 5 minutes, and enough
 * faults that the check means something. */
static void check_equipment(const char *eq)
{
    struct outcome o;

    run_equipment(eq, 3, &o);
    ck_assert_uint_ge(o.faults, 5);
    ck_assert_msg(o.caught == o.faults, "%s: caught %zu of %zu faults", eq, o.caught, o.faults);
    ck_assert_msg(o.false_trig <= 1, "%s: %zu false triggers of %zu", eq, o.false_trig,
                  o.triggers);
}

START_TEST(test_bearing)
{
    check_equipment("bearing");
}
END_TEST

START_TEST(test_motor)
{
    check_equipment("motor");
}
END_TEST

START_TEST(test_pump)
{
    check_equipment("pump");
}
END_TEST

Suite *sim_detect_suite(void)
{
    Suite *s = suite_create("sim_detect");
    TCase *tc = tcase_create("defaults");

    /* 620,000 frames per equipment under the sanitizers. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bearing);
    tcase_add_test(tc, test_motor);
    tcase_add_test(tc, test_pump);
    suite_add_tcase(s, tc);
    return s;
}
