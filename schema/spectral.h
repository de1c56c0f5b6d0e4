/* spectral.h - the spectral features a vibration analyst reads (portable).
 *
 * A small radix-2 FFT, the one-sided power spectrum, band energies on a log
 * grid and on an order grid (relative to shaft speed), spectral kurtosis,
 * and the envelope spectrum with the energy at the bearing defect
 * frequencies (BPFO, BPFI, BSF, FTF and their second harmonics) computed
 * from shaft speed and bearing geometry.  Shared by the server (training,
 * evaluation) and the device: no heap, no libc I/O, the caller hands in the
 * scratch (spectral_scratch_floats says how much), so it builds for a
 * Cortex-M4 (make m4).  Every function returns 0 or a negative SPECTRAL_E*
 * code; outputs are written only on success.
 *
 * Conventions (what the golden vectors in tests/unit/schema/ check):
 *   power[k], k = 0..n/2, is the one-sided power of the mean-removed,
 *   Hann-windowed (periodic: w_i = 0.5 - 0.5 cos(2 pi i / n)) frame,
 *   scaled so that sum(power) is the frame's variance for a broadband
 *   signal: power[k] = c_k |X_k|^2 / (n sum w_i^2), c_k = 2 except at DC and
 *   Nyquist (1).  Bin k is at k fs / n Hz. */
#ifndef PRECURSOR_SPECTRAL_H
#define PRECURSOR_SPECTRAL_H

#include <stddef.h>
#include <stdint.h>

#define SPECTRAL_MIN_N 16u
#define SPECTRAL_MAX_N 65536u       /* 2^16 samples: 6.5 s at 10 kHz */
#define SPECTRAL_MAX_BANDS 64u

enum spectral_error {
    SPECTRAL_OK = 0,
    SPECTRAL_EINVAL = -1,           /* a bad argument (size not a power of two, band order) */
    SPECTRAL_ESCRATCH = -2,         /* scratch smaller than spectral_scratch_floats says */
    SPECTRAL_ENONFINITE = -3        /* a sample is NaN or infinite */
};

/* Rolling-element bearing geometry, as on the datasheet.  Diameters in any
 * one unit (only their ratio matters). */
struct spectral_bearing {
    uint32_t n_elements;            /* rolling elements, 3..64 */
    float ball_d;                   /* rolling-element diameter */
    float pitch_d;                  /* pitch diameter, > ball_d */
    float contact_deg;              /* contact angle, 0..60 degrees */
};

enum spectral_defect { SPECTRAL_BPFO, SPECTRAL_BPFI, SPECTRAL_BSF, SPECTRAL_FTF, SPECTRAL_NDEFECTS };

/* What spectral_features computes.  Everything is per channel (one frame). */
struct spectral_config {
    float fs;                       /* sample rate, Hz */
    uint32_t n;                     /* frame length, a power of two in [MIN_N, MAX_N] */
    uint32_t log_bands;             /* bands on a log grid from f_lo to fs/2, 0..MAX_BANDS */
    float f_lo;                     /* lower edge of the first log band, Hz (> 0) */
    float shaft_hz;                 /* shaft speed; 0 = unknown (no order bands, no defects) */
    uint32_t order_bands;           /* bands 1 order wide from order 0.5, 0..MAX_BANDS */
    uint32_t sk_seg;                /* STFT segment for spectral kurtosis, power of two, <= n/4 */
    float env_lo, env_hi;           /* envelope band-pass, Hz; 0, 0 = around the SK maximum */
    int has_bearing;                /* geometry below is valid: defect energies computed */
    struct spectral_bearing bearing;
    /* Samples in the frame when it is not a power of two: n/2 < len <= n,
     * windowed over its own length and zero-padded to n (0: n, no padding) */
    uint32_t len;
};

/* Feature layout of spectral_features (count by spectral_feature_count):
 *   0 rms, 1 kurtosis (excess), 2 crest factor,
 *   log10 energy fraction of each log band (log_bands),
 *   log10 energy fraction of each order band (order_bands, only if shaft_hz > 0),
 *   max spectral kurtosis, its frequency / (fs/2),
 *   if has_bearing and shaft_hz > 0: for BPFO, BPFI, BSF, FTF the envelope
 *   spectrum's energy at 1x and 2x the defect frequency (+-2 bins), as log10
 *   of the ratio to the mean envelope power in as many bins (8 values).
 * Fractions are floored at 1e-12 before the log. */
