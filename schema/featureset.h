/* featureset.h - the one definition of a model's feature vector.
 *
 * A model is trained on feature vectors and scored on feature vectors; the
 * two must be the same function of the same samples or the model's metrics
 * describe a different machine from the one it runs on.  This is that
 * function, linked by the server (training, the dataset export's F array,
 * the C header's documentation) and by the agent (its model runner), and
 * built for the Cortex-M4 by `make m4`: no heap, no libc I/O, no system
 * calls, only <math.h>.
 *
 * A feature set is named by an id and a version.  The id says what is
 * computed (the family); the version changes whenever one output bit of an
 * existing set could change.  A reader computes a set only when it knows
 * that exact id and version, and refuses otherwise with a reason
 * (featureset_unsupported).  New families take new ids; the table of sets
 * is FEATURESET_LIST below.  A set that needs working memory (spectral: an
 * FFT) says how much with featureset_scratch_floats, and the caller hands
 * it in: the device allocates it once, when it loads a model.
 *
 * The spec a model records (schema/MODEL.md): set id and version, window
 * length and hop in samples, and the sample rate it was trained at.  The
 * window is channel-major: channel c's `window` samples start at
 * x + c * stride.  The output is channel-major too: per_channel floats per
 * channel. */
#ifndef PRECURSOR_FEATURESET_H
#define PRECURSOR_FEATURESET_H

#include <stddef.h>
#include <stdint.h>

#include "schema/relations.h"

/* X(id, version, per_channel, name): every feature set this build computes. */
#define FEATURESET_LIST(X)                                                   \
    X(FEATURESET_STATS, 1, 7, "stats")                                      \
    X(FEATURESET_SPECTRAL, 1, 16, "spectral")                               \
    X(FEATURESET_ENVELOPE, 1, 27, "envelope")                               \
    X(FEATURESET_RELATIONS, 1, 2, "relations")

enum featureset_id {
    FEATURESET_NONE = 0,
    FEATURESET_STATS = 1,       /* time-domain moments and two crude bands */
    FEATURESET_SPECTRAL = 2,    /* log-grid band energies and spectral kurtosis */
    FEATURESET_ENVELOPE = 3,    /* and order bands, envelope energy at the bearing defects */
    FEATURESET_RELATIONS = 4    /* residuals of a fitted map of normal operation (relations.h) */
};

#define FEATURESET_STATS_VERSION 1
#define FEATURESET_STATS_NFEAT 7
#define FEATURESET_SPECTRAL_VERSION 1
#define FEATURESET_SPECTRAL_NFEAT 16
#define FEATURESET_SPECTRAL_BANDS 11    /* log bands of the spectral set */
#define FEATURESET_ENVELOPE_VERSION 1
#define FEATURESET_ENVELOPE_NFEAT 27
#define FEATURESET_RELATIONS_VERSION 1
#define FEATURESET_RELATIONS_NFEAT 2    /* per channel; one more for the window */
#define FEATURESET_MAX_PER_CHANNEL 32   /* no set has more per channel */
#define FEATURESET_MIN_WINDOW 8u
#define FEATURESET_MAX_WINDOW 65536u
#define FEATURESET_MAX_CHANNELS 64u

enum featureset_error {
    FEATURESET_OK = 0,
    FEATURESET_EUNKNOWN = -1,   /* id or version this build does not compute */
    FEATURESET_ERANGE = -2,     /* window, hop, rate or channels out of range */
    FEATURESET_EINVAL = -3,     /* NULL argument */
    FEATURESET_ESCRATCH = -4    /* scratch smaller than featureset_scratch_floats */
};

/* How the machine turns (the taxonomy's asset or equipment type): what the
 * envelope set needs, zero for the others. */
struct featureset_kin {
    float shaft_hz;             /* shaft speed, Hz */
    uint32_t n_elements;        /* rolling elements, 3..64 */
    float ball_d, pitch_d;      /* element and pitch diameter, one unit */
    float contact_deg;          /* contact angle, 0..60 degrees */
};

/* The kinematics of a set that needs none, for initialisers. */
#define FEATURESET_NO_KIN { 0.0f, 0u, 0.0f, 0.0f, 0.0f }

struct featureset_spec {
    uint16_t id;
    uint16_t version;
    uint32_t window;            /* samples per channel in one window */
    uint32_t hop;               /* samples between window starts on the device */
    float sample_rate;          /* Hz the window was sampled at */
    struct featureset_kin kin;  /* envelope set only */
    /* relations set only: the fitted map (the model blob carries it), NULL
     * for the others.  Borrowed: whoever fills the spec keeps it alive. */
    const struct relations_map *rel;
};

/* Features per channel of (id, version); 0 when unknown. */
unsigned featureset_per_channel(uint16_t id, uint16_t version);
/* Features of (id, version) for `channels` channels: channels x per
 * channel, and for "relations" one more (the window's SPE); 0 when unknown. */
unsigned featureset_count(uint16_t id, uint16_t version, unsigned channels);
/* "stats", or "?" for an unknown id. */
const char *featureset_name(uint16_t id);

/* NULL when this build computes spec for `channels` channels, else why not
 * (a static string, lowercase, no trailing period). */
const char *featureset_unsupported(const struct featureset_spec *spec, unsigned channels);

/* NULL when spec was trained at the rate a source delivers (relative 1e-6),
 * else why not. */
const char *featureset_rate_mismatch(const struct featureset_spec *spec, double source_rate);

/* Floats of scratch featureset_compute needs for spec (0: none; stats
 * needs none, spectral window + the FFT's).  Independent of the channel
 * count: channels are computed one after another. */
size_t featureset_scratch_floats(const struct featureset_spec *spec);

/* The feature vector of one window: featureset_count floats into out.
 * x holds channel c's spec->window samples at x + c * stride (stride >=
 * window).  Non-finite samples are taken as the window's last finite value
 * before them (or 0), so a broken sample cannot poison the vector.
 * scratch: scratch_floats floats the caller owns (NULL, 0 when
 * featureset_scratch_floats says 0). */
int featureset_compute(const struct featureset_spec *spec, const float *x, size_t stride,
                       unsigned channels, float *scratch, size_t scratch_floats, float *out);

/* Name of feature k of a set's channel ("mean", "log_rms", ...); "?" out of
 * range.  "relations": k = 2 names the one feature after the channels'. */
const char *featureset_feature_name(uint16_t id, uint16_t version, unsigned k);

#endif
