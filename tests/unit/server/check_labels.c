/* check_labels.c - label bodies are parsed and bounded before they reach
 * the database (required fields, spans, channels, classes, confidence, text
 * lengths), checked against their snapshot, and the UI's static file names
 * and the session cookie are parsed strictly. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/labels/labels.h"
#include "server/session/session.h"
#include "server/ui/ui.h"

static int parse(const char *text, int partial, struct labels_input *in, const char **why)
{
    json_t *j = json_loads(text, 0, NULL);
    int err;

    ck_assert_ptr_nonnull(j);
    err = labels_parse(j, partial, in, why);
    /* strings in *in are borrowed from j: tests only look at numbers after */
    json_decref(j);
    return err;
}

START_TEST(test_valid_post)
{
    struct labels_input in;
    const char *why = NULL;

    ck_assert_int_eq(parse("{\"start_s\":0.5,\"end_s\":0.75,\"channels\":[0,2],"
                           "\"class\":\"imbalance\",\"confidence\":0.8,\"notes\":\"n\"}",
                           0, &in, &why), 0);
    ck_assert(in.has_span && in.start_s == 0.5 && in.end_s == 0.75);
    ck_assert_uint_eq(in.n_channels, 2);
    ck_assert_int_eq(in.channels[1], 2);
    ck_assert(in.has_confidence && in.confidence == 0.8);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 3, &why), 0);
}
END_TEST

START_TEST(test_refused_post)
{
    static const char *bad[] = {
        "[]",
        "{\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":1,\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":2,\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":-1,\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":\"0\",\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[1,1],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[-1],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[64],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0.5],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0]}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"Other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"a b\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"confidence\":1.5}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"confidence\":-0.1}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"notes\":5}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"cause\":[]}",
    };
    struct labels_input in;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;

        ck_assert_msg(parse(bad[i], 0, &in, &why) == SRV_EBADREQ, "accepted %s", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

START_TEST(test_text_lengths)
{
    char body[6000], notes[4002];
    struct labels_input in;
    const char *why = NULL;

    memset(notes, 'x', 4001);
    notes[4001] = '\0';
    snprintf(body, sizeof body, "{\"start_s\":0,\"end_s\":1,\"channels\":[0],"
             "\"class\":\"other\",\"notes\":\"%s\"}", notes);
    ck_assert_int_eq(parse(body, 0, &in, &why), SRV_EBADREQ);
    notes[4000] = '\0';
    snprintf(body, sizeof body, "{\"start_s\":0,\"end_s\":1,\"channels\":[0],"
             "\"class\":\"other\",\"notes\":\"%s\"}", notes);
    ck_assert_int_eq(parse(body, 0, &in, &why), 0);
    notes[201] = '\0';
    snprintf(body, sizeof body, "{\"failure_mode\":\"%s\"}", notes);
    ck_assert_int_eq(parse(body, 1, &in, &why), SRV_EBADREQ);
}
END_TEST

START_TEST(test_patch)
{
    struct labels_input in;
    const char *why = NULL;

    ck_assert_int_eq(parse("{\"class\":\"cavitation\"}", 1, &in, &why), 0);
    ck_assert(!in.has_span && !in.has_channels && !in.has_confidence);
    ck_assert_int_eq(parse("{}", 1, &in, &why), 0);
    /* a span only as a pair */
    ck_assert_int_eq(parse("{\"start_s\":1}", 1, &in, &why), SRV_EBADREQ);
    ck_assert_int_eq(parse("{\"start_s\":1,\"end_s\":2}", 1, &in, &why), 0);
}
END_TEST

START_TEST(test_check_against_snapshot)
{
    struct labels_input in;
    const char *why = NULL;

    /* 1 s of 1 kHz, 2 channels */
    ck_assert_int_eq(parse("{\"start_s\":0.9,\"end_s\":1.0,\"channels\":[1],\"class\":\"other\"}",
                           0, &in, &why), 0);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 2, &why), 0);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 1, &why), SRV_EBADREQ);   /* channel */
    ck_assert_int_eq(labels_check(&in, 1000, 500, 2, &why), SRV_EBADREQ);    /* span */
    ck_assert_int_eq(parse("{\"start_s\":0.5,\"end_s\":1.2,\"channels\":[0],\"class\":\"other\"}",
                           0, &in, &why), 0);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 2, &why), SRV_EBADREQ);
}
END_TEST

START_TEST(test_ui_names)
{
    ck_assert_int_eq(ui_name_ok("index.html"), 1);
    ck_assert_int_eq(ui_name_ok("uPlot.iife.min.js"), 1);
    ck_assert_int_eq(ui_name_ok("app.css"), 1);
    ck_assert_int_eq(ui_name_ok(".."), 0);
    ck_assert_int_eq(ui_name_ok("..html"), 0);
    ck_assert_int_eq(ui_name_ok("a..js"), 0);
    ck_assert_int_eq(ui_name_ok(".env.js"), 0);
    ck_assert_int_eq(ui_name_ok("../x.js"), 0);
    ck_assert_int_eq(ui_name_ok("x%2f.js"), 0);
    ck_assert_int_eq(ui_name_ok("passwd"), 0);
    ck_assert_int_eq(ui_name_ok("x.c"), 0);
    ck_assert_int_eq(ui_name_ok(""), 0);
    ck_assert_int_eq(ui_name_ok(NULL), 0);
    ck_assert_str_eq(ui_content_type("a.js"), "text/javascript; charset=utf-8");
}
END_TEST

START_TEST(test_cookie_parse)
{
    char out[65];
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char h[200];

    snprintf(h, sizeof h, "prc_session=%s", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), 0);
    ck_assert_str_eq(out, hex);
    snprintf(h, sizeof h, "theme=dark; prc_session=%s; x=1", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), 0);
    snprintf(h, sizeof h, "xprc_session=%s", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), -1);
    snprintf(h, sizeof h, "prc_session=%sab", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), -1);
    ck_assert_int_eq(session_cookie_value("prc_session=ABCDEF", out, sizeof out), -1);
    ck_assert_int_eq(session_cookie_value(NULL, out, sizeof out), -1);
    ck_assert_int_eq(session_cookie_value(h, out, 10), -1);
}
END_TEST

Suite *labels_suite(void);
Suite *labels_suite(void)
{
    Suite *s = suite_create("labels");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_valid_post);
    tcase_add_test(tc, test_refused_post);
    tcase_add_test(tc, test_text_lengths);
    tcase_add_test(tc, test_patch);
    tcase_add_test(tc, test_check_against_snapshot);
    tcase_add_test(tc, test_ui_names);
    tcase_add_test(tc, test_cookie_parse);
    suite_add_tcase(s, tc);
    return s;
}
