/* check_alerts.c - alert acknowledgement and disposition through their
 * handlers, on a throw-away database (skipped without DATABASE_URL):
 * an unknown alert is a 404 with nothing written, bad bodies are a 400 with
 * nothing written, a disposition is stored and becomes a label source, and
 * an alert with no disposition counts as ignored only once the
 * acknowledgement window (8 h by default) has passed, both in the alert
 * list and in the operational metrics.
 *
 * History: device d1; snapshot 1 triggered 10 h ago, 2 one hour ago, 3 20 h
 * ago, none with a disposition at the start. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/alerts/alerts.h"
#include "server/metrics_ops/opsmetrics.h"
#include "testdb.h"

static PGconn *g_admin;

static void sql(const char *q) { testdb_sql(g_admin, q); }
static void value_is(const char *q, const char *want) { testdb_value_is(g_admin, q, want); }

/* Query parameters for the handlers: a NULL-terminated key, value list. */
static const char *const *g_query;

static const char *query(const struct srv_request *rq, const char *key)
{
    size_t i;

    (void)rq;
    for (i = 0; g_query && g_query[i]; i += 2)
        if (strcmp(g_query[i], key) == 0)
            return g_query[i + 1];
    return NULL;
}

/* Call a handler with path parameter id and body; the answer's JSON (or
 * NULL) in *out.  Returns the handler's code. */
static int call(srv_handler_fn h, const char *id, const char *body, json_t **out)
{
    struct srv_request rq;
    struct srv_response rs;
    int err;

    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    rq.params[0] = id;
    rq.body = (const uint8_t *)body;
    rq.body_len = body ? strlen(body) : 0;
    rq.query = query;
    rq.user_id = 1;
    snprintf(rq.user_name, sizeof rq.user_name, "op1");
    err = h(&rq, &rs);
    if (out)
        *out = err == SRV_OK && rs.body ? json_loadb(rs.body, rs.body_len, 0, NULL) : NULL;
    if (err == SRV_OK)
        ck_assert_uint_eq(rs.status ? rs.status : 200, 200);
    free(rs.body);
    free(rs.err_message_owned);
    return err;
}

static void fixture(void)
{
    static const int ago_h[3] = { 10, 1, 20 };
    char q[1024];
    int i;

    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, NULL, NULL), 0);
    ck_assert_int_eq(db_init(testdb_conninfo), 0);
    g_admin = db_connect(testdb_conninfo);
    ck_assert_ptr_nonnull(g_admin);
    sql("TRUNCATE alert_dispositions, weak_labels, rule_hits, rules, labels CASCADE");
    sql("DELETE FROM snapshots");
    sql("DELETE FROM devices");
    sql("INSERT INTO devices (id, public_key, site, equipment_type) VALUES "
        "('d1', decode(repeat('00', 32), 'hex'), 'plant_a', 'centrifugal_pump')");
    for (i = 0; i < 3; i++) {
        snprintf(q, sizeof q,
                 "INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate, sample_type,"
                 " channel_count, channels, pre_samples, post_samples, detector, score, envelope,"
                 " bytes, sha256) VALUES (%d, 'd1', %d, now() - interval '%d hours', 1000, 3, 1,"
                 " '[{\"name\":\"accel_x\",\"unit\":\"g\"}]', 10, 10, 'z', 0.5, '\\x00', 1,"
                 " decode(repeat('00', 32), 'hex'))", i + 1, i + 1, ago_h[i]);
        sql(q);
    }
}

static void done(void)
{
    PQfinish(g_admin);
    g_admin = NULL;
    db_shutdown();
}

