/* models_train.c - training one queued model from its dataset version.
 *
 * Training reads the version with ds_reader (one window at a time), turns
 * each window into the detector's feature vector (7 per channel), and:
 *   anomaly    - fits the Gaussian on the "normal" windows only;
 *   classifier - fits nearest centroids over the version's classes.
 * Evaluation is grouped k-fold cross-validation: folds are whole split
 * groups (device, asset, ...), so a machine is never scored by a model that
 * saw it.  Alarm metrics treat "score >= threshold" as an alert on a
 * snapshot and compare the implied load with the ISA-18.2 targets. */
#include "server/models/models_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/model.h"
#include "server/datasets/datasets.h"
#include "server/db/db.h"
#include "server/srv/srv.h"

#define MODELS_FOLDS 5
#define MODELS_MAX_WINDOWS 2000000      /* feature rows held in memory while training */
/* ISA-18.2 / EEMUA 191: about 6 alarms per operator-hour is very likely
 * acceptable, 12 the most that is manageable. */
#define ISA_TARGET_PER_HOUR 6.0
#define ISA_MAX_PER_HOUR 12.0

/* Every window of the version as a feature row, in version order. */
struct trainset {
    float *X;                   /* n x d */
    int *y;
    uint32_t *group;
    int64_t *snap;
    size_t n;
    uint16_t d;
};

static void trainset_free(struct trainset *t)
{
    free(t->X);
    free(t->y);
    free(t->group);
    free(t->snap);
}

static int load_features(struct ds_reader *rd, struct trainset *t)
{
    const struct ds_info *in = ds_reader_info(rd);
    struct ds_row row;
    const float *x;
    size_t cap;
    unsigned c;
    int rc;

    if (in->n_windows <= 0 || in->n_windows > MODELS_MAX_WINDOWS ||
        (size_t)in->channel_count * MODEL_NFEAT > MODEL_MAX_FEATURES)
        return SRV_EUNPROCESSABLE;
    cap = (size_t)in->n_windows;
    t->d = (uint16_t)(in->channel_count * MODEL_NFEAT);
    t->X = malloc(cap * t->d * sizeof *t->X);
    t->y = malloc(cap * sizeof *t->y);
    t->group = malloc(cap * sizeof *t->group);
    t->snap = malloc(cap * sizeof *t->snap);
    if (!t->X || !t->y || !t->group || !t->snap)
        return SRV_ENOMEM;
    while ((rc = ds_reader_next(rd, &row, &x)) == 1) {
        if (t->n == cap)
            return SRV_EINTERNAL;
        for (c = 0; c < in->channel_count; c++)
            models_window_features(x + (size_t)c * in->window_samples, in->window_samples,
                                   t->X + t->n * t->d + c * MODEL_NFEAT);
        t->y[t->n] = row.cls;
        t->group[t->n] = row.group;
        t->snap[t->n] = row.snapshot_id;
        t->n++;
    }
    return rc < 0 ? rc : SRV_OK;
}

/* Train on the rows selected by use[] (NULL: all). */
static int fit(const struct trainset *t, const unsigned char *use, int kind, const struct ds_info *in,
               struct model *m, const char **why)
{
    float *X = malloc(t->n * t->d * sizeof *X);
    int *y = malloc(t->n * sizeof *y), bad = -1, rc;
    size_t i, k = 0;

    if (!X || !y) {
        free(X);
        free(y);
        return SRV_ENOMEM;
    }
    for (i = 0; i < t->n; i++) {
        if (use && !use[i])
            continue;
        if (kind == MODEL_ANOMALY && t->y[i] != in->normal_class)
            continue;           /* the anomaly model never sees a failure */
        memcpy(X + k * t->d, t->X + i * t->d, t->d * sizeof *X);
        y[k++] = t->y[i];
    }
    if (kind == MODEL_ANOMALY)
        rc = models_train_anomaly(X, k, t->d, 0.99f, m);
    else
        rc = models_train_centroid(X, y, k, t->d, (uint16_t)in->n_classes,
                                   in->normal_class >= 0 ? (uint16_t)in->normal_class : MODEL_NO_CLASS,
                                   m, &bad);
    free(X);
    free(y);
    if (rc == MODEL_ETOOFEW)
        *why = kind == MODEL_ANOMALY ? "needs at least 2 windows labeled normal"
                                     : "a class has no training window";
    return rc == MODEL_OK ? SRV_OK : rc == MODEL_ENOMEM ? SRV_ENOMEM : SRV_EUNPROCESSABLE;
}

