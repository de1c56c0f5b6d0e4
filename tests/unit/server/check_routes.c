/* check_routes.c - the route table, the matcher, the error table, and the
 * promise that schema/openapi.json documents every route the server
 * registers (path and method). */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "server/srv/srv.h"

static const struct srv_route *match(const char *m, const char *p, const char **params, int *err)
{
    static char caps[256];
    return srv_route_match(m, p, caps, sizeof caps, params, err);
}

START_TEST(test_match_static_and_params)
{
    const char *params[SRV_MAX_PARAMS] = { NULL, NULL };
    const struct srv_route *r;
    int err = 0;

    r = match("GET", "/healthz", params, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->pattern, "/healthz");
    r = match("GET", "/api/v1/snapshots/42/raw", params, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->pattern, "/api/v1/snapshots/{id}/raw");
    ck_assert_str_eq(params[0], "42");
    ck_assert_int_eq(r->auth, SRV_AUTH_TOKEN);
    r = match("GET", "/api/v1/snapshots/42", params, &err);
    ck_assert_str_eq(r->pattern, "/api/v1/snapshots/{id}");
    r = match("POST", "/api/v1/snapshots", params, &err);
    ck_assert_int_eq(r->body, SRV_BODY_ENVELOPE);
    ck_assert_int_eq(r->auth, SRV_AUTH_DEVICE);
    r = match("HEAD", "/healthz", params, &err);
    ck_assert_ptr_nonnull(r);
}
END_TEST

START_TEST(test_match_misses)
{
    const char *params[SRV_MAX_PARAMS] = { NULL, NULL };
    int err = 0;

    ck_assert_ptr_null(match("GET", "/nope", params, &err));
    ck_assert_int_eq(err, SRV_ENOTFOUND);
    ck_assert_ptr_null(match("DELETE", "/healthz", params, &err));
    ck_assert_int_eq(err, SRV_EMETHOD);
    ck_assert_ptr_null(match("GET", "/api/v1/snapshots//raw", params, &err));
    ck_assert_int_eq(err, SRV_ENOTFOUND);
    ck_assert_ptr_null(match("GET", "/api/v1/snapshots/1/raw/x", params, &err));
    ck_assert_ptr_null(match("GET", "/healthz/", params, &err));
    ck_assert_ptr_null(match("GET", "", params, &err));
    ck_assert_ptr_null(match("GET", "healthz", params, &err));
}
END_TEST

START_TEST(test_match_caps_bounded)
{
    const char *params[SRV_MAX_PARAMS] = { NULL, NULL };
    char small[4];
    int err = 0;

    /* Capture longer than the buffer: no match rather than an overflow. */
    ck_assert_ptr_null(srv_route_match("GET", "/api/v1/devices/abcdefgh", small, sizeof small,
                                       params, &err));
}
END_TEST

START_TEST(test_error_table)
{
    int e, f;

    ck_assert_int_eq(srv_err_status(SRV_ETOOBIG), 413);
    ck_assert_int_eq(srv_err_status(SRV_EUNAUTH), 401);
    ck_assert_int_eq(srv_err_status(SRV_ECONFLICT), 409);
    ck_assert_int_eq(srv_err_status(SRV_EMETHOD), 405);
    ck_assert_int_eq(srv_err_status(SRV_EUNAVAIL), 503);
    ck_assert_int_eq(srv_err_status(-9999), 500);
    /* Every code in use has its own entry and machine code. */
    for (e = SRV_ECODE_MIN; e < 0; e++) {
        ck_assert_msg(e == SRV_EINTERNAL || strcmp(srv_err_code(e), "internal") != 0,
                      "code %d missing from the error table", e);
        ck_assert_int_ge(srv_err_status(e), 400);
        for (f = SRV_ECODE_MIN; f < e; f++)
            ck_assert_str_ne(srv_err_code(e), srv_err_code(f));
    }
}
END_TEST

/* "{id}" in the table and in OpenAPI are the same text, so a plain
 * comparison of path strings is exact. */
START_TEST(test_openapi_covers_routes)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    json_error_t je;
    json_t *doc, *paths;
    const struct srv_route *r;
    size_t n, i;

    ck_assert_int_eq(srv_find_dir(NULL, "schema", "openapi.json", dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/openapi.json", dir);
    doc = json_load_file(path, 0, &je);
    ck_assert_msg(doc != NULL, "openapi.json: %s", je.text);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    paths = json_object_get(doc, "paths");
    ck_assert(json_is_object(paths));
    ck_assert(json_is_object(json_object_get(json_object_get(
        json_object_get(doc, "components"), "schemas"), "Error")));
    r = srv_routes(&n);
    ck_assert_uint_ge(n, 10);
    for (i = 0; i < n; i++) {
        char lower[8];
        size_t k;
        json_t *item = json_object_get(paths, r[i].pattern);

        for (k = 0; r[i].method[k] && k < sizeof lower - 1; k++)
            lower[k] = (char)(r[i].method[k] - 'A' + 'a');
        lower[k] = '\0';
        ck_assert_msg(item != NULL, "route %s missing from openapi.json", r[i].pattern);
        ck_assert_msg(json_object_get(item, lower) != NULL, "%s %s missing from openapi.json",
                      r[i].method, r[i].pattern);
    }
    json_decref(doc);
}
END_TEST

Suite *routes_suite(void);
Suite *routes_suite(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_match_static_and_params);
    tcase_add_test(tc, test_match_misses);
    tcase_add_test(tc, test_match_caps_bounded);
    tcase_add_test(tc, test_error_table);
    tcase_add_test(tc, test_openapi_covers_routes);
    suite_add_tcase(s, tc);
    return s;
}
