/* models_fewshot.c - the few-shot learner and its baselines (see
 * models_fewshot.h for what it uses and why).  Plain C on a feature matrix:
 * no database, so training, evaluation and the benchmark share it. */
#include "server/models/models_fewshot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/model.h"

#define FEWSHOT_CLIP 8.0f           /* |z| bound: one wild feature cannot decide alone */
#define MAX_DOMAINS 64u

void models_fewshot_defaults(struct fewshot_params *p)
{
    p->protos = 4;
    p->rounds = 3;
    p->per_round = 4;
    p->margin = 0.5f;
    p->pseudo_weight = 0.5f;
    p->shrink = 0.5f;
    p->max_features = 0;
    p->reference_weight = 0.5f;
    p->propagate = 0;
}

static float row_weight(const struct fewshot_data *d, uint32_t i)
{
    return d->weight ? d->weight[i] : 1.0f;
}

static uint32_t row_domain(const struct fewshot_data *d, uint32_t i)
{
    return d->domain ? d->domain[i] : 0;
}

static int data_check(const struct fewshot_data *d)
{
    if (!d || !d->x || !d->label || d->n_rows == 0 || d->n_feat == 0 ||
        d->n_feat > MODEL_MAX_FEATURES || d->n_classes < 2 || d->n_classes > FEWSHOT_MAX_CLASSES)
        return MODEL_EINVAL;
    for (uint32_t i = 0; i < d->n_rows; i++) {
        int32_t l = d->label[i];
        float w = row_weight(d, i);
        if (l < FEWSHOT_UNLABELED || l >= (int32_t)d->n_classes || !(w > 0) || w > 1 ||
            row_domain(d, i) >= MAX_DOMAINS)
            return MODEL_EINVAL;
        for (uint32_t j = 0; j < d->n_feat; j++)
            if (!isfinite(d->x[(size_t)i * d->n_feat + j]))
                return MODEL_EINVAL;
    }
    for (size_t k = 0; d->scale_x && k < (size_t)d->n_scale_x * d->n_feat; k++)
        if (!isfinite(d->scale_x[k]))
            return MODEL_EINVAL;
    return 0;
}

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return (x > y) - (x < y);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median and MAD (as a deviation: x 1.4826) of v[n], which is reordered;
 * the standard deviation stands in when more than half the values agree. */
static void robust_stats(float *v, uint32_t n, float *center, float *scale)
{
    qsort(v, n, sizeof *v, cmp_float);
    float med = v[n / 2], mean = 0, var = 0;
    for (uint32_t i = 0; i < n; i++)
        mean += v[i] / (float)n;
    for (uint32_t i = 0; i < n; i++) {
        var += (v[i] - mean) * (v[i] - mean) / (float)n;
        v[i] = fabsf(v[i] - med);
    }
    qsort(v, n, sizeof *v, cmp_float);
    float mad = 1.4826f * v[n / 2], sd = sqrtf(var);
    *center = med;
    *scale = mad > 1e-6f * (fabsf(med) + 1e-12f) ? 1.0f / mad : sd > 0 ? 1.0f / sd : 0.0f;
}

static float median_of(float *v, uint32_t n)
{
    qsort(v, n, sizeof *v, cmp_float);
    return v[n / 2];
}

static int is_reference(const struct fewshot_data *d, uint32_t i)
{
    return !d->reference || d->reference[i];
}

