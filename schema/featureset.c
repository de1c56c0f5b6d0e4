/* featureset.c - feature sets computed from one window of samples.
 *
 * Shared by the server (training, exports) and the agent (model runner), and
 * part of the portable core built for the Cortex-M4, so: no heap, no libc
 * I/O, only <math.h>.  Sums are in double (a window of 65536 samples of a
 * large offset loses every bit of its variance in float) and each feature is
 * rounded to float once, at the end.
 *
 * Constants are written so that they are exact in binary32: the M4 build
 * compiles with -fsingle-precision-constant, and a decimal like 1e-12 would
 * then be a different number there than on the server.
 *
 * Set "stats" version 1, per channel, n samples x_i, mean m:
 *   0 mean          m
 *   1 log_rms       log(rms + t),  rms = sqrt(sum (x_i - m)^2 / n)
 *   2 log_peak      log(max |x_i - m| + t)
 *   3 log_crest     log((peak + t) / (rms + t))
 *   4 log_kurtosis  log((m4 + t^2) / (var^2 + t^2)),  m4 = sum (x_i - m)^4 / n
 *   5 log_low       log(sum over i >= 3 of (mean of x_i-3..x_i - m)^2 / (n - 3) + t^2)
 *   6 log_high      log(sum over i >= 1 of (x_i - x_i-1)^2 / (n - 1) + t^2)
 * with t = 2^-40 + 2^-20 |m|: a floor that keeps a flat channel finite and
 * scales with its level.
 *
 * Set "spectral" version 1 (schema/spectral.c, in float), per channel, a
 * window of w samples in 64..65536 at rate fs, its FFT of n points, n the
 * smallest power of two >= w (a window that is not a power of two has its
 * mean removed and its Hann taper over its own w samples, then zeros up to
 * n; with w = n nothing is padded, the set as it always was):
 *   0 log_rms       log10(rms + 2^-40) of the mean-removed window
 *   1 kurtosis      excess kurtosis
 *   2 crest         peak / rms
 *   3..13 band_k    log10 energy fraction of 11 bands on a log grid from
 *                   f_lo = max(fs / 256, 2 fs / w) to fs/2 (Hann-windowed
 *                   power spectrum; a fraction is floored at 1e-12)
 *   14 sk_max       the largest spectral kurtosis over an STFT of
 *                   segments of the largest power of two <= min(64, w / 4)
 *                   points (impulsive energy: bearing impacts, cavitation)
 *   15 sk_freq      its frequency / (fs/2)
 * The grid is set by fs and w alone, so the device computes the training's
 * bands from the blob's spec.
 *
 * Set "envelope" version 1 (schema/spectral.c), per channel, the window as
 * for "spectral", with the shaft speed and bearing geometry of spec->kin
 * (the blob records them):
 *   0 log_rms, 1 kurtosis, 2 crest   as above
 *   3..10 band_k    8 log bands from max(fs / 256, 2 fs / w) to fs/2
 *   11..16 order_k  energy fraction of orders [k + 0.5, k + 1.5), k = 0..5
 *   17 sk_max, 18 sk_freq            as above
 *   19..26          the envelope spectrum (band-pass +-2 STFT bins around
 *                   the spectral kurtosis peak, Hilbert magnitude) at 1x and
 *                   2x BPFO, BPFI, BSF and FTF (+-2 bins), log10 of the ratio
 *                   to the mean envelope power over as many bins
 * Without a bearing (kin's geometry all 0, the shaft speed known): the
 * order bands still follow the shaft, and 19..26 are 0.
 * What an analyst reads for a rolling-element bearing: the defect energies
 * follow the shaft speed, so a model learned at one speed reads another.
 *
 * Set "relations" version 1 (schema/relations.c, in float), any window, 2..64
 * channels, with the map of normal operation in spec->rel (fitted by the
 * server, carried by the model blob): per channel c
 *   2c     resid_mean    the window mean of the channel's residual
 *   2c+1   log_resid_sd  log(sd + 1e-4) of it over the window
 * and last, after every channel's, log_spe = log(|mean residual|^2 + 1e-6).
 * A non-finite sample is the channel's last finite one in the window, or
 * before any the map's mean of the channel (no residual): the other sets'
 * rule, with the level a standardised channel reads as "nothing". */
