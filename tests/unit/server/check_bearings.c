/* check_bearings.c - the table of common bearings (migration 0081) through
 * the REST API with a real server and PostgreSQL: its geometry gives the
 * defect frequencies published with each rig or data set (figures computed
 * another way, by the people who recorded the data), a search narrows it,
 * and an asset's bearing set by designation carries that geometry; explicit
 * geometry still works and clears the designation.  The DB-backed test
 * needs DATABASE_URL; it skips without. */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/http/http.h"
#include "server/models/models.h"
#include "server/srv/srv.h"
#include "server/taxonomy/taxonomy_int.h"
#include "testsrv.h"

/* Both a designation and the geometry: refused before any lookup. */
START_TEST(test_designation_or_geometry)
{
    json_t *b = json_loads("{\"bearing_designation\":\"SKF 6205-2RS JEM\",\"bearing\":{\"balls\":9,"
                           "\"ball_mm\":7.94,\"pitch_mm\":39.04,\"contact_deg\":0}}", 0, NULL);
    struct srv_response rs;
    struct taxonomy_kin k;

    memset(&rs, 0, sizeof rs);
    ck_assert_int_eq(taxonomy__kin_parse(b, &k, &rs), SRV_EBADREQ);
    json_decref(b);
    b = json_loads("{\"bearing_designation\":7}", 0, NULL);
    memset(&rs, 0, sizeof rs);
    ck_assert_int_eq(taxonomy__kin_parse(b, &k, &rs), SRV_EBADREQ);
    json_decref(b);
}
END_TEST

struct fx {
    struct testsrv srv;
    char token[AUTH_TOKEN_LEN + 1], op_token[AUTH_TOKEN_LEN + 1];
};

static json_t *get(struct fx *f, const char *path, long want)
{
    struct testsrv_reply rep;
    json_t *j;

    ck_assert_int_eq(testsrv_request(&f->srv, "GET", path, NULL, 0, f->token, NULL, &rep), want);
    j = testsrv_json(&rep);
    free(rep.body);
    return j;
}

static long post(struct fx *f, const char *path, const char *body)
{
    struct testsrv_reply rep;
    long st = testsrv_request(&f->srv, "POST", path, body, strlen(body), f->op_token, NULL, &rep);

    free(rep.body);
    return st;
}

static json_t *find(json_t *items, const char *key, const char *value)
{
    size_t i;
    json_t *e;

    json_array_foreach(items, i, e)
        if (strcmp(json_string_value(json_object_get(e, key)), value) == 0)
            return e;
    return NULL;
}

static double order(json_t *b, const char *which)
{
    return json_number_value(json_object_get(json_object_get(b, "orders"), which));
}

/* What the spectra and model training read (the view device_kinematics,
 * migration 0083): an asset's shaft speed wins over its type's, and its
 * bearing geometry wins as a whole, never mixed with the type's; a device
 * without an asset has its type's. */
