/* features_spectrum_park.c - GET /api/v1/snapshots/{id}/spectrum computed
 * off the connection's thread.  A pool thread of the http layer serves every
 * connection it accepted, one request at a time; the spectra of a window are
 * tens of milliseconds of FFTs (hundreds for the stored envelope), and the
 * waveform view's next window asked for on another kept-alive connection of
 * the same thread waited for all of it.  So the request is handed to a
 * thread of its own here and its connection parked (srv_park), and the pool
 * thread goes on serving the others.  The answer is features_api_spectrum's,
 * byte for byte: that handler runs on the spectra thread over a copy of the
 * request's id and query. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/features/features.h"
#include "server/srv/srv.h"

/* Jobs waiting beyond this are answered on their own thread, as before: a
 * bound on memory, and on how long a parked connection can wait. */
#define SPEC_QUEUE_MAX 32
/* The query parameters features_api_spectrum reads, and room for each; a
 * longer value (no valid one is) is answered on the connection's thread. */
static const char *const spec_keys[] = { "from_s", "to_s", "bins", "env_lo_hz", "env_hi_hz",
                                         "channel" };
#define SPEC_NKEYS (sizeof spec_keys / sizeof spec_keys[0])
#define SPEC_VALUE_MAX 256

struct spec_job {
    struct srv_request rq;      /* first: the query callback finds the job from it */
    struct srv_response rs;
    int err;
    struct srv_waker w;
    struct spec_job *next;
    char id[32];
    char value[SPEC_NKEYS][SPEC_VALUE_MAX];
    int present[SPEC_NKEYS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct spec_job *head, *tail;
static unsigned queued;
static unsigned long handed;    /* jobs ever handed to the thread */
static int started, stopping;
static pthread_t thread;

static const char *job_query(const struct srv_request *rq, const char *key)
{
    const struct spec_job *j = (const struct spec_job *)rq;
    size_t k;

    for (k = 0; k < SPEC_NKEYS; k++)
        if (strcmp(key, spec_keys[k]) == 0)
            return j->present[k] ? j->value[k] : NULL;
    return NULL;
}

/* A copy of what the handler reads from rq, or NULL when one does not fit. */
static struct spec_job *job_new(const struct srv_request *rq)
{
    struct spec_job *j;
    size_t k;

    if (!rq->params[0] || strlen(rq->params[0]) >= sizeof j->id || !(j = calloc(1, sizeof *j)))
        return NULL;
    memcpy(j->id, rq->params[0], strlen(rq->params[0]) + 1);
    for (k = 0; k < SPEC_NKEYS; k++) {
        const char *v = rq->query ? rq->query(rq, spec_keys[k]) : NULL;

        if (!v)
            continue;
        if (strlen(v) >= SPEC_VALUE_MAX) {
            free(j);
            return NULL;
        }
        memcpy(j->value[k], v, strlen(v) + 1);
        j->present[k] = 1;
    }
    j->rq.method = rq->method;      /* static strings of the http layer */
    j->rq.cfg = rq->cfg;
    j->rq.role = rq->role;
    j->rq.user_id = rq->user_id;
    j->rq.token_id = rq->token_id;
    memcpy(j->rq.token_name, rq->token_name, sizeof j->rq.token_name);
    j->rq.params[0] = j->id;
    j->rq.query = job_query;
    return j;
}

static void *spec_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        struct spec_job *j;

        while (!head && !stopping)
            pthread_cond_wait(&wake, &lock);
        if (!head)
            break;
        j = head;
        head = j->next;
        if (!head)
            tail = NULL;
        queued--;
        pthread_mutex_unlock(&lock);
        j->err = features_api_spectrum(&j->rq, &j->rs);
        /* the job is the http layer's from here: finish or abandon frees it */
        j->w.resume(j->w.ctx);
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int spec_start(struct srv_request *rq, struct srv_response *rs,
                      const struct srv_waker *w, void **parked)
{
    struct spec_job *j = w ? job_new(rq) : NULL;

    *parked = NULL;
    if (!j)
        return features_api_spectrum(rq, rs);
    j->w = *w;
    pthread_mutex_lock(&lock);
    if (!started && !stopping)
        started = pthread_create(&thread, NULL, spec_main, NULL) == 0;
    if (!started || stopping || queued >= SPEC_QUEUE_MAX) {
        pthread_mutex_unlock(&lock);
        free(j);
        return features_api_spectrum(rq, rs);
    }
    /* Suspended before the spectra thread can see the job, so its resume
     * always follows. */
    w->suspend(w->ctx);
    if (tail)
        tail->next = j;
    else
        head = j;
    tail = j;
    queued++;
    handed++;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    *parked = j;
    return SRV_OK;
}

static int spec_finish(struct srv_request *rq, struct srv_response *rs, void *parked)
{
    struct spec_job *j = parked;
    int err = j->err;

    (void)rq;
    *rs = j->rs;
    free(j);
    return err;
}

static void spec_abandon(void *parked)
{
    struct spec_job *j = parked;

    srv_response_release(&j->rs);
    free(j);
}

const struct srv_park features_api_spectrum_park = { spec_start, spec_finish, spec_abandon };

void features_spectrum_stop(void)
{
    int was;

    pthread_mutex_lock(&lock);
    stopping = 1;
    was = started;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    if (was)
        pthread_join(thread, NULL);
    /* its database connection went with it; a server started again in this
     * process (the tests) starts a new one */
    pthread_mutex_lock(&lock);
    started = stopping = 0;
    pthread_mutex_unlock(&lock);
}

unsigned long features_spectrum_handed(void)
{
    unsigned long n;

    pthread_mutex_lock(&lock);
    n = handed;
    pthread_mutex_unlock(&lock);
    return n;
}
