/* agent_model.c - model slot: verified install, previous model kept, the
 * running window and its feature set, shadow/active, kept across restarts.
 * See agent_model.h. */
#include "agent/model/agent_model.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/config/config.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"

struct agent_model_slot {
    uint8_t pk[MODEL_PK_LEN];
    uint8_t layout[MODEL_LAYOUT_LEN];
    unsigned channels;
    double rate;
    struct model *cur, *prev, *spare;   /* three buffers, rotated on install */
    int have_key;                       /* 0 until a key is set (first contact) */
    int have_device;                    /* device set: blobs made for it are taken */
    uint8_t device[MODEL_DEVICE_DIGEST_LEN];
    int mode;                           /* AGENT_MODEL_ACTIVE / _SHADOW */
    char refusal[200];
    /* The running window: per channel a circular buffer of `window`
     * samples (channel-major, cap floats in all), a linear copy for the
     * feature set (followed by the set's scratch, scratch floats), and the
     * last vector. */
    float *ring, *lin;
    size_t cap, scratch;
    uint32_t pos;
    uint64_t filled;
    float fvec[MODEL_MAX_FEATURES];
    uint32_t fvec_n;
    float last_score;
    uint64_t hold_off_frames;           /* alerts closer than this are one */
    uint64_t last_alert;                /* frames count at the last alert, + 1 (0: none) */
    struct agent_model_stats st;
    uint64_t frames;                    /* frames stepped by the current model */
    /* The config poll installs from its own thread while the pipeline
     * steps: the rotation and every step hold mu (uncontended but for the
     * moment of an install). */
    pthread_mutex_t mu;
};

const char *agent_model_mode_name(int mode)
{
    return mode == AGENT_MODEL_SHADOW ? "shadow" : "active";
}

/* A new current model starts with an empty window and fresh counters. */
static void run_reset(struct agent_model_slot *s)
{
    s->pos = 0;
    s->filled = 0;
    s->fvec_n = 0;
    s->last_score = 0.0f;
    s->last_alert = 0;
    s->frames = 0;
    memset(&s->st, 0, sizeof s->st);
    if (s->cur) {
        s->st.version = s->cur->version;
        s->st.threshold = s->cur->threshold;
        s->st.features = s->cur->features;
    }
}

/* Score the window that ends at the current frame. */
static int run_window(struct agent_model_slot *s)
{
    const struct model *m = s->cur;
    uint32_t w = m->features.window, head = w - s->pos;
    struct relations_map rm;
    struct featureset_spec fs;
    float sc;
    int bin;

    for (unsigned c = 0; c < s->channels; c++) {
        const float *r = s->ring + (size_t)c * w;
        float *l = s->lin + (size_t)c * w;

        memcpy(l, r + s->pos, head * sizeof *l);
        memcpy(l + head, r, s->pos * sizeof *l);
    }
    model_feature_spec(m, &rm, &fs);     /* the relations set's map is the blob's */
    if (featureset_compute(&fs, s->lin, w, s->channels, s->lin + (size_t)s->channels * w,
                           s->scratch, s->fvec) != FEATURESET_OK)
        return 0;
    s->fvec_n = m->n_features;
    sc = model_score(m, s->fvec, m->n_features);
    if (!(sc >= 0.0f))
        sc = 0.0f;              /* NaN scores nothing */
    s->last_score = sc;
    s->st.windows++;
    bin = (int)(sc * AGENT_MODEL_HIST);
    s->st.hist[bin < AGENT_MODEL_HIST ? bin : AGENT_MODEL_HIST - 1]++;
    if (sc > s->st.max_score)
        s->st.max_score = sc;
    if (sc < m->threshold)
        return 0;
    s->st.above++;
    /* What the device annunciates: a standing alarm again after each
     * hold-off, as the pipeline triggers it. */
    if (!s->last_alert || s->frames + 1 - s->last_alert >= s->hold_off_frames) {
        s->st.alerts++;
        s->last_alert = s->frames + 1;
    }
    return s->mode == AGENT_MODEL_ACTIVE;
}

int agent_model_slot_step(struct agent_model_slot *s, const float *frame, float *score)
{
    int alarm = 0;
    uint32_t w;

    pthread_mutex_lock(&s->mu);
    if (s->cur) {
        w = s->cur->features.window;
        for (unsigned c = 0; c < s->channels; c++)
            s->ring[(size_t)c * w + s->pos] = frame[c];
        s->pos = s->pos + 1 == w ? 0 : s->pos + 1;
        s->filled++;
        s->frames++;
        if (s->filled >= w && (s->filled - w) % s->cur->features.hop == 0)
            alarm = run_window(s);
    }
    if (score)
        *score = s->last_score;
    pthread_mutex_unlock(&s->mu);
    return alarm;
}

