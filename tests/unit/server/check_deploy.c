/* check_deploy.c - model deployment through the server in-process, over
 * real HTTP (libcurl) and a real PostgreSQL: an ml token assigns a finished
 * model to a device and to an equipment-type group, the device fetches its
 * config and the blob with signed GETs (and the blob verifies with the key
 * the server publishes), unsigned, mis-signed, stale and cross-device
 * requests are refused, and the fleet view shows assigned and running
 * models; shadow first, promotion refused with the numbers while the shadow
 * rate misses the prediction or the alarm budget, and an active model over
 * its budget rolled back on its device by the watcher.  Needs DATABASE_URL;
 * skips without it. */
#include <check.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/fleet/config_poll.h"
#include "schema/devmsg.h"
#include "schema/model.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/deploy/deploy.h"
#include "server/http/http.h"
#include "server/text/text.h"
#include "server/models/models.h"
#include "testsrv.h"

#define SECRET "deploy-enroll-secret"

struct fx {
    struct testsrv srv;
    char ml[AUTH_TOKEN_LEN + 1], op[AUTH_TOKEN_LEN + 1];
    char keyfile[128];
    uint8_t pk[2][32], sk[2][64];       /* devices dep-1, dep-2 */
};

/* hdrs: extra header lines, NULL-terminated (may be NULL). */
static long http(struct fx *f, const char *method, const char *path, const char *body,
                 const char *tok, const char *const *hdrs, struct testsrv_reply *rep)
{
    return testsrv_request(&f->srv, method, path, body, body ? strlen(body) : 0, tok, hdrs, rep);
}

/* A device-signed GET at time ts, signed with sk. */
static long dev_get(struct fx *f, const char *dev, const char *path, const uint8_t *sk, int64_t ts,
                    struct testsrv_reply *rep)
{
    char d[200], t[200], s[200];
    const char *h[4] = { d, t, s, NULL };

    ck_assert_int_eq(config_poll_sign(sk, dev, path, ts, d, t, s, sizeof d), 0);
    return http(f, "GET", path, NULL, NULL, h, rep);
}

/* A finished model row (id 1) whose blob the server's key signed, for a
 * two-channel layout; a queued one (id 2). */
static void add_models(uint8_t **blob_out, size_t *len_out)
{
    static const char *names[2] = { "vib_x", "vib_y" }, *units[2] = { "g", "g" };
    float X[40 * 14];
    struct model m;
    uint8_t sk[64], pk[32], *blob = NULL;
    size_t len = 0, i;
    PGconn *c;
    PGresult *r;
    const char *vals[1];
    int lens[1], fmts[1] = { 1 };

    for (i = 0; i < 40 * 14; i++)
        X[i] = (float)((i * 7919) % 101) / 100.0f;
    memset(&m, 0, sizeof m);
    m.features = (struct featureset_spec){ FEATURESET_STATS, FEATURESET_STATS_VERSION, 256, 256,
                                           1000.0f, FEATURESET_NO_KIN, NULL };
    ck_assert_int_eq(models_train_anomaly(X, 40, 14, 0.99f, &m), 0);
    m.channel_count = 2;
    m.version = 1;
    ck_assert_int_eq(model_layout_digest(names, units, 2, m.layout), 0);
    ck_assert_int_eq(models_signing_key(sk, pk), 0);
    ck_assert_int_eq(model_encode(&m, sk, &blob, &len), 0);
    testsrv_sql("INSERT INTO datasets (name, definition, created_by) VALUES ('d', '{}', 't')");
    testsrv_sql("INSERT INTO dataset_versions (dataset_id, version, content_sha256, n_windows, summary, created_by)"
                " VALUES (1, 1, decode(repeat('00', 32), 'hex'), 0, '{}', 't')");
    c = db_connect(testdb_conninfo);
    vals[0] = (const char *)blob;
    lens[0] = (int)len;
    r = PQexecParams(c, "INSERT INTO models (id, dataset_id, version, kind, status, blob, created_by)"
                        " VALUES (1, 1, 1, 'anomaly', 'done', $1::bytea, 't')",
                     1, NULL, vals, lens, fmts, 0);
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
    testsrv_sql("INSERT INTO models (id, dataset_id, version, kind, created_by) VALUES (2, 1, 1, 'anomaly', 't')");
    *blob_out = blob;
    *len_out = len;
}

