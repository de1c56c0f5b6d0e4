/* model.c - on-device model blob v1: train, score, sign, parse, emit C.
 *
 * The layout is in schema/MODEL.md; the table below is its summary.  All
 * integers are little-endian, floats IEEE 754 binary32.  The parser runs on
 * bytes the agent fetched from the network: every count is bounded before it
 * sizes anything, and the signature is checked before a parameter is used.
 *
 *   off  size  field
 *     0     4  magic "PRMD"
 *     4     1  version major (1)
 *     5     1  version minor (0)
 *     6     1  kind (1 anomaly, 2 centroid)
 *     7     1  channel_count (1..64)
 *     8     2  n_features (1..512)
 *    10     2  n_classes (anomaly 1, centroid 2..32)
 *    12     2  normal_class (< n_classes, or 0xFFFF)
 *    14     2  flags (0; readers refuse unknown bits)
 *    16     4  model version (server's id)
 *    20     4  reserved (0)
 *    24     8  created_us (signed)
 *    32    32  channel layout: SHA-256 (model_layout_digest)
 *    64    32  signer's Ed25519 public key
 *    96     4  threshold
 *   100     4  param_count (must equal what kind/n_features/n_classes need)
 *   104  4*P  params
 *  104+4P  64  Ed25519 signature over every byte before it
 *
 * model_score() and the code model_emit_header() prints are kept statement
 * for statement alike: same operations, same order, float throughout, so a
 * C compiler without fast-math gives the same bits for both. */
#include "schema/model.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_ERRORS(X)                                                      \
    X(MODEL_OK, "model_ok", "ok")                                            \
    X(MODEL_ETRUNCATED, "model_truncated", "blob shorter than its own lengths say") \
    X(MODEL_EMAGIC, "model_magic", "not a model blob (bad magic)")           \
    X(MODEL_EVERSION, "model_version", "unknown major version")              \
    X(MODEL_EFIELD, "model_field", "a field out of its documented range")    \
    X(MODEL_ETOOBIG, "model_too_big", "a length beyond a limit")             \
    X(MODEL_ESIGNATURE, "model_signature", "signature does not verify with the trusted key") \
    X(MODEL_ELAYOUT, "model_layout", "model trained for another channel layout") \
    X(MODEL_ETOOFEW, "model_too_few", "too few training examples")           \
    X(MODEL_EINVAL, "model_invalid", "invalid argument")                     \
    X(MODEL_ENOMEM, "model_nomem", "out of memory")

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
    return 0;
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

static float anomaly_d2(const struct model *m, const float *x)
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

/* Softmax of -d2/2, shifted by the smallest distance so expf never
 * underflows to all zeros. */
static int centroid_probs(const struct model *m, const float *x, float *p)
{
    float d2[MODEL_MAX_CLASSES], dmin, sum = 0.0f;
    uint32_t k;
    int best = 0;

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
        float d2 = anomaly_d2(m, x);
        return d2 / (d2 + m->params[2u * m->n_features]);
    }
    if (m->kind == MODEL_CENTROID) {
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

    if (!m || !x || n != m->n_features || m->kind != MODEL_CENTROID)
        return 0;
    best = centroid_probs(m, x, p);
    if (probs)
        memcpy(probs, p, sizeof(float) * m->n_classes);
    return best;
}

/* ---- training ------------------------------------------------------------ */

/* Mean and 1/std per feature over the rows selected by y == cls (all rows
 * when y is NULL).  The floor keeps a constant feature from dividing by 0
 * and scales with the feature's magnitude. */