static void kinematics_precedence(void)
{
    PGconn *c = db_connect(testdb_conninfo);
    const char *key = "'\\x" "0000000000000000000000000000000000000000000000000000000000000000'";
    char q[512];

    ck_assert_ptr_nonnull(c);
    testdb_sql(c, "INSERT INTO equipment_types (name, shaft_hz, bearing_balls, bearing_ball_mm,"
                  " bearing_pitch_mm, bearing_contact_deg) VALUES ('kin_type', 25, 9, 7.94, 39.04, 0)");
    testdb_sql(c, "INSERT INTO assets (id, equipment_type, shaft_hz) VALUES ('kin-a', 'kin_type', 30)");
    testdb_sql(c, "INSERT INTO assets (id, equipment_type, bearing_balls, bearing_ball_mm,"
                  " bearing_pitch_mm, bearing_contact_deg) VALUES ('kin-b', 'kin_type', 12, 10, 60, 25)");
    snprintf(q, sizeof q, "INSERT INTO devices (id, public_key, equipment_type, asset_id) VALUES"
             " ('kin-1', %s, 'kin_type', 'kin-a'), ('kin-2', %s, 'kin_type', 'kin-b'),"
             " ('kin-3', %s, 'kin_type', NULL)", key, key, key);
    testdb_sql(c, q);
    testdb_value_is(c, "SELECT concat_ws(' ', shaft_hz, shaft_from, balls, ball_mm, pitch_mm,"
                       " contact_deg, bearing_from) FROM device_kinematics WHERE device_id = 'kin-1'",
                    "30 asset 9 7.94 39.04 0 equipment_type");
    testdb_value_is(c, "SELECT concat_ws(' ', shaft_hz, shaft_from, balls, ball_mm, pitch_mm,"
                       " contact_deg, bearing_from) FROM device_kinematics WHERE device_id = 'kin-2'",
                    "25 equipment_type 12 10 60 25 asset");
    testdb_value_is(c, "SELECT concat_ws(' ', shaft_hz, shaft_from, balls, bearing_from)"
                       " FROM device_kinematics WHERE device_id = 'kin-3'", "25 equipment_type 9 equipment_type");
    PQfinish(c);
}

