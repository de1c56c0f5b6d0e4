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
    for (uint32_t q = 0; q < k; q++)
        out->eig[q] = w[order[q]];
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
 * residual of its standardised means outside the principal subspace) and,
 * when t2 is not NULL, its Hotelling T-squared inside it: the scores on
 * the kept components, each squared over its eigenvalue eig[q] (a
 * component of no variance counts only when the row leaves it). */
static double row_stats(const struct relations_map *m, const double *eig, const float *row,
                        double *t2)
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
    if (t2) {
        *t2 = 0;
        for (uint32_t q = 0; q < m->rank; q++) {
            double tt = proj[q] * proj[q];

            *t2 += eig[q] > 1e-12 ? tt / eig[q] : (tt > 1e-12 ? INFINITY : 0.0);
        }
    }
    return spe;
}

static double row_spe(const struct relations_map *m, const float *row)
{
    return row_stats(m, NULL, row, NULL);
}

static int row_finite(const float *row, uint32_t n_ch)
{
    for (uint32_t a = 0; a < n_ch; a++)
        if (!isfinite(row[a]))
            return 0;
    return 1;
}

/* The regularized lower incomplete gamma function P(a, x), a > 0: its
 * series below a + 1, Lentz's continued fraction for 1 - P above (where
 * each converges fast).  lgamma_r, not lgamma: training runs on worker
 * threads and lgamma writes a global. */
static double gamma_p(double a, double x)
{
    int sign;
    double lg, h;

    if (x <= 0)
        return 0.0;
    lg = a * log(x) - x - lgamma_r(a, &sign);
    if (x < a + 1.0) {
        double ap = a, del = 1.0 / a, sum = del;

        for (int k = 0; k < 10000 && fabs(del) > fabs(sum) * 1e-17; k++) {
            ap += 1.0;
            del *= x / ap;
            sum += del;
        }
        return sum * exp(lg);
    }
    double b = x + 1.0 - a, c = 1.0 / 1e-300, d = 1.0 / b;
    h = d;
    for (int k = 1; k < 10000; k++) {
        double an = -k * (k - a), del;

        b += 2.0;
        d = an * d + b;
        d = fabs(d) < 1e-300 ? 1e-300 : d;
        c = b + an / c;
        c = fabs(c) < 1e-300 ? 1e-300 : c;
        d = 1.0 / d;
        del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-16)
            break;
    }
    return 1.0 - exp(lg) * h;
}

