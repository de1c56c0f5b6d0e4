/* model.c - on-device model blob v2: score, sign, parse, verify.
 *
 * The layout is in schema/MODEL.md; the table below is its summary.  All
 * integers are little-endian, floats IEEE 754 binary32.  The parser runs on
 * bytes the agent fetched from the network: every count is bounded before it
 * sizes anything, and the signature is checked before a parameter is used.
 *
 *   off  size  field
 *     0     4  magic "PRMD"
 *     4     1  version major (2; 1 refused: it recorded no feature set)
 *     5     1  version minor (0..5, what the blob uses; readers accept any)
 *     6     1  kind (1 anomaly, 2 centroid, 3 fewshot: nearest prototype)
 *     7     1  channel_count (1..64)
 *     8     2  n_features (1..512)
 *    10     2  n_classes (anomaly 1, centroid 2..32)
 *    12     2  normal_class (< n_classes, or 0xFFFF)
 *    14     2  flags (0, or MODEL_FLAG_DEVICE; readers refuse unknown bits)
 *    16     4  model version (server's id)
 *    20     2  fewshot: n_selected, features it reads (0 = all; else 0)
 *    22     2  reserved (0)
 *    24     8  created_us (signed)
 *    32    32  channel layout: SHA-256 (model_layout_digest)
 *    64    32  signer's Ed25519 public key
 *    96     4  threshold
 *   100     4  param_count (must equal what kind/n_features/n_classes need)
 *   104     2  feature set id (schema/featureset.h)
 *   106     2  feature set version
 *   108     4  feature window, samples per channel
 *   112     4  feature hop, samples
 *   116     4  sample rate, Hz (float)
 *   120    20  feature set 3 (envelope) only: shaft Hz, rolling elements (u32),
 *              element and pitch diameter, contact angle (floats); K = 20
 *   120     K  feature set 4 (relations) only: rank (u32, < channel_count),
 *              mean[C], scale[C], basis[C][rank] (floats, C = channel_count);
 *              K = 4 + 4 (2 + rank) C
 *              (K = 0 for the other sets)
 *  120+K   D   MODEL_FLAG_DEVICE only (D = 36): SHA-256 of the device id,
 *              u32 reference windows (>= 1; 0 only with feature set 3: the
 *              model's center at that device's own shaft speed and bearing);
 *              D = 0 otherwise
 *  120+K+D 4*P  params
 *  ...+4P  64  Ed25519 signature over every byte before it
 *
 * model_score() and the C header the server generates for a model
 * (server/models/models_header.c) are kept statement for statement alike:
 * same operations, same order, float throughout, so a C compiler without
 * fast-math gives the same bits for both.  Training is the server's too
 * (server/models/): nothing here needs more than the blob. */
#include "schema/model.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_ERRORS(X)                                                      \
    X(MODEL_OK, "model_ok", "ok")                                            \
    X(MODEL_ETRUNCATED, "model_truncated", "blob shorter than its own lengths say") \
    X(MODEL_EMAGIC, "model_magic", "not a model blob (bad magic)")           \
    X(MODEL_EVERSION, "model_version", "unknown blob version (a v1 blob records no feature set: retrain it)") \
    X(MODEL_EFIELD, "model_field", "a field out of its documented range")    \
    X(MODEL_ETOOBIG, "model_too_big", "a length beyond a limit")             \
    X(MODEL_ESIGNATURE, "model_signature", "signature does not verify with the trusted key") \
    X(MODEL_ELAYOUT, "model_layout", "model trained for another channel layout") \
    X(MODEL_ETOOFEW, "model_too_few", "too few training examples")           \
    X(MODEL_EINVAL, "model_invalid", "invalid argument")                     \
    X(MODEL_ENOMEM, "model_nomem", "out of memory")                          \
    X(MODEL_EFEATURES, "model_features", "model needs a feature set this reader cannot compute") \
    X(MODEL_EDEVICE, "model_device", "model made for another device (its reference center is that device's)")

const char *model_strerror(int err)
{
    switch (err) {
#define X(code, name, msg) case code: return msg;
    MODEL_ERRORS(X)
#undef X
    default: return "unknown model error";
    }
}

