/* check_config.c - agent options: defaults, config file, flag precedence,
 * detector keys forwarded, clear errors for bad values, complete --help. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config/config.h"

/* Every detector option the help prints, with the default it prints, is
 * one the parser takes, and the help text lines up under one column. */
START_TEST(test_detector_help_is_what_is_accepted)
{
    static struct agent_config c;
    char buf[16384], err[256], *line, *save = NULL;
    FILE *f = tmpfile();
    int in_detectors = 0, rows = 0;
    size_t n;

    agent_config_help(f, AGENT_CMD_RUN);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    agent_config_defaults(&c, AGENT_CMD_RUN);
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char key[64], value[64];

        if (strncmp(line, "detector options", 16) == 0) {
            in_detectors = 1;
            continue;
        }
        if (!in_detectors)
            continue;
        ck_assert_msg(sscanf(line, "  %63[a-z_]=%63s", key, value) == 2, "row '%s'", line);
        ck_assert_msg(strlen(line) > 21 && line[20] == ' ' && line[21] != ' ',
                      "row '%s' out of column", line);
        ck_assert_msg(agent_config_set(&c, key, value, err, sizeof err) == 0,
                      "help prints %s=%s, the parser says %s", key, value, err);
        rows++;
    }
    ck_assert_int_ge(rows, 13);
}
END_TEST

Suite *config_suite(void);

static char cfg_path[256];

static void write_cfg(const char *text)
{
    int fd;
    FILE *f;

    snprintf(cfg_path, sizeof(cfg_path), "%s/precursor-cfg-XXXXXX", P_tmpdir);
    fd = mkstemp(cfg_path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int parse(struct agent_config *c, enum agent_cmd cmd, char *err, size_t errlen,
                 int argc, char **argv)
{
    agent_config_defaults(c, cmd);
    return agent_config_parse(c, cmd, argc, argv, err, errlen);
}

START_TEST(test_defaults)
{
    static struct agent_config c;
    char err[256] = "";
    char *argv[] = { "--device-id", "pump-7", "--server", "http://srv:8080" };

    ck_assert_int_eq(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 4, argv), 0);
    ck_assert_str_eq(c.device_id, "pump-7");
    ck_assert_str_eq(c.key_dir, "./var/agent/pump-7");
    ck_assert_str_eq(c.spool_dir, "./var/agent/pump-7/spool");
    ck_assert_str_eq(c.source, "sim");
    ck_assert_str_eq(c.sim_equipment, "bearing");
    ck_assert_double_eq(c.ring_s, 60);
    ck_assert_double_eq(c.pre_s, 5);
    ck_assert_double_eq(c.sim_speed, 1);
    ck_assert_int_eq(c.merge, 0);
    ck_assert_float_gt(c.detect.threshold, 0);      /* detector's own defaults */
}
END_TEST

START_TEST(test_file_then_flags)
{
    static struct agent_config c;
    char err[256] = "";

    write_cfg("# gateway 3\n"
              "device-id = gw3   # trailing comment\n"
              "server=http://a:1\n"
              "pre-s = 1\n"
              "post-s = 2\n"
              "merge = true\n"
              "threshold = 0.8\n"
              "\n"
              "sim-seed = 99\n");
    char *argv[] = { "--pre-s", "2.5", "--config", cfg_path, "--threshold=0.95",
                     "--spool", "sp", "--sim-equipment", "motor" };
    ck_assert_int_eq(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 9, argv), 0);
    ck_assert_str_eq(c.device_id, "gw3");
    ck_assert_str_eq(c.server, "http://a:1");
    ck_assert_double_eq(c.pre_s, 2.5);              /* flag beats file, even before --config */
    ck_assert_double_eq(c.post_s, 2);               /* file beats default */
    ck_assert_int_eq(c.merge, 1);
    ck_assert_float_eq_tol(c.detect.threshold, 0.95f, 1e-6f);
    ck_assert_uint_eq(c.sim_seed, 99);
    ck_assert_str_eq(c.spool_dir, "sp");
    ck_assert_str_eq(c.sim_equipment, "motor");
    unlink(cfg_path);
}
END_TEST

START_TEST(test_bare_bool_and_detector_dash)
{
    static struct agent_config c;
    char err[256] = "";
    char *argv[] = { "--device-id", "d", "--server", "s", "--merge", "--hold-off-s", "3",
                     "--on-trigger", "logger alarm" };

    ck_assert_int_eq(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 9, argv), 0);
    ck_assert_int_eq(c.merge, 1);
    ck_assert_float_eq(c.detect.hold_off_s, 3.0f);
    ck_assert_str_eq(c.on_trigger, "logger alarm");
}
END_TEST

static void expect_error(enum agent_cmd cmd, int argc, char **argv, const char *needle)
{
    static struct agent_config c;
    char err[256] = "";

    ck_assert_int_eq(parse(&c, cmd, err, sizeof(err), argc, argv), AGENT_CONFIG_EUSAGE);
    ck_assert_msg(strstr(err, needle) != NULL, "error '%s' lacks '%s'", err, needle);
}

static void expect_error_not(enum agent_cmd cmd, int argc, char **argv, const char *needle)
{
    static struct agent_config c;
    char err[256] = "";

    ck_assert_int_eq(parse(&c, cmd, err, sizeof(err), argc, argv), AGENT_CONFIG_EUSAGE);
    ck_assert_msg(strstr(err, needle) == NULL, "error '%s' has '%s'", err, needle);
}