static int is_scale_row(const struct fewshot_data *d, uint32_t i)
{
    return d->scale_rows ? d->scale_rows[i] != 0 : is_reference(d, i);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Where rows stand against their references: per row, the center it is
 * measured from (its device's or its domain's) and the scale of its
 * domain, for every feature. */
struct reference {
    uint32_t n_dev;
    uint32_t *dev_id;               /* ascending */
    uint32_t *row_dev;              /* per row: index into dev_id, or UINT32_MAX */
    float *dev_center;              /* n_dev x F; NAN where the device has no reference row */
    float *dom_center, *dom_scale;  /* MAX_DOMAINS x F */
    uint8_t dom_seen[MAX_DOMAINS];
};

static void reference_free(struct reference *r)
{
    free(r->dev_id);
    free(r->row_dev);
    free(r->dev_center);
    free(r->dom_center);
    free(r->dom_scale);
    memset(r, 0, sizeof *r);
}

static float row_center(const struct fewshot_data *d, const struct reference *r, uint32_t i,
                        uint32_t j)
{
    uint32_t F = d->n_feat, k = r->row_dev ? r->row_dev[i] : UINT32_MAX;
    if (k != UINT32_MAX && !isnan(r->dev_center[(size_t)k * F + j]))
        return r->dev_center[(size_t)k * F + j];
    return r->dom_center[(size_t)row_domain(d, i) * F + j];
}

/* Each domain's median and MAD over its rows (its reference rows when
 * marked: normal operation across its machines), and with devices each
 * device's median over its reference rows.  A device's reference moves its
 * center only: a commissioning period shows where a machine runs, not how
 * far its normal operation wanders over months (the spread of its few
 * windows made every later normal window look far away), so the scale
 * stays the domain's. */
static int reference_build(const struct fewshot_data *d, struct reference *r)
{
    uint32_t F = d->n_feat, n = d->n_rows;
    float *v = malloc(((size_t)n + (d->scale_x ? d->n_scale_x : 0)) * sizeof *v);
    memset(r, 0, sizeof *r);
    r->dom_center = calloc((size_t)MAX_DOMAINS * F, sizeof *r->dom_center);
    r->dom_scale = calloc((size_t)MAX_DOMAINS * F, sizeof *r->dom_scale);
    if (!v || !r->dom_center || !r->dom_scale)
        goto nomem;
    for (uint32_t i = 0; i < n; i++)
        r->dom_seen[row_domain(d, i)] = 1;
    if (d->device) {
        uint32_t *ids = malloc((size_t)n * sizeof *ids), nd = 0;
        if (!ids)
            goto nomem;
        memcpy(ids, d->device, (size_t)n * sizeof *ids);
        qsort(ids, n, sizeof *ids, cmp_u32);
        for (uint32_t i = 0; i < n; i++)
            if (i == 0 || ids[i] != ids[nd - 1])
                ids[nd++] = ids[i];
        r->dev_id = ids;
        r->n_dev = nd;
        r->row_dev = malloc((size_t)n * sizeof *r->row_dev);
        r->dev_center = malloc((size_t)nd * F * sizeof *r->dev_center);
        if (!r->row_dev || !r->dev_center)
            goto nomem;
        for (uint32_t i = 0; i < n; i++) {
            const uint32_t *hit = bsearch(&d->device[i], ids, nd, sizeof *ids, cmp_u32);
            r->row_dev[i] = (uint32_t)(hit - ids);
        }
        /* rows grouped by device once, so each device's median is one pass */
        uint32_t *start = calloc((size_t)nd + 1, sizeof *start), *order = malloc((size_t)n * sizeof *order);
        if (!start || !order) {
            free(start);
            free(order);
            goto nomem;
        }
        for (uint32_t i = 0; i < n; i++)
            if (is_reference(d, i))
                start[r->row_dev[i] + 1]++;
        for (uint32_t k = 0; k < nd; k++)
            start[k + 1] += start[k];
        {
            uint32_t *fill = calloc(nd, sizeof *fill);
            if (!fill) {
                free(start);
                free(order);
                goto nomem;
            }
            for (uint32_t i = 0; i < n; i++)
                if (is_reference(d, i)) {
                    uint32_t k = r->row_dev[i];
                    order[start[k] + fill[k]++] = i;
                }
            free(fill);
        }
        for (uint32_t k = 0; k < nd; k++)
            for (uint32_t j = 0; j < F; j++) {
                uint32_t m = 0;
                for (uint32_t t = start[k]; t < start[k + 1]; t++)
                    v[m++] = d->x[(size_t)order[t] * F + j];
                r->dev_center[(size_t)k * F + j] = m ? median_of(v, m) : NAN;
            }
        free(start);
        free(order);
    }
    for (uint32_t dom = 0; dom < MAX_DOMAINS; dom++) {
        if (!r->dom_seen[dom])
            continue;
        int any_ref = 0;
        uint32_t n_extra = dom == 0 && d->scale_x ? d->n_scale_x : 0;
        for (uint32_t i = 0; i < n; i++)
            any_ref |= row_domain(d, i) == dom && is_scale_row(d, i);
        any_ref |= n_extra > 0;
        for (uint32_t j = 0; j < F; j++) {
            uint32_t m = 0;
            for (uint32_t i = 0; i < n; i++)
                if (row_domain(d, i) == dom && (is_scale_row(d, i) || !any_ref))
                    v[m++] = d->x[(size_t)i * F + j];
            for (uint32_t i = 0; i < n_extra; i++)
                v[m++] = d->scale_x[(size_t)i * F + j];
            float c, s;
            robust_stats(v, m, &c, &s);
            r->dom_center[(size_t)dom * F + j] = c;
            r->dom_scale[(size_t)dom * F + j] = s;
        }
    }
    free(v);
    return 0;
nomem:
    free(v);
    reference_free(r);
    return MODEL_ENOMEM;
}

static float clip(float t)
{
    return t > FEWSHOT_CLIP ? FEWSHOT_CLIP : t < -FEWSHOT_CLIP ? -FEWSHOT_CLIP : t;
}

/* z[i][s] = clip((x[i][sel_s] - center) * scale_dom * mult_s) for the
 * features sel (n_sel of them; NULL: all with mult 1). */
static void standardise(const struct fewshot_data *d, const struct reference *r, const uint16_t *sel,
                        const float *mult, uint32_t n_sel, float *z)
{
    uint32_t F = d->n_feat;
    for (uint32_t i = 0; i < d->n_rows; i++) {
        uint32_t dom = row_domain(d, i);
        for (uint32_t s = 0; s < n_sel; s++) {
            uint32_t j = sel ? sel[s] : s;
            float t = (d->x[(size_t)i * F + j] - row_center(d, r, i, j)) * r->dom_scale[(size_t)dom * F + j];
            z[(size_t)i * n_sel + s] = clip(mult ? t * mult[s] : t);
        }
    }
}

int models_fewshot_referenced(const struct fewshot_data *d, float *out)
{
    struct reference r;
    int rc = data_check(d);
    if (rc != 0)
        return rc;
    if (!out)
        return MODEL_EINVAL;
    if ((rc = reference_build(d, &r)) != 0)
        return rc;
    uint32_t F = d->n_feat;
    for (uint32_t i = 0; i < d->n_rows; i++)
        for (uint32_t j = 0; j < F; j++)
            out[(size_t)i * F + j] = (d->x[(size_t)i * F + j] - row_center(d, &r, i, j)) *
                                     r.dom_scale[(size_t)row_domain(d, i) * F + j];
    reference_free(&r);
    return 0;
}

static float dist2(const float *a, const float *b, uint32_t F)
{
    float s = 0;
    for (uint32_t j = 0; j < F; j++)
        s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

/* Per-feature weight from the labeled rows, Relief-style: how much farther
 * a row is from its nearest labeled row of another class than from its
 * nearest of its own, feature by feature.  Local, so a class seen in several
 * forms is not penalised for its spread (a between/within ratio around one
 * mean would be).  Five rows a class against hundreds of features: most
 * features' margins are chance, so a feature gets weight only when its
 * mean margin stands two standard errors above zero over the labeled rows
 * (rank[j]: that t statistic, which also orders the features for
 * selection); shrunk towards 1 into wt[F]. */
static int learn_metric(const struct fewshot_data *d, const int32_t *lab, const float *w,
                        const float *z, float shrink, float *wt, float *rank)
{
    uint32_t F = d->n_feat;
    double *r = calloc(F, sizeof *r), *r2 = calloc(F, sizeof *r2), W = 0, W2 = 0, rmean = 0;
    if (!r || !r2) {
        free(r);
        free(r2);
        return MODEL_ENOMEM;
    }
    for (uint32_t i = 0; i < d->n_rows; i++) {
        if (lab[i] < 0)
            continue;
        uint32_t hit = i, miss = i;
        float dh = INFINITY, dm = INFINITY;
        for (uint32_t t = 0; t < d->n_rows; t++) {
            if (t == i || lab[t] < 0)
                continue;
            float e = dist2(z + (size_t)i * F, z + (size_t)t * F, F);
            if (lab[t] == lab[i] && e < dh) {
                dh = e;
                hit = t;
            } else if (lab[t] != lab[i] && e < dm) {
                dm = e;
                miss = t;
            }
        }
        if (hit == i || miss == i)
            continue;
        W += w[i];
        W2 += (double)w[i] * w[i];
        for (uint32_t j = 0; j < F; j++) {
            double a = z[(size_t)i * F + j] - z[(size_t)miss * F + j];
            double h = z[(size_t)i * F + j] - z[(size_t)hit * F + j];
            r[j] += w[i] * (a * a - h * h);
            r2[j] += w[i] * (a * a - h * h) * (a * a - h * h);
        }
    }
    for (uint32_t j = 0; j < F; j++) {
        double m = W > 0 ? r[j] / W : 0, var = W > 0 ? r2[j] / W - m * m : 0;
        double n_eff = W2 > 0 ? W * W / W2 : 0, se = n_eff > 1 && var > 0 ? sqrt(var / n_eff) : 0;
        double t = se > 0 ? m / se : m > 0 ? 1e6 : 0;
        rank[j] = (float)t;
        r[j] = t > 2.0 ? m : 0;
        rmean += r[j] / F;
    }
    for (uint32_t j = 0; j < F; j++)
        wt[j] = shrink * (rmean > 0 ? (float)(r[j] / rmean) : 1.0f) + (1.0f - shrink);
    free(r);
    free(r2);
    return 0;
}

/* The n_sel best ranked features (ties to the lower index), in ascending index order. */
static int select_features(const float *wt, uint32_t F, uint32_t n_sel, uint16_t *sel)
{
    uint8_t *taken = calloc(F, 1);
    if (!taken)
        return MODEL_ENOMEM;
    for (uint32_t s = 0; s < n_sel; s++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t j = 0; j < F; j++)
            if (!taken[j] && (best == UINT32_MAX || wt[j] > wt[best]))
                best = j;
        taken[best] = 1;
        sel[s] = (uint16_t)best;
    }
    free(taken);
    qsort(sel, n_sel, sizeof *sel, cmp_u16);
    return 0;
}

struct cand {
    float ratio;
    uint32_t row;
    int32_t cls;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    return (x->ratio > y->ratio) - (x->ratio < y->ratio);
}

/* One self-training round: each unlabeled row's nearest labeled row per
 * class; rows whose best class wins by the margin are candidates, and each
 * class takes its most confident per_round x (its labeled rows) of them. */
static int self_train_round(const struct fewshot_data *d, const struct fewshot_params *p, uint32_t F,
                            const float *z, int32_t *lab, float *w)
{
    uint32_t K = d->n_classes, nc = 0, quota[FEWSHOT_MAX_CLASSES] = { 0 };
    uint32_t *labeled = malloc(d->n_rows * sizeof *labeled), nl = 0;
    struct cand *c = malloc(d->n_rows * sizeof *c);
    if (!labeled || !c) {
        free(labeled);
        free(c);
        return MODEL_ENOMEM;
    }
    for (uint32_t i = 0; i < d->n_rows; i++)
        if (lab[i] >= 0) {
            labeled[nl++] = i;
            quota[lab[i]] += p->per_round;
        }
    for (uint32_t i = 0; i < d->n_rows; i++) {
        float best[FEWSHOT_MAX_CLASSES];
        if (lab[i] >= 0)
            continue;
        for (uint32_t k = 0; k < K; k++)
            best[k] = INFINITY;
        for (uint32_t t = 0; t < nl; t++) {
            uint32_t l = labeled[t];
            float e = dist2(z + (size_t)i * F, z + (size_t)l * F, F);
            if (e < best[lab[l]])
                best[lab[l]] = e;
        }
        uint32_t b1 = 0;
        for (uint32_t k = 1; k < K; k++)
            if (best[k] < best[b1])
                b1 = k;
        float second = INFINITY;
        for (uint32_t k = 0; k < K; k++)
            if (k != b1 && best[k] < second)
                second = best[k];
        float ratio = second > 0 ? best[b1] / second : 1.0f;
        if (ratio < p->margin)
            c[nc++] = (struct cand){ ratio, i, (int32_t)b1 };
    }
    qsort(c, nc, sizeof *c, cmp_cand);
    for (uint32_t t = 0, taken = 0; t < nc; t++) {
        taken = (t > 0 && c[t].cls == c[t - 1].cls) ? taken + 1 : 0;
        if (taken < quota[c[t].cls]) {
            lab[c[t].row] = c[t].cls;
            w[c[t].row] = p->pseudo_weight;
        }
    }
    free(labeled);
    free(c);
    return 0;
}

#define SPREAD_ALPHA 0.99f          /* how far labels travel against how much they stay (Zhou et al.) */
#define SPREAD_ITERS 30u

/* Label spreading (models_fewshot_params.propagate): every row's k nearest
 * rows in z (n x F) with self-tuning Gaussian weights exp(-d2 / (s_i s_j)),
 * s_i the distance to row i's k-th neighbour (a dense region and a sparse
 * one both get neighbours that count), symmetrised; the labeled rows'
 * weights spread along the normalised graph; each class's total then
 * scaled to one (class mass normalisation: a device's many weak normal
 * labels would otherwise claim every row between them and a fault); a row
 * without a label takes its best class when it wins by the margin. */
static int spread_labels(const struct fewshot_data *d, const struct fewshot_params *p, uint32_t F,
                         const float *z, int32_t *lab, float *w)
{
    uint32_t n = d->n_rows, K = d->n_classes, k = p->propagate < n - 1 ? p->propagate : n - 1;
    uint32_t *nb = malloc((size_t)n * k * sizeof *nb);
    float *nd = malloc((size_t)n * k * sizeof *nd), *sc = malloc(n * sizeof *sc);
    float *deg = calloc(n, sizeof *deg);
    float *Y = calloc((size_t)n * K, sizeof *Y), *Fa = malloc((size_t)n * K * sizeof *Fa);
    float *Fb = malloc((size_t)n * K * sizeof *Fb);
    int rc = MODEL_ENOMEM;
    if (!nb || !nd || !sc || !deg || !Y || !Fa || !Fb)
        goto out;
    rc = 0;
    if (k == 0)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t *bi = nb + (size_t)i * k, m = 0;
        float *di = nd + (size_t)i * k;
        for (uint32_t t = 0; t < n; t++) {
            if (t == i)
                continue;
            float e = dist2(z + (size_t)i * F, z + (size_t)t * F, F);
            if (m == k && e >= di[k - 1])
                continue;
            uint32_t q = m < k ? m++ : k - 1;   /* insertion into the sorted k best */
            while (q > 0 && di[q - 1] > e) {
                di[q] = di[q - 1];
                bi[q] = bi[q - 1];
                q--;
            }
            di[q] = e;
            bi[q] = t;
        }
        sc[i] = sqrtf(di[k - 1]) + 1e-12f;
    }
    /* weights in place of the distances; W = (A + A^T) / 2 is applied as
     * half of every directed edge each way */
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t q = 0; q < k; q++) {
            uint32_t j = nb[(size_t)i * k + q];
            float e = expf(-nd[(size_t)i * k + q] / (sc[i] * sc[j]));
            nd[(size_t)i * k + q] = 0.5f * e;
            deg[i] += 0.5f * e;
            deg[j] += 0.5f * e;
        }
    for (uint32_t i = 0; i < n; i++) {
        sc[i] = deg[i] > 0 ? 1.0f / sqrtf(deg[i]) : 0.0f;   /* D^-1/2 */
        if (lab[i] >= 0)
            Y[(size_t)i * K + lab[i]] = w[i];
    }
    memcpy(Fa, Y, (size_t)n * K * sizeof *Fa);
    for (uint32_t it = 0; it < SPREAD_ITERS; it++) {
        memset(Fb, 0, (size_t)n * K * sizeof *Fb);
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t q = 0; q < k; q++) {
                uint32_t j = nb[(size_t)i * k + q];
                float e = nd[(size_t)i * k + q] * sc[i] * sc[j];
                for (uint32_t c = 0; c < K; c++) {
                    Fb[(size_t)i * K + c] += e * Fa[(size_t)j * K + c];
                    Fb[(size_t)j * K + c] += e * Fa[(size_t)i * K + c];
                }
            }
        for (size_t t = 0; t < (size_t)n * K; t++)
            Fa[t] = SPREAD_ALPHA * Fb[t] + (1.0f - SPREAD_ALPHA) * Y[t];
    }
    double mass[FEWSHOT_MAX_CLASSES] = { 0 };
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t c = 0; c < K; c++)
            mass[c] += Fa[(size_t)i * K + c];
    for (uint32_t i = 0; i < n; i++) {
        if (lab[i] >= 0)
            continue;
        float best = 0, second = 0;
        int32_t bc = -1;
        for (uint32_t c = 0; c < K; c++) {
            float v = mass[c] > 0 ? (float)(Fa[(size_t)i * K + c] / mass[c]) : 0.0f;
            if (v > best) {
                second = best;
                best = v;
                bc = (int32_t)c;
            } else if (v > second)
                second = v;
        }
        if (bc >= 0 && second < p->margin * best) {
            lab[i] = bc;
            w[i] = p->pseudo_weight;
        }
    }
