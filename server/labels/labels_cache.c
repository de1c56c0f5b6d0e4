/* labels_cache.c - see labels_int.h.  One mutex over a small table: lookups
 * are a scan of LABELS_CACHE_SLOTS entries, far below the cost of the
 * decode they save. */
#include <pthread.h>
#include <stdlib.h>

#include "server/decimate/decimate.h"
#include "server/labels/labels_int.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct labels_decoded *slots[LABELS_CACHE_SLOTS];
static size_t total;
static uint64_t clock_tick;

static void decoded_free(struct labels_decoded *d)
{
    decimate_pyramid_free(d->pyr);
    free(d->samples);
    free(d);
}

struct labels_decoded *labels_cache_get(int64_t id)
{
    struct labels_decoded *d = NULL;
    unsigned i;

    pthread_mutex_lock(&lock);
    for (i = 0; i < LABELS_CACHE_SLOTS; i++)
        if (slots[i] && slots[i]->id == id) {
            d = slots[i];
            d->refs++;
            d->used = ++clock_tick;
            break;
        }
    pthread_mutex_unlock(&lock);
    return d;
}

/* Drop slot i from the table; freed now or by its last holder. */
static void evict(unsigned i)
{
    struct labels_decoded *d = slots[i];

    slots[i] = NULL;
    total -= d->bytes;
    d->cached = 0;
    if (d->refs == 0)
        decoded_free(d);
}

struct labels_decoded *labels_cache_put(struct labels_decoded *d)
{
    unsigned i, free_slot;

    d->refs = 1;
    d->cached = 0;
    if (d->bytes > LABELS_CACHE_BYTES / 2)
        return d;                       /* too big to be worth keeping */
    pthread_mutex_lock(&lock);
    d->used = ++clock_tick;
    for (i = 0; i < LABELS_CACHE_SLOTS; i++)
        if (slots[i] && slots[i]->id == d->id) {
            /* another thread decoded it meanwhile: keep that one */
            pthread_mutex_unlock(&lock);
            return d;
        }
    for (;;) {
        unsigned oldest = LABELS_CACHE_SLOTS;

        free_slot = LABELS_CACHE_SLOTS;
        for (i = 0; i < LABELS_CACHE_SLOTS; i++) {
            if (!slots[i]) {
                free_slot = i;
                continue;
            }
            if (oldest == LABELS_CACHE_SLOTS || slots[i]->used < slots[oldest]->used)
                oldest = i;
        }
        if (free_slot < LABELS_CACHE_SLOTS && total + d->bytes <= LABELS_CACHE_BYTES)
            break;
        if (oldest == LABELS_CACHE_SLOTS)
            break;                      /* empty table yet no room: cannot happen */
        evict(oldest);
    }
    if (free_slot < LABELS_CACHE_SLOTS && total + d->bytes <= LABELS_CACHE_BYTES) {
        slots[free_slot] = d;
        total += d->bytes;
        d->cached = 1;
    }
    pthread_mutex_unlock(&lock);
    return d;
}

void labels_cache_release(struct labels_decoded *d)
{
    int drop;

    if (!d)
        return;
    pthread_mutex_lock(&lock);
    drop = --d->refs == 0 && !d->cached;
    pthread_mutex_unlock(&lock);
    if (drop)
        decoded_free(d);
}