START_TEST(test_bad_values)
{
    char *a1[] = { "--device-id", "d", "--server", "s", "--pre-s", "abc" };
    char *a2[] = { "--device-id", "d", "--server", "s", "--bogus", "1" };
    char *a3[] = { "--device-id", "d", "--server", "s", "--threshold", "high" };
    char *a4[] = { "--device-id", "d", "--server", "s", "--pre-s", "40", "--post-s", "30" };
    char *a5[] = { "--server", "s" };
    char *a6[] = { "--device-id", "bad/id", "--server", "s" };
    char *a7[] = { "--device-id", "d", "--server", "s", "--channels", "0" };
    char *a8[] = { "--device-id", "d", "--server", "s", "--source", "mqtt" };
    char *a9[] = { "--input", "x.csv" };
    char *a10[] = { "--device-id", "d", "--server", "s", "--channels", "2.5" };
    char *a11[] = { "--device-id", "d", "--server", "s", "--pre-s" };
    char *a12[] = { "--device-id", "d", "--server", "s", "--merge", "maybe" };
    char *a13[] = { "--device-id", "d", "--server", "s", "--bogus" };
    char *a14[] = { "--device-id", "d", "--server", "s", "--threshold" };

    expect_error(AGENT_CMD_RUN, 6, a1, "pre-s: bad value 'abc'");
    expect_error(AGENT_CMD_RUN, 6, a2, "unknown option bogus");
    expect_error(AGENT_CMD_RUN, 6, a3, "threshold");
    expect_error(AGENT_CMD_RUN, 8, a4, "must fit in ring-s");
    expect_error(AGENT_CMD_RUN, 2, a5, "--device-id is required");
    expect_error(AGENT_CMD_RUN, 4, a6, "only A-Z");
    expect_error(AGENT_CMD_RUN, 6, a7, "channels");
    expect_error(AGENT_CMD_RUN, 6, a8, "unknown source 'mqtt'");
    expect_error(AGENT_CMD_REPLAY, 2, a9, "--scores");
    expect_error(AGENT_CMD_RUN, 6, a10, "want an integer");
    expect_error(AGENT_CMD_RUN, 5, a11, "needs a value");
    expect_error(AGENT_CMD_RUN, 6, a12, "unexpected argument 'maybe'");
    /* Last on the line: an unknown option is called unknown, a known one
     * (a detector's too) is said to need its value. */
    expect_error(AGENT_CMD_RUN, 5, a13, "unknown option bogus");
    expect_error_not(AGENT_CMD_RUN, 5, a13, "needs a value");
    expect_error(AGENT_CMD_RUN, 5, a14, "option threshold needs a value");
}
END_TEST

START_TEST(test_bad_file)
{
    char *argv[] = { "--config", NULL, "--device-id", "d", "--server", "s" };

    write_cfg("pre-s = 1\nthis line has no equals\n");
    argv[1] = cfg_path;
    expect_error(AGENT_CMD_RUN, 6, argv, ":2: expected `key = value`");
    unlink(cfg_path);
    write_cfg("ring-s = -4\n");
    expect_error(AGENT_CMD_RUN, 6, argv, ":1: option ring-s: bad value '-4'");
    unlink(cfg_path);
    argv[1] = "/nonexistent/precursor.conf";
    expect_error(AGENT_CMD_RUN, 6, argv, "No such file");
}
END_TEST

START_TEST(test_replay_and_help)
{
    static struct agent_config c;
    char err[256] = "", buf[16384];
    char *argv[] = { "--input", "nab.csv", "--scores", "out.csv" };
    char *help[] = { "--pre-s", "1", "--help" };
    FILE *f = tmpfile();
    size_t n;

    ck_assert_int_eq(parse(&c, AGENT_CMD_REPLAY, err, sizeof(err), 4, argv), 0);
    ck_assert_str_eq(c.source, "csv");
    ck_assert_str_eq(c.spool_dir, "");             /* no spool unless asked */
    ck_assert_int_eq(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 3, help), AGENT_CONFIG_HELP);

    agent_config_help(f, AGENT_CMD_RUN);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    static const char *must[] = { "--device-id", "--server", "--key-dir", "--spool ",
        "--enroll-secret-file", "--source", "--input", "--channels", "--rate",
        "--sim-equipment", "--sim-seed", "--sim-fault-every", "--sim-speed", "--sim-fault-log",
        "--duration", "--ring-s", "--pre-s", "--post-s", "--merge", "--on-trigger",
        "--alarm-fifo", "--alarm-socket", "--heartbeat-s", "--config", "threshold",
        "--manipulated",
        "[default 60]", "[default sim]",
        /* text options say what they take */
        "--config FILE ", "--server URL ", "--key-dir DIR ", "--enroll-secret-file FILE " };
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        ck_assert_msg(strstr(buf, must[i]) != NULL, "--help lacks %s", must[i]);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_file_then_flags);
    tcase_add_test(tc, test_bare_bool_and_detector_dash);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_bad_file);
    tcase_add_test(tc, test_replay_and_help);
    tcase_add_test(tc, test_detector_help_is_what_is_accepted);
    suite_add_tcase(s, tc);
    return s;
}
