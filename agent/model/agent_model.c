/* agent_model.c - model slot: verified install, previous model kept, the
 * detector's score callback.  See agent_model.h. */
#include "agent/model/agent_model.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agent/config/config.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"

struct agent_model_slot {
    uint8_t pk[MODEL_PK_LEN];
    uint8_t layout[MODEL_LAYOUT_LEN];
    struct model *cur, *prev, *spare;   /* three buffers, rotated on install */
    struct detect_model dm;
    int have_key;                       /* 0 until a key is set (first contact) */
    /* The config poll installs from its own thread while the pipeline
     * scores: the rotation and every score hold mu (uncontended but for the
     * moment of an install). */
    pthread_mutex_t mu;
};

static float slot_score(const void *ctx, const float *x, uint32_t n)
{
    struct agent_model_slot *s = (struct agent_model_slot *)ctx;
    float r;

    pthread_mutex_lock(&s->mu);
    r = s->cur ? model_score(s->cur, x, n) : 0.0f;
    pthread_mutex_unlock(&s->mu);
    return r;
}

int agent_model_slot_new(const uint8_t trusted_pk[MODEL_PK_LEN],
                         const uint8_t layout[MODEL_LAYOUT_LEN],
                         struct agent_model_slot **out)
{
    struct agent_model_slot *s;

    if (!trusted_pk || !layout || !out)
        return MODEL_EINVAL;
    s = calloc(1, sizeof *s);
    if (!s)
        return MODEL_ENOMEM;
    s->spare = malloc(sizeof *s->spare);
    s->prev = malloc(sizeof *s->prev);
    if (!s->spare || !s->prev) {
        free(s->spare);
        free(s->prev);
        free(s);
        return MODEL_ENOMEM;
    }
    memcpy(s->pk, trusted_pk, MODEL_PK_LEN);
    memcpy(s->layout, layout, MODEL_LAYOUT_LEN);
    s->have_key = 1;
    pthread_mutex_init(&s->mu, NULL);
    s->dm.score = slot_score;
    s->dm.model = s;
    /* cur stays NULL until a blob is installed; prev is a spare buffer with
     * no model in it (n_features 0 marks "empty"). */
    s->prev->n_features = 0;
    *out = s;
    return 0;
}

