/* check_model.c - on-device model blob v2: the score formulas of
 * schema/MODEL.md on hand-set parameters, signature and layout refusal,
 * hostile bytes, and the fuzz corpus in tests/fuzz/corpus/model replayed.
 * Training and the C header are the server's (check_models.c). */
#include "schema/model.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CORPUS_DIR "tests/fuzz/corpus/model"

static uint8_t g_pk[MODEL_PK_LEN], g_sk[MODEL_SK_LEN];

static void keys_seed(uint8_t first, uint8_t *pk, uint8_t *sk)
{
    uint8_t seed[32];

    ck_assert_int_ge(sodium_init(), 0);
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(first + i);
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
}

static void layout_of(uint8_t out[MODEL_LAYOUT_LEN], const char *first)
{
    const char *names[2] = { first, "ch1" }, *units[2] = { "g", "g" };
    ck_assert_int_eq(model_layout_digest(names, units, 2, out), 0);
}

#define D 14         /* 2 channels x 7 features of the "stats" set */

static const struct featureset_spec g_fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 128,
                                             1000.0f, FEATURESET_NO_KIN, NULL };

/* An anomaly model over D features with mean j and deviation 1 + j/2 on
 * feature j, and scale 2, set by hand as a trainer would. */
static struct model *anomaly_model(void)
{
    struct model *m = calloc(1, sizeof *m);

    ck_assert_ptr_nonnull(m);
    m->kind = MODEL_ANOMALY;
    m->channel_count = 2;
    m->n_features = D;
    m->n_classes = 1;
    m->normal_class = MODEL_NO_CLASS;
    m->version = 7;
    m->threshold = 0.5f;
    m->features = g_fs;
    m->param_count = model_param_count(MODEL_ANOMALY, D, 1);
    for (int j = 0; j < D; j++) {
        m->params[j] = (float)j;
        m->params[D + j] = 1.0f / (1.0f + 0.5f * (float)j);
    }
    m->params[2 * D] = 2.0f;
    layout_of(m->layout, "ch0");
    return m;
}

/* Three classes, centroids at -1, 0 and +1 (standardised) on every
 * feature, class 1 the normal one. */
static struct model *centroid_model(void)
{
    struct model *m = calloc(1, sizeof *m);

    ck_assert_ptr_nonnull(m);
    m->kind = MODEL_CENTROID;
    m->channel_count = 2;
    m->n_features = D;
    m->n_classes = 3;
    m->normal_class = 1;
    m->threshold = 0.5f;
    m->features = g_fs;
    m->param_count = model_param_count(MODEL_CENTROID, D, 3);
    for (int j = 0; j < D; j++) {
        m->params[j] = 0.0f;
        m->params[D + j] = 1.0f;
        for (int k = 0; k < 3; k++)
            m->params[2 * D + k * D + j] = (float)(k - 1);
    }
    ck_assert_int_eq(model_check(m), 0);
    return m;
}

/* Two features, three prototypes: class 0 (normal) at (0, 0), class 1 in
 * two forms at (2, 0) and (0, 2); center (1, 1), scale (0.5, 0.5), so a raw
 * x maps to z = (x - 1) / 2 and the prototypes are given in z. */
static struct model *fewshot_model(void)
{
    static const float params[] = {
        1.0f, 1.0f, 0.5f, 0.5f,                         /* center, scale */
        -0.5f, -0.5f, 0.5f, -0.5f, -0.5f, 0.5f,         /* prototypes (z) */
        0.0f, 1.0f, 1.0f                                /* their classes */
    };
    struct model *m = calloc(1, sizeof *m);

    ck_assert_ptr_nonnull(m);
    m->kind = MODEL_FEWSHOT;
    m->channel_count = 1;
    m->n_features = 2;
    m->n_classes = 2;
    m->n_protos = 3;
    m->normal_class = 0;
    m->threshold = 0.5f;
    m->features = (struct featureset_spec){ FEATURESET_SPECTRAL, FEATURESET_SPECTRAL_VERSION, 64, 32,
                                            1000.0f, FEATURESET_NO_KIN, NULL };
    m->param_count = model_param_count(MODEL_FEWSHOT, 2, 3);
    ck_assert_uint_eq(m->param_count, sizeof params / sizeof *params);
    memcpy(m->params, params, sizeof params);
    layout_of(m->layout, "ch0");
    return m;
}

