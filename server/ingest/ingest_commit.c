/* ingest_commit.c - group commit: many uploads, one transaction, one fsync.
 *
 * Each worker thread that has a validated snapshot queues its row here and
 * sleeps; a committer thread takes everything queued (up to batch_max),
 * sorts it by device and sequence (so two committers, or two servers, take
 * the devices' row locks in the same order and cannot deadlock), and sends
 * BEGIN, one prepared INSERT per row and COMMIT in libpq pipeline mode: one
 * network round trip and one WAL flush for the batch, with synchronous_commit
 * on.  When any statement of the batch fails, the batch is rolled back and
 * each row is retried in a transaction of its own, so one bad row costs the
 * others only latency.  The queue is bounded: past queue_max a submit fails
 * at once with SRV_EOVERLOAD, which the API answers 503 + Retry-After. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/ingest/ingest_int.h"
#include "server/metrics/metrics.h"
#include "server/srv/srv.h"

#define COMMIT_MAX_THREADS 16
#define COMMIT_BATCH_CAP 512

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;      /* work queued */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;   /* a batch finished */
static struct ingest_row *q_head, *q_tail;
static unsigned q_len, q_max, batch_max;
static int running, stopping;
static unsigned nthreads;
static pthread_t threads[COMMIT_MAX_THREADS];
static char *conninfo;

unsigned ingest_queue_depth(void)
{
    unsigned n;

    pthread_mutex_lock(&q_mu);
    n = q_len;
    pthread_mutex_unlock(&q_mu);
    return n;
}

unsigned ingest_queue_max(void)
{
    return q_max;
}

int ingest__commit_running(void)
{
    int r;

    pthread_mutex_lock(&q_mu);
    r = running && !stopping;
    pthread_mutex_unlock(&q_mu);
    return r;
}

int ingest__commit_submit(struct ingest_row *row)
{
    pthread_mutex_lock(&q_mu);
    if (!running || stopping) {
        pthread_mutex_unlock(&q_mu);
        return SRV_EUNAVAIL;
    }
    if (q_len >= q_max) {
        pthread_mutex_unlock(&q_mu);
        return SRV_EOVERLOAD;
    }
    row->done = 0;
    row->next = NULL;
    if (q_tail)
        q_tail->next = row;
    else
        q_head = row;
    q_tail = row;
    q_len++;
    pthread_cond_signal(&q_cv);
    while (!row->done)
        pthread_cond_wait(&done_cv, &q_mu);
    pthread_mutex_unlock(&q_mu);
    return SRV_OK;
}

static int row_cmp(const void *a, const void *b)
{
    const struct ingest_row *x = *(const struct ingest_row *const *)a;
    const struct ingest_row *y = *(const struct ingest_row *const *)b;
    int c = strcmp(x->dev, y->dev);

    if (c)
        return c;
    return (x->seq_num > y->seq_num) - (x->seq_num < y->seq_num);
}

static PGconn *committer_connect(void)
{
    PGconn *c = db_connect(conninfo);
    PGresult *r;
    int ok;

    if (!c)
        return NULL;
    /* Durability is the contract: never inherit an asynchronous default. */
    r = PQexec(c, "SET synchronous_commit = on");
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok) {
        r = PQprepare(c, db_stmt_name(DB_SNAPSHOT_INSERT), db_stmt_sql(DB_SNAPSHOT_INSERT),
                      db_stmt_nparams(DB_SNAPSHOT_INSERT), NULL);
        ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            srv_log("error", "ingest: committer prepare failed: %s", PQerrorMessage(c));
        PQclear(r);
    }
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Classify a failed result the way db_exec does. */
static int result_error(PGconn *c, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    if (PQstatus(c) != CONNECTION_OK)
        return SRV_EUNAVAIL;
    if (state && strcmp(state, "23505") == 0)
        return SRV_ECONFLICT;
    if (state && strcmp(state, "23503") == 0)
        return SRV_EUNKNOWNDEV;     /* device deleted under us */
    srv_log("error", "ingest: insert failed: %s (%s)",
            r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(c),
            state ? state : "-");
    return SRV_EDB;
}

/* BEGIN; INSERT x n; COMMIT in one pipeline.  0 when committed (rows'
 * inserted/id set); else the error, with rows[i]->err set for the row that
 * failed and the transaction rolled back. */