const char *model_errcode(int err)
{
    switch (err) {
#define X(code, name, msg) case code: return name;
    MODEL_ERRORS(X)
#undef X
    default: return "model_unknown";
    }
}

const char *model_kind_name(uint8_t kind)
{
    switch (kind) {
    case MODEL_ANOMALY: return "anomaly";
    case MODEL_CENTROID: return "classifier";
    case MODEL_FEWSHOT: return "fewshot";
    default: return "?";
    }
}

uint32_t model_param_count(uint8_t kind, uint16_t n_features, uint16_t n_classes)
{
    if (n_features < 1 || n_features > MODEL_MAX_FEATURES)
        return 0;
    if (kind == MODEL_ANOMALY && n_classes == 1)
        return 2u * n_features + 1u;
    if (kind == MODEL_CENTROID && n_classes >= 2 && n_classes <= MODEL_MAX_CLASSES)
        return 2u * n_features + (uint32_t)n_classes * n_features;
    if (kind == MODEL_FEWSHOT && n_classes >= 2 && n_classes <= MODEL_MAX_PROTOS)
        return 2u * n_features + (uint32_t)n_classes * (n_features + 1u);
    return 0;
}

uint32_t model_fewshot_param_count(uint16_t n_features, uint16_t n_selected, uint16_t n_protos)
{
    uint32_t S = n_selected ? n_selected : n_features;

    if (n_features < 1 || n_features > MODEL_MAX_FEATURES || (n_selected != 0 && n_selected >= n_features) ||
        n_protos < 2 || n_protos > MODEL_MAX_PROTOS)
        return 0;
    return (n_selected ? S : 0u) + 2u * S + (uint32_t)n_protos * (S + 1u);
}

void model_fewshot_view(const struct model *m, struct model_fewshot_view *v)
{
    uint32_t S = m->n_selected ? m->n_selected : m->n_features;
    const float *p = m->params;

    v->n_sel = S;
    v->sel = m->n_selected ? p : 0;
    p += m->n_selected ? S : 0u;
    v->center = p;
    v->scale = p + S;
    v->proto = p + 2u * S;
    v->proto_class = v->proto + (size_t)m->n_protos * S;
}

int model_layout_digest(const char *const *names, const char *const *units, unsigned count,
                        uint8_t out[MODEL_LAYOUT_LEN])
{
    crypto_hash_sha256_state st;
    uint8_t c;

    if (count < 1 || count > MODEL_MAX_CHANNELS || !names || !units)
        return MODEL_EINVAL;
    if (sodium_init() < 0)
        return MODEL_ENOMEM;
    c = (uint8_t)count;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &c, 1);
    for (unsigned i = 0; i < count; i++) {
        size_t ln = strnlen(names[i], 65), lu = strnlen(units[i], 65);

        if (ln > 64 || lu > 64)
            return MODEL_EINVAL;
        crypto_hash_sha256_update(&st, (const uint8_t *)names[i], ln + 1);
        crypto_hash_sha256_update(&st, (const uint8_t *)units[i], lu + 1);
    }
    crypto_hash_sha256_final(&st, out);
    return MODEL_OK;
}

/* ---- scoring: mirrored by the emitted header ----------------------------- */

float model_anomaly_d2(const struct model *m, const float *x)
{
    const float *mean = m->params, *inv = m->params + m->n_features;
    float d2 = 0.0f;
    uint32_t i;

    for (i = 0; i < m->n_features; i++) {
        float z = (x[i] - mean[i]) * inv[i];
        d2 += z * z;
    }
    return d2 / (float)m->n_features;
}

/* Squared distances to every centroid, in standardised space. */
static void centroid_d2(const struct model *m, const float *x, float *d2)
{
    uint32_t n = m->n_features;
    const float *mean = m->params, *inv = m->params + n, *cen = m->params + 2u * n;

    for (uint32_t k = 0; k < m->n_classes; k++) {
        float s = 0.0f;
        for (uint32_t i = 0; i < n; i++) {
            float z = (x[i] - mean[i]) * inv[i] - cen[k * n + i];
            s += z * z;
        }
        d2[k] = s;
    }
}

/* Per class, the squared distance to its nearest prototype (in the
 * learned metric, folded into scale).  A class without a prototype cannot
 * happen: model_check refuses such a blob. */
