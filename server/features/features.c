/* features.c - time and frequency features of one channel, and the decode of
 * a stored envelope into them (pure: the worker that stores them is
 * features_worker.c).  The FFT is FFTW's (fftw3f): planning is not
 * thread-safe, so plans are made under one mutex; executing is. */
#include <errno.h>
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/features/features.h"
#include "server/features/features_int.h"
#include "server/srv/srv.h"

/* FFTW's planner is not thread-safe: every plan is made and destroyed under
 * this lock (features_spectrum.c too). */
pthread_mutex_t features__plan_lock = PTHREAD_MUTEX_INITIALIZER;

/* Plans and Hann windows kept by FFT size: planning a 5,000-point transform
 * (factoring, twiddle tables) and 5,000 cos() for its window took a fifth of
 * the server's CPU under ingest load, for a size every snapshot of a device
 * repeats.  Executing a kept plan on new arrays (fftwf_execute_dft_r2c) is
 * thread-safe; the arrays come from fftwf_alloc_*, so they have the
 * alignment the plan was made for.  Sizes beyond the slots are planned per
 * call as before.  Kept for the process's life (a few sizes, a few KB). */
#define PLAN_SLOTS 8

struct plan_slot {
    size_t nfft;
    fftwf_plan plan;
    double *window;
};

static struct plan_slot plan_slots[PLAN_SLOTS];

static double *hann_make(size_t nfft)
{
    double *w = malloc(nfft * sizeof *w);
    size_t k;

    for (k = 0; w && k < nfft; k++)
        w[k] = 0.5 - 0.5 * cos(2 * M_PI * (double)k / (double)(nfft - 1));
    return w;
}

/* The kept slot for nfft, made on first use; NULL when none is free. */
static const struct plan_slot *plan_get(size_t nfft, float *in, fftwf_complex *spec)
{
    const struct plan_slot *found = NULL;
    size_t i;

    pthread_mutex_lock(&features__plan_lock);
    for (i = 0; i < PLAN_SLOTS && !found; i++) {
        struct plan_slot *s = &plan_slots[i];

        if (s->nfft == nfft) {
            found = s;
        } else if (s->nfft == 0) {
            s->window = hann_make(nfft);
            /* FFTW_ESTIMATE does not write to the arrays it is given. */
            s->plan = s->window ? fftwf_plan_dft_r2c_1d((int)nfft, in, spec, FFTW_ESTIMATE) : NULL;
            if (!s->plan) {
                free(s->window);
                s->window = NULL;
                break;
            }
            s->nfft = nfft;
            found = s;
        }
    }
    pthread_mutex_unlock(&features__plan_lock);
    return found;
}

static int spectrum(const float *x, size_t n, double mean, double rate_hz,
                    struct feat_channel *out)
{
    size_t nfft = n > FEAT_FFT_MAX ? FEAT_FFT_MAX : n, nout = nfft / 2 + 1, k;
    float *in = fftwf_alloc_real(nfft);
    fftwf_complex *spec = fftwf_alloc_complex(nout);
    const struct plan_slot *kept = NULL;
    fftwf_plan plan = NULL;
    double *window = NULL;
    double total = 0, best = -1, nyq = rate_hz / 2;
    double bins[FEAT_BINS] = { 0 };
    int err = 0;

    if (!in || !spec) {
        err = -ENOMEM;
        goto out;
    }
    kept = plan_get(nfft, in, spec);
    if (!kept) {
        window = hann_make(nfft);
        pthread_mutex_lock(&features__plan_lock);
        plan = window ? fftwf_plan_dft_r2c_1d((int)nfft, in, spec, FFTW_ESTIMATE) : NULL;
        pthread_mutex_unlock(&features__plan_lock);
        if (!plan) {
            err = -ENOMEM;
            goto out;
        }
    }
    /* Hann window over the mean-removed signal: leakage from the window
     * edges would otherwise smear energy into every band. */
    for (k = 0; k < nfft; k++)
        in[k] = (float)((x[k] - mean) * (kept ? kept->window : window)[k]);
    fftwf_execute_dft_r2c(kept ? kept->plan : plan, in, spec);
    out->dominant_hz = 0;
    out->bin_hz = nyq / FEAT_BINS;
    for (k = 1; k < nout; k++) {
        double re = spec[k][0], im = spec[k][1], p = re * re + im * im;
        double f = (double)k * rate_hz / (double)nfft;
        size_t b = (size_t)(f / out->bin_hz);

        if (b >= FEAT_BINS)
            b = FEAT_BINS - 1;
        bins[b] += p;
        total += p;
        if (p > best) {
            best = p;
            out->dominant_hz = f;
        }
    }
    for (k = 0; k < FEAT_BINS; k++)
        out->spectrum[k] = total > 0 ? (float)(bins[k] / total) : 0.0f;
out:
    pthread_mutex_lock(&features__plan_lock);
    if (plan)
        fftwf_destroy_plan(plan);
    pthread_mutex_unlock(&features__plan_lock);
    free(window);
    fftwf_free(in);
    fftwf_free(spec);
    return err;
}

