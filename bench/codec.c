/* codec.c - the snapshot codec (wire v2, and v1 for reference) against plain
 * zstd, in the same run.
 *
 * Corpus: the agent's simulator in ADC mode (agent/source/sim.c: a 6205
 * bearing's kinematics, resonances, noise, int16 codes of a +-16 g
 * converter), 3 axes x SECONDS at 12 kHz and at 48 kHz, with faults coming
 * and going; plus any float32 files given with --f32 (raw little-endian
 * float32, interleaved frames of CHANNELS columns).  The corpus is
 * simulated: the project is measured on real recordings from outside.
 *
 * For each set: plain zstd -3 of the raw planar samples (the baseline: its
 * compression and decompression speed), zstd -19 of the raw and of the
 * byte-shuffled samples (ratio), wire v1 (ratio, encode speed), wire v2
 * (ratio; encode with signature; parse + verify + decode; the predictor
 * transforms alone, both ways).  Speeds are raw sample MB/s (10^6 bytes),
 * median of --runs runs, one core.  Lines: `codec SET NAME ratio=X mbps=Y`;
 * `SET v2/...` lines divide by the same run's baseline.  With --dump DIR the
 * sets are also written for bench/codec.sh (flac --best, xz -9 and the zstd
 * command line): DIR/SET.i16 (interleaved int16, what flac reads) or
 * DIR/SET.f32, and DIR/SET.planar and DIR/SET.shuf (byte-shuffled planes).
 *
 *   make BUILD=build/bench build/bench/bin/bench-codec && build/bench/bin/bench-codec
 *   bench/codec.sh          (the whole comparison, with the command-line tools)
 */
#include "agent/source/source.h"
#include "schema/wire.h"
#include "schema/wire_int.h"

#include <getopt.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#define MAX_RUNS 31
#define AXES 3
#define FULL_SCALE_G 16.0

struct set {
    char name[64];
    uint8_t type;
    unsigned channels;
    size_t n;               /* samples per channel */
    double rate;
    void *planar;           /* host order, channel after channel */
    double scale;
};

static int g_runs = 5;

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

static size_t set_bytes(const struct set *s) { return s->n * s->channels * wire_sample_size(s->type); }

/* The simulator's bearing in ADC mode: 3 axes of int16 codes. */
static int sim_set(double rate, double seconds, struct set *out)
{
    struct sim_config sc = { .equipment = "bearing", .rate = rate, .seed = 15,
                             .fault_every_s = 4, .speed = 0, .duration_s = seconds,
                             .start_us = 1700000000000000, .adc_full_scale = FULL_SCALE_G };
    struct source *src;
    size_t n = (size_t)llround(rate * seconds), got = 0, k;
    float *blk = malloc(4096 * 4 * sizeof *blk);
    int64_t *ts = malloc(4096 * sizeof *ts);
    int16_t *pl = malloc(n * AXES * sizeof *pl);

    if (!blk || !ts || !pl || source_sim_open(&sc, &src) != 0)
        return -1;
    while (got < n && src->next(src, blk, ts, 4096, &k) == 0)
        for (size_t i = 0; i < k && got < n; i++, got++)
            for (unsigned a = 0; a < AXES; a++)
                pl[a * n + got] = (int16_t)blk[i * src->channels + a];
    out->scale = src->chan[0].scale;
    src->close(src);
    free(blk);
    free(ts);
    snprintf(out->name, sizeof out->name, "sim-i16-%gk", rate / 1000);
    out->type = WIRE_I16;
    out->channels = AXES;
    out->n = got;
    out->rate = rate;
    out->planar = pl;
    return got == n ? 0 : -1;
}