START_TEST(test_bearings_api)
{
    struct fx f;
    json_t *j, *b, *a;

    TESTDB_REQUIRE();
    memset(&f, 0, sizeof f);
    testsrv_db();
    testsrv_add_token("ml", f.token, sizeof f.token);
    testsrv_add_token("operator", f.op_token, sizeof f.op_token);
    testsrv_listen(&f.srv, NULL);

    j = get(&f, "/api/v1/bearings", 200);
    ck_assert_int_ge(json_array_size(json_object_get(j, "items")), 6);
    /* the Case Western drive-end 6205: BPFO 3.5848, BPFI 5.4152, BSF
     * 4.7135 (their table gives 2 x BSF), FTF 0.39828 orders of shaft speed */
    b = find(json_object_get(j, "items"), "designation", "SKF 6205-2RS JEM");
    ck_assert_ptr_nonnull(b);
    ck_assert_double_eq_tol(order(b, "bpfo"), 3.5848, 0.001);
    ck_assert_double_eq_tol(order(b, "bpfi"), 5.4152, 0.001);
    ck_assert_double_eq_tol(2 * order(b, "bsf"), 4.7135, 0.002);
    ck_assert_double_eq_tol(order(b, "ftf"), 0.39828, 0.0005);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(b, "source")), "Case Western"));
    /* its fan end 6203: BPFO 3.0530, BPFI 4.9469 */
    b = find(json_object_get(j, "items"), "designation", "SKF 6203-2RS JEM");
    ck_assert_double_eq_tol(order(b, "bpfo"), 3.0530, 0.001);
    ck_assert_double_eq_tol(order(b, "bpfi"), 4.9469, 0.001);
    /* IMS: BPFO 236.4 Hz at 2000 rpm (contact 15.17 deg) */
    b = find(json_object_get(j, "items"), "designation", "Rexnord ZA-2115");
    ck_assert_double_eq_tol(order(b, "bpfo") * 2000.0 / 60.0, 236.4, 0.2);
    /* XJTU-SY: BPFO 107.91 Hz, BPFI 172.09 Hz at 2100 rpm */
    b = find(json_object_get(j, "items"), "designation", "LDK UER204");
    ck_assert_double_eq_tol(order(b, "bpfo") * 35.0, 107.91, 0.05);
    ck_assert_double_eq_tol(order(b, "bpfi") * 35.0, 172.09, 0.05);
    /* MFPT: BPFO 81.125 Hz, BPFI 118.875 Hz at 25 Hz */
    b = find(json_object_get(j, "items"), "designation", "NICE (MFPT rig)");
    ck_assert_double_eq_tol(order(b, "bpfo") * 25.0, 81.125, 0.01);
    ck_assert_double_eq_tol(order(b, "bpfi") * 25.0, 118.875, 0.01);
    json_decref(j);

    /* a search: case-insensitive, designation or manufacturer */
    j = get(&f, "/api/v1/bearings?q=6205", 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    j = get(&f, "/api/v1/bearings?q=rexnord", 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    j = get(&f, "/api/v1/bearings?q=nothing-like-it", 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    json_decref(get(&f, "/api/v1/bearings?q=0123456789012345678901234567890123456789"
                        "0123456789012345678901234", 400));

    /* an asset's bearing by designation: the table's geometry */
    ck_assert_int_eq(post(&f, "/api/v1/taxonomy/assets", "{\"id\":\"fan-1\",\"equipment_type\":\"fan\","
                          "\"shaft_hz\":24.5,\"bearing_designation\":\"skf 6203-2rs jem\"}"), 200);
    j = get(&f, "/api/v1/taxonomy", 200);
    a = find(json_object_get(j, "assets"), "id", "fan-1");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(json_string_value(json_object_get(a, "bearing_designation")), "SKF 6203-2RS JEM");
    b = json_object_get(a, "bearing");
    ck_assert_int_eq(json_integer_value(json_object_get(b, "balls")), 8);
    ck_assert_double_eq_tol(json_number_value(json_object_get(b, "ball_mm")), 6.746, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(b, "pitch_mm")), 28.5, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(a, "shaft_hz")), 24.5, 1e-9);
    /* the simulated fan's type came with its 6205 named */
    ck_assert_str_eq(json_string_value(json_object_get(find(json_object_get(j, "types"), "name", "fan"),
                                                       "bearing_designation")), "SKF 6205-2RS JEM");
    json_decref(j);
    /* unknown, or both: refused, nothing changed */
    ck_assert_int_eq(post(&f, "/api/v1/taxonomy/assets", "{\"id\":\"fan-1\",\"equipment_type\":\"fan\","
                          "\"bearing_designation\":\"XYZ 9999\"}"), 400);
    ck_assert_int_eq(post(&f, "/api/v1/taxonomy/assets", "{\"id\":\"fan-1\",\"equipment_type\":\"fan\","
                          "\"bearing_designation\":\"SKF 6205-2RS JEM\",\"bearing\":null}"), 400);
    /* explicit geometry is still taken, and the designation no longer holds */
    ck_assert_int_eq(post(&f, "/api/v1/taxonomy/assets", "{\"id\":\"fan-1\",\"equipment_type\":\"fan\","
                          "\"bearing\":{\"balls\":12,\"ball_mm\":10,\"pitch_mm\":60,\"contact_deg\":25}}"),
                     200);
    j = get(&f, "/api/v1/taxonomy", 200);
    a = find(json_object_get(j, "assets"), "id", "fan-1");
    ck_assert(json_is_null(json_object_get(a, "bearing_designation")));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "bearing"), "balls")), 12);
    json_decref(j);
    /* a type takes a designation too; null clears both */
    ck_assert_int_eq(post(&f, "/api/v1/taxonomy/types", "{\"name\":\"motor\",\"parent\":\"rotating\","
                          "\"bearing_designation\":\"LDK UER204\"}"), 200);
    ck_assert_int_eq(post(&f, "/api/v1/taxonomy/assets", "{\"id\":\"fan-1\",\"equipment_type\":\"fan\","
                          "\"bearing_designation\":null}"), 200);
    j = get(&f, "/api/v1/taxonomy", 200);
    ck_assert_str_eq(json_string_value(json_object_get(find(json_object_get(j, "types"), "name", "motor"),
                                                       "bearing_designation")), "LDK UER204");
    ck_assert(json_is_null(json_object_get(find(json_object_get(j, "assets"), "id", "fan-1"), "bearing")));
    json_decref(j);
    testsrv_stop(&f.srv);
    kinematics_precedence();
}
END_TEST

Suite *bearings_suite(void);
Suite *bearings_suite(void)
{
    Suite *s = suite_create("bearings");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_designation_or_geometry);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bearings_api);
    suite_add_tcase(s, tc);
    return s;
}