static int run_batch(PGconn *c, struct ingest_row **rows, unsigned n)
{
    const char *stmt = db_stmt_name(DB_SNAPSHOT_INSERT);
    int err = SRV_OK, synced = 0;
    unsigned i, q;

    if (PQenterPipelineMode(c) != 1)
        return SRV_EUNAVAIL;
    if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        err = SRV_EUNAVAIL;
    for (i = 0; i < n && err == SRV_OK; i++)
        if (!PQsendQueryPrepared(c, stmt, INGEST_NPARAMS, rows[i]->vals, rows[i]->lens,
                                 rows[i]->fmts, 0))
            err = SRV_EUNAVAIL;
    if (err == SRV_OK && !PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        err = SRV_EUNAVAIL;
    if (err == SRV_OK && PQpipelineSync(c) != 1)
        err = SRV_EUNAVAIL;
    if (err != SRV_OK) {
        PQexitPipelineMode(c);
        return err;
    }
    /* Results: BEGIN, n inserts, COMMIT, then the sync marker. */
    for (q = 0; q < n + 2; q++) {
        PGresult *r = PQgetResult(c);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

        if (!r) {
            err = SRV_EUNAVAIL;
            break;
        }
        if (st == PGRES_FATAL_ERROR) {
            int e = result_error(c, r);

            if (err == SRV_OK)
                err = e;
            if (q >= 1 && q <= n)
                rows[q - 1]->err = e;
        } else if (st == PGRES_PIPELINE_ABORTED) {
            if (err == SRV_OK)
                err = SRV_EDB;
        } else if (q >= 1 && q <= n) {
            rows[q - 1]->inserted = PQntuples(r) == 1;
            if (rows[q - 1]->inserted)
                rows[q - 1]->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        } else if (q == n + 1 && st == PGRES_COMMAND_OK &&
                   strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
            err = SRV_EDB;  /* COMMIT of a failed transaction */
        }
        PQclear(r);
        /* Each query's results end with a NULL. */
        r = PQgetResult(c);
        PQclear(r);
    }
    for (q = 0; !synced && q < n + 8 && PQstatus(c) == CONNECTION_OK; q++) {
        PGresult *r = PQgetResult(c);

        if (!r)
            continue;
        synced = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
    }
    PQexitPipelineMode(c);
    if (err != SRV_OK && PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));     /* a warning when none is open */
    if (PQstatus(c) != CONNECTION_OK)
        err = SRV_EUNAVAIL;
    return err;
}

static void *committer_main(void *arg)
{
    struct ingest_row **rows = calloc(COMMIT_BATCH_CAP, sizeof *rows);
    PGconn *c = NULL;

    (void)arg;
    if (!rows)
        return NULL;
    for (;;) {
        unsigned n = 0, i;
        int err;

        pthread_mutex_lock(&q_mu);
        while (!q_head && !stopping)
            pthread_cond_wait(&q_cv, &q_mu);
        if (!q_head && stopping) {
            pthread_mutex_unlock(&q_mu);
            break;
        }
        while (q_head && n < batch_max) {
            rows[n++] = q_head;
            q_head = q_head->next;
            q_len--;
        }
        if (!q_head)
            q_tail = NULL;
        pthread_mutex_unlock(&q_mu);

        qsort(rows, n, sizeof *rows, row_cmp);
        for (i = 0; i < n; i++) {
            rows[i]->err = SRV_OK;
            rows[i]->inserted = 0;
        }
        if (!c || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = committer_connect();
        }
        err = c ? run_batch(c, rows, n) : SRV_EUNAVAIL;
        if (err != SRV_OK && c && PQstatus(c) == CONNECTION_OK && n > 1) {
            /* Isolate the bad row: each one alone. */
            for (i = 0; i < n; i++) {
                rows[i]->err = SRV_OK;
                rows[i]->inserted = 0;
                err = run_batch(c, &rows[i], 1);
                if (err != SRV_OK && rows[i]->err == SRV_OK)
                    rows[i]->err = err;
            }
        } else if (err != SRV_OK) {
            for (i = 0; i < n; i++)
                if (rows[i]->err == SRV_OK)
                    rows[i]->err = err;
        }
        metrics_commit_batch(n);
        for (i = 0; i < n; i++)
            if (rows[i]->err == SRV_OK && rows[i]->inserted)
                fleet_cache_note_seq(rows[i]->dev, rows[i]->seq_num);
        pthread_mutex_lock(&q_mu);
        for (i = 0; i < n; i++)
            rows[i]->done = 1;
        pthread_cond_broadcast(&done_cv);
        pthread_mutex_unlock(&q_mu);
    }
    PQfinish(c);
    free(rows);
    return NULL;
}

int ingest_commit_start(const char *ci, unsigned committers, unsigned queue_max,
                        unsigned bmax)
{
    unsigned i;

    if (running)
        return SRV_EINTERNAL;
    if (committers == 0 || committers > COMMIT_MAX_THREADS || queue_max == 0 || bmax == 0)
        return SRV_EBADREQ;
    conninfo = strdup(ci);
    if (!conninfo)
        return SRV_ENOMEM;
    q_max = queue_max;
    batch_max = bmax > COMMIT_BATCH_CAP ? COMMIT_BATCH_CAP : bmax;
    stopping = 0;
    running = 1;
    for (i = 0; i < committers; i++) {
        if (pthread_create(&threads[i], NULL, committer_main, NULL) != 0) {
            srv_log("error", "ingest: cannot start committer thread");
            break;
        }
    }
    nthreads = i;
    if (nthreads == 0) {
        running = 0;
        free(conninfo);
        conninfo = NULL;
        return SRV_EINTERNAL;
    }
    return SRV_OK;
}

void ingest_commit_stop(void)
{
    unsigned i;

    pthread_mutex_lock(&q_mu);
    if (!running) {
        pthread_mutex_unlock(&q_mu);
        return;
    }
    stopping = 1;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_mu);
    /* Committers drain the queue before they exit. */
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_lock(&q_mu);
    running = 0;
    nthreads = 0;
    pthread_mutex_unlock(&q_mu);
    free(conninfo);
    conninfo = NULL;
}