void agent_model_slot_free(struct agent_model_slot *s)
{
    if (!s)
        return;
    free(s->cur);
    free(s->prev);
    free(s->spare);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int agent_model_slot_load(struct agent_model_slot *s, const uint8_t *blob, size_t len)
{
    struct model *t;
    int rc;

    if (!s || !blob)
        return MODEL_EINVAL;
    if (!s->have_key)
        return MODEL_ESIGNATURE;      /* nothing is trusted before a key is pinned */
    /* spare is never the model being scored: no lock while it is filled. */
    rc = model_load(blob, len, s->pk, s->layout, s->spare);
    if (rc != 0)
        return rc;
    /* The detector's vector length is fixed once the pipeline runs. */
    if (s->dm.n_features && s->spare->n_features != s->dm.n_features)
        return MODEL_ELAYOUT;
    pthread_mutex_lock(&s->mu);
    /* Rotate: spare (new) -> cur -> prev -> spare.  The first install has
     * no cur: the old empty prev buffer becomes the spare. */
    t = s->prev;
    if (s->cur) {
        s->prev = s->cur;
    } else {
        s->prev = NULL;
    }
    s->cur = s->spare;
    s->spare = t;
    if (!s->prev) {
        /* keep three buffers: prev stays "empty" */
        s->prev = s->spare;
        s->spare = malloc(sizeof *s->spare);
        if (!s->spare) {
            s->spare = s->prev;
            s->prev = NULL;
            s->dm.n_features = s->cur->n_features;
            pthread_mutex_unlock(&s->mu);
            return MODEL_ENOMEM;   /* installed, but no rollback buffer */
        }
        s->prev->n_features = 0;
    }
    s->dm.n_features = s->cur->n_features;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int agent_model_slot_rollback(struct agent_model_slot *s)
{
    struct model *t;

    if (!s)
        return MODEL_EINVAL;
    pthread_mutex_lock(&s->mu);
    if (!s->cur || !s->prev || s->prev->n_features == 0) {
        pthread_mutex_unlock(&s->mu);
        return MODEL_EINVAL;
    }
    t = s->cur;
    s->cur = s->prev;
    s->prev = t;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int agent_model_slot_set_key(struct agent_model_slot *s, const uint8_t pk[MODEL_PK_LEN])
{
    if (!s || !pk)
        return MODEL_EINVAL;
    pthread_mutex_lock(&s->mu);
    if (s->have_key) {
        int same = memcmp(s->pk, pk, MODEL_PK_LEN) == 0;

        pthread_mutex_unlock(&s->mu);
        return same ? 0 : MODEL_ESIGNATURE;   /* pinned: never replaced */
    }
    memcpy(s->pk, pk, MODEL_PK_LEN);
    s->have_key = 1;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int agent_model_slot_has_key(struct agent_model_slot *s)
{
    int k;

    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    k = s->have_key;
    pthread_mutex_unlock(&s->mu);
    return k;
}

uint32_t agent_model_slot_previous(struct agent_model_slot *s)
{
    uint32_t v = 0;

    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    if (s->prev && s->prev->n_features)
        v = s->prev->version;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int agent_model_slot_healthy(struct agent_model_slot *s)
{
    float x[MODEL_MAX_FEATURES], sc;
    int ok = 0;

    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    if (s->cur) {
        /* The blob's own test input must score in [0, 1]: a model that
         * gives NaN or garbage there would silently never (or always) fire. */
        model_test_input(s->cur, x);
        sc = model_score(s->cur, x, s->cur->n_features);
        ok = isfinite(sc) && sc >= 0.0f && sc <= 1.0f;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

const struct detect_model *agent_model_slot_detect(const struct agent_model_slot *s)
{
    return s && s->cur ? &s->dm : NULL;
}

uint32_t agent_model_slot_version(const struct agent_model_slot *s)
{
    struct agent_model_slot *w = (struct agent_model_slot *)s;
    uint32_t v;

    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    v = w->cur ? w->cur->version : 0;
    pthread_mutex_unlock(&w->mu);
    return v;
}

/* Read at most cap bytes; a longer file is refused, not truncated. */
static int read_bounded(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    int rc = 0;

    if (!f)
        return MODEL_EINVAL;    /* errno says why */
    n = fread(buf, 1, cap, f);
    if (ferror(f))
        rc = MODEL_EINVAL;
    else if (n == cap && fgetc(f) != EOF)
        rc = MODEL_ETOOBIG;
    fclose(f);
    if (rc == 0)
        *len = n;
    return rc;
}

int agent_model_slot_load_file(struct agent_model_slot *s, const char *path)
{
    uint8_t *buf = malloc(MODEL_MAX_BLOB);
    size_t len = 0;
    int rc;

    if (!buf)
        return MODEL_ENOMEM;
    rc = read_bounded(path, buf, MODEL_MAX_BLOB, &len);
    if (rc == 0)
        rc = agent_model_slot_load(s, buf, len);
    free(buf);
    return rc;
}

int agent_model_layout_of(const struct source *src, uint8_t out[MODEL_LAYOUT_LEN])
{
    const char *names[MODEL_MAX_CHANNELS], *units[MODEL_MAX_CHANNELS];

    if (!src || src->channels < 1 || src->channels > MODEL_MAX_CHANNELS)
        return MODEL_EINVAL;
    for (unsigned i = 0; i < src->channels; i++) {
        names[i] = src->chan[i].name;
        units[i] = src->chan[i].unit;
    }
    return model_layout_digest(names, units, src->channels, out);
}

int agent_model_read_key(const char *path, uint8_t pk[MODEL_PK_LEN])
{
    uint8_t buf[256];
    size_t len = 0, bin = 0;
    int rc = read_bounded(path, buf, sizeof buf - 1, &len);

    if (rc != 0)
        return rc;
    if (len == MODEL_PK_LEN) {
        memcpy(pk, buf, MODEL_PK_LEN);
        return 0;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    buf[len] = '\0';
    if (sodium_init() < 0)
        return MODEL_ENOMEM;
    if (len == 2 * MODEL_PK_LEN &&
        sodium_hex2bin(pk, MODEL_PK_LEN, (const char *)buf, len, NULL, &bin, NULL) == 0 &&
        bin == MODEL_PK_LEN)
        return 0;
    if (sodium_base642bin(pk, MODEL_PK_LEN, (const char *)buf, len, NULL, &bin, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 && bin == MODEL_PK_LEN)
        return 0;
    return MODEL_EFIELD;
}

int agent_model_setup(const struct agent_config *c, const struct source *src,
                      struct pipeline_config *pc, struct agent_model_slot **out,
                      char *err, size_t errlen)
{
    uint8_t pk[MODEL_PK_LEN], layout[MODEL_LAYOUT_LEN];
    struct agent_model_slot *s = NULL;
    int rc;

    *out = NULL;
    if (!c->model_file[0])
        return 0;
    if (!c->model_key_file[0]) {
        snprintf(err, errlen, "--model needs --model-key (the server's model-signing public key)");
        return MODEL_EINVAL;
    }
    rc = agent_model_read_key(c->model_key_file, pk);
    if (rc != 0) {
        snprintf(err, errlen, "model key %s: %s", c->model_key_file,
                 rc == MODEL_EINVAL ? strerror(errno) : "not a 32-byte key");
        return MODEL_EINVAL;
    }
    if ((rc = agent_model_layout_of(src, layout)) != 0 ||
        (rc = agent_model_slot_new(pk, layout, &s)) != 0) {
        snprintf(err, errlen, "model slot: %s", model_strerror(rc));
        return rc;
    }
    rc = agent_model_slot_load_file(s, c->model_file);
    if (rc != 0) {
        snprintf(err, errlen, "model %s refused: %s", c->model_file,
                 rc == MODEL_EINVAL ? strerror(errno) : model_strerror(rc));
        agent_model_slot_free(s);
        return rc;
    }
    if (s->cur->n_features != src->channels * DETECT_NFEAT) {
        snprintf(err, errlen, "model %s expects %u features, the source gives %u",
                 c->model_file, s->cur->n_features, src->channels * DETECT_NFEAT);
        agent_model_slot_free(s);
        return MODEL_ELAYOUT;
    }
    pc->model = agent_model_slot_detect(s);
    pc->detect.enable |= DETECT_MODEL;
    *out = s;
    return 0;
}

int agent_model_setup_runtime(const struct agent_config *c, const struct source *src,
                              struct pipeline_config *pc, struct agent_model_slot **out,
                              char *err, size_t errlen)
{
    uint8_t pk[MODEL_PK_LEN] = { 0 }, layout[MODEL_LAYOUT_LEN];
    struct agent_model_slot *s = NULL;
    int rc, have_key = 0;

    *out = NULL;
    if (c->model_file[0]) {
        if ((rc = agent_model_setup(c, src, pc, &s, err, errlen)) != 0)
            return rc;
    } else {
        if (c->model_key_file[0]) {
            if ((rc = agent_model_read_key(c->model_key_file, pk)) != 0) {
                snprintf(err, errlen, "model key %s: %s", c->model_key_file,
                         rc == MODEL_EINVAL ? strerror(errno) : "not a 32-byte key");
                return MODEL_EINVAL;
            }
            have_key = 1;
        }
        if ((rc = agent_model_layout_of(src, layout)) != 0 ||
            (rc = agent_model_slot_new(pk, layout, &s)) != 0) {
            snprintf(err, errlen, "model slot: %s", model_strerror(rc));
            return rc;
        }
        s->have_key = have_key;
        pc->model = agent_model_slot_detect_always(s);
        pc->detect.enable |= DETECT_MODEL;
    }
    /* Fixed before the pipeline starts: every later model must match. */
    s->dm.n_features = src->channels * DETECT_NFEAT;
    *out = s;
    return 0;
}

const struct detect_model *agent_model_slot_detect_always(struct agent_model_slot *s)
{
    return s ? &s->dm : NULL;
}
