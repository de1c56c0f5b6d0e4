/* check_spectral.c - the portable spectral features against references
 * computed another way: a direct DFT in double, hand-derived tones (a Hann
 * bin-centred tone, an amplitude-modulated carrier whose envelope is known),
 * a datasheet bearing's defect frequencies, and numpy (spectral_ref.py, run
 * when python3 with numpy is installed; skipped with a message otherwise). */
#include "schema/spectral.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *spectral_suite(void);

#define PI 3.14159265358979323846

START_TEST(rfft_matches_direct_dft)
{
    enum { N = 64 };
    float x[N];
    double xr[N];

    for (int i = 0; i < N; i++)
        xr[i] = x[i] = (float)(sin(0.37 * i) + 0.5 * cos(1.9 * i + 0.2) + (i % 7) * 0.1);
    ck_assert_int_eq(spectral_rfft(x, N), 0);
    for (int k = 0; k <= N / 2; k++) {
        double re = 0, im = 0;
        for (int i = 0; i < N; i++) {
            re += xr[i] * cos(2 * PI * k * i / N);
            im -= xr[i] * sin(2 * PI * k * i / N);
        }
        double gr = k == 0 ? x[0] : k == N / 2 ? x[1] : x[2 * k];
        double gi = (k == 0 || k == N / 2) ? 0 : x[2 * k + 1];
        ck_assert_double_eq_tol(gr, re, 1e-4);
        ck_assert_double_eq_tol(gi, im, 1e-4);
    }
}
END_TEST

START_TEST(fft_inverse_round_trip)
{
    enum { N = 256 };
    float z[2 * N], orig[2 * N];

    for (int i = 0; i < 2 * N; i++)
        orig[i] = z[i] = (float)sin(0.1 * i * i);
    ck_assert_int_eq(spectral_fft(z, N, 0), 0);
    ck_assert_int_eq(spectral_fft(z, N, 1), 0);
    for (int i = 0; i < 2 * N; i++)
        ck_assert_float_eq_tol(z[i] / N, orig[i], 1e-5);
}
END_TEST

/* A tone of amplitude A on bin k0 under a periodic Hann window: A^2/3 at k0,
 * A^2/12 on each neighbour, nothing elsewhere; the sum is the variance A^2/2. */
START_TEST(power_of_bin_centred_tone)
{
    enum { N = 512 };
    float x[N], s[N], p[N / 2 + 1];
    const float A = 2.0f, fs = 1000.0f;
    const int k0 = 40;

    for (int i = 0; i < N; i++)
        x[i] = 3.0f + A * (float)sin(2 * PI * k0 * i / N);
    ck_assert_int_eq(spectral_power(x, N, s, p), 0);
    ck_assert_float_eq_tol(p[k0], A * A / 3, 1e-4);
    ck_assert_float_eq_tol(p[k0 - 1], A * A / 12, 1e-4);
    ck_assert_float_eq_tol(p[k0 + 1], A * A / 12, 1e-4);
    ck_assert_float_lt(p[0], 1e-8);
    ck_assert_float_lt(p[k0 + 5], 1e-8);
    float bands[4];
    /* edges 30, 64.6, 139, 300 Hz: the tone (78.1 Hz) and its neighbours are in band 1 */
    ck_assert_int_eq(spectral_log_bands(p, N, fs, 30.0f, 300.0f, 3, bands), 0);
    ck_assert_float_eq_tol(bands[0] + bands[1] + bands[2], A * A / 2, 1e-3);
    ck_assert_float_eq_tol(bands[1], A * A / 2, 1e-3);
    /* shaft at 26 Hz: 78 Hz is order 3, band 2 ([2.5, 3.5)) */
    ck_assert_int_eq(spectral_order_bands(p, N, fs, 26.0f, 4, bands), 0);
    ck_assert_float_eq_tol(bands[2], A * A / 2, 1e-3);
    ck_assert_float_lt(bands[0] + bands[1] + bands[3], 1e-6);
    (void)fs;
}
END_TEST

