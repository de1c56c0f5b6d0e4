/* models_int.h - what the models module's files share: the statements it
 * owns (listed once, in models.c) and marking a model failed. */
#ifndef PRECURSOR_MODELS_INT_H
#define PRECURSOR_MODELS_INT_H

#include <libpq-fe.h>
#include <stdint.h>

#include "server/models/models.h"

enum models_stmt {
    M_INSERT,       /* dataset, version, kind, by -> id (no row: no such version) */
    M_GET,          /* id -> the model's row */
    M_CLAIM,        /* id -> dataset_id, version, kind when it was queued */
    M_DONE,         /* id, metrics, test_vector, blob (binary), header */
    M_FAILED,       /* id, error */
    M_KINEMATICS,   /* dataset, version -> the distinct shaft speeds and bearings of its machines (<= 2) */
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
json_t *models__evaluation(const float *X, const int *y, const float *weight,
                           const uint32_t *group, size_t n, uint16_t d,
                           const struct featureset_spec *fs, const struct ds_info *in);

#endif
