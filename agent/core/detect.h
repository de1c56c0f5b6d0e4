/* detect.h - streaming detectors and the trigger decision (portable core).
 *
 * Part of the agent's sample path: no heap, no libc I/O, no system calls, so
 * it builds for a Cortex-M4 as well as for Linux.  The caller hands in one
 * arena sized by detect_arena_size(); detect_step() is called once per frame
 * and does constant work.
 *
 * Scores are in [0, 1].  Each detector scores every channel; the frame score
 * is the maximum over detectors and channels.  The trigger applies
 * hysteresis (arm above `threshold`, re-arm below `rearm`), a hold-off after
 * each trigger, and a cap on triggers per hour (alarm-flood control). */
#ifndef PRECURSOR_DETECT_H
#define PRECURSOR_DETECT_H

#include <stddef.h>
#include <stdint.h>

#define DETECT_MAX_CHANNELS 64

struct detect_config {
    float threshold;            /* trigger when score >= threshold */
    float rearm;                /* re-arm when score < rearm (hysteresis) */
    float hold_off_s;           /* no new trigger this long after one */
    uint32_t max_per_hour;      /* 0 = no cap */
    float level_alpha;          /* EWMA smoothing of the level/variance detector */
    uint32_t window;            /* samples in the short-window feature detector */
    float warmup_s;             /* no trigger before this much data */
    uint32_t enable;            /* DETECT_LEVEL | DETECT_FEATURE | DETECT_MODEL */
    /* Likelihood stage (docs/DETECTORS.md).  The raw level and
     * feature scores of each channel are turned into the probability that
     * their short-term mean is as high as it is, given their own long-term
     * distribution; counted in frames so 5-minute and 10 kHz data both work. */
    uint32_t lik_short;         /* frames in the short mean; 0 = stage off (raw scores) */
    uint32_t lik_long;          /* frames in the long-term mean and variance */
    uint32_t quiet_frames;      /* after a detection the score is held low this many frames */
    uint32_t novelty_half;      /* novelty stage (used when lik_short = 0): half-life in frames
                                 * of the recent peak surprise that a new one must exceed;
                                 * 0 = stage off */
};

#define DETECT_LEVEL   0x1u
#define DETECT_FEATURE 0x2u
#define DETECT_MODEL   0x4u

/* A model loaded at run time (trained and signed by the server,
 * schema/MODEL.md).  score() maps one feature vector to [0, 1]. */
struct detect_model {
    uint32_t n_features;
    float (*score)(const void *model, const float *features, uint32_t n);
    const void *model;
};

struct detect_result {
    float score;                /* frame score in [0, 1] */
    uint16_t channel;           /* channel with the highest score */
    uint8_t detector;           /* DETECT_LEVEL/FEATURE/MODEL that gave it */
    uint8_t triggered;          /* 1 on the frame that fires */
    uint8_t suppressed;         /* 1 if it would fire but hold-off or cap stopped it */
};

/* Feature vector handed to a model: DETECT_NFEAT floats per channel,
 * channel-major: the level z, then the logs of RMS, peak, crest factor,
 * kurtosis, low-band and high-band energy over the window.  A model whose
 * n_features is not channels * DETECT_NFEAT is not used. */
#define DETECT_NFEAT 7

struct detect;                  /* opaque; lives in the arena */

void detect_config_defaults(struct detect_config *cfg);
size_t detect_arena_size(const struct detect_config *cfg, unsigned channels);
/* Returns NULL if arena is too small or the config out of range. */
struct detect *detect_init(const struct detect_config *cfg, unsigned channels,
                           double rate, void *arena, size_t arena_len);
void detect_set_model(struct detect *d, const struct detect_model *m);
/* One frame (channels floats); t_us is the frame's timestamp. */
void detect_step(struct detect *d, const float *frame, int64_t t_us,
                 struct detect_result *out);
const char *detect_name(uint8_t detector);   /* "level", "feature", "model" */

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