static void standardise(const float *X, size_t n, uint16_t d, float *mean, float *inv)
{
    for (uint16_t j = 0; j < d; j++) {
        double s = 0.0, s2 = 0.0, mu, var, sd;

        for (size_t i = 0; i < n; i++)
            s += X[i * d + j];
        mu = s / (double)n;
        for (size_t i = 0; i < n; i++) {
            double e = X[i * d + j] - mu;
            s2 += e * e;
        }
        var = n > 1 ? s2 / (double)(n - 1) : 0.0;
        sd = sqrt(var);
        if (sd < 1e-6 + 1e-3 * fabs(mu))
            sd = 1e-6 + 1e-3 * fabs(mu);
        mean[j] = (float)mu;
        inv[j] = (float)(1.0 / sd);
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

int model_train_anomaly(const float *X, size_t n, uint16_t d, float quantile, struct model *out)
{
    struct model *m;
    float *dist, scale;
    size_t qi;

    if (!X || !out || n < 2 || d < 1 || d > MODEL_MAX_FEATURES || !(quantile > 0.0f) ||
        quantile > 1.0f)
        return n < 2 ? MODEL_ETOOFEW : MODEL_EINVAL;
    if (n > SIZE_MAX / sizeof(float) / d || !all_finite(X, n * d))
        return MODEL_EINVAL;
    m = calloc(1, sizeof *m);
    dist = malloc(n * sizeof *dist);
    if (!m || !dist) {
        free(m);
        free(dist);
        return MODEL_ENOMEM;
    }
    m->kind = MODEL_ANOMALY;
    m->n_features = d;
    m->n_classes = 1;
    m->normal_class = MODEL_NO_CLASS;
    m->param_count = model_param_count(MODEL_ANOMALY, d, 1);
    standardise(X, n, d, m->params, m->params + d);
    for (size_t i = 0; i < n; i++)
        dist[i] = anomaly_d2(m, X + i * d);
    qsort(dist, n, sizeof *dist, cmp_float);
    qi = (size_t)((double)quantile * (double)(n - 1) + 0.5);
    scale = dist[qi];
    if (!(scale > 1e-6f))
        scale = 1e-6f;
    m->params[2u * d] = scale;
    m->threshold = 0.5f;
    /* Keep the caller's identity fields. */
    m->channel_count = out->channel_count;
    m->version = out->version;
    m->created_us = out->created_us;
    memcpy(m->layout, out->layout, sizeof m->layout);
    memcpy(out, m, sizeof *m);
    free(dist);
    free(m);
    return MODEL_OK;
}

int model_train_centroid(const float *X, const int *y, size_t n, uint16_t d, uint16_t k,
                         uint16_t normal_class, struct model *out, int *bad_class)
{
    struct model *m;
    double *sum;
    size_t cnt[MODEL_MAX_CLASSES] = { 0 };

    if (!X || !y || !out || d < 1 || d > MODEL_MAX_FEATURES || k < 2 || k > MODEL_MAX_CLASSES ||
        (normal_class != MODEL_NO_CLASS && normal_class >= k))
        return MODEL_EINVAL;
    if (n > SIZE_MAX / sizeof(float) / d || !all_finite(X, n * d))
        return MODEL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= k)
            return MODEL_EINVAL;
        cnt[y[i]]++;
    }
    for (uint16_t c = 0; c < k; c++) {
        if (cnt[c] == 0) {
            if (bad_class)
                *bad_class = c;
            return MODEL_ETOOFEW;
        }
    }
    m = calloc(1, sizeof *m);
    sum = calloc((size_t)k * d, sizeof *sum);
    if (!m || !sum) {
        free(m);
        free(sum);
        return MODEL_ENOMEM;
    }
    m->kind = MODEL_CENTROID;
    m->n_features = d;
    m->n_classes = k;
    m->normal_class = normal_class;
    m->param_count = model_param_count(MODEL_CENTROID, d, k);
    standardise(X, n, d, m->params, m->params + d);
    for (size_t i = 0; i < n; i++)
        for (uint16_t j = 0; j < d; j++)
            sum[(size_t)y[i] * d + j] += (double)((X[i * d + j] - m->params[j]) * m->params[d + j]);
    for (uint16_t c = 0; c < k; c++)
        for (uint16_t j = 0; j < d; j++)
            m->params[2u * d + (size_t)c * d + j] = (float)(sum[(size_t)c * d + j] / (double)cnt[c]);
    m->threshold = 0.5f;
    m->channel_count = out->channel_count;
    m->version = out->version;
    m->created_us = out->created_us;
    memcpy(m->layout, out->layout, sizeof m->layout);
    memcpy(out, m, sizeof *m);
    free(sum);
    free(m);
    return MODEL_OK;
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

/* Range checks shared by encode and parse. */
static int model_check(const struct model *m)
{
    if ((m->kind != MODEL_ANOMALY && m->kind != MODEL_CENTROID) ||
        m->channel_count < 1 || m->channel_count > MODEL_MAX_CHANNELS)
        return MODEL_EFIELD;
    if (model_param_count(m->kind, m->n_features, m->n_classes) != m->param_count ||
        m->param_count == 0)
        return MODEL_EFIELD;
    if (m->normal_class != MODEL_NO_CLASS &&
        (m->kind != MODEL_CENTROID || m->normal_class >= m->n_classes))
        return MODEL_EFIELD;
    if (!isfinite(m->threshold) || !all_finite(m->params, m->param_count))
        return MODEL_EFIELD;
    /* inverse deviations and the anomaly scale must be positive */
    for (uint32_t i = 0; i < m->n_features; i++)
        if (!(m->params[m->n_features + i] > 0.0f))
            return MODEL_EFIELD;
    if (m->kind == MODEL_ANOMALY && !(m->params[2u * m->n_features] > 0.0f))
        return MODEL_EFIELD;
    return MODEL_OK;
}

int model_encode(struct model *m, const uint8_t sk[MODEL_SK_LEN], uint8_t **out, size_t *out_len)
{
    uint8_t *b;
    size_t len;
    int rc;

    if (!m || !sk || !out || !out_len)
        return MODEL_EINVAL;
    if ((rc = model_check(m)) != 0)
        return rc;
    if (sodium_init() < 0)
        return MODEL_ENOMEM;
    len = MODEL_FIXED_LEN + 4u * (size_t)m->param_count + MODEL_SIG_LEN;
    b = calloc(1, len);
    if (!b)
        return MODEL_ENOMEM;
    memcpy(m->signer_pk, sk + 32, MODEL_PK_LEN);
    memcpy(b, MODEL_MAGIC, 4);
    b[4] = MODEL_VERSION_MAJOR;
    b[5] = MODEL_VERSION_MINOR;
    b[6] = m->kind;
    b[7] = m->channel_count;
    put16(b + 8, m->n_features);
    put16(b + 10, m->n_classes);
    put16(b + 12, m->normal_class);
    put16(b + 14, 0);
    put32(b + 16, m->version);
    put32(b + 20, 0);
    put64(b + 24, (uint64_t)m->created_us);
    memcpy(b + 32, m->layout, MODEL_LAYOUT_LEN);
    memcpy(b + 64, m->signer_pk, MODEL_PK_LEN);
    putf(b + 96, m->threshold);
    put32(b + 100, m->param_count);
    for (uint32_t i = 0; i < m->param_count; i++)
        putf(b + MODEL_FIXED_LEN + 4u * i, m->params[i]);
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
    if (len < MODEL_FIXED_LEN + 4u * (size_t)pc + MODEL_SIG_LEN)
        return MODEL_ETRUNCATED;
    if (len != MODEL_FIXED_LEN + 4u * (size_t)pc + MODEL_SIG_LEN)
        return MODEL_EFIELD;    /* trailing bytes: not what a v1 writer makes */
    if (get16(buf + 14) != 0 || get32(buf + 20) != 0)
        return MODEL_EFIELD;
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
    for (uint32_t i = 0; i < pc; i++)
        m->params[i] = getf(buf + MODEL_FIXED_LEN + 4u * i);
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
    return MODEL_OK;
}

void model_test_input(const struct model *m, float *x)
{
    for (uint32_t i = 0; i < m->n_features; i++)
        x[i] = m->params[i] + (float)((int)(i % 5u) - 2) * 1.5f / m->params[m->n_features + i];
}

/* ---- C header ------------------------------------------------------------ */

static void emit_floats(FILE *f, const char *name, const float *v, size_t n, const char *dims)
{
    fprintf(f, "static const float %s%s = {", name, dims);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%af%s", i % 4 ? " " : "\n    ", (double)v[i], i + 1 < n ? "," : "");
    fprintf(f, "\n};\n");
}

/* %a prints a double; the values are exactly floats, so a literal with the
 * f suffix is the same float.  The array printer above relies on the
 * compiler converting the double literal to float exactly (it is exact). */
int model_emit_header(const struct model *m, const char *prefix, char **out, size_t *out_len)
{
    char *buf = NULL, up[40], nm[64];
    size_t len = 0, pl;
    FILE *f;
    float x[MODEL_MAX_FEATURES];
    uint32_t n;

    if (!m || !prefix || !out || model_check(m) != 0)
        return MODEL_EINVAL;
    pl = strlen(prefix);
    if (pl < 1 || pl > 32 || !(prefix[0] == '_' || (prefix[0] >= 'a' && prefix[0] <= 'z')))
        return MODEL_EINVAL;
    for (size_t i = 0; i < pl; i++) {
        char c = prefix[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return MODEL_EINVAL;
        up[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    up[pl] = '\0';
    n = m->n_features;
    f = open_memstream(&buf, &len);
    if (!f)
        return MODEL_ENOMEM;
    model_test_input(m, x);
    fprintf(f, "/* %s.h - Precursor on-device model %u (%s), generated by the server.\n"
               " *\n"
               " * Self-contained C99: no heap, no I/O, only expf from <math.h>.  Scores one\n"
               " * feature vector of %s_N_FEATURES floats (the detector's layout: 7 per\n"
               " * channel, channel-major) to [0, 1]; %s_self_test() checks the built-in\n"
               " * test vector gives the score the server computed, bit for bit.  Compile\n"
               " * without fast-math so the float operations keep their order. */\n",
            prefix, m->version, model_kind_name(m->kind), up, prefix);
    fprintf(f, "#ifndef %s_H\n#define %s_H\n\n#include <math.h>\n#include <stdint.h>\n\n", up, up);
    fprintf(f, "#define %s_VERSION %uu\n#define %s_N_FEATURES %u\n#define %s_N_CLASSES %u\n"
               "#define %s_N_CHANNELS %u\n#define %s_THRESHOLD %af\n\n",
            up, m->version, up, n, up, m->n_classes, up, m->channel_count, up,
            (double)m->threshold);
    fprintf(f, "/* SHA-256 of the channel layout (names and units) it was trained for */\n"
               "static const uint8_t %s_layout[32] = {", prefix);
    for (int i = 0; i < 32; i++)
        fprintf(f, "%s0x%02x%s", i % 8 ? " " : "\n    ", m->layout[i], i < 31 ? "," : "");
    fprintf(f, "\n};\n\n");
    snprintf(nm, sizeof nm, "%s_mean", prefix);
    emit_floats(f, nm, m->params, n, "[]");
    snprintf(nm, sizeof nm, "%s_inv_std", prefix);
    emit_floats(f, nm, m->params + n, n, "[]");
    if (m->kind == MODEL_ANOMALY) {
        fprintf(f, "static const float %s_scale = %af;\n\n", prefix, (double)m->params[2u * n]);
        fprintf(f,
            "static inline float %s_score(const float *x)\n{\n"
            "    float d2 = 0.0f;\n    uint32_t i;\n\n"
            "    for (i = 0; i < %s_N_FEATURES; i++) {\n"
            "        float z = (x[i] - %s_mean[i]) * %s_inv_std[i];\n"
            "        d2 += z * z;\n    }\n"
            "    d2 = d2 / (float)%s_N_FEATURES;\n"
            "    return d2 / (d2 + %s_scale);\n}\n\n",
            prefix, up, prefix, prefix, up, prefix);
    } else {
        char dims[32];

        snprintf(nm, sizeof nm, "%s_centroid", prefix);
        snprintf(dims, sizeof dims, "[%u]", m->n_classes * n);
        emit_floats(f, nm, m->params + 2u * n, (size_t)m->n_classes * n, dims);
        fprintf(f, "#define %s_NORMAL_CLASS %u\n\n", up, m->normal_class);
        fprintf(f,
            "/* Nearest class; p[] gets the softmax of -d2/2 over the classes. */\n"
            "static inline int %s_classify(const float *x, float p[%s_N_CLASSES])\n{\n"
            "    float d2[%s_N_CLASSES], dmin, sum = 0.0f;\n    uint32_t k, i;\n    int best = 0;\n\n"
            "    for (k = 0; k < %s_N_CLASSES; k++) {\n        float s = 0.0f;\n"
            "        for (i = 0; i < %s_N_FEATURES; i++) {\n"
            "            float z = (x[i] - %s_mean[i]) * %s_inv_std[i] - %s_centroid[k * %s_N_FEATURES + i];\n"
            "            s += z * z;\n        }\n        d2[k] = s;\n    }\n"
            "    dmin = d2[0];\n"
            "    for (k = 1; k < %s_N_CLASSES; k++) {\n"
            "        if (d2[k] < dmin) {\n            dmin = d2[k];\n            best = (int)k;\n        }\n    }\n"
            "    for (k = 0; k < %s_N_CLASSES; k++) {\n"
            "        p[k] = expf(-0.5f * (d2[k] - dmin));\n        sum += p[k];\n    }\n"
            "    for (k = 0; k < %s_N_CLASSES; k++)\n        p[k] = p[k] / sum;\n"
            "    return best;\n}\n\n",
            prefix, up, up, up, up, prefix, prefix, prefix, up, up, up, up);
        fprintf(f,
            "static inline float %s_score(const float *x)\n{\n"
            "    float p[%s_N_CLASSES];\n    int best = %s_classify(x, p);\n\n",
            prefix, up, prefix);
        if (m->normal_class < m->n_classes)
            fprintf(f, "    (void)best;\n    return 1.0f - p[%s_NORMAL_CLASS];\n}\n\n", up);
        else
            fprintf(f, "    return p[best];\n}\n\n");
    }
    fprintf(f, "/* Test vector: the server's input and its score. */\n");
    snprintf(nm, sizeof nm, "%s_test_input", prefix);
    emit_floats(f, nm, x, n, "[]");
    fprintf(f, "static const float %s_test_score = %af;\n\n", prefix,
            (double)model_score(m, x, n));
    fprintf(f, "static inline int %s_self_test(void)\n{\n"
               "    return %s_score(%s_test_input) == %s_test_score;\n}\n\n#endif\n",
            prefix, prefix, prefix, prefix);
    if (fclose(f) != 0) {
        free(buf);
        return MODEL_ENOMEM;
    }
    *out = buf;
    if (out_len)
        *out_len = len;
    return MODEL_OK;
}

/* ---- features -------------------------------------------------------------- */

void model_window_features(const float *x, size_t len, float out[MODEL_NFEAT])
{
    double m1 = 0, m2 = 0, m4 = 0, peak = 0, e_lo = 0, e_hi = 0, var, c4, rms, tiny;

    for (int k = 0; k < MODEL_NFEAT; k++)
        out[k] = 0.0f;
    if (!x || len < 4)
        return;
    for (size_t i = 0; i < len; i++)
        m1 += x[i];
    m1 /= (double)len;
    for (size_t i = 0; i < len; i++) {
        double y = x[i] - m1, y2 = y * y;
        m2 += y2;
        m4 += y2 * y2;
        if (fabs(y) > peak)
            peak = fabs(y);
        if (i >= 1) {
            double dd = (double)x[i] - x[i - 1];
            e_hi += dd * dd;
        }
        if (i >= 3) {
            double a = ((double)x[i] + x[i - 1] + x[i - 2] + x[i - 3]) / 4.0 - m1;
            e_lo += a * a;
        }
    }
    var = m2 / (double)len;
    c4 = m4 / (double)len;
    tiny = 1e-12 + 1e-6 * fabs(m1);
    rms = sqrt(var);
    out[0] = 0.0f;
    out[1] = (float)log(rms + tiny);
    out[2] = (float)log(peak + tiny);
    out[3] = (float)log((peak + tiny) / (rms + tiny));
    out[4] = (float)log((c4 + tiny * tiny) / (var * var + tiny * tiny));
    out[5] = (float)log(e_lo / (double)(len - 3) + tiny * tiny);
    out[6] = (float)log(e_hi / (double)(len - 1) + tiny * tiny);
}
