/* detect.h - streaming detectors and the trigger decision (portable core).
 *
 * Part of the agent's sample path: no heap, no libc I/O, no system calls, so
 * it builds for a Cortex-M4 as well as for Linux.  The caller hands in one
 * arena sized by detect_arena_size(); detect_step() is called once per frame
 * and does constant work.
 *
 * Score and decision are separate.  The exported score is a calibrated
 * surprise in [0, 1], never gated: each detector's z becomes the probability
 * that a second of this stream shows a surprise that large by chance, and
 * the score is S / (S + 5), S = -log10 of it (0.5: once in 1e5 seconds, about
 * a day).  The trigger acts on its own score, the same surprises after the
 * novelty stage and the quiet period, and applies hysteresis (arm above
 * `threshold`, re-arm below `rearm`), a hold-off after each trigger, a cap
 * on triggers per hour and the repeat memory (alarm-flood control). */
#ifndef PRECURSOR_DETECT_H
#define PRECURSOR_DETECT_H

#include <stddef.h>
#include <stdint.h>

#define DETECT_MAX_CHANNELS 64

/* A key left at this value takes the rate's profile (see detect_profile). */
#define DETECT_AUTO_U32 UINT32_MAX
#define DETECT_AUTO_F (-1.0f)

/* Defaults by the stream's rate (docs/DETECTORS.md): process data (below
 * DETECT_PROCESS_MAX_HZ: pressures, flows, temperatures at 0.1..10 Hz) and
 * vibration (kHz). */
enum detect_profile { DETECT_PROFILE_AUTO, DETECT_PROFILE_PROCESS, DETECT_PROFILE_VIBRATION };
#define DETECT_PROCESS_MAX_HZ 20.0

struct detect_config {
    float threshold;            /* trigger when score >= threshold */
    float rearm;                /* re-arm when score < rearm (hysteresis) */
    float hold_off_s;           /* no new trigger this long after one; DETECT_AUTO_F = profile */
    uint32_t max_per_hour;      /* 0 = no cap; DETECT_AUTO_U32 = profile */
    float level_alpha;          /* EWMA smoothing of the level/variance detector */
    uint32_t window;            /* samples in the short-window feature detector; 0 = profile */
    float warmup_s;             /* no trigger before this much data */
    uint32_t enable;            /* DETECT_* detectors below, DETECT_ENABLE_AUTO: the profile's */
    /* Likelihood stage (docs/DETECTORS.md).  The raw level and
     * feature scores of each channel are turned into the probability that
     * their short-term mean is as high as it is, given their own long-term
     * distribution; counted in frames so 5-minute and 10 kHz data both work. */
    uint32_t lik_short;         /* frames in the short mean; 0 = stage off (novelty instead) */
    uint32_t lik_long;          /* frames in the long-term mean and variance */
    uint32_t quiet_frames;      /* after a detection the score is held low this many frames */
    uint32_t novelty_half;      /* novelty stage (used when lik_short = 0): half-life in frames
                                 * of the recent peak surprise that a new one must exceed;
                                 * 0 = stage off */
    uint32_t profile;           /* enum detect_profile */
    /* Manipulated variables (actuator positions, set-points, commands the
     * control system or an operator sets), bit c = channel c; 0 = none.
     * They act on the trigger only (docs/DETECTORS.md): a trigger never
     * names one, and after a significant move of one the level and feature
     * triggers of every channel are held for hold_off_s (the settle) while
     * the multivariate one keeps running.  The exported score is the same
     * with or without them. */
    uint64_t manipulated;
};

