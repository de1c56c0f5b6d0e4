/* ds_relations.c - the relation map of normal operation, fitted on
 * window means without labels (see ds_relations.h). */
#include "server/datasets/ds_relations.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/model.h"

/* Cyclic Jacobi: eigenvalues of the symmetric n x n matrix a (destroyed)
 * into w, eigenvectors into the columns of v.  n is at most 64: the cost
 * does not matter, and it needs no library. */
static void jacobi(double *a, uint32_t n, double *w, double *v)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            v[i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0;
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = i + 1; j < n; j++)
                off += a[i * n + j] * a[i * n + j];
        if (off < 1e-22)
            break;
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = i + 1; j < n; j++) {
                if (fabs(a[i * n + j]) < 1e-300)
                    continue;
                double th = (a[j * n + j] - a[i * n + i]) / (2.0 * a[i * n + j]);
                double t = (th >= 0 ? 1.0 : -1.0) / (fabs(th) + sqrt(th * th + 1.0));
                double cs = 1.0 / sqrt(t * t + 1.0), sn = t * cs;
                for (uint32_t k = 0; k < n; k++) {
                    double aki = a[k * n + i], akj = a[k * n + j];
                    a[k * n + i] = cs * aki - sn * akj;
                    a[k * n + j] = sn * aki + cs * akj;
                }
                for (uint32_t k = 0; k < n; k++) {
                    double aik = a[i * n + k], ajk = a[j * n + k];
                    a[i * n + k] = cs * aik - sn * ajk;
                    a[j * n + k] = sn * aik + cs * ajk;
                }
                for (uint32_t k = 0; k < n; k++) {
                    double vki = v[k * n + i], vkj = v[k * n + j];
                    v[k * n + i] = cs * vki - sn * vkj;
                    v[k * n + j] = sn * vki + cs * vkj;
                }
            }
    }
    for (uint32_t i = 0; i < n; i++)
        w[i] = a[i * n + i];
}

