/* features_spectrum.c - GET /api/v1/snapshots/{id}/spectrum: what a
 * vibration analyst reads to name a fault, per channel and over a span of
 * the snapshot: the amplitude spectrum and the envelope spectrum, with the
 * frequencies to look for when the machine's kinematics are known.
 *
 * Amplitude spectrum: mean removed, Hann window, |X(f)| scaled to the
 * amplitude of a sine in the channel's unit.  Envelope spectrum: the band
 * [env_lo_hz, env_hi_hz] (default rate/8 to Nyquist, where bearing impacts
 * ring the structure) of the analytic signal, its magnitude (the envelope),
 * mean removed, transformed again: the repetition rate of impacts shows as
 * lines at BPFO, BPFI, ... that the plain spectrum hides under the
 * resonance.  Both are folded into `bins` columns keeping each column's
 * maximum, so a line shows at any width, as the waveform's min/max does.
 *
 * Markers come from the device's asset, else its equipment type
 * (migration 0056): shaft harmonics 1x..5x and, with a bearing, BPFO, BPFI,
 * BSF and FTF from the usual kinematic formulas. */
#include <fftw3.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/features/features.h"
#include "server/features/features_int.h"
#include "server/ingest/ingest.h"
#include "server/labels/labels.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

#define SPEC_BINS_DEFAULT 512
#define SPEC_BINS_MAX 4096

enum { SQ_KINEMATICS, SQ_COUNT };

static const struct db_sql spec_sql[SQ_COUNT] = {
    /* $1 snapshot: the kinematics of its device (migration 0083: its asset's,
     * else its type's) */
    [SQ_KINEMATICS] = { "features_kinematics",
        "SELECT k.equipment_type, k.asset_id, k.shaft_hz, k.shaft_from, k.bearing_from,"
        " k.balls, k.ball_mm, k.pitch_mm, k.contact_deg"
        " FROM snapshots s JOIN device_kinematics k ON k.device_id = s.device_id"
        " WHERE s.id = $1::bigint", 1 },
};

/* What the request asks for, bounded.  channel: NULL for every channel,
 * else only the channels of that name (none when there is no such channel:
 * a reference snapshot may lack the one shown). */
struct spec_req {
    double from_s, to_s, env_lo, env_hi;
    int bins;
    const char *channel;
};