out:
    free(nb);
    free(nd);
    free(sc);
    free(deg);
    free(Y);
    free(Fa);
    free(Fb);
    return rc;
}

/* k prototypes of one class's rows (idx[n]): farthest-point start from the
 * heaviest row, then weighted Lloyd iterations. */
static void class_prototypes(const float *z, const float *w, const uint32_t *idx, uint32_t n,
                             uint32_t F, uint32_t k, float *proto, uint32_t *assign)
{
    uint32_t first = 0;
    for (uint32_t t = 1; t < n; t++)
        if (w[idx[t]] > w[idx[first]])
            first = t;
    memcpy(proto, z + (size_t)idx[first] * F, F * sizeof *proto);
    for (uint32_t p = 1; p < k; p++) {
        uint32_t far = 0;
        float fd = -1;
        for (uint32_t t = 0; t < n; t++) {
            float m = INFINITY;
            for (uint32_t q = 0; q < p; q++) {
                float e = dist2(z + (size_t)idx[t] * F, proto + (size_t)q * F, F);
                m = e < m ? e : m;
            }
            if (m > fd) {
                fd = m;
                far = t;
            }
        }
        memcpy(proto + (size_t)p * F, z + (size_t)idx[far] * F, F * sizeof *proto);
    }
    for (int it = 0; it < 10 && k < n; it++) {
        for (uint32_t t = 0; t < n; t++) {
            float m = INFINITY;
            for (uint32_t q = 0; q < k; q++) {
                float e = dist2(z + (size_t)idx[t] * F, proto + (size_t)q * F, F);
                if (e < m) {
                    m = e;
                    assign[t] = q;
                }
            }
        }
        for (uint32_t q = 0; q < k; q++) {
            double acc[MODEL_MAX_FEATURES] = { 0 }, ws = 0;
            for (uint32_t t = 0; t < n; t++)
                if (assign[t] == q) {
                    ws += w[idx[t]];
                    for (uint32_t j = 0; j < F; j++)
                        acc[j] += w[idx[t]] * z[(size_t)idx[t] * F + j];
                }
            for (uint32_t j = 0; ws > 0 && j < F; j++)
                proto[(size_t)q * F + j] = (float)(acc[j] / ws);
        }
    }
}

