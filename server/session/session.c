/* session.c - see session.h.
 *
 * The cookie is 32 random bytes in hex; the database keeps only its SHA-256,
 * so a leaked table gives no usable session.  A login for an unknown user
 * still runs one Argon2id verification so that timing does not tell which
 * usernames exist. */
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/session/session.h"

#define SESSION_HEX_LEN 64

static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_init(void)
{
    if (auth_password_hash("not a password of anyone", dummy_hash, sizeof dummy_hash) != 0)
        dummy_hash[0] = '\0';
}

static int is_hex64(const char *s)
{
    size_t i;

    for (i = 0; i < SESSION_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int session_cookie_value(const char *h, char *out, size_t cap)
{
    const size_t klen = strlen(SESSION_COOKIE);
    const char *p = h;

    if (!h || cap < SESSION_HEX_LEN + 1)
        return -1;
    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, SESSION_COOKIE, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, ";");

            while (n && v[n - 1] == ' ')
                n--;
            if (n != SESSION_HEX_LEN || !is_hex64(v))
                return -1;
            memcpy(out, v, SESSION_HEX_LEN);
            out[SESSION_HEX_LEN] = '\0';
            return 0;
        }
        p += strcspn(p, ";");
    }
    return -1;
}

struct session_row {
    int64_t user_id;
    char username[65];
    enum srv_role role;
    char csrf[SESSION_HEX_LEN + 1];
};

/* Look the request's cookie up.  SRV_EUNAUTH when there is none or it is
 * unknown or expired. */
static int session_find(const struct srv_request *rq, struct session_row *out,
                        uint8_t sha[32])
{
    char hex[SESSION_HEX_LEN + 1];
    const char *vals[1];
    int lens[1] = { 32 }, fmts[1] = { 1 };
    PGresult *r = NULL;
    int err;

    if (!rq->header || session_cookie_value(rq->header(rq, "Cookie"), hex, sizeof hex) != 0)
        return SRV_EUNAUTH;
    auth_sha256(hex, SESSION_HEX_LEN, sha);
    vals[0] = (const char *)sha;
    err = db_exec(DB_SESSION_LOOKUP, vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1 || PQgetlength(r, 0, 3) != SESSION_HEX_LEN) {
        PQclear(r);
        return SRV_EUNAUTH;
    }
    out->user_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    snprintf(out->username, sizeof out->username, "%s", PQgetvalue(r, 0, 1));
    out->role = auth_role_parse(PQgetvalue(r, 0, 2));
    memcpy(out->csrf, PQgetvalue(r, 0, 3), SESSION_HEX_LEN + 1);
    PQclear(r);
    return SRV_OK;
}

int session_auth(struct srv_request *rq)
{
    struct session_row s;
    uint8_t sha[32];
    int err = session_find(rq, &s, sha);

    if (err != SRV_OK)
        return err;
    if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
        const char *t = rq->header(rq, SESSION_CSRF_HEADER);

        /* The cookie rides along with any cross-site request the browser
         * makes; the token only with ours, since only our page can read it. */
        if (!t || strlen(t) != SESSION_HEX_LEN ||
            sodium_memcmp(t, s.csrf, SESSION_HEX_LEN) != 0)
            return SRV_EFORBIDDEN;
    }
    rq->role = s.role;
    rq->user_id = s.user_id;
    snprintf(rq->user_name, sizeof rq->user_name, "%s", s.username);
    return SRV_OK;
}

