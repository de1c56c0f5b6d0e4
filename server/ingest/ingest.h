/* ingest.h - the snapshot ingest pipeline, independent of HTTP.
 *
 * Order (each step only after the previous one passed; the http layer has
 * already refused a Content-Length over the cap before reading the body):
 * parse and bound the header (the device id is in it; wire_parse also
 * bounds the zstd frame header, an O(1) look at a few bytes) -> device
 * lookup (cached, server/fleet) -> Ed25519 over the raw bytes -> per-device
 * token bucket -> sequence check (same bytes again: the stored id; same seq,
 * other bytes: conflict; far ahead of the device's last: refused) -> bounded
 * decompression (the only time the samples are decompressed) -> store the
 * envelope as received with its metadata and SHA-256, through the group
 * committer.  Returns only after the row is committed (synchronous_commit
 * on).  A new row's envelope is also copied to the features worker's
 * handoff (below), put there by the committer before its COMMIT. */
#ifndef PRECURSOR_INGEST_H
#define PRECURSOR_INGEST_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct ingest_result {
    int64_t id;
    char device_id[65];
    uint64_t seq;
    int created;            /* 1: stored now (201); 0: stored before (200) */
    unsigned retry_after;   /* seconds, with SRV_ERATELIMIT / SRV_EOVERLOAD */
    int stage;              /* INGEST_STAGE_* reached (tests check the order) */
};

/* The steps, in order; ingest_result.stage is the last one entered. */
enum ingest_stage {
    INGEST_STAGE_PARSE = 1,
    INGEST_STAGE_DEVICE,
    INGEST_STAGE_SIGNATURE,
    INGEST_STAGE_RATE,
    INGEST_STAGE_SEQ,
    INGEST_STAGE_DECODE,
    INGEST_STAGE_STORE
};

/* buf/len borrowed.  0 or a negative SRV_E* code; *why (may be NULL) gets a
 * static human-readable reason for the error.  out is filled on every
 * return (stage, retry_after), the rest only on success. */
int ingest_envelope(const uint8_t *buf, size_t len, struct ingest_result *out,
                    const char **why);

/* The same pipeline without holding the calling thread while the row
 * waits for the group committer.  When the row is queued, w->suspend(ctx)
 * runs first (under the queue lock), 0 is returned with *job set, and the
 * committer later calls w->resume(ctx) from its own thread; the caller then
 * gets the answer from ingest_envelope_finish, which frees the job.  buf
 * must stay valid until then.  *job NULL: finished at once, as
 * ingest_envelope (also when no committer runs, and always when w is NULL:
 * then the row waits for the committer on the calling thread). */
struct ingest_job;
struct srv_waker;
int ingest_envelope_start(const uint8_t *buf, size_t len, const struct srv_waker *w,
                          struct ingest_job **job, struct ingest_result *out,
                          const char **why);
int ingest_envelope_finish(struct ingest_job *job, struct ingest_result *out,
                           const char **why);

/* A stored envelope, exactly as the device sent it: *r holds it (the caller
 * PQclears it, also on error), *buf and *len point into it.  0,
 * SRV_ENOTFOUND when no snapshot has that id, or a database error. */
int ingest_stored(int64_t id, PGresult **r, const uint8_t **buf, size_t *len);

/* Several stored envelopes in one round trip, for readers that walk many
 * (dataset exports): the ids' rows in the order given, as many as fit
 * max_bytes of envelopes (always the first that exists); an id with no
 * snapshot has no row.  *r (binary result: columns "id", digits as text,
 * and "envelope") is the caller's to PQclear, also on error. */
int ingest_stored_many(const int64_t *ids, size_t n, size_t max_bytes, PGresult **r);
/* The same in two halves (db_send_own, db_wait_own): the query sent, then
 * its answer waited for, with other work between on the same thread; every
 * successful send is followed by its wait, and nothing else on this
 * thread's connection between. */
int ingest_stored_many_send(const int64_t *ids, size_t n, size_t max_bytes);
int ingest_stored_many_wait(PGresult **r);

/* The handoff (ingest_handoff.c): the envelope of each snapshot stored by
 * this process, copied after its row committed (a new row only, not a
 * repeat), kept in memory for the one reader of every new snapshot, the
 * feature worker, in front of the stored rows: what is not here (budget
 * full, a restart, forgotten) is read from the database as before.
 * Off (budget 0) until configured, so a process without that reader keeps
 * nothing.  Thread-safe. */
struct ingest_handoff_stats {
    size_t entries, bytes, budget;
    unsigned long kept, taken, refused;     /* since the last configure */
};
/* Forget everything and keep at most max_bytes of envelopes from now on
 * (0: keep none). */
void ingest_handoff_configure(size_t max_bytes);
/* Keep a copy of the stored snapshot id's envelope: 1, or 0 when off or
 * it does not fit the budget (nothing is made room for). */
int ingest_handoff_put(int64_t id, const uint8_t *buf, size_t len);
/* Take (remove) the kept envelopes of ids[0..n), which must be ascending:
 * bufs[k] (malloc'd, the caller frees) and lens[k] for the ones kept, NULL
 * and 0 for the rest.  How many were kept. */
size_t ingest_handoff_take(const int64_t *ids, size_t n, uint8_t **bufs, size_t *lens);
/* Drop what is kept for every id <= id (the reader will not ask again). */
void ingest_handoff_forget_upto(int64_t id);
void ingest_handoff_stats(struct ingest_handoff_stats *s);

/* Map a WIRE_E* code to the SRV_E* code the API answers with. */
int ingest_wire_error(int wire_err);

/* Group commit (ingest_commit.c).  Start `committers` threads, each with
 * its own connection, taking up to batch_max queued snapshots into one
 * transaction (libpq pipeline mode: BEGIN, one INSERT per snapshot, COMMIT,
 * one round trip).  At most queue_max snapshots wait; beyond that uploads
 * get SRV_EOVERLOAD.  Without a running committer ingest stores on the
 * calling thread's connection, one transaction per snapshot. */
int ingest_commit_start(const char *conninfo, unsigned committers, unsigned queue_max,
                        unsigned batch_max);
void ingest_commit_stop(void);
unsigned ingest_queue_depth(void);
unsigned ingest_queue_max(void);

/* The POST /api/v1/snapshots handler (ingest_http.c), whole on the calling
 * thread, and in halves around the committer (see ingest_envelope_start) so
 * the http layer parks the connection rather than the thread. */
struct srv_request;
struct srv_response;
struct srv_park;
int ingest_api_post(struct srv_request *rq, struct srv_response *rs);
extern const struct srv_park ingest_api_post_park;

#endif
