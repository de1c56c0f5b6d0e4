/* ingest_commit.c - group commit: many uploads, one transaction, one fsync.
 *
 * Each worker thread that has a validated snapshot queues its row here and
 * sleeps; a committer thread takes everything queued (up to batch_max) and
 * sorts it by device and sequence (so two committers, or two servers, take
 * the same locks in the same order and cannot deadlock).  A batch costs two
 * round trips and one WAL flush, with synchronous_commit on: BEGIN plus ONE
 * statement that claims every (device, seq) in snapshot_seqs and inserts
 * every claimed envelope into snapshots, its columns passed as binary
 * arrays and unnested server-side (one parse, one plan, one executor run
 * for the batch instead of a three-statement CTE per row); then one UPDATE
 * of devices (last_seen, last_seq) for every distinct device that got a
 * row, which locks them in device order first, and COMMIT.  A row whose (device, seq) is already claimed
 * comes back not inserted, and the caller answers 200 or 409 from what is
 * stored, exactly as for one row.  When the batch fails, it is rolled back
 * and each row is retried alone with INGEST_SQL_INSERT, so one bad row
 * costs the others only latency.  The queue is bounded: past queue_max a
 * submit fails at once with SRV_EOVERLOAD, which the API answers 503 +
 * Retry-After. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/ingest/ingest_int.h"
#include "server/metrics/metrics.h"
#include "server/srv/srv.h"

#define COMMIT_MAX_THREADS 16
#define COMMIT_BATCH_CAP 512

#define PG_OID_BYTEA 17
#define PG_OID_TEXT 25

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;      /* work queued */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;   /* a batch finished */
static struct ingest_row *q_head, *q_tail;
static unsigned q_len, q_max, batch_max;
static int running, stopping;
static int held;                /* ingest__commit_hold: tests only */
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

/* With q_mu held: refuse when stopped or full, else queue the row for a
 * committer.  suspend (may be NULL) runs before the row is visible, so the
 * committer's wake-up can never come first. */
static int enqueue_locked(struct ingest_row *row, void (*suspend)(void *ctx))
{
    if (!running || stopping)
        return SRV_EUNAVAIL;
    if (q_len >= q_max)
        return SRV_EOVERLOAD;
    if (suspend)
        suspend(row->wake_ctx);
    row->done = 0;
    clock_gettime(CLOCK_MONOTONIC, &row->t_queued);
    row->next = NULL;
    if (q_tail)
        q_tail->next = row;
    else
        q_head = row;
    q_tail = row;
    q_len++;
    pthread_cond_signal(&q_cv);
    return SRV_OK;
}

int ingest__commit_submit(struct ingest_row *row)
{
    int err;

    pthread_mutex_lock(&q_mu);
    err = enqueue_locked(row, NULL);
    while (err == SRV_OK && !row->done)
        pthread_cond_wait(&done_cv, &q_mu);
    pthread_mutex_unlock(&q_mu);
    return err;
}

