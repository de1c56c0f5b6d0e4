/* fleet.h - the device fleet: enrollment tokens, the install script and the
 * agent downloads it points at, approve/revoke/rotate, the cached device
 * lookup ingest uses, the per-device token bucket, and the background
 * maintenance (monthly snapshot partitions, retention).
 *
 * Run-time settings come from the serve command line (server/options.c) and
 * are process-wide: servers are stateless, so two of them on one database
 * only differ in these settings. */
#ifndef PRECURSOR_FLEET_H
#define PRECURSOR_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "server/srv/srv.h"

#define FLEET_PK_LEN 32
#define FLEET_SEQ_AHEAD_MAX 1000000u    /* seq beyond last_seq + this: refused */
#define FLEET_CACHE_TTL_MS 5000         /* other servers' revocations seen within */

struct fleet_settings {
    const char *agent_binary;   /* served as /downloads/precursor-agent-<arch>; NULL: 404 */
    unsigned retention_days;    /* 0: keep forever */
    double device_rate;         /* uploads per second per device (token refill) */
    double device_burst;        /* bucket size */
};

/* The settings in force (defaults until fleet_configure), and setting them
 * (copied; strings borrowed), before fleet_start. */
const struct fleet_settings *fleet_settings(void);
void fleet_configure(const struct fleet_settings *s);
/* The model-signing public key (64 hex digits, copied) that install.sh
 * gives the agents it installs; NULL or never set: none given. */
void fleet_set_install_model_key(const char *hex);

/* Start the maintenance thread against the database; fleet_stop joins it.
 * 0 or a negative SRV_E* code. */
int fleet_start(const char *database_url);
void fleet_stop(void);

/* --- cached device lookup (fleet_cache.c) --------------------------------- */

struct fleet_device {
    uint8_t pk[FLEET_PK_LEN];
    char status[12];            /* "active", "pending", "revoked" */
    int64_t last_seq;           /* highest stored seq known (may lag) */
};

/* Device by id: from the cache when fresh, else from the database (worker
 * connection).  SRV_EUNKNOWNDEV when not registered. */
int fleet_device_lookup(const char *dev, struct fleet_device *out);
/* The same from the database, always (the cache is not touched). */
int fleet_device_fetch(const char *dev, struct fleet_device *out);
/* Forget one device (after approve/revoke/rotate) or all of them. */
void fleet_cache_invalidate(const char *dev);
void fleet_cache_clear(void);
/* Raise the cached last_seq after a commit (no-op when not cached). */
void fleet_cache_note_seq(const char *dev, int64_t seq);

/* --- backpressure (fleet_bucket.c) ----------------------------------------- */

/* Take one token from dev's bucket.  0 when allowed; SRV_ERATELIMIT with
 * *retry_after_s (>= 1) when empty. */
int fleet_bucket_take(const char *dev, unsigned *retry_after_s);
void fleet_bucket_reset(void);

/* --- enrollment (fleet_enroll.c) ------------------------------------------- */

/* The identity a registering device sends: "device_id" and "public_key"
 * (standard base64 of 32 bytes) of a JSON body.  0, or SRV_EBADREQ with
 * the message set. */
struct json_t;
struct srv_response;
int fleet_identity_parse(const struct json_t *body, const char **dev,
                         uint8_t pk[FLEET_PK_LEN], struct srv_response *rs);

struct fleet_token_spec {
    const char *equipment_type;     /* may be NULL */
    const char *site;               /* may be NULL */
    const char *tags;               /* "a,b,c"; may be NULL */
    int uses;                       /* > 0; ignored when reusable */
    int reusable;
    long long expires_s;            /* seconds from now; 0: never */
    int pre_approved;
};

/* Create a token on this thread's connection; prints nothing.  tok gets the
 * token (cap > AUTH_TOKEN_LEN). */
int fleet_token_create(const struct fleet_token_spec *spec, char *tok, size_t cap);
/* Revokes the enrollment token tok: SRV_OK, SRV_EBADREQ for one not of the
 * form pen_<64 hex>, SRV_ENOTFOUND for one never made (or revoked already). */
int fleet_token_revoke(const char *tok);

