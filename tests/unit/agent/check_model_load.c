/* check_model_load.c - the agent's model slot: a blob signed by the trusted
 * server key for this channel layout is installed; a forged blob (another
 * key, a flipped bit, a key swapped into the header), a blob for another
 * layout, or a file that is not a blob is refused and the running model
 * stays; rollback returns to the previous model; the slot computes the
 * golden feature vectors bit for bit from streamed frames; a model for a
 * feature set or rate the agent cannot compute is refused with the reason;
 * shadow never acts; a kept model runs again from the first sample after a
 * restart; the detector's auto hold-off is resolved before the model counts
 * alerts. */
#include "agent/model/agent_model.h"

#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/command/command_int.h"
#include "agent/config/config.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"
#include "../featgolden.h"
#include "server/models/models_fewshot.h"
#include "testmodel.h"

static uint8_t srv_pk[32], srv_sk[64], evil_pk[32], evil_sk[64];

static void keys(void)
{
    uint8_t seed[32];

    ck_assert_int_ge(sodium_init(), 0);
    memset(seed, 7, sizeof seed);
    crypto_sign_ed25519_seed_keypair(srv_pk, srv_sk, seed);
    memset(seed, 9, sizeof seed);
    crypto_sign_ed25519_seed_keypair(evil_pk, evil_sk, seed);
}

static struct source *fake_source(unsigned channels, const char *first_name)
{
    struct source *s = calloc(1, sizeof *s);

    s->channels = channels;
    s->rate = 1000;
    for (unsigned i = 0; i < channels; i++) {
        snprintf(s->chan[i].name, sizeof s->chan[i].name, "ch%u", i);
        strcpy(s->chan[i].unit, "g");
    }
    if (first_name)
        snprintf(s->chan[0].name, sizeof s->chan[0].name, "%s", first_name);
    return s;
}

/* One window of deterministic frames through the slot; the last score. */
static float run_window_of(struct agent_model_slot *s, unsigned channels)
{
    float frame[8], sc = -1.0f;

    for (int i = 0; i < TESTMODEL_WINDOW; i++) {
        for (unsigned c = 0; c < channels; c++)
            frame[c] = (float)sin(0.3 * i + c) * (1.0f + 0.1f * (float)c);
        agent_model_slot_step(s, frame, &sc);
    }
    return sc;
}

START_TEST(forged_blob_refused_previous_kept)
{
    struct source *src = fake_source(2, NULL), *other = fake_source(2, "spindle");
    uint8_t layout[MODEL_LAYOUT_LEN], *good1, *good2, *evil, *wrong_layout;
    size_t l1, l2, le, lw;
    struct agent_model_slot *s;
    float s1;

    keys();
    ck_assert_int_eq(agent_model_layout_of(src, layout), 0);
    ck_assert_int_eq(agent_model_slot_new(srv_pk, layout, src->channels, src->rate, &s), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 0);
    good1 = testmodel_blob(src, 0.0f, 1, srv_sk, &l1);
    good2 = testmodel_blob(src, 5.0f, 2, srv_sk, &l2);
    evil = testmodel_blob(src, 100.0f, 99, evil_sk, &le);
    wrong_layout = testmodel_blob(other, 0.0f, 3, srv_sk, &lw);

    ck_assert_int_eq(agent_model_slot_load(s, good1, l1), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 1);
    s1 = run_window_of(s, 2);
    ck_assert_float_gt(s1, 0.0f);

    /* Forged by another key. */
    ck_assert_int_eq(agent_model_slot_load(s, evil, le), MODEL_ESIGNATURE);
    /* Forged: our key written into the header, signature still theirs. */
    memcpy(evil + 64, srv_pk, 32);
    ck_assert_int_eq(agent_model_slot_load(s, evil, le), MODEL_ESIGNATURE);
    /* Tampered parameters. */
    good2[MODEL_FIXED_LEN + 8] ^= 0x40;
    ck_assert_int_eq(agent_model_slot_load(s, good2, l2), MODEL_ESIGNATURE);
    good2[MODEL_FIXED_LEN + 8] ^= 0x40;
    /* Signed, but for another channel layout. */
    ck_assert_int_eq(agent_model_slot_load(s, wrong_layout, lw), MODEL_ELAYOUT);
    /* Garbage. */
    ck_assert_int_eq(agent_model_slot_load(s, (const uint8_t *)"PRMD", 4), MODEL_ETRUNCATED);
    /* Through all of it the first model kept running, bit for bit. */
    ck_assert_uint_eq(agent_model_slot_version(s), 1);
    ck_assert_float_eq(run_window_of(s, 2), s1);

    /* A good update installs; rollback returns to version 1. */
    ck_assert_int_eq(agent_model_slot_load(s, good2, l2), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 2);
    ck_assert_float_ne(run_window_of(s, 2), s1);
    ck_assert_int_eq(agent_model_slot_rollback(s), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 1);
    ck_assert_float_eq(run_window_of(s, 2), s1);

    free(good1);
    free(good2);
    free(evil);
    free(wrong_layout);
    agent_model_slot_free(s);
    free(src);
    free(other);
}
END_TEST

