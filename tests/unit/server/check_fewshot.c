/* check_fewshot.c - the few-shot learner, its baselines and the evaluation:
 * a class seen in two forms (which one centroid cannot hold), the use of
 * unlabeled windows, transfer through per-domain standardisation, the
 * Wilson interval against hand-computed values, and the refusals when the
 * labels cannot support a figure. */
#include "server/models/models_fewshot.h"
#include "server/srv/srv.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/model.h"

Suite *fewshot_suite(void);

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double nrm(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    double u = ((rs >> 11) + 1.0) / 9007199254740993.0;
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    double v = (rs >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* Class 0 at (0,0); class 1 in two forms, at (+6,0) and (-6,0): its one
 * centroid sits on class 0.  Rows 0..9 labeled (5 of class 0, 5 of class 1:
 * 3 of one form, 2 of the other); the rest unlabeled. */
#define NR 400
static float X[NR * 2];
static int32_t Y[NR], L[NR];

static void two_forms(void)
{
    for (int i = 0; i < NR; i++) {
        int cls = i % 2, form = (i / 2) % 2;
        Y[i] = cls;
        X[2 * i] = (float)((cls ? (form ? 6.0 : -6.0) : 0.0) + 0.7 * nrm());
        X[2 * i + 1] = (float)(0.7 * nrm());
        L[i] = i < 10 ? cls : FEWSHOT_UNLABELED;
    }
}

START_TEST(prototypes_hold_a_class_in_two_forms)
{
    struct fewshot_data d = { .x = X, .n_rows = NR, .n_feat = 2, .label = L, .n_classes = 2 };
    struct fewshot_params p;
    struct fewshot_model m;
    struct fewshot_baseline cen;
    uint32_t ok_fs = 0, ok_cen = 0;

    two_forms();
    models_fewshot_defaults(&p);
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), 0);
    ck_assert_int_eq(models_baseline_fit(&d, 0, &cen), 0);
    for (int i = 10; i < NR; i++) {
        ok_fs += models_fewshot_predict(&m, X + 2 * i, NULL) == Y[i];
        ok_cen += models_baseline_predict(&cen, X + 2 * i) == Y[i];
    }
    ck_assert_uint_ge(ok_fs, (NR - 10) * 95 / 100);
    ck_assert_uint_le(ok_cen, (NR - 10) * 80 / 100);    /* one centroid per class cannot */
    ck_assert_uint_ge(m.n_protos, 3);
    ck_assert_uint_eq(models_fewshot_bytes(&m), 4 * (2 * 2 + m.n_protos * (2 + 1)));
    models_fewshot_release(&m);
    models_baseline_release(&cen);
}
END_TEST

/* Labeled rows of a related machine (domain 1) whose features are offset
 * and scaled: standardised by their own domain they land on the target's
 * classes.  With one labeled target row per class and the related rows,
 * the target's unlabeled rows are classified. */
START_TEST(transfer_through_domain_standardisation)
{
    enum { N = 300 };
    static float x[N];
    static int32_t y[N], lab[N];
    static uint32_t dom[N];
    static float w[N];
    struct fewshot_params p;
    struct fewshot_model m;
    uint32_t ok = 0, n = 0;

    for (int i = 0; i < N; i++) {
        int cls = i % 2, related = i >= N / 2;
        double v = (cls ? 2.0 : -2.0) + 0.5 * nrm();
        x[i] = (float)(related ? 100.0 + 10.0 * v : v);
        y[i] = cls;
        dom[i] = (uint32_t)related;
        lab[i] = (related && i < N / 2 + 20) || i < 2 ? cls : FEWSHOT_UNLABELED;
        w[i] = related ? 0.5f : 1.0f;
    }
    struct fewshot_data d = { .x = x, .n_rows = N, .n_feat = 1, .label = lab, .weight = w,
                              .domain = dom, .n_classes = 2 };
    models_fewshot_defaults(&p);
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), 0);
    for (int i = 2; i < N / 2; i++, n++)
        ok += models_fewshot_predict(&m, x + i, NULL) == y[i];
    ck_assert_uint_ge(ok, n * 95 / 100);
    models_fewshot_release(&m);
    /* related labels support a class; they cannot found one on the target */
    lab[0] = lab[1] = FEWSHOT_UNLABELED;
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), MODEL_ETOOFEW);
}
END_TEST

/* Two interleaved half-moons, five labels at one end of each: the far end
 * of a moon lies nearer the other moon's labels than its own, so a label
 * must travel along its moon through the unlabeled rows to get there.
 * Label spreading (propagate > 0) carries it; the result is still a
 * nearest-prototype model of the same shape. */