#define DETECT_LEVEL   0x1u
#define DETECT_FEATURE 0x2u
#define DETECT_MODEL   0x4u
#define DETECT_MULTI   0x8u     /* multivariate (detect_multi.h); needs 2+ channels */
#define DETECT_CONTEXT 0x10u    /* contextual novelty (detect_ctx.h); process profile */
#define DETECT_RANGE   0x20u    /* a value beyond the range seen (detect_range.h); process profile */
#define DETECT_SEQUENCE 0x40u   /* n-grams never seen (detect_seq.h); in no profile, opt-in */
/* In enable: the set is the default one, to be fitted to the rate's profile
 * (process data have no waveform, so no feature detector there). */
#define DETECT_ENABLE_AUTO 0x80000000u

/* A model loaded at run time (trained and signed by the server,
 * schema/MODEL.md).  score() maps one feature vector to [0, 1]. */
struct detect_model {
    uint32_t n_features;
    float (*score)(const void *model, const float *features, uint32_t n);
    const void *model;
};

struct detect_result {
    float score;                /* calibrated surprise in [0, 1], never gated */
    uint16_t channel;           /* channel with the highest trigger score (else score) */
    uint8_t detector;           /* DETECT_LEVEL/FEATURE/MODEL/MULTI that gave it */
    uint8_t triggered;          /* 1 on the frame that fires */
    uint8_t suppressed;         /* 1 if it would fire but hold-off or cap stopped it */
    float trigger_score;        /* what the trigger acts on: after novelty and quiet */
};

/* Feature vector handed to a model: DETECT_NFEAT floats per channel,
 * channel-major: the level z, then the logs of RMS, peak, crest factor,
 * kurtosis, low-band and high-band energy over the window.  A model whose
 * n_features is not channels * DETECT_NFEAT is not used. */
#define DETECT_NFEAT 7

struct detect;                  /* opaque; lives in the arena */

void detect_config_defaults(struct detect_config *cfg);
/* cfg with every key left at its auto value replaced by the profile's value
 * for `rate` (the profile named by cfg->profile, or chosen by the rate). */
void detect_config_resolve(struct detect_config *cfg, double rate);
const char *detect_profile_name(uint32_t profile);   /* "auto", "process", "vibration" */
/* Arena bytes for any rate (an upper bound), and for this rate: the context
 * and range detectors (1056 and 40 bytes a channel) are in the process
 * profile's set only (they run at other rates only when named), so a caller
 * that knows the rate need not hold their room at vibration rates. */
size_t detect_arena_size(const struct detect_config *cfg, unsigned channels);
size_t detect_arena_size_at(const struct detect_config *cfg, unsigned channels, double rate);
/* Returns NULL if arena is too small or the config out of range. */
struct detect *detect_init(const struct detect_config *cfg, unsigned channels,
                           double rate, void *arena, size_t arena_len);
void detect_set_model(struct detect *d, const struct detect_model *m);
/* One frame (channels floats); t_us is the frame's timestamp. */
void detect_step(struct detect *d, const float *frame, int64_t t_us,
                 struct detect_result *out);
const char *detect_name(uint8_t detector);   /* "level", "feature", "model", "multi", "context",
                                              * "range", "sequence" */
/* Calibrated score of a z: two-sided normal tail probability (one-sided if
 * sides is 1), as the chance per second of `per_second` such scores, turned
 * into S = -log10 and S / (S + 5).  Monotone in z, never exactly 0 for z > 0. */
float detect_surprise(float z, int sides, float per_second);

/* The likelihood stage on its own (exposed for tests and tools): a mean and
 * variance of a raw score over about `long_n` frames, a short mean over about
 * `short_n` frames, and the score -log10(tail probability) / 10, clipped to
 * [0, 1] (a tail of 1e-5 scores 0.5, 1e-10 or less scores 1). */
struct detect_lik {
    float s_mean;               /* short mean of the raw score */
    float l_mean, l_var;        /* long-term mean and variance */
    uint32_t n;                 /* updates so far (faster weights while young) */
};
void detect_lik_init(struct detect_lik *l);
float detect_lik_step(struct detect_lik *l, float raw, uint32_t short_n, uint32_t long_n);

#endif
