/* api.c - the REST handlers.  Each one validates its inputs fully (ids,
 * cursors, JSON fields) before touching the database, builds its answer with
 * jansson and returns an SRV_E* code on failure; the http layer owns the
 * error body. */
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/wire.h"
#include "server/api/api.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/deploy/deploy.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/text/text.h"

#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX 1000

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

int api_healthz(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    int err = db_exec(DB_PING, NULL, NULL, NULL, 0, &r);

    PQclear(r);
    if (err != SRV_OK)
        return fail(rs, SRV_EUNAVAIL, "database does not answer");
    return srv_respond_json_take(rs, 200, json_pack("{s:s}", "status", "ok"));
}

int api_openapi(struct srv_request *rq, struct srv_response *rs)
{
    if (!rq->cfg->openapi)
        return fail(rs, SRV_ENOTFOUND, "openapi.json was not found at start-up");
    rs->status = 200;
    rs->content_type = "application/json";
    rs->body = (char *)rq->cfg->openapi;
    rs->body_len = rq->cfg->openapi_len;
    rs->body_static = 1;
    return SRV_OK;
}

static json_t *parse_body(const struct srv_request *rq)
{
    json_error_t je;

    if (!rq->body || rq->body_len == 0)
        return NULL;
    return json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
}

int api_device_register(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = parse_body(rq);
    const char *dev, *pk64, *secret;
    uint8_t pk[WIRE_PK_LEN];
    const char *vals[2];
    int lens[2] = { 0, WIRE_PK_LEN }, fmts[2] = { 0, 1 };
    PGresult *r = NULL;
    int err, status;

    if (!j || !json_is_object(j)) {
        json_decref(j);
        return fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    dev = json_string_value(json_object_get(j, "device_id"));
    pk64 = json_string_value(json_object_get(j, "public_key"));
    secret = json_string_value(json_object_get(j, "enroll_secret"));
    if (!text_valid_device_id(dev)) {
        err = fail(rs, SRV_EBADREQ, "device_id must match [A-Za-z0-9._-]{1,64}");
        goto out;
    }
    if (text_b64_decode_exact(pk64, pk, sizeof pk) != 0) {
        err = fail(rs, SRV_EBADREQ, "public_key must be standard base64 of 32 bytes");
        goto out;
    }
    if (!secret || !rq->cfg->enroll_secret ||
        !auth_secret_equal((const uint8_t *)secret, strlen(secret), rq->cfg->enroll_secret,
                           rq->cfg->enroll_secret_len)) {
        err = SRV_EENROLL;
        goto out;
    }
    vals[0] = dev;
    vals[1] = (const char *)pk;
    err = db_exec(DB_DEVICE_INSERT, vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        goto out;
    status = PQntuples(r) == 1 ? 201 : 0;
    PQclear(r);
    r = NULL;
    if (!status) {
        /* Known id: the same key again is a retry, another key a conflict. */
        err = db_exec(DB_DEVICE_KEY, vals, NULL, NULL, 1, &r);
        if (err != SRV_OK)
            goto out;
        if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != WIRE_PK_LEN) {
            err = SRV_EINTERNAL;
            goto out;
        }
        if (sodium_memcmp(PQgetvalue(r, 0, 0), pk, WIRE_PK_LEN) != 0) {
            err = fail(rs, SRV_ECONFLICT, "device id is registered with another key");
            goto out;
        }
        status = 200;
    }
    err = srv_respond_json_take(rs, (unsigned)status,
                                json_pack("{s:s,s:s}", "device_id", dev, "status", "active"));
out:
    PQclear(r);
    json_decref(j);
    return err;
}

int api_heartbeat_post(struct srv_request *rq, struct srv_response *rs)
{
    const char *dev = rq->header(rq, "X-Precursor-Device");
    const char *sig64 = rq->header(rq, "X-Precursor-Signature");
    uint8_t sig[WIRE_SIG_LEN];
    const char *vals[2];
    json_t *j = NULL;
    PGresult *r = NULL;
    char *body = NULL;
    int err;

    if (!text_valid_device_id(dev))
        return fail(rs, SRV_EBADREQ, "X-Precursor-Device missing or malformed");
    if (text_b64_decode_exact(sig64, sig, sizeof sig) != 0)
        return fail(rs, SRV_EBADREQ, "X-Precursor-Signature must be base64 of 64 bytes");
    if (!rq->body)
        return fail(rs, SRV_EBADREQ, "body must be a JSON object");
    vals[0] = dev;
    err = db_exec(DB_DEVICE_KEY, vals, NULL, NULL, 1, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != WIRE_PK_LEN) {
        err = SRV_EUNKNOWNDEV;
        goto out;
    }
    if (strcmp(PQgetvalue(r, 0, 1), "active") != 0) {
        err = SRV_EDEVSTATE;
        goto out;
    }
    /* Verify the bytes as sent, before parsing them. */
    if (crypto_sign_verify_detached(sig, rq->body, rq->body_len,
                                    (const unsigned char *)PQgetvalue(r, 0, 0)) != 0) {
        err = SRV_ESIGNATURE;
        goto out;
    }
    PQclear(r);
    r = NULL;
    j = parse_body(rq);
    if (!j || !json_is_object(j)) {
        err = fail(rs, SRV_EBADREQ, "body must be a JSON object");
        goto out;
    }
    body = json_dumps(j, JSON_COMPACT);
    if (!body) {
        err = SRV_ENOMEM;
        goto out;
    }
    vals[1] = body;
    err = db_exec(DB_HEARTBEAT_UPSERT, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        goto out;
    rs->status = 204;
out:
    free(body);
    json_decref(j);
    PQclear(r);
    return err;
}

static const char *sample_type_name(int t)
{
    switch (t) {
    case WIRE_I16: return "int16";
    case WIRE_I32: return "int32";
    case WIRE_F32: return "float32";
    default: return "unknown";
    }
}

static json_t *time_or_null(PGresult *r, int row, int col)
{
    char buf[40];

    if (PQgetisnull(r, row, col) ||
        text_rfc3339(strtoll(PQgetvalue(r, row, col), NULL, 10), buf, sizeof buf) != 0)
        return json_null();
    return json_string(buf);
}

/* One row of SNAPSHOT_COLS (db.c) as the API item. */
static json_t *snapshot_item(PGresult *r, int i)
{
    json_t *chans = json_loads(PQgetvalue(r, i, 6), 0, NULL);

    return json_pack("{s:I,s:s,s:I,s:o,s:f,s:s,s:o,s:I,s:I,s:s,s:f,s:I}",
                     "id", (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10),
                     "device_id", PQgetvalue(r, i, 1),
                     "seq", (json_int_t)strtoll(PQgetvalue(r, i, 2), NULL, 10),
                     "trigger_time", time_or_null(r, i, 3),
                     "sample_rate", strtod(PQgetvalue(r, i, 4), NULL),
                     "sample_type", sample_type_name(atoi(PQgetvalue(r, i, 5))),
                     "channels", chans ? chans : json_array(),
                     "pre_samples", (json_int_t)strtoll(PQgetvalue(r, i, 7), NULL, 10),
                     "post_samples", (json_int_t)strtoll(PQgetvalue(r, i, 8), NULL, 10),
                     "detector", PQgetvalue(r, i, 9),
                     "score", strtod(PQgetvalue(r, i, 10), NULL),
                     "bytes", (json_int_t)strtoll(PQgetvalue(r, i, 11), NULL, 10));
}

/* Builds one API item from row i of a result. */
typedef json_t *(*api_item_fn)(PGresult *r, int i);

/* {"items":[...],"next":CURSOR|null} from a page query that asked for limit
 * + 1 rows: the extra row only says a next page exists, and the cursor is
 * column 0 of the last row shown.  Takes r. */
static int respond_page(PGresult *r, int limit, api_item_fn item, struct srv_response *rs)
{
    int n = PQntuples(r), i;
    json_t *items = json_array(), *next;

    for (i = 0; i < n && i < limit && items; i++) {
        if (json_array_append_new(items, item(r, i)) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    next = (n > limit && items) ? json_string(PQgetvalue(r, limit - 1, 0)) : json_null();
    PQclear(r);
    if (!items) {
        json_decref(next);
        return SRV_ENOMEM;
    }
    return srv_respond_json_take(rs, 200, json_pack("{s:o,s:o}", "items", items, "next", next));
}

/* The single row of r as one item, or a 404 with missing.  Takes r. */
static int respond_one(PGresult *r, api_item_fn item, const char *missing,
                       struct srv_response *rs)
{
    json_t *j;

    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, missing);
    }
    j = item(r, 0);
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

int api_snapshots_list(struct srv_request *rq, struct srv_response *rs)
{
    int64_t after;
    int limit;
    char after_s[24], lim_s[16];
    const char *vals[2] = { after_s, lim_s };
    PGresult *r = NULL;
    int err;

    if (text_parse_limit(rq->query(rq, "limit"), API_LIMIT_DEFAULT, API_LIMIT_MAX, &limit) != 0)
        return fail(rs, SRV_EBADREQ, "limit must be an integer in 1..1000");
    if (text_parse_cursor(rq->query(rq, "after"), &after) != 0)
        return fail(rs, SRV_EBADREQ, "after must be a cursor from a previous page");
    snprintf(after_s, sizeof after_s, "%" PRId64, after);
    /* One extra row tells whether a next page exists. */
    snprintf(lim_s, sizeof lim_s, "%d", limit + 1);
    err = db_exec(DB_SNAPSHOTS_LIST, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    return respond_page(r, limit, snapshot_item, rs);
}

int api_snapshot_get(struct srv_request *rq, struct srv_response *rs)
{
    int64_t id;
    const char *vals[1];
    PGresult *r = NULL;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_ENOTFOUND, "no such snapshot");
    vals[0] = rq->params[0];
    err = db_exec(DB_SNAPSHOT_GET, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    return respond_one(r, snapshot_item, "no such snapshot", rs);
}

int api_snapshot_raw(struct srv_request *rq, struct srv_response *rs)
{
    int64_t id;
    const char *vals[1];
    PGresult *r = NULL;
    size_t n;
    char *buf;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_ENOTFOUND, "no such snapshot");
    vals[0] = rq->params[0];
    err = db_exec(DB_SNAPSHOT_RAW, vals, NULL, NULL, 1, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such snapshot");
    }
    n = (size_t)PQgetlength(r, 0, 0);
    buf = malloc(n ? n : 1);
    if (!buf) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    memcpy(buf, PQgetvalue(r, 0, 0), n);
    PQclear(r);
    rs->status = 200;
    rs->content_type = "application/octet-stream";
    rs->body = buf;
    rs->body_len = n;
    return SRV_OK;
}

/* One row of DEVICE_COLS (db.c). */
static json_t *device_item(PGresult *r, int i)
{
    size_t klen = 0;
    unsigned char *key = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 1), &klen);
    char k64[64] = "";
    json_t *hb = json_null(), *model, *item, *fleet;

    if (key && klen == WIRE_PK_LEN)
        text_b64_encode(key, klen, k64, sizeof k64);
    PQfreemem(key);
    if (!PQgetisnull(r, i, 8)) {
        json_t *body = json_loads(PQgetvalue(r, i, 8), 0, NULL);
        json_decref(hb);
        hb = json_pack("{s:o,s:o}", "body", body ? body : json_null(), "received_at",
                       time_or_null(r, i, 9));
    }
    /* Which model the device should run and what it says it runs. */
    model = deploy_device_model_json(PQgetisnull(r, i, 10) ? NULL : PQgetvalue(r, i, 10),
                                     json_object_get(hb, "body"));
    item = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:o,s:o}",
                     "id", PQgetvalue(r, i, 0),
                     "public_key", k64,
                     "status", PQgetvalue(r, i, 2),
                     "equipment_type", PQgetisnull(r, i, 3) ? json_null()
                                                            : json_string(PQgetvalue(r, i, 3)),
                     "site", PQgetisnull(r, i, 4) ? json_null() : json_string(PQgetvalue(r, i, 4)),
                     "created_at", time_or_null(r, i, 5),
                     "last_seen", time_or_null(r, i, 6),
                     "last_seq", (json_int_t)strtoll(PQgetvalue(r, i, 7), NULL, 10),
                     "heartbeat", hb ? hb : json_null(),
                     "model", model ? model : json_null());
    /* Versions, spool depth, drops and health as fields (server/fleet). */
    fleet = item ? fleet_device_health(PQgetvalue(r, i, 2), json_object_get(
                       json_object_get(item, "heartbeat"), "body"),
                       PQgetisnull(r, i, 9) ? 0 : strtoll(PQgetvalue(r, i, 9), NULL, 10),
                       (int64_t)time(NULL) * 1000000) : NULL;
    if (fleet)
        json_object_update(item, fleet);
    json_decref(fleet);
    return item;
}