/* "24h", "30m", "7d", "3600" (seconds) -> seconds.  0 or SRV_EBADREQ. */
int fleet_parse_duration(const char *s, long long *out);


/* Route handlers. */
int fleet_api_token_create(struct srv_request *rq, struct srv_response *rs);
int fleet_api_install_sh(struct srv_request *rq, struct srv_response *rs);
int fleet_api_download(struct srv_request *rq, struct srv_response *rs);
int fleet_api_device_enroll(struct srv_request *rq, struct srv_response *rs);
int fleet_api_device_approve(struct srv_request *rq, struct srv_response *rs);
int fleet_api_device_revoke(struct srv_request *rq, struct srv_response *rs);
int fleet_api_device_rotate(struct srv_request *rq, struct srv_response *rs);

/* The message a device signs to rotate from its current key to new_pk at
 * ts_ms (schema/devmsg.h: "precursor-rotate-v2\n<id>\n<base64 key>\n<ts>\n").
 * 0 or SRV_ETOOBIG. */
int fleet_rotate_message(const char *dev, const uint8_t new_pk[FLEET_PK_LEN], int64_t ts_ms,
                         char *out, size_t cap, size_t *len);

/* --- what devices sign besides envelopes (fleet_devmsg.c; pure) ----------- */

/* A heartbeat: X-Precursor-Timestamp and -Signature as sent, over device
 * id, timestamp and the body's bytes, by pk, within DEVMSG_FRESH_S of
 * now_ms.  0 with *ts_ms, or an error with rs's message set.  The caller
 * still refuses a timestamp not above the device's last accepted one. */
int fleet_heartbeat_verify(const char *dev, const char *ts_header, const char *sig64,
                           const uint8_t *body, size_t len, const uint8_t pk[FLEET_PK_LEN],
                           int64_t now_ms, int64_t *ts_ms, struct srv_response *rs);

struct fleet_rotation {
    uint8_t new_pk[FLEET_PK_LEN];
    uint8_t sig[64];
    int64_t ts_ms;
};
/* A rotation body {"public_key","signature","timestamp"}, signed by old_pk,
 * fresh, and to a key other than old_pk.  0 with *out, or an error with
 * rs's message set.  Keys used before (by any device) are the caller's to
 * refuse: that needs the database. */
int fleet_rotate_parse(const char *dev, const uint8_t *body, size_t len,
                       const uint8_t old_pk[FLEET_PK_LEN], int64_t now_ms,
                       struct fleet_rotation *out, struct srv_response *rs);
int64_t fleet_now_ms(void);

/* --- device health for the fleet API (fleet_devices.c) -------------------- */

#define FLEET_HEARTBEAT_STALE_S 600     /* no heartbeat for this long: "stale" */
#define FLEET_SPOOL_BACKLOG 1000        /* spooled files beyond this: "degraded" */
#define FLEET_VERSION_MAX 64            /* longer version strings are not echoed */

struct json_t;
/* The fields GET /api/v1/devices adds from the latest heartbeat:
 * agent_version, detector_version, model_version, spool_depth, spool_bytes,
 * drops, dead_lettered, upload_errors (null when the heartbeat lacks them),
 * heartbeat_age_s, and health: "ok", "degraded" (drops, dead letters or a
 * spool backlog), "stale" (no heartbeat for FLEET_HEARTBEAT_STALE_S),
 * "stopped" (the latest heartbeat was the agent's last, "stopping": true),
 * "unknown" (never sent one), "pending" or "revoked".  hb_body borrowed (may
 * be NULL); times in microseconds since the epoch.  New reference or NULL. */
struct json_t *fleet_device_health(const char *status, const struct json_t *hb_body,
                                   int64_t hb_received_us, int64_t now_us);
const char *fleet_device_health_word(const char *status, int have_heartbeat, int64_t age_s,
                                     int64_t spool_files, int64_t dropped, int64_t dead);

/* --- maintenance (fleet_maint.c) ------------------------------------------- */

/* Create partitions ahead and drop those past retention, on conn (a PGconn
 * *).  *dropped gets the number of partitions dropped. */
int fleet_maintain(void *conn, unsigned retention_days, int *dropped);

#endif
