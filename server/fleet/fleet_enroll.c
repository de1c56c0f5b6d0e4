/* fleet_enroll.c - enrollment tokens and the device life cycle.
 *
 * An enrollment token ("pen_" + 64 hex, stored only as its SHA-256) carries
 * what the devices it enrolls get: equipment type, site, tags, pending or
 * pre-approved; it is single-use (N uses) or reusable, and may expire.
 * GET /install.sh (the token as Authorization: Bearer T, or ?token=T)
 * answers a POSIX sh script for that token; the script downloads the agent
 * binary this server serves, runs
 * `precursor-agent enroll` (the key pair is generated on the device and only
 * the public key is sent, to POST /api/v1/devices/enroll), writes the
 * agent's config and, when systemd runs and no prefix is given, installs and
 * starts a unit.  Approve and revoke are admin calls; rotation is proven by
 * a signature of the old key over the new one. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/devmsg.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/fleet/fleet_int.h"
#include "server/text/text.h"
#include "server/srv/srv.h"

#define TOKEN_PREFIX "pen_"
#define TOKEN_LEN (4 + 64)
#define TAGS_MAX 1024

static int token_well_formed(const char *t)
{
    size_t i;

    if (!t || strlen(t) != TOKEN_LEN || strncmp(t, TOKEN_PREFIX, 4) != 0)
        return 0;
    for (i = 4; i < TOKEN_LEN; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return 0;
    return 1;
}

/* A label for type/site/tag: what the device id allows, plus spaces. */
static int label_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    size_t i;

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ' ' || c == ':' || c == '/'))
            return 0;
    }
    return 1;
}

int fleet_parse_duration(const char *s, long long *out)
{
    char *end;
    long long v, mul = 1;

    if (!s || !*s || *s == '-')
        return SRV_EBADREQ;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s)
        return SRV_EBADREQ;
    if (*end) {
        if (end[1])
            return SRV_EBADREQ;
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return SRV_EBADREQ;
        }
    }
    if (v <= 0 || v > 3650LL * 86400 / mul)
        return SRV_EBADREQ;
    *out = v * mul;
    return SRV_OK;
}

/* "a,b" -> '{"a","b"}' (PostgreSQL array literal) into b; labels checked. */
static int tags_literal(const char *tags, struct srv_buf *b)
{
    const char *p = tags ? tags : "";

    if (strlen(p) >= TAGS_MAX)
        return SRV_ETOOBIG;
    db_array_begin(b);
    while (*p) {
        size_t n = strcspn(p, ",");
        char tag[65];

        if (n == 0 || n >= sizeof tag)
            return SRV_EBADREQ;
        memcpy(tag, p, n);
        tag[n] = '\0';
        if (!label_ok(tag, 64))
            return SRV_EBADREQ;
        db_array_text(b, tag);
        p += n;
        if (*p == ',')
            p++;
    }
    db_array_end(b);
    return b->oom ? SRV_ENOMEM : SRV_OK;
}

int fleet_token_create(const struct fleet_token_spec *spec, char *tok, size_t cap)
{
    char raw[AUTH_TOKEN_LEN + 1], uses[16], exp[24];
    struct srv_buf tags = { 0 };
    uint8_t sha[32];
    const char *vals[7];
    int lens[7] = { 32, 0, 0, 0, 0, 0, 0 }, fmts[7] = { 1, 0, 0, 0, 0, 0, 0 };
    int err;

    if (cap <= TOKEN_LEN)
        return SRV_ETOOBIG;
    if ((spec->equipment_type && !label_ok(spec->equipment_type, 64)) ||
        (spec->site && !label_ok(spec->site, 64)) ||
        (!spec->reusable && (spec->uses <= 0 || spec->uses > 1000000)) || spec->expires_s < 0)
        return SRV_EBADREQ;
    err = tags_literal(spec->tags, &tags);
    if (err == SRV_OK)
        err = auth_token_new(raw, sizeof raw, sha);
    if (err != SRV_OK) {
        srv_buf_free(&tags);
        return err;
    }
    memcpy(raw, TOKEN_PREFIX, 4);
    /* The hash is of the token as handed out, prefix included. */
    auth_sha256(raw, TOKEN_LEN, sha);
    snprintf(uses, sizeof uses, "%d", spec->uses);
    snprintf(exp, sizeof exp, "%lld", spec->expires_s);
    vals[0] = (const char *)sha;
    vals[1] = spec->equipment_type;
    vals[2] = spec->site;
    vals[3] = tags.p;
    vals[4] = spec->reusable ? NULL : uses;
    vals[5] = spec->expires_s > 0 ? exp : NULL;
    vals[6] = spec->pre_approved ? "true" : "false";
    err = db_exec_own(&fleet__sql[FLEET_SQL_TOKEN_INSERT], vals, lens, fmts, 0, NULL);
    if (err == SRV_OK)
        snprintf(tok, cap, "%s", raw);
    sodium_memzero(raw, sizeof raw);
    srv_buf_free(&tags);
    return err;
}

