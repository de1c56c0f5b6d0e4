/* spool.c - crash-safe, capped, one-file-per-snapshot spool.
 *
 * On-disk layout of a spool file (all integers little-endian):
 *
 *   offset size  field
 *   0      4     magic "PSPL"
 *   4      2     version (1)
 *   6      1     priority (higher is kept longer under the cap)
 *   7      1     reserved, 0
 *   8      8     seq
 *   16     8     created, unix microseconds
 *   24     8     envelope length L (<= SPOOL_MAX_ENVELOPE)
 *   32     4     CRC32C of the envelope
 *   36     4     CRC32C of bytes 0..35
 *   40     L     the envelope, exactly as it is uploaded
 *
 * Beside the snapshots: `hiwater` (highest seq ever removed while it was the
 * highest present) and `gaps` (seq ranges that will never reach the server,
 * with why, sorted), both replaced atomically.  The commit point of every removal is
 * the durable state file written before the unlink; docs/SPOOL.md gives the
 * argument that numbers stay contiguous on the server. */
#include "agent/spool/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN 40
#define HDR_MAGIC "PSPL"
#define HDR_VERSION 1
#define NAME_DIGITS 20
#define NAME_LEN (NAME_DIGITS + 5)   /* "<20 digits>.snap" */
#define STATE_MAX 65536              /* bound for hiwater/gaps files */
/* Snapshots kept in dead/ and in quarantine/ each, the newest: their numbers
 * are in `gaps` already, the files are only for a person to look at, and a
 * server that refuses every upload (a revoked device: 403) would otherwise
 * fill the disk past --spool-cap-mb a snapshot at a time. */
#define KEPT_MAX 32

struct entry {
    uint64_t seq;
    uint64_t size;              /* on disk, header included */
    uint8_t priority;
    bool inflight;
};

struct spool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int dirfd, qfd, deadfd;
    uint64_t cap;

    struct entry *ents;         /* sorted by seq */
    size_t n, alloc;
    uint64_t bytes;

    uint64_t next_seq;
    uint64_t hiwater;           /* durable value of the hiwater file */

    struct spool_gap gaps[SPOOL_MAX_GAP_RANGES];
    size_t ngaps;
    uint64_t total_gaps;

    uint64_t spooled, uploaded, dropped, quarantined, dead;
    bool woken;

    /* the producer's streamed put (spool_stream_*), touched by it alone */
    int wfd;                    /* <seq>.snap.tmp, -1 when none is open */
    uint64_t wseq, wlen;        /* its seq; envelope bytes appended */
    uint64_t wcrc_at;           /* wcrc is the CRC32C of the envelope's first wcrc_at bytes */
    uint32_t wcrc;
};

/* ---- CRC32C (Castagnoli), table driven: cheap, no dependency ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

/* crc32c over p, continuing from crc (0 to start). */
static uint32_t crc32c_more(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t c = crc ^ 0xFFFFFFFFu;
    pthread_once(&crc_once, crc_init);
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
    return crc32c_more(0, p, n);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- small file-system helpers ---- */

static void snap_name(char *buf, size_t cap, uint64_t seq)
{
    snprintf(buf, cap, "%020" PRIu64 ".snap", seq);
}

/* Parse "<20 digits>.snap" (suffix may be longer when allow_suffix, e.g.
 * ".snap.reason"); returns 0 and *seq, or -1. */
static int parse_name(const char *name, uint64_t *seq, bool exact)
{
    uint64_t v = 0;
    for (int i = 0; i < NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (strncmp(name + NAME_DIGITS, ".snap", 5) != 0)
        return -1;
    if (exact && name[NAME_LEN] != '\0')
        return -1;
    *seq = v;
    return 0;
}

/* Every write of the spool goes to a place it names (the files it creates
 * are written from offset 0), so one loop serves them all. */
static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* CRC-32C of len bytes of fd from off, read in pieces: a file checked
 * without holding it.  0, or -1 when it cannot be read whole. */
static int file_crc32c(int fd, uint64_t off, uint64_t len, uint32_t *crc)
{
    uint8_t piece[4096];

    *crc = 0;
    for (uint64_t at = 0; at < len;) {
        size_t k = len - at < sizeof piece ? (size_t)(len - at) : sizeof piece;

        if (pread_all(fd, piece, k, off + at) < 0)
            return -1;
        *crc = crc32c_more(*crc, piece, k);
        at += k;
    }
    return 0;
}

/* Replace dirfd/name with the bytes, durably: tmp, fsync, rename, fsync dir.
 * The two buffers are written back to back (header + body). */
static int durable_write(int dirfd, const char *name, const uint8_t *a, size_t alen,
                         const uint8_t *b, size_t blen)
{
    char tmp[NAME_LEN + 16];
    int fd, rc = SPOOL_EIO;

    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "spool: create %s: %s\n", tmp, strerror(errno));
        return SPOOL_EIO;
    }
    if (pwrite_all(fd, a, alen, 0) < 0 || (blen && pwrite_all(fd, b, blen, alen) < 0) ||
        fsync(fd) < 0) {
        fprintf(stderr, "spool: write %s: %s\n", tmp, strerror(errno));
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return SPOOL_EIO;
    }
    close(fd);
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        fprintf(stderr, "spool: rename %s: %s\n", tmp, strerror(errno));
        unlinkat(dirfd, tmp, 0);
        return SPOOL_EIO;
    }
    if (fsync(dirfd) < 0) {
        fprintf(stderr, "spool: fsync dir: %s\n", strerror(errno));
        goto out;
    }
    rc = SPOOL_OK;
