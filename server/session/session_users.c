/* session_users.c - the admin page's API: list the people who may log in and
 * add one.  Only the admin role gets an answer; operators and ml get 403
 * (the page shows them that refusal, the server is what enforces it).  The
 * command line (`precursor-server user add`) stays the way to make the
 * first admin. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/session/session.h"

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

static int need_admin(const struct srv_request *rq, struct srv_response *rs)
{
    if (rq->role != SRV_ROLE_ADMIN)
        return fail(rs, SRV_EFORBIDDEN, "the users page needs the admin role");
    return SRV_OK;
}

int session_username_ok(const char *s)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > SESSION_USERNAME_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

int session_users_list(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *items;
    int i, err;

    if ((err = need_admin(rq, rs)) != SRV_OK)
        return err;
    if ((err = db_exec(DB_USERS_LIST, NULL, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++) {
        json_error_t je;
        json_t *u = json_loads(PQgetvalue(r, i, 0), 0, &je);

        if (!u || json_array_append_new(items, u) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    PQclear(r);
    if (!items)
        return SRV_ENOMEM;
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items));
}

int session_user_create(struct srv_request *rq, struct srv_response *rs)
{
    char hash[crypto_pwhash_STRBYTES];
    const char *user, *pw, *role, *vals[3];
    json_error_t je;
    json_t *j = NULL;
    PGresult *r = NULL;
    int err;

    if ((err = need_admin(rq, rs)) != SRV_OK)
        return err;
    if (rq->body)
        j = json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
    user = json_string_value(json_object_get(j, "username"));
    pw = json_string_value(json_object_get(j, "password"));
    role = json_string_value(json_object_get(j, "role"));
    if (!session_username_ok(user)) {
        err = fail(rs, SRV_EBADREQ, "username: 1-64 of [A-Za-z0-9._-]");
        goto out;
    }
    if (!pw || strlen(pw) < SESSION_PASSWORD_MIN || strlen(pw) > AUTH_PASSWORD_MAX) {
        err = fail(rs, SRV_EBADREQ, "password: at least 10 characters");
        goto out;
    }
    if (!role || auth_role_parse(role) == SRV_ROLE_NONE) {
        err = fail(rs, SRV_EBADREQ, "role must be admin, operator or ml");
        goto out;
    }
    if (auth_password_hash(pw, hash, sizeof hash) != 0) {
        err = SRV_EINTERNAL;
        goto out;
    }
    vals[0] = user;
    vals[1] = role;
    vals[2] = hash;
    if ((err = db_exec(DB_USER_INSERT, vals, NULL, NULL, 0, &r)) != SRV_OK)
        goto out;
    if (PQntuples(r) != 1) {
        err = fail(rs, SRV_ECONFLICT, "a user of that name exists");
        goto out;
    }
    srv_log("info", "session: %s added user %s (%s)", rq->user_id > 0 ? rq->user_name : "a token",
            user, role);
    err = srv_respond_json_take(rs, 201, json_pack("{s:I,s:s,s:s}", "id",
                                                   (json_int_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                                                   "username", user, "role", role));
out:
    sodium_memzero(hash, sizeof hash);
    PQclear(r);
    json_decref(j);
    return err;
}
