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
    int (*pass)(void *arg);         /* > 0: more is waiting, run again now */
    void (*finish)(void);           /* on the thread before it ends, or NULL */
    void *arg;

    /* Private. */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running, started;
};

/* How far below the request path the background passes run, set once
 * before any worker starts (serve's --background-nice): 0 none, 1..19 the
 * threads' nice value, SRV_WORKER_IDLE the kernel's idle class (SCHED_IDLE:
 * a thread that runs only on a core nothing else wants).  The default is
 * nice 10, not the idle class: in the paced ingest benchmark the idle class
 * did not lower the p99 beyond the noise, and its features worker fell
 * behind by up to 32 s after a 5 s run, reading back what the handoff could
 * not hold (docs/BENCHMARKS.md, ingest round five). */
#define SRV_WORKER_IDLE 20
#define SRV_WORKER_NICE_DEFAULT 10
void srv_worker_set_background(int level);

/* Start the thread; 0, or -1 when it cannot be made (logged).  Starting a
 * worker that runs is a no-op. */
int srv_worker_start(struct srv_worker *w);

/* Ask the thread to end, wake it and wait for its current pass to finish.
 * Safe on a worker that never started. */
void srv_worker_stop(struct srv_worker *w);

#endif