static void fewshot_d2(const struct model *m, const float *x, float *d2)
{
    struct model_fewshot_view v;
    uint32_t n, np = m->n_protos;

    model_fewshot_view(m, &v);
    n = v.n_sel;
    for (uint32_t k = 0; k < m->n_classes; k++)
        d2[k] = INFINITY;
    for (uint32_t q = 0; q < np; q++) {
        uint32_t k = (uint32_t)v.proto_class[q];
        float s = 0.0f;
        for (uint32_t i = 0; i < n; i++) {
            float xi = v.sel ? x[(uint32_t)v.sel[i]] : x[i];
            float z = (xi - v.center[i]) * v.scale[i] - v.proto[q * n + i];
            s += z * z;
        }
        if (s < d2[k])
            d2[k] = s;
    }
}

/* Softmax of -d2/2, shifted by the smallest distance so expf never
 * underflows to all zeros. */
static int centroid_probs(const struct model *m, const float *x, float *p)
{
    float d2[MODEL_MAX_CLASSES], dmin, sum = 0.0f;
    uint32_t k;
    int best = 0;

    if (m->kind == MODEL_FEWSHOT)
        fewshot_d2(m, x, d2);
    else
        centroid_d2(m, x, d2);
    dmin = d2[0];
    for (k = 1; k < m->n_classes; k++) {
        if (d2[k] < dmin) {
            dmin = d2[k];
            best = (int)k;
        }
    }
    for (k = 0; k < m->n_classes; k++) {
        p[k] = expf(-0.5f * (d2[k] - dmin));
        sum += p[k];
    }
    for (k = 0; k < m->n_classes; k++)
        p[k] = p[k] / sum;
    return best;
}

float model_score(const struct model *m, const float *x, uint32_t n)
{
    if (!m || !x || n != m->n_features)
        return 0.0f;
    if (m->kind == MODEL_ANOMALY) {
        float d2 = model_anomaly_d2(m, x);
        return d2 / (d2 + m->params[2u * m->n_features]);
    }
    if (m->kind == MODEL_CENTROID || m->kind == MODEL_FEWSHOT) {
        float p[MODEL_MAX_CLASSES];
        int best = centroid_probs(m, x, p);

        if (m->normal_class < m->n_classes)
            return 1.0f - p[m->normal_class];
        return p[best];
    }
    return 0.0f;
}

int model_classify(const struct model *m, const float *x, uint32_t n, float *probs)
{
    float p[MODEL_MAX_CLASSES];
    int best;

    if (!m || !x || n != m->n_features || (m->kind != MODEL_CENTROID && m->kind != MODEL_FEWSHOT))
        return 0;
    best = centroid_probs(m, x, p);
    if (probs)
        memcpy(probs, p, sizeof(float) * m->n_classes);
    return best;
}

/* ---- blob ---------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static void putf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(p, u);
}
static float getf(const uint8_t *p)
{
    uint32_t u = get32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* fewshot: every prototype's class an integer below n_classes, every class
 * with a prototype (else its distance would stay infinite). */
static int fewshot_check(const struct model *m)
{
    struct model_fewshot_view v;
    uint32_t seen = 0;

    if (m->n_classes < 2 || m->n_classes > MODEL_MAX_CLASSES || m->n_protos < m->n_classes ||
        model_fewshot_param_count(m->n_features, m->n_selected, m->n_protos) != m->param_count)
        return MODEL_EFIELD;
    model_fewshot_view(m, &v);
    /* the selection: integer indices into the vector, strictly ascending */
    for (uint32_t i = 0; v.sel && i < v.n_sel; i++)
        if (!(v.sel[i] >= 0.0f) || !(v.sel[i] < (float)m->n_features) || v.sel[i] != floorf(v.sel[i]) ||
            (i > 0 && !(v.sel[i] > v.sel[i - 1])))
            return MODEL_EFIELD;
    for (uint32_t i = 0; i < v.n_sel; i++)
        if (!(v.scale[i] > 0.0f))
            return MODEL_EFIELD;
    for (uint32_t q = 0; q < m->n_protos; q++) {
        float c = v.proto_class[q];
        if (!(c >= 0.0f) || !(c < (float)m->n_classes) || c != floorf(c))
            return MODEL_EFIELD;
        seen |= 1u << (uint32_t)c;
    }
    return seen == (m->n_classes == 32 ? 0xFFFFFFFFu : (1u << m->n_classes) - 1u) ? MODEL_OK
                                                                                  : MODEL_EFIELD;
}

