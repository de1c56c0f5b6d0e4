/* deploy.c - model deployments: the admin/ml route that assigns a model to
 * devices or a group, the two device-signed GETs agents poll, and the fleet
 * view's "model" object.  See deploy.h; the signed-GET format and the config
 * answer are documented in schema/MODEL.md.  Who may call the admin/ml
 * routes is the route table's business (server/routes.c). */
#include "server/deploy/deploy.h"
#include "server/deploy/deploy_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/text/text.h"
#include "server/models/models.h"
#include "server/srv/srv.h"

#define GROUP_FIELD_MAX 64              /* equipment_type, site */

#define LIST_DETAILED 10               /* deployments listed with their devices */

enum { D_MODEL, D_INSERT, D_MATCHED, D_UNKNOWN, D_DEVICE, D_BLOB, D_LIST, D_TARGETS, D_DEP_DEVICES, D_COUNT };
static const struct db_sql stmts[D_COUNT] = {
    [D_MODEL] = { "deploy_model",
        "SELECT status, metrics::text AS metrics FROM models WHERE id = $1::bigint", 1 },
    [D_INSERT] = { "deploy_insert",
        "INSERT INTO model_deployments (model_id, device_ids, equipment_type, site, created_by,"
        " mode, forced)"
        " VALUES ($1::bigint, $2::text[], $3, $4, $5, $6, $7::boolean) RETURNING id", 7 },
    [D_MATCHED] = { "deploy_matched",
        "SELECT count(*) AS matched FROM devices d"
        " WHERE deployment_for_device(d.id, d.equipment_type, d.site) = $1::bigint", 1 },
    /* The device's key and state, and the deployment in force for it: the
     * blob made for this device (its own reference as the few-shot center,
     * model_device_refs) when training made one, else the model's. */
    /* the ids of a device list that no device has (yet): a typo reaches
     * nothing, and the client hears of it */
    [D_UNKNOWN] = { "deploy_unknown",
        "SELECT coalesce(json_agg(x ORDER BY x), '[]')::text AS unknown FROM unnest($1::text[]) x"
        " WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = x)", 1 },
    [D_DEVICE] = { "deploy_device",
        "SELECT encode(d.public_key, 'hex') AS public_key, d.status, dep.id AS deployment,"
        " dep.model_id, encode(sha256(coalesce(r.blob, m.blob)), 'hex') AS sha256,"
        " octet_length(coalesce(r.blob, m.blob)) AS bytes, m.kind, dep.mode,"
        " r.blob IS NOT NULL AS own_reference, coalesce(r.reference_windows, 0) AS reference_windows"
        " FROM devices d"
        " LEFT JOIN model_deployments dep"
        "  ON dep.id = deployment_for_device(d.id, d.equipment_type, d.site)"
        " LEFT JOIN models m ON m.id = dep.model_id AND m.status = 'done'"
        " LEFT JOIN model_device_refs r ON r.model_id = m.id AND r.device_id = d.id"
        " WHERE d.id = $1", 1 },
    [D_BLOB] = { "deploy_blob",
        "SELECT coalesce(r.blob, m.blob) AS blob FROM models m"
        " LEFT JOIN model_device_refs r ON r.model_id = m.id AND r.device_id = $2"
        " WHERE m.id = $1::bigint AND m.status = 'done'", 2 },
    [D_LIST] = { "deploy_list",
        "SELECT id, model_id, array_to_json(device_ids)::text AS devices, equipment_type, site,"
        " created_by, (extract(epoch FROM created_at) * 1000000)::bigint AS created_us, mode, forced,"
        " (SELECT metrics::text FROM models WHERE id = md.model_id) AS metrics,"
        " (SELECT count(*) FROM devices d"
        "   WHERE deployment_for_device(d.id, d.equipment_type, d.site) = md.id) AS assigned,"
        /* running: what the devices' latest heartbeats say, not the assignment */
        " (SELECT count(*) FROM devices d JOIN heartbeats h ON h.device_id = d.id"
        "   WHERE deployment_for_device(d.id, d.equipment_type, d.site) = md.id"
        "     AND h.body->>'model_version' = md.model_id::text) AS running"
        " FROM model_deployments md WHERE model_id = $1::bigint ORDER BY id DESC LIMIT 100", 1 },
    /* The active devices a deployment would reach, with their latest heartbeat. */
    [D_TARGETS] = { "deploy_targets",
        "SELECT d.id AS device_id, h.body::text AS hb FROM devices d"
        " LEFT JOIN heartbeats h ON h.device_id = d.id"
        " WHERE d.status = 'active' AND CASE WHEN $1::text[] IS NOT NULL THEN d.id = ANY($1::text[])"
        " ELSE ($2::text IS NULL OR d.equipment_type = $2) AND ($3::text IS NULL OR d.site = $3) END"
        " ORDER BY d.id LIMIT 1000", 3 },
    /* The devices a deployment is in force on or was rolled back on. */
    [D_DEP_DEVICES] = { "deploy_dep_devices",
        "SELECT d.id AS device_id, h.body::text AS hb,"
        " extract(epoch FROM now() - h.received_at)::float8 AS hb_age_s,"
        " EXISTS (SELECT 1 FROM model_rollbacks rb WHERE rb.device_id = d.id"
        "         AND rb.deployment_id = $1::bigint) AS rolled_back"
        " FROM devices d LEFT JOIN heartbeats h ON h.device_id = d.id"
        " WHERE deployment_for_device(d.id, d.equipment_type, d.site) = $1::bigint"
        "    OR EXISTS (SELECT 1 FROM model_rollbacks rb WHERE rb.device_id = d.id"
        "               AND rb.deployment_id = $1::bigint)"
        " ORDER BY d.id LIMIT 200", 1 },
};