int fleet_token_revoke(const char *tok)
{
    uint8_t sha[32];
    const char *vals[1] = { (const char *)sha };
    int lens[1] = { 32 }, fmts[1] = { 1 };
    PGresult *r = NULL;
    int err;

    if (!token_well_formed(tok))
        return SRV_EBADREQ;
    auth_sha256(tok, TOKEN_LEN, sha);
    err = db_exec_own(&fleet__sql[FLEET_SQL_TOKEN_REVOKE], vals, lens, fmts, 0, &r);
    if (err == SRV_OK && PQntuples(r) != 1)
        err = SRV_ENOTFOUND;
    PQclear(r);
    return err;
}

int fleet__token_check(const char *tok, const char **why)
{
    uint8_t sha[32];
    const char *vals[1] = { (const char *)sha };
    int lens[1] = { 32 }, fmts[1] = { 1 };
    PGresult *r = NULL;
    int err;

    if (!token_well_formed(tok)) {
        *why = "enrollment token malformed";
        return SRV_EENROLL;
    }
    auth_sha256(tok, TOKEN_LEN, sha);
    err = db_exec_own(&fleet__sql[FLEET_SQL_TOKEN_STATE], vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        *why = "unknown enrollment token";
        err = SRV_EENROLL;
    } else if (db_bool(r, 0, "revoked")) {
        *why = "enrollment token revoked";
        err = SRV_EENROLL;
    } else if (db_bool(r, 0, "expired")) {
        *why = "enrollment token expired";
        err = SRV_EENROLL;
    } else if (db_bool(r, 0, "used_up")) {
        *why = "enrollment token used up";
        err = SRV_EENROLL;
    }
    PQclear(r);
    return err;
}