int ds_relations_fit(const float *means, uint32_t n_rows, uint32_t n_ch, const uint8_t *use,
                         double var_keep, struct relations_fit *out)
{
    if (!means || !out || n_ch < 2 || n_ch > RELATIONS_MAX_CH || !(var_keep > 0 && var_keep < 1))
        return MODEL_EINVAL;
    uint32_t C = n_ch, nfit = 0;
    double *mu = calloc(C, sizeof *mu), *sd = calloc(C, sizeof *sd), *w = calloc(C, sizeof *w);
    double *R = calloc((size_t)C * C, sizeof *R), *V = calloc((size_t)C * C, sizeof *V);
    int rc = MODEL_ENOMEM;
    if (!mu || !sd || !w || !R || !V)
        goto out;
    rc = MODEL_EINVAL;
    for (uint32_t i = 0; i < n_rows; i++)
        if (!use || use[i]) {
            for (uint32_t a = 0; a < C; a++) {
                if (!isfinite(means[(size_t)i * C + a]))
                    goto out;
                mu[a] += means[(size_t)i * C + a];
            }
            nfit++;
        }
    if (nfit < 3)
        goto out;
    for (uint32_t a = 0; a < C; a++)
        mu[a] /= nfit;
    for (uint32_t i = 0; i < n_rows; i++)
        if (!use || use[i])
            for (uint32_t a = 0; a < C; a++)
                for (uint32_t b = a; b < C; b++)
                    R[a * C + b] += (means[(size_t)i * C + a] - mu[a]) * (means[(size_t)i * C + b] - mu[b]);
    /* a channel that never moves gets a scale from its level (and a tiny
     * floor), so it stays finite and reads as residual when it does move */
    for (uint32_t a = 0; a < C; a++)
        sd[a] = sqrt(R[a * C + a] / (nfit - 1)) + 1e-9 + 1e-6 * fabs(mu[a]);
    for (uint32_t a = 0; a < C; a++)
        for (uint32_t b = a; b < C; b++)
            R[b * C + a] = R[a * C + b] = R[a * C + b] / (nfit - 1) / (sd[a] * sd[b]);
    jacobi(R, C, w, V);
    uint32_t order[RELATIONS_MAX_CH];
    double tot = 0, acc = 0;
    for (uint32_t a = 0; a < C; a++) {
        order[a] = a;
        tot += w[a] > 0 ? w[a] : 0;
    }
    for (uint32_t a = 0; a < C; a++)     /* by eigenvalue, largest first */
        for (uint32_t b = a + 1; b < C; b++)
            if (w[order[b]] > w[order[a]]) {
                uint32_t t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    uint32_t k = 0;
    while (k < C - 1 && acc < var_keep * tot)
        acc += w[order[k++]];
    memset(out, 0, sizeof *out);
    for (uint32_t a = 0; a < C; a++) {
        out->mean[a] = (float)mu[a];
        out->scale[a] = (float)sd[a];
        for (uint32_t q = 0; q < k; q++)
            out->basis[a * k + q] = (float)V[a * C + order[q]];
    }
    out->explained = tot > 0 ? acc / tot : 0;
    out->map = (struct relations_map){ C, k, out->mean, out->scale, out->basis };
    rc = 0;
out:
    free(mu);
    free(sd);
    free(w);
    free(R);
    free(V);
    return rc;
}

/* The squared prediction error of one row of means in map m (the
 * residual of its standardised means outside the principal subspace). */
static double row_spe(const struct relations_map *m, const float *row)
{
    double z[RELATIONS_MAX_CH], proj[RELATIONS_MAX_CH] = { 0 }, spe = 0;

    for (uint32_t a = 0; a < m->n_ch; a++)
        z[a] = (row[a] - m->mean[a]) / m->scale[a];
    for (uint32_t a = 0; a < m->n_ch; a++)
        for (uint32_t q = 0; q < m->rank; q++)
            proj[q] += m->basis[a * m->rank + q] * z[a];
    for (uint32_t a = 0; a < m->n_ch; a++) {
        double r = z[a];

        for (uint32_t q = 0; q < m->rank; q++)
            r -= m->basis[a * m->rank + q] * proj[q];
        spe += r * r;
    }
    return spe;
}

static int row_finite(const float *row, uint32_t n_ch)
{
    for (uint32_t a = 0; a < n_ch; a++)
        if (!isfinite(row[a]))
            return 0;
    return 1;
}

int ds_relations_fit_trimmed(const float *means, uint32_t n_rows, uint32_t n_ch,
                             const uint8_t *normal, const uint8_t *candidate, double var_keep,
                             struct relations_fit *out, uint32_t *fit_rows, uint8_t *fit_mask)
{
    struct relations_fit *first;
    uint8_t *use;
    double lim = -1.0;
    uint32_t n_use = 0;
    int rc;

    if (!means || !out || !normal || n_ch < 2 || n_ch > RELATIONS_MAX_CH)
        return MODEL_EINVAL;
    first = malloc(sizeof *first);
    use = calloc(n_rows ? n_rows : 1, 1);
    if (!first || !use) {
        free(first);
        free(use);
        return MODEL_ENOMEM;
    }
    for (uint32_t i = 0; i < n_rows; i++)
        use[i] = (uint8_t)(normal[i] && row_finite(means + (size_t)i * n_ch, n_ch));
    if ((rc = ds_relations_fit(means, n_rows, n_ch, use, var_keep, first)) != MODEL_OK)
        goto out;
    for (uint32_t i = 0; i < n_rows; i++)
        if (use[i]) {
            double e = row_spe(&first->map, means + (size_t)i * n_ch);
            lim = e > lim ? e : lim;
        }
    for (uint32_t i = 0; i < n_rows; i++) {
        const float *row = means + (size_t)i * n_ch;

        if (!use[i] && (!candidate || candidate[i]) && row_finite(row, n_ch) &&
            row_spe(&first->map, row) <= lim)
            use[i] = 1;
        n_use += use[i];
    }
    rc = ds_relations_fit(means, n_rows, n_ch, use, var_keep, out);
    if (rc == MODEL_OK && fit_rows)
        *fit_rows = n_use;
    if (rc == MODEL_OK && fit_mask)
        memcpy(fit_mask, use, n_rows);
out:
    free(first);
    free(use);
    return rc;
}

int ds_relations_window_means(const float *x, uint32_t n_ch, uint32_t n_samples, float *out)
{
    int all = 1;

    for (uint32_t c = 0; c < n_ch; c++) {
        const float *ch = x + (size_t)c * n_samples;
        double sum = 0.0;
        uint32_t k = 0;

        for (uint32_t i = 0; i < n_samples; i++)
            if (isfinite(ch[i])) {
                sum += ch[i];
                k++;
            }
        out[c] = k ? (float)(sum / k) : NAN;
        all &= k > 0;
    }
    return all;
}

uint32_t ds_relations_bytes(const struct relations_map *m)
{
    return (2u + m->rank) * m->n_ch * (uint32_t)sizeof(float);
}
