/* check_rules_expr.c - the rule expression language: what compiles, what
 * fails and where (position and what was expected), type checks, bounds,
 * evaluation with three-valued logic, and the features rules read. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/features/features.h"
#include "server/rules/rules_expr.h"

/* A snapshot with one channel "accel_x" whose features the tests set. */
static struct feat_channel g_ch;

static const struct feat_channel *lookup(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, g_ch.name) == 0 ? &g_ch : NULL;
}

static struct rules_env env_default(void)
{
    struct rules_env e = { "centrifugal_pump", "plant_a", "pump-01", "zscore", 0.9, 10000,
                           lookup, NULL };
    return e;
}

static void set_channel(double kurt, double rms, double band_frac_3k5k)
{
    size_t b;

    memset(&g_ch, 0, sizeof g_ch);
    snprintf(g_ch.name, sizeof g_ch.name, "accel_x");
    g_ch.kurtosis = kurt;
    g_ch.rms = rms;
    g_ch.peak = 3 * rms;
    g_ch.crest = 3;
    g_ch.bin_hz = 5000.0 / FEAT_BINS;     /* 10 kHz sampling */
    /* spread band_frac over the bins inside 3000..5000, the rest below */
    for (b = 0; b < FEAT_BINS; b++) {
        double lo = (double)b * g_ch.bin_hz;
        g_ch.spectrum[b] = lo >= 3000 ? (float)(band_frac_3k5k / 25.6) : 0;
    }
    g_ch.spectrum[0] = (float)(1 - band_frac_3k5k);
}

static int run(const char *src, const struct rules_env *e)
{
    struct rules_expr *x = NULL;
    struct rules_expr_error err;
    int r;

    ck_assert_msg(rules_expr_compile(src, &x, &err) == 0, "%s: %s", src, err.msg);
    r = rules_expr_eval(x, e);
    rules_expr_free(x);
    return r;
}

/* Compile must fail at pos with a message containing want. */
static void fails_at(const char *src, int pos, const char *want)
{
    struct rules_expr *x = NULL;
    struct rules_expr_error err;

    ck_assert_msg(rules_expr_compile(src, &x, &err) != 0, "compiled: %s", src);
    ck_assert_msg(err.pos == pos, "%s: pos %d, want %d (%s)", src, err.pos, pos, err.msg);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: '%s' lacks '%s'", src, err.msg, want);
    ck_assert_ptr_null(x);
}

START_TEST(test_example_rule)
{
    const char *src = "kurtosis(ch(\"accel_x\")) > 6 and "
                      "band_energy(ch(\"accel_x\"), 3000, 5000) > 0.4 => bearing_outer_race";
    struct rules_expr *x = NULL;
    struct rules_expr_error err;
    struct rules_env e = env_default();
    const char *const *chans;

    ck_assert_int_eq(rules_expr_compile(src, &x, &err), 0);
    ck_assert_str_eq(rules_expr_class(x), "bearing_outer_race");
    ck_assert_uint_eq(rules_expr_channels(x, &chans), 1);
    ck_assert_str_eq(chans[0], "accel_x");
    set_channel(7.5, 1, 0.6);
    ck_assert_int_eq(rules_expr_eval(x, &e), 1);
    set_channel(7.5, 1, 0.3);        /* band too weak */
    ck_assert_int_eq(rules_expr_eval(x, &e), 0);
    set_channel(4.0, 1, 0.6);        /* kurtosis too low */
    ck_assert_int_eq(rules_expr_eval(x, &e), 0);
    rules_expr_free(x);
}
END_TEST

START_TEST(test_precedence_and_arith)
{
    struct rules_env e = env_default();

    set_channel(3, 2, 0);
    ck_assert_int_eq(run("1 + 2 * 3 == 7 => a", &e), 1);
    ck_assert_int_eq(run("(1 + 2) * 3 == 9 => a", &e), 1);
    ck_assert_int_eq(run("10 - 4 - 3 == 3 => a", &e), 1);      /* left associative */
    ck_assert_int_eq(run("-2 * -3 == 6 => a", &e), 1);
    ck_assert_int_eq(run("true or false and false => a", &e), 1);  /* and binds tighter */
    ck_assert_int_eq(run("(true or false) and false => a", &e), 0);
    ck_assert_int_eq(run("not 1 > 2 => a", &e), 1);
    ck_assert_int_eq(run("rms(ch(\"accel_x\")) * 2 >= 4 => a", &e), 1);
    ck_assert_int_eq(run("abs(-3) == 3 and min(1, 2) == 1 and max(1, 2) == 2 => a", &e), 1);
    ck_assert_int_eq(run("1.5e3 == 1500 and .5 == 0.5 => a", &e), 1);
}
END_TEST