START_TEST(label_spreading_follows_the_unlabeled_rows)
{
    enum { N = 600 };
    static float x[2 * N];
    static int32_t y[N], lab[N];
    struct fewshot_params p;
    struct fewshot_model m;
    uint32_t ok_spread = 0, ok_self = 0, n = 0, a_seen = 0, b_seen = 0;

    for (int i = 0; i < N; i++) {
        int cls = i % 2;
        double th = 3.141592653589793 * (i / 2) / (N / 2 - 1);
        y[i] = cls;
        x[2 * i] = (float)(3 * (cls ? 1 - cos(th) : cos(th)) + 0.15 * nrm());
        x[2 * i + 1] = (float)(3 * (cls ? 0.5 - sin(th) : sin(th)) + 0.15 * nrm());
        /* labels: class 0 near theta = pi (its left end), class 1 near theta = 0 (its left end) */
        lab[i] = FEWSHOT_UNLABELED;
        if (cls == 0 && i / 2 >= N / 2 - 5 && a_seen < 5) {
            lab[i] = 0;
            a_seen++;
        } else if (cls == 1 && i / 2 < 5 && b_seen < 5) {
            lab[i] = 1;
            b_seen++;
        }
    }
    struct fewshot_data d = { .x = x, .n_rows = N, .n_feat = 2, .label = lab, .n_classes = 2 };
    models_fewshot_defaults(&p);
    ck_assert_uint_eq(p.propagate, 0);            /* off unless asked */
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), 0);
    for (int i = 0; i < N; i++)
        if (lab[i] < 0)
            ok_self += models_fewshot_predict(&m, x + 2 * i, NULL) == y[i];
    models_fewshot_release(&m);
    p.propagate = 10;
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), 0);
    for (int i = 0; i < N; i++)
        if (lab[i] < 0) {
            ok_spread += models_fewshot_predict(&m, x + 2 * i, NULL) == y[i];
            n++;
        }
    ck_assert_uint_eq(models_fewshot_bytes(&m), 4 * (2 * 2 + m.n_protos * (2 + 1)));
    models_fewshot_release(&m);
    /* measured: 572 of 590 spread, 406 by self-training's nearest labeled row */
    ck_assert_uint_ge(ok_spread, n * 90 / 100);
    ck_assert_uint_gt(ok_spread, ok_self);
}
END_TEST

/* The scale a model measures distances in: by default the spread of the
 * reference rows; with scale_rows, the spread of those rows instead (a map
 * of normal operation's fit windows, many more than a commissioning).
 * Uniform metric (shrink 0) so the scale is the spread alone: 1 / (1.4826
 * MAD) of the rows it is measured on. */
START_TEST(scale_rows_set_the_spread)
{
    enum { N = 200 };
    static float x[N];
    static int32_t lab[N];
    static uint8_t ref[N], wide[N];
    static uint32_t dev[N];
    struct fewshot_params p;
    struct fewshot_model m;

    for (int i = 0; i < N; i++) {
        /* reference rows 0..19 within +-0.5 (MAD 0.25), the rest within +-4 */
        double u = ((i * 37) % 100) / 99.0 - 0.5;
        x[i] = (float)(i < 20 ? u : 8 * u);
        lab[i] = i == 0 ? 0 : i == N - 1 ? 1 : FEWSHOT_UNLABELED;
        ref[i] = i < 20;
        wide[i] = 1;
        dev[i] = 0;
    }
    x[N - 1] = 3.0f;
    struct fewshot_data d = { .x = x, .n_rows = N, .n_feat = 1, .label = lab, .n_classes = 2,
                              .device = dev, .reference = ref, .reference_class = -1 };
    models_fewshot_defaults(&p);
    p.shrink = 0;
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), 0);
    float narrow_scale = m.scale[0];
    models_fewshot_release(&m);
    d.scale_rows = wide;
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), 0);
    /* the wide rows spread about 6.4 times as far: the scale shrinks by as much */
    ck_assert(narrow_scale / m.scale[0] > 4.0f && narrow_scale / m.scale[0] < 10.0f);
    {
        float v[N], med, mad;
        memcpy(v, x, sizeof v);
        for (int a = 1; a < N; a++)          /* insertion sort: the median and MAD by definition */
            for (int b = a; b > 0 && v[b - 1] > v[b]; b--) {
                float t = v[b]; v[b] = v[b - 1]; v[b - 1] = t;
            }
        med = v[N / 2];
        for (int a = 0; a < N; a++)
            v[a] = fabsf(x[a] - med);
        for (int a = 1; a < N; a++)
            for (int b = a; b > 0 && v[b - 1] > v[b]; b--) {
                float t = v[b]; v[b] = v[b - 1]; v[b - 1] = t;
            }
        mad = 1.4826f * v[N / 2];
        ck_assert_float_eq_tol(m.scale[0], 1.0f / mad, 1e-5f);
    }
    models_fewshot_release(&m);
}
END_TEST