static void model_relations_view(const struct model *m, struct relations_map *rm)
{
    uint32_t C = m->channel_count;

    *rm = (struct relations_map){ C, m->rel_rank, m->rel, m->rel + C, m->rel + 2u * C };
}

uint32_t model_relations_len(const struct model *m)
{
    if (m->features.id != FEATURESET_RELATIONS)
        return 0;
    return 4u + 4u * (2u + m->rel_rank) * m->channel_count;
}

void model_feature_spec(const struct model *m, struct relations_map *map,
                        struct featureset_spec *out)
{
    *out = m->features;
    out->rel = 0;
    if (m->features.id == FEATURESET_RELATIONS) {
        model_relations_view(m, map);
        out->rel = map;
    }
}

size_t model_scratch_floats(const struct model *m)
{
    struct relations_map rm;
    struct featureset_spec fs;

    model_feature_spec(m, &rm, &fs);
    return featureset_scratch_floats(&fs);
}

int model_check(const struct model *m)
{
    if ((m->kind != MODEL_ANOMALY && m->kind != MODEL_CENTROID && m->kind != MODEL_FEWSHOT) ||
        m->channel_count < 1 || m->channel_count > MODEL_MAX_CHANNELS)
        return MODEL_EFIELD;
    if (m->param_count == 0 || m->param_count > MODEL_MAX_PARAMS)
        return MODEL_EFIELD;
    if (m->kind != MODEL_FEWSHOT &&
        model_param_count(m->kind, m->n_features, m->n_classes) != m->param_count)
        return MODEL_EFIELD;
    if (m->normal_class != MODEL_NO_CLASS &&
        (m->kind == MODEL_ANOMALY || m->normal_class >= m->n_classes))
        return MODEL_EFIELD;
    if (!isfinite(m->threshold) || !all_finite(m->params, m->param_count))
        return MODEL_EFIELD;
    if (m->kind == MODEL_FEWSHOT && fewshot_check(m) != MODEL_OK)
        return MODEL_EFIELD;
    if (m->kind != MODEL_FEWSHOT && m->n_selected != 0)
        return MODEL_EFIELD;
    /* one device's blob: a few-shot center moved to its reference, which
     * rests on at least one window, or (envelope set) the model's center
     * read at that device's own shaft speed and bearing */
    if ((m->flags & ~MODEL_FLAG_DEVICE) != 0 ||
        ((m->flags & MODEL_FLAG_DEVICE) &&
         (m->kind != MODEL_FEWSHOT ||
          (m->ref_windows < 1 && m->features.id != FEATURESET_ENVELOPE))) ||
        (!(m->flags & MODEL_FLAG_DEVICE) && m->ref_windows != 0))
        return MODEL_EFIELD;
    /* inverse deviations and the anomaly scale must be positive (fewshot's
     * scales: fewshot_check, wherever its selection puts them) */
    for (uint32_t i = 0; m->kind != MODEL_FEWSHOT && i < m->n_features; i++)
        if (!(m->params[m->n_features + i] > 0.0f))
            return MODEL_EFIELD;
    if (m->kind == MODEL_ANOMALY && !(m->params[2u * m->n_features] > 0.0f))
        return MODEL_EFIELD;
    /* The map travels with set 4 only, its rank below the channel count
     * (what sizes its section), every value finite, every scale positive. */
    if (m->features.id == FEATURESET_RELATIONS) {
        struct relations_map rm;

        if (m->channel_count < 2 || m->rel_rank >= m->channel_count)
            return MODEL_EFIELD;
        model_relations_view(m, &rm);
        if (relations_check(&rm) != RELATIONS_OK)
            return MODEL_EFIELD;
    } else if (m->rel_rank != 0) {
        return MODEL_EFIELD;
    }
    /* Window, hop and rate are bounded whatever the set: a reader that does
     * not know the set still reports sane numbers in its refusal. */
    if (m->features.window < FEATURESET_MIN_WINDOW || m->features.window > FEATURESET_MAX_WINDOW ||
        m->features.hop < 1 || m->features.hop > m->features.window ||
        !(m->features.sample_rate > 0.0f) || !isfinite(m->features.sample_rate))
        return MODEL_EFIELD;
    return MODEL_OK;
}

