/* auth.c - see auth.h.  Tokens carry a fixed prefix so they are easy to spot
 * in a leaked log or config and to reject early without a database trip. */
#include <ctype.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/auth/auth.h"
#include "server/db/db.h"

/* The api_tokens statements: only the SHA-256 of a token is ever stored or
 * looked up, passed as binary ($1 or $3 ::bytea). */
enum { AUTH_TOKEN_LOOKUP, AUTH_TOKEN_INSERT };

static const struct db_sql auth_sql[] = {
    /* A token of a disabled user is no token; last_used_at is written at
     * most once a minute, so a busy token costs no write per request. */
    [AUTH_TOKEN_LOOKUP] = { "auth_token_lookup",
        "WITH t AS (SELECT k.id, k.role, k.name, k.last_used_at FROM api_tokens k"
        "  LEFT JOIN users u ON u.id = k.user_id"
        "  WHERE k.token_sha256 = $1::bytea AND k.revoked_at IS NULL AND u.disabled_at IS NULL),"
        " used AS (UPDATE api_tokens SET last_used_at = now() FROM t WHERE api_tokens.id = t.id"
        "  AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))"
        " SELECT id, role, name FROM t", 1 },
    [AUTH_TOKEN_INSERT] = { "auth_token_insert",
        "INSERT INTO api_tokens (name, role, token_sha256) "
        "VALUES ($1, $2, $3::bytea) RETURNING id", 3 },
};

int auth_init(void)
{
    return sodium_init() < 0 ? SRV_EINTERNAL : SRV_OK;
}

enum srv_role auth_role_parse(const char *s)
{
    if (!s)
        return SRV_ROLE_NONE;
    if (strcmp(s, "admin") == 0)
        return SRV_ROLE_ADMIN;
    if (strcmp(s, "operator") == 0)
        return SRV_ROLE_OPERATOR;
    if (strcmp(s, "ml") == 0)
        return SRV_ROLE_ML;
    return SRV_ROLE_NONE;
}

const char *auth_role_name(enum srv_role r)
{
    switch (r) {
    case SRV_ROLE_ADMIN: return "admin";
    case SRV_ROLE_OPERATOR: return "operator";
    case SRV_ROLE_ML: return "ml";
    default: return "none";
    }
}

/* OpenSSL's SHA-256 uses the CPU's SHA extensions where there are some:
 * measured on a 16 KB envelope (bench/crypto.c) it takes 0.16 of the time
 * of libsodium's portable one, and every stored snapshot is hashed here.
 * Same digest, so stored sha256 columns and token hashes are unchanged. */
void auth_sha256(const void *in, size_t len, uint8_t out[32])
{
    SHA256(in, len, out);
}

int auth_token_new(char *out, size_t cap, uint8_t sha[32])
{
    uint8_t rnd[32];

    if (cap <= AUTH_TOKEN_LEN)
        return SRV_ETOOBIG;
    randombytes_buf(rnd, sizeof rnd);
    memcpy(out, AUTH_TOKEN_PREFIX, 4);
    sodium_bin2hex(out + 4, cap - 4, rnd, sizeof rnd);
    sodium_memzero(rnd, sizeof rnd);
    auth_sha256(out, AUTH_TOKEN_LEN, sha);
    return SRV_OK;
}