static int dexec(int s, const char *const *vals, const int *lens, const int *fmts, int binary,
                 PGresult **out)
{
    return db_exec_own(&stmts[s], vals, lens, fmts, binary, out);
}

int deploy_sig_message(const char *path, const char *ts, char *out, size_t cap)
{
    int n;

    if (!path || !ts || !out)
        return -1;
    n = snprintf(out, cap, "%s\n%s\n%s", DEPLOY_SIG_CONTEXT, path, ts);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* ---- the admin/ml route ---------------------------------------------------- */

static int group_field(const json_t *body, const char *key, const char **out)
{
    const json_t *v = json_object_get(body, key);
    const char *s;

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    s = json_string_value(v);
    if (!s || !*s || strlen(s) > GROUP_FIELD_MAX)
        return -1;
    *out = s;
    return 0;
}

/* {"devices":[ids]} as a text[] literal into out; -1 when not 1..1000
 * valid device ids. */
static int device_list(const json_t *arr, struct srv_buf *out)
{
    size_t i;

    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > DEPLOY_MAX_DEVICES)
        return -1;
    db_array_begin(out);
    for (i = 0; i < json_array_size(arr); i++) {
        const char *id = json_string_value(json_array_get(arr, i));

        if (!text_valid_device_id(id))
            return -1;
        db_array_text(out, id);
    }
    db_array_end(out);
    return 0;
}

/* Whom a deployment is for: named devices, or a group. */
struct target {
    struct srv_buf devices;     /* text[] literal; empty for a group */
    const char *eq, *site;      /* borrowed from the body */
};

static int target_parse(const json_t *body, struct target *t, struct srv_response *rs)
{
    const json_t *devs = json_object_get(body, "devices");

    if (group_field(body, "equipment_type", &t->eq) != 0 || group_field(body, "site", &t->site) != 0)
        return srv_fail(rs, SRV_EBADREQ, "equipment_type and site must be strings of 1..64 bytes");
    if (devs && (t->eq || t->site))
        return srv_fail(rs, SRV_EBADREQ, "give devices or a group (equipment_type, site), not both");
    if (!devs && !t->eq && !t->site)
        return srv_fail(rs, SRV_EBADREQ, "needs devices or equipment_type and/or site");
    if (devs && device_list(devs, &t->devices) != 0)
        return srv_fail(rs, SRV_EBADREQ, "devices must be 1..1000 device ids");
    return t->devices.oom ? SRV_ENOMEM : SRV_OK;
}

