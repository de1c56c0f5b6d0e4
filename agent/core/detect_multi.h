/* detect_multi.h - the multivariate detector: broken relations between channels.
 *
 * A pump fault shows as flow, current and pressure no longer agreeing long
 * before any of them leaves its own range.  This detector keeps an
 * exponentially forgotten mean and covariance of the frame vector and scores
 * each frame by its Mahalanobis distance (Hotelling's T-squared over all
 * components, ridge-regularised) against it.  Through the Cholesky factor
 * L of the covariance, y = L^-1 (x - mean) holds, for each channel, the
 * standardised residual of regressing it on the channels before it, so the
 * distance is the sum of those residuals squared and covers both PCA's
 * T-squared and its residual Q.  The channel named is the one whose
 * leave-one-out residual (against all the other channels) is largest.
 *
 * Portable core: no heap, no I/O; the caller hands in detect_multi_size(N)
 * bytes, 8-aligned.  State: 4 (N^2 + 7N) bytes of floats plus the fixed
 * struct (detect_multi_size), 600 bytes for 8 channels on x86-64.  Work per
 * frame: a triangular solve and a covariance update, N^2 + 3N multiply-adds,
 * a back substitution (N^2 / 2) on frames that score, plus a Cholesky
 * factorisation and the precision diagonal (N^3 / 6 each) every N frames:
 * O(N) per channel.
 *
 * The distance is calibrated against its own history (log T-squared, EWMA
 * mean and absolute deviation, clipped updates), not against a chi-square
 * table: process data are autocorrelated and heavy-tailed, so the table's
 * tail would be wrong by orders of magnitude on real plants. */
#ifndef PRECURSOR_DETECT_MULTI_H
#define PRECURSOR_DETECT_MULTI_H

#include <stddef.h>
#include <stdint.h>

struct detect_multi;            /* opaque; lives in the caller's memory */

/* Frames of its own before the detector may speak: enough for a covariance
 * of n channels (10 (n + 1)), at least 64 for its calibration, and a quarter
 * of the covariance's memory (1 / (4 alpha)): process data are
 * autocorrelated, and a minute of ramps makes any two channels look
 * perfectly related. */
uint32_t detect_multi_warm_frames(unsigned n, float alpha);

size_t detect_multi_size(unsigned n);
/* alpha: EWMA weight per frame of the mean, covariance and calibration. */
struct detect_multi *detect_multi_init(void *mem, size_t len, unsigned n, float alpha);

/* One frame.  floor[c] is the smallest standard deviation channel c may be
 * given (its resolution), may be NULL.  Returns the z of this frame's
 * distance against the distance's own history (0 while warming up, below its
 * usual level, or when no two channels are correlated); *channel is the
 * channel with the largest leave-one-out residual (detect_multi_resid), 0 on
 * a frame whose distance is not above its usual level. */
float detect_multi_step(struct detect_multi *m, const float *x, const float *floor,
                        unsigned *channel);

/* 1 once some pair of channels has |correlation| >= 0.5: only then does the
 * detector score (with uncorrelated channels it repeats the level detector). */
int detect_multi_correlated(const struct detect_multi *m);
/* The last frame's T-squared (for tests and tools). */
float detect_multi_t2(const struct detect_multi *m);

/* The last frame's leave-one-out residual of channel c: the channel against
 * what all the other channels predict of it (the factored covariance's
 * regression), in its conditional standard deviations,
 * r_c = (P dx)_c / sqrt(P_cc), P the inverse covariance.  The channel
 * detect_multi_step names is the one with the largest |r_c|.  Computed only
 * on frames whose distance scores above its usual level (the ones that can
 * name a channel): NaN on the others. */
float detect_multi_resid(const struct detect_multi *m, unsigned c);

#endif
