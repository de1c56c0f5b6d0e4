/* relations.c - features of a window in the residual subspace of a linear
 * model of normal operation (see relations.h).  Portable: no heap, no I/O. */
#include "schema/relations.h"

#include <math.h>

int relations_check(const struct relations_map *m)
{
    if (!m || m->n_ch < 2 || m->n_ch > RELATIONS_MAX_CH || m->rank >= m->n_ch || !m->mean || !m->scale ||
        (m->rank && !m->basis))
        return RELATIONS_EINVAL;
    for (uint32_t c = 0; c < m->n_ch; c++) {
        if (!isfinite(m->mean[c]) || !isfinite(m->scale[c]))
            return RELATIONS_ENONFINITE;
        if (!(m->scale[c] > 0))
            return RELATIONS_EINVAL;
    }
    for (uint32_t i = 0; i < m->n_ch * m->rank; i++)
        if (!isfinite(m->basis[i]))
            return RELATIONS_ENONFINITE;
    return RELATIONS_OK;
}

size_t relations_scratch_floats(const struct relations_map *m)
{
    /* z_t, B^T z_t, and a running mean and sum of squares per channel */
    return relations_check(m) == RELATIONS_OK ? (size_t)3 * m->n_ch + m->rank : 0;
}

size_t relations_hold_scratch_floats(const struct relations_map *m)
{
    return relations_check(m) == RELATIONS_OK ? relations_scratch_floats(m) + m->n_ch : 0;
}

/* The features; with hold (n_ch floats after the scratch) non-finite samples
 * are held, without they refuse the window. */
static int features(const struct relations_map *m, const float *x, uint32_t n, uint32_t stride,
                    float *scratch, size_t scratch_floats, float *out, int hold)
{
    int rc = relations_check(m);
    if (rc != RELATIONS_OK)
        return rc;
    if (!x || !out || n < 1 || stride < n)
        return RELATIONS_EINVAL;
    uint32_t C = m->n_ch, K = m->rank;
    if (!scratch || scratch_floats < (hold ? relations_hold_scratch_floats(m) : relations_scratch_floats(m)))
        return RELATIONS_EINVAL;
    float *z = scratch, *t = z + C, *mean = t + K, *m2 = mean + C, *last = m2 + C;
    for (uint32_t c = 0; c < C; c++) {
        mean[c] = m2[c] = 0;
        if (hold)
            last[c] = m->mean[c];
    }
    /* Welford per channel: a float sum of squares less the squared mean
     * would cancel when the residual barely moves */
    for (uint32_t s = 0; s < n; s++) {
        for (uint32_t c = 0; c < C; c++) {
            float v = x[(size_t)c * stride + s];
            if (hold) {
                if (isfinite(v))
                    last[c] = v;
                v = last[c];
            } else if (!isfinite(v)) {
                return RELATIONS_ENONFINITE;
            }
            z[c] = (v - m->mean[c]) / m->scale[c];
        }
        for (uint32_t k = 0; k < K; k++) {
            float acc = 0;
            for (uint32_t c = 0; c < C; c++)
                acc += m->basis[c * K + k] * z[c];
            t[k] = acc;
        }
        for (uint32_t c = 0; c < C; c++) {
            float r = z[c];
            for (uint32_t k = 0; k < K; k++)
                r -= m->basis[c * K + k] * t[k];
            float d = r - mean[c];
            mean[c] += d / (float)(s + 1);
            m2[c] += d * (r - mean[c]);
        }
    }
    float spe = 0;
    for (uint32_t c = 0; c < C; c++) {
        float var = m2[c] / (float)n;
        out[c] = mean[c];
        out[C + c] = logf(sqrtf(var > 0 ? var : 0) + RELATIONS_SD_FLOOR);
        spe += mean[c] * mean[c];
    }
    out[2 * C] = logf(spe + RELATIONS_SPE_FLOOR);
    return RELATIONS_OK;
}

int relations_features(const struct relations_map *m, const float *x, uint32_t n, uint32_t stride,
                       float *scratch, size_t scratch_floats, float *out)
{
    return features(m, x, n, stride, scratch, scratch_floats, out, 0);
}

int relations_features_hold(const struct relations_map *m, const float *x, uint32_t n,
                            uint32_t stride, float *scratch, size_t scratch_floats, float *out)
{
    return features(m, x, n, stride, scratch, scratch_floats, out, 1);
}