/* Hand-derived: x = (0, 2.2) is z = (-0.5, 0.6); to class 1's second
 * prototype d2 = 0.01, to class 0's d2 = 1.21, so P(normal) =
 * e^-0.6 / (1 + e^-0.6) and the score is 1 / (1 + e^-0.6) = 0.645656...;
 * the first form of class 1 is farther (1.36) and does not count. */
START_TEST(fewshot_score_formula)
{
    struct model *m = fewshot_model();
    float x[2] = { 0.0f, 2.2f }, p[2];

    ck_assert_int_eq(model_check(m), 0);
    ck_assert_str_eq(model_kind_name(MODEL_FEWSHOT), "fewshot");
    ck_assert_int_eq(model_classify(m, x, 2, p), 1);
    ck_assert_float_eq_tol(p[0], (float)(exp(-0.6) / (1.0 + exp(-0.6))), 1e-6f);
    ck_assert_float_eq_tol(model_score(m, x, 2), 0.6456563f, 1e-6f);
    x[0] = 1.1f;                                /* z = (0.05, -0.05): class 1's first form at */
    x[1] = 0.9f;                                /* d2 0.405 beats the normal one at 0.505 */
    ck_assert_int_eq(model_classify(m, x, 2, NULL), 1);
    x[0] = 0.0f;
    x[1] = 0.0f;                                /* z = (-0.5, -0.5): the normal prototype */
    ck_assert_int_eq(model_classify(m, x, 2, NULL), 0);
    ck_assert_float_lt(model_score(m, x, 2), 0.5f);
    free(m);
}
END_TEST

/* What a fewshot blob may not be: a prototype of no class, a class with
 * no prototype, a count that is not 2n + P(n + 1); and its bytes are the
 * golden blob in the corpus (the format, signature included, bit for bit;
 * loading it is refused for its toy feature count, as the replay expects). */
START_TEST(fewshot_blob)
{
    struct model *m = fewshot_model(), *r = calloc(1, sizeof *r);
    uint8_t *b, gold[512];
    size_t len, glen;
    FILE *f;

    keys_seed(0, g_pk, g_sk);
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_uint_eq(len, MODEL_FIXED_LEN + 4u * 13u + MODEL_SIG_LEN);
    ck_assert_uint_eq(b[5], 1);                 /* minor 1: the kind 2.0 readers refuse */
    ck_assert_int_eq(model_load(b, len, g_pk, NULL, r), MODEL_EFEATURES);  /* 2 features: not the set's 16 */
    ck_assert_int_eq(model_parse(b, len, r), 0);
    ck_assert_uint_eq(r->n_protos, 3);
    ck_assert_int_eq(memcmp(r->params, m->params, 13 * sizeof(float)), 0);
    f = fopen(CORPUS_DIR "/fewshot_v2_1", "rb");
    ck_assert_ptr_nonnull(f);
    glen = fread(gold, 1, sizeof gold, f);
    fclose(f);
    ck_assert_uint_eq(glen, len);
    ck_assert_int_eq(memcmp(gold, b, len), 0);
    free(b);
    /* on the envelope set its kinematics ride before the parameters (2.2) */
    m->features.id = FEATURESET_ENVELOPE;
    m->features.kin = (struct featureset_kin){ 29.7f, 9u, 7.94f, 39.04f, 0.0f };
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_uint_eq(len, MODEL_FIXED_LEN + MODEL_KIN_LEN + 4u * 13u + MODEL_SIG_LEN);
    ck_assert_uint_eq(b[5], 2);
    ck_assert_int_eq(model_parse(b, len, r), 0);
    ck_assert(r->features.kin.shaft_hz == 29.7f && r->features.kin.n_elements == 9 &&
              r->features.kin.pitch_d == 39.04f);
    ck_assert_int_eq(memcmp(r->params, m->params, 13 * sizeof(float)), 0);
    ck_assert_int_eq(model_parse(b, len - 4, r), MODEL_ETRUNCATED);
    free(b);
    m->features.id = FEATURESET_SPECTRAL;
    m->params[12] = 2.0f;                       /* class 2 of 2 */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[12] = 0.0f;                       /* class 1 left without a prototype */
    m->params[11] = 0.0f;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[11] = 0.5f;                       /* not an integer class */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[11] = 1.0f;
    m->params[12] = 1.0f;
    m->param_count--;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    free(m);
    free(r);
}
END_TEST

