/* check_rules.c - rule statistics and the vote against hand-computed cases,
 * on a throw-away database (skipped without DATABASE_URL), plus the pure
 * vote.
 *
 * History: ten snapshots of device d1; snapshot i has kurtosis i and RMS
 * 10 - i on channel accel_x.  Rules:
 *   A  kurtosis > 6   => bearing_outer_race   fires on 7 8 9 10
 *   B  rms < 2.5      => imbalance            fires on 8 9 10
 *   C  kurtosis >= 9  => bearing_outer_race   fires on 9 10
 *   D  kurtosis < 1.5 => misalignment         fires on 1
 * Human labels: 7 bearing_outer_race, 8 imbalance, 9 bearing_outer_race,
 * 2 normal. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/rules/rules.h"
#include "server/srv/srv.h"
#include "testdb.h"

static PGconn *g_admin;

static void sql(const char *q) { testdb_sql(g_admin, q); }
static char *sql_value(const char *q) { return testdb_value(g_admin, q); }
static void value_is(const char *q, const char *want) { testdb_value_is(g_admin, q, want); }

static int64_t add_rule(const char *name, const char *expr, const char *cls, double w)
{
    char q[1024];
    char *v;
    int64_t id;

    snprintf(q, sizeof q, "INSERT INTO rules (name, expr, class, weight) VALUES "
             "('%s', '%s', '%s', %g) RETURNING id", name, expr, cls, w);
    v = sql_value(q);
    id = strtoll(v, NULL, 10);
    free(v);
    ck_assert_int_eq(rules_eval_rule(id), 0);
    return id;
}

static void fixture(void)
{
    int i;
    char q[1024];

    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, NULL, NULL), 0);
    ck_assert_int_eq(db_init(testdb_conninfo), 0);
    g_admin = db_connect(testdb_conninfo);
    ck_assert_ptr_nonnull(g_admin);
    /* one database per test case (unchecked fixture): start each test clean */
    sql("TRUNCATE rules, rule_hits, weak_labels, alert_dispositions, labels, snapshot_features,"
        " feature_jobs CASCADE");
    sql("DELETE FROM snapshots");
    sql("DELETE FROM devices");
    sql("INSERT INTO devices (id, public_key, site, equipment_type) VALUES "
        "('d1', decode(repeat('00', 32), 'hex'), 'plant_a', 'centrifugal_pump')");
    for (i = 1; i <= 10; i++) {
        snprintf(q, sizeof q,
                 "INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate, sample_type,"
                 " channel_count, channels, pre_samples, post_samples, detector, score, envelope,"
                 " bytes, sha256) VALUES (%d, 'd1', %d, now(), 1000, 3, 1,"
                 " '[{\"name\":\"accel_x\",\"unit\":\"g\"}]', 10, 10, 'z', 0.5, '\\x00', 1,"
                 " decode(repeat('00', 32), 'hex'))", i, i);
        sql(q);
        snprintf(q, sizeof q,
                 "INSERT INTO snapshot_features VALUES (%d, 'accel_x', 0, 1, %d, 1, 1, %d, 50, 7.8,"
                 " array_fill(0::real, ARRAY[64]))", i, 10 - i, i);
        sql(q);
        snprintf(q, sizeof q, "INSERT INTO feature_jobs (snapshot_id) VALUES (%d)", i);
        sql(q);
    }
    sql("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by) VALUES"
        " (7, 0, 1, '{0}', 'bearing_outer_race', 't'), (8, 0, 1, '{0}', 'imbalance', 't'),"
        " (9, 0, 1, '{0}', 'bearing_outer_race', 't'), (2, 0, 1, '{0}', 'normal', 't')");
}

static void done(void)
{
    PQfinish(g_admin);
    g_admin = NULL;
    db_shutdown();
}

/* Per equipment type, where the rule applies: five pump snapshots that
 * have no accel_x do not dilute rule A, but count for a rule that reads no
 * channel; with 3 labeled hits the accuracy is withheld, with 5 it is
 * given with its Wilson interval. */
