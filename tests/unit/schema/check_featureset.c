/* check_featureset.c - the one feature definition (schema/featureset.h):
 * the golden vectors bit for bit, what a reader refuses and why, and
 * properties the features must have whatever their exact values.
 * FEATURESET_REGEN_GOLDEN=<file> writes the golden file instead (only when
 * a set's definition changes, with a new set version). */
#include "schema/featureset.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FEATGOLDEN_WRITER
#include "../featgolden.h"

START_TEST(golden_vectors)
{
    static struct featgolden g[FEATGOLDEN_MAX];
    float f[FEATGOLDEN_MAX_CH * FEATURESET_MAX_PER_CHANNEL];
    int n;

    static float scratch[4096];
    const char *regen = getenv("FEATURESET_REGEN_GOLDEN");

    /* FEATURESET_REGEN_GOLDEN=stats or =spectral rewrites that set's file */
    if (regen && strcmp(regen, "stats") == 0)
        featgolden_write(featgolden_files[0], (struct featureset_spec){ FEATURESET_STATS,
                         FEATURESET_STATS_VERSION, 64, 32, 1000.0f, FEATURESET_NO_KIN, NULL });
    if (regen && strcmp(regen, "envelope") == 0)
        featgolden_write(featgolden_files[2], (struct featureset_spec){ FEATURESET_ENVELOPE,
                         FEATURESET_ENVELOPE_VERSION, 64, 32, 1000.0f, FEATGOLDEN_KIN, NULL });
    if (regen && strcmp(regen, "relations") == 0)
        featgolden_write(featgolden_files[3], (struct featureset_spec){ FEATURESET_RELATIONS,
                         FEATURESET_RELATIONS_VERSION, 64, 32, 1000.0f, FEATURESET_NO_KIN, NULL });
    if (regen && strcmp(regen, "spectral") == 0)
        featgolden_write(featgolden_files[1], (struct featureset_spec){ FEATURESET_SPECTRAL,
                         FEATURESET_SPECTRAL_VERSION, 64, 32, 1000.0f, FEATURESET_NO_KIN, NULL });
    n = featgolden_read(g, FEATGOLDEN_MAX);
    ck_assert_int_ge(n, 12);
    for (int k = 0; k < n; k++) {
        ck_assert_uint_eq(g[k].nf, featureset_count(g[k].spec.id, g[k].spec.version, g[k].channels));
        ck_assert_int_eq(featureset_compute(&g[k].spec, g[k].x, g[k].spec.window, g[k].channels,
                                            scratch, 4096, f), 0);
        featgolden_assert_equal(f, &g[k], "featureset_compute");
        for (unsigned j = 0; j < g[k].nf; j++)
            ck_assert_msg(isfinite(f[j]), "window %d feature %u not finite", k, j);
    }
}
END_TEST

/* The relations golden vectors against the definition computed another
 * way: in double, two passes, from the map in the file (schema/featureset.c
 * says what each feature is); float rounding is all that may differ. */
START_TEST(relations_golden_by_definition)
{
    static struct featgolden g[FEATGOLDEN_MAX];
    int n = featgolden_read(g, FEATGOLDEN_MAX), seen = 0;

    for (int k = 0; k < n; k++) {
        const struct relations_map *m = g[k].spec.rel;
        unsigned C = g[k].channels, w = g[k].spec.window;
        double r[FEATGOLDEN_MAX_CH][FEATGOLDEN_MAX_W], spe = 0.0;

        if (g[k].spec.id != FEATURESET_RELATIONS)
            continue;
        seen++;
        ck_assert_ptr_nonnull(m);
        ck_assert_uint_eq(g[k].nf, 2 * C + 1);
        for (unsigned t = 0; t < w; t++) {
            double z[FEATGOLDEN_MAX_CH], proj[FEATGOLDEN_MAX_CH] = { 0 };

            for (unsigned c = 0; c < C; c++) {
                double v = NAN;

                /* a broken sample: the channel's last finite one, or its center */
                for (int u = (int)t; u >= 0 && !isfinite(v); u--)
                    v = g[k].x[c * w + (unsigned)u];
                if (!isfinite(v))
                    v = m->mean[c];
                z[c] = (v - m->mean[c]) / m->scale[c];
            }
            for (unsigned q = 0; q < m->rank; q++) {
                double a = 0.0;

                for (unsigned c = 0; c < C; c++)
                    a += m->basis[c * m->rank + q] * z[c];
                for (unsigned c = 0; c < C; c++)
                    proj[c] += m->basis[c * m->rank + q] * a;
            }
            for (unsigned c = 0; c < C; c++)
                r[c][t] = z[c] - proj[c];
        }
        for (unsigned c = 0; c < C; c++) {
            double mu = 0.0, var = 0.0;

            for (unsigned t = 0; t < w; t++)
                mu += r[c][t] / w;
            for (unsigned t = 0; t < w; t++)
                var += (r[c][t] - mu) * (r[c][t] - mu) / w;
            ck_assert_msg(fabs(g[k].f[2 * c] - mu) <= 1e-5 + 1e-5 * fabs(mu),
                          "window %d channel %u mean %g, by definition %g", k, c, g[k].f[2 * c], mu);
            ck_assert_msg(fabs(g[k].f[2 * c + 1] - log(sqrt(var) + 1e-4)) <= 1e-4,
                          "window %d channel %u log sd %g, by definition %g", k, c,
                          g[k].f[2 * c + 1], log(sqrt(var) + 1e-4));
            spe += mu * mu;
        }
        ck_assert_msg(fabs(g[k].f[2 * C] - log(spe + 1e-6)) <= 1e-4, "window %d log spe %g, %g", k,
                      g[k].f[2 * C], log(spe + 1e-6));
    }
    ck_assert_int_eq(seen, 3);
}
END_TEST