/* The same model reading features 0 and 2 of a 3-feature vector
 * (n_selected 2, blob minor 3): x = (0, anything, 2.2) scores as (0, 2.2)
 * above, by hand; the selection must be integer indices, ascending, inside
 * the vector, and only a fewshot model has one. */
static struct model *fewshot_selected_model(void)
{
    static const float params[] = {
        0.0f, 2.0f,                                     /* the features it reads */
        1.0f, 1.0f, 0.5f, 0.5f,                         /* center, scale */
        -0.5f, -0.5f, 0.5f, -0.5f, -0.5f, 0.5f,         /* prototypes (z) */
        0.0f, 1.0f, 1.0f                                /* their classes */
    };
    struct model *m = fewshot_model();

    m->n_features = 3;
    m->n_selected = 2;
    m->param_count = model_fewshot_param_count(3, 2, 3);
    ck_assert_uint_eq(m->param_count, sizeof params / sizeof *params);
    memcpy(m->params, params, sizeof params);
    return m;
}

START_TEST(fewshot_selected_blob)
{
    struct model *m = fewshot_selected_model(), *r = calloc(1, sizeof *r);
    float x[3] = { 0.0f, 12345.0f, 2.2f };
    uint8_t *b;
    size_t len;

    ck_assert_int_eq(model_check(m), 0);
    ck_assert_float_eq_tol(model_score(m, x, 3), 0.6456563f, 1e-6f);
    x[1] = -7.0f;                               /* a feature it does not read */
    ck_assert_float_eq_tol(model_score(m, x, 3), 0.6456563f, 1e-6f);
    keys_seed(0, g_pk, g_sk);
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_uint_eq(len, MODEL_FIXED_LEN + 4u * 15u + MODEL_SIG_LEN);
    ck_assert_uint_eq(b[5], 3);
    ck_assert_uint_eq(b[20] | b[21] << 8, 2);
    {
        uint8_t gold[512];
        size_t glen;
        FILE *f = fopen(CORPUS_DIR "/fewshot_v2_3", "rb");   /* the format, bit for bit */

        ck_assert_ptr_nonnull(f);
        glen = fread(gold, 1, sizeof gold, f);
        fclose(f);
        ck_assert_uint_eq(glen, len);
        ck_assert_int_eq(memcmp(gold, b, len), 0);
    }
    ck_assert_int_eq(model_load(b, len, g_pk, NULL, r), MODEL_EFEATURES);  /* 3 features: not the set's */
    ck_assert_int_eq(model_parse(b, len, r), 0);
    ck_assert_uint_eq(r->n_selected, 2);
    ck_assert_uint_eq(r->n_protos, 3);
    ck_assert_float_eq(model_score(r, x, 3), model_score(m, x, 3));
    b[22] = 1;                                  /* the reserved half stays 0 */
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    free(b);
    m->params[0] = 2.0f;                        /* not ascending */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[0] = 0.0f;
    m->params[1] = 3.0f;                        /* past the vector */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[1] = 1.5f;                        /* not an index */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[1] = 2.0f;
    m->n_selected = 3;                          /* as many as the vector: say 0 */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    free(m);
    m = centroid_model();
    ck_assert_int_eq(model_check(m), 0);
    m->n_selected = 1;                          /* only a fewshot model selects */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    free(m);
    free(r);
}
END_TEST

/* A few-shot model on the relations set: 2 channels (5 features), the map
 * written by hand (rank 1), 2 prototypes; the map rides between the fixed
 * header and the parameters (blob minor 4). */
static struct model *relations_model(void)
{
    static const float map[6] = { 0.5f, -0.25f, 2.0f, 0.75f, 0.6f, 0.8f };
    struct model *m = calloc(1, sizeof *m);

    ck_assert_ptr_nonnull(m);
    m->kind = MODEL_FEWSHOT;
    m->channel_count = 2;
    m->n_features = 5;
    m->n_classes = 2;
    m->normal_class = 0;
    m->n_protos = 2;
    m->version = 12;
    m->threshold = 0.5f;
    m->features = (struct featureset_spec){ FEATURESET_RELATIONS, FEATURESET_RELATIONS_VERSION, 64,
                                            32, 1000.0f, FEATURESET_NO_KIN, NULL };
    m->rel_rank = 1;
    memcpy(m->rel, map, sizeof map);
    m->param_count = model_fewshot_param_count(5, 0, 2);
    ck_assert_uint_eq(m->param_count, 22);
    for (int j = 0; j < 5; j++) {
        m->params[j] = 0.0f;                    /* center */
        m->params[5 + j] = 1.0f;                /* scale */
        m->params[10 + j] = 0.0f;               /* prototype of class 0 */
        m->params[15 + j] = j == 4 ? 3.0f : 0.0f;  /* class 1: a large SPE */
    }
    m->params[20] = 0.0f;
    m->params[21] = 1.0f;
    layout_of(m->layout, "ch0");
    return m;
}