static int build_prototypes(const struct fewshot_data *d, uint32_t F, uint32_t per_class,
                            const float *z, const int32_t *lab, const float *w, struct fewshot_model *m)
{
    uint32_t K = d->n_classes;
    uint32_t *idx = malloc(d->n_rows * sizeof *idx), *assign = malloc(d->n_rows * sizeof *assign);
    m->proto = malloc((size_t)K * per_class * F * sizeof *m->proto);
    m->proto_class = malloc((size_t)K * per_class * sizeof *m->proto_class);
    if (!idx || !assign || !m->proto || !m->proto_class) {
        free(idx);
        free(assign);
        return MODEL_ENOMEM;
    }
    m->n_protos = 0;
    for (uint32_t c = 0; c < K; c++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < d->n_rows; i++)
            if (lab[i] == (int32_t)c)
                idx[n++] = i;
        uint32_t k = n < per_class ? n : per_class;
        class_prototypes(z, w, idx, n, F, k, m->proto + (size_t)m->n_protos * F, assign);
        for (uint32_t q = 0; q < k; q++)
            m->proto_class[m->n_protos++] = (uint16_t)c;
    }
    free(idx);
    free(assign);
    return 0;
}

/* Every class needs a labeled row of full weight on the target equipment:
 * weak and related-equipment labels support a class, they do not found it. */
