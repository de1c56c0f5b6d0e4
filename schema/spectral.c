/* spectral.c - portable spectral features (see spectral.h for the
 * conventions).  Single precision throughout: the Cortex-M4's FPU has no
 * doubles, and the server must compute bit-compatible features.  Twiddles are
 * computed with cosf/sinf per butterfly group rather than by recurrence, so
 * the error does not grow with n. */
#include "schema/spectral.h"

#include <math.h>
#include <string.h>

#define TWO_PI 6.28318530717958647692f
#define FLOOR_FRAC 1e-12f

int spectral_is_pow2(uint32_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static void bit_reverse(float *z, uint32_t n)
{
    for (uint32_t i = 1, j = 0; i < n; i++) {
        uint32_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            float tr = z[2 * i], ti = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = tr;
            z[2 * j + 1] = ti;
        }
    }
}

int spectral_fft(float *z, uint32_t n, int inverse)
{
    if (!z || n < 2 || n > SPECTRAL_MAX_N || !spectral_is_pow2(n))
        return SPECTRAL_EINVAL;
    bit_reverse(z, n);
    float sign = inverse ? 1.0f : -1.0f;
    for (uint32_t len = 2; len <= n; len <<= 1) {
        uint32_t half = len >> 1;
        for (uint32_t j = 0; j < half; j++) {
            float a = sign * TWO_PI * (float)j / (float)len;
            float wr = cosf(a), wi = sinf(a);
            for (uint32_t s = j; s < n; s += len) {
                uint32_t t = s + half;
                float xr = z[2 * t] * wr - z[2 * t + 1] * wi;
                float xi = z[2 * t] * wi + z[2 * t + 1] * wr;
                z[2 * t] = z[2 * s] - xr;
                z[2 * t + 1] = z[2 * s + 1] - xi;
                z[2 * s] += xr;
                z[2 * s + 1] += xi;
            }
        }
    }
    return SPECTRAL_OK;
}

/* X_k = (Z_k + conj Z_{m-k})/2 - i w^k (Z_k - conj Z_{m-k})/2, w = e^{-2 pi i/n},
 * m = n/2: the spectrum of n reals from the FFT of their m pairs. */
int spectral_rfft(float *x, uint32_t n)
{
    if (!x || n < 4 || n > SPECTRAL_MAX_N || !spectral_is_pow2(n))
        return SPECTRAL_EINVAL;
    uint32_t m = n / 2;
    spectral_fft(x, m, 0);
    float z0r = x[0], z0i = x[1];
    for (uint32_t k = 1; k <= m / 2; k++) {
        uint32_t q = m - k;
        float ar = x[2 * k], ai = x[2 * k + 1], br = x[2 * q], bi = x[2 * q + 1];
        float out[2][2];
        for (int side = 0; side < 2; side++) {
            /* side 0: X_k from (A, B); side 1: X_{m-k} from (B, A) */
            float pr = side ? br : ar, pi = side ? bi : ai;
            float qr = side ? ar : br, qi = side ? ai : bi;
            uint32_t kk = side ? q : k;
            float er = 0.5f * (pr + qr), ei = 0.5f * (pi - qi);
            float or_ = 0.5f * (pr - qr), oi = 0.5f * (pi + qi);
            float a = -TWO_PI * (float)kk / (float)n;
            float wr = cosf(a), wi = sinf(a);
            /* -i w O = (wi*or + wr*oi) + i(wi*oi - wr*or) */
            out[side][0] = er + wi * or_ + wr * oi;
            out[side][1] = ei + wi * oi - wr * or_;
        }
        x[2 * k] = out[0][0];
        x[2 * k + 1] = out[0][1];
        x[2 * q] = out[1][0];
        x[2 * q + 1] = out[1][1];
    }
    x[0] = z0r + z0i;
    x[1] = z0r - z0i;
    return SPECTRAL_OK;
}

