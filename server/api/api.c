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

/* Snapshot columns as the API shows them (snapshot_item reads them). */
#define SNAPSHOT_COLS \
    "id, device_id, seq, (extract(epoch FROM trigger_time) * 1000000)::bigint AS trigger_us," \
    " sample_rate, sample_type, channels, pre_samples, post_samples, detector, score, bytes," \
    " demo"

/* Device columns as the API shows them (device_item reads them). */
#define DEVICE_COLS \
    "d.id, d.public_key, d.status, d.equipment_type, d.site," \
    " (extract(epoch FROM d.created_at) * 1000000)::bigint AS created_us," \
    " (extract(epoch FROM d.last_seen) * 1000000)::bigint AS last_seen_us, d.last_seq," \
    " h.body AS heartbeat, (extract(epoch FROM h.received_at) * 1000000)::bigint AS" \
    " heartbeat_us, deployed_model(d.id, d.equipment_type, d.site) AS model, d.demo"

enum {
    API_PING,
    API_DEVICE_INSERT,      /* id, public_key -> id when new */
    API_SNAPSHOTS_LIST,     /* after id, limit -> rows */
    API_SNAPSHOT_GET,       /* id -> row */
    API_DEVICES_LIST,       /* after id, limit, demo (srv_query_demo) -> rows */
    API_DEVICE_GET,         /* id -> row */
    API_HEARTBEAT_UPSERT    /* device, jsonb body */
};

static const struct db_sql sql[] = {
    [API_PING] = { "api_ping", "SELECT 1", 0 },
    [API_DEVICE_INSERT] = { "api_device_insert",
        "INSERT INTO devices (id, public_key) VALUES ($1, $2::bytea)"
        " ON CONFLICT (id) DO NOTHING RETURNING id", 2 },
    [API_SNAPSHOTS_LIST] = { "api_snapshots_list",
        "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE id > $1::bigint"
        " AND ($3::int = 1 OR demo = ($3::int = 2))"
        " ORDER BY id LIMIT $2::int", 3 },
    [API_SNAPSHOT_GET] = { "api_snapshot_get",
        "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE id = $1::bigint", 1 },
    [API_DEVICES_LIST] = { "api_devices_list",
        "SELECT " DEVICE_COLS " FROM devices d"
        " LEFT JOIN heartbeats h ON h.device_id = d.id"
        " WHERE d.id > $1 AND ($3::int = 1 OR d.demo = ($3::int = 2))"
        " ORDER BY d.id LIMIT $2::int", 3 },
    [API_DEVICE_GET] = { "api_device_get",
        "SELECT " DEVICE_COLS " FROM devices d"
        " LEFT JOIN heartbeats h ON h.device_id = d.id WHERE d.id = $1", 1 },
    /* only a timestamp above the stored one replaces it: no row back is a
     * replay (or an older heartbeat overtaken by a newer one) */
    [API_HEARTBEAT_UPSERT] = { "api_heartbeat_upsert",
        "WITH hb AS (INSERT INTO heartbeats (device_id, body, received_at, signed_ms)"
        " VALUES ($1, $2::jsonb, now(), $3::bigint) ON CONFLICT (device_id) DO UPDATE"
        " SET body = EXCLUDED.body, received_at = EXCLUDED.received_at,"
        " signed_ms = EXCLUDED.signed_ms"
        " WHERE heartbeats.signed_ms IS NULL OR heartbeats.signed_ms < EXCLUDED.signed_ms"
        " RETURNING device_id)"
        " UPDATE devices SET last_seen = now() FROM hb WHERE devices.id = hb.device_id"
        " RETURNING devices.id", 3 },
};

int api_healthz(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    int err = db_exec_own(&sql[API_PING], NULL, NULL, NULL, 0, &r);

    PQclear(r);
    if (err != SRV_OK)
        return srv_fail(rs, SRV_EUNAVAIL, "database does not answer");
    /* "version": which build answers (a fleet's rollouts, bug reports);
     * absent when the embedder set none. */
    return srv_respond_json_take(rs, 200, json_pack("{s:s,s:s*}", "status", "ok",
                                                    "version", rq->cfg->version));
}

