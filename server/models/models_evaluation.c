/* models_evaluation.c - the evaluation every training run stores in the
 * model's metrics ("evaluation"): leave-one-group-out over the version's
 * split groups for the few-shot learner and, on the same windows and
 * folds, k-NN and nearest-centroid baselines on the same features and a
 * k-NN on simple spectral features, each figure with its 95% Wilson
 * interval or null and the reason the labels cannot support it.  The
 * numbers are what a reliability engineer compares before trusting a model
 * learned from five failures: if the learner does not beat a 3-NN on the
 * same windows, the model page says so. */
#include "server/models/models_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "schema/featureset.h"
#include "schema/model.h"
#include "server/datasets/datasets.h"
#include "server/models/models_fewshot.h"

/* Folds at most: LOGO over more groups costs a fit per group; groups beyond
 * this share folds (group id modulo), so a window is still never tested by
 * a model that saw its group's labels. */
#define EVAL_MAX_FOLDS MODELS_EVAL_FOLDS
#define EVAL_KNN_K 3u
/* Windows evaluated at most: k-NN and the learner's metric compare every
 * pair of rows, so a large version is evaluated on every s-th window (s the
 * smallest stride that fits), and the JSON says how many of how many. */
#define EVAL_MAX_ROWS 4000u

static json_t *figure_json(const struct eval_figure *f)
{
    if (!f->ok)
        return json_pack("{s:n,s:s,s:i,s:i}", "value", "reason", f->why, "hits", (int)f->hits,
                         "n", (int)f->n);
    return json_pack("{s:f,s:f,s:f,s:i,s:i}", "value", f->value, "lo", f->lo, "hi", f->hi, "hits",
                     (int)f->hits, "n", (int)f->n);
}

static json_t *report_json(const char *name, const char *features, const struct eval_report *r,
                           const struct ds_info *in)
{
    json_t *rec = json_array(), *j;

    for (uint32_t c = 0; rec && c < r->n_classes; c++) {
        json_t *f = figure_json(&r->recall[c]);

        if (f) {
            json_object_set_new(f, "class", json_string(in->classes[c]));
            json_object_set_new(f, "support", json_integer(r->recall[c].n));
        }
        json_array_append_new(rec, f);
    }
    j = json_pack("{s:s,s:s,s:o,s:o}", "method", name, "features", features, "accuracy",
                  figure_json(&r->accuracy), "recall", rec);
    if (j && in->normal_class >= 0) {
        json_object_set_new(j, "false_alarm", figure_json(&r->false_alarm));
        json_object_set_new(j, "detection", figure_json(&r->detection));
    }
    return j;
}

/* The columns of the simple spectral baseline within the spectral and
 * envelope sets: per channel log rms, kurtosis, crest and the log bands (no
 * order bands, spectral kurtosis or defect energies), what a 3-NN on "RMS,
 * kurtosis, crest and FFT bands" reads. */
static float *simple_spectral(const float *X, size_t n, uint16_t d, unsigned channels, int env,
                              uint32_t *d_out)
{
    unsigned per = env ? FEATURESET_ENVELOPE_NFEAT : FEATURESET_SPECTRAL_NFEAT;
    unsigned keep = 3 + (env ? 8 : FEATURESET_SPECTRAL_BANDS);
    float *S = malloc(n * channels * keep * sizeof *S);

    if (!S)
        return NULL;
    for (size_t i = 0; i < n; i++)
        for (unsigned c = 0; c < channels; c++)
            memcpy(S + (i * channels + c) * keep, X + i * d + c * per, keep * sizeof *S);
    *d_out = channels * keep;
    return S;
}

/* The evaluated rows' indices into the version, for a models_refit. */
struct rows_refit {
    const struct models_refit *refit;
    const size_t *rows;
    uint32_t n;
};

static int rows_features(void *ctx, uint32_t held, float *x)
{
    const struct rows_refit *rr = ctx;

    return rr->refit->features(rr->refit->ctx, rr->rows, rr->n, held, x);
}

static int rows_scale(void *ctx, uint32_t held, uint8_t *out)
{
    const struct rows_refit *rr = ctx;

    return rr->refit->scale_rows(rr->refit->ctx, rr->rows, rr->n, held, out);
}

static int rows_scale_extra(void *ctx, uint32_t held, const float **x, uint32_t *n)
{
    const struct rows_refit *rr = ctx;

    return rr->refit->scale_extra(rr->refit->ctx, held, x, n);
}

