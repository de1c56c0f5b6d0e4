/* check_action.c - the agent's local action (agent/action/), through the
 * real pipeline: every trigger starts the --on-trigger command with the event
 * in PRECURSOR_* variables, and sends one alarm line, a JSON object, to the
 * FIFO or the UNIX datagram socket.  A FIFO without a reader, or one whose
 * reader stopped reading, costs counted alarm drops and never holds up the
 * sample path.  Channel names come from the input (a CSV header): the alarm
 * line escapes them. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/action/action.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"
#include "testsynth.h"

Suite *action_suite(void);

#define CH TESTSYNTH_CH
#define T0 TESTSYNTH_T0
#define TOTAL 12000
#define FIRST_SPIKE 2000
#define SPIKE_EVERY 500
#define SPIKES ((TOTAL - FIRST_SPIKE) / SPIKE_EVERY)

static float data[TOTAL * CH];
static char dir[512];
static long pace_ms;            /* sleep per block: real-time-like arrival */
static const char *vib_name;    /* the spiking channel's name */

/* A source over data[] in blocks of 250 frames, paced by pace_ms. */
static struct source *synth_open(void)
{
    struct source *s = testsynth_open(data, TOTAL, 250, &pace_ms);

    snprintf(s->chan[1].name, sizeof(s->chan[1].name), "%s", vib_name);
    return s;
}

/* Low noise with a short spike on "vib" every SPIKE_EVERY frames. */
static void fill_data(void)
{
    testsynth_noise(data, TOTAL * CH, 4242);
    for (size_t f = FIRST_SPIKE; f < TOTAL; f += SPIKE_EVERY)
        data[f * CH + 1] += 20.0f;
}

static int is_spike(unsigned long long f)
{
    return f >= FIRST_SPIKE && f < TOTAL && (f - FIRST_SPIKE) % SPIKE_EVERY == 0;
}

static void setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/action-test-XXXXXX", t && *t ? t : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    fill_data();
    pace_ms = 0;
    vib_name = "vib";
}

static void teardown(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "check_action: could not remove %s\n", dir);
}

static void base_config(struct pipeline_config *pc)
{
    memset(pc, 0, sizeof(*pc));
    detect_config_defaults(&pc->detect);
    /* Every spike its own trigger: short hold-off, no hourly cap. */
    pc->detect.warmup_s = 0.5f;
    pc->detect.hold_off_s = 0.1f;
    pc->detect.max_per_hour = 0;
    pc->device_id = "act-1";
    pc->ring_s = 2;
    pc->pre_s = 0.1;
    pc->post_s = 0.1;
    pc->max_window_s = 1;
    pc->zstd_level = 3;
}

/* Runs the pipeline to the end of data[]; returns its stats. */
static struct pipeline_stats run(struct pipeline_config *pc)
{
    struct pipeline *p = NULL;
    struct pipeline_stats st;
    struct source *src = synth_open();
    char err[256];

    ck_assert_msg(pipeline_init(pc, src, &p, err, sizeof(err)) == 0, "init: %s", err);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_get_stats(p, &st);
    pipeline_free(p);           /* waits for the actions still running */
    src->close(src);
    ck_assert_uint_eq(st.frames, TOTAL);
    ck_assert_uint_ge(st.triggers, 1);
    return st;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_command_gets_environment)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    char out[600], cmd[1024], line[512];
    FILE *f;
    uint64_t lines = 0;

    snprintf(out, sizeof(out), "%s/actions", dir);
    /* One line per start; >> so that overlapping actions each keep theirs. */
    snprintf(cmd, sizeof(cmd),
             "echo \"$PRECURSOR_DEVICE_ID|$PRECURSOR_EVENT_TIME_US|$PRECURSOR_SCORE|"
             "$PRECURSOR_CHANNEL|$PRECURSOR_DETECTOR|$PRECURSOR_FRAME|${PRECURSOR_STALE-unset}\" >> '%s'",
             out);
    /* An inherited PRECURSOR_* variable must not reach the command. */
    setenv("PRECURSOR_STALE", "leaked", 1);
    base_config(&pc);
    pc.on_trigger = cmd;
    st = run(&pc);
    unsetenv("PRECURSOR_STALE");
    ck_assert_uint_eq(st.action_errors, 0);
    ck_assert_uint_eq(st.lat_count, st.triggers);

    f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        char dev[64], chan[64], det[64], stale[64];
        long long t_us;
        double score;
        unsigned long long frame;

        ck_assert_msg(sscanf(line, "%63[^|]|%lld|%lf|%63[^|]|%63[^|]|%llu|%63[^\n]", dev, &t_us,
                             &score, chan, det, &frame, stale) == 7,
                      "action line '%s'", line);
        ck_assert_str_eq(dev, "act-1");
        ck_assert_str_eq(chan, "vib");
        ck_assert_msg(!strcmp(det, "level") || !strcmp(det, "feature"), "detector '%s'", det);
        ck_assert_msg(score >= pc.detect.threshold && score <= 1.0, "score %g", score);
        ck_assert_msg(is_spike(frame), "action for frame %llu, not a spike", frame);
        ck_assert_int_eq(t_us, T0 + (long long)frame * 1000);
        ck_assert_str_eq(stale, "unset");
        lines++;
    }
    fclose(f);
    ck_assert_uint_eq(lines, st.triggers);
    ck_assert_uint_le(st.triggers, SPIKES);
}
END_TEST