int api_openapi(struct srv_request *rq, struct srv_response *rs)
{
    if (!rq->cfg->openapi)
        return srv_fail(rs, SRV_ENOTFOUND, "openapi.json was not found at start-up");
    rs->status = 200;
    rs->content_type = "application/json";
    rs->body = (char *)rq->cfg->openapi;
    rs->body_len = rq->cfg->openapi_len;
    rs->body_static = 1;
    return SRV_OK;
}

int api_device_register(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = srv_body_json(rq);
    const char *dev, *secret;
    struct fleet_device known = { .status = "" };
    uint8_t pk[WIRE_PK_LEN];
    const char *vals[2];
    int lens[2] = { 0, WIRE_PK_LEN }, fmts[2] = { 0, 1 };
    PGresult *r = NULL;
    int err, status;

    static const char *const register_fields[] = { "device_id", "public_key", "enroll_secret",
                                                   NULL };

    if (!j || !json_is_object(j)) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    secret = json_string_value(json_object_get(j, "enroll_secret"));
    if ((err = fleet_identity_parse(j, &dev, pk, rs)) != SRV_OK)
        goto out;
    if (!secret || !rq->cfg->enroll_secret ||
        !auth_secret_equal((const uint8_t *)secret, strlen(secret), rq->cfg->enroll_secret,
                           rq->cfg->enroll_secret_len)) {
        err = SRV_EENROLL;
        goto out;
    }
    vals[0] = dev;
    vals[1] = (const char *)pk;
    err = db_exec_own(&sql[API_DEVICE_INSERT], vals, lens, fmts, 0, &r);
    if (err == SRV_ECONFLICT) {
        /* 0061's trigger: the key is (or was) another device's */
        err = srv_fail(rs, SRV_ECONFLICT, "another device holds or held this public key:"
                       " make a new key");
        goto out;
    }
    if (err != SRV_OK)
        goto out;
    status = PQntuples(r) == 1 ? 201 : 0;
    if (!status) {
        /* Known id: the same key again is a retry, another key a conflict. */
        err = fleet_device_fetch(dev, &known);
        if (err != SRV_OK) {
            err = err == SRV_EUNKNOWNDEV ? SRV_EINTERNAL : err;
            goto out;
        }
        if (sodium_memcmp(known.pk, pk, WIRE_PK_LEN) != 0) {
            err = srv_fail(rs, SRV_ECONFLICT, "device id is registered with another key");
            goto out;
        }
        /* A retry says what the device is; a revoked one stays revoked. */
        if (strcmp(known.status, "revoked") == 0) {
            err = srv_fail(rs, SRV_EDEVSTATE, "device is revoked: enroll it anew under a new"
                           " id with a new key");
            goto out;
        }
        status = 200;
    }
    /* Looked at once the secret is proven: no log lines for strangers. */
    rs->ignored = srv_json_ignored(rq, j, register_fields);
    err = srv_respond_json_take(rs, (unsigned)status,
                                json_pack("{s:s,s:s}", "device_id", dev, "status",
                                          status == 201 ? "active" : known.status));
out:
    PQclear(r);
    json_decref(j);
    return err;
}

int api_heartbeat_post(struct srv_request *rq, struct srv_response *rs)
{
    const char *dev = rq->header(rq, "X-Precursor-Device");
    struct fleet_device d;
    const char *vals[3];
    char ts[24];
    int64_t ts_ms;
    json_t *j = NULL;
    char *body = NULL;
    PGresult *r = NULL;
    int err;

    if (!text_valid_device_id(dev))
        return srv_fail(rs, SRV_EBADREQ, "X-Precursor-Device missing or malformed");
    if (!rq->body)
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    err = fleet_device_fetch(dev, &d);
    if (err != SRV_OK)
        return err == SRV_EINTERNAL ? SRV_EUNKNOWNDEV : err;
    if (strcmp(d.status, "active") != 0)
        return SRV_EDEVSTATE;
    /* Verify the bytes as sent, with the device and the time, before
     * parsing them. */
    err = fleet_heartbeat_verify(dev, rq->header(rq, "X-Precursor-Timestamp"),
                                 rq->header(rq, "X-Precursor-Signature"), rq->body,
                                 rq->body_len, d.pk, fleet_now_ms(), &ts_ms, rs);
    if (err != SRV_OK)
        return err;
    j = srv_body_json(rq);
    if (!j || !json_is_object(j)) {
        err = srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
        goto out;
    }
    body = json_dumps(j, JSON_COMPACT);
    if (!body) {
        err = SRV_ENOMEM;
        goto out;
    }
    snprintf(ts, sizeof ts, "%lld", (long long)ts_ms);
    vals[0] = dev;
    vals[1] = body;
    vals[2] = ts;
    err = db_exec_own(&sql[API_HEARTBEAT_UPSERT], vals, NULL, NULL, 0, &r);
    if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_ECONFLICT, "heartbeat replayed: its timestamp is not after the"
                       " last one accepted from this device");
    else if (err == SRV_OK)
        rs->status = 204;
