/* metrics.h - process counters for GET /metrics (Prometheus text format
 * 0.0.4): ingest requests by outcome, rejects by reason, latency histogram,
 * bytes, group-commit batches, queue depth and the database connections.
 * Counters are lock-free atomics, cheap enough for every request. */
#ifndef PRECURSOR_METRICS_H
#define PRECURSOR_METRICS_H

#include <stddef.h>

/* One ingest request finished: err (0 or SRV_E*), created (201 vs 200),
 * seconds spent in the handler, body bytes. */
void metrics_ingest_observe(int err, int created, double seconds, size_t bytes);
/* The committer committed (or tried) a batch of n rows. */
void metrics_commit_batch(unsigned n);

/* The ingest queue, told by ingest when its committer starts: a function
 * for the depth (called at each render; NULL: 0), its capacity and the
 * number of committer threads (each a database connection). */
void metrics_ingest_queue(unsigned (*depth)(void), unsigned capacity, unsigned threads);

/* A connection to PostgreSQL could not be made (server/db): counted, since
 * precursor_db_pool_connections is the pool's size and stays so while the
 * database is away; a rate of these is the outage. */
void metrics_db_connect_failed(void);
unsigned long long metrics_db_connect_failures(void);

/* Render everything; *out malloc'd text, *len its length.  0 or SRV_ENOMEM. */
/* A model rolled back on a device (server/deploy): counted for /metrics. */
void metrics_model_rollback(void);

int metrics_render(unsigned worker_threads, char **out, size_t *len);

/* GET /metrics */
struct srv_request;
struct srv_response;
int metrics_api_get(struct srv_request *rq, struct srv_response *rs);

#endif