static int all_finite(const float *x, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

int spectral_power(const float *x, uint32_t n, float *scratch, float *power)
{
    return spectral_power_padded(x, n, n, scratch, power);
}

/* The frame's len samples windowed over their own length, then zeros up
 * to n: with len == n every operation is the unpadded one's. */
int spectral_power_padded(const float *x, uint32_t len, uint32_t n, float *scratch, float *power)
{
    if (!x || !scratch || !power || n < 4 || n > SPECTRAL_MAX_N || !spectral_is_pow2(n) ||
        len < 4 || len > n)
        return SPECTRAL_EINVAL;
    if (!all_finite(x, len))
        return SPECTRAL_ENONFINITE;
    float mean = 0, sw2 = 0;
    for (uint32_t i = 0; i < len; i++)
        mean += x[i];
    mean /= (float)len;
    for (uint32_t i = 0; i < len; i++) {
        float w = 0.5f - 0.5f * cosf(TWO_PI * (float)i / (float)len);
        scratch[i] = (x[i] - mean) * w;
        sw2 += w * w;
    }
    for (uint32_t i = len; i < n; i++)
        scratch[i] = 0.0f;
    spectral_rfft(scratch, n);
    float norm = 1.0f / ((float)len * sw2);
    power[0] = scratch[0] * scratch[0] * norm;
    power[n / 2] = scratch[1] * scratch[1] * norm;
    for (uint32_t k = 1; k < n / 2; k++)
        power[k] = 2.0f * (scratch[2 * k] * scratch[2 * k] + scratch[2 * k + 1] * scratch[2 * k + 1]) * norm;
    return SPECTRAL_OK;
}

int spectral_log_bands(const float *power, uint32_t n, float fs, float f_lo, float f_hi,
                       uint32_t nb, float *out)
{
    if (!power || !out || nb == 0 || nb > SPECTRAL_MAX_BANDS || !(fs > 0) || !(f_lo > 0) ||
        !(f_hi > f_lo) || !spectral_is_pow2(n))
        return SPECTRAL_EINVAL;
    float ratio = logf(f_hi / f_lo);
    for (uint32_t j = 0; j < nb; j++)
        out[j] = 0;
    for (uint32_t k = 1; k <= n / 2; k++) {
        float f = (float)k * fs / (float)n;
        if (f < f_lo || f >= f_hi)
            continue;
        uint32_t j = (uint32_t)((float)nb * logf(f / f_lo) / ratio);
        out[j < nb ? j : nb - 1] += power[k];
    }
    return SPECTRAL_OK;
}

int spectral_order_bands(const float *power, uint32_t n, float fs, float shaft_hz, uint32_t nb,
                         float *out)
{
    if (!power || !out || nb == 0 || nb > SPECTRAL_MAX_BANDS || !(fs > 0) || !(shaft_hz > 0) ||
        !spectral_is_pow2(n))
        return SPECTRAL_EINVAL;
    for (uint32_t j = 0; j < nb; j++)
        out[j] = 0;
    for (uint32_t k = 1; k <= n / 2; k++) {
        float order = (float)k * fs / (float)n / shaft_hz - 0.5f;
        if (order < 0 || order >= (float)nb)
            continue;
        out[(uint32_t)order] += power[k];
    }
    return SPECTRAL_OK;
}

int spectral_kurtosis(const float *x, uint32_t n, uint32_t seg, float *scratch, float *sk)
{
    if (!x || !scratch || !sk || seg < 4 || seg > n || !spectral_is_pow2(seg) || n > SPECTRAL_MAX_N)
        return SPECTRAL_EINVAL;
    uint32_t nbin = seg / 2 + 1, count = 0;
    float *p = scratch + seg, *p2 = p + nbin;
    for (uint32_t k = 0; k < nbin; k++)
        sk[k] = p2[k] = 0;
    for (uint32_t start = 0; start + seg <= n; start += seg / 2, count++) {
        int rc = spectral_power(x + start, seg, scratch, p);
        if (rc != 0)
            return rc;
        for (uint32_t k = 0; k < nbin; k++) {
            sk[k] += p[k];
            p2[k] += p[k] * p[k];
        }
    }
    for (uint32_t k = 0; k < nbin; k++) {
        float m1 = sk[k] / (float)count, m2 = p2[k] / (float)count;
        /* DC and Nyquist are real-valued (SK 1 for noise): not comparable, so 0 */
        sk[k] = (k == 0 || k == nbin - 1 || !(m1 > 0)) ? 0.0f : m2 / (m1 * m1) - 2.0f;
    }
    return SPECTRAL_OK;
}

int spectral_envelope(const float *x, uint32_t n, float fs, float lo, float hi, float *scratch,
                      float *env_power)
{
    return spectral_envelope_padded(x, n, n, fs, lo, hi, scratch, env_power);
}

/* The analytic signal of the zero-padded frame's band; the envelope's
 * power over the frame's own len samples, padded as spectral_power_padded
 * pads them. */
int spectral_envelope_padded(const float *x, uint32_t len, uint32_t n, float fs, float lo, float hi,
                             float *scratch, float *env_power)
{
    if (!x || !scratch || !env_power || n < 4 || n > SPECTRAL_MAX_N || !spectral_is_pow2(n) ||
        len < 4 || len > n || !(fs > 0) || !(lo >= 0) || !(hi > lo))
        return SPECTRAL_EINVAL;
    if (!all_finite(x, len))
        return SPECTRAL_ENONFINITE;
    float mean = 0;
    for (uint32_t i = 0; i < len; i++)
        mean += x[i];
    mean /= (float)len;
    for (uint32_t i = 0; i < n; i++) {
        scratch[2 * i] = i < len ? x[i] - mean : 0.0f;
        scratch[2 * i + 1] = 0;
    }
    spectral_fft(scratch, n, 0);
    /* analytic signal of the band: positive in-band bins doubled, the rest 0 */
    for (uint32_t k = 0; k < n; k++) {
        float f = (float)k * fs / (float)n;
        float g = (k > 0 && k < n / 2 && f >= lo && f <= hi) ? 2.0f / (float)n : 0.0f;
        scratch[2 * k] *= g;
        scratch[2 * k + 1] *= g;
    }
    spectral_fft(scratch, n, 1);
    for (uint32_t i = 0; i < n; i++)     /* i <= 2i: reads stay ahead of writes */
        scratch[i] = sqrtf(scratch[2 * i] * scratch[2 * i] + scratch[2 * i + 1] * scratch[2 * i + 1]);
    return spectral_power_padded(scratch, len, n, scratch + n, env_power);
}

int spectral_defect_freqs(const struct spectral_bearing *b, float shaft_hz, float *out)
{
    if (!b || !out || b->n_elements < 3 || b->n_elements > 64 || !(b->ball_d > 0) ||
        !(b->pitch_d > b->ball_d) || !(b->contact_deg >= 0) || !(b->contact_deg <= 60) ||
        !(shaft_hz > 0))
        return SPECTRAL_EINVAL;
    float r = b->ball_d / b->pitch_d * cosf(b->contact_deg * TWO_PI / 360.0f);
    float z = (float)b->n_elements;
    out[SPECTRAL_BPFO] = 0.5f * z * shaft_hz * (1.0f - r);
    out[SPECTRAL_BPFI] = 0.5f * z * shaft_hz * (1.0f + r);
    out[SPECTRAL_BSF] = 0.5f * b->pitch_d / b->ball_d * shaft_hz * (1.0f - r * r);
    out[SPECTRAL_FTF] = 0.5f * shaft_hz * (1.0f - r);
    return SPECTRAL_OK;
}

float spectral_energy_at(const float *power, uint32_t n, float fs, float f, uint32_t halfwidth)
{
    float centre = f * (float)n / fs, e = 0;
    if (!(centre >= 0) || centre > (float)(n / 2) + (float)halfwidth)
        return 0;
    int64_t c = (int64_t)(centre + 0.5f);
    for (int64_t k = c - (int64_t)halfwidth; k <= c + (int64_t)halfwidth; k++)
        if (k >= 1 && k <= (int64_t)(n / 2))
            e += power[k];
    return e;
}

uint32_t spectral_feature_count(const struct spectral_config *c)
{
    uint32_t k = SPECTRAL_TIME_FEATURES + c->log_bands + SPECTRAL_SK_FEATURES;
    if (c->shaft_hz > 0) {
        k += c->order_bands;
        if (c->has_bearing)
            k += SPECTRAL_DEFECT_FEATURES;
    }
    return k;
}

size_t spectral_scratch_floats(const struct spectral_config *c)
{
    if (spectral_config_check(c) != 0)
        return 0;
    /* power (n/2+1) + envelope power (n/2+1) + SK (seg/2+1) + work (2n) */
    return (size_t)c->n * 3 + c->sk_seg / 2 + 3;
}

int spectral_config_check(const struct spectral_config *c)
{
    if (!c || !(c->fs > 0) || !isfinite(c->fs) || c->n < SPECTRAL_MIN_N || c->n > SPECTRAL_MAX_N ||
        !spectral_is_pow2(c->n) || c->log_bands > SPECTRAL_MAX_BANDS ||
        c->order_bands > SPECTRAL_MAX_BANDS || !(c->shaft_hz >= 0) || !(c->shaft_hz < c->fs / 2))
        return SPECTRAL_EINVAL;
    if (c->log_bands && (!(c->f_lo > 0) || !(c->f_lo < c->fs / 2)))
        return SPECTRAL_EINVAL;
    /* a frame of len samples pads to n, the next power of two */
    if (c->len != 0 && (c->len > c->n || c->len <= c->n / 2))
        return SPECTRAL_EINVAL;
    if (c->sk_seg < 8 || !spectral_is_pow2(c->sk_seg) ||
        c->sk_seg > (c->len ? c->len : c->n) / 4)
        return SPECTRAL_EINVAL;
    if (!(c->env_lo >= 0) || !(c->env_hi >= c->env_lo) || c->env_hi > c->fs / 2)
        return SPECTRAL_EINVAL;
    if (c->has_bearing) {
        float f[SPECTRAL_NDEFECTS];
        if (spectral_defect_freqs(&c->bearing, c->shaft_hz > 0 ? c->shaft_hz : 1.0f, f) != 0)
            return SPECTRAL_EINVAL;
    }
    return SPECTRAL_OK;
}

static float log_frac(float e, float total)
{
    float f = total > 0 ? e / total : 0;
    return log10f(f > FLOOR_FRAC ? f : FLOOR_FRAC);
}

/* rms, excess kurtosis and crest factor of the mean-removed frame. */
static void time_features(const float *x, uint32_t n, float *out)
{
    float mean = 0, m2 = 0, m4 = 0, peak = 0;
    for (uint32_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (float)n;
    for (uint32_t i = 0; i < n; i++) {
        float d = x[i] - mean, d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
        if (fabsf(d) > peak)
            peak = fabsf(d);
    }
    m2 /= (float)n;
    m4 /= (float)n;
    float rms = sqrtf(m2);
    out[0] = rms;
    out[1] = m2 > 0 ? m4 / (m2 * m2) - 3.0f : 0.0f;
    out[2] = rms > 0 ? peak / rms : 0.0f;
}

/* Envelope band: the configured one, else +-2 SK bins around the SK peak. */
static void envelope_band(const struct spectral_config *c, float sk_peak_hz, float *lo, float *hi)
{
    if (c->env_hi > 0) {
        *lo = c->env_lo;
        *hi = c->env_hi;
        return;
    }
    float bw = c->fs / (float)c->sk_seg;
    *lo = sk_peak_hz - 2.0f * bw;
    *hi = sk_peak_hz + 2.0f * bw;
    if (*lo < bw)
        *lo = bw;
    if (*hi > c->fs / 2 - bw)
        *hi = c->fs / 2 - bw;
    if (!(*hi > *lo))
        *hi = *lo + bw;
}

int spectral_features(const struct spectral_config *c, const float *x, float *scratch,
                      size_t scratch_floats, float *out)
{
    int rc = spectral_config_check(c);
    if (rc != 0 || !x || !scratch || !out)
        return SPECTRAL_EINVAL;
    if (scratch_floats < spectral_scratch_floats(c))
        return SPECTRAL_ESCRATCH;
    uint32_t n = c->n, len = c->len ? c->len : c->n, nbin = n / 2 + 1, k = 0;
    float *power = scratch, *env = power + nbin, *sk = env + nbin, *work = sk + c->sk_seg / 2 + 1;
    if ((rc = spectral_power_padded(x, len, n, work, power)) != 0)
        return rc;
    float total = 0;
    for (uint32_t b = 1; b < nbin; b++)
        total += power[b];
    float tmp[SPECTRAL_TIME_FEATURES + SPECTRAL_SK_FEATURES + SPECTRAL_DEFECT_FEATURES + 2 * SPECTRAL_MAX_BANDS];
    time_features(x, len, tmp);
    k = SPECTRAL_TIME_FEATURES;
    if (c->log_bands) {
        spectral_log_bands(power, n, c->fs, c->f_lo, c->fs / 2 + c->fs / (float)n, c->log_bands, tmp + k);
        for (uint32_t j = 0; j < c->log_bands; j++, k++)
            tmp[k] = log_frac(tmp[k], total);
    }
    if (c->shaft_hz > 0 && c->order_bands) {
        spectral_order_bands(power, n, c->fs, c->shaft_hz, c->order_bands, tmp + k);
        for (uint32_t j = 0; j < c->order_bands; j++, k++)
            tmp[k] = log_frac(tmp[k], total);
    }
    if ((rc = spectral_kurtosis(x, len, c->sk_seg, work, sk)) != 0)
        return rc;
    uint32_t best = 1;
    for (uint32_t b = 1; b < c->sk_seg / 2; b++)
        if (sk[b] > sk[best])
            best = b;
    tmp[k++] = sk[best];
    tmp[k++] = (float)best / (float)(c->sk_seg / 2);
    if (c->has_bearing && c->shaft_hz > 0) {
        float lo, hi, f[SPECTRAL_NDEFECTS], mean_env = 0;
        envelope_band(c, (float)best * c->fs / (float)c->sk_seg, &lo, &hi);
        if ((rc = spectral_envelope_padded(x, len, n, c->fs, lo, hi, work, env)) != 0)
            return rc;
        for (uint32_t b = 1; b < nbin; b++)
            mean_env += env[b];
        mean_env = mean_env / (float)(nbin - 1) * 5.0f;   /* over the 5 bins of one peak */
        spectral_defect_freqs(&c->bearing, c->shaft_hz, f);
        for (int d = 0; d < SPECTRAL_NDEFECTS; d++)
            for (int h = 1; h <= 2; h++)
                tmp[k++] = log_frac(spectral_energy_at(env, n, c->fs, (float)h * f[d], 2), mean_env);
    }
    memcpy(out, tmp, k * sizeof *out);
    return SPECTRAL_OK;
}