START_TEST(refusals_say_why)
{
    struct featureset_spec fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 128, 1000.0f, FEATURESET_NO_KIN, NULL };
    float x[256] = { 0 }, f[FEATURESET_STATS_NFEAT];

    ck_assert_ptr_null(featureset_unsupported(&fs, 1));
    ck_assert_ptr_null(featureset_rate_mismatch(&fs, 1000.0));
    ck_assert_ptr_nonnull(featureset_rate_mismatch(&fs, 2000.0));
    fs.version = 2;
    ck_assert_str_eq(featureset_unsupported(&fs, 1), "feature set version newer than this agent computes");
    ck_assert_int_eq(featureset_compute(&fs, x, 256, 1, NULL, 0, f), FEATURESET_EUNKNOWN);
    fs.version = 1;
    fs.id = FEATURESET_NONE;
    ck_assert_ptr_nonnull(strstr(featureset_unsupported(&fs, 1), "no feature set"));
    fs.id = 7;
    ck_assert_str_eq(featureset_unsupported(&fs, 1), "unknown feature set id");
    /* relations: computed only with its map, for the map's channels */
    {
        static const float map[6] = { 0.0f, 0.0f, 1.0f, 1.0f, 0.6f, 0.8f };
        struct relations_map rm = { 2, 1, map, map + 2, map + 4 };
        float fr[5], scratch[16];

        fs.id = FEATURESET_RELATIONS;
        ck_assert_ptr_nonnull(strstr(featureset_unsupported(&fs, 2), "without its map"));
        ck_assert_int_eq(featureset_compute(&fs, x, 256, 2, scratch, 16, fr), FEATURESET_ERANGE);
        fs.rel = &rm;
        ck_assert_ptr_null(featureset_unsupported(&fs, 2));
        ck_assert_ptr_nonnull(strstr(featureset_unsupported(&fs, 3), "another channel count"));
        ck_assert_uint_eq(featureset_count(fs.id, fs.version, 2), 5);
        ck_assert_uint_eq(featureset_scratch_floats(&fs), 3 * 2 + 1 + 2);
        ck_assert_int_eq(featureset_compute(&fs, x, 128, 2, scratch, 16, fr), FEATURESET_ERANGE);
        fs.window = fs.hop = 8;                 /* two channels of 8 zeros at the map's center */
        ck_assert_int_eq(featureset_compute(&fs, x, 8, 2, scratch, 8, fr), FEATURESET_ESCRATCH);
        ck_assert_int_eq(featureset_compute(&fs, x, 8, 2, scratch, 16, fr), FEATURESET_OK);
        ck_assert(fr[0] == 0.0f && fr[2] == 0.0f && fr[1] == logf(1e-4f) && fr[4] == logf(1e-6f));
        fs.window = 256;
        fs.hop = 128;
        ck_assert_str_eq(featureset_feature_name(fs.id, 1, 2), "log_spe");
        fs.rel = NULL;
    }
    fs.id = FEATURESET_STATS;
    fs.hop = 0;
    ck_assert_ptr_nonnull(featureset_unsupported(&fs, 1));
    ck_assert_int_eq(featureset_compute(&fs, x, 256, 1, NULL, 0, f), FEATURESET_ERANGE);
    fs.hop = 128;
    fs.window = 4;
    ck_assert_ptr_nonnull(featureset_unsupported(&fs, 1));
    fs.window = 256;
    ck_assert_ptr_nonnull(featureset_unsupported(&fs, 0));
    ck_assert_int_eq(featureset_compute(&fs, x, 100, 1, NULL, 0, f), FEATURESET_ERANGE);   /* stride < window */
    ck_assert_str_eq(featureset_feature_name(FEATURESET_STATS, 1, 0), "mean");
    ck_assert_str_eq(featureset_feature_name(FEATURESET_STATS, 1, 7), "?");
}
END_TEST

