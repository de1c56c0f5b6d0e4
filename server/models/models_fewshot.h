/* models_fewshot.h - learning a failure mode from a handful of labeled
 * windows, and evaluation that says when it cannot tell.
 *
 * The learner works on a feature matrix (one row per window) in which most
 * rows carry no label.  What it uses besides the few labels:
 *   - every row, labeled or not, for a robust standardisation (median and
 *     MAD per feature), per domain: rows of related equipment (transfer) are
 *     standardised by their own domain's statistics so a shared failure mode
 *     looks alike across machines of different size and speed;
 *   - when told which device each row is from and which rows are its
 *     reference (commissioning, baseline snapshots), each device's own
 *     center, so one machine's set-point is not another's fault;
 *   - a metric learned from the labels (per-feature weights, Relief-style:
 *     nearest other-class row against nearest same-class row, kept only
 *     where the margin stands above chance, shrunk towards uniform: five
 *     examples cannot be trusted with more), which also ranks the features
 *     when the device's budget cannot take them all;
 *   - self-training: unlabeled rows that the labeled ones classify with a
 *     clear margin join their class, a bounded number per round;
 *   - weak labels (operators' rules, labels of related equipment) as labeled
 *     rows of weight < 1;
 * and keeps several prototypes per class (k-means in the learned metric), so
 * one class seen in several forms is not one centroid between them.  The
 * result is a nearest-prototype classifier whose parameters fold the metric
 * into one scale per feature: it fits the device's model budget when
 * features and prototypes are bounded (models_fewshot_bytes).
 *
 * Everything returns 0 or a negative MODEL_E* code (schema/model.h). */
#ifndef PRECURSOR_MODELS_FEWSHOT_H
#define PRECURSOR_MODELS_FEWSHOT_H

#include <stddef.h>
#include <stdint.h>

#define FEWSHOT_MAX_CLASSES 32u
#define FEWSHOT_MAX_PROTOS 16u       /* per class */
#define FEWSHOT_UNLABELED (-1)

/* A feature matrix with (mostly missing) labels.  Borrowed.  New fields
 * go at the end: callers initialise it positionally. */
struct fewshot_data {
    const float *x;                 /* n_rows x n_feat, row-major */
    uint32_t n_rows, n_feat;
    const int32_t *label;           /* class 0..n_classes-1 or FEWSHOT_UNLABELED */
    const float *weight;            /* label weight in (0, 1]; NULL = all 1 (weak labels < 1) */
    const uint32_t *domain;         /* 0 = the target equipment, others related; NULL = all 0 */
    uint32_t n_classes;
    /* Each device its own reference (NULL: no per-device reference).  A
     * process fault is a departure from that machine's own normal
     * operation: every row is centred on the median of its device's
     * reference rows (commissioning period, scheduled baseline snapshots:
     * assumed normal, weak labels of reference_class when
     * reference_weight > 0); the scale stays its domain's (the spread of
     * the domain's reference rows: a commissioning period shows where a
     * machine runs, not how far it wanders).  A device without reference
     * rows is centred on its domain's pooled median. */
    const uint32_t *device;         /* any id per row */
    const uint8_t *reference;       /* 1 = a reference row of its device; NULL = every row is */
    int32_t reference_class;        /* the normal class reference rows are weak labels of, or -1 */
    /* Leave-one-group-out (models_eval_logo): the reference rows that stay
     * references when their group is held out, because they are assumed
     * normal without anyone's label (scheduled baselines); a reference that
     * rests on a label (a human's "normal") is hidden with the label.
     * NULL: every reference row stays. */
    const uint8_t *reference_label_free;
    /* The rows each domain's scale is measured on (NULL: its reference
     * rows, as above): e.g. every window a map of normal operation was
     * fitted on, many more than a commissioning period. */
    const uint8_t *scale_rows;
    /* More rows of normal operation for the target domain's scale only
     * (n_scale_x x n_feat, row-major; NULL / 0: none): windows that were
     * fitted with the features (a map's unlabeled candidates it took) but
     * are no rows of the learner: never labeled, never self-trained on,
     * never scored.  They count as scale rows of domain 0. */
    const float *scale_x;
    uint32_t n_scale_x;
};