/* (1 + m cos(2 pi fm t)) cos(2 pi fc t): the envelope is 1 + m cos(2 pi fm t),
 * so its power at fm (bin-centred) is m^2/3 by the rule above. */
START_TEST(envelope_of_am_carrier)
{
    enum { N = 2048 };
    static float x[N], s[2 * N], e[N / 2 + 1];
    const float fs = 8192.0f, m = 0.5f;
    const int km = 24, kc = 600;     /* fm = 96 Hz, fc = 2400 Hz */

    for (int i = 0; i < N; i++)
        x[i] = (float)((1 + m * cos(2 * PI * km * i / N)) * cos(2 * PI * kc * i / N));
    ck_assert_int_eq(spectral_envelope(x, N, fs, 2000.0f, 2800.0f, s, e), 0);
    ck_assert_float_eq_tol(e[km], m * m / 3, 2e-3);
    ck_assert_float_lt(e[2 * km], 1e-4);
}
END_TEST

/* SKF 6205 as in the CWRU bearing data's table: 9 balls, 7.94 / 39.04 mm, 0 deg:
 * defect frequencies per shaft Hz 3.5848 (BPFO), 5.4152 (BPFI), FTF 0.39828
 * and 2 x BSF = 4.7135. */
START_TEST(defect_frequencies_of_6205)
{
    struct spectral_bearing b = { 9, 7.94f, 39.04f, 0.0f };
    float f[SPECTRAL_NDEFECTS];

    ck_assert_int_eq(spectral_defect_freqs(&b, 1.0f, f), 0);
    ck_assert_float_eq_tol(f[SPECTRAL_BPFO], 3.5848f, 2e-3);
    ck_assert_float_eq_tol(f[SPECTRAL_BPFI], 5.4152f, 2e-3);
    ck_assert_float_eq_tol(f[SPECTRAL_FTF], 0.39828f, 2e-4);
    ck_assert_float_eq_tol(2 * f[SPECTRAL_BSF], 4.7135f, 3e-3);
    b.pitch_d = 5.0f;    /* pitch inside the ball: refused */
    ck_assert_int_eq(spectral_defect_freqs(&b, 1.0f, f), SPECTRAL_EINVAL);
}
END_TEST

/* Impacts at BPFO ringing a resonance: the feature set must put the envelope
 * energy at BPFO (and 2x) far above BPFI's, and spectral kurtosis must find
 * the resonance band. */
