/* check_relations.c - the portable relation features against references
 * computed another way: a hand-derived two-channel window, the residual
 * projector I - B B^T and the window's covariance in double (what the bench
 * first computed), and the invariance they exist for (a set-point move
 * inside the subspace of normal operation changes nothing; one outside it
 * shows whole). */
#include "schema/relations.h"

#include <check.h>
#include <math.h>
#include <string.h>

Suite *relations_suite(void);

enum { C5 = 5, K2 = 2, N = 64 };

/* A 5-channel map with a 2-column orthonormal basis (Gram-Schmidt of two
 * fixed vectors) and uneven means and scales. */
static float g_mean[C5] = { 10, -3, 0.5f, 250, 7 }, g_scale[C5] = { 2, 0.5f, 1, 40, 3 };
static float g_basis[C5 * K2];

static struct relations_map map5(void)
{
    double u[C5] = { 1, 2, 0.5, -1, 0.3 }, v[C5] = { 0.2, -1, 1.5, 0.7, 1 }, nu = 0, uv = 0, nv = 0;
    for (int c = 0; c < C5; c++)
        nu += u[c] * u[c];
    for (int c = 0; c < C5; c++)
        u[c] /= sqrt(nu);
    for (int c = 0; c < C5; c++)
        uv += u[c] * v[c];
    for (int c = 0; c < C5; c++)
        v[c] -= uv * u[c];
    for (int c = 0; c < C5; c++)
        nv += v[c] * v[c];
    for (int c = 0; c < C5; c++) {
        g_basis[c * K2] = (float)u[c];
        g_basis[c * K2 + 1] = (float)(v[c] / sqrt(nv));
    }
    return (struct relations_map){ C5, K2, g_mean, g_scale, g_basis };
}

static void window5(float *x)
{
    for (int c = 0; c < C5; c++)
        for (int s = 0; s < N; s++)
            x[c * N + s] = g_mean[c] + g_scale[c] * (float)(sin(0.3 * s * (c + 1) + c) + 0.2 * cos(1.7 * s));
}

START_TEST(two_channels_by_hand)
{
    /* B = (1, 1)/sqrt 2: the residual of (z1, z2) is ((z1 - z2)/2, (z2 - z1)/2).
     * x2 = x1 + 1 + e_t, e_t = +-1 alternating, x1 on a set-point ramp:
     * z1 - z2 is -2 or 0, so residual 1 is -1 or 0 (mean -0.5, sd 0.5). */
    static const float mean[2] = { 0, 0 }, scale[2] = { 1, 1 };
    const float b[2] = { (float)M_SQRT1_2, (float)M_SQRT1_2 };
    struct relations_map m = { 2, 1, mean, scale, b };
    float x[2 * 8], s[16], out[RELATIONS_NFEAT(2)];
    for (int t = 0; t < 8; t++) {
        x[t] = 3 + 0.1f * t;
        x[8 + t] = x[t] + 1 + (t % 2 ? -1 : 1);
    }
    ck_assert_uint_eq(relations_scratch_floats(&m), 7);
    ck_assert_int_eq(relations_features(&m, x, 8, 8, s, sizeof s / sizeof *s, out), 0);
    ck_assert_double_eq_tol(out[0], -0.5, 1e-5);
    ck_assert_double_eq_tol(out[1], 0.5, 1e-5);
    ck_assert_double_eq_tol(out[2], log(0.5 + 1e-4), 1e-5);
    ck_assert_double_eq_tol(out[3], log(0.5 + 1e-4), 1e-5);
    ck_assert_double_eq_tol(out[4], log(0.5 + 1e-6), 1e-5);
}
END_TEST

START_TEST(matches_projector_and_covariance_in_double)
{
    struct relations_map m = map5();
    float x[C5 * N], s[3 * C5 + K2], out[RELATIONS_NFEAT(C5)];
    double A[C5 * C5], mz[C5] = { 0 }, cov[C5 * C5] = { 0 };
    window5(x);
    for (int a = 0; a < C5; a++)
        for (int b = 0; b < C5; b++) {
            double p = 0;
            for (int k = 0; k < K2; k++)
                p += (double)g_basis[a * K2 + k] * g_basis[b * K2 + k];
            A[a * C5 + b] = (a == b) - p;
        }
    for (int c = 0; c < C5; c++)
        for (int t = 0; t < N; t++)
            mz[c] += (x[c * N + t] - g_mean[c]) / g_scale[c] / N;
    for (int a = 0; a < C5; a++)
        for (int b = 0; b < C5; b++)
            for (int t = 0; t < N; t++)
                cov[a * C5 + b] += ((x[a * N + t] - g_mean[a]) / g_scale[a] - mz[a]) *
                                   ((x[b * N + t] - g_mean[b]) / g_scale[b] - mz[b]) / N;
    ck_assert_int_eq(relations_features(&m, x, N, N, s, sizeof s / sizeof *s, out), 0);
    double spe = 0;
    for (int a = 0; a < C5; a++) {
        double r = 0, var = 0;
        for (int b = 0; b < C5; b++)
            r += A[a * C5 + b] * mz[b];
        for (int b = 0; b < C5; b++)
            for (int e = 0; e < C5; e++)
                var += A[a * C5 + b] * A[a * C5 + e] * cov[b * C5 + e];
        spe += r * r;
        ck_assert_double_eq_tol(out[a], r, 1e-5);
        ck_assert_double_eq_tol(out[C5 + a], log(sqrt(var) + 1e-4), 1e-4);
    }
    ck_assert_double_eq_tol(out[2 * C5], log(spe + 1e-6), 1e-4);
}
END_TEST

