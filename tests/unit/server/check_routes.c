/* check_routes.c - the route table, the matcher, the error table, and the
 * promise that schema/openapi.json documents every route the server
 * registers (path and method) with the roles it admits (x-roles), the 401
 * and 403 its gate answers and the unknown body keys its success answers
 * name, and that every handler refuses the roles its x-roles leaves out. */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "server/routes.h"
#include "server/srv/srv.h"

static const struct srv_route *match(const char *m, const char *p, const char **params, int *err)
{
    static char caps[256];
    size_t n;
    const struct srv_route *t = routes_table(&n);

    return srv_route_match(t, n, m, p, caps, sizeof caps, params, err);
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
    ck_assert_int_eq(srv_route_auth(r), SRV_AUTH_TOKEN);
    r = match("GET", "/api/v1/snapshots/42", params, &err);
    ck_assert_str_eq(r->pattern, "/api/v1/snapshots/{id}");
    r = match("POST", "/api/v1/snapshots", params, &err);
    ck_assert_int_eq(r->body, SRV_BODY_ENVELOPE);
    ck_assert_int_eq(srv_route_auth(r), SRV_AUTH_DEVICE);
    ck_assert_ptr_nonnull(r->park);
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

/* A 405 names what the path takes (the Allow header, RFC 9110). */
START_TEST(test_allow_lists_the_paths_methods)
{
    char caps[256], allow[64], tiny[8];
    size_t n;
    const struct srv_route *t = routes_table(&n);

    ck_assert_uint_eq(srv_route_allow(t, n, "/healthz", caps, sizeof caps, allow, sizeof allow),
                      strlen("GET, HEAD"));
    ck_assert_str_eq(allow, "GET, HEAD");
    srv_route_allow(t, n, "/api/v1/session", caps, sizeof caps, allow, sizeof allow);
    ck_assert_str_eq(allow, "GET, HEAD, POST, DELETE");
    srv_route_allow(t, n, "/api/v1/snapshots", caps, sizeof caps, allow, sizeof allow);
    ck_assert_str_eq(allow, "GET, HEAD, POST");
    srv_route_allow(t, n, "/api/v1/labels/7", caps, sizeof caps, allow, sizeof allow);
    ck_assert_str_eq(allow, "PATCH, DELETE");
    srv_route_allow(t, n, "/api/v1/devices/d1/approve", caps, sizeof caps, allow, sizeof allow);
    ck_assert_str_eq(allow, "POST");
    ck_assert_uint_eq(srv_route_allow(t, n, "/nope", caps, sizeof caps, allow, sizeof allow), 0);
    ck_assert_str_eq(allow, "");
    /* Short of room: whole names only, never half of one. */
    srv_route_allow(t, n, "/api/v1/session", caps, sizeof caps, tiny, sizeof tiny);
    ck_assert_str_eq(tiny, "");
    srv_route_allow(t, n, "/healthz", caps, sizeof caps, allow, 10);
    ck_assert_str_eq(allow, "GET, HEAD");
}
END_TEST

START_TEST(test_match_caps_bounded)
{
    const char *params[SRV_MAX_PARAMS] = { NULL, NULL };
    char small[4];
    int err = 0;
    size_t n;
    const struct srv_route *t = routes_table(&n);

    /* Capture longer than the buffer: no match rather than an overflow. */
    ck_assert_ptr_null(srv_route_match(t, n, "GET", "/api/v1/devices/abcdefgh", small,
                                       sizeof small, params, &err));
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
    r = routes_table(&n);
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

/* Loads schema/openapi.json (the caller decrefs). */
static json_t *load_openapi(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    json_error_t je;
    json_t *doc;

    ck_assert_int_eq(srv_find_dir(NULL, "schema", "openapi.json", dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/openapi.json", dir);
    doc = json_load_file(path, 0, &je);
    ck_assert_msg(doc != NULL, "openapi.json: %s", je.text);
    return doc;
}

/* The operation object of a route in the document, or NULL. */
static json_t *route_op(json_t *doc, const struct srv_route *r)
{
    char lower[8];
    size_t k;

    for (k = 0; r->method[k] && k < sizeof lower - 1; k++)
        lower[k] = (char)(r->method[k] - 'A' + 'a');
    lower[k] = '\0';
    return json_object_get(json_object_get(json_object_get(doc, "paths"), r->pattern), lower);
}

static int roles_has(const json_t *roles, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(roles, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    return 0;
}

/* x-roles as the route table's bits. */
static unsigned roles_bits(const json_t *roles)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = { { "anyone", SRV_ANYONE }, { "device", SRV_DEVICE }, { "ml", SRV_ML },
                  { "operator", SRV_OPERATOR }, { "admin", SRV_ADMIN } };
    unsigned bits = 0;
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (roles_has(roles, names[i].name))
            bits |= names[i].bit;
    return bits;
}

/* Every route says who may call it, in words the catalogue
 * (tests/security/catalogue.py) turns into wrong-role cases: ["anyone"] for
 * open routes, ["device"] for those a device proves itself to (signature,
 * enrollment secret or token), and for token routes the
 * user roles the handler admits (admin always: it may do all the others
 * may).  A route added without x-roles fails here. */
START_TEST(test_openapi_roles)
{
    static const char *const known[] = { "anyone", "device", "admin", "operator", "ml" };
    json_t *doc = load_openapi(), *paths, *item, *op, *roles, *v;
    const struct srv_route *r;
    const char *path, *method;
    size_t n, i, k, j;

    r = routes_table(&n);
    for (i = 0; i < n; i++) {
        op = route_op(doc, &r[i]);
        ck_assert_msg(op != NULL, "%s %s missing from openapi.json", r[i].method, r[i].pattern);
        roles = json_object_get(op, "x-roles");
        ck_assert_msg(json_is_array(roles) && json_array_size(roles) > 0,
                      "%s %s has no x-roles in openapi.json", r[i].method, r[i].pattern);
        ck_assert_msg(roles_bits(roles) == r[i].roles,
                      "%s %s: the route table's roles differ from x-roles", r[i].method,
                      r[i].pattern);
        switch (srv_route_auth(&r[i])) {
        case SRV_AUTH_NONE:
            /* ["device"] here: the handler itself asks for an enrollment
             * token, in a Bearer header or the query (GET /install.sh). */
            ck_assert_msg(json_array_size(roles) == 1 &&
                          (roles_has(roles, "anyone") || roles_has(roles, "device")),
                          "%s %s is open: x-roles must be [\"anyone\"] or [\"device\"]",
                          r[i].method, r[i].pattern);
            ck_assert_msg(json_object_get(op, "security") == NULL,
                          "%s %s is open but documents security", r[i].method, r[i].pattern);
            break;
        case SRV_AUTH_DEVICE:
            ck_assert_msg(json_array_size(roles) == 1 && roles_has(roles, "device"),
                          "%s %s is device-proven: x-roles must be [\"device\"]", r[i].method,
                          r[i].pattern);
            break;
        case SRV_AUTH_TOKEN:
            ck_assert_msg(roles_has(roles, "admin") && !roles_has(roles, "anyone") &&
                          !roles_has(roles, "device"),
                          "%s %s takes a token: x-roles must be user roles, admin among them",
                          r[i].method, r[i].pattern);
            ck_assert_msg(json_is_array(json_object_get(op, "security")),
                          "%s %s takes a token but documents no security", r[i].method,
                          r[i].pattern);
            /* What the gate in front of the handler answers: 401 without
             * credentials; 403 for a role x-roles leaves out, or a
             * session's state-changing request without its X-CSRF-Token. */
            ck_assert_msg(json_object_get(json_object_get(op, "responses"), "401") != NULL,
                          "%s %s takes a token but documents no 401", r[i].method,
                          r[i].pattern);
            if (r[i].roles != SRV_USERS || strcmp(r[i].method, "GET") != 0)
                ck_assert_msg(json_object_get(json_object_get(op, "responses"), "403") != NULL,
                              "%s %s can answer 403 (role or X-CSRF-Token) but documents none",
                              r[i].method, r[i].pattern);
            break;
        }
    }
    /* Operations documented beyond the table (none today) need x-roles too,
     * and only known names: a typo would silently admit nobody. */
    paths = json_object_get(doc, "paths");
    json_object_foreach(paths, path, item) {
        json_object_foreach(item, method, op) {
            if (!json_is_object(op) || strcmp(method, "parameters") == 0)
                continue;
            roles = json_object_get(op, "x-roles");
            ck_assert_msg(json_is_array(roles) && json_array_size(roles) > 0,
                          "%s %s has no x-roles in openapi.json", method, path);
            json_array_foreach(roles, k, v) {
                int ok = 0;

                for (j = 0; j < sizeof known / sizeof known[0]; j++)
                    ok |= json_is_string(v) && strcmp(json_string_value(v), known[j]) == 0;
                ck_assert_msg(ok, "%s %s: unknown role in x-roles", method, path);
            }
        }
    }
    json_decref(doc);
}
END_TEST

/* A "$ref" to "#/components/..." as the object it names, else node itself
 * (borrowed; NULL when the reference leads nowhere). */
static json_t *resolve(json_t *doc, json_t *node)
{
    const char *ref = json_string_value(json_object_get(node, "$ref"));
    char part[128];
    json_t *at = doc;

    if (!ref)
        return node;
    if (strncmp(ref, "#/", 2) != 0)
        return NULL;
    for (ref += 2; at && *ref;) {
        size_t n = strcspn(ref, "/");

        if (n >= sizeof part)
            return NULL;
        memcpy(part, ref, n);
        part[n] = '\0';
        at = json_object_get(at, part);
        ref += n + (ref[n] == '/');
    }
    return at;
}

static int schema_type_is(json_t *doc, json_t *schema, const char *type)
{
    schema = resolve(doc, schema);
    return json_is_object(schema) &&
           json_is_string(json_object_get(schema, "type")) &&
           strcmp(json_string_value(json_object_get(schema, "type")), type) == 0;
}

/* What a success answer documents of the unknown keys: 1 when its JSON
 * object lists "ignored" as an array of strings, or (a 204) it has the
 * Precursor-Ignored-Keys header as a string; 0 when it names neither. */
static int success_names_ignored(json_t *doc, const char *code, json_t *resp)
{
    json_t *schema, *ignored;

    resp = resolve(doc, resp);
    if (strcmp(code, "204") == 0) {
        json_t *h = resolve(doc, json_object_get(json_object_get(resp, "headers"),
                                                 SRV_IGNORED_HEADER));

        return json_is_object(h) && schema_type_is(doc, json_object_get(h, "schema"), "string");
    }
    schema = resolve(doc, json_object_get(json_object_get(json_object_get(resp, "content"),
                                                          "application/json"), "schema"));
    if (!schema_type_is(doc, schema, "object"))
        return 0;
    ignored = resolve(doc, json_object_get(json_object_get(schema, "properties"), "ignored"));
    return schema_type_is(doc, ignored, "array") &&
           schema_type_is(doc, json_object_get(ignored, "items"), "string");
}

/* The unknown-keys policy (info.description) for clients to rely on: every
 * success answer to a JSON body documents how it names the keys the server
 * did without, "ignored" in a JSON object or the header on a 204; the routes
 * the info names as different document what they do instead, and the info
 * still names them.  A JSON route added without it fails here. */
START_TEST(test_openapi_ignored_keys)
{
    static const struct {
        const char *method, *pattern;
        int refuses;    /* 1: an unknown key is a 400; 0: the body is kept as sent */
    } differ[] = { { "POST", "/api/v1/enrollment-tokens", 1 },
                   { "POST", "/api/v1/heartbeats", 0 } };
    json_t *doc = load_openapi(), *op, *responses, *resp;
    const char *info, *code;
    const struct srv_route *r;
    size_t n, i, k, checked = 0;

    info = json_string_value(json_object_get(json_object_get(doc, "info"), "description"));
    ck_assert_ptr_nonnull(info);
    for (k = 0; k < sizeof differ / sizeof differ[0]; k++)
        ck_assert_msg(strstr(info, differ[k].pattern) != NULL,
                      "info.description no longer names %s %s as an exception", differ[k].method,
                      differ[k].pattern);
    r = routes_table(&n);
    for (i = 0; i < n; i++) {
        int other = -1, successes = 0;

        if (r[i].body != SRV_BODY_JSON)
            continue;
        for (k = 0; k < sizeof differ / sizeof differ[0]; k++)
            if (strcmp(r[i].method, differ[k].method) == 0 &&
                strcmp(r[i].pattern, differ[k].pattern) == 0)
                other = differ[k].refuses;
        op = route_op(doc, &r[i]);
        responses = json_object_get(op, "responses");
        ck_assert_msg(json_is_object(responses), "%s %s documents no responses", r[i].method,
                      r[i].pattern);
        json_object_foreach(responses, code, resp) {
            if (code[0] != '2')
                continue;
            successes++;
            if (other < 0)
                ck_assert_msg(success_names_ignored(doc, code, resp),
                              "%s %s: its %s answer must document the unknown keys it ignored "
                              "(\"ignored\": IgnoredKeys, or the %s header on a 204)",
                              r[i].method, r[i].pattern, code, SRV_IGNORED_HEADER);
            else
                ck_assert_msg(!success_names_ignored(doc, code, resp),
                              "%s %s ignores no keys (info) but its %s answer says it does",
                              r[i].method, r[i].pattern, code);
        }
        ck_assert_msg(successes > 0, "%s %s documents no success answer", r[i].method,
                      r[i].pattern);
        if (other == 1) {
            json_t *body = resolve(doc, json_object_get(json_object_get(json_object_get(
                json_object_get(op, "requestBody"), "content"), "application/json"), "schema"));

            ck_assert_msg(json_is_false(json_object_get(body, "additionalProperties")) &&
                          json_object_get(responses, "400") != NULL,
                          "%s %s refuses unknown keys: its body schema must say "
                          "additionalProperties false and it must document 400",
                          r[i].method, r[i].pattern);
        }
        checked++;
    }
    /* 31 JSON routes when this was written */
    ck_assert_uint_ge(checked, 25);
    json_decref(doc);
}
END_TEST

/* x-roles is a promise about the code: each token route, called the way the
 * http layer calls it (srv_route_call) with a role its x-roles leaves out,
 * answers SRV_EFORBIDDEN.  (A request without a role never reaches a
 * handler: the http layer answers 401.)  The gate runs before the body, the
 * parameters or the database, so no database is needed: a route whose gate
 * went missing reaches those and answers something else, which fails here. */
START_TEST(test_roles_enforced)
{
    static const struct {
        enum srv_role role;
        const char *name;
    } users[] = { { SRV_ROLE_ML, "ml" }, { SRV_ROLE_OPERATOR, "operator" },
                  { SRV_ROLE_ADMIN, "admin" } };
    json_t *doc = load_openapi(), *roles;
    const struct srv_route *r;
    size_t n, i, u, checked = 0;

    r = routes_table(&n);
    for (i = 0; i < n; i++) {
        if (srv_route_auth(&r[i]) != SRV_AUTH_TOKEN)
            continue;
        roles = json_object_get(route_op(doc, &r[i]), "x-roles");
        ck_assert_msg(json_is_array(roles), "%s %s has no x-roles", r[i].method, r[i].pattern);
        for (u = 0; u < sizeof users / sizeof users[0]; u++) {
            struct srv_request rq;
            struct srv_response rs;
            int err;

            if (roles_has(roles, users[u].name))
                continue;
            memset(&rq, 0, sizeof rq);
            memset(&rs, 0, sizeof rs);
            rq.method = r[i].method;
            rq.path = r[i].pattern;
            rq.params[0] = "1";
            rq.params[1] = "1";
            rq.role = users[u].role;
            rq.token_id = 1;
            err = srv_route_call(&r[i], &rq, &rs);
            srv_response_release(&rs);
            ck_assert_msg(err == SRV_EFORBIDDEN, "%s %s as %s: got %d, not SRV_EFORBIDDEN",
                          r[i].method, r[i].pattern, users[u].name, err);
            checked++;
        }
    }
    /* The admin-only, ml-write and operator-write routes: 29 (route, role)
     * pairs when this was written; far fewer means the roles went missing. */
    ck_assert_uint_ge(checked, 20);
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
    tcase_add_test(tc, test_allow_lists_the_paths_methods);
    tcase_add_test(tc, test_error_table);
    tcase_add_test(tc, test_openapi_covers_routes);
    tcase_add_test(tc, test_openapi_roles);
    tcase_add_test(tc, test_openapi_ignored_keys);
    tcase_add_test(tc, test_roles_enforced);
    suite_add_tcase(s, tc);
    return s;
}
