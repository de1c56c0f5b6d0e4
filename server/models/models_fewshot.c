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
    return 0;
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

/* Standardise every row by its own domain's robust statistics into z; the
 * target domain's statistics go to center/scale. */
static int standardise(const struct fewshot_data *d, float *z, float *center, float *scale)
{
    uint32_t F = d->n_feat;
    float *v = malloc((size_t)d->n_rows * sizeof *v);
    if (!v)
        return MODEL_ENOMEM;
    for (uint32_t dom = 0; dom < MAX_DOMAINS; dom++) {
        for (uint32_t j = 0; j < F; j++) {
            uint32_t n = 0;
            float c, s;
            for (uint32_t i = 0; i < d->n_rows; i++)
                if (row_domain(d, i) == dom)
                    v[n++] = d->x[(size_t)i * F + j];
            if (n == 0)
                break;
            robust_stats(v, n, &c, &s);
            if (dom == 0) {
                center[j] = c;
                scale[j] = s;
            }
            for (uint32_t i = 0; i < d->n_rows; i++)
                if (row_domain(d, i) == dom) {
                    float t = (d->x[(size_t)i * F + j] - c) * s;
                    z[(size_t)i * F + j] = t > FEWSHOT_CLIP ? FEWSHOT_CLIP : t < -FEWSHOT_CLIP ? -FEWSHOT_CLIP : t;
                }
        }
    }
    free(v);
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
 * mean would be); shrunk towards 1; z and scale take its square root. */
static int learn_metric(const struct fewshot_data *d, const int32_t *lab, const float *w, float *z,
                        float *scale, float shrink)
{
    uint32_t F = d->n_feat;
    double *r = calloc(F, sizeof *r), rmean = 0;
    if (!r)
        return MODEL_ENOMEM;
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
        for (uint32_t j = 0; j < F; j++) {
            double a = z[(size_t)i * F + j] - z[(size_t)miss * F + j];
            double h = z[(size_t)i * F + j] - z[(size_t)hit * F + j];
            r[j] += w[i] * (a * a - h * h);
        }
    }
    for (uint32_t j = 0; j < F; j++) {
        r[j] = r[j] > 0 ? r[j] : 0;
        rmean += r[j] / F;
    }
    for (uint32_t j = 0; j < F; j++) {
        float wj = shrink * (rmean > 0 ? (float)(r[j] / rmean) : 1.0f) + (1.0f - shrink);
        float sq = sqrtf(wj);
        scale[j] *= sq;
        for (uint32_t i = 0; i < d->n_rows; i++)
            z[(size_t)i * F + j] *= sq;
    }
    free(r);
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
static int self_train_round(const struct fewshot_data *d, const struct fewshot_params *p, float *z,
                            int32_t *lab, float *w)
{
    uint32_t F = d->n_feat, K = d->n_classes, nc = 0, quota[FEWSHOT_MAX_CLASSES] = { 0 };
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

static int build_prototypes(const struct fewshot_data *d, uint32_t per_class, const float *z,
                            const int32_t *lab, const float *w, struct fewshot_model *m)
{
    uint32_t F = d->n_feat, K = d->n_classes;
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
        !(p->shrink >= 0) || !(p->shrink <= 1))
        return MODEL_EINVAL;
    if (!enough_labels(d))
        return MODEL_ETOOFEW;
    uint32_t F = d->n_feat;
    struct fewshot_model m = { .n_feat = F, .n_classes = d->n_classes };
    float *z = malloc((size_t)d->n_rows * F * sizeof *z), *w = malloc(d->n_rows * sizeof *w);
    int32_t *lab = malloc(d->n_rows * sizeof *lab);
    m.center = malloc(F * sizeof *m.center);
    m.scale = malloc(F * sizeof *m.scale);
    rc = MODEL_ENOMEM;
    if (!z || !w || !lab || !m.center || !m.scale)
        goto done;
    for (uint32_t i = 0; i < d->n_rows; i++) {
        lab[i] = d->label[i];
        w[i] = row_weight(d, i);
    }
    if ((rc = standardise(d, z, m.center, m.scale)) != 0 ||
        (rc = learn_metric(d, lab, w, z, m.scale, p->shrink)) != 0)
        goto done;
    for (uint32_t r = 0; r < p->rounds; r++)
        if ((rc = self_train_round(d, p, z, lab, w)) != 0)
            goto done;
    if ((rc = build_prototypes(d, p->protos, z, lab, w, &m)) != 0)
        goto done;
    *out = m;
    memset(&m, 0, sizeof m);
done:
    models_fewshot_release(&m);
    free(z);
    free(w);
    free(lab);
    return rc;
}