/* A window of several channels gives each channel's features exactly as
 * that channel alone does: the stats set computes channels in fours (AVX)
 * or pairs (SSE2) where the CPU allows (featureset.c), and each must be bit
 * for bit the single channel's loop, non-finite samples, large offsets, odd channel counts and
 * a stride past the window included. */
START_TEST(stats_channels_together_equal_alone)
{
    enum { W = 1000, STRIDE = 1003, MAXC = 9 };
    static float x[MAXC * STRIDE];
    struct featureset_spec fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, W, W, 2000.0f,
                                  FEATURESET_NO_KIN, NULL };
    float together[MAXC * FEATURESET_STATS_NFEAT], alone[FEATURESET_STATS_NFEAT];
    uint32_t seed = 12345u;

    for (unsigned c = 0; c < MAXC; c++) {
        for (unsigned i = 0; i < STRIDE; i++) {
            float noise;

            seed = seed * 1664525u + 1013904223u;
            noise = (float)(seed >> 8) / 16777216.0f - 0.5f;
            /* channels 1 and 6 sit on a large offset; 2 and 7 are nearly flat */
            x[c * STRIDE + i] = c % 5 == 1 ? 1.0e5f + noise : c % 5 == 2 ? 1.0f + 1e-6f * noise
                                                      : sinf(0.01f * (float)(i * (c + 1))) + noise;
        }
    }
    x[0] = NAN;                         /* before any finite sample */
    x[STRIDE + 17] = INFINITY;
    x[STRIDE + 18] = -INFINITY;
    x[3 * STRIDE + W - 1] = NAN;        /* the last sample */
    x[4 * STRIDE + 500] = NAN;
    /* from channel 0: non-finite samples in most groups; from 5: every
     * sample finite (the loops without the replacement) */
    for (unsigned from = 0; from <= 5; from += 5)
    for (unsigned channels = 1; channels <= MAXC - from; channels++) {
        ck_assert_int_eq(featureset_compute(&fs, x + from * STRIDE, STRIDE, channels, NULL, 0,
                                            together), 0);
        for (unsigned c = 0; c < channels; c++) {
            ck_assert_int_eq(featureset_compute(&fs, x + (from + c) * STRIDE, STRIDE, 1, NULL, 0,
                                                alone), 0);
            for (unsigned k = 0; k < FEATURESET_STATS_NFEAT; k++)
                ck_assert_msg(memcmp(&together[c * FEATURESET_STATS_NFEAT + k], &alone[k],
                                     sizeof alone[k]) == 0,
                              "%u channels: channel %u feature %u: %a together, %a alone",
                              channels, c, k, (double)together[c * FEATURESET_STATS_NFEAT + k],
                              (double)alone[k]);
        }
    }
}
END_TEST

/* Scale and offset behave as the definition says: the mean follows an
 * offset and nothing else does; a gain moves the log energies by log(gain). */
START_TEST(offset_and_gain)
{
    struct featureset_spec fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, 512, 512, 100.0f, FEATURESET_NO_KIN, NULL };
    float x[512], a[FEATURESET_STATS_NFEAT], b[FEATURESET_STATS_NFEAT];

    for (int i = 0; i < 512; i++)
        x[i] = sinf(0.1f * (float)i) + 0.3f * sinf(1.3f * (float)i);
    ck_assert_int_eq(featureset_compute(&fs, x, 512, 1, NULL, 0, a), 0);
    for (int i = 0; i < 512; i++)
        x[i] += 10.0f;
    ck_assert_int_eq(featureset_compute(&fs, x, 512, 1, NULL, 0, b), 0);
    ck_assert_float_eq_tol(b[0] - a[0], 10.0f, 1e-4f);
    for (int k = 1; k < FEATURESET_STATS_NFEAT; k++)
        ck_assert_float_eq_tol(b[k], a[k], 1e-3f);
    for (int i = 0; i < 512; i++)
        x[i] = (x[i] - 10.0f) * 4.0f;
    ck_assert_int_eq(featureset_compute(&fs, x, 512, 1, NULL, 0, b), 0);
    ck_assert_float_eq_tol(b[1] - a[1], logf(4.0f), 1e-4f);
    ck_assert_float_eq_tol(b[3], a[3], 1e-4f);           /* crest factor: no unit */
    ck_assert_float_eq_tol(b[4], a[4], 1e-4f);           /* kurtosis: no unit */
    ck_assert_float_eq_tol(b[6] - a[6], 2.0f * logf(4.0f), 1e-4f);
}
END_TEST

