/* ingest_int.h - what the ingest module's files share: its SQL, and the
 * row ingest.c hands to the committer (the parameters of INGEST_SQL_INSERT,
 * already formatted, and where the answer goes). */
#ifndef PRECURSOR_INGEST_INT_H
#define PRECURSOR_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server/db/db.h"
#include "server/ingest/ingest.h"

#define INGEST_NPARAMS 13

enum ingest_sql_id {
    INGEST_SQL_SEQ_LOOKUP,      /* device, seq, sha256 -> snapshot_id, same_bytes */
    INGEST_SQL_INSERT,          /* one row's INGEST_NPARAMS -> id when new */
    INGEST_SQL_BATCH_INSERT,    /* the same as arrays -> device_id, seq, id per new row */
    INGEST_SQL_DEVICES_SEEN,    /* devices[], seqs[]: last_seen, last_seq of a batch's devices */
    INGEST_SQL_STORED,          /* id -> envelope (binary), as received */
    INGEST_SQL_STORED_MANY,     /* ids, byte budget -> id (as text), envelope: binary */
    INGEST_SQL_COUNT
};
extern const struct db_sql ingest__sql[INGEST_SQL_COUNT];

struct ingest_row {
    char seq[24], tt[24], rate[40], stype[8], nch[8], pre[16], post[16], score[32];
    char *chans;                        /* owned (json_dumps) */
    const char *dev;                    /* borrowed from the caller's meta */
    /* A copy of the envelope for the features worker's handoff (NULL:
     * none), made before the row is queued and handed over by whoever
     * learns the row's id (the committer, before its COMMIT when it can:
     * the worker must not find the row before the copy), else freed. */
    uint8_t *handoff;
    size_t handoff_len;
    int64_t seq_num;
    const char *vals[INGEST_NPARAMS];
    int lens[INGEST_NPARAMS], fmts[INGEST_NPARAMS];
    /* filled by the committer */
    int err;
    int inserted;
    int64_t id;
    int done;
    unsigned batch_n;                   /* rows in its batch (debug timings) */
    struct timespec t_queued, t_taken, t_committed;
    /* Set for an asynchronous submit: called by the committer, without its
     * lock held, once the row's transaction ended (then the row is the
     * submitter's again). */
    void (*wake)(void *ctx);
    void *wake_ctx;
    struct ingest_row *next;
};

/* One upload on its way through the pipeline (ingest.c); outlives the
 * calling worker's stack while its row waits for the committer. */
struct wire_meta;
struct ingest_job {
    struct wire_meta *m;            /* owned; the row borrows from it */
    struct ingest_row row;
    uint8_t sha[32];
    struct ingest_result res;
    const char *reason;
    int queued;                     /* row handed to the committer */
    void (*wake)(void *ctx);        /* the async caller's resume */
    void *wake_ctx;
    struct timespec t0;             /* when the request reached ingest (metrics) */
};

/* The handoff's halves (ingest_handoff.c): a copy of buf when the budget
 * has room for it now (else NULL, counted as refused), and the put of such a
 * copy, which takes it (kept, or freed when it no longer fits): 1 kept. */
uint8_t *ingest__handoff_copy(const uint8_t *buf, size_t len);
int ingest__handoff_put_owned(int64_t id, uint8_t *copy, size_t len);
/* Hand over every inserted row's copy (rows[0..n), ids known). */
void ingest__handoff_rows(struct ingest_row *const *rows, unsigned n);

/* Queue row and wait until its transaction committed or failed.  0 with
 * row->err/inserted/id set, SRV_EOVERLOAD when the queue is full, or
 * -ENOENT-like SRV_EUNAVAIL when no committer runs (caller stores itself). */
int ingest__commit_submit(struct ingest_row *row);
int ingest__commit_running(void);

/* Queue row without waiting: suspend(ctx) is called under the queue lock,
 * before any committer can take the row, so the wake (row->wake, set by
 * the caller) always comes after it.  0 when queued; SRV_EOVERLOAD or
 * SRV_EUNAVAIL as above, suspend not called. */
int ingest__commit_submit_async(struct ingest_row *row, void (*suspend)(void *ctx));

/* Tests: while held (on != 0) the committers take nothing from the queue,
 * so rows queued meanwhile go in batches of batch_max when it is released,
 * whatever the machine's speed.  A stop releases it. */
void ingest__commit_hold(int on);

#endif