int features_compute(const float *x, size_t n, double rate_hz, struct feat_channel *out)
{
    double sum = 0, m2 = 0, m4 = 0, peak = 0, mean;
    size_t i;

    if (!x || n < 2 || !(rate_hz > 0) || !isfinite(rate_hz))
        return -EINVAL;
    for (i = 0; i < n; i++)
        sum += x[i];
    mean = sum / (double)n;
    for (i = 0; i < n; i++) {
        double d = x[i] - mean, a = fabs(x[i]);

        m2 += d * d;
        m4 += d * d * d * d;
        if (a > peak)
            peak = a;
    }
    m2 /= (double)n;
    m4 /= (double)n;
    out->mean = mean;
    out->std = sqrt(m2);
    out->rms = sqrt(m2 + mean * mean);
    out->peak = peak;
    out->crest = out->rms > 0 ? peak / out->rms : 0;
    out->kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0;
    return spectrum(x, n, mean, rate_hz, out);
}

double features_band_energy(const struct feat_channel *f, double lo_hz, double hi_hz)
{
    double e = 0;
    size_t b;

    if (!(hi_hz > lo_hz) || !(f->bin_hz > 0))
        return 0;
    for (b = 0; b < FEAT_BINS; b++) {
        double a = (double)b * f->bin_hz, z = a + f->bin_hz;
        double lo = lo_hz > a ? lo_hz : a, hi = hi_hz < z ? hi_hz : z;

        if (hi > lo)
            e += f->spectrum[b] * (hi - lo) / f->bin_hz;
    }
    return e;
}

int features_from_envelope(const uint8_t *buf, size_t len, struct feat_channel **out,
                           size_t *n_out)
{
    return features_from_envelope_ctx(NULL, buf, len, out, n_out);
}

int features_from_envelope_ctx(struct ZSTD_DCtx_s *dctx, const uint8_t *buf, size_t len,
                               struct feat_channel **out, size_t *n_out)
{
    struct wire_meta m;
    struct wire_view v;
    struct feat_channel *fc = NULL;
    void *raw = NULL;
    float *x = NULL;
    size_t bytes, per, c, i;
    int err = SRV_OK;

    if (wire_parse(buf, len, &m, &v) != 0)
        return SRV_EENVELOPE;
    bytes = wire_samples_bytes(&m);
    per = (size_t)m.pre_samples + m.post_samples;
    if (bytes == 0 || per < 2)
        return SRV_EENVELOPE;
    raw = malloc(bytes);
    x = malloc(per * sizeof *x);
    fc = calloc(m.channel_count, sizeof *fc);
    if (!raw || !x || !fc) {
        err = SRV_ENOMEM;
        goto out;
    }
    if ((dctx ? wire_decode_samples_ctx(dctx, &m, &v, raw, bytes)
              : wire_decode_samples(&m, &v, raw, bytes)) != 0) {
        err = SRV_EFRAME;
        goto out;
    }
    for (c = 0; c < m.channel_count; c++) {
        if (wire_channel_physical(&m, raw, (unsigned)c, x) != WIRE_OK) {   /* physical units */
            err = SRV_EFRAME;
            goto out;
        }
        for (i = 0; i < per; i++) {
            if (!isfinite(x[i]))
                x[i] = 0;   /* a NaN sample must not poison every feature */
        }
        memcpy(fc[c].name, m.channels[c].name, sizeof fc[c].name);
        fc[c].name[FEAT_NAME_MAX] = '\0';
        if (features_compute(x, per, m.sample_rate, &fc[c]) != 0) {
            err = SRV_ENOMEM;
            goto out;
        }
    }
    *out = fc;
    *n_out = m.channel_count;
    fc = NULL;
out:
    free(raw);
    free(x);
    free(fc);
    return err;
}