/* Only a model that finished training is deployed; *pred is what its
 * training predicted a device would see. */
static int model_ready(const char *idb, struct srv_response *rs, struct deploy_pred *pred)
{
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int err;

    if ((err = dexec(D_MODEL, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1)
        err = srv_fail(rs, SRV_ENOTFOUND, "no such model");
    else if (strcmp(db_text_or(r, 0, "status", ""), "failed") == 0)
        err = srv_fail(rs, SRV_ECONFLICT,
                       "the model failed to train (GET /api/v1/models/{id}: error): deploy another");
    else if (strcmp(db_text_or(r, 0, "status", ""), "done") != 0)
        err = srv_fail(rs, SRV_ECONFLICT, "the model has not finished training");
    else
        deploy__prediction(db_text(r, 0, "metrics"), pred);
    PQclear(r);
    return err;
}

/* Shadow before active: every target device's numbers, and whether they
 * allow promotion.  SRV_OK when they do; else a 409 answer carrying them. */
static int promotion_check(const char *idb, const struct target *t, const struct deploy_pred *pred,
                           struct srv_response *rs)
{
    const char *vals[3] = { t->devices.p, t->eq, t->site }, *why, *first = NULL;
    struct models_budget b;
    PGresult *r = NULL;
    json_t *devs = json_array();
    int err, i, observed = 0, refused = 0;
    int64_t id = 0;

    (void)text_parse_id(idb, &id);
    if (!devs || (err = models_budget_get(&b)) != SRV_OK ||
        (err = dexec(D_TARGETS, vals, NULL, NULL, 0, &r)) != SRV_OK) {
        json_decref(devs);
        return devs ? err : SRV_ENOMEM;
    }
    for (i = 0; i < PQntuples(r); i++) {
        json_t *hb = json_loads(db_text_or(r, i, "hb", ""), 0, NULL), *o;
        struct deploy_dev_stats st;

        deploy__stats(hb, id, &st);
        json_decref(hb);
        why = deploy__promotion_refusal(&st, pred, &b);
        o = deploy__rates_json(db_text_or(r, i, "device_id", ""), &st, pred, &b);
        /* A device that never ran the model in shadow is listed, and does
         * not block; one that ran it and missed does. */
        if (st.found && !st.active && st.run_s >= DEPLOY_MIN_SHADOW_S)
            observed++;
        if (why && st.found && !st.active && st.run_s >= DEPLOY_MIN_SHADOW_S) {
            refused++;
            first = first ? first : why;
        }
        if (o) {
            json_object_set_new(o, "refusal", why ? json_string(why) : json_null());
            json_array_append_new(devs, o);
        }
    }
    PQclear(r);
    if (observed > 0 && refused == 0) {
        json_decref(devs);
        return SRV_OK;
    }
    return srv_respond_json_take(rs, 409, json_pack("{s:{s:s,s:s},s:o,s:o}", "error",
        "code", srv_err_code(SRV_ECONFLICT), "message",
        observed == 0 ? "promotion refused: no target device has run the model in shadow for 60 s "
                        "(deploy with mode shadow first, or force)"
                      : first ? first : "promotion refused",
        "devices", devs, "budget", json_pack("{s:f,s:i}", "per_operator_hour",
                                             b.per_operator_hour, "devices_per_operator",
                                             b.devices_per_operator)));
}

/* Insert the deployment; *dep its id, *matched the devices it reaches. */
/* The ids of t's device list no device has, as a JSON array (NULL for a
 * group, or when the statement failed: the deployment is stored anyway). */
static json_t *unknown_devices(const struct target *t)
{
    const char *vals[1] = { t->devices.p };
    PGresult *r = NULL;
    json_t *j;

    if (!t->devices.len || dexec(D_UNKNOWN, vals, NULL, NULL, 0, &r) != SRV_OK)
        return NULL;
    j = json_loads(db_text_or(r, 0, "unknown", "[]"), 0, NULL);
    PQclear(r);
    return j;
}

static int deployment_insert(const char *idb, const struct target *t, const char *by,
                             const char *mode, int forced, int64_t *dep, long long *matched)
{
    const char *vals[7] = { idb, t->devices.p, t->eq, t->site, by, mode, forced ? "true" : "false" };
    char depb[24];
    PGresult *r = NULL;
    int err;

    if ((err = dexec(D_INSERT, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    *dep = db_int64(r, 0, "id");
    PQclear(r);
    r = NULL;
    snprintf(depb, sizeof depb, "%" PRId64, *dep);
    vals[0] = depb;
    if ((err = dexec(D_MATCHED, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    *matched = (long long)db_int64(r, 0, "matched");
    PQclear(r);
    return SRV_OK;
}

/* "mode" (shadow|active, default shadow) and "force" of a deploy body. */
static int mode_parse(const json_t *body, const char **mode, int *force, struct srv_response *rs)
{
    const json_t *m = json_object_get(body, "mode"), *f = json_object_get(body, "force");

    *mode = "shadow";
    *force = 0;
    if (m && (!json_is_string(m) || (strcmp(json_string_value(m), "shadow") != 0 &&
                                     strcmp(json_string_value(m), "active") != 0)))
        return srv_fail(rs, SRV_EBADREQ, "mode must be \"shadow\" or \"active\"");
    if (f && !json_is_boolean(f))
        return srv_fail(rs, SRV_EBADREQ, "force must be true or false");
    if (m)
        *mode = json_string_value(m);
    *force = json_is_true(f);
    return SRV_OK;
}

int deploy_api_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *body = NULL;
    struct target t;
    struct deploy_pred pred;
    char idb[24], by[AUTH_ACTOR_MAX];
    const char *mode = "shadow";
    int64_t id, dep = 0;
    long long matched = 0;
    int err, force = 0;

    static const char *const deploy_fields[] = { "devices", "equipment_type", "site", "mode",
                                                 "force", NULL };

    memset(&t, 0, sizeof t);
    if (!rq->params[0] || text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no such model");
    body = srv_body_json(rq);
    if (!json_is_object(body))
        err = srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    else if ((err = target_parse(body, &t, rs)) == SRV_OK &&
             (err = mode_parse(body, &mode, &force, rs)) == SRV_OK)
        rs->ignored = srv_json_ignored(rq, body, deploy_fields);
    snprintf(idb, sizeof idb, "%" PRId64, id);
    if (err == SRV_OK)
        err = model_ready(idb, rs, &pred);
    if (err == SRV_OK && strcmp(mode, "active") == 0 && !force)
        err = promotion_check(idb, &t, &pred, rs);
    auth_actor(rq, by, sizeof by);
    if (err == SRV_OK && rs->status == 409)
        ;   /* refused with the numbers: nothing stored */
    else if (err == SRV_OK &&
             (err = deployment_insert(idb, &t, by, mode, force, &dep, &matched)) == SRV_OK) {
        srv_log("info", "deploy: model %" PRId64 " deployment %" PRId64 " (%s%s) by %s, %lld devices now",
                id, dep, mode, force ? ", forced" : "", by, matched);
        json_t *ans = json_pack("{s:I,s:I,s:I,s:s,s:b}", "id", (json_int_t)dep,
                                "model_id", (json_int_t)id, "devices_matched", (json_int_t)matched,
                                "mode", mode, "forced", force);
        json_t *unknown = unknown_devices(&t);

        if (ans && unknown)
            json_object_set_new(ans, "unknown_devices", unknown);
        else
            json_decref(unknown);
        err = srv_respond_json_take(rs, 201, ans);
    }
    srv_buf_free(&t.devices);
    json_decref(body);
    return err;
}

/* A text column as a JSON string, null when SQL NULL. */
static json_t *string_or_null(const PGresult *r, int i, const char *name)
{
    const char *v = db_text(r, i, name);

    return v ? json_string(v) : json_null();
}

static json_t *deployment_json(const PGresult *r, int i)
{
    const char *devs = db_text(r, i, "devices");
    char t[40];

    return json_pack("{s:I,s:I,s:o,s:o,s:o,s:s,s:s,s:I,s:I,s:s,s:b}",
        "id", (json_int_t)db_int64(r, i, "id"),
        "model_id", (json_int_t)db_int64(r, i, "model_id"),
        "devices", devs ? json_loads(devs, 0, NULL) : json_null(),
        "equipment_type", string_or_null(r, i, "equipment_type"),
        "site", string_or_null(r, i, "site"),
        "created_by", db_text_or(r, i, "created_by", ""),
        "created_at", text_rfc3339(db_int64(r, i, "created_us"), t, sizeof t) == 0 ? t : "",
        "devices_assigned", (json_int_t)db_int64(r, i, "assigned"),
        "devices_running_it_now", (json_int_t)db_int64(r, i, "running"),
        "mode", db_text_or(r, i, "mode", "active"), "forced", db_bool(r, i, "forced"));
}

/* What a device says of the deployment's model: rolled back, running (in
 * the mode it reports), refused, or pending (assigned, not reported yet). */
static const char *device_status(const PGresult *r, int i, const json_t *hb, int64_t model_id,
                                 const struct deploy_dev_stats *st)
{
    const json_t *ref = json_object_get(json_object_get(hb, "model"), "refused");
    const json_t *running = json_object_get(hb, "model_version");

    if (db_bool(r, i, "rolled_back"))
        return "rolled_back";
    if (st->found && json_integer_value(running) == model_id)
        return "running";
    if (json_is_object(ref) && json_integer_value(json_object_get(ref, "version")) == model_id)
        return "refused";
    return "pending";
}

/* Per device of deployment row i: status from what the device reports,
 * and its observed rate next to the predicted one and its budget. */
static json_t *deployment_devices(const PGresult *dr, int di, const struct models_budget *b)
{
    char depb[24];
    const char *vals[1] = { depb };
    int64_t model_id = db_int64(dr, di, "model_id");
    struct deploy_pred pred;
    PGresult *r = NULL;
    json_t *a = json_array();

    deploy__prediction(db_text(dr, di, "metrics"), &pred);
    snprintf(depb, sizeof depb, "%" PRId64, db_int64(dr, di, "id"));
    if (!a || dexec(D_DEP_DEVICES, vals, NULL, NULL, 0, &r) != SRV_OK)
        return a;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *hb = json_loads(db_text_or(r, i, "hb", ""), 0, NULL), *o;
        struct deploy_dev_stats st;

        deploy__stats(hb, model_id, &st);
        o = deploy__rates_json(db_text_or(r, i, "device_id", ""), &st, &pred, b);
        if (o) {
            json_object_set_new(o, "status", json_string(device_status(r, i, hb, model_id, &st)));
            json_object_set_new(o, "heartbeat_age_s", db_isnull(r, i, "hb_age_s")
                                ? json_null() : json_real(db_double(r, i, "hb_age_s")));
            json_array_append_new(a, o);
        }
        json_decref(hb);
    }
    PQclear(r);
    return a;
}

int deploy_api_list(struct srv_request *rq, struct srv_response *rs)
{
    const char *vals[1];
    char idb[24];
    PGresult *r = NULL;
    json_t *items, *rb = NULL;
    struct models_budget b;
    int64_t id;
    int err, i, n;

    if (!rq->params[0] || text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no such model");
    snprintf(idb, sizeof idb, "%" PRId64, id);
    vals[0] = idb;
    /* A model that does not exist is a 404, as GET /api/v1/models/{id}
     * says, not an empty list that reads as "never deployed". */
    if ((err = dexec(D_MODEL, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    n = PQntuples(r);
    PQclear(r);
    r = NULL;
    if (n != 1)
        return srv_fail(rs, SRV_ENOTFOUND, "no such model");
    if ((err = dexec(D_LIST, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    n = PQntuples(r);
    items = json_array();
    if (models_budget_get(&b) != SRV_OK)
        memset(&b, 0, sizeof b);
    for (i = 0; items && i < n; i++) {
        json_t *d = deployment_json(r, i);

        /* The newest few with their devices: what each says it runs. */
        if (d && i < LIST_DETAILED && b.per_operator_hour > 0)
            json_object_set_new(d, "devices_status", deployment_devices(r, i, &b));
        if (json_array_append_new(items, d) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    PQclear(r);
    if (items && deploy_rollbacks_json(idb, &rb) != SRV_OK)
        rb = json_array();
    return items ? srv_respond_json_take(rs, 200, json_pack("{s:o,s:o}", "items", items,
                                                             "rollbacks", rb ? rb : json_array()))
                 : SRV_ENOMEM;
}

/* ---- the device routes ------------------------------------------------------- */

/* Prove the caller is the active device named in the path, by its signature
 * over DEPLOY_SIG_CONTEXT, the path and a fresh timestamp.  On success *out
 * is the D_DEVICE row. */
static int device_auth(struct srv_request *rq, struct srv_response *rs, PGresult **out)
{
    const char *dev = rq->header(rq, "X-Precursor-Device");
    const char *sig64 = rq->header(rq, "X-Precursor-Signature");
    const char *ts = rq->header(rq, "X-Precursor-Timestamp");
    uint8_t sig[64], pk[32];
    char msg[512];
    const char *vals[1];
    PGresult *r = NULL;
    size_t bin = 0;
    int64_t t;
    int n, err;

    if (!text_valid_device_id(dev))
        return srv_fail(rs, SRV_EBADREQ, "X-Precursor-Device missing or malformed");
    if (!rq->params[0] || strcmp(rq->params[0], dev) != 0)
        return srv_fail(rs, SRV_EFORBIDDEN, "a device may only read its own config");
    if (text_b64_decode_exact(sig64, sig, sizeof sig) != 0)
        return srv_fail(rs, SRV_EBADREQ, "X-Precursor-Signature must be base64 of 64 bytes");
    if (!ts || text_parse_id(ts, &t) != 0)
        return srv_fail(rs, SRV_EBADREQ, "X-Precursor-Timestamp must be unix seconds");
    /* Bound the replay window of a captured request. */
    if (t < (int64_t)time(NULL) - DEPLOY_MAX_SKEW_S || t > (int64_t)time(NULL) + DEPLOY_MAX_SKEW_S)
        return srv_fail(rs, SRV_EUNAUTH, "X-Precursor-Timestamp is stale or in the future (300 s)");
    if ((n = deploy_sig_message(rq->path, ts, msg, sizeof msg)) < 0)
        return srv_fail(rs, SRV_EBADREQ, "path too long");
    vals[0] = dev;
    if ((err = dexec(D_DEVICE, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1 || sodium_hex2bin(pk, sizeof pk, db_text_or(r, 0, "public_key", ""),
                                           (size_t)db_len(r, 0, "public_key"),
                                           NULL, &bin, NULL) != 0 || bin != sizeof pk) {
        PQclear(r);
        return SRV_EUNKNOWNDEV;
    }
    if (strcmp(db_text_or(r, 0, "status", ""), "active") != 0) {
        PQclear(r);
        return SRV_EDEVSTATE;
    }
    if (crypto_sign_verify_detached(sig, (const uint8_t *)msg, (unsigned long long)n, pk) != 0) {
        PQclear(r);
        return SRV_ESIGNATURE;
    }
    *out = r;
    return SRV_OK;
}

/* The D_DEVICE row names a deployment whose model finished training. */
static int deployed(const PGresult *r)
{
    return !db_isnull(r, 0, "deployment") && !db_isnull(r, 0, "sha256");
}

int deploy_api_device_config(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    uint8_t sk[64], pk[32];
    char k64[64];
    json_t *model = json_null(), *j;
    int err;

    if ((err = device_auth(rq, rs, &r)) != SRV_OK)
        return err;
    if (deployed(r))
        model = json_pack("{s:I,s:I,s:s,s:I,s:s,s:s,s:b,s:I}",
                          "id", (json_int_t)db_int64(r, 0, "model_id"),
                          "deployment", (json_int_t)db_int64(r, 0, "deployment"),
                          "sha256", db_text_or(r, 0, "sha256", ""),
                          "bytes", (json_int_t)db_int64(r, 0, "bytes"),
                          "kind", db_text_or(r, 0, "kind", ""),
                          "mode", db_text_or(r, 0, "mode", "active"),
                          "own_reference", db_bool(r, 0, "own_reference"),
                          "reference_windows", (json_int_t)db_int64(r, 0, "reference_windows"));
    PQclear(r);
    /* The key lets an agent without --model-key pin it on first contact. */
    if ((err = models_signing_key(sk, pk)) != SRV_OK) {
        json_decref(model);
        return err;
    }
    sodium_memzero(sk, sizeof sk);
    if (text_b64_encode(pk, sizeof pk, k64, sizeof k64) != 0) {
        json_decref(model);
        return SRV_EINTERNAL;
    }
    j = json_pack("{s:s,s:o,s:s,s:I}", "device_id", rq->params[0], "model", model ? model : json_null(),
                  "model_signing_key", k64, "server_time", (json_int_t)time(NULL));
    return srv_respond_json_take(rs, 200, j);
}

int deploy_api_device_model(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    char idb[24];
    const char *vals[2] = { idb, rq->params[0] };
    int err;

    if ((err = device_auth(rq, rs, &r)) != SRV_OK)
        return err;
    if (!deployed(r)) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no model is deployed to this device");
    }
    snprintf(idb, sizeof idb, "%s", db_text_or(r, 0, "model_id", ""));
    PQclear(r);
    r = NULL;
    if ((err = dexec(D_BLOB, vals, NULL, NULL, 1, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1 || db_isnull(r, 0, "blob")) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no model is deployed to this device");
    }
    err = srv_respond_copy(rs, 200, "application/octet-stream", db_text(r, 0, "blob"),
                           (size_t)db_len(r, 0, "blob"));
    PQclear(r);
    return err;
}

/* ---- fleet view ----------------------------------------------------------------- */

json_t *deploy_device_model_json(const char *assigned, const json_t *hb_body)
{
    json_t *hm = hb_body ? json_object_get(hb_body, "model") : NULL;
    json_t *running = hb_body ? json_object_get(hb_body, "model_version") : NULL;
    json_t *o;
    int64_t a = 0;

    o = json_pack("{s:o,s:o}",
                  "assigned", assigned && text_parse_id(assigned, &a) == 0 ? json_integer(a) : json_null(),
                  "running", json_is_integer(running) ? json_incref(running) : json_null());
    if (!o)
        return NULL;
    /* What the agent says about its previous model and the last refusal,
     * passed on as it reported them (bounded by the heartbeat body limit). */
    if (json_is_object(hm)) {
        json_t *prev = json_object_get(hm, "previous"), *ref = json_object_get(hm, "refused");

        json_object_set_new(o, "previous", json_is_integer(prev) ? json_incref(prev) : json_null());
        json_object_set_new(o, "refused", json_is_object(ref) ? json_incref(ref) : json_null());
    }
    json_object_set_new(o, "in_sync", json_boolean(assigned && json_is_integer(running) &&
                                                   json_integer_value(running) == a));
    return o;
}
