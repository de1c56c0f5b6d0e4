/* models_eval.c - evaluation that tells the truth: the k-NN and nearest-
 * centroid baselines measured the same way as the few-shot learner,
 * leave-one-group-out folds, Wilson intervals, and a refusal with its reason
 * wherever the labels are too few to support a figure. */
#include "server/models/models_fewshot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/model.h"
#include "server/srv/srv.h"

static void figure(struct eval_figure *f, uint32_t hits, uint32_t n, uint32_t min_n, const char *what)
{
    memset(f, 0, sizeof *f);
    f->hits = hits;
    f->n = n;
    if (n < min_n) {
        snprintf(f->why, sizeof f->why, "%u %s; at least %u needed", n, what, min_n);
        return;
    }
    f->ok = 1;
    f->value = (double)hits / n;
    srv_wilson95(hits, n, &f->lo, &f->hi);
}

void models_eval_tally(const int32_t *truth, const int32_t *pred, uint32_t n, uint32_t n_classes,
                       int32_t normal_class, struct eval_report *r)
{
    uint32_t hits = 0, total = 0, ch[FEWSHOT_MAX_CLASSES] = { 0 }, cn[FEWSHOT_MAX_CLASSES] = { 0 };
    uint32_t fa = 0, nn = 0, det = 0, nf = 0;
    memset(r, 0, sizeof *r);
    r->n_classes = n_classes > FEWSHOT_MAX_CLASSES ? FEWSHOT_MAX_CLASSES : n_classes;
    for (uint32_t i = 0; i < n; i++) {
        if (truth[i] < 0 || truth[i] >= (int32_t)r->n_classes)
            continue;
        total++;
        cn[truth[i]]++;
        if (pred[i] == truth[i]) {
            hits++;
            ch[truth[i]]++;
        }
        if (normal_class >= 0 && truth[i] == normal_class) {
            nn++;
            fa += pred[i] != normal_class;
        } else if (normal_class >= 0) {
            nf++;
            det += pred[i] >= 0 && pred[i] != normal_class;
        }
    }
    figure(&r->accuracy, hits, total, EVAL_MIN_TEST, "labeled test windows");
    for (uint32_t c = 0; c < r->n_classes; c++)
        figure(&r->recall[c], ch[c], cn[c], EVAL_MIN_CLASS_TEST, "test windows of this class");
    if (normal_class < 0) {
        figure(&r->false_alarm, 0, 0, 1, "windows: no normal class");
        figure(&r->detection, 0, 0, 1, "windows: no normal class");
        return;
    }
    figure(&r->false_alarm, fa, nn, EVAL_MIN_CLASS_TEST, "normal test windows");
    figure(&r->detection, det, nf, EVAL_MIN_CLASS_TEST, "fault test windows");
}

/* ---- baselines ---- */

int models_baseline_fit(const struct fewshot_data *d, uint32_t k, struct fewshot_baseline *out)
{
    if (!d || !out || !d->x || !d->label || d->n_feat == 0 || d->n_feat > MODEL_MAX_FEATURES ||
        d->n_classes < 2 || d->n_classes > FEWSHOT_MAX_CLASSES)
        return MODEL_EINVAL;
    uint32_t F = d->n_feat, nl = 0, cnt[FEWSHOT_MAX_CLASSES] = { 0 };
    for (uint32_t i = 0; i < d->n_rows; i++)
        if (d->label[i] >= 0 && d->label[i] < (int32_t)d->n_classes &&
            (!d->weight || d->weight[i] >= 1.0f) && (!d->domain || d->domain[i] == 0)) {
            nl++;
            cnt[d->label[i]]++;
        }
    for (uint32_t c = 0; c < d->n_classes; c++)
        if (!cnt[c])
            return MODEL_ETOOFEW;
    struct fewshot_baseline b = { .n_feat = F, .k = k, .n_ref = k ? nl : d->n_classes };
    b.mean = calloc(F, sizeof *b.mean);
    b.inv_std = calloc(F, sizeof *b.inv_std);
    b.ref = calloc((size_t)b.n_ref * F, sizeof *b.ref);
    b.ref_class = calloc(b.n_ref, sizeof *b.ref_class);
    if (!b.mean || !b.inv_std || !b.ref || !b.ref_class) {
        models_baseline_release(&b);
        return MODEL_ENOMEM;
    }
    uint32_t t = 0;
    for (uint32_t i = 0; i < d->n_rows; i++) {
        if (d->label[i] < 0 || d->label[i] >= (int32_t)d->n_classes ||
            (d->weight && d->weight[i] < 1.0f) || (d->domain && d->domain[i] != 0))
            continue;
        const float *x = d->x + (size_t)i * F;
        for (uint32_t j = 0; j < F; j++) {
            b.mean[j] += x[j] / (float)nl;
            b.inv_std[j] += x[j] * x[j] / (float)nl;
            if (k)
                b.ref[(size_t)t * F + j] = x[j];
            else
                b.ref[(size_t)d->label[i] * F + j] += x[j] / (float)cnt[d->label[i]];
        }
        if (k)
            b.ref_class[t++] = d->label[i];
    }
    for (uint32_t c = 0; !k && c < d->n_classes; c++)
        b.ref_class[c] = (int32_t)c;
    for (uint32_t j = 0; j < F; j++) {
        float var = b.inv_std[j] - b.mean[j] * b.mean[j];
        b.inv_std[j] = var > 1e-12f ? 1.0f / sqrtf(var) : 0.0f;
    }
    for (uint32_t r = 0; r < b.n_ref; r++)
        for (uint32_t j = 0; j < F; j++)
            b.ref[(size_t)r * F + j] = (b.ref[(size_t)r * F + j] - b.mean[j]) * b.inv_std[j];
    *out = b;
    return 0;
}

