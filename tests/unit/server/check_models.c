/* check_models.c - the server's model maths: training with known answers
 * (the Gaussian recovers mean and deviation, the centroids separate their
 * classes and name a class with no example), window features of a sine, and
 * the generated C header computing the same bits as the signed blob (the
 * header is compiled and run by the host compiler; the test is skipped,
 * loudly, when `cc` is absent). */
#include "server/models/models.h"

#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../featgolden.h"
#include "server/datasets/datasets.h"
#include "server/models/models_fewshot.h"

#include "schema/model.h"

static uint8_t g_pk[MODEL_PK_LEN], g_sk[MODEL_SK_LEN];

static void keys_seed(uint8_t first, uint8_t *pk, uint8_t *sk)
{
    uint8_t seed[32];

    ck_assert_int_ge(sodium_init(), 0);
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(first + i);
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
}

/* Deterministic normal deviates: xorshift64* + Box-Muller. */
static uint64_t g_rng = 88172645463325252ull;
static double urand(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return ((double)((g_rng * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void)
{
    return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand());
}

#define D 14         /* 2 channels x 7 features of the "stats" set */
#define N 4000

static float *synthetic_normal(size_t n)
{
    float *X = malloc(n * D * sizeof *X);

    ck_assert_ptr_nonnull(X);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++)
            X[i * D + j] = (float)(j + (1.0 + 0.5 * j) * nrand());
    return X;
}

static void layout_of(uint8_t out[MODEL_LAYOUT_LEN], const char *first)
{
    const char *names[2] = { first, "ch1" }, *units[2] = { "g", "g" };
    ck_assert_int_eq(model_layout_digest(names, units, 2, out), 0);
}

static struct model *anomaly_model(void)
{
    struct model *m = calloc(1, sizeof *m);
    float *X = synthetic_normal(N);

    ck_assert_ptr_nonnull(m);
    m->channel_count = 2;
    m->features = (struct featureset_spec){ FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 256,
                                            1000.0f, FEATURESET_NO_KIN, NULL };
    m->version = 7;
    layout_of(m->layout, "ch0");
    ck_assert_int_eq(models_train_anomaly(X, N, D, 0.99f, m), 0);
    free(X);
    return m;
}

START_TEST(anomaly_known_answers)
{
    struct model *m = anomaly_model();
    float x[D], *X;
    size_t above = 0;

    /* Mean j and deviation 1 + j/2 recovered within sampling error. */
    for (int j = 0; j < D; j++) {
        double sd = 1.0 + 0.5 * j;
        ck_assert_msg(fabs(m->params[j] - j) < 0.1 * sd, "mean[%d] = %g", j, m->params[j]);
        ck_assert_msg(fabs(1.0 / m->params[D + j] / sd - 1.0) < 0.05, "sd[%d]", j);
    }
    ck_assert_int_eq(m->param_count, 2 * D + 1);
    /* The mean scores ~0, a 6-sigma excursion on every feature ~1. */
    for (int j = 0; j < D; j++)
        x[j] = (float)j;
    ck_assert_float_lt(model_score(m, x, D), 0.01f);
    for (int j = 0; j < D; j++)
        x[j] = (float)(j + 6.0 * (1.0 + 0.5 * j));
    ck_assert_float_gt(model_score(m, x, D), 0.9f);
    /* Fresh normal data: about 1 % above the threshold (the 0.99 quantile). */
    X = synthetic_normal(N);
    for (size_t i = 0; i < N; i++)
        above += model_score(m, X + i * D, D) >= m->threshold;
    ck_assert_msg(above > N / 200 && above < N * 3 / 100, "above = %zu", above);
    /* Wrong length scores 0. */
    ck_assert_float_eq(model_score(m, x, D - 1), 0.0f);
    free(X);
    free(m);
}
END_TEST

START_TEST(centroid_known_answers)
{
    enum { K = 3, PER = 30 };
    static float X[K * PER * D];
    int y[K * PER], bad = -1, correct = 0;
    struct model *m = calloc(1, sizeof *m);
    float p[K];

    for (int c = 0; c < K; c++)
        for (int i = 0; i < PER; i++) {
            y[c * PER + i] = c;
            for (int j = 0; j < D; j++)
                X[(c * PER + i) * D + j] = (float)(5.0 * c * (j % 2 ? 1 : -1) + nrand());
        }
    m->channel_count = 2;
    m->features = (struct featureset_spec){ FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 256,
                                            1000.0f, FEATURESET_NO_KIN, NULL };
    ck_assert_int_eq(models_train_centroid(X, y, K * PER, D, K, 0, m, &bad), 0);
    ck_assert_int_eq(m->param_count, 2 * D + K * D);
    for (int t = 0; t < 300; t++) {
        int c = t % K;
        float x[D];

        for (int j = 0; j < D; j++)
            x[j] = (float)(5.0 * c * (j % 2 ? 1 : -1) + nrand());
        correct += model_classify(m, x, D, p) == c;
        if (c == 0)
            ck_assert_float_lt(model_score(m, x, D), 0.5f);
        else
            ck_assert_float_gt(model_score(m, x, D), 0.5f);
        ck_assert_float_eq_tol(p[0] + p[1] + p[2], 1.0f, 1e-5f);
    }
    ck_assert_int_eq(correct, 300);
    /* A class with no example: refused, and named. */
    for (int i = 0; i < K * PER; i++)
        if (y[i] == 2)
            y[i] = 1;
    ck_assert_int_eq(models_train_centroid(X, y, K * PER, D, K, 0, m, &bad), MODEL_ETOOFEW);
    ck_assert_int_eq(bad, 2);
    free(m);
}
END_TEST

/* Compile the header with the host compiler, run it on the test vector and
 * on 50 more fixed inputs, and compare the float bits with model_score on
 * the model read back from its blob. */
static void header_equivalence(struct model *m)
{
    char dir[] = "/tmp/precursor-model-XXXXXX", path[512], cmd[2048], *hdr;
    uint8_t *b;
    size_t len, hlen;
    struct model *r = calloc(1, sizeof *r);
    float x[MODEL_MAX_FEATURES];
    FILE *f, *p;
    uint32_t n = m->n_features;

    if (system("cc --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "check_model: SKIP header equivalence: no cc\n");
        free(r);
        return;
    }
    keys_seed(0, g_pk, g_sk);
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_int_eq(model_load(b, len, g_pk, NULL, r), 0);
    ck_assert_int_eq(models_emit_header(m, "pm", &hdr, &hlen), 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pm.h", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(hdr, 1, hlen, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/main.c", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#include <stdio.h>\n#include <string.h>\n#include \"pm.h\"\n"
               "static const float in[51][PM_N_FEATURES] = {\n");
    model_test_input(m, x);
    {
        /* inputs around the model's center, in its units: a few-shot
         * model's center and scale sit where its selection puts them, and
         * the features it does not read get any value */
        float ctr[MODEL_MAX_FEATURES], inv[MODEL_MAX_FEATURES];

        for (uint32_t j = 0; j < n; j++) {
            ctr[j] = m->params[j];
            inv[j] = m->params[n + j];
        }
        if (m->kind == MODEL_FEWSHOT) {
            struct model_fewshot_view v;

            model_fewshot_view(m, &v);
            for (uint32_t j = 0; j < n; j++) {
                ctr[j] = x[j];
                inv[j] = 1.0f;
            }
            for (uint32_t i = 0; i < v.n_sel; i++) {
                uint32_t j = v.sel ? (uint32_t)v.sel[i] : i;

                ctr[j] = v.center[i];
                inv[j] = v.scale[i];
            }
        }
        for (int t = 0; t < 51; t++) {
            fprintf(f, "{");
            for (uint32_t j = 0; j < n; j++)
                fprintf(f, "%a,", t == 0 ? (double)x[j] : (double)(float)(ctr[j] + 3.0 * nrand() / inv[j]));
            fprintf(f, "},\n");
        }
    }
    fprintf(f, "};\nint main(void)\n{\n    unsigned u;\n    float s;\n    int t;\n"
               "    if (!pm_self_test()) return 2;\n"
               "    for (t = 0; t < 51; t++) {\n        s = pm_score(in[t]);\n"
               "        memcpy(&u, &s, 4);\n        printf(\"%%08x\\n\", u);\n    }\n    return 0;\n}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -std=c99 -O2 -Wall -Wextra -Werror -o %s/pm %s/main.c -lm && %s/pm > %s/out.txt",
             dir, dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    /* The inputs are read back from the hex literals in main.c, so both
     * sides score exactly the same floats. */
    snprintf(path, sizeof path, "%s/main.c", dir);
    f = fopen(path, "r");
    snprintf(cmd, sizeof cmd, "%s/out.txt", dir);
    p = fopen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(p);
    {
        char line[65536];
        int t = 0;

        while (fgets(line, sizeof line, f)) {
            char *s = line, *e;
            unsigned got, want;
            float sc;

            if (line[0] != '{' || line[1] == '\n')
                continue;
            s++;
            for (uint32_t j = 0; j < n; j++) {
                x[j] = strtof(s, &e);
                s = e + 1;
            }
            ck_assert_int_eq(fscanf(p, "%x", &got), 1);
            sc = model_score(r, x, n);
            memcpy(&want, &sc, 4);
            ck_assert_msg(got == want, "input %d: header %08x blob %08x", t, got, want);
            t++;
        }
        ck_assert_int_eq(t, 51);
    }
    fclose(f);
    fclose(p);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(hdr);
    free(b);
    free(r);
}

START_TEST(header_matches_blob_anomaly)
{
    struct model *m = anomaly_model();
    header_equivalence(m);
    free(m);
}
END_TEST

START_TEST(header_matches_blob_classifier)
{
    enum { K = 3, PER = 10 };
    static float X[K * PER * D];
    int y[K * PER];
    struct model *m = calloc(1, sizeof *m);

    for (int i = 0; i < K * PER; i++) {
        y[i] = i % K;
        for (int j = 0; j < D; j++)
            X[i * D + j] = (float)(2.0 * y[i] * (j % 3 ? 1 : -1) + nrand());
    }
    m->channel_count = 2;
    m->features = (struct featureset_spec){ FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 256,
                                            1000.0f, FEATURESET_NO_KIN, NULL };
    ck_assert_int_eq(models_train_centroid(X, y, K * PER, D, K, 0, m, NULL), 0);
    header_equivalence(m);
    m->normal_class = MODEL_NO_CLASS;
    header_equivalence(m);
    free(m);
}
END_TEST

/* The few-shot learner as the server ships it: 5 labeled windows per
 * class, class 1 in two forms, 90 unlabeled; exported as blob kind 3 it
 * classifies the unlabeled windows, its header scores the same bits, and
 * the flash budget takes prototypes away before it refuses. */
START_TEST(fewshot_export_and_budget)
{
    enum { K = 3, LAB = 5, UNL = 90, NR = K * LAB + UNL };
    static float X[NR * D];
    int32_t lab[NR], truth[NR];
    struct fewshot_data d = { X, NR, D, lab, NULL, NULL, K, NULL, NULL, -1, NULL, NULL, NULL, 0 };
    struct fewshot_params p;
    struct fewshot_model fm;
    struct model *m = calloc(1, sizeof *m);
    uint32_t used = 0, hits = 0;
    size_t one = 4u * (2u * D + K * (D + 1u));

    for (int i = 0; i < NR; i++) {
        int c = i % K, form = (i / K) % 2;

        truth[i] = c;
        lab[i] = i < K * LAB ? c : FEWSHOT_UNLABELED;
        for (int j = 0; j < D; j++) {
            double mu = c == 1 ? (form ? 4.0 : -4.0) * (j % 2 ? 1 : 0)   /* two forms */
                               : 4.0 * c * (j % 3 ? 1 : -1);
            X[i * D + j] = (float)(mu + 0.5 * nrand());
        }
    }
    models_fewshot_defaults(&p);
    ck_assert_int_eq(models_fewshot_fit_budget(&d, &p, 7168, &fm, &used), 0);
    ck_assert_uint_eq(used, p.protos);
    m->channel_count = 2;
    m->features = (struct featureset_spec){ FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 256,
                                            1000.0f, FEATURESET_NO_KIN, NULL };
    ck_assert_int_eq(models_fewshot_export(&fm, 0, m), 0);
    ck_assert_int_eq(model_check(m), 0);
    ck_assert_uint_eq(m->kind, MODEL_FEWSHOT);
    ck_assert_uint_le(4u * m->param_count, 7168);
    for (int i = K * LAB; i < NR; i++)
        hits += model_classify(m, X + i * D, D, NULL) == truth[i];
    ck_assert_uint_ge(hits, UNL * 9 / 10);
    header_equivalence(m);
    models_fewshot_release(&fm);
    /* A budget of one prototype per class: it takes one; below: refused. */
    ck_assert_int_eq(models_fewshot_fit_budget(&d, &p, one, &fm, &used), 0);
    ck_assert_uint_eq(used, 1);
    ck_assert_uint_eq(fm.n_protos, K);
    models_fewshot_release(&fm);
    ck_assert_int_eq(models_fewshot_fit_budget(&d, &p, one - 4, &fm, &used), MODEL_ETOOBIG);
    free(m);
}
END_TEST

/* 64 features (4 channels of the "spectral" set), three of them carrying
 * the classes: a budget too small for all of them keeps the informative
 * ones, the blob reads only those (n_selected), and the generated header
 * scores the same bits as the blob; a device's blob carries its reference
 * as the center and classifies that device's rows as the server does. */
START_TEST(fewshot_selection_blob_and_header)
{
    enum { K = 3, F = 64, LAB = 5, NR = 300, BUDGET = 1200 };
    static float X[NR * F];
    static int32_t lab[NR], truth[NR];
    static uint32_t dev[NR];
    static uint8_t ref[NR];
    static const int informative[3] = { 5, 17, 40 };
    struct fewshot_data d = { X, NR, F, lab, NULL, NULL, K, dev, ref, 0, NULL, NULL, NULL, 0 };
    struct fewshot_params p;
    struct fewshot_model fm;
    struct model *m = calloc(1, sizeof *m);
    uint32_t used = 0, hits = 0, agree = 0, found = 0;

    for (int i = 0; i < NR; i++) {
        int c = i % K;

        dev[i] = (uint32_t)(i / 100);           /* three machines, set-points 0, 20, 40 */
        ref[i] = i % 100 < 30 && c == 0;        /* their commissioning: normal rows */
        truth[i] = c;
        lab[i] = i < 100 && !ref[i] && i % 100 < 30 + K * LAB ? c : FEWSHOT_UNLABELED;
        for (int j = 0; j < F; j++)
            X[i * F + j] = (float)(20.0 * dev[i] + nrand());
        for (int t = 0; t < 3; t++)
            X[i * F + informative[t]] += (float)(c == t ? 6.0 : 0.0) * (c ? 1.0f : 0.0f) +
                                         (float)(c == 0 && t == 0 ? -6.0 : 0.0);
    }
    models_fewshot_defaults(&p);
    ck_assert_int_eq(models_fewshot_fit_budget(&d, &p, BUDGET, &fm, &used), 0);
    ck_assert_uint_lt(fm.n_sel, F);
    ck_assert_uint_ge(fm.n_sel, FEWSHOT_MIN_FEATURES);
    ck_assert_uint_le(models_fewshot_bytes(&fm), BUDGET);
    for (uint32_t s = 0; s < fm.n_sel; s++)
        for (int t = 0; t < 3; t++)
            found += fm.sel[s] == informative[t];
    ck_assert_uint_eq(found, 3);
    m->channel_count = 4;
    m->features = (struct featureset_spec){ FEATURESET_SPECTRAL, FEATURESET_SPECTRAL_VERSION, 256, 256,
                                            1000.0f, FEATURESET_NO_KIN, NULL };
    ck_assert_int_eq(models_fewshot_export_device(&fm, 2, 0, m), 0);
    ck_assert_int_eq(model_check(m), 0);
    ck_assert_uint_eq(m->n_selected, fm.n_sel);
    ck_assert_uint_le(4u * m->param_count, BUDGET);
    {
        struct model_fewshot_view v;

        model_fewshot_view(m, &v);
        ck_assert_ptr_nonnull(v.sel);
        ck_assert_mem_eq(v.center, models_fewshot_center(&fm, 2), fm.n_sel * sizeof(float));
    }
    for (int i = 200; i < NR; i++) {
        int c = model_classify(m, X + i * F, F, NULL);

        hits += c == truth[i];
        agree += c == models_fewshot_predict_device(&fm, 2, X + i * F, NULL);
    }
    ck_assert_uint_ge(hits, 100 * 9 / 10);
    ck_assert_uint_eq(agree, 100);
    header_equivalence(m);
    models_fewshot_release(&fm);
    free(m);
}
END_TEST

START_TEST(window_features)
{
    struct featureset_spec fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, 1000, 1000, 100.0f, FEATURESET_NO_KIN, NULL };
    float x[1000], f[FEATURESET_STATS_NFEAT], g[FEATURESET_STATS_NFEAT];

    for (int i = 0; i < 1000; i++)
        x[i] = (float)(2.0 * sin(i * 0.05));
    ck_assert_int_eq(featureset_compute(&fs, x, 1000, 1, NULL, 0, f), 0);
    ck_assert_float_eq_tol(f[1], (float)log(2.0 / sqrt(2.0)), 0.01f);   /* RMS of a sine */
    ck_assert_float_eq_tol(f[2], (float)log(2.0), 0.01f);               /* peak */
    ck_assert_float_eq_tol(f[4], (float)log(1.5), 0.02f);               /* kurtosis of a sine */
    /* Ten times the amplitude shifts RMS and peak by log(10), not the crest. */
    for (int i = 0; i < 1000; i++)
        x[i] *= 10.0f;
    ck_assert_int_eq(featureset_compute(&fs, x, 1000, 1, NULL, 0, g), 0);
    ck_assert_float_eq_tol(g[1] - f[1], (float)log(10.0), 1e-3f);
    ck_assert_float_eq_tol(g[3], f[3], 1e-3f);
    ck_assert_float_eq_tol(g[6] - f[6], (float)(2 * log(10.0)), 1e-3f);
}
END_TEST

/* The golden windows as the server sees a dataset version's window (what
 * training and the export's F array compute): bit for bit the vectors the
 * schema and agent suites check. */
START_TEST(golden_features_server)
{
    static struct featgolden g[FEATGOLDEN_MAX];
    static struct ds_info in;
    float got[FEATGOLDEN_MAX_CH * FEATURESET_MAX_PER_CHANNEL];
    int n = featgolden_read(g, FEATGOLDEN_MAX);

    ck_assert_int_ge(n, 3);
    for (int k = 0; k < n; k++) {
        struct featureset_spec fs;

        /* a dataset window has no map: the relations set is the trainer's
         * (golden_relations_server) */
        if (g[k].spec.id == FEATURESET_RELATIONS)
            continue;
        memset(&in, 0, sizeof in);
        in.channel_count = g[k].channels;
        in.window_samples = g[k].spec.window;
        in.sample_rate = g[k].spec.sample_rate;
        in.feature_set = g[k].spec.id;
        in.feature_kin = g[k].spec.kin;
        ds_feature_spec(&in, &fs);
        ck_assert_uint_eq(fs.id, g[k].spec.id);
        ck_assert_uint_eq(fs.version, g[k].spec.version);
        ck_assert_uint_eq(ds_feature_count(&in), g[k].nf);
        ck_assert_int_eq(ds_window_features(&in, g[k].x, got), 0);
        featgolden_assert_equal(got, &g[k], "server dataset window");
    }
}
END_TEST

/* The spectral sets read a version's whole window whatever its length (one
 * that is not a power of two zero-padded, schema/spectral.h) up to 65536
 * samples; of a longer one, its first 65536: a tone followed by a loud
 * tail computes the vector of the tone alone, and the blob's spec says
 * window = hop = 65536.  The moments set reads every window whole. */
START_TEST(spectral_window_lengths)
{
    enum { LONG = 65536 + 1000 };
    static struct ds_info in;
    static float x[LONG], scratch[65536 + 4 * 65536];
    float got[FEATURESET_SPECTRAL_NFEAT], want[FEATURESET_SPECTRAL_NFEAT];
    struct featureset_spec fs;

    ck_assert_uint_eq(ds_spectral_window(3000), 3000);
    ck_assert_uint_eq(ds_spectral_window(2048), 2048);
    ck_assert_uint_eq(ds_spectral_window(63), 63);
    ck_assert_uint_eq(ds_spectral_window(LONG), FEATURESET_MAX_WINDOW);
    memset(&in, 0, sizeof in);
    in.channel_count = 1;
    in.window_samples = 3000;
    in.sample_rate = 12000.0;
    in.feature_set = FEATURESET_SPECTRAL;
    ds_feature_spec(&in, &fs);
    ck_assert_uint_eq(fs.window, 3000);
    ck_assert_uint_eq(fs.hop, 3000);
    ck_assert_uint_eq(ds_feature_count(&in), FEATURESET_SPECTRAL_NFEAT);
    in.window_samples = LONG;
    ds_feature_spec(&in, &fs);
    ck_assert_uint_eq(fs.window, FEATURESET_MAX_WINDOW);
    ck_assert_uint_eq(fs.hop, FEATURESET_MAX_WINDOW);
    for (uint32_t i = 0; i < LONG; i++)
        x[i] = i < FEATURESET_MAX_WINDOW ? (float)sin(0.3 * i) : (float)(50.0 * sin(0.9 * i));
    ck_assert_int_eq(ds_window_features(&in, x, got), 0);
    ck_assert_uint_ge(sizeof scratch / sizeof *scratch, featureset_scratch_floats(&fs));
    ck_assert_int_eq(featureset_compute(&fs, x, FEATURESET_MAX_WINDOW, 1, scratch,
                                        sizeof scratch / sizeof *scratch, want), 0);
    ck_assert_mem_eq(got, want, sizeof got);
    in.feature_set = FEATURESET_STATS;
    in.window_samples = 3000;
    ds_feature_spec(&in, &fs);
    ck_assert_uint_eq(fs.id, FEATURESET_STATS);
    ck_assert_uint_eq(fs.window, 3000);
    ck_assert_uint_eq(fs.hop, 3000);
}
END_TEST

/* The relations set end to end on the server's side: a few-shot model
 * learned around each golden relations vector, its map in the blob and in
 * the generated header.  The header scores the blob's bits (header
 * equivalence), and firmware that links the one feature implementation
 * (schema/featureset.c) with the header's map computes the golden vector
 * from the golden window, bit for bit, and scores what model_score gives. */
START_TEST(golden_relations_header)
{
    static struct featgolden g[FEATGOLDEN_MAX];
    int n = featgolden_read(g, FEATGOLDEN_MAX), tested = 0;

    if (system("cc --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "check_models: SKIP relations header: no cc\n");
        return;
    }
    for (int k = 0; k < n; k++) {
        enum { ROWS = 30 };
        struct featgolden *gk = &g[k];
        struct fewshot_data fd;
        struct fewshot_params p;
        struct fewshot_model fm;
        struct model *m;
        float X[ROWS * 5], sc;
        int32_t lab[ROWS];
        uint32_t d = gk->nf, C = gk->channels, want;
        char dir[] = "/tmp/precursor-relh-XXXXXX", path[512], cmd[2048], *hdr;
        size_t hlen;
        FILE *f;

        if (gk->spec.id != FEATURESET_RELATIONS)
            continue;
        ck_assert_uint_eq(d, 5);
        for (int i = 0; i < ROWS; i++) {
            lab[i] = i % 10 < 4 ? i / 10 : FEWSHOT_UNLABELED;
            for (uint32_t j = 0; j < d; j++)
                X[i * d + j] = gk->f[j] + (float)(i / 10) * (j % 2 ? 1.0f : -1.0f) +
                               0.05f * (float)((i * 7 + (int)j * 3) % 5);
        }
        fd = (struct fewshot_data){ X, ROWS, d, lab, NULL, NULL, 3, NULL, NULL, -1, NULL, NULL, NULL, 0 };
        models_fewshot_defaults(&p);
        ck_assert_int_eq(models_fewshot_fit_budget(&fd, &p, 7168, &fm, NULL), 0);
        m = calloc(1, sizeof *m);
        m->channel_count = (uint8_t)C;
        m->features = gk->spec;
        m->features.rel = NULL;
        m->rel_rank = gk->map.rank;
        memcpy(m->rel, gk->rel, sizeof(float) * (2 + gk->map.rank) * C);
        ck_assert_int_eq(models_fewshot_export(&fm, 0, m), 0);
        models_fewshot_release(&fm);
        ck_assert_ptr_null(model_features_unsupported(m));
        header_equivalence(m);
        /* firmware: the header's map, the shared feature code, the golden window */
        ck_assert_int_eq(models_emit_header(m, "pm", &hdr, &hlen), 0);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/pm.h", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fwrite(hdr, 1, hlen, f);
        fclose(f);
        free(hdr);
        snprintf(path, sizeof path, "%s/main.c", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "#include <math.h>\n#include <stdio.h>\n#include <string.h>\n"
                   "#include \"schema/featureset.h\"\n"
                   "#include \"pm.h\"\nstatic const float x[%u] = {", C * gk->spec.window);
        for (uint32_t i = 0; i < C * gk->spec.window; i++)     /* the broken sample too */
            fprintf(f, isnan(gk->x[i]) ? "NAN," : "%a,", (double)gk->x[i]);
        fprintf(f, "};\nint main(void)\n{\n"
                   "    struct relations_map rm = { PM_N_CHANNELS, PM_REL_RANK, pm_rel_mean, pm_rel_scale,"
                   " pm_rel_basis };\n"
                   "    struct featureset_spec fs = { PM_FEATURE_SET, PM_FEATURE_SET_VERSION, PM_WINDOW, PM_HOP,"
                   " PM_SAMPLE_RATE, FEATURESET_NO_KIN, &rm };\n"
                   "    static float scratch[256], v[PM_N_FEATURES];\n    unsigned u;\n    float s;\n"
                   "    if (featureset_compute(&fs, x, PM_WINDOW, PM_N_CHANNELS, scratch, 256, v) != 0) return 2;\n"
                   "    for (int j = 0; j < PM_N_FEATURES; j++) { memcpy(&u, &v[j], 4); printf(\"%%08x\\n\", u); }\n"
                   "    s = pm_score(v);\n    memcpy(&u, &s, 4);\n    printf(\"%%08x\\n\", u);\n    return 0;\n}\n");
        fclose(f);
        snprintf(cmd, sizeof cmd,
                 "cc -std=c11 -O2 -I. -I%s -o %s/fw %s/main.c schema/featureset.c schema/relations.c "
                 "schema/spectral.c -lm && %s/fw > %s/out.txt", dir, dir, dir, dir, dir);
        ck_assert_int_eq(system(cmd), 0);
        snprintf(path, sizeof path, "%s/out.txt", dir);
        f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        for (uint32_t j = 0; j < d; j++) {
            unsigned got;

            ck_assert_int_eq(fscanf(f, "%x", &got), 1);
            memcpy(&want, &gk->f[j], 4);
            ck_assert_msg(got == want, "window %d feature %u: firmware %08x golden %08x", k, j, got, want);
        }
        {
            unsigned got;

            ck_assert_int_eq(fscanf(f, "%x", &got), 1);
            sc = model_score(m, gk->f, d);
            memcpy(&want, &sc, 4);
            ck_assert_msg(got == want, "window %d score: firmware %08x blob %08x", k, got, want);
        }
        fclose(f);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
        free(m);
        tested++;
    }
    ck_assert_int_eq(tested, 3);
}
END_TEST

/* The threshold is calibrated on held-out normals: at most the budget's
 * share of them reach it, and a budget finer than the set puts it above
 * all of them. */
START_TEST(threshold_calibration)
{
    struct model *m = anomaly_model();
    float *cal = synthetic_normal(1000);
    size_t alarms = 0;

    ck_assert_int_eq(models_calibrate_threshold(m, cal, 1000, 0.01, &alarms), 0);
    ck_assert_uint_le(alarms, 10);
    ck_assert_uint_ge(alarms, 8);       /* ties aside, the budget is used */
    ck_assert_int_eq(models_calibrate_threshold(m, cal, 1000, 1e-6, &alarms), 0);
    ck_assert_uint_eq(alarms, 0);
    ck_assert_float_le(m->threshold, 1.0f);
    ck_assert_int_eq(models_calibrate_threshold(m, cal, 0, 0.01, &alarms), MODEL_ETOOFEW);
    free(cal);
    free(m);
}
END_TEST

Suite *models_suite(void);

Suite *models_suite(void)
{
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, anomaly_known_answers);
    tcase_add_test(tc, golden_features_server);
    tcase_add_test(tc, spectral_window_lengths);
    tcase_add_test(tc, golden_relations_header);
    tcase_add_test(tc, threshold_calibration);
    tcase_add_test(tc, centroid_known_answers);
    tcase_add_test(tc, header_matches_blob_anomaly);
    tcase_add_test(tc, header_matches_blob_classifier);
    tcase_add_test(tc, window_features);
    tcase_add_test(tc, fewshot_export_and_budget);
    tcase_add_test(tc, fewshot_selection_blob_and_header);
    suite_add_tcase(s, tc);
    return s;
}
