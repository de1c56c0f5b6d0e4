/* detect.c - streaming detectors and the trigger decision (portable core).
 *
 * Everything lives in the caller's arena; no heap, no libc I/O, only
 * <string.h> and <math.h>, so the same file builds for a Cortex-M4.  Work per
 * frame is bounded: a few flops per channel per sample, plus a fixed-size
 * feature evaluation every `hop` samples.
 *
 * Detectors (per channel, each a score in [0, 1]):
 *   level    EWMA mean and EWMA absolute deviation; the update is clipped at
 *            CLIP robust scales so one outlier cannot drag the baseline; z of
 *            the sample against it, plus the ratio of a fast to the slow scale
 *            (variance bursts).
 *   feature  over the last 4 hops of window/4 samples: RMS, peak, crest
 *            factor, kurtosis and the energy in two IIR band-pass bands, each
 *            compared (in log) with its own slowly adapting robust baseline.
 *   model    the per-channel feature vectors go to a run-time model.
 *   multi    detect_multi.c: the frame vector against a forgetting covariance.
 *   context  detect_ctx.c: each sample's symbol against the few before it
 *            (process profile; exported score only).
 *   range    detect_range.c: a value beyond the range the channel showed
 *            (process profile; exported score only).
 *   sequence detect_seq.c: n-grams of symbols never seen (in no profile,
 *            only when named; exported score only).
 *
 * Two scores leave each frame (docs/DETECTORS.md).  The exported score is
 * each detector's frame z as a calibrated surprise (the larger of its normal
 * and its empirical tail, extrapolated beyond the stream's largest z at its
 * own tail heaviness, as a chance per second), nothing gated.  The
 * trigger's score is the older path below: a z is mapped to a raw score by
 * r^2 / (1 + r^2), r = z / Z_HALF (z = Z_HALF gives 0.5), then the novelty
 * stage and the quiet period of the trigger; a crossing must also be
 * significant.  In the process profile a channel back at the level it had
 * before the last event (its home) is no news to the trigger.
 *
 * Likelihood stage (off by default; lik_short > 0 turns it on instead of the
 * novelty stage, see docs/DETECTORS.md): the raw level and feature
 * scores of a channel are not reported as they are, because a signal that is
 * always a little surprising (spiky counts, daily cycles sampled every five
 * minutes) would then score high all the time.  Instead the stage keeps the
 * long-term mean and variance of the channel's raw score and reports how
 * improbable the short-term mean of it is under that distribution (Numenta's
 * anomaly likelihood): -log10 of a Gaussian tail probability, / 10.  The
 * score is a probability, so one threshold means the same on every signal.
 * After the trigger score reaches the threshold it is held at 0 for
 * quiet_frames: one sharp trigger per event, not a plateau of repeated alarms. */
#include "agent/core/detect.h"
#include "agent/core/detect_multi.h"
#include "agent/core/detect_ctx.h"
#include "agent/core/detect_seq.h"
#include "agent/core/detect_range.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CLIP 3.0f               /* update clip, in robust scales */
#define SHIFT_RUN 8             /* clipped samples in a row that make a new level */
#define Z_HALF_LEVEL 4.0f       /* level z that scores 0.5 */
#ifndef Z_HALF_FEAT
#define Z_HALF_FEAT 4.0f        /* feature z (log domain) that scores 0.5 */
#endif
#define VAR_HALF 1.0986123f     /* ln(3): fast scale 3x the slow one scores 0.5 */
#define FEAT_FLOOR 0.05f        /* smallest log-scale of a feature baseline (5 %) */
#define MAD_TO_SIGMA 1.2533141f /* mean abs deviation -> sigma for a normal */
#define MAX_WINDOW 65536u
#define MAX_CAP 100000u         /* per-hour cap bound: the arena holds that many times */
#define HOUR_US INT64_C(3600000000)
#define LIK_SD_FLOOR 0.01f      /* smallest spread of a raw score (a flat signal) */
#define LIK_DECADES 10.0f       /* tail 10^-LIK_DECADES scores 1 */
#define ALARM_MARGIN 1.5f       /* novelty: a new z must beat the last detected one by this */
#define REPEAT_MARGIN 1.5f      /* trigger: a crossing within this of the last one is a repeat */
#define SAME_SIZE 0.8f          /* a z this close to the last trigger's renews its memory */
#define REPEAT_SLOW 4.0         /* the repeat memory lasts this many novelty_half */
#ifndef EVT_K
#define EVT_K 1.3f              /* extreme-value allowance per sqrt(2 ln(trials per second)) */
#endif
#define SUB_N 4                 /* hops in the feature window */
#ifndef LEVEL_YOUNG
#define LEVEL_YOUNG 32u         /* frames before any trigger, whatever warmup_s says */
#endif
/* Evaluations a feature baseline needs before the feature detector may speak:
 * a robust scale from k values is off by about 1/sqrt(k), and from 8 (the
 * old gate) it fired a false trigger at its first word in two thirds of the
 * streams.  Counted in evaluations, so the same at 1 Hz and 50 kHz. */
#define FEAT_WARM_EVALS 24u
#define SURPRISE_HALF 5.0f      /* -log10 p per second that scores 0.5 */
/* Frames in the memory of the exported score's empirical calibration.  The
 * level baseline must follow the process (1 / level_alpha frames), but how
 * often a stream's z are that large changes far more slowly, and calling a
 * frame a one-in-N event from the stream's own history takes about N frames
 * of it: 1e5 resolve the chance 1e-5 at which the score is 0.5 at one frame
 * a second.  With the baseline's 1000 every record of the last thousand
 * frames scored alike. */
#ifndef CAL_MEM
#define CAL_MEM 100000
#endif
#define CAL_ALPHA (1.0f / (float)CAL_MEM)
/* Block length of the range detector: its range covers 1 to 2 blocks, the
 * calibration's memory at most. */
#ifndef RANGE_HALF
#define RANGE_HALF ((uint32_t)CAL_MEM / 2u)
#endif
/* The empirical tail runs out at the largest z a stream has shown; beyond it
 * the chance is extrapolated at the stream's own tail heaviness, measured
 * against the nominal tail from TAIL_L on (see tail_ln_p). */
#ifndef TAIL_L
#define TAIL_L 5.9f             /* -ln of the nominal chance 0.0027 (3 sigma, two-sided) */
#endif
#ifndef TAIL_MEM
#define TAIL_MEM 64.0f          /* exceedances in the memory of their mean excess */
#endif
#ifndef TAIL_PRIOR
#define TAIL_PRIOR 4.0f         /* the nominal tail is worth this many exceedances */
#endif
/* A trigger also needs the frame's calibrated score at this level: a
 * surprise that pure Gaussian noise shows about once in 1e5 seconds of the
 * stream (a day), whatever its rate and channel count.  Novelty alone (the
 * excess over the recent peak) fired a few times in six hours of plain 1 Hz
 * noise. */
#define SIGNIFICANT 0.5f
#define PROC_WINDOW 64u         /* process profile: 64 samples (about a minute at 1 Hz;
                                 * kurtosis of fewer samples is mostly noise) */
#define PROC_HOLD_OFF_S 300.0f  /* process: one trigger per 5 minutes at most */
#define PROC_PER_HOUR 6u        /* process: ISA-18.2's "acceptable" 6 alarms an hour */
#define VIB_WINDOW 256u
#define VIB_HOLD_OFF_S 10.0f
#define VIB_PER_HOUR 30u
#define CAP_ROOM 30u            /* trigger-time ring when the cap is left to the profile */

enum { F_RMS, F_PEAK, F_CREST, F_KURT, F_BAND_LO, F_BAND_HI, F_COUNT };

/* Empirical tail of a detector's frame z: a forgetting histogram over
 * these bin edges, so the exported score is a surprise against what this
 * stream usually does, not only against a normal table (a signal that
 * spikes every day stops scoring its usual spikes as one-in-a-million). */
#define TC_BINS 28
static const float tc_edge[TC_BINS] = { 0.0f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f,
                                        4.5f, 5.0f, 6.0f, 7.0f, 8.0f, 10.0f, 12.0f, 15.0f,
                                        20.0f, 27.0f, 36.0f, 50.0f, 70.0f, 100.0f, 150.0f,
                                        250.0f, 400.0f, 700.0f, 1000.0f, 2000.0f };
struct tailcal {
    float c[TC_BINS];           /* weight of past z per bin; forgetting is done by
                                 * growing the weight of new ones (w), O(1) a frame */
    float w, total;
    float ln_zero;              /* ln p above which the score is 0 (see calibrated) */
    uint32_t n;                 /* updates so far (faster weights while young) */
    /* The stream's own tail beyond the nominal chance e^-TAIL_L (see
     * tail_ln_p): how often frames exceed it, and by how much (in -ln p). */
    float ex_rate;              /* share of frames beyond it, forgotten like c[] */
    float ex_mean;              /* mean excess of their -ln p over TAIL_L */
    uint32_t ex_n;              /* exceedances so far (prior weight while few) */
    int fit_tail;               /* extrapolate at the fitted tail (not for multi: its
                                 * z is already scaled by its own history) */
};