static int enough_labels(const struct fewshot_data *d)
{
    uint32_t seen[FEWSHOT_MAX_CLASSES] = { 0 };
    for (uint32_t i = 0; i < d->n_rows; i++)
        if (d->label[i] >= 0 && row_weight(d, i) >= 1.0f && row_domain(d, i) == 0)
            seen[d->label[i]]++;
    for (uint32_t c = 0; c < d->n_classes; c++)
        if (!seen[c])
            return 0;
    return 1;
}

int models_fewshot_fit(const struct fewshot_data *d, const struct fewshot_params *p,
                       struct fewshot_model *out)
{
    int rc = data_check(d);
    if (rc != 0)
        return rc;
    if (!p || !out || p->protos < 1 || p->protos > FEWSHOT_MAX_PROTOS || !(p->margin > 0) ||
        !(p->margin <= 1) || !(p->pseudo_weight > 0) || !(p->pseudo_weight <= 1) ||
        !(p->shrink >= 0) || !(p->shrink <= 1) || !(p->reference_weight >= 0) ||
        !(p->reference_weight <= 1) || d->reference_class >= (int32_t)d->n_classes)
        return MODEL_EINVAL;
    if (!enough_labels(d))
        return MODEL_ETOOFEW;
    uint32_t F = d->n_feat, S = p->max_features && p->max_features < F ? p->max_features : F;
    struct fewshot_model m = { .n_feat = F, .n_classes = d->n_classes, .n_sel = S };
    struct reference ref;
    float *z = malloc((size_t)d->n_rows * F * sizeof *z), *w = malloc(d->n_rows * sizeof *w);
    float *wt = malloc(F * sizeof *wt), *rank = malloc(F * sizeof *rank), *mult = malloc(S * sizeof *mult);
    int32_t *lab = malloc(d->n_rows * sizeof *lab);
    m.center = malloc(S * sizeof *m.center);
    m.scale = malloc(S * sizeof *m.scale);
    m.sel = malloc(S * sizeof *m.sel);
    rc = MODEL_ENOMEM;
    if (!z || !w || !wt || !rank || !mult || !lab || !m.center || !m.scale || !m.sel ||
        reference_build(d, &ref) != 0)
        goto done;
    for (uint32_t i = 0; i < d->n_rows; i++) {
        lab[i] = d->label[i];
        w[i] = row_weight(d, i);
        /* a device's reference rows are normal by assumption: weak labels when asked */
        if (lab[i] < 0 && d->device && p->reference_weight > 0 && d->reference_class >= 0 &&
            is_reference(d, i) && d->reference) {
            lab[i] = d->reference_class;
            w[i] = p->reference_weight;
        }
    }
    standardise(d, &ref, NULL, NULL, F, z);
    if ((rc = learn_metric(d, lab, w, z, p->shrink, wt, rank)) != 0)
        goto refdone;
    if (S < F) {
        if ((rc = select_features(rank, F, S, m.sel)) != 0)
            goto refdone;
    } else {
        for (uint32_t j = 0; j < F; j++)
            m.sel[j] = (uint16_t)j;
    }
    /* The metric folded into the scale; training and the device then
     * measure in the same space (training clips |z| so one wild window
     * cannot drag a prototype; the device's formula has no clip, and a
     * prototype is never out there). */
    for (uint32_t s = 0; s < S; s++) {
        uint32_t j = m.sel[s];
        mult[s] = sqrtf(wt[j]);
        m.center[s] = ref.dom_center[j];
        m.scale[s] = ref.dom_scale[j] * mult[s];
    }
    standardise(d, &ref, m.sel, mult, S, z);
    if (p->propagate) {
        if ((rc = spread_labels(d, p, S, z, lab, w)) != 0)
            goto refdone;
    } else
        for (uint32_t r = 0; r < p->rounds; r++)
            if ((rc = self_train_round(d, p, S, z, lab, w)) != 0)
                goto refdone;
    if ((rc = build_prototypes(d, S, p->protos, z, lab, w, &m)) != 0)
        goto refdone;
    if (d->device) {
        rc = MODEL_ENOMEM;
        m.n_dev = ref.n_dev;
        m.dev_id = malloc((size_t)ref.n_dev * sizeof *m.dev_id);
        m.dev_center = malloc((size_t)ref.n_dev * S * sizeof *m.dev_center);
        if (!m.dev_id || !m.dev_center)
            goto refdone;
        memcpy(m.dev_id, ref.dev_id, (size_t)ref.n_dev * sizeof *m.dev_id);
        for (uint32_t k = 0; k < ref.n_dev; k++)
            for (uint32_t s = 0; s < S; s++) {
                float c = ref.dev_center[(size_t)k * F + m.sel[s]];
                m.dev_center[(size_t)k * S + s] = isnan(c) ? m.center[s] : c;
            }
    }
    *out = m;
    memset(&m, 0, sizeof m);
    rc = 0;
refdone:
    reference_free(&ref);
done:
    models_fewshot_release(&m);
    free(z);
    free(w);
    free(wt);
    free(rank);
    free(mult);
    free(lab);
    return rc;
}

