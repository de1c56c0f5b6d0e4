/* spool.h - the agent's crash-safe store of signed snapshots awaiting upload.
 *
 * One file per snapshot, named by its sequence number
 * (`00000000000000000042.snap`), written to a temporary name, fsynced,
 * renamed and the directory fsynced.  A fixed header (magic, version, seq,
 * priority, created time, length, CRC32C of the envelope) precedes the
 * envelope.  spool_open() verifies every file; a corrupt or truncated one is
 * moved to quarantine/ and counted.  Sequence numbers are allocated so that
 * the server ends up with contiguous numbers after a crash at any point; every
 * number that will never reach the server (dropped by the cap, quarantined,
 * dead-lettered) is recorded as a gap and reported.  docs/SPOOL.md has the
 * on-disk layout and the argument.
 *
 * Thread-safe: one producer (the pipeline puts) and one consumer (the
 * uploader takes) may call concurrently.  Functions return 0 or a negative
 * SPOOL_E* code; out-parameters are written only on success. */
#ifndef PRECURSOR_SPOOL_H
#define PRECURSOR_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_MAX_ENVELOPE (80u << 20)  /* above WIRE_MAX_SAMPLES_BYTES + metadata */
#define SPOOL_MAX_GAP_RANGES 256        /* ranges kept for heartbeats; older merge into counters */

enum spool_error {
    SPOOL_OK = 0,
    SPOOL_EIO = -1,         /* a system call failed (errno logged) */
    SPOOL_EINVAL = -2,      /* bad argument, e.g. seq is not spool_next_seq() */
    SPOOL_ENOMEM = -3,
    SPOOL_ENOENT = -4,      /* no such snapshot / spool empty */
    SPOOL_ETOOBIG = -5,     /* envelope larger than SPOOL_MAX_ENVELOPE or the cap */
    SPOOL_EDROPPED = -6,    /* cap reached: this snapshot itself was dropped (seq used, gap recorded) */
    SPOOL_ECORRUPT = -7,    /* file failed its header or checksum (it was quarantined) */
    SPOOL_ETIMEDOUT = -8,   /* spool_wait: nothing arrived in time */
    SPOOL_EBUSY = -9        /* spool_open: another spool handle (another agent) has the folder */
};

/* Why a sequence number will never reach the server. */
enum spool_gap_kind {
    SPOOL_GAP_DROPPED = 1,      /* evicted by the disk cap */
    SPOOL_GAP_QUARANTINED = 2,  /* failed verification on open or read */
    SPOOL_GAP_DEAD = 3          /* server refused it for good (dead/) */
};

/* Inclusive range [first, last] of sequence numbers with one gap kind. */
struct spool_gap {
    uint64_t first;
    uint64_t last;
    int kind;                   /* enum spool_gap_kind */
};

struct spool_stats {
    uint64_t files;             /* snapshots waiting in the spool now */
    uint64_t bytes;             /* their size on disk, headers included */
    uint64_t cap_bytes;
    uint64_t spooled;           /* puts since open */
    uint64_t uploaded;          /* spool_done since open */
    uint64_t dropped;           /* by the cap, since open */
    uint64_t quarantined;       /* since open */
    uint64_t dead_lettered;     /* since open */
    uint64_t next_seq;
};

struct spool;

/* Open (creating dir, dir/quarantine and dir/dead when missing), scan and
 * verify.  cap_bytes bounds the bytes of waiting snapshots (0 = no cap).
 * The caller owns *out and releases it with spool_close(). */
int spool_open(const char *dir, uint64_t cap_bytes, struct spool **out);
void spool_close(struct spool *sp);

/* The number the next spool_put() must carry.  It does not advance until a
 * put succeeds (or the put's snapshot is dropped), so an envelope that fails
 * to encode leaves no gap.  Single producer. */
uint64_t spool_next_seq(struct spool *sp);

/* Store one envelope (copied to disk; the caller keeps its buffer).
 * priority: higher is kept longer under the cap.  Returns 0, SPOOL_EDROPPED
 * when the cap policy dropped this very snapshot (its seq is consumed and
 * recorded as a gap), or another error (seq not consumed).  Wakes waiters. */
int spool_put(struct spool *sp, uint64_t seq, uint8_t priority,
              const uint8_t *env, size_t len);

/* A put written as the envelope is made, so that the producer never holds
 * an envelope whole (the agent's encoder streams it: wire_encode_v2_planes_file).
 * spool_stream_begin(seq) creates `<name>.tmp` (seq must be
 * spool_next_seq()); append, patch and read work on the envelope's bytes
 * (offsets from its first byte; patch and read within what was appended);
 * spool_stream_commit() writes the header (length, CRC32C: kept up while the
 * envelope was appended and read back, so it costs no further reading),
 * fsyncs the file, then under the lock applies the cap policy, renames it
 * and fsyncs the folder exactly as spool_put does, with the same returns.
 * spool_stream_abort() removes the file (a failed encode: seq not used).
 * A crash at any point before the rename leaves only the `.tmp`, which
 * spool_open() removes.  Producer only, one stream at a time; the file does
 * not count against the cap until it is committed (disk may briefly hold
 * the cap plus the one being written). */
int spool_stream_begin(struct spool *sp, uint64_t seq);
int spool_stream_append(struct spool *sp, const void *p, size_t len);
int spool_stream_patch(struct spool *sp, uint64_t off, const void *p, size_t len);
int spool_stream_read(struct spool *sp, uint64_t off, void *p, size_t len);
int spool_stream_commit(struct spool *sp, uint8_t priority);
void spool_stream_abort(struct spool *sp);

/* Consumer side: the oldest waiting snapshot (lowest seq), read and
 * verified.  On success *env is malloc'd and owned by the caller; the
 * snapshot is marked in flight (the cap never evicts it) until spool_done(),
 * spool_dead_letter() or spool_release().  SPOOL_ENOENT when empty.  A file
 * that fails verification here is quarantined and the next one is tried. */
int spool_take(struct spool *sp, uint64_t *seq, uint8_t **env, size_t *len);
/* spool_take without holding the envelope in memory: the file is verified
 * in pieces and *fd (owned by the caller, who closes it) is left at the
 * envelope's first byte, *len bytes to read.  The uploader sends from it, so
 * a device's private memory does not grow by a snapshot while it uploads. */
int spool_take_fd(struct spool *sp, uint64_t *seq, int *fd, size_t *len);
/* Give an in-flight snapshot back without a verdict (upload will retry). */
void spool_release(struct spool *sp, uint64_t seq);
/* After the server's 2xx: delete it (the high-water counter is made durable first). */
int spool_done(struct spool *sp, uint64_t seq);
/* The server refused it for good: move to dead/ with a `<name>.reason` file. */
int spool_dead_letter(struct spool *sp, uint64_t seq, const char *reason);

/* Block until something is waiting, or timeout_ms passes (SPOOL_ETIMEDOUT),
 * or spool_wake() is called (returns 0 then, even if empty). */
int spool_wait(struct spool *sp, int timeout_ms);
void spool_wake(struct spool *sp);

void spool_get_stats(struct spool *sp, struct spool_stats *st);
/* Copy up to cap gap ranges (oldest first, merged), *n set to the count.
 * Totals over all time are also returned in *total_gaps when not NULL. */
int spool_gaps(struct spool *sp, struct spool_gap *out, size_t cap, size_t *n,
               uint64_t *total_gaps);

const char *spool_strerror(int err);

#endif
