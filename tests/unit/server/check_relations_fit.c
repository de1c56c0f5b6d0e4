/* check_relations_fit.c - fitting the relation map without labels: it finds
 * a relation two channels keep, reads a set-point move that keeps it as
 * normal and a move that breaks it as a residual, fits only the rows it is
 * told to, refits with the rows nobody vouched for that the first map finds
 * normal (and only those), and refuses what it cannot fit. */
#include "server/datasets/ds_relations.h"

#include <check.h>
#include <math.h>
#include <string.h>

#include "schema/model.h"

Suite *relations_fit_suite(void);

enum { ROWS = 200, C = 3, W = 16 };

/* Window means of a plant: x1 = 2 x0 + 5 (a relation), x2 independent. */
static void plant(float *means, uint32_t rows)
{
    for (uint32_t i = 0; i < rows; i++) {
        double u = sin(0.37 * i) * 3 + 0.01 * i, v = cos(1.13 * i + 0.4) * 2;
        means[i * C] = (float)u;
        means[i * C + 1] = (float)(2 * u + 5 + 0.01 * sin(7.1 * i));
        means[i * C + 2] = (float)v;
    }
}

START_TEST(finds_the_relation_and_reads_windows_by_it)
{
    static float means[ROWS * C];
    struct relations_fit rf;
    plant(means, ROWS);
    ck_assert_int_eq(ds_relations_fit(means, ROWS, C, NULL, RELATIONS_VAR_KEEP, &rf), 0);
    /* eigenvalues about 2, 1, 0: two components kept, the residual is the
     * direction (1, -1, 0)/sqrt 2 in standardised units */
    ck_assert_uint_eq(rf.map.rank, 2);
    ck_assert(rf.explained > 0.99);
    ck_assert_uint_eq(ds_relations_bytes(&rf.map), (2 + 2) * C * 4);
    for (uint32_t k = 0; k < 2; k++) {
        double nn = 0, along = 0;
        for (uint32_t c = 0; c < C; c++)
            nn += (double)rf.basis[c * 2 + k] * rf.basis[c * 2 + k];
        along = (rf.basis[0 * 2 + k] - rf.basis[1 * 2 + k]) * M_SQRT1_2;
        ck_assert_double_eq_tol(nn, 1, 1e-5);
        ck_assert_double_eq_tol(along, 0, 1e-2);
    }
    /* a window on a new set-point that keeps the relation, and one where x1
     * sits 3 of its scales off it */
    float x[C * W], s[3 * C + 2], f[RELATIONS_NFEAT(C)];
    for (int t = 0; t < W; t++) {
        float u = 9 + 0.1f * t;
        x[t] = u;
        x[W + t] = 2 * u + 5;
        x[2 * W + t] = 0.5f;
    }
    ck_assert_int_eq(relations_features(&rf.map, x, W, W, s, sizeof s / sizeof *s, f), 0);
    for (uint32_t c = 0; c < C; c++)
        ck_assert_double_eq_tol(f[c], 0, 0.05);
    for (int t = 0; t < W; t++)
        x[W + t] += 3 * rf.scale[1];
    ck_assert_int_eq(relations_features(&rf.map, x, W, W, s, sizeof s / sizeof *s, f), 0);
    ck_assert_double_eq_tol(f[0], -1.5, 0.05);
    ck_assert_double_eq_tol(f[1], 1.5, 0.05);
    ck_assert_double_eq_tol(f[2], 0, 0.05);
}
END_TEST

START_TEST(fits_only_the_rows_it_is_told)
{
    static float means[2 * ROWS * C], normal[ROWS * C];
    static uint8_t use[2 * ROWS];
    struct relations_fit a, b;
    plant(normal, ROWS);
    plant(means, 2 * ROWS);
    for (uint32_t i = 0; i < 2 * ROWS; i++)
        use[i] = i < ROWS;
    for (uint32_t i = ROWS; i < 2 * ROWS; i++)
        means[i * C + 1] = 40 + (float)i;   /* a fault: x1 off the relation */
    ck_assert_int_eq(ds_relations_fit(normal, ROWS, C, NULL, RELATIONS_VAR_KEEP, &a), 0);
    ck_assert_int_eq(ds_relations_fit(means, 2 * ROWS, C, use, RELATIONS_VAR_KEEP, &b), 0);
    ck_assert_uint_eq(a.map.rank, b.map.rank);
    for (uint32_t c = 0; c < C; c++) {
        ck_assert_float_eq(a.mean[c], b.mean[c]);
        ck_assert_float_eq(a.scale[c], b.scale[c]);
    }
}
END_TEST

START_TEST(refuses_what_it_cannot_fit)
{
    static float means[ROWS * C];
    struct relations_fit rf;
    plant(means, ROWS);
    ck_assert_int_eq(ds_relations_fit(means, 2, C, NULL, 0.9, &rf), MODEL_EINVAL);
    ck_assert_int_eq(ds_relations_fit(means, ROWS, 1, NULL, 0.9, &rf), MODEL_EINVAL);
    ck_assert_int_eq(ds_relations_fit(means, ROWS, RELATIONS_MAX_CH + 1, NULL, 0.9, &rf), MODEL_EINVAL);
    ck_assert_int_eq(ds_relations_fit(means, ROWS, C, NULL, 1.0, &rf), MODEL_EINVAL);
    ck_assert_int_eq(ds_relations_fit(NULL, ROWS, C, NULL, 0.9, &rf), MODEL_EINVAL);
    uint8_t use[ROWS] = { 0 };
    use[0] = use[1] = 1;
    ck_assert_int_eq(ds_relations_fit(means, ROWS, C, use, 0.9, &rf), MODEL_EINVAL);
    means[7 * C + 2] = NAN;
    ck_assert_int_eq(ds_relations_fit(means, ROWS, C, NULL, 0.9, &rf), MODEL_EINVAL);
}
END_TEST