START_TEST(relations_blob)
{
    struct model *m = relations_model(), *r = calloc(1, sizeof *r);
    const uint32_t maplen = 4u + 4u * 3u * 2u;
    struct relations_map rm;
    struct featureset_spec fs;
    uint8_t *b, gold[1024];
    size_t len, glen;
    FILE *f;

    keys_seed(0, g_pk, g_sk);
    ck_assert_int_eq(model_check(m), 0);
    ck_assert_ptr_null(model_features_unsupported(m));
    ck_assert_uint_eq(model_relations_len(m), maplen);
    model_feature_spec(m, &rm, &fs);
    ck_assert_ptr_eq(fs.rel, &rm);
    ck_assert(rm.n_ch == 2 && rm.rank == 1 && rm.scale[1] == 0.75f && rm.basis[1] == 0.8f);
    ck_assert_uint_eq(model_scratch_floats(m), relations_hold_scratch_floats(&rm));
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_uint_eq(len, MODEL_FIXED_LEN + maplen + 4u * 22u + MODEL_SIG_LEN);
    ck_assert_uint_eq(b[5], 4);
    ck_assert_uint_eq(b[104], FEATURESET_RELATIONS);
    ck_assert_uint_eq(b[120], 1);               /* the rank, then the map's floats */
    ck_assert_int_eq(memcmp(b + 124 + 8, &m->rel[2], 4), 0);   /* scale[0], little-endian host */
    f = fopen(CORPUS_DIR "/good_relations_v2_4", "rb");        /* the format, bit for bit */
    ck_assert_ptr_nonnull(f);
    glen = fread(gold, 1, sizeof gold, f);
    fclose(f);
    ck_assert_uint_eq(glen, len);
    ck_assert_int_eq(memcmp(gold, b, len), 0);
    /* what the device loads: signature, layout, the set with its map */
    ck_assert_int_eq(model_load(b, len, g_pk, m->layout, r), 0);
    ck_assert_uint_eq(r->rel_rank, 1);
    ck_assert_int_eq(memcmp(r->rel, m->rel, 6 * sizeof(float)), 0);
    ck_assert_ptr_null(r->features.rel);
    ck_assert_int_eq(memcmp(r->params, m->params, 22 * sizeof(float)), 0);

    /* A reader that does not size the map (2.3 and before) refuses the
     * blob by its length, never reads the map as parameters: shown here as
     * the same bytes naming a set without a map. */
    b[104] = FEATURESET_SPECTRAL;
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    b[104] = FEATURESET_RELATIONS;
    /* the rank is bounded by the channel count before it sizes anything */
    b[120] = 2;
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    b[120] = 0xff;
    b[123] = 0xff;
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    b[120] = 1;
    b[123] = 0;
    b[7] = 64;                                  /* a map for 64 channels: longer than the blob */
    ck_assert_int_eq(model_parse(b, len, r), MODEL_ETRUNCATED);
    b[7] = 1;                                   /* relations needs two channels */
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    b[7] = 2;
    ck_assert_int_eq(model_parse(b, MODEL_FIXED_LEN + 2 + MODEL_SIG_LEN, r), MODEL_ETRUNCATED);
    ck_assert_int_eq(model_parse(b, len - 4, r), MODEL_ETRUNCATED);
    ck_assert_int_eq(model_parse(b, len, r), 0);
    /* a map out of range never encodes */
    m->rel[3] = 0.0f;                           /* a scale */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->rel[3] = 0.75f;
    m->rel[5] = NAN;                            /* the basis */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->rel[5] = 0.8f;
    m->rel_rank = 2;                            /* rank = channels */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->rel_rank = 1;
    m->n_features = 4;                          /* not 2 x 2 + 1 */
    m->param_count = model_fewshot_param_count(4, 0, 2);
    m->params[4] = 1.0f;                        /* scale[0] where 4 features put it */
    m->params[16] = 0.0f;                       /* and the classes */
    m->params[17] = 1.0f;
    ck_assert_int_eq(model_check(m), 0);
    ck_assert_str_eq(model_features_unsupported(m),
                     "n_features is not what the feature set gives for the model's channels");
    free(b);
    /* a map only with the relations set */
    free(m);
    m = anomaly_model();
    m->rel_rank = 1;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    free(m);
    free(r);
}
END_TEST

