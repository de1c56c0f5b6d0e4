/* upload.h - the agent's uploader and heartbeat thread.
 *
 * Takes snapshots oldest-first from the spool and POSTs them
 * (application/octet-stream) to <server>/api/v1/snapshots with the agent's
 * HTTP client (agent/net: HTTPS through mbed TLS, proxy from the environment,
 * one kept-alive connection).  A 2xx deletes the spool file; a 4xx
 * that can never succeed (400, 403, 404, 409, 413, 422) dead-letters it;
 * 401, 408, 429, 5xx and network errors retry with exponential back-off and
 * full jitter, honouring Retry-After on 429/503.  A 403 `unknown_device` (the
 * server forgot the device) is retried too, and the device registered again
 * through upload_config.reregister when the agent can (struct
 * upload_forgotten, which the config poll shares).  Every heartbeat_s seconds a
 * JSON heartbeat signed with the device key (Ed25519, detached) goes to
 * /api/v1/heartbeats.  Runs in its own thread; a put into the spool wakes it.
 *
 * Functions return 0 or a negative UPLOAD_E* code. */
#ifndef PRECURSOR_UPLOAD_H
#define PRECURSOR_UPLOAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct spool;

enum upload_error {
    UPLOAD_OK = 0,
    UPLOAD_EINVAL = -1,
    UPLOAD_ENOMEM = -2,
    UPLOAD_ENET = -3,       /* the HTTP client could not be set up */
    UPLOAD_ETHREAD = -4
};

/* Counters the pipeline and the uploader share; the pipeline increments
 * its own with atomic_fetch_add, the heartbeat reads them all.  Owned by
 * the caller, must outlive upload_stop(). */
struct upload_counters {
    atomic_uint_least64_t samples;      /* frames seen by the detectors */
    atomic_uint_least64_t triggers;
    atomic_uint_least64_t upload_errors; /* failed attempts (network or non-2xx) */
    atomic_uint_least64_t heartbeats;   /* acknowledged by the server */
    atomic_uint_least64_t reregistrations; /* registered again with a server that forgot the device */
};

struct upload_forgotten;

struct upload_config {
    const char *server_url;     /* "https://host:port", no trailing path; copied */
    const char *device_id;      /* copied */
    uint8_t secret_key[64];     /* libsodium Ed25519 secret key; copied, wiped on stop */
    const char *agent_version;     /* the build ("0.7.0 (git abc1234)"); copied; may be NULL */
    const char *detector_version;  /* copied; may be NULL */
    const char *model_version;     /* copied; may be NULL */
    uint64_t max_send_bytes_per_s; /* 0 = unlimited */
    uint32_t backoff_base_ms;   /* 0 -> 1000 */
    uint32_t backoff_cap_ms;    /* 0 -> 300000 */
    uint32_t retry_after_cap_s; /* longest Retry-After honoured; 0 -> 3600 */
    uint32_t heartbeat_s;       /* 0 = no heartbeats */
    uint32_t timeout_s;         /* whole request; 0 -> 60 */
    const char *ca_file;        /* extra CA bundle (PEM), NULL = system; copied */
    const char *pin_sha256;     /* "sha256//BASE64[;...]" (libcurl's pin format); NULL = none; copied */
    uint64_t rng_seed;          /* jitter seed; 0 -> from the clock */
    /* Adds fields to each heartbeat (a json_t object), e.g. the running
     * model (agent/fleet/config_poll.h); called on the uploader thread.  May be NULL. */
    void (*heartbeat_fill)(void *ctx, void *json_object);
    void *heartbeat_ctx;
    /* The server answered an upload or a heartbeat 403 `unknown_device`: it
     * has forgotten the device (its database rebuilt, or restored from a
     * backup older than the device's registration).  Registers the device
     * again with the same id and key (agent/fleet/keys.h); 0 when the server
     * accepted it, else -1 with err saying why.  Called on the uploader
     * thread, at most once per back-off (upload_forgot_decide); abort is set
     * when the uploader stops.  NULL: the agent cannot register by itself (it
     * has no enrollment secret), and says once an hour what to run instead. */
    int (*reregister)(void *ctx, const atomic_bool *abort, char *err, size_t errlen);
    void *reregister_ctx;
    const char *key_dir;        /* for that line (`enroll --key-dir`); copied; may be NULL */
    /* The agent's one memory of a server that forgot the device, shared with
     * its other requests (the config poll); borrowed, must outlive
     * upload_stop().  When set, reregister, reregister_ctx and key_dir above
     * are its and not read here.  NULL: the uploader keeps one of its own
     * from them, the back-off and rng_seed. */
    struct upload_forgotten *forgotten;
};

/* What to do with a snapshot after an HTTP status (0 = no response). */
enum upload_verdict {
    UPLOAD_DONE = 1,            /* 2xx: delete */
    UPLOAD_RETRY = 2,           /* try again after back-off */
    UPLOAD_DEAD = 3             /* never succeeds: dead-letter */
};
enum upload_verdict upload_classify(long http_status);
/* The same with the answer's body, which the status alone cannot tell:
 * a 403 `device_not_active` (the device is pending an admin's approval, as
 * every device installed with a token that does not pre-approve is at
 * first) or `unknown_device` (the server does not know the device: it forgot
 * it, or it was never enrolled there) is retried, not dead-lettered: the
 * snapshots wait for the approval or the registration under the spool cap.
 * body may be NULL. */
enum upload_verdict upload_classify_answer(long http_status, const char *body);

/* Is this answer a 403 whose JSON error code is `unknown_device`: the
 * server has no such device at all?  1 or 0.  Only that: a device the
 * server knows but has not approved or has revoked (`device_not_active`),
 * a bad signature (`bad_signature`) or any other answer is an operator's
 * decision or another fault, never a reason to register again. */
