/* models_int.h - what the models module's files share: the statements it
 * owns (listed once, in models.c) and marking a model failed. */
#ifndef PRECURSOR_MODELS_INT_H
#define PRECURSOR_MODELS_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/featureset.h"
#include "server/models/models.h"

enum models_stmt {
    M_INSERT,       /* dataset, version, kind, by, feature_set (NULL: the kind's) -> id (no row: no such version) */
    M_GET,          /* id -> the model's row */
    M_CLAIM,        /* id -> dataset_id, version, kind, feature_set when it was queued */
    M_DONE,         /* id, metrics, test_vector, blob (binary), header, per snapshot: ids, classes, probabilities, margins (arrays) */
    M_FAILED,       /* id, error */
    M_KINEMATICS,   /* dataset, version -> the distinct shaft speeds and bearings of its machines (<= 2) */
    M_RELATED,      /* dataset, version, classes -> related types, shared classes, labeled snapshots */
    M_SCHEDULED,    /* dataset, version -> snapshot_id of its scheduled baseline snapshots */
    M_SNAP_DEVICES, /* dataset, version -> snapshot_id, device_id, scheduled, by snapshot_id */
    M_DEVICE_REF,   /* model, device, reference windows, blob (NULL) or NULL, predictions */
    M_DEVICE_REFS,  /* model -> its devices' references (no blobs) */
    M_DEVICE_BLOB,  /* model, device -> the blob made for it */
    M_COUNT
};

/* Run one of the statements above (db_exec_own on its table entry). */
int models__exec(enum models_stmt s, const char *const *vals, const int *lens, const int *fmts,
                 int binary, PGresult **out);

/* Record why model id will not be trained (best effort). */
void models__mark_failed(int64_t id, const char *why);

/* How many trainings may run at once (2); a POST beyond it is refused with
 * 503 before any model row exists.  A variable so the tests can fill it. */
extern int models__training_max;

/* Called on a training's thread once its model's row says 'training', before
 * the work; NULL (nothing called) in the server.  The tests hold a training
 * there, to stop the server under a training that is surely running. */
extern void (*models__training_started)(int64_t id);

/* The device's budget for one model (issue 7): flash and RAM; the few-shot
 * learner keeps its parameters within MODELS_FEWSHOT_PARAM_BYTES, the rest
 * of the flash is for the score code. */
#define MODELS_DEVICE_FLASH 8192
#define MODELS_DEVICE_RAM 2048
#define MODELS_FEWSHOT_PARAM_BYTES FEWSHOT_PARAM_BYTES

#include "server/models/models_fewshot.h"


/* ---- transfer from related equipment (models_transfer.c) ----------------- */

/* A related type's labels are evidence, not founding examples: weight < 1
 * in the learner (as a rule's), in a domain of their own. */
#define MODELS_TRANSFER_WEIGHT 0.5f
/* Windows borrowed at most, over all related types (each type an equal
 * share, every s-th of its windows): the learner's metric compares every
 * pair of labeled rows. */
#define MODELS_TRANSFER_MAX_ROWS 2000u
#define MODELS_TRANSFER_MAX_TYPES 8u
#define MODELS_TRANSFER_DROP (-2)       /* a row of no class the target shares */

/* Rows borrowed from related equipment types, in the target's feature
 * order; domain k + 1 for the k-th related type used. */
struct models_transfer {
    float *X;                   /* n x d */
    int32_t *label;             /* target class, or FEWSHOT_UNLABELED: a related normal */
    uint32_t *domain;
    size_t n, cap, n_labeled;
    uint16_t d;
    unsigned n_types;           /* related types whose windows came in */
    json_t *report;             /* what was looked at, used and why not */
};

struct ds_info;
struct featureset_spec;

/* The target class of a related window labeled related_class: its index
 * when it is one of shared[n_shared] and a class of the target version;
 * FEWSHOT_UNLABELED for "normal" (a related machine's normal windows only
 * standardise its own domain); MODELS_TRANSFER_DROP otherwise. */
