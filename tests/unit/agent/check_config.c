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
    char *argv[] = { "--device-id", "d", "--server", "http://s", "--merge", "--hold-off-s", "3",
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
    char *a1[] = { "--device-id", "d", "--server", "http://s", "--pre-s", "abc" };
    char *a2[] = { "--device-id", "d", "--server", "http://s", "--bogus", "1" };
    char *a3[] = { "--device-id", "d", "--server", "http://s", "--threshold", "high" };
    char *a4[] = { "--device-id", "d", "--server", "http://s", "--pre-s", "40", "--post-s", "30" };
    char *a5[] = { "--server", "http://s" };
    char *a6[] = { "--device-id", "bad/id", "--server", "http://s" };
    char *a7[] = { "--device-id", "d", "--server", "http://s", "--channels", "0" };
    char *a8[] = { "--device-id", "d", "--server", "http://s", "--source", "mqtt" };
    char *a9[] = { "--input", "x.csv" };
    char *a10[] = { "--device-id", "d", "--server", "http://s", "--channels", "2.5" };
    char *a11[] = { "--device-id", "d", "--server", "http://s", "--pre-s" };
    char *a12[] = { "--device-id", "d", "--server", "http://s", "--merge", "maybe" };
    char *a13[] = { "--device-id", "d", "--server", "http://s", "--bogus" };
    char *a14[] = { "--device-id", "d", "--server", "http://s", "--threshold" };
    char *a15[] = { "--input", "x.csv", "--scores", "o.csv", "--threshold", "0.04" };

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
    /* Below the default rearm: said at parse time (--check), not only as a
     * detector "out of range" once the source is open. */
    expect_error(AGENT_CMD_REPLAY, 6, a15, "rearm (0.05) must not be above threshold (0.04)");
}
END_TEST

/* What an engineer mistypes on a command line: a flag whose value was left
 * out before the next flag, a word after a switch, a lone "--", a number in
 * octal or hex, a detector value out of its range: each one line naming the
 * flag, never a value taken from the next flag or a silently other number. */