out:
    return rc;
}

/* Read a whole small file (bounded by STATE_MAX) into a NUL-terminated buffer. */
static char *read_small(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    char *buf;
    ssize_t r;
    size_t got = 0;

    if (fd < 0)
        return NULL;
    buf = malloc(STATE_MAX + 1);
    if (!buf) {
        close(fd);
        return NULL;
    }
    while (got < STATE_MAX && (r = read(fd, buf + got, STATE_MAX - got)) > 0)
        got += (size_t)r;
    close(fd);
    buf[got] = '\0';
    return buf;
}

/* ---- gaps and hiwater (callers hold mu) ---- */

/* Ranges stay sorted by seq and merged with equal-kind neighbours, so the
 * heartbeat's list is short and gaps_max() is the last range's end. */
static void gap_add_mem(struct spool *sp, uint64_t seq, int kind)
{
    size_t pos = 0;
    struct spool_gap *prev, *next;

    while (pos < sp->ngaps && sp->gaps[pos].last < seq)
        pos++;
    if (pos < sp->ngaps && sp->gaps[pos].first <= seq)
        return;                             /* already recorded (replay after a crash) */
    sp->total_gaps++;
    prev = pos > 0 ? &sp->gaps[pos - 1] : NULL;
    next = pos < sp->ngaps ? &sp->gaps[pos] : NULL;
    if (prev && prev->kind == kind && prev->last + 1 == seq) {
        prev->last = seq;
        if (next && next->kind == kind && next->first == seq + 1) {
            prev->last = next->last;
            memmove(next, next + 1, (sp->ngaps - pos - 1) * sizeof *next);
            sp->ngaps--;
        }
        return;
    }
    if (next && next->kind == kind && next->first == seq + 1) {
        next->first = seq;
        return;
    }
    if (sp->ngaps == SPOOL_MAX_GAP_RANGES) {
        /* The lowest range leaves the report; the total keeps counting it. */
        if (pos == 0)
            return;
        memmove(&sp->gaps[0], &sp->gaps[1], (SPOOL_MAX_GAP_RANGES - 1) * sizeof sp->gaps[0]);
        sp->ngaps--;
        pos--;
    }
    memmove(&sp->gaps[pos + 1], &sp->gaps[pos], (sp->ngaps - pos) * sizeof sp->gaps[0]);
    sp->gaps[pos] = (struct spool_gap){ seq, seq, kind };
    sp->ngaps++;
}

static bool gap_has(const struct spool *sp, uint64_t seq, int *kind)
{
    for (size_t i = 0; i < sp->ngaps; i++)
        if (seq >= sp->gaps[i].first && seq <= sp->gaps[i].last) {
            *kind = sp->gaps[i].kind;
            return true;
        }
    return false;
}

static int gaps_save(struct spool *sp)
{
    /* 24 + 2*21 + 4 bytes a line at most */
    size_t cap = 64 + sp->ngaps * 72;
    char *buf = malloc(cap);
    size_t off;
    int rc;

    if (!buf)
        return SPOOL_ENOMEM;
    off = (size_t)snprintf(buf, cap, "precursor-gaps 1\ntotal %" PRIu64 "\n", sp->total_gaps);
    for (size_t i = 0; i < sp->ngaps && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%" PRIu64 " %" PRIu64 " %d\n",
                                sp->gaps[i].first, sp->gaps[i].last, sp->gaps[i].kind);
    rc = durable_write(sp->dirfd, "gaps", (const uint8_t *)buf, off < cap ? off : cap - 1,
                       NULL, 0);
    free(buf);
    return rc;
}

static void gaps_load(struct spool *sp)
{
    char *buf = read_small(sp->dirfd, "gaps");
    char *line, *save = NULL;
    int ln = 0;

    if (!buf)
        return;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save), ln++) {
        unsigned long long a, b;
        int k;
        if (ln == 0) {
            if (strcmp(line, "precursor-gaps 1") != 0) {
                fprintf(stderr, "spool: gaps file has an unknown header, ignored\n");
                break;
            }
        } else if (ln == 1) {
            if (sscanf(line, "total %llu", &a) == 1)
                sp->total_gaps = a;
        } else if (sscanf(line, "%llu %llu %d", &a, &b, &k) == 3 && a <= b && a > 0 &&
                   k >= SPOOL_GAP_DROPPED && k <= SPOOL_GAP_DEAD &&
                   sp->ngaps < SPOOL_MAX_GAP_RANGES) {
            sp->gaps[sp->ngaps++] = (struct spool_gap){ a, b, k };
        }
    }
    free(buf);
}

static uint64_t gaps_max(const struct spool *sp)
{
    return sp->ngaps ? sp->gaps[sp->ngaps - 1].last : 0;
}

static int hiwater_save(struct spool *sp, uint64_t seq)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", seq);
    int rc = durable_write(sp->dirfd, "hiwater", (const uint8_t *)buf, (size_t)n, NULL, 0);
    if (rc == 0)
        sp->hiwater = seq;
    return rc;
}

/* ---- index (callers hold mu) ---- */

