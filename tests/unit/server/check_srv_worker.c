/* check_srv_worker.c - the background pass runner: a pass that has more work
 * runs again at once, an idle one sleeps its period, stop wakes the sleep
 * and waits for the pass in progress, finish runs on the worker's own
 * thread, and the thread runs at the background level it was given. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "server/srv/srv_worker.h"

static atomic_int passes, more_left, finished;
static pthread_t pass_thread, finish_thread;

static int count_pass(void *arg)
{
    (void)arg;
    pass_thread = pthread_self();
    atomic_fetch_add(&passes, 1);
    if (atomic_load(&more_left) > 0) {
        atomic_fetch_sub(&more_left, 1);
        return 1;
    }
    return 0;
}

static void note_finish(void)
{
    finish_thread = pthread_self();
    atomic_store(&finished, 1);
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void wait_passes(int n)
{
    for (int i = 0; i < 2000 && atomic_load(&passes) < n; i++)
        usleep(1000);
}

START_TEST(test_more_runs_again_then_sleeps)
{
    /* An hour's period: after the busy passes the worker must be asleep, so
     * the count stays put, and stop must not wait out the hour. */
    struct srv_worker w = { .name = "test", .period_ms = 3600u * 1000u, .pass = count_pass,
                            .finish = note_finish };
    double t0;

    atomic_store(&passes, 0);
    atomic_store(&more_left, 5);
    atomic_store(&finished, 0);
    ck_assert_int_eq(srv_worker_start(&w), 0);
    ck_assert_int_eq(srv_worker_start(&w), 0);     /* running: a no-op */
    wait_passes(6);
    usleep(50 * 1000);
    ck_assert_int_eq(atomic_load(&passes), 6);      /* 5 with more, 1 idle */
    t0 = now_s();
    srv_worker_stop(&w);
    ck_assert_msg(now_s() - t0 < 5.0, "stop waited %.1f s for the period", now_s() - t0);
    ck_assert_int_eq(atomic_load(&finished), 1);
    ck_assert(pthread_equal(finish_thread, pass_thread));
    ck_assert(!pthread_equal(finish_thread, pthread_self()));
    ck_assert_int_eq(atomic_load(&passes), 6);
}
END_TEST

START_TEST(test_period_repeats_and_restart)
{
    struct srv_worker w = { .name = "test", .period_ms = 10, .pass = count_pass };

    atomic_store(&passes, 0);
    atomic_store(&more_left, 0);
    ck_assert_int_eq(srv_worker_start(&w), 0);
    wait_passes(3);
    ck_assert_int_ge(atomic_load(&passes), 3);
    srv_worker_stop(&w);
    srv_worker_stop(&w);                            /* twice: harmless */

    /* Stopped workers start again (the server's tests start and stop it). */
    atomic_store(&passes, 0);
    ck_assert_int_eq(srv_worker_start(&w), 0);
    wait_passes(1);
    ck_assert_int_ge(atomic_load(&passes), 1);
    srv_worker_stop(&w);
}
END_TEST

START_TEST(test_stop_never_started)
{
    struct srv_worker w = { .name = "test", .pass = count_pass };

    srv_worker_stop(&w);
    ck_assert_int_eq(w.started, 0);
}
END_TEST

static atomic_int seen_policy, seen_nice;

static int note_priority_pass(void *arg)
{
    (void)arg;
    atomic_store(&seen_nice, getpriority(PRIO_PROCESS, (id_t)gettid()));
    atomic_store(&seen_policy, sched_getscheduler(0));      /* 0: this thread */
    atomic_fetch_add(&passes, 1);
    return 0;
}

static void pass_once_at(int level)
{
    struct srv_worker w = { .name = "test", .period_ms = 3600u * 1000u,
                            .pass = note_priority_pass };

    atomic_store(&passes, 0);
    atomic_store(&seen_policy, -1);
    srv_worker_set_background(level);
    ck_assert_int_eq(srv_worker_start(&w), 0);
    wait_passes(1);
    srv_worker_stop(&w);
    ck_assert_int_eq(atomic_load(&passes), 1);
}

START_TEST(test_background_priority)
{
    /* The level is the worker thread's own: the caller's stays as it was. */
    int caller_nice = getpriority(PRIO_PROCESS, (id_t)gettid());

    pass_once_at(SRV_WORKER_IDLE);
    ck_assert_int_eq(atomic_load(&seen_policy), SCHED_IDLE);

    pass_once_at(19);
    ck_assert_int_eq(atomic_load(&seen_policy), SCHED_OTHER);
    ck_assert_int_eq(atomic_load(&seen_nice), 19);

    pass_once_at(0);                                /* 0: left as created */
    ck_assert_int_eq(atomic_load(&seen_policy), SCHED_OTHER);
    ck_assert_int_eq(atomic_load(&seen_nice), caller_nice);

    ck_assert_int_eq(sched_getscheduler(0), SCHED_OTHER);
    ck_assert_int_eq(getpriority(PRIO_PROCESS, (id_t)gettid()), caller_nice);
    srv_worker_set_background(SRV_WORKER_NICE_DEFAULT);
}
END_TEST

Suite *srv_worker_suite(void);
Suite *srv_worker_suite(void)
{
    Suite *s = suite_create("srv_worker");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_more_runs_again_then_sleeps);
    tcase_add_test(tc, test_period_repeats_and_restart);
    tcase_add_test(tc, test_stop_never_started);
    tcase_add_test(tc, test_background_priority);
    suite_add_tcase(s, tc);
    return s;
}
