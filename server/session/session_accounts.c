/* session_accounts.c - the account life cycle after "user add" and "token
 * create": list and revoke API tokens, disable a user, reset a user's
 * password (admin), change one's own password (the logged-in user, who must
 * give the current one).  Whatever changes a password or disables a user
 * ends that user's sessions: migration 0063's trigger does it, so a change
 * made in SQL does too.  The same operations are on the command line
 * (server/main.c) for the first admin and for scripts. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/session/session.h"
#include "server/text/text.h"

enum {
    AQ_TOKENS, AQ_TOKEN_REVOKE, AQ_USER_DISABLE, AQ_USER_DISABLE_NAME, AQ_USER_PASSWORD,
    AQ_USER_HASH, AQ_COUNT
};

static const struct db_sql accounts_sql[AQ_COUNT] = {
    /* never the digest: what a token is for, whose, and when it was used */
    [AQ_TOKENS] = { "session_tokens_list",
        "SELECT coalesce(json_agg(json_build_object('id', k.id, 'name', k.name, 'role', k.role,"
        " 'username', u.username, 'created_at', " DB_RFC3339("k.created_at") ","
        " 'last_used_at', " DB_RFC3339("k.last_used_at") ","
        " 'revoked_at', " DB_RFC3339("k.revoked_at") ") ORDER BY k.id), '[]') AS items"
        " FROM api_tokens k LEFT JOIN users u ON u.id = k.user_id", 0 },
    [AQ_TOKEN_REVOKE] = { "session_token_revoke",
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
        " WHERE id = $1::bigint RETURNING id, " DB_RFC3339("revoked_at") " AS revoked_at", 1 },
    [AQ_USER_DISABLE] = { "session_user_disable",
        "UPDATE users SET disabled_at = coalesce(disabled_at, now())"
        " WHERE id = $1::bigint RETURNING id, username", 1 },
    [AQ_USER_DISABLE_NAME] = { "session_user_disable_name",
        "UPDATE users SET disabled_at = coalesce(disabled_at, now())"
        " WHERE username = $1 RETURNING id, username", 1 },
    /* by id ($1) or by username ($2), whichever is given */
    [AQ_USER_PASSWORD] = { "session_user_password",
        "UPDATE users SET password_hash = $3"
        " WHERE (id = $1::bigint OR username = $2) AND disabled_at IS NULL"
        " RETURNING id, username", 3 },
    [AQ_USER_HASH] = { "session_user_hash",
        "SELECT username, password_hash FROM users WHERE id = $1::bigint"
        " AND disabled_at IS NULL", 1 },
};

