/* pipeline.c - source -> ring -> detect -> local action -> capture -> sink.
 *
 * The sample loop: read a block, then per frame push into the ring, score it,
 * and on a trigger start the local action (agent/action/) before anything
 * else (it must not wait on capture, encoding or the network).  The capture
 * (agent/core/capture.c) is pending from the trigger until its post-trigger
 * frames are in the ring; its window is then encoded straight from the ring
 * (no copy of it: the encoder reads the two pieces a wrapped ring holds),
 * signed and handed to the sink.  Every buffer is sized and allocated in
 * pipeline_init(), the encoder's too (one zstd context and a scratch for the
 * largest window, reused): nothing is allocated per sample or per snapshot.
 * The spool takes the envelope as it is encoded (a 32 KB chunk at a time
 * into its temporary file, signed read back from there), so no buffer of an
 * envelope's size exists; a sink without that (put only) gets an envelope
 * buffer, allocated once here too.
 *
 * Memory: the encoder's zstd context uses a 16 KiB window and 4096-entry
 * tables (about 120 KB instead of 1.3 MB at level 3's own sizes for a 320 KB
 * window).  Measured on 8 channels of synthetic noise it costs 0.4% of size
 * (docs/BENCHMARKS.md): after the per-channel delta and byte shuffle there
 * are few long matches for a larger window to find.
 *
 * Encoding and the sink (the spool: two fsyncs and a rename) run in an
 * emitter thread of their own: measured in the sample thread they took 13 ms
 * at the median and up to half a second on a busy disk, and every sample
 * behind them (a trigger among them) would wait as long.  The sample thread
 * only hands the window's place in the ring to a one-slot hand-off; it waits
 * for the emitter only if the previous snapshot is still being written, or if
 * the ring is about to overwrite the window's first frame while it is still
 * being encoded (a ring shorter than the window plus one encoding's worth of
 * frames: with the default 60 s ring and a 1 s window, never).  The window's
 * copy this replaces was the channels x window x 4 bytes of private memory
 * (0.32 MB at 8 channels, 10 kHz, 1 s) that the memory target counts.
 *
 * Local action policy: every detector trigger runs it (the detector's own
 * hold-off and hourly cap are the flood control); --merge only decides
 * whether a trigger during a pending capture extends that capture or is held
 * off (no snapshot of its own).
 *
 * Scheduled baseline capture (capture_every_s): a calibrated detector rightly
 * never fires on ordinary operation, yet a fleet needs windows of it to label
 * normal and train models from.  Every capture_every_s of stream time, when no
 * capture is pending, a window (pre_s/post_s) is captured without a trigger
 * and sunk like any other, its detector named "schedule" and its score 0 (so
 * the spool's cap drops baselines before triggered snapshots).  It is not an
 * event: no local action, no alarm line, not counted as a trigger here or in
 * heartbeats.  A trigger during a pending baseline takes the capture over:
 * the window is no longer ordinary operation, and under hold-off the trigger
 * would otherwise get no snapshot of its own. */
#include "agent/pipeline/pipeline.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "agent/action/action.h"
#include "agent/core/capture.h"
#include "agent/core/ring.h"
#include "agent/upload/upload.h"

/* The encoder's zstd sizes (see the top of the file). */
#define ENC_WINDOW_LOG 14
#define ENC_HASH_LOG 12
#define ENC_CHAIN_LOG 12
#define EMITTER_STACK (256 * 1024)

/* Marks a scheduled capture in its window.  Not a detector, so it must stay
 * clear of the DETECT_* bits; only the snapshot's name ("schedule") leaves
 * the pipeline. */
/* The detectors a trigger can name: DETECT_LEVEL (bit 0) .. DETECT_SEQUENCE (bit 6). */
#define PIPELINE_DETECTORS 8
#define SCHEDULED 0x40u
_Static_assert((SCHEDULED & (DETECT_LEVEL | DETECT_FEATURE | DETECT_MODEL | DETECT_MULTI)) == 0,
               "the schedule's mark collides with a detector");

struct pipeline {
    struct pipeline_config cfg;
    char device_id[WIRE_MAX_NAME + 1];
    uint8_t sk[WIRE_SK_LEN];
    int have_key;
    struct action *act;

