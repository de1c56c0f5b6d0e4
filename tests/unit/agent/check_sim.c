/* check_sim.c - simulator: same seed same samples whatever the block size,
 * faults where the log says they are and visible in the signal. */
#include <check.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/source/sim.h"

Suite *sim_suite(void);

#define RATE 2000.0
#define START_US 1700000000000000LL

static struct source *open_sim(const char *eq, uint64_t seed, double dur, FILE *log)
{
    struct sim_config c = { .equipment = eq, .rate = RATE, .seed = seed,
                            .fault_every_s = 10, .speed = 0, .duration_s = dur,
                            .start_us = START_US, .fault_log = log };
    struct source *s = NULL;

    ck_assert_int_eq(source_sim_open(&c, &s), 0);
    return s;
}

/* Reads the whole source into one interleaved buffer; returns frames. */
static size_t read_all(struct source *s, size_t block, float *buf, int64_t *ts, size_t cap)
{
    size_t total = 0, n;
    int rc;

    while (total < cap) {
        size_t want = cap - total < block ? cap - total : block;
        rc = s->next(s, buf + total * s->channels, ts + total, want, &n);
        if (rc == SOURCE_EOF)
            break;
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_ge(n, 1);
        total += n;
    }
    return total;
}

START_TEST(test_deterministic)
{
    static const char *eqs[] = { "bearing", "motor", "pump" };
    size_t frames = (size_t)(30 * RATE);

    for (int e = 0; e < 3; e++) {
        struct source *a = open_sim(eqs[e], 42, 30, NULL);
        struct source *b = open_sim(eqs[e], 42, 30, NULL);
        struct source *c = open_sim(eqs[e], 43, 30, NULL);
        size_t nf = frames * a->channels;
        float *fa = malloc(nf * sizeof(float)), *fb = malloc(nf * sizeof(float));
        float *fc = malloc(nf * sizeof(float));
        int64_t *ta = malloc(frames * 8), *tb = malloc(frames * 8), *tc = malloc(frames * 8);

        ck_assert_uint_eq(read_all(a, 256, fa, ta, frames), frames);
        ck_assert_uint_eq(read_all(b, 77, fb, tb, frames), frames);   /* other blocks */
        ck_assert_uint_eq(read_all(c, 256, fc, tc, frames), frames);
        ck_assert_int_eq(memcmp(fa, fb, nf * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(ta, tb, frames * 8), 0);
        ck_assert_int_ne(memcmp(fa, fc, nf * sizeof(float)), 0);
        ck_assert_int_eq(ta[0], START_US);
        ck_assert_int_eq(ta[2000], START_US + 1000000);
        ck_assert_str_eq(a->chan[a->channels - 1].name, "temp");
        ck_assert_str_eq(a->chan[a->channels - 1].unit, "degC");
        /* duration reached: end of input */
        size_t n;
        ck_assert_int_eq(a->next(a, fa, ta, 10, &n), SOURCE_EOF);
        a->close(a);
        b->close(b);
        c->close(c);
        free(fa); free(fb); free(fc); free(ta); free(tb); free(tc);
    }
}
END_TEST

static double rms(const float *buf, unsigned ch, unsigned c, size_t from, size_t to)
{
    double s = 0, m = 0;

    for (size_t i = from; i < to; i++)
        m += buf[i * ch + c];
    m /= (double)(to - from);
    for (size_t i = from; i < to; i++) {
        double d = buf[i * ch + c] - m;
        s += d * d;
    }
    return sqrt(s / (double)(to - from));
}

START_TEST(test_faults_where_logged)
{
    size_t frames = (size_t)(120 * RATE);
    FILE *log = tmpfile();
    struct source *s = open_sim("bearing", 7, 120, log);
    unsigned ch = s->channels;
    float *buf = malloc(frames * ch * sizeof(float));
    int64_t *ts = malloc(frames * 8);
    struct sim_fault f[64];
    size_t nf, i = 0;
    char line[128];

    ck_assert_uint_eq(read_all(s, 500, buf, ts, frames), frames);
    nf = sim_faults(s, f, 64);
    ck_assert_uint_ge(nf, 3);            /* mean 10 s apart, plus 5 s quiet, over 120 s */
    rewind(log);
    while (fgets(line, sizeof(line), log) != NULL) {
        long long t;
        char kind[32];
        ck_assert_int_eq(sscanf(line, "%lld,%31s", &t, kind), 2);
        ck_assert_uint_lt(i, nf);
        ck_assert_int_eq(t, f[i].start_us);
        ck_assert_str_eq(kind, f[i].name);
        ck_assert(!strcmp(kind, "outer_race") || !strcmp(kind, "inner_race"));
        i++;
    }
    ck_assert_uint_eq(i, nf);
    for (i = 0; i < nf; i++) {
        size_t a = (size_t)f[i].start_frame, b = (size_t)f[i].end_frame;
        ck_assert_uint_ge(b - a, (size_t)(3 * RATE));
        ck_assert_uint_le(b - a, (size_t)(8 * RATE) + 1);
        ck_assert_int_eq(ts[a], f[i].start_us);
        if (b > frames)
            continue;
        /* Full severity in the last 40 %: vibration well above the second
         * before the fault, temperature up by degrees. */
        size_t late = a + (b - a) * 7 / 10;
        double before = rms(buf, ch, 0, a - (size_t)RATE, a);
        double during = rms(buf, ch, 0, late, b);
        ck_assert_msg(during > 3 * before, "fault %zu: rms %g vs %g", i, during, before);
        ck_assert_float_gt(buf[(b - 1) * ch + 3], buf[a * ch + 3] + 2.0f);
    }
    s->close(s);
    fclose(log);
    free(buf);
    free(ts);
}
END_TEST

START_TEST(test_bad_config)
{
    struct sim_config c = { .equipment = "turbine" };
    struct source *s = NULL;

    ck_assert_int_lt(source_sim_open(&c, &s), 0);
    c.equipment = "pump";
    c.speed = -1;
    ck_assert_int_lt(source_sim_open(&c, &s), 0);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_real_time_pacing)
{
    struct sim_config c = { .equipment = "motor", .rate = 1000, .seed = 1, .speed = 1,
                            .duration_s = 0.3 };
    struct source *s = NULL;
    float buf[4 * 1000];
    int64_t ts[1000];
    struct timespec t0, t1;
    size_t total = 0, n;

    ck_assert_int_eq(source_sim_open(&c, &s), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (s->next(s, buf, ts, 1000, &n) == 0)
        total += n;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_uint_eq(total, 300);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(el > 0.25 && el < 1.0, "0.3 s of samples took %g s", el);
    s->close(s);
}
END_TEST

Suite *sim_suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_faults_where_logged);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_real_time_pacing);
    suite_add_tcase(s, tc);
    return s;
}
