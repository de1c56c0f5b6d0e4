/* srv_worker.h - a background thread that runs one pass of work, then waits.
 *
 * The server keeps a few such threads: the features worker, the deployment
 * watcher, the fleet's maintenance.  Each had the same start, wait and stop
 * code around a different pass; this is that code, once.  A pass that says
 * more work is waiting runs again at once; otherwise the thread sleeps for
 * its period, and stop wakes it early. */
#ifndef PRECURSOR_SRV_WORKER_H
#define PRECURSOR_SRV_WORKER_H

#include <pthread.h>

struct srv_worker {
    /* Set by the owner before srv_worker_start. */
    const char *name;               /* for log lines */
    unsigned period_ms;             /* sleep between passes; 0 = 1000 */
    int nice;                       /* added to the thread's nice value; 0 = none */
    int (*pass)(void *arg);         /* > 0: more is waiting, run again now */
    void (*finish)(void);           /* on the thread before it ends, or NULL */
    void *arg;

    /* Private. */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running, started;
};

/* Start the thread; 0, or -1 when it cannot be made (logged).  Starting a
 * worker that runs is a no-op. */
int srv_worker_start(struct srv_worker *w);

/* Ask the thread to end, wake it and wait for its current pass to finish.
 * Safe on a worker that never started. */
void srv_worker_stop(struct srv_worker *w);

#endif