struct fewshot_params {
    uint32_t protos;                /* prototypes per class, 1..FEWSHOT_MAX_PROTOS */
    uint32_t rounds;                /* self-training rounds, 0 = none */
    uint32_t per_round;             /* unlabeled rows a class may take per round, per labeled row */
    float margin;                   /* accept when d_best / d_second < margin (squared distances) */
    float pseudo_weight;            /* weight of a self-trained row */
    float shrink;                   /* metric: 0 = uniform weights, 1 = the labels' ratios alone */
    uint32_t max_features;          /* keep the features the metric ranks first; 0 = all */
    float reference_weight;         /* label weight of a device's reference rows as the
                                     * reference_class (0: not labels) */
    /* Label spreading over every row instead of the self-training rounds
     * (0: self-training).  A graph of each row's `propagate` nearest rows
     * in the learned metric (self-tuning Gaussian weights), the labels
     * spread along it (Zhou et al. 2004, alpha 0.99), each class's mass
     * normalised so a class with many weak labels does not flood the
     * others; an unlabeled row joins its best class when the second's
     * score is below margin x the best's, at pseudo_weight. */
    uint32_t propagate;
};

void models_fewshot_defaults(struct fewshot_params *p);

/* A nearest-prototype model on the features sel[0..n_sel) of the input
 * vector (n_feat long): z_s = (x[sel_s] - center_s) * scale_s (the metric
 * is folded into scale; no clipping, exactly what the device computes);
 * the class is that of the nearest prototype.  With per-device reference
 * the model keeps each training device's center (dev_center, n_dev x
 * n_sel); center is then the target domain's pooled one, for a device the
 * model has no reference of. */
struct fewshot_model {
    uint32_t n_feat, n_classes, n_protos, n_sel, n_dev;
    uint16_t *sel;                  /* n_sel, ascending */
    float *center, *scale;          /* n_sel each */
    float *proto;                   /* n_protos x n_sel */
    uint16_t *proto_class;          /* n_protos */
    uint32_t *dev_id;               /* n_dev, ascending */
    float *dev_center;              /* n_dev x n_sel */
};

/* Fit on d.  Needs at least one labeled row of weight 1 in domain 0 for every
 * class (MODEL_ETOOFEW otherwise).  *m is written only on success; free it
 * with models_fewshot_release. */
int models_fewshot_fit(const struct fewshot_data *d, const struct fewshot_params *p,
                       struct fewshot_model *m);
void models_fewshot_release(struct fewshot_model *m);

/* Class of one row (n_feat features); *d2_best the squared distance to its
 * prototype (may be NULL).  _device: centred on that device's reference
 * (the pooled center when the model has none for it). */
int models_fewshot_predict(const struct fewshot_model *m, const float *x, float *d2_best);
int models_fewshot_predict_device(const struct fewshot_model *m, uint32_t device, const float *x,
                                  float *d2_best);

/* The center a device's model uses: its own reference, else the pooled one. */
const float *models_fewshot_center(const struct fewshot_model *m, uint32_t device);

/* Rows of d centred and scaled on their devices' references (no metric, no
 * clipping), into out (n_rows x n_feat): what the learner starts from, for
 * the baselines' ablation on the same standardised features. */
int models_fewshot_referenced(const struct fewshot_data *d, float *out);

struct model;

/* The blob's nearest-prototype kind (MODEL_FEWSHOT) from a fitted model:
 * the selected features' indices (when fewer than n_feat), center, scale
 * (floored at 1e-6: a blob's scales are positive), prototypes and their
 * classes; threshold 0.5.  Fills kind, counts, n_selected, params; the
 * caller sets layout, channels, features and version.  _device: the blob
 * for one device, its reference as the center (schema/MODEL.md). */
int models_fewshot_export(const struct fewshot_model *fm, uint16_t normal_class, struct model *out);
int models_fewshot_export_device(const struct fewshot_model *fm, uint32_t device,
                                 uint16_t normal_class, struct model *out);

/* Fit within max_bytes of blob parameters (4 bytes each): first the
 * features are cut to those the metric ranks first (down to
 * FEWSHOT_MIN_FEATURES, or all when fewer), then the prototypes per class
 * (p->protos, p->protos - 1, ...); *protos_used says how many per class it
 * took.  MODEL_ETOOBIG when one per class on the fewest features does not
 * fit. */
#define FEWSHOT_MIN_FEATURES 24u
/* What a shipped model's parameters may take: the device's 8 KB of flash
 * less the score code (schema/MODEL.md); evaluation measures the model fitted
 * within it, the one that ships. */
#define FEWSHOT_PARAM_BYTES 7168u
int models_fewshot_fit_budget(const struct fewshot_data *d, const struct fewshot_params *p,
                              size_t max_bytes, struct fewshot_model *m, uint32_t *protos_used);