START_TEST(test_mistyped_command_lines)
{
    static struct agent_config c;
    char err[256] = "";
    char *a1[] = { "--device-id", "--server", "http://s" };
    char *a2[] = { "--device-id", "d", "--server", "http://s", "--ring-s", "--check" };
    char *a3[] = { "--device-id", "d", "--server", "http://s", "--config", "--check" };
    char *a4[] = { "--device-id", "d", "--server", "http://s", "--merge", "maybe" };
    char *a5[] = { "--device-id", "d", "--server", "http://s", "--", "--check" };
    char *a6[] = { "--device-id", "d", "--server", "http://s", "--sim-seed", "0x10" };
    char *a7[] = { "--device-id", "d", "--server", "http://s", "--threshold", "2" };
    char *a8[] = { "--device-id", "d", "--server", "http://s", "--window", "3" };
    char *a9[] = { "--device-id", "d", "--server", "http://s", "--profile", "fast" };
    char *a10[] = { "--device-id", "d", "--server", "http://s", "--sim-seed", "010",
                    "--upload-max-bps", "0100000", "--device-id=--d" };

    expect_error(AGENT_CMD_RUN, 3, a1, "--device-id: option device-id needs a value");
    expect_error(AGENT_CMD_RUN, 6, a2, "--ring-s: option ring-s needs a value");
    expect_error(AGENT_CMD_RUN, 6, a3, "--config: option config needs a value");
    expect_error(AGENT_CMD_RUN, 6, a4, "unexpected argument 'maybe' after --merge");
    expect_error(AGENT_CMD_RUN, 6, a5, "unexpected argument '--'");
    expect_error(AGENT_CMD_RUN, 6, a6, "sim-seed: bad value '0x10' (want a whole number");
    expect_error(AGENT_CMD_RUN, 6, a7, "threshold: bad value '2' (want a number from 1e-06 to 1)");
    expect_error(AGENT_CMD_RUN, 6, a8, "(want a whole number from 4 to 65536, or auto)");
    expect_error(AGENT_CMD_RUN, 6, a9, "(want auto, process or vibration)");
    /* Options the source would ignore are refused, not run past: an input
     * file with the default source (the simulator would run instead of the
     * file), channels for a CSV or the simulator. */
    {
        char *b1[] = { "--device-id", "d", "--server", "http://s", "--input", "plant.csv" };
        char *b2[] = { "--device-id", "d", "--server", "http://s", "--source", "csv",
                       "--channels", "4" };
        char *b3[] = { "--input", "x.csv", "--scores", "o.csv", "--channels", "3" };
        char *b4[] = { "--device-id", "d", "--server", "http://s", "--source", "f32le",
                       "--channels", "4", "--rate", "100", "--input", "x.f32" };

        expect_error(AGENT_CMD_RUN, 6, b1, "--input is read by --source csv, i16le or f32le");
        expect_error(AGENT_CMD_RUN, 8, b2, "--channels is for binary input");
        expect_error(AGENT_CMD_REPLAY, 6, b3, "a CSV names its channels in its header");
        {
            char *b5[] = { "--device-id", "d", "--server", "http://s", "--source", "csv",
                           "--duration", "5" };

            expect_error(AGENT_CMD_RUN, 8, b5, "--duration is the simulator's");
        }
        {
            char *b7[] = { "--device-id", "d", "--server", "http://s", "--heartbeat-s", "1.5" };

            expect_error(AGENT_CMD_RUN, 6, b7, "heartbeat-s 1.5: want whole seconds");
        }
        {
            char *b6[] = { "--input", "x.csv", "--scores", "o.csv", "--model", "m.blob" };

            expect_error(AGENT_CMD_REPLAY, 6, b6, "--model needs --model-key");
        }
        ck_assert_int_eq(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 12, b4), 0);
    }
    /* A pin or a CA file with a plain-HTTP server checks nothing. */
    {
        char *p1[] = { "--device-id", "d", "--server", "http://s",
                       "--pin-sha256", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" };
        char *p2[] = { "--device-id", "d", "--server", "http://s", "--ca-file", "ca.pem" };
        char *p3[] = { "--device-id", "d", "--server", "HTTPS://s", "--ca-file", "ca.pem",
                       "--pin-sha256", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" };

        expect_error(AGENT_CMD_RUN, 6, p1, "--pin-sha256 is for an https:// server");
        expect_error(AGENT_CMD_RUN, 6, p2, "--ca-file is for an https:// server");
        ck_assert_msg(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 8, p3) == 0, "%s", err);
    }
    /* A server URL the uploader could never use is refused when parsed (and
     * so by --check), not retried as a registration for ever. */
    {
        static const char *bad[] = { "pump-server", "\"http://h:8080\"", "ftp://h",
                                     "http://h:99999", "http://u:p@h", "http://h :1" };
        static const char *good[] = { "http://h", "https://h:8443/", "http://[::1]:8080" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char *a[] = { "--device-id", "d", "--server", (char *)bad[i] };

            expect_error(AGENT_CMD_RUN, 4, a, "want http://HOST[:PORT] or https://HOST[:PORT]");
        }
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            char *a[] = { "--device-id", "d", "--server", (char *)good[i] };

            ck_assert_msg(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 4, a) == 0, "%s: %s",
                          good[i], err);
        }
    }
    /* Decimal, leading zeros and all; a value may still start with "--"
     * when it is joined to its flag by '='. */
    ck_assert_int_eq(parse(&c, AGENT_CMD_RUN, err, sizeof(err), 9, a10), 0);
    ck_assert_uint_eq(c.sim_seed, 10);
    ck_assert_uint_eq(c.upload_max_bps, 100000);
    ck_assert_str_eq(c.device_id, "--d");
}
END_TEST