/* One alarm line (without its '\n') must parse as a JSON object with the
 * device, the spiking channel by its name, a detector, time and score. */
static void check_line(const char *line, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(line, len, 0, &jerr);

    ck_assert_msg(j != NULL && json_is_object(j), "alarm line '%.*s' is not a JSON object: %s",
                  (int)len, line, jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(j, "device_id")), "act-1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "channel")), vib_name);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "detector")));
    ck_assert(json_is_integer(json_object_get(j, "time_us")));
    ck_assert(json_is_number(json_object_get(j, "score")));
    ck_assert_uint_eq(json_object_size(j), 5);
    json_decref(j);
}

/* Counts '\n'-terminated alarm lines; bad lines fail. */
static uint64_t count_lines(const char *buf, size_t len)
{
    uint64_t n = 0;
    const char *p = buf, *end = buf + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        ck_assert_msg(nl != NULL, "alarm line without its newline");
        check_line(p, (size_t)(nl - p));
        n++;
        p = nl + 1;
    }
    return n;
}

/* Runs with a FIFO that has a reader: one good line per trigger, no drops. */
static void run_with_fifo_reader(void)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    char fifo[600];
    static char buf[65536];
    size_t len = 0;
    ssize_t r;
    int fd;

    snprintf(fifo, sizeof(fifo), "%s/alarm", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    fd = open(fifo, O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge(fd, 0);
    base_config(&pc);
    pc.alarm_fifo = fifo;
    st = run(&pc);
    while (len < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - len)) > 0)
        len += (size_t)r;
    close(fd);
    ck_assert_uint_eq(st.alarm_drops, 0);
    ck_assert_uint_eq(count_lines(buf, len), st.triggers);
}

START_TEST(test_fifo_one_line_per_trigger)
{
    run_with_fifo_reader();
}
END_TEST

/* A channel named with quotes and backslashes (a CSV header may say
 * anything): the line stays one valid JSON object carrying the name. */
START_TEST(test_fifo_line_escapes_channel_name)
{
    vib_name = "vib \"x\" \\y\\";
    run_with_fifo_reader();
}
END_TEST

START_TEST(test_alarm_line_escaping)
{
    const char *chan = "a\"b\\c\n\t\x01\x1f end";
    const char *want = "\"channel\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f end\"";
    struct action_event ev = { 1700000000123456LL, 0.75f, chan, "level", 42 };
    char line[1024], name[65];
    json_error_t jerr;
    json_t *j;
    int n = action_alarm_line(line, sizeof(line), "dev-1", &ev);

    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(line[n - 1], '\n');
    ck_assert_ptr_eq(memchr(line, '\n', (size_t)n), line + n - 1);  /* one line */
    ck_assert_ptr_nonnull(memmem(line, (size_t)n, want, strlen(want)));
    j = json_loadb(line, (size_t)n - 1, 0, &jerr);
    ck_assert_msg(j != NULL, "'%.*s': %s", n, line, jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(j, "channel")), chan);
    ck_assert_str_eq(json_string_value(json_object_get(j, "device_id")), "dev-1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "detector")), "level");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "time_us")), 1700000000123456LL);
    ck_assert_double_eq_tol(json_number_value(json_object_get(j, "score")), 0.75, 1e-9);
    json_decref(j);

    /* The longest name of control characters still fits the agent's line. */
    memset(name, 0x02, 64);
    name[64] = '\0';
    ev.channel = name;
    n = action_alarm_line(line, sizeof(line), "dev-1", &ev);
    ck_assert_int_gt(n, 64 * 6);
    /* Too small a buffer is an error, never a cut line. */
    ck_assert_int_eq(action_alarm_line(line, 40, "dev-1", &ev), -1);
}
END_TEST

struct dgram {
    int fd;
    atomic_int stop;
    uint64_t lines;
    int bad;
};