/* One learner's LOGO report as JSON, or a refusal when it could not run. */
static json_t *run_one(const struct fewshot_data *fd, const uint32_t *fold, enum eval_learner how,
                       const char *name, const char *features, const struct ds_info *in,
                       const struct eval_refit *refit)
{
    struct fewshot_params p;
    struct eval_report *r = calloc(1, sizeof *r);
    json_t *j;
    int rc;

    if (!r)
        return NULL;
    models_fewshot_defaults(&p);
    rc = models_eval_logo_refit(fd, fold, how, &p, how == EVAL_KNN ? EVAL_KNN_K : 0,
                                in->normal_class >= 0 ? in->normal_class : -1, refit, r);
    j = rc == MODEL_OK ? report_json(name, features, r, in)
                       : json_pack("{s:s,s:s,s:n,s:s}", "method", name, "features", features,
                                   "accuracy", "reason", model_strerror(rc));
    free(r);
    return j;
}

/* What transfer changed: the learner with the related rows and without,
 * on the same target windows and folds. */
static json_t *transfer_json(const struct models_transfer *tf, size_t n_tf, size_t n_tf_labeled,
                             json_t *with, json_t *without)
{
    json_t *aw = json_object_get(json_object_get(with, "accuracy"), "value");
    json_t *ao = json_object_get(json_object_get(without, "accuracy"), "value");
    json_t *j = json_pack("{s:I,s:I,s:i,s:f,s:O}", "windows", (json_int_t)n_tf,
                          "labeled_windows", (json_int_t)n_tf_labeled, "types", (int)tf->n_types,
                          "weight", (double)MODELS_TRANSFER_WEIGHT, "without", without);

    if (!j)
        return NULL;
    if (json_is_number(aw) && json_is_number(ao))
        json_object_set_new(j, "accuracy_change", json_real(json_number_value(aw) -
                                                            json_number_value(ao)));
    else
        json_object_set_new(j, "accuracy_change_reason",
                            json_string("an accuracy was refused: no change to report"));
    return j;
}

