/* check_srv_util.c - the body keys a handler ignores: which are named
 * (top level; a nested object only when its key set is listed), how many
 * and how long at most, the one log line per request, and how an answer
 * carries them (an "ignored" member of a JSON object, else a header of
 * ASCII JSON that fits its bound). */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/srv/srv.h"

static const char *const label_keys[] = { "start_s", "end_s", "class", "notes", NULL };
static const char *const kin_keys[] = { "name", "bearing", "bearing.balls", "bearing.ball_mm",
                                        "tags", NULL };

static struct srv_request request(const char *method, const char *path)
{
    struct srv_request rq;

    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.path = path;
    return rq;
}

static json_t *parse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);

    ck_assert_ptr_nonnull(j);
    return j;
}

static int names(const json_t *a, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return 1;
    return 0;
}

/* stderr into a file while fn runs; the file's text (malloc'd). */
static char *stderr_of(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/check_srv_util_XXXXXX", *text;
    int fd = mkstemp(path), saved;
    long n;
    FILE *f;

    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved = dup(2);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    ck_assert_int_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(path);
    return text;
}

START_TEST(test_known_bodies_name_nothing)
{
    struct srv_request rq = request("POST", "/api/v1/snapshots/1/labels");
    json_t *b = parse("{\"start_s\":1,\"end_s\":2,\"class\":\"x\"}"), *empty = parse("{}");
    json_t *arr = parse("[1,2]");

    ck_assert_ptr_null(srv_json_ignored(&rq, b, label_keys));
    ck_assert_ptr_null(srv_json_ignored(&rq, empty, label_keys));
    /* not an object: the handler's own 400, nothing to name */
    ck_assert_ptr_null(srv_json_ignored(&rq, arr, label_keys));
    ck_assert_ptr_null(srv_json_ignored(&rq, NULL, label_keys));
    json_decref(b);
    json_decref(empty);
    json_decref(arr);
}
END_TEST

START_TEST(test_unknown_top_level_keys)
{
    struct srv_request rq = request("POST", "/api/v1/snapshots/1/labels");
    json_t *b = parse("{\"start_s\":1,\"lable\":\"x\",\"note\":\"y\",\"class\":\"c\"}");
    json_t *ig = srv_json_ignored(&rq, b, label_keys);

    ck_assert_ptr_nonnull(ig);
    ck_assert_int_eq(json_array_size(ig), 2);
    ck_assert(names(ig, "lable"));
    ck_assert(names(ig, "note"));
    json_decref(ig);
    json_decref(b);
}
END_TEST

START_TEST(test_nested_fixed_key_sets)
{
    struct srv_request rq = request("POST", "/api/v1/taxonomy/assets");
    /* bearing has listed members: checked, named with their path; tags has
     * none: taken whole, whatever it holds */
    json_t *b = parse("{\"name\":\"a\",\"bearing\":{\"balls\":9,\"bals\":9,\"ball_mm\":7},"
                      "\"tags\":{\"anything\":1},\"bearing.balls\":3}");
    json_t *ig = srv_json_ignored(&rq, b, kin_keys);

    ck_assert_ptr_nonnull(ig);
    ck_assert_int_eq(json_array_size(ig), 2);
    ck_assert(names(ig, "bearing.bals"));
    /* a literal dotted key at the top is no member of bearing */
    ck_assert(names(ig, "bearing.balls"));
    json_decref(ig);
    json_decref(b);

    /* bearing given as something else (null, a number): the parser's
     * business, nothing below it to name */
    b = parse("{\"bearing\":null}");
    ck_assert_ptr_null(srv_json_ignored(&rq, b, kin_keys));
    json_decref(b);
}
END_TEST

