/* fleet_int.h - what the fleet module's files share among themselves. */
#ifndef PRECURSOR_FLEET_INT_H
#define PRECURSOR_FLEET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "server/db/db.h"

/* The module's SQL, listed once (fleet.c), run with db_exec_own. */
enum fleet_sql_id {
    FLEET_SQL_DEVICE_KEY,       /* id -> public_key (bytea), status, last_seq */
    FLEET_SQL_TOKEN_INSERT,     /* sha, type, site, tags, uses, expires_s, pre -> id */
    FLEET_SQL_TOKEN_STATE,      /* sha -> id, revoked, expired, used_up */
    FLEET_SQL_TOKEN_REVOKE,     /* sha -> id (none when unknown or revoked already) */
    FLEET_SQL_DEVICE_ENROLL,    /* sha, id, public_key -> id, status when enrolled */
    FLEET_SQL_DEVICE_STATUS,    /* id, 'approve'|'revoke' -> status */
    FLEET_SQL_DEVICE_ROTATE,    /* id, new key, old key, ts_ms -> key_generation */
    FLEET_SQL_KEY_USED,         /* public_key -> device_id that held it */
    FLEET_SQL_COUNT
};
extern const struct db_sql fleet__sql[FLEET_SQL_COUNT];

/* Monotonic milliseconds. */
int64_t fleet__now_ms(void);
/* FNV-1a of a NUL-terminated string: slot choice for cache and buckets. */
uint32_t fleet__hash(const char *s);

/* Why a token cannot enroll: 0 when it can, else SRV_EENROLL with *why. */
int fleet__token_check(const char *tok, const char **why);

struct srv_request;
/* Base URL clients reached us by (Host header; a load balancer's). */
void fleet__base_url(const struct srv_request *rq, char *out, size_t cap);

#endif