int fleet_api_token_create(struct srv_request *rq, struct srv_response *rs)
{
    struct fleet_token_spec spec = { 0 };
    json_t *j, *tags, *exp, *t;
    char tagbuf[TAGS_MAX], tok[TOKEN_LEN + 1], base[300], *cmd = NULL;
    static const char *const token_fields[] = { "equipment_type", "site", "tags", "uses",
                                                "reusable", "expires_in", "pre_approved", NULL };
    const char *bad_key;
    size_t used = 0, i;
    int err;

    j = srv_body_json(rq);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    /* "expires" for "expires_in" (the CLI's flag is --expires) must not make
     * a token that never expires. */
    if ((bad_key = srv_json_unknown_key(j, token_fields)) != NULL) {
        err = srv_failf(rs, SRV_EBADREQ, "unknown field \"%.64s\"; the fields are equipment_type, "
                        "site, tags, uses, reusable, expires_in and pre_approved", bad_key);
        goto out;
    }
    if ((srv_json_opt_string(j, "equipment_type", 64, &spec.equipment_type) != 0 ||
         srv_json_opt_string(j, "site", 64, &spec.site) != 0)) {
        err = srv_fail(rs, SRV_EBADREQ, "equipment_type and site must be strings");
        goto out;
    }
    spec.reusable = json_is_true(json_object_get(j, "reusable"));
    spec.pre_approved = json_is_true(json_object_get(j, "pre_approved"));
    spec.uses = 1;
    if (spec.reusable && json_object_get(j, "uses")) {
        /* a reusable token has no use limit: refused, as the CLI refuses
         * --uses beside --reusable, rather than dropping the limit */
        err = srv_fail(rs, SRV_EBADREQ, "give uses or reusable, not both");
        goto out;
    }
    if ((t = json_object_get(j, "uses")) != NULL) {
        if (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 1000000) {
            err = srv_fail(rs, SRV_EBADREQ, "uses must be an integer in 1..1000000");
            goto out;
        }
        spec.uses = (int)json_integer_value(t);
    }
    exp = json_object_get(j, "expires_in");
    if (exp && !(json_is_string(exp) &&
                 fleet_parse_duration(json_string_value(exp), &spec.expires_s) == SRV_OK) &&
        !(json_is_integer(exp) && json_integer_value(exp) > 0 &&
          (spec.expires_s = json_integer_value(exp)) <= 3650LL * 86400)) {
        err = srv_fail(rs, SRV_EBADREQ, "expires_in must be seconds or like \"24h\"");
        goto out;
    }
    tags = json_object_get(j, "tags");
    tagbuf[0] = '\0';
    if (tags && !json_is_array(tags)) {
        err = srv_fail(rs, SRV_EBADREQ, "tags must be an array of strings");
        goto out;
    }
    for (i = 0; tags && i < json_array_size(tags); i++) {
        const char *s = json_string_value(json_array_get(tags, i));

        if (!s || strchr(s, ',') || used + strlen(s) + 2 >= sizeof tagbuf) {
            err = srv_fail(rs, SRV_EBADREQ, "tags must be short strings without commas");
            goto out;
        }
        used += (size_t)snprintf(tagbuf + used, sizeof tagbuf - used, "%s%s", used ? "," : "", s);
    }
    spec.tags = tagbuf;
    err = fleet_token_create(&spec, tok, sizeof tok);
    if (err == SRV_EBADREQ)
        rs->err_message = "equipment_type, site and tags: 1..64 of [A-Za-z0-9._-:/ ]";
    if (err != SRV_OK)
        goto out;
    fleet__base_url(rq, base, sizeof base);
    /* Downloaded, then run: in `curl ... | sh` a failed download is an
     * empty script, exit 0, and automation takes the device as installed.
     * The token in a header, not the URL: a URL's query is written in
     * proxies' access logs. */
    if (asprintf(&cmd, "curl -fsS -H 'Authorization: Bearer %s' -o precursor-install.sh "
                       "'%s/install.sh' && sh precursor-install.sh", tok, base) < 0) {
        err = SRV_ENOMEM;
        goto out;
    }
    err = srv_respond_json_take(rs, 201, json_pack("{s:s,s:s}", "token", tok, "install", cmd));
out:
    free(cmd);
    json_decref(j);
    return err;
}

/* The stored key and status of dev; SRV_ENOTFOUND when not registered. */
static int device_key(const char *dev, uint8_t pk[FLEET_PK_LEN], char *status, size_t cap)
{
    struct fleet_device d;
    int err = fleet_device_fetch(dev, &d);

    if (err == SRV_EUNKNOWNDEV)
        return SRV_ENOTFOUND;
    if (err == SRV_OK) {
        memcpy(pk, d.pk, FLEET_PK_LEN);
        snprintf(status, cap, "%s", d.status);
    }
    return err;
}

int fleet_identity_parse(const json_t *body, const char **dev, uint8_t pk[FLEET_PK_LEN],
                         struct srv_response *rs)
{
    *dev = json_string_value(json_object_get(body, "device_id"));
    if (!text_valid_device_id(*dev))
        return srv_fail(rs, SRV_EBADREQ, "device_id must match [A-Za-z0-9._-]{1,64}");
    if (text_b64_decode_exact(json_string_value(json_object_get(body, "public_key")), pk,
                              FLEET_PK_LEN) != 0)
        return srv_fail(rs, SRV_EBADREQ, "public_key must be standard base64 of 32 bytes");
    return SRV_OK;
}

static int key_holder(const uint8_t key[FLEET_PK_LEN], char *holder, size_t cap);

