/* ingest_http.c - POST /api/v1/snapshots: the pipeline of ingest.c behind
 * the route table, with the Retry-After of 429/503 and the metrics; whole
 * (ingest_api_post) or in two halves around the group committer, so the
 * http layer can park the connection instead of a thread. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "server/ingest/ingest.h"
#include "server/ingest/ingest_int.h"
#include "server/metrics/metrics.h"
#include "server/srv/srv.h"

/* The answer for a finished pipeline, and its metrics. */
static int respond(struct srv_request *rq, struct srv_response *rs, int err,
                   const struct ingest_result *res, const char *why, const struct timespec *t0)
{
    struct timespec t1;

    if (err == SRV_OK)
        err = srv_respond_json_take(rs, res->created ? 201 : 200,
                                    json_pack("{s:I,s:s,s:I}", "id", (json_int_t)res->id,
                                              "device_id", res->device_id, "seq",
                                              (json_int_t)res->seq));
    else if (why)
        rs->err_message = why;
    if (err == SRV_ERATELIMIT || err == SRV_EOVERLOAD)
        rs->retry_after = res->retry_after ? res->retry_after : 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    metrics_ingest_observe(err, err == SRV_OK && res->created,
                           (double)(t1.tv_sec - t0->tv_sec) +
                               (double)(t1.tv_nsec - t0->tv_nsec) / 1e9,
                           rq->body_len);
    return err;
}

static int post_start(struct srv_request *rq, struct srv_response *rs,
                      const struct srv_waker *w, void **parked)
{
    struct ingest_result res;
    struct ingest_job *job = NULL;
    struct timespec t0;
    const char *why = NULL;
    int err;

    memset(&res, 0, sizeof res);
    *parked = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!rq->body || rq->body_len == 0) {
        why = "empty body";
        err = SRV_EENVELOPE;
    } else {
        err = ingest_envelope_start(rq->body, rq->body_len, w, &job, &res, &why);
    }
    if (job) {
        /* Only this thread touches the job until the committer's wake,
         * which the caller's suspend holds back until we return. */
        job->t0 = t0;
        *parked = job;
        return SRV_OK;
    }
    return respond(rq, rs, err, &res, why, &t0);
}

int ingest_api_post(struct srv_request *rq, struct srv_response *rs)
{
    void *job;

    return post_start(rq, rs, NULL, &job);     /* no waker: never parks */
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Where a parked upload's time went, for finding a slow tail: the checks
 * up to the queue, the wait for a committer, the batch's transaction, and
 * from its commit until this connection's pool thread ran again. */
static void log_stages(const struct ingest_job *job)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    srv_log("debug", "ingest stages: checks=%.2fms queue=%.2fms commit=%.2fms batch=%u resume=%.2fms",
            ms_between(&job->t0, &job->row.t_queued),
            ms_between(&job->row.t_queued, &job->row.t_taken),
            ms_between(&job->row.t_taken, &job->row.t_committed), job->row.batch_n,
            ms_between(&job->row.t_committed, &now));
}

static int post_finish(struct srv_request *rq, struct srv_response *rs, void *parked)
{
    struct ingest_job *job = parked;
    struct ingest_result res;
    struct timespec t0 = job->t0;
    const char *why = NULL;
    int err;

    if (srv_log_debug())
        log_stages(job);
    err = ingest_envelope_finish(job, &res, &why);

    return respond(rq, rs, err, &res, why, &t0);
}

/* The client left after the committer was done with its row: nothing to
 * answer, the job is freed. */
static void post_abandon(void *parked)
{
    struct ingest_result res;

    ingest_envelope_finish(parked, &res, NULL);
}

const struct srv_park ingest_api_post_park = { post_start, post_finish, post_abandon };