START_TEST(test_stats_by_equipment_type)
{
    struct rules_type_stats ts[4];
    size_t n;
    char q[1024];
    int64_t a, s;

    TESTDB_REQUIRE();
    fixture();
    sql("INSERT INTO equipment_types (name) VALUES ('screw_pump') ON CONFLICT DO NOTHING");
    sql("INSERT INTO devices (id, public_key, site, equipment_type) VALUES "
        "('d2', decode(repeat('11', 32), 'hex'), 'plant_a', 'screw_pump')");
    for (int i = 11; i <= 15; i++) {
        snprintf(q, sizeof q,
                 "INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate, sample_type,"
                 " channel_count, channels, pre_samples, post_samples, detector, score, envelope,"
                 " bytes, sha256) VALUES (%d, 'd2', %d, now(), 1000, 3, 1,"
                 " '[{\"name\":\"flow\",\"unit\":\"l\"}]', 10, 10, 'z', 0.9, '\\x00', 1,"
                 " decode(repeat('00', 32), 'hex'))", i, i);
        sql(q);
        snprintf(q, sizeof q, "INSERT INTO snapshot_features VALUES (%d, 'flow', 0, 1, 1, 1, 1, 20, 50,"
                 " 7.8, array_fill(0::real, ARRAY[64]))", i);
        sql(q);
        snprintf(q, sizeof q, "INSERT INTO feature_jobs (snapshot_id) VALUES (%d)", i);
        sql(q);
    }
    a = add_rule("A", "kurtosis(ch(\"accel_x\")) > 6 => bearing_outer_race", "bearing_outer_race", 1);
    ck_assert_int_eq(rules_stats_by_type(a, "1", ts, 4, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(ts[0].equipment_type, "centrifugal_pump");
    ck_assert_int_eq(ts[0].snapshots, 10);
    ck_assert_int_eq(ts[0].hits, 4);
    ck_assert_double_eq_tol(ts[0].coverage, 0.4, 1e-12);
    ck_assert_int_eq(ts[0].labeled, 3);
    ck_assert_int_eq(ts[0].agreeing, 2);
    ck_assert(isnan(ts[0].accuracy));
    ck_assert_ptr_nonnull(strstr(ts[0].refused, "3 labeled hit(s)"));
    /* a rule on metadata only applies to every snapshot with features */
    s = add_rule("S", "score > 0.45 => bearing_outer_race", "bearing_outer_race", 1);
    sql("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by) VALUES"
        " (1, 0, 1, '{0}', 'bearing_outer_race', 't'), (3, 0, 1, '{0}', 'bearing_outer_race', 't')");
    ck_assert_int_eq(rules_stats_by_type(s, "1", ts, 4, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(ts[0].equipment_type, "centrifugal_pump");
    ck_assert_int_eq(ts[0].hits, 10);
    ck_assert_int_eq(ts[0].labeled, 6);       /* 1, 2, 3, 7, 8, 9 */
    ck_assert_int_eq(ts[0].agreeing, 4);      /* 1, 3, 7, 9 */
    ck_assert_double_eq_tol(ts[0].accuracy, 4.0 / 6.0, 1e-12);
    ck_assert_double_eq_tol(ts[0].acc_lo, 0.3000, 1e-3);   /* Wilson 4/6 by hand */
    ck_assert_double_eq_tol(ts[0].acc_hi, 0.9032, 1e-3);
    ck_assert_str_eq(ts[1].equipment_type, "screw_pump");
    ck_assert_int_eq(ts[1].snapshots, 5);
    ck_assert_int_eq(ts[1].hits, 5);
    ck_assert_int_eq(ts[1].labeled, 0);
    ck_assert_int_eq(rules_stats_by_type(999999, "1", ts, 4, &n), SRV_ENOTFOUND);
    done();
}
END_TEST

START_TEST(test_stats_hand_computed)
{
    struct rules_stats st;
    int64_t a, b, c, d;

    TESTDB_REQUIRE();
    fixture();
    a = add_rule("A", "kurtosis(ch(\"accel_x\")) > 6 => bearing_outer_race", "bearing_outer_race", 1);
    b = add_rule("B", "rms(ch(\"accel_x\")) < 2.5 => imbalance", "imbalance", 1);
    c = add_rule("C", "kurtosis(ch(\"accel_x\")) >= 9 => bearing_outer_race", "bearing_outer_race", 1);
    d = add_rule("D", "kurtosis(ch(\"accel_x\")) < 1.5 => misalignment", "misalignment", 1);

    /* A: hits 7..10 = 4/10; overlaps with B or C on 8,9,10 = 3/10; conflicts
     * (B, another class) on 8,9,10 = 3/10; labeled hits 7,8,9, agreeing 7,9 */
    ck_assert_int_eq(rules_stats_get(a, "1", &st), 0);
    ck_assert_int_eq(st.snapshots, 10);
    ck_assert_int_eq(st.hits, 4);
    ck_assert_double_eq_tol(st.coverage, 0.4, 1e-12);
    ck_assert_double_eq_tol(st.overlap, 0.3, 1e-12);
    ck_assert_double_eq_tol(st.conflict, 0.3, 1e-12);
    ck_assert_double_eq_tol(st.accuracy, 2.0 / 3.0, 1e-12);
    /* B: 8,9,10; overlap 3/10 (A); conflict 3/10; labeled 8,9, agreeing 8 */
    ck_assert_int_eq(rules_stats_get(b, "1", &st), 0);
    ck_assert_double_eq_tol(st.coverage, 0.3, 1e-12);
    ck_assert_double_eq_tol(st.overlap, 0.3, 1e-12);
    ck_assert_double_eq_tol(st.conflict, 0.3, 1e-12);
    ck_assert_double_eq_tol(st.accuracy, 0.5, 1e-12);
    /* C: 9,10; overlap 2/10 (A and B); conflict 2/10 (B); labeled 9 agrees */
    ck_assert_int_eq(rules_stats_get(c, "1", &st), 0);
    ck_assert_double_eq_tol(st.coverage, 0.2, 1e-12);
    ck_assert_double_eq_tol(st.overlap, 0.2, 1e-12);
    ck_assert_double_eq_tol(st.conflict, 0.2, 1e-12);
    ck_assert_double_eq_tol(st.accuracy, 1.0, 1e-12);
    /* D: 1 only; nobody else fires there, and no human label: accuracy null */
    ck_assert_int_eq(rules_stats_get(d, "1", &st), 0);
    ck_assert_double_eq_tol(st.coverage, 0.1, 1e-12);
    ck_assert_double_eq(st.overlap, 0);
    ck_assert(isnan(st.accuracy));
    /* disabling B removes its conflicts from A's numbers */
    sql("UPDATE rules SET enabled = false WHERE name = 'B'");
    ck_assert_int_eq(rules_stats_get(a, "1", &st), 0);
    ck_assert_double_eq_tol(st.overlap, 0.2, 1e-12);
    ck_assert_double_eq(st.conflict, 0);
    done();
}
END_TEST

/* demo= as the UI's switch sends it: snapshots 9 and 10 marked demo.  A
 * (7..10) without them hits 7 and 8 of 8 snapshots, overlaps B on 8,
 * labeled 7 (agrees) and 8 (does not); with them alone, 9 and 10 of 2. */
/* GET /api/v1/rules with demo= as q_demo says (NULL: absent): rule A's
 * hits, or -1 when the handler refused the request. */
static const char *q_demo;

static const char *demo_query(const struct srv_request *rq, const char *key)
{
    (void)rq;
    return strcmp(key, "demo") == 0 ? q_demo : NULL;
}

static int64_t listed_hits(const char *demo)
{
    struct srv_request rq;
    struct srv_response rs;
    json_t *j, *items;
    int64_t hits = -1;
    size_t i;

    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    rq.method = "GET";
    rq.path = "/api/v1/rules";
    rq.query = demo_query;
    q_demo = demo;
    if (rules_api_list(&rq, &rs) == SRV_OK) {
        j = json_loadb(rs.body, rs.body_len, 0, NULL);
        items = json_object_get(j, "items");
        for (i = 0; i < json_array_size(items); i++)
            if (strcmp(json_string_value(json_object_get(json_array_get(items, i), "name")), "A") == 0)
                hits = json_integer_value(json_object_get(json_array_get(items, i), "hits"));
        json_decref(j);
    }
    srv_response_release(&rs);
    return hits;
}

START_TEST(test_stats_demo)
{
    struct rules_stats st;
    struct rules_type_stats ts[4];
    size_t n;
    int64_t a;

    TESTDB_REQUIRE();
    fixture();
    sql("UPDATE snapshots SET demo = true WHERE id IN (9, 10)");
    a = add_rule("A", "kurtosis(ch(\"accel_x\")) > 6 => bearing_outer_race", "bearing_outer_race", 1);
    add_rule("B", "rms(ch(\"accel_x\")) < 2.5 => imbalance", "imbalance", 1);
    ck_assert_int_eq(rules_stats_get(a, "0", &st), 0);
    ck_assert_int_eq(st.snapshots, 8);
    ck_assert_int_eq(st.hits, 2);
    ck_assert_double_eq_tol(st.coverage, 0.25, 1e-12);
    ck_assert_double_eq_tol(st.overlap, 0.125, 1e-12);
    ck_assert_double_eq_tol(st.conflict, 0.125, 1e-12);
    ck_assert_double_eq_tol(st.accuracy, 0.5, 1e-12);
    ck_assert_int_eq(rules_stats_get(a, "2", &st), 0);
    ck_assert_int_eq(st.snapshots, 2);
    ck_assert_int_eq(st.hits, 2);
    ck_assert_double_eq_tol(st.accuracy, 1.0, 1e-12);
    ck_assert_int_eq(rules_stats_get(a, "1", &st), 0);
    ck_assert_int_eq(st.snapshots, 10);
    ck_assert_int_eq(st.hits, 4);
    ck_assert_int_eq(rules_stats_by_type(a, "0", ts, 4, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ts[0].snapshots, 8);
    ck_assert_int_eq(ts[0].hits, 2);
    ck_assert_int_eq(ts[0].labeled, 2);
    /* Through the listing: unlike the other listings' demo=, whose default
     * leaves the demo history out, a rule's figures count it unless told
     * exclude (schema/openapi.json says why); the UI always sends it. */
    ck_assert_int_eq(listed_hits(NULL), 4);
    ck_assert_int_eq(listed_hits("include"), 4);
    ck_assert_int_eq(listed_hits("exclude"), 2);
    ck_assert_int_eq(listed_hits("only"), 2);
    ck_assert_int_eq(listed_hits("maybe"), -1);
    done();
}
END_TEST

START_TEST(test_vote_provenance_db)
{
    int64_t b, ten = 10, eight = 8;

    TESTDB_REQUIRE();
    fixture();
    add_rule("A", "kurtosis(ch(\"accel_x\")) > 6 => bearing_outer_race", "bearing_outer_race", 1);
    b = add_rule("B", "rms(ch(\"accel_x\")) < 2.5 => imbalance", "imbalance", 1);
    add_rule("C", "kurtosis(ch(\"accel_x\")) >= 9 => bearing_outer_race", "bearing_outer_race", 1);
    /* 7: only A -> source rule; 8: A vs B 1:1 -> tie, no weak label;
     * 10: A + C (2) vs B (1) -> vote, confidence 2/3 */
    value_is("SELECT class || ',' || source FROM weak_labels WHERE snapshot_id = 7",
             "bearing_outer_race,rule");
    value_is("SELECT count(*) FROM weak_labels WHERE snapshot_id = 8", "0");
    value_is("SELECT class || ',' || source || ',' || round(confidence::numeric, 3)"
             " FROM weak_labels WHERE snapshot_id = 10", "bearing_outer_race,vote,0.667");
    value_is("SELECT jsonb_array_length(votes) FROM weak_labels WHERE snapshot_id = 10", "3");
    /* B gets weight 3: 8 -> imbalance (3 vs 1), 10 -> imbalance 3/5 */
    {
        char q[128];

        snprintf(q, sizeof q, "UPDATE rules SET weight = 3 WHERE id = %lld", (long long)b);
        sql(q);
    }
    ck_assert_int_eq(rules_eval_rule(b), 0);
    value_is("SELECT class || ',' || source FROM weak_labels WHERE snapshot_id = 8",
             "imbalance,vote");
    value_is("SELECT class || ',' || round(confidence::numeric, 3) FROM weak_labels"
             " WHERE snapshot_id = 10", "imbalance,0.600");
    /* a disposition naming a class outranks the rules */
    sql("INSERT INTO alert_dispositions (snapshot_id, acknowledged_by, disposition, class)"
        " VALUES (10, 't', 'action_taken', 'misalignment')");
    ck_assert_int_eq(rules_revote(&ten, 1), 0);
    value_is("SELECT class || ',' || source FROM weak_labels WHERE snapshot_id = 10",
             "misalignment,disposition");
    /* human labels are never replaced: 8 keeps its human class in the
     * effective view although its weak label differs */
    ck_assert_int_eq(rules_revote(&eight, 1), 0);
    value_is("SELECT string_agg(class || ',' || source, ';') FROM effective_labels"
             " WHERE snapshot_id = 8", "imbalance,human");
    value_is("SELECT string_agg(class || ',' || source, ';') FROM effective_labels"
             " WHERE snapshot_id = 7", "bearing_outer_race,human");
    value_is("SELECT string_agg(class || ',' || source, ';') FROM effective_labels"
             " WHERE snapshot_id = 10", "misalignment,disposition");
    /* deleting a rule re-votes: C gone and B disabled -> 10 still disposition,
     * 9 (A only) -> rule */
    sql("UPDATE rules SET enabled = false WHERE name = 'B'");
    sql("DELETE FROM rules WHERE name = 'C'");
    {
        int64_t nine = 9;

        ck_assert_int_eq(rules_revote(&nine, 1), 0);
    }
    value_is("SELECT class || ',' || source FROM weak_labels WHERE snapshot_id = 9",
             "bearing_outer_race,rule");
    done();
}
END_TEST

/* A pass of the features worker is evaluated as one batch: the same hits
 * and weak labels as one snapshot at a time (here: as a rule's own
 * evaluation over every snapshot left them), stale hits and labels of the
 * snapshots asked for replaced, and the snapshots in the id range that were
 * not asked for left alone. */
START_TEST(test_eval_snapshots_batch)
{
    static const int64_t asked[] = { 9, 3, 7, 8, 10, 1, 2 };
    const char *hits_q = "SELECT string_agg(h.snapshot_id || ':' || r.name, ',' ORDER BY"
                         " h.snapshot_id, r.name) FROM rule_hits h JOIN rules r ON r.id = h.rule_id"
                         " WHERE h.snapshot_id IN (1, 2, 3, 7, 8, 9, 10)";
    const char *weak_q = "SELECT string_agg(snapshot_id || ':' || class || ':' || source || ':'"
                         " || round(confidence::numeric, 3), ',' ORDER BY snapshot_id)"
                         " FROM weak_labels WHERE snapshot_id IN (1, 2, 3, 7, 8, 9, 10)";
    char *hits, *weak;

    TESTDB_REQUIRE();
    fixture();
    add_rule("A", "kurtosis(ch(\"accel_x\")) > 6 => bearing_outer_race", "bearing_outer_race", 1);
    add_rule("B", "rms(ch(\"accel_x\")) < 2.5 => imbalance", "imbalance", 1);
    add_rule("C", "kurtosis(ch(\"accel_x\")) >= 9 => bearing_outer_race", "bearing_outer_race", 1);
    hits = sql_value(hits_q);
    weak = sql_value(weak_q);
    ck_assert_str_eq(hits, "7:A,8:A,8:B,9:A,9:B,9:C,10:A,10:B,10:C");
    /* wrong hits and labels on asked snapshots; one on 5, not asked */
    sql("DELETE FROM rule_hits WHERE snapshot_id IN (8, 9)");
    sql("INSERT INTO rule_hits (rule_id, snapshot_id) SELECT id, s FROM rules,"
        " (VALUES (1), (5)) v(s) WHERE name = 'A'");
    sql("DELETE FROM weak_labels WHERE snapshot_id = 10");
    sql("INSERT INTO weak_labels (snapshot_id, class, source, confidence, votes) VALUES"
        " (2, 'imbalance', 'rule', 1, '[]')");
    ck_assert_int_eq(rules_eval_snapshots(asked, sizeof asked / sizeof asked[0]), 0);
    value_is(hits_q, hits);
    value_is(weak_q, weak);
    value_is("SELECT count(*) FROM rule_hits h JOIN rules r ON r.id = h.rule_id"
             " WHERE h.snapshot_id = 5 AND r.name = 'A'", "1");
    /* one snapshot alone goes the same way */
    sql("DELETE FROM rule_hits WHERE snapshot_id = 5");
    ck_assert_int_eq(rules_eval_snapshot(5), 0);
    value_is("SELECT count(*) FROM rule_hits WHERE snapshot_id = 5", "0");
    free(hits);
    free(weak);
    done();
}
END_TEST

START_TEST(test_taxonomy_cycle_refused)
{
    TESTDB_REQUIRE();
    fixture();
    {
        PGresult *r = PQexec(g_admin, "UPDATE equipment_types SET parent = 'centrifugal_pump'"
                                      " WHERE name = 'rotating'");

        ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
        ck_assert_ptr_nonnull(strstr(PQresultErrorMessage(r), "taxonomy cycle"));
        PQclear(r);
    }
    value_is("SELECT coalesce(parent, 'root') FROM equipment_types WHERE name = 'rotating'", "root");
    /* siblings share classes: cavitation (pump) is usable on both pump kinds */
    value_is("SELECT count(*) FROM label_classes WHERE name = 'cavitation' AND equipment_type IN"
             " (SELECT taxonomy_related_types('positive_displacement_pump'))", "1");
    done();
}
END_TEST

START_TEST(test_vote_pure)
{
    struct rules_vote_in v[] = {
        { 1, "a", 1 }, { 2, "b", 1.5 }, { 3, "a", 1 }, { 4, "c", 0 },
    };
    struct rules_vote_out o;

    rules_vote(v, 3, NULL, &o);         /* a 2 vs b 1.5 */
    ck_assert_int_eq(o.has_label, 1);
    ck_assert_str_eq(o.cls, "a");
    ck_assert_str_eq(o.source, "vote");
    ck_assert_double_eq_tol(o.confidence, 2.0 / 3.5, 1e-12);
    rules_vote(v + 1, 1, NULL, &o);
    ck_assert_str_eq(o.source, "rule");
    ck_assert_str_eq(o.cls, "b");
    v[1].weight = 2;                    /* a 2 vs b 2: tie abstains */
    rules_vote(v, 3, NULL, &o);
    ck_assert_int_eq(o.has_label, 0);
    rules_vote(v, 3, "normal", &o);
    ck_assert_str_eq(o.source, "disposition");
    ck_assert_str_eq(o.cls, "normal");
    rules_vote(v + 3, 1, NULL, &o);     /* weight 0 is no vote */
    ck_assert_int_eq(o.has_label, 0);
    rules_vote(NULL, 0, NULL, &o);
    ck_assert_int_eq(o.has_label, 0);
}
END_TEST

Suite *rules_suite(void);
Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("db");

    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_stats_hand_computed);
    tcase_add_test(tc, test_stats_by_equipment_type);
    tcase_add_test(tc, test_stats_demo);
    tcase_add_test(tc, test_vote_provenance_db);
    tcase_add_test(tc, test_taxonomy_cycle_refused);
    tcase_add_test(tc, test_eval_snapshots_batch);
    suite_add_tcase(s, tc);
    tc = tcase_create("pure");
    tcase_add_test(tc, test_vote_pure);
    suite_add_tcase(s, tc);
    return s;
}