out:
    PQclear(r);
    free(body);
    json_decref(j);
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

static json_t *time_or_null(PGresult *r, int row, const char *col)
{
    char buf[40];

    if (db_isnull(r, row, col) || text_rfc3339(db_int64(r, row, col), buf, sizeof buf) != 0)
        return json_null();
    return json_string(buf);
}

/* One row of SNAPSHOT_COLS as the API item. */
static json_t *snapshot_item(PGresult *r, int i)
{
    json_t *chans = json_loads(db_text_or(r, i, "channels", "[]"), 0, NULL);

    return json_pack("{s:I,s:s,s:I,s:o,s:f,s:s,s:o,s:I,s:I,s:s,s:f,s:I,s:b}",
                     "id", (json_int_t)db_int64(r, i, "id"),
                     "device_id", db_text_or(r, i, "device_id", ""),
                     "seq", (json_int_t)db_int64(r, i, "seq"),
                     "trigger_time", time_or_null(r, i, "trigger_us"),
                     "sample_rate", db_double(r, i, "sample_rate"),
                     "sample_type", sample_type_name((int)db_int64(r, i, "sample_type")),
                     "channels", chans ? chans : json_array(),
                     "pre_samples", (json_int_t)db_int64(r, i, "pre_samples"),
                     "post_samples", (json_int_t)db_int64(r, i, "post_samples"),
                     "detector", db_text_or(r, i, "detector", ""),
                     "score", db_double(r, i, "score"),
                     "bytes", (json_int_t)db_int64(r, i, "bytes"),
                     "demo", db_bool(r, i, "demo"));
}

/* Builds one API item from row i of a result. */
typedef json_t *(*api_item_fn)(PGresult *r, int i);

/* {"items":[...],"next":CURSOR|null} from a page query that asked for limit
 * + 1 rows: the extra row only says a next page exists, and the cursor is
 * the id of the last row shown.  Takes r. */
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
    next = (n > limit && items) ? json_string(db_text_or(r, limit - 1, "id", "")) : json_null();
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
        return srv_fail(rs, SRV_ENOTFOUND, missing);
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
    const char *vals[3] = { after_s, lim_s, NULL };
    PGresult *r = NULL;
    int err;

    if ((err = srv_query_demo(rq, rs, &vals[2])) != SRV_OK)
        return err;
    if ((err = srv_query_no_offset(rq, rs, "after")) != SRV_OK)
        return err;
    if (text_parse_limit(rq->query(rq, "limit"), API_LIMIT_DEFAULT, API_LIMIT_MAX, &limit) != 0)
        return srv_fail(rs, SRV_EBADREQ, "limit must be an integer in 1..1000");
    if (text_parse_cursor(rq->query(rq, "after"), &after) != 0)
        return srv_fail(rs, SRV_EBADREQ, "after must be a cursor from a previous page");
    snprintf(after_s, sizeof after_s, "%" PRId64, after);
    /* One extra row tells whether a next page exists. */
    snprintf(lim_s, sizeof lim_s, "%d", limit + 1);
    err = db_exec_own(&sql[API_SNAPSHOTS_LIST], vals, NULL, NULL, 0, &r);
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
        return srv_fail(rs, SRV_ENOTFOUND, "no such snapshot");
    vals[0] = rq->params[0];
    err = db_exec_own(&sql[API_SNAPSHOT_GET], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    return respond_one(r, snapshot_item, "no such snapshot", rs);
}