#include "schema/featureset.h"

#include <math.h>
#include <string.h>

#include "schema/spectral.h"

#define TINY_ABS 9.094947017729282379150390625e-13    /* 2^-40 */
#define TINY_REL 9.5367431640625e-07                    /* 2^-20 */

static void spectral_setup(const struct featureset_spec *spec, struct spectral_config *c);

unsigned featureset_per_channel(uint16_t id, uint16_t version)
{
#define X(fid, fver, per, name) if (id == fid && version == fver) return per;
    FEATURESET_LIST(X)
#undef X
    return 0;
}

unsigned featureset_count(uint16_t id, uint16_t version, unsigned channels)
{
    unsigned per = featureset_per_channel(id, version);

    if (per == 0)
        return 0;
    return per * channels + (id == FEATURESET_RELATIONS ? 1u : 0u);
}

const char *featureset_name(uint16_t id)
{
#define X(fid, fver, per, name) if (id == fid) return name;
    FEATURESET_LIST(X)
#undef X
    return "?";
}

const char *featureset_feature_name(uint16_t id, uint16_t version, unsigned k)
{
    static const char *const stats[FEATURESET_STATS_NFEAT] = {
        "mean", "log_rms", "log_peak", "log_crest", "log_kurtosis", "log_low", "log_high"
    };

    static const char *const envelope[FEATURESET_ENVELOPE_NFEAT] = {
        "log_rms", "kurtosis", "crest", "band0", "band1", "band2", "band3", "band4", "band5",
        "band6", "band7", "order1", "order2", "order3", "order4", "order5", "order6", "sk_max",
        "sk_freq", "bpfo1", "bpfo2", "bpfi1", "bpfi2", "bsf1", "bsf2", "ftf1", "ftf2"
    };
    static const char *const spectral[FEATURESET_SPECTRAL_NFEAT] = {
        "log_rms", "kurtosis", "crest", "band0", "band1", "band2", "band3", "band4", "band5",
        "band6", "band7", "band8", "band9", "band10", "sk_max", "sk_freq"
    };

    if (id == FEATURESET_STATS && version == FEATURESET_STATS_VERSION &&
        k < FEATURESET_STATS_NFEAT)
        return stats[k];
    if (id == FEATURESET_SPECTRAL && version == FEATURESET_SPECTRAL_VERSION &&
        k < FEATURESET_SPECTRAL_NFEAT)
        return spectral[k];
    if (id == FEATURESET_ENVELOPE && version == FEATURESET_ENVELOPE_VERSION &&
        k < FEATURESET_ENVELOPE_NFEAT)
        return envelope[k];
    if (id == FEATURESET_RELATIONS && version == FEATURESET_RELATIONS_VERSION && k <= 2)
        return k == 0 ? "resid_mean" : k == 1 ? "log_resid_sd" : "log_spe";
    return "?";
}

const char *featureset_unsupported(const struct featureset_spec *spec, unsigned channels)
{
    unsigned per;

    if (!spec)
        return "no feature set";
    if (spec->id == FEATURESET_NONE)
        return "the model records no feature set (trained before feature sets were recorded)";
    per = featureset_per_channel(spec->id, spec->version);
    if (per == 0)
        return featureset_name(spec->id)[0] == '?'
                   ? "unknown feature set id"
                   : "feature set version newer than this agent computes";
    if (spec->window < FEATURESET_MIN_WINDOW || spec->window > FEATURESET_MAX_WINDOW)
        return "feature window length out of range";
    if ((spec->id == FEATURESET_SPECTRAL || spec->id == FEATURESET_ENVELOPE) && spec->window < 64)
        return "spectral feature window shorter than 64 samples";
    if (spec->hop < 1 || spec->hop > spec->window)
        return "feature hop out of range (1..window)";
    if (!(spec->sample_rate > 0.0f) || !isfinite(spec->sample_rate))
        return "feature sample rate not a positive number";
    if (channels < 1 || channels > FEATURESET_MAX_CHANNELS)
        return "channel count out of range";
    if (spec->id == FEATURESET_RELATIONS) {
        if (!spec->rel)
            return "relations feature set without its map (a blob carries it)";
        if (spec->rel->n_ch != channels)
            return "relations map made for another channel count";
        if (relations_check(spec->rel) != RELATIONS_OK)
            return "relations map out of range (rank, scales or non-finite values)";
    }
    if (spec->id == FEATURESET_ENVELOPE) {
        struct spectral_config c;

        spectral_setup(spec, &c);
        if (!(spec->kin.shaft_hz > 0.0f) || spectral_config_check(&c) != 0)
            return "envelope feature set needs a shaft speed below half the sample rate and a "
                   "valid bearing geometry (or none)";
    }
    return 0;
}