/* A robust running baseline: EWMA mean and EWMA absolute deviation. */
struct base {
    float mean, dev;
    uint32_t n;                 /* updates so far (faster alpha while young) */
};

struct biquad {
    float b0, b2, a1, a2;       /* band-pass: b1 = 0, b2 = -b0 */
    float x1, x2, y1, y2;
};

struct chan {
    struct base lvl;            /* level of the raw sample */
    float dev_fast;             /* fast EWMA abs deviation (variance bursts) */
    float prev;                 /* last sample */
    int32_t run;                /* consecutive clipped samples, signed by side */
    float res;                  /* resolution: smallest step seen between samples */
    /* Window of SUB_N hops, y = x - level mean at the time it entered, kept
     * as per-hop sums (powers 1..4 and max |y|) that are only ever added
     * to: evaluations fall on hop boundaries, so the window is exactly the
     * last SUB_N hops.  A sliding sum that subtracts a leaving spike loses
     * the noise beneath it to float cancellation (kurtosis fell to e^-29
     * when a 20-sigma spike left, and the feature answered the spike again
     * 300 frames later), and a peak held over more samples than the RMS saw
     * made the crest factor jump when the spike left the RMS window. */
    float hs[SUB_N][5];         /* per hop: sum y, y^2, y^3, y^4, max |y| */
    struct biquad bp[2];
    float e_band[2];            /* EWMA of band-pass output squared */
    struct base feat[F_COUNT];
    float dev_diff;             /* EWMA abs first difference (spikes on cycles) */
    float zl_now, zf_now;       /* this frame's level and feature z (exported score) */
    float floor_now;            /* the level's smallest scale (resolution) */
    uint32_t evals;             /* feature evaluations so far (saturates) */
    float score_level, score_feat;
    struct detect_lik lik;
    float peak_z, peak_zf;      /* novelty: recent peak z of level / features, decaying */
    float alarm_z, alarm_zf;    /* z of the last detected event, decaying */
    float last_z, last_zf;      /* this frame's z, recorded into alarm_* on a detection */
    float rep_size[2];          /* z of the last trigger, by detector (level, feature) */
    float rep_mem[2];           /* the same, decaying unless renewed by a repeat */
    float rep_prev[2];          /* rep_mem before this frame: what a crossing is judged by */
    float feat_z_level;         /* for the model vector */
    float home_mean, home_scale;        /* the level before the last event (trigger path) */
    float p_ctx;                /* p-value of this frame's symbol in its context */
    float p_seq;                /* p-value of this frame's n-grams being new */
};

struct detect {
    struct detect_config cfg;
    unsigned channels;
    double rate;
    uint32_t hop;
    uint64_t frames;
    uint32_t sub;               /* hop slot being filled, 0..SUB_N-1 */
    int64_t t_first;
    int64_t warmup_us, hold_off_us;     /* from the config, so the frame path has no
                                         * double arithmetic (soft-float on an M4) */
    int64_t t_last_trigger;
    int have_trigger;
    int armed;
    float alpha_fast, alpha_band;
    const struct detect_model *model;
    float score_model;
    uint32_t quiet;             /* frames left with the score held at 0 */
    float quiet_peak;           /* highest score since the quiet period began */
    float nov_decay;            /* per-frame decay of the novelty peak */
    float rep_decay;            /* per-frame decay of the repeat memory */
    float evt_level, evt_feat;  /* z a novelty must exceed its reference by, for the
                                 * trials per second of level and feature scores */
    struct chan *ch;            /* [channels] */
    int64_t *trig_t;            /* the last max_per_hour trigger times (ring) */
    uint32_t trig_n, trig_pos;
    float *fvec;                /* [channels * DETECT_NFEAT] */
    struct detect_multi *mv;    /* NULL unless DETECT_MULTI and 2+ channels */
    float *floor;               /* [channels]: each channel's smallest scale, for mv */
    float mv_z;                 /* this frame's multivariate z */
    unsigned mv_chan;
    float mv_peak, mv_alarm, mv_last;   /* novelty state of the multivariate z */
    float mv_rep_size, mv_rep_mem, mv_rep_prev;     /* its repeat memory */
    int process;                        /* the process profile (rate or profile=) */
    int step_stat;                      /* the level's first-difference statistic is on */
    float trials_level, trials_feat;    /* scores a frame's z is the maximum of */
    float fps_level, fps_feat;          /* such frames (evaluations) per second */
    struct tailcal cal_level, cal_feat, cal_multi;
    float z_level, z_feat;              /* this frame's largest z of each */
    float score_feat_cal;               /* the features' calibrated score, per evaluation */
    float score_multi_cal;              /* the multivariate detector's, this frame */
    struct detect_ctx *cx;              /* [channels], NULL unless DETECT_CONTEXT */
    struct tailcal cal_ctx;
    struct detect_seq *sq;              /* [channels], NULL unless DETECT_SEQUENCE */
    struct tailcal cal_seq;
    struct detect_range *rg;            /* [channels], NULL unless DETECT_RANGE */
    float *u_range;                     /* [channels]: -ln p of this frame's value beyond it */
    /* Manipulated variables (cfg.manipulated): a move of one is a level z
     * beyond z_move (what the trigger calls significant on any channel);
     * the level and feature triggers are held until settle_until_us. */
    float z_move;
    int settling;
    int64_t settle_until_us;
};

void detect_config_defaults(struct detect_config *cfg)
{
    cfg->threshold = 0.1f;
    cfg->rearm = 0.05f;
    cfg->hold_off_s = DETECT_AUTO_F;
    cfg->max_per_hour = DETECT_AUTO_U32;
    cfg->level_alpha = 0.001f;
    cfg->window = 0;
    cfg->warmup_s = 5.0f;
    cfg->enable = DETECT_LEVEL | DETECT_FEATURE | DETECT_MULTI | DETECT_CONTEXT |
                  DETECT_RANGE | DETECT_ENABLE_AUTO;
    cfg->lik_short = 0;
    cfg->lik_long = 2000;
    cfg->quiet_frames = 200;
    cfg->novelty_half = 500;
    cfg->profile = DETECT_PROFILE_AUTO;
    cfg->manipulated = 0;
}

const char *detect_profile_name(uint32_t profile)
{
    switch (profile) {
    case DETECT_PROFILE_PROCESS: return "process";
    case DETECT_PROFILE_VIBRATION: return "vibration";
    default: return "auto";
    }
}

/* Process data change over minutes and an operator reads every alarm, so a
 * short window in samples and a long hold-off; vibration needs a window of
 * many periods and answers within seconds. */
static int profile_is_process(const struct detect_config *cfg, double rate)
{
    return cfg->profile == DETECT_PROFILE_PROCESS ||
           (cfg->profile == DETECT_PROFILE_AUTO && rate < DETECT_PROCESS_MAX_HZ);
}

void detect_config_resolve(struct detect_config *cfg, double rate)
{
    int proc = profile_is_process(cfg, rate);

    if (cfg->window == 0)
        cfg->window = proc ? PROC_WINDOW : VIB_WINDOW;
    if (cfg->hold_off_s == DETECT_AUTO_F)
        cfg->hold_off_s = proc ? PROC_HOLD_OFF_S : VIB_HOLD_OFF_S;
    if (cfg->max_per_hour == DETECT_AUTO_U32)
        cfg->max_per_hour = proc ? PROC_PER_HOUR : VIB_PER_HOUR;
    /* Crest factor, kurtosis and band energies describe a waveform; a
     * pressure sampled at 1 Hz has none, and their heavy-tailed estimates
     * from a few dozen samples fired on plain process noise. */
    if (cfg->enable & DETECT_ENABLE_AUTO) {
        cfg->enable &= ~DETECT_ENABLE_AUTO;
        /* Sequences of per-sample symbols of a kHz waveform are phase
         * noise; of process data they are the plant's routine.  A record
         * among the last 1e5 samples of a waveform is 10 s of its peaks,
         * far from rare for a second of it: the level and the features
         * judge its impulses, and the range detector would add 7 % to the
         * sample path's instructions there for little they do not see. */
        if (proc)
            cfg->enable &= ~DETECT_FEATURE;
        else
            cfg->enable &= ~(DETECT_CONTEXT | DETECT_RANGE | DETECT_SEQUENCE);
    }
}

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