const char *model_features_unsupported(const struct model *m)
{
    struct relations_map rm;
    struct featureset_spec fs;
    const char *why;

    if (!m)
        return "no model";
    model_feature_spec(m, &rm, &fs);
    if ((why = featureset_unsupported(&fs, m->channel_count)) != 0)
        return why;
    if (featureset_count(fs.id, fs.version, m->channel_count) != m->n_features)
        return "n_features is not what the feature set gives for the model's channels";
    return 0;
}

uint32_t model_device_len(const struct model *m)
{
    return (m->flags & MODEL_FLAG_DEVICE) ? MODEL_DEVICE_LEN : 0u;
}

int model_device_digest(const char *device_id, uint8_t out[MODEL_DEVICE_DIGEST_LEN])
{
    size_t n;

    if (!device_id || !out || (n = strnlen(device_id, 65)) < 1 || n > 64)
        return MODEL_EINVAL;
    if (sodium_init() < 0)
        return MODEL_ENOMEM;
    crypto_hash_sha256(out, (const uint8_t *)device_id, n);
    return MODEL_OK;
}

int model_encode(struct model *m, const uint8_t sk[MODEL_SK_LEN], uint8_t **out, size_t *out_len)
{
    uint8_t *b;
    size_t len, kin, dev;
    int rc;

    if (!m || !sk || !out || !out_len)
        return MODEL_EINVAL;
    if ((rc = model_check(m)) != 0)
        return rc;
    if (sodium_init() < 0)
        return MODEL_ENOMEM;
    kin = m->features.id == FEATURESET_ENVELOPE ? MODEL_KIN_LEN : model_relations_len(m);
    dev = model_device_len(m);
    len = MODEL_FIXED_LEN + kin + dev + 4u * (size_t)m->param_count + MODEL_SIG_LEN;
    b = calloc(1, len);
    if (!b)
        return MODEL_ENOMEM;
    memcpy(m->signer_pk, sk + 32, MODEL_PK_LEN);
    memcpy(b, MODEL_MAGIC, 4);
    b[4] = MODEL_VERSION_MAJOR;
    /* the minor that says what a blob uses, so 2.0 blobs stay byte for byte what they were */
    b[5] = dev                                   ? 5
           : m->features.id == FEATURESET_RELATIONS ? 4
           : m->n_selected                       ? 3
           : kin                                 ? 2
           : m->kind == MODEL_FEWSHOT            ? 1
                                                 : 0;
    b[6] = m->kind;
    b[7] = m->channel_count;
    put16(b + 8, m->n_features);
    put16(b + 10, m->n_classes);
    put16(b + 12, m->normal_class);
    put16(b + 14, m->flags);
    put32(b + 16, m->version);
    put16(b + 20, m->n_selected);
    put16(b + 22, 0);
    put64(b + 24, (uint64_t)m->created_us);
    memcpy(b + 32, m->layout, MODEL_LAYOUT_LEN);
    memcpy(b + 64, m->signer_pk, MODEL_PK_LEN);
    putf(b + 96, m->threshold);
    put32(b + 100, m->param_count);
    put16(b + 104, m->features.id);
    put16(b + 106, m->features.version);
    put32(b + 108, m->features.window);
    put32(b + 112, m->features.hop);
    putf(b + 116, m->features.sample_rate);
    if (m->features.id == FEATURESET_RELATIONS) {
        put32(b + 120, m->rel_rank);
        for (uint32_t i = 0; i < (2u + m->rel_rank) * m->channel_count; i++)
            putf(b + 124 + 4u * i, m->rel[i]);
    } else if (kin) {
        putf(b + 120, m->features.kin.shaft_hz);
        put32(b + 124, m->features.kin.n_elements);
        putf(b + 128, m->features.kin.ball_d);
        putf(b + 132, m->features.kin.pitch_d);
        putf(b + 136, m->features.kin.contact_deg);
    }
    if (dev) {
        memcpy(b + MODEL_FIXED_LEN + kin, m->device, MODEL_DEVICE_DIGEST_LEN);
        put32(b + MODEL_FIXED_LEN + kin + MODEL_DEVICE_DIGEST_LEN, m->ref_windows);
    }
    for (uint32_t i = 0; i < m->param_count; i++)
        putf(b + MODEL_FIXED_LEN + kin + dev + 4u * i, m->params[i]);
    if (crypto_sign_ed25519_detached(b + len - MODEL_SIG_LEN, NULL, b, len - MODEL_SIG_LEN,
                                     sk) != 0) {
        free(b);
        return MODEL_ESIGNATURE;
    }
    *out = b;
    *out_len = len;
    return MODEL_OK;
}