void models_fewshot_release(struct fewshot_model *m)
{
    if (!m)
        return;
    free(m->sel);
    free(m->center);
    free(m->scale);
    free(m->proto);
    free(m->proto_class);
    free(m->dev_id);
    free(m->dev_center);
    memset(m, 0, sizeof *m);
}

const float *models_fewshot_center(const struct fewshot_model *m, uint32_t device)
{
    if (m->n_dev) {
        const uint32_t *hit = bsearch(&device, m->dev_id, m->n_dev, sizeof device, cmp_u32);
        if (hit)
            return m->dev_center + (size_t)(hit - m->dev_id) * m->n_sel;
    }
    return m->center;
}

/* The device's formula (schema/model.c, fewshot_d2): no clipping, float, index order. */
static int predict_with(const struct fewshot_model *m, const float *center, const float *x,
                        float *d2_best)
{
    float best = INFINITY;
    int cls = -1;
    for (uint32_t q = 0; q < m->n_protos; q++) {
        const float *pr = m->proto + (size_t)q * m->n_sel;
        float s = 0.0f;
        for (uint32_t i = 0; i < m->n_sel; i++) {
            float t = (x[m->sel[i]] - center[i]) * m->scale[i] - pr[i];
            s += t * t;
        }
        if (s < best) {
            best = s;
            cls = m->proto_class[q];
        }
    }
    if (d2_best)
        *d2_best = best;
    return cls;
}

