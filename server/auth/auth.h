/* auth.h - credentials: API tokens (random, shown once, stored as SHA-256),
 * passwords (Argon2id via crypto_pwhash_str), the enrollment secret
 * (compared in constant time) and the Bearer check of read routes. */
#ifndef PRECURSOR_AUTH_H
#define PRECURSOR_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "server/srv/srv.h"

#define AUTH_TOKEN_PREFIX "prc_"
#define AUTH_TOKEN_LEN (4 + 64)         /* prefix + 32 random bytes in hex */
#define AUTH_PASSWORD_MAX 1024

int auth_init(void);                    /* sodium_init; 0 or SRV_EINTERNAL */

/* "admin" | "operator" | "ml" -> role, else SRV_ROLE_NONE. */
enum srv_role auth_role_parse(const char *s);
const char *auth_role_name(enum srv_role r);

/* A new token into out (cap > AUTH_TOKEN_LEN) and its SHA-256. */
int auth_token_new(char *out, size_t cap, uint8_t sha[32]);
void auth_sha256(const void *in, size_t len, uint8_t out[32]);   /* thread-safe */

/* Argon2id string (crypto_pwhash_STRBYTES) for password. */
int auth_password_hash(const char *password, char *out, size_t cap);
int auth_password_verify(const char *hash, const char *password);  /* 0 ok */

#define AUTH_PASSWORD_MIN 10
/* NULL when password may be set for username, else why not: shorter than
 * AUTH_PASSWORD_MIN, the username itself, too few distinct characters, a
 * run or keyboard sequence ("1234567890", "qwertyuiop"), or one of the
 * passwords every guesser tries first (a short list built in). */
const char *auth_password_policy(const char *password, const char *username);

/* Constant-time equality of a presented secret and the configured one
 * (both hashed first so their lengths do not leak).  1 when equal. */
int auth_secret_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Check "Authorization: Bearer <token>" against api_tokens; fills rq's
 * role, token_id and token_name.  SRV_EUNAUTH when absent, malformed or
 * unknown. */
int auth_bearer(struct srv_request *rq, const char *authorization);

/* Store a new API token by its SHA-256 (from auth_token_new) under name and
 * role ("admin" | "operator" | "ml").  0 and *id, or a database error. */
int auth_token_insert(const char *name, const char *role, const uint8_t sha[32], int64_t *id);

/* Who a request is, in the one form every column that records who made or
 * changed something holds (created_by, updated_by, a label's audit actor,
 * an alert's acknowledged_by and disposed_by): the username of a browser
 * session, else "token:<name>#<id>" for an API token: its name for a person
 * to read, its id because names repeat (a token made again under the same
 * name) and the id is what GET /api/v1/tokens and a revocation name.
 * From the request alone (auth_bearer read the name): no database trip.
 * Returns buf, which AUTH_ACTOR_MAX bytes always hold whole. */
#define AUTH_ACTOR_MAX 160      /* "token:" + a name of 128 bytes + "#" + 19 digits + NUL */
const char *auth_actor(const struct srv_request *rq, char *buf, size_t cap);

#endif
