/* models_train.c - training one queued model from its dataset version.
 *
 * Training reads the version with ds_reader (one window at a time), turns
 * each window into the feature vector of schema/featureset.h (the function
 * the agent runs on the device, so the model sees there what it saw here),
 * and:
 *   anomaly    - fits the Gaussian on part of the "normal" windows and
 *                calibrates the alarm threshold on the rest (held out by
 *                snapshot), to the alert budget at the device's window rate;
 *   classifier - fits nearest centroids over the version's classes.
 * Evaluation is grouped k-fold cross-validation: folds are whole split
 * groups (device, asset, ...), so a machine is never scored by a model that
 * saw it.  A metric is a number only when it was measured: a class that
 * lives in fewer than 2 groups, or no failure windows at all, makes the
 * metric null with a reason. */
#include "server/models/models_int.h"

#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/featureset.h"
#include "server/models/models_fewshot.h"
#include "server/datasets/ds_relations.h"
#include "schema/model.h"
#include "server/datasets/datasets.h"
#include "server/db/db.h"
#include "server/srv/srv.h"

#define MODELS_FOLDS 5
#define MODELS_MAX_WINDOWS 2000000      /* feature rows held in memory while training */
#define FEWSHOT_SERVER_MAX_LABELED 2000 /* labeled rows the few-shot metric compares pairwise */
#define WEAK_LABEL_WEIGHT 0.5f          /* a rule's label in the few-shot learner, a human's is 1 */
/* ISA-18.2 / EEMUA 191: about 6 alarms per operator-hour is very likely
 * acceptable, 12 the most that is manageable.  The anomaly threshold is
 * calibrated to one device's share of the fleet's alarm budget
 * (models_budget.c, ISA_TARGET_PER_HOUR by default). */
#define ISA_TARGET_PER_HOUR 6.0
#define ISA_MAX_PER_HOUR 12.0
#define CAL_SHARE 4                     /* 1 snapshot in CAL_SHARE calibrates, the rest fit */
/* The threshold aims at this share of the device's budget: a quantile from
 * a few hundred held-out windows is itself uncertain, and a model that
 * performs as measured must not sit at the edge of its budget (promotion
 * and rollback hold it to the whole budget). */
#define CAL_MARGIN 0.5
/* The relations set keeps every window's samples while it fits its map
 * (the features are a function of the map): at most this many bytes. */
#define RELATIONS_MAX_RAW_BYTES ((size_t)512 << 20)
/* The extra scale rows of the map fitted last (fewshot_data.scale_x): the
 * vectors of the unlabeled candidates it took. */
struct pool_scale {
    float *x;
    size_t n;
};

/* Every window of the version as a feature row, in version order. */
struct trainset {
    float *X;                   /* n x d */
    int *y;
    uint32_t *group;
    int64_t *snap;
    float *weight;              /* label weight: 1 human, WEAK_LABEL_WEIGHT a rule's or a vote's */
    size_t n;
    /* Rows borrowed from related equipment (few-shot, models_transfer.c)
     * follow the version's in X, weight and tf_label: rows n .. n + n_tf - 1,
     * in domains tf_domain (1..); they are taught in every fit, never
     * scored.  Everything else reads rows 0 .. n - 1 only. */
    size_t n_tf;
    int32_t *tf_label;
    uint32_t *tf_domain;
    uint16_t d;
    struct featureset_spec fs;
    double target;              /* allowed false-alarm fraction per normal window */
    double device_budget_per_hour;  /* one device's share of the alarm budget */
    double per_operator_hour;       /* the budget the share comes from */
    /* set "relations": every window's samples (n x channels x window,
     * channel-major), its channel means (n x channels: what the map is
     * fitted on), the rows assumed normal (labeled normal by a human, or
     * from a scheduled baseline snapshot and not labeled otherwise) and the
     * map X was computed with */
    float *raw, *means;
    unsigned char *normal;
    int normal_class;           /* the version's, or -1 */
    uint32_t channels;
    struct relations_fit *rel;
    /* the rows the map was last fitted on (ds_relations_fit_trimmed): the
     * few-shot learner measures its per-feature scale on them, normal
     * operation's spread of the residuals; rel_fold_fit: the same for the
     * evaluation's fold being refitted */
    unsigned char *rel_fit, *rel_fold_fit;
    size_t rel_fit_rows;
    /* The relations set's unlabeled candidates: windows of the version's
     * devices' scheduled baseline snapshots that are not in the version
     * (relations_load_pool).  Their means follow the version's in means
     * (rows n .. n + n_pool - 1, as do rel_fit and rel_fold_fit); they are
     * candidates of every trimmed refit and, when the map takes them, scale
     * rows of the learner (pool_fit: the final map's, pool_fold: the fold
     * fitted last), never rows of the learner nor of the evaluation. */
    float *pool_raw;
    size_t n_pool, pool_snapshots, pool_skipped;
    struct pool_scale pool_fit, *pool_fold;
    /* Each device its own reference (few-shot): per version row its
     * device (index into dev_names), whether it is a reference window of
     * that device (labeled normal by a human, or from a scheduled baseline
     * snapshot and labeled normal by any source: the rows the relations map
     * assumes normal too) and whether it is from a scheduled baseline
     * (assumed normal without anyone's label: a held-out fold may still
     * centre on it). */
    uint32_t *dev;
    unsigned char *ref, *sched;
    char (*dev_names)[65];
    uint32_t n_dev;
    /* set "envelope": how each row's machine turns (index into km->kins;
     * t->fs.kin is km's modal one, the model's blob's) */
    const struct models_kinmap *km;
    uint16_t *kin_idx;
};

/* What the model does on one device of the version: its reference
 * windows, the blob made for it (none without a reference: it runs the
 * model's own center) and the server's prediction for its windows. */
struct device_ref {
    char id[65];
    uint32_t ref_windows;
    uint8_t *blob;
    size_t blob_len;
    json_t *pred;
};

static void trainset_free(struct trainset *t)
{
    free(t->X);
    free(t->y);
    free(t->group);
    free(t->snap);
    free(t->weight);
    free(t->raw);
    free(t->means);
    free(t->normal);
    free(t->rel);
    free(t->rel_fit);
    free(t->rel_fold_fit);
    free(t->tf_label);
    free(t->tf_domain);
    free(t->dev);
    free(t->ref);
    free(t->sched);
    free(t->dev_names);
    free(t->kin_idx);
    free(t->pool_raw);
    free(t->pool_fit.x);
    if (t->pool_fold)
        free(t->pool_fold->x);
    free(t->pool_fold);
}

/* Append the transferred rows of tf behind the version's. */
static int trainset_add_transfer(struct trainset *t, const struct models_transfer *tf)
{
    size_t N = t->n + tf->n;
    float *X, *w;

    if (tf->n == 0)
        return SRV_OK;
    if (tf->d != t->d)
        return SRV_EINTERNAL;
    if (!(X = realloc(t->X, N * t->d * sizeof *X)))
        return SRV_ENOMEM;
    t->X = X;
    if (!(w = realloc(t->weight, N * sizeof *w)))
        return SRV_ENOMEM;
    t->weight = w;
    if (!(t->tf_label = malloc(tf->n * sizeof *t->tf_label)) ||
        !(t->tf_domain = malloc(tf->n * sizeof *t->tf_domain)))
        return SRV_ENOMEM;
    memcpy(t->X + t->n * t->d, tf->X, tf->n * t->d * sizeof *X);
    for (size_t i = 0; i < tf->n; i++)
        t->weight[t->n + i] = MODELS_TRANSFER_WEIGHT;
    memcpy(t->tf_label, tf->label, tf->n * sizeof *t->tf_label);
    memcpy(t->tf_domain, tf->domain, tf->n * sizeof *t->tf_domain);
    t->n_tf = tf->n;
    return SRV_OK;
}

/* Device windows per hour under fs. */
static double windows_per_hour(const struct featureset_spec *fs)
{
    return 3600.0 * (double)fs->sample_rate / (double)fs->hop;
}

static int trainset_alloc(struct trainset *t, size_t cap)
{
    t->X = malloc(cap * t->d * sizeof *t->X);
    t->y = malloc(cap * sizeof *t->y);
    t->group = malloc(cap * sizeof *t->group);
    t->snap = malloc(cap * sizeof *t->snap);
    t->weight = malloc(cap * sizeof *t->weight);
    return t->X && t->y && t->group && t->snap && t->weight ? SRV_OK : SRV_ENOMEM;
}

/* The version's windows for the relations set: their samples and channel
 * means; the vectors come once the map is fitted (relations_refit).  It
 * takes the version's own windows (a power of two is not needed), hop =
 * window as the other sets' training. */
static int load_relations(struct ds_reader *rd, struct ds_info *in, struct trainset *t)
{
    struct ds_row row;
    const float *x;
    uint32_t C = in->channel_count, W = in->window_samples;
    size_t cap = in->n_windows > 0 ? (size_t)in->n_windows : 0, per_row = (size_t)C * W;
    int rc = SRV_EUNPROCESSABLE;

    t->fs = (struct featureset_spec){ FEATURESET_RELATIONS, FEATURESET_RELATIONS_VERSION, W, W,
                                      (float)in->sample_rate, FEATURESET_NO_KIN, NULL };
    t->channels = C;
    t->normal_class = in->normal_class;
    if (cap == 0 || cap > MODELS_MAX_WINDOWS || C < 2 || C > RELATIONS_MAX_CH ||
        W < FEATURESET_MIN_WINDOW || W > FEATURESET_MAX_WINDOW || !(in->sample_rate > 0) ||
        cap * per_row * sizeof(float) > RELATIONS_MAX_RAW_BYTES)
        goto out;
    t->target = CAL_MARGIN * t->device_budget_per_hour / windows_per_hour(&t->fs);
    t->d = (uint16_t)featureset_count(t->fs.id, t->fs.version, C);
    t->raw = malloc(cap * per_row * sizeof *t->raw);
    t->means = malloc(cap * C * sizeof *t->means);
    t->normal = calloc(cap, 1);
    t->rel = calloc(1, sizeof *t->rel);
    t->rel_fit = calloc(cap, 1);
    t->rel_fold_fit = calloc(cap, 1);
    rc = SRV_ENOMEM;
    if (trainset_alloc(t, cap) != SRV_OK || !t->raw || !t->means || !t->normal || !t->rel ||
        !t->rel_fit || !t->rel_fold_fit)
        goto out;
    while ((rc = ds_reader_next(rd, &row, &x)) == 1) {
        rc = SRV_EINTERNAL;
        if (t->n == cap)
            goto out;
        memcpy(t->raw + t->n * per_row, x, per_row * sizeof *x);
        /* a channel with no finite sample: no mean, and no fit row */
        ds_relations_window_means(x, C, W, t->means + t->n * C);
        t->y[t->n] = row.cls;
        t->group[t->n] = row.group;
        t->snap[t->n] = row.snapshot_id;
        t->weight[t->n] = strcmp(row.source, "rule") == 0 || strcmp(row.source, "vote") == 0
                              ? WEAK_LABEL_WEIGHT : 1.0f;
        /* normal by a human's label; the scheduled baseline snapshots are
         * added by relations_mark_scheduled */
        t->normal[t->n] = in->normal_class >= 0 && row.cls == in->normal_class &&
                          t->weight[t->n] == 1.0f;
        t->n++;
    }
    rc = rc < 0 ? rc : SRV_OK;
out:
    return rc;
}