START_TEST(test_unknown_alert_nothing_written)
{
    TESTDB_REQUIRE();
    fixture();
    ck_assert_int_eq(call(alerts_api_disposition, "999",
                          "{\"disposition\":\"action_taken\",\"work_order\":\"WO-1\"}", NULL),
                     SRV_ENOTFOUND);
    ck_assert_int_eq(call(alerts_api_ack, "999", NULL, NULL), SRV_ENOTFOUND);
    value_is("SELECT count(*) FROM alert_dispositions", "0");
    value_is("SELECT count(*) FROM weak_labels", "0");
    /* bad input on a real alert: 400, still nothing written */
    ck_assert_int_eq(call(alerts_api_disposition, "1", "{\"disposition\":\"fixed\"}", NULL),
                     SRV_EBADREQ);
    ck_assert_int_eq(call(alerts_api_disposition, "1",
                          "{\"disposition\":\"action_taken\",\"class\":\"no_such_class\"}", NULL),
                     SRV_EBADREQ);
    {
        char body[256];

        snprintf(body, sizeof body, "{\"disposition\":\"action_taken\",\"work_order\":\"%0101d\"}",
                 0);
        ck_assert_int_eq(call(alerts_api_disposition, "1", body, NULL), SRV_EBADREQ);
    }
    ck_assert_int_eq(call(alerts_api_disposition, "1", "[1]", NULL), SRV_EBADREQ);
    ck_assert_int_eq(call(alerts_api_disposition, "1", NULL, NULL), SRV_EBADREQ);
    ck_assert_int_eq(call(alerts_api_disposition, "x1", "{\"disposition\":\"duplicate\"}", NULL),
                     SRV_EBADREQ);
    value_is("SELECT count(*) FROM alert_dispositions", "0");
    value_is("SELECT count(*) FROM weak_labels", "0");
    done();
}
END_TEST

START_TEST(test_disposition_stored_and_labels)
{
    json_t *j = NULL;

    TESTDB_REQUIRE();
    fixture();
    ck_assert_int_eq(call(alerts_api_disposition, "3",
                          "{\"disposition\":\"no_fault_found\",\"work_order\":\"WO-7\","
                          "\"outcome\":\"checked\"}", &j), SRV_OK);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "disposition")), "no_fault_found");
    ck_assert_str_eq(json_string_value(json_object_get(j, "class")), "normal");
    json_decref(j);
    value_is("SELECT disposition || ',' || work_order || ',' || outcome || ',' || disposed_by"
             " FROM alert_dispositions WHERE snapshot_id = 3", "no_fault_found,WO-7,checked,op1");
    /* no fault found says the snapshot was normal: a label source */
    value_is("SELECT class || ',' || source FROM weak_labels WHERE snapshot_id = 3",
             "normal,disposition");
    /* a later disposition replaces the earlier one; the acknowledgement stays */
    value_is("SELECT count(*) FROM alert_dispositions", "1");
    ck_assert_int_eq(call(alerts_api_disposition, "3", "{\"disposition\":\"action_taken\","
                          "\"class\":\"cavitation\"}", NULL), SRV_OK);
    value_is("SELECT disposition || ',' || coalesce(work_order, 'none') FROM alert_dispositions"
             " WHERE snapshot_id = 3", "action_taken,none");
    value_is("SELECT class || ',' || source FROM weak_labels WHERE snapshot_id = 3",
             "cavitation,disposition");
    done();
}
END_TEST

static const char *state_of(json_t *items, int64_t id)
{
    size_t i;
    json_t *a;

    json_array_foreach(items, i, a)
        if (json_integer_value(json_object_get(a, "snapshot_id")) == id)
            return json_string_value(json_object_get(a, "state"));
    return "missing";
}