static int query_num(const struct srv_request *rq, const char *key, double *v)
{
    const char *s = rq->query ? rq->query(rq, key) : NULL;
    char *end;

    if (!s || !*s)
        return 1;
    *v = strtod(s, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

static int parse_req(const struct srv_request *rq, struct spec_req *q, struct srv_response *rs)
{
    double b = SPEC_BINS_DEFAULT;

    q->from_s = 0;
    q->to_s = INFINITY;
    q->env_lo = q->env_hi = NAN;
    if (query_num(rq, "from_s", &q->from_s) < 0 || query_num(rq, "to_s", &q->to_s) < 0 ||
        q->from_s < 0 || !(q->to_s > q->from_s))
        return srv_fail(rs, SRV_EBADREQ, "from_s and to_s must be seconds, from_s < to_s");
    if (query_num(rq, "bins", &b) < 0 || b < 16 || b > SPEC_BINS_MAX || b != floor(b))
        return srv_fail(rs, SRV_EBADREQ, "bins must be an integer in 16..4096");
    q->bins = (int)b;
    if (query_num(rq, "env_lo_hz", &q->env_lo) < 0 || query_num(rq, "env_hi_hz", &q->env_hi) < 0)
        return srv_fail(rs, SRV_EBADREQ, "env_lo_hz and env_hi_hz must be numbers");
    q->channel = rq->query ? rq->query(rq, "channel") : NULL;
    if (q->channel && !*q->channel)
        q->channel = NULL;
    if (q->channel && strlen(q->channel) > WIRE_MAX_NAME)
        return srv_fail(rs, SRV_EBADREQ, "channel must be a channel's name");
    return SRV_OK;
}

/* |z| of spec[0..nout) folded into bins columns over 0..nyquist, each the
 * column's maximum.  An array of bins numbers. */
static json_t *fold(const float *mag, size_t nout, int bins)
{
    json_t *a = json_array();
    int c;

    for (c = 0; c < bins; c++) {
        size_t k0 = (size_t)((double)c * (double)nout / bins);
        size_t k1 = (size_t)((double)(c + 1) * (double)nout / bins), k;
        float m = 0;

        if (k1 <= k0)
            k1 = k0 + 1;
        for (k = k0; k < k1 && k < nout; k++)
            if (mag[k] > m)
                m = mag[k];
        json_array_append_new(a, json_real(m));
    }
    return a;
}

/* FFTW work buffers for n samples, planned once per request. */
struct spec_fft {
    size_t n, nout;
    float *in, *mag;
    fftwf_complex *spec, *full;
    fftwf_plan fwd, inv;
};

static void fft_release(struct spec_fft *f)
{
    pthread_mutex_lock(&features__plan_lock);
    if (f->fwd)
        fftwf_destroy_plan(f->fwd);
    if (f->inv)
        fftwf_destroy_plan(f->inv);
    pthread_mutex_unlock(&features__plan_lock);
    fftwf_free(f->in);
    fftwf_free(f->spec);
    fftwf_free(f->full);
    free(f->mag);
}

static int fft_init(struct spec_fft *f, size_t n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->nout = n / 2 + 1;
    f->in = fftwf_alloc_real(n);
    f->spec = fftwf_alloc_complex(f->nout);
    f->full = fftwf_alloc_complex(n);
    f->mag = malloc(n * sizeof *f->mag);
    if (!f->in || !f->spec || !f->full || !f->mag)
        return SRV_ENOMEM;
    pthread_mutex_lock(&features__plan_lock);
    f->fwd = fftwf_plan_dft_r2c_1d((int)n, f->in, f->spec, FFTW_ESTIMATE);
    f->inv = fftwf_plan_dft_1d((int)n, f->full, f->full, FFTW_BACKWARD, FFTW_ESTIMATE);
    pthread_mutex_unlock(&features__plan_lock);
    return f->fwd && f->inv ? SRV_OK : SRV_ENOMEM;
}

/* Amplitude spectrum of x[0..n) into f->mag (f->nout values): Hann window,
 * scaled so a sine of amplitude A reads A. */
static void amplitude(struct spec_fft *f, const float *x)
{
    double mean = 0, wsum = 0;
    size_t k;

    for (k = 0; k < f->n; k++)
        mean += x[k];
    mean /= (double)f->n;
    for (k = 0; k < f->n; k++) {
        double w = 0.5 - 0.5 * cos(2 * M_PI * (double)k / (double)(f->n - 1));

        f->in[k] = (float)((x[k] - mean) * w);
        wsum += w;
    }
    fftwf_execute(f->fwd);
    for (k = 0; k < f->nout; k++)
        f->mag[k] = (float)(2.0 * hypot(f->spec[k][0], f->spec[k][1]) / (wsum > 0 ? wsum : 1));
}

/* Envelope spectrum: the analytic signal of band [lo, hi] Hz (from the
 * spectrum f->spec of the last amplitude() call, unwindowed would be exact;
 * the Hann window only tapers the envelope's ends), its magnitude, then the
 * amplitude spectrum of that. */
static void envelope(struct spec_fft *f, double rate, double lo, double hi)
{
    size_t k, n = f->n;

    for (k = 0; k < n; k++)
        f->full[k][0] = f->full[k][1] = 0;
    for (k = 1; k < f->nout; k++) {
        double hz = (double)k * rate / (double)n;

        if (hz >= lo && hz <= hi && 2 * k != n) {
            f->full[k][0] = 2 * f->spec[k][0];
            f->full[k][1] = 2 * f->spec[k][1];
        }
    }
    fftwf_execute(f->inv);
    for (k = 0; k < n; k++)
        f->mag[k] = (float)(hypot(f->full[k][0], f->full[k][1]) / (double)n);
    memcpy(f->in, f->mag, n * sizeof *f->in);
    amplitude(f, f->in);
}

void features_bearing_tones(const struct feat_bearing *b, double fr, double out[4])
{
    double g = b->ball_mm / b->pitch_mm * cos(b->contact_deg * M_PI / 180);

    out[0] = b->balls / 2.0 * fr * (1 - g);
    out[1] = b->balls / 2.0 * fr * (1 + g);
    out[2] = b->pitch_mm / (2 * b->ball_mm) * fr * (1 - g * g);
    out[3] = fr / 2 * (1 - g);
}

/* Markers from the kinematics row: shaft harmonics and bearing tones. */
static json_t *kinematics_json(const PGresult *r)
{
    json_t *marks = json_array(), *bearing = json_null();
    double fr = db_isnull(r, 0, "shaft_hz") ? 0 : db_double(r, 0, "shaft_hz");
    int h;

    for (h = 1; fr > 0 && h <= 5; h++) {
        char name[8];

        snprintf(name, sizeof name, "%dx", h);
        json_array_append_new(marks, json_pack("{s:s,s:f,s:s}", "name", name, "hz", h * fr,
                                               "kind", "shaft"));
    }
    if (fr > 0 && !db_isnull(r, 0, "balls")) {
        static const char *const names[4] = { "BPFO", "BPFI", "BSF", "FTF" };
        const struct feat_bearing b = { (int)db_int64(r, 0, "balls"), db_double(r, 0, "ball_mm"),
                                        db_double(r, 0, "pitch_mm"),
                                        db_double(r, 0, "contact_deg") };
        double hz[4];
        int i;

        features_bearing_tones(&b, fr, hz);
        for (i = 0; i < 4; i++)
            json_array_append_new(marks, json_pack("{s:s,s:f,s:s}", "name", names[i], "hz", hz[i],
                                                   "kind", "bearing"));
        json_decref(bearing);
        bearing = json_pack("{s:i,s:f,s:f,s:f,s:s}", "balls", b.balls, "ball_mm", b.ball_mm,
                            "pitch_mm", b.pitch_mm, "contact_deg", b.contact_deg, "from",
                            db_text_or(r, 0, "bearing_from", ""));
    }
    return json_pack("{s:o,s:s?,s:o,s:o}", "shaft_hz", fr > 0 ? json_real(fr) : json_null(),
                     "shaft_from", db_text(r, 0, "shaft_from"), "bearing", bearing,
                     "markers", marks);
}

/* Channel c of the decoded samples, from sample i0, n of them, as float. */
static void channel_floats(const struct wire_meta *m, const void *raw, size_t c, size_t i0,
                           size_t n, float *x)
{
    size_t per = (size_t)m->pre_samples + m->post_samples, i;

    for (i = 0; i < n; i++) {
        size_t at = c * per + i0 + i;

        switch (m->sample_type) {
        case WIRE_I16: x[i] = (float)((const int16_t *)raw)[at]; break;
        case WIRE_I32: x[i] = (float)((const int32_t *)raw)[at]; break;
        default: x[i] = ((const float *)raw)[at]; break;
        }
        if (!isfinite(x[i]))
            x[i] = 0;
    }
}

/* Every channel's two spectra over [i0, i0 + n) of the decoded samples. */
static int channels_json(const struct wire_meta *m, const void *raw, size_t i0, size_t n,
                         const struct spec_req *q, json_t *out)
{
    struct spec_fft f;
    double nyq = m->sample_rate / 2;
    double lo = isnan(q->env_lo) ? m->sample_rate / 8 : q->env_lo;
    double hi = isnan(q->env_hi) ? nyq : q->env_hi;
    float *x = malloc(n * sizeof *x);
    json_t *chans = json_array();
    size_t c;
    int err = fft_init(&f, n);

    for (c = 0; err == SRV_OK && x && c < m->channel_count; c++) {
        json_t *spec, *env;

        /* two FFTs of the span per channel: only the one asked for */
        if (q->channel && strcmp(q->channel, m->channels[c].name) != 0)
            continue;

        channel_floats(m, raw, c, i0, n, x);
        amplitude(&f, x);
        spec = fold(f.mag, f.nout, q->bins);
        envelope(&f, m->sample_rate, lo, hi);
        env = fold(f.mag, f.nout, q->bins);
        json_array_append_new(chans, json_pack("{s:s,s:s,s:o,s:o}", "name", m->channels[c].name,
                                               "unit", m->channels[c].unit, "spectrum", spec,
                                               "envelope", env));
    }
    if (!x)
        err = SRV_ENOMEM;
    fft_release(&f);
    free(x);
    if (err == SRV_OK)
        json_object_set_new(out, "channels", chans);
    else
        json_decref(chans);
    json_object_set_new(out, "envelope_band_hz", json_pack("[f,f]", lo, hi));
    json_object_set_new(out, "bin_hz", json_real(nyq / q->bins));
    return err;
}

int features_api_spectrum(struct srv_request *rq, struct srv_response *rs)
{
    struct spec_req q;
    struct wire_meta m;
    struct wire_view v;
    PGresult *r = NULL, *k = NULL;
    const uint8_t *env = NULL;
    size_t len = 0, per, bytes, i0, i1;
    void *raw = NULL, *held = NULL;
    const struct wire_meta *held_m = NULL;
    const void *held_samples = NULL;
    char idb[24];
    const char *vals[1] = { idb };
    json_t *out = NULL;
    int64_t id;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no such snapshot");
    if ((err = parse_req(rq, &q, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    /* The spectra follow the waveform view, which holds the snapshot's
     * decoded samples: when their codes are the values (no scale or offset,
     * so they are the very samples decoded below), read those instead of
     * the stored envelope, a read and a decode of megabytes per request. */
    if ((err = labels_samples_cached(idb, &held_m, &held_samples, &held, rs)) != SRV_OK)
        return err;
    if (held && !wire_is_identity_calibration(held_m)) {
        labels_samples_release(held);
        held = NULL;
    }
    if (held) {
        m = *held_m;
        goto decoded;
    }
    if ((err = ingest_stored(id, &r, &env, &len)) != SRV_OK) {
        PQclear(r);
        return err == SRV_ENOTFOUND ? srv_fail(rs, err, "no such snapshot") : err;
    }
    if (wire_parse(env, len, &m, &v) != 0 || (bytes = wire_samples_bytes(&m)) == 0) {
        err = SRV_EENVELOPE;
        goto out;
    }
    if (!(raw = malloc(bytes))) {
        err = SRV_ENOMEM;
        goto out;
    }
    if (wire_decode_samples(&m, &v, raw, bytes) != 0) {
        err = SRV_EFRAME;
        goto out;
    }
decoded:
    per = (size_t)m.pre_samples + m.post_samples;
    i0 = (size_t)fmin(floor(q.from_s * m.sample_rate), (double)per);
    i1 = (size_t)fmin(ceil(fmin(q.to_s, 1e9) * m.sample_rate), (double)per);
    if (i1 > i0 + FEAT_FFT_MAX)
        i1 = i0 + FEAT_FFT_MAX;
    if (i1 < i0 + 16) {
        err = srv_fail(rs, SRV_EBADREQ, "the span holds fewer than 16 samples");
        goto out;
    }
    if ((err = db_exec_own(&spec_sql[SQ_KINEMATICS], vals, NULL, NULL, 0, &k)) != SRV_OK)
        goto out;
    out = json_pack("{s:I,s:f,s:f,s:f,s:o}", "snapshot_id", (json_int_t)id, "sample_rate",
                    m.sample_rate, "from_s", (double)i0 / m.sample_rate, "to_s",
                    (double)i1 / m.sample_rate,
                    "kinematics", PQntuples(k) == 1 ? kinematics_json(k) : json_null());
    if (!out)
        err = SRV_ENOMEM;
    else if ((err = channels_json(&m, held ? held_samples : raw, i0, i1 - i0, &q, out)) == SRV_OK) {
        err = srv_respond_json_take(rs, 200, out);
        out = NULL;
    }
out:
    json_decref(out);
    free(raw);
    labels_samples_release(held);
    PQclear(k);
    PQclear(r);
    return err;
}
