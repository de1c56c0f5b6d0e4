/* metrics.c - see metrics.h.  Counters are indexed by the SRV_E* code of the
 * outcome, so a new error code is counted (and named, via srv_err_code)
 * without touching this file. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics/metrics.h"
#include "server/srv/srv.h"

#define METRICS_CODES 64        /* -SRV_ECODE_MIN must stay below */

static const double bucket_le[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5, 1.0, 2.5, 5.0 };
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

static atomic_ullong created_total, duplicate_total, bytes_total;
static atomic_ullong rejects[METRICS_CODES];
static atomic_ullong lat_buckets[NBUCKETS + 1];     /* last: +Inf */
static atomic_ullong lat_count, lat_sum_us;
static atomic_ullong batches_total, batch_rows_total;

void metrics_ingest_observe(int err, int created, double seconds, size_t bytes)
{
    size_t i;

    if (err == SRV_OK) {
        atomic_fetch_add(created ? &created_total : &duplicate_total, 1);
        atomic_fetch_add(&bytes_total, bytes);
    } else if (-err > 0 && -err < METRICS_CODES) {
        atomic_fetch_add(&rejects[-err], 1);
    }
    for (i = 0; i < NBUCKETS && seconds > bucket_le[i]; i++)
        ;
    atomic_fetch_add(&lat_buckets[i], 1);
    atomic_fetch_add(&lat_count, 1);
    atomic_fetch_add(&lat_sum_us, (unsigned long long)(seconds * 1e6));
}

void metrics_commit_batch(unsigned n)
{
    atomic_fetch_add(&batches_total, 1);
    atomic_fetch_add(&batch_rows_total, n);
}

static atomic_uint queue_capacity, committers;
static unsigned (*_Atomic queue_depth)(void);

void metrics_ingest_queue(unsigned (*depth)(void), unsigned capacity, unsigned threads)
{
    atomic_store(&queue_capacity, capacity);
    atomic_store(&committers, threads);
    atomic_store(&queue_depth, depth);
}

static atomic_ullong model_rollbacks_total;
static atomic_ullong db_connect_failures_total;

void metrics_db_connect_failed(void)
{
    atomic_fetch_add(&db_connect_failures_total, 1);
}

unsigned long long metrics_db_connect_failures(void)
{
    return atomic_load(&db_connect_failures_total);
}

void metrics_model_rollback(void)
{
    atomic_fetch_add(&model_rollbacks_total, 1);
}

int metrics_render(unsigned worker_threads, char **out, size_t *len)
{
    struct srv_buf b = { 0 };
    unsigned (*depth)(void) = atomic_load(&queue_depth);
    unsigned long long cum = 0;
    size_t i;
    int e;

    srv_buf_printf(&b, "# HELP precursor_ingest_snapshots_total Snapshot uploads answered 2xx, by outcome.\n"
            "# TYPE precursor_ingest_snapshots_total counter\n"
            "precursor_ingest_snapshots_total{outcome=\"created\"} %llu\n"
            "precursor_ingest_snapshots_total{outcome=\"duplicate\"} %llu\n",
        atomic_load(&created_total), atomic_load(&duplicate_total));
    srv_buf_printf(&b, "# HELP precursor_ingest_bytes_total Envelope bytes accepted.\n"
            "# TYPE precursor_ingest_bytes_total counter\n"
            "precursor_ingest_bytes_total %llu\n", atomic_load(&bytes_total));
    srv_buf_puts(&b, "# HELP precursor_ingest_rejects_total Snapshot uploads refused, by reason.\n"
            "# TYPE precursor_ingest_rejects_total counter\n");
    for (e = -1; e >= SRV_ECODE_MIN && -e < METRICS_CODES; e--)
        srv_buf_printf(&b, "precursor_ingest_rejects_total{reason=\"%s\"} %llu\n", srv_err_code(e),
            atomic_load(&rejects[-e]));
    srv_buf_puts(&b, "# HELP precursor_ingest_latency_seconds Time in the ingest handler, body read.\n"
            "# TYPE precursor_ingest_latency_seconds histogram\n");
    for (i = 0; i < NBUCKETS; i++) {
        cum += atomic_load(&lat_buckets[i]);
        srv_buf_printf(&b, "precursor_ingest_latency_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i], cum);
    }
    cum += atomic_load(&lat_buckets[NBUCKETS]);
    srv_buf_printf(&b, "precursor_ingest_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
            "precursor_ingest_latency_seconds_sum %.6f\n"
            "precursor_ingest_latency_seconds_count %llu\n",
        cum, (double)atomic_load(&lat_sum_us) / 1e6, cum);
    srv_buf_printf(&b, "# HELP precursor_ingest_commit_batches_total Group-commit transactions.\n"
            "# TYPE precursor_ingest_commit_batches_total counter\n"
            "precursor_ingest_commit_batches_total %llu\n"
            "# HELP precursor_ingest_commit_rows_total Snapshots sent in group commits.\n"
            "# TYPE precursor_ingest_commit_rows_total counter\n"
            "precursor_ingest_commit_rows_total %llu\n",
        atomic_load(&batches_total), atomic_load(&batch_rows_total));
    srv_buf_printf(&b, "# HELP precursor_ingest_queue_depth Snapshots waiting for the committer.\n"
            "# TYPE precursor_ingest_queue_depth gauge\n"
            "precursor_ingest_queue_depth %u\n"
            "# HELP precursor_ingest_queue_capacity Bound on the queue (503 beyond).\n"
            "# TYPE precursor_ingest_queue_capacity gauge\n"
            "precursor_ingest_queue_capacity %u\n",
        depth ? depth() : 0, atomic_load(&queue_capacity));
    srv_buf_printf(&b, "# HELP precursor_db_pool_connections Database connections by user "
            "(the pool's size, one per thread).\n"
            "# TYPE precursor_db_pool_connections gauge\n"
            "precursor_db_pool_connections{pool=\"http_workers\"} %u\n"
            "precursor_db_pool_connections{pool=\"committers\"} %u\n"
            "# HELP precursor_db_connect_failures_total Connections to PostgreSQL that could not "
            "be made (the database down, refusing or unreachable).\n"
            "# TYPE precursor_db_connect_failures_total counter\n"
            "precursor_db_connect_failures_total %llu\n",
        worker_threads, atomic_load(&committers), atomic_load(&db_connect_failures_total));
    srv_buf_printf(&b, "# HELP precursor_model_rollbacks_total Active models rolled back on a device "
            "for exceeding the alarm budget (since start; all: GET /api/v1/rollbacks).\n"
            "# TYPE precursor_model_rollbacks_total counter\n"
            "precursor_model_rollbacks_total %llu\n", atomic_load(&model_rollbacks_total));
    if (!(*out = srv_buf_take(&b, len)))
        return SRV_ENOMEM;
    return SRV_OK;
}

int metrics_api_get(struct srv_request *rq, struct srv_response *rs)
{
    char *text;
    size_t len;
    int err = metrics_render(rq->cfg ? rq->cfg->threads : 0, &text, &len);

    if (err != SRV_OK)
        return err;
    rs->status = 200;
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
    rs->body = text;
    rs->body_len = len;
    return SRV_OK;
}