static int config_ok(const struct detect_config *c, unsigned channels)
{
    /* Written so that NaN fails every test. */
    if (channels < 1 || channels > DETECT_MAX_CHANNELS)
        return 0;
    if (!(c->threshold > 0.0f && c->threshold <= 1.0f))
        return 0;
    if (!(c->rearm >= 0.0f && c->rearm <= c->threshold))
        return 0;
    if (!((c->hold_off_s >= 0.0f && c->hold_off_s < 1e7f) || c->hold_off_s == DETECT_AUTO_F))
        return 0;
    if (!(c->warmup_s >= 0.0f && c->warmup_s < 1e9f))
        return 0;
    if (!(c->level_alpha > 0.0f && c->level_alpha < 1.0f))
        return 0;
    if ((c->window < 4 && c->window != 0) || c->window > MAX_WINDOW)
        return 0;
    if (c->max_per_hour > MAX_CAP && c->max_per_hour != DETECT_AUTO_U32)
        return 0;
    if (c->profile > DETECT_PROFILE_VIBRATION)
        return 0;
    if (channels < 64 && (c->manipulated >> channels) != 0)
        return 0;               /* a manipulated channel the stream does not have */
    if (c->lik_short > MAX_WINDOW || c->lik_long < 2 || c->lik_long > 100000000u ||
        c->quiet_frames > 100000000u || c->novelty_half > 100000000u)
        return 0;
    if ((c->enable & ~DETECT_ENABLE_AUTO) == 0 ||
        (c->enable & ~(DETECT_LEVEL | DETECT_FEATURE | DETECT_MODEL | DETECT_MULTI |
                       DETECT_CONTEXT | DETECT_RANGE | DETECT_SEQUENCE | DETECT_ENABLE_AUTO)))
        return 0;
    return 1;
}

static uint32_t cap_slots(const struct detect_config *cfg)
{
    return cfg->max_per_hour == DETECT_AUTO_U32 ? CAP_ROOM : cfg->max_per_hour;
}

static int multi_on(const struct detect_config *cfg, unsigned channels)
{
    return (cfg->enable & DETECT_MULTI) && channels >= 2;
}

/* Room for the context, sequence and range detectors only where enable has
 * them (last in the arena, so the rest of the layout does not depend on
 * them; context and range run in the process profile only, see
 * detect_config_resolve, and sequence only when named). */
static size_t arena_size(const struct detect_config *cfg, unsigned channels, uint32_t enable)
{
    int with_ctx = (enable & DETECT_CONTEXT) != 0;
    int with_seq = (enable & DETECT_SEQUENCE) != 0;
    int with_range = (enable & DETECT_RANGE) != 0;

    return align8(sizeof(struct detect)) +
           align8(sizeof(struct chan) * channels) +
           align8(sizeof(int64_t) * cap_slots(cfg)) +
           align8(sizeof(float) * (size_t)channels * DETECT_NFEAT) +
           align8(sizeof(float) * channels) +
           (multi_on(cfg, channels) ? align8(detect_multi_size(channels)) : 0) +
           (with_ctx ? align8(sizeof(struct detect_ctx) * channels) : 0) +
           (with_seq ? align8(sizeof(struct detect_seq) * channels) : 0) +
           (with_range ? align8(sizeof(struct detect_range) * channels) +
                         align8(sizeof(float) * channels) : 0) +
           8;   /* room to align an arbitrary arena pointer */
}

size_t detect_arena_size(const struct detect_config *cfg, unsigned channels)
{
    if (!cfg || !config_ok(cfg, channels))
        return 0;
    return arena_size(cfg, channels, cfg->enable);
}

size_t detect_arena_size_at(const struct detect_config *cfg, unsigned channels, double rate)
{
    struct detect_config r;

    if (!cfg || !config_ok(cfg, channels) || !(rate > 0.0 && rate < 1e9))
        return 0;
    r = *cfg;
    detect_config_resolve(&r, rate);
    return arena_size(cfg, channels, r.enable);
}

static void biquad_bandpass(struct biquad *q, double rate, float f0)
{
    /* RBJ cookbook band-pass, 0 dB peak gain, Q = 0.7 (about 2 octaves). */
    float w0 = 2.0f * 3.14159265f * f0 / (float)rate;
    float alpha = sinf(w0) / (2.0f * 0.7f);
    float a0 = 1.0f + alpha;

    memset(q, 0, sizeof(*q));
    q->b0 = alpha / a0;
    q->b2 = -alpha / a0;
    q->a1 = -2.0f * cosf(w0) / a0;
    q->a2 = (1.0f - alpha) / a0;
}

/* The false-trigger budget is per unit of time, not per frame: the more
 * scores a channel produces per second, the larger the largest of them is by
 * chance (about sqrt(2 ln n) sigma for n Gaussian draws).  So a novelty must
 * beat its reference by EVT_K times that for one second's worth of trials;
 * nothing at one score per second or slower (NAB's 5-minute data). */
static float evt_allowance(double per_second)
{
    if (!(per_second > 1.0))
        return 0.0f;
    return EVT_K * (float)sqrt(2.0 * log(per_second));
}

/* ln p beyond which n draws a second hold one for sure (n p > 88). */
static float zero_above(float n)
{
    return n > 1.0f ? logf(88.0f / n) : 1.0f;
}

static float detect_surprise_n(float z, int sides, float trials, float per_second);

/* The level z of a manipulated channel that counts as a move: the z at which
 * a level crossing of any channel is significant to the trigger (SIGNIFICANT,
 * a chance of 1e-5 a second over all channels' level scores).  Found once,
 * by bisection (the surprise is monotone in z). */