/* Each datagram must be exactly one alarm line. */
static void *dgram_reader(void *arg)
{
    struct dgram *d = arg;
    char buf[1024];

    for (;;) {
        ssize_t r = recv(d->fd, buf, sizeof(buf), 0);

        if (r > 0) {
            const char *nl = memchr(buf, '\n', (size_t)r);
            if (nl == NULL || nl != buf + r - 1 || buf[0] != '{' ||
                memmem(buf, (size_t)r, "\"device_id\":\"act-1\"", 19) == NULL)
                d->bad++;
            d->lines++;
            continue;
        }
        if (atomic_load(&d->stop))
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

START_TEST(test_socket_one_datagram_per_trigger)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    struct sockaddr_un sa;
    struct dgram rd = { 0 };
    pthread_t th;
    char path[600];
    uint64_t lines;
    int fd;

    /* sun_path holds 108 bytes: a short name in the test folder. */
    snprintf(path, sizeof(path), "%s/a.sock", dir);
    ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    base_config(&pc);
    pc.alarm_socket = path;
    /* A datagram queue holds only a few (net.unix.max_dgram_qlen, 10 by
     * default) and a full one is a counted drop by design; so the reader
     * reads while the samples arrive, one trigger every 40 ms. */
    rd.fd = fd;
    pace_ms = 20;
    ck_assert_int_eq(pthread_create(&th, NULL, dgram_reader, &rd), 0);
    st = run(&pc);
    atomic_store(&rd.stop, 1);
    pthread_join(th, NULL);
    lines = rd.lines;
    ck_assert_int_eq(rd.bad, 0);
    close(fd);
    ck_assert_uint_eq(st.alarm_drops, 0);
    ck_assert_uint_eq(lines, st.triggers);
}
END_TEST

START_TEST(test_fifo_without_reader_does_not_block)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    char fifo[600];
    double t;

    snprintf(fifo, sizeof(fifo), "%s/alarm", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    base_config(&pc);
    pc.alarm_fifo = fifo;
    t = mono_s();
    st = run(&pc);      /* a blocking open would hang here: the tcase timeout fails it */
    t = mono_s() - t;
    ck_assert_uint_eq(st.alarm_drops, st.triggers);
    ck_assert_msg(t < 2.0, "12,000 frames took %.2f s with no FIFO reader", t);

    /* Nor a FIFO whose reader stopped reading: once its pipe is full, lines are
     * dropped and counted instead of waited on. */
    int fd = open(fifo, O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(fcntl(fd, F_SETPIPE_SZ, 4096), 4096);
    char fill[4096];
    int w = open(fifo, O_WRONLY | O_NONBLOCK);
    ck_assert_int_ge(w, 0);
    memset(fill, 'x', sizeof(fill));
    while (write(w, fill, sizeof(fill)) > 0 || errno == EINTR)
        ;                       /* the pipe is full now; the reader never reads */
    close(w);
    t = mono_s();
    st = run(&pc);
    t = mono_s() - t;
    close(fd);
    ck_assert_uint_eq(st.alarm_drops, st.triggers);
    ck_assert_msg(t < 2.0, "12,000 frames took %.2f s with a full FIFO", t);
}
END_TEST

START_TEST(test_missing_socket_counts_drops)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    char path[600];

    snprintf(path, sizeof(path), "%s/none.sock", dir);
    base_config(&pc);
    pc.alarm_socket = path;
    st = run(&pc);
    ck_assert_uint_eq(st.alarm_drops, st.triggers);
}
END_TEST

/* A mistyped --alarm-fifo was only "alarm drops N" in the exit log: the
 * first drop of a run of them says why, once, naming the path. */
START_TEST(test_missing_fifo_said_once)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    char path[600], log[640], line[512];
    int saved = dup(2), fd, said = 0;
    FILE *f;

    /* Each spike larger than the last: several triggers, not one and its
     * repeats held by the repeat memory. */
    for (size_t k = 0, at = FIRST_SPIKE; at < TOTAL; at += SPIKE_EVERY, k++)
        data[at * CH + 1] += 20.0f * (float)k;
    snprintf(path, sizeof(path), "%s/no-such.fifo", dir);
    snprintf(log, sizeof(log), "%s/stderr.log", dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(saved, 0);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    base_config(&pc);
    pc.alarm_fifo = path;
    st = run(&pc);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_uint_ge(st.triggers, 2);
    ck_assert_uint_eq(st.alarm_drops, st.triggers);
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, "agent: alarm fifo ") && strstr(line, path) &&
            strstr(line, "cannot open: No such file or directory"))
            said++;
    fclose(f);
    ck_assert_int_eq(said, 1);
}
END_TEST

/* An on-trigger command that fails is said on stderr, with its status,
 * once per failing run (it was silent: "action errors" counts only the
 * commands that could not be started). */
START_TEST(test_failing_command_said)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    char log[640], line[512];
    int saved = dup(2), fd, said = 0;
    FILE *f;

    snprintf(log, sizeof(log), "%s/stderr.log", dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(saved, 0);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    base_config(&pc);
    pc.on_trigger = "exit 3";
    st = run(&pc);              /* pipeline_free waits for the commands */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_uint_eq(st.action_errors, 0);
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL)
        said += strcmp(line, "agent: on-trigger command exited with status 3\n") == 0;
    fclose(f);
    ck_assert_int_eq(said, (int)st.triggers);
}
END_TEST

Suite *action_suite(void)
{
    Suite *s = suite_create("action");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_command_gets_environment);
    tcase_add_test(tc, test_fifo_one_line_per_trigger);
    tcase_add_test(tc, test_fifo_line_escapes_channel_name);
    tcase_add_test(tc, test_alarm_line_escaping);
    tcase_add_test(tc, test_socket_one_datagram_per_trigger);
    tcase_add_test(tc, test_fifo_without_reader_does_not_block);
    tcase_add_test(tc, test_missing_fifo_said_once);
    tcase_add_test(tc, test_failing_command_said);
    tcase_add_test(tc, test_missing_socket_counts_drops);
    suite_add_tcase(s, tc);
    return s;
}