START_TEST(test_metadata)
{
    struct rules_env e = env_default();

    ck_assert_int_eq(run("equipment_type == \"centrifugal_pump\" => a", &e), 1);
    ck_assert_int_eq(run("site != \"plant_a\" => a", &e), 0);
    ck_assert_int_eq(run("device == \"pump-01\" and score > 0.8 => a", &e), 1);
    ck_assert_int_eq(run("sample_rate == 10000 and detector == \"zscore\" => a", &e), 1);
    e.site = NULL;      /* unknown site: the comparison is unknown, rule abstains */
    ck_assert_int_eq(run("site == \"plant_a\" => a", &e), 0);
    ck_assert_int_eq(run("not (site == \"plant_a\") => a", &e), 0);
}
END_TEST

START_TEST(test_missing_channel_abstains)
{
    struct rules_env e = env_default();

    set_channel(9, 1, 0.9);
    ck_assert_int_eq(run("kurtosis(ch(\"accel_y\")) > 6 => a", &e), 0);
    ck_assert_int_eq(run("not kurtosis(ch(\"accel_y\")) > 6 => a", &e), 0);
    /* three-valued: unknown or true is true; unknown and false is false */
    ck_assert_int_eq(run("kurtosis(ch(\"accel_y\")) > 6 or kurtosis(ch(\"accel_x\")) > 6 => a", &e), 1);
    ck_assert_int_eq(run("kurtosis(ch(\"accel_y\")) > 6 and 1 > 2 => a", &e), 0);
    ck_assert_int_eq(run("1 / 0 > 1 => a", &e), 0);   /* division by zero: unknown */
    e.channel = NULL;
    ck_assert_int_eq(run("rms(ch(\"accel_x\")) >= 0 => a", &e), 0);
}
END_TEST

START_TEST(test_error_positions)
{
    /*            0123456789012345 */
    fails_at("rms(ch(\"x\") => a", 12, "expected ')' after arguments");
    fails_at("rms(ch(\"x\") > 1) > 1 => a", 4, "expected a number, found a channel");
    fails_at("rms(ch(\"x\")) > => a", 15, "expected a number, a string, a name or '('");
    fails_at("rms(ch(\"x\")) > 1", 16, "expected '=>'");
    fails_at("rms(ch(\"x\")) > 1 =>", 19, "expected a class name");
    fails_at("rms(ch(\"x\")) > 1 => a b", 22, "expected end of rule");
    fails_at("foo(ch(\"x\")) > 1 => a", 0, "unknown function 'foo'");
    fails_at("speed > 1 => a", 0, "unknown name 'speed'");
    fails_at("", 0, "expected a condition");
    fails_at("rms(ch(\"x)) > 1 => a", 7, "unterminated string");
    fails_at("1 > 2 @ => a", 6, "expected '=>'");
    fails_at("band_energy(ch(\"x\"), 1) > 0 => a", 22, "expected ','");
    fails_at("rms(ch(\"x\"), 2) > 0 => a", 11, "expected ')' (rms takes 1 argument)");
}
END_TEST

START_TEST(test_type_errors)
{
    fails_at("rms(ch(\"x\")) => a", 0, "expected a condition, found a number");
    fails_at("site > 3 => a", 0, "expected a number, found a string");
    fails_at("site == 3 => a", 8, "expected a string, found a number");
    fails_at("rms(3) > 1 => a", 4, "expected a channel, found a number");
    fails_at("1 > 0 and 5 => a", 10, "expected a condition, found a number");
    fails_at("ch(site) == 1 => a", 2, "channel name in quotes");
    fails_at("rms(ch(\"x\")) + (1 > 0) > 1 => a", 15, "expected a number, found a condition");
}
END_TEST