int api_snapshot_raw(struct srv_request *rq, struct srv_response *rs)
{
    int64_t id;
    PGresult *r = NULL;
    const uint8_t *env = NULL;
    size_t n = 0;
    char *buf;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no such snapshot");
    err = ingest_stored(id, &r, &env, &n);
    if (err != SRV_OK) {
        PQclear(r);
        return err == SRV_ENOTFOUND ? srv_fail(rs, err, "no such snapshot") : err;
    }
    buf = malloc(n ? n : 1);
    if (!buf) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    memcpy(buf, env, n);
    PQclear(r);
    rs->status = 200;
    rs->content_type = "application/octet-stream";
    rs->body = buf;
    rs->body_len = n;
    return SRV_OK;
}

static json_t *string_or_null(PGresult *r, int i, const char *col)
{
    const char *v = db_text(r, i, col);

    return v ? json_string(v) : json_null();
}

/* One row of DEVICE_COLS. */
static json_t *device_item(PGresult *r, int i)
{
    size_t klen = 0;
    unsigned char *key = PQunescapeBytea((const unsigned char *)db_text_or(r, i, "public_key",
                                                                           ""), &klen);
    char k64[64] = "";
    json_t *hb = json_null(), *model, *item, *fleet;

    if (key && klen == WIRE_PK_LEN)
        text_b64_encode(key, klen, k64, sizeof k64);
    PQfreemem(key);
    if (!db_isnull(r, i, "heartbeat")) {
        json_t *body = json_loads(db_text(r, i, "heartbeat"), 0, NULL);
        json_decref(hb);
        hb = json_pack("{s:o,s:o}", "body", body ? body : json_null(), "received_at",
                       time_or_null(r, i, "heartbeat_us"));
    }
    /* Which model the device should run and what it says it runs. */
    model = deploy_device_model_json(db_text(r, i, "model"), json_object_get(hb, "body"));
    item = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:o,s:o}",
                     "id", db_text_or(r, i, "id", ""),
                     "public_key", k64,
                     "status", db_text_or(r, i, "status", ""),
                     "equipment_type", string_or_null(r, i, "equipment_type"),
                     "site", string_or_null(r, i, "site"),
                     "created_at", time_or_null(r, i, "created_us"),
                     "last_seen", time_or_null(r, i, "last_seen_us"),
                     "last_seq", (json_int_t)db_int64(r, i, "last_seq"),
                     "heartbeat", hb ? hb : json_null(),
                     "model", model ? model : json_null());
    /* Versions, spool depth, drops and health as fields (server/fleet). */
    fleet = item ? fleet_device_health(db_text_or(r, i, "status", ""), json_object_get(
                       json_object_get(item, "heartbeat"), "body"),
                       db_int64(r, i, "heartbeat_us"), (int64_t)time(NULL) * 1000000) : NULL;
    if (fleet)
        json_object_update(item, fleet);
    json_decref(fleet);
    if (item)
        json_object_set_new(item, "demo", json_boolean(db_bool(r, i, "demo")));
    return item;
}

int api_devices_list(struct srv_request *rq, struct srv_response *rs)
{
    const char *after = rq->query(rq, "after");
    int limit;
    char lim_s[16];
    const char *vals[3];
    PGresult *r = NULL;
    int err;

    /* the demo devices only when asked, as the snapshots */
    if ((err = srv_query_demo(rq, rs, &vals[2])) != SRV_OK)
        return err;
    if ((err = srv_query_no_offset(rq, rs, "after")) != SRV_OK)
        return err;
    if (text_parse_limit(rq->query(rq, "limit"), API_LIMIT_DEFAULT * 2, API_LIMIT_MAX,
                         &limit) != 0)
        return srv_fail(rs, SRV_EBADREQ, "limit must be an integer in 1..1000");
    if (after && *after && !text_valid_device_id(after))
        return srv_fail(rs, SRV_EBADREQ, "after must be a cursor from a previous page");
    snprintf(lim_s, sizeof lim_s, "%d", limit + 1);
    vals[0] = after ? after : "";
    vals[1] = lim_s;
    err = db_exec_own(&sql[API_DEVICES_LIST], vals, NULL, NULL, 0, &r);
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
        return srv_fail(rs, SRV_ENOTFOUND, "no such device");
    err = db_exec_own(&sql[API_DEVICE_GET], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    return respond_one(r, device_item, "no such device", rs);
}
