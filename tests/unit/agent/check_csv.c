/* check_csv.c - the CSV source: good files, NAB timestamps, bad lines by
 * number, overlong lines, CRLF, and a pipe written a row at a time (next()
 * must hand out the row it has, not wait for a block). */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "agent/source/source.h"

Suite *csv_suite(void);

static FILE *mem(const char *text)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");

    ck_assert_ptr_nonnull(f);
    return f;
}

/* Read everything; returns the last next() code, frames in *n_total. */
static int drain(struct source *s, float *all, int64_t *t_all, size_t cap, size_t *n_total)
{
    size_t n, total = 0;
    int rc;
    float buf[64 * 8];
    int64_t t[64];

    while ((rc = s->next(s, buf, t, 64, &n)) == 0) {
        ck_assert_uint_ge(n, 1);
        if (total + n <= cap) {
            memcpy(all + total * s->channels, buf, sizeof(float) * n * s->channels);
            memcpy(t_all + total, t, sizeof(int64_t) * n);
        }
        total += n;
    }
    *n_total = total;
    return rc;
}

START_TEST(good_unix_seconds)
{
    const char *text = "timestamp,accel_x[g],temp [C]\n"
                       "1700000000.0,0.5,20\n"
                       "1700000000.5,-1.25,21\n"
                       "1700000001,2e-3,22\n";
    FILE *f = mem(text);
    struct source *s;
    float v[16];
    int64_t t[8];
    size_t n;

    ck_assert_int_eq(source_csv_fopen(f, "t", 0, &s), 0);
    ck_assert_uint_eq(s->channels, 2);
    ck_assert_str_eq(s->chan[0].name, "accel_x");
    ck_assert_str_eq(s->chan[0].unit, "g");
    ck_assert_str_eq(s->chan[1].name, "temp");
    ck_assert_str_eq(s->chan[1].unit, "C");
    ck_assert(s->rate > 1.999 && s->rate < 2.001);
    ck_assert_int_eq(drain(s, v, t, 8, &n), SOURCE_EOF);
    ck_assert_uint_eq(n, 3);
    ck_assert_float_eq(v[2], -1.25f);
    ck_assert_float_eq(v[5], 22.0f);
    ck_assert_int_eq(t[1], INT64_C(1700000000500000));
    ck_assert_int_eq(t[2], INT64_C(1700000001000000));
    s->close(s);
    fclose(f);
}
END_TEST