    struct source *src;
    unsigned channels;
    double rate;
    struct ring ring;
    void *ring_arena;
    struct detect *det;
    void *det_arena;

    size_t block;
    float *blk;
    int64_t *blk_t;

    struct capture cap;
    void *conv;                     /* i16/i32 codes of the window (NULL for float32) */
    uint64_t ring_guard;            /* sample thread: pushing this frame would
                                     * overwrite the window being encoded */
    /* the emitter's encoder, reused for every snapshot */
    ZSTD_CCtx *cctx;
    void *enc_scratch;              /* wire v2 working memory: records and one plane of the longest window */
    uint8_t *env;                   /* envelope: wire_encode_v2_bound(longest window) */
    size_t env_cap, win_bytes, enc_scratch_cap;
    uint64_t seq_local;             /* when the sink has no next_seq */

    /* emitter thread: one job (window in win, meta in job) at a time */
    pthread_t emitter;
    int emitter_started;
    pthread_mutex_t mu;             /* guards the fields below and st.snapshots/sink_errors */
    pthread_cond_t cv;
    int job_ready, quit;
    int encoding;                   /* the emitter still reads the job's frames */
    struct capture_window job;
    const float *job_a, *job_b;     /* where the job's frames are (ring_span) */
    uint32_t job_head;

    int64_t hold_off_us, t_model_trigger;   /* the model's own hold-off */
    int model_triggered;
    int64_t every_us, t_next_capture;       /* scheduled capture; every_us 0 = off */
    int schedule_armed;                     /* t_next_capture set from the first frame */
    float model_frame[WIRE_MAX_CHANNELS];   /* a frame in physical units, for the model */

    struct pipeline_stats st;
    /* triggers by detector (bit index of its DETECT_* flag) and channel */
    uint32_t trig_by[PIPELINE_DETECTORS][WIRE_MAX_CHANNELS];
    double *lat;                    /* PIPELINE_LAT_SAMPLES, ring of recent */
    struct timespec blk_arrival;
    char err[256];
};

static unsigned detector_index(uint8_t detector)
{
    unsigned i = 0;

    while (i < PIPELINE_DETECTORS - 1 && !(detector & (1u << i)))
        i++;
    return i;
}

static double ts_diff_us(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e6 + (double)(b->tv_nsec - a->tv_nsec) / 1e3;
}

static void *emitter_main(void *arg);

/* Give the whole pages of a buffer back to the kernel; its contents are not
 * needed again (the next snapshot rewrites it), and the next touch of a page
 * maps a zeroed one.  The encoder's buffers (its scratch: the predictor
 * records, one channel's plane, the predictors' working area and the output
 * chunk, about 0.14 MB for a 1 s, 8-channel, 10 kHz window; integer codes
 * for integer sources) are touched for the few milliseconds of an encode,
 * then sit idle until the next trigger: private memory the device would
 * otherwise hold between snapshots (docs/BENCHMARKS.md, agent memory).  The
 * buffers stay allocated: nothing is allocated in the snapshot path. */
static void release_pages(void *buf, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)buf + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)buf + len) & ~(page - 1);

    if (buf && e > a)
        (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

/* The emitter's encoder, sized for the longest window.  Pages of these are
 * touched only by the first snapshot that fills them. */
static int encoder_init(struct pipeline *p, size_t win_bytes)
{
    struct wire_meta *longest = calloc(1, sizeof *longest);

    if (longest == NULL)
        return PIPELINE_ENOMEM;
    /* wire v2's bounds grow with the window: the longest one serves all */
    longest->sample_type = p->src->wire_type ? p->src->wire_type : WIRE_F32;
    longest->channel_count = (uint8_t)p->channels;
    longest->post_samples = p->cap.max_n;
    p->win_bytes = win_bytes;
    /* One channel's plane at a time into zstd: a device holds one plane of
     * scratch, not the whole content.  A sink that takes the envelope as it
     * is made (the spool) gets it through a chunk of the scratch
     * (wire_encode_v2_planes_file) and no envelope buffer is allocated;
     * another sink gets it whole, in a buffer of the envelope's bound. */
    if (p->cfg.sink.begin != NULL) {
        p->enc_scratch_cap = wire_encode_v2_file_scratch_bound(longest);
    } else {
        p->enc_scratch_cap = wire_encode_v2_stream_scratch_bound(longest);
        p->env_cap = wire_encode_v2_bound(longest);
        p->env = malloc(p->env_cap);
    }
    free(longest);
    p->enc_scratch = malloc(p->enc_scratch_cap);
    p->cctx = ZSTD_createCCtx();
    if (p->enc_scratch_cap == 0 || p->enc_scratch == NULL || p->cctx == NULL ||
        (p->cfg.sink.begin == NULL && (p->env_cap == 0 || p->env == NULL)))
        return PIPELINE_ENOMEM;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_windowLog, ENC_WINDOW_LOG)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_hashLog, ENC_HASH_LOG)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_chainLog, ENC_CHAIN_LOG))) {
        snprintf(p->err, sizeof(p->err), "zstd refused the encoder's parameters");
        return PIPELINE_ENOMEM;
    }
    return 0;
}