/* What cross-validation found, before it becomes the metrics JSON. */
struct cv {
    uint32_t folds;
    unsigned skipped;
    size_t tp, fp, fn, tn, correct, n_scored, snaps, snap_alarms;
};

/* Each fold's model scores the rows it did not see: scored[i] and
 * alarm[i] per row, correct counts the classifier's hits. */
static int cv_score(const struct trainset *t, int kind, const struct ds_info *in, struct cv *cv,
                    unsigned char *scored, unsigned char *alarm)
{
    unsigned char *use = malloc(t->n);
    struct model *m = malloc(sizeof *m);
    const char *why = NULL;
    size_t i;
    unsigned f;

    if (!use || !m) {
        free(use);
        free(m);
        return SRV_ENOMEM;
    }
    for (f = 0; cv->folds >= 2 && f < cv->folds; f++) {
        for (i = 0; i < t->n; i++)
            use[i] = t->group[i] % cv->folds != f;
        if (fit(t, use, kind, in, m, &why) != SRV_OK) {
            cv->skipped++;
            continue;
        }
        for (i = 0; i < t->n; i++) {
            const float *x = t->X + i * t->d;

            if (use[i])
                continue;
            scored[i] = 1;
            alarm[i] = model_score(m, x, t->d) >= m->threshold;
            if (kind == MODEL_CENTROID && model_classify(m, x, t->d, NULL) == t->y[i])
                cv->correct++;
        }
    }
    free(use);
    free(m);
    return SRV_OK;
}

/* Alarm confusion over the scored windows (positive: not normal), and
 * alerts per snapshot: a snapshot alarms when any of its windows does
 * (windows come ordered by snapshot). */
static void cv_count(const struct trainset *t, const struct ds_info *in, struct cv *cv,
                     const unsigned char *scored, const unsigned char *alarm)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        int pos = t->y[i] != in->normal_class;

        if (!scored[i])
            continue;
        cv->n_scored++;
        cv->tp += alarm[i] && pos;
        cv->fp += alarm[i] && !pos;
        cv->fn += !alarm[i] && pos;
        cv->tn += !alarm[i] && !pos;
    }
    for (i = 0; i < t->n; i++) {
        int any = 0, seen = 0;
        size_t k = i;

        for (; k < t->n && t->snap[k] == t->snap[i]; k++) {
            seen |= scored[k];
            any |= scored[k] && alarm[k];
        }
        cv->snaps += seen;
        cv->snap_alarms += any;
        i = k - 1;
    }
}