START_TEST(test_bounded_count_and_length)
{
    struct srv_request rq = request("POST", "/api/v1/rules");
    json_t *b = json_object(), *ig, *v;
    char key[32], longkey[301];
    size_t i;
    const char *s;

    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%03zu", i);
        json_object_set_new(b, key, json_integer((json_int_t)i));
    }
    ig = srv_json_ignored(&rq, b, label_keys);
    ck_assert_int_eq(json_array_size(ig), SRV_IGNORED_MAX);
    json_decref(ig);
    json_decref(b);

    /* a 300-byte key: cut to the bound */
    memset(longkey, 'x', 300);
    longkey[300] = '\0';
    b = json_object();
    json_object_set_new(b, longkey, json_true());
    ig = srv_json_ignored(&rq, b, label_keys);
    ck_assert_int_eq(json_array_size(ig), 1);
    ck_assert_uint_eq(strlen(json_string_value(json_array_get(ig, 0))), SRV_IGNORED_KEY_MAX);
    ck_assert(strncmp(json_string_value(json_array_get(ig, 0)), longkey, SRV_IGNORED_KEY_MAX) == 0);
    json_decref(ig);
    json_decref(b);

    /* 2-byte characters: cut at a character, never inside one (65 'é' is
     * 130 bytes; 64 bytes hold 32 of them) */
    b = json_object();
    {
        char u[131];

        for (i = 0; i < 65; i++)
            memcpy(u + 2 * i, "\xc3\xa9", 2);
        u[130] = '\0';
        json_object_set_new(b, u, json_true());
    }
    ig = srv_json_ignored(&rq, b, label_keys);
    ck_assert_int_eq(json_array_size(ig), 1);
    v = json_array_get(ig, 0);
    ck_assert_ptr_nonnull(v);
    s = json_string_value(v);
    ck_assert_uint_eq(strlen(s), 64);
    ck_assert(memcmp(s + 62, "\xc3\xa9", 2) == 0);
    json_decref(ig);
    json_decref(b);
}
END_TEST

struct log_case {
    struct srv_request *rq;
    json_t *body;
    json_t *ig;
};

static void run_ignored(void *arg)
{
    struct log_case *c = arg;

    c->ig = srv_json_ignored(c->rq, c->body, label_keys);
}

START_TEST(test_logged_once_bounded)
{
    struct srv_request rq = request("PATCH", "/api/v1/labels/7");
    struct log_case c = { &rq, json_object(), NULL };
    char key[600], *text, *nl;
    size_t i;

    snprintf(rq.user_name, sizeof rq.user_name, "ops1");
    /* 200 keys of 500 bytes, one with a newline: an attacker's 100 KB */
    for (i = 0; i < 200; i++) {
        memset(key, 'a' + (int)(i % 26), 500);
        snprintf(key + 500, sizeof key - 500, "%zu%s", i, i == 3 ? "\nforged line" : "");
        json_object_set_new(c.body, key, json_true());
    }
    json_object_set_new(c.body, "notes", json_string("kept"));
    text = stderr_of(run_ignored, &c);
    ck_assert_int_eq(json_array_size(c.ig), SRV_IGNORED_MAX);
    /* one line, naming the route, the caller and the count of all */
    nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_str_eq(nl + 1, "");
    ck_assert_ptr_nonnull(strstr(text, "warn"));
    ck_assert_ptr_nonnull(strstr(text, "PATCH /api/v1/labels/7 by ops1"));
    ck_assert_ptr_nonnull(strstr(text, "200 unknown keys ignored"));
    ck_assert_ptr_null(strstr(text, "notes"));
    /* the names as answered: at most 16 of 64 bytes, and escaped */
    ck_assert_uint_lt(strlen(text), 2048);
    ck_assert_ptr_null(strstr(text, "forged line\""));
    free(text);
    json_decref(c.ig);

    /* nothing ignored: no line at all */
    json_decref(c.body);
    c.body = parse("{\"notes\":\"x\"}");
    text = stderr_of(run_ignored, &c);
    ck_assert_ptr_null(c.ig);
    ck_assert_str_eq(text, "");
    free(text);
    json_decref(c.body);
}
END_TEST

START_TEST(test_header_value)
{
    json_t *a = parse("[\"lable\",\"n\\u00e9\",\"del\\u007f\",\"ctl\\u0001\"]"), *back;
    char out[SRV_IGNORED_HEADER_MAX];
    size_t n = srv_ignored_header(a, out, sizeof out), i;

    ck_assert_uint_eq(n, strlen(out));
    for (i = 0; i < n; i++)
        ck_assert(out[i] >= 0x20 && out[i] < 0x7f);
    back = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert(json_equal(a, back));
    json_decref(back);

    /* room for the first two whole names only: the rest left out */
    n = srv_ignored_header(a, out, 22);
    ck_assert_str_eq(out, "[\"lable\",\"n\\u00E9\"]");
    ck_assert_uint_eq(n, 19);
    /* not even one fits, or none to name: no header */
    ck_assert_uint_eq(srv_ignored_header(a, out, 8), 0);
    json_decref(a);
    a = json_array();
    ck_assert_uint_eq(srv_ignored_header(a, out, sizeof out), 0);
    json_decref(a);
}
END_TEST