/* The emitter's own needs are small and known (the meta, libsodium's
 * signature, the spool's write; zstd works in its heap context): 256 KB of
 * stack instead of the default 8 MB of address space. */
static int emitter_start(struct pipeline *p)
{
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0, rc;

    if (ok)
        pthread_attr_setstacksize(&attr, EMITTER_STACK);
    rc = pthread_create(&p->emitter, ok ? &attr : NULL, emitter_main, p);
    if (ok)
        pthread_attr_destroy(&attr);
    if (rc != 0)
        return PIPELINE_ENOMEM;
    p->emitter_started = 1;
    return 0;
}

int pipeline_init(const struct pipeline_config *cfg, struct source *src,
                  struct pipeline **out, char *err, size_t errlen)
{
    struct pipeline *p;
    double rate = src->rate;
    double ring_frames, max_frames;
    uint32_t pre_n, post_n;
    size_t ring_len, det_len, win_bytes;
    int rc = PIPELINE_ENOMEM;

    if (src->channels < 1 || src->channels > WIRE_MAX_CHANNELS ||
        src->channels > DETECT_MAX_CHANNELS || !(rate > 0) || !(cfg->pre_s >= 0) ||
        !(cfg->post_s > 0) || !(cfg->ring_s > 0) || !(cfg->capture_every_s >= 0) ||
        cfg->capture_every_s > 1e9) {
        snprintf(err, errlen, "bad pipeline settings (channels %u, rate %g Hz)",
                 src->channels, rate);
        return PIPELINE_EINVAL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return PIPELINE_ENOMEM;
    p->cfg = *cfg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->src = src;
    p->channels = src->channels;
    p->rate = rate;
    snprintf(p->device_id, sizeof(p->device_id), "%s",
             cfg->device_id != NULL ? cfg->device_id : "");
    if (cfg->secret_key != NULL) {
        memcpy(p->sk, cfg->secret_key, WIRE_SK_LEN);
        p->have_key = 1;
    }
    p->cfg.on_trigger = p->cfg.alarm_fifo = p->cfg.alarm_socket = NULL;
    p->cfg.device_id = NULL;
    p->cfg.secret_key = NULL;

    pre_n = (uint32_t)llround(cfg->pre_s * rate);
    post_n = (uint32_t)llround(cfg->post_s * rate);
    if (post_n < 1)
        post_n = 1;
    max_frames = cfg->merge ? cfg->max_window_s * rate : 0;
    if (max_frames < (double)pre_n + post_n)
        max_frames = (double)pre_n + post_n;
    ring_frames = fmax(cfg->ring_s * rate, max_frames);
    win_bytes = 0;
    if (max_frames * p->channels * sizeof(float) > WIRE_MAX_SAMPLES_BYTES ||
        ring_frames > (double)UINT32_MAX / 2) {
        snprintf(p->err, sizeof(p->err), "capture window or ring too large for %u channels at %g Hz",
                 p->channels, rate);
        rc = PIPELINE_EINVAL;
        goto fail;
    }
    capture_init(&p->cap, pre_n, post_n, (uint32_t)max_frames, cfg->merge);
    win_bytes = (size_t)p->cap.max_n * p->channels * sizeof(float);

    ring_len = ring_arena_size(p->channels, (uint32_t)ring_frames);
    p->ring_arena = aligned_alloc(16, (ring_len + 15) & ~(size_t)15);
    if (p->ring_arena == NULL ||
        ring_init(&p->ring, p->channels, (uint32_t)ring_frames, p->ring_arena, ring_len) != 0)
        goto fail;
    det_len = detect_arena_size_at(&cfg->detect, p->channels, rate);
    p->det_arena = aligned_alloc(16, (det_len + 15) & ~(size_t)15);
    if (p->det_arena == NULL)
        goto fail;
    p->det = detect_init(&cfg->detect, p->channels, rate, p->det_arena, det_len);
    if (p->det == NULL) {
        snprintf(p->err, sizeof(p->err), "detector configuration out of range");
        rc = PIPELINE_EINVAL;
        goto fail;
    }
    p->hold_off_us = (int64_t)llround((double)cfg->detect.hold_off_s * 1e6);
    if (cfg->capture_every_s > 0) {
        p->every_us = (int64_t)llround(cfg->capture_every_s * 1e6);
        if (p->every_us < 1)
            p->every_us = 1;
    }
    p->block = cfg->block_frames ? cfg->block_frames : 1024;
    p->blk = malloc(p->block * p->channels * sizeof(float));
    p->blk_t = malloc(p->block * sizeof(int64_t));
    /* integer snapshots are converted out of the ring into codes; float32
     * ones are encoded from the ring as they are */
    if (p->src->wire_type && p->src->wire_type != WIRE_F32)
        p->conv = malloc((size_t)p->cap.max_n * p->channels * wire_sample_size(p->src->wire_type));
    p->ring_guard = UINT64_MAX;
    p->lat = calloc(PIPELINE_LAT_SAMPLES, sizeof(double));
    if (p->blk == NULL || p->blk_t == NULL || p->lat == NULL ||
        (p->src->wire_type && p->src->wire_type != WIRE_F32 && p->conv == NULL))
        goto fail;
    {
        struct action_config ac = { p->device_id, cfg->on_trigger, cfg->alarm_fifo,
                                    cfg->alarm_socket };
        if (action_new(&ac, &p->act) != 0)
            goto fail;
    }
    if (encoder_init(p, win_bytes) != 0 || emitter_start(p) != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    snprintf(err, errlen, "%s", p->err[0] ? p->err : "out of memory");
    pipeline_free(p);
    return rc;
}

/* ---- local action ------------------------------------------------------ */

static const char *chan_name(const struct pipeline *p, unsigned c)
{
    return c < p->channels && p->src->chan[c].name[0] ? p->src->chan[c].name : "";
}

/* Starts the action and records how long after its block arrived it did. */
static void local_action(struct pipeline *p, uint64_t frame, int64_t t_us,
                         const struct detect_result *r)
{
    struct action_event ae = { t_us, r->score, chan_name(p, r->channel),
                               detect_name(r->detector), frame };
    struct timespec now;

    if (!action_configured(p->act))
        return;
    action_fire(p->act, &ae);
    clock_gettime(CLOCK_MONOTONIC, &now);
    p->lat[p->st.lat_count % PIPELINE_LAT_SAMPLES] = ts_diff_us(&p->blk_arrival, &now);
    p->st.lat_count++;
}

/* ---- snapshot: encode, sign, sink --------------------------------------- */

static void to_int(const float *in, size_t n, uint8_t type, void *out)
{
    if (type == WIRE_I16) {
        int16_t *o = out;
        for (size_t i = 0; i < n; i++) {
            float v = nearbyintf(in[i]);
            o[i] = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : v);
        }
    } else {
        int32_t *o = out;
        for (size_t i = 0; i < n; i++) {
            double v = nearbyint((double)in[i]);
            o[i] = (int32_t)(v > 2147483647.0 ? 2147483647.0 : v < -2147483648.0 ? -2147483648.0 : v);
        }
    }
}

/* Encodes and signs the job's window, reading it from the ring; runs in the
 * emitter thread.  The ring's frames are released (p->encoding cleared) as
 * soon as they are encoded, before the sink's slow write. */
static void encode_and_put(struct pipeline *p, const struct capture_window *c, int *ok)
{
    uint32_t count = capture_frames(c), head = p->job_head;
    struct wire_meta m;
    struct wire_planes src = { p->job_a, p->job_b, head, p->ring.capacity };
    size_t env_len = 0;
    uint64_t seq;
    int enc;

    memset(&m, 0, sizeof(m));
    snprintf(m.device_id, sizeof(m.device_id), "%s", p->device_id);
    seq = p->cfg.sink.next_seq != NULL ? p->cfg.sink.next_seq(p->cfg.sink.ctx) : ++p->seq_local;
    m.seq = seq;
    m.trigger_time_us = c->t_us;
    m.sample_rate = p->rate;
    m.sample_type = p->src->wire_type ? p->src->wire_type : WIRE_F32;
    m.channel_count = (uint8_t)p->channels;
    m.pre_samples = (uint32_t)(c->trigger - c->first);
    m.post_samples = (uint32_t)(c->end - c->trigger);
    snprintf(m.detector, sizeof(m.detector), "%s",
             c->detector == SCHEDULED ? "schedule" : detect_name(c->detector));
    m.score = c->score;
    for (unsigned i = 0; i < p->channels; i++) {
        m.channels[i] = p->src->chan[i];
        if (m.channels[i].name[0] == '\0')
            snprintf(m.channels[i].name, sizeof(m.channels[i].name), "ch%u", i);
    }
    if (m.sample_type != WIRE_F32) {
        size_t size = wire_sample_size(m.sample_type);
        uint8_t *codes = p->conv;

        for (unsigned ch = 0; ch < p->channels; ch++) {
            size_t cap = p->ring.capacity, at = (size_t)ch * count;
            to_int(p->job_a + ch * cap, head, m.sample_type, codes + at * size);
            to_int(p->job_b + ch * cap, count - head, m.sample_type, codes + (at + head) * size);
        }
        src = (struct wire_planes){ p->conv, NULL, count, count };
    }
    if (p->cfg.sink.begin != NULL) {
        /* Into the sink's file as it is made, then signed read back from it:
         * the envelope is never in memory whole. */
        struct wire_file f;
        int opened = p->cfg.sink.begin(p->cfg.sink.ctx, seq, &f) == 0;

        enc = opened ? wire_encode_v2_planes_file(p->cctx, &m, &src, p->sk, p->cfg.zstd_level,
                                                  WIRE_FLAGS_V2_DEFAULT, p->enc_scratch,
                                                  p->enc_scratch_cap, &f, &env_len)
                     : -1;
        if (opened && enc != 0) {
            fprintf(stderr, "agent: snapshot seq %llu not encoded: %s\n",
                    (unsigned long long)seq, wire_strerror(enc));
            p->cfg.sink.abort(p->cfg.sink.ctx, seq);
        }
    } else {
        enc = wire_encode_v2_planes_stream(p->cctx, &m, &src, p->sk, p->cfg.zstd_level,
                                           WIRE_FLAGS_V2_DEFAULT, p->enc_scratch,
                                           p->enc_scratch_cap, p->env, p->env_cap, &env_len);
    }
    pthread_mutex_lock(&p->mu);
    p->encoding = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* The scratch and codes are done with before the spool's fsyncs, which
     * take longer than the encode; an envelope buffer after the put. */
    release_pages(p->enc_scratch, p->enc_scratch_cap);
    if (p->conv)
        release_pages(p->conv, (size_t)p->cap.max_n * p->channels *
                                   wire_sample_size(p->src->wire_type));
    if (p->cfg.sink.begin != NULL) {
        *ok = enc == 0 && p->cfg.sink.commit(p->cfg.sink.ctx, seq, &m, env_len) == 0;
    } else {
        *ok = enc == 0 && p->cfg.sink.put(p->cfg.sink.ctx, seq, &m, p->env, env_len) == 0;
        release_pages(p->env, p->env_cap);
    }
}

/* Emitter thread: encodes and sinks the window described by p->job; the
 * sample thread does not overwrite its frames while encoding is set. */
static void *emitter_main(void *arg)
{
    struct pipeline *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->job_ready && !p->quit)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->job_ready)
            break;              /* quit with nothing pending */
        struct capture_window c = p->job;
        int ok = 0;

        pthread_mutex_unlock(&p->mu);
        encode_and_put(p, &c, &ok);
        pthread_mutex_lock(&p->mu);
        if (ok)
            p->st.snapshots++;
        else
            p->st.sink_errors++;
        p->job_ready = 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Waits until the emitter has finished the job in hand (if any). */