void models_fewshot_release(struct fewshot_model *m)
{
    if (!m)
        return;
    free(m->center);
    free(m->scale);
    free(m->proto);
    free(m->proto_class);
    memset(m, 0, sizeof *m);
}

int models_fewshot_predict(const struct fewshot_model *m, const float *x, float *d2_best)
{
    float z[MODEL_MAX_FEATURES], best = INFINITY;
    int cls = -1;
    for (uint32_t j = 0; j < m->n_feat; j++) {
        float t = (x[j] - m->center[j]) * m->scale[j];
        z[j] = t > FEWSHOT_CLIP ? FEWSHOT_CLIP : t < -FEWSHOT_CLIP ? -FEWSHOT_CLIP : t;
    }
    for (uint32_t q = 0; q < m->n_protos; q++) {
        float e = dist2(z, m->proto + (size_t)q * m->n_feat, m->n_feat);
        if (e < best) {
            best = e;
            cls = m->proto_class[q];
        }
    }
    if (d2_best)
        *d2_best = best;
    return cls;
}

size_t models_fewshot_bytes(const struct fewshot_model *m)
{
    return (size_t)4 * (2u * m->n_feat + (size_t)m->n_protos * m->n_feat) + m->n_protos;
}

/* ---- to the device ------------------------------------------------------- */

int models_fewshot_export(const struct fewshot_model *fm, uint16_t normal_class, struct model *out)
{
    uint32_t n, np;
    float *cls;

    if (!fm || !out || fm->n_feat < 1 || fm->n_feat > MODEL_MAX_FEATURES || fm->n_classes < 2 ||
        fm->n_classes > MODEL_MAX_CLASSES || fm->n_protos < fm->n_classes ||
        fm->n_protos > MODEL_MAX_PROTOS)
        return MODEL_EINVAL;
    n = fm->n_feat;
    np = fm->n_protos;
    if (model_param_count(MODEL_FEWSHOT, (uint16_t)n, (uint16_t)np) > MODEL_MAX_PARAMS)
        return MODEL_ETOOBIG;
    out->kind = MODEL_FEWSHOT;
    out->n_features = (uint16_t)n;
    out->n_classes = (uint16_t)fm->n_classes;
    out->n_protos = (uint16_t)np;
    out->normal_class = normal_class;
    out->threshold = 0.5f;
    out->param_count = model_param_count(MODEL_FEWSHOT, (uint16_t)n, (uint16_t)np);
    memcpy(out->params, fm->center, n * sizeof *out->params);
    for (uint32_t i = 0; i < n; i++)    /* a feature the metric dropped keeps a sliver of weight:
                                         * the blob's scales must be positive */
        out->params[n + i] = fm->scale[i] > 1e-6f ? fm->scale[i] : 1e-6f;
    memcpy(out->params + 2u * n, fm->proto, (size_t)np * n * sizeof *out->params);
    cls = out->params + 2u * n + (size_t)np * n;
    for (uint32_t q = 0; q < np; q++)
        cls[q] = (float)fm->proto_class[q];
    return MODEL_OK;
}

int models_fewshot_fit_budget(const struct fewshot_data *d, const struct fewshot_params *p,
                              size_t max_bytes, struct fewshot_model *m, uint32_t *protos_used)
{
    struct fewshot_params q = *p;
    int rc;

    /* Fewer prototypes per class until the parameters fit: a class keeps
     * at least one, and past that the features are what must shrink. */
    for (; q.protos >= 1; q.protos--) {
        struct fewshot_model t;

        if ((rc = models_fewshot_fit(d, &q, &t)) != 0)
            return rc;
        if (4u * (size_t)model_param_count(MODEL_FEWSHOT, (uint16_t)t.n_feat,
                                           (uint16_t)t.n_protos) <= max_bytes &&
            t.n_protos <= MODEL_MAX_PROTOS) {
            *m = t;
            if (protos_used)
                *protos_used = q.protos;
            return MODEL_OK;
        }
        models_fewshot_release(&t);
    }
    return MODEL_ETOOBIG;
}