/* Blob v2.5: one device's blob.  The relations model above with its
 * center moved to a device's reference, flagged and bound to the device
 * id: the device it names loads it and scores it as the same parameters;
 * any other reader refuses it. */
static struct model *device_model(const char *device_id)
{
    struct model *m = relations_model();

    m->flags = MODEL_FLAG_DEVICE;
    m->ref_windows = 5;
    ck_assert_int_eq(model_device_digest(device_id, m->device), 0);
    for (uint32_t i = 0; i < m->n_features; i++)
        m->params[i] += 0.25f;                  /* center: its own reference */
    return m;
}

START_TEST(device_blob)
{
    struct model *m = device_model("dev-a"), *r = calloc(1, sizeof *r), *plain = relations_model();
    const uint32_t maplen = 4u + 4u * 3u * 2u;
    uint8_t *b, *pb, da[32], db[32], gold[1024];
    float x[5] = { 0.5f, -1.0f, 2.0f, 0.0f, 1.5f };
    size_t len, plen, glen;
    FILE *f;

    keys_seed(0, g_pk, g_sk);
    ck_assert_int_eq(model_device_digest("dev-a", da), 0);
    ck_assert_int_eq(model_device_digest("dev-b", db), 0);
    /* the digest is SHA-256 of the id's bytes */
    {
        uint8_t h[32];

        crypto_hash_sha256(h, (const uint8_t *)"dev-a", 5);
        ck_assert_int_eq(memcmp(h, da, 32), 0);
    }
    ck_assert_int_eq(model_device_digest("", da), MODEL_EINVAL);
    ck_assert_int_eq(model_device_digest("dev-a", da), 0);
    ck_assert_uint_eq(model_device_len(m), MODEL_DEVICE_LEN);
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_uint_eq(len, MODEL_FIXED_LEN + maplen + MODEL_DEVICE_LEN + 4u * 22u + MODEL_SIG_LEN);
    ck_assert_uint_eq(b[5], 5);
    ck_assert_uint_eq(b[14], MODEL_FLAG_DEVICE);
    ck_assert_int_eq(memcmp(b + MODEL_FIXED_LEN + maplen, da, 32), 0);
    ck_assert_uint_eq(b[MODEL_FIXED_LEN + maplen + 32], 5);
    f = fopen(CORPUS_DIR "/device_v2_5", "rb");        /* the format, bit for bit */
    ck_assert_ptr_nonnull(f);
    glen = fread(gold, 1, sizeof gold, f);
    fclose(f);
    ck_assert_uint_eq(glen, len);
    ck_assert_int_eq(memcmp(gold, b, len), 0);
    /* the device it names loads it; another device, or a reader that
     * names none, refuses it */
    ck_assert_int_eq(model_load_device(b, len, g_pk, m->layout, da, r), 0);
    ck_assert_uint_eq(r->flags, MODEL_FLAG_DEVICE);
    ck_assert_uint_eq(r->ref_windows, 5);
    ck_assert_int_eq(memcmp(r->params, m->params, 22 * sizeof(float)), 0);
    ck_assert_int_eq(model_load_device(b, len, g_pk, m->layout, db, r), MODEL_EDEVICE);
    ck_assert_int_eq(model_load(b, len, g_pk, m->layout, r), MODEL_EDEVICE);
    ck_assert_str_eq(model_errcode(MODEL_EDEVICE), "model_device");
    /* the plain model loads everywhere, with or without a device */
    ck_assert_int_eq(model_encode(plain, g_sk, &pb, &plen), 0);
    ck_assert_uint_eq(pb[5], 4);                /* byte for byte what 2.4 wrote */
    ck_assert_int_eq(model_load_device(pb, plen, g_pk, NULL, db, r), 0);
    ck_assert_int_eq(model_load(pb, plen, g_pk, NULL, r), 0);
    /* the same model but for the center: the score is the same formula on
     * the moved center, i.e. the plain model's at x - 0.25 */
    {
        float y[5];

        ck_assert_int_eq(model_load_device(b, len, g_pk, NULL, da, r), 0);
        for (int i = 0; i < 5; i++)
            y[i] = x[i] - 0.25f;
        ck_assert(model_score(r, x, 5) == model_score(plain, y, 5));
    }
    /* A 2.4 reader refuses it by its flags (non-zero refused); without the
     * flag its device section would be read as parameters: refused by the
     * length instead. */
    b[14] = 0;
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    b[14] = 0x02;                               /* an unknown flag */
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    b[14] = MODEL_FLAG_DEVICE;
    ck_assert_int_eq(model_parse(b, len - 4, r), MODEL_ETRUNCATED);
    ck_assert_int_eq(model_parse(b, MODEL_FIXED_LEN + maplen + 20 + MODEL_SIG_LEN, r), MODEL_ETRUNCATED);
    b[MODEL_FIXED_LEN + maplen + 32] = 0;       /* a reference of no window */
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EFIELD);
    /* never encoded: a device blob of another kind, or without windows */
    m->ref_windows = 0;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->ref_windows = 5;
    m->flags = 0;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);  /* windows without the flag */
    free(m);
    m = anomaly_model();
    m->flags = MODEL_FLAG_DEVICE;
    m->ref_windows = 1;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    free(m);
    /* the envelope set: a device's blob without reference windows is the
     * model's center read at that device's own shaft speed and bearing,
     * and it round-trips bound to its device */
    m = fewshot_model();
    m->features = (struct featureset_spec){ FEATURESET_ENVELOPE, FEATURESET_ENVELOPE_VERSION, 64, 64,
                                            1000.0f, { 12.0f, 9u, 7.94f, 39.04f, 0.0f }, NULL };
    m->flags = MODEL_FLAG_DEVICE;
    m->ref_windows = 0;
    ck_assert_int_eq(model_device_digest("pump-7", m->device), 0);
    ck_assert_int_eq(model_check(m), MODEL_OK);
    {
        uint8_t *eb = NULL, dev[MODEL_DEVICE_DIGEST_LEN];
        size_t elen = 0;
        struct model *er = calloc(1, sizeof *er);

        ck_assert_ptr_nonnull(er);
        ck_assert_int_eq(model_encode(m, g_sk, &eb, &elen), MODEL_OK);
        ck_assert_int_eq(model_parse(eb, elen, er), MODEL_OK);
        ck_assert_uint_eq(er->ref_windows, 0);
        ck_assert_float_eq(er->features.kin.shaft_hz, 12.0f);
        ck_assert_int_eq(model_device_digest("pump-7", dev), 0);
        ck_assert_mem_eq(er->device, dev, MODEL_DEVICE_DIGEST_LEN);
        free(eb);
        free(er);
    }
    m->features.id = FEATURESET_SPECTRAL;       /* any other set: still refused */
    m->features.version = FEATURESET_SPECTRAL_VERSION;
    m->features.kin = (struct featureset_kin)FEATURESET_NO_KIN;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    free(m);
    free(plain);
    free(b);
    free(pb);
    free(r);
}
END_TEST