/* NAME=PATH:CHANNELS, raw float32 little-endian interleaved. */
static int f32_set(const char *arg, struct set *out)
{
    char name[64], path[512];
    unsigned ch;
    FILE *f;
    long len;
    float *in, *pl;

    if (sscanf(arg, "%63[^=]=%511[^:]:%u", name, path, &ch) != 3 || ch < 1 ||
        ch > WIRE_MAX_CHANNELS || !(f = fopen(path, "rb")))
        return -1;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    in = malloc((size_t)len);
    if (!in || fread(in, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    out->n = (size_t)len / 4 / ch;
    pl = malloc(out->n * ch * 4);
    for (size_t i = 0; i < out->n; i++)
        for (unsigned c = 0; c < ch; c++)
            pl[c * out->n + i] = in[i * ch + c];
    free(in);
    snprintf(out->name, sizeof out->name, "f32-%s", name);
    out->type = WIRE_F32;
    out->channels = ch;
    out->rate = 1000;
    out->planar = pl;
    out->scale = 1;
    return 0;
}

static void meta_for(const struct set *s, struct wire_meta *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->device_id, "bench-01");
    strcpy(m->detector, "bench");
    m->seq = 1;
    m->trigger_time_us = 1700000000000000;
    m->sample_rate = s->rate;
    m->sample_type = s->type;
    m->channel_count = (uint8_t)s->channels;
    m->pre_samples = (uint32_t)(s->n / 4);
    m->post_samples = (uint32_t)(s->n - m->pre_samples);
    m->score = 0.9f;
    for (unsigned c = 0; c < s->channels; c++) {
        snprintf(m->channels[c].name, sizeof m->channels[c].name, "acc%u", c);
        strcpy(m->channels[c].unit, "g");
        m->channels[c].scale = s->scale;
    }
}

static void shuffle(const struct set *s, uint8_t *dst)
{
    size_t size = wire_sample_size(s->type);
    const uint8_t *src = s->planar;

    for (unsigned c = 0; c < s->channels; c++)
        for (size_t i = 0; i < s->n; i++)
            for (size_t k = 0; k < size; k++)
                dst[(c * s->n * size) + k * s->n + i] = src[(c * s->n + i) * size + k];
}

static void line(const char *set, const char *name, double ratio, double mbps)
{
    if (mbps > 0)
        printf("codec %s %s ratio=%.4f mbps=%.1f\n", set, name, ratio, mbps);
    else
        printf("codec %s %s ratio=%.4f\n", set, name, ratio);
}

static int dump(const struct set *s, const char *dir, const uint8_t *shuf)
{
    char path[700];
    size_t size = wire_sample_size(s->type), bytes = set_bytes(s);
    uint8_t *il = malloc(bytes);
    FILE *f;

    for (size_t i = 0; i < s->n; i++)
        for (unsigned c = 0; c < s->channels; c++)
            memcpy(il + (i * s->channels + c) * size,
                   (const uint8_t *)s->planar + (c * s->n + i) * size, size);
    const struct { const char *ext; const void *p; } files[] = {
        { s->type == WIRE_I16 ? "i16" : "f32", il }, { "planar", s->planar }, { "shuf", shuf } };
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s.%s", dir, s->name, files[k].ext);
        if (!(f = fopen(path, "wb")) || fwrite(files[k].p, 1, bytes, f) != bytes) {
            fprintf(stderr, "bench-codec: cannot write %s\n", path);
            free(il);
            return -1;
        }
        fclose(f);
    }
    printf("# %s: %u channels x %zu samples at %g Hz -> %s/%s.*\n", s->name, s->channels, s->n,
           s->rate, dir, s->name);
    free(il);
    return 0;
}

/* Plain zstd at level: ratio, and compression / decompression MB/s. */
static int zstd_plain(const void *src, size_t bytes, int level, int timed, double *ratio,
                      double *cmbps, double *dmbps)
{
    size_t cap = ZSTD_compressBound(bytes), len = 0;
    void *dst = malloc(cap), *back = malloc(bytes);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    double tc[MAX_RUNS], td[MAX_RUNS];
    int runs = timed ? g_runs : 1;

    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        len = ZSTD_compressCCtx(cc, dst, cap, src, bytes, level);
        tc[r] = now_s() - t0;
        t0 = now_s();
        size_t d = ZSTD_decompressDCtx(dc, back, bytes, dst, len);
        td[r] = now_s() - t0;
        if (ZSTD_isError(len) || d != bytes)
            return -1;
    }
    *ratio = (double)bytes / (double)len;
    *cmbps = bytes / 1e6 / median(tc, runs);
    *dmbps = bytes / 1e6 / median(td, runs);
    free(dst);
    free(back);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
    return 0;
}

struct v2_figures {
    double ratio, enc, dec, fwd, inv, sign;
};

/* wire v2 through the caller-buffer API, as the agent and a server worker
 * run it: contexts and buffers made once, reused for every run. */