/* The spectral set from a reference computed another way: a pure tone's
 * energy lands in the log band whose edges (f_lo (fs/2 / f_lo)^(j/11),
 * derived here by hand) hold its frequency; a gain moves log_rms by
 * log10(gain) and no band; impacts raise spectral kurtosis above a tone's;
 * a window that is no power of two (1000 samples, zero-padded to 1024)
 * puts the tone in the same band; the set refuses without scratch or on a
 * window shorter than 64 samples. */
START_TEST(spectral_set_properties)
{
    struct featureset_spec fs = { FEATURESET_SPECTRAL, FEATURESET_SPECTRAL_VERSION, 1024, 1024, 8192.0f, FEATURESET_NO_KIN, NULL };
    static float x[1024], scratch[8192];
    float a[FEATURESET_SPECTRAL_NFEAT], b[FEATURESET_SPECTRAL_NFEAT], c[FEATURESET_SPECTRAL_NFEAT];
    double f_lo = 8192.0 / 256.0, tone = 1000.0;     /* f_lo = max(fs/256, 2 fs/n) = 32 Hz */
    int band = (int)floor(11.0 * log(tone / f_lo) / log(4096.0 / f_lo)), best = 3;
    size_t ns = featureset_scratch_floats(&fs);

    ck_assert_uint_gt(ns, 1024);
    ck_assert_uint_le(ns, 8192);
    for (int i = 0; i < 1024; i++)
        x[i] = sinf((float)(2.0 * M_PI * tone * i / 8192.0));
    ck_assert_int_eq(featureset_compute(&fs, x, 1024, 1, NULL, 0, a), FEATURESET_ESCRATCH);
    ck_assert_int_eq(featureset_compute(&fs, x, 1024, 1, scratch, ns - 1, a), FEATURESET_ESCRATCH);
    ck_assert_int_eq(featureset_compute(&fs, x, 1024, 1, scratch, ns, a), 0);
    for (int k = 3; k < 14; k++)
        if (a[k] > a[best])
            best = k;
    ck_assert_int_eq(best - 3, band);
    ck_assert_float_eq_tol(a[best], 0.0f, 0.01f);             /* ~ all of the energy */
    ck_assert_float_eq_tol(a[0], (float)log10(1.0 / sqrt(2.0)), 1e-3f);
    for (int i = 0; i < 1024; i++)
        x[i] *= 10.0f;
    ck_assert_int_eq(featureset_compute(&fs, x, 1024, 1, scratch, ns, b), 0);
    ck_assert_float_eq_tol(b[0] - a[0], 1.0f, 1e-3f);
    for (int k = 1; k < 14; k++)
        ck_assert_float_eq_tol(b[k], a[k], 1e-2f);
    for (int i = 0; i < 1024; i++)              /* impacts every 128 samples, ringing 2 kHz */
        x[i] = 0.01f * sinf((float)i) + ((i % 128) < 8 ? sinf((float)(2.0 * M_PI * 2000.0 * i / 8192.0)) : 0.0f);
    ck_assert_int_eq(featureset_compute(&fs, x, 1024, 1, scratch, ns, c), 0);
    ck_assert_float_gt(c[14], a[14] + 1.0f);
    fs.window = fs.hop = 1000;
    ck_assert_ptr_null(featureset_unsupported(&fs, 1));
    ns = featureset_scratch_floats(&fs);
    ck_assert_uint_le(ns, 8192);
    for (int i = 0; i < 1000; i++)
        x[i] = sinf((float)(2.0 * M_PI * tone * i / 8192.0));
    ck_assert_int_eq(featureset_compute(&fs, x, 1000, 1, scratch, ns, c), 0);
    best = 3;
    for (int k = 3; k < 14; k++)
        if (c[k] > c[best])
            best = k;
    /* f_lo = max(fs / 256, 2 fs / 1000) = 32 Hz still: the same band */
    ck_assert_int_eq(best - 3, band);
    ck_assert_float_eq_tol(c[best], 0.0f, 0.01f);
    ck_assert_float_eq_tol(c[0], (float)log10(1.0 / sqrt(2.0)), 2e-3f);
    fs.window = fs.hop = 63;
    ck_assert_str_eq(featureset_unsupported(&fs, 1), "spectral feature window shorter than 64 samples");
    ck_assert_str_eq(featureset_feature_name(FEATURESET_SPECTRAL, 1, 14), "sk_max");
}
END_TEST