START_TEST(features_find_outer_race_defect)
{
    struct spectral_config c = { .fs = 12000.0f, .n = 4096, .log_bands = 8, .f_lo = 20.0f,
                                 .shaft_hz = 29.95f, .order_bands = 6, .sk_seg = 64,
                                 .has_bearing = 1, .bearing = { 9, 7.94f, 39.04f, 0.0f } };
    static float x[4096], out[64];
    float f[SPECTRAL_NDEFECTS];
    size_t ns = spectral_scratch_floats(&c);
    float *s = malloc(ns * sizeof *s);
    unsigned seed = 7;

    ck_assert_ptr_nonnull(s);
    spectral_defect_freqs(&c.bearing, c.shaft_hz, f);
    for (int i = 0; i < 4096; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = 0.3f * ((float)(seed >> 8) / (float)(1u << 24) - 0.5f);
        x[i] += 0.5f * (float)sin(2 * PI * c.shaft_hz * i / c.fs);
    }
    for (double t0 = 0.002; t0 < 4096 / c.fs; t0 += 1.0 / f[SPECTRAL_BPFO])
        for (int i = (int)(t0 * c.fs) + 1; i < 4096; i++) {
            double dt = i / c.fs - t0;
            x[i] += (float)(2.0 * exp(-dt * 1500.0) * sin(2 * PI * 3500.0 * dt));
        }
    uint32_t nf = spectral_feature_count(&c);
    ck_assert_uint_eq(nf, 3 + 8 + 6 + 2 + 8);
    ck_assert_int_eq(spectral_features(&c, x, s, ns, out), 0);
    uint32_t d0 = 3 + 8 + 6 + 2;
    ck_assert_float_gt(out[1], 1.0f);                        /* impulsive: kurtosis */
    ck_assert_float_gt(out[d0 - 2], 1.0f);                   /* SK peak */
    float sk_hz = out[d0 - 1] * c.fs / 2;
    ck_assert_float_gt(sk_hz, 2500.0f);
    ck_assert_float_lt(sk_hz, 4500.0f);
    ck_assert_float_gt(out[d0 + 0], out[d0 + 2] + 1.0f);     /* BPFO 1x >> BPFI 1x (log10) */
    /* and at 2x (against BSF's: 2 x BPFI is within a bin of 3 x BPFO here) */
    ck_assert_float_gt(out[d0 + 1], out[d0 + 5] + 0.5f);
    ck_assert_int_eq(spectral_features(&c, x, s, ns - 1, out), SPECTRAL_ESCRATCH);
    x[5] = NAN;
    ck_assert_int_eq(spectral_features(&c, x, s, ns, out), SPECTRAL_ENONFINITE);
    free(s);
}
END_TEST

START_TEST(bad_arguments_refused)
{
    float x[48] = { 0 }, s[96], p[25];
    struct spectral_config c = { .fs = 1000.0f, .n = 48, .sk_seg = 8 };

    ck_assert_int_eq(spectral_power(x, 48, s, p), SPECTRAL_EINVAL);
    ck_assert_int_eq(spectral_fft(s, 3, 0), SPECTRAL_EINVAL);
    ck_assert_int_eq(spectral_config_check(&c), SPECTRAL_EINVAL);
    c.n = 64;
    ck_assert_int_eq(spectral_config_check(&c), 0);
    c.sk_seg = 32;     /* more than n/4: too few segments for a kurtosis */
    ck_assert_int_eq(spectral_config_check(&c), SPECTRAL_EINVAL);
    c.sk_seg = 8;
    c.shaft_hz = 600.0f;     /* above Nyquist */
    ck_assert_int_eq(spectral_config_check(&c), SPECTRAL_EINVAL);
    ck_assert_uint_eq(spectral_scratch_floats(&c), 0);
}
END_TEST

static FILE *open_reference_arg(const char *arg)
{
    const char *cands[] = { getenv("PYTHON"), "python3", "/usr/bin/python3" };
    char cmd[512];

    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (!cands[i])
            continue;
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) != 0)
            continue;
        snprintf(cmd, sizeof cmd, "%s tests/unit/schema/spectral_ref.py %s", cands[i], arg);
        return popen(cmd, "r");
    }
    return NULL;
}

static FILE *open_reference(void)
{
    return open_reference_arg("");
}

static void read_doubles(FILE *f, double *v, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(fscanf(f, "%lf", &v[i]), 1);
}

/* Compare a spectrum to numpy's, relative to the spectrum's peak. */
static void near_all(const float *got, const double *want, int n, double rel)
{
    double peak = 0;
    for (int i = 0; i < n; i++)
        peak = fmax(peak, fabs(want[i]));
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= rel * peak, "bin %d: %g vs numpy %g", i,
                      (double)got[i], want[i]);
}