int auth_password_hash(const char *password, char *out, size_t cap)
{
    size_t n = strlen(password);

    if (cap < crypto_pwhash_STRBYTES || n == 0 || n > AUTH_PASSWORD_MAX)
        return SRV_EBADREQ;
    if (crypto_pwhash_str(out, password, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return SRV_ENOMEM;
    return SRV_OK;
}

int auth_password_verify(const char *hash, const char *password)
{
    size_t n = strlen(password);

    if (n == 0 || n > AUTH_PASSWORD_MAX)
        return SRV_EUNAUTH;
    return crypto_pwhash_str_verify(hash, password, n) == 0 ? SRV_OK : SRV_EUNAUTH;
}

int auth_secret_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    uint8_t ha[32], hb[32];

    if (!a || !b || alen == 0 || blen == 0)
        return 0;
    auth_sha256(a, alen, ha);
    auth_sha256(b, blen, hb);
    return sodium_memcmp(ha, hb, sizeof ha) == 0;
}

int auth_bearer(struct srv_request *rq, const char *authorization)
{
    const char *tok;
    uint8_t sha[32];
    const char *vals[1];
    int lens[1] = { 32 }, fmts[1] = { 1 };
    PGresult *r = NULL;
    int err;

    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return SRV_EUNAUTH;
    tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    if (strlen(tok) != AUTH_TOKEN_LEN || strncmp(tok, AUTH_TOKEN_PREFIX, 4) != 0)
        return SRV_EUNAUTH;
    auth_sha256(tok, AUTH_TOKEN_LEN, sha);
    vals[0] = (const char *)sha;
    err = db_exec_own(&auth_sql[AUTH_TOKEN_LOOKUP], vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_EUNAUTH;
    }
    rq->token_id = db_int64(r, 0, "id");
    rq->role = auth_role_parse(db_text(r, 0, "role"));
    snprintf(rq->token_name, sizeof rq->token_name, "%s", db_text_or(r, 0, "name", ""));
    PQclear(r);
    return SRV_OK;
}

int auth_token_insert(const char *name, const char *role, const uint8_t sha[32], int64_t *id)
{
    const char *vals[3] = { name, role, (const char *)sha };
    int lens[3] = { 0, 0, 32 }, fmts[3] = { 0, 0, 1 };
    PGresult *r = NULL;
    int err = db_exec_own(&auth_sql[AUTH_TOKEN_INSERT], vals, lens, fmts, 0, &r);

    if (err == SRV_OK && PQntuples(r) != 1)
        err = SRV_EDB;
    if (err == SRV_OK)
        *id = db_int64(r, 0, "id");
    PQclear(r);
    return err;
}

const char *auth_actor(const struct srv_request *rq, char *buf, size_t cap)
{
    if (rq->user_id > 0 && rq->user_name[0])
        snprintf(buf, cap, "%s", rq->user_name);
    else
        snprintf(buf, cap, "token:%s#%" PRId64, rq->token_name, rq->token_id);
    return buf;
}

/* Passwords every guesser tries first (lowercase; a password equal to one,
 * ignoring case, is refused). */
static const char *const common_passwords[] = {
    "password", "password1", "password12", "password123", "passw0rd", "p@ssw0rd", "p@ssword",
    "qwerty", "qwertyuiop", "qwerty123", "qwertz", "azerty", "letmein", "letmein123",
    "welcome", "welcome1", "welcome123", "admin", "admin123", "administrator", "changeme",
    "changeme123", "iloveyou", "trustno1", "monkey", "dragon", "football", "baseball",
    "sunshine", "princess", "superman", "starwars", "master", "shadow", "michael",
    "precursor", "precursor1", "operator", "operator1", "secret", "secret123", "default",
    "abc123", "abcd1234", "1q2w3e4r", "1q2w3e4r5t", "zaq12wsx", "1qaz2wsx", "qazwsx",
    "asdfghjkl", "zxcvbnm", "zxcvbnm123", "password!", "summer2024", "winter2024",
};

/* A run along one of these rows: "1234567890", "0987654321", "qwertyuiop". */
static int sequential(const char *lower, size_t n)
{
    static const char *const rows[] = { "01234567890", "abcdefghijklmnopqrstuvwxyz",
                                        "qwertyuiop", "asdfghjkl", "zxcvbnm",
                                        "1qaz2wsx3edc4rfv5tgb" };
    char rev[32];
    size_t i, r, m;

    for (r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        m = strlen(rows[r]);
        for (i = 0; i < m; i++)
            rev[i] = rows[r][m - 1 - i];
        rev[m] = '\0';
        if (n <= m && (strstr(rows[r], lower) || strstr(rev, lower)))
            return 1;
    }
    return 0;
}

const char *auth_password_policy(const char *password, const char *username)
{
    char lower[64];
    size_t n = password ? strlen(password) : 0, i, distinct = 0;
    int seen[256] = { 0 };

    if (n < AUTH_PASSWORD_MIN)
        return "password: at least 10 characters";
    if (n > AUTH_PASSWORD_MAX)
        return "password: at most 1024 bytes";
    if (username && strcasecmp(password, username) == 0)
        return "password: must not be the username";
    for (i = 0; i < n; i++)
        distinct += !seen[(unsigned char)password[i]]++;
    if (distinct < 5)
        return "password: too few different characters";
    if (n < sizeof lower) {
        for (i = 0; i <= n; i++)
            lower[i] = (char)tolower((unsigned char)password[i]);
        if (sequential(lower, n))
            return "password: a run of keys or digits is guessed first";
        for (i = 0; i < sizeof common_passwords / sizeof common_passwords[0]; i++)
            if (strcmp(lower, common_passwords[i]) == 0)
                return "password: one of the most common passwords";
    }
    return NULL;
}