static void fx_start(struct fx *f)
{
    char dev[16];
    int d;

    memset(f, 0, sizeof *f);
    testsrv_db();
    testsrv_add_token("ml", f->ml, sizeof f->ml);
    testsrv_add_token("operator", f->op, sizeof f->op);
    snprintf(f->keyfile, sizeof f->keyfile, "%s/deploy-key-%ld", P_tmpdir, (long)getpid());
    testsrv_model_key(f->keyfile);
    testsrv_listen(&f->srv, SECRET);
    for (d = 0; d < 2; d++) {
        crypto_sign_keypair(f->pk[d], f->sk[d]);
        snprintf(dev, sizeof dev, "dep-%d", d + 1);
        testsrv_register(&f->srv, dev, f->pk[d], SECRET);
    }
}

static void fx_stop(struct fx *f)
{
    testsrv_stop(&f->srv);
    unlink(f->keyfile);
    models_set_key_file(NULL);
}

/* The reply as JSON; its body is freed. */
static json_t *body_json(struct testsrv_reply *r)
{
    json_t *j = testsrv_json(r);

    free(r->body);
    r->body = NULL;
    return j;
}

START_TEST(test_deploy_fetch_and_view)
{
    struct fx f;
    struct testsrv_reply rep;
    json_t *j, *m;
    uint8_t *blob, sha[32], sk[64], pk[32], other_pk[32], other_sk[64];
    char hex[65], hb[256], sig[128], hdev[96], hsig[160];
    size_t blen;
    struct model lm;
    int64_t now = (int64_t)time(NULL);
    const char *cfg1 = "/api/v1/devices/dep-1/config";

    TESTDB_REQUIRE();
    fx_start(&f);
    add_models(&blob, &blen);

    /* Nothing deployed yet: config says so, the blob route 404s. */
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, f.sk[0], now, &rep), 200);
    j = body_json(&rep);
    ck_assert(json_is_null(json_object_get(j, "model")));
    json_decref(j);
    ck_assert_int_eq(dev_get(&f, "dep-1", "/api/v1/devices/dep-1/model", f.sk[0], now, &rep), 404);
    free(rep.body);

    /* Who may deploy, and what. */
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{\"devices\":[\"dep-1\"]}", f.op, NULL, &rep), 403);
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{\"devices\":[\"dep-1\"],\"site\":\"a\"}", f.ml, NULL, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{\"devices\":[\"../x\"]}", f.ml, NULL, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{}", f.ml, NULL, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/99/deploy", "{\"devices\":[\"dep-1\"]}", f.ml, NULL, &rep), 404);
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/2/deploy", "{\"devices\":[\"dep-1\"]}", f.ml, NULL, &rep), 409);
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{\"devices\":[\"dep-1\"]}", f.ml, NULL, &rep), 201);
    j = body_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "devices_matched")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(j, "unknown_devices")), 0);
    ck_assert_ptr_nonnull(json_object_get(j, "unknown_devices"));
    json_decref(j);

    /* The device sees it, with the blob's hash; the blob verifies with the
     * published key and is the stored one. */
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, f.sk[0], now, &rep), 200);
    j = body_json(&rep);
    m = json_object_get(j, "model");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "id")), 1);
    crypto_hash_sha256(sha, blob, blen);
    sodium_bin2hex(hex, sizeof hex, sha, 32);
    ck_assert_str_eq(json_string_value(json_object_get(m, "sha256")), hex);
    ck_assert_int_eq(models_signing_key(sk, pk), 0);
    {
        uint8_t kb[32];

        ck_assert_int_eq(text_b64_decode_exact(json_string_value(json_object_get(j, "model_signing_key")), kb, 32), 0);
        ck_assert(memcmp(kb, pk, 32) == 0);
    }
    json_decref(j);
    ck_assert_int_eq(dev_get(&f, "dep-1", "/api/v1/devices/dep-1/model", f.sk[0], now, &rep), 200);
    ck_assert_uint_eq(rep.len, blen);
    ck_assert(memcmp(rep.body, blob, blen) == 0);
    ck_assert_int_eq(model_load((const uint8_t *)rep.body, rep.len, pk, NULL, &lm), 0);
    ck_assert_uint_eq(lm.version, 1);
    free(rep.body);

    /* Refusals: unsigned, signed by another key, stale, future, another
     * device's config, a revoked device. */
    ck_assert_int_eq(http(&f, "GET", cfg1, NULL, NULL, NULL, &rep), 400);
    free(rep.body);
    crypto_sign_keypair(other_pk, other_sk);
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, other_sk, now, &rep), 403);
    free(rep.body);
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, f.sk[0], now - DEPLOY_MAX_SKEW_S - 60, &rep), 401);
    free(rep.body);
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, f.sk[0], now + DEPLOY_MAX_SKEW_S + 60, &rep), 401);
    free(rep.body);
    ck_assert_int_eq(dev_get(&f, "dep-2", cfg1, f.sk[1], now, &rep), 403);
    free(rep.body);
    /* A signature for one path does not open another. */
    {
        char d[200], t[200], s[200];
        const char *h[4] = { d, t, s, NULL };

        ck_assert_int_eq(config_poll_sign(f.sk[0], "dep-1", cfg1, now, d, t, s, sizeof d), 0);
        ck_assert_int_eq(http(&f, "GET", "/api/v1/devices/dep-1/model", NULL, NULL, h, &rep), 403);
        free(rep.body);
    }

    /* Group deployment reaches dep-2 by its equipment type, not dep-1. */
    testsrv_sql("UPDATE devices SET equipment_type = 'pump' WHERE id = 'dep-2'");
    ck_assert_int_eq(dev_get(&f, "dep-2", "/api/v1/devices/dep-2/config", f.sk[1], now, &rep), 200);
    j = body_json(&rep);
    ck_assert(json_is_null(json_object_get(j, "model")));
    json_decref(j);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{\"equipment_type\":\"pump\"}", f.ml, NULL, &rep), 201);
    j = body_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "devices_matched")), 1);
    json_decref(j);
    ck_assert_int_eq(dev_get(&f, "dep-2", "/api/v1/devices/dep-2/config", f.sk[1], now, &rep), 200);
    j = body_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "model"), "id")), 1);
    json_decref(j);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models/1/deployments", NULL, f.ml, NULL, &rep), 200);
    j = body_json(&rep);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 2);
    json_decref(j);
    /* A model that does not exist: 404 with the JSON error, as
     * GET /api/v1/models/{id} answers, not an empty list. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models/999999/deployments", NULL, f.ml, NULL, &rep), 404);
    j = body_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "not_found");
    json_decref(j);

    /* Fleet view: assigned from the deployment, running from the heartbeat. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices/dep-1", NULL, f.ml, NULL, &rep), 200);
    j = body_json(&rep);
    m = json_object_get(j, "model");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "assigned")), 1);
    ck_assert(json_is_null(json_object_get(m, "running")));
    json_decref(j);
    snprintf(hb, sizeof hb, "{\"model_version\":1,\"model\":{\"version\":1,\"previous\":null,"
                            "\"refused\":{\"version\":7,\"reason\":\"bad_signature\"}}}");
    {
        uint8_t s[64], *msg;
        size_t mlen;
        char hts[64];
        const char *h[4] = { hdev, hsig, hts, NULL };
        int64_t ts = (int64_t)time(NULL) * 1000;

        ck_assert_int_eq(devmsg_heartbeat("dep-1", ts, (const uint8_t *)hb, strlen(hb), &msg,
                                          &mlen), 0);
        crypto_sign_detached(s, NULL, msg, mlen, f.sk[0]);
        free(msg);
        text_b64_encode(s, 64, sig, sizeof sig);
        snprintf(hdev, sizeof hdev, "X-Precursor-Device: dep-1");
        snprintf(hsig, sizeof hsig, "X-Precursor-Signature: %s", sig);
        snprintf(hts, sizeof hts, "X-Precursor-Timestamp: %lld", (long long)ts);
        ck_assert_int_eq(http(&f, "POST", "/api/v1/heartbeats", hb, NULL, h, &rep), 204);
        free(rep.body);
    }
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices", NULL, f.ml, NULL, &rep), 200);
    j = body_json(&rep);
    m = json_object_get(json_array_get(json_object_get(j, "items"), 0), "model");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "running")), 1);
    ck_assert(json_is_true(json_object_get(m, "in_sync")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "refused"), "reason")),
                     "bad_signature");
    json_decref(j);
    /* A device list naming an id no device has: stored (a device may
     * enroll under it later), and the answer names it; a group has none. */
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{\"devices\":[\"dep-1\",\"dep-l\"]}",
                          f.ml, NULL, &rep), 201);
    j = body_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "devices_matched")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(j, "unknown_devices")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "unknown_devices"), 0)), "dep-l");
    json_decref(j);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", "{\"site\":\"nowhere\"}", f.ml, NULL,
                          &rep), 201);
    j = body_json(&rep);
    ck_assert_ptr_null(json_object_get(j, "unknown_devices"));
    json_decref(j);
    free(blob);
    fx_stop(&f);
}
END_TEST