START_TEST(test_bad_file)
{
    char *argv[] = { "--config", NULL, "--device-id", "d", "--server", "http://s" };

    write_cfg("pre-s = 1\nthis line has no equals\n");
    argv[1] = cfg_path;
    expect_error(AGENT_CMD_RUN, 6, argv, ":2: expected `key = value`");
    unlink(cfg_path);
    write_cfg("ring-s = -4\n");
    expect_error(AGENT_CMD_RUN, 6, argv, ":1: option ring-s: bad value '-4'");
    unlink(cfg_path);
    write_cfg("pre-s = 1\n = 5\n");
    expect_error(AGENT_CMD_RUN, 6, argv, ":2: expected `key = value`, found no key");
    unlink(cfg_path);
    write_cfg("threshold = 5\n");
    expect_error(AGENT_CMD_RUN, 6, argv, ":1: detector option threshold: bad value '5' (want");
    unlink(cfg_path);
    argv[1] = "/nonexistent/precursor.conf";
    expect_error(AGENT_CMD_RUN, 6, argv, "No such file");
    argv[1] = "/";
    expect_error(AGENT_CMD_RUN, 6, argv, "config /: Is a directory");
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

/* The options one command's --help lists, each as "--name". */
static size_t help_options(enum agent_cmd cmd, char names[][64], size_t max)
{
    char buf[16384], *line, *save = NULL;
    FILE *f = tmpfile();
    size_t n, count = 0;

    ck_assert_ptr_nonnull(f);
    agent_config_help(f, cmd);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "detector options", 16) == 0)
            break;
        if (strncmp(line, "  --", 4) != 0 || count == max)
            continue;
        ck_assert_int_eq(sscanf(line, "  %63[-a-z0-9]", names[count]), 1);
        count++;
    }
    return count;
}