static void answer(struct srv_response *rs, unsigned status, const char *ctype, const char *body)
{
    memset(rs, 0, sizeof *rs);
    rs->status = status;
    rs->content_type = ctype;
    if (body) {
        rs->body = strdup(body);
        rs->body_len = strlen(body);
    }
    rs->ignored = parse("[\"lable\"]");
}

START_TEST(test_answer_names_them_once)
{
    struct srv_response rs;
    char hdr[SRV_IGNORED_HEADER_MAX];
    json_t *j;

    /* a JSON object answer: a member, no header */
    answer(&rs, 201, "application/json", "{\"id\":5}");
    ck_assert_uint_eq(srv_response_take_ignored(&rs, hdr, sizeof hdr), 0);
    ck_assert_ptr_null(rs.ignored);
    j = json_loadb(rs.body, rs.body_len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), 5);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "ignored"), 0)), "lable");
    json_decref(j);
    srv_response_release(&rs);

    /* an empty object and a static body */
    answer(&rs, 0, "application/json", NULL);
    rs.body = (char *)" {  }";
    rs.body_len = 5;
    rs.body_static = 1;
    ck_assert_uint_eq(srv_response_take_ignored(&rs, hdr, sizeof hdr), 0);
    ck_assert_int_eq(rs.body_static, 0);
    ck_assert_str_eq(rs.body, " {\"ignored\":[\"lable\"]  }");
    srv_response_release(&rs);

    /* 204: the header */
    answer(&rs, 204, NULL, NULL);
    ck_assert_uint_gt(srv_response_take_ignored(&rs, hdr, sizeof hdr), 0);
    ck_assert_str_eq(hdr, "[\"lable\"]");
    ck_assert_ptr_null(rs.body);
    srv_response_release(&rs);

    /* a list or another type of answer: the header, the body untouched */
    answer(&rs, 200, "application/json", "[1]");
    ck_assert_uint_gt(srv_response_take_ignored(&rs, hdr, sizeof hdr), 0);
    ck_assert_str_eq(rs.body, "[1]");
    srv_response_release(&rs);

    /* not a success (deploy's 409 with the numbers): neither */
    answer(&rs, 409, "application/json", "{\"error\":{}}");
    ck_assert_uint_eq(srv_response_take_ignored(&rs, hdr, sizeof hdr), 0);
    ck_assert_str_eq(rs.body, "{\"error\":{}}");
    ck_assert_ptr_null(rs.ignored);
    srv_response_release(&rs);

    /* released without answering (an error path): no leak under ASan */
    answer(&rs, 200, NULL, NULL);
    srv_response_release(&rs);
    ck_assert_ptr_null(rs.ignored);
}
END_TEST

START_TEST(test_body_ignored)
{
    static const char *const none[] = { NULL };
    struct srv_request rq = request("POST", "/api/v1/alerts/3/ack");
    struct srv_response rs;
    const char *body = "{\"note\":\"checked on site\"}";

    memset(&rs, 0, sizeof rs);
    srv_body_ignored(&rq, &rs, none);          /* no body */
    ck_assert_ptr_null(rs.ignored);
    rq.body = (const uint8_t *)"not json";
    rq.body_len = 8;
    srv_body_ignored(&rq, &rs, none);
    ck_assert_ptr_null(rs.ignored);
    rq.body = (const uint8_t *)body;
    rq.body_len = strlen(body);
    srv_body_ignored(&rq, &rs, none);
    ck_assert_ptr_nonnull(rs.ignored);
    ck_assert(names(rs.ignored, "note"));
    srv_response_release(&rs);
}
END_TEST

/* A JSON answer shows each real as its shortest decimal that reads back as
 * the same double, still a real; strings and integers are not touched. */