static json_t *cv_json(const struct cv *cv, int kind, const struct ds_info *in)
{
    double days = (double)(in->t_max_us - in->t_min_us) / 86400e6, per_dev_day, per_hour;
    json_t *j;

    if (days < 1)
        days = 1;
    per_dev_day = (double)cv->snap_alarms / ((in->n_devices ? in->n_devices : 1) * days);
    per_hour = (double)cv->snap_alarms / (days * 24);
    j = json_pack("{s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:I,s:f,s:f,s:f,s:f,s:b,s:s}",
                  "cv", "grouped k-fold over split groups", "folds", (int)cv->folds,
                  "folds_skipped", (int)cv->skipped, "windows_scored", (json_int_t)cv->n_scored,
                  "tp", (json_int_t)cv->tp, "fp", (json_int_t)cv->fp, "fn", (json_int_t)cv->fn,
                  "tn", (json_int_t)cv->tn,
                  "precision", cv->tp + cv->fp ? (double)cv->tp / (double)(cv->tp + cv->fp) : 0.0,
                  "recall", cv->tp + cv->fn ? (double)cv->tp / (double)(cv->tp + cv->fn) : 0.0,
                  "snapshots_scored", (json_int_t)cv->snaps,
                  "snapshots_alerting", (json_int_t)cv->snap_alarms,
                  "expected_alerts_per_device_per_day", per_dev_day,
                  "expected_alerts_per_operator_hour", per_hour,
                  "isa18_2_target_per_operator_hour", ISA_TARGET_PER_HOUR,
                  "isa18_2_max_manageable_per_operator_hour", ISA_MAX_PER_HOUR,
                  "meets_isa18_2_target", per_hour <= ISA_TARGET_PER_HOUR,
                  "alerts_basis", "snapshots in the version over the days they span, one operator");
    if (j && kind == MODEL_CENTROID)
        json_object_set_new(j, "accuracy", json_real(cv->n_scored ? (double)cv->correct /
                                                                    (double)cv->n_scored : 0));
    if (j && cv->folds < 2)
        json_object_set_new(j, "note", json_string("fewer than 2 groups: no cross-validation"));
    return j;
}

/* Grouped k-fold cross-validation as the metrics JSON; NULL out of memory. */
static json_t *evaluate(const struct trainset *t, int kind, const struct ds_info *in)
{
    unsigned char *alarm = calloc(t->n, 1), *scored = calloc(t->n, 1);
    struct cv cv = { .folds = in->n_groups < MODELS_FOLDS ? in->n_groups : MODELS_FOLDS };
    json_t *j = NULL;

    if (alarm && scored && cv_score(t, kind, in, &cv, scored, alarm) == SRV_OK) {
        cv_count(t, in, &cv, scored, alarm);
        j = cv_json(&cv, kind, in);
    }
    free(alarm);
    free(scored);
    return j;
}

/* The test vector: what the header's self test and the agent must
 * reproduce bit for bit (floats as exact hex strings too). */
static json_t *test_vector(const struct model *m)
{
    float x[MODEL_MAX_FEATURES], sc;
    json_t *xs = json_array();
    char sh[64];
    uint32_t i;

    model_test_input(m, x);
    for (i = 0; xs && i < m->n_features; i++)
        json_array_append_new(xs, json_real((double)x[i]));
    sc = model_score(m, x, m->n_features);
    snprintf(sh, sizeof sh, "%a", (double)sc);
    return json_pack("{s:o,s:f,s:s,s:i,s:f}", "input", xs, "score", (double)sc, "score_hex", sh,
                     "class", model_classify(m, x, m->n_features, NULL),
                     "threshold", (double)m->threshold);
}

/* What a finished training stores. */
struct trained {
    uint8_t *blob;
    size_t blob_len;
    char *header;
    json_t *metrics, *tv;
};

static void trained_release(struct trained *tr)
{
    free(tr->blob);
    free(tr->header);
    json_decref(tr->metrics);
    json_decref(tr->tv);
}

/* Identity, layout, signature and header of a fitted model. */
static int model_package(struct model *m, int64_t id, const struct ds_info *in,
                         struct trained *tr)
{
    const char *names[64], *units[64];
    uint8_t sk[64], pk[32];
    struct timespec now;
    size_t hlen, i;
    int err = SRV_EINTERNAL;

    for (i = 0; i < in->channel_count; i++) {
        names[i] = in->channel_names[i];
        units[i] = in->channel_units[i];
    }
    clock_gettime(CLOCK_REALTIME, &now);
    m->channel_count = (uint8_t)in->channel_count;
    m->version = (uint32_t)id;
    m->created_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    if (model_layout_digest(names, units, in->channel_count, m->layout) == MODEL_OK &&
        models_signing_key(sk, pk) == SRV_OK &&
        model_encode(m, sk, &tr->blob, &tr->blob_len) == MODEL_OK &&
        models_emit_header(m, "precursor_model", &tr->header, &hlen) == MODEL_OK)
        err = SRV_OK;
    sodium_memzero(sk, sizeof sk);
    return err;
}

