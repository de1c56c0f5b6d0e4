/* pipeline.h - the agent's sample path: source -> ring -> detect -> capture.
 *
 * One implementation for `run` and `replay`.  pipeline_init() allocates every
 * buffer (ring, detector arena, read block, snapshot window); the per-sample
 * loop allocates nothing.  On a trigger the local action (agent/action/:
 * --on-trigger command, alarm line to a FIFO or UNIX socket) starts at once;
 * the snapshot is cut from the ring when its post-trigger samples have
 * arrived (agent/core/capture.h), encoded and signed (one reusable zstd
 * context) and handed to the sink (the spool, which takes it as it is
 * encoded).  With
 * capture_every_s the pipeline also captures a window now and then without
 * any trigger (detector "schedule"): the baseline of normal operation that
 * models are trained from. */
#ifndef PRECURSOR_PIPELINE_H
#define PRECURSOR_PIPELINE_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/core/detect.h"
#include "agent/source/source.h"
#include "schema/wire.h"

struct upload_counters;

enum pipeline_error {
    PIPELINE_OK = 0,
    PIPELINE_EINVAL = -1,       /* configuration out of range */
    PIPELINE_ENOMEM = -2,
    PIPELINE_ESOURCE = -3,      /* the source failed; its message is in pipeline_err() */
    PIPELINE_EIO = -4           /* scores file write failed */
};

/* Where snapshots go.  next_seq() gives the number the next one must carry;
 * put() copies the envelope (the caller frees its buffer).  A sink with
 * begin() takes the envelope as it is encoded instead, and the pipeline
 * holds no buffer of an envelope's size (the spool's: agent/command):
 * begin() opens seq's file and fills *f, the encoder writes and reads the
 * envelope through it (wire_encode_v2_planes_file), then commit() keeps it
 * (returns as put does) or abort() throws it away (the encode failed). */
struct pipeline_sink {
    uint64_t (*next_seq)(void *ctx);
    int (*put)(void *ctx, uint64_t seq, const struct wire_meta *m,
               const uint8_t *env, size_t len);
    void *ctx;
    int (*begin)(void *ctx, uint64_t seq, struct wire_file *f);
    int (*commit)(void *ctx, uint64_t seq, const struct wire_meta *m, size_t len);
    void (*abort)(void *ctx, uint64_t seq);
};

/* A run-time model (agent/model), stepped with every frame after the
 * detectors: step() sets *score to the model's latest window score and
 * returns PIPELINE_MODEL_ALARM when the frame completes a window that is an
 * alarm to act on (hold-off applies), PIPELINE_MODEL_ACTIVE when the model
 * is active (its score is reported like a detector's, e.g. in replay's
 * scores file); a shadow model returns 0 and changes nothing. */
#define PIPELINE_MODEL_ACTIVE 0x1
#define PIPELINE_MODEL_ALARM  0x2
struct pipeline_model {
    int (*step)(void *ctx, const float *frame, float *score);
    void *ctx;                      /* borrowed; NULL step = no model */
};

struct pipeline_config {
    const char *device_id;          /* copied */
    const uint8_t *secret_key;      /* WIRE_SK_LEN bytes, copied; NULL = no snapshots encoded */
    struct detect_config detect;
    double ring_s, pre_s, post_s, max_window_s;
    int merge;                      /* 1: extend a pending capture; 0: hold new events off */
    double capture_every_s;         /* scheduled baseline capture period, stream time; 0 = off */
    int zstd_level;
    const char *on_trigger;         /* sh -c command; NULL/"" = none; copied */
    const char *alarm_fifo;         /* NULL/"" = none; copied */
    const char *alarm_socket;       /* NULL/"" = none; copied */
    struct pipeline_sink sink;      /* put and begin NULL = snapshots only counted */
    FILE *scores;                   /* replay: "timestamp,anomaly_score,trigger" rows; borrowed */
    int scores_trigger;             /* 1: a 4th column, trigger_score (detect_result) */
    /* replay: one row per trigger, "timestamp,detector,channel,name,
     * anomaly_score,trigger_score" (what fired, on which channel); borrowed */
    FILE *triggers;
    struct upload_counters *counters;   /* samples/triggers for heartbeats; borrowed, may be NULL */
    size_t block_frames;            /* frames per source read; 0 = 1024 */
    struct pipeline_model model;    /* run-time model; step NULL = none */
};

#define PIPELINE_LAT_SAMPLES 4096

struct pipeline_stats {
    uint64_t frames;
    uint64_t triggers;              /* detector triggers (each ran the local action) */
    uint64_t snapshots;             /* handed to the sink */
    uint64_t merged;                /* triggers folded into a pending capture */
    uint64_t held_off;              /* triggers that got no capture of their own */
    uint64_t scheduled;             /* baseline captures started by the schedule (not triggers) */
    uint64_t scheduled_dropped;     /* scheduled captures a trigger took over */
    uint64_t sink_errors;           /* encode or put failed */
    uint64_t action_errors;         /* spawn failed */
    uint64_t alarm_drops;           /* alarm line not delivered (no reader, full) */
    int64_t t_first_us, t_last_us;  /* the stream time read (0, 0 before any frame) */
    uint64_t lat_count;             /* trigger-to-action latencies recorded */
    double lat_p50_us, lat_p99_us, lat_max_us;
};

struct pipeline;

/* src is borrowed (channels, rate and names are read here and on capture).
 * On failure err says why. */
int pipeline_init(const struct pipeline_config *cfg, struct source *src,
                  struct pipeline **out, char *err, size_t errlen);
/* Read until end of input, an error, or *stop becomes non-zero.  Returns 0 at
 * end of input or stop; a pending capture is then cut short and emitted. */
int pipeline_run(struct pipeline *p, atomic_int *stop);
void pipeline_get_stats(struct pipeline *p, struct pipeline_stats *st);
/* Triggers so far by the detector that fired (a DETECT_* bit) and the
 * channel it named: what a commissioning engineer reads to find the
 * channels that alarm most. */
uint64_t pipeline_trigger_count(const struct pipeline *p, uint8_t detector, unsigned channel);
const char *pipeline_err(const struct pipeline *p);
void pipeline_free(struct pipeline *p);

#endif
