/* relations.h - relations between channels, the features of a process fault
 * (portable).
 *
 * A process fault (a blocked line, an open bypass) breaks the relations
 * between a plant's channels; a set-point change moves related channels
 * together and keeps them.  So a window is read in the residual subspace of
 * a linear model of normal operation, the classical one of multivariate
 * process monitoring: each channel standardised (mean, scale), the
 * principal subspace of their correlation (an orthonormal basis B, n_ch x
 * rank) taken as "what normal operation moves together", and every sample
 * z_t projected out of it: r_t = z_t - B B^T z_t.  A set-point move inside
 * the subspace leaves r_t unchanged.
 *
 * The map is fitted on the server (ds_relations_fit, from windows of
 * normal operation: no labels) and computed here, by the server and the
 * device alike: no heap, no libc I/O, only <math.h>; the caller hands in
 * relations_scratch_floats() floats.  Parameters: (2 + rank) * n_ch floats.
 *
 * Features of one window (RELATIONS_NFEAT(n_ch), in this order):
 *   per channel, the window mean of its residual r_t,i (n_ch values);
 *   per channel, log(sd + RELATIONS_SD_FLOOR) of r_t,i over the window
 *     (population sd: the residual's own movement within the window);
 *   log(|mean residual|^2 + RELATIONS_SPE_FLOOR), the window's squared
 *     prediction error.
 * The window is channel-major like featureset_compute's: channel c's n
 * samples start at x + c * stride. */
#ifndef PRECURSOR_RELATIONS_H
#define PRECURSOR_RELATIONS_H

#include <stddef.h>
#include <stdint.h>

#define RELATIONS_MAX_CH 64u
#define RELATIONS_NFEAT(n_ch) (2u * (n_ch) + 1u)
#define RELATIONS_SD_FLOOR 1e-4f
#define RELATIONS_SPE_FLOOR 1e-6f

enum relations_error {
    RELATIONS_OK = 0,
    RELATIONS_EINVAL = -1,          /* sizes out of range, a scale <= 0, a stride shorter than n */
    RELATIONS_ENONFINITE = -2       /* a sample or a parameter is NaN or infinite */
};

struct relations_map {
    uint32_t n_ch;                  /* channels, 2..RELATIONS_MAX_CH */
    uint32_t rank;                  /* principal components kept, 0..n_ch - 1 */
    const float *mean;              /* n_ch: each channel's mean over normal operation */
    const float *scale;             /* n_ch: its spread there, > 0 */
    const float *basis;             /* n_ch x rank, row-major: orthonormal columns */
};

/* Check m against the limits above (0 or RELATIONS_E*). */
int relations_check(const struct relations_map *m);

/* Floats of scratch relations_features needs (0 for an invalid m). */
size_t relations_scratch_floats(const struct relations_map *m);

/* The features of a window of n >= 1 samples per channel into out
 * (RELATIONS_NFEAT(m->n_ch) floats, written only on success). */
int relations_features(const struct relations_map *m, const float *x, uint32_t n, uint32_t stride,
                       float *scratch, size_t scratch_floats, float *out);

/* Scratch of relations_features_hold: relations_scratch_floats + n_ch. */
size_t relations_hold_scratch_floats(const struct relations_map *m);

/* relations_features, but a non-finite sample is taken as the channel's
 * last finite one in the window, or before any as m->mean of the channel
 * (no residual): what the "relations" feature set computes (featureset.h),
 * so one broken sample cannot refuse a window on the device. */
int relations_features_hold(const struct relations_map *m, const float *x, uint32_t n,
                            uint32_t stride, float *scratch, size_t scratch_floats, float *out);

#endif