const char *featureset_rate_mismatch(const struct featureset_spec *spec, double source_rate)
{
    double r;

    if (!spec || !(source_rate > 0.0))
        return "no sample rate";
    r = (double)spec->sample_rate;
    /* The blob holds the rate as binary32: compare within its rounding. */
    if (fabs(r - source_rate) > 1e-6 * source_rate)
        return "model trained at another sample rate than the source delivers";
    return 0;
}

/* Sample i of a channel with non-finite values replaced by the last finite
 * one (0 before any). */
static double sample_at(const float *x, uint32_t i, double *last)
{
    if (isfinite(x[i]))
        *last = (double)x[i];
    return *last;
}

/* The stats set's features of one channel from its sums (shared by the
 * scalar and the paired loops, so both end in the same operations). */
static void stats_finish(double m1, double m2, double m4, double peak, double e_lo, double e_hi,
                         uint32_t n, float out[FEATURESET_STATS_NFEAT])
{
    double var = m2 / (double)n, c4 = m4 / (double)n, rms, tiny;

    tiny = TINY_ABS + TINY_REL * fabs(m1);
    rms = sqrt(var);
    out[0] = (float)m1;
    out[1] = (float)log(rms + tiny);
    out[2] = (float)log(peak + tiny);
    out[3] = (float)log((peak + tiny) / (rms + tiny));
    out[4] = (float)log((c4 + tiny * tiny) / (var * var + tiny * tiny));
    out[5] = (float)log(e_lo / (double)(n - 3) + tiny * tiny);
    out[6] = (float)log(e_hi / (double)(n - 1) + tiny * tiny);
}