int model_parse(const uint8_t *buf, size_t len, struct model *out)
{
    struct model *m;
    uint32_t pc;
    size_t kin, dev;
    uint16_t flags;
    int rc;

    if (!buf || !out)
        return MODEL_EINVAL;
    if (len < 4)
        return MODEL_ETRUNCATED;
    if (memcmp(buf, MODEL_MAGIC, 4) != 0)
        return MODEL_EMAGIC;
    if (len < MODEL_FIXED_LEN + MODEL_SIG_LEN)
        return MODEL_ETRUNCATED;
    if (buf[4] != MODEL_VERSION_MAJOR)
        return MODEL_EVERSION;
    if (len > MODEL_MAX_BLOB)
        return MODEL_ETOOBIG;
    pc = get32(buf + 100);
    if (pc > MODEL_MAX_PARAMS)
        return MODEL_ETOOBIG;
    kin = get16(buf + 104) == FEATURESET_ENVELOPE ? MODEL_KIN_LEN : 0;
    if (get16(buf + 104) == FEATURESET_RELATIONS) {
        /* the map's rank sizes its section: bounded by the channel count
         * (itself bounded) before it sizes anything */
        uint32_t C = buf[7], rank;

        if (len < MODEL_FIXED_LEN + 4u + MODEL_SIG_LEN)
            return MODEL_ETRUNCATED;
        rank = get32(buf + 120);
        if (C < 2 || C > RELATIONS_MAX_CH || rank >= C)
            return MODEL_EFIELD;
        kin = 4u + 4u * (2u + rank) * C;
    }
    /* flags before they size anything: an unknown bit is refused here */
    flags = get16(buf + 14);
    if ((flags & ~MODEL_FLAG_DEVICE) != 0 || get16(buf + 22) != 0)
        return MODEL_EFIELD;
    dev = (flags & MODEL_FLAG_DEVICE) ? MODEL_DEVICE_LEN : 0u;
    if (len < MODEL_FIXED_LEN + kin + dev + 4u * (size_t)pc + MODEL_SIG_LEN)
        return MODEL_ETRUNCATED;
    if (len != MODEL_FIXED_LEN + kin + dev + 4u * (size_t)pc + MODEL_SIG_LEN)
        return MODEL_EFIELD;    /* trailing bytes: not what a v2 writer makes */
    m = calloc(1, sizeof *m);
    if (!m)
        return MODEL_ENOMEM;
    m->kind = buf[6];
    m->channel_count = buf[7];
    m->n_features = get16(buf + 8);
    m->n_classes = get16(buf + 10);
    m->normal_class = get16(buf + 12);
    m->version = get32(buf + 16);
    m->created_us = (int64_t)get64(buf + 24);
    memcpy(m->layout, buf + 32, MODEL_LAYOUT_LEN);
    memcpy(m->signer_pk, buf + 64, MODEL_PK_LEN);
    m->threshold = getf(buf + 96);
    m->param_count = pc;
    m->n_selected = get16(buf + 20);
    m->flags = flags;
    if (dev) {
        memcpy(m->device, buf + MODEL_FIXED_LEN + kin, MODEL_DEVICE_DIGEST_LEN);
        m->ref_windows = get32(buf + MODEL_FIXED_LEN + kin + MODEL_DEVICE_DIGEST_LEN);
    }
    /* fewshot: P from param_count = (S) + 2S + P(S + 1), S the features it
     * reads; model_check confirms it */
    if (m->kind == MODEL_FEWSHOT && m->n_features > 0) {
        uint32_t S = m->n_selected ? m->n_selected : m->n_features;
        uint32_t head = (m->n_selected ? S : 0u) + 2u * S;

        if (pc > head)
            m->n_protos = (uint16_t)((pc - head) / (S + 1u) > 0xFFFFu ? 0xFFFFu : (pc - head) / (S + 1u));
    }
    m->features.id = get16(buf + 104);
    m->features.version = get16(buf + 106);
    m->features.window = get32(buf + 108);
    m->features.hop = get32(buf + 112);
    m->features.sample_rate = getf(buf + 116);
    if (m->features.id == FEATURESET_RELATIONS) {
        m->rel_rank = get32(buf + 120);
        for (uint32_t i = 0; i < (2u + m->rel_rank) * m->channel_count; i++)
            m->rel[i] = getf(buf + 124 + 4u * i);
    } else if (kin) {
        m->features.kin.shaft_hz = getf(buf + 120);
        m->features.kin.n_elements = get32(buf + 124);
        m->features.kin.ball_d = getf(buf + 128);
        m->features.kin.pitch_d = getf(buf + 132);
        m->features.kin.contact_deg = getf(buf + 136);
    }
    for (uint32_t i = 0; i < pc; i++)
        m->params[i] = getf(buf + MODEL_FIXED_LEN + kin + dev + 4u * i);
    rc = model_check(m);
    if (rc == 0)
        memcpy(out, m, sizeof *m);
    free(m);
    return rc;
}

