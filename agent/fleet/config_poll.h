/* config_poll.h - the agent's config poll: every --config-poll-s seconds a
 * device-signed GET of /api/v1/devices/<id>/config tells the agent which
 * model is deployed to it; when that is not the model it runs, it fetches
 * the blob (/api/v1/devices/<id>/model) and installs it into the model slot,
 * which verifies the server's signature, the channel layout and the feature
 * set first and keeps the running model on any refusal (logged with the
 * reason).  An installed model is kept in <key-dir>/model.blob with its
 * mode (shadow or active, from the answer), so a restart runs it at once.  The server's model-signing key
 * comes from --model-key, or is pinned from the first config answer into
 * <key-dir>/model-signing.pub and never replaced afterwards.  What runs,
 * what was kept for roll-back and the last refusal go into every heartbeat.
 * A 403 `unknown_device` (the server forgot the device) to either GET takes
 * the uploader's path (struct upload_forgotten, shared with it): the device
 * registered again when the agent can, then the GET once more.
 *
 * Signed GET (schema/MODEL.md): X-Precursor-Device, X-Precursor-Timestamp
 * (unix seconds) and X-Precursor-Signature, base64 Ed25519 by the device key
 * over "precursor-get-v1\n<path>\n<timestamp>".  Functions return 0 or a
 * negative CONFIG_POLL_E* code. */
#ifndef PRECURSOR_CONFIG_POLL_H
#define PRECURSOR_CONFIG_POLL_H

#include <stddef.h>
#include <stdint.h>

struct agent_model_slot;
struct upload_forgotten;

enum config_poll_error {
    CONFIG_POLL_OK = 0,
    CONFIG_POLL_EINVAL = -1,
    CONFIG_POLL_ENOMEM = -2,
    CONFIG_POLL_ENET = -3,      /* no answer, or not 200 */
    CONFIG_POLL_EANSWER = -4,   /* the answer does not parse or is out of bounds */
    CONFIG_POLL_EREFUSED = -5,  /* a deployed model was refused (kept the running one) */
    CONFIG_POLL_ETHREAD = -6
};

struct config_poll_config {
    const char *server_url;     /* copied */
    const char *device_id;      /* copied */
    uint8_t secret_key[64];     /* device key; copied, wiped on free */
    const char *key_dir;        /* where model-signing.pub is pinned; copied */
    double interval_s;          /* > 0 */
    const char *ca_file;        /* may be NULL; copied */
    const char *pin_sha256;     /* may be NULL; copied */
    double hold_off_s;          /* the trigger hold-off, reported with the model's counters */
    /* Shared with the uploader (agent/upload/upload.h): a 403
     * `unknown_device` registers the device again (or logs the hint) on the
     * same back-off and the same hourly limit, and the GET goes once more
     * after a registration that worked.  Borrowed, must outlive
     * config_poll_free(); NULL: such an answer is only logged. */
    struct upload_forgotten *forgotten;
};

/* What the config answer says (parsed by config_poll_parse). */
struct config_poll_answer {
    int has_model;
    uint32_t model_id;
    char sha256[65];            /* hex of the blob's SHA-256 */
    uint32_t bytes;
    int mode;                   /* AGENT_MODEL_SHADOW or _ACTIVE ("mode"; absent: active) */
    int has_key;
    uint8_t signing_key[32];
};

/* Parse and bound a config answer.  0 or CONFIG_POLL_EANSWER. */
int config_poll_parse(const char *json, size_t len, struct config_poll_answer *out);

/* The three signed-GET headers for path at unix time ts, as full header
 * lines ("X-Precursor-...: ...") into dev/tsl/sig (each >= 160 bytes). */
int config_poll_sign(const uint8_t sk[64], const char *device_id, const char *path, int64_t ts,
                     char *dev, char *tsl, char *sig, size_t cap);

struct config_poll;

/* slot is borrowed and must outlive config_poll_free().  Loads a pinned key
 * from key_dir when the slot has none. */
int config_poll_new(const struct config_poll_config *cfg, struct agent_model_slot *slot,
                    struct config_poll **out);
/* One poll now, on the calling thread: 0 when the answer was applied (a new
 * model installed or nothing to do), else a CONFIG_POLL_E* code. */
int config_poll_once(struct config_poll *p);
/* Poll every interval on a thread of its own until config_poll_free(). */
int config_poll_start(struct config_poll *p);
void config_poll_free(struct config_poll *p);

/* For upload_config.heartbeat_fill: sets "model_version" (the running
 * model's id, or null), "model" {version, previous, assigned, refused,
 * key, mode} and "models": one object per running model with what it did
 * since it was installed: {version, mode, threshold, windows,
 * above_threshold, alerts (runs of windows above: a standing alarm is one),
 * max_score, run_s, hold_off_s, hist (10 bins over [0, 1]),
 * features}.  An answer without a model while one runs (deployment rolled
 * back with nothing before it) puts the running model in shadow: it stops
 * acting but keeps reporting.
 * in the heartbeat object. */
void config_poll_heartbeat_fill(void *ctx, void *json_object);

const char *config_poll_strerror(int err);

#endif