int fleet_api_device_enroll(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = srv_body_json(rq);
    const char *tok, *dev, *why = NULL;
    uint8_t pk[FLEET_PK_LEN], sha[32], have[FLEET_PK_LEN];
    char status[16];
    const char *vals[3];
    int lens[3] = { 32, 0, FLEET_PK_LEN }, fmts[3] = { 1, 0, 1 };
    PGresult *r = NULL;
    int err, code = 201;

    static const char *const enroll_fields[] = { "token", "device_id", "public_key", NULL };

    if (!j || !json_is_object(j)) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    tok = json_string_value(json_object_get(j, "token"));
    if ((err = fleet_identity_parse(j, &dev, pk, rs)) != SRV_OK)
        goto out;
    err = fleet__token_check(tok, &why);
    if (err == SRV_EENROLL) {
        /* A retry of an enrollment that used the token's last use: the
         * same key for the same id is answered, not refused. */
        if (device_key(dev, have, status, sizeof status) == SRV_OK &&
            sodium_memcmp(have, pk, FLEET_PK_LEN) == 0) {
            code = 200;
            err = SRV_OK;
            goto answer;
        }
        rs->err_message = why;
    }
    if (err != SRV_OK)
        goto out;
    auth_sha256(tok, TOKEN_LEN, sha);
    vals[0] = (const char *)sha;
    vals[1] = dev;
    vals[2] = (const char *)pk;
    err = db_exec_own(&fleet__sql[FLEET_SQL_DEVICE_ENROLL], vals, lens, fmts, 0, &r);
    if (err == SRV_ECONFLICT) {
        char holder[72];

        rs->err_message = key_holder(pk, holder, sizeof holder) == 1 && strcmp(holder, dev) != 0
                              ? "another device holds or held this public key: make a new key"
                              : "device id enrolled concurrently";
        goto out;
    }
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) == 1) {
        snprintf(status, sizeof status, "%s", db_text(r, 0, "status"));
        goto answer;
    }
    /* No row: the id exists already (or the token went away meanwhile). */
    err = device_key(dev, have, status, sizeof status);
    if (err == SRV_ENOTFOUND) {
        err = srv_fail(rs, SRV_EENROLL, "enrollment token no longer valid");
        goto out;
    }
    if (err != SRV_OK)
        goto out;
    if (sodium_memcmp(have, pk, FLEET_PK_LEN) != 0) {
        err = srv_fail(rs, SRV_ECONFLICT, strcmp(status, "revoked") == 0
                                              ? "device id is revoked: enroll under a new device id"
                                              : "device id is registered with another key");
        goto out;
    }
    code = 200;
answer:
    fleet_cache_invalidate(dev);
    /* Looked at only on success: a refused stranger writes no such line. */
    rs->ignored = srv_json_ignored(rq, j, enroll_fields);
    err = srv_respond_json_take(rs, (unsigned)code,
                                json_pack("{s:s,s:s}", "device_id", dev, "status", status));
out:
    PQclear(r);
    json_decref(j);
    return err;
}

static int set_status(struct srv_request *rq, struct srv_response *rs, const char *action)
{
    static const char *const status_fields[] = { NULL };   /* no body is read */
    const char *dev = rq->params[0];
    const char *vals[2] = { dev, action };
    uint8_t pk[FLEET_PK_LEN];
    char status[16];
    PGresult *r = NULL;
    int err;

    if (!text_valid_device_id(dev))
        return srv_fail(rs, SRV_ENOTFOUND, "no such device");
    srv_body_ignored(rq, rs, status_fields);
    err = db_exec_own(&fleet__sql[FLEET_SQL_DEVICE_STATUS], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) == 1) {
        snprintf(status, sizeof status, "%s", db_text(r, 0, "status"));
    } else {
        err = device_key(dev, pk, status, sizeof status);
        if (err == SRV_ENOTFOUND)
            err = srv_fail(rs, SRV_ENOTFOUND, "no such device");
        else if (err == SRV_OK && strcmp(action, "approve") == 0)
            err = srv_fail(rs, SRV_ECONFLICT,
                           "revocation is final: enroll the machine again under a new device id");
    }
    PQclear(r);
    fleet_cache_invalidate(dev);
    if (err != SRV_OK)
        return err;
    srv_log("info", "fleet: device %s %s", dev, status);
    return srv_respond_json_take(rs, 200, json_pack("{s:s,s:s}", "device_id", dev,
                                                    "status", status));
}