int models_baseline_predict(const struct fewshot_baseline *b, const float *x)
{
    enum { KMAX = 15 };
    float bd[KMAX];
    int32_t bc[KMAX] = { -1 };
    uint32_t k = b->k ? (b->k < KMAX ? b->k : KMAX) : 1, have = 0;
    for (uint32_t r = 0; r < b->n_ref; r++) {
        float e = 0;
        for (uint32_t j = 0; j < b->n_feat; j++) {
            float t = (x[j] - b->mean[j]) * b->inv_std[j] - b->ref[(size_t)r * b->n_feat + j];
            e += t * t;
        }
        /* insertion into the sorted k best */
        uint32_t pos = have < k ? have++ : k;
        while (pos > 0 && bd[pos - 1] > e) {
            if (pos < k) {
                bd[pos] = bd[pos - 1];
                bc[pos] = bc[pos - 1];
            }
            pos--;
        }
        if (pos < k) {
            bd[pos] = e;
            bc[pos] = b->ref_class[r];
        }
    }
    /* majority of the k; a tie goes to the class whose member is nearest */
    int32_t best = bc[0];
    uint32_t best_votes = 0;
    for (uint32_t a = 0; a < have; a++) {
        uint32_t v = 0;
        for (uint32_t c = 0; c < have; c++)
            v += bc[c] == bc[a];
        if (v > best_votes) {
            best_votes = v;
            best = bc[a];
        }
    }
    return best;
}

void models_baseline_release(struct fewshot_baseline *b)
{
    if (!b)
        return;
    free(b->mean);
    free(b->inv_std);
    free(b->ref);
    free(b->ref_class);
    memset(b, 0, sizeof *b);
}

/* ---- leave-one-group-out ---- */

/* Rows of related equipment (domain > 0, transfer) are taught in every
 * fold and never tested: a figure is about the target's machines. */
static int on_target(const struct fewshot_data *d, uint32_t i)
{
    return !d->domain || d->domain[i] == 0;
}

/* Fit on d (labels of the held-out group hidden) and predict its rows into pred. */
static int fold(const struct fewshot_data *d, const uint32_t *group, uint32_t g, enum eval_learner how,
                const struct fewshot_params *p, uint32_t knn_k, uint32_t budget, int32_t *pred)
{
    int32_t *lab = malloc(d->n_rows * sizeof *lab);
    uint8_t *ref = d->device && d->reference ? malloc(d->n_rows) : NULL;
    int rc;
    if (!lab || (d->device && d->reference && !ref)) {
        free(lab);
        free(ref);
        return MODEL_ENOMEM;
    }
    for (uint32_t i = 0; i < d->n_rows; i++)
        lab[i] = group[i] == g && on_target(d, i) ? FEWSHOT_UNLABELED : d->label[i];
    /* the held-out group keeps only the references no label founds */
    for (uint32_t i = 0; ref && i < d->n_rows; i++)
        ref[i] = (uint8_t)(d->reference[i] && (group[i] != g || !on_target(d, i) ||
                                               !d->reference_label_free ||
                                               d->reference_label_free[i]));
    struct fewshot_data train = *d;
    train.label = lab;
    if (ref)
        train.reference = ref;
    if (how == EVAL_FEWSHOT) {
        struct fewshot_model m;
        if ((rc = models_fewshot_fit_budget(&train, p, budget, &m, NULL)) == 0) {
            /* each row as its device computes it: on its own reference */
            for (uint32_t i = 0; i < d->n_rows; i++)
                if (group[i] == g && on_target(d, i))
                    pred[i] = d->device ? models_fewshot_predict_device(&m, d->device[i],
                                                                        d->x + (size_t)i * d->n_feat, NULL)
                                        : models_fewshot_predict(&m, d->x + (size_t)i * d->n_feat, NULL);
            models_fewshot_release(&m);
        }
    } else {
        struct fewshot_baseline b;
        if ((rc = models_baseline_fit(&train, how == EVAL_KNN ? knn_k : 0, &b)) == 0) {
            for (uint32_t i = 0; i < d->n_rows; i++)
                if (group[i] == g && on_target(d, i))
                    pred[i] = models_baseline_predict(&b, d->x + (size_t)i * d->n_feat);
            models_baseline_release(&b);
        }
    }
    free(lab);
    free(ref);
    return rc;
}