START_TEST(anomaly_score_formula)
{
    struct model *m = anomaly_model();
    float x[D];

    /* d2 = mean of squared standardised distances; score = d2 / (d2 + scale). */
    for (int j = 0; j < D; j++)
        x[j] = (float)j;
    ck_assert_float_eq(model_anomaly_d2(m, x), 0.0f);
    ck_assert_float_eq(model_score(m, x, D), 0.0f);
    for (int j = 0; j < D; j++)
        x[j] = (float)j + 2.0f * (1.0f + 0.5f * (float)j);     /* 2 sigma everywhere */
    ck_assert_float_eq_tol(model_anomaly_d2(m, x), 4.0f, 1e-5f);
    ck_assert_float_eq_tol(model_score(m, x, D), 4.0f / 6.0f, 1e-6f);
    /* Wrong length scores 0; a classifier call on an anomaly model is 0. */
    ck_assert_float_eq(model_score(m, x, D - 1), 0.0f);
    ck_assert_int_eq(model_classify(m, x, D, NULL), 0);
    free(m);
}
END_TEST

START_TEST(centroid_score_formula)
{
    struct model *m = centroid_model();
    float x[D], p[3];

    /* At a centroid: that class; probabilities are a softmax of -d2/2. */
    for (int j = 0; j < D; j++)
        x[j] = 1.0f;
    ck_assert_int_eq(model_classify(m, x, D, p), 2);
    ck_assert_float_eq_tol(p[0] + p[1] + p[2], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(p[1] / p[2], expf(-0.5f * D), 1e-6f);
    ck_assert_float_eq_tol(model_score(m, x, D), 1.0f - p[1], 1e-7f);
    for (int j = 0; j < D; j++)
        x[j] = 0.0f;
    ck_assert_int_eq(model_classify(m, x, D, NULL), 1);
    ck_assert_float_lt(model_score(m, x, D), 0.5f);
    /* No normal class: the top probability. */
    m->normal_class = MODEL_NO_CLASS;
    ck_assert_int_eq(model_classify(m, x, D, p), 1);
    ck_assert_float_eq(model_score(m, x, D), p[1]);
    free(m);
}
END_TEST

START_TEST(range_checks)
{
    struct model *m = anomaly_model();

    ck_assert_int_eq(model_check(m), 0);
    m->params[D] = 0.0f;                    /* an inverse deviation of 0 */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[D] = 1.0f;
    m->params[2 * D] = -1.0f;               /* a negative scale */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[2 * D] = NAN;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->params[2 * D] = 2.0f;
    m->param_count++;                       /* not what kind and sizes need */
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    free(m);
}
END_TEST

START_TEST(blob_round_trip_and_refusals)
{
    struct model *m = anomaly_model(), *r = calloc(1, sizeof *r);
    uint8_t pk2[32], sk2[64], other[32], *b, *b2;
    size_t len, len2;
    float x[D];

    keys_seed(0, g_pk, g_sk);
    keys_seed(100, pk2, sk2);
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_uint_eq(len, MODEL_FIXED_LEN + 4u * (2 * D + 1) + MODEL_SIG_LEN);
    ck_assert_int_eq(model_load(b, len, g_pk, m->layout, r), 0);
    ck_assert_int_eq(r->version, 7);
    ck_assert_mem_eq(&r->features, &g_fs, sizeof g_fs);
    ck_assert_mem_eq(r->params, m->params, sizeof(float) * m->param_count);
    model_test_input(m, x);
    ck_assert_float_eq(model_score(r, x, D), model_score(m, x, D));
    /* Another key, a flipped bit anywhere, or a different layout: refused. */
    ck_assert_int_eq(model_load(b, len, pk2, NULL, r), MODEL_ESIGNATURE);
    for (size_t i = 0; i < len; i += 37) {
        b[i] ^= 0x10;
        ck_assert_int_eq(model_load(b, len, g_pk, NULL, r), MODEL_ESIGNATURE);
        b[i] ^= 0x10;
    }
    layout_of(other, "other");
    ck_assert_int_eq(model_load(b, len, g_pk, other, r), MODEL_ELAYOUT);
    /* Forged: same parameters, signed by someone else, claims our key. */
    ck_assert_int_eq(model_encode(m, sk2, &b2, &len2), 0);
    memcpy(b2 + 64, g_pk, 32);
    ck_assert_int_eq(model_load(b2, len2, g_pk, NULL, r), MODEL_ESIGNATURE);
    /* Hostile lengths. */
    ck_assert_int_eq(model_parse(b, 3, r), MODEL_ETRUNCATED);
    ck_assert_int_eq(model_parse(b, len - 1, r), MODEL_ETRUNCATED);
    b[0] = 'X';
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EMAGIC);
    b[0] = 'P';
    b[100] = 0xff; b[101] = 0xff; b[102] = 0xff; b[103] = 0x7f;
    ck_assert_int_eq(model_parse(b, len, r), MODEL_ETOOBIG);
    /* A v1 blob (no feature set recorded) is refused by its version. */
    b[4] = 1;
    ck_assert_int_eq(model_parse(b, len, r), MODEL_EVERSION);
    free(b);
    free(b2);
    /* Signed, for our layout, but a feature set this build cannot compute,
     * or a count that is not the set's: refused with MODEL_EFEATURES. */
    m->features.version = FEATURESET_STATS_VERSION + 1;
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_int_eq(model_load(b, len, g_pk, m->layout, r), MODEL_EFEATURES);
    ck_assert_str_eq(model_features_unsupported(m), "feature set version newer than this agent computes");
    free(b);
    m->features = g_fs;
    m->features.id = 9;
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_int_eq(model_load(b, len, g_pk, m->layout, r), MODEL_EFEATURES);
    free(b);
    m->features = g_fs;
    m->channel_count = 1;                   /* 14 features are not 1 channel's 7 */
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
    ck_assert_int_eq(model_load(b, len, g_pk, NULL, r), MODEL_EFEATURES);
    /* Window, hop and rate are range-checked whatever the set. */
    m->channel_count = 2;
    m->features.hop = m->features.window + 1;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->features = g_fs;
    m->features.sample_rate = 0.0f;
    ck_assert_int_eq(model_check(m), MODEL_EFIELD);
    m->features = g_fs;
    free(b);
    free(m);
    free(r);
}
END_TEST