/* The trimmed fit: 40 commissioning rows (assumed normal, the relation
 * with some noise), 100 rows nobody vouched for that keep the relation
 * exactly at other points of operation, 30 faults off it, one row with a
 * broken channel, and 20 on-relation rows the caller does not offer.  The
 * second fit must take exactly the commissioning rows and the 100 (the
 * fit on that union, float for float), nothing else. */
enum { T_COMM = 40, T_GOOD = 100, T_FAULT = 30, T_HELD = 20, T_ROWS = T_COMM + T_GOOD + T_FAULT + 1 + T_HELD };

static void trimmed_plant(float *means, uint8_t *normal, uint8_t *cand, uint8_t *expect)
{
    for (uint32_t i = 0; i < T_ROWS; i++) {
        double u, v, off = 0;
        int comm = i < T_COMM, good = i >= T_COMM && i < T_COMM + T_GOOD;
        int fault = i >= T_COMM + T_GOOD && i < T_COMM + T_GOOD + T_FAULT;

        if (comm) {
            u = sin(0.37 * i) * 3;
            v = cos(1.13 * i + 0.4) * 2;
            off = 0.1 * sin(7.1 * i);
        } else {
            u = 2.5 * sin(0.91 * i + 1);
            v = 1.5 * cos(0.53 * i);
            off = fault ? 4.0 + 0.5 * sin(0.3 * i) : 0;
        }
        means[i * C] = (float)u;
        means[i * C + 1] = (float)(2 * u + 5 + off);
        means[i * C + 2] = (float)v;
        normal[i] = (uint8_t)comm;
        cand[i] = (uint8_t)(i < T_COMM + T_GOOD + T_FAULT + 1);
        expect[i] = (uint8_t)(comm || good);
    }
    means[(T_COMM + T_GOOD + T_FAULT) * C + 1] = NAN;     /* a broken channel: never used */
}

START_TEST(trimmed_fit_takes_the_normal_it_was_not_told)
{
    static float means[T_ROWS * C];
    static uint8_t normal[T_ROWS], cand[T_ROWS], expect[T_ROWS], mask[T_ROWS];
    struct relations_fit got, want, first;
    uint32_t n = 0;

    trimmed_plant(means, normal, cand, expect);
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, cand, RELATIONS_VAR_KEEP,
                                              &got, &n, mask), 0);
    ck_assert_uint_eq(n, T_COMM + T_GOOD);
    ck_assert(memcmp(mask, expect, sizeof mask) == 0);
    ck_assert_int_eq(ds_relations_fit(means, T_ROWS, C, expect, RELATIONS_VAR_KEEP, &want), 0);
    ck_assert_uint_eq(got.map.rank, want.map.rank);
    ck_assert(memcmp(got.mean, want.mean, sizeof got.mean) == 0);
    ck_assert(memcmp(got.scale, want.scale, sizeof got.scale) == 0);
    ck_assert(memcmp(got.basis, want.basis, sizeof got.basis) == 0);
    /* not the commissioning rows' map: the 100 moved it */
    ck_assert_int_eq(ds_relations_fit(means, T_ROWS, C, normal, RELATIONS_VAR_KEEP, &first), 0);
    ck_assert(first.mean[0] != got.mean[0]);
    /* every row offered (candidate NULL): the held-back on-relation rows
     * join too; the faults and the broken row still do not */
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, NULL, RELATIONS_VAR_KEEP,
                                              &got, &n, NULL), 0);
    ck_assert_uint_eq(n, T_COMM + T_GOOD + T_HELD);
    /* nothing offered: the plain fit on the normal rows, float for float */
    memset(cand, 0, sizeof cand);
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, cand, RELATIONS_VAR_KEEP,
                                              &got, &n, NULL), 0);
    ck_assert_uint_eq(n, T_COMM);
    ck_assert(memcmp(got.mean, first.mean, sizeof got.mean) == 0);
    ck_assert(memcmp(got.basis, first.basis, sizeof got.basis) == 0);
    /* refusals: no normal rows marked, too few of them */
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, NULL, cand, 0.9, &got, &n, NULL), MODEL_EINVAL);
    memset(normal, 0, sizeof normal);
    normal[0] = normal[1] = 1;
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, NULL, 0.9, &got, &n, NULL), MODEL_EINVAL);
}
END_TEST

Suite *relations_fit_suite(void)
{
    Suite *s = suite_create("relations_fit");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, finds_the_relation_and_reads_windows_by_it);
    tcase_add_test(tc, fits_only_the_rows_it_is_told);
    tcase_add_test(tc, refuses_what_it_cannot_fit);
    tcase_add_test(tc, trimmed_fit_takes_the_normal_it_was_not_told);
    suite_add_tcase(s, tc);
    return s;
}
