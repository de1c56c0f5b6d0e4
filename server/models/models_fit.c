/* models_fit.c - the maths of training: a window's feature vector, and the
 * two fits that turn feature vectors into model parameters (schema/MODEL.md
 * says what the parameters mean to a scorer).
 *
 * Statistics are accumulated in double and stored as float; nothing here
 * knows PostgreSQL or HTTP, so the unit tests call it directly. */
#include "server/models/models.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/model.h"

/* Mean and 1/std per feature over n rows.  The floor keeps a constant
 * feature from dividing by 0 and scales with the feature's magnitude. */
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

/* The fitted parameters into out, keeping the identity fields the caller
 * set there (layout, channel count, version, creation time, feature set
 * and its map). */
static void fit_finish(struct model *m, struct model *out)
{
    m->threshold = 0.5f;
    m->channel_count = out->channel_count;
    m->version = out->version;
    m->created_us = out->created_us;
    m->features = out->features;
    /* the relations set's map is part of what the vector is computed from */
    m->rel_rank = out->rel_rank;
    memcpy(m->rel, out->rel, sizeof m->rel);
    memcpy(m->layout, out->layout, sizeof m->layout);
    memcpy(out, m, sizeof *m);
}

int models_train_anomaly(const float *X, size_t n, uint16_t d, float quantile, struct model *out)
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
        dist[i] = model_anomaly_d2(m, X + i * d);
    qsort(dist, n, sizeof *dist, cmp_float);
    qi = (size_t)((double)quantile * (double)(n - 1) + 0.5);
    scale = dist[qi];
    if (!(scale > 1e-6f))
        scale = 1e-6f;
    m->params[2u * d] = scale;
    fit_finish(m, out);
    free(dist);
    free(m);
    return MODEL_OK;
}

/* Examples per class; MODEL_ETOOFEW naming the first class with none. */
static int class_counts(const int *y, size_t n, uint16_t k, size_t *cnt, int *bad_class)
{
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
    return MODEL_OK;
}

int models_train_centroid(const float *X, const int *y, size_t n, uint16_t d, uint16_t k,
                          uint16_t normal_class, struct model *out, int *bad_class)
{
    struct model *m;
    double *sum;
    size_t cnt[MODEL_MAX_CLASSES] = { 0 };
    int rc;

    if (!X || !y || !out || d < 1 || d > MODEL_MAX_FEATURES || k < 2 || k > MODEL_MAX_CLASSES ||
        (normal_class != MODEL_NO_CLASS && normal_class >= k))
        return MODEL_EINVAL;
    if (n > SIZE_MAX / sizeof(float) / d || !all_finite(X, n * d))
        return MODEL_EINVAL;
    if ((rc = class_counts(y, n, k, cnt, bad_class)) != MODEL_OK)
        return rc;
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
    fit_finish(m, out);
    free(sum);
    free(m);
    return MODEL_OK;
}

int models_calibrate_threshold(struct model *m, const float *cal, size_t n, double target,
                               size_t *alarms)
{
    float *sc, thr;
    size_t allowed, i, k = 0;

    if (!m || !cal || n < 1)
        return MODEL_ETOOFEW;
    if (!(target >= 0.0) || target > 1.0)
        return MODEL_EINVAL;
    if (!(sc = malloc(n * sizeof *sc)))
        return MODEL_ENOMEM;
    for (i = 0; i < n; i++)
        sc[i] = model_score(m, cal + i * m->n_features, m->n_features);
    qsort(sc, n, sizeof *sc, cmp_float);
    allowed = (size_t)(target * (double)n);
    if (allowed >= n)
        allowed = n - 1;
    /* Just above the (allowed+1)-th highest score: at most `allowed` reach it
     * (fewer with ties).  A score of 1 cannot be exceeded: the threshold stays 1. */
    thr = nextafterf(sc[n - 1 - allowed], 2.0f);
    if (thr > 1.0f)
        thr = 1.0f;
    for (i = 0; i < n; i++)
        k += sc[i] >= thr;
    m->threshold = thr;
    if (alarms)
        *alarms = k;
    free(sc);
    return MODEL_OK;
}