static struct entry *find(struct spool *sp, uint64_t seq, size_t *idx)
{
    size_t lo = 0, hi = sp->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->ents[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sp->n && sp->ents[lo].seq == seq) {
        *idx = lo;
        return &sp->ents[lo];
    }
    return NULL;
}

static int index_insert(struct spool *sp, struct entry e)
{
    size_t pos = sp->n;
    if (sp->n == sp->alloc) {
        size_t na = sp->alloc ? sp->alloc * 2 : 64;
        struct entry *ne = realloc(sp->ents, na * sizeof *ne);
        if (!ne)
            return SPOOL_ENOMEM;
        sp->ents = ne;
        sp->alloc = na;
    }
    while (pos > 0 && sp->ents[pos - 1].seq > e.seq)
        pos--;
    memmove(&sp->ents[pos + 1], &sp->ents[pos], (sp->n - pos) * sizeof e);
    sp->ents[pos] = e;
    sp->n++;
    sp->bytes += e.size;
    return 0;
}

static void index_remove(struct spool *sp, size_t idx)
{
    sp->bytes -= sp->ents[idx].size;
    memmove(&sp->ents[idx], &sp->ents[idx + 1], (sp->n - idx - 1) * sizeof sp->ents[0]);
    sp->n--;
}

/* ---- verification ---- */

/* Open a spool file and check its header against the file: magic, version,
 * header CRC, the sequence number its name promises, and an envelope length
 * within bounds that matches the file's size.  On success *fd_out is
 * positioned at the envelope's first byte and owned by the caller. */
static int open_header_checked(int dirfd, const char *name, uint64_t want_seq, int *fd_out,
                               uint8_t hdr[HDR_LEN], uint64_t *len)
{
    struct stat st;
    uint64_t l;
    int rc = SPOOL_ECORRUPT;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? SPOOL_ENOENT : SPOOL_EIO;
    if (fstat(fd, &st) < 0) {
        rc = SPOOL_EIO;
        goto out;
    }
    if (st.st_size < HDR_LEN || pread_all(fd, hdr, HDR_LEN, 0) < 0)
        goto out;
    if (memcmp(hdr, HDR_MAGIC, 4) != 0 || get_le(hdr + 4, 2) != HDR_VERSION ||
        (uint32_t)get_le(hdr + 36, 4) != crc32c(hdr, 36))
        goto out;
    l = get_le(hdr + 24, 8);
    if (get_le(hdr + 8, 8) != want_seq || l > SPOOL_MAX_ENVELOPE ||
        (uint64_t)st.st_size != HDR_LEN + l)
        goto out;
    *fd_out = fd;
    *len = l;
    return SPOOL_OK;
out:
    close(fd);
    return rc;
}

/* Open a spool file and verify it as load_file does, reading the envelope in
 * pieces: on success *fd_out is positioned at the envelope's first byte and
 * owned by the caller.  One piece of memory instead of the whole envelope. */
static int open_file_checked(int dirfd, const char *name, uint64_t want_seq, int *fd_out,
                             uint8_t *prio, size_t *len)
{
    uint8_t hdr[HDR_LEN];
    uint64_t l;
    uint32_t crc;
    int rc, fd;

    if ((rc = open_header_checked(dirfd, name, want_seq, &fd, hdr, &l)) != SPOOL_OK)
        return rc;
    rc = SPOOL_ECORRUPT;
    if (file_crc32c(fd, HDR_LEN, l, &crc) < 0 || crc != (uint32_t)get_le(hdr + 32, 4))
        goto out;
    if (lseek(fd, HDR_LEN, SEEK_SET) != HDR_LEN) {
        rc = SPOOL_EIO;
        goto out;
    }
    *fd_out = fd;
    if (prio)
        *prio = hdr[6];
    *len = l;
    return SPOOL_OK;
out:
    close(fd);
    return rc;
}

/* Read and verify the file; on success *env (malloc'd) and header fields. */
static int load_file(int dirfd, const char *name, uint64_t want_seq, uint8_t *prio,
                     uint8_t **env, size_t *len)
{
    uint8_t hdr[HDR_LEN];
    uint8_t *buf = NULL;
    uint64_t l;
    int rc, fd;

    if ((rc = open_header_checked(dirfd, name, want_seq, &fd, hdr, &l)) != SPOOL_OK)
        return rc;
    rc = SPOOL_ECORRUPT;
    buf = malloc(l ? l : 1);
    if (!buf) {
        rc = SPOOL_ENOMEM;
        goto out;
    }
    if (pread_all(fd, buf, l, HDR_LEN) < 0 || crc32c(buf, l) != (uint32_t)get_le(hdr + 32, 4))
        goto out;
    *prio = hdr[6];
    *env = buf;
    *len = l;
    buf = NULL;
    rc = SPOOL_OK;
out:
    free(buf);
    close(fd);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Keep the newest KEPT_MAX snapshots of dead/ or quarantine/ (dirfd), each
 * with its .reason.  Never the highest one, so the next sequence number
 * (one above the highest name there, among others) is unchanged. */
static void prune_kept(int dirfd, const char *what)
{
    uint64_t *seqs = NULL, s;
    size_t n = 0, cap = 0, removed = 0;
    int fd = dup(dirfd);
    DIR *d;
    struct dirent *de;

    if (fd < 0)
        return;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (parse_name(de->d_name, &s, true) != 0)
            continue;
        if (n == cap) {
            uint64_t *g = realloc(seqs, (cap ? cap * 2 : 64) * sizeof(*seqs));

            if (!g)
                break;
            seqs = g;
            cap = cap ? cap * 2 : 64;
        }
        seqs[n++] = s;
    }
    closedir(d);
    if (n > KEPT_MAX) {
        qsort(seqs, n, sizeof(*seqs), cmp_u64);
        for (size_t i = 0; i + KEPT_MAX < n; i++) {
            char name[NAME_LEN + 16];

            snap_name(name, sizeof name, seqs[i]);
            if (unlinkat(dirfd, name, 0) == 0)
                removed++;
            strcat(name, ".reason");
            unlinkat(dirfd, name, 0);
        }
        fsync(dirfd);
        fprintf(stderr, "spool: %zu older snapshot%s removed from %s/ (the newest %d kept; "
                        "their numbers stay in gaps)\n", removed, removed == 1 ? "" : "s", what,
                KEPT_MAX);
    }
    free(seqs);
}

