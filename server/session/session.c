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

/* Logins and sessions.  Cookie digests are passed as binary ($1::bytea). */
enum {
    SQ_LOGIN_USER, SQ_LOGIN_FAILS, SQ_LOGIN_RECORD, SQ_CREATE, SQ_FIND, SQ_END
};

static const struct db_sql session_sql[] = {
    [SQ_LOGIN_USER] = { "session_login_user",
        "SELECT id, role, password_hash FROM users"
        " WHERE username = $1 AND disabled_at IS NULL", 1 },
    /* $1 username, $2 pair window, $3 client address, $4 client window
     * (seconds): the pair's failures since its last success and how long
     * ago the last was, and the address's failures over any usernames */
    [SQ_LOGIN_FAILS] = { "session_login_fails",
        "WITH ok AS (SELECT coalesce(max(at), '-infinity') AS at FROM login_attempts"
        "  WHERE username = $1 AND client = $3 AND ok)"
        " SELECT count(*) FILTER (WHERE a.username = $1 AND a.at > ok.at) AS by_pair,"
        " coalesce(extract(epoch FROM now() - max(a.at) FILTER (WHERE a.username = $1)),"
        "  1e9)::float8 AS pair_idle_s,"
        " count(*) FILTER (WHERE a.at > now() - $4::int * interval '1 second') AS by_client"
        " FROM login_attempts a, ok WHERE a.client = $3 AND NOT a.ok"
        " AND a.at > now() - $2::int * interval '1 second'", 4 },
    /* old attempts are dropped on the way, so the table stays small */
    [SQ_LOGIN_RECORD] = { "session_login_record",
        "WITH gc AS (DELETE FROM login_attempts WHERE at < now() - interval '1 day')"
        " INSERT INTO login_attempts (username, client, ok) VALUES ($1, $2, $3::boolean)", 3 },
    [SQ_CREATE] = { "session_create",
        "WITH gc AS (DELETE FROM sessions WHERE expires_at < now())"
        " INSERT INTO sessions (token_sha256, user_id, csrf, expires_at)"
        " VALUES ($1::bytea, $2::bigint, $3, now() + $4::int * interval '1 second')", 4 },
    [SQ_FIND] = { "session_find",
        "SELECT u.id, u.username, u.role, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_sha256 = $1::bytea AND s.expires_at > now() AND u.disabled_at IS NULL", 1 },
    [SQ_END] = { "session_end", "DELETE FROM sessions WHERE token_sha256 = $1::bytea", 1 },
};

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
    err = db_exec_own(&session_sql[SQ_FIND], vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1 || db_len(r, 0, "csrf") != SESSION_HEX_LEN) {
        PQclear(r);
        return SRV_EUNAUTH;
    }
    out->user_id = db_int64(r, 0, "id");
    snprintf(out->username, sizeof out->username, "%s", db_text_or(r, 0, "username", ""));
    out->role = auth_role_parse(db_text(r, 0, "role"));
    memcpy(out->csrf, db_text(r, 0, "csrf"), SESSION_HEX_LEN + 1);
    PQclear(r);
    return SRV_OK;
}

int session_auth(struct srv_request *rq)
{
    struct session_row s;
    uint8_t sha[32];
    char cookie[SESSION_HEX_LEN + 1];
    int err = session_find(rq, &s, sha);

    /* A well-formed cookie that finds no session: it expired, was ended,
     * or is not ours; the browser should log in, not look for a token. */
    if (err == SRV_EUNAUTH && rq->header &&
        session_cookie_value(rq->header(rq, "Cookie"), cookie, sizeof cookie) == 0)
        rq->auth_message = "session expired or unknown: log in again";
    if (err != SRV_OK)
        return err;
    if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
        const char *t = rq->header(rq, SESSION_CSRF_HEADER);

        /* The cookie rides along with any cross-site request the browser
         * makes; the token only with ours, since only our page can read it. */
        if (!t || strlen(t) != SESSION_HEX_LEN ||
            sodium_memcmp(t, s.csrf, SESSION_HEX_LEN) != 0) {
            /* Not "not allowed for this role": the role may well be. */
            rq->auth_message = "missing or wrong X-CSRF-Token: a session changes state only "
                               "with the csrf its login answered";
            return SRV_EFORBIDDEN;
        }
    }
    rq->role = s.role;
    rq->user_id = s.user_id;
    snprintf(rq->user_name, sizeof rq->user_name, "%s", s.username);
    return SRV_OK;
}