static int bench_v2(const struct set *s, const uint8_t *sk, const uint8_t *pk,
                    struct v2_figures *fig)
{
    struct wire_meta m, pm;
    struct wire_view v;
    size_t scap, ocap, len = 0, dcap, bytes = set_bytes(s), size = wire_sample_size(s->type);
    uint8_t *scratch, *env, *dscratch, *out, sig[WIRE_SIG_LEN];
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    double te[MAX_RUNS], td[MAX_RUNS], tf[MAX_RUNS], ti[MAX_RUNS], tsg[MAX_RUNS];
    size_t rec, side;
    int rc = -1;

    meta_for(s, &m);
    scap = wire_encode_v2_scratch_bound(&m);
    ocap = wire_encode_v2_bound(&m);
    scratch = malloc(scap);
    env = malloc(ocap);
    out = malloc(bytes);
    if (!scratch || !env || !out)
        return -1;
    for (int r = 0; r < g_runs; r++) {
        double t0 = now_s();
        if (wire_encode_v2_ctx(cc, &m, s->planar, sk, 0, WIRE_FLAGS_V2_DEFAULT, scratch, scap,
                               env, ocap, &len) != WIRE_OK)
            return -1;
        te[r] = now_s() - t0;
    }
    if (wire_parse(env, len, &pm, &v) != WIRE_OK)
        return -1;
    dcap = wire_decode_scratch_bound(&pm);
    dscratch = malloc(dcap);
    for (int r = 0; r < g_runs; r++) {
        double t0 = now_s();
        if (wire_parse(env, len, &pm, &v) != WIRE_OK || wire_verify(env, len, pk) != WIRE_OK ||
            wire_decode_samples_scratch(dc, &pm, &v, dscratch, dcap, out, bytes) != WIRE_OK)
            goto out;
        td[r] = now_s() - t0;
        if (memcmp(out, s->planar, bytes) != 0) {
            fprintf(stderr, "bench-codec: %s does not decode to its input\n", s->name);
            goto out;
        }
        t0 = now_s();
        crypto_sign_ed25519_detached(sig, NULL, env, len - WIRE_SIG_LEN, sk);
        tsg[r] = now_s() - t0;
    }
    /* the transforms alone, both ways, on the same buffers */
    rec = wire__blocks(s->n, WIRE_BLOCK_LOG_DEFAULT) * WIRE_BLOCK_HDR_LEN;
    side = rec * s->channels;
    for (int r = 0; r < g_runs; r++) {
        double t0 = now_s();
        for (unsigned c = 0; c < s->channels; c++)
            wire__predict_plane((const uint8_t *)s->planar + c * s->n * size, s->n, s->type,
                                WIRE_BLOCK_LOG_DEFAULT, 1, WIRE_ENCODE_ORDER, scratch + c * rec,
                                scratch + side + c * s->n * size, dscratch);
        tf[r] = now_s() - t0;
        t0 = now_s();
        for (unsigned c = 0; c < s->channels; c++)
            if (wire__unpredict_plane(scratch + c * rec, scratch + side + c * s->n * size, s->n,
                                      s->type, WIRE_BLOCK_LOG_DEFAULT, 1, out + c * s->n * size,
                                      dscratch + ((side + bytes + 15) & ~(size_t)15)) != 0)
                goto out;
        ti[r] = now_s() - t0;
    }
    fig->ratio = (double)bytes / (double)len;
    fig->enc = bytes / 1e6 / median(te, g_runs);
    fig->dec = bytes / 1e6 / median(td, g_runs);
    fig->fwd = bytes / 1e6 / median(tf, g_runs);
    fig->inv = bytes / 1e6 / median(ti, g_runs);
    fig->sign = bytes / 1e6 / median(tsg, g_runs);
    rc = memcmp(out, s->planar, bytes) == 0 ? 0 : -1;
out:
    free(dscratch);
    free(scratch);
    free(env);
    free(out);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
    return rc;
}

