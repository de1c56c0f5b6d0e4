/* models_int.h - what the models module's files share: the statements it
 * owns (listed once, in models.c) and marking a model failed. */
#ifndef PRECURSOR_MODELS_INT_H
#define PRECURSOR_MODELS_INT_H

#include <libpq-fe.h>
#include <stdint.h>

#include "server/models/models.h"

enum models_stmt {
    M_INSERT,       /* dataset, version, kind, by, feature_set (NULL: the kind's) -> id (no row: no such version) */
    M_GET,          /* id -> the model's row */
    M_CLAIM,        /* id -> dataset_id, version, kind, feature_set when it was queued */
    M_DONE,         /* id, metrics, test_vector, blob (binary), header */
    M_FAILED,       /* id, error */
    M_KINEMATICS,   /* dataset, version -> the distinct shaft speeds and bearings of its machines (<= 2) */
    M_SCHEDULED,    /* dataset, version -> snapshot_id of its scheduled baseline snapshots */
    M_COUNT
};

/* Run one of the statements above (db_exec_own on its table entry). */
int models__exec(enum models_stmt s, const char *const *vals, const int *lens, const int *fmts,
                 int binary, PGresult **out);

/* Record why model id will not be trained (best effort). */
void models__mark_failed(int64_t id, const char *why);

/* The device's budget for one model (issue 7): flash and RAM; the few-shot
 * learner keeps its parameters within MODELS_FEWSHOT_PARAM_BYTES, the rest
 * of the flash is for the score code. */
#define MODELS_DEVICE_FLASH 8192
#define MODELS_DEVICE_RAM 2048
#define MODELS_FEWSHOT_PARAM_BYTES FEWSHOT_PARAM_BYTES

#include "server/models/models_fewshot.h"

struct ds_info;
struct featureset_spec;
typedef struct json_t json_t;

/* The evaluation every training run stores (models_evaluation.c): LOGO of
 * the few-shot learner and the baselines on the same windows, figures with
 * 95% intervals or null with a reason.  Windows whose label has weight < 1
 * (a rule's) are neither taught nor tested: a figure rests on human labels. */
/* Features fitted on the data (the relations set's map): the evaluation
 * asks for the vectors of the version's rows rows[0..n) computed with what
 * was fitted outside fold `held` (a row's fold: its group modulo
 * MODELS_EVAL_FOLDS); param_bytes is the learner's budget less what the
 * fitted features take on the device. */
#define MODELS_EVAL_FOLDS 10u
struct models_refit {
    int (*features)(void *ctx, const size_t *rows, uint32_t n, uint32_t held, float *x);
    void *ctx;
    uint32_t param_bytes;
};
/* refit NULL: X is every row's vector, the same in every fold. */
json_t *models__evaluation(const float *X, const int *y, const float *weight,
                           const uint32_t *group, size_t n, uint16_t d,
                           const struct featureset_spec *fs, const struct ds_info *in,
                           const struct models_refit *refit);

#endif
