/* srv_worker.c - start, wait and stop for the server's background passes
 * (srv_worker.h). */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/srv/srv.h"
#include "server/srv/srv_worker.h"

static void *worker_main(void *arg)
{
    struct srv_worker *w = arg;
    struct timespec until;

    /* Linux keeps a nice value per thread: a worker that competes with
     * ingest for the same cores can yield to it without the process doing so. */
    if (w->nice != 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice) != 0)
        srv_log("warn", "%s: cannot lower the worker's priority: %s", w->name, strerror(errno));
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