START_TEST(test_bounds)
{
    char buf[RULES_EXPR_MAX_LEN + 64];
    struct rules_expr *x = NULL;
    struct rules_expr_error err;
    size_t i, n = 0;

    /* too long */
    memset(buf, ' ', RULES_EXPR_MAX_LEN + 1);
    buf[RULES_EXPR_MAX_LEN + 1] = '\0';
    ck_assert_int_ne(rules_expr_compile(buf, &x, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "longer than"));
    /* too deep: 40 nested parentheses */
    for (i = 0; i < 40; i++)
        buf[n++] = '(';
    buf[n++] = '1';
    for (i = 0; i < 40; i++)
        buf[n++] = ')';
    memcpy(buf + n, " > 0 => a", 10);
    ck_assert_int_ne(rules_expr_compile(buf, &x, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "nested too deeply"));
    /* too many nodes: 1+1+1+... within the length limit */
    n = 0;
    for (i = 0; i < 300; i++) {
        buf[n++] = '1';
        buf[n++] = '+';
    }
    memcpy(buf + n, "1 > 0 => a", 11);
    ck_assert_int_ne(rules_expr_compile(buf, &x, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "too large"));
    /* deep "not" chains are bounded too */
    n = 0;
    for (i = 0; i < 40; i++) {
        memcpy(buf + n, "not ", 4);
        n += 4;
    }
    memcpy(buf + n, "true => a", 10);
    ck_assert_int_ne(rules_expr_compile(buf, &x, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "nested too deeply"));
}
END_TEST

START_TEST(test_features_compute)
{
    /* 1.25 kHz sine at 10 kHz (8 samples a period, so the peak is sampled): RMS A/sqrt(2), crest sqrt(2),
     * kurtosis 1.5, dominant 1.25 kHz, all power near 1.25 kHz. */
    enum { N = 10000 };
    static float x[N];
    struct feat_channel f;
    size_t i;
    double a = 2.0;

    for (i = 0; i < N; i++)
        x[i] = (float)(a * sin(2 * M_PI * 1250.0 * (double)i / 10000.0));
    ck_assert_int_eq(features_compute(x, N, 10000, &f), 0);
    ck_assert_double_eq_tol(f.rms, a / sqrt(2), 1e-3);
    ck_assert_double_eq_tol(f.mean, 0, 1e-4);
    ck_assert_double_eq_tol(f.crest, sqrt(2), 1e-2);
    ck_assert_double_eq_tol(f.kurtosis, 1.5, 1e-2);
    ck_assert_double_eq_tol(f.dominant_hz, 1250, 1.0);
    ck_assert_double_eq_tol(features_band_energy(&f, 1150, 1350), 1.0, 0.02);
    ck_assert_double_eq_tol(features_band_energy(&f, 3000, 5000), 0.0, 0.01);
    ck_assert_double_eq_tol(features_band_energy(&f, 0, 5000), 1.0, 1e-4);
    ck_assert_double_eq(features_band_energy(&f, 5000, 3000), 0);
    /* an impulse train has high kurtosis */
    for (i = 0; i < N; i++)
        x[i] = i % 500 == 0 ? 10.0f : 0.0f;
    ck_assert_int_eq(features_compute(x, N, 10000, &f), 0);
    ck_assert(f.kurtosis > 100);
    ck_assert_double_eq_tol(f.peak, 10, 1e-6);
    ck_assert_int_ne(features_compute(x, 1, 10000, &f), 0);
    ck_assert_int_ne(features_compute(x, N, 0, &f), 0);
}
END_TEST

Suite *rules_expr_suite(void);
Suite *rules_expr_suite(void)
{
    Suite *s = suite_create("rules_expr");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_example_rule);
    tcase_add_test(tc, test_precedence_and_arith);
    tcase_add_test(tc, test_metadata);
    tcase_add_test(tc, test_missing_channel_abstains);
    tcase_add_test(tc, test_error_positions);
    tcase_add_test(tc, test_type_errors);
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_features_compute);
    suite_add_tcase(s, tc);
    return s;
}