START_TEST(test_reals_shortest)
{
    json_t *j = json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:s,s:[f,f]}", "a", 0.1, "b", 1.0 / 3,
                          "c", 71.1, "d", 1e-05, "e", -2.5e20, "f", 3.0, "i",
                          (json_int_t)12345678901234567LL, "s", "0.10000000000000001 \"1.1\\",
                          "v", 0.7, 1e300);
    char *s = srv_json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

    ck_assert_str_eq(s, "{\"a\":0.1,\"b\":0.3333333333333333,\"c\":71.1,\"d\":1e-5,"
                        "\"e\":-2.5e20,\"f\":3.0,\"i\":12345678901234567,"
                        "\"s\":\"0.10000000000000001 \\\"1.1\\\\\","
                        "\"v\":[0.7,1e300]}");
    free(s);
    json_decref(j);
}
END_TEST

/* Every double, whatever its bits, reads back the same after the rewrite,
 * and the text never grows. */
START_TEST(test_reals_round_trip)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int i;

    for (i = 0; i < 20000; i++) {
        double d, back;
        json_t *j, *k;
        char *plain, *s;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        if (i % 4 == 0)     /* decimals of a few digits, the common case */
            d = (double)((int64_t)(x % 2000001) - 1000000) / 1000.0;
        j = json_pack("[f]", d);
        plain = json_dumps(j, JSON_COMPACT);
        s = srv_json_dumps(j, JSON_COMPACT);
        ck_assert_uint_le(strlen(s), strlen(plain));
        if (i % 4 == 0)     /* one rounding from -1000.000..1000.000: "[-999.999]" at the longest */
            ck_assert_msg(strlen(s) <= 10, "%s is not the shortest", s);
        k = json_loads(s, 0, NULL);
        ck_assert_msg(k && json_is_real(json_array_get(k, 0)), "%s not a real", s);
        back = json_real_value(json_array_get(k, 0));
        ck_assert_msg(memcmp(&back, &d, sizeof d) == 0, "%.17g came back %.17g from %s", d, back, s);
        json_decref(k);
        json_decref(j);
        free(plain);
        free(s);
    }
}
END_TEST

/* Strings full of what a number is made of, quotes and backslashes
 * included, beside reals and integers: the rewrite changes no value. */
START_TEST(test_reals_leave_strings_alone)
{
    static const char alphabet[] = "0123456789.eE+-\"\\ {}[],:u";
    uint64_t x = 0x2545f4914f6cdd1dULL;
    int i;

    for (i = 0; i < 2000; i++) {
        json_t *j = json_object(), *back;
        char key[24], str[40], *s;
        double d;
        int k;

        for (k = 0; k < 4; k++) {
            size_t n, c;

            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            n = x % (sizeof str - 1);
            for (c = 0; c < n; c++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                str[c] = alphabet[x % (sizeof alphabet - 1)];
            }
            str[n] = '\0';
            snprintf(key, sizeof key, "%.*s%d", (int)(x % 9), str, k);
            d = (double)(int64_t)(x % 100000) / 7.0;
            json_object_set_new(j, key, k % 2 ? json_string(str) : json_pack("[f,I,s]", d,
                                                                             (json_int_t)(x >> 20), str));
        }
        s = srv_json_dumps(j, JSON_COMPACT);
        back = json_loads(s, 0, NULL);
        ck_assert_msg(back && json_equal(back, j), "%s", s);
        json_decref(back);
        json_decref(j);
        free(s);
    }
}
END_TEST

Suite *srv_util_suite(void);
Suite *srv_util_suite(void)
{
    Suite *s = suite_create("srv_util");
    TCase *tc = tcase_create("ignored");

    tcase_add_test(tc, test_known_bodies_name_nothing);
    tcase_add_test(tc, test_unknown_top_level_keys);
    tcase_add_test(tc, test_nested_fixed_key_sets);
    tcase_add_test(tc, test_bounded_count_and_length);
    tcase_add_test(tc, test_logged_once_bounded);
    tcase_add_test(tc, test_header_value);
    tcase_add_test(tc, test_answer_names_them_once);
    tcase_add_test(tc, test_body_ignored);
    suite_add_tcase(s, tc);
    tc = tcase_create("reals");
    tcase_add_test(tc, test_reals_shortest);
    tcase_add_test(tc, test_reals_round_trip);
    tcase_add_test(tc, test_reals_leave_strings_alone);
    suite_add_tcase(s, tc);
    return s;
}