int32_t models__transfer_label(const struct ds_info *target, const char *related_class,
                               const char *const *shared, size_t n_shared);

/* map[c] = the related version's channel named and united as the target's
 * channel c; 0, or -1 when one is missing. */
int models__transfer_channel_map(const struct ds_info *target, const struct ds_info *related,
                                 unsigned *map);

/* Append one related row: feat holds the related version's channels, per
 * features each; they are reordered to the target's by map.  0 or
 * MODEL_ENOMEM. */
int models__transfer_append(struct models_transfer *t, const float *feat, unsigned per,
                            const unsigned *map, unsigned channels, int32_t label,
                            uint32_t domain);

/* Load the related types' windows for a few-shot training of the target
 * version with feature set fs (a related type's own kinematics stand in for
 * the target's in the envelope set).  A type that cannot take part is
 * skipped with its reason in t->report; only SRV_ENOMEM fails.  model_id
 * names who froze the transfer versions. */
int models__transfer_load(const struct ds_info *target, const struct featureset_spec *fs,
                          int64_t model_id, struct models_transfer *t);
void models__transfer_release(struct models_transfer *t);

/* How the version's machines turn (models_train.c): per snapshot of the
 * version, its device's shaft speed and bearing (the view
 * device_kinematics).  A fleet's machines need not turn alike: each
 * window's envelope features are read at its own machine's defect
 * frequencies, and a device that turns otherwise than the model's blob
 * gets a blob of its own. */
#define MODELS_MAX_KINS 256
struct models_kinmap {
    size_t n;                               /* snapshots */
    int64_t *snap;                          /* ascending */
    uint16_t *idx;                          /* per snapshot, into kins */
    struct featureset_kin kins[MODELS_MAX_KINS];
    unsigned n_kins;
    unsigned modal;                         /* the one of the most snapshots: the model's blob */
};
/* 1 and *km filled when every snapshot's machine has a shaft speed (with
 * its bearing's geometry, or all 0 without one: the envelope set then reads
 * order bands and no defect energies), at most MODELS_MAX_KINS different
 * ones, else 0 and *why; release *km either way. */
int models__version_kinmap(const struct ds_info *in, struct models_kinmap *km, const char **why);
/* The kinematics of a snapshot's machine, NULL when it is not in km. */
const struct featureset_kin *models__kinmap_find(const struct models_kinmap *km, int64_t snapshot_id);
void models__kinmap_release(struct models_kinmap *km);

/* The evaluation every training run stores (models_evaluation.c): LOGO of
 * the few-shot learner and the baselines on the same windows, figures with
 * 95% intervals or null with a reason.  Windows whose label has weight < 1
 * (a rule's) are neither taught nor tested: a figure rests on human labels.
 * With transferred rows (tf, may be NULL or empty) the learner is evaluated
 * twice, with them in every fold (never tested) and without, and the JSON
 * says what transfer changed. */
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
    /* the learner's scale rows among rows[0..n) in that fold (the map's
     * fit windows), right after features for it; NULL: none */
    int (*scale_rows)(void *ctx, const size_t *rows, uint32_t n, uint32_t held, uint8_t *out);
    /* that fold's extra scale rows, no rows of the version (the map's
     * unlabeled candidates it took: fewshot_data.scale_x); NULL: none */
    int (*scale_extra)(void *ctx, uint32_t held, const float **x, uint32_t *n);
};
/* refit NULL: X is every row's vector, the same in every fold.  Each
 * device its own reference (few-shot; dev NULL: none): the version rows'
 * devices, their reference rows (ref) and of those the ones no label founds
 * (ref_free: scheduled baselines), which alone stay references of a
 * held-out group. */
struct models_devref {
    const uint32_t *dev;
    const uint8_t *ref, *ref_free;
    uint32_t n_dev;
};
json_t *models__evaluation(const float *X, const int *y, const float *weight,
                           const uint32_t *group, size_t n, uint16_t d,
                           const struct featureset_spec *fs, const struct ds_info *in,
                           const struct models_transfer *tf, const struct models_refit *refit,
                           const struct models_devref *dr);

#endif