START_TEST(bad_input_refused)
{
    float x[4] = { 0, 1, NAN, 3 };
    int32_t lab[4] = { 0, 1, 0, 1 };
    struct fewshot_data d = { .x = x, .n_rows = 4, .n_feat = 1, .label = lab, .n_classes = 2 };
    struct fewshot_params p;
    struct fewshot_model m;

    models_fewshot_defaults(&p);
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), MODEL_EINVAL);     /* NaN */
    x[2] = 2;
    lab[3] = 5;
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), MODEL_EINVAL);     /* class out of range */
    lab[1] = lab[3] = 0;
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), MODEL_ETOOFEW);    /* class 1: no row */
    lab[1] = 1;
    p.protos = 0;
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &m), MODEL_EINVAL);
}
END_TEST

/* Four machines run at set-points 30 apart; on each, normal sits at its
 * set-point and the fault 4 above it on feature 0.  Labels come from
 * machine 0 only.  Measured from one fleet-wide center, machine 2's normal
 * rows sit past machine 0's fault; centred on each machine's commissioning
 * rows (its reference) they are where machine 0's normal rows are. */
START_TEST(device_reference_removes_an_offset)
{
    enum { N = 800, PER = 200, REF = 20 };
    static float x[N * 2], zr[N * 2];
    static int32_t y[N], lab[N];
    static uint32_t dev[N];
    static uint8_t ref[N];
    struct fewshot_params p;
    struct fewshot_model with, without;
    uint32_t ok_with = 0, ok_without = 0, n = 0;

    for (int i = 0; i < N; i++) {
        int machine = i / PER, k = i % PER, cls = k >= REF && k % 2;

        dev[i] = 100u + (uint32_t)machine;     /* any ids */
        ref[i] = k < REF;
        y[i] = cls;
        x[2 * i] = (float)(30.0 * machine + (cls ? 4.0 : 0.0) + 0.5 * nrm());
        x[2 * i + 1] = (float)(30.0 * machine + 0.5 * nrm());
        lab[i] = machine == 0 && k >= REF && k < REF + 10 ? cls : FEWSHOT_UNLABELED;
    }
    struct fewshot_data d = { .x = x, .n_rows = N, .n_feat = 2, .label = lab, .n_classes = 2,
                              .device = dev, .reference = ref, .reference_class = 0 };
    struct fewshot_data flat = d;

    flat.device = NULL;
    flat.reference = NULL;
    flat.reference_class = -1;
    models_fewshot_defaults(&p);
    ck_assert_int_eq(models_fewshot_fit(&d, &p, &with), 0);
    ck_assert_int_eq(models_fewshot_fit(&flat, &p, &without), 0);
    ck_assert_uint_eq(with.n_dev, 4);
    for (int i = PER; i < N; i++) {
        if (ref[i])
            continue;
        n++;
        ok_with += models_fewshot_predict_device(&with, dev[i], x + 2 * i, NULL) == y[i];
        ok_without += models_fewshot_predict(&without, x + 2 * i, NULL) == y[i];
    }
    ck_assert_uint_ge(ok_with, n * 95 / 100);
    ck_assert_uint_le(ok_without, n * 70 / 100);
    /* the referenced rows: each machine's commissioning rows around 0 */
    ck_assert_int_eq(models_fewshot_referenced(&d, zr), 0);
    for (int machine = 0; machine < 4; machine++) {
        double mean = 0;
        for (int k = 0; k < REF; k++)
            mean += zr[2 * (machine * PER + k) + 1] / REF;
        ck_assert_double_lt(fabs(mean), 1.0);
    }
    /* a machine the model has no reference of: the pooled center */
    ck_assert_ptr_eq(models_fewshot_center(&with, 7), with.center);
    ck_assert_ptr_ne(models_fewshot_center(&with, 102), with.center);
    models_fewshot_release(&with);
    models_fewshot_release(&without);
}
END_TEST

/* Wilson 95% for 8/10: 0.4902..0.9433; for 0/5: 0..0.4345 (by hand from
 * the formula with z = 1.96). */
