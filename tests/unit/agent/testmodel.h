/* testmodel.h - signed model blobs for the agent's model suites
 * (check_model_load.c, check_config_poll.c): an anomaly model trained on
 * synthetic features for a source's channel layout, encoded and signed the
 * way the server does it.  Static functions, included by each suite. */
#ifndef PRECURSOR_TESTMODEL_H
#define PRECURSOR_TESTMODEL_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/model/agent_model.h"
#include "agent/source/source.h"
#include "schema/model.h"
#include "server/models/models.h"

#define TESTMODEL_WINDOW 64
#define TESTMODEL_HOP 32

/* An anomaly model on feature set (set, set_version) with mean `mu`, for
 * src's layout, signed by sk; the blob is malloc'd (*len bytes).  A
 * relations spec's map goes into the blob. */
static uint8_t *testmodel_blob_kin(const struct source *src, float mu, uint32_t version,
                                   const struct featureset_spec *spec, const uint8_t *sk,
                                   size_t *len)
{
    uint16_t d = (uint16_t)featureset_count(spec->id, spec->version, src->channels);
    float *X = malloc(sizeof(float) * 64 * d);
    struct model *m = calloc(1, sizeof *m);
    uint8_t *b;

    ck_assert_ptr_nonnull(X);
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < d; j++)
            X[i * d + j] = mu + (float)((i * 7 + j * 3) % 11) / 10.0f;
    m->channel_count = (uint8_t)src->channels;
    m->version = version;
    m->features = *spec;
    m->features.rel = NULL;             /* the blob carries the map: model_feature_spec */
    if (spec->rel) {
        ck_assert_uint_eq(spec->rel->n_ch, src->channels);
        m->rel_rank = spec->rel->rank;
        memcpy(m->rel, spec->rel->mean, sizeof(float) * src->channels);
        memcpy(m->rel + src->channels, spec->rel->scale, sizeof(float) * src->channels);
        memcpy(m->rel + 2u * src->channels, spec->rel->basis,
               sizeof(float) * src->channels * spec->rel->rank);
    }
    m->features.window = TESTMODEL_WINDOW;
    m->features.hop = TESTMODEL_HOP;
    m->features.sample_rate = (float)src->rate;
    ck_assert_int_eq(agent_model_layout_of(src, m->layout), 0);
    ck_assert_int_eq(models_train_anomaly(X, 64, d, 0.95f, m), 0);
    ck_assert_int_eq(model_encode(m, sk, &b, len), 0);
    free(X);
    free(m);
    return b;
}

/* The same on set (set, set_version), which needs no kinematics. */
static uint8_t *testmodel_blob_set(const struct source *src, float mu, uint32_t version,
                                   uint16_t set, uint16_t set_version, const uint8_t *sk,
                                   size_t *len)
{
    struct featureset_spec spec = { set, set_version, TESTMODEL_WINDOW, TESTMODEL_HOP, 1.0f,
                                    FEATURESET_NO_KIN, NULL };

    return testmodel_blob_kin(src, mu, version, &spec, sk, len);
}

/* The same on set "stats" v1 (channels * 7 features). */
static uint8_t *testmodel_blob(const struct source *src, float mu, uint32_t version,
                               const uint8_t *sk, size_t *len)
{
    return testmodel_blob_set(src, mu, version, FEATURESET_STATS, FEATURESET_STATS_VERSION, sk, len);
}

#endif
