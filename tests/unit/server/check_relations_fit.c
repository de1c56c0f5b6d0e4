/* check_relations_fit.c - fitting the relation map without labels: it finds
 * a relation two channels keep, reads a set-point move that keeps it as
 * normal and a move that breaks it as a residual, fits only the rows it is
 * told to, refits with the rows nobody vouched for that the first map finds
 * normal (and only those), holds them to a control limit on the squared
 * prediction error computed as the textbooks do (and, as an option, to
 * one on Hotelling's T-squared), and refuses what it cannot fit. */
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
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, cand, NULL, RELATIONS_VAR_KEEP,
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
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, NULL, NULL, RELATIONS_VAR_KEEP,
                                              &got, &n, NULL), 0);
    ck_assert_uint_eq(n, T_COMM + T_GOOD + T_HELD);
    /* nothing offered: the plain fit on the normal rows, float for float */
    memset(cand, 0, sizeof cand);
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, cand, NULL, RELATIONS_VAR_KEEP,
                                              &got, &n, NULL), 0);
    ck_assert_uint_eq(n, T_COMM);
    ck_assert(memcmp(got.mean, first.mean, sizeof got.mean) == 0);
    ck_assert(memcmp(got.basis, first.basis, sizeof got.basis) == 0);
    /* refusals: no normal rows marked, too few of them */
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, NULL, cand, NULL, 0.9, &got, &n, NULL), MODEL_EINVAL);
    memset(normal, 0, sizeof normal);
    normal[0] = normal[1] = 1;
    ck_assert_int_eq(ds_relations_fit_trimmed(means, T_ROWS, C, normal, NULL, NULL, 0.9, &got, &n, NULL), MODEL_EINVAL);
}
END_TEST

/* The chi-square quantile against printed tables (4 decimals), the closed
 * form of 2 degrees of freedom (-2 ln(1 - p)), and fractional degrees of
 * freedom against a Simpson integration of the density (python3, the
 * density integrated on u = sqrt(x), 10^5 panels: another computation than
 * the series and continued fraction here). */
