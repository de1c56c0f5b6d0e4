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

    if (getenv("FEATURESET_REGEN_GOLDEN"))
        featgolden_write(getenv("FEATURESET_REGEN_GOLDEN"));
    n = featgolden_read(g, FEATGOLDEN_MAX);
    ck_assert_int_ge(n, 3);
    for (int k = 0; k < n; k++) {
        ck_assert_uint_eq(g[k].nf, g[k].channels * featureset_per_channel(g[k].spec.id, g[k].spec.version));
        ck_assert_int_eq(featureset_compute(&g[k].spec, g[k].x, g[k].spec.window, g[k].channels, f), 0);
        featgolden_assert_equal(f, &g[k], "featureset_compute");
        for (unsigned j = 0; j < g[k].nf; j++)
            ck_assert_msg(isfinite(f[j]), "window %d feature %u not finite", k, j);
    }
}
END_TEST

START_TEST(refusals_say_why)
{
    struct featureset_spec fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 128, 1000.0f };
    float x[256] = { 0 }, f[FEATURESET_STATS_NFEAT];

    ck_assert_ptr_null(featureset_unsupported(&fs, 1));
    ck_assert_ptr_null(featureset_rate_mismatch(&fs, 1000.0));
    ck_assert_ptr_nonnull(featureset_rate_mismatch(&fs, 2000.0));
    fs.version = 2;
    ck_assert_str_eq(featureset_unsupported(&fs, 1), "feature set version newer than this agent computes");
    ck_assert_int_eq(featureset_compute(&fs, x, 256, 1, f), FEATURESET_EUNKNOWN);
    fs.version = 1;
    fs.id = FEATURESET_NONE;
    ck_assert_ptr_nonnull(strstr(featureset_unsupported(&fs, 1), "no feature set"));
    fs.id = 7;
    ck_assert_str_eq(featureset_unsupported(&fs, 1), "unknown feature set id");
    fs.id = FEATURESET_STATS;
    fs.hop = 0;
    ck_assert_ptr_nonnull(featureset_unsupported(&fs, 1));
    ck_assert_int_eq(featureset_compute(&fs, x, 256, 1, f), FEATURESET_ERANGE);
    fs.hop = 128;
    fs.window = 4;
    ck_assert_ptr_nonnull(featureset_unsupported(&fs, 1));
    fs.window = 256;
    ck_assert_ptr_nonnull(featureset_unsupported(&fs, 0));
    ck_assert_int_eq(featureset_compute(&fs, x, 100, 1, f), FEATURESET_ERANGE);   /* stride < window */
    ck_assert_str_eq(featureset_feature_name(FEATURESET_STATS, 1, 0), "mean");
    ck_assert_str_eq(featureset_feature_name(FEATURESET_STATS, 1, 7), "?");
}
END_TEST

/* Scale and offset behave as the definition says: the mean follows an
 * offset and nothing else does; a gain moves the log energies by log(gain). */
START_TEST(offset_and_gain)
{
    struct featureset_spec fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, 512, 512, 100.0f };
    float x[512], a[FEATURESET_STATS_NFEAT], b[FEATURESET_STATS_NFEAT];

    for (int i = 0; i < 512; i++)
        x[i] = sinf(0.1f * (float)i) + 0.3f * sinf(1.3f * (float)i);
    ck_assert_int_eq(featureset_compute(&fs, x, 512, 1, a), 0);
    for (int i = 0; i < 512; i++)
        x[i] += 10.0f;
    ck_assert_int_eq(featureset_compute(&fs, x, 512, 1, b), 0);
    ck_assert_float_eq_tol(b[0] - a[0], 10.0f, 1e-4f);
    for (int k = 1; k < FEATURESET_STATS_NFEAT; k++)
        ck_assert_float_eq_tol(b[k], a[k], 1e-3f);
    for (int i = 0; i < 512; i++)
        x[i] = (x[i] - 10.0f) * 4.0f;
    ck_assert_int_eq(featureset_compute(&fs, x, 512, 1, b), 0);
    ck_assert_float_eq_tol(b[1] - a[1], logf(4.0f), 1e-4f);
    ck_assert_float_eq_tol(b[3], a[3], 1e-4f);           /* crest factor: no unit */
    ck_assert_float_eq_tol(b[4], a[4], 1e-4f);           /* kurtosis: no unit */
    ck_assert_float_eq_tol(b[6] - a[6], 2.0f * logf(4.0f), 1e-4f);
}
END_TEST

Suite *featureset_suite(void);

Suite *featureset_suite(void)
{
    Suite *s = suite_create("featureset");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, golden_vectors);
    tcase_add_test(tc, refusals_say_why);
    tcase_add_test(tc, offset_and_gain);
    suite_add_tcase(s, tc);
    return s;
}