START_TEST(test_sig_message)
{
    char out[64];

    ck_assert_int_eq(deploy_sig_message("/a", "12", out, sizeof out), 22);
    ck_assert_str_eq(out, "precursor-get-v1\n/a\n12");
    ck_assert_int_eq(deploy_sig_message("/a", "12", out, 10), -1);
}
END_TEST

Suite *deploy_suite(void);
/* The device's latest heartbeat as the agent would report model 1 (stored
 * directly: how heartbeats are authenticated is not this test's subject). */
static void heartbeat_model(const char *dev, const char *mode, double windows, double above,
                            double run_s)
{
    char sql[768];

    snprintf(sql, sizeof sql,
             "INSERT INTO heartbeats (device_id, body) VALUES ('%s', '{\"model_version\":1,"
             "\"model\":{\"version\":1},\"models\":[{\"version\":1,\"mode\":\"%s\",\"windows\":%.0f,"
             "\"above_threshold\":%.0f,\"run_s\":%.1f,\"hold_off_s\":10}]}')"
             " ON CONFLICT (device_id) DO UPDATE SET body = EXCLUDED.body", dev, mode, windows,
             above, run_s);
    testsrv_sql(sql);
}

static json_t *devices_status_of(json_t *list, int k)
{
    return json_object_get(json_array_get(json_object_get(list, "items"), (size_t)k), "devices_status");
}

