/* agent_model.h - the agent's model slot: load a signed model blob, keep the
 * previous one, hand the detector a struct detect_model.
 *
 * A blob is used only if it verifies with the model-signing public key the
 * agent is configured to trust (--model-key) and was trained for the channel
 * layout the source delivers (names and units, schema/MODEL.md).  A blob that
 * fails either check, or does not parse, leaves the running model untouched:
 * the slot keeps the current and the previous model so an operator (or a
 * failed health check) can roll back.  All buffers are allocated by
 * agent_model_slot_new(); loading allocates nothing but a read buffer. */
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

/* trusted_pk: 32 bytes, copied.  layout: MODEL_LAYOUT_LEN bytes, copied. */
int agent_model_slot_new(const uint8_t trusted_pk[MODEL_PK_LEN],
                         const uint8_t layout[MODEL_LAYOUT_LEN],
                         struct agent_model_slot **out);
void agent_model_slot_free(struct agent_model_slot *s);

/* Verify and install a blob; on any error (MODEL_E*) the current model stays. */
int agent_model_slot_load(struct agent_model_slot *s, const uint8_t *blob, size_t len);
/* The same from a file, read with a bound of MODEL_MAX_BLOB bytes.
 * MODEL_EINVAL for I/O errors (errno says which). */
int agent_model_slot_load_file(struct agent_model_slot *s, const char *path);
/* Back to the previous model; MODEL_EINVAL when there is none. */
int agent_model_slot_rollback(struct agent_model_slot *s);

/* What detect_set_model() takes; NULL while no model is installed.  The
 * pointer stays valid for the slot's life and always scores with the
 * currently installed model. */
const struct detect_model *agent_model_slot_detect(const struct agent_model_slot *s);
uint32_t agent_model_slot_version(const struct agent_model_slot *s);   /* 0 = none */

/* Version of the model kept for roll-back; 0 = none. */
uint32_t agent_model_slot_previous(struct agent_model_slot *s);
/* Trust pk when no key is set yet (first contact); 0, or MODEL_ESIGNATURE when
 * another key is already pinned (it is never replaced). */
int agent_model_slot_set_key(struct agent_model_slot *s, const uint8_t pk[MODEL_PK_LEN]);
int agent_model_slot_has_key(struct agent_model_slot *s);
/* 1 when the installed model scores its own test input within [0, 1]. */
int agent_model_slot_healthy(struct agent_model_slot *s);
/* The slot's detector hook even while it holds no model (scores 0 then):
 * what a pipeline gets when models may arrive at run time. */
const struct detect_model *agent_model_slot_detect_always(struct agent_model_slot *s);

/* Channel layout digest of an open source. */
int agent_model_layout_of(const struct source *src, uint8_t out[MODEL_LAYOUT_LEN]);

/* Read a trusted key file: 32 raw bytes, or 64 hex digits, or standard
 * base64 of the 32 bytes (trailing whitespace ignored). */
int agent_model_read_key(const char *path, uint8_t pk[MODEL_PK_LEN]);

/* For `run` and `replay`: when --model is set, read --model-key, load the
 * blob for src's layout, and point pc at it (enabling DETECT_MODEL).  *out is
 * NULL when no model is configured.  Errors are fatal to start-up (a
 * configured but refused model means the operator's intent failed); err says
 * why. */
int agent_model_setup(const struct agent_config *c, const struct source *src,
                      struct pipeline_config *pc, struct agent_model_slot **out,
                      char *err, size_t errlen);

/* For `run` with a config poll: as agent_model_setup when --model is set;
 * otherwise an empty slot wired into pc (DETECT_MODEL on, scoring 0 until a
 * deployed model is installed), trusting --model-key when given, else no key
 * until the poll pins the server's.  The feature count is fixed to the
 * source's channels * DETECT_NFEAT. */
int agent_model_setup_runtime(const struct agent_config *c, const struct source *src,
                              struct pipeline_config *pc, struct agent_model_slot **out,
                              char *err, size_t errlen);

#endif