/* Secure only when the client reached us over TLS: our own (--tls-cert) or
 * a terminating proxy's, which says so; a plain-HTTP development server
 * would otherwise never get its cookie back. */
static int behind_tls(const struct srv_request *rq)
{
    const char *p = rq->header ? rq->header(rq, "X-Forwarded-Proto") : NULL;

    return (rq->cfg && rq->cfg->tls) || (p && strcasecmp(p, "https") == 0);
}

static void set_cookie(const struct srv_request *rq, struct srv_response *rs,
                       const char *value, int max_age)
{
    snprintf(rs->set_cookie, sizeof rs->set_cookie,
             "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s", SESSION_COOKIE,
             value, max_age, behind_tls(rq) ? "; Secure" : "");
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

    return db_exec_own(&session_sql[SQ_LOGIN_RECORD], vals, NULL, NULL, 0, NULL);
}

/* Seconds a (username, address) pair waits after n failures in a row:
 * none for the first few, then 1 s doubling up to the cap. */
unsigned session_backoff_s(long n)
{
    long k = n - SESSION_FAIL_FREE;

    if (k < 0)
        return 0;
    if (k >= 20)
        return SESSION_FAIL_BACKOFF_MAX_S;
    return (1u << k) < SESSION_FAIL_BACKOFF_MAX_S ? 1u << k : SESSION_FAIL_BACKOFF_MAX_S;
}

/* Seconds this attempt must still wait (0: go on).  A guesser at one
 * account backs off per address it uses; one spreading over many usernames
 * is stopped by its address's budget.  No count ever spans addresses, so
 * failures elsewhere never lock the rightful user out. */
static unsigned login_wait(const struct srv_request *rq, const char *user, int *err)
{
    char win[16], cwin[16];
    const char *vals[4] = { user, win, client_of(rq), cwin };
    PGresult *r = NULL;
    long n_pair, n_client;
    double idle, wait;

    snprintf(win, sizeof win, "%d", SESSION_FAIL_WINDOW_S);
    snprintf(cwin, sizeof cwin, "%d", SESSION_CLIENT_WINDOW_S);
    *err = db_exec_own(&session_sql[SQ_LOGIN_FAILS], vals, NULL, NULL, 0, &r);
    if (*err != SRV_OK)
        return 0;
    n_pair = (long)db_int64(r, 0, "by_pair");
    idle = db_double(r, 0, "pair_idle_s");
    n_client = (long)db_int64(r, 0, "by_client");
    PQclear(r);
    if (n_client >= SESSION_FAIL_MAX_CLIENT)
        return SESSION_CLIENT_WINDOW_S;
    wait = (double)session_backoff_s(n_pair) - idle;
    return wait > 0 ? (unsigned)wait + 1 : 0;
}

static int respond_session(struct srv_response *rs, const char *user, enum srv_role role,
                           const char *csrf)
{
    return srv_respond_json_take(rs, 200, json_pack("{s:b,s:s,s:s,s:s?}", "authenticated", 1,
                                                    "username", user,
                                                    "role", auth_role_name(role),
                                                    "csrf", csrf));
}

/* Check user and password against the failure budget and the users table.
 * 0 with *uid and *role, or an error with the message set.  An unknown user
 * costs one Argon2id verification like a known one, and every answer on a
 * password is recorded (failures count against the budget). */
static int login_check(const struct srv_request *rq, const char *user, const char *pw,
                       int64_t *uid, enum srv_role *role, struct srv_response *rs)
{
    const char *vals[1] = { user };
    PGresult *r = NULL;
    int err;
    unsigned wait = login_wait(rq, user, &err);

    if (err != SRV_OK)
        return err;
    if (wait) {
        rs->retry_after = wait;
        return srv_fail(rs, SRV_ERATELIMIT,
                        "too many failed logins from this address: wait and retry");
    }
    err = db_exec_own(&session_sql[SQ_LOGIN_USER], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        pthread_once(&dummy_once, dummy_init);
        if (dummy_hash[0])
            (void)auth_password_verify(dummy_hash, pw);
        err = srv_fail(rs, SRV_EUNAUTH, "wrong username or password");
    } else if (auth_password_verify(db_text_or(r, 0, "password_hash", ""), pw) != SRV_OK) {
        err = srv_fail(rs, SRV_EUNAUTH, "wrong username or password");
    } else {
        *uid = db_int64(r, 0, "id");
        *role = auth_role_parse(db_text(r, 0, "role"));
    }
    PQclear(r);
    record_attempt(rq, user, err == SRV_OK);
    return err;
}