int ingest__commit_submit_async(struct ingest_row *row, void (*suspend)(void *ctx))
{
    int err;

    pthread_mutex_lock(&q_mu);
    err = enqueue_locked(row, suspend);
    pthread_mutex_unlock(&q_mu);
    return err;
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

static int prepare(PGconn *c, const struct db_sql *st)
{
    PGresult *r = PQprepare(c, st->name, st->sql, st->n, NULL);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        srv_log("error", "ingest: committer prepare %s failed: %s", st->name, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

    PQclear(r);
    return ok;
}

/* A fresh backend's first batch paid 70-120 ms (docs/BENCHMARKS.md): the
 * catalogs of both tables and their indexes read in, the statements
 * planned.  Run both batch statements once with no rows, rolled back, so
 * that cost falls before the first upload waits on it: nothing is written,
 * and with no rows no id is drawn from the sequence. */
static void warm_up(PGconn *c)
{
    const char *empty[INGEST_NPARAMS];
    PGresult *r;
    unsigned i;

    for (i = 0; i < INGEST_NPARAMS; i++)
        empty[i] = "{}";
    if (!exec_ok(c, "BEGIN"))
        return;
    r = PQexecPrepared(c, ingest__sql[INGEST_SQL_BATCH_INSERT].name, INGEST_NPARAMS, empty,
                       NULL, NULL, 0);
    PQclear(r);
    r = PQexecPrepared(c, ingest__sql[INGEST_SQL_DEVICES_SEEN].name, 2, empty, NULL, NULL, 0);
    PQclear(r);
    exec_ok(c, "ROLLBACK");
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
    if (ok)
        ok = prepare(c, &ingest__sql[INGEST_SQL_INSERT]) &&
             prepare(c, &ingest__sql[INGEST_SQL_BATCH_INSERT]) &&
             prepare(c, &ingest__sql[INGEST_SQL_DEVICES_SEEN]);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    warm_up(c);
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

/* Read what is left of a pipeline up to its sync (at most queries + a few
 * results), then leave pipeline mode.  1 when the sync was seen. */
static int pipeline_drain(PGconn *c, unsigned queries)
{
    int synced = 0;
    unsigned q;

    for (q = 0; !synced && q < queries + 8 && PQstatus(c) == CONNECTION_OK; q++) {
        PGresult *r = PQgetResult(c);

        if (!r)
            continue;
        synced = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
    }
    PQexitPipelineMode(c);
    return synced;
}

/* The error one pipeline result stands for: 0 for success, result_error's
 * for a failed query, SRV_EDB for a query skipped after an earlier failure
 * and for a COMMIT that rolled back; SRV_EUNAVAIL for no result. */
static int pipe_result_error(PGconn *c, PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

    if (!r)
        return SRV_EUNAVAIL;
    if (st == PGRES_FATAL_ERROR)
        return result_error(c, r);
    if (st == PGRES_PIPELINE_ABORTED ||
        (st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0))
        return SRV_EDB;
    return SRV_OK;
}

/* The next result of a pipeline, its error in *e and folded into *err (the
 * first one stands).  NULL when the connection broke: *err SRV_EUNAVAIL. */
static PGresult *pipe_next(PGconn *c, int *err, int *e)
{
    PGresult *r = PQgetResult(c);

    *e = pipe_result_error(c, r);
    if (!r)
        *err = SRV_EUNAVAIL;
    else if (*err == SRV_OK)
        *err = *e;
    return r;
}

/* BEGIN; INSERT x n; COMMIT in one pipeline.  0 when committed (rows'
 * inserted/id set); else the error, with rows[i]->err set for the row that
 * failed and the transaction rolled back. */
static int run_batch(PGconn *c, struct ingest_row **rows, unsigned n)
{
    const char *stmt = ingest__sql[INGEST_SQL_INSERT].name;
    int err = SRV_OK;
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
        int e;
        PGresult *r = pipe_next(c, &err, &e);

        if (!r)
            break;
        if (q >= 1 && q <= n && PQresultStatus(r) == PGRES_FATAL_ERROR) {
            rows[q - 1]->err = e;
        } else if (q >= 1 && q <= n && e == SRV_OK) {
            rows[q - 1]->inserted = PQntuples(r) == 1;
            if (rows[q - 1]->inserted)
                rows[q - 1]->id = db_int64(r, 0, "id");
        }
        PQclear(r);
        PQclear(PQgetResult(c));    /* each query's results end with a NULL */
    }
    pipeline_drain(c, n);
    if (err != SRV_OK && PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));     /* a warning when none is open */
    if (PQstatus(c) != CONNECTION_OK)
        err = SRV_EUNAVAIL;
    return err;
}

static void put_be32(char *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
}

/* Parameter col of rows[0..n) as a one-dimensional array of element type
 * oid in PostgreSQL's binary array form (ndim, has-null, element type,
 * size, lower bound, then length + bytes per element; NULL is length -1).
 * Returns the malloc'd bytes, or NULL when out of memory or past an int. */
static char *array_build(struct ingest_row *const *rows, unsigned n, int col, uint32_t oid,
                         int *out_len)
{
    size_t total = 20, l;
    unsigned i, has_null = 0;
    char *buf, *p;

    for (i = 0; i < n; i++) {
        const char *v = rows[i]->vals[col];

        has_null |= !v;
        l = !v ? 0 : rows[i]->fmts[col] ? (size_t)rows[i]->lens[col] : strlen(v);
        if (l > INT32_MAX - total - 4)
            return NULL;
        total += 4 + l;
    }
    buf = malloc(total);
    if (!buf)
        return NULL;
    put_be32(buf, 1);
    put_be32(buf + 4, has_null);
    put_be32(buf + 8, oid);
    put_be32(buf + 12, n);
    put_be32(buf + 16, 1);
    p = buf + 20;
    for (i = 0; i < n; i++) {
        const char *v = rows[i]->vals[col];

        if (!v) {
            put_be32(p, UINT32_MAX);        /* -1: NULL */
            p += 4;
            continue;
        }
        l = rows[i]->fmts[col] ? (size_t)rows[i]->lens[col] : strlen(v);
        put_be32(p, (uint32_t)l);
        memcpy(p + 4, v, l);
        p += 4 + l;
    }
    *out_len = (int)total;
    return buf;
}

/* Read the results of the nq queries queued in pipeline mode, then the
 * sync marker, and leave pipeline mode.  The result of query `keep` goes
 * to *kept (the caller clears it) when every query succeeded.  0, or the
 * first error (a COMMIT that rolled back is SRV_EDB). */
static int pipe_results(PGconn *c, unsigned nq, unsigned keep, PGresult **kept)
{
    int err = SRV_OK, synced = 0;
    PGresult *k = NULL;
    unsigned q;

    for (q = 0; q < nq; q++) {
        int e;
        PGresult *r = pipe_next(c, &err, &e);

        if (!r)
            break;
        if (q == keep && PQresultStatus(r) == PGRES_TUPLES_OK) {
            k = r;
            r = NULL;
        }
        PQclear(r);
        PQclear(PQgetResult(c));    /* each query's results end with a NULL */
    }
    synced = pipeline_drain(c, nq);
    if (err == SRV_OK && (!synced || PQstatus(c) != CONNECTION_OK))
        err = SRV_EUNAVAIL;
    if (err == SRV_OK && keep < nq && !k)
        err = SRV_EDB;
    if (err == SRV_OK && kept)
        *kept = k;
    else
        PQclear(k);
    return err;
}

/* The whole batch in one transaction: BEGIN + the batch insert, then one
 * device-seen update per device that got a row + COMMIT.  rows are sorted; a
 * (device, seq) that appears twice is sent once, the repeat stays "not
 * inserted" and its uploader answers from what is stored.  0 when
 * committed (rows' inserted/id set); else the error, rolled back. */
static int run_batch_multi(PGconn *c, struct ingest_row **rows, unsigned n)
{
    struct ingest_row **uniq = malloc(n * sizeof *uniq);
    char *arr[INGEST_NPARAMS] = { NULL };
    const char *avals[INGEST_NPARAMS];
    int alen[INGEST_NPARAMS], afmt[INGEST_NPARAMS];
    PGresult *res = NULL;
    struct srv_buf devs = { 0 }, seqs = { 0 };
    unsigned nu = 0, i, nq;
    int err = SRV_OK, col, t, ntup;

    if (!uniq)
        return SRV_ENOMEM;
    for (i = 0; i < n; i++)
        if (i == 0 || row_cmp(&rows[i - 1], &rows[i]) != 0)
            uniq[nu++] = rows[i];
    for (col = 0; col < INGEST_NPARAMS && err == SRV_OK; col++) {
        arr[col] = array_build(uniq, nu, col, col >= 11 ? PG_OID_BYTEA : PG_OID_TEXT,
                               &alen[col]);
        avals[col] = arr[col];
        afmt[col] = 1;
        if (!arr[col])
            err = SRV_ENOMEM;
    }
    if (err != SRV_OK)
        goto out;
    if (PQenterPipelineMode(c) != 1) {
        err = SRV_EUNAVAIL;
        goto out;
    }
    if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryPrepared(c, ingest__sql[INGEST_SQL_BATCH_INSERT].name, INGEST_NPARAMS, avals, alen, afmt, 0) ||
        PQpipelineSync(c) != 1) {
        PQexitPipelineMode(c);
        err = SRV_EUNAVAIL;
        goto out;
    }
    err = pipe_results(c, 2, 1, &res);
    if (err != SRV_OK)
        goto out;
    ntup = PQntuples(res);
    for (t = 0; t < ntup && err == SRV_OK; t++) {
        struct ingest_row key, *kp = &key, **hit;

        key.dev = db_text(res, t, "device_id");
        key.seq_num = db_int64(res, t, "seq");
        hit = bsearch(&kp, uniq, nu, sizeof *uniq, row_cmp);
        if (!hit || (*hit)->inserted) {
            srv_log("error", "ingest: batch returned a row it was not sent");
            err = SRV_EINTERNAL;
            break;
        }
        (*hit)->inserted = 1;
        (*hit)->id = db_int64(res, t, "id");
    }
    if (err != SRV_OK)
        goto out;
    /* Before the COMMIT, so the features worker cannot find a row of this
     * batch whose envelope is not held yet (and read it back).  Should the
     * COMMIT fail, what is held under these ids is never asked for and
     * goes with the worker's next sweep. */
    ingest__handoff_rows(uniq, nu);
    /* Sorted by device then seq: the last inserted row of a device's run
     * has its highest new seq.  One statement for every device (it locks
     * them in id order itself). */
    db_array_begin(&devs);
    db_array_begin(&seqs);
    nq = 0;
    for (i = 0; i < nu; i++) {
        unsigned j;

        if (!uniq[i]->inserted)
            continue;
        for (j = i + 1; j < nu && strcmp(uniq[j]->dev, uniq[i]->dev) == 0; j++)
            if (uniq[j]->inserted)
                break;
        if (j < nu && strcmp(uniq[j]->dev, uniq[i]->dev) == 0)
            continue;       /* a later row of this device carries the seq */
        db_array_text(&devs, uniq[i]->dev);
        db_array_raw(&seqs, uniq[i]->seq);
        nq++;
    }
    db_array_end(&devs);
    db_array_end(&seqs);
    if (devs.oom || seqs.oom) {
        err = SRV_ENOMEM;
        goto out;
    }
    if (PQenterPipelineMode(c) != 1) {
        err = SRV_EUNAVAIL;
        goto out;
    }
    if (nq > 0) {
        const char *pv[2] = { devs.p, seqs.p };

        if (!PQsendQueryPrepared(c, ingest__sql[INGEST_SQL_DEVICES_SEEN].name, 2, pv, NULL,
                                 NULL, 0))
            err = SRV_EUNAVAIL;
        nq = 1;
    }
    if (err == SRV_OK && (!PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
                          PQpipelineSync(c) != 1))
        err = SRV_EUNAVAIL;
    if (err != SRV_OK) {
        PQexitPipelineMode(c);
        goto out;
    }
    err = pipe_results(c, nq + 1, UINT32_MAX, NULL);
out:
    if (err != SRV_OK && PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));     /* a warning when none is open */
    if (err != SRV_OK)
        for (i = 0; i < n; i++)
            rows[i]->inserted = 0;
    PQclear(res);
    srv_buf_free(&devs);
    srv_buf_free(&seqs);
    for (col = 0; col < INGEST_NPARAMS; col++)
        free(arr[col]);
    free(uniq);
    return err;
}