/* Move a bad file to quarantine/ (replacing an older one of the same name). */
static void quarantine_file(struct spool *sp, const char *name)
{
    if (renameat(sp->dirfd, name, sp->qfd, name) < 0) {
        fprintf(stderr, "spool: quarantine %s: %s; removing it\n", name, strerror(errno));
        unlinkat(sp->dirfd, name, 0);
    }
    fsync(sp->qfd);
    fsync(sp->dirfd);
    sp->quarantined++;
    fprintf(stderr, "spool: %s failed verification, moved to quarantine/\n", name);
    prune_kept(sp->qfd, "quarantine");
}

static uint64_t max_name_in(int dirfd)
{
    uint64_t mx = 0, s;
    int fd = dup(dirfd);
    DIR *d;
    struct dirent *de;

    if (fd < 0)
        return 0;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL)
        if (parse_name(de->d_name, &s, false) == 0 && s > mx)
            mx = s;
    closedir(d);
    return mx;
}

static int open_subdir(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return -1;
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Scan the spool folder: remove temps, verify snapshots, finish removals
 * that a crash interrupted after their commit point. */
static int scan(struct spool *sp)
{
    int fd = dup(sp->dirfd);
    DIR *d;
    struct dirent *de;
    uint64_t mx = 0;
    int rc = SPOOL_OK;

    if (fd < 0)
        return SPOOL_EIO;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return SPOOL_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t nl = strlen(nm);
        uint64_t seq;
        uint8_t prio;
        size_t len;
        int kind, lr, fd_env;

        if (nl > 4 && strcmp(nm + nl - 4, ".tmp") == 0) {
            /* Never renamed: its number was never uploaded, reuse is safe. */
            unlinkat(sp->dirfd, nm, 0);
            continue;
        }
        if (parse_name(nm, &seq, true) != 0)
            continue;
        if (seq > mx)
            mx = seq;
        if (gap_has(sp, seq, &kind)) {
            /* Crash after the gap was recorded, before the file left. */
            if (kind == SPOOL_GAP_DEAD) {
                if (renameat(sp->dirfd, nm, sp->deadfd, nm) < 0)
                    unlinkat(sp->dirfd, nm, 0);
            } else {
                unlinkat(sp->dirfd, nm, 0);
            }
            continue;
        }
        /* verified in pieces: opening a full spool holds no envelope */
        lr = open_file_checked(sp->dirfd, nm, seq, &fd_env, &prio, &len);
        if (lr == SPOOL_ECORRUPT) {
            /* The gap is durable before the file moves, as for every removal. */
            gap_add_mem(sp, seq, SPOOL_GAP_QUARANTINED);
            rc = gaps_save(sp);
            if (rc != 0)
                break;
            quarantine_file(sp, nm);
            continue;
        }
        if (lr == SPOOL_ENOENT)
            continue;
        if (lr != SPOOL_OK) {
            rc = lr;
            break;
        }
        close(fd_env);
        rc = index_insert(sp, (struct entry){ seq, HDR_LEN + len, prio, false });
        if (rc != 0)
            break;
    }
    closedir(d);
    if (rc == 0)
        fsync(sp->dirfd);
    {
        uint64_t hi = mx;
        uint64_t dm = max_name_in(sp->deadfd), qm = max_name_in(sp->qfd);
        if (dm > hi)
            hi = dm;
        if (qm > hi)
            hi = qm;
        if (sp->hiwater > hi)
            hi = sp->hiwater;
        if (gaps_max(sp) > hi)
            hi = gaps_max(sp);
        sp->next_seq = hi + 1;
    }
    return rc;
}