/* A new session for uid: random cookie and CSRF token, the cookie's digest
 * stored.  The cookie is set on rs, the CSRF token written to csrf. */
static int session_start(const struct srv_request *rq, int64_t uid,
                         char csrf[SESSION_HEX_LEN + 1], struct srv_response *rs)
{
    const char *vals[4];
    int lens[4] = { 32, 0, 0, 0 }, fmts[4] = { 1, 0, 0, 0 };
    uint8_t raw[32], sha[32];
    char cookie[SESSION_HEX_LEN + 1], uidb[24], ttl[16];
    int err;

    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(cookie, sizeof cookie, raw, sizeof raw);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(csrf, SESSION_HEX_LEN + 1, raw, sizeof raw);
    auth_sha256(cookie, SESSION_HEX_LEN, sha);
    snprintf(uidb, sizeof uidb, "%lld", (long long)uid);
    snprintf(ttl, sizeof ttl, "%d", SESSION_TTL_S);
    vals[0] = (const char *)sha;
    vals[1] = uidb;
    vals[2] = csrf;
    vals[3] = ttl;
    err = db_exec_own(&session_sql[SQ_CREATE], vals, lens, fmts, 0, NULL);
    if (err == SRV_OK)
        set_cookie(rq, rs, cookie, SESSION_TTL_S);
    sodium_memzero(cookie, sizeof cookie);
    return err;
}

int session_login(struct srv_request *rq, struct srv_response *rs)
{
    const char *user, *pw, *ctype = rq->header ? rq->header(rq, "Content-Type") : NULL;
    char csrf[SESSION_HEX_LEN + 1];
    enum srv_role role = SRV_ROLE_NONE;
    int64_t uid = 0;
    json_t *j;
    int err;

    static const char *const login_fields[] = { "username", "password", NULL };

    /* A cross-site form cannot send application/json without a CORS
     * preflight we never grant: this stops login CSRF. */
    if (!ctype || strncasecmp(ctype, "application/json", 16) != 0)
        return srv_fail(rs, SRV_EMEDIA, "login takes application/json");
    j = srv_body_json(rq);
    user = json_string_value(json_object_get(j, "username"));
    pw = json_string_value(json_object_get(j, "password"));
    if (!user || !pw || !*user || strlen(user) > 64 || !*pw || strlen(pw) > AUTH_PASSWORD_MAX)
        err = srv_fail(rs, SRV_EBADREQ, "username and password required");
    else if ((err = login_check(rq, user, pw, &uid, &role, rs)) == SRV_OK &&
             (err = session_start(rq, uid, csrf, rs)) == SRV_OK) {
        /* Looked at once the caller is known: no log lines for strangers. */
        rs->ignored = srv_json_ignored(rq, j, login_fields);
        err = respond_session(rs, user, role, csrf);
        srv_log("info", "session: %s logged in", user);
    }
    json_decref(j);
    return err;
}

/* The page's probe: open to anyone, so a page loaded before login asks
 * "who am I" without a 401 in the browser console.  No credentials, or a
 * session that has ended, is 200 {"authenticated":false}; a bearer token
 * that is wrong is still 401 (a client that sends one wants to know). */
int session_get(struct srv_request *rq, struct srv_response *rs)
{
    const char *authz = rq->header ? rq->header(rq, "Authorization") : NULL;
    struct session_row s;
    uint8_t sha[32];
    char actor[AUTH_ACTOR_MAX];
    int err;

    if (authz) {
        if ((err = auth_bearer(rq, authz)) != SRV_OK)
            return err;
        return respond_session(rs, auth_actor(rq, actor, sizeof actor), rq->role, NULL);
    }
    err = session_find(rq, &s, sha);
    if (err == SRV_EUNAUTH)
        return srv_respond_json_take(rs, 200, json_pack("{s:b}", "authenticated", 0));
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
    int err;

    if (rq->user_id <= 0)
        return srv_fail(rs, SRV_EBADREQ, "no browser session to end");
    err = session_find(rq, &s, sha);
    if (err != SRV_OK)
        return err;
    err = db_exec_own(&session_sql[SQ_END], vals, lens, fmts, 0, NULL);
    if (err != SRV_OK)
        return err;
    set_cookie(rq, rs, "", 0);
    rs->status = 204;
    return SRV_OK;
}