static void *committer_main(void *arg)
{
    struct ingest_row **rows = calloc(COMMIT_BATCH_CAP, sizeof *rows);
    void (**wakes)(void *) = calloc(COMMIT_BATCH_CAP, sizeof *wakes);
    void **wake_ctx = calloc(COMMIT_BATCH_CAP, sizeof *wake_ctx);
    PGconn *c = NULL;

    (void)arg;
    if (!rows || !wakes || !wake_ctx) {
        /* BUG-like: nothing would ever commit; say so loudly. */
        srv_log("error", "ingest: committer out of memory at start");
        free(rows);
        free(wakes);
        free(wake_ctx);
        return NULL;
    }
    /* Connected before the first upload waits: a new connection's backend
     * start, authentication and first plans took longer than a whole
     * batch does later.  Failing here is not fatal: the loop connects
     * again when it has rows. */
    c = committer_connect();
    for (;;) {
        unsigned n = 0, i;
        int err;

        pthread_mutex_lock(&q_mu);
        while ((!q_head || held) && !stopping)
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
        clock_gettime(CLOCK_MONOTONIC, &rows[0]->t_taken);
        for (i = 0; i < n; i++) {
            rows[i]->t_taken = rows[0]->t_taken;
            rows[i]->batch_n = n;
            rows[i]->err = SRV_OK;
            rows[i]->inserted = 0;
        }
        if (!c || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = committer_connect();
        }
        err = !c ? SRV_EUNAVAIL : n > 1 ? run_batch_multi(c, rows, n) : run_batch(c, rows, 1);
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
        clock_gettime(CLOCK_MONOTONIC, &rows[0]->t_committed);
        for (i = 1; i < n; i++)
            rows[i]->t_committed = rows[0]->t_committed;
        for (i = 0; i < n; i++)
            if (rows[i]->err == SRV_OK && rows[i]->inserted)
                fleet_cache_note_seq(rows[i]->dev, rows[i]->seq_num);
        /* Rows committed alone (their id came with the COMMIT's answer):
         * handed over now, before their uploaders are woken. */
        ingest__handoff_rows(rows, n);
        /* A synchronous submitter may free its row as soon as done is set
         * and the lock is released: take the wakes first. */
        pthread_mutex_lock(&q_mu);
        for (i = 0; i < n; i++) {
            wakes[i] = rows[i]->wake;
            wake_ctx[i] = rows[i]->wake_ctx;
            rows[i]->done = 1;
        }
        pthread_cond_broadcast(&done_cv);
        pthread_mutex_unlock(&q_mu);
        for (i = 0; i < n; i++)
            if (wakes[i])
                wakes[i](wake_ctx[i]);
    }
    PQfinish(c);
    free(rows);
    free(wakes);
    free(wake_ctx);
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
    metrics_ingest_queue(ingest_queue_depth, q_max, nthreads);
    srv_log("info", "ingest: %u committer(s), batch %u, queue %u", nthreads, batch_max, q_max);
    return SRV_OK;
}

void ingest__commit_hold(int on)
{
    pthread_mutex_lock(&q_mu);
    held = on;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_mu);
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