START_TEST(corpus_replay)
{
    DIR *d = opendir(CORPUS_DIR);
    struct dirent *de;
    struct model *m = calloc(1, sizeof *m);
    int files = 0;

    keys_seed(0, g_pk, g_sk);
    ck_assert_msg(d != NULL, "cannot open %s (run from the repository root)", CORPUS_DIR);
    while ((de = readdir(d)) != NULL) {
        char path[512];
        uint8_t buf[MODEL_MAX_BLOB + 16];
        size_t n;
        FILE *f;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, de->d_name);
        f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        /* Only the signed seeds verify; everything must return, not crash. */
        if (model_load(buf, n, g_pk, NULL, m) == 0)
            ck_assert_msg(strncmp(de->d_name, "good", 4) == 0, "%s loaded", de->d_name);
        else
            ck_assert_msg(strncmp(de->d_name, "good", 4) != 0, "%s refused", de->d_name);
        files++;
    }
    closedir(d);
    ck_assert_int_gt(files, 3);
    free(m);
}
END_TEST

/* With MODEL_REGEN_CORPUS=<dir>, write the seed corpus instead. */
START_TEST(corpus_regen)
{
    const char *dir = getenv("MODEL_REGEN_CORPUS");
    struct model *m;
    uint8_t *b;
    size_t len;
    char path[512];
    FILE *f;

    if (!dir)
        return;
    keys_seed(0, g_pk, g_sk);
    m = anomaly_model();
    ck_assert_int_eq(model_encode(m, g_sk, &b, &len), 0);
#define WRITE(name, bytes, n)                                      \
    snprintf(path, sizeof path, "%s/%s", dir, name);               \
    f = fopen(path, "wb");                                         \
    ck_assert_ptr_nonnull(f);                                      \
    fwrite(bytes, 1, n, f);                                        \
    fclose(f);
    WRITE("good_anomaly", b, len);
    {
        struct model *fm = fewshot_model();
        uint8_t *fb;
        size_t flen;

        ck_assert_int_eq(model_encode(fm, g_sk, &fb, &flen), 0);
        WRITE("fewshot_v2_1", fb, flen);
        free(fb);
        free(fm);
        fm = fewshot_selected_model();
        ck_assert_int_eq(model_encode(fm, g_sk, &fb, &flen), 0);
        WRITE("fewshot_v2_3", fb, flen);
        free(fb);
        free(fm);
        fm = relations_model();
        ck_assert_int_eq(model_encode(fm, g_sk, &fb, &flen), 0);
        WRITE("good_relations_v2_4", fb, flen);
        free(fb);
        free(fm);
        fm = device_model("dev-a");
        ck_assert_int_eq(model_encode(fm, g_sk, &fb, &flen), 0);
        WRITE("device_v2_5", fb, flen);
        free(fb);
        free(fm);
    }
    WRITE("trunc_header", b, 50);
    WRITE("trunc_params", b, len - 70);
    b[len - 1] ^= 1;
    WRITE("bad_sig", b, len);
    b[len - 1] ^= 1;
    b[4] = 1;
    WRITE("major1", b, len);
    b[4] = 2;
    b[100] = 0xff;
    WRITE("param_count_big", b, len);
    WRITE("magic_only", "PRMD", 4);
    free(b);
    free(m);
}
END_TEST

Suite *model_suite(void);

Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, anomaly_score_formula);
    tcase_add_test(tc, centroid_score_formula);
    tcase_add_test(tc, fewshot_score_formula);
    tcase_add_test(tc, fewshot_selected_blob);
    tcase_add_test(tc, fewshot_blob);
    tcase_add_test(tc, relations_blob);
    tcase_add_test(tc, device_blob);
    tcase_add_test(tc, range_checks);
    tcase_add_test(tc, blob_round_trip_and_refusals);
    tcase_add_test(tc, corpus_replay);
    tcase_add_test(tc, corpus_regen);
    suite_add_tcase(s, tc);
    return s;
}
