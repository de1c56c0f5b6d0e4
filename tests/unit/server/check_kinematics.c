/* check_kinematics.c - what marks the spectra: a bearing's defect
 * frequencies (features_bearing_tones) against the simulator's own 6205
 * figures, and the kinematics a taxonomy POST body may carry
 * (taxonomy__kin_parse): what is taken, what is refused. */
#include <check.h>
#include <jansson.h>
#include <math.h>

#include "server/features/features.h"
#include "server/srv/srv.h"
#include "server/taxonomy/taxonomy_int.h"

/* agent/source/sim.c: a 6205 at 25 Hz, BPFO 89.6 Hz and BPFI 135.4 Hz. */
START_TEST(test_6205_tones)
{
    const struct feat_bearing b = { 9, 7.94, 39.04, 0 };
    double hz[4];

    features_bearing_tones(&b, 25, hz);
    ck_assert_double_eq_tol(hz[0], 89.62, 0.01);     /* BPFO */
    ck_assert_double_eq_tol(hz[1], 135.38, 0.01);    /* BPFI */
    ck_assert_double_eq_tol(hz[2], 58.92, 0.01);     /* BSF = D/2d fr (1 - g^2) */
    ck_assert_double_eq_tol(hz[3], 9.958, 0.001);    /* FTF */
    /* BPFO + BPFI = n fr whatever the geometry */
    ck_assert_double_eq_tol(hz[0] + hz[1], 9 * 25.0, 1e-9);
}
END_TEST

START_TEST(test_contact_angle)
{
    const struct feat_bearing flat = { 9, 7.94, 39.04, 0 }, angled = { 9, 7.94, 39.04, 40 };
    double a[4], b[4];

    features_bearing_tones(&flat, 25, a);
    features_bearing_tones(&angled, 25, b);
    /* cos(contact) shrinks g: the outer race sees the balls pass more often */
    ck_assert(b[0] > a[0] && b[1] < a[1]);
    ck_assert_double_eq_tol(b[0], 4.5 * 25 * (1 - 7.94 / 39.04 * cos(40 * M_PI / 180)), 1e-9);
}
END_TEST

static int parse(const char *text, struct taxonomy_kin *k)
{
    struct srv_response rs = { 0 };
    json_t *j = json_loads(text, 0, NULL);
    int err;

    ck_assert_ptr_nonnull(j);
    err = taxonomy__kin_parse(j, k, &rs);
    json_decref(j);
    return err;
}

START_TEST(test_kin_parse)
{
    struct taxonomy_kin k;

    ck_assert_int_eq(parse("{\"name\":\"fan\"}", &k), SRV_OK);
    ck_assert(!k.shaft_given && !k.bearing_given);
    ck_assert_int_eq(parse("{\"shaft_hz\":25,\"bearing\":{\"balls\":9,\"ball_mm\":7.94,"
                           "\"pitch_mm\":39.04,\"contact_deg\":0}}", &k), SRV_OK);
    ck_assert(k.shaft_given && k.bearing_given);
    ck_assert_str_eq(k.v[0], "25");
    ck_assert_str_eq(k.v[1], "9");
    ck_assert_str_eq(k.v[2], "7.94");
    ck_assert_str_eq(k.v[4], "0");
    /* null clears: given, no value */
    ck_assert_int_eq(parse("{\"shaft_hz\":null,\"bearing\":null}", &k), SRV_OK);
    ck_assert(k.shaft_given && k.bearing_given && !k.v[0] && !k.v[1]);
}
END_TEST

START_TEST(test_kin_refused)
{
    static const char *const bad[] = {
        "{\"shaft_hz\":0}", "{\"shaft_hz\":-3}", "{\"shaft_hz\":5000}", "{\"shaft_hz\":\"25\"}",
        "{\"bearing\":{\"balls\":2,\"ball_mm\":7,\"pitch_mm\":39,\"contact_deg\":0}}",
        "{\"bearing\":{\"balls\":9,\"ball_mm\":40,\"pitch_mm\":39,\"contact_deg\":0}}",
        "{\"bearing\":{\"balls\":9,\"ball_mm\":7,\"pitch_mm\":39,\"contact_deg\":75}}",
        "{\"bearing\":{\"balls\":9,\"ball_mm\":7,\"pitch_mm\":39}}",
        "{\"bearing\":{\"balls\":9.5,\"ball_mm\":7,\"pitch_mm\":39,\"contact_deg\":0}}",
        "{\"bearing\":[9,7,39,0]}",
    };
    struct taxonomy_kin k;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse(bad[i], &k) == SRV_EBADREQ, "accepted %s", bad[i]);
}
END_TEST

Suite *kinematics_suite(void);
Suite *kinematics_suite(void)
{
    Suite *s = suite_create("kinematics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_6205_tones);
    tcase_add_test(tc, test_contact_angle);
    tcase_add_test(tc, test_kin_parse);
    tcase_add_test(tc, test_kin_refused);
    suite_add_tcase(s, tc);
    return s;
}