int models_fewshot_predict(const struct fewshot_model *m, const float *x, float *d2_best)
{
    return predict_with(m, m->center, x, d2_best);
}

int models_fewshot_predict_device(const struct fewshot_model *m, uint32_t device, const float *x,
                                  float *d2_best)
{
    return predict_with(m, models_fewshot_center(m, device), x, d2_best);
}

static uint32_t blob_params(uint32_t n_feat, uint32_t n_sel, uint32_t n_protos)
{
    return (n_sel < n_feat ? n_sel : 0) + 2u * n_sel + n_protos * (n_sel + 1u);
}

size_t models_fewshot_bytes(const struct fewshot_model *m)
{
    return (size_t)4 * blob_params(m->n_feat, m->n_sel, m->n_protos);
}

/* ---- to the device ------------------------------------------------------- */

static int export_with(const struct fewshot_model *fm, const float *center, uint16_t normal_class,
                       struct model *out)
{
    uint32_t n, np, off = 0;
    float *cls;

    if (!fm || !out || fm->n_feat < 1 || fm->n_feat > MODEL_MAX_FEATURES || fm->n_sel < 1 ||
        fm->n_sel > fm->n_feat || fm->n_classes < 2 || fm->n_classes > MODEL_MAX_CLASSES ||
        fm->n_protos < fm->n_classes || fm->n_protos > MODEL_MAX_PROTOS)
        return MODEL_EINVAL;
    n = fm->n_sel;
    np = fm->n_protos;
    if (blob_params(fm->n_feat, n, np) > MODEL_MAX_PARAMS)
        return MODEL_ETOOBIG;
    out->kind = MODEL_FEWSHOT;
    out->n_features = (uint16_t)fm->n_feat;
    out->n_selected = (uint16_t)(n < fm->n_feat ? n : 0);
    out->n_classes = (uint16_t)fm->n_classes;
    out->n_protos = (uint16_t)np;
    out->normal_class = normal_class;
    out->threshold = 0.5f;
    out->param_count = blob_params(fm->n_feat, n, np);
    if (out->n_selected)
        for (uint32_t i = 0; i < n; i++)
            out->params[off++] = (float)fm->sel[i];
    memcpy(out->params + off, center, n * sizeof *out->params);
    off += n;
    for (uint32_t i = 0; i < n; i++)    /* a feature the metric dropped keeps a sliver of weight:
                                         * the blob's scales must be positive */
        out->params[off + i] = fm->scale[i] > 1e-6f ? fm->scale[i] : 1e-6f;
    off += n;
    memcpy(out->params + off, fm->proto, (size_t)np * n * sizeof *out->params);
    cls = out->params + off + (size_t)np * n;
    for (uint32_t q = 0; q < np; q++)
        cls[q] = (float)fm->proto_class[q];
    return MODEL_OK;
}