START_TEST(test_shadow_promote_rollback)
{
    struct fx f;
    struct testsrv_reply rep;
    char admin[AUTH_TOKEN_LEN + 1];
    json_t *j, *d;
    uint8_t *blob;
    size_t blen;
    int64_t now = (int64_t)time(NULL);
    const char *cfg1 = "/api/v1/devices/dep-1/config", *one = "{\"devices\":[\"dep-1\"]";
    char body[128];

    TESTDB_REQUIRE();
    fx_start(&f);
    testsrv_add_token("admin", admin, sizeof admin);
    add_models(&blob, &blen);
    /* Training predicted 100 alerts per device-day; its held-out set could
     * resolve 86.4 (1 in 1000 windows at 1 window/s). */
    testsrv_sql("UPDATE models SET metrics = '{\"prediction\":{\"predicted_alerts_per_device_per_day\":100,"
                "\"predicted_alarm_fraction\":0.0011574,"
                "\"alarm_fraction_resolution\":0.001,\"window_rate_hz\":1}}' WHERE id = 1");

    /* The budget: admin only, ranges checked, left-out fields kept. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/alarm-budget", NULL, f.op, NULL, &rep), 200);
    j = body_json(&rep);
    ck_assert(json_real_value(json_object_get(j, "per_operator_hour")) == 6.0);
    json_decref(j);
    ck_assert_int_eq(http(&f, "PATCH", "/api/v1/alarm-budget", "{\"per_operator_hour\":240}", f.ml, NULL, &rep), 403);
    free(rep.body);
    ck_assert_int_eq(http(&f, "PATCH", "/api/v1/alarm-budget", "{\"per_operator_hour\":-1}", admin, NULL, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(http(&f, "PATCH", "/api/v1/alarm-budget", "{\"rollback_after_s\":\"x\"}", admin, NULL, &rep), 400);
    free(rep.body);
    /* None of the budget's fields (a misspelt one): 400, not a 200 that changed nothing. */
    ck_assert_int_eq(http(&f, "PATCH", "/api/v1/alarm-budget", "{\"per_operator_hours\":240}", admin, NULL, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(http(&f, "PATCH", "/api/v1/alarm-budget",
                          "{\"per_operator_hour\":240,\"devices_per_operator\":1,\"rollback_after_s\":100}",
                          admin, NULL, &rep), 200);
    j = body_json(&rep);
    ck_assert(json_real_value(json_object_get(j, "device_per_hour")) == 240.0);
    json_decref(j);

    /* Shadow is the default, and the device's config says so. */
    snprintf(body, sizeof body, "%s,\"mode\":\"standby\"}", one);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", body, f.ml, NULL, &rep), 400);
    free(rep.body);
    snprintf(body, sizeof body, "%s}", one);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", body, f.ml, NULL, &rep), 201);
    j = body_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(j, "mode")), "shadow");
    json_decref(j);
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, f.sk[0], now, &rep), 200);
    j = body_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "model"), "mode")), "shadow");
    json_decref(j);
    /* Assigned is not running: nothing reported yet. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models/1/deployments", NULL, f.op, NULL, &rep), 200);
    j = body_json(&rep);
    d = json_array_get(json_object_get(j, "items"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "devices_assigned")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "devices_running_it_now")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(devices_status_of(j, 0), 0), "status")),
                     "pending");
    json_decref(j);

    /* Active before any shadow run: refused. */
    snprintf(body, sizeof body, "%s,\"mode\":\"active\"}", one);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", body, f.ml, NULL, &rep), 409);
    j = body_json(&rep);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                                 "shadow"));
    json_decref(j);
    /* An hour of shadow at 240/day: more than 2x the 100 predicted. */
    heartbeat_model("dep-1", "shadow", 3600, 10, 3600);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", body, f.ml, NULL, &rep), 409);
    j = body_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "conflict");
    d = json_array_get(json_object_get(j, "devices"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "device_id")), "dep-1");
    ck_assert(json_real_value(json_object_get(d, "observed_alerts_per_day")) == 240.0);
    ck_assert(json_real_value(json_object_get(d, "predicted_alerts_per_device_per_day")) == 100.0);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(d, "refusal")), "2x"));
    json_decref(j);
    /* The status view shows the same numbers, from what the device says. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models/1/deployments", NULL, f.op, NULL, &rep), 200);
    j = body_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(j, "items"), 0),
                                                        "devices_running_it_now")), 1);
    d = json_array_get(devices_status_of(j, 0), 0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "running");
    ck_assert_str_eq(json_string_value(json_object_get(d, "mode_reported")), "shadow");
    ck_assert(json_real_value(json_object_get(d, "observed_alerts_per_day")) == 240.0);
    /* counts are integers, as in the rollbacks list */
    ck_assert_msg(json_is_integer(json_object_get(d, "windows")) &&
                  json_is_integer(json_object_get(d, "above_threshold")) &&
                  json_is_integer(json_object_get(d, "alerts")), "windows %s",
                  json_is_real(json_object_get(d, "windows")) ? "real" : "?");
    json_decref(j);
    /* At 120/day (within 2x and the budget) promotion goes through. */
    heartbeat_model("dep-1", "shadow", 3600, 5, 3600);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", body, f.ml, NULL, &rep), 201);
    free(rep.body);
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, f.sk[0], now, &rep), 200);
    j = body_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "model"), "mode")), "active");
    json_decref(j);

    /* Active, and over its 240/hour for longer than 100 s of its own time:
     * the watcher takes it back on that device, once. */
    heartbeat_model("dep-1", "active", 50, 10, 50);
    ck_assert_int_eq(deploy_watch_once(), 0);               /* not for long enough yet */
    heartbeat_model("dep-1", "active", 200, 20, 200);
    ck_assert_int_eq(deploy_watch_once(), 1);
    ck_assert_int_eq(deploy_watch_once(), 0);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/rollbacks?model_id=1", NULL, f.op, NULL, &rep), 200);
    j = body_json(&rep);
    d = json_array_get(json_object_get(j, "items"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "items")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(d, "device_id")), "dep-1");
    ck_assert(json_real_value(json_object_get(d, "observed_per_hour")) == 360.0);
    json_decref(j);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/rollbacks?model_id=x", NULL, f.op, NULL, &rep), 400);
    free(rep.body);
    /* The device is back on the deployment before: the shadow one. */
    ck_assert_int_eq(dev_get(&f, "dep-1", cfg1, f.sk[0], now, &rep), 200);
    j = body_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "model"), "mode")), "shadow");
    json_decref(j);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models/1/deployments", NULL, f.op, NULL, &rep), 200);
    j = body_json(&rep);
    d = json_array_get(devices_status_of(j, 0), 0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "rolled_back");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "rollbacks")), 1);
    json_decref(j);
    ck_assert_int_eq(http(&f, "GET", "/metrics", NULL, NULL, NULL, &rep), 200);
    ck_assert_ptr_nonnull(strstr(rep.body, "precursor_model_rollbacks_total 1"));
    free(rep.body);

    /* Forced: recorded as such, no shadow check. */
    heartbeat_model("dep-1", "shadow", 10, 10, 10);
    snprintf(body, sizeof body, "%s,\"mode\":\"active\",\"force\":true}", one);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/models/1/deploy", body, f.ml, NULL, &rep), 201);
    j = body_json(&rep);
    ck_assert(json_is_true(json_object_get(j, "forced")));
    json_decref(j);
    free(blob);
    fx_stop(&f);
}
END_TEST

Suite *deploy_suite(void)
{
    Suite *s = suite_create("deploy");
    TCase *tc = tcase_create("pure");

    tcase_add_test(tc, test_sig_message);
    suite_add_tcase(s, tc);
    tc = tcase_create("db");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deploy_fetch_and_view);
    suite_add_tcase(s, tc);
    /* A database of its own: the same device ids, other keys. */
    tc = tcase_create("shadow");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shadow_promote_rollback);
    suite_add_tcase(s, tc);
    return s;
}