START_TEST(nab_timestamps_and_text)
{
    const char *text = "timestamp,value\n"
                       "2014-04-01 00:00:00,10\n"
                       "2014-04-01 00:05:00,11.5\n"
                       "2014-04-01 00:10:00.250,12\n";
    FILE *f = mem(text);
    struct source *s;
    float v[8];
    int64_t t[8];
    size_t n;

    ck_assert_int_eq(source_csv_fopen(f, "nab", 0, &s), 0);
    ck_assert(s->rate > 0.99 / 300.0 && s->rate < 1.01 / 300.0);
    ck_assert_int_eq(s->next(s, v, t, 8, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(t[0], INT64_C(1396310400000000));     /* date -u -d 2014-04-01 +%s */
    ck_assert_int_eq(t[2] - t[0], INT64_C(600250000));
    ck_assert_str_eq(s->ts_text(s, 0), "2014-04-01 00:00:00");
    ck_assert_str_eq(s->ts_text(s, 2), "2014-04-01 00:10:00.250");
    ck_assert_ptr_null(s->ts_text(s, 3));
    ck_assert_int_eq(s->next(s, v, t, 8, &n), SOURCE_EOF);
    s->close(s);
    fclose(f);
}
END_TEST

START_TEST(crlf_and_no_final_newline)
{
    const char *text = "timestamp,a,b\r\n1,1,2\r\n2,3,4\r\n\r\n3,5,6";
    FILE *f = mem(text);
    struct source *s;
    float v[16];
    int64_t t[8];
    size_t n;

    ck_assert_int_eq(source_csv_fopen(f, "crlf", 0, &s), 0);
    ck_assert_str_eq(s->chan[1].name, "b");
    ck_assert_int_eq(drain(s, v, t, 8, &n), SOURCE_EOF);
    ck_assert_uint_eq(n, 3);
    ck_assert_float_eq(v[5], 6.0f);
    ck_assert(s->rate > 0.999 && s->rate < 1.001);
    s->close(s);
    fclose(f);
}
END_TEST

static void expect_error(const char *text, const char *needle)
{
    FILE *f = mem(text);
    struct source *s = NULL;
    float v[64 * 8];
    int64_t t[64];
    size_t n;
    int rc = source_csv_fopen(f, "bad", 0, &s);

    if (rc == 0) {
        rc = drain(s, v, t, 64, &n);
        ck_assert_int_eq(rc, SOURCE_EFORMAT);
        ck_assert_msg(strstr(s->err, needle) != NULL, "'%s' lacks '%s'", s->err, needle);
        /* sticky */
        ck_assert_int_eq(s->next(s, v, t, 64, &n), SOURCE_EFORMAT);
        s->close(s);
    } else {
        ck_assert_int_eq(rc, SOURCE_EFORMAT);
        ck_assert_msg(strstr(source_open_error(), needle) != NULL, "'%s' lacks '%s'",
                      source_open_error(), needle);
    }
    fclose(f);
}

START_TEST(bad_lines_name_their_number)
{
    expect_error("timestamp,a\n1,1\n2,\n", "line 3: empty value for a");
    expect_error("timestamp,a,b\n1,1,2\n2,3\n", "line 3: 2 fields, expected 3");
    expect_error("timestamp,a\n1,1\n2,1,5\n", "line 3: more than 2 fields");
    expect_error("timestamp,a\n1,1\n2,abc\n", "line 3: bad value");
    expect_error("timestamp,a\n1,1\n2,nan\n", "line 3: bad value");
    expect_error("timestamp,a\n1,1\n2014-13-01 00:00:00,1\n", "line 3: bad timestamp");
    expect_error("timestamp,a\n1,1\nyesterday,1\n", "line 3: bad timestamp");
    expect_error("timestamp\n1\n", "line 1: header needs");
    expect_error("", "empty input");
    expect_error("timestamp,a[g\n1,1\n", "closing ']'");
    /* one name, one channel: labels and rules name channels by it */
    expect_error("timestamp,a[g],b,a [bar]\n1,1,2,3\n", "line 1: column 4: channel name \"a\" is column 2's too");
}
END_TEST

START_TEST(late_bad_line_after_many_rows)
{
    /* Beyond the rows parsed ahead at open, through several reads. */
    size_t cap = 300000, len = 0;
    char *text = malloc(cap);
    long i;

    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, cap - len, "timestamp,v\n");
    for (i = 0; i < 20000; i++)
        len += (size_t)snprintf(text + len, cap - len, "%ld,%ld\n", i, i % 7);
    snprintf(text + len, cap - len, "20000,x\n");
    expect_error(text, "line 20002: bad value");
    free(text);
}
END_TEST

/* The good rows before a bad one reach the caller, then the error: among
 * the rows read ahead at open and beyond them, in one block of next().
 * They were dropped with it (up to a block of rows never scored, and
 * replay's scores file a block short of the bad line). */
static void expect_rows_then_error(long good_rows, const char *needle)
{
    size_t cap = 8192, len = 0;
    char *text = malloc(cap);
    static float all[1024];
    static int64_t t_all[1024];
    struct source *s = NULL;
    float v[64];
    int64_t t[64];
    size_t n = 0;
    FILE *f;
    int rc;

    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, cap - len, "timestamp,v\n");
    for (long i = 0; i < good_rows; i++)
        len += (size_t)snprintf(text + len, cap - len, "%ld,%ld\n", 100 + i, i % 5);
    snprintf(text + len, cap - len, "%ld,\n%ld,1\n", 100 + good_rows, 101 + good_rows);
    f = mem(text);
    ck_assert_int_eq(source_csv_fopen(f, "rows", 0, &s), 0);
    rc = drain(s, all, t_all, 1024, &n);
    ck_assert_int_eq(rc, SOURCE_EFORMAT);
    ck_assert_msg(strstr(s->err, needle) != NULL, "'%s' lacks '%s'", s->err, needle);
    ck_assert_uint_eq(n, (size_t)good_rows);
    ck_assert_int_eq(t_all[good_rows - 1], (100 + good_rows - 1) * INT64_C(1000000));
    ck_assert_float_eq(all[good_rows - 1], (float)((good_rows - 1) % 5));
    ck_assert_int_eq(s->next(s, v, t, 64, &n), SOURCE_EFORMAT);     /* sticky */
    s->close(s);
    fclose(f);
    free(text);
}