int spool_open(const char *dir, uint64_t cap_bytes, struct spool **out)
{
    struct spool *sp;
    pthread_condattr_t ca;
    char *hw;
    int rc;

    if (!dir || !out)
        return SPOOL_EINVAL;
    sp = calloc(1, sizeof *sp);
    if (!sp)
        return SPOOL_ENOMEM;
    sp->dirfd = sp->qfd = sp->deadfd = sp->wfd = -1;
    sp->cap = cap_bytes;
    pthread_mutex_init(&sp->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sp->cv, &ca);
    pthread_condattr_destroy(&ca);

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "spool: mkdir %s: %s\n", dir, strerror(errno));
        rc = SPOOL_EIO;
        goto fail;
    }
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0 || (sp->qfd = open_subdir(sp->dirfd, "quarantine")) < 0 ||
        (sp->deadfd = open_subdir(sp->dirfd, "dead")) < 0) {
        fprintf(stderr, "spool: open %s: %s\n", dir, strerror(errno));
        rc = SPOOL_EIO;
        goto fail;
    }
    /* One writer per folder, before anything is touched: a second agent on
     * the same spool (a unit running and one started by hand with the same
     * config) removed the first one's .tmp as it wrote it and handed out its
     * sequence numbers again.  The lock goes with the folder's descriptor
     * (spool_close, or the process's end however it ends). */
    if (flock(sp->dirfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? SPOOL_EBUSY : SPOOL_EIO;
        if (rc == SPOOL_EIO)
            fprintf(stderr, "spool: lock %s: %s\n", dir, strerror(errno));
        goto fail;
    }
    hw = read_small(sp->dirfd, "hiwater");
    if (hw) {
        unsigned long long v;
        if (sscanf(hw, "%llu", &v) == 1)
            sp->hiwater = v;
        free(hw);
    }
    unlinkat(sp->dirfd, "hiwater.tmp", 0);
    unlinkat(sp->dirfd, "gaps.tmp", 0);
    gaps_load(sp);
    rc = scan(sp);
    if (rc != 0)
        goto fail;
    *out = sp;
    return SPOOL_OK;
fail:
    spool_close(sp);
    return rc;
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    spool_stream_abort(sp);
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    if (sp->qfd >= 0)
        close(sp->qfd);
    if (sp->deadfd >= 0)
        close(sp->deadfd);
    pthread_cond_destroy(&sp->cv);
    pthread_mutex_destroy(&sp->mu);
    free(sp->ents);
    free(sp);
}

uint64_t spool_next_seq(struct spool *sp)
{
    uint64_t s;
    pthread_mutex_lock(&sp->mu);
    s = sp->next_seq;
    pthread_mutex_unlock(&sp->mu);
    return s;
}

/* Cap policy: evict the lowest priority, then the oldest, among snapshots
 * not in flight whose priority is at most the new one's.  If that cannot
 * make room, the new snapshot is the one dropped.  Returns the number of
 * victims chosen into victims[] (sorted out of the index by the caller),
 * or -1 when the new snapshot must be dropped. */
static long choose_victims(struct spool *sp, uint64_t need, uint8_t prio, size_t *victims)
{
    uint64_t freed = 0;
    long nv = 0;
    bool *taken;

    if (sp->cap == 0 || sp->bytes + need <= sp->cap)
        return 0;
    if (need > sp->cap)
        return -1;
    taken = calloc(sp->n ? sp->n : 1, sizeof *taken);
    if (!taken)
        return -1;
    while (sp->bytes - freed + need > sp->cap) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < sp->n; i++) {
            const struct entry *e = &sp->ents[i];
            if (taken[i] || e->inflight || e->priority > prio)
                continue;
            if (best == SIZE_MAX || e->priority < sp->ents[best].priority)
                best = i;               /* ents are in seq order: first is oldest */
        }
        if (best == SIZE_MAX) {
            nv = -1;
            break;
        }
        taken[best] = true;
        victims[nv++] = best;
        freed += sp->ents[best].size;
    }
    free(taken);
    return nv;
}