/* The envelope set against kinematics derived by hand: impacts at the outer
 * race's defect frequency (BPFO = z/2 fr (1 - d/D cos a) = 3.5848 fr for a
 * 6205) ringing a 3 kHz resonance put the most envelope energy of the
 * eight defect features at 1x BPFO; at the inner race's, at 1x BPFI.  The
 * shaft speed is chosen so an impact period is a whole number of samples
 * (112 and 74): otherwise the sampling phase of a 4-sample ringing beats
 * at a low frequency that is no defect's.  Without any geometry (every
 * field 0) the set reads the same orders, bands and kurtosis and 0 for the
 * defect energies; a geometry in part, or no shaft speed, is refused with
 * the reason. */
START_TEST(envelope_set_defects)
{
    struct featureset_spec fs = { FEATURESET_ENVELOPE, FEATURESET_ENVELOPE_VERSION, 8192, 8192,
                                  12000.0f, { 30.0f, 9u, 7.94f, 39.04f, 0.0f }, NULL };
    static float x[8192], scratch[40000];
    float f[FEATURESET_ENVELOPE_NFEAT];
    double r = 7.94 / 39.04, rates[2] = { 12000.0 / 112, 12000.0 / 74 };
    size_t ns = featureset_scratch_floats(&fs);

    ck_assert_uint_le(ns, 40000);
    for (int d = 0; d < 2; d++) {
        int best = 19;

        fs.kin.shaft_hz = (float)(rates[d] / (4.5 * (d == 0 ? 1 - r : 1 + r)));
        for (int i = 0; i < 8192; i++) {
            double t = i / 12000.0, ph = fmod(t * rates[d], 1.0) / rates[d];

            x[i] = (float)(exp(-ph * 1500.0) * sin(2 * M_PI * 3000.0 * ph) + 0.02 * sin(0.37 * i));
        }
        ck_assert_int_eq(featureset_compute(&fs, x, 8192, 1, scratch, ns, f), 0);
        for (int k = 19; k < 27; k++)
            if (f[k] > f[best])
                best = k;
        ck_assert_int_eq(best, d == 0 ? 19 : 21);      /* bpfo1, bpfi1 */
    }
    ck_assert_str_eq(featureset_feature_name(FEATURESET_ENVELOPE, 1, 19), "bpfo1");
    {
        float g[FEATURESET_ENVELOPE_NFEAT];
        struct featureset_spec nogeo = fs;

        nogeo.kin = (struct featureset_kin){ fs.kin.shaft_hz, 0u, 0.0f, 0.0f, 0.0f };
        ck_assert_ptr_null(featureset_unsupported(&nogeo, 1));
        ck_assert_uint_le(featureset_scratch_floats(&nogeo), ns);
        ck_assert_int_eq(featureset_compute(&nogeo, x, 8192, 1, scratch, ns, g), 0);
        ck_assert_mem_eq(g, f, 19 * sizeof *g);         /* time, bands, orders, kurtosis */
        for (int k = 19; k < 27; k++)
            ck_assert_float_eq(g[k], 0.0f);
        nogeo.kin.shaft_hz = 0.0f;                      /* orders need the shaft speed */
        ck_assert_str_eq(featureset_unsupported(&nogeo, 1), "envelope feature set needs a shaft "
                         "speed below half the sample rate and a valid bearing geometry (or none)");
    }
    fs.kin.n_elements = 0;                              /* a geometry in part */
    ck_assert_str_eq(featureset_unsupported(&fs, 1), "envelope feature set needs a shaft speed "
                     "below half the sample rate and a valid bearing geometry (or none)");
    ck_assert_int_eq(featureset_compute(&fs, x, 8192, 1, scratch, ns, f), FEATURESET_ERANGE);
}
END_TEST

Suite *featureset_suite(void);

Suite *featureset_suite(void)
{
    Suite *s = suite_create("featureset");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, golden_vectors);
    tcase_add_test(tc, relations_golden_by_definition);
    tcase_add_test(tc, spectral_set_properties);
    tcase_add_test(tc, envelope_set_defects);
    tcase_add_test(tc, refusals_say_why);
    tcase_add_test(tc, offset_and_gain);
    tcase_add_test(tc, stats_channels_together_equal_alone);
    suite_add_tcase(s, tc);
    return s;
}