/* The finished model's row: metrics and test vector as sorted compact
 * JSON, the blob as bytes. */
static int model_store(int64_t id, const char *mets, const char *tvs, const struct trained *tr)
{
    char idb[24];
    const char *vals[5] = { idb, mets, tvs, (const char *)tr->blob, tr->header };
    int lens[5] = { 0, 0, 0, (int)tr->blob_len, 0 }, fmts[5] = { 0, 0, 0, 1, 0 };

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    return models__exec(M_DONE, vals, lens, fmts, 0, NULL);
}

/* Can this version train this kind at all? */
static const char *version_unfit(int kind, const struct ds_info *in)
{
    if (kind == MODEL_ANOMALY && in->normal_class < 0)
        return "the anomaly model needs windows labeled normal";
    if (kind == MODEL_CENTROID && (in->n_classes < 2 || in->n_classes > MODEL_MAX_CLASSES))
        return "the classifier needs 2..32 classes";
    return NULL;
}

/* Features, cross-validation and the final fit on everything into tr;
 * *why says what failed when it is not the default. */
static int train_version(int64_t id, int kind, struct ds_reader *rd, struct trained *tr,
                         const char **why)
{
    const struct ds_info *in = ds_reader_info(rd);
    const char *unfit = version_unfit(kind, in);
    struct trainset t = { 0 };
    struct model *m = NULL;
    int err;

    if (unfit) {
        *why = unfit;
        return SRV_EUNPROCESSABLE;
    }
    if ((err = load_features(rd, &t)) != SRV_OK) {
        *why = err == SRV_EUNPROCESSABLE ? "version too large or too many channels for a model"
                                         : "reading the windows failed";
        goto out;
    }
    if (!(m = calloc(1, sizeof *m)) || !(tr->metrics = evaluate(&t, kind, in))) {
        err = SRV_ENOMEM;
        goto out;
    }
    if ((err = fit(&t, NULL, kind, in, m, why)) != SRV_OK)
        goto out;
    if ((err = model_package(m, id, in, tr)) != SRV_OK) {
        *why = "encoding the model failed";
        goto out;
    }
    if (!(tr->tv = test_vector(m))) {
        err = SRV_ENOMEM;
        goto out;
    }
    json_object_set_new(tr->metrics, "windows_trained", json_integer((json_int_t)t.n));
    json_object_set_new(tr->metrics, "n_features", json_integer(m->n_features));
    json_object_set_new(tr->metrics, "blob_bytes", json_integer((json_int_t)tr->blob_len));
out:
    trainset_free(&t);
    free(m);
    return err;
}

int models_train(int64_t id)
{
    char idb[24];
    const char *vals[1] = { idb }, *why = "training failed";
    char *mets = NULL, *tvs = NULL;
    PGresult *r = NULL;
    struct ds_reader *rd = NULL;
    struct trained tr = { 0 };
    int64_t dsid;
    int err, kind, version;

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = models__exec(M_CLAIM, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_ENOTFOUND;
    }
    dsid = db_int64(r, 0, "dataset_id");
    version = (int)db_int64(r, 0, "version");
    kind = strcmp(db_text_or(r, 0, "kind", ""), "anomaly") == 0 ? MODEL_ANOMALY : MODEL_CENTROID;
    PQclear(r);
    if ((err = ds_reader_open(dsid, version, &rd)) != SRV_OK)
        why = "dataset version unreadable";
    else if ((err = train_version(id, kind, rd, &tr, &why)) == SRV_OK &&
             (!(mets = json_dumps(tr.metrics, JSON_COMPACT | JSON_SORT_KEYS)) ||
              !(tvs = json_dumps(tr.tv, JSON_COMPACT | JSON_SORT_KEYS))))
        err = SRV_ENOMEM;
    ds_reader_free(rd);
    if (err == SRV_OK) {
        err = model_store(id, mets, tvs, &tr);
    } else {
        srv_log("warn", "models: model %lld: %s", (long long)id, why);
        models__mark_failed(id, why);
    }
    trained_release(&tr);
    free(mets);
    free(tvs);
    return err;
}
