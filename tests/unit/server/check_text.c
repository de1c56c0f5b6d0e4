/* check_text.c - the strict little parsers and formatters of the API:
 * base64, RFC 3339, ids, cursors, limits, device ids, the error body. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv/srv.h"
#include "server/text/text.h"

START_TEST(test_error_body)
{
    char *s = srv_err_body("bad_request", "say \"why\"");
    json_t *j = json_loads(s, 0, NULL);

    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "bad_request");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                     "say \"why\"");
    json_decref(j);
    free(s);
}
END_TEST

START_TEST(test_base64)
{
    uint8_t k[32], back[32];
    char s[64];
    int i;

    for (i = 0; i < 32; i++)
        k[i] = (uint8_t)(i * 7 + 250);
    ck_assert_int_eq(text_b64_encode(k, 32, s, sizeof s), 0);
    ck_assert_uint_eq(strlen(s), 44);
    ck_assert_int_eq(text_b64_decode_exact(s, back, 32), 0);
    ck_assert_mem_eq(k, back, 32);
    ck_assert_int_eq(text_b64_encode((const uint8_t *)"foob", 4, s, sizeof s), 0);
    ck_assert_str_eq(s, "Zm9vYg==");
    ck_assert_int_eq(text_b64_encode(k, 32, s, 44), -1);          /* no room for NUL */
    ck_assert_int_eq(text_b64_decode_exact("Zm9vYg==", back, 32), -1);   /* wrong length */
    ck_assert_int_eq(text_b64_decode_exact("Zm9v!g==", back, 4), -1);
    ck_assert_int_eq(text_b64_decode_exact("", back, 4), -1);
    ck_assert_int_eq(text_b64_decode_exact(NULL, back, 4), -1);
    /* URL-safe alphabet is not standard base64. */
    ck_assert_int_eq(text_b64_decode_exact("_-__", back, 3), -1);
}
END_TEST

START_TEST(test_rfc3339)
{
    char b[40];

    ck_assert_int_eq(text_rfc3339(0, b, sizeof b), 0);
    ck_assert_str_eq(b, "1970-01-01T00:00:00.000000Z");
    ck_assert_int_eq(text_rfc3339(1714564800123456LL, b, sizeof b), 0);
    ck_assert_str_eq(b, "2024-05-01T12:00:00.123456Z");
    ck_assert_int_eq(text_rfc3339(-1, b, sizeof b), 0);
    ck_assert_str_eq(b, "1969-12-31T23:59:59.999999Z");
    ck_assert_int_eq(text_rfc3339(INT64_MAX, b, sizeof b), -1);
    ck_assert_int_eq(text_rfc3339(0, b, 10), -1);
}
END_TEST

START_TEST(test_ids_and_cursors)
{
    int64_t v = -5;
    int lim;

    ck_assert_int_eq(text_parse_id("42", &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(text_parse_id("9223372036854775807", &v), 0);
    ck_assert_int_eq(v, INT64_MAX);
    ck_assert_int_eq(text_parse_id("9223372036854775808", &v), -1);
    ck_assert_int_eq(text_parse_id("99999999999999999999", &v), -1);
    ck_assert_int_eq(text_parse_id("0", &v), -1);
    ck_assert_int_eq(text_parse_id("042", &v), -1);
    ck_assert_int_eq(text_parse_id("-1", &v), -1);
    ck_assert_int_eq(text_parse_id("1 ", &v), -1);
    ck_assert_int_eq(text_parse_id("1;DROP", &v), -1);
    ck_assert_int_eq(text_parse_id("", &v), -1);
    ck_assert_int_eq(text_parse_cursor(NULL, &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(text_parse_cursor("", &v), 0);
    ck_assert_int_eq(text_parse_cursor("17", &v), 0);
    ck_assert_int_eq(v, 17);
    ck_assert_int_eq(text_parse_cursor("abc", &v), -1);
    ck_assert_int_eq(text_parse_limit(NULL, 50, 1000, &lim), 0);
    ck_assert_int_eq(lim, 50);
    ck_assert_int_eq(text_parse_limit("1000", 50, 1000, &lim), 0);
    ck_assert_int_eq(lim, 1000);
    ck_assert_int_eq(text_parse_limit("1001", 50, 1000, &lim), -1);
    ck_assert_int_eq(text_parse_limit("0", 50, 1000, &lim), -1);
    ck_assert_int_eq(text_parse_limit("x", 50, 1000, &lim), -1);
}
END_TEST

START_TEST(test_device_ids)
{
    char long_id[70];

    ck_assert(text_valid_device_id("pump-01.site_a"));
    ck_assert(!text_valid_device_id(""));
    ck_assert(!text_valid_device_id(NULL));
    ck_assert(!text_valid_device_id("a b"));
    ck_assert(!text_valid_device_id("a/b"));
    ck_assert(!text_valid_device_id("é"));
    memset(long_id, 'a', 64);
    long_id[64] = '\0';
    ck_assert(text_valid_device_id(long_id));
    long_id[64] = 'a';
    long_id[65] = '\0';
    ck_assert(!text_valid_device_id(long_id));
}
END_TEST

/* Type and class names: lower-case identifiers, as URLs, exports and the
 * model header's C names need them. */
START_TEST(test_names)
{
    char long_name[70];

    ck_assert(text_valid_name("inner_race"));
    ck_assert(text_valid_name("pump2"));
    ck_assert(!text_valid_name(""));
    ck_assert(!text_valid_name(NULL));
    ck_assert(!text_valid_name("Inner"));
    ck_assert(!text_valid_name("inner-race"));
    ck_assert(!text_valid_name("a b"));
    memset(long_name, 'a', TEXT_NAME_MAX);
    long_name[TEXT_NAME_MAX] = '\0';
    ck_assert(text_valid_name(long_name));
    long_name[TEXT_NAME_MAX] = 'a';
    long_name[TEXT_NAME_MAX + 1] = '\0';
    ck_assert(!text_valid_name(long_name));
}
END_TEST

Suite *text_suite(void);
Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_error_body);
    tcase_add_test(tc, test_base64);
    tcase_add_test(tc, test_rfc3339);
    tcase_add_test(tc, test_ids_and_cursors);
    tcase_add_test(tc, test_device_ids);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