int session_actor(const struct srv_request *rq, char *out, size_t cap)
{
    char id[24];
    const char *vals[1] = { id };
    PGresult *r = NULL;
    int err;

    if (rq->user_id > 0) {
        snprintf(out, cap, "%s", rq->user_name);
        return SRV_OK;
    }
    snprintf(id, sizeof id, "%lld", (long long)rq->token_id);
    err = db_exec(DB_TOKEN_NAME, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_EUNAUTH;
    }
    snprintf(out, cap, "token:%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return SRV_OK;
}

/* Secure only when the client reached us over TLS (a terminating proxy
 * says so); a plain-HTTP development server would otherwise never get its
 * cookie back. */
static int behind_tls(const struct srv_request *rq)
{
    const char *p = rq->header ? rq->header(rq, "X-Forwarded-Proto") : NULL;

    return p && strcasecmp(p, "https") == 0;
}

static void set_cookie(const struct srv_request *rq, struct srv_response *rs,
                       const char *value, int max_age)
{
    snprintf(rs->set_cookie, sizeof rs->set_cookie,
             "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s", SESSION_COOKIE,
             value, max_age, behind_tls(rq) ? "; Secure" : "");
}

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

/* The address failed logins are counted under; "-" when the http layer
 * could not tell (all such requests then share one budget). */
static const char *client_of(const struct srv_request *rq)
{
    return rq->client_addr[0] ? rq->client_addr : "-";
}

static int record_attempt(const struct srv_request *rq, const char *user, int ok)
{
    const char *vals[3] = { user, client_of(rq), ok ? "true" : "false" };
    PGresult *r = NULL;
    int err = db_exec(DB_LOGIN_RECORD, vals, NULL, NULL, 0, &r);

    PQclear(r);
    return err;
}

/* A guesser spreading over many usernames is stopped by its address, one
 * spreading over many addresses by the username's count. */
static int too_many_failures(const struct srv_request *rq, const char *user, int *err)
{
    char win[16];
    const char *vals[3] = { user, win, client_of(rq) };
    PGresult *r = NULL;
    long n_user, n_client, n_all;

    snprintf(win, sizeof win, "%d", SESSION_FAIL_WINDOW_S);
    *err = db_exec(DB_LOGIN_FAILS, vals, NULL, NULL, 0, &r);
    if (*err != SRV_OK)
        return 1;
    n_user = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    n_client = strtol(PQgetvalue(r, 0, 1), NULL, 10);
    n_all = strtol(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    return n_user >= SESSION_FAIL_MAX_USER || n_client >= SESSION_FAIL_MAX_CLIENT ||
           n_all >= SESSION_FAIL_MAX_ALL;
}

static int respond_session(struct srv_response *rs, const char *user, enum srv_role role,
                           const char *csrf)
{
    return srv_respond_json_take(rs, 200, json_pack("{s:s,s:s,s:s?}", "username", user,
                                                    "role", auth_role_name(role),
                                                    "csrf", csrf));
}

int session_login(struct srv_request *rq, struct srv_response *rs)
{
    json_error_t je;
    json_t *j = NULL;
    const char *user, *pw, *ctype = rq->header ? rq->header(rq, "Content-Type") : NULL;
    const char *vals[4];
    int lens[4] = { 32, 0, 0, 0 }, fmts[4] = { 1, 0, 0, 0 };
    PGresult *r = NULL;
    uint8_t raw[32], sha[32];
    char cookie[SESSION_HEX_LEN + 1], csrf[SESSION_HEX_LEN + 1], uid[24], ttl[16];
    enum srv_role role;
    int err, limited;

    /* A cross-site form cannot send application/json without a CORS
     * preflight we never grant: this stops login CSRF. */
    if (!ctype || strncasecmp(ctype, "application/json", 16) != 0)
        return fail(rs, SRV_EMEDIA, "login takes application/json");
    if (rq->body)
        j = json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
    user = json_string_value(json_object_get(j, "username"));
    pw = json_string_value(json_object_get(j, "password"));
    if (!user || !pw || !*user || strlen(user) > 64 || !*pw || strlen(pw) > AUTH_PASSWORD_MAX) {
        err = fail(rs, SRV_EBADREQ, "username and password required");
        goto out;
    }
    limited = too_many_failures(rq, user, &err);
    if (err != SRV_OK)
        goto out;
    if (limited) {
        err = fail(rs, SRV_ERATELIMIT, "too many failed logins: wait a few minutes");
        goto out;
    }
    vals[0] = user;
    err = db_exec(DB_LOGIN_USER, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) != 1) {
        pthread_once(&dummy_once, dummy_init);
        if (dummy_hash[0])
            (void)auth_password_verify(dummy_hash, pw);
        record_attempt(rq, user, 0);
        err = fail(rs, SRV_EUNAUTH, "wrong username or password");
        goto out;
    }
    if (auth_password_verify(PQgetvalue(r, 0, 2), pw) != SRV_OK) {
        record_attempt(rq, user, 0);
        err = fail(rs, SRV_EUNAUTH, "wrong username or password");
        goto out;
    }
    record_attempt(rq, user, 1);
    role = auth_role_parse(PQgetvalue(r, 0, 1));
    snprintf(uid, sizeof uid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;

    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(cookie, sizeof cookie, raw, sizeof raw);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(csrf, sizeof csrf, raw, sizeof raw);
    auth_sha256(cookie, SESSION_HEX_LEN, sha);
    snprintf(ttl, sizeof ttl, "%d", SESSION_TTL_S);
    vals[0] = (const char *)sha;
    vals[1] = uid;
    vals[2] = csrf;
    vals[3] = ttl;
    err = db_exec(DB_SESSION_INSERT, vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        goto out;
    set_cookie(rq, rs, cookie, SESSION_TTL_S);
    err = respond_session(rs, user, role, csrf);
    srv_log("info", "session: %s logged in", user);
out:
    sodium_memzero(cookie, sizeof cookie);
    PQclear(r);
    json_decref(j);
    return err;
}

int session_get(struct srv_request *rq, struct srv_response *rs)
{
    struct session_row s;
    uint8_t sha[32];
    char actor[200];
    int err;

    if (rq->user_id <= 0) {
        /* An API token: say whose, no CSRF needed. */
        err = session_actor(rq, actor, sizeof actor);
        if (err != SRV_OK)
            return err;
        return respond_session(rs, actor, rq->role, NULL);
    }
    err = session_find(rq, &s, sha);
    if (err != SRV_OK)
        return err;
    return respond_session(rs, s.username, s.role, s.csrf);
}

int session_logout(struct srv_request *rq, struct srv_response *rs)
{
    struct session_row s;
    uint8_t sha[32];
    const char *vals[1] = { (const char *)sha };
    int lens[1] = { 32 }, fmts[1] = { 1 };
    PGresult *r = NULL;
    int err;

    if (rq->user_id <= 0)
        return fail(rs, SRV_EBADREQ, "no browser session to end");
    err = session_find(rq, &s, sha);
    if (err != SRV_OK)
        return err;
    err = db_exec(DB_SESSION_DELETE, vals, lens, fmts, 0, &r);
    PQclear(r);
    if (err != SRV_OK)
        return err;
    set_cookie(rq, rs, "", 0);
    rs->status = 204;
    return SRV_OK;
}