#define SPECTRAL_TIME_FEATURES 3u
#define SPECTRAL_SK_FEATURES 2u
#define SPECTRAL_DEFECT_FEATURES (2u * SPECTRAL_NDEFECTS)

int spectral_is_pow2(uint32_t n);

/* In-place complex FFT of n points (power of two, 2..MAX_N), interleaved
 * z[2k] = Re, z[2k+1] = Im; inverse = 1 computes the unscaled inverse (the
 * caller divides by n). */
int spectral_fft(float *z, uint32_t n, int inverse);

/* Real FFT of n samples (power of two, 4..MAX_N) in place, through one
 * complex FFT of n/2 points.  Out: x[0] = X_0, x[1] = X_{n/2} (both real),
 * then x[2k], x[2k+1] = Re X_k, Im X_k for k = 1..n/2-1. */
int spectral_rfft(float *x, uint32_t n);

/* One-sided power spectrum (n/2 + 1 bins, see the conventions above) of n
 * samples; scratch holds n floats. */
int spectral_power(const float *x, uint32_t n, float *scratch, float *power);
/* The same of a frame of len samples (4 <= len <= n): mean removed and Hann
 * window over its len samples, then zeros up to n (a power of two).  The
 * bins are n's, finer than the frame resolves: a 3000-sample frame keeps
 * every sample rather than the 2048 a power of two would keep.  len == n is
 * spectral_power, bit for bit. */
int spectral_power_padded(const float *x, uint32_t len, uint32_t n, float *scratch, float *power);

/* Energy in nb bands with log-spaced edges f_lo * (f_hi/f_lo)^(j/nb); a bin
 * belongs to the band whose half-open interval holds its frequency. */
int spectral_log_bands(const float *power, uint32_t n, float fs, float f_lo, float f_hi,
                       uint32_t nb, float *out);

/* Energy in nb bands one shaft order wide: band j holds orders [j+0.5, j+1.5). */
int spectral_order_bands(const float *power, uint32_t n, float fs, float shaft_hz, uint32_t nb,
                         float *out);

/* Spectral kurtosis per bin of an STFT (Hann segments of seg points, hop
 * seg/2): SK_k = <|X|^4> / <|X|^2>^2 - 2 over the segments (0 where the bin
 * has no power).  sk has seg/2 + 1 values; scratch holds 2 seg + 2 floats. */
int spectral_kurtosis(const float *x, uint32_t n, uint32_t seg, float *scratch, float *sk);

/* Envelope spectrum: band-pass [lo, hi] Hz by zeroing bins of the spectrum,
 * the analytic signal's magnitude (Hilbert), then spectral_power of that
 * envelope.  env_power has n/2 + 1 bins; scratch holds 2n floats. */
int spectral_envelope(const float *x, uint32_t n, float fs, float lo, float hi, float *scratch,
                      float *env_power);
/* The same of a frame of len samples zero-padded to n: the envelope's power
 * over its first len samples, as spectral_power_padded takes them. */
int spectral_envelope_padded(const float *x, uint32_t len, uint32_t n, float fs, float lo, float hi,
                             float *scratch, float *env_power);

/* The four defect frequencies in Hz at shaft speed shaft_hz (out[SPECTRAL_NDEFECTS]). */
int spectral_defect_freqs(const struct spectral_bearing *b, float shaft_hz, float *out);

/* Energy within +-halfwidth bins of frequency f (a bin range clipped to the spectrum). */
float spectral_energy_at(const float *power, uint32_t n, float fs, float f, uint32_t halfwidth);

uint32_t spectral_feature_count(const struct spectral_config *c);

/* Floats of scratch spectral_features needs for c (0 for an invalid c). */
size_t spectral_scratch_floats(const struct spectral_config *c);

/* Check c against the limits above. */
int spectral_config_check(const struct spectral_config *c);

/* All features of one frame x[c->n] into out[spectral_feature_count(c)]. */
int spectral_features(const struct spectral_config *c, const float *x, float *scratch,
                      size_t scratch_floats, float *out);

#endif