json_t *models__evaluation(const float *X0, const int *y, const float *weight,
                           const uint32_t *group, size_t n0, uint16_t d,
                           const struct featureset_spec *fs, const struct ds_info *in,
                           const struct models_transfer *tf, const struct models_refit *refit,
                           const struct models_devref *dr)
{
    struct fewshot_data fd = { 0 }, sd, td;
    size_t *vrows = malloc((n0 ? n0 : 1) * sizeof *vrows);
    struct rows_refit rr = { refit, vrows, 0 };
    struct eval_refit er = { rows_features, &rr, refit ? refit->param_bytes : 0,
                             refit && refit->scale_rows ? rows_scale : NULL,
                             refit && refit->scale_extra ? rows_scale_extra : NULL };
    const struct eval_refit *erp = refit ? &er : NULL;
    size_t stride = (n0 + EVAL_MAX_ROWS - 1) / EVAL_MAX_ROWS, n = 0, weak = 0;
    /* Related rows carry vectors computed once; features refitted in every
     * fold (refit) would need them recomputed per fold from another
     * machine's windows: the training does not borrow rows then. */
    size_t n_tf0 = tf && tf->d == d && !refit ? tf->n : 0, n_tf = 0, n_tf_lab = 0;
    size_t rows = (n0 ? n0 : 1) / (stride ? stride : 1) + 1 + n_tf0;
    int32_t *lab = malloc(rows * sizeof *lab);
    uint32_t *fold = malloc(rows * sizeof *fold), ds = 0, *dom = NULL;
    float *X = malloc(rows * d * sizeof *X), *tw = NULL;
    float *S = NULL;
    uint32_t *dev = dr && dr->dev ? malloc(rows * sizeof *dev) : NULL;
    uint8_t *ref = dr && dr->dev ? calloc(rows, 1) : NULL, *rfree = dr && dr->dev ? calloc(rows, 1) : NULL;
    json_t *j = NULL, *base, *learner;

    if (!lab || !fold || !X || !vrows || (dr && dr->dev && (!dev || !ref || !rfree)))
        goto out;
    for (size_t i = 0; i < n0; i += stride ? stride : 1, n++) {
        vrows[n] = i;
        memcpy(X + n * d, X0 + i * d, d * sizeof *X);
        lab[n] = y[i] >= 0 && (unsigned)y[i] < in->n_classes ? y[i] : FEWSHOT_UNLABELED;
        if (lab[n] >= 0 && weight && weight[i] < 1.0f) {
            lab[n] = FEWSHOT_UNLABELED;         /* a rule's label: neither taught nor tested */
            weak++;
        }
        fold[n] = group[i] % EVAL_MAX_FOLDS;
        if (dev) {
            dev[n] = dr->dev[i];
            ref[n] = dr->ref[i];
            rfree[n] = dr->ref_free[i];
        }
    }
    rr.n = (uint32_t)n;
    /* The related rows after the target's, each one in every fold's
     * training set and never tested (models_eval_logo: domain > 0); the
     * same stride as the version's so that they do not outweigh it. */
    if (n_tf0 && (!(dom = calloc(rows, sizeof *dom)) || !(tw = malloc(rows * sizeof *tw))))
        goto out;
    for (size_t i = 0; n_tf0 && i < n; i++)
        tw[i] = 1.0f;
    for (size_t i = 0; i < n_tf0; i += stride ? stride : 1, n_tf++) {
        size_t r = n + n_tf;

        memcpy(X + r * d, tf->X + i * d, d * sizeof *X);
        lab[r] = tf->label[i];
        tw[r] = MODELS_TRANSFER_WEIGHT;
        dom[r] = tf->domain[i];
        fold[r] = 0;
        n_tf_lab += tf->label[i] >= 0;
        if (dev)
            dev[r] = dr->n_dev + tf->domain[i];     /* no reference: its domain's center */
    }
    if (in->n_classes < 2 || in->n_classes > FEWSHOT_MAX_CLASSES) {
        j = json_pack("{s:n,s:s}", "fewshot", "reason",
                      "needs 2..32 classes: with one there is nothing to tell apart");
        goto out;
    }
    fd = (struct fewshot_data){ X, (uint32_t)n, d, lab, NULL, NULL, in->n_classes, dev, ref, -1,
                                rfree, NULL, NULL, 0 };
    base = json_array();
    json_array_append_new(base, run_one(&fd, fold, EVAL_KNN, "3-NN", "the model's", in, erp));
    json_array_append_new(base, run_one(&fd, fold, EVAL_CENTROID, "centroid", "the model's", in, erp));
    if ((fs->id == FEATURESET_SPECTRAL || fs->id == FEATURESET_ENVELOPE) &&
        (S = simple_spectral(X, n, d, in->channel_count, fs->id == FEATURESET_ENVELOPE, &ds))) {
        sd = fd;
        sd.x = S;
        sd.n_feat = ds;
        json_array_append_new(base, run_one(&sd, fold, EVAL_KNN, "3-NN", "simple spectral", in, NULL));
    } else {
        json_array_append_new(base, json_pack("{s:s,s:s,s:n,s:s}", "method", "3-NN", "features",
                                              "simple spectral", "accuracy", "reason",
                                              "the model's feature set has no spectral bands"));
    }
    learner = run_one(&fd, fold, EVAL_FEWSHOT, "fewshot", "the model's", in, erp);
    j = json_pack("{s:s,s:i,s:I,s:I,s:I,s:O,s:o}", "cv",
                  "leave-one-group-out over the version's split groups (at most 10 folds)",
                  "folds", (int)(in->n_groups < EVAL_MAX_FOLDS ? in->n_groups : EVAL_MAX_FOLDS),
                  "windows_evaluated", (json_int_t)n, "windows_in_version", (json_int_t)n0,
                  "weak_labels_not_scored", (json_int_t)weak, "fewshot", learner,
                  "baselines", base);
    /* With transfer the model is the learner on the version and the related
     * rows: "fewshot" is that, and "transfer" the learner without them. */
    if (j && n_tf) {
        json_t *with;

        td = fd;
        td.n_rows = (uint32_t)(n + n_tf);
        td.weight = tw;
        td.domain = dom;
        with = run_one(&td, fold, EVAL_FEWSHOT, "fewshot", "the model's, with transfer", in, NULL);
        json_object_set_new(j, "transfer", transfer_json(tf, n_tf, n_tf_lab, with, learner));
        json_object_set_new(j, "fewshot", with);
    }
    json_decref(learner);
    if (j && dev)
        json_object_set_new(j, "device_reference",
                            json_string("the few-shot learner centres each device's windows on its "
                                        "reference windows, as the device's blob does; a held-out "
                                        "group keeps only its scheduled baselines as reference (a "
                                        "human's normal label is hidden with the fold)"));
    if (j && refit)
        json_object_set_new(j, "features_refit_per_fold",
                            json_string("the feature map is fitted in every fold on the windows "
                                        "assumed normal outside the fold, never on its test rows"));
out:
    free(vrows);
    free(lab);
    free(fold);
    free(S);
    free(X);
    free(dom);
    free(tw);
    free(dev);
    free(ref);
    free(rfree);
    return j;
}