int api_devices_list(struct srv_request *rq, struct srv_response *rs)
{
    const char *after = rq->query(rq, "after");
    int limit;
    char lim_s[16];
    const char *vals[2];
    PGresult *r = NULL;
    int err;

    if (text_parse_limit(rq->query(rq, "limit"), API_LIMIT_DEFAULT * 2, API_LIMIT_MAX,
                         &limit) != 0)
        return fail(rs, SRV_EBADREQ, "limit must be an integer in 1..1000");
    if (after && *after && !text_valid_device_id(after))
        return fail(rs, SRV_EBADREQ, "after must be a cursor from a previous page");
    snprintf(lim_s, sizeof lim_s, "%d", limit + 1);
    vals[0] = after ? after : "";
    vals[1] = lim_s;
    err = db_exec(DB_DEVICES_LIST, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    return respond_page(r, limit, device_item, rs);
}

int api_device_get(struct srv_request *rq, struct srv_response *rs)
{
    const char *vals[1] = { rq->params[0] };
    PGresult *r = NULL;
    int err;

    if (!text_valid_device_id(rq->params[0]))
        return fail(rs, SRV_ENOTFOUND, "no such device");
    err = db_exec(DB_DEVICE_GET, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    return respond_one(r, device_item, "no such device", rs);
}
