/* detect_multi.c - multivariate detector: Mahalanobis distance against a
 * forgetting-factor covariance, through its Cholesky factor (detect_multi.h).
 *
 * Matrices are packed lower triangles, row i at i (i + 1) / 2.  Everything
 * is in the caller's memory; only <math.h> and <string.h>. */
#include "agent/core/detect_multi.h"

#include <math.h>
#include <string.h>

#define RIDGE 0.01f             /* diagonal loading, relative: sensors rarely agree
                                 * to better than 1 %, and float covariances need it */
#define CORR_MIN 0.5f           /* |correlation| that makes channels "related" */
#define CAL_CLIP 3.0f           /* calibration update clip, in robust scales */
#define CAL_FLOOR 0.05f         /* smallest robust scale of log T-squared */
#define MAD_TO_SIGMA 1.2533141f

struct detect_multi {
    unsigned n;
    float alpha;
    uint32_t frames, since, warm;
    int factored, correlated;
    float t2;
    float cal_mean, cal_dev;    /* robust baseline of log T-squared */
    uint32_t cal_n;
    float *mean, *cov, *chol, *inv_diag, *dx, *y;
    int resid_valid;            /* resid holds this frame's (its distance scored above 0) */
    float *prec_isd;            /* 1 / sqrt(P_ii), P the inverse of the factored covariance */
    float *resid;               /* this frame's leave-one-out residuals, standardised */
};

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

static size_t tri(unsigned n)
{
    return (size_t)n * (n + 1u) / 2u;
}

uint32_t detect_multi_warm_frames(unsigned n, float alpha)
{
    uint32_t w = 10u * (n + 1u);
    float memory = alpha > 0.0f ? 0.25f / alpha : 0.0f;

    if (w < 64u)
        w = 64u;
    if (memory > (float)w && memory < 1e9f)
        w = (uint32_t)memory;
    return w;
}

size_t detect_multi_size(unsigned n)
{
    if (n < 1 || n > 4096)
        return 0;
    return align8(sizeof(struct detect_multi)) +
           sizeof(float) * ((size_t)n * n + 7u * (size_t)n);
}

struct detect_multi *detect_multi_init(void *mem, size_t len, unsigned n, float alpha)
{
    struct detect_multi *m = mem;
    float *p;

    if (!mem || ((uintptr_t)mem & 7u) || detect_multi_size(n) == 0 ||
        len < detect_multi_size(n) || !(alpha > 0.0f && alpha < 1.0f))
        return NULL;
    memset(mem, 0, detect_multi_size(n));
    m->n = n;
    m->alpha = alpha;
    m->warm = detect_multi_warm_frames(n, alpha);
    p = (float *)((char *)mem + align8(sizeof(*m)));
    m->mean = p;
    p += n;
    m->cov = p;
    p += tri(n);
    m->chol = p;
    p += tri(n);
    m->inv_diag = p;
    p += n;
    m->dx = p;
    p += n;
    m->y = p;
    p += n;
    m->prec_isd = p;
    p += n;
    m->resid = p;
    return m;
}

/* Diagonal of the precision matrix P = (L L')^-1 = L^-T L^-1: P_ii is the
 * squared norm of column i of L^-1, found by solving L v = e_i (v_k = 0 for
 * k < i).  N^3 / 6 multiply-adds, once per factorisation; dx is free by then
 * (the frame's update is done) and holds v. */
static void precision_diag(struct detect_multi *m)
{
    unsigned n = m->n, i, j, k;
    float *v = m->dx;

    for (i = 0; i < n; i++) {
        float p = 0.0f;

        for (k = i; k < n; k++) {
            const float *lk = &m->chol[tri(k)];
            float a = k == i ? 1.0f : 0.0f;

            for (j = i; j < k; j++)
                a -= lk[j] * v[j];
            v[k] = a * m->inv_diag[k];
            p += v[k] * v[k];
        }
        m->prec_isd[i] = 1.0f / sqrtf(p > 1e-30f ? p : 1e-30f);
    }
}