START_TEST(good_rows_before_a_bad_one_are_handed_out)
{
    expect_rows_then_error(5, "line 7: empty value for v");         /* among the rows ahead */
    expect_rows_then_error(63, "line 65: empty value for v");       /* the last row ahead */
    expect_rows_then_error(200, "line 202: empty value for v");     /* in a block after them */
}
END_TEST

static void on_alarm(int sig)
{
    (void)sig;
}

/* A signal 0.3 s from now that interrupts a blocked read (no SA_RESTART),
 * as the agent's SIGTERM handler does. */
static void alarm_soon(void)
{
    struct sigaction sa;
    struct itimerval it = { { 0, 0 }, { 0, 300000 } };

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* A stream written a row at a time, without --rate: the open reads up to
 * 64 rows ahead for the rate, a minute of 1 Hz data.  A signal (the agent's
 * SIGTERM) ends that wait with the rows so far; it was retried, and a
 * stopped agent went on waiting until the rows came. */
START_TEST(signal_ends_the_wait_at_open)
{
    int fds[2];
    struct source *s = NULL;
    struct timespec t0, t1;
    float v[8];
    int64_t t[8];
    size_t n = 0;
    FILE *f;
    static const char rows[] = "timestamp,a\n100,1\n101,2\n102,3\n";

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], rows, sizeof(rows) - 1), (ssize_t)(sizeof(rows) - 1));
    f = fdopen(fds[0], "r");
    ck_assert_ptr_nonnull(f);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_soon();
    ck_assert_int_eq(source_csv_fopen(f, "pipe", 0, &s), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_double_lt((double)(t1.tv_sec - t0.tv_sec), 2.0);
    ck_assert_double_eq_tol(s->rate, 1.0, 1e-9);
    ck_assert_int_eq(s->next(s, v, t, 8, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_float_eq(v[2], 3.0f);
    s->close(s);
    fclose(f);
    close(fds[1]);

    /* Before the header: the open fails at once, saying why. */
    ck_assert_int_eq(pipe(fds), 0);
    f = fdopen(fds[0], "r");
    ck_assert_ptr_nonnull(f);
    alarm_soon();
    ck_assert_int_lt(source_csv_fopen(f, "pipe", 0, &s), 0);
    ck_assert_ptr_nonnull(strstr(source_open_error(), "interrupted before the header line"));
    fclose(f);
    close(fds[1]);
}
END_TEST

START_TEST(overlong_line)
{
    char *text = malloc(20000);
    size_t len;

    ck_assert_ptr_nonnull(text);
    strcpy(text, "timestamp,v\n1,1\n2,");
    len = strlen(text);
    memset(text + len, '1', 9000);
    strcpy(text + len + 9000, "\n3,1\n");
    expect_error(text, "line 3: longer than 4096 bytes");
    /* overlong without a newline at the end */
    text[len + 9000] = '\0';
    expect_error(text, "line 3: longer than 4096 bytes");
    free(text);
}
END_TEST

START_TEST(many_channels_and_limits)
{
    char hdr[4096];
    size_t len = 0;
    int k;

    len += (size_t)snprintf(hdr + len, sizeof(hdr) - len, "t");
    for (k = 0; k < 65; k++)
        len += (size_t)snprintf(hdr + len, sizeof(hdr) - len, ",c%d", k);
    snprintf(hdr + len, sizeof(hdr) - len, "\n");
    expect_error(hdr, "more than 64 channels");
}
END_TEST

START_TEST(open_missing_file)
{
    struct source *s = NULL;

    ck_assert_int_eq(source_csv_open("no/such/file.csv", 0, &s), SOURCE_EIO);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(source_open_error(), "cannot open"));
}
END_TEST

START_TEST(rate_hint_wins)
{
    FILE *f = mem("timestamp,v\n1,1\n2,2\n");
    struct source *s;

    ck_assert_int_eq(source_csv_fopen(f, "t", 250.0, &s), 0);
    ck_assert(s->rate == 250.0);
    s->close(s);
    fclose(f);
}
END_TEST

/* Writer of the pipe test: the header and one row, then nothing until the
 * reader says go (or 2 s pass, so a reader that waits for more is late but
 * not stuck), then two more rows and end of input. */
struct pipe_writer {
    int data_fd, go_fd;
};

static void *pipe_writer_main(void *arg)
{
    struct pipe_writer *w = arg;
    struct pollfd pfd = { .fd = w->go_fd, .events = POLLIN };
    static const char first[] = "timestamp,v\n1.00,5\n", rest[] = "1.01,6\n1.02,7\n";

    if (write(w->data_fd, first, sizeof(first) - 1) != (ssize_t)(sizeof(first) - 1))
        return (void *)1;
    (void)poll(&pfd, 1, 2000);
    if (write(w->data_fd, rest, sizeof(rest) - 1) != (ssize_t)(sizeof(rest) - 1))
        return (void *)1;
    close(w->data_fd);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(pipe_row_returned_without_waiting)
{
    int data[2], go[2];
    struct pipe_writer w;
    pthread_t th;
    struct source *s = NULL;
    float v[256];
    int64_t t[256];
    size_t n = 0, total;
    double t0, waited;
    void *wret;
    FILE *f;

    ck_assert_int_eq(pipe(data), 0);
    ck_assert_int_eq(pipe(go), 0);
    w.data_fd = data[1];
    w.go_fd = go[0];
    ck_assert_int_eq(pthread_create(&th, NULL, pipe_writer_main, &w), 0);
    f = fdopen(data[0], "r");
    ck_assert_ptr_nonnull(f);

    t0 = now_s();
    /* With the rate given, open needs only the header. */
    ck_assert_int_eq(source_csv_fopen(f, "pipe", 100.0, &s), 0);
    ck_assert_int_eq(s->next(s, v, t, 256, &n), 0);
    waited = now_s() - t0;
    ck_assert_uint_eq(n, 1);
    ck_assert(v[0] == 5.0f);
    ck_assert_int_eq(t[0], 1000000);
    ck_assert_str_eq(s->ts_text(s, 0), "1.00");
    /* The writer holds the rest back for 2 s: the row came without them. */
    ck_assert_msg(waited < 1.0, "next() took %.3f s for a row already written", waited);

    ck_assert_int_eq(write(go[1], "g", 1), 1);
    total = 0;
    while (total < 2) {
        ck_assert_int_eq(s->next(s, v + total, t + total, 256 - total, &n), 0);
        total += n;
    }
    ck_assert(v[0] == 6.0f && v[1] == 7.0f);
    ck_assert_int_eq(t[1], 1020000);
    ck_assert_int_eq(s->next(s, v, t, 256, &n), SOURCE_EOF);
    ck_assert_int_eq(pthread_join(th, &wret), 0);
    ck_assert_ptr_null(wret);
    s->close(s);
    fclose(f);
    close(go[0]);
    close(go[1]);
}
END_TEST

/* The shared NAB corpus, when present beside the repository. */
START_TEST(nab_file_if_present)
{
    struct source *s;
    float v[256];
    int64_t t[256];
    size_t n, total = 0;
    int rc;

    if (source_csv_open("../shared/data/nab/data/realKnownCause/nyc_taxi.csv", 0, &s) != 0)
        return;
    while ((rc = s->next(s, v, t, 256, &n)) == 0)
        total += n;
    ck_assert_int_eq(rc, SOURCE_EOF);
    ck_assert_uint_eq(total, 10320);
    ck_assert(s->rate > 1.0 / 1800.0 - 1e-9 && s->rate < 1.0 / 1800.0 + 1e-9);
    s->close(s);
}
END_TEST

Suite *csv_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, good_unix_seconds);
    tcase_add_test(tc, nab_timestamps_and_text);
    tcase_add_test(tc, crlf_and_no_final_newline);
    tcase_add_test(tc, bad_lines_name_their_number);
    tcase_add_test(tc, late_bad_line_after_many_rows);
    tcase_add_test(tc, good_rows_before_a_bad_one_are_handed_out);
    tcase_add_test(tc, signal_ends_the_wait_at_open);
    tcase_add_test(tc, overlong_line);
    tcase_add_test(tc, many_channels_and_limits);
    tcase_add_test(tc, open_missing_file);
    tcase_add_test(tc, rate_hint_wins);
    tcase_add_test(tc, nab_file_if_present);
    tcase_add_test(tc, pipe_row_returned_without_waiting);
    suite_add_tcase(s, tc);
    return s;
}