int models_fewshot_export(const struct fewshot_model *fm, uint16_t normal_class, struct model *out)
{
    return fm ? export_with(fm, fm->center, normal_class, out) : MODEL_EINVAL;
}

int models_fewshot_export_device(const struct fewshot_model *fm, uint32_t device,
                                 uint16_t normal_class, struct model *out)
{
    return fm ? export_with(fm, models_fewshot_center(fm, device), normal_class, out) : MODEL_EINVAL;
}

int models_fewshot_fit_budget(const struct fewshot_data *d, const struct fewshot_params *p,
                              size_t max_bytes, struct fewshot_model *m, uint32_t *protos_used)
{
    struct fewshot_params q = *p;
    uint32_t F = d ? d->n_feat : 0, floor_f = F < FEWSHOT_MIN_FEATURES ? F : FEWSHOT_MIN_FEATURES;
    int rc;

    if (!d || !p || p->protos < 1)
        return MODEL_EINVAL;
    /* Features first (the heaviest of the metric, down to floor_f), then
     * prototypes per class: a class seen in several forms needs its
     * prototypes more than the budget needs the least informative
     * features.  A class keeps at least one prototype. */
    for (; q.protos >= 1; q.protos--) {
        uint32_t Q = q.protos * d->n_classes, cap = p->max_features && p->max_features < F
                                                         ? p->max_features : F, S;
        struct fewshot_model t;

        if (Q > MODEL_MAX_PROTOS)
            continue;
        if (4u * (size_t)blob_params(F, cap, Q) <= max_bytes)
            S = cap;
        else {
            /* n_sel + 2 n_sel + Q (n_sel + 1) <= max_bytes / 4 */
            size_t room = max_bytes / 4;
            S = room > Q ? (uint32_t)((room - Q) / (3u + Q)) : 0;
            if (S > cap)
                S = cap;
            if (S < floor_f || S < 1)
                continue;
        }
        q.max_features = S;
        if ((rc = models_fewshot_fit(d, &q, &t)) != 0)
            return rc;
        if (models_fewshot_bytes(&t) <= max_bytes) {
            *m = t;
            if (protos_used)
                *protos_used = q.protos;
            return MODEL_OK;
        }
        models_fewshot_release(&t);
    }
    return MODEL_ETOOBIG;
}