static int cmp_size_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void header_make(uint8_t hdr[HDR_LEN], uint64_t seq, uint8_t priority, uint64_t len,
                        uint32_t env_crc)
{
    struct timespec ts;

    memcpy(hdr, HDR_MAGIC, 4);
    put_le(hdr + 4, HDR_VERSION, 2);
    hdr[6] = priority;
    hdr[7] = 0;
    put_le(hdr + 8, seq, 8);
    clock_gettime(CLOCK_REALTIME, &ts);
    put_le(hdr + 16, (uint64_t)((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000), 8);
    put_le(hdr + 24, len, 8);
    put_le(hdr + 32, env_crc, 4);
    put_le(hdr + 36, crc32c(hdr, 36), 4);
}

/* One put with mu held, for spool_put and spool_stream_commit: the cap
 * policy (evict, or drop this snapshot), then place() makes the file
 * <name> durable, then the index and next_seq.  Written under the lock: one
 * producer, and the consumer only waits behind it for the length of one
 * fsync. */
static int put_locked(struct spool *sp, uint64_t seq, uint8_t priority, uint64_t len,
                      int (*place)(struct spool *sp, const char *name, void *arg), void *arg)
{
    char name[NAME_LEN + 1];
    size_t *victims = NULL;
    long nv;
    int rc;

    if (seq != sp->next_seq)
        return SPOOL_EINVAL;
    victims = malloc((sp->n + 1) * sizeof *victims);
    if (!victims)
        return SPOOL_ENOMEM;
    nv = choose_victims(sp, HDR_LEN + len, priority, victims);
    if (nv < 0) {
        /* The new snapshot is the lowest: record its number as a gap. */
        gap_add_mem(sp, seq, SPOOL_GAP_DROPPED);
        rc = gaps_save(sp);
        if (rc == 0) {
            sp->dropped++;
            sp->next_seq++;
            rc = SPOOL_EDROPPED;
            fprintf(stderr, "spool: cap reached, snapshot %" PRIu64 " dropped\n", seq);
        }
        goto out;
    }
    if (nv > 0) {
        for (long i = 0; i < nv; i++)
            gap_add_mem(sp, sp->ents[victims[i]].seq, SPOOL_GAP_DROPPED);
        rc = gaps_save(sp);      /* commit point of the evictions */
        if (rc != 0)
            goto out;
        qsort(victims, (size_t)nv, sizeof *victims, cmp_size_desc);
        for (long i = 0; i < nv; i++) {
            snap_name(name, sizeof name, sp->ents[victims[i]].seq);
            unlinkat(sp->dirfd, name, 0);
            fprintf(stderr, "spool: cap reached, dropped snapshot %" PRIu64 "\n",
                    sp->ents[victims[i]].seq);
            index_remove(sp, victims[i]);
            sp->dropped++;
        }
    }
    snap_name(name, sizeof name, seq);
    rc = place(sp, name, arg);
    if (rc != 0)
        goto out;
    rc = index_insert(sp, (struct entry){ seq, HDR_LEN + len, priority, false });
    if (rc != 0)
        goto out;       /* on disk; found again on the next open */
    sp->next_seq++;
    sp->spooled++;
    pthread_cond_broadcast(&sp->cv);
out:
    free(victims);
    return rc;
}

struct whole_put {
    const uint8_t *hdr, *env;
    size_t len;
};

static int place_whole(struct spool *sp, const char *name, void *arg)
{
    const struct whole_put *w = arg;

    return durable_write(sp->dirfd, name, w->hdr, HDR_LEN, w->env, w->len);
}

int spool_put(struct spool *sp, uint64_t seq, uint8_t priority,
              const uint8_t *env, size_t len)
{
    uint8_t hdr[HDR_LEN];
    struct whole_put w = { hdr, env, len };
    int rc;

    if (!sp || (!env && len) || len > SPOOL_MAX_ENVELOPE)
        return len > SPOOL_MAX_ENVELOPE ? SPOOL_ETOOBIG : SPOOL_EINVAL;
    header_make(hdr, seq, priority, len, crc32c(env, len));
    pthread_mutex_lock(&sp->mu);
    rc = put_locked(sp, seq, priority, len, place_whole, &w);
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

/* ---- streamed put ---- */

static void stream_tmp_name(char *buf, size_t cap, uint64_t seq)
{
    char name[NAME_LEN + 1];

    snap_name(name, sizeof name, seq);
    snprintf(buf, cap, "%s.tmp", name);
}

int spool_stream_begin(struct spool *sp, uint64_t seq)
{
    static const uint8_t zero[HDR_LEN];
    char tmp[NAME_LEN + 16];
    int fd;

    if (!sp)
        return SPOOL_EINVAL;
    if (sp->wfd >= 0)
        spool_stream_abort(sp);     /* a put left open: its bytes are not this one's */
    if (seq != spool_next_seq(sp))
        return SPOOL_EINVAL;
    stream_tmp_name(tmp, sizeof tmp, seq);
    fd = openat(sp->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "spool: create %s: %s\n", tmp, strerror(errno));
        return SPOOL_EIO;
    }
    /* The header's place; its length and CRC are written at the commit. */
    if (pwrite_all(fd, zero, HDR_LEN, 0) < 0) {
        fprintf(stderr, "spool: write %s: %s\n", tmp, strerror(errno));
        close(fd);
        unlinkat(sp->dirfd, tmp, 0);
        return SPOOL_EIO;
    }
    sp->wfd = fd;
    sp->wseq = seq;
    sp->wlen = sp->wcrc_at = 0;
    sp->wcrc = 0;
    return SPOOL_OK;
}

static int stream_io_failed(struct spool *sp, const char *what)
{
    fprintf(stderr, "spool: %s %020" PRIu64 ".snap.tmp: %s\n", what, sp->wseq, strerror(errno));
    return SPOOL_EIO;
}

int spool_stream_append(struct spool *sp, const void *p, size_t len)
{
    if (!sp || sp->wfd < 0 || (!p && len))
        return SPOOL_EINVAL;
    if (len > SPOOL_MAX_ENVELOPE - sp->wlen)
        return SPOOL_ETOOBIG;
    if (pwrite_all(sp->wfd, p, len, HDR_LEN + sp->wlen) < 0)
        return stream_io_failed(sp, "write");
    if (sp->wcrc_at == sp->wlen) {
        sp->wcrc = crc32c_more(sp->wcrc, p, len);
        sp->wcrc_at += len;
    }
    sp->wlen += len;
    return SPOOL_OK;
}

int spool_stream_patch(struct spool *sp, uint64_t off, const void *p, size_t len)
{
    if (!sp || sp->wfd < 0 || !p || off > sp->wlen || len > sp->wlen - off)
        return SPOOL_EINVAL;
    if (pwrite_all(sp->wfd, p, len, HDR_LEN + off) < 0)
        return stream_io_failed(sp, "write");
    if (off < sp->wcrc_at) {
        sp->wcrc_at = 0;        /* the CRC starts again from the next reading */
        sp->wcrc = 0;
    }
    return SPOOL_OK;
}

int spool_stream_read(struct spool *sp, uint64_t off, void *p, size_t len)
{
    if (!sp || sp->wfd < 0 || !p || off > sp->wlen || len > sp->wlen - off)
        return SPOOL_EINVAL;
    if (pread_all(sp->wfd, p, len, HDR_LEN + off) < 0)
        return stream_io_failed(sp, "read");
    if (off == sp->wcrc_at) {
        sp->wcrc = crc32c_more(sp->wcrc, p, len);
        sp->wcrc_at += len;
    }
    return SPOOL_OK;
}

struct stream_put {
    const char *tmp;
};

static int place_stream(struct spool *sp, const char *name, void *arg)
{
    const struct stream_put *w = arg;

    if (renameat(sp->dirfd, w->tmp, sp->dirfd, name) < 0) {
        fprintf(stderr, "spool: rename %s: %s\n", w->tmp, strerror(errno));
        return SPOOL_EIO;
    }
    if (fsync(sp->dirfd) < 0) {
        /* as durable_write: renamed but not known durable, so not counted */
        fprintf(stderr, "spool: fsync dir: %s\n", strerror(errno));
        return SPOOL_EIO;
    }
    return SPOOL_OK;
}

int spool_stream_commit(struct spool *sp, uint8_t priority)
{
    uint8_t hdr[HDR_LEN];
    char tmp[NAME_LEN + 16];
    struct stream_put w = { tmp };
    int rc, fd;

    if (!sp || sp->wfd < 0)
        return SPOOL_EINVAL;
    fd = sp->wfd;
    stream_tmp_name(tmp, sizeof tmp, sp->wseq);
    /* The CRC was kept up as the envelope was written and read back; a
     * caller that patched bytes and did not read them back gets it from
     * the file. */
    if (sp->wcrc_at != sp->wlen && file_crc32c(fd, HDR_LEN, sp->wlen, &sp->wcrc) < 0) {
        rc = stream_io_failed(sp, "read");
        goto fail;
    }
    /* The tmp file is nobody else's: written and fsynced outside the lock. */
    header_make(hdr, sp->wseq, priority, sp->wlen, sp->wcrc);
    if (pwrite_all(fd, hdr, HDR_LEN, 0) < 0 || fsync(fd) < 0) {
        rc = stream_io_failed(sp, "write");
        goto fail;
    }
    close(fd);
    sp->wfd = -1;
    pthread_mutex_lock(&sp->mu);
    rc = put_locked(sp, sp->wseq, priority, sp->wlen, place_stream, &w);
    pthread_mutex_unlock(&sp->mu);
    if (rc != 0)
        unlinkat(sp->dirfd, tmp, 0);    /* dropped by the cap, or not placed */
    return rc;
fail:
    spool_stream_abort(sp);
    return rc;
}

void spool_stream_abort(struct spool *sp)
{
    char tmp[NAME_LEN + 16];

    if (!sp || sp->wfd < 0)
        return;
    close(sp->wfd);
    sp->wfd = -1;
    stream_tmp_name(tmp, sizeof tmp, sp->wseq);
    unlinkat(sp->dirfd, tmp, 0);
}

/* spool_take and spool_take_fd: the oldest waiting snapshot, read whole
 * (env != NULL) or opened and verified (fd != NULL). */
static int take(struct spool *sp, uint64_t *seq, uint8_t **env, int *fd, size_t *len)
{
    char name[NAME_LEN + 1];
    int rc;

    for (;;) {
        struct entry *e = NULL;
        uint64_t s;
        uint8_t prio, *buf;
        size_t l, idx;

        pthread_mutex_lock(&sp->mu);
        for (size_t i = 0; i < sp->n; i++)
            if (!sp->ents[i].inflight) {
                e = &sp->ents[i];
                break;
            }
        if (!e) {
            pthread_mutex_unlock(&sp->mu);
            return SPOOL_ENOENT;
        }
        e->inflight = true;
        s = e->seq;
        pthread_mutex_unlock(&sp->mu);

        snap_name(name, sizeof name, s);
        if (env) {
            rc = load_file(sp->dirfd, name, s, &prio, &buf, &l);
        } else {
            int f = -1;
            rc = open_file_checked(sp->dirfd, name, s, &f, NULL, &l);
            if (rc == SPOOL_OK)
                *fd = f;
        }
        if (rc == SPOOL_OK) {
            *seq = s;
            if (env)
                *env = buf;
            *len = l;
            return SPOOL_OK;
        }
        pthread_mutex_lock(&sp->mu);
        if (rc == SPOOL_ECORRUPT || rc == SPOOL_ENOENT) {
            if ((e = find(sp, s, &idx)) != NULL) {
                gap_add_mem(sp, s, SPOOL_GAP_QUARANTINED);
                if (gaps_save(sp) == 0) {
                    if (rc == SPOOL_ECORRUPT)
                        quarantine_file(sp, name);
                    else
                        sp->quarantined++;
                    index_remove(sp, idx);
                } else {
                    e->inflight = false;
                    pthread_mutex_unlock(&sp->mu);
                    return SPOOL_EIO;
                }
            }
            pthread_mutex_unlock(&sp->mu);
            continue;
        }
        if ((e = find(sp, s, &idx)) != NULL)
            e->inflight = false;
        pthread_mutex_unlock(&sp->mu);
        return rc;
    }
}

int spool_take(struct spool *sp, uint64_t *seq, uint8_t **env, size_t *len)
{
    return take(sp, seq, env, NULL, len);
}

int spool_take_fd(struct spool *sp, uint64_t *seq, int *fd, size_t *len)
{
    return take(sp, seq, NULL, fd, len);
}

void spool_release(struct spool *sp, uint64_t seq)
{
    size_t idx;
    struct entry *e;
    pthread_mutex_lock(&sp->mu);
    if ((e = find(sp, seq, &idx)) != NULL)
        e->inflight = false;
    pthread_mutex_unlock(&sp->mu);
}

int spool_done(struct spool *sp, uint64_t seq)
{
    char name[NAME_LEN + 1];
    size_t idx;
    int rc = SPOOL_OK;

    pthread_mutex_lock(&sp->mu);
    if (!find(sp, seq, &idx)) {
        rc = SPOOL_ENOENT;
        goto out;
    }
    /* Removing the highest file must not lower max(files, hiwater, gaps):
     * make hiwater durable first.  On failure the file stays and is sent
     * again later (the server answers 200 for the same bytes). */
    if (idx == sp->n - 1 && sp->hiwater < seq && gaps_max(sp) < seq) {
        rc = hiwater_save(sp, seq);
        if (rc != 0) {
            sp->ents[idx].inflight = false;
            goto out;
        }
    }
    index_remove(sp, idx);
    snap_name(name, sizeof name, seq);
    if (unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT)
        fprintf(stderr, "spool: unlink %s: %s\n", name, strerror(errno));
    sp->uploaded++;
out:
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int spool_dead_letter(struct spool *sp, uint64_t seq, const char *reason)
{
    char name[NAME_LEN + 1], rname[NAME_LEN + 16];
    size_t idx;
    int rc;

    pthread_mutex_lock(&sp->mu);
    if (!find(sp, seq, &idx)) {
        rc = SPOOL_ENOENT;
        goto out;
    }
    snap_name(name, sizeof name, seq);
    snprintf(rname, sizeof rname, "%s.reason", name);
    /* The reason first, so a dead snapshot always has one. */
    if (!reason)
        reason = "refused";
    {
        char line[512];
        int n = snprintf(line, sizeof line, "%s\n", reason);
        if (n < 0 || (size_t)n >= sizeof line)
            n = sizeof line - 1;
        durable_write(sp->deadfd, rname, (const uint8_t *)line, (size_t)n, NULL, 0);
    }
    gap_add_mem(sp, seq, SPOOL_GAP_DEAD);
    rc = gaps_save(sp);
    if (rc != 0)
        goto out;
    if (renameat(sp->dirfd, name, sp->deadfd, name) < 0) {
        fprintf(stderr, "spool: dead-letter %s: %s\n", name, strerror(errno));
        unlinkat(sp->dirfd, name, 0);
    }
    fsync(sp->deadfd);
    fsync(sp->dirfd);
    index_remove(sp, idx);
    sp->dead++;
    fprintf(stderr, "spool: snapshot %" PRIu64 " dead-lettered: %s\n", seq, reason);
    prune_kept(sp->deadfd, "dead");
out:
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int spool_wait(struct spool *sp, int timeout_ms)
{
    struct timespec dl;
    int rc = SPOOL_OK;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sp->mu);
    for (;;) {
        bool ready = false;
        for (size_t i = 0; i < sp->n && !ready; i++)
            ready = !sp->ents[i].inflight;
        if (ready || sp->woken)
            break;
        if (pthread_cond_timedwait(&sp->cv, &sp->mu, &dl) != 0) {
            rc = SPOOL_ETIMEDOUT;
            break;
        }
    }
    sp->woken = false;
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

void spool_wake(struct spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    sp->woken = true;
    pthread_cond_broadcast(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
}

void spool_get_stats(struct spool *sp, struct spool_stats *st)
{
    pthread_mutex_lock(&sp->mu);
    st->files = sp->n;
    st->bytes = sp->bytes;
    st->cap_bytes = sp->cap;
    st->spooled = sp->spooled;
    st->uploaded = sp->uploaded;
    st->dropped = sp->dropped;
    st->quarantined = sp->quarantined;
    st->dead_lettered = sp->dead;
    st->next_seq = sp->next_seq;
    pthread_mutex_unlock(&sp->mu);
}

int spool_gaps(struct spool *sp, struct spool_gap *out, size_t cap, size_t *n,
               uint64_t *total_gaps)
{
    size_t k;
    if (!out && cap)
        return SPOOL_EINVAL;
    pthread_mutex_lock(&sp->mu);
    k = sp->ngaps < cap ? sp->ngaps : cap;
    if (k)
        memcpy(out, sp->gaps, k * sizeof *out);
    *n = k;
    if (total_gaps)
        *total_gaps = sp->total_gaps;
    pthread_mutex_unlock(&sp->mu);
    return SPOOL_OK;
}

const char *spool_strerror(int err)
{
    switch (err) {
    case SPOOL_OK: return "ok";
    case SPOOL_EIO: return "i/o error";
    case SPOOL_EINVAL: return "invalid argument";
    case SPOOL_ENOMEM: return "out of memory";
    case SPOOL_ENOENT: return "no such snapshot";
    case SPOOL_ETOOBIG: return "envelope too big";
    case SPOOL_EDROPPED: return "dropped by the disk cap";
    case SPOOL_ECORRUPT: return "corrupt spool file";
    case SPOOL_ETIMEDOUT: return "timed out";
    case SPOOL_EBUSY: return "in use by another agent (one spool folder per running agent)";
    }
    return "unknown spool error";
}
