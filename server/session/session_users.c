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

enum { UQ_LIST, UQ_INSERT };

static const struct db_sql users_sql[] = {
    /* the page's rows as one JSON array, built next to the columns */
    [UQ_LIST] = { "session_users_list",
        "SELECT coalesce(json_agg(json_build_object('id', id, 'username', username,"
        " 'role', role, 'created_at', " DB_RFC3339("created_at") ", 'disabled', disabled_at IS NOT NULL)"
        " ORDER BY username), '[]') AS items FROM users", 0 },
    [UQ_INSERT] = { "session_user_insert",
        "INSERT INTO users (username, role, password_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (username) DO NOTHING RETURNING id", 3 },
};

/* The route table admits admins only; the check stays here as well because
 * this is the one place that hands out logins. */
static int need_admin(const struct srv_request *rq, struct srv_response *rs)
{
    if (rq->role != SRV_ROLE_ADMIN)
        return srv_fail(rs, SRV_EFORBIDDEN, "the users page needs the admin role");
    return SRV_OK;
}

int session_user_insert(const char *username, const char *role, const char *hash, int64_t *id)
{
    const char *vals[3] = { username, role, hash };
    PGresult *r = NULL;
    int err = db_exec_own(&users_sql[UQ_INSERT], vals, NULL, NULL, 0, &r);

    if (err == SRV_OK && PQntuples(r) != 1)
        err = SRV_ECONFLICT;
    if (err == SRV_OK)
        *id = db_int64(r, 0, "id");
    PQclear(r);
    return err;
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
    int err;

    if ((err = need_admin(rq, rs)) != SRV_OK)
        return err;
    if ((err = db_exec_own(&users_sql[UQ_LIST], NULL, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = srv_respond_items(rs, db_text_or(r, 0, "items", "[]"));
    PQclear(r);
    return err;
}

/* The body of POST /api/v1/users, checked: strings borrowed from j. */
static int user_body(const json_t *j, const char **user, const char **pw, const char **role,
                     struct srv_response *rs)
{
    *user = json_string_value(json_object_get(j, "username"));
    *pw = json_string_value(json_object_get(j, "password"));
    *role = json_string_value(json_object_get(j, "role"));
    if (!session_username_ok(*user))
        return srv_fail(rs, SRV_EBADREQ, "username: 1-64 of [A-Za-z0-9._-]");
    if (!*pw)
        return srv_fail(rs, SRV_EBADREQ, "password: at least 10 characters");
    if (auth_password_policy(*pw, *user))
        return srv_fail(rs, SRV_EBADREQ, auth_password_policy(*pw, *user));
    if (!*role || auth_role_parse(*role) == SRV_ROLE_NONE)
        return srv_fail(rs, SRV_EBADREQ, "role must be admin, operator or ml");
    return SRV_OK;
}

int session_user_create(struct srv_request *rq, struct srv_response *rs)
{
    char hash[crypto_pwhash_STRBYTES];
    const char *user, *pw, *role;
    json_t *j = NULL;
    int64_t id = 0;
    int err;

    static const char *const user_fields[] = { "username", "password", "role", NULL };

    if ((err = need_admin(rq, rs)) != SRV_OK)
        return err;
    j = srv_body_json(rq);
    if ((err = user_body(j, &user, &pw, &role, rs)) != SRV_OK)
        goto out;
    rs->ignored = srv_json_ignored(rq, j, user_fields);
    if (auth_password_hash(pw, hash, sizeof hash) != 0) {
        err = SRV_EINTERNAL;
        goto out;
    }
    err = session_user_insert(user, role, hash, &id);
    if (err == SRV_ECONFLICT)
        err = srv_fail(rs, SRV_ECONFLICT, "a user of that name exists");
    if (err != SRV_OK)
        goto out;
    srv_log("info", "session: %s added user %s (%s)", rq->user_id > 0 ? rq->user_name : "a token",
            user, role);
    err = srv_respond_json_take(rs, 201, json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id,
                                                   "username", user, "role", role));
out:
    sodium_memzero(hash, sizeof hash);
    json_decref(j);
    return err;
}