double ds_chi2_quantile(double dof, double conf)
{
    double lo = 0.0, hi;

    if (!(dof > 0 && dof < 1e9 && conf > 0 && conf < 1))
        return NAN;
    /* bracket, then bisect: P is monotone in x, so this cannot go astray */
    hi = dof + 10.0 * sqrt(2.0 * dof) + 10.0;
    while (gamma_p(dof / 2, hi / 2) < conf)
        hi *= 2.0;
    for (int k = 0; k < 200 && hi - lo > 1e-13 * hi; k++) {
        double mid = 0.5 * (lo + hi);

        if (gamma_p(dof / 2, mid / 2) < conf)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

double ds_relations_spe_limit(const double *spe, uint32_t n, double conf)
{
    double m = 0.0, v = 0.0;

    if (!spe || n < 2 || !(conf > 0 && conf < 1))
        return NAN;
    for (uint32_t i = 0; i < n; i++) {
        if (!isfinite(spe[i]) || spe[i] < 0)
            return NAN;
        m += spe[i];
    }
    m /= n;
    for (uint32_t i = 0; i < n; i++)
        v += (spe[i] - m) * (spe[i] - m);
    v /= n - 1;
    if (!(m > 0) || !(v > 0))
        return m;
    return v / (2.0 * m) * ds_chi2_quantile(2.0 * m * m / v, conf);
}

/* The normal rows' (use[i] != 0) SPE for Box's limit: each in the map
 * fitted on the normal rows outside its fold (the k-th normal row in fold
 * k mod K, K = min(RELATIONS_LIMIT_FOLDS, n)), so it is measured as a
 * candidate's is, in a map it did not shape; in map m (in-sample) when
 * there are too few rows for a fold's fit (fewer than 4).  Into spe[n]. */
static int normal_rows_spe(const float *means, uint32_t n_rows, uint32_t n_ch, const uint8_t *use,
                           uint32_t n, double var_keep, const struct relations_map *m, double *spe)
{
    uint32_t K = n < RELATIONS_LIMIT_FOLDS ? n : RELATIONS_LIMIT_FOLDS, k;
    uint8_t *train;
    struct relations_fit *fold;
    int rc = MODEL_OK;

    if (n < 4) {
        k = 0;
        for (uint32_t i = 0; i < n_rows; i++)
            if (use[i])
                spe[k++] = row_spe(m, means + (size_t)i * n_ch);
        return MODEL_OK;
    }
    train = calloc(n_rows ? n_rows : 1, 1);
    fold = malloc(sizeof *fold);
    if (!train || !fold) {
        free(train);
        free(fold);
        return MODEL_ENOMEM;
    }
    for (uint32_t f = 0; f < K && rc == MODEL_OK; f++) {
        k = 0;
        for (uint32_t i = 0; i < n_rows; i++)
            train[i] = (uint8_t)(use[i] && k++ % K != f);
        if ((rc = ds_relations_fit(means, n_rows, n_ch, train, var_keep, fold)) != MODEL_OK)
            break;
        k = 0;
        for (uint32_t i = 0; i < n_rows; i++)
            if (use[i] && k++ % K == f)
                spe[k - 1] = row_spe(&fold->map, means + (size_t)i * n_ch);
    }
    free(train);
    free(fold);
    return rc;
}

int ds_relations_fit_trimmed(const float *means, uint32_t n_rows, uint32_t n_ch,
                             const uint8_t *normal, const uint8_t *candidate, const uint8_t *fault,
                             double var_keep, struct relations_fit *out, uint32_t *fit_rows,
                             uint8_t *fit_mask)
{
    return ds_relations_fit_guarded(means, n_rows, n_ch, normal, candidate, fault, var_keep,
                                    RELATIONS_LIMIT_DEFAULT, RELATIONS_LIMIT_CONF, out, fit_rows,
                                    fit_mask, NULL);
}

int ds_relations_fit_trimmed_by(const float *means, uint32_t n_rows, uint32_t n_ch,
                                const uint8_t *normal, const uint8_t *candidate, double var_keep,
                                enum relations_limit how, double conf, struct relations_fit *out,
                                uint32_t *fit_rows, uint8_t *fit_mask, double *limit)
{
    return ds_relations_fit_guarded(means, n_rows, n_ch, normal, candidate, NULL, var_keep, how, conf,
                                    out, fit_rows, fit_mask, limit);
}

/* The squared distance of rows a and b in the units of map m (each
 * channel over its scale), or a value above stop once it passes stop
 * (the caller only asks whether it is within). */
static double scaled_dist2(const struct relations_map *m, const float *a, const float *b, double stop)
{
    double d = 0;

    for (uint32_t c = 0; c < m->n_ch && d <= stop; c++) {
        double e = (a[c] - b[c]) / m->scale[c];

        d += e * e;
    }
    return d;
}

/* Whether row's nearest among the reference rows ref[0..n_ref) (indices
 * into means) is one of the first n_normal, in the units of map m.  Ties
 * go to normal.  The fault rows are few (rare events), the normal ones may
 * be thousands: the nearest fault first, then the normal rows until one is
 * as near, each distance abandoned once it is farther. */
static int nearest_is_normal(const struct relations_map *m, const float *means, const float *row,
                             const uint32_t *ref, uint32_t n_normal, uint32_t n_ref)
{
    double best_fault = INFINITY;

    for (uint32_t k = n_normal; k < n_ref; k++) {
        double d = scaled_dist2(m, row, means + (size_t)ref[k] * m->n_ch, best_fault);

        best_fault = d < best_fault ? d : best_fault;
    }
    for (uint32_t k = 0; k < n_normal; k++)
        if (scaled_dist2(m, row, means + (size_t)ref[k] * m->n_ch, best_fault) <= best_fault)
            return 1;
    return 0;
}

int ds_relations_fit_guarded(const float *means, uint32_t n_rows, uint32_t n_ch,
                             const uint8_t *normal, const uint8_t *candidate, const uint8_t *fault,
                             double var_keep, unsigned how, double conf,
                             struct relations_fit *out, uint32_t *fit_rows, uint8_t *fit_mask,
                             double *limit)
{
    struct relations_fit *first;
    uint8_t *use;
    uint32_t *ref = NULL;
    double lim = -1.0, t2_lim = INFINITY, *spe = NULL;
    uint32_t n_use = 0, n_normal = 0, n_ref = 0;
    int t2 = (how & RELATIONS_LIMIT_T2) != 0;
    int rc;

    how &= ~(unsigned)RELATIONS_LIMIT_T2;
    if (!means || !out || !normal || n_ch < 2 || n_ch > RELATIONS_MAX_CH ||
        (how != RELATIONS_LIMIT_BOX && how != RELATIONS_LIMIT_MAX) || !(conf > 0 && conf < 1))
        return MODEL_EINVAL;
    first = malloc(sizeof *first);
    use = calloc(n_rows ? n_rows : 1, 1);
    if (!first || !use) {
        free(first);
        free(use);
        return MODEL_ENOMEM;
    }
    for (uint32_t i = 0; i < n_rows; i++) {
        use[i] = (uint8_t)(normal[i] && row_finite(means + (size_t)i * n_ch, n_ch));
        n_normal += use[i];
    }
    if ((rc = ds_relations_fit(means, n_rows, n_ch, use, var_keep, first)) != MODEL_OK)
        goto out;
    if (how == RELATIONS_LIMIT_MAX) {
        for (uint32_t i = 0; i < n_rows; i++)
            if (use[i]) {
                double e = row_spe(&first->map, means + (size_t)i * n_ch);
                lim = e > lim ? e : lim;
            }
    } else {
        if (!(spe = calloc(n_normal, sizeof *spe))) {
            rc = MODEL_ENOMEM;
            goto out;
        }
        if ((rc = normal_rows_spe(means, n_rows, n_ch, use, n_normal, var_keep, &first->map, spe)) != MODEL_OK)
            goto out;
        lim = ds_relations_spe_limit(spe, n_normal, conf);
        if (!isfinite(lim)) {
            rc = MODEL_EINVAL;
            goto out;
        }
    }
    if (t2) {
        t2_lim = 0.0;
        for (uint32_t i = 0; i < n_rows; i++)
            if (use[i]) {
                double e;

                row_stats(&first->map, first->eig, means + (size_t)i * n_ch, &e);
                t2_lim = e > t2_lim ? e : t2_lim;
            }
    }
    /* The guard's references: the rows assumed normal, then the rows
     * labeled a fault (finite, not also assumed normal).  Taken before any
     * candidate joins, so admission does not depend on row order. */
    if (fault) {
        uint32_t n_fault = 0;

        for (uint32_t i = 0; i < n_rows; i++)
            n_fault += (uint32_t)(fault[i] && !use[i] && row_finite(means + (size_t)i * n_ch, n_ch));
        if (n_fault) {
            if (!(ref = malloc(((size_t)n_normal + n_fault) * sizeof *ref))) {
                rc = MODEL_ENOMEM;
                goto out;
            }
            for (uint32_t i = 0; i < n_rows; i++)
                if (use[i])
                    ref[n_ref++] = i;
            for (uint32_t i = 0; i < n_rows; i++)
                if (fault[i] && !use[i] && row_finite(means + (size_t)i * n_ch, n_ch))
                    ref[n_ref++] = i;
        }
    }
    for (uint32_t i = 0; i < n_rows; i++) {
        const float *row = means + (size_t)i * n_ch;
        double t = 0.0;     /* its T-squared, when asked; else under t2_lim's infinity */

        if (!use[i] && (!candidate || candidate[i]) && (!fault || !fault[i]) &&
            row_finite(row, n_ch) && row_stats(&first->map, first->eig, row, t2 ? &t : NULL) <= lim &&
            t <= t2_lim &&
            (!ref || nearest_is_normal(&first->map, means, row, ref, n_normal, n_ref)))
            use[i] = 1;
        n_use += use[i];
    }
    rc = ds_relations_fit(means, n_rows, n_ch, use, var_keep, out);
    if (rc == MODEL_OK && fit_rows)
        *fit_rows = n_use;
    if (rc == MODEL_OK && fit_mask)
        memcpy(fit_mask, use, n_rows);
    if (rc == MODEL_OK && limit)
        *limit = lim;
out:
    free(ref);
    free(spe);
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