/* Statement st on the dataset version in: its dataset id as $1, its
 * number as $2 (what the per-version statements below take). */
static int exec_version(enum models_stmt st, const struct ds_info *in, PGresult **r)
{
    char db[24], vb[16];
    const char *vals[2] = { db, vb };

    snprintf(db, sizeof db, "%lld", (long long)in->dataset_id);
    snprintf(vb, sizeof vb, "%d", in->version);
    return models__exec(st, vals, NULL, NULL, 0, r);
}

/* Windows of the agents' scheduled baseline snapshots (detector
 * "schedule") whose label in the version is the normal class, from any
 * source (a rule's too: a baseline taken on a schedule is normal unless
 * someone said otherwise): assumed normal.  A version holds labeled
 * windows only, so an unlabeled baseline snapshot is not among them. */
static int relations_mark_scheduled(const struct ds_info *in, struct trainset *t)
{
    PGresult *r = NULL;
    int64_t *ids;
    size_t k;

    if (exec_version(M_SCHEDULED, in, &r) != SRV_OK)
        return SRV_EINTERNAL;
    k = (size_t)PQntuples(r);
    ids = malloc((k ? k : 1) * sizeof *ids);
    if (!ids) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    for (size_t i = 0; i < k; i++)
        ids[i] = db_int64(r, (int)i, "snapshot_id");
    PQclear(r);
    for (size_t i = 0; i < t->n; i++)
        for (size_t j = 0; j < k; j++)
            if (t->snap[i] == ids[j] && (t->y[i] < 0 || t->y[i] == in->normal_class)) {
                t->normal[i] = 1;
                break;
            }
    free(ids);
    return SRV_OK;
}

/* The relations set's unlabeled candidates (struct trainset): the windows
 * of the version's devices' scheduled baseline snapshots that it does not
 * hold, received up to its freeze (ds_unlabeled_read: its caps and
 * choice).  A version holds labeled windows only: the many windows nobody
 * labeled reach the map this way. */
static int relations_load_pool(const struct ds_info *in, struct trainset *t)
{
    struct ds_unlabeled u;
    size_t C = t->channels, N;
    float *means;
    unsigned char *f1, *f2;
    int err;

    if ((err = ds_unlabeled_read(in, 1, &u)) != SRV_OK)
        return err;
    t->pool_raw = u.raw;            /* the trainset's from here */
    u.raw = NULL;
    t->n_pool = u.n;
    t->pool_snapshots = u.snapshots;
    t->pool_skipped = u.skipped;
    /* the candidates' means behind the version's, and room for them in
     * the fit masks */
    N = t->n + t->n_pool;
    err = SRV_ENOMEM;
    if (!(means = realloc(t->means, (N ? N : 1) * C * sizeof *means)))
        goto out;
    t->means = means;
    if (t->n_pool)
        memcpy(t->means + t->n * C, u.means, t->n_pool * C * sizeof *means);
    if (!(f1 = realloc(t->rel_fit, N ? N : 1)))
        goto out;
    t->rel_fit = f1;
    if (!(f2 = realloc(t->rel_fold_fit, N ? N : 1)))
        goto out;
    t->rel_fold_fit = f2;
    memset(t->rel_fit, 0, N);
    memset(t->rel_fold_fit, 0, N);
    if (!(t->pool_fit.x = malloc((t->n_pool ? t->n_pool : 1) * t->d * sizeof(float))) ||
        !(t->pool_fold = calloc(1, sizeof *t->pool_fold)) ||
        !(t->pool_fold->x = malloc((t->n_pool ? t->n_pool : 1) * t->d * sizeof(float))))
        goto out;
    err = SRV_OK;
out:
    ds_unlabeled_free(&u);
    return err;
}

