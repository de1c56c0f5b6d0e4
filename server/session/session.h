/* session.h - browser logins: a session cookie (HttpOnly, SameSite=Strict,
 * Secure behind TLS), a CSRF token the page echoes in X-CSRF-Token on every
 * state-changing request, and failed logins counted to slow down guessing:
 * per (username, client address), since the pair's last success and over
 * 15 minutes (5 free, then a wait of 1 s doubling up to 15 minutes), and per
 * address over any usernames (20 in 5 minutes).  No count spans addresses,
 * so failures elsewhere never lock a user out.
 *
 * The server's authenticator (server/routes.c) calls session_auth() for
 * routes that take an API token when the request carries no Authorization
 * header, so every such route also serves a logged-in browser.  The session itself lives in PostgreSQL (only
 * the SHA-256 of the cookie is stored), so it survives a server restart and
 * is shared by every worker thread. */
#ifndef PRECURSOR_SESSION_H
#define PRECURSOR_SESSION_H

#include "server/srv/srv.h"

#define SESSION_COOKIE "prc_session"
#define SESSION_TTL_S (12 * 3600)
/* Failed logins are throttled per (username, client address), never per
 * account alone: a guesser must not be able to lock a user, the admin
 * included, out from every address. */
#define SESSION_FAIL_WINDOW_S 900       /* a pair's failures count this long */
#define SESSION_FAIL_FREE 5             /* failures of a pair before backing off */
#define SESSION_FAIL_BACKOFF_MAX_S 900  /* the wait doubles from 1 s up to this */
#define SESSION_CLIENT_WINDOW_S 300     /* an address's failures, any usernames... */
#define SESSION_FAIL_MAX_CLIENT 20      /* ...at most this many in that window */
#define SESSION_CSRF_HEADER "X-CSRF-Token"

/* Find the session cookie's 64 hex characters in a Cookie header value.
 * 0 and out filled (NUL-terminated, cap >= 65), or -1. */
int session_cookie_value(const char *cookie_header, char *out, size_t cap);
/* Seconds a (username, address) pair must wait after n failed logins in a
 * row (exposed for the unit test). */
unsigned session_backoff_s(long n);

/* Authenticate rq from its session cookie; for methods other than GET and
 * HEAD the X-CSRF-Token header must match the session's.  Sets rq->role,
 * rq->user_id and rq->user_name.  SRV_EUNAUTH, SRV_EFORBIDDEN (CSRF) or a
 * database error. */
int session_auth(struct srv_request *rq);

/* POST /api/v1/session {"username","password"} -> 200 {"username","role","csrf"}
 * and the cookie; GET /api/v1/session -> the same for the current session;
 * DELETE /api/v1/session -> 204 and an expired cookie. */
int session_login(struct srv_request *rq, struct srv_response *rs);
int session_get(struct srv_request *rq, struct srv_response *rs);
int session_logout(struct srv_request *rq, struct srv_response *rs);

/* The admin page (session_users.c).  GET /api/v1/users -> {"items":[{"id",
 * "username","role","created_at","disabled"}]}; POST /api/v1/users
 * {"username","password","role"} -> 201 {"id","username","role"}, 409 when
 * the name is taken.  Both 403 for any role but admin. */
#define SESSION_USERNAME_MAX 64
#define SESSION_PASSWORD_MIN 10
int session_username_ok(const char *s);     /* 1: 1-64 of [A-Za-z0-9._-] */
int session_users_list(struct srv_request *rq, struct srv_response *rs);
int session_user_create(struct srv_request *rq, struct srv_response *rs);

/* The account life cycle (session_accounts.c): GET /api/v1/tokens, DELETE
 * /api/v1/tokens/{id}, POST /api/v1/users/{id}/disable, POST
 * /api/v1/users/{id}/password (admin), POST /api/v1/session/password (the
 * logged-in user: current and new password).  A new password or a disabled
 * user ends that user's sessions (migration 0063). */
int session_tokens_list(struct srv_request *rq, struct srv_response *rs);
int session_token_revoke(struct srv_request *rq, struct srv_response *rs);
int session_user_disable(struct srv_request *rq, struct srv_response *rs);
int session_user_password(struct srv_request *rq, struct srv_response *rs);
int session_password_change(struct srv_request *rq, struct srv_response *rs);
/* Set the password of user id (or, id 0, of username) under
 * auth_password_policy: 0, SRV_EBADREQ (policy; message on rs when given),
 * SRV_ENOTFOUND, or a database error. */
int session_password_set(int64_t id, const char *username, const char *password,
                         struct srv_response *rs);
/* For the command line: every token as a JSON array (malloc'd text), revoke
 * one, disable a user by name.  0, SRV_ENOTFOUND or a database error. */
int session_tokens_json(char **out);
int session_token_revoke_id(int64_t id);
int session_user_disable_name(const char *username);

/* Store a user (the API above and `precursor-server user add`): username
 * and role as checked by the caller, hash from auth_password_hash.  0 and
 * *id, SRV_ECONFLICT when the name is taken, or a database error. */
int session_user_insert(const char *username, const char *role, const char *hash, int64_t *id);

#endif
