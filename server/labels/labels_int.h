/* labels_int.h - internals shared by the labels module's files: labels.c
 * (bodies, label handlers), labels_samples.c (the waveform view),
 * labels_queue.c (queue and context) and labels_cache.c. */
#ifndef PRECURSOR_LABELS_INT_H
#define PRECURSOR_LABELS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/srv/srv.h"

/* ---- shared by the handlers (labels.c) ----------------------------------- */

/* What the handlers need of a stored snapshot's metadata. */
struct labels_snap {
    double rate;
    size_t n;               /* samples per channel */
    unsigned channels;
};

/* The snapshot id of a route's {id} as canonical decimal text into out
 * (cap >= 24), or SRV_EBADREQ with the message set. */
int labels_id_param(const struct srv_request *rq, char *out, size_t cap,
                    struct srv_response *rs);

/* Metadata of snapshot id (decimal text); SRV_ENOTFOUND when there is none
 * (also for a snapshot that retention dropped). */
int labels_snapshot_meta(const char *id, struct labels_snap *m, struct srv_response *rs);

/* Answer with the text of b (JSON) and status; b is taken either way. */
int labels_respond_buf(struct srv_buf *b, unsigned status, struct srv_response *rs);

/* JSON a statement built (json_build_object), parsed, with the values of
 * the keys that are reals in these answers (spans, confidence, score,
 * duration) made reals again wherever they are: PostgreSQL prints a float
 * of integral value as 10, where the API promises 10.0 (schema/openapi.json,
 * info).  NULL when text does not parse. */
struct json_t *labels_sql_json(const char *text);

/* Query parameter key as a finite number; def when absent or empty.
 * 0 or -1. */
int labels_query_double(const struct srv_request *rq, const char *key, double def, double *out);

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
    struct decimate_pyramid *pyr;   /* of samples, NULL for a short snapshot */
    size_t bytes;           /* samples and pyramid */
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
