/* ingest_int.h - the row ingest.c hands to the committer: the statement
 * parameters of DB_SNAPSHOT_INSERT, already formatted, and where the answer
 * goes. */
#ifndef PRECURSOR_INGEST_INT_H
#define PRECURSOR_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>

#define INGEST_NPARAMS 13

struct ingest_row {
    char seq[24], tt[24], rate[40], stype[8], nch[8], pre[16], post[16], score[32];
    char *chans;                        /* owned (json_dumps) */
    const char *dev;                    /* borrowed from the caller's meta */
    int64_t seq_num;
    const char *vals[INGEST_NPARAMS];
    int lens[INGEST_NPARAMS], fmts[INGEST_NPARAMS];
    /* filled by the committer */
    int err;
    int inserted;
    int64_t id;
    int done;
    struct ingest_row *next;
};

/* Queue row and wait until its transaction committed or failed.  0 with
 * row->err/inserted/id set, SRV_EOVERLOAD when the queue is full, or
 * -ENOENT-like SRV_EUNAVAIL when no committer runs (caller stores itself). */
int ingest__commit_submit(struct ingest_row *row);
int ingest__commit_running(void);

#endif