/* The start-up path: --model and --model-key from a config, files on disk. */
START_TEST(setup_from_config)
{
    struct source *src = fake_source(3, NULL);
    char dir[] = "/tmp/precursor-agent-model-XXXXXX", err[256];
    struct agent_config c;
    struct pipeline_config pc;
    struct agent_model_slot *s = NULL;
    uint8_t *b, *e;
    size_t lb, lenE;
    FILE *f;
    char hex[65];

    keys();
    ck_assert_ptr_nonnull(mkdtemp(dir));
    b = testmodel_blob(src, 1.0f, 4, srv_sk, &lb);
    e = testmodel_blob(src, 1.0f, 5, evil_sk, &lenE);
    memset(&c, 0, sizeof c);
    memset(&pc, 0, sizeof pc);
    snprintf(c.model_file, sizeof c.model_file, "%s/good.bin", dir);
    f = fopen(c.model_file, "wb");
    fwrite(b, 1, lb, f);
    fclose(f);
    snprintf(c.model_key_file, sizeof c.model_key_file, "%s/key.hex", dir);
    sodium_bin2hex(hex, sizeof hex, srv_pk, 32);
    f = fopen(c.model_key_file, "w");
    fprintf(f, "%s\n", hex);
    fclose(f);
    ck_assert_int_eq(agent_model_setup(&c, src, &pc, &s, err, sizeof err), 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_eq(pc.model.ctx, s);
    ck_assert_ptr_nonnull(pc.model.step);
    agent_model_slot_free(s);

    /* A forged file stops start-up with a message, and no slot. */
    f = fopen(c.model_file, "wb");
    fwrite(e, 1, lenE, f);
    fclose(f);
    memset(&pc, 0, sizeof pc);
    ck_assert_int_eq(agent_model_setup(&c, src, &pc, &s, err, sizeof err), MODEL_ESIGNATURE);
    ck_assert_ptr_null(s);
    ck_assert_ptr_null(pc.model.step);
    ck_assert_ptr_nonnull(strstr(err, "refused"));
    /* No key configured. */
    c.model_key_file[0] = '\0';
    ck_assert_int_ne(agent_model_setup(&c, src, &pc, &s, err, sizeof err), 0);

    snprintf(err, sizeof err, "rm -rf %s", dir);
    ck_assert_int_eq(system(err), 0);
    free(b);
    free(e);
    free(src);
}
END_TEST

/* The golden windows streamed frame by frame through the slot: the vector
 * it scores is the one the server trains on, bit for bit. */
START_TEST(golden_features_streamed)
{
    static struct featgolden g[FEATGOLDEN_MAX];
    float got[FEATGOLDEN_MAX_CH * FEATURESET_MAX_PER_CHANNEL], frame[FEATGOLDEN_MAX_CH];
    int n = featgolden_read(g, FEATGOLDEN_MAX);

    keys();
    ck_assert_int_ge(n, 3);
    for (int k = 0; k < n; k++) {
        struct source *src = fake_source(g[k].channels, NULL);
        struct agent_model_slot *s;
        uint8_t layout[MODEL_LAYOUT_LEN], *b;
        size_t lb;

        ck_assert_uint_eq(g[k].spec.window, TESTMODEL_WINDOW);
        ck_assert(g[k].spec.sample_rate == (float)src->rate);
        b = testmodel_blob_kin(src, 0.0f, 1, &g[k].spec, srv_sk, &lb);
        ck_assert_int_eq(agent_model_layout_of(src, layout), 0);
        ck_assert_int_eq(agent_model_slot_new(srv_pk, layout, src->channels, src->rate, &s), 0);
        ck_assert_int_eq(agent_model_slot_load(s, b, lb), 0);
        /* Some frames before, so the window lands mid-ring. */
        for (unsigned i = 0; i < 3 * TESTMODEL_HOP + 5; i++) {
            for (unsigned c = 0; c < g[k].channels; c++)
                frame[c] = 100.0f + (float)i;
            agent_model_slot_step(s, frame, NULL);
        }
        /* The window ends where a hop ends: 64 + 3*32 + 5 frames in, 27 short of one. */
        for (unsigned i = 0; i < 27; i++)
            agent_model_slot_step(s, frame, NULL);
        for (unsigned i = 0; i < g[k].spec.window; i++) {
            for (unsigned c = 0; c < g[k].channels; c++)
                frame[c] = g[k].x[c * g[k].spec.window + i];
            agent_model_slot_step(s, frame, NULL);
        }
        ck_assert_uint_eq(agent_model_slot_last_features(s, got, sizeof got / sizeof got[0]), g[k].nf);
        featgolden_assert_equal(got, &g[k], "agent model slot");
        agent_model_slot_free(s);
        free(b);
        free(src);
    }
}
END_TEST

/* A few-shot model (blob kind 3) on the spectral set, streamed the golden
 * spectral windows: the slot scores what model_score gives the golden
 * vector, bit for bit (the score the server's evaluation describes).  Twice
 * per vector: on every feature, and as the server ships a model that
 * selected half its features, made for one device with that device's
 * reference as its center, where the slot's class must also be the one the
 * server's learner predicts for that device. */
START_TEST(fewshot_model_in_slot)
{
    static struct featgolden g[FEATGOLDEN_MAX];
    int n = featgolden_read(g, FEATGOLDEN_MAX), tested = 0;

    keys();
    for (int k = 0; k < 2 * n; k++) {
        int shipped = k >= n;           /* selected features, per-device reference */
        struct source *src;
        struct agent_model_slot *s;
        struct model *m = calloc(1, sizeof *m);
        struct fewshot_data fd;
        struct fewshot_params p;
        struct fewshot_model fm;
        enum { ROWS = 30 };
        float *X, frame[FEATGOLDEN_MAX_CH], score = -1.0f;
        int32_t lab[ROWS];
        uint32_t d, devs[ROWS];
        uint8_t *b, refs[ROWS];
        int server_class = -1;
        size_t lb;

        struct featgolden *gk = &g[k % n];

        if (gk->spec.id != FEATURESET_SPECTRAL && gk->spec.id != FEATURESET_ENVELOPE) {
            free(m);
            continue;
        }
        src = fake_source(gk->channels, NULL);
        d = gk->nf;
        X = malloc(sizeof(float) * ROWS * d);
        ck_assert_ptr_nonnull(X);
        /* three classes around the golden vector, 10 rows each, 4 labeled;
         * two devices (even and odd rows), their references the class-0
         * rows that carry no label */
        for (int i = 0; i < ROWS; i++) {
            lab[i] = i % 10 < 4 ? i / 10 : FEWSHOT_UNLABELED;
            devs[i] = (uint32_t)(i % 2);
            refs[i] = i / 10 == 0 && lab[i] < 0;
            for (uint32_t j = 0; j < d; j++)
                X[i * d + j] = gk->f[j] + (float)(i / 10) * (j % 2 ? 1.0f : -1.0f) +
                               0.05f * (float)((i * 7 + (int)j * 3) % 5);
        }
        fd = (struct fewshot_data){ X, ROWS, d, lab, NULL, NULL, 3, NULL, NULL, -1, NULL, NULL, NULL, 0 };
        models_fewshot_defaults(&p);
        if (shipped) {
            fd.device = devs;
            fd.reference = refs;
            fd.reference_class = 0;
            p.max_features = d / 2;
        }
        ck_assert_int_eq(models_fewshot_fit_budget(&fd, &p, 7168, &fm, NULL), 0);
        if (shipped) {
            ck_assert_int_eq(models_fewshot_export_device(&fm, 1, 0, m), 0);
            ck_assert_uint_eq(m->n_selected, d / 2);
            server_class = models_fewshot_predict_device(&fm, 1, gk->f, NULL);
        } else {
            ck_assert_int_eq(models_fewshot_export(&fm, 0, m), 0);
        }
        models_fewshot_release(&fm);
        m->channel_count = (uint8_t)gk->channels;
        m->version = 9;
        m->features = gk->spec;
        m->features.hop = TESTMODEL_HOP;
        m->features.sample_rate = (float)src->rate;
        ck_assert_int_eq(agent_model_layout_of(src, m->layout), 0);
        if (shipped) {
            /* served as the server serves it: blob v2.5, bound to its device */
            m->flags = MODEL_FLAG_DEVICE;
            m->ref_windows = 5;
            ck_assert_int_eq(model_device_digest("dev-1", m->device), 0);
        }
        ck_assert_int_eq(model_encode(m, srv_sk, &b, &lb), 0);
        ck_assert_int_eq(agent_model_slot_new(srv_pk, m->layout, src->channels, src->rate, &s), 0);
        if (shipped) {
            char why[200];

            /* a slot that names no device, or another one, refuses it */
            ck_assert_int_eq(agent_model_slot_load(s, b, lb), MODEL_EDEVICE);
            agent_model_slot_refusal(s, why, sizeof why);
            ck_assert_ptr_nonnull(strstr(why, "another device"));
            ck_assert_int_eq(agent_model_slot_set_device(s, "dev-2"), 0);
            ck_assert_int_eq(agent_model_slot_load(s, b, lb), MODEL_EDEVICE);
            ck_assert_int_eq(agent_model_slot_version(s), 0);
            ck_assert_int_eq(agent_model_slot_set_device(s, ""), MODEL_EINVAL);
            ck_assert_int_eq(agent_model_slot_set_device(s, "dev-1"), 0);
        }
        ck_assert_int_eq(agent_model_slot_load(s, b, lb), 0);
        /* the window ends where a hop ends (as in golden_features_streamed) */
        for (unsigned i = 0; i < 3 * TESTMODEL_HOP + 5 + 27; i++) {
            for (unsigned c = 0; c < gk->channels; c++)
                frame[c] = 100.0f + (float)i;
            agent_model_slot_step(s, frame, NULL);
        }
        for (unsigned i = 0; i < gk->spec.window; i++) {
            for (unsigned c = 0; c < gk->channels; c++)
                frame[c] = gk->x[c * gk->spec.window + i];
            agent_model_slot_step(s, frame, &score);
        }
        {
            float want = model_score(m, gk->f, d);

            ck_assert_msg(memcmp(&score, &want, sizeof want) == 0, "slot %a, model_score %a",
                          (double)score, (double)want);
            if (shipped)
                ck_assert_int_eq(model_classify(m, gk->f, d, NULL), server_class);
        }
        tested++;
        agent_model_slot_free(s);
        free(b);
        free(X);
        free(m);
        free(src);
    }
    ck_assert_int_ge(tested, 12);
}
END_TEST

/* A model the agent cannot compute the features of is refused, says why,
 * and the running model stays. */
START_TEST(feature_refusals_keep_running)
{
    struct source *src = fake_source(2, NULL), *fast = fake_source(2, NULL);
    struct agent_model_slot *s;
    uint8_t layout[MODEL_LAYOUT_LEN], *good, *other_rate;
    size_t lg, lo;
    char why[200];

    keys();
    fast->rate = 2000;
    good = testmodel_blob(src, 0.0f, 1, srv_sk, &lg);
    other_rate = testmodel_blob(fast, 0.0f, 2, srv_sk, &lo);
    ck_assert_int_eq(agent_model_layout_of(src, layout), 0);
    ck_assert_int_eq(agent_model_slot_new(srv_pk, layout, src->channels, src->rate, &s), 0);
    ck_assert_int_eq(agent_model_slot_load(s, good, lg), 0);
    ck_assert_int_eq(agent_model_slot_load(s, other_rate, lo), MODEL_EFEATURES);
    agent_model_slot_refusal(s, why, sizeof why);
    ck_assert_msg(strstr(why, "sample rate") && strstr(why, "2000"), "%s", why);
    ck_assert_uint_eq(agent_model_slot_version(s), 1);
    free(other_rate);
    /* A newer feature-set version, properly signed: refused by name. */
    {
        struct model *m = calloc(1, sizeof *m);
        uint8_t *b;
        size_t lb;

        ck_assert_int_eq(model_parse(good, lg, m), 0);
        m->features.version = FEATURESET_STATS_VERSION + 1;
        m->version = 3;
        ck_assert_int_eq(model_encode(m, srv_sk, &b, &lb), 0);
        ck_assert_int_eq(agent_model_slot_load(s, b, lb), MODEL_EFEATURES);
        agent_model_slot_refusal(s, why, sizeof why);
        ck_assert_msg(strstr(why, "version newer"), "%s", why);
        ck_assert_uint_eq(agent_model_slot_version(s), 1);
        free(b);
        free(m);
    }
    agent_model_slot_free(s);
    free(good);
    free(src);
    free(fast);
}
END_TEST

/* Shadow scores and counts but never acts; active acts on the same windows. */
START_TEST(shadow_counts_active_acts)
{
    struct source *src = fake_source(2, NULL);
    struct agent_model_slot *s;
    struct agent_model_stats st;
    uint8_t layout[MODEL_LAYOUT_LEN], *b;
    size_t lb;
    float frame[2] = { 50.0f, -50.0f };     /* far from the model's normal */
    int alarms = 0;

    keys();
    b = testmodel_blob(src, 0.0f, 1, srv_sk, &lb);
    ck_assert_int_eq(agent_model_layout_of(src, layout), 0);
    ck_assert_int_eq(agent_model_slot_new(srv_pk, layout, src->channels, src->rate, &s), 0);
    ck_assert_int_eq(agent_model_slot_load(s, b, lb), 0);
    agent_model_slot_set_mode(s, AGENT_MODEL_SHADOW);
    for (int i = 0; i < 640; i++) {
        frame[0] = 50.0f + (float)(i % 7);
        alarms += agent_model_slot_step(s, frame, NULL);
    }
    agent_model_slot_stats(s, &st);
    ck_assert_int_eq(alarms, 0);
    ck_assert_str_eq(agent_model_mode_name(st.mode), "shadow");
    ck_assert_uint_eq(st.windows, 1 + (640 - TESTMODEL_WINDOW) / TESTMODEL_HOP);
    ck_assert_uint_eq(st.above, st.windows);
    ck_assert_double_eq_tol(st.run_s, 0.64, 1e-9);
    agent_model_slot_set_mode(s, AGENT_MODEL_ACTIVE);
    for (int i = 0; i < TESTMODEL_HOP; i++)
        alarms += agent_model_slot_step(s, frame, NULL);
    ck_assert_int_eq(alarms, 1);
    agent_model_slot_free(s);
    free(b);
    free(src);
}
END_TEST

/* The config poll keeps the model in the key folder; a restarted agent
 * verifies it again and runs it, in its mode, before any poll. */
START_TEST(kept_model_runs_after_restart)
{
    struct source *src = fake_source(2, NULL);
    char dir[] = "/tmp/precursor-agent-keep-XXXXXX", path[256], hex[65], err[256];
    struct agent_config c;
    struct pipeline_config pc;
    struct agent_model_slot *s = NULL;
    uint8_t *b;
    size_t lb;
    float frame[2] = { 0.1f, 0.2f }, sc = -1;
    FILE *f;

    keys();
    ck_assert_ptr_nonnull(mkdtemp(dir));
    b = testmodel_blob(src, 0.0f, 6, srv_sk, &lb);
    snprintf(path, sizeof path, "%s/model-signing.pub", dir);
    sodium_bin2hex(hex, sizeof hex, srv_pk, 32);
    f = fopen(path, "w");
    fprintf(f, "%s\n", hex);
    fclose(f);
    ck_assert_int_eq(agent_model_save(dir, b, lb, AGENT_MODEL_SHADOW), 0);
    memset(&c, 0, sizeof c);
    memset(&pc, 0, sizeof pc);
    snprintf(c.key_dir, sizeof c.key_dir, "%s", dir);
    ck_assert_int_eq(agent_model_setup_runtime(&c, src, &pc, &s, err, sizeof err), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 6);
    ck_assert_int_eq(agent_model_slot_mode(s), AGENT_MODEL_SHADOW);
    for (int i = 0; i < TESTMODEL_WINDOW; i++)
        pc.model.step(pc.model.ctx, frame, &sc);
    ck_assert_float_ge(sc, 0.0f);
    agent_model_slot_free(s);
    /* A kept blob that no longer verifies is not used. */
    b[lb - 1] ^= 1;
    ck_assert_int_eq(agent_model_save(dir, b, lb, AGENT_MODEL_ACTIVE), 0);
    ck_assert_int_eq(agent_model_setup_runtime(&c, src, &pc, &s, err, sizeof err), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 0);
    agent_model_slot_free(s);
    snprintf(err, sizeof err, "rm -rf %s", dir);
    ck_assert_int_eq(system(err), 0);
    free(b);
    free(src);
}
END_TEST

/* An agent started with no --hold-off-s (make run's) has the detector's
 * "auto" hold-off, -1: resolved at the source's rate before the model slot
 * counts alerts and the heartbeat reports it (the server refuses a negative
 * hold-off and showed a running shadow model as pending). */
START_TEST(auto_hold_off_resolved_for_the_model)
{
    struct agent_config c;
    struct command_parts cp;
    char err[256];

    agent_config_defaults(&c, AGENT_CMD_RUN);
    ck_assert(c.detect.hold_off_s < 0);
    memset(&cp, 0, sizeof cp);
    ck_assert_int_eq(command_open_source(&c, NULL, 1, &cp.src, err, sizeof err), 0);
    command_pipeline_config(&c, &cp.pc);
    ck_assert_int_eq(command_parts_start(&cp, &c, 1, err, sizeof err), 0);
    ck_assert(cp.pc.detect.hold_off_s > 0);
    ck_assert_ptr_nonnull(cp.ms);
    command_parts_release(&cp);
}
END_TEST

Suite *model_load_suite(void);

Suite *model_load_suite(void)
{
    Suite *s = suite_create("model_load");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, forged_blob_refused_previous_kept);
    tcase_add_test(tc, setup_from_config);
    tcase_add_test(tc, golden_features_streamed);
    tcase_add_test(tc, fewshot_model_in_slot);
    tcase_add_test(tc, feature_refusals_keep_running);
    tcase_add_test(tc, shadow_counts_active_acts);
    tcase_add_test(tc, kept_model_runs_after_restart);
    tcase_add_test(tc, auto_hold_off_resolved_for_the_model);
    suite_add_tcase(s, tc);
    return s;
}

