/* ingest_handoff.c - see ingest.h: the envelopes of snapshots this process
 * just stored, kept in memory for whoever reads every new snapshot back (the
 * feature worker), so that the read does not cost PostgreSQL a de-TOAST of
 * each 16 KB envelope and a round trip of all of them: under load that read
 * was the statement most often active in the database (docs/BENCHMARKS.md).
 *
 * It is a cache in front of the stored rows, never instead of them: an
 * envelope is put only after its row committed, and one that is not here
 * (the budget was full, the process restarted, it was forgotten) is read
 * from the database as before.  Bounded by bytes and by count; a put that
 * does not fit is refused, not made room for: the reader takes ids oldest
 * first, so the oldest entries are the ones about to be used. */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "server/ingest/ingest.h"
#include "server/ingest/ingest_int.h"
#include "server/srv/srv.h"

/* Entries at most, whatever the byte budget: small envelopes must not make
 * the linear scans below long. */
#define HANDOFF_MAX_ENTRIES 4096

struct handoff_entry {
    int64_t id;
    uint8_t *buf;
    size_t len;
};

static pthread_mutex_t h_mu = PTHREAD_MUTEX_INITIALIZER;
static struct handoff_entry h_e[HANDOFF_MAX_ENTRIES];
static size_t h_n, h_bytes, h_budget;
static unsigned long h_kept, h_taken, h_refused;

static void forget_all_locked(void)
{
    size_t k;

    for (k = 0; k < h_n; k++)
        free(h_e[k].buf);
    h_n = 0;
    h_bytes = 0;
}

void ingest_handoff_configure(size_t max_bytes)
{
    pthread_mutex_lock(&h_mu);
    forget_all_locked();
    h_budget = max_bytes;
    h_kept = h_taken = h_refused = 0;
    pthread_mutex_unlock(&h_mu);
}

static int fits_locked(size_t len)
{
    return h_budget > 0 && h_n < HANDOFF_MAX_ENTRIES && len <= h_budget - h_bytes;
}

uint8_t *ingest__handoff_copy(const uint8_t *buf, size_t len)
{
    uint8_t *copy;
    int fits;

    pthread_mutex_lock(&h_mu);
    fits = fits_locked(len);
    if (!fits && h_budget > 0)
        h_refused++;
    pthread_mutex_unlock(&h_mu);
    if (!fits)
        return NULL;
    /* The copy outside the lock; whether it still fits is asked again
     * when it is put. */
    copy = malloc(len ? len : 1);
    if (copy)
        memcpy(copy, buf, len);
    return copy;
}

int ingest_handoff_put(int64_t id, const uint8_t *buf, size_t len)
{
    uint8_t *copy = ingest__handoff_copy(buf, len);

    return copy ? ingest__handoff_put_owned(id, copy, len) : 0;
}

int ingest__handoff_put_owned(int64_t id, uint8_t *copy, size_t len)
{
    int kept = 0;

    pthread_mutex_lock(&h_mu);
    if (fits_locked(len)) {
        h_e[h_n].id = id;
        h_e[h_n].buf = copy;
        h_e[h_n].len = len;
        h_n++;
        h_bytes += len;
        h_kept++;
        kept = 1;
    } else if (h_budget > 0) {
        h_refused++;
    }
    pthread_mutex_unlock(&h_mu);
    if (!kept)
        free(copy);
    return kept;
}

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

size_t ingest_handoff_take(const int64_t *ids, size_t n, uint8_t **bufs, size_t *lens)
{
    size_t k = 0, got = 0;

    memset(bufs, 0, n * sizeof *bufs);
    memset(lens, 0, n * sizeof *lens);
    if (n == 0)
        return 0;
    pthread_mutex_lock(&h_mu);
    while (k < h_n) {
        const int64_t *at = bsearch(&h_e[k].id, ids, n, sizeof *ids, id_cmp);
        size_t i;

        if (!at || bufs[at - ids]) {
            k++;
            continue;
        }
        i = (size_t)(at - ids);
        bufs[i] = h_e[k].buf;
        lens[i] = h_e[k].len;
        h_bytes -= h_e[k].len;
        h_e[k] = h_e[--h_n];        /* the last one moves here: look at k again */
        got++;
    }
    h_taken += got;
    pthread_mutex_unlock(&h_mu);
    return got;
}

void ingest_handoff_forget_upto(int64_t id)
{
    size_t k = 0;

    pthread_mutex_lock(&h_mu);
    while (k < h_n) {
        if (h_e[k].id > id) {
            k++;
            continue;
        }
        free(h_e[k].buf);
        h_bytes -= h_e[k].len;
        h_e[k] = h_e[--h_n];
    }
    pthread_mutex_unlock(&h_mu);
}

void ingest_handoff_stats(struct ingest_handoff_stats *s)
{
    pthread_mutex_lock(&h_mu);
    s->entries = h_n;
    s->bytes = h_bytes;
    s->budget = h_budget;
    s->kept = h_kept;
    s->taken = h_taken;
    s->refused = h_refused;
    pthread_mutex_unlock(&h_mu);
}

void ingest__handoff_rows(struct ingest_row *const *rows, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (!rows[i]->handoff || !rows[i]->inserted || rows[i]->err != SRV_OK)
            continue;
        ingest__handoff_put_owned(rows[i]->id, rows[i]->handoff, rows[i]->handoff_len);
        rows[i]->handoff = NULL;
    }
}