int session_tokens_list(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    int err;

    (void)rq;
    if ((err = db_exec_own(&accounts_sql[AQ_TOKENS], NULL, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = srv_respond_items(rs, db_text_or(r, 0, "items", "[]"));
    PQclear(r);
    return err;
}

/* Run a one-row UPDATE on the {id} of the path: 0 with r, or 404. */
static int update_by_id(const struct srv_request *rq, int which, const char *what,
                        PGresult **r, struct srv_response *rs)
{
    const char *vals[1] = { rq->params[0] };
    int64_t id;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_EBADREQ, "id must be a positive integer");
    if ((err = db_exec_own(&accounts_sql[which], vals, NULL, NULL, 0, r)) != SRV_OK)
        return err;
    if (PQntuples(*r) != 1) {
        PQclear(*r);
        *r = NULL;
        return srv_failf(rs, SRV_ENOTFOUND, "no such %s", what);
    }
    return SRV_OK;
}

int session_token_revoke(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *j;
    int err = update_by_id(rq, AQ_TOKEN_REVOKE, "token", &r, rs);

    if (err != SRV_OK)
        return err;
    j = json_pack("{s:I,s:s}", "id", (json_int_t)db_int64(r, 0, "id"), "revoked_at",
                  db_text_or(r, 0, "revoked_at", ""));
    PQclear(r);
    srv_log("info", "session: %s revoked token %s", rq->user_id > 0 ? rq->user_name : "a token",
            rq->params[0]);
    return srv_respond_json_take(rs, 200, j);
}

int session_user_disable(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *j;
    int64_t id;
    int err;

    /* Locking oneself out is never what was meant. */
    if (rq->user_id > 0 && text_parse_id(rq->params[0], &id) == 0 && id == rq->user_id)
        return srv_fail(rs, SRV_ECONFLICT, "an admin cannot disable their own account");
    if ((err = update_by_id(rq, AQ_USER_DISABLE, "user", &r, rs)) != SRV_OK)
        return err;
    j = json_pack("{s:I,s:s,s:b}", "id", (json_int_t)db_int64(r, 0, "id"), "username",
                  db_text_or(r, 0, "username", ""), "disabled", 1);
    srv_log("info", "session: %s disabled user %s", rq->user_id > 0 ? rq->user_name : "a token",
            db_text_or(r, 0, "username", ""));
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

int session_password_set(int64_t id, const char *username, const char *password,
                         struct srv_response *rs)
{
    char hash[crypto_pwhash_STRBYTES], idb[24];
    const char *vals[3] = { idb, username ? username : "", hash };
    const char *why = auth_password_policy(password, username);
    PGresult *r = NULL;
    int err;

    if (why)
        return rs ? srv_fail(rs, SRV_EBADREQ, why) : SRV_EBADREQ;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if (auth_password_hash(password, hash, sizeof hash) != 0)
        return SRV_EINTERNAL;
    err = db_exec_own(&accounts_sql[AQ_USER_PASSWORD], vals, NULL, NULL, 0, &r);
    sodium_memzero(hash, sizeof hash);
    if (err == SRV_OK && PQntuples(r) != 1)
        err = rs ? srv_fail(rs, SRV_ENOTFOUND, "no such user, or it is disabled")
                 : SRV_ENOTFOUND;
    PQclear(r);
    return err;
}

/* The policy needs the username: an admin reset by id looks it up. */
static int username_of(int64_t id, char *out, size_t cap, char *hash, size_t hcap)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int err;

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = db_exec_own(&accounts_sql[AQ_USER_HASH], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_ENOTFOUND;
    }
    snprintf(out, cap, "%s", db_text_or(r, 0, "username", ""));
    if (hash)
        snprintf(hash, hcap, "%s", db_text_or(r, 0, "password_hash", ""));
    PQclear(r);
    return SRV_OK;
}

int session_user_password(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = srv_body_json(rq);
    const char *pw = json_string_value(json_object_get(j, "password"));
    char user[SESSION_USERNAME_MAX + 1];
    int64_t id;
    int err;

    static const char *const password_fields[] = { "password", NULL };

    rs->ignored = srv_json_ignored(rq, j, password_fields);
    if (text_parse_id(rq->params[0], &id) != 0)
        err = srv_fail(rs, SRV_EBADREQ, "id must be a positive integer");
    else if (!pw)
        err = srv_fail(rs, SRV_EBADREQ, "body must be {\"password\": \"...\"}");
    else if ((err = username_of(id, user, sizeof user, NULL, 0)) == SRV_ENOTFOUND)
        err = srv_fail(rs, SRV_ENOTFOUND, "no such user, or it is disabled");
    else if (err == SRV_OK && (err = session_password_set(id, user, pw, rs)) == SRV_OK) {
        srv_log("info", "session: %s set the password of %s; their sessions ended",
                rq->user_id > 0 ? rq->user_name : "a token", user);
        rs->status = 204;
    }
    json_decref(j);
    return err;
}

int session_password_change(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j;
    const char *cur, *pw;
    char user[SESSION_USERNAME_MAX + 1], hash[crypto_pwhash_STRBYTES + 1];
    int err;

    static const char *const change_fields[] = { "current_password", "new_password", NULL };

    if (rq->user_id <= 0)
        return srv_fail(rs, SRV_EBADREQ, "an API token has no password: log in to change yours");
    j = srv_body_json(rq);
    rs->ignored = srv_json_ignored(rq, j, change_fields);
    cur = json_string_value(json_object_get(j, "current_password"));
    pw = json_string_value(json_object_get(j, "new_password"));
    if (!cur || !pw)
        err = srv_fail(rs, SRV_EBADREQ, "body must be {\"current_password\", \"new_password\"}");
    else if (auth_password_policy(pw, rq->user_name))
        err = srv_fail(rs, SRV_EBADREQ, auth_password_policy(pw, rq->user_name));
    else if ((err = username_of(rq->user_id, user, sizeof user, hash, sizeof hash)) != SRV_OK)
        err = err == SRV_ENOTFOUND ? SRV_EUNAUTH : err;
    else if (auth_password_verify(hash, cur) != SRV_OK)
        err = srv_fail(rs, SRV_EFORBIDDEN, "the current password is wrong");
    else if ((err = session_password_set(rq->user_id, user, pw, rs)) == SRV_OK) {
        srv_log("info", "session: %s changed their password; their sessions ended", user);
        rs->status = 204;
    }
    sodium_memzero(hash, sizeof hash);
    json_decref(j);
    return err;
}

/* --- the command line's side (server/main.c) ------------------------------ */

int session_tokens_json(char **out)
{
    PGresult *r = NULL;
    int err = db_exec_own(&accounts_sql[AQ_TOKENS], NULL, NULL, NULL, 0, &r);

    if (err != SRV_OK)
        return err;
    *out = strdup(db_text_or(r, 0, "items", "[]"));
    PQclear(r);
    return *out ? SRV_OK : SRV_ENOMEM;
}

int session_token_revoke_id(int64_t id)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int err;

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    err = db_exec_own(&accounts_sql[AQ_TOKEN_REVOKE], vals, NULL, NULL, 0, &r);
    if (err == SRV_OK && PQntuples(r) != 1)
        err = SRV_ENOTFOUND;
    PQclear(r);
    return err;
}

int session_user_disable_name(const char *username)
{
    const char *vals[1] = { username };
    PGresult *r = NULL;
    int err = db_exec_own(&accounts_sql[AQ_USER_DISABLE_NAME], vals, NULL, NULL, 0, &r);

    if (err == SRV_OK && PQntuples(r) != 1)
        err = SRV_ENOTFOUND;
    PQclear(r);
    return err;
}