static float move_z(const struct detect *d)
{
    float lo = 0.0f, hi = 64.0f;
    int i;

    for (i = 0; i < 40; i++) {
        float mid = 0.5f * (lo + hi);

        if (detect_surprise_n(mid, 2, d->trials_level, d->fps_level) >= SIGNIFICANT)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

struct detect *detect_init(const struct detect_config *cfg_in, unsigned channels,
                           double rate, void *arena, size_t arena_len)
{
    size_t need = detect_arena_size_at(cfg_in, channels, rate);
    struct detect_config rcfg, *cfg = &rcfg;
    uintptr_t p;
    struct detect *d;
    unsigned c;

    if (need == 0 || !arena || arena_len < need || !(rate > 0.0 && rate < 1e9))
        return NULL;
    rcfg = *cfg_in;
    detect_config_resolve(&rcfg, rate);
    if (cap_slots(&rcfg) > cap_slots(cfg_in))
        return NULL;            /* an explicit profile's cap larger than the arena's */
    p = ((uintptr_t)arena + 7u) & ~(uintptr_t)7u;
    memset(arena, 0, arena_len);

    d = (struct detect *)p;
    p += align8(sizeof(*d));
    d->ch = (struct chan *)p;
    p += align8(sizeof(struct chan) * channels);
    d->trig_t = (int64_t *)p;
    p += align8(sizeof(int64_t) * cap_slots(cfg_in));
    d->fvec = (float *)p;
    p += align8(sizeof(float) * (size_t)channels * DETECT_NFEAT);
    d->floor = (float *)p;
    p += align8(sizeof(float) * channels);
    if (multi_on(cfg, channels))
        d->mv = detect_multi_init((void *)p, detect_multi_size(channels), channels,
                                  cfg->level_alpha);
    if (multi_on(cfg_in, channels))
        p += align8(detect_multi_size(channels));
    if (cfg->enable & DETECT_CONTEXT) {
        d->cx = (struct detect_ctx *)p;
        for (c = 0; c < channels; c++)
            detect_ctx_init(&d->cx[c]);
        p += align8(sizeof(struct detect_ctx) * channels);
    }
    if (cfg->enable & DETECT_SEQUENCE) {
        d->sq = (struct detect_seq *)p;
        for (c = 0; c < channels; c++)
            detect_seq_init(&d->sq[c]);
        p += align8(sizeof(struct detect_seq) * channels);
    }
    if (cfg->enable & DETECT_RANGE) {
        d->rg = (struct detect_range *)p;
        for (c = 0; c < channels; c++)
            detect_range_init(&d->rg[c]);
        p += align8(sizeof(struct detect_range) * channels);
        d->u_range = (float *)p;
    }

    d->cfg = *cfg;
    d->channels = channels;
    d->rate = rate;
    d->hop = cfg->window / 4;
    d->warmup_us = (int64_t)((double)cfg->warmup_s * 1e6);
    d->hold_off_us = (int64_t)((double)cfg->hold_off_s * 1e6);
    d->armed = 1;
    d->alpha_fast = cfg->level_alpha * 16.0f < 0.5f ? cfg->level_alpha * 16.0f : 0.5f;
    d->alpha_band = 1.0f / (float)cfg->window;
    d->nov_decay = cfg->novelty_half ? (float)exp(-0.69314718 / (double)cfg->novelty_half) : 0.0f;
    d->rep_decay = cfg->novelty_half ?
        (float)exp(-0.69314718 / (REPEAT_SLOW * (double)cfg->novelty_half)) : 0.0f;
    d->evt_level = evt_allowance(rate);
    d->evt_feat = evt_allowance(rate / (double)d->hop);
    /* Scores per second a frame's maximum is taken over: 3 statistics per
     * channel for the level (level, step, spread), F_COUNT for the features
     * (a Bonferroni count; they are correlated, so it errs on the quiet side). */
    /* Process data are mostly interpolated or compressed by a historian:
     * piecewise linear, so every kink is a large first difference against
     * the usual one (on the cranfield rig it made half the false triggers).
     * On a waveform the first difference is a high-pass view of impulses. */
    d->process = profile_is_process(cfg_in, rate);
    d->step_stat = !d->process;
    d->trials_level = (float)channels * (d->step_stat ? 3.0f : 2.0f);
    d->trials_feat = (float)channels * (float)F_COUNT;
    d->fps_level = (float)rate;
    d->fps_feat = (float)(rate / (double)d->hop);
    d->cal_level.ln_zero = zero_above(d->fps_level);
    d->cal_feat.ln_zero = zero_above(d->fps_feat);
    d->cal_multi.ln_zero = zero_above(d->fps_level);
    d->cal_ctx.ln_zero = d->cal_seq.ln_zero = zero_above(d->fps_level);
    d->cal_level.fit_tail = d->cal_feat.fit_tail = d->cal_ctx.fit_tail = 1;
    /* Not the sequence detector: its p-value is already the stream's own
     * chance of such a run (Good-Turing), and the tail fit, which extends
     * the empirical tail at the stream's heaviness beyond its largest -ln p,
     * flattened the runs that go beyond it (NAB development half 59.61 with
     * it, 61.62 without; docs/BENCHMARKS.md). */
    d->cal_seq.fit_tail = 0;
    if (cfg->manipulated)
        d->z_move = move_z(d);
    for (c = 0; c < channels; c++) {
        /* Bands at 5 % and 25 % of the rate: "low" machine harmonics and the
         * high band where bearing fault impulses ring. */
        biquad_bandpass(&d->ch[c].bp[0], rate, (float)(rate * 0.05));
        biquad_bandpass(&d->ch[c].bp[1], rate, (float)(rate * 0.25));
    }
    return d;
}

void detect_set_model(struct detect *d, const struct detect_model *m)
{
    if (!d)
        return;
    /* A model that expects another vector length is not used: scoring the
     * wrong features would be worse than no model. */
    if (m && (!m->score || m->n_features != d->channels * DETECT_NFEAT))
        m = NULL;
    d->model = m;
    d->score_model = 0.0f;
}

const char *detect_name(uint8_t detector)
{
    switch (detector) {
    case DETECT_LEVEL: return "level";
    case DETECT_FEATURE: return "feature";
    case DETECT_MODEL: return "model";
    case DETECT_MULTI: return "multi";
    case DETECT_CONTEXT: return "context";
    case DETECT_RANGE: return "range";
    case DETECT_SEQUENCE: return "sequence";
    default: return "none";
    }
}

static float z_to_score(float z, float half)
{
    float r;

    if (!(z > 0.0f))
        return 0.0f;            /* also NaN */
    r = z / half;
    /* r^2 / (1 + r^2): unlike 1 - exp(-r^2) it keeps ranking very large z
     * apart instead of rounding them all to 1.0f. */
    if (r > 1e4f)
        return 1.0f;
    return r * r / (1.0f + r * r);
}

/* z of v against b (scale floored at floor), then update b with v clipped at
 * CLIP scales; young baselines use alpha 1/(n+1) so they form quickly. */
static float base_step(struct base *b, float v, float alpha, float floor)
{
    float scale, dv, z, a;

    if (b->n == 0) {
        b->mean = v;
        b->dev = 0.0f;
        b->n = 1;
        return 0.0f;
    }
    scale = b->dev * MAD_TO_SIGMA;
    if (scale < floor)
        scale = floor;
    dv = v - b->mean;
    z = fabsf(dv) / scale;
    if (dv > CLIP * scale)
        dv = CLIP * scale;
    else if (dv < -CLIP * scale)
        dv = -CLIP * scale;
    a = 1.0f / (float)(b->n + 1);
    if (a < alpha)
        a = alpha;
    else
        b->n++;
    b->mean += a * dv;
    b->dev += a * (fabsf(dv) - b->dev);
    return z;
}

void detect_lik_init(struct detect_lik *l)
{
    memset(l, 0, sizeof(*l));
}

/* -log10 of the upper Gaussian tail Q(u), u >= 0.  erfcf underflows past
 * u ~ 9, so far out the asymptotic form ln Q = -u^2/2 - ln(u sqrt(2 pi)). */
static float neg_log10_tail(float u)
{
    if (u < 5.0f)
        return -log10f(0.5f * erfcf(u * 0.70710678f));
    return (0.5f * u * u + logf(u) + 0.91893853f) * 0.43429448f;
}

/* ln Q(z), the upper normal tail, at z = i / 16 for i = 0..128 (flash, not
 * RAM): the sample path must not pay for erfcf and logf on every frame. */
static const float ln_q_table[129] = {
    -0.6931472, -0.7442672, -0.7979261, -0.8541747, -0.9130618, -0.9746344, -1.038938,
    -1.106016, -1.175912, -1.248664, -1.324313, -1.402896, -1.484448, -1.569005, -1.656598,
    -1.74726, -1.841022, -1.937912, -2.037958, -2.141187, -2.247626, -2.357297, -2.470226,
    -2.586435, -2.705944, -2.828776, -2.95495, -3.084484, -3.217398, -3.353708, -3.493432,
    -3.636586, -3.783184, -3.933243, -4.086775, -4.243795, -4.404315, -4.568349, -4.735908,
    -4.907004, -5.081648, -5.259851, -5.441622, -5.626973, -5.815911, -6.008447, -6.20459,
    -6.404347, -6.607726, -6.814736, -7.025385, -7.239679, -7.457625, -7.67923, -7.904501,
    -8.133444, -8.366065, -8.60237, -8.842364, -9.086054, -9.333443, -9.584538, -9.839343,
    -10.09786, -10.3601, -10.62606, -10.89576, -11.16918, -11.44634, -11.72724, -12.01188,
    -12.30028, -12.59242, -12.88832, -13.18797, -13.49139, -13.79857, -14.10952, -14.42424,
    -14.74273, -15.065, -15.39104, -15.72087, -16.05448, -16.39188, -16.73307, -17.07804,
    -17.42681, -17.77938, -18.13574, -18.4959, -18.85986, -19.22763, -19.5992, -19.97458,
    -20.35377, -20.73677, -21.12358, -21.51421, -21.90865, -22.30691, -22.70899, -23.11488,
    -23.52461, -23.93815, -24.35552, -24.77671, -25.20174, -25.63059, -26.06327, -26.49978,
    -26.94013, -27.38431, -27.83232, -28.28417, -28.73986, -29.19939, -29.66275, -30.12996,
    -30.601, -31.07589, -31.55462, -32.0372, -32.52362, -33.01389, -33.508, -34.00597,
    -34.50778, -35.01344
};

/* ln of the normal tail beyond z (z > 0): the table, linear between its
 * points (error below 1e-3 in ln), the asymptotic series beyond 8. */
static float ln_normal_tail(float z, int sides)
{
    float ln_p;

    if (z > 1e4f)
        z = 1e4f;
    if (z < 8.0f) {
        float u = z * 16.0f;
        int i = (int)u;

        ln_p = ln_q_table[i] + (u - (float)i) * (ln_q_table[i + 1] - ln_q_table[i]);
    } else {
        float v = 1.0f / (z * z);

        ln_p = -0.5f * z * z - logf(z) - 0.91893853f - v + 2.5f * v * v;
    }
    return sides == 2 ? ln_p + 0.69314718f : ln_p;
}

/* ln of the chance that n draws hold one with tail p: 1 - (1 - p)^n, which
 * for small p is n p; n <= 1 leaves p as it is. */
static float ln_any_of(float ln_p, float n)
{
    float p, x;

    if (!(n > 1.0f))
        return ln_p;
    p = expf(ln_p);
    if (p * n < 1e-3f)
        return ln_p + logf(n);
    if (p * n > 88.0f)
        return 0.0f;            /* -ln(1 - p) >= p: past float's reach, below */
    x = -n * log1pf(-(p < 0.999999f ? p : 0.999999f));
    /* ln(1 - e^-x): for large x it is -e^-x, and 0 in float past 88. */
    if (x > 88.0f)
        return 0.0f;
    if (x > 16.0f)
        return -expf(-x);
    return logf(-expm1f(-x));
}

static float score_of_ln(float ln_p)
{
    float s = -ln_p * 0.43429448f;

    if (!(s > 0.0f))
        return 0.0f;
    return s / (s + SURPRISE_HALF);
}

static float detect_surprise_n(float z, int sides, float trials, float per_second)
{
    return score_of_ln(ln_any_of(ln_any_of(ln_normal_tail(z, sides), trials), per_second));
}

float detect_surprise(float z, int sides, float per_second)
{
    if (!(z > 0.0f))
        return 0.0f;            /* also NaN */
    return score_of_ln(ln_any_of(ln_normal_tail(z, sides), per_second));
}

/* Share of past z at or beyond z, linear within a bin. */
static float tail_share(const struct tailcal *t, float z)
{
    float share = 0.0f;
    int b;

    if (!(t->total > 0.0f))
        return 0.0f;
    for (b = TC_BINS - 1; b >= 0; b--) {
        if (z >= tc_edge[b]) {
            if (b + 1 < TC_BINS)
                share += t->c[b] * (tc_edge[b + 1] - z) / (tc_edge[b + 1] - tc_edge[b]);
            else
                share += t->c[b];
            return share / t->total;
        }
        share += t->c[b];
    }
    return share / t->total;
}

static void tail_add(struct tailcal *t, float z, float alpha)
{
    float a = 1.0f / (float)(t->n + 1);
    int b;

    if (a < alpha)
        a = alpha;
    else
        t->n++;
    if (a >= 1.0f) {
        memset(t->c, 0, sizeof(t->c));
        t->w = 1.0f;
        t->total = 0.0f;
    } else {
        t->w /= 1.0f - a;
    }
    for (b = 0; b + 1 < TC_BINS && z >= tc_edge[b + 1]; b++)
        ;                       /* from the bottom: most z are small */
    t->c[b] += t->w;
    t->total += t->w;
    if (t->w > 1e18f) {         /* rescale long before float overflows */
        for (b = 0; b < TC_BINS; b++)
            t->c[b] /= t->w;
        t->total /= t->w;
        t->w = 1.0f;
    }
}

/* The stream's tail beyond its nominal chance e^-TAIL_L, as the chance of a
 * frame whose nominal -ln p is L > TAIL_L: the share of frames beyond
 * TAIL_L times e^(-k (L - TAIL_L)).  If the nominal model is right, the
 * excess L - TAIL_L of those frames is exponential with mean 1 and k = 1;
 * heavier tails (counts, bursts) show a larger mean excess m and k = 1/m:
 * a peaks-over-threshold fit with the nominal tail as its unit.  k is never
 * above 1 (no more surprising than the nominal table).  Without it, a z
 * beyond anything this stream showed fell back to the normal table at once:
 * a burst a little above a spiky stream's usual ones scored as if the stream
 * were Gaussian.  Returns a large negative number without evidence. */
static float tail_ln_p(const struct tailcal *t, float L)
{
    float k;

    if (!t->fit_tail || !(L > TAIL_L) || !(t->ex_rate > 0.0f))
        return -1e30f;
    k = t->ex_mean > 1.0f ? 1.0f / t->ex_mean : 1.0f;
    return logf(t->ex_rate) - k * (L - TAIL_L);
}

/* Learn a frame's nominal -ln p (0 if not computed: not an exceedance). */
static void tail_excess_add(struct tailcal *t, float L, float alpha)
{
    float a = 1.0f / (float)(t->n + 1), hit = L > TAIL_L ? 1.0f : 0.0f;

    if (a < alpha)
        a = alpha;
    t->ex_rate += a * (hit - t->ex_rate);
    if (hit > 0.0f) {
        float w = 1.0f / ((float)t->ex_n + 1.0f + TAIL_PRIOR);

        if (w < 1.0f / TAIL_MEM)
            w = 1.0f / TAIL_MEM;
        else
            t->ex_n++;
        if (t->ex_n == 1 && t->ex_mean == 0.0f)
            t->ex_mean = 1.0f;  /* the prior: the nominal tail */
        t->ex_mean += w * ((L - TAIL_L) - t->ex_mean);
    }
}

/* Calibrated score of a frame's z: the larger of its normal tail (over the
 * `trials` scores it is the maximum of), its empirical tail in this stream
 * and that tail's fit beyond it (tail_ln_p), as a chance per second of
 * `per_s` such frames.  learn: add z to the
 * empirical tail afterwards (judged before learning, so an event does not
 * dilute its own evidence). */
static float calibrated(struct tailcal *t, float z, int sides, float trials,
                        float per_s, float alpha, int learn)
{
    float ln_p, ln1 = 0.0f, share, L = 0.0f, s = 0.0f;

    /* Most frames of a fast stream are ordinary for a second of it: once
     * p * per_s > 88 the chance per second is 1 to float precision and the
     * score 0, whatever the empirical tail adds (it only raises p).  The
     * test needs no transcendental call (the per-second count is fixed, so
     * its log is taken once, in zero_above). */
    if (z > 0.0f && ((ln1 = ln_normal_tail(z, sides)) <= t->ln_zero || ln1 < -TAIL_L)) {
        ln_p = ln_any_of(ln1, trials);
        L = -ln_p;
        if (ln1 <= t->ln_zero) {
            float ln_t = tail_ln_p(t, L);

            share = tail_share(t, z);
            if (share > 0.0f && logf(share) > ln_p)
                ln_p = logf(share);
            if (ln_t > ln_p)
                ln_p = ln_t;
            s = score_of_ln(ln_any_of(ln_p, per_s));
        }
    }
    if (learn) {
        tail_excess_add(t, L, alpha);
        tail_add(t, z > 0.0f ? z : 0.0f, alpha);
    }
    return s;
}

/* The contextual (and the sequence) detector's calibrated score, on its own
 * tail t: p is the frame's smallest p-value over channels, its model's own
 * probability; the empirical tail
 * of -ln p in this stream may only make it less surprising (a stream whose
 * sequences never settle stops scoring each new one as rare).  Cheap for
 * the ordinary frame: a p above 1/e lands in the lowest bin (-ln p < 1)
 * without a log, and one too common to score is not calibrated. */
static float ctx_calibrated(struct detect *d, struct tailcal *t, float p)
{
    float u = p < 0.36787944f ? -logf(p) : 0.0f, ln_p, share, s = 0.0f, L = 0.0f;

    if (u > 0.0f && (-u <= t->ln_zero || u > TAIL_L)) {
        ln_p = ln_any_of(-u, (float)d->channels);
        L = -ln_p;
        if (-u <= t->ln_zero) {
            float ln_t = tail_ln_p(t, L);

            share = tail_share(t, u);
            if (share > 0.0f && logf(share) > ln_p)
                ln_p = logf(share);
            if (ln_t > ln_p)
                ln_p = ln_t;
            s = score_of_ln(ln_any_of(ln_p, d->fps_level));
        }
    }
    tail_excess_add(t, L, CAL_ALPHA);
    tail_add(t, u, CAL_ALPHA);
    return s;
}

float detect_lik_step(struct detect_lik *l, float raw, uint32_t short_n, uint32_t long_n)
{
    float a, delta, sd, u, s;

    if (!(raw >= 0.0f))
        raw = 0.0f;             /* also NaN */
    if (short_n < 1)
        short_n = 1;
    if (long_n < 2)
        long_n = 2;
    if (l->n == 0) {
        l->s_mean = l->l_mean = raw;
        l->l_var = 0.0f;
        l->n = 1;
        return 0.0f;
    }
    a = 1.0f / (float)(l->n + 1);
    l->s_mean += (a > 1.0f / (float)short_n ? a : 1.0f / (float)short_n) * (raw - l->s_mean);
    /* Judge the short mean against the history before this frame, so an
     * event does not dilute its own evidence. */
    sd = sqrtf(l->l_var);
    if (sd < LIK_SD_FLOOR)
        sd = LIK_SD_FLOOR;
    u = (l->s_mean - l->l_mean) / sd;
    s = u > 0.0f ? neg_log10_tail(u) / LIK_DECADES : 0.0f;
    if (a < 1.0f / (float)long_n)
        a = 1.0f / (float)long_n;
    else
        l->n++;
    delta = raw - l->l_mean;
    l->l_mean += a * delta;
    l->l_var = (1.0f - a) * (l->l_var + a * delta * delta);
    if (!(s > 0.0f))
        return 0.0f;
    return s < 1.0f ? s : 1.0f;
}

static float biquad_run(struct biquad *q, float x)
{
    float y = q->b0 * x + q->b2 * q->x2 - q->a1 * q->y1 - q->a2 * q->y2;

    q->x2 = q->x1;
    q->x1 = x;
    q->y2 = q->y1;
    q->y1 = y;
    return y;
}

/* Level/variance detector for one sample; returns the level mean before the
 * update (the window detector centres on it). */
static float level_step(struct detect *d, struct chan *ch, float x)
{
    float mean = ch->lvl.mean;
    float floor, z, zv = 0.0f, zd = 0.0f, scale, step = 0.0f;

    /* Floor the scale at the signal's resolution (counts step by 1, a 12-bit
     * ADC by its LSB) and relative to the level, so that after a flat
     * stretch one quantisation step is not an infinitely surprising event. */
    if (ch->lvl.n > 0) {
        step = fabsf(x - ch->prev);
        if (step > 0.0f && (step < ch->res || ch->res == 0.0f))
            ch->res = step;
    }
    ch->prev = x;
    floor = 1e-4f * fabsf(mean) + 1e-9f;
    if (ch->res > floor)
        floor = ch->res;
    ch->floor_now = floor;
    /* First difference against its own typical size: a spike riding on a
     * daily cycle is a large step even where its level is ordinary. */
    if (ch->lvl.n > 1 && d->step_stat) {
        float sd = ch->dev_diff * MAD_TO_SIGMA, a = 1.0f / (float)ch->lvl.n;

        if (sd < floor)
            sd = floor;
        zd = step / sd;
        if (a < d->cfg.level_alpha)
            a = d->cfg.level_alpha;
        ch->dev_diff += a * ((step < CLIP * sd ? step : CLIP * sd) - ch->dev_diff);
    }
    z = base_step(&ch->lvl, x, d->cfg.level_alpha, floor);
    /* A run of samples beyond the clip on one side is a new level, not an
     * outlier: after SHIFT_RUN of them the baseline moves there, so a step
     * scores for SHIFT_RUN samples instead of for the whole slow adaptation. */
    if (z > CLIP) {
        int side = x > mean ? 1 : -1;

        ch->run = (ch->run * side > 0) ? ch->run + side : side;
        if (ch->run * side >= SHIFT_RUN) {
            ch->lvl.mean = x;
            ch->run = 0;
        }
    } else {
        ch->run = 0;
    }
    ch->dev_fast += d->alpha_fast * (fabsf(x - mean) - ch->dev_fast);
    if (ch->lvl.n < 16)
        ch->dev_fast = ch->lvl.dev;     /* no burst test before the scale exists */
    scale = ch->lvl.dev > floor ? ch->lvl.dev : floor;
    if (ch->dev_fast > scale)
        zv = logf(ch->dev_fast / scale);
    ch->feat_z_level = z;
    /* The exported z of the level detector: the largest of the three, the
     * variance ratio on the level's scale (3x the spread is a z of 4). */
    ch->zl_now = z > zd ? z : zd;
    if (zv * (Z_HALF_LEVEL / VAR_HALF) > ch->zl_now)
        ch->zl_now = zv * (Z_HALF_LEVEL / VAR_HALF);
    /* For the trigger, a sample back at the level this channel had before
     * the last event is no news: a plant returning to normal after a fault
     * (or an operator undoing a move) made a third of the cranfield false
     * triggers.  The exported score is not touched. */
    if (ch->home_scale > 0.0f) {
        float zh = fabsf(x - ch->home_mean) / ch->home_scale;

        if (zh < z)
            z = zh;
    }
    ch->score_level = z_to_score(z, Z_HALF_LEVEL);
    {
        float sv = z_to_score(zv, VAR_HALF);
        float sd = z_to_score(zd, Z_HALF_LEVEL);

        if (sv > ch->score_level)
            ch->score_level = sv;
        if (sd > ch->score_level)
            ch->score_level = sd;
    }
    return mean;
}

static void features_eval(struct detect *d, unsigned c)
{
    struct chan *ch = &d->ch[c];
    float w = (float)(d->hop * SUB_N), sum[5] = { 0, 0, 0, 0, 0 };
    float m1, m2, m3, m4, var, c4;
    float tiny = 1e-12f + 1e-6f * fabsf(ch->lvl.mean);
    float rms, peak, f[F_COUNT], best = 0.0f, zmax = 0.0f;
    float *fv = &d->fvec[(size_t)c * DETECT_NFEAT];
    unsigned j, k;

    for (j = 0; j < SUB_N; j++) {
        for (k = 0; k < 4; k++)
            sum[k] += ch->hs[j][k];
        if (ch->hs[j][4] > sum[4])
            sum[4] = ch->hs[j][4];
    }
    m1 = sum[0] / w;
    m2 = sum[1] / w;
    m3 = sum[2] / w;
    m4 = sum[3] / w;
    var = m2 - m1 * m1;
    c4 = m4 - 4.0f * m1 * m3 + 6.0f * m1 * m1 * m2 - 3.0f * m1 * m1 * m1 * m1;

    if (var < 0.0f)
        var = 0.0f;
    if (c4 < 0.0f)
        c4 = 0.0f;
    rms = sqrtf(var);
    peak = sum[4];
    f[F_RMS] = rms + tiny;
    f[F_PEAK] = peak + tiny;
    f[F_CREST] = (peak + tiny) / (rms + tiny);
    f[F_KURT] = (c4 + tiny * tiny) / (var * var + tiny * tiny);
    f[F_BAND_LO] = ch->e_band[0] + tiny * tiny;
    f[F_BAND_HI] = ch->e_band[1] + tiny * tiny;
    fv[0] = ch->feat_z_level;
    for (k = 0; k < F_COUNT; k++) {
        float g = logf(f[k]);
        /* Baselines adapt per hop, as slowly in time as the level's. */
        float alpha = d->cfg.level_alpha * (float)d->hop;
        float z = base_step(&ch->feat[k], g, alpha < 0.2f ? alpha : 0.2f, FEAT_FLOOR);
        float s = z_to_score(z, Z_HALF_FEAT);

        fv[1 + k] = g;
        if (s > best)
            best = s;
        if (z > zmax)
            zmax = z;
    }
    /* Young feature baselines say nothing; half-grown ones already prime
     * the novelty peak (channel_score) but cannot trigger or export. */
    if (ch->evals < FEAT_WARM_EVALS)
        ch->evals++;
    ch->score_feat = ch->evals >= FEAT_WARM_EVALS / 2 ? best : 0.0f;
    ch->zf_now = ch->evals >= FEAT_WARM_EVALS ? zmax : 0.0f;
}

static void feature_step(struct detect *d, unsigned c, float y)
{
    struct chan *ch = &d->ch[c];
    float *h = ch->hs[d->sub], y2 = y * y, a = fabsf(y), e;
    unsigned b;

    h[0] += y;
    h[1] += y2;
    h[2] += y2 * y;
    h[3] += y2 * y2;
    if (a > h[4])
        h[4] = a;
    for (b = 0; b < 2; b++) {
        e = biquad_run(&ch->bp[b], y);
        ch->e_band[b] += d->alpha_band * (e * e - ch->e_band[b]);
    }
}

/* Novelty of a raw score: only the z beyond both the decaying recent peak
 * and (by ALARM_MARGIN) the z of the last detected event, decaying alike,
 * counts.  The memory is short (novelty_half), which NAB's slow data needs:
 * long memories there cost more missed events than they save false ones. */
static float novelty(const struct detect *d, float *peak, float *alarm, float *last, float raw,
                     float evt)
{
    float q = raw < 0.999999f ? raw : 0.999999f;
    float z = Z_HALF_LEVEL * sqrtf(q / (1.0f - q));
    float ref = ALARM_MARGIN * *alarm;
    float s = z_to_score(z - evt - (*peak > ref ? *peak : ref), Z_HALF_LEVEL);

    *peak *= d->nov_decay;
    *alarm *= d->nov_decay;
    if (z > *peak)
        *peak = z;
    *last = z;
    return s;
}

/* A detection on this channel (or its rising edge): remember its size. */
static void alarm_record(struct detect *d, const struct detect_result *r)
{
    struct chan *ch = &d->ch[r->channel];

    if (r->detector == DETECT_MODEL)
        return;
    if (r->detector == DETECT_MULTI) {
        if (d->mv_last > d->mv_alarm)
            d->mv_alarm = d->mv_last;
        return;
    }
    if (ch->last_z > ch->alarm_z)
        ch->alarm_z = ch->last_z;
    if (ch->last_zf > ch->alarm_zf)
        ch->alarm_zf = ch->last_zf;
}

/* Repeat memory (alarm-flood control, on the trigger like hold-off and cap):
 * every frame a z of about the last trigger's size (SAME_SIZE to
 * REPEAT_MARGIN times it) renews the memory of it,
 * otherwise it decays over REPEAT_SLOW novelty half-lives.  A crossing whose
 * z is within REPEAT_MARGIN of the memory repeats the last event: a steady
 * train of equal spikes triggers once, however fast it comes. */
static void repeat_track(const struct detect *d, struct chan *ch)
{
    float z[2] = { ch->last_z, ch->last_zf };
    unsigned k;

    for (k = 0; k < 2; k++) {
        ch->rep_prev[k] = ch->rep_mem[k];
        if (z[k] >= SAME_SIZE * ch->rep_size[k] && z[k] <= REPEAT_MARGIN * ch->rep_size[k])
            ch->rep_mem[k] = ch->rep_size[k];
        else
            ch->rep_mem[k] *= d->rep_decay;
    }
}

/* On a crossing by detector det of channel ch: 1 if it repeats the last
 * trigger; otherwise the crossing becomes the remembered one when it fires. */
/* At a trigger every channel that is still near its home (or has none yet)
 * takes its current level as home: the state before this event.  A channel
 * already away from home is inside an excursion, and keeps the home it had. */
static void home_record(struct detect *d)
{
    unsigned c;

    for (c = 0; c < d->channels; c++) {
        struct chan *ch = &d->ch[c];
        float scale = ch->lvl.dev * MAD_TO_SIGMA;

        if (scale < ch->floor_now)
            scale = ch->floor_now;
        if (ch->home_scale > 0.0f &&
            fabsf(ch->lvl.mean - ch->home_mean) > CLIP * ch->home_scale)
            continue;
        ch->home_mean = ch->lvl.mean;
        ch->home_scale = scale;
    }
}

static int repeat_of_last(const struct detect *d, const struct chan *ch, uint8_t det)
{
    unsigned k = det == DETECT_FEATURE;
    float z = k ? ch->last_zf : ch->last_z;

    if (det == DETECT_MODEL)
        return 0;
    if (det == DETECT_MULTI)
        return d->mv_last <= REPEAT_MARGIN * d->mv_rep_prev;
    return z <= REPEAT_MARGIN * ch->rep_prev[k];
}

static void repeat_record(struct detect *d, struct chan *ch, uint8_t det)
{
    unsigned k = det == DETECT_FEATURE;

    if (det == DETECT_MODEL)
        return;
    if (det == DETECT_MULTI) {
        d->mv_rep_size = d->mv_rep_mem = d->mv_last;
        return;
    }
    ch->rep_size[k] = ch->rep_mem[k] = k ? ch->last_zf : ch->last_z;
}

/* Sliding hour: the ring holds the last max_per_hour trigger times, so the
 * cap is reached iff the oldest of them is less than an hour old. */
static int cap_reached(const struct detect *d, int64_t t_us)
{
    if (d->cfg.max_per_hour == 0 || d->trig_n < d->cfg.max_per_hour)
        return 0;
    return t_us - d->trig_t[d->trig_pos] < HOUR_US;
}

static void cap_record(struct detect *d, int64_t t_us)
{
    if (d->cfg.max_per_hour == 0)
        return;
    d->trig_t[d->trig_pos] = t_us;
    d->trig_pos = (d->trig_pos + 1) % d->cfg.max_per_hour;
    if (d->trig_n < d->cfg.max_per_hour)
        d->trig_n++;
}

/* Channel c's score for this frame and the detector that gave it; *det is
 * 0 when no per-channel detector is enabled. */
static float channel_score(struct detect *d, unsigned c, float x, int eval, uint8_t *det)
{
    struct chan *ch = &d->ch[c];
    uint32_t en = d->cfg.enable;
    float mean, raw = 0.0f, s;
    int feat_warm = ch->evals >= FEAT_WARM_EVALS;

    *det = 0;
    if (!isfinite(x))
        x = ch->lvl.mean;       /* a broken sample must not poison the state */
    mean = level_step(d, ch, x);
    if (d->cx)
        ch->p_ctx = detect_ctx_step(&d->cx[c], x, ch->lvl.mean, ch->floor_now,
                                    d->cfg.level_alpha);
    if (d->sq)
        ch->p_seq = detect_seq_step(&d->sq[c], x, ch->floor_now);
    if (d->rg)
        d->u_range[c] = detect_range_step(&d->rg[c], x, ch->floor_now, RANGE_HALF);
    if (en & (DETECT_FEATURE | DETECT_MODEL)) {
        feature_step(d, c, x - mean);
        if (eval)
            features_eval(d, c);
    }
    if (en & DETECT_LEVEL) {
        raw = ch->score_level;
        *det = DETECT_LEVEL;
    }
    if ((en & DETECT_FEATURE) && feat_warm && ch->score_feat > raw) {
        raw = ch->score_feat;
        *det = DETECT_FEATURE;
    }
    if (*det == 0)
        return 0.0f;
    if (d->cfg.lik_short) {
        /* The stage sees log(1 + z) (z recovered from the raw score):
         * the bounded raw score crowds every large z near 1, where a
         * spike of 50 sigma and a routine 8 sigma look alike. */
        float q = raw < 0.999999f ? raw : 0.999999f;

        s = detect_lik_step(&ch->lik, log1pf(sqrtf(q / (1.0f - q))),
                            d->cfg.lik_short, d->cfg.lik_long);
    } else if (d->cfg.novelty_half) {
        /* Novelty: only the part of the surprise beyond the recent peak
         * counts, so a signal that spikes every day, or all the time,
         * stops alarming at its usual spikes but not at a bigger one.
         * One peak per detector: the window features answer the same
         * event later and on another scale than the level. */
        float sl = (en & DETECT_LEVEL) ?
            novelty(d, &ch->peak_z, &ch->alarm_z, &ch->last_z, ch->score_level,
                    d->evt_level) : 0.0f;
        float sf = (en & DETECT_FEATURE) ?
            novelty(d, &ch->peak_zf, &ch->alarm_zf, &ch->last_zf, ch->score_feat,
                    d->evt_feat) : 0.0f;

        if (!feat_warm)
            sf = 0.0f;          /* its peak is primed, its word not yet heard */

        s = sl;
        *det = (en & DETECT_LEVEL) ? DETECT_LEVEL : DETECT_FEATURE;
        if (sf > s) {
            s = sf;
            *det = DETECT_FEATURE;
        }
        repeat_track(d, ch);
    } else {
        s = raw;
    }
    return s;
}

/* Quiet period: once the trigger score has reached the threshold it is held
 * at 0 for quiet_frames, so an event gives one sharp trigger, not a plateau
 * (the exported score is not touched). */
static void quiet_period(struct detect *d, struct detect_result *r)
{
    if (d->quiet > 0) {
        /* A rising edge still shows (so the event's peak is reported), but
         * nothing at or below the highest score since the detection. */
        d->quiet--;
        if (r->trigger_score > d->quiet_peak) {
            d->quiet_peak = r->trigger_score;
            alarm_record(d, r);
        } else {
            r->trigger_score = 0.0f;
        }
    } else if (r->trigger_score >= d->cfg.threshold) {
        d->quiet = d->cfg.quiet_frames;
        d->quiet_peak = r->trigger_score;
        alarm_record(d, r);
    }
}

/* Trigger: warm-up, hysteresis, hold-off, cap.  A baseline of a few samples
 * has no scale yet (the tenth sample of plain noise can be "10 sigma"
 * against it), so the warm-up also lasts LEVEL_YOUNG frames. */
static float significance(const struct detect *d, uint8_t det, unsigned channel);

static void trigger_decide(struct detect *d, int64_t t_us, struct detect_result *r)
{
    if (t_us - d->t_first < d->warmup_us || d->frames <= LEVEL_YOUNG) {
        d->armed = 1;
    } else if (!d->armed) {
        if (r->trigger_score < d->cfg.rearm)
            d->armed = 1;
    } else if (r->trigger_score >= d->cfg.threshold &&
               significance(d, r->detector, r->channel) >= SIGNIFICANT) {
        int held = d->have_trigger &&
                   t_us - d->t_last_trigger < d->hold_off_us;
        int novel = d->cfg.lik_short == 0 && d->cfg.novelty_half > 0;

        d->armed = 0;
        if (held || cap_reached(d, t_us) ||
            (novel && repeat_of_last(d, &d->ch[r->channel], r->detector))) {
            r->suppressed = 1;
        } else {
            r->triggered = 1;
            d->have_trigger = 1;
            d->t_last_trigger = t_us;
            cap_record(d, t_us);
            if (d->process)
                home_record(d);
            if (novel)
                repeat_record(d, &d->ch[r->channel], r->detector);
        }
    }
}

/* The multivariate detector's trigger path, with its own repeat memory.
 * Vibration: novelty like a channel's (per-sample relations of waveforms are
 * phase noise: without it the calibrated z fired 7 times in 5 minutes of
 * the simulated motor).  Process data: each frame is a state of the plant
 * and the z is already judged against its own history, so no novelty stage
 * on top (it subtracted the recent peak a second time and kept a relation
 * that breaks over minutes from ever triggering); its significance is then
 * its full calibration (significance()). */
static float multi_trigger_score(struct detect *d)
{
    float raw = z_to_score(d->mv_z, Z_HALF_LEVEL);

    if (d->cfg.lik_short || d->cfg.novelty_half == 0)
        return raw;
    if (!d->process)
        raw = novelty(d, &d->mv_peak, &d->mv_alarm, &d->mv_last, raw, d->evt_level);
    else
        d->mv_last = d->mv_z;
    d->mv_rep_prev = d->mv_rep_mem;
    if (d->mv_last >= SAME_SIZE * d->mv_rep_size && d->mv_last <= REPEAT_MARGIN * d->mv_rep_size)
        d->mv_rep_mem = d->mv_rep_size;
    else
        d->mv_rep_mem *= d->rep_decay;
    return raw;
}

/* The exported score: the largest calibrated surprise of any detector, with
 * no novelty, quiet period or hold-off (those act on the trigger).  Each
 * detector's z counts as one of its scores per second over all channels. */
static float exported_score(struct detect *d, int eval)
{
    uint32_t en = d->cfg.enable;
    float zl = 0.0f, zf = 0.0f, s = 0.0f, a_feat = d->cfg.level_alpha * (float)d->hop;
    unsigned c;

    for (c = 0; c < d->channels; c++) {
        if (d->ch[c].zl_now > zl)
            zl = d->ch[c].zl_now;
        if (d->ch[c].zf_now > zf)
            zf = d->ch[c].zf_now;
    }
    d->z_level = (en & DETECT_LEVEL) && d->frames > LEVEL_YOUNG ? zl : 0.0f;
    d->z_feat = (en & DETECT_FEATURE) ? zf : 0.0f;
    if ((en & DETECT_LEVEL) && d->frames > LEVEL_YOUNG)
        s = calibrated(&d->cal_level, zl, 2, d->trials_level, d->fps_level,
                       CAL_ALPHA, 1);
    /* The features change once a hop: calibrate them then. */
    if ((en & DETECT_FEATURE) && eval)
        d->score_feat_cal = calibrated(&d->cal_feat, zf, 2, d->trials_feat, d->fps_feat,
                                       a_feat < 0.2f ? a_feat : 0.2f,
                                       d->ch[0].evals >= FEAT_WARM_EVALS);
    if (d->score_feat_cal > s)
        s = d->score_feat_cal;
    if (d->mv) {
        float t = calibrated(&d->cal_multi, d->mv_z, 1, 1.0f, d->fps_level, d->cfg.level_alpha,
                             d->frames > detect_multi_warm_frames(d->channels, d->cfg.level_alpha));

        d->score_multi_cal = t;
        if (t > s)
            s = t;
    }
    if (d->cx && d->frames > LEVEL_YOUNG) {
        float p = 1.0f, t;

        for (c = 0; c < d->channels; c++)
            if (d->ch[c].p_ctx < p)
                p = d->ch[c].p_ctx;
        if ((t = ctx_calibrated(d, &d->cal_ctx, p)) > s)
            s = t;
    }
    if (d->sq && d->frames > LEVEL_YOUNG) {
        float p = 1.0f, t;

        for (c = 0; c < d->channels; c++)
            if (d->ch[c].p_seq < p)
                p = d->ch[c].p_seq;
        if ((t = ctx_calibrated(d, &d->cal_seq, p)) > s)
            s = t;
    }
    if (d->rg && d->frames > LEVEL_YOUNG) {
        float u = 0.0f, t;

        for (c = 0; c < d->channels; c++)
            if (d->u_range[c] > u)
                u = d->u_range[c];
        /* Its own p-value (a record's chance is distribution-free), as the
         * chance that one of the channels shows it, per second. */
        if (u > 0.0f &&
            (t = score_of_ln(ln_any_of(ln_any_of(-u, (float)d->channels), d->fps_level))) > s)
            s = t;
    }
    if ((en & DETECT_MODEL) && d->score_model > s)
        s = d->score_model;
    return s;
}

/* The trigger's significance: the crossing's surprise on the normal table
 * alone (a repeat of a known spike is still significant; flood control is
 * the trigger's business: novelty, repeat memory, hold-off, cap).  Only
 * computed on a crossing.  A level or feature crossing is judged by the z
 * of the channel it names, counted as one of the scores of all channels:
 * judged by the frame's largest z (any channel's), a small crossing of one
 * channel was passed by another channel's large move (two of the cranfield
 * false triggers, docs/DETECTORS.md). */
static float significance(const struct detect *d, uint8_t det, unsigned channel)
{
    float s = 0.0f, t;

    /* Process data: the multivariate distance is already a z against its
     * own history, with a tail no table knows, so a crossing by it is judged
     * by its full calibration (empirical tail included). */
    if (det == DETECT_MULTI && d->process)
        return d->score_multi_cal;
    if (det == DETECT_LEVEL)
        return d->ch[channel].zl_now > 0.0f ?
            detect_surprise_n(d->ch[channel].zl_now, 2, d->trials_level, d->fps_level) : 0.0f;
    if (det == DETECT_FEATURE)
        return d->ch[channel].zf_now > 0.0f ?
            detect_surprise_n(d->ch[channel].zf_now, 2, d->trials_feat, d->fps_feat) : 0.0f;
    if (d->z_level > 0.0f)
        s = detect_surprise_n(d->z_level, 2, d->trials_level, d->fps_level);
    if (d->z_feat > 0.0f &&
        (t = detect_surprise_n(d->z_feat, 2, d->trials_feat, d->fps_feat)) > s)
        s = t;
    if (d->mv && d->mv_z > 0.0f && (t = detect_surprise_n(d->mv_z, 1, 1.0f, d->fps_level)) > s)
        s = t;
    if ((d->cfg.enable & DETECT_MODEL) && d->score_model > s)
        s = d->score_model;     /* a model's score is its own calibration */
    return s;
}

/* A significant move of a manipulated channel (its level z against its own
 * baseline beyond z_move, after the level's warm-up) is an operator's or the
 * control system's action, not a fault, and the plant's transient after it
 * is expected: the level and feature triggers of every channel are held for
 * hold_off_s from the move's last significant sample, the time the trigger
 * itself holds off the aftermath of an event.  The multivariate detector
 * keeps its trigger (a relation among the process channels that breaks
 * during the settle is still news), except where the channel it names is a
 * manipulated one.  A move is no alarm: no hold-off, cap, home or repeat
 * memory is touched. */
static void manipulated_moves(struct detect *d, int64_t t_us, struct detect_result *r)
{
    uint64_t m = d->cfg.manipulated;
    unsigned c;

    if (d->frames <= LEVEL_YOUNG)
        return;
    for (c = 0; m != 0; c++, m >>= 1) {
        if ((m & 1u) && d->ch[c].zl_now > d->z_move) {
            d->settling = 1;
            d->settle_until_us = t_us + d->hold_off_us;
            /* held from this frame on */
            if (r->detector == DETECT_LEVEL || r->detector == DETECT_FEATURE) {
                r->trigger_score = 0.0f;
                r->channel = 0;
                r->detector = 0;
            }
        }
    }
}

void detect_step(struct detect *d, const float *frame, int64_t t_us,
                 struct detect_result *out)
{
    struct detect_result r;
    uint32_t en = d->cfg.enable;
    /* Channels whose level and feature scores are not offered to the
     * trigger: the manipulated ones, and all of them while the plant
     * settles after a move of one (0 without manipulated channels). */
    uint64_t held = d->cfg.manipulated;
    int eval, full;
    unsigned c;

    memset(&r, 0, sizeof(r));
    if (d->frames == 0)
        d->t_first = t_us;
    d->frames++;
    full = d->frames >= d->cfg.window;
    eval = full && (d->frames % d->hop) == 0;
    if (held && d->settling) {
        if (t_us - d->settle_until_us < 0)
            held = ~(uint64_t)0;
        else
            d->settling = 0;
    }

    for (c = 0; c < d->channels; c++) {
        uint8_t det;
        float s = channel_score(d, c, frame[c], eval, &det);

        d->floor[c] = d->ch[c].floor_now;
        if (det != 0 && (s > r.trigger_score || r.detector == 0) && !((held >> c) & 1u)) {
            r.trigger_score = s;
            r.channel = (uint16_t)c;
            r.detector = det;
        }
    }
    if (held)
        manipulated_moves(d, t_us, &r);
    if (d->mv) {
        unsigned mc = 0;
        float s;

        d->mv_z = detect_multi_step(d->mv, frame, d->floor, &mc);
        s = multi_trigger_score(d);
        /* A relation broken by a manipulated channel alone is its own move. */
        if ((s > r.trigger_score || r.detector == 0) && !((d->cfg.manipulated >> mc) & 1u)) {
            r.trigger_score = s;
            r.channel = (uint16_t)mc;
            r.detector = DETECT_MULTI;
        }
    }
    if (en & (DETECT_FEATURE | DETECT_MODEL)) {
        if (d->frames % d->hop == 0) {
            /* Hop boundary (after this frame's evaluation): the oldest hop
             * leaves the window. */
            d->sub = (d->sub + 1) % SUB_N;
            for (c = 0; c < d->channels; c++)
                memset(d->ch[c].hs[d->sub], 0, sizeof(d->ch[c].hs[d->sub]));
        }
    }
    if ((en & DETECT_MODEL) && d->model && eval) {
        float s = d->model->score(d->model->model, d->fvec, d->model->n_features);
        d->score_model = s > 0.0f ? (s < 1.0f ? s : 1.0f) : 0.0f;   /* NaN -> 0 */
    }
    if ((en & DETECT_MODEL) && d->score_model > r.trigger_score) {
        r.trigger_score = d->score_model;
        r.channel = 0;
        r.detector = DETECT_MODEL;
    }
    r.score = exported_score(d, eval);
    quiet_period(d, &r);
    trigger_decide(d, t_us, &r);
    *out = r;
}
