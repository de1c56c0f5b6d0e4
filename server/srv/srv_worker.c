/* srv_worker.c - start, wait and stop for the server's background passes
 * (srv_worker.h). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/srv/srv.h"
#include "server/srv/srv_worker.h"

static int g_background = SRV_WORKER_NICE_DEFAULT;

void srv_worker_set_background(int level)
{
    g_background = level < 0 ? 0 : level > SRV_WORKER_IDLE ? SRV_WORKER_IDLE : level;
}

/* Linux keeps a nice value and a scheduling class per thread: a worker that
 * competes with ingest for the same cores can yield to it without the
 * process doing so.  Failing to is logged, not fatal: the worker then runs
 * like any other thread. */
static void lower_priority(const struct srv_worker *w)
{
    if (g_background == SRV_WORKER_IDLE) {
        struct sched_param param = { .sched_priority = 0 };
        int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);

        if (rc != 0)
            srv_log("warn", "%s: cannot move the worker to the idle class: %s", w->name,
                    strerror(rc));
    } else if (g_background > 0
               && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), g_background) != 0) {
        srv_log("warn", "%s: cannot lower the worker's priority: %s", w->name, strerror(errno));
    }
}

static void *worker_main(void *arg)
{
    struct srv_worker *w = arg;
    struct timespec until;

    lower_priority(w);
    pthread_mutex_lock(&w->lock);
    while (w->running) {
        int more;

        pthread_mutex_unlock(&w->lock);
        more = w->pass(w->arg);
        pthread_mutex_lock(&w->lock);
        if (more > 0)
            continue;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += w->period_ms / 1000;
        until.tv_nsec += (long)(w->period_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        /* Only stop signals the condition; a spurious wake-up sleeps again. */
        while (w->running && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&w->lock);
    if (w->finish)
        w->finish();
    return NULL;
}

int srv_worker_start(struct srv_worker *w)
{
    int rc;

    if (w->started)
        return 0;
    if (w->period_ms == 0)
        w->period_ms = 1000;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->running = 1;
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        w->running = 0;
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        srv_log("error", "%s: cannot start its thread: %s", w->name, strerror(rc));
        return -1;
    }
    w->started = 1;
    return 0;
}

void srv_worker_stop(struct srv_worker *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->running = 0;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    w->started = 0;
}
