/* agent_model.h - the agent's model slot: load a signed model blob, keep the
 * previous one, and run the installed model on the sample stream.
 *
 * A blob is used only if it verifies with the model-signing public key the
 * agent is configured to trust (--model-key), was trained for the channel
 * layout the source delivers (names and units, schema/MODEL.md), and records
 * a feature set this agent computes at the source's sample rate
 * (schema/featureset.h).  A blob that fails a check leaves the running model
 * untouched, and agent_model_slot_refusal() says why: the slot keeps the
 * current and the previous model so an operator (or a failed health check)
 * can roll back.
 *
 * Running: agent_model_slot_step() takes every frame into a window buffer
 * and, every `hop` frames once a window is full, computes the model's
 * feature vector with featureset_compute (the function the server trained
 * with) and scores it.  A model runs in one of two modes: shadow (scored and
 * counted for heartbeats, never acted on) or active (a window scoring at or
 * above the model's own threshold is an alarm).  Window buffers are
 * allocated when a model is installed, never in the sample path. */
#ifndef PRECURSOR_AGENT_MODEL_H
#define PRECURSOR_AGENT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "agent/core/detect.h"
#include "schema/model.h"

struct agent_config;
struct pipeline_config;
struct source;
struct agent_model_slot;

enum agent_model_mode {
    AGENT_MODEL_ACTIVE = 0,     /* alarms trigger the local action and a snapshot */
    AGENT_MODEL_SHADOW = 1      /* scored and reported, never acted on */
};

#define AGENT_MODEL_HIST 10     /* score histogram bins over [0, 1] */
#define AGENT_MODEL_BLOB_FILE "model.blob"     /* in the key folder */
#define AGENT_MODEL_MODE_FILE "model.mode"

/* What the running model did since it was installed (for heartbeats). */
struct agent_model_stats {
    uint32_t version;           /* 0: no model */
    int mode;
    float threshold;
    uint64_t windows;           /* windows scored */
    uint64_t above;             /* of them at or above the threshold */
    uint64_t alerts;            /* alarms the device acts on (or would, in shadow): windows
                                 * above, at most one per hold-off of data time */
    float max_score;
    double run_s;               /* seconds of samples scored (frames / rate) */
    uint64_t hist[AGENT_MODEL_HIST];
    struct featureset_spec features;
};

/* trusted_pk: 32 bytes, copied.  layout: MODEL_LAYOUT_LEN bytes, copied.
 * channels and rate: what the source delivers (a model trained at another
 * rate is refused). */
int agent_model_slot_new(const uint8_t trusted_pk[MODEL_PK_LEN],
                         const uint8_t layout[MODEL_LAYOUT_LEN], unsigned channels, double rate,
                         struct agent_model_slot **out);
void agent_model_slot_free(struct agent_model_slot *s);

/* The device this slot runs on (its id, 1..64 bytes): a blob made for one
 * device (schema/MODEL.md, MODEL_FLAG_DEVICE: its center is that device's
 * reference) is installed only when it names this one.  Without it such a
 * blob is refused (MODEL_EDEVICE). */
int agent_model_slot_set_device(struct agent_model_slot *s, const char *device_id);

/* Verify and install a blob (in mode AGENT_MODEL_ACTIVE unless set after);
 * on any error (MODEL_E*) the current model stays and
 * agent_model_slot_refusal() says why. */
int agent_model_slot_load(struct agent_model_slot *s, const uint8_t *blob, size_t len);
/* The same from a file, read with a bound of MODEL_MAX_BLOB bytes.
 * MODEL_EINVAL for I/O errors (errno says which). */
int agent_model_slot_load_file(struct agent_model_slot *s, const char *path);
/* Back to the previous model; MODEL_EINVAL when there is none. */
int agent_model_slot_rollback(struct agent_model_slot *s);

/* The last refusal's reason into buf ("" when none). */
void agent_model_slot_refusal(struct agent_model_slot *s, char *buf, size_t cap);

/* One frame (channels floats) at t_us.  Returns 1 when the frame completes
 * a window that scores at or above the model's threshold while the model is
 * active (an alarm to act on), else 0; *score (may be NULL) gets the latest
 * window's score (0 before the first).  Constant work but on hop frames. */
int agent_model_slot_step(struct agent_model_slot *s, const float *frame, float *score);
/* The feature vector of the last scored window (n floats, n <= cap);
 * 0 before the first. */
uint32_t agent_model_slot_last_features(struct agent_model_slot *s, float *out, uint32_t cap);

void agent_model_slot_set_mode(struct agent_model_slot *s, int mode);
/* The trigger hold-off (seconds) the alert count applies, as the pipeline does. */
void agent_model_slot_set_hold_off(struct agent_model_slot *s, double hold_off_s);
int agent_model_slot_mode(struct agent_model_slot *s);
void agent_model_slot_stats(struct agent_model_slot *s, struct agent_model_stats *out);
const char *agent_model_mode_name(int mode);    /* "active", "shadow" */

/* Keep the installed blob and its mode in dir (write to a temporary file,
 * fsync, rename), so a restart runs it from the first sample.  0 or -1. */
int agent_model_save(const char *dir, const uint8_t *blob, size_t len, int mode);
int agent_model_save_mode(const char *dir, int mode);

/* Non-NULL (the pipeline's hook) whenever a slot exists. */
uint32_t agent_model_slot_version(const struct agent_model_slot *s);   /* 0 = none */

/* Version of the model kept for roll-back; 0 = none. */
uint32_t agent_model_slot_previous(struct agent_model_slot *s);
/* Trust pk when no key is set yet (first contact); 0, or MODEL_ESIGNATURE when
 * another key is already pinned (it is never replaced). */
int agent_model_slot_set_key(struct agent_model_slot *s, const uint8_t pk[MODEL_PK_LEN]);
int agent_model_slot_has_key(struct agent_model_slot *s);
/* 1 when the installed model scores its own test input within [0, 1]. */
int agent_model_slot_healthy(struct agent_model_slot *s);

/* Channel layout digest of an open source. */
int agent_model_layout_of(const struct source *src, uint8_t out[MODEL_LAYOUT_LEN]);

/* Read a trusted key file: 32 raw bytes, or 64 hex digits, or standard
 * base64 of the 32 bytes (trailing whitespace ignored). */
int agent_model_read_key(const char *path, uint8_t pk[MODEL_PK_LEN]);

/* For `run` and `replay`: when --model is set, read --model-key, load the
 * blob for src's layout, and hook it into pc (active).  *out is NULL when no
 * model is configured.  Errors are fatal to start-up (a
 * configured but refused model means the operator's intent failed); err says
 * why. */
int agent_model_setup(const struct agent_config *c, const struct source *src,
                      struct pipeline_config *pc, struct agent_model_slot **out,
                      char *err, size_t errlen);

/* For `run` with a config poll: as agent_model_setup when --model is set;
 * otherwise a slot wired into pc, trusting --model-key when given, else the
 * key pinned in --key-dir, else none until the poll pins the server's.  A
 * model kept in --key-dir (AGENT_MODEL_BLOB_FILE, saved by the config poll)
 * is verified again and installed in its saved mode before the first
 * sample; a kept model that no longer verifies is logged and not used. */
int agent_model_setup_runtime(const struct agent_config *c, const struct source *src,
                              struct pipeline_config *pc, struct agent_model_slot **out,
                              char *err, size_t errlen);

#endif
