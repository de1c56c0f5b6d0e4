/* codec.c - wire format v1 payload codec against plain zstd, in the same run.
 *
 * Simulated vibration (8 channels x 10 s at 10 kHz: a few sines, Gaussian
 * noise and decaying impulses), float32 and int16.  For each type it encodes
 * with wire_encode (every transform combination, and the default) and, as the
 * baseline, compresses the raw planar samples with ZSTD_compress level 3.
 * Each figure is the median of 5 runs; MB/s is raw sample bytes per second
 * (1 MB = 10^6 bytes).  Output lines: `codec <name> ratio=<x> mbps=<y>`; the
 * `<wire>/<baseline>` lines give wire's figures divided by the baseline's.
 *
 *   make BUILD=build/bench build/bench/bin/bench-codec && build/bench/bin/bench-codec
 */
#include "schema/wire.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#define CHANNELS 8
#define RATE 10000.0
#define SECONDS 10
#define SAMPLES ((size_t)(RATE * SECONDS))
#define RUNS 5

struct result {
    double ratio;
    double mbps;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic, good enough for noise */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double rng_uniform(void) { return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0; }

static double rng_gauss(void)
{
    double u = rng_uniform(), v = rng_uniform();
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* One channel of a machine: shaft at 29.5 Hz with harmonics, a gear mesh
 * tone, broadband noise, and an impulse train from a bearing defect that
 * rings a 3.2 kHz resonance.  Units: g. */
static void simulate(float *x, size_t n, int ch)
{
    double shaft = 29.5, mesh = shaft * 23, defect = shaft * 3.57;
    double gain = 1.0 + 0.15 * ch, noise = 0.02 * gain;
    double next_hit = 0.0, ring_amp = 0.0, ring_t = 0.0;

    for (size_t i = 0; i < n; i++) {
        double t = (double)i / RATE;
        double s = gain * (0.5 * sin(2 * M_PI * shaft * t + ch) +
                           0.2 * sin(2 * M_PI * 2 * shaft * t + 0.3 * ch) +
                           0.08 * sin(2 * M_PI * mesh * t));
        if (t >= next_hit) {
            ring_amp = 0.6 * gain * (0.7 + 0.6 * rng_uniform());
            ring_t = 0.0;
            next_hit = t + 1.0 / defect * (0.95 + 0.1 * rng_uniform());
        }
        s += ring_amp * exp(-ring_t * 900.0) * sin(2 * M_PI * 3200.0 * ring_t);
        ring_t += 1.0 / RATE;
        s += noise * rng_gauss();
        x[i] = (float)s;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static int bench_wire(const struct wire_meta *m, const void *samples, size_t bytes,
                      const uint8_t *sk, uint16_t flags, struct result *res)
{
    double t[RUNS];
    size_t len = 0;

    for (int r = 0; r < RUNS; r++) {
        uint8_t *env = NULL;
        double t0 = now_s();
        int rc = wire_encode_flags(m, samples, sk, 3, flags, &env, &len);
        t[r] = now_s() - t0;
        if (rc < 0) {
            fprintf(stderr, "bench-codec: wire_encode failed: %s\n", wire_strerror(rc));
            return -1;
        }
        free(env);
    }
    res->ratio = (double)bytes / (double)len;
    res->mbps = (double)bytes / 1e6 / median(t, RUNS);
    return 0;
}

static int bench_zstd(const void *samples, size_t bytes, struct result *res)
{
    size_t cap = ZSTD_compressBound(bytes), len = 0;
    void *dst = malloc(cap);
    double t[RUNS];

    if (!dst)
        return -1;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        len = ZSTD_compress(dst, cap, samples, bytes, 3);
        t[r] = now_s() - t0;
        if (ZSTD_isError(len)) {
            fprintf(stderr, "bench-codec: ZSTD_compress: %s\n", ZSTD_getErrorName(len));
            free(dst);
            return -1;
        }
    }
    free(dst);
    res->ratio = (double)bytes / (double)len;
    res->mbps = (double)bytes / 1e6 / median(t, RUNS);
    return 0;
}

static void print(const char *name, const struct result *r)
{
    printf("codec %s ratio=%.3f mbps=%.2f\n", name, r->ratio, r->mbps);
}

/* Where the encoder's time goes beyond zstd: the pure Ed25519 signature hashes
 * the whole envelope twice (SHA-512).  Also the reader's side: parse + verify +
 * decode.  Both in raw-sample MB/s so they compare with the lines above. */
static int bench_sign_decode(const struct wire_meta *m, const void *samples, size_t bytes,
                             const uint8_t *sk, const char *tname)
{
    uint8_t *env = NULL, sig[WIRE_SIG_LEN], pk[WIRE_PK_LEN];
    void *out = malloc(bytes);
    double ts[RUNS], td[RUNS];
    size_t len;
    struct result r;
    char name[96];
    int rc = -1;

    crypto_sign_ed25519_sk_to_pk(pk, sk);
    if (!out || wire_encode(m, samples, sk, 3, &env, &len) < 0)
        goto out;
    for (int i = 0; i < RUNS; i++) {
        struct wire_meta pm;
        struct wire_view v;
        double t0 = now_s();
        crypto_sign_ed25519_detached(sig, NULL, env, len - WIRE_SIG_LEN, sk);
        ts[i] = now_s() - t0;
        t0 = now_s();
        if (wire_parse(env, len, &pm, &v) < 0 || wire_verify(env, len, pk) < 0 ||
            wire_decode_samples(&pm, &v, out, bytes) < 0 || memcmp(out, samples, bytes) != 0) {
            fprintf(stderr, "bench-codec: decode of %s failed\n", tname);
            goto out;
        }
        td[i] = now_s() - t0;
    }
    r.ratio = (double)bytes / (double)len;
    r.mbps = (double)bytes / 1e6 / median(ts, RUNS);
    snprintf(name, sizeof name, "ed25519-sign-%s", tname);
    print(name, &r);
    r.mbps = (double)bytes / 1e6 / median(td, RUNS);
    snprintf(name, sizeof name, "wire-%s-decode", tname);
    print(name, &r);
    rc = 0;
out:
    free(env);
    free(out);
    return rc;
}

static const char *flag_name(uint16_t f)
{
    switch (f) {
    case 0: return "none";
    case WIRE_FLAG_DELTA: return "delta";
    case WIRE_FLAG_SHUFFLE: return "shuffle";
    default: return "delta+shuffle";
    }
}

static int bench_type(const char *tname, struct wire_meta *m, const void *samples,
                      const uint8_t *sk)
{
    size_t bytes = wire_samples_bytes(m);
    struct result base, def, r;
    char name[96];

    if (bench_zstd(samples, bytes, &base) < 0)
        return -1;
    snprintf(name, sizeof name, "zstd3-%s", tname);
    print(name, &base);
    for (uint16_t f = 0; f <= WIRE_FLAGS_KNOWN; f++) {
        if (bench_wire(m, samples, bytes, sk, f, &r) < 0)
            return -1;
        snprintf(name, sizeof name, "wire-%s-%s", tname, flag_name(f));
        print(name, &r);
    }
    if (bench_wire(m, samples, bytes, sk, WIRE_FLAGS_DEFAULT, &def) < 0)
        return -1;
    snprintf(name, sizeof name, "wire-%s", tname);
    print(name, &def);
    if (bench_sign_decode(m, samples, bytes, sk, tname) < 0)
        return -1;
    r.ratio = def.ratio / base.ratio;
    r.mbps = def.mbps / base.mbps;
    snprintf(name, sizeof name, "wire-%s/zstd3-%s", tname, tname);
    print(name, &r);
    return 0;
}

int main(void)
{
    static struct wire_meta m;
    uint8_t seed[32], pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];
    float *f = malloc(CHANNELS * SAMPLES * sizeof *f);
    int16_t *s = malloc(CHANNELS * SAMPLES * sizeof *s);
    int rc = 1;

    if (!f || !s || sodium_init() < 0)
        goto out;
    memset(seed, 7, sizeof seed);
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
    for (int c = 0; c < CHANNELS; c++)
        simulate(f + (size_t)c * SAMPLES, SAMPLES, c);
    /* int16 as from a +-16 g ADC: 2048 counts per g, noise ~ 40+ counts */
    for (size_t i = 0; i < CHANNELS * SAMPLES; i++) {
        double v = round(f[i] * 2048.0);
        s[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }

    strcpy(m.device_id, "bench-01");
    strcpy(m.detector, "bench");
    m.seq = 1;
    m.trigger_time_us = 1700000000000000;
    m.sample_rate = RATE;
    m.channel_count = CHANNELS;
    m.pre_samples = (uint32_t)SAMPLES / 2;
    m.post_samples = (uint32_t)SAMPLES - m.pre_samples;
    m.score = 0.9f;
    for (int c = 0; c < CHANNELS; c++) {
        snprintf(m.channels[c].name, sizeof m.channels[c].name, "acc%d", c);
        strcpy(m.channels[c].unit, "g");
    }
    printf("# %d channels x %zu samples at %.0f Hz, median of %d runs, zstd level 3\n",
           CHANNELS, SAMPLES, RATE, RUNS);
    m.sample_type = WIRE_F32;
    if (bench_type("f32", &m, f, sk) < 0)
        goto out;
    m.sample_type = WIRE_I16;
    if (bench_type("i16", &m, s, sk) < 0)
        goto out;
    rc = 0;
out:
    free(f);
    free(s);
    return rc;
}