/* Bytes the model's blob parameters take on the device (4 per float:
 * selected indices when fewer than n_feat, center, scale, prototypes and
 * their classes). */
size_t models_fewshot_bytes(const struct fewshot_model *m);

/* The baselines, fitted on the labeled rows of weight 1 only, standardised
 * by the labeled rows' mean and deviation (as the server's classifier is):
 * k-NN (k neighbours, majority, ties to the nearest) and nearest centroid. */
struct fewshot_baseline {
    uint32_t n_feat, n_ref, k;      /* k = 0: nearest centroid over n_ref = classes */
    float *mean, *inv_std, *ref;
    int32_t *ref_class;
};
int models_baseline_fit(const struct fewshot_data *d, uint32_t k, struct fewshot_baseline *b);
int models_baseline_predict(const struct fewshot_baseline *b, const float *x);
void models_baseline_release(struct fewshot_baseline *b);

/* ---- evaluation (models_eval.c) ---- */

/* A figure with its 95% Wilson interval, or a refusal: ok = 0 and why says
 * what the labels lack. */
struct eval_figure {
    int ok;
    uint32_t hits, n;
    double value, lo, hi;
    char why[96];
};


#define EVAL_MIN_TEST 10u           /* windows behind an accuracy */
#define EVAL_MIN_CLASS_TEST 5u      /* windows of a class behind its recall */

struct eval_report {
    struct eval_figure accuracy;
    struct eval_figure recall[FEWSHOT_MAX_CLASSES];
    struct eval_figure false_alarm;  /* normal windows called a fault (when normal_class set) */
    struct eval_figure detection;    /* fault windows called any fault */
    uint32_t n_classes, n_groups;
};

/* Tally predictions against truth (label < 0: not scored) into r, refusing
 * each figure the counts cannot support.  normal_class < 0: no normal class. */
void models_eval_tally(const int32_t *truth, const int32_t *pred, uint32_t n, uint32_t n_classes,
                       int32_t normal_class, struct eval_report *r);

/* The learners leave-one-group-out can evaluate. */
enum eval_learner { EVAL_FEWSHOT, EVAL_KNN, EVAL_CENTROID };

/* Leave-one-group-out: for each group (recording, device, asset) with a
 * labeled row, fit on the labeled rows of the other groups (and every row as
 * unlabeled data for the few-shot learner; the held-out group's labels are
 * hidden), predict the group's labeled rows.  Rows of related equipment
 * (domain > 0: transfer) keep their labels in every fold and are never a
 * group, never tested.  Refuses (ok = 0 on every
 * figure) with fewer than two groups, and refuses a class's recall when no
 * other group labels it (the fold could not learn it). */
int models_eval_logo(const struct fewshot_data *d, const uint32_t *group, enum eval_learner how,
                     const struct fewshot_params *p, uint32_t knn_k, int32_t normal_class,
                     struct eval_report *r);

/* Features that are themselves fitted (the relations set's map of normal
 * operation): per fold, features(ctx, held, x) writes every row's vector
 * (n_rows x n_feat) computed with what was fitted on the rows outside group
 * `held` only, so no fold reads a map its test rows shaped.  A non-zero
 * return other than MODEL_ENOMEM leaves that fold's rows untested.
 * param_bytes: the learner's budget (0: FEWSHOT_PARAM_BYTES), less what
 * the fitted features take on the device. */
struct eval_refit {
    int (*features)(void *ctx, uint32_t held, float *x);
    void *ctx;
    uint32_t param_bytes;
    /* The learner's scale rows (struct fewshot_data) in that fold, what was
     * fitted with the features (the map's fit windows), into rows[n_rows];
     * called right after features for the same fold.  NULL: none. */
    int (*scale_rows)(void *ctx, uint32_t held, uint8_t *rows);
    /* That fold's extra scale rows (struct fewshot_data's scale_x), right
     * after scale_rows; NULL: none. */
    int (*scale_extra)(void *ctx, uint32_t held, const float **x, uint32_t *n);
};

/* models_eval_logo with the features refitted in each fold (refit NULL:
 * models_eval_logo). */
int models_eval_logo_refit(const struct fewshot_data *d, const uint32_t *group,
                           enum eval_learner how, const struct fewshot_params *p, uint32_t knn_k,
                           int32_t normal_class, const struct eval_refit *refit,
                           struct eval_report *r);

#endif