int fleet_api_device_approve(struct srv_request *rq, struct srv_response *rs)
{
    return set_status(rq, rs, "approve");
}

int fleet_api_device_revoke(struct srv_request *rq, struct srv_response *rs)
{
    return set_status(rq, rs, "revoke");
}

int fleet_rotate_message(const char *dev, const uint8_t new_pk[FLEET_PK_LEN], int64_t ts_ms,
                         char *out, size_t cap, size_t *len)
{
    char k64[64];

    if (text_b64_encode(new_pk, FLEET_PK_LEN, k64, sizeof k64) != 0)
        return SRV_EINTERNAL;
    return devmsg_rotate(dev, k64, ts_ms, out, cap, len) == 0 ? SRV_OK : SRV_ETOOBIG;
}

/* Which device held key, if any: 1 with holder, 0 if none, or an error. */
static int key_holder(const uint8_t key[FLEET_PK_LEN], char *holder, size_t cap)
{
    const char *vals[1] = { (const char *)key };
    int lens[1] = { FLEET_PK_LEN }, fmts[1] = { 1 };
    PGresult *r = NULL;
    int err = db_exec_own(&fleet__sql[FLEET_SQL_KEY_USED], vals, lens, fmts, 0, &r);

    if (err != SRV_OK)
        return err;
    err = PQntuples(r) == 1;
    if (err)
        snprintf(holder, cap, "%s", db_text_or(r, 0, "device_id", ""));
    PQclear(r);
    return err;
}

int fleet_api_device_rotate(struct srv_request *rq, struct srv_response *rs)
{
    const char *dev = rq->params[0];
    struct fleet_rotation rot;
    uint8_t old[FLEET_PK_LEN];
    char status[16], ts[24], holder[72];
    const char *vals[4];
    int lens[4] = { 0, FLEET_PK_LEN, FLEET_PK_LEN, 0 }, fmts[4] = { 0, 1, 1, 0 };
    PGresult *r = NULL;
    int err;

    static const char *const rotate_fields[] = { "public_key", "signature", "timestamp", NULL };

    if (!text_valid_device_id(dev))
        return srv_fail(rs, SRV_ENOTFOUND, "no such device");
    err = device_key(dev, old, status, sizeof status);
    if (err == SRV_ENOTFOUND)
        return srv_fail(rs, SRV_EUNKNOWNDEV, "device is not registered");
    if (err != SRV_OK)
        return err;
    if (strcmp(status, "active") != 0)
        return srv_fail(rs, SRV_EDEVSTATE, "only an active device may rotate its key");
    err = fleet_rotate_parse(dev, rq->body, rq->body_len, old, fleet_now_ms(), &rot, rs);
    if (err != SRV_OK)
        return err;
    srv_body_ignored(rq, rs, rotate_fields);    /* signed by the device: no stranger's */
    err = key_holder(rot.new_pk, holder, sizeof holder);
    if (err < 0)
        return err;
    if (err == 1)
        return srv_fail(rs, SRV_ECONFLICT, strcmp(holder, dev) == 0
                        ? "this device held that key before: keys must be fresh"
                        : "another device holds or held that key: keys must be fresh");
    snprintf(ts, sizeof ts, "%lld", (long long)rot.ts_ms);
    vals[0] = dev;
    vals[1] = (const char *)rot.new_pk;
    vals[2] = (const char *)old;
    vals[3] = ts;
    err = db_exec_own(&fleet__sql[FLEET_SQL_DEVICE_ROTATE], vals, lens, fmts, 0, &r);
    if (err == SRV_ECONFLICT)
        err = srv_fail(rs, SRV_ECONFLICT, "that key was used before: keys must be fresh");
    else if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_ECONFLICT, "the key changed meanwhile, or this rotation is not"
                       " newer than the last accepted one (replayed)");
    PQclear(r);
    fleet_cache_invalidate(dev);
    if (err != SRV_OK)
        return err;
    srv_log("info", "fleet: device %s rotated its key", dev);
    return srv_respond_json_take(rs, 200, json_pack("{s:s,s:s}", "device_id", dev,
                                                    "status", "active"));
}
