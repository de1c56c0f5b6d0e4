/* features.h - per-channel signal features of a snapshot: the numbers rules
 * and queries use instead of raw samples.
 *
 * Time domain: mean, standard deviation, RMS, peak (max |x|), crest factor
 * (peak / RMS) and Pearson kurtosis (m4 / m2^2; 3 for Gaussian noise).
 * Frequency domain (FFTW, single precision, Hann window, mean removed):
 * the dominant frequency and the power spectrum folded into FEAT_BINS
 * equal-width bins from 0 to Nyquist, each the fraction of total power, so
 * band_energy(lo, hi) is a fraction in [0, 1] whatever the sensor's scale.
 *
 * features_compute is pure (no I/O); features_from_envelope decodes a stored
 * envelope and computes every channel.  The worker (features_worker.c) does
 * that off the ingest path for every new snapshot, stores the result in
 * snapshot_features and hands the snapshot on to whoever registered for it
 * (the rules), so this module knows nothing of what reads the features. */
#ifndef PRECURSOR_FEATURES_H
#define PRECURSOR_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#define FEAT_BINS 64
#define FEAT_NAME_MAX 64
/* Longest window transformed per channel; longer snapshots use their first
 * FEAT_FFT_MAX samples for the spectrum (time features use all). */
#define FEAT_FFT_MAX 262144u

struct feat_channel {
    char name[FEAT_NAME_MAX + 1];
    double mean, std, rms, peak, crest, kurtosis;
    double dominant_hz;
    double bin_hz;                  /* width of one spectrum bin */
    float spectrum[FEAT_BINS];      /* fraction of total power per bin */
};

/* Features of n samples at rate hz into out (name left untouched).
 * 0, or -EINVAL (n < 2, rate <= 0), -ENOMEM. */
int features_compute(const float *x, size_t n, double rate_hz, struct feat_channel *out);

/* Fraction of the channel's power between lo and hi Hz; bins that straddle
 * an edge count in proportion to their overlap.  0 when hi <= lo. */
double features_band_energy(const struct feat_channel *f, double lo_hz, double hi_hz);

/* Decode a wire v1 envelope (already verified at ingest) and compute the
 * features of every channel.  *out is a malloc'd array of *n entries the
 * caller frees.  0 or a negative SRV_E* code. */
int features_from_envelope(const uint8_t *buf, size_t len, struct feat_channel **out,
                           size_t *n);
/* The same with the caller's zstd decompression context (NULL: one made for
 * the call), for a loop over many envelopes. */
struct ZSTD_DCtx_s;
int features_from_envelope_ctx(struct ZSTD_DCtx_s *dctx, const uint8_t *buf, size_t len,
                               struct feat_channel **out, size_t *n);

/* Called by the worker once per pass with the snapshots of the pass (in id
 * order) once their features are stored (or they are recorded as
 * undecodable), on the worker's thread.  0, or a negative SRV_E* code that
 * ends the pass (the snapshots are not retried). */
typedef int (*features_after_fn)(const int64_t *snapshot_ids, size_t n);

/* One pass of the worker: features for up to batch snapshots that have no
 * feature_jobs row yet (their envelopes taken from the ingest handoff when
 * it holds them, the others read in one round trip, every
 * channel's row and every job row written in one statement), then after
 * (may be NULL) for all of them.  How many
 * snapshots it took (>= 0), or a negative SRV_E* code. */
int features_worker_pass(int batch, features_after_fn after);
/* The same over snapshots with an id in (above, upto] only, in id order;
 * *last (may be NULL) gets the highest id taken whose after() returned, or,
 * when the pass came back short (every pending id in range taken), the
 * highest id there was (at most upto): the next pass can start above it. */
int features_worker_pass_range(int batch, int64_t above, int64_t upto, features_after_fn after,
                               int64_t *last);
/* Start the background thread (a pass, then a wait of poll_ms when there
 * was nothing to do, 0: 1000 ms; a short wait after a pass that was not
 * full; waits while the ingest queue holds a burst), at a lower scheduling
 * priority than the HTTP threads.  Up to handoff_bytes of new snapshots'
 * envelopes are kept in memory for it by the upload that stored them
 * (ingest_handoff; 0: none, every envelope is read back from the database,
 * as any beyond that budget and any stored before the start are).  0, or
 * SRV_EINTERNAL when the thread cannot start.  A second start while running
 * does nothing. */
int features_worker_start(unsigned poll_ms, size_t handoff_bytes, features_after_fn after);
/* Stop the thread and wait for its pass to end; safe when not running. */
void features_worker_stop(void);

/* GET /api/v1/snapshots/{id}/features (features_api.c). */
struct srv_request;
struct srv_response;
int features_api_get(struct srv_request *rq, struct srv_response *rs);

/* A rolling bearing's geometry and its defect frequencies at shaft speed fr
 * (Hz), from the usual kinematics with g = ball / pitch * cos(contact):
 * BPFO = n/2 fr (1 - g), BPFI = n/2 fr (1 + g), BSF = pitch / (2 ball) fr
 * (1 - g^2), FTF = fr/2 (1 - g); out[] in that order. */
struct feat_bearing {
    int balls;
    double ball_mm, pitch_mm, contact_deg;
};
void features_bearing_tones(const struct feat_bearing *b, double fr, double out[4]);

/* GET /api/v1/snapshots/{id}/spectrum?from_s=&to_s=&bins=&env_lo_hz=&env_hi_hz=:
 * per channel the amplitude and envelope spectra of a span, with shaft and
 * bearing markers from the device's asset or type (features_spectrum.c). */
int features_api_spectrum(struct srv_request *rq, struct srv_response *rs);
/* The same answer computed on a thread of its own while the connection is
 * parked, so the pool thread that owns it keeps serving its other
 * connections (features_spectrum_park.c); the route table's park entry. */
extern const struct srv_park features_api_spectrum_park;
/* End that thread (after http_stop: no request parks any more); the next
 * parked request starts it again. */
void features_spectrum_stop(void);
/* Requests computed on that thread so far (tests: the route did park). */
unsigned long features_spectrum_handed(void);

#endif