int upload_answer_forgotten(long http_status, const char *body);

#define UPLOAD_FORGOT_HINT_S 3600   /* the no-secret line, at most once per this */

/* What the uploader does about an answer (upload_forgot_decide). */
enum upload_forgot_action {
    UPLOAD_FORGOT_NOTHING = 0,  /* not `unknown_device`, or too soon after the last try */
    UPLOAD_FORGOT_REGISTER,     /* register again now */
    UPLOAD_FORGOT_HINT          /* cannot register: log what to run */
};

/* The uploader's memory of its tries; zeroed to start. */
struct upload_forgot {
    int64_t next_ms;            /* monotonic; nothing before this */
    uint32_t attempt;           /* tries since the last success, for the back-off */
};

/* Decide on an answer (status, body) at monotonic now_ms.  can_register:
 * the agent has an enrollment secret.  A REGISTER sets the next try at
 * least one back-off later (upload_backoff_ms at st->attempt, base_ms at
 * least, drawn from *rng) and counts the attempt; the caller resets
 * st->attempt on success.  A HINT comes once per UPLOAD_FORGOT_HINT_S. */
enum upload_forgot_action upload_forgot_decide(struct upload_forgot *st, long http_status,
                                               const char *body, int can_register,
                                               int64_t now_ms, uint32_t base_ms,
                                               uint32_t cap_ms, uint64_t *rng);

/* What every request of the agent signed with the device key shares about a
 * server that forgot the device: the uploader's uploads and heartbeats and
 * the config poll's config and model GETs run on two threads, and either
 * may be the first (or the only one: an agent with nothing to upload and
 * heartbeats hours apart) to see `unknown_device`.  One back-off between
 * registrations and one hourly hint however many callers see the answer
 * (upload_forgot_decide on one struct upload_forgot), and never two
 * registrations at once: a caller that sees the answer while another
 * registers waits for that try and takes its outcome. */
struct upload_forgotten_config {
    const char *server_url;     /* for the log lines; copied */
    const char *device_id;      /* copied */
    const char *key_dir;        /* for the hint (`enroll --key-dir`); copied; may be NULL */
    uint32_t backoff_base_ms;   /* 0 -> 1000 */
    uint32_t backoff_cap_ms;    /* 0 -> 300000 */
    uint64_t rng_seed;          /* jitter seed; 0 -> from the clock */
    /* As upload_config.reregister: one registration request; NULL when the
     * agent has no enrollment secret (then the hint).  Called on the thread
     * of whichever caller's turn it is, one at a time. */
    int (*reregister)(void *ctx, const atomic_bool *abort, char *err, size_t errlen);
    void *reregister_ctx;
    struct upload_counters *counters;  /* reregistrations counted here; borrowed; may be NULL */
};

int upload_forgotten_new(const struct upload_forgotten_config *cfg, struct upload_forgotten **out);
void upload_forgotten_free(struct upload_forgotten *f);

/* Registrations again that worked so far: read before a request, given to
 * upload_forgotten_answer after it. */
uint64_t upload_forgotten_generation(struct upload_forgotten *f);

/* After an answer (status and its NUL-terminated body, may be NULL) to a
 * request sent when upload_forgotten_generation said gen: when it is a 403
 * `unknown_device`, register again or log the hint, as upload_forgot_decide
 * allows.  who starts the log lines ("upload", "agent: config poll"); next
 * says what the caller does once registered ("uploading what waits").
 * Returns 1 when the device is registered again since the request went out,
 * by this call or by another caller's meanwhile: the caller may send it
 * again at once; else 0.  abort (may be NULL) cuts a registration or the
 * wait for another caller's short. */
int upload_forgotten_answer(struct upload_forgotten *f, long http_status, const char *body,
                            uint64_t gen, const atomic_bool *abort, const char *who,
                            const char *next);

/* Full-jitter back-off before retry number `attempt` (0-based):
 * uniform in [0, min(cap, base * 2^attempt)] milliseconds, drawn from
 * *rng_state (xorshift64*, updated).  Deterministic for a given state. */
uint64_t upload_backoff_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms,
                           uint64_t *rng_state);

/* Parse a Retry-After value in seconds ("120"); -1 if absent or not a
 * number (HTTP dates are treated as absent). */
long upload_parse_retry_after(const char *value);

/* The heartbeat JSON body (malloc'd, caller frees) for the current state;
 * stopping adds "stopping": true (the agent's last heartbeat before it
 * stops, docs/FLEET.md). */
char *upload_heartbeat_json(const struct upload_config *cfg, struct spool *sp,
                            struct upload_counters *c, uint64_t uptime_s, int stopping);

struct upload;

/* Start the thread.  sp and c are borrowed and must outlive upload_stop().
 * *out is owned by the caller. */
int upload_start(const struct upload_config *cfg, struct spool *sp,
                 struct upload_counters *c, struct upload **out);
/* Stop (interrupting a back-off wait or a transfer), send one last heartbeat
 * ("stopping": true; at most FINAL_HB_TIMEOUT_S, see upload.c) when
 * heartbeats are on, join and free. */
void upload_stop(struct upload *u);

const char *upload_strerror(int err);

/* Is pin one or more "sha256//" + 44 base64 characters (a SHA-256 of the
 * server's SubjectPublicKeyInfo), joined by ';'?  1 or 0. */
int upload_pin_valid(const char *pin);

/* Is url a server base URL the uploader can reach: http[s]://host[:port]
 * (a path may follow)?  1 or 0.  Checked when the options are parsed, so a
 * mistyped --server is a usage error, not a registration retried forever. */
int upload_url_valid(const char *url);

#endif
