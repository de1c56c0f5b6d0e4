/* labels.h - the labels API of the labeling UI and the ML team: the class
 * list, labels on a span of some channels of a snapshot (who and when kept
 * on every label, every edit and deletion kept in label_audit), the
 * decimated samples a waveform view asks for, the labeling queue and the
 * context of a snapshot.
 *
 * Operators and admins write; every role reads (the route table in
 * server/routes.c holds the roles and the http layer enforces them before a
 * handler runs).  Routes take an API token or a browser session (see
 * server/session). */
#ifndef PRECURSOR_LABELS_H
#define PRECURSOR_LABELS_H

#include <stddef.h>

#include "server/srv/srv.h"

#define LABELS_MAX_CHANNELS 64
#define LABELS_NOTES_MAX 4000
#define LABELS_FIELD_MAX 200            /* failure_mode, mechanism, cause */
#define LABELS_CLASS_MAX 64
#define LABELS_QUEUE_LIMIT_MAX 500
#define LABELS_PX_DEFAULT 1000

struct json_t;

/* A label request body, parsed and bounded but not yet checked against its
 * snapshot.  Strings are borrowed from the JSON document. */
struct labels_input {
    int has_span;
    double start_s, end_s;
    int has_channels;
    int channels[LABELS_MAX_CHANNELS];
    unsigned n_channels;
    const char *class_name;             /* NULL: absent */
    int has_confidence;
    double confidence;
    const char *notes, *failure_mode, *mechanism, *cause;  /* NULL: absent */
};

/* Parse a POST (partial = 0: start_s, end_s, channels and class required)
 * or PATCH (partial = 1: any subset, but start_s and end_s together) body.
 * 0, or SRV_EBADREQ with *why set. */
int labels_parse(const struct json_t *body, int partial, struct labels_input *in,
                 const char **why);

/* Check the span and channels against a snapshot of n_samples per channel
 * at rate Hz with channel_count channels.  0, or SRV_EBADREQ with *why. */
int labels_check(const struct labels_input *in, double rate, size_t n_samples,
                 unsigned channel_count, const char **why);

int labels_classes(struct srv_request *rq, struct srv_response *rs);

struct wire_meta;

/* The decoded samples of snapshot id (decimal text, as routed) when the
 * waveform view holds them (labels_int.h): another reader of a snapshot
 * being viewed, its spectra, then reads no envelope and decodes nothing.
 * Nothing is decoded here.  *m: the stored metadata, except sample_type
 * F32 when codes with a scale or offset were turned into physical units
 * (the calibration itself as stored, so wire_is_identity_calibration(*m)
 * tells); *samples: channel after channel.  SRV_OK with *handle to hand
 * back to labels_samples_release, or with *handle NULL when they are not
 * held; or the error answered in rs (404: the snapshot is gone, as for
 * the samples route). */
int labels_samples_cached(const char *id, const struct wire_meta **m, const void **samples,
                          void **handle, struct srv_response *rs);
void labels_samples_release(void *handle);

/* Is name a label class in use (listed by GET /api/v1/classes)?  0 with
 * *active set, or a database error.  Rules and alert dispositions name
 * classes too, and check them here. */
int labels_class_active(const char *name, int *active);
int labels_list(struct srv_request *rq, struct srv_response *rs);
int labels_create(struct srv_request *rq, struct srv_response *rs);
int labels_update(struct srv_request *rq, struct srv_response *rs);
int labels_delete(struct srv_request *rq, struct srv_response *rs);
int labels_history(struct srv_request *rq, struct srv_response *rs);
int labels_samples(struct srv_request *rq, struct srv_response *rs);
int labels_queue(struct srv_request *rq, struct srv_response *rs);
int labels_context(struct srv_request *rq, struct srv_response *rs);

#endif