/* Cholesky factor of cov + ridge; a pivot that vanishes (a channel that is an
 * exact function of earlier ones) is floored, so the factor always exists. */
static void factorise(struct detect_multi *m, const float *floor)
{
    unsigned n = m->n, i, j, k;
    float *L = m->chol;
    int corr = 0;

    for (j = 0; j < n; j++) {
        const float *lj = &L[tri(j)];
        float fl = floor ? floor[j] : 0.0f;
        float s = m->cov[tri(j) + j] * (1.0f + RIDGE) + fl * fl + 1e-30f;
        float piv;

        for (k = 0; k < j; k++)
            s -= lj[k] * lj[k];
        piv = sqrtf(s > 1e-30f ? s : 1e-30f);
        L[tri(j) + j] = piv;
        m->inv_diag[j] = 1.0f / piv;
        for (i = j + 1; i < n; i++) {
            float *li = &L[tri(i)];
            float a = m->cov[tri(i) + j];

            for (k = 0; k < j; k++)
                a -= li[k] * lj[k];
            li[j] = a * m->inv_diag[j];
            if (!corr) {
                float vi = m->cov[tri(i) + i], vj = m->cov[tri(j) + j];
                float c = m->cov[tri(i) + j];

                corr = c * c >= CORR_MIN * CORR_MIN * vi * vj && vi > 0.0f && vj > 0.0f;
            }
        }
    }
    precision_diag(m);
    m->factored = 1;
    m->correlated = corr;
    m->since = 0;
}

/* y = L^-1 dx; returns |y|^2. */
static float solve(struct detect_multi *m)
{
    unsigned n = m->n, i, k;
    float t2 = 0.0f;

    for (i = 0; i < n; i++) {
        const float *li = &m->chol[tri(i)];
        float a = m->dx[i];

        for (k = 0; k < i; k++)
            a -= li[k] * m->y[k];
        a *= m->inv_diag[i];
        m->y[i] = a;
        t2 += a * a;
    }
    return t2;
}

/* The leave-one-out residuals: each channel against what all the others
 * predict of it, in its conditional standard deviations,
 * r_i = (P dx)_i / sqrt(P_ii), with P dx = L^-T y (a back substitution,
 * N^2 / 2 multiply-adds).  Returns the index of the largest |r_i|: the
 * channel that broke a relation.  y_i itself is channel i regressed on the
 * channels before it only, so a break on channel 0 showed in the residual
 * of channel 1 and named it. */
static unsigned leave_one_out(struct detect_multi *m)
{
    unsigned n = m->n, i, k, best = 0;
    float *w = m->resid, top = -1.0f;

    for (i = n; i-- > 0;) {
        float a = m->y[i];

        for (k = i + 1; k < n; k++)
            a -= m->chol[tri(k) + i] * w[k];
        w[i] = a * m->inv_diag[i];
    }
    for (i = 0; i < n; i++) {
        w[i] *= m->prec_isd[i];
        if (fabsf(w[i]) > top) {
            top = fabsf(w[i]);
            best = i;
        }
    }
    return best;
}

/* EWMA mean and covariance, C = (1 - a) (C + a d d'), d against the old
 * mean; d is shrunk by `shrink` so one wild frame moves them little. */
static void update(struct detect_multi *m, float shrink)
{
    unsigned n = m->n, i, j;
    float a = 1.0f / (float)m->frames;

    if (a < m->alpha)
        a = m->alpha;
    for (i = 0; i < n; i++) {
        float di = m->dx[i] * shrink;
        float *ci = &m->cov[tri(i)];

        for (j = 0; j <= i; j++)
            ci[j] = (1.0f - a) * (ci[j] + a * di * m->dx[j] * shrink);
        m->mean[i] += a * di;
    }
}

/* ln x for finite x > 0 to about 1e-5, without libm's logf on every frame:
 * x = m 2^e with m in [1, 2), ln m = 2 atanh((m - 1) / (m + 1)), whose odd
 * series needs four terms for |s| <= 1/3. */