static void stats_channel(const float *x, uint32_t n, float out[FEATURESET_STATS_NFEAT])
{
    double m1 = 0.0, m2 = 0.0, m4 = 0.0, peak = 0.0, e_lo = 0.0, e_hi = 0.0, last = 0.0;
    double h0 = 0.0, h1 = 0.0, h2 = 0.0;
    uint32_t i;

    for (i = 0; i < n; i++)
        m1 += sample_at(x, i, &last);
    m1 /= (double)n;
    last = 0.0;
    for (i = 0; i < n; i++) {
        double v = sample_at(x, i, &last), y = v - m1, y2 = y * y;

        m2 += y2;
        m4 += y2 * y2;
        if (fabs(y) > peak)
            peak = fabs(y);
        if (i >= 1) {
            double dd = v - h0;
            e_hi += dd * dd;
        }
        if (i >= 3) {
            double a = (v + h0 + h1 + h2) / 4.0 - m1;
            e_lo += a * a;
        }
        h2 = h1;
        h1 = h0;
        h0 = v;
    }
    stats_finish(m1, m2, m4, peak, e_lo, e_hi, n, out);
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* Channels in pairs, one in each lane of a pair of doubles, and two pairs
 * in one loop where there are four: every lane runs stats_channel's
 * operations in stats_channel's order, so the features are bit for bit the
 * same (nothing is fused or reordered: x86-64 has no FMA unless asked for,
 * and each lane's sums stay sequential).  Four channels' dependency chains
 * side by side and half the instructions make it about three times as fast
 * where a server exports or trains on many windows. */
#define STATS_MAX_PAIRS 2

/* Channel a's and b's sample i as a pair; a non-finite one is the lane's
 * last finite sample (0 before any), as sample_at does it.  When the
 * caller has seen every sample finite, the replacement is skipped. */
static inline __attribute__((always_inline)) __m128d pair_at(const float *xa, const float *xb,
                                                             uint32_t i, __m128d *last, int finite)
{
    __m128d v = _mm_cvtps_pd(_mm_unpacklo_ps(_mm_load_ss(xa + i), _mm_load_ss(xb + i)));
    __m128d ok;

    if (finite)
        return v;
    /* finite <=> v - v == 0 (inf - inf and NaN are NaN) */
    ok = _mm_cmpeq_pd(_mm_sub_pd(v, v), _mm_setzero_pd());
    v = _mm_or_pd(_mm_and_pd(ok, v), _mm_andnot_pd(ok, *last));
    *last = v;
    return v;
}

static inline __attribute__((always_inline)) void
stats_pairs(const float *const *x, uint32_t n, float *const *out, int np, int finite)
{
    const __m128d sign = _mm_set1_pd(-0.0), quarter = _mm_set1_pd(0.25);
    __m128d m1[STATS_MAX_PAIRS], m2[STATS_MAX_PAIRS], m4[STATS_MAX_PAIRS];
    __m128d peak[STATS_MAX_PAIRS], e_lo[STATS_MAX_PAIRS], e_hi[STATS_MAX_PAIRS];
    __m128d last[STATS_MAX_PAIRS], h0[STATS_MAX_PAIRS], h1[STATS_MAX_PAIRS], h2[STATS_MAX_PAIRS];
    uint32_t i;
    int p;

    for (p = 0; p < np; p++) {
        m1[p] = m2[p] = m4[p] = peak[p] = e_lo[p] = e_hi[p] = _mm_setzero_pd();
        last[p] = h0[p] = h1[p] = h2[p] = _mm_setzero_pd();
    }
    /* (the loops over p are unrolled: the pairs' chains side by side) */
    for (i = 0; i < n; i++)
#pragma GCC unroll 2
        for (p = 0; p < np; p++)
            m1[p] = _mm_add_pd(m1[p], pair_at(x[2 * p], x[2 * p + 1], i, &last[p], finite));
    for (p = 0; p < np; p++) {
        m1[p] = _mm_div_pd(m1[p], _mm_set1_pd((double)n));
        last[p] = _mm_setzero_pd();
    }
    for (i = 0; i < n; i++) {
#pragma GCC unroll 2
        for (p = 0; p < np; p++) {
            __m128d v = pair_at(x[2 * p], x[2 * p + 1], i, &last[p], finite);
            __m128d y = _mm_sub_pd(v, m1[p]), y2 = _mm_mul_pd(y, y);

            m2[p] = _mm_add_pd(m2[p], y2);
            m4[p] = _mm_add_pd(m4[p], _mm_mul_pd(y2, y2));
            /* max(|y|, peak) is |y| > peak ? |y| : peak, the scalar test */
            peak[p] = _mm_max_pd(_mm_andnot_pd(sign, y), peak[p]);
            if (i >= 1) {
                __m128d dd = _mm_sub_pd(v, h0[p]);

                e_hi[p] = _mm_add_pd(e_hi[p], _mm_mul_pd(dd, dd));
            }
            if (i >= 3) {
                /* s / 4 and s * 0.25 are the same real number, rounded once */
                __m128d s4 = _mm_add_pd(_mm_add_pd(_mm_add_pd(v, h0[p]), h1[p]), h2[p]);
                __m128d av = _mm_sub_pd(_mm_mul_pd(s4, quarter), m1[p]);

                e_lo[p] = _mm_add_pd(e_lo[p], _mm_mul_pd(av, av));
            }
            h2[p] = h1[p];
            h1[p] = h0[p];
            h0[p] = v;
        }
    }
    for (p = 0; p < np; p++) {
        double a[2], b[2], c[2], d[2], e[2], f[2];

        _mm_storeu_pd(a, m1[p]);
        _mm_storeu_pd(b, m2[p]);
        _mm_storeu_pd(c, m4[p]);
        _mm_storeu_pd(d, peak[p]);
        _mm_storeu_pd(e, e_lo[p]);
        _mm_storeu_pd(f, e_hi[p]);
        stats_finish(a[0], b[0], c[0], d[0], e[0], f[0], n, out[2 * p]);
        stats_finish(a[1], b[1], c[1], d[1], e[1], f[1], n, out[2 * p + 1]);
    }
}

/* Every sample of x[0, n) finite (then no sample needs replacing). */
static int all_finite(const float *x, uint32_t n)
{
    const __m128i expo = _mm_set1_epi32(0x7f800000);
    __m128i bad = _mm_setzero_si128();
    uint32_t i = 0;

    for (; i + 4 <= n; i += 4) {
        __m128i b = _mm_and_si128(_mm_castps_si128(_mm_loadu_ps(x + i)), expo);

        bad = _mm_or_si128(bad, _mm_cmpeq_epi32(b, expo));
    }
    for (; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return _mm_movemask_epi8(bad) == 0;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(WIRE_NO_CLONES)
#include <immintrin.h>
#define STATS_AVX 1

/* Four channels in the four lanes of one AVX register of doubles, where the
 * CPU has AVX: stats_pairs' loop with twice the lanes, each lane running
 * stats_channel's operations in stats_channel's order (bit for bit the
 * same: target "avx" has no FMA to fuse with, and nothing is reordered),
 * in half the instructions.  The first pass is one chain of adds whatever
 * the width; the second, which was bound by the instruction count, is what
 * gets faster.  Left out of ThreadSanitizer builds with the codec's AVX2
 * clones (WIRE_NO_CLONES: the same build rule). */
static int have_avx(void)
{
    static int have = -1;

    if (have < 0)
        have = __builtin_cpu_supports("avx") ? 1 : 0;
    return have;
}

__attribute__((target("avx"))) static inline __attribute__((always_inline)) __m256d
quad_at(const float *const *x, uint32_t i, __m256d *last, int finite)
{
    __m256d v = _mm256_cvtps_pd(_mm_setr_ps(x[0][i], x[1][i], x[2][i], x[3][i]));
    __m256d ok;

    if (finite)
        return v;
    /* finite <=> v - v == 0 (ordered: NaN is unequal), as pair_at */
    ok = _mm256_cmp_pd(_mm256_sub_pd(v, v), _mm256_setzero_pd(), _CMP_EQ_OQ);
    v = _mm256_blendv_pd(*last, v, ok);
    *last = v;
    return v;
}

__attribute__((target("avx"))) static inline __attribute__((always_inline)) void
stats_quad_body(const float *const *x, uint32_t n, float *const *out, int finite)
{
    const __m256d sign = _mm256_set1_pd(-0.0), quarter = _mm256_set1_pd(0.25);
    __m256d m1 = _mm256_setzero_pd(), m2 = m1, m4 = m1, peak = m1, e_lo = m1, e_hi = m1;
    __m256d last = m1, h0 = m1, h1 = m1, h2 = m1;
    double a[4], b[4], c[4], d[4], e[4], f[4];
    uint32_t i;
    int k;

    for (i = 0; i < n; i++)
        m1 = _mm256_add_pd(m1, quad_at(x, i, &last, finite));
    m1 = _mm256_div_pd(m1, _mm256_set1_pd((double)n));
    last = _mm256_setzero_pd();
    for (i = 0; i < n; i++) {
        __m256d v = quad_at(x, i, &last, finite);
        __m256d y = _mm256_sub_pd(v, m1), y2 = _mm256_mul_pd(y, y);

        m2 = _mm256_add_pd(m2, y2);
        m4 = _mm256_add_pd(m4, _mm256_mul_pd(y2, y2));
        peak = _mm256_max_pd(_mm256_andnot_pd(sign, y), peak);
        if (i >= 1) {
            __m256d dd = _mm256_sub_pd(v, h0);

            e_hi = _mm256_add_pd(e_hi, _mm256_mul_pd(dd, dd));
        }
        if (i >= 3) {
            __m256d s4 = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(v, h0), h1), h2);
            __m256d av = _mm256_sub_pd(_mm256_mul_pd(s4, quarter), m1);

            e_lo = _mm256_add_pd(e_lo, _mm256_mul_pd(av, av));
        }
        h2 = h1;
        h1 = h0;
        h0 = v;
    }
    _mm256_storeu_pd(a, m1);
    _mm256_storeu_pd(b, m2);
    _mm256_storeu_pd(c, m4);
    _mm256_storeu_pd(d, peak);
    _mm256_storeu_pd(e, e_lo);
    _mm256_storeu_pd(f, e_hi);
    for (k = 0; k < 4; k++)
        stats_finish(a[k], b[k], c[k], d[k], e[k], f[k], n, out[k]);
}

__attribute__((target("avx"))) static void stats_quad(const float *const *x, uint32_t n,
                                                      float *const *out, int finite)
{
    /* constant arguments: two loops, one without the replacement */
    if (finite)
        stats_quad_body(x, n, out, 1);
    else
        stats_quad_body(x, n, out, 0);
}
#endif

/* Channels c0 .. c0 + 2 np - 1 of the window (np pairs), each at stride. */
static void stats_channels(const float *x, size_t stride, uint32_t n, float *out, unsigned per,
                           int np)
{
    const float *xs[2 * STATS_MAX_PAIRS];
    float *os[2 * STATS_MAX_PAIRS];
    int k, finite = 1;

    for (k = 0; k < 2 * np; k++) {
        xs[k] = x + (size_t)k * stride;
        os[k] = out + (size_t)k * per;
        finite = finite && all_finite(xs[k], n);
    }
#if defined(STATS_AVX)
    if (np == 2 && have_avx()) {
        stats_quad(xs, n, os, finite);
        return;
    }
#endif
    /* constant arguments: four loops, each without the tests it needs not */
    if (np == 2 && finite)
        stats_pairs(xs, n, os, 2, 1);
    else if (np == 2)
        stats_pairs(xs, n, os, 2, 0);
    else if (finite)
        stats_pairs(xs, n, os, 1, 1);
    else
        stats_pairs(xs, n, os, 1, 0);
}
#endif

/* The spectral and envelope sets' configuration: a function of the spec alone. */
static void spectral_setup(const struct featureset_spec *spec, struct spectral_config *c)
{
    float f_lo = spec->sample_rate / 256.0f, two_bins = 2.0f * spec->sample_rate / (float)spec->window;

    memset(c, 0, sizeof *c);
    c->fs = spec->sample_rate;
    /* a window that is not a power of two is zero-padded to the next one */
    c->n = 64;
    while (c->n < spec->window && c->n < SPECTRAL_MAX_N)
        c->n *= 2;
    c->len = c->n == spec->window ? 0 : spec->window;
    c->log_bands = FEATURESET_SPECTRAL_BANDS;
    c->f_lo = f_lo > two_bins ? f_lo : two_bins;
    /* the largest power of two <= window / 4, at most 64 */
    c->sk_seg = 64;
    while (c->sk_seg > spec->window / 4)
        c->sk_seg /= 2;
    if (spec->id == FEATURESET_ENVELOPE) {
        c->log_bands = 8;
        c->shaft_hz = spec->kin.shaft_hz;
        c->order_bands = 6;
        /* no geometry at all (every field 0): the order bands without the
         * defect energies, which read 0 */
        c->has_bearing = spec->kin.n_elements != 0 || spec->kin.ball_d != 0.0f ||
                         spec->kin.pitch_d != 0.0f || spec->kin.contact_deg != 0.0f;
        c->bearing = (struct spectral_bearing){ spec->kin.n_elements, spec->kin.ball_d,
                                                spec->kin.pitch_d, spec->kin.contact_deg };
    }
}

size_t featureset_scratch_floats(const struct featureset_spec *spec)
{
    struct spectral_config c;

    if (spec && spec->id == FEATURESET_RELATIONS)
        return featureset_unsupported(spec, spec->rel ? spec->rel->n_ch : 0)
                   ? 0
                   : relations_hold_scratch_floats(spec->rel);
    if (!spec || (spec->id != FEATURESET_SPECTRAL && spec->id != FEATURESET_ENVELOPE) ||
        featureset_unsupported(spec, 1))
        return 0;
    spectral_setup(spec, &c);
    /* the channel with non-finite samples replaced, then the FFT's */
    return (size_t)spec->window + spectral_scratch_floats(&c);
}

static int spectral_channel(const struct featureset_spec *spec, const float *x, float *scratch,
                            size_t scratch_floats, float *out)
{
    struct spectral_config c;
    double last = 0.0;

    spectral_setup(spec, &c);
    for (uint32_t i = 0; i < spec->window; i++)
        scratch[i] = (float)sample_at(x, i, &last);
    if (spectral_features(&c, scratch, scratch + spec->window, scratch_floats - spec->window,
                          out) != 0)
        return FEATURESET_ERANGE;
    /* the envelope set without a bearing: its defect energies are 0, the
     * same for every window, so no learner reads anything into them */
    if (spec->id == FEATURESET_ENVELOPE && !c.has_bearing)
        for (unsigned k = spectral_feature_count(&c); k < FEATURESET_ENVELOPE_NFEAT; k++)
            out[k] = 0.0f;
    /* rms spans decades between machines and severities: its log is what
     * a standardised distance can compare */
    out[0] = log10f(out[0] + 9.094947017729282379150390625e-13f);
    return FEATURESET_OK;
}

int featureset_compute(const struct featureset_spec *spec, const float *x, size_t stride,
                       unsigned channels, float *scratch, size_t scratch_floats, float *out)
{
    unsigned per;

    if (!spec || !x || !out)
        return FEATURESET_EINVAL;
    if (featureset_unsupported(spec, channels))
        return featureset_per_channel(spec->id, spec->version) ? FEATURESET_ERANGE
                                                               : FEATURESET_EUNKNOWN;
    if (stride < spec->window)
        return FEATURESET_ERANGE;
    if (scratch_floats < featureset_scratch_floats(spec) || (scratch_floats && !scratch))
        return FEATURESET_ESCRATCH;
    per = featureset_per_channel(spec->id, spec->version);
    if (spec->id == FEATURESET_RELATIONS) {
        /* relations_features' order (means, sds, SPE) made channel-major
         * like every set's, in place (no second vector on a device's
         * stack): channel c's sd moves from C + c down to 2c + 1 */
        if (relations_features_hold(spec->rel, x, spec->window, (uint32_t)stride, scratch,
                                    scratch_floats, out) != RELATIONS_OK)
            return FEATURESET_ERANGE;
        for (unsigned c = 0; c < channels; c++) {
            float sd = out[channels + c];

            for (unsigned j = channels + c; j > 2u * c + 1u; j--)
                out[j] = out[j - 1];
            out[2u * c + 1u] = sd;
        }
        return FEATURESET_OK;
    }
    for (unsigned c = 0; c < channels; c++) {
        const float *xc = x + (size_t)c * stride;
        float *oc = out + (size_t)c * per;

        if (spec->id == FEATURESET_STATS) {
#if defined(__SSE2__)
            if (c + 1 < channels) {
                int np = c + 3 < channels ? 2 : 1;

                stats_channels(xc, stride, spec->window, oc, per, np);
                c += 2u * (unsigned)np - 1u;
                continue;
            }
#endif
            stats_channel(xc, spec->window, oc);
        } else {
            float tmp[FEATURESET_MAX_PER_CHANNEL];
            int rc = spectral_channel(spec, xc, scratch, scratch_floats, tmp);

            if (rc != FEATURESET_OK)
                return rc;
            memcpy(oc, tmp, per * sizeof *tmp);
        }
    }
    return FEATURESET_OK;
}