uint32_t agent_model_slot_last_features(struct agent_model_slot *s, float *out, uint32_t cap)
{
    uint32_t n;

    pthread_mutex_lock(&s->mu);
    n = s->fvec_n <= cap ? s->fvec_n : 0;
    memcpy(out, s->fvec, n * sizeof *out);
    pthread_mutex_unlock(&s->mu);
    return n;
}

void agent_model_slot_set_mode(struct agent_model_slot *s, int mode)
{
    mode = mode == AGENT_MODEL_SHADOW ? AGENT_MODEL_SHADOW : AGENT_MODEL_ACTIVE;
    pthread_mutex_lock(&s->mu);
    if (s->mode != mode) {
        /* The counters describe one mode: a promoted model's active rate
         * must not average in its shadow run (the server compares it with
         * the budget).  The window keeps filling. */
        uint32_t v = s->st.version;
        float thr = s->st.threshold;
        struct featureset_spec fs = s->st.features;

        memset(&s->st, 0, sizeof s->st);
        s->st.version = v;
        s->st.threshold = thr;
        s->st.features = fs;
        s->frames = 0;
        s->last_alert = 0;
        s->mode = mode;
    }
    pthread_mutex_unlock(&s->mu);
}

void agent_model_slot_set_hold_off(struct agent_model_slot *s, double hold_off_s)
{
    pthread_mutex_lock(&s->mu);
    s->hold_off_frames = hold_off_s > 0 ? (uint64_t)(hold_off_s * s->rate + 0.5) : 0;
    pthread_mutex_unlock(&s->mu);
}

int agent_model_slot_mode(struct agent_model_slot *s)
{
    int m;

    pthread_mutex_lock(&s->mu);
    m = s->mode;
    pthread_mutex_unlock(&s->mu);
    return m;
}

void agent_model_slot_stats(struct agent_model_slot *s, struct agent_model_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->mode = s->mode;
    out->run_s = (double)s->frames / s->rate;
    pthread_mutex_unlock(&s->mu);
}

void agent_model_slot_refusal(struct agent_model_slot *s, char *buf, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    snprintf(buf, cap, "%s", s->refusal);
    pthread_mutex_unlock(&s->mu);
}

int agent_model_slot_new(const uint8_t trusted_pk[MODEL_PK_LEN],
                         const uint8_t layout[MODEL_LAYOUT_LEN], unsigned channels, double rate,
                         struct agent_model_slot **out)
{
    struct agent_model_slot *s;