static void emitter_drain(struct pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->job_ready)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* The next push would overwrite the first frame of the window the emitter
 * may still be reading: wait until it has encoded it. */
static void ring_wait(struct pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->encoding)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    p->ring_guard = UINT64_MAX;
}

/* Closes the pending capture (at total frames at the latest) and hands its
 * window to the emitter. */
static void emit_capture(struct pipeline *p, uint64_t total)
{
    struct capture_window w;

    capture_close(&p->cap, total, &w);
    if ((p->cfg.sink.put == NULL && p->cfg.sink.begin == NULL) || !p->have_key) {
        pthread_mutex_lock(&p->mu);
        p->st.snapshots++;      /* replay without a spool: counted, nothing to keep */
        pthread_mutex_unlock(&p->mu);
        return;
    }
    /* The one-slot hand-off is free in all but a burst of snapshots closer
     * together than one spool write; then the sample path waits for it. */
    emitter_drain(p);
    if (ring_span(&p->ring, w.first, capture_frames(&w), &p->job_a, &p->job_head,
                  &p->job_b) != 0) {
        pthread_mutex_lock(&p->mu);
        p->st.sink_errors++;    /* cannot happen with the ring sized >= the window */
        pthread_mutex_unlock(&p->mu);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->job = w;
    p->job_ready = 1;
    p->encoding = 1;
    p->ring_guard = w.first + p->ring.capacity;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void on_trigger(struct pipeline *p, uint64_t frame, int64_t t_us,
                       const struct detect_result *r)
{
    p->st.triggers++;
    if (p->cfg.counters != NULL)
        atomic_fetch_add(&p->cfg.counters->triggers, 1);
    local_action(p, frame, t_us, r);
    if (capture_pending(&p->cap) && p->cap.w.detector == SCHEDULED) {
        capture_cancel(&p->cap);        /* the trigger takes it over (top of file) */
        p->st.scheduled_dropped++;
    }
    switch (capture_trigger(&p->cap, frame, t_us, r)) {
    case CAPTURE_MERGED:
        p->st.merged++;
        break;
    case CAPTURE_HELD_OFF:
        p->st.held_off++;
        break;
    case CAPTURE_STARTED:
        break;
    }
}

/* Starts a scheduled capture when one is due (top of file).  The first frame
 * starts the clock, so the first window has its pre-trigger frames in the
 * ring once capture_every_s >= pre_s.  One delayed by a pending capture is
 * taken at the first free frame; the schedule then keeps its grid, without a
 * burst after a long delay or a gap in the timestamps. */
static void schedule_step(struct pipeline *p, uint64_t frame, int64_t t_us)
{
    struct detect_result r;

    if (!p->schedule_armed) {
        p->schedule_armed = 1;
        p->t_next_capture = t_us + p->every_us;
        return;
    }
    if (t_us < p->t_next_capture || capture_pending(&p->cap))
        return;
    memset(&r, 0, sizeof(r));
    r.detector = SCHEDULED;
    (void)capture_trigger(&p->cap, frame, t_us, &r);
    p->st.scheduled++;
    p->t_next_capture += p->every_us;
    if (p->t_next_capture <= t_us)
        p->t_next_capture = t_us + p->every_us;
}

/* Frame i's timestamp as the scores file writes it: the CSV's own text,
 * else unix seconds with microseconds. */
static int write_ts(struct pipeline *p, FILE *f, size_t i, int64_t t_us)
{
    const char *ts = p->src->ts_text != NULL ? p->src->ts_text(p->src, i) : NULL;

    if (ts != NULL)
        return fputs(ts, f);
    return fprintf(f, "%lld.%06lld", (long long)(t_us / 1000000), (long long)(t_us % 1000000));
}

/* A trigger's row: when, which detector, which channel (index and name),
 * the exported score and the trigger's own.  Names are the source's (a CSV
 * header's), written as they are unless they hold a comma or a quote. */
static int write_trigger(struct pipeline *p, size_t i, int64_t t_us, const struct detect_result *r)
{
    const char *name = r->channel < p->channels ? p->src->chan[r->channel].name : "";
    int rc = write_ts(p, p->cfg.triggers, i, t_us);

    if (rc >= 0)
        rc = fprintf(p->cfg.triggers, ",%s,%u,", detect_name(r->detector), (unsigned)r->channel);
    if (rc >= 0 && strpbrk(name, ",\"\r\n") != NULL) {
        rc = fputc('"', p->cfg.triggers);
        for (const char *c = name; rc >= 0 && *c; c++)
            rc = *c == '"' ? fputs("\"\"", p->cfg.triggers) : fputc(*c, p->cfg.triggers);
        if (rc >= 0)
            rc = fputc('"', p->cfg.triggers);
    }
    else if (rc >= 0)
        rc = fputs(name, p->cfg.triggers);
    if (rc >= 0)
        rc = fprintf(p->cfg.triggers, ",%.6f,%.6f\n", (double)r->score, (double)r->trigger_score);
    return rc < 0 ? PIPELINE_EIO : 0;
}

static int write_score(struct pipeline *p, size_t i, int64_t t_us,
                       const struct detect_result *r)
{
    int rc = write_ts(p, p->cfg.scores, i, t_us);

    if (rc >= 0)
        rc = fprintf(p->cfg.scores, ",%.6f,%d", (double)r->score, r->triggered);
    if (rc >= 0 && p->cfg.scores_trigger)
        rc = fprintf(p->cfg.scores, ",%.6f", (double)r->trigger_score);
    if (rc >= 0)
        rc = fputc('\n', p->cfg.scores);
    return rc < 0 ? PIPELINE_EIO : 0;
}

/* The model was trained on physical units (the server reads snapshots
 * through wire_to_physical); a source that yields ADC codes (a scale or an
 * offset per channel) is converted here the same way, so that device and
 * server compute the same features.  Detectors work on codes: their
 * statistics are scale-free. */
static const float *model_units(struct pipeline *p, const float *frame)
{
    int calibrated = 0;

    for (unsigned c = 0; c < p->channels; c++) {
        double scale = p->src->chan[c].scale != 0.0 ? p->src->chan[c].scale : 1.0;
        double offset = p->src->chan[c].offset;

        if (scale != 1.0 || offset != 0.0)
            calibrated = 1;
        p->model_frame[c] = wire_value_physical(p->src->wire_type, frame[c], scale, offset);
    }
    return calibrated ? p->model_frame : frame;
}

/* The model scores its own windows with its own threshold (the detectors'
 * trigger threshold means nothing for it).  Active, its score is reported
 * like a detector's where it is the highest and nothing triggered, and an
 * alarm triggers like a detector would, under the same hold-off, unless a
 * detector already did: the snapshot names who fired.  In shadow nothing
 * here changes. */
static void model_step(struct pipeline *p, const float *frame, int64_t t_us,
                       struct detect_result *res)
{
    float score = 0.0f;
    int rc = p->cfg.model.step(p->cfg.model.ctx, model_units(p, frame), &score);

    if (!(rc & PIPELINE_MODEL_ACTIVE) || res->triggered)
        return;
    if (score > res->score) {
        res->score = score;
        res->channel = 0;
        res->detector = DETECT_MODEL;
    }
    if (!(rc & PIPELINE_MODEL_ALARM))
        return;
    if (p->model_triggered && t_us - p->t_model_trigger < p->hold_off_us) {
        res->suppressed = 1;
        return;
    }
    p->model_triggered = 1;
    p->t_model_trigger = t_us;
    res->triggered = 1;
    res->channel = 0;
    res->detector = DETECT_MODEL;
    res->score = score;
}

int pipeline_run(struct pipeline *p, atomic_int *stop)
{
    int rc = 0;

    if (p->cfg.scores != NULL &&
        fputs(p->cfg.scores_trigger ? "timestamp,anomaly_score,trigger,trigger_score\n"
                                    : "timestamp,anomaly_score,trigger\n", p->cfg.scores) < 0)
        return PIPELINE_EIO;
    if (p->cfg.triggers != NULL &&
        fputs("timestamp,detector,channel,name,anomaly_score,trigger_score\n", p->cfg.triggers) < 0)
        return PIPELINE_EIO;
    while (stop == NULL || atomic_load(stop) == 0) {
        size_t n = 0;
        int r = p->src->next(p->src, p->blk, p->blk_t, p->block, &n);

        if (r == SOURCE_EOF)
            break;
        if (r < 0) {
            snprintf(p->err, sizeof(p->err), "source: %.200s", p->src->err);
            rc = PIPELINE_ESOURCE;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &p->blk_arrival);
        for (size_t i = 0; i < n; i++) {
            const float *frame = p->blk + i * p->channels;
            struct detect_result res;
            uint64_t f = p->ring.total;

            if (f >= p->ring_guard)
                ring_wait(p);
            ring_push(&p->ring, frame, p->blk_t[i]);
            detect_step(p->det, frame, p->blk_t[i], &res);
            if (p->cfg.model.step)
                model_step(p, frame, p->blk_t[i], &res);
            if (res.triggered) {
                on_trigger(p, f, p->blk_t[i], &res);
                if (res.channel < WIRE_MAX_CHANNELS)
                    p->trig_by[detector_index(res.detector)][res.channel]++;
                if (p->cfg.triggers != NULL && (rc = write_trigger(p, i, p->blk_t[i], &res)) != 0)
                    goto out;
            }
            if (p->every_us > 0)
                schedule_step(p, f, p->blk_t[i]);
            if (capture_due(&p->cap, p->ring.total))
                emit_capture(p, p->ring.total);
            if (p->cfg.scores != NULL && (rc = write_score(p, i, p->blk_t[i], &res)) != 0)
                goto out;
        }
        if (n > 0) {
            if (p->st.frames == 0)
                p->st.t_first_us = p->blk_t[0];
            p->st.t_last_us = p->blk_t[n - 1];
        }
        p->st.frames += n;
        if (p->cfg.counters != NULL)
            atomic_fetch_add(&p->cfg.counters->samples, n);
        action_reap(p->act);
    }
    /* End of input or stop: keep what the ring has of a pending window. */
    if (capture_pending(&p->cap))
        emit_capture(p, p->ring.total);
out:
    /* Every snapshot of this run is in the sink when run returns. */
    emitter_drain(p);
    if (p->cfg.scores != NULL && fflush(p->cfg.scores) != 0 && rc == 0)
        rc = PIPELINE_EIO;
    if (p->cfg.triggers != NULL && fflush(p->cfg.triggers) != 0 && rc == 0)
        rc = PIPELINE_EIO;
    return rc;
}

uint64_t pipeline_trigger_count(const struct pipeline *p, uint8_t detector, unsigned channel)
{
    if (detector == 0 || channel >= WIRE_MAX_CHANNELS)
        return 0;
    return p->trig_by[detector_index(detector)][channel];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentiles over the recent latencies; sorts a copy (not in the sample
 * path: called for reports). */
void pipeline_get_stats(struct pipeline *p, struct pipeline_stats *st)
{
    size_t n = p->st.lat_count < PIPELINE_LAT_SAMPLES ? (size_t)p->st.lat_count
                                                      : PIPELINE_LAT_SAMPLES;
    struct action_stats as;
    double *tmp;

    pthread_mutex_lock(&p->mu);
    *st = p->st;
    pthread_mutex_unlock(&p->mu);
    action_get_stats(p->act, &as);
    st->action_errors = as.errors;
    st->alarm_drops = as.alarm_drops;
    st->lat_p50_us = st->lat_p99_us = st->lat_max_us = 0;
    if (n == 0 || (tmp = malloc(n * sizeof(double))) == NULL)
        return;
    memcpy(tmp, p->lat, n * sizeof(double));
    qsort(tmp, n, sizeof(double), cmp_double);
    st->lat_p50_us = tmp[(n - 1) / 2];
    st->lat_p99_us = tmp[(size_t)((double)(n - 1) * 0.99)];
    st->lat_max_us = tmp[n - 1];
    free(tmp);
}

const char *pipeline_err(const struct pipeline *p)
{
    return p->err[0] ? p->err : "no error";
}

void pipeline_free(struct pipeline *p)
{
    if (p == NULL)
        return;
    if (p->emitter_started) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->emitter, NULL);     /* finishes a job still in hand */
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    action_free(p->act);
    sodium_memzero(p->sk, sizeof(p->sk));
    free(p->ring_arena);
    free(p->det_arena);
    free(p->blk);
    free(p->blk_t);
    free(p->conv);
    free(p->enc_scratch);
    free(p->env);
    ZSTD_freeCCtx(p->cctx);
    free(p->lat);
    free(p);
}