static int cmp_snap_dev(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Each row's device and whether it is one of that device's reference
 * windows (struct trainset).  A device id is 1..64 bytes (devices.id). */
static int load_devices(const struct ds_info *in, struct trainset *t)
{
    PGresult *r = NULL;
    struct snapdev { int64_t snap; uint32_t dev; int sched; } *sd = NULL;
    size_t k, nd = 0;
    int rc = SRV_ENOMEM;

    if (exec_version(M_SNAP_DEVICES, in, &r) != SRV_OK)
        return SRV_EINTERNAL;
    k = (size_t)PQntuples(r);
    sd = malloc((k ? k : 1) * sizeof *sd);
    t->dev_names = malloc((k ? k : 1) * sizeof *t->dev_names);
    t->dev = malloc((t->n ? t->n : 1) * sizeof *t->dev);
    t->ref = calloc(t->n ? t->n : 1, 1);
    t->sched = calloc(t->n ? t->n : 1, 1);
    if (!sd || !t->dev_names || !t->dev || !t->ref || !t->sched)
        goto out;
    for (size_t i = 0; i < k; i++)
        snprintf(t->dev_names[i], sizeof t->dev_names[i], "%s", db_text_or(r, (int)i, "device_id", ""));
    qsort(t->dev_names, k, sizeof *t->dev_names, cmp_name);
    for (size_t i = 0; i < k; i++)
        if (i == 0 || strcmp(t->dev_names[i], t->dev_names[nd - 1]) != 0)
            memmove(t->dev_names[nd++], t->dev_names[i], sizeof *t->dev_names);
    for (size_t i = 0; i < k; i++) {
        const char *id = db_text_or(r, (int)i, "device_id", "");
        char (*hit)[65] = bsearch(id, t->dev_names, nd, sizeof *t->dev_names, cmp_name);

        sd[i] = (struct snapdev){ db_int64(r, (int)i, "snapshot_id"),
                                  hit ? (uint32_t)(hit - t->dev_names) : 0,
                                  db_bool(r, (int)i, "scheduled") };
    }
    t->n_dev = (uint32_t)nd;
    rc = SRV_EINTERNAL;
    for (size_t i = 0; i < t->n; i++) {
        const struct snapdev *h = bsearch(&t->snap[i], sd, k, sizeof *sd, cmp_snap_dev);
        int normal = in->normal_class >= 0 && t->y[i] == in->normal_class;

        if (!h)
            goto out;           /* a window of no snapshot: the version changed under us */
        t->dev[i] = h->dev;
        t->sched[i] = (unsigned char)h->sched;
        t->ref[i] = (unsigned char)(normal && (t->weight[i] == 1.0f || h->sched));
    }
    rc = SRV_OK;
out:
    PQclear(r);
    free(sd);
    return rc;
}

/* The fewest windows the map is fitted on: a correlation of C channels
 * from fewer than C + 1 rows has no residual subspace to speak of, and ten
 * is the least a principal subspace is worth estimating from. */
static size_t relations_min_fit(uint32_t channels)
{
    return channels + 1u > 10u ? channels + 1u : 10u;
}

/* Fit the map on the rows assumed normal where fit_row (NULL: all) allows,
 * and the rows there nobody labeled a fault that the first map finds
 * normal (ds_relations_fit_trimmed), into *fit; the vectors of rows[0..n)
 * (NULL: every row, n = t->n) into X.  MODEL_ETOOFEW when fewer than
 * relations_min_fit rows are assumed normal.  *fit_rows (may be NULL) and
 * fit_mask[t->n] (may be NULL): how many rows the map's final fit took,
 * and which. */
static int relations_refit(const struct trainset *t, const unsigned char *fit_row, const size_t *rows,
                           size_t n, struct relations_fit *fit, size_t *fit_rows, float *X,
                           unsigned char *fit_mask, struct pool_scale *pool)
{
    size_t N = t->n + t->n_pool;
    unsigned char *use = malloc(N ? N : 1), *cand = malloc(N ? N : 1), *fault = malloc(N ? N : 1);
    size_t nfit = 0, ns;
    uint32_t n_final = 0;
    float *scratch;
    struct featureset_spec fs = t->fs;
    int rc;

    if (!use || !cand || !fault) {
        free(use);
        free(cand);
        free(fault);
        return MODEL_ENOMEM;
    }
    for (size_t i = 0; i < t->n; i++) {
        int ok = t->normal[i] && (!fit_row || fit_row[i]);

        for (uint32_t c = 0; ok && c < t->channels; c++)
            ok = isfinite(t->means[i * t->channels + c]);
        use[i] = (unsigned char)ok;
        nfit += (size_t)ok;
        cand[i] = (unsigned char)((!fit_row || fit_row[i]) &&
                                  (t->y[i] < 0 || t->y[i] == t->normal_class));
        /* the fold's fault labels guard the refit (never a test row's) */
        fault[i] = (unsigned char)((!fit_row || fit_row[i]) && t->y[i] >= 0 &&
                                   t->y[i] != t->normal_class);
    }
    /* the unlabeled windows outside the version: candidates only, in every
     * fold (no test row is one of them) */
    for (size_t i = t->n; i < N; i++) {
        use[i] = 0;
        cand[i] = 1;
        fault[i] = 0;
    }
    if (fit_rows)
        *fit_rows = nfit;
    if (nfit < relations_min_fit(t->channels)) {
        free(use);
        free(cand);
        free(fault);
        return MODEL_ETOOFEW;
    }
    rc = ds_relations_fit_trimmed(t->means, (uint32_t)N, t->channels, use, cand, fault,
                                  RELATIONS_VAR_KEEP, fit, &n_final, fit_mask);
    if (rc == MODEL_OK && fit_rows)
        *fit_rows = n_final;
    free(use);
    free(cand);
    free(fault);
    if (rc != MODEL_OK)
        return rc;
    fs.rel = &fit->map;
    ns = featureset_scratch_floats(&fs);
    if (!(scratch = malloc((ns ? ns : 1) * sizeof *scratch)))
        return MODEL_ENOMEM;
    for (size_t k = 0; k < (rows ? n : t->n); k++) {
        size_t i = rows ? rows[k] : k;

        if (featureset_compute(&fs, t->raw + i * t->channels * t->fs.window, t->fs.window,
                               t->channels, scratch, ns, X + k * t->d) != FEATURESET_OK) {
            free(scratch);
            return MODEL_EINVAL;
        }
    }
    /* the candidates outside the version the map took: the learner's scale
     * reads them too */
    if (pool) {
        pool->n = 0;
        for (size_t k = 0; fit_mask && k < t->n_pool; k++) {
            if (!fit_mask[t->n + k])
                continue;
            if (featureset_compute(&fs, t->pool_raw + k * t->channels * t->fs.window, t->fs.window,
                                   t->channels, scratch, ns, pool->x + pool->n * t->d) !=
                FEATURESET_OK) {
                free(scratch);
                return MODEL_EINVAL;
            }
            pool->n++;
        }
    }
    free(scratch);
    return MODEL_OK;
}

/* The evaluation's per-fold features (models_refit): the map fitted on the
 * rows assumed normal outside fold `held`. */
static int relations_eval_features(void *ctx, const size_t *rows, uint32_t n, uint32_t held,
                                   float *x)
{
    const struct trainset *t = ctx;
    unsigned char *fit_row = malloc(t->n ? t->n : 1);
    struct relations_fit *fit = malloc(sizeof *fit);
    int rc = MODEL_ENOMEM;

    if (fit_row && fit) {
        for (size_t i = 0; i < t->n; i++)
            fit_row[i] = t->group[i] % MODELS_EVAL_FOLDS != held;
        rc = relations_refit(t, fit_row, rows, n, fit, NULL, x, t->rel_fold_fit, t->pool_fold);
        if (rc == MODEL_EINVAL)
            rc = MODEL_ETOOFEW;         /* this fold untested, the others still are */
    }
    free(fit_row);
    free(fit);
    return rc;
}

/* The learner's scale rows of the fold relations_eval_features has just
 * fitted (models_refit.scale_rows): the rows its map was fitted on. */
static int relations_eval_scale(void *ctx, const size_t *rows, uint32_t n, uint32_t held,
                                uint8_t *out)
{
    const struct trainset *t = ctx;

    for (uint32_t k = 0; k < n; k++)
        out[k] = t->rel_fold_fit[rows[k]];
    return MODEL_OK;
}

/* The extra scale rows of that fold (models_refit.scale_extra). */
static int relations_eval_scale_extra(void *ctx, uint32_t held, const float **x, uint32_t *n)
{
    const struct trainset *t = ctx;

    (void)held;
    *x = t->pool_fold && t->pool_fold->n ? t->pool_fold->x : NULL;
    *n = t->pool_fold ? (uint32_t)t->pool_fold->n : 0u;
    return MODEL_OK;
}

/* The device bytes of the relations set's map (0 for the other sets). */
static uint32_t relations_map_bytes(const struct trainset *t)
{
    return t->rel ? ds_relations_bytes(&t->rel->map) : 0u;
}

static int load_features(struct ds_reader *rd, uint16_t set, const struct models_kinmap *km,
                         struct trainset *t)
{
    struct ds_info *in = malloc(sizeof *in);
    struct ds_row row;
    const float *x;
    size_t cap;
    unsigned per;
    int rc = SRV_EUNPROCESSABLE;

    if (!in)
        return SRV_ENOMEM;
    /* the version's summary with the feature set this kind trains on */
    *in = *ds_reader_info(rd);
    in->feature_set = set;
    in->feature_kin = set == FEATURESET_ENVELOPE ? km->kins[km->modal]
                                                 : (struct featureset_kin)FEATURESET_NO_KIN;
    if (set == FEATURESET_RELATIONS) {
        rc = load_relations(rd, in, t);
        goto out;
    }
    ds_feature_spec(in, &t->fs);
    per = featureset_per_channel(t->fs.id, t->fs.version);
    if (in->n_windows <= 0 || in->n_windows > MODELS_MAX_WINDOWS ||
        (size_t)in->channel_count * per > MODEL_MAX_FEATURES ||
        featureset_unsupported(&t->fs, in->channel_count))
        goto out;
    t->target = CAL_MARGIN * t->device_budget_per_hour / windows_per_hour(&t->fs);
    cap = (size_t)in->n_windows;
    t->d = (uint16_t)(in->channel_count * per);
    t->X = malloc(cap * t->d * sizeof *t->X);
    t->y = malloc(cap * sizeof *t->y);
    t->group = malloc(cap * sizeof *t->group);
    t->snap = malloc(cap * sizeof *t->snap);
    t->weight = malloc(cap * sizeof *t->weight);
    if (set == FEATURESET_ENVELOPE) {
        t->km = km;
        t->kin_idx = malloc(cap * sizeof *t->kin_idx);
    }
    rc = SRV_ENOMEM;
    if (!t->X || !t->y || !t->group || !t->snap || !t->weight ||
        (set == FEATURESET_ENVELOPE && !t->kin_idx))
        goto out;
    while ((rc = ds_reader_next(rd, &row, &x)) == 1) {
        rc = SRV_EINTERNAL;
        if (t->n == cap)
            goto out;
        /* each window read at its own machine's defect frequencies */
        if (set == FEATURESET_ENVELOPE) {
            const struct featureset_kin *k = models__kinmap_find(km, row.snapshot_id);

            if (!k)
                goto out;       /* a snapshot the taxonomy query did not see: the version moved */
            in->feature_kin = *k;
            t->kin_idx[t->n] = (uint16_t)(k - km->kins);
        }
        if (ds_window_features(in, x, t->X + t->n * t->d) != DS_OK)
            goto out;
        t->y[t->n] = row.cls;
        t->group[t->n] = row.group;
        t->snap[t->n] = row.snapshot_id;
        /* the operators' rules and rule votes are weak labels: evidence for
         * a class, never its founding examples (models_fewshot.h) */
        t->weight[t->n] = strcmp(row.source, "rule") == 0 || strcmp(row.source, "vote") == 0
                              ? WEAK_LABEL_WEIGHT : 1.0f;
        t->n++;
    }
    rc = rc < 0 ? rc : SRV_OK;
out:
    free(in);
    return rc;
}

/* How the version's machines turn, from the taxonomy (models_int.h). */
int models__version_kinmap(const struct ds_info *in, struct models_kinmap *km, const char **why)
{
    static _Thread_local char kin_why[192];
    PGresult *r = NULL;
    size_t count[MODELS_MAX_KINS] = { 0 }, n;
    int ok = 0;

    memset(km, 0, sizeof *km);
    *why = "reading the taxonomy's kinematics failed";
    if (exec_version(M_KINEMATICS, in, &r) != SRV_OK)
        return 0;
    n = (size_t)PQntuples(r);
    km->snap = malloc((n ? n : 1) * sizeof *km->snap);
    km->idx = malloc((n ? n : 1) * sizeof *km->idx);
    if (!km->snap || !km->idx) {
        *why = "out of memory reading the taxonomy's kinematics";
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct featureset_kin k;
        unsigned j;

        if (db_isnull(r, (int)i, "shaft_hz")) {
            snprintf(kin_why, sizeof kin_why, "the taxonomy has no shaft speed for device %.64s",
                     db_text_or(r, (int)i, "device_id", "?"));
            *why = kin_why;
            goto out;
        }
        /* without a bearing the set still reads orders of the shaft speed
         * (featureset.c: its defect energies are 0) */
        if (db_isnull(r, (int)i, "balls") || db_isnull(r, (int)i, "ball_mm") ||
            db_isnull(r, (int)i, "pitch_mm"))
            k = (struct featureset_kin){ (float)db_double(r, (int)i, "shaft_hz"), 0u, 0.0f, 0.0f,
                                         0.0f };
        else
            k = (struct featureset_kin){ (float)db_double(r, (int)i, "shaft_hz"),
                                         (uint32_t)db_int64(r, (int)i, "balls"),
                                         (float)db_double(r, (int)i, "ball_mm"),
                                         (float)db_double(r, (int)i, "pitch_mm"),
                                         db_isnull(r, (int)i, "contact_deg")
                                             ? 0.0f
                                             : (float)db_double(r, (int)i, "contact_deg") };
        for (j = 0; j < km->n_kins && memcmp(&km->kins[j], &k, sizeof k) != 0; j++)
            ;
        if (j == km->n_kins) {
            if (j == MODELS_MAX_KINS) {
                *why = "the version's machines turn in more than 256 different ways";
                goto out;
            }
            km->kins[km->n_kins++] = k;
        }
        km->snap[i] = db_int64(r, (int)i, "snapshot_id");
        km->idx[i] = (uint16_t)j;
        count[j]++;
    }
    if (n == 0) {
        *why = "the version has no snapshot";
        goto out;
    }
    km->n = n;
    for (unsigned j = 1; j < km->n_kins; j++)
        if (count[j] > count[km->modal])
            km->modal = j;
    *why = NULL;
    ok = 1;
out:
    PQclear(r);
    return ok;
}

static int cmp_snap_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

const struct featureset_kin *models__kinmap_find(const struct models_kinmap *km, int64_t snapshot_id)
{
    const int64_t *hit = km->n ? bsearch(&snapshot_id, km->snap, km->n, sizeof *km->snap,
                                         cmp_snap_id)
                               : NULL;

    return hit ? &km->kins[km->idx[hit - km->snap]] : NULL;
}

void models__kinmap_release(struct models_kinmap *km)
{
    free(km->snap);
    free(km->idx);
    km->snap = NULL;
    km->idx = NULL;
    km->n = 0;
}

/* The feature set a kind trains on: "relations" when the request named it;
 * otherwise the few-shot learner reads spectra
 * where the window allows a spectrum (64 samples or more; one that is not a
 * power of two zero-padded to the next, one over 65536 samples read on its
 * first 65536: ds_spectral_window), with
 * the bearing defect energies when the taxonomy says how the machines turn
 * (set "envelope"), else without (set "spectral", *why says what was
 * missing); the other kinds the moments set their blobs and the export's F
 * were made with. */
static uint16_t kind_feature_set(int kind, const char *requested, const struct ds_info *in,
                                 struct models_kinmap *km, const char **why)
{
    uint32_t w = ds_spectral_window(in->window_samples);
    struct featureset_spec fs = { FEATURESET_ENVELOPE, FEATURESET_ENVELOPE_VERSION, w, w,
                                  (float)in->sample_rate, FEATURESET_NO_KIN, NULL };

    *why = NULL;
    /* asked for by name (POST /api/v1/models "feature_set", fewshot only) */
    if (requested && strcmp(requested, "relations") == 0)
        return FEATURESET_RELATIONS;
    if (kind != MODEL_FEWSHOT)
        return FEATURESET_STATS;
    if (w < 64) {
        *why = "the version's windows are shorter than 64 samples: too short for a spectrum, "
               "the moments set instead";
        return FEATURESET_STATS;
    }
    if (!models__version_kinmap(in, km, why)) {
        models__kinmap_release(km);
        return FEATURESET_SPECTRAL;
    }
    /* every machine's defect frequencies must be readable at this rate */
    for (unsigned j = 0; j < km->n_kins; j++) {
        fs.kin = km->kins[j];
        if (featureset_unsupported(&fs, in->channel_count)) {
            *why = featureset_unsupported(&fs, in->channel_count);
            models__kinmap_release(km);
            return FEATURESET_SPECTRAL;
        }
    }
    return FEATURESET_ENVELOPE;
}

/* Calibration windows: whole snapshots, picked by a mix of their id, so a
 * window is never calibrated against its own neighbours. */
static int held_for_calibration(int64_t snapshot_id)
{
    uint64_t h = (uint64_t)snapshot_id * UINT64_C(0x9E3779B97F4A7C15);
    return (h >> 32) % CAL_SHARE == 0;
}

/* How the anomaly threshold was calibrated (a fit on all rows). */
struct calib {
    size_t fit, held_out, alarms;
};

/* Gaussian on the fitting normals, threshold on the held-out ones. */
static int fit_anomaly(const struct trainset *t, const unsigned char *use, const struct ds_info *in,
                       struct model *m, struct calib *cal)
{
    float *F = malloc(t->n * t->d * sizeof *F), *C = malloc(t->n * t->d * sizeof *C);
    size_t i, nf = 0, nc = 0, alarms = 0;
    int rc;

    if (!F || !C) {
        free(F);
        free(C);
        return MODEL_ENOMEM;
    }
    for (i = 0; i < t->n; i++) {
        if ((use && !use[i]) || t->y[i] != in->normal_class)
            continue;           /* the anomaly model never sees a failure */
        if (held_for_calibration(t->snap[i]))
            memcpy(C + nc++ * t->d, t->X + i * t->d, t->d * sizeof *C);
        else
            memcpy(F + nf++ * t->d, t->X + i * t->d, t->d * sizeof *F);
    }
    m->features = t->fs;
    rc = nc < 1 ? MODEL_ETOOFEW : models_train_anomaly(F, nf, t->d, 0.99f, m);
    if (rc == MODEL_OK)
        rc = models_calibrate_threshold(m, C, nc, t->target, &alarms);
    if (rc == MODEL_OK && cal) {
        cal->fit = nf;
        cal->held_out = nc;
        cal->alarms = alarms;
    }
    free(F);
    free(C);
    return rc;
}

/* Nearest prototypes from the rows selected by use[] (NULL: all) as
 * labeled and every other row as unlabeled data (its label hidden), within
 * the device's flash budget for parameters; *protos gets the prototypes per
 * class it took.  With the version's devices (t->dev) every row is centred
 * on its device's reference windows: those selected by use[], and of the
 * rows outside it (a held-out fold) only the scheduled baselines, which are
 * assumed normal without anyone's label.  fm_out (may be NULL) keeps the
 * fitted learner, whose per-device centers the device blobs carry. */
static int fit_fewshot(const struct trainset *t, const unsigned char *use, const struct ds_info *in,
                       struct model *m, const char **why, uint32_t *protos,
                       struct fewshot_model *fm_out)
{
    struct fewshot_params p;
    struct fewshot_model fm;
    struct fewshot_data d;
    size_t N = t->n + t->n_tf;
    int32_t *lab = malloc(N * sizeof *lab);
    uint32_t *dom = t->n_tf ? calloc(N, sizeof *dom) : NULL;
    uint32_t *dev = t->dev ? malloc(N * sizeof *dev) : NULL;
    uint8_t *ref = t->dev ? calloc(N, 1) : NULL;
    /* the relations set: the scale of normal operation from every window
     * its map was fitted on, not only the reference windows */
    uint8_t *scale = t->rel_fit ? calloc(N, 1) : NULL;
    int rc;

    size_t nl = 0, keep;

    if (!lab || (t->n_tf && !dom) || (t->dev && (!dev || !ref)) || (t->rel_fit && !scale)) {
        free(lab);
        free(dom);
        free(dev);
        free(ref);
        free(scale);
        return SRV_ENOMEM;
    }
    if (scale)
        memcpy(scale, t->rel_fit, t->n);
    for (size_t i = 0; dev && i < N; i++) {
        /* borrowed rows: one pseudo-device per domain, no reference (their
         * domain's pooled center) */
        dev[i] = i < t->n ? t->dev[i] : t->n_dev + (dom ? dom[i] : 0u);
        ref[i] = i < t->n && t->ref[i] && (!use || use[i] || t->sched[i]);
    }
    for (size_t i = 0; i < t->n_tf; i++) {
        lab[t->n + i] = t->tf_label[i];
        dom[t->n + i] = t->tf_domain[i];
        if (dev)
            dev[t->n + i] = t->n_dev + t->tf_domain[i];
    }
    for (size_t i = 0; i < t->n; i++)
        nl += !((use && !use[i]) || t->y[i] < 0);
    /* The metric compares every pair of labeled rows: past a few thousand
     * labels every keep-th one stays labeled and the rest are unlabeled
     * data, which the learner uses anyway. */
    keep = (nl + FEWSHOT_SERVER_MAX_LABELED - 1) / FEWSHOT_SERVER_MAX_LABELED;
    {
        size_t seen[MODEL_MAX_CLASSES] = { 0 };     /* per class, so a rare one keeps its first */

        for (size_t i = 0; i < t->n; i++) {
            int labeled = !((use && !use[i]) || t->y[i] < 0 || t->y[i] >= MODEL_MAX_CLASSES);

            lab[i] = labeled && (keep <= 1 || seen[t->y[i]] % keep == 0) ? t->y[i] : FEWSHOT_UNLABELED;
            if (labeled)
                seen[t->y[i]]++;
        }
    }
    /* reference rows are labeled rows already: no weak labels from them */
    d = (struct fewshot_data){ t->X, (uint32_t)N, t->d, lab, t->weight, dom, in->n_classes,
                               dev, ref, -1, NULL, scale,
                               /* the map's unlabeled candidates it took: scale rows only */
                               scale && t->pool_fit.n ? t->pool_fit.x : NULL,
                               scale ? (uint32_t)t->pool_fit.n : 0u };
    models_fewshot_defaults(&p);
    /* the relations set's map shares the device's parameter flash */
    rc = models_fewshot_fit_budget(&d, &p, MODELS_FEWSHOT_PARAM_BYTES - relations_map_bytes(t), &fm,
                                   protos);
    free(lab);
    free(dom);
    free(dev);
    free(ref);
    free(scale);
    if (rc == MODEL_OK) {
        m->features = t->fs;
        m->features.rel = NULL;
        m->rel_rank = 0;
        if (t->rel) {
            /* the map the vectors were computed with travels in the blob */
            uint32_t C = t->channels, K = t->rel->map.rank;

            m->rel_rank = K;
            memcpy(m->rel, t->rel->mean, C * sizeof *m->rel);
            memcpy(m->rel + C, t->rel->scale, C * sizeof *m->rel);
            memcpy(m->rel + 2u * C, t->rel->basis, (size_t)C * K * sizeof *m->rel);
        }
        rc = models_fewshot_export(&fm, in->normal_class >= 0 ? (uint16_t)in->normal_class
                                                             : MODEL_NO_CLASS, m);
        if (rc == MODEL_OK && fm_out)
            *fm_out = fm;
        else
            models_fewshot_release(&fm);
    }
    if (rc == MODEL_ETOOFEW)
        *why = "a class has no human-labeled training window (rules' labels support a class, "
               "they do not found one)";
    else if (rc == MODEL_ETOOBIG || rc == MODEL_EINVAL)
        *why = "one prototype per class on the fewest features a model may read (24, or all "
               "when fewer) does not fit the device's 7 KB of parameters: too many classes";
    return rc == MODEL_OK ? SRV_OK : rc == MODEL_ENOMEM ? SRV_ENOMEM : SRV_EUNPROCESSABLE;
}

/* A few-shot model's center replaced by another (n_sel floats): the blob
 * one device gets, whose center is its reference (models_fewshot_center). */
static void model_set_center(struct model *m, const float *center)
{
    uint32_t S = m->n_selected ? m->n_selected : m->n_features;

    memcpy(m->params + (m->n_selected ? S : 0u), center, S * sizeof *center);
}

/* Train on the rows selected by use[] (NULL: all). */
static int fit(const struct trainset *t, const unsigned char *use, int kind, const struct ds_info *in,
               struct model *m, const char **why, struct calib *cal)
{
    float *X;
    int *y, bad = -1, rc;
    size_t i, k = 0;

    if (kind == MODEL_FEWSHOT)
        return fit_fewshot(t, use, in, m, why, NULL, NULL);
    if (kind == MODEL_ANOMALY) {
        rc = fit_anomaly(t, use, in, m, cal);
        if (rc == MODEL_ETOOFEW)
            *why = "needs normal windows from at least 2 snapshots for fitting and 1 held out "
                   "for calibration (1 snapshot in 4 is held out)";
        return rc == MODEL_OK ? SRV_OK : rc == MODEL_ENOMEM ? SRV_ENOMEM : SRV_EUNPROCESSABLE;
    }
    X = malloc(t->n * t->d * sizeof *X);
    y = malloc(t->n * sizeof *y);
    if (!X || !y) {
        free(X);
        free(y);
        return SRV_ENOMEM;
    }
    for (i = 0; i < t->n; i++) {
        if (use && !use[i])
            continue;
        memcpy(X + k * t->d, t->X + i * t->d, t->d * sizeof *X);
        y[k++] = t->y[i];
    }
    m->features = t->fs;
    rc = models_train_centroid(X, y, k, t->d, (uint16_t)in->n_classes,
                               in->normal_class >= 0 ? (uint16_t)in->normal_class : MODEL_NO_CLASS,
                               m, &bad);
    free(X);
    free(y);
    if (rc == MODEL_ETOOFEW)
        *why = "a class has no training window";
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
    struct model *m = calloc(1, sizeof *m);
    const char *why = NULL;
    size_t i;
    unsigned f;

    if (!use || !m) {
        free(use);
        free(m);
        return SRV_ENOMEM;
    }
    struct trainset tf = *t;             /* relations: this fold's vectors and map */
    float *Xf = NULL;

    if (t->rel && (!(Xf = malloc(t->n * t->d * sizeof *Xf)) || !(tf.rel = malloc(sizeof *tf.rel)) ||
                   !(tf.rel_fit = malloc(t->n + t->n_pool ? t->n + t->n_pool : 1)))) {
        if (t->rel && tf.rel != t->rel)
            free(tf.rel);
        free(Xf);
        free(use);
        free(m);
        return SRV_ENOMEM;
    }
    if (Xf)
        tf.X = Xf;
    for (f = 0; cv->folds >= 2 && f < cv->folds; f++) {
        for (i = 0; i < t->n; i++)
            use[i] = t->group[i] % cv->folds != f;
        /* the relations map is fitted on the training folds' normal rows
         * only: a held-out window never shapes the map it is read through */
        struct fewshot_model fm = { 0 };

        if (t->rel && relations_refit(t, use, NULL, 0, tf.rel, NULL, Xf, tf.rel_fit,
                                      t->pool_fold) != MODEL_OK) {
            cv->skipped++;
            continue;
        }
        if (t->pool_fold)
            tf.pool_fit = *t->pool_fold;    /* the fold map's candidates, its scale rows */
        if ((kind == MODEL_FEWSHOT ? fit_fewshot(&tf, use, in, m, &why, NULL, &fm)
                                   : fit(&tf, use, kind, in, m, &why, NULL)) != SRV_OK) {
            cv->skipped++;
            continue;
        }
        for (i = 0; i < t->n; i++) {
            const float *x = tf.X + i * t->d;

            if (use[i])
                continue;
            /* each held-out window as its device computes it: on its own
             * reference (its scheduled baselines) or the model's center */
            if (kind == MODEL_FEWSHOT && t->dev)
                model_set_center(m, models_fewshot_center(&fm, t->dev[i]));
            scored[i] = 1;
            alarm[i] = model_score(m, x, t->d) >= m->threshold;
            if (kind != MODEL_ANOMALY && model_classify(m, x, t->d, NULL) == t->y[i])
                cv->correct++;
        }
        models_fewshot_release(&fm);
    }
    if (Xf) {
        free(Xf);
        free(tf.rel);
        free(tf.rel_fit);
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

/* Per-class support: windows and distinct groups of each class. */
struct support {
    size_t windows[DS_MAX_CLASSES];
    uint32_t groups[DS_MAX_CLASSES];
};

static int support_count(const struct trainset *t, const struct ds_info *in, struct support *sp)
{
    size_t ng = in->n_groups ? in->n_groups : 1;
    unsigned char *seen = calloc((size_t)DS_MAX_CLASSES * ng, 1);

    if (!seen)
        return SRV_ENOMEM;
    memset(sp, 0, sizeof *sp);
    for (size_t i = 0; i < t->n; i++) {
        size_t c = (size_t)t->y[i], g = t->group[i] < ng ? t->group[i] : 0;

        if (c >= DS_MAX_CLASSES)
            continue;
        sp->windows[c]++;
        if (!seen[c * ng + g]) {
            seen[c * ng + g] = 1;
            sp->groups[c]++;
        }
    }
    free(seen);
    return SRV_OK;
}

/* Why the version's CV cannot measure the model's metrics; NULL when it can.
 * Writes the reason into buf. */
static const char *cv_unmeasurable(const struct cv *cv, int kind, const struct ds_info *in,
                                   const struct support *sp, char *buf, size_t cap)
{
    if (cv->folds < 2) {
        snprintf(buf, cap, "not measurable: the version has %u group(s); cross-validation by "
                 "group needs 2", in->n_groups);
        return buf;
    }
    for (unsigned c = 0; c < in->n_classes; c++) {
        if (kind == MODEL_ANOMALY && (int)c == in->normal_class)
            continue;       /* normals are fitted within folds and held out by snapshot */
        if (sp->windows[c] && sp->groups[c] < 2) {
            snprintf(buf, cap, "not measurable: class %s has %zu windows from %u group",
                     in->classes[c], sp->windows[c], sp->groups[c]);
            return buf;
        }
    }
    return NULL;
}

/* A ratio as a number, or null with reasons[name] saying why. */
static void metric_set(json_t *j, json_t *reasons, const char *name, size_t num, size_t den,
                       const char *unmeasurable, const char *zero_den)
{
    if (unmeasurable || den == 0) {
        json_object_set_new(j, name, json_null());
        json_object_set_new(reasons, name, json_string(unmeasurable ? unmeasurable : zero_den));
    } else {
        json_object_set_new(j, name, json_real((double)num / (double)den));
    }
}

static json_t *support_json(const struct ds_info *in, const struct support *sp)
{
    json_t *a = json_array();

    for (unsigned c = 0; a && c < in->n_classes; c++)
        json_array_append_new(a, json_pack("{s:s,s:I,s:i}", "class", in->classes[c], "windows",
                                           (json_int_t)sp->windows[c], "groups",
                                           (int)sp->groups[c]));
    return a;
}

static json_t *cv_json(const struct cv *cv, int kind, const struct ds_info *in,
                       const struct support *sp)
{
    char why[256];
    const char *um = cv_unmeasurable(cv, kind, in, sp, why, sizeof why);
    json_t *j, *reasons = json_object();

    j = json_pack("{s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
                  "cv", "grouped k-fold over split groups", "folds", (int)cv->folds,
                  "folds_skipped", (int)cv->skipped, "windows_scored", (json_int_t)cv->n_scored,
                  "tp", (json_int_t)cv->tp, "fp", (json_int_t)cv->fp, "fn", (json_int_t)cv->fn,
                  "tn", (json_int_t)cv->tn, "snapshots_alerting", (json_int_t)cv->snap_alarms,
                  "support", support_json(in, sp));
    if (!j || !reasons) {
        json_decref(j);
        json_decref(reasons);
        return NULL;
    }
    metric_set(j, reasons, "precision", cv->tp, cv->tp + cv->fp, um,
               "not measurable: no held-out window alarmed");
    metric_set(j, reasons, "recall", cv->tp, cv->tp + cv->fn, um,
               "not measurable: no failure windows were scored");
    /* False alarms on normal windows held out by group: measured whenever
     * any were scored, whatever the failure classes' support. */
    metric_set(j, reasons, "false_alarm_fraction", cv->fp, cv->fp + cv->tn,
               cv->folds < 2 ? um : NULL, "not measurable: no normal windows were scored");
    if (kind != MODEL_ANOMALY)
        metric_set(j, reasons, "accuracy", cv->correct, cv->n_scored, um,
                   "not measurable: no window was scored");
    json_object_set_new(j, "reasons", reasons);
    return j;
}

/* The deployed model's own alarm prediction, from the normal windows held
 * out of its fit: what a device should see, per window and per day, and
 * whether that meets ISA-18.2 (only claimed when it was measured). */
static json_t *prediction_json(const struct trainset *t, const struct ds_info *in,
                               const struct model *m, const struct calib *cal)
{
    double rate_h = windows_per_hour(&t->fs), frac, res, per_op_hour;
    double devices = t->per_operator_hour / t->device_budget_per_hour;   /* per operator */
    json_t *j;

    (void)in;
    frac = (double)cal->alarms / (double)cal->held_out;
    res = 1.0 / (double)cal->held_out;
    per_op_hour = frac * rate_h * devices;
    j = json_pack("{s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:s}",
                  "fit_normal_windows", (json_int_t)cal->fit,
                  "held_out_normal_windows", (json_int_t)cal->held_out,
                  "held_out_alarms", (json_int_t)cal->alarms,
                  "predicted_alarm_fraction", frac, "alarm_fraction_resolution", res,
                  "target_alarm_fraction", t->target, "threshold", (double)m->threshold,
                  "window_rate_hz", rate_h / 3600.0,
                  "predicted_alerts_per_device_per_day", frac * rate_h * 24.0,
                  "expected_alerts_per_operator_hour", per_op_hour,
                  "isa18_2_target_per_operator_hour", ISA_TARGET_PER_HOUR,
                  "isa18_2_max_manageable_per_operator_hour", ISA_MAX_PER_HOUR,
                  "alerts_basis", "alarming windows among normal windows held out of the fit, "
                  "at the device's window rate, the alarm budget's devices per operator");
    if (j) {
        json_object_set_new(j, "device_budget_per_hour", json_real(t->device_budget_per_hour));
        json_object_set_new(j, "budget_per_operator_hour", json_real(t->per_operator_hour));
    }
    if (!j)
        return NULL;
    /* The prediction is a quantile measured on a few hundred windows: its
     * own 95 % upper bound (Wilson score interval) says how far a device
     * may honestly land above it. */
    {
        double n = (double)cal->held_out, z = 1.96, c = n + z * z;
        double mid = ((double)cal->alarms + z * z / 2.0) / c;
        double half = z * sqrt((double)cal->alarms * (n - (double)cal->alarms) / n + z * z / 4.0) / c;

        json_object_set_new(j, "predicted_alarm_fraction_upper95", json_real(mid + half));
    }
    if (cal->alarms == 0 && res * rate_h * devices > ISA_TARGET_PER_HOUR) {
        json_object_set_new(j, "meets_isa18_2_target", json_null());
        json_object_set_new(j, "meets_isa18_2_target_reason",
                            json_string("not measurable: too few held-out normal windows to "
                                        "resolve the target rate (0 alarms, one would exceed it)"));
    } else {
        json_object_set_new(j, "meets_isa18_2_target",
                            json_boolean(per_op_hour <= ISA_TARGET_PER_HOUR));
    }
    return j;
}

/* Grouped k-fold cross-validation as the metrics JSON; NULL out of memory. */
static json_t *evaluate(const struct trainset *t, int kind, const struct ds_info *in)
{
    unsigned char *alarm = calloc(t->n, 1), *scored = calloc(t->n, 1);
    struct cv cv = { .folds = in->n_groups < MODELS_FOLDS ? in->n_groups : MODELS_FOLDS };
    struct support *sp = malloc(sizeof *sp);
    json_t *j = NULL;

    if (alarm && scored && sp && support_count(t, in, sp) == SRV_OK &&
        cv_score(t, kind, in, &cv, scored, alarm) == SRV_OK) {
        cv_count(t, in, &cv, scored, alarm);
        j = cv_json(&cv, kind, in, sp);
    }
    free(alarm);
    free(scored);
    free(sp);
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
    struct device_ref *devs;        /* few-shot: one per device of the version */
    uint32_t n_devs;
    /* centroid, few-shot: per snapshot of the version, then per snapshot
     * of its devices no label reached, its id, predicted class, that
     * class's probability and margin (snapshot_predictions), as PostgreSQL
     * array literals for M_DONE; NULL for an anomaly model */
    char *pred[4];
    size_t n_pred;
};

static void trained_release(struct trained *tr)
{
    free(tr->blob);
    free(tr->header);
    json_decref(tr->metrics);
    json_decref(tr->tv);
    for (uint32_t k = 0; tr->devs && k < tr->n_devs; k++) {
        free(tr->devs[k].blob);
        json_decref(tr->devs[k].pred);
    }
    free(tr->devs);
    for (int k = 0; k < 4; k++)
        free(tr->pred[k]);
}

/* The per-snapshot prediction columns (struct trained's pred) as they
 * grow, and the softmax vectors of the snapshot being read. */
struct pred_cols {
    struct srv_buf col[4];
    double sum[MODEL_MAX_CLASSES];
    size_t used;
};

/* One window of the snapshot being read, classified by m (the blob its
 * device runs); one with a non-finite probability counts for nothing. */
static void pred_window(struct pred_cols *p, const struct model *m, const float *x, uint16_t d)
{
    float q[MODEL_MAX_CLASSES];
    int finite = 1;

    (void)model_classify(m, x, d, q);
    for (uint32_t c = 0; c < m->n_classes; c++)
        finite &= isfinite(q[c]) != 0;
    if (!finite)
        return;
    for (uint32_t c = 0; c < m->n_classes; c++)
        p->sum[c] += q[c];
    p->used++;
}

/* The snapshot whose windows pred_window took: its row, class the argmax
 * of their averaged vectors, probability its value, margin the top minus
 * the second; none when no window counted.  p is then ready for the next.
 * 1 when a row was added. */
static int pred_snapshot(struct pred_cols *p, const struct ds_info *in, uint32_t C, int64_t snap)
{
    uint32_t top = 0, second = 1;
    size_t used = p->used;
    char num[32];

    p->used = 0;
    if (used == 0)
        return 0;
    if (p->sum[1] > p->sum[0]) {
        top = 1;
        second = 0;
    }
    for (uint32_t c = 2; c < C; c++) {
        if (p->sum[c] > p->sum[top]) {
            second = top;
            top = c;
        } else if (p->sum[c] > p->sum[second]) {
            second = c;
        }
    }
    db_array_int64(&p->col[0], snap);
    db_array_text(&p->col[1], in->classes[top]);
    snprintf(num, sizeof num, "%.9g", p->sum[top] / (double)used);
    db_array_raw(&p->col[2], num);
    snprintf(num, sizeof num, "%.9g", (p->sum[top] - p->sum[second]) / (double)used);
    db_array_raw(&p->col[3], num);
    memset(p->sum, 0, sizeof p->sum);
    return 1;
}

/* The snapshots no label reached (ds_unlabeled_snapshots_read): each
 * window's features computed as the version's rows were (load_features:
 * the set, its window, the device's kinematics for the envelope set) and
 * classified by the blob its device runs. */
struct unlabeled_pred {
    const struct trainset *t;
    const struct model *m;
    struct model *dm;               /* few-shot: m with the device's center */
    const struct fewshot_model *fm;
    const size_t *first;            /* few-shot: per device its first row */
    struct ds_info fin;             /* the version's summary with the feature set */
    float *feat;
    struct pred_cols *p;
    size_t n;                       /* rows added */
};

static int unlabeled_each(void *ctx, int64_t id, const char *device_id, const float *x, size_t n)
{
    struct unlabeled_pred *u = ctx;
    const struct trainset *t = u->t;
    const struct model *m = u->m;
    size_t per = (size_t)u->fin.channel_count * u->fin.window_samples;

    if (t->dev && u->dm) {
        char (*hit)[65] = bsearch(device_id, t->dev_names, t->n_dev, sizeof *t->dev_names,
                                  cmp_name);
        uint32_t k;

        if (!hit)
            return SRV_OK;      /* not one of the version's devices: it has no blob of it */
        k = (uint32_t)(hit - t->dev_names);
        model_set_center(u->dm, models_fewshot_center(u->fm, k));
        m = u->dm;
        /* its machine turns as its rows in the version do (device_kin) */
        if (t->km && t->kin_idx)
            u->fin.feature_kin = t->km->kins[t->kin_idx[u->first[k]]];
    }
    for (size_t j = 0; j < n; j++) {
        if (ds_window_features(&u->fin, x + j * per, u->feat) != DS_OK)
            return SRV_EINTERNAL;
        pred_window(u->p, m, u->feat, t->d);
    }
    u->n += (size_t)pred_snapshot(u->p, &u->fin, m->n_classes, id);
    return SRV_OK;
}

/* The unlabeled part of snapshot_predictions, its counts in *report. */
static int unlabeled_predictions(const struct trainset *t, const struct model *m,
                                 struct model *dm, const struct fewshot_model *fm,
                                 const struct ds_info *in, struct pred_cols *p, json_t *report)
{
    struct unlabeled_pred u = { t, m, dm, fm, NULL, *in, NULL, p, 0 };
    struct ds_unlabeled_stats st;
    size_t *first = NULL;
    int err = SRV_ENOMEM;

    u.fin.feature_set = t->fs.id;
    u.fin.feature_kin = t->km ? t->km->kins[t->km->modal] : (struct featureset_kin)FEATURESET_NO_KIN;
    if (!(u.feat = malloc((t->d ? t->d : 1) * sizeof *u.feat)))
        return SRV_ENOMEM;
    if (t->dev) {
        if (!(first = malloc((t->n_dev ? t->n_dev : 1) * sizeof *first)))
            goto out;
        for (uint32_t k = 0; k < t->n_dev; k++)
            first[k] = 0;
        for (size_t i = t->n; i-- > 0;)
            first[t->dev[i]] = i;
        u.first = first;
    }
    err = ds_unlabeled_snapshots_read(in, unlabeled_each, &u, &st);
    if (err == SRV_OK) {
        json_object_set_new(report, "unlabeled_snapshots", json_integer((json_int_t)u.n));
        json_object_set_new(report, "skipped", json_integer((json_int_t)st.skipped));
        json_object_set_new(report, "capped", json_integer((json_int_t)st.capped));
    }
out:
    free(first);
    free(u.feat);
    return err;
}

/* What the model thinks of each snapshot of the version (centroid,
 * few-shot), for the queue's least-certain-first order: every window
 * classified as its device computes it (model_classify on the blob that
 * device runs: for a few-shot model its own center, as
 * device_predictions), the softmax vectors of a snapshot's windows
 * averaged (pred_window, pred_snapshot).  Rows come ordered by snapshot
 * (ds_reader).  Then the same for the snapshots of the version's devices
 * no label reached (unlabeled_predictions: what to label next), but with
 * the relations set (its features are residuals of a map fitted on the
 * version's windows: not predicted).  Their counts: *report
 * (metrics.snapshot_predictions). */
static int snapshot_predictions(const struct trainset *t, const struct model *m,
                                const struct fewshot_model *fm, const struct ds_info *in,
                                struct trained *tr, json_t **report)
{
    struct model *dm = NULL;
    struct pred_cols p = { { { 0 } }, { 0 }, 0 };
    uint32_t C = m->n_classes, cur = UINT32_MAX;
    int err = SRV_ENOMEM;

    *report = NULL;
    if (C < 2 || C > MODEL_MAX_CLASSES || C > in->n_classes)
        return SRV_EINTERNAL;
    if (m->kind == MODEL_FEWSHOT && t->dev) {
        if (!(dm = malloc(sizeof *dm)))
            return SRV_ENOMEM;
        *dm = *m;
    }
    for (int k = 0; k < 4; k++)
        db_array_begin(&p.col[k]);
    for (size_t i = 0, j; i < t->n; i = j) {
        for (j = i; j < t->n && t->snap[j] == t->snap[i]; j++) {
            if (dm && t->dev[j] != cur) {
                cur = t->dev[j];
                model_set_center(dm, models_fewshot_center(fm, cur));
            }
            pred_window(&p, dm ? dm : m, t->X + j * t->d, t->d);
        }
        tr->n_pred += (size_t)pred_snapshot(&p, in, C, t->snap[i]);
    }
    if (!(*report = json_pack("{s:I,s:{s:i,s:I}}", "version_snapshots", (json_int_t)tr->n_pred,
                              "caps", "snapshots", (int)DS_UNLABELED_SNAPSHOTS_MAX, "bytes",
                              (json_int_t)DS_UNLABELED_SNAPSHOTS_MAX_BYTES)))
        goto out;
    if (t->fs.id == FEATURESET_RELATIONS) {
        json_object_set_new(*report, "unlabeled_reason",
                            json_string("not with the relations feature set (its features are "
                                        "residuals of a map fitted on the version's windows)"));
    } else {
        size_t before = tr->n_pred;

        if ((err = unlabeled_predictions(t, m, dm, fm, in, &p, *report)) != SRV_OK)
            goto out;
        tr->n_pred = before + (size_t)json_integer_value(json_object_get(*report,
                                                                         "unlabeled_snapshots"));
        err = SRV_ENOMEM;
    }
    for (int k = 0; k < 4; k++) {
        db_array_end(&p.col[k]);
        if (!(tr->pred[k] = srv_buf_take(&p.col[k], NULL)))
            goto out;
    }
    err = SRV_OK;
out:
    for (int k = 0; k < 4; k++)
        srv_buf_free(&p.col[k]);
    free(dm);
    if (err != SRV_OK) {
        json_decref(*report);
        *report = NULL;
    }
    return err;
}

/* Windows whose prediction a device's record lists one by one, and all
 * devices' records together; past them only the counts (the record is a
 * check a device can replay, not a copy of the version). */
#define DEVICE_PRED_MAX 4096u
#define DEVICE_PRED_TOTAL 65536u

/* The server's prediction for device k's windows with the model dm (that
 * device's center): per window (version order) its row, class and score,
 * exactly what the device's blob computes; and how many windows the
 * learner's own per-device prediction (models_fewshot_predict_device)
 * classes alike, which must be all of them. */
static json_t *device_predictions(const struct trainset *t, const struct fewshot_model *fm,
                                  const struct model *dm, uint32_t k, size_t *left)
{
    json_t *rows = json_array(), *cls = json_array(), *sc = json_array(), *j;
    size_t n = 0, alarms = 0, agree = 0;

    if (!rows || !cls || !sc) {
        json_decref(rows);
        json_decref(cls);
        json_decref(sc);
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++) {
        const float *x = t->X + i * t->d;
        float score;
        int c;

        if (t->dev[i] != k)
            continue;
        score = model_score(dm, x, t->d);
        c = model_classify(dm, x, t->d, NULL);
        alarms += score >= dm->threshold;
        agree += models_fewshot_predict_device(fm, k, x, NULL) == c;
        if (n++ < DEVICE_PRED_MAX && *left > 0) {
            --*left;
            json_array_append_new(rows, json_integer((json_int_t)i));
            json_array_append_new(cls, json_integer(c));
            json_array_append_new(sc, json_real((double)score));
        }
    }
    j = json_pack("{s:I,s:I,s:I,s:f,s:o,s:o,s:o,s:b}", "windows", (json_int_t)n, "alarms",
                  (json_int_t)alarms, "learner_agrees", (json_int_t)agree, "threshold",
                  (double)dm->threshold, "rows", rows, "classes", cls, "scores", sc,
                  "truncated", n > json_array_size(rows));
    return j;
}

/* Whether the machine of row i's device turns otherwise than the model's
 * blob says (set "envelope"; a device's rows all turn alike); 1 and *kin
 * its own kinematics when it does. */
static int device_kin(const struct trainset *t, size_t i, struct featureset_kin *kin)
{
    if (!t->km || !t->kin_idx || i >= t->n || t->kin_idx[i] == t->km->modal)
        return 0;
    *kin = t->km->kins[t->kin_idx[i]];
    return 1;
}

/* Per device of the version (few-shot): its reference windows, the blob
 * made for it when it has any or turns otherwise than the model's blob
 * says (m, packaged, with that device's center and kinematics, flagged and
 * bound to its id: schema/MODEL.md v2.5) and the server's
 * prediction for its windows with the center it runs.  *summary:
 * metrics.device_reference. */
static int device_refs_build(const struct trainset *t, const struct fewshot_model *fm,
                             const struct model *m, struct trained *tr, json_t **summary)
{
    struct model *dm = malloc(sizeof *dm);
    uint32_t own = 0, own_kins = 0;
    int own_kin;
    size_t ref_total = 0, left = DEVICE_PRED_TOTAL;
    uint8_t sk[64], pk[32];
    int err = SRV_ENOMEM;

    *summary = NULL;
    if (!dm || !(tr->devs = calloc(t->n_dev ? t->n_dev : 1, sizeof *tr->devs)))
        goto out;
    if (models_signing_key(sk, pk) != SRV_OK) {
        err = SRV_EINTERNAL;
        goto out;
    }
    tr->n_devs = t->n_dev;
    for (uint32_t k = 0; k < t->n_dev; k++) {
        struct device_ref *dr = &tr->devs[k];
        size_t first = t->n;            /* the device's first row: how its machine turns */

        snprintf(dr->id, sizeof dr->id, "%s", t->dev_names[k]);
        for (size_t i = 0; i < t->n; i++) {
            dr->ref_windows += t->dev[i] == k && t->ref[i];
            if (t->dev[i] == k && first == t->n)
                first = i;
        }
        *dm = *m;
        model_set_center(dm, models_fewshot_center(fm, k));
        /* a machine that turns otherwise than the model's blob says: its
         * blob reads its own defect frequencies, as its rows were read */
        own_kin = device_kin(t, first, &dm->features.kin);
        if (dr->ref_windows > 0 || own_kin) {
            dm->flags = MODEL_FLAG_DEVICE;
            dm->ref_windows = dr->ref_windows;
            err = SRV_EINTERNAL;
            if (model_device_digest(dr->id, dm->device) != MODEL_OK ||
                model_encode(dm, sk, &dr->blob, &dr->blob_len) != MODEL_OK)
                goto out;
            own += dr->ref_windows > 0;
            own_kins += own_kin;
            ref_total += dr->ref_windows;
        }
        err = SRV_ENOMEM;
        if (!(dr->pred = device_predictions(t, fm, dm, k, &left)))
            goto out;
    }
    *summary = json_pack("{s:i,s:i,s:I,s:s,s:s}", "devices", (int)t->n_dev, "own_reference",
                         (int)own, "reference_windows", (json_int_t)ref_total, "reference",
                         "a device's windows labeled normal by a human and its scheduled baseline "
                         "snapshots' windows labeled normal by any source; its blob's center is "
                         "their median (GET /api/v1/models/{id}/devices)",
                         "fallback", "a device without reference windows (or not in the version) "
                         "runs the model's own blob: the median of every device's reference windows");
    if (*summary && t->km)
        json_object_set_new(*summary, "own_kinematics", json_integer((json_int_t)own_kins));
    err = *summary ? SRV_OK : SRV_ENOMEM;
out:
    sodium_memzero(sk, sizeof sk);
    free(dm);
    return err;
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
 * JSON, the blob as bytes; with it its snapshots' predictions. */
static int model_store(int64_t id, const char *mets, const char *tvs, const struct trained *tr)
{
    char idb[24];
    const char *vals[9] = { idb, mets, tvs, (const char *)tr->blob, tr->header,
                            tr->pred[0], tr->pred[1], tr->pred[2], tr->pred[3] };
    int lens[9] = { 0, 0, 0, (int)tr->blob_len, 0 }, fmts[9] = { 0, 0, 0, 1, 0 };

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    return models__exec(M_DONE, vals, lens, fmts, 0, NULL);
}

/* What the model takes on a device, against issue 7's budget: parameters
 * in flash (the score code adds a few hundred bytes, see MODEL.md), and in
 * RAM the feature vector and per-class distances the score keeps; the
 * feature window and the feature set's scratch are the extractor's, listed
 * apart. */
static json_t *device_json(const struct model *m, const struct featureset_spec *fs,
                           const struct ds_info *in)
{
    size_t params = 4u * (size_t)m->param_count;
    size_t ram = 4u * m->n_features + 8u * m->n_classes;
    json_t *j;

    /* features_read: a few-shot model cut to the budget reads the features
     * its metric ranked first (the blob's n_selected), not all of them */
    j = json_pack("{s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:I,s:I}", "param_bytes", (json_int_t)params,
                     "flash_budget_bytes", (json_int_t)MODELS_DEVICE_FLASH,
                     "model_ram_bytes", (json_int_t)ram,
                     "ram_budget_bytes", (json_int_t)MODELS_DEVICE_RAM,
                     "prototypes", (int)m->n_protos,
                     "features", (int)m->n_features,
                     "features_read", (int)(m->n_selected ? m->n_selected : m->n_features),
                     "window_ram_bytes", (json_int_t)(4u * (size_t)in->channel_count * fs->window),
                     "feature_scratch_bytes", (json_int_t)(4u * featureset_scratch_floats(fs)));
    /* the relations set's map is parameters too: in the blob and in the
     * device's flash beside the model's (the learner was held to the
     * budget less the map) */
    if (j && fs->id == FEATURESET_RELATIONS) {
        /* the model's channel count is set when it is packaged, after this */
        size_t map = 4u * (2u + m->rel_rank) * in->channel_count;

        json_object_set_new(j, "feature_map_bytes", json_integer((json_int_t)map));
        json_object_set_new(j, "param_and_map_bytes", json_integer((json_int_t)(params + map)));
    }
    return j;
}

/* metrics.features: the set, its window, hop and rate, and for a spectral
 * set the kinematics it read, or why it read none. */
static json_t *features_json(const struct trainset *t, const struct featureset_spec *fs,
                             const struct ds_info *in, const char *kin_why)
{
    json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:f}", "set", featureset_name(fs->id), "id",
                          fs->id, "version", fs->version, "window", (int)fs->window, "hop",
                          (int)fs->hop, "sample_rate", (double)fs->sample_rate);

    if (j && fs->id == FEATURESET_ENVELOPE && fs->kin.n_elements == 0)
        /* the shaft speed without a bearing: order bands, no defect energies */
        json_object_set_new(j, "kinematics",
                            json_pack("{s:f,s:n,s:n,s:n,s:n,s:s}", "shaft_hz",
                                      (double)fs->kin.shaft_hz, "bearing_balls", "ball_mm",
                                      "pitch_mm", "contact_deg", "bearing_reason",
                                      "the taxonomy gives no bearing geometry: the features read "
                                      "orders of the shaft speed, and their defect energies are 0"));
    else if (j && fs->id == FEATURESET_ENVELOPE)
        json_object_set_new(j, "kinematics",
                            json_pack("{s:f,s:i,s:f,s:f,s:f}", "shaft_hz", (double)fs->kin.shaft_hz,
                                      "bearing_balls", (int)fs->kin.n_elements, "ball_mm",
                                      (double)fs->kin.ball_d, "pitch_mm", (double)fs->kin.pitch_d,
                                      "contact_deg", (double)fs->kin.contact_deg));
    /* the machines of a fleet turn alike or not: how many ways, and that
     * each window was read at its own machine's defect frequencies */
    if (j && fs->id == FEATURESET_ENVELOPE && t->km) {
        double lo = t->km->kins[0].shaft_hz, hi = lo;

        for (unsigned k = 1; k < t->km->n_kins; k++) {
            lo = fmin(lo, t->km->kins[k].shaft_hz);
            hi = fmax(hi, t->km->kins[k].shaft_hz);
        }
        json_object_set_new(j, "kinematics_distinct", json_integer((json_int_t)t->km->n_kins));
        json_object_set_new(j, "shaft_hz_range", json_pack("[f,f]", lo, hi));
    }
    else if (j && kin_why)
        json_object_set_new(j, fs->id == FEATURESET_STATS ? "set_reason" : "kinematics_reason",
                            json_string(kin_why));
    /* a window longer than the spectral sets read (65536): say how much they read */
    if (j && fs->window != in->window_samples) {
        char why[256];

        snprintf(why, sizeof why,
                 "the version's windows are %u samples, more than the spectral sets read: the "
                 "features read the first %u samples of each (%.4g s); the device scores one "
                 "such window every %u samples",
                 (unsigned)in->window_samples, (unsigned)fs->window,
                 (double)fs->window / (double)fs->sample_rate, (unsigned)fs->hop);
        json_object_set_new(j, "window_reason", json_string(why));
    }
    if (j && fs->id == FEATURESET_RELATIONS && t->rel) {
        json_t *rel = json_pack("{s:i,s:i,s:f,s:f,s:I,s:s}", "channels", (int)t->channels,
                                "rank", (int)t->rel->map.rank, "explained",
                                t->rel->explained, "variance_kept", RELATIONS_VAR_KEEP,
                                "fit_windows", (json_int_t)t->rel_fit_rows, "fit_on",
                                "windows labeled normal by a human and windows of scheduled "
                                "baseline snapshots (detector schedule) labeled normal by "
                                "any source, then refitted with the windows nobody labeled "
                                "a fault that the first map finds normal: the version's and "
                                "the unlabeled windows of its devices' scheduled baseline "
                                "snapshots received up to the version's freeze; in "
                                "cross-validation and the evaluation, the version's only "
                                "outside the held-out fold");
        /* the unlabeled windows outside the version: how many were read as
         * candidates, from how many snapshots, how many the final map (and
         * so the learner's scale) took */
        json_t *u = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "windows", (json_int_t)t->n_pool,
                              "fit_windows", (json_int_t)t->pool_fit.n, "snapshots",
                              (json_int_t)t->pool_snapshots, "snapshots_skipped",
                              (json_int_t)t->pool_skipped, "max_windows",
                              (json_int_t)DS_UNLABELED_MAX_WINDOWS, "max_bytes",
                              (json_int_t)DS_UNLABELED_MAX_BYTES);

        if (rel && u)
            json_object_set_new(rel, "unlabeled", u);
        else
            json_decref(u);
        json_object_set_new(j, "relations", rel);
    }
    return j;
}

/* Can this version train this kind at all? */
static const char *version_unfit(int kind, const char *requested, const struct ds_info *in)
{
    if (kind == MODEL_ANOMALY && in->normal_class < 0)
        return "the anomaly model needs windows labeled normal";
    if (kind != MODEL_ANOMALY && (in->n_classes < 2 || in->n_classes > MODEL_MAX_CLASSES))
        return "the classifier needs 2..32 classes";
    if (requested && strcmp(requested, "relations") == 0 && kind != MODEL_FEWSHOT)
        return "the relations feature set is trained by the fewshot kind only";
    if (requested && strcmp(requested, "relations") == 0 &&
        (in->channel_count < 2 || in->channel_count > RELATIONS_MAX_CH))
        return "the relations feature set needs 2..64 channels (relations between them)";
    return NULL;
}

/* The relations set: the map of normal operation, fitted without labels
 * on the windows assumed normal, and the vectors every fit and figure
 * reads; the evaluation's per-fold refit into *refit. */
static int relations_prepare(const struct ds_info *in, struct trainset *t,
                             struct models_refit *refit, const char **why)
{
    static _Thread_local char rel_why[256];
    int rc, err;

    if ((err = relations_mark_scheduled(in, t)) != SRV_OK) {
        *why = "reading the version's scheduled baseline snapshots failed";
        return err;
    }
    if ((err = relations_load_pool(in, t)) != SRV_OK) {
        *why = "reading the devices' unlabeled scheduled baseline snapshots failed";
        return err;
    }
    rc = relations_refit(t, NULL, NULL, 0, t->rel, &t->rel_fit_rows, t->X, t->rel_fit,
                         t->n_pool ? &t->pool_fit : NULL);
    if (rc != MODEL_OK) {
        snprintf(rel_why, sizeof rel_why,
                 rc == MODEL_ETOOFEW
                     ? "the relations set fits its map on windows assumed normal (labeled "
                       "normal by a human, or from scheduled baseline snapshots): the version "
                       "has %zu, it needs at least %zu"
                     : "fitting the relations map failed (%zu windows assumed normal, %zu "
                       "needed)",
                 t->rel_fit_rows, relations_min_fit(t->channels));
        *why = rel_why;
        return rc == MODEL_ENOMEM ? SRV_ENOMEM : SRV_EUNPROCESSABLE;
    }
    if (relations_map_bytes(t) + 1024u > MODELS_FEWSHOT_PARAM_BYTES) {
        *why = "the relations map leaves less than 1 KB of the device's 7 KB of parameters "
               "for the model: too many channels";
        return SRV_EUNPROCESSABLE;
    }
    refit->ctx = t;
    refit->param_bytes = MODELS_FEWSHOT_PARAM_BYTES - relations_map_bytes(t);
    return SRV_OK;
}

/* Features, cross-validation and the final fit on everything into tr;
 * *why says what failed when it is not the default. */
static int train_version(int64_t id, int kind, int transfer, const char *requested,
                         struct ds_reader *rd,
                         struct trained *tr, const char **why)
{
    struct models_transfer tf = { 0 };
    const struct ds_info *in = ds_reader_info(rd);
    const char *unfit = version_unfit(kind, requested, in), *kin_why = NULL;
    struct models_refit refit = { relations_eval_features, NULL, 0, relations_eval_scale,
                                  relations_eval_scale_extra };
    struct models_kinmap *km = NULL;
    struct trainset t = { 0 };
    struct calib cal = { 0 };
    struct models_budget b;
    struct model *m = NULL;
    struct fewshot_model fm = { 0 };
    uint16_t set;
    int err;

    /* Without the setting (a database from before it), ISA-18.2's default
     * shared by the version's devices. */
    if (models_budget_get(&b) != SRV_OK) {
        b.per_operator_hour = ISA_TARGET_PER_HOUR;
        b.devices_per_operator = (int)(in->n_devices ? in->n_devices : 1);
    }
    t.per_operator_hour = b.per_operator_hour;
    t.device_budget_per_hour = models_budget_device_per_hour(&b, 0);
    if (unfit) {
        *why = unfit;
        return SRV_EUNPROCESSABLE;
    }
    if (!(km = calloc(1, sizeof *km))) {
        err = SRV_ENOMEM;
        goto out;
    }
    set = kind_feature_set(kind, requested, in, km, &kin_why);
    if ((err = load_features(rd, set, km, &t)) != SRV_OK) {
        *why = err == SRV_EUNPROCESSABLE
                   ? set == FEATURESET_RELATIONS
                         ? "version too large for the relations set (it keeps every window's "
                           "samples while it fits its map: 512 MiB at most) or a window out of "
                           "8..65536 samples"
                         : "version too large or too many channels for a model"
                   : "reading the windows failed";
        goto out;
    }
    if (set == FEATURESET_RELATIONS && (err = relations_prepare(in, &t, &refit, why)) != SRV_OK)
        goto out;
    /* Each device its own reference: which device every window is from and
     * which of them show its normal operation. */
    if (kind == MODEL_FEWSHOT && (err = load_devices(in, &t)) != SRV_OK) {
        *why = "reading the version's devices failed";
        goto out;
    }
    /* Transfer: the few-shot learner also learns from related equipment
     * types' labels of the classes they share with this version's.  Not
     * with the relations set: its map is fitted on this version's normal
     * windows (again in every evaluation fold), and another machine's
     * vectors through it would not mean what the device computes. */
    if (kind == MODEL_FEWSHOT && transfer && set != FEATURESET_RELATIONS &&
        ((err = models__transfer_load(in, &t.fs, id, &tf)) != SRV_OK ||
         (err = trainset_add_transfer(&t, &tf)) != SRV_OK)) {
        *why = "reading the related equipment's windows failed";
        goto out;
    }
    if (kind == MODEL_FEWSHOT && transfer && set != FEATURESET_RELATIONS)
        srv_log("info", "models: model %lld: transfer: %zu windows (%zu labeled, weight %.2g) from "
                "%u related equipment type(s)", (long long)id, tf.n, tf.n_labeled,
                (double)MODELS_TRANSFER_WEIGHT, tf.n_types);
    if (!(m = calloc(1, sizeof *m)) || !(tr->metrics = evaluate(&t, kind, in))) {
        err = SRV_ENOMEM;
        goto out;
    }
    if ((err = kind == MODEL_FEWSHOT ? fit_fewshot(&t, NULL, in, m, why, NULL, &fm)
                                     : fit(&t, NULL, kind, in, m, why, &cal)) != SRV_OK)
        goto out;
    if (kind != MODEL_ANOMALY) {
        /* The classifier has no calibration set: its prediction is the
         * false alarms CV measured on normal windows of held-out groups. */
        json_t *fp = json_object_get(tr->metrics, "fp"), *tn = json_object_get(tr->metrics, "tn");

        cal.fit = t.n;
        cal.alarms = (size_t)json_integer_value(fp);
        cal.held_out = cal.alarms + (size_t)json_integer_value(tn);
    }
    if (cal.held_out > 0)
        json_object_set_new(tr->metrics, "prediction", prediction_json(&t, in, m, &cal));
    else
        json_object_set_new(tr->metrics, "prediction_reason",
                            json_string("not measurable: no normal window was held out"));
    json_object_set_new(tr->metrics, "evaluation",
                        models__evaluation(t.X, t.y, t.weight, t.group, t.n, t.d, &t.fs, in, &tf,
                                           refit.ctx ? &refit : NULL,
                                           t.dev ? &(struct models_devref){ t.dev, t.ref, t.sched,
                                                                            t.n_dev }
                                                 : NULL));
    if (kind == MODEL_FEWSHOT)
        json_object_set_new(tr->metrics, "transfer",
                        tf.report ? json_incref(tf.report)
                        : json_pack("{s:b,s:s}", "enabled", 0, "reason",
                                    set == FEATURESET_RELATIONS
                                        ? "not with the relations feature set (its map is "
                                          "fitted on this version's normal windows)"
                                        : "turned off by the request (transfer: false)"));
    {
        struct featureset_spec fs = t.fs;   /* with its map: the scratch the device needs */

        fs.rel = t.rel ? &t.rel->map : NULL;
        json_object_set_new(tr->metrics, "device", device_json(m, &fs, in));
    }
    json_object_set_new(tr->metrics, "features", features_json(&t, &t.fs, in, kin_why));
    if ((err = model_package(m, id, in, tr)) != SRV_OK) {
        *why = "encoding the model failed";
        goto out;
    }
    if (kind == MODEL_FEWSHOT) {
        json_t *summary;

        if ((err = device_refs_build(&t, &fm, m, tr, &summary)) != SRV_OK) {
            *why = "making the devices' blobs failed";
            goto out;
        }
        json_object_set_new(tr->metrics, "device_reference", summary);
    }
    if (kind != MODEL_ANOMALY) {
        json_t *report;

        if ((err = snapshot_predictions(&t, m, &fm, in, tr, &report)) != SRV_OK) {
            *why = "predicting the snapshots failed";
            goto out;
        }
        json_object_set_new(tr->metrics, "snapshot_predictions", report);
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
    if (km)
        models__kinmap_release(km);
    free(km);
    models__transfer_release(&tf);
    models_fewshot_release(&fm);
    free(m);
    return err;
}

/* Each device's record (model_device_refs), before the model is done: a
 * deployment never finds a finished model without its devices' blobs. */
static int device_refs_store(int64_t id, const struct trained *tr)
{
    char idb[24], nb[16];

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    for (uint32_t k = 0; k < tr->n_devs; k++) {
        const struct device_ref *dr = &tr->devs[k];
        char *pred = json_dumps(dr->pred, JSON_COMPACT);
        const char *vals[5] = { idb, dr->id, nb, (const char *)dr->blob, pred };
        int lens[5] = { 0, 0, 0, (int)dr->blob_len, 0 }, fmts[5] = { 0, 0, 0, 1, 0 }, err;

        if (!pred)
            return SRV_ENOMEM;
        snprintf(nb, sizeof nb, "%u", dr->ref_windows);
        err = models__exec(M_DEVICE_REF, vals, lens, fmts, 0, NULL);
        free(pred);
        if (err != SRV_OK)
            return err;
    }
    return SRV_OK;
}

int models_train(int64_t id)
{
    char idb[24];
    const char *vals[1] = { idb }, *why = "training failed";
    char *mets = NULL, *tvs = NULL, requested[32] = "";
    PGresult *r = NULL;
    struct ds_reader *rd = NULL;
    struct trained tr = { 0 };
    int64_t dsid;
    int err, kind, version, transfer;

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = models__exec(M_CLAIM, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_ENOTFOUND;
    }
    dsid = db_int64(r, 0, "dataset_id");
    version = (int)db_int64(r, 0, "version");
    kind = strcmp(db_text_or(r, 0, "kind", ""), "anomaly") == 0    ? MODEL_ANOMALY
           : strcmp(db_text_or(r, 0, "kind", ""), "fewshot") == 0  ? MODEL_FEWSHOT
                                                                   : MODEL_CENTROID;
    transfer = db_bool(r, 0, "transfer");
    if (!db_isnull(r, 0, "feature_set"))
        snprintf(requested, sizeof requested, "%s", db_text_or(r, 0, "feature_set", ""));
    PQclear(r);
    if (models__training_started)
        models__training_started(id);
    if ((err = ds_reader_open(dsid, version, &rd)) != SRV_OK)
        why = "dataset version unreadable";
    else if ((err = train_version(id, kind, transfer, requested[0] ? requested : NULL, rd, &tr,
                                  &why)) == SRV_OK &&
             (!(mets = json_dumps(tr.metrics, JSON_COMPACT | JSON_SORT_KEYS)) ||
              !(tvs = json_dumps(tr.tv, JSON_COMPACT | JSON_SORT_KEYS))))
        err = SRV_ENOMEM;
    ds_reader_free(rd);
    if (err == SRV_OK && (err = device_refs_store(id, &tr)) != SRV_OK)
        why = "storing the devices' blobs failed";
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