START_TEST(test_ignored_after_window)
{
    static const char *const q_list[] = { "limit", "10", NULL };
    static const char *const q_ids[] = { "ids", "2,3", NULL };
    json_t *j = NULL, *items, *b;
    char from[40], to[40], q[256];
    const char *q_ops[7];
    time_t now = time(NULL);
    struct tm tm;
    long ign = 0, pend = 0, dis = 0;
    size_t i;

    TESTDB_REQUIRE();
    fixture();
    /* An agent's scheduled baseline capture, old enough to count as ignored
     * were it an alert: neither the list nor the metrics below see it. */
    sql("INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate, sample_type,"
        " channel_count, channels, pre_samples, post_samples, detector, score, envelope,"
        " bytes, sha256) VALUES (4, 'd1', 4, now() - interval '12 hours', 1000, 3, 1,"
        " '[{\"name\":\"accel_x\",\"unit\":\"g\"}]', 10, 10, 'schedule', 0, '\\x00', 1,"
        " decode(repeat('00', 32), 'hex'))");
    ck_assert_int_eq(call(alerts_api_disposition, "3", "{\"disposition\":\"duplicate\"}", NULL),
                     SRV_OK);
    g_query = q_list;
    ck_assert_int_eq(call(alerts_api_list, NULL, NULL, &j), SRV_OK);
    items = json_object_get(j, "items");
    ck_assert_str_eq(state_of(items, 4), "missing");
    ck_assert_str_eq(state_of(items, 1), "ignored");      /* 10 h > 8 h, untouched */
    ck_assert_str_eq(state_of(items, 2), "open");         /* 1 h: still in the window */
    ck_assert_str_eq(state_of(items, 3), "dispositioned");
    json_decref(j);
    /* acknowledging is not a disposition: 2 is acknowledged, and 1 stays
     * ignored although acknowledged late */
    ck_assert_int_eq(call(alerts_api_ack, "2", NULL, NULL), SRV_OK);
    ck_assert_int_eq(call(alerts_api_ack, "1", NULL, NULL), SRV_OK);
    /* the listing pages with before: an offset would answer the first
     * page again, so it is refused as on the other cursor listings */
    {
        static const char *const q_offset[] = { "offset", "1", NULL };

        g_query = q_offset;
        ck_assert_int_eq(call(alerts_api_list, NULL, NULL, &j), SRV_EBADREQ);
    }
    g_query = q_ids;
    ck_assert_int_eq(call(alerts_api_list, NULL, NULL, &j), SRV_OK);
    items = json_object_get(j, "items");
    ck_assert_uint_eq(json_array_size(items), 2);
    ck_assert_str_eq(state_of(items, 2), "acknowledged");
    json_decref(j);
    g_query = q_list;
    ck_assert_int_eq(call(alerts_api_list, NULL, NULL, &j), SRV_OK);
    ck_assert_str_eq(state_of(json_object_get(j, "items"), 1), "ignored");
    json_decref(j);
    /* a shorter window makes 2 ignored too */
    sql("UPDATE ops_settings SET ack_window_s = 1800");
    ck_assert_int_eq(call(alerts_api_list, NULL, NULL, &j), SRV_OK);
    ck_assert_str_eq(state_of(json_object_get(j, "items"), 2), "ignored");
    json_decref(j);
    sql("UPDATE ops_settings SET ack_window_s = 28800");
    /* the metrics agree: one ignored (1), one pending (2), one duplicate */
    gmtime_r(&now, &tm);
    strftime(to, sizeof to, "%Y-%m-%dT%H:%M:%SZ", &tm);
    now -= 3 * 86400;
    gmtime_r(&now, &tm);
    strftime(from, sizeof from, "%Y-%m-%dT%H:%M:%SZ", &tm);
    q_ops[0] = "from";
    q_ops[1] = from;
    q_ops[2] = "to";
    q_ops[3] = to;
    q_ops[4] = "bucket";
    q_ops[5] = "week";
    q_ops[6] = NULL;
    g_query = q_ops;
    ck_assert_int_eq(call(opsm_api_operational, NULL, NULL, &j), SRV_OK);
    json_array_foreach(json_object_get(j, "buckets"), i, b) {
        json_t *c = json_object_get(b, "counts");

        ign += (long)json_integer_value(json_object_get(c, "ignored"));
        pend += (long)json_integer_value(json_object_get(c, "pending"));
        dis += (long)json_integer_value(json_object_get(c, "duplicate"));
    }
    snprintf(q, sizeof q, "%ld,%ld,%ld", ign, pend, dis);
    ck_assert_str_eq(q, "1,1,1");
    json_decref(j);
    g_query = NULL;
    done();
}
END_TEST

Suite *alerts_suite(void);
Suite *alerts_suite(void)
{
    Suite *s = suite_create("alerts");
    TCase *tc = tcase_create("db");

    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unknown_alert_nothing_written);
    tcase_add_test(tc, test_disposition_stored_and_labels);
    tcase_add_test(tc, test_ignored_after_window);
    suite_add_tcase(s, tc);
    return s;
}