START_TEST(numpy_golden)
{
    FILE *f = open_reference();
    double head[5];

    if (!f) {
        fprintf(stderr, "check_spectral: SKIP numpy golden: no python3 with numpy\n");
        return;
    }
    read_doubles(f, head, 5);
    int n = (int)head[0], seg = (int)head[1];
    ck_assert_int_eq(n, 1024);
    static double xd[1024], pw[513], sk[33], env[513];
    static float x[1024], s[2048], p[513], skg[33], eg[513];
    read_doubles(f, xd, n);
    read_doubles(f, pw, n / 2 + 1);
    read_doubles(f, sk, seg / 2 + 1);
    read_doubles(f, env, n / 2 + 1);
    ck_assert_int_eq(pclose(f), 0);
    for (int i = 0; i < n; i++)
        x[i] = (float)xd[i];
    ck_assert_int_eq(spectral_power(x, n, s, p), 0);
    near_all(p, pw, n / 2 + 1, 1e-5);
    ck_assert_int_eq(spectral_kurtosis(x, n, seg, s, skg), 0);
    for (int k = 0; k <= seg / 2; k++)
        ck_assert_double_eq_tol(skg[k], sk[k], 1e-3 * fmax(1.0, fabs(sk[k])));
    ck_assert_int_eq(spectral_envelope(x, n, (float)head[2], (float)head[3], (float)head[4], s, eg), 0);
    near_all(eg, env, n / 2 + 1, 1e-4);
}
END_TEST

/* A frame that is not a power of two: its 1000 samples zero-padded to
 * 1024, against numpy's rfft(..., n) of the same windowed samples; the
 * envelope's power over the frame's own samples. */
START_TEST(numpy_golden_padded)
{
    FILE *f = open_reference_arg("padded");
    double head[6];

    if (!f) {
        fprintf(stderr, "check_spectral: SKIP numpy golden (padded): no python3 with numpy\n");
        return;
    }
    read_doubles(f, head, 6);
    int n = (int)head[0], seg = (int)head[1], len = (int)head[5];
    ck_assert_int_eq(n, 1024);
    ck_assert_int_eq(len, 1000);
    static double xd[1000], pw[513], sk[33], env[513];
    static float x[1000], s[2048], p[513], skg[33], eg[513];
    read_doubles(f, xd, len);
    read_doubles(f, pw, n / 2 + 1);
    read_doubles(f, sk, seg / 2 + 1);
    read_doubles(f, env, n / 2 + 1);
    ck_assert_int_eq(pclose(f), 0);
    for (int i = 0; i < len; i++)
        x[i] = (float)xd[i];
    ck_assert_int_eq(spectral_power_padded(x, (uint32_t)len, (uint32_t)n, s, p), 0);
    near_all(p, pw, n / 2 + 1, 1e-5);
    ck_assert_int_eq(spectral_kurtosis(x, (uint32_t)len, (uint32_t)seg, s, skg), 0);
    for (int k = 0; k <= seg / 2; k++)
        ck_assert_double_eq_tol(skg[k], sk[k], 1e-3 * fmax(1.0, fabs(sk[k])));
    ck_assert_int_eq(spectral_envelope_padded(x, (uint32_t)len, (uint32_t)n, (float)head[2],
                                              (float)head[3], (float)head[4], s, eg), 0);
    near_all(eg, env, n / 2 + 1, 1e-4);
    /* a padded frame is no unpadded one: refused where it cannot be */
    ck_assert_int_eq(spectral_power_padded(x, 1000, 1000, s, p), SPECTRAL_EINVAL);
    ck_assert_int_eq(spectral_power_padded(x, 1025, 1024, s, p), SPECTRAL_EINVAL);
}
END_TEST

Suite *spectral_suite(void)
{
    Suite *s = suite_create("spectral");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, rfft_matches_direct_dft);
    tcase_add_test(tc, fft_inverse_round_trip);
    tcase_add_test(tc, power_of_bin_centred_tone);
    tcase_add_test(tc, envelope_of_am_carrier);
    tcase_add_test(tc, defect_frequencies_of_6205);
    tcase_add_test(tc, features_find_outer_race_defect);
    tcase_add_test(tc, bad_arguments_refused);
    tcase_add_test(tc, numpy_golden_padded);
    tcase_add_test(tc, numpy_golden);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
