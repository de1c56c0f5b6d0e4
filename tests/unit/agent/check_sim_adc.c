/* check_sim_adc.c - the simulator as a 16-bit ADC: int16 codes with each
 * channel's scale, and bearing faults that show at the defect frequency the
 * geometry gives (the envelope spectrum, as a vibration analyst reads it). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/source/sim.h"

Suite *sim_adc_suite(void);

#define RATE 12000.0
#define SECONDS 40.0
#define FULL_SCALE 16.0

static float *read_sim(uint64_t seed, struct source **out, size_t *frames)
{
    struct sim_config c = { .equipment = "bearing", .rate = RATE, .seed = seed,
                            .fault_every_s = 6, .speed = 0, .duration_s = SECONDS,
                            .start_us = 1700000000000000LL, .adc_full_scale = FULL_SCALE };
    size_t cap = (size_t)(RATE * SECONDS), got = 0, n;
    struct source *s;
    float *buf;
    int64_t *ts = malloc(cap * sizeof *ts);

    ck_assert_int_eq(source_sim_open(&c, &s), 0);
    buf = malloc(cap * s->channels * sizeof *buf);
    while (got < cap && s->next(s, buf + got * s->channels, ts + got, cap - got, &n) == 0)
        got += n;
    free(ts);
    *out = s;
    *frames = got;
    return buf;
}

START_TEST(test_codes_and_scales)
{
    struct source *s;
    size_t frames;
    float *x = read_sim(3, &s, &frames);
    double sum2 = 0;

    ck_assert_uint_eq(s->wire_type, WIRE_I16);
    ck_assert_uint_eq(frames, (size_t)(RATE * SECONDS));
    for (unsigned c = 0; c < 3; c++) {
        ck_assert(s->chan[c].scale == FULL_SCALE / 32768);
        ck_assert_str_eq(s->chan[c].unit, "g");
    }
    ck_assert(s->chan[3].scale == 0.01);   /* temperature, degC */
    for (size_t i = 0; i < frames * s->channels; i++) {
        ck_assert_msg(x[i] == floorf(x[i]) && x[i] >= -32768 && x[i] <= 32767,
                      "sample %zu is not an int16 code: %g", i, (double)x[i]);
        if (i % s->channels == 0)
            sum2 += (double)x[i] * x[i];
    }
    /* noise and shaft tones of a few hundredths of a g: tens of codes rms */
    ck_assert_double_gt(sqrt(sum2 / frames) * FULL_SCALE / 32768, 0.02);
    ck_assert_double_lt(sqrt(sum2 / frames) * FULL_SCALE / 32768, 2.0);
    /* about 45 degC */
    ck_assert_double_gt(x[3] * 0.01, 35.0);
    ck_assert_double_lt(x[3] * 0.01, 55.0);
    s->close(s);
    free(x);
}
END_TEST

/* Envelope spectrum magnitude at f of the squared, mean-removed signal. */
static double envelope_at(const double *env, size_t n, double f)
{
    double re = 0, im = 0;

    for (size_t i = 0; i < n; i++) {
        double ph = 2.0 * M_PI * f * (double)i / RATE;
        re += env[i] * cos(ph);
        im += env[i] * sin(ph);
    }
    return sqrt(re * re + im * im) / (double)n;
}

/* Each fully developed fault of one run: its envelope spectrum peaks at the
 * defect frequency of a 6205 at 25 Hz (BPFO 89.6 Hz, BPFI 135.4 Hz, ball hits
 * at twice BSF, 117.8 Hz), well above the frequencies between.  Counts the
 * kinds checked in seen[outer, inner, ball]. */
static void check_faults(uint64_t seed, int seen[3])
{
    static const double bd_pd = 7.94 / 39.04, fr = 25.0;
    struct source *s;
    struct sim_fault f[16];
    size_t frames, nf;
    float *x = read_sim(seed, &s, &frames);

    nf = sim_faults(s, f, 16);
    for (size_t k = 0; k < nf; k++) {
        int kind = !strcmp(f[k].name, "outer_race") ? 0 : !strcmp(f[k].name, "inner_race") ? 1 : 2;
        double fdef = kind == 0 ? 4.5 * fr * (1 - bd_pd) : kind == 1 ? 4.5 * fr * (1 + bd_pd)
                                                                   : fr / bd_pd * (1 - bd_pd * bd_pd);
        /* the part at full severity (after 60 % of the fault), within the run */
        size_t a = f[k].start_frame + (size_t)(0.6 * (double)(f[k].end_frame - f[k].start_frame));
        size_t b = f[k].end_frame < frames ? (size_t)f[k].end_frame : frames;
        double mean = 0, peak, side;
        double *env;

        if (b <= a + (size_t)RATE)
            continue;   /* under a second of it in this run */
        env = malloc((b - a) * sizeof *env);
        for (size_t i = a; i < b; i++) {
            env[i - a] = (double)x[i * s->channels] * x[i * s->channels];
            mean += env[i - a];
        }
        mean /= (double)(b - a);
        for (size_t i = 0; i < b - a; i++)
            env[i] -= mean;
        peak = envelope_at(env, b - a, fdef);
        side = fmax(envelope_at(env, b - a, fdef * 0.77), envelope_at(env, b - a, fdef * 1.27));
        ck_assert_msg(peak > 3 * side, "%s: envelope %g at %.1f Hz, %g beside it", f[k].name,
                      peak, fdef, side);
        free(env);
        seen[kind]++;
    }
    s->close(s);
    free(x);
}

START_TEST(test_defect_frequencies)
{
    int seen[3] = { 0, 0, 0 };

    for (uint64_t seed = 1; seed <= 8 && !(seen[0] && seen[1] && seen[2]); seed++)
        check_faults(seed, seen);
    ck_assert_msg(seen[0] && seen[1] && seen[2], "checked outer %d, inner %d, ball %d", seen[0],
                  seen[1], seen[2]);
}
END_TEST

Suite *sim_adc_suite(void)
{
    Suite *s = suite_create("sim_adc");
    TCase *tc = tcase_create("adc");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_codes_and_scales);
    tcase_add_test(tc, test_defect_frequencies);
    suite_add_tcase(s, tc);
    return s;
}