    if (!trusted_pk || !layout || !out || channels < 1 || channels > MODEL_MAX_CHANNELS ||
        !(rate > 0))
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
    s->channels = channels;
    s->rate = rate;
    s->have_key = 1;
    pthread_mutex_init(&s->mu, NULL);
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
    free(s->ring);
    free(s->lin);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Record why a blob is not installed (rc != 0), or find that a verified
 * model m cannot run at the source's rate; returns the final code. */
static int refuse(struct agent_model_slot *s, int rc, const struct model *m)
{
    const char *why = NULL;

    if (rc == MODEL_EFEATURES && m)
        why = model_features_unsupported(m);
    else if (rc == 0 && (why = featureset_rate_mismatch(&m->features, s->rate)) != NULL)
        rc = MODEL_EFEATURES;
    if (rc == 0)
        return 0;
    pthread_mutex_lock(&s->mu);
    if (rc == MODEL_EFEATURES && m)
        snprintf(s->refusal, sizeof s->refusal,
                 "model %u: %s (set %s v%u, window %u, hop %u, %g Hz; source %g Hz)", m->version,
                 why ? why : model_strerror(rc), featureset_name(m->features.id),
                 m->features.version, m->features.window, m->features.hop,
                 (double)m->features.sample_rate, s->rate);
    else
        snprintf(s->refusal, sizeof s->refusal, "%s", model_strerror(rc));
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Window buffers of n floats each and the feature set's scratch, grown
 * outside the sample path (by the installing thread) and never shrunk, so a
 * rollback needs nothing new. */
static int grow_buffers(struct agent_model_slot *s, size_t n, size_t scratch)
{
    float *r, *l, *old_r, *old_l;

    if (n <= s->cap && scratch <= s->scratch)
        return 0;
    if (n < s->cap)
        n = s->cap;
    if (scratch < s->scratch)
        scratch = s->scratch;
    r = calloc(n, sizeof *r);
    l = calloc(n + scratch, sizeof *l);
    if (!r || !l) {
        free(r);
        free(l);
        return MODEL_ENOMEM;
    }
    pthread_mutex_lock(&s->mu);
    old_r = s->ring;
    old_l = s->lin;
    s->ring = r;
    s->lin = l;
    s->cap = n;
    s->scratch = scratch;
    run_reset(s);
    pthread_mutex_unlock(&s->mu);
    free(old_r);
    free(old_l);
    return 0;
}

int agent_model_slot_load(struct agent_model_slot *s, const uint8_t *blob, size_t len)
{
    struct model *t;
    int rc;

    if (!s || !blob)
        return MODEL_EINVAL;
    if (!s->have_key)
        return refuse(s, MODEL_ESIGNATURE, NULL);   /* nothing is trusted before a key is pinned */
    /* spare is never the model being stepped: no lock while it is filled. */
    rc = model_load_device(blob, len, s->pk, s->layout, s->have_device ? s->device : NULL,
                           s->spare);
    if ((rc = refuse(s, rc, rc == 0 || rc == MODEL_EFEATURES ? s->spare : NULL)) != 0)
        return rc;
    if ((rc = grow_buffers(s, (size_t)s->channels * s->spare->features.window,
                           model_scratch_floats(s->spare))) != 0)
        return refuse(s, rc, NULL);
    pthread_mutex_lock(&s->mu);
    /* Rotate: spare (new) -> cur -> prev -> spare.  The first install has
     * no cur: the old empty prev buffer becomes the spare. */
    t = s->prev;
    s->prev = s->cur;
    s->cur = s->spare;
    s->spare = t;
    s->mode = AGENT_MODEL_ACTIVE;
    s->refusal[0] = '\0';
    run_reset(s);
    if (!s->prev) {
        /* keep three buffers: prev stays "empty" */
        s->prev = s->spare;
        s->spare = malloc(sizeof *s->spare);
        if (!s->spare) {
            s->spare = s->prev;
            s->prev = NULL;
            pthread_mutex_unlock(&s->mu);
            return MODEL_ENOMEM;   /* installed, but no rollback buffer */
        }
        s->prev->n_features = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Write len bytes to dir/name through a temporary file: a crash leaves the
 * old file or the new one, never half of one. */
static int write_atomic(const char *dir, const char *name, const void *buf, size_t len)
{
    char path[1100], tmp[1110];
    int fd, ok;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ok = write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int agent_model_save_mode(const char *dir, int mode)
{
    const char *m = agent_model_mode_name(mode);

    return write_atomic(dir, AGENT_MODEL_MODE_FILE, m, strlen(m));
}

int agent_model_save(const char *dir, const uint8_t *blob, size_t len, int mode)
{
    if (!dir || !blob)
        return -1;
    /* Mode first: a crash between the two leaves the old model in the new
     * mode at worst, and shadow is the safe default of a new model. */
    if (agent_model_save_mode(dir, mode) != 0)
        return -1;
    return write_atomic(dir, AGENT_MODEL_BLOB_FILE, blob, len);
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
    run_reset(s);
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

/* The pipeline's hook (struct pipeline_model). */
static int slot_step_hook(void *ctx, const float *frame, float *score)
{
    struct agent_model_slot *s = ctx;
    int alarm = agent_model_slot_step(s, frame, score), active;

    pthread_mutex_lock(&s->mu);
    active = s->cur && s->mode == AGENT_MODEL_ACTIVE;
    pthread_mutex_unlock(&s->mu);
    return (active ? PIPELINE_MODEL_ACTIVE : 0) | (alarm ? PIPELINE_MODEL_ALARM : 0);
}

int agent_model_slot_set_device(struct agent_model_slot *s, const char *device_id)
{
    uint8_t d[MODEL_DEVICE_DIGEST_LEN];
    int rc;

    if (!s)
        return MODEL_EINVAL;
    if ((rc = model_device_digest(device_id, d)) != 0)
        return rc;
    pthread_mutex_lock(&s->mu);
    memcpy(s->device, d, sizeof d);
    s->have_device = 1;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void hook_into(struct agent_model_slot *s, struct pipeline_config *pc)
{
    agent_model_slot_set_hold_off(s, pc->detect.hold_off_s);
    pc->model.step = slot_step_hook;
    pc->model.ctx = s;
}

static int slot_for_source(const struct source *src, const uint8_t pk[MODEL_PK_LEN],
                           struct agent_model_slot **s, char *err, size_t errlen)
{
    uint8_t layout[MODEL_LAYOUT_LEN];
    int rc;

    if ((rc = agent_model_layout_of(src, layout)) != 0 ||
        (rc = agent_model_slot_new(pk, layout, src->channels, src->rate, s)) != 0)
        snprintf(err, errlen, "model slot: %s", model_strerror(rc));
    return rc;
}

/* The device the slot takes per-device blobs for: --device-id when given. */
static int slot_device(struct agent_model_slot *s, const struct agent_config *c, char *err,
                       size_t errlen)
{
    int rc;

    if (!c->device_id[0])
        return 0;
    if ((rc = agent_model_slot_set_device(s, c->device_id)) != 0)
        snprintf(err, errlen, "model slot: device id: %s", model_strerror(rc));
    return rc;
}

int agent_model_setup(const struct agent_config *c, const struct source *src,
                      struct pipeline_config *pc, struct agent_model_slot **out,
                      char *err, size_t errlen)
{
    uint8_t pk[MODEL_PK_LEN];
    struct agent_model_slot *s = NULL;
    char why[200];
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
    if ((rc = slot_for_source(src, pk, &s, err, errlen)) != 0)
        return rc;
    if ((rc = slot_device(s, c, err, errlen)) != 0) {
        agent_model_slot_free(s);
        return rc;
    }
    rc = agent_model_slot_load_file(s, c->model_file);
    if (rc != 0) {
        agent_model_slot_refusal(s, why, sizeof why);
        snprintf(err, errlen, "model %s refused: %s", c->model_file,
                 rc == MODEL_EINVAL ? strerror(errno) : why);
        agent_model_slot_free(s);
        return rc;
    }
    hook_into(s, pc);
    *out = s;
    return 0;
}

/* The model the config poll kept in the key folder, verified again: a
 * restart runs it from the first sample. */
static void restore_kept(struct agent_model_slot *s, const char *key_dir)
{
    char path[1100], mode[16] = "";
    FILE *f;
    int rc;

    snprintf(path, sizeof path, "%s/%s", key_dir, AGENT_MODEL_BLOB_FILE);
    if (access(path, R_OK) != 0)
        return;
    if ((rc = agent_model_slot_load_file(s, path)) != 0) {
        char why[200];

        agent_model_slot_refusal(s, why, sizeof why);
        fprintf(stderr, "agent: kept model %s not used: %s\n", path,
                rc == MODEL_EINVAL ? strerror(errno) : why);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", key_dir, AGENT_MODEL_MODE_FILE);
    if ((f = fopen(path, "r")) != NULL) {
        if (!fgets(mode, sizeof mode, f))
            mode[0] = '\0';
        fclose(f);
    }
    /* Without a readable mode the kept model is only shadowed: acting on a
     * model nobody promoted would be worse than not acting. */
    agent_model_slot_set_mode(s, strncmp(mode, "active", 6) == 0 ? AGENT_MODEL_ACTIVE
                                                                   : AGENT_MODEL_SHADOW);
    fprintf(stderr, "agent: model %u restored from %s (%s)\n", agent_model_slot_version(s),
            key_dir, agent_model_mode_name(agent_model_slot_mode(s)));
}

int agent_model_setup_runtime(const struct agent_config *c, const struct source *src,
                              struct pipeline_config *pc, struct agent_model_slot **out,
                              char *err, size_t errlen)
{
    uint8_t pk[MODEL_PK_LEN] = { 0 };
    char pinned[1100];
    struct agent_model_slot *s = NULL;
    int rc, have_key = 0;

    *out = NULL;
    if (c->model_file[0])
        return agent_model_setup(c, src, pc, out, err, errlen);
    if (c->model_key_file[0]) {
        if ((rc = agent_model_read_key(c->model_key_file, pk)) != 0) {
            snprintf(err, errlen, "model key %s: %s", c->model_key_file,
                     rc == MODEL_EINVAL ? strerror(errno) : "not a 32-byte key");
            return MODEL_EINVAL;
        }
        have_key = 1;
    } else if (c->key_dir[0]) {
        /* The key the config poll pinned on first contact. */
        snprintf(pinned, sizeof pinned, "%s/model-signing.pub", c->key_dir);
        have_key = access(pinned, R_OK) == 0 && agent_model_read_key(pinned, pk) == 0;
    }
    if ((rc = slot_for_source(src, pk, &s, err, errlen)) != 0)
        return rc;
    if ((rc = slot_device(s, c, err, errlen)) != 0) {
        agent_model_slot_free(s);
        return rc;
    }
    s->have_key = have_key;
    if (have_key && c->key_dir[0])
        restore_kept(s, c->key_dir);
    hook_into(s, pc);
    *out = s;
    return 0;
}