int model_verify(const uint8_t *buf, size_t len, const uint8_t pk[MODEL_PK_LEN])
{
    if (!buf || !pk)
        return MODEL_EINVAL;
    if (len < MODEL_FIXED_LEN + MODEL_SIG_LEN)
        return MODEL_ETRUNCATED;
    if (len > MODEL_MAX_BLOB)
        return MODEL_ETOOBIG;
    if (sodium_init() < 0)
        return MODEL_ENOMEM;
    if (crypto_sign_ed25519_verify_detached(buf + len - MODEL_SIG_LEN, buf, len - MODEL_SIG_LEN,
                                            pk) != 0)
        return MODEL_ESIGNATURE;
    return MODEL_OK;
}

int model_load(const uint8_t *buf, size_t len, const uint8_t trusted_pk[MODEL_PK_LEN],
               const uint8_t *layout, struct model *out)
{
    return model_load_device(buf, len, trusted_pk, layout, NULL, out);
}

int model_load_device(const uint8_t *buf, size_t len, const uint8_t trusted_pk[MODEL_PK_LEN],
                      const uint8_t *layout, const uint8_t *device, struct model *out)
{
    int rc;

    if (!trusted_pk || !out)
        return MODEL_EINVAL;
    /* Signature first: nothing of an unsigned blob is interpreted beyond
     * its length. */
    if ((rc = model_verify(buf, len, trusted_pk)) != 0)
        return rc;
    if ((rc = model_parse(buf, len, out)) != 0)
        return rc;
    if (layout && memcmp(layout, out->layout, MODEL_LAYOUT_LEN) != 0)
        return MODEL_ELAYOUT;
    /* another device's center would score this machine against the wrong
     * normal: refused, as is any device's blob by a reader that says none */
    if ((out->flags & MODEL_FLAG_DEVICE) &&
        (!device || memcmp(device, out->device, MODEL_DEVICE_DIGEST_LEN) != 0))
        return MODEL_EDEVICE;
    if (model_features_unsupported(out))
        return MODEL_EFEATURES;
    return MODEL_OK;
}

void model_test_input(const struct model *m, float *x)
{
    if (m->kind == MODEL_FEWSHOT && m->n_selected) {
        struct model_fewshot_view v;

        model_fewshot_view(m, &v);
        for (uint32_t i = 0; i < m->n_features; i++)
            x[i] = (float)(i % 7u);         /* read by nothing: any value */
        for (uint32_t i = 0; i < v.n_sel; i++)
            x[(uint32_t)v.sel[i]] = v.center[i] + (float)((int)(i % 5u) - 2) * 1.5f / v.scale[i];
        return;
    }
    for (uint32_t i = 0; i < m->n_features; i++)
        x[i] = m->params[i] + (float)((int)(i % 5u) - 2) * 1.5f / m->params[m->n_features + i];
}