START_TEST(wilson_interval)
{
    double lo, hi;
    srv_wilson95(8, 10, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.4902, 1e-3);
    ck_assert_double_eq_tol(hi, 0.9433, 1e-3);
    srv_wilson95(0, 5, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.0, 1e-9);
    ck_assert_double_eq_tol(hi, 0.4345, 1e-3);
    /* every one a hit: the upper end is 1 exactly, not 1 less an ulp */
    for (uint64_t n = 1; n <= 500; n++) {
        srv_wilson95(n, n, &lo, &hi);
        ck_assert(hi == 1.0);
        ck_assert(lo > 0.0 && lo < 1.0);
    }
}
END_TEST

START_TEST(tally_refuses_thin_figures)
{
    int32_t truth[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, -1 };
    int32_t pred[12] = { 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1 };
    struct eval_report r;

    models_eval_tally(truth, pred, 12, 2, 0, &r);
    ck_assert_int_eq(r.accuracy.ok, 1);
    ck_assert_uint_eq(r.accuracy.n, 11);
    ck_assert_uint_eq(r.accuracy.hits, 9);
    ck_assert_int_eq(r.recall[0].ok, 1);
    ck_assert_double_eq_tol(r.recall[0].value, 7.0 / 8, 1e-9);
    ck_assert_int_eq(r.recall[1].ok, 0);               /* 3 windows of class 1 */
    ck_assert_ptr_nonnull(strstr(r.recall[1].why, "3 test windows"));
    ck_assert_int_eq(r.false_alarm.ok, 1);
    ck_assert_uint_eq(r.false_alarm.hits, 1);
    ck_assert_int_eq(r.detection.ok, 0);
    models_eval_tally(truth, pred, 9, 2, 0, &r);       /* 9 windows: no accuracy */
    ck_assert_int_eq(r.accuracy.ok, 0);
    ck_assert_ptr_nonnull(strstr(r.accuracy.why, "at least 10"));
}
END_TEST

/* One group: leave-one-group-out has nothing to leave out.  Two groups, but
 * class 1 labeled in one: its recall is refused, not reported as 0. */
START_TEST(logo_refuses_what_it_cannot_test)
{
    static uint32_t g[NR];
    struct fewshot_data d = { .x = X, .n_rows = NR, .n_feat = 2, .label = Y, .n_classes = 2 };
    struct eval_report r;
    struct fewshot_params p;

    two_forms();
    models_fewshot_defaults(&p);
    ck_assert_int_eq(models_eval_logo(&d, g, EVAL_KNN, &p, 3, -1, &r), 0);
    ck_assert_int_eq(r.accuracy.ok, 0);
    ck_assert_ptr_nonnull(strstr(r.accuracy.why, "one group"));
    for (int i = 0; i < NR; i++)
        g[i] = Y[i] == 1 ? 1 : (uint32_t)(i % 4 == 0 ? 1 : 0);    /* class 1 only in group 1 */
    ck_assert_int_eq(models_eval_logo(&d, g, EVAL_CENTROID, &p, 0, -1, &r), 0);
    ck_assert_uint_eq(r.n_groups, 2);
    ck_assert_int_eq(r.recall[1].ok, 0);
    ck_assert_ptr_nonnull(strstr(r.recall[1].why, "labeled in 1 group"));
    for (int i = 0; i < NR; i++)
        g[i] = (uint32_t)(i % 3);
    ck_assert_int_eq(models_eval_logo(&d, g, EVAL_FEWSHOT, &p, 0, -1, &r), 0);
    ck_assert_int_eq(r.accuracy.ok, 1);
    ck_assert_int_eq(r.recall[1].ok, 1);
    ck_assert(r.accuracy.lo <= r.accuracy.value && r.accuracy.value <= r.accuracy.hi);
    ck_assert_double_ge(r.accuracy.value, 0.95);
}
END_TEST

Suite *fewshot_suite(void)
{
    Suite *s = suite_create("fewshot");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, prototypes_hold_a_class_in_two_forms);
    tcase_add_test(tc, transfer_through_domain_standardisation);
    tcase_add_test(tc, bad_input_refused);
    tcase_add_test(tc, label_spreading_follows_the_unlabeled_rows);
    tcase_add_test(tc, scale_rows_set_the_spread);
    tcase_add_test(tc, device_reference_removes_an_offset);
    tcase_add_test(tc, wilson_interval);
    tcase_add_test(tc, tally_refuses_thin_figures);
    tcase_add_test(tc, logo_refuses_what_it_cannot_test);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
