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

json_t *models__evaluation(const float *X0, const int *y, const float *weight,
                           const uint32_t *group, size_t n0, uint16_t d,
                           const struct featureset_spec *fs, const struct ds_info *in,
                           const struct models_refit *refit)
{
    struct fewshot_data fd = { 0 }, sd;
    size_t *rows = malloc((n0 ? n0 : 1) * sizeof *rows);
    struct rows_refit rr = { refit, rows, 0 };
    struct eval_refit er = { rows_features, &rr, refit ? refit->param_bytes : 0 };
    const struct eval_refit *erp = refit ? &er : NULL;
    size_t stride = (n0 + EVAL_MAX_ROWS - 1) / EVAL_MAX_ROWS, n = 0, weak = 0;
    int32_t *lab = malloc(n0 * sizeof *lab);
    uint32_t *fold = malloc(n0 * sizeof *fold), ds = 0;
    float *X = malloc((n0 ? n0 : 1) / (stride ? stride : 1) * d * sizeof *X + d * sizeof *X);
    float *S = NULL;
    json_t *j = NULL, *base;

    if (!lab || !fold || !X || !rows)
        goto out;
    for (size_t i = 0; i < n0; i += stride ? stride : 1, n++) {
        rows[n] = i;
        memcpy(X + n * d, X0 + i * d, d * sizeof *X);
        lab[n] = y[i] >= 0 && (unsigned)y[i] < in->n_classes ? y[i] : FEWSHOT_UNLABELED;
        if (lab[n] >= 0 && weight && weight[i] < 1.0f) {
            lab[n] = FEWSHOT_UNLABELED;         /* a rule's label: neither taught nor tested */
            weak++;
        }
        fold[n] = group[i] % EVAL_MAX_FOLDS;
    }
    if (in->n_classes < 2 || in->n_classes > FEWSHOT_MAX_CLASSES) {
        j = json_pack("{s:n,s:s}", "fewshot", "reason",
                      "needs 2..32 classes: with one there is nothing to tell apart");
        goto out;
    }
    rr.n = (uint32_t)n;
    fd = (struct fewshot_data){ X, (uint32_t)n, d, lab, NULL, NULL, in->n_classes, NULL, NULL, -1 };
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
    j = json_pack("{s:s,s:i,s:I,s:I,s:I,s:o,s:o}", "cv",
                  "leave-one-group-out over the version's split groups (at most 10 folds)",
                  "folds", (int)(in->n_groups < EVAL_MAX_FOLDS ? in->n_groups : EVAL_MAX_FOLDS),
                  "windows_evaluated", (json_int_t)n, "windows_in_version", (json_int_t)n0,
                  "weak_labels_not_scored", (json_int_t)weak,
                  "fewshot", run_one(&fd, fold, EVAL_FEWSHOT, "fewshot", "the model's", in, erp),
                  "baselines", base);
    if (j && refit)
        json_object_set_new(j, "features_refit_per_fold",
                            json_string("the feature map is fitted in every fold on the windows "
                                        "assumed normal outside the fold, never on its test rows"));
out:
    free(rows);
    free(lab);
    free(fold);
    free(S);
    free(X);
    return j;
}