static float fast_ln(float x)
{
    union { float f; uint32_t i; } u;
    float e, s, s2;

    if (!(x >= 1.1754944e-38f && x <= 3.4e38f))
        return logf(x);         /* 0, denormal, inf, NaN: the library's answer */
    u.f = x;
    e = (float)((int32_t)(u.i >> 23) - 127);
    u.i = (u.i & 0x7fffffu) | 0x3f800000u;
    s = (u.f - 1.0f) / (u.f + 1.0f);
    s2 = s * s;
    return e * 0.69314718f + 2.0f * s * (1.0f + s2 * (0.33333333f + s2 * (0.2f + s2 * 0.14285714f)));
}

/* z of log T-squared above its own robust baseline (upper tail only);
 * *shrink is what the frame's deviation is multiplied by before it updates
 * the covariance: beyond CAL_CLIP scales the frame counts as if it were at
 * CAL_CLIP (judged by the data's own distance distribution, not a
 * chi-square table, which autocorrelated data would exceed all the time). */
static float calibrate(struct detect_multi *m, float t2, float *shrink)
{
    float g = fast_ln(t2 + 1e-6f), scale, dv, z, a;

    if (m->cal_n == 0) {
        m->cal_mean = g;
        m->cal_n = 1;
        return 0.0f;
    }
    scale = m->cal_dev * MAD_TO_SIGMA;
    if (scale < CAL_FLOOR)
        scale = CAL_FLOOR;
    dv = g - m->cal_mean;
    z = dv > 0.0f ? dv / scale : 0.0f;
    if (dv > CAL_CLIP * scale) {
        if (m->cal_n >= 16)     /* a young baseline's scale is not yet a yardstick */
            *shrink = expf(-0.5f * (dv - CAL_CLIP * scale));
        dv = CAL_CLIP * scale;
    }
    else if (dv < -CAL_CLIP * scale)
        dv = -CAL_CLIP * scale;
    a = 1.0f / (float)(m->cal_n + 1);
    if (a < m->alpha)
        a = m->alpha;
    else
        m->cal_n++;
    m->cal_mean += a * dv;
    m->cal_dev += a * (fabsf(dv) - m->cal_dev);
    return z;
}

float detect_multi_step(struct detect_multi *m, const float *x, const float *floor,
                        unsigned *channel)
{
    unsigned n = m->n, i, arg = 0;
    float t2 = 0.0f, shrink = 1.0f, z = 0.0f;

    m->frames++;
    for (i = 0; i < n; i++)
        m->dx[i] = isfinite(x[i]) ? x[i] - m->mean[i] : 0.0f;
    if (m->frames == 1) {
        for (i = 0; i < n; i++)
            m->mean[i] += m->dx[i];
        *channel = 0;
        return 0.0f;
    }
    if (m->factored) {
        /* Judged against the model before this frame: an event must not
         * dilute its own evidence. */
        t2 = solve(m);
        if (m->frames > m->warm / 2)
            z = calibrate(m, t2, &shrink);
        /* Only a frame whose distance is above its usual level can score,
         * and so name a channel: the others skip the back substitution. */
        m->resid_valid = z > 0.0f;
        if (m->resid_valid)
            arg = leave_one_out(m);
    }
    m->t2 = t2;
    update(m, shrink);
    if (!m->factored || ++m->since >= n)
        factorise(m, floor);
    *channel = arg;
    if (m->frames <= m->warm || !m->correlated || !(z > 0.0f))
        return 0.0f;
    return z;
}

int detect_multi_correlated(const struct detect_multi *m)
{
    return m->correlated;
}

float detect_multi_t2(const struct detect_multi *m)
{
    return m->t2;
}

float detect_multi_resid(const struct detect_multi *m, unsigned c)
{
    if (!m->resid_valid || c >= m->n)
        return NAN;
    return m->resid[c];
}