START_TEST(chi2_quantile_matches_the_tables)
{
    static const struct { double dof, p, x, tol; } t[] = {
        { 1, 0.99, 6.6349, 5e-5 },   { 2, 0.99, 9.2103, 5e-5 },   { 5, 0.99, 15.0863, 5e-5 },
        { 10, 0.99, 23.2093, 5e-5 }, { 30, 0.99, 50.8922, 5e-5 }, { 1, 0.95, 3.8415, 5e-5 },
        { 4, 0.95, 9.4877, 5e-5 },   { 2.5, 0.99, 10.3112443917, 1e-8 }, { 7.3, 0.95, 14.5025461395, 1e-8 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        ck_assert_msg(fabs(ds_chi2_quantile(t[i].dof, t[i].p) - t[i].x) < t[i].tol, "dof %g p %g: %.10g", t[i].dof,
                      t[i].p, ds_chi2_quantile(t[i].dof, t[i].p));
    for (double p = 0.5; p < 0.9995; p += 0.0625)
        ck_assert(fabs(ds_chi2_quantile(2, p) + 2 * log(1 - p)) < 1e-9);
    ck_assert(isnan(ds_chi2_quantile(0, 0.99)));
    ck_assert(isnan(ds_chi2_quantile(3, 1.0)));
    ck_assert(isnan(ds_chi2_quantile(3, 0.0)));
    ck_assert(isnan(ds_chi2_quantile(NAN, 0.5)));
}
END_TEST

/* Box's limit by hand: SPE 0, 2, 4 have mean 2 and variance 4, so g = 4 /
 * (2 * 2) = 1 and h = 2 * 2^2 / 4 = 2: the limit is chi2_2(0.99) = -2 ln
 * 0.01 = 9.21034.  1 and 3: mean 2, variance 2, g = 0.5, h = 4: 0.5 *
 * 13.2767 (table).  Values that do not vary: their value. */
START_TEST(spe_limit_by_hand)
{
    const double a[] = { 0, 2, 4 }, b[] = { 3, 1 }, c[] = { 1.5, 1.5, 1.5 }, bad[] = { 1, -1, 2 };

    ck_assert(fabs(ds_relations_spe_limit(a, 3, 0.99) - 9.21034037) < 1e-7);
    ck_assert(fabs(ds_relations_spe_limit(b, 2, 0.99) - 0.5 * 13.2767) < 5e-5);
    ck_assert(ds_relations_spe_limit(c, 3, 0.99) == 1.5);
    ck_assert(isnan(ds_relations_spe_limit(a, 1, 0.99)));
    ck_assert(isnan(ds_relations_spe_limit(bad, 3, 0.99)));
    ck_assert(isnan(ds_relations_spe_limit(NULL, 3, 0.99)));
    ck_assert(isnan(ds_relations_spe_limit(a, 3, 1.0)));
}
END_TEST

/* A row's squared prediction error in map m, written here from the
 * definition (standardise, take out the principal subspace, sum the
 * squares of what is left). */
static double spe_of(const struct relations_map *m, const float *row)
{
    double z[C], r2 = 0;

    for (uint32_t a = 0; a < m->n_ch; a++)
        z[a] = (row[a] - m->mean[a]) / m->scale[a];
    for (uint32_t a = 0; a < m->n_ch; a++) {
        double r = z[a];

        for (uint32_t q = 0; q < m->rank; q++) {
            double p = 0;

            for (uint32_t b = 0; b < m->n_ch; b++)
                p += m->basis[b * m->rank + q] * z[b];
            r -= m->basis[a * m->rank + q] * p;
        }
        r2 += r * r;
    }
    return r2;
}

/* The refit's admission on candidates graded off the relation (offsets
 * 0.01 x 1.08^j, j < 60, against the normal rows' noise of 0.1): with
 * Box's limit, exactly the normal rows and the candidates whose SPE in
 * the first map is within g chi2_h(0.99) of the normal rows' SPE
 * cross-validated in 10 folds (the k-th normal row in fold k mod 10), all
 * recomputed here; with the old limit, those within the normal rows'
 * largest in-sample SPE.  The two limits differ on this plant, so the
 * admitted sets do. */
enum { A_NORMAL = 40, A_CAND = 60, A_ROWS = A_NORMAL + A_CAND };

START_TEST(trimmed_fit_admits_under_the_control_limit)
{
    static float means[A_ROWS * C];
    static uint8_t normal[A_ROWS], mask[A_ROWS], train[A_ROWS];
    struct relations_fit first, fold, got;
    double spe[A_NORMAL], lim_box, lim_max = 0, lim;
    uint32_t n, n_box = 0, n_max = 0;

    for (uint32_t i = 0; i < A_ROWS; i++) {
        int nor = i < A_NORMAL;
        double u = nor ? sin(0.37 * i) * 3 : 2.5 * sin(0.91 * i + 1), v = nor ? cos(1.13 * i + 0.4) * 2 : 1.5 * cos(0.53 * i);
        double off = nor ? 0.1 * sin(7.1 * i) : 0.01 * pow(1.08, i - A_NORMAL);

        means[i * C] = (float)u;
        means[i * C + 1] = (float)(2 * u + 5 + off);
        means[i * C + 2] = (float)v;
        normal[i] = (uint8_t)nor;
    }
    ck_assert_int_eq(ds_relations_fit(means, A_ROWS, C, normal, RELATIONS_VAR_KEEP, &first), 0);
    for (uint32_t f = 0; f < 10; f++) {
        for (uint32_t i = 0; i < A_ROWS; i++)
            train[i] = (uint8_t)(i < A_NORMAL && i % 10 != f);
        ck_assert_int_eq(ds_relations_fit(means, A_ROWS, C, train, RELATIONS_VAR_KEEP, &fold), 0);
        for (uint32_t i = f; i < A_NORMAL; i += 10)
            spe[i] = spe_of(&fold.map, means + i * C);
    }
    lim_box = ds_relations_spe_limit(spe, A_NORMAL, 0.99);
    for (uint32_t i = 0; i < A_NORMAL; i++)
        lim_max = fmax(lim_max, spe_of(&first.map, means + i * C));
    ck_assert(lim_box > 0 && lim_max > 0);

    ck_assert_int_eq(ds_relations_fit_trimmed_by(means, A_ROWS, C, normal, NULL, RELATIONS_VAR_KEEP,
                                                 RELATIONS_LIMIT_BOX, 0.99, &got, &n, mask, &lim), 0);
    ck_assert(fabs(lim - lim_box) <= 1e-9 * lim_box);
    for (uint32_t i = 0; i < A_ROWS; i++) {
        double e = spe_of(&first.map, means + i * C);
        /* a hair's margin either side of the limit: the float rounding of
         * two ways to compute one SPE must not decide the test */
        if (!normal[i] && fabs(e - lim_box) < 1e-6 * lim_box)
            continue;
        ck_assert_msg(mask[i] == (normal[i] || e <= lim_box), "row %u: SPE %g, limit %g", i, e, lim_box);
        n_box += mask[i];
    }
    ck_assert_uint_eq(n, n_box);
    ck_assert(n_box > A_NORMAL && n_box < A_ROWS);   /* some candidates in, some out */

    ck_assert_int_eq(ds_relations_fit_trimmed_by(means, A_ROWS, C, normal, NULL, RELATIONS_VAR_KEEP,
                                                 RELATIONS_LIMIT_MAX, 0.99, &got, &n, mask, &lim), 0);
    ck_assert(fabs(lim - lim_max) <= 1e-9 * lim_max);
    for (uint32_t i = 0; i < A_ROWS; i++) {
        ck_assert(mask[i] == (normal[i] || spe_of(&first.map, means + i * C) <= lim_max));
        n_max += mask[i];
    }
    ck_assert_uint_eq(n, n_max);
    ck_assert_uint_ne(n_box, n_max);

    /* the default is one of the two, and the plain entry point is it */
    ck_assert_int_eq(ds_relations_fit_trimmed(means, A_ROWS, C, normal, NULL, NULL, RELATIONS_VAR_KEEP, &got, &n, mask), 0);
    ck_assert_uint_eq(n, RELATIONS_LIMIT_DEFAULT == RELATIONS_LIMIT_BOX ? n_box : n_max);
    ck_assert_int_eq(ds_relations_fit_trimmed_by(means, A_ROWS, C, normal, NULL, RELATIONS_VAR_KEEP,
                                                 (enum relations_limit)7, 0.99, &got, &n, mask, &lim), MODEL_EINVAL);
    ck_assert_int_eq(ds_relations_fit_trimmed_by(means, A_ROWS, C, normal, NULL, RELATIONS_VAR_KEEP,
                                                 RELATIONS_LIMIT_BOX, 1.0, &got, &n, mask, &lim), MODEL_EINVAL);
}
END_TEST

/* The labels' guard.  40 commissioning rows and 60 candidates on the
 * relation around the usual operating point; 20 candidates on the
 * relation too (the first map cannot tell them from normal: SPE under the
 * limit) but where the third channel sits far off, at 8, as do 5 rows the
 * operator labeled a fault.  Unguarded, the 20 join the map; guarded, the
 * labels keep them out and the rest is the same fit.  A fault mask that
 * marks nothing, or only rows that are also normal, changes nothing. */
enum { G_COMM = 40, G_GOOD = 60, G_LIKE = 20, G_FAULT = 5, G_ROWS = G_COMM + G_GOOD + G_LIKE + G_FAULT };

START_TEST(label_guard_keeps_the_look_alikes_of_labeled_faults_out)
{
    static float means[G_ROWS * C];
    static uint8_t normal[G_ROWS], cand[G_ROWS], fault[G_ROWS], mask[G_ROWS], expect[G_ROWS];
    struct relations_fit got, want;
    uint32_t n = 0;

    for (uint32_t i = 0; i < G_ROWS; i++) {
        double u, v, off = 0;

        if (i < G_COMM) {
            u = sin(0.37 * i) * 3;
            v = cos(1.13 * i + 0.4) * 2;
            off = 0.1 * sin(7.1 * i);
        } else if (i < G_COMM + G_GOOD) {
            u = 2.5 * sin(0.91 * i + 1);
            v = 1.5 * cos(0.53 * i);
        } else if (i < G_COMM + G_GOOD + G_LIKE) {
            u = 2.5 * sin(0.91 * i + 1);
            v = 8 + 0.3 * sin(1.7 * i);
        } else {
            u = -2.0 + (i - (G_COMM + G_GOOD + G_LIKE));    /* -2 .. 2 */
            v = 8 + 0.3 * cos(1.3 * i);
        }
        means[i * C] = (float)u;
        means[i * C + 1] = (float)(2 * u + 5 + off);
        means[i * C + 2] = (float)v;
        normal[i] = (uint8_t)(i < G_COMM);
        fault[i] = (uint8_t)(i >= G_COMM + G_GOOD + G_LIKE);
        cand[i] = (uint8_t)!normal[i] && !fault[i];
        expect[i] = (uint8_t)(i < G_COMM + G_GOOD);
    }

    /* unguarded: the look-alikes are normal to the first map */
    ck_assert_int_eq(ds_relations_fit_trimmed(means, G_ROWS, C, normal, cand, NULL, RELATIONS_VAR_KEEP,
                                              &got, &n, mask), 0);
    ck_assert_uint_eq(n, G_COMM + G_GOOD + G_LIKE);

    /* guarded: exactly the commissioning rows and the usual candidates,
     * the fit on them float for float */
    ck_assert_int_eq(ds_relations_fit_trimmed(means, G_ROWS, C, normal, cand, fault, RELATIONS_VAR_KEEP,
                                              &got, &n, mask), 0);
    ck_assert_uint_eq(n, G_COMM + G_GOOD);
    ck_assert(memcmp(mask, expect, sizeof mask) == 0);
    ck_assert_int_eq(ds_relations_fit(means, G_ROWS, C, expect, RELATIONS_VAR_KEEP, &want), 0);
    ck_assert(memcmp(got.mean, want.mean, sizeof got.mean) == 0);
    ck_assert(memcmp(got.basis, want.basis, sizeof got.basis) == 0);

    /* a fault row is never admitted, even when offered as a candidate */
    memset(cand, 1, sizeof cand);
    ck_assert_int_eq(ds_relations_fit_trimmed(means, G_ROWS, C, normal, cand, fault, RELATIONS_VAR_KEEP,
                                              &got, &n, mask), 0);
    for (uint32_t i = G_COMM + G_GOOD + G_LIKE; i < G_ROWS; i++)
        ck_assert(!mask[i]);

    /* a mask with no fault row outside the normal ones: the unguarded fit */
    memset(fault, 0, sizeof fault);
    fault[0] = fault[1] = 1;
    for (uint32_t i = 0; i < G_ROWS; i++)
        cand[i] = (uint8_t)!normal[i];
    ck_assert_int_eq(ds_relations_fit_trimmed(means, G_ROWS, C, normal, cand, fault, RELATIONS_VAR_KEEP,
                                              &got, &n, NULL), 0);
    ck_assert_uint_eq(n, G_ROWS);    /* every row is on the relation */
    ck_assert_int_eq(ds_relations_fit_trimmed_by(means, G_ROWS, C, normal, cand, RELATIONS_VAR_KEEP,
                                                 RELATIONS_LIMIT_DEFAULT, RELATIONS_LIMIT_CONF, &want, &n,
                                                 NULL, NULL), 0);
    ck_assert_uint_eq(n, G_ROWS);
    ck_assert(memcmp(got.basis, want.basis, sizeof got.basis) == 0);
}
END_TEST

/* The T-squared limit (RELATIONS_LIMIT_T2, a bench option).  40
 * commissioning rows and 60 usual candidates on the relation around the
 * usual operating point, 20 candidates on the relation too but far along
 * it (x0 at 9, three times farther than normal operation went): their
 * SPE is under the limit, so the SPE alone admits them; their T-squared
 * (the scores over the eigenvalues, computed here by hand from the
 * first map's basis and eigenvalues) is beyond the largest of the
 * commissioning rows', so the second statistic keeps them out. */
enum { Q_COMM = 40, Q_GOOD = 60, Q_FAR = 20, Q_ROWS = Q_COMM + Q_GOOD + Q_FAR };

static double t2_of(const struct relations_fit *f, const float *row)
{
    double z[C], t2 = 0;

    for (uint32_t a = 0; a < C; a++)
        z[a] = (row[a] - f->map.mean[a]) / f->map.scale[a];
    for (uint32_t q = 0; q < f->map.rank; q++) {
        double t = 0;

        for (uint32_t a = 0; a < C; a++)
            t += f->map.basis[a * f->map.rank + q] * z[a];
        t2 += t * t / f->eig[q];
    }
    return t2;
}

START_TEST(t2_limit_keeps_out_what_goes_beyond_normal_along_the_relations)
{
    static float means[Q_ROWS * C];
    static uint8_t normal[Q_ROWS], mask[Q_ROWS];
    struct relations_fit first, got;
    double spe_lim = 0, t2_lim = 0, eig_sum = 0;
    uint32_t n = 0, n_want = 0;

    /* Whole periods over the 40 commissioning rows: x0, x2 and the
     * relation's noise uncorrelated there, so the first map's residual
     * is the relation's own direction; the far rows sit on the relation. */
    for (uint32_t i = 0; i < Q_ROWS; i++) {
        double ph = 2 * M_PI * i / Q_COMM, u, v, noise;

        if (i < Q_COMM) {
            u = 3 * sin(ph);
            v = 2 * cos(3 * ph);
            noise = 0.5 * sin(7 * ph);
        } else if (i < Q_COMM + Q_GOOD) {
            u = 2.5 * sin(0.91 * i + 1);
            v = 1.5 * cos(0.53 * i);
            noise = 0.3 * sin(7.1 * i);
        } else {
            u = 9 + 0.5 * sin(1.3 * i);
            v = 1.5 * cos(0.53 * i);
            noise = 0;
        }
        means[i * C] = (float)u;
        means[i * C + 1] = (float)(2 * u + 5 + noise);
        means[i * C + 2] = (float)v;
        normal[i] = (uint8_t)(i < Q_COMM);
    }
    ck_assert_int_eq(ds_relations_fit(means, Q_ROWS, C, normal, RELATIONS_VAR_KEEP, &first), 0);
    ck_assert_uint_eq(first.map.rank, 2);
    for (uint32_t q = 0; q < first.map.rank; q++) {
        ck_assert(first.eig[q] > 0.5);
        eig_sum += first.eig[q];
    }
    ck_assert(first.eig[0] >= first.eig[1]);
    ck_assert(eig_sum > 0.99 * C * first.explained && eig_sum < 1.01 * C * first.explained);
    for (uint32_t i = 0; i < Q_COMM; i++) {
        double e = spe_of(&first.map, means + i * C), t = t2_of(&first, means + i * C);

        spe_lim = e > spe_lim ? e : spe_lim;
        t2_lim = t > t2_lim ? t : t2_lim;
    }

    /* the SPE alone: the far rows are on the relation and join */
    ck_assert_int_eq(ds_relations_fit_trimmed_by(means, Q_ROWS, C, normal, NULL, RELATIONS_VAR_KEEP,
                                                 RELATIONS_LIMIT_MAX, 0.99, &got, &n, mask, NULL), 0);
    for (uint32_t i = Q_COMM + Q_GOOD; i < Q_ROWS; i++) {
        ck_assert(spe_of(&first.map, means + i * C) <= spe_lim);
        ck_assert(mask[i]);
    }

    /* both limits: exactly the rows under both, the far ones out */
    ck_assert_int_eq(ds_relations_fit_trimmed_by(means, Q_ROWS, C, normal, NULL, RELATIONS_VAR_KEEP,
                                                 RELATIONS_LIMIT_MAX | RELATIONS_LIMIT_T2, 0.99, &got, &n,
                                                 mask, NULL), 0);
    for (uint32_t i = 0; i < Q_ROWS; i++) {
        int want = normal[i] || (spe_of(&first.map, means + i * C) <= spe_lim &&
                                 t2_of(&first, means + i * C) <= t2_lim);

        ck_assert_msg(mask[i] == want, "row %u", i);
        n_want += (uint32_t)want;
    }
    ck_assert_uint_eq(n, n_want);
    for (uint32_t i = Q_COMM + Q_GOOD; i < Q_ROWS; i++)
        ck_assert(!mask[i]);
    ck_assert(n > Q_COMM);           /* usual candidates still join */
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
    tcase_add_test(tc, chi2_quantile_matches_the_tables);
    tcase_add_test(tc, spe_limit_by_hand);
    tcase_add_test(tc, trimmed_fit_admits_under_the_control_limit);
    tcase_add_test(tc, label_guard_keeps_the_look_alikes_of_labeled_faults_out);
    tcase_add_test(tc, t2_limit_keeps_out_what_goes_beyond_normal_along_the_relations);
    suite_add_tcase(s, tc);
    return s;
}