START_TEST(set_point_moves_inside_the_subspace_change_nothing)
{
    struct relations_map m = map5();
    float x[C5 * N], y[C5 * N], s[3 * C5 + K2], f0[RELATIONS_NFEAT(C5)], f1[RELATIONS_NFEAT(C5)];
    window5(x);
    ck_assert_int_eq(relations_features(&m, x, N, N, s, sizeof s / sizeof *s, f0), 0);
    /* every channel moves by scale * (B (3, -2)): related channels together */
    for (int c = 0; c < C5; c++)
        for (int t = 0; t < N; t++)
            y[c * N + t] = x[c * N + t] + g_scale[c] * (3 * g_basis[c * K2] - 2 * g_basis[c * K2 + 1]);
    ck_assert_int_eq(relations_features(&m, y, N, N, s, sizeof s / sizeof *s, f1), 0);
    for (uint32_t i = 0; i < RELATIONS_NFEAT(C5); i++)
        ck_assert_double_eq_tol(f1[i], f0[i], 2e-4);
    /* one channel alone moves by 2 of its scales: the mean residual moves by
     * 2 (I - B B^T) e_3, and the spreads stay */
    memcpy(y, x, sizeof y);
    for (int t = 0; t < N; t++)
        y[3 * N + t] += 2 * g_scale[3];
    ck_assert_int_eq(relations_features(&m, y, N, N, s, sizeof s / sizeof *s, f1), 0);
    for (int a = 0; a < C5; a++) {
        double p = 0;
        for (int k = 0; k < K2; k++)
            p += (double)g_basis[a * K2 + k] * g_basis[3 * K2 + k];
        ck_assert_double_eq_tol(f1[a] - f0[a], 2 * ((a == 3) - p), 2e-4);
        ck_assert_double_eq_tol(f1[C5 + a], f0[C5 + a], 2e-4);
    }
}
END_TEST

START_TEST(bad_arguments_refused)
{
    struct relations_map m = map5();
    float x[C5 * N], s[3 * C5 + K2], out[RELATIONS_NFEAT(C5)];
    const float sentinel = 12345.0f;
    window5(x);
    for (uint32_t i = 0; i < RELATIONS_NFEAT(C5); i++)
        out[i] = sentinel;
    struct relations_map bad = m;
    bad.n_ch = 1;
    ck_assert_int_eq(relations_features(&bad, x, N, N, s, 17, out), RELATIONS_EINVAL);
    bad = m;
    bad.n_ch = RELATIONS_MAX_CH + 1;
    ck_assert_int_eq(relations_check(&bad), RELATIONS_EINVAL);
    bad = m;
    bad.rank = C5;
    ck_assert_int_eq(relations_check(&bad), RELATIONS_EINVAL);
    ck_assert_uint_eq(relations_scratch_floats(&bad), 0);
    float zero_scale[C5] = { 2, 0.5f, 0, 40, 3 }, nan_mean[C5] = { 10, NAN, 0.5f, 250, 7 };
    bad = m;
    bad.scale = zero_scale;
    ck_assert_int_eq(relations_features(&bad, x, N, N, s, 17, out), RELATIONS_EINVAL);
    bad = m;
    bad.mean = nan_mean;
    ck_assert_int_eq(relations_features(&bad, x, N, N, s, 17, out), RELATIONS_ENONFINITE);
    ck_assert_int_eq(relations_features(&m, x, N, N - 1, s, 17, out), RELATIONS_EINVAL);  /* stride < n */
    ck_assert_int_eq(relations_features(&m, x, 0, N, s, 17, out), RELATIONS_EINVAL);
    ck_assert_int_eq(relations_features(&m, x, N, N, s, 16, out), RELATIONS_EINVAL);      /* short scratch */
    x[2 * N + 5] = INFINITY;
    ck_assert_int_eq(relations_features(&m, x, N, N, s, 17, out), RELATIONS_ENONFINITE);
    for (uint32_t i = 0; i < RELATIONS_NFEAT(C5); i++)
        ck_assert_float_eq(out[i], sentinel);             /* nothing written on failure */
}
END_TEST

Suite *relations_suite(void)
{
    Suite *s = suite_create("relations");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, two_channels_by_hand);
    tcase_add_test(tc, matches_projector_and_covariance_in_double);
    tcase_add_test(tc, set_point_moves_inside_the_subspace_change_nothing);
    tcase_add_test(tc, bad_arguments_refused);
    suite_add_tcase(s, tc);
    return s;
}
