/* labels_int.h - internals shared by the labels module's files. */
#ifndef PRECURSOR_LABELS_INT_H
#define PRECURSOR_LABELS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "schema/wire.h"

/* Decoded samples of recently viewed snapshots.  A snapshot's bytes never
 * change once stored (same id, same envelope), so a waveform view that pans
 * and zooms over one snapshot decodes it once instead of on every request.
 * Bounded by LABELS_CACHE_SLOTS entries and LABELS_CACHE_BYTES of samples;
 * entries are reference-counted so a request keeps its samples while
 * another thread evicts them. */
#define LABELS_CACHE_SLOTS 16
#define LABELS_CACHE_BYTES (256u << 20)

struct labels_decoded {
    int64_t id;
    struct wire_meta m;
    void *samples;          /* wire_samples_bytes(&m) bytes, planar */
    size_t bytes;
    unsigned refs;          /* guarded by the cache's lock */
    int cached;             /* 0: not in the table, freed at the last release */
    uint64_t used;
};

/* The entry for id with a reference taken, or NULL. */
struct labels_decoded *labels_cache_get(int64_t id);
/* Hand a freshly decoded entry (malloc'd, samples malloc'd) to the cache;
 * returns it with one reference.  When it does not fit, it stays uncached
 * and is freed at its release. */
struct labels_decoded *labels_cache_put(struct labels_decoded *d);
void labels_cache_release(struct labels_decoded *d);

#endif
