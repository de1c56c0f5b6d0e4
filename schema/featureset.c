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
 * scales with its level. */
#include "schema/featureset.h"

#include <math.h>

#define TINY_ABS 9.094947017729282379150390625e-13    /* 2^-40 */
#define TINY_REL 9.5367431640625e-07                    /* 2^-20 */

unsigned featureset_per_channel(uint16_t id, uint16_t version)
{
#define X(fid, fver, per, name) if (id == fid && version == fver) return per;
    FEATURESET_LIST(X)
#undef X
    return 0;
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

    if (id == FEATURESET_STATS && version == FEATURESET_STATS_VERSION &&
        k < FEATURESET_STATS_NFEAT)
        return stats[k];
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
    if (spec->hop < 1 || spec->hop > spec->window)
        return "feature hop out of range (1..window)";
    if (!(spec->sample_rate > 0.0f) || !isfinite(spec->sample_rate))
        return "feature sample rate not a positive number";
    if (channels < 1 || channels > FEATURESET_MAX_CHANNELS)
        return "channel count out of range";
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

static void stats_channel(const float *x, uint32_t n, float out[FEATURESET_STATS_NFEAT])
{
    double m1 = 0.0, m2 = 0.0, m4 = 0.0, peak = 0.0, e_lo = 0.0, e_hi = 0.0, last = 0.0;
    double h0 = 0.0, h1 = 0.0, h2 = 0.0, var, c4, rms, tiny;
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
    var = m2 / (double)n;
    c4 = m4 / (double)n;
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

int featureset_compute(const struct featureset_spec *spec, const float *x, size_t stride,
                       unsigned channels, float *out)
{
    if (!spec || !x || !out)
        return FEATURESET_EINVAL;
    if (featureset_unsupported(spec, channels))
        return featureset_per_channel(spec->id, spec->version) ? FEATURESET_ERANGE
                                                               : FEATURESET_EUNKNOWN;
    if (stride < spec->window)
        return FEATURESET_ERANGE;
    for (unsigned c = 0; c < channels; c++)
        stats_channel(x + (size_t)c * stride, spec->window, out + (size_t)c * FEATURESET_STATS_NFEAT);
    return FEATURESET_OK;
}