static int bench_v1(const struct set *s, const uint8_t *sk, double *ratio, double *mbps)
{
    struct wire_meta m;
    uint8_t *env = NULL;
    size_t len = 0;
    double t[MAX_RUNS];

    meta_for(s, &m);
    for (int r = 0; r < g_runs; r++) {
        double t0 = now_s();
        if (wire_encode(&m, s->planar, sk, 3, &env, &len) != WIRE_OK)
            return -1;
        t[r] = now_s() - t0;
        free(env);
    }
    *ratio = (double)set_bytes(s) / (double)len;
    *mbps = set_bytes(s) / 1e6 / median(t, g_runs);
    return 0;
}

static int bench_set(const struct set *s, const uint8_t *sk, const uint8_t *pk, const char *dir)
{
    size_t bytes = set_bytes(s);
    uint8_t *shuf = malloc(bytes);
    double z3, z3c, z3d, z19, z19s, dummy, v1r, v1e;
    struct v2_figures f;
    char nm[96];

    if (!shuf)
        return -1;
    shuffle(s, shuf);
    if (dir && dump(s, dir, shuf) < 0)
        return -1;
    if (zstd_plain(s->planar, bytes, 3, 1, &z3, &z3c, &z3d) < 0 ||
        zstd_plain(s->planar, bytes, 19, 0, &z19, &dummy, &dummy) < 0 ||
        zstd_plain(shuf, bytes, 19, 0, &z19s, &dummy, &dummy) < 0 ||
        bench_v1(s, sk, &v1r, &v1e) < 0 || bench_v2(s, sk, pk, &f) < 0) {
        fprintf(stderr, "bench-codec: %s failed\n", s->name);
        free(shuf);
        return -1;
    }
    line(s->name, "zstd3-compress", z3, z3c);
    line(s->name, "zstd3-decompress", z3, z3d);
    line(s->name, "zstd19-raw", z19, 0);
    line(s->name, "zstd19-shuffled", z19s, 0);
    line(s->name, "wire-v1-encode", v1r, v1e);
    line(s->name, "wire-v2-encode", f.ratio, f.enc);
    line(s->name, "wire-v2-decode", f.ratio, f.dec);
    line(s->name, "wire-v2-predict", 0, f.fwd);
    line(s->name, "wire-v2-unpredict", 0, f.inv);
    line(s->name, "ed25519-sign", 0, f.sign);
    snprintf(nm, sizeof nm, "%s v2/zstd3", s->name);
    printf("%s encode=%.3f decode=%.3f ratio=%.3f v2/zstd19-shuffled ratio=%.3f\n", nm,
           f.enc / z3c, f.dec / z3d, f.ratio / z3, f.ratio / z19s);
    fflush(stdout);
    free(shuf);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench-codec [--seconds S] [--runs N] [--dump DIR] "
                    "[--f32 NAME=PATH:CHANNELS]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "seconds", required_argument, NULL, 's' }, { "runs", required_argument, NULL, 'r' },
        { "dump", required_argument, NULL, 'd' }, { "f32", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 } };
    static const double rates[] = { 12000, 48000 };
    uint8_t seed[32], pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];
    const char *dir = NULL, *f32[16];
    int nf = 0, o;
    double seconds = 10;
    struct set s;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 's' && (seconds = atof(optarg)) > 0 && seconds <= 600)
            continue;
        if (o == 'r' && (g_runs = atoi(optarg)) >= 1 && g_runs <= MAX_RUNS)
            continue;
        if (o == 'd') {
            dir = optarg;
            continue;
        }
        if (o == 'f' && nf < 16) {
            f32[nf++] = optarg;
            continue;
        }
        return usage();
    }
    if (sodium_init() < 0)
        return 1;
    memset(seed, 7, sizeof seed);
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
    printf("# corpus: SIMULATED bearing vibration (agent simulator, ADC mode, +-%g g int16), "
           "%g s x %d axes per rate; float32 sets as given.  Median of %d runs, one core.\n",
           FULL_SCALE_G, seconds, AXES, g_runs);
    for (size_t r = 0; r < 2; r++) {
        if (sim_set(rates[r], seconds, &s) < 0 || bench_set(&s, sk, pk, dir) < 0)
            return 1;
        free(s.planar);
    }
    for (int i = 0; i < nf; i++) {
        if (f32_set(f32[i], &s) < 0) {
            fprintf(stderr, "bench-codec: cannot read --f32 %s\n", f32[i]);
            return 1;
        }
        if (bench_set(&s, sk, pk, dir) < 0)
            return 1;
        free(s.planar);
    }
    return 0;
}
