/* models.h - models the server trains from dataset versions, the key it
 * signs them with, and the maths and C header generator behind them.
 *
 * POST /api/v1/models queues a training job that runs in a background thread
 * (models_train.c); GET returns its status, grouped cross-validation metrics
 * and the test vector; the blob (schema/MODEL.md) is signed with the
 * server's Ed25519 model key (--model-key-file, else one generated under
 * var/ on first use) whose public half GET /api/v1/models/signing-key gives
 * to agents.  Handlers return SRV_E* codes; the maths returns MODEL_E*. */
#ifndef PRECURSOR_MODELS_H
#define PRECURSOR_MODELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "schema/model.h"

struct srv_request;
struct srv_response;

int models_api_create(struct srv_request *rq, struct srv_response *rs);
int models_api_get(struct srv_request *rq, struct srv_response *rs);
/* GET /api/v1/models: every model, newest first (models_list.c). */
int models_api_list(struct srv_request *rq, struct srv_response *rs);
int models_api_header(struct srv_request *rq, struct srv_response *rs);
/* ?device=<id>: the blob made for that device (404 when it has none: it
 * runs the model's). */
int models_api_blob(struct srv_request *rq, struct srv_response *rs);
/* GET /api/v1/models/{id}/devices: per device of a few-shot model's version,
 * its reference windows, its own blob's sha256 and bytes (when it has
 * one) and the server's prediction for its windows. */
int models_api_devices(struct srv_request *rq, struct srv_response *rs);
int models_api_signing_key(struct srv_request *rq, struct srv_response *rs);

/* Key file to use (copied; serve's --model-key-file); NULL:
 * var/model-signing.key, made when absent.
 * The file holds the 64-byte libsodium secret key (seed || public key). */
void models_set_key_file(const char *path);

/* The signing key pair, loaded or generated once.  0 or SRV_E*. */
int models_signing_key(uint8_t sk[64], uint8_t pk[32]);

/* serve is stopping: waits up to wait_ms for the models training in threads
 * of their own, then marks each still training failed with the reason (its
 * thread ends with the process).  How many were so marked. */
int models_training_stop(unsigned wait_ms);

/* Train model id now, in the calling thread (the worker and the tests). */
int models_train(int64_t id);

/* ---- the alarm budget (models_budget.c) ----------------------------------- */

/* The fleet setting (alarm_budget): ISA-18.2's 6 alerts per operator-hour by
 * default, one operator for every active device unless devices_per_operator
 * says otherwise; an active model over its device's share for
 * rollback_after_s of running time is rolled back there. */
struct models_budget {
    double per_operator_hour;
    int devices_per_operator;       /* 0: every active device */
    double rollback_after_s;
    long active_devices;
    char updated_by[160];           /* as auth_actor writes it (AUTH_ACTOR_MAX) */
    int64_t updated_us;
};

int models_budget_get(struct models_budget *out);
/* SRV_EBADREQ when a value is out of range. */
int models_budget_set(double per_operator_hour, int devices_per_operator, double rollback_after_s,
                      const char *by);
/* One device's share per hour, capped at one per hold-off (0: no cap). */
double models_budget_device_per_hour(const struct models_budget *b, double hold_off_s);

/* ---- the maths (models_fit.c) -------------------------------------------- */

/* Anomaly model from n normal vectors of d features (row-major X[n][d]):
 * per-feature mean and standard deviation (floored), and scale = the
 * `quantile` (0..1) of the training distances, so that a training vector at
 * that quantile scores 0.5.  Needs n >= 2.  Fills kind, n_features, params,
 * threshold (0.5); the caller sets layout, channel_count and version. */
int models_train_anomaly(const float *X, size_t n, uint16_t d, float quantile, struct model *out);

/* Nearest-centroid classifier over k classes, y[i] in 0..k-1.  Every class
 * needs at least one example, otherwise MODEL_ETOOFEW and *bad_class (may be
 * NULL) names it.  normal_class may be MODEL_NO_CLASS. */
int models_train_centroid(const float *X, const int *y, size_t n, uint16_t d, uint16_t k,
                          uint16_t normal_class, struct model *out, int *bad_class);

/* Calibrate an anomaly model's threshold on held-out normal vectors
 * (cal[n][d], never used to fit it): the smallest score that at most
 * floor(target * n) of them reach, so the false alarms the budget allows are
 * measured, not assumed.  *alarms gets how many reach it.  With target * n
 * < 1 the threshold lies just above the highest held-out score (0 alarms,
 * and the rate is only bounded by 1/n).  MODEL_ETOOFEW when n < 1. */
int models_calibrate_threshold(struct model *m, const float *cal, size_t n, double target,
                               size_t *alarms);

/* ---- the C header (models_header.c) -------------------------------------- */

/* The model as one C99 header: parameters as hexadecimal float literals,
 * `<prefix>_score(const float *x)` computing exactly model_score, and the
 * test vector with its expected score.  prefix is [a-z_][a-z0-9_]{0,31}.
 * *out is a malloc'd NUL-terminated string. */
int models_emit_header(const struct model *m, const char *prefix, char **out, size_t *out_len);

#endif