/* Refuse every figure of r with why. */
static void refuse_all(struct eval_report *r, const char *why)
{
    r->accuracy.ok = 0;
    snprintf(r->accuracy.why, sizeof r->accuracy.why, "%s", why);
    snprintf(r->false_alarm.why, sizeof r->false_alarm.why, "%s", why);
    r->false_alarm.ok = 0;
    snprintf(r->detection.why, sizeof r->detection.why, "%s", why);
    r->detection.ok = 0;
    for (uint32_t c = 0; c < r->n_classes; c++) {
        r->recall[c].ok = 0;
        snprintf(r->recall[c].why, sizeof r->recall[c].why, "%s", why);
    }
}

int models_eval_logo(const struct fewshot_data *d, const uint32_t *group, enum eval_learner how,
                     const struct fewshot_params *p, uint32_t knn_k, int32_t normal_class,
                     struct eval_report *r)
{
    return models_eval_logo_refit(d, group, how, p, knn_k, normal_class, NULL, r);
}

int models_eval_logo_refit(const struct fewshot_data *d, const uint32_t *group,
                           enum eval_learner how, const struct fewshot_params *p, uint32_t knn_k,
                           int32_t normal_class, const struct eval_refit *refit,
                           struct eval_report *r)
{
    if (!d || !group || !r || !d->label || d->n_classes < 2 || d->n_classes > FEWSHOT_MAX_CLASSES)
        return MODEL_EINVAL;
    int32_t *pred = malloc(d->n_rows * sizeof *pred), *truth = malloc(d->n_rows * sizeof *truth);
    uint32_t *gs = malloc(d->n_rows * sizeof *gs), ng = 0;
    uint32_t cls_groups[FEWSHOT_MAX_CLASSES] = { 0 };
    uint32_t budget = refit && refit->param_bytes ? refit->param_bytes : FEWSHOT_PARAM_BYTES;
    float *xk = refit ? malloc((size_t)d->n_rows * d->n_feat * sizeof *xk) : NULL;
    uint8_t *sk = refit && refit->scale_rows ? malloc(d->n_rows) : NULL;
    int rc = MODEL_ENOMEM;
    if (!pred || !truth || !gs || (refit && !xk) || (refit && refit->scale_rows && !sk))
        goto done;
    for (uint32_t i = 0; i < d->n_rows; i++) {
        pred[i] = -1;
        truth[i] = -1;
        if (d->label[i] < 0 || !on_target(d, i))
            continue;
        uint32_t k = 0;
        while (k < ng && gs[k] != group[i])
            k++;
        if (k == ng)
            gs[ng++] = group[i];
    }
    /* groups labeling each class: a class labeled in one group cannot be tested out of it */
    for (uint32_t c = 0; c < d->n_classes; c++)
        for (uint32_t k = 0; k < ng; k++)
            for (uint32_t i = 0; i < d->n_rows; i++)
                if (d->label[i] == (int32_t)c && group[i] == gs[k] && on_target(d, i)) {
                    cls_groups[c]++;
                    break;
                }
    for (uint32_t k = 0; k < ng; k++) {
        struct fewshot_data dk = *d;
        int frc = 0;
        if (refit) {
            /* this fold's features, fitted without its rows */
            frc = refit->features(refit->ctx, gs[k], xk);
            dk.x = xk;
            if (frc == 0 && sk) {
                frc = refit->scale_rows(refit->ctx, gs[k], sk);
                dk.scale_rows = sk;
            }
            if (frc == 0 && refit->scale_extra)
                frc = refit->scale_extra(refit->ctx, gs[k], &dk.scale_x, &dk.n_scale_x);
        }
        if (frc == 0)
            frc = fold(&dk, group, gs[k], how, p, knn_k, budget, pred);
        if (frc == MODEL_ENOMEM || frc == MODEL_EINVAL) {
            rc = frc;
            goto done;
        }
        /* a fold that lacks a class scores nothing: its rows stay untested */
        for (uint32_t i = 0; frc == 0 && i < d->n_rows; i++)
            if (group[i] == gs[k] && on_target(d, i))
                truth[i] = d->label[i];
    }
    models_eval_tally(truth, pred, d->n_rows, d->n_classes, normal_class, r);
    r->n_groups = ng;
    if (ng < 2)
        refuse_all(r, "labels from one group only: leave-one-group-out needs two");
    for (uint32_t c = 0; ng >= 2 && c < d->n_classes; c++)
        if (cls_groups[c] < 2) {
            r->recall[c].ok = 0;
            snprintf(r->recall[c].why, sizeof r->recall[c].why,
                     "labeled in %u group(s): no fold can learn it and test it", cls_groups[c]);
        }
    rc = 0;
done:
    free(pred);
    free(truth);
    free(gs);
    free(xk);
    free(sk);
    return rc;
}