static int listed(char names[][64], size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* Each command takes every option its --help lists and refuses, naming the
 * option and the command it belongs to, every one only the other's lists:
 * `replay --server URL` must not look as if it uploaded. */
START_TEST(test_other_commands_options_refused)
{
    static char run[64][64], rpl[64][64];
    static struct agent_config c;
    size_t nrun = help_options(AGENT_CMD_RUN, run, 64);
    size_t nrpl = help_options(AGENT_CMD_REPLAY, rpl, 64);
    size_t refused = 0, shared = 0;
    char err[256];

    ck_assert_uint_ge(nrun, 30);
    ck_assert_uint_ge(nrpl, 20);
    for (int side = 0; side < 2; side++) {
        enum agent_cmd cmd = side ? AGENT_CMD_REPLAY : AGENT_CMD_RUN;
        char (*own)[64] = side ? rpl : run, (*other)[64] = side ? run : rpl;
        size_t nown = side ? nrpl : nrun, nother = side ? nrun : nrpl;
        const char *other_name = side ? "`precursor-agent run`" : "`precursor-agent replay`";

        for (size_t i = 0; i < nother; i++) {
            /* What the command needs, then the other's option. */
            char *run_argv[] = { "--device-id", "d", "--server", "http://s", other[i], "1" };
            char *rpl_argv[] = { "--input", "in.csv", "--scores", "out.csv", other[i], "1" };
            char want[4096 + 64];   /* an option name is at most a help line */
            int rc;

            if (listed(own, nown, other[i]))
                continue;
            err[0] = '\0';
            rc = parse(&c, cmd, err, sizeof err, 6, side ? rpl_argv : run_argv);
            snprintf(want, sizeof want, "%s is an option of %s", other[i], other_name);
            ck_assert_msg(rc == AGENT_CONFIG_EUSAGE && strstr(err, want) != NULL,
                          "%s %s: rc %d, '%s'", side ? "replay" : "run", other[i], rc, err);
            ck_assert_ptr_null(strchr(err, '\n'));
            refused++;
        }
        for (size_t i = 0; i < nown; i++) {
            char *argv[] = { own[i], "1" };

            if (!listed(other, nother, own[i]))
                continue;
            /* Shared: whatever the value makes of it, never refused as foreign. */
            err[0] = '\0';
            parse(&c, cmd, err, sizeof err, 2, argv);
            ck_assert_msg(strstr(err, "is an option of") == NULL && strstr(err, "unknown") == NULL,
                          "%s %s: '%s'", side ? "replay" : "run", own[i], err);
            shared++;
        }
    }
    ck_assert_uint_ge(refused, 20);     /* run's upload, sim and action options; replay's */
    ck_assert_uint_ge(shared, 2 * 15);
    /* Named in the task as what users mix up, in either spelling. */
    {
        char *a1[] = { "--input", "x.csv", "--scores", "o.csv", "--server=http://srv:8080" };
        char *a2[] = { "--input", "x.csv", "--scores", "o.csv", "--spool-cap-mb", "10" };
        char *a3[] = { "--device-id", "d", "--server", "http://s", "--scores", "o.csv" };
        char *a4[] = { "--device-id", "d", "--server", "http://s", "--trigger-score" };
        char *a5[] = { "--input", "x.csv", "--scores", "o.csv", "--source", "csv" };

        expect_error(AGENT_CMD_REPLAY, 5, a1, "--server is an option of `precursor-agent run`, not of replay");
        expect_error(AGENT_CMD_REPLAY, 6, a2, "--spool-cap-mb is an option of `precursor-agent run`");
        expect_error(AGENT_CMD_RUN, 6, a3, "--scores is an option of `precursor-agent replay`, not of run");
        expect_error(AGENT_CMD_RUN, 5, a4, "--trigger-score is an option of `precursor-agent replay`");
        expect_error(AGENT_CMD_REPLAY, 6, a5, "replay's input format is --format");
    }
}
END_TEST

/* One config file for a device's run and for replaying its recordings: the
 * other command's keys are skipped (counted, warned on stderr), the shared
 * ones apply, and a bad value is still an error. */
START_TEST(test_shared_config_file)
{
    static struct agent_config c;
    char err[256] = "";
    char *rpl[] = { "--config", NULL, "--input", "x.csv", "--scores", "o.csv" };
    char *run[] = { "--config", NULL };

    write_cfg("device-id = gw3\n"
              "server = http://a:1\n"
              "source = sim\n"
              "spool-cap-mb = 10\n"
              "on-trigger = logger x\n"
              "pre-s = 1\n"
              "threshold = 0.8\n"
              "format = csv\n"
              "trigger-score = true\n");
    rpl[1] = run[1] = cfg_path;
    ck_assert_int_eq(parse(&c, AGENT_CMD_REPLAY, err, sizeof err, 6, rpl), 0);
    ck_assert_uint_eq(c.config_keys_ignored, 4);
    ck_assert_str_eq(c.server, "");
    ck_assert_str_eq(c.source, "csv");              /* not the simulator the file names for run */
    ck_assert_str_eq(c.on_trigger, "");
    ck_assert_str_eq(c.device_id, "gw3");
    ck_assert_double_eq(c.pre_s, 1);
    ck_assert_float_eq_tol(c.detect.threshold, 0.8f, 1e-6f);
    ck_assert_int_eq(c.trigger_score, 1);

    ck_assert_int_eq(parse(&c, AGENT_CMD_RUN, err, sizeof err, 2, run), 0);
    ck_assert_uint_eq(c.config_keys_ignored, 2);
    ck_assert_str_eq(c.source, "sim");
    ck_assert_str_eq(c.server, "http://a:1");
    ck_assert_int_eq(c.trigger_score, 0);
    unlink(cfg_path);

    write_cfg("server = http://a:1\npre-s = soon\n");
    rpl[1] = cfg_path;
    expect_error(AGENT_CMD_REPLAY, 6, rpl, ":2: option pre-s: bad value 'soon'");
    unlink(cfg_path);
}
END_TEST

/* --check parses like a start would and asks for nothing more; it is a
 * flag, never a config line (a file must not stop every start). */
START_TEST(test_check_flag)
{
    static struct agent_config c;
    char err[256] = "";
    char *ok[] = { "--check", "--input", "x.csv", "--scores", "o.csv" };
    char *bad[] = { "--input", "x.csv", "--check", "--server", "http://s" };
    char *file[] = { "--config", NULL, "--input", "x.csv", "--scores", "o.csv" };

    ck_assert_int_eq(parse(&c, AGENT_CMD_REPLAY, err, sizeof err, 5, ok), 0);
    ck_assert_int_eq(c.check_only, 1);
    ck_assert_int_eq(parse(&c, AGENT_CMD_REPLAY, err, sizeof err, 2, ok + 1), AGENT_CONFIG_EUSAGE);
    ck_assert_int_eq(c.check_only, 0);
    expect_error(AGENT_CMD_REPLAY, 5, bad, "--server is an option of");
    write_cfg("check = true\n");
    file[1] = cfg_path;
    expect_error(AGENT_CMD_REPLAY, 6, file, ":1: unknown option check");
    unlink(cfg_path);
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
    tcase_add_test(tc, test_mistyped_command_lines);
    tcase_add_test(tc, test_bad_file);
    tcase_add_test(tc, test_replay_and_help);
    tcase_add_test(tc, test_detector_help_is_what_is_accepted);
    tcase_add_test(tc, test_other_commands_options_refused);
    tcase_add_test(tc, test_shared_config_file);
    tcase_add_test(tc, test_check_flag);
    suite_add_tcase(s, tc);
    return s;
}
