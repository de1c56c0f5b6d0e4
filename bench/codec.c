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
 * (ratio; encode with signature; parse + verify + decode, and without the
 * verify; the predictor transforms alone, both ways; the signature alone).
 * Speeds are raw sample MB/s (10^6 bytes) of the process's CPU time (the
 * machine is shared: time spent descheduled is not the codec's), median of
 * --runs rounds, one core; each round runs every operation once,
 * interleaved.  Lines: `codec
 * SET NAME ratio=X mbps=Y`; the `SET v2/zstd3` line gives the medians of the
 * per-round speed ratios against the baseline.  With --dump DIR the
 * sets are also written for bench/codec.sh (flac --best, xz -9 and the zstd
 * command line): DIR/SET.i16 (interleaved int16, what flac reads) or
 * DIR/SET.f32, and DIR/SET.planar and DIR/SET.shuf (byte-shuffled planes).
 *
 *   make BUILD=build/bench build/bench/bin/bench-codec && build/bench/bin/bench-codec
 *   bench/codec.sh          (the whole comparison, with the command-line tools)
 */
#include "agent/source/source.h"
#include "bench/bench.h"
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
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);   /* CPU time: a loaded machine descheduling us does not count */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
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
    snprintf(out->name, sizeof out->name, "f32-%.59s", name);
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

/* zstd's ratio at level (one run, untimed: the strong levels are slow). */
static double zstd_ratio(const void *src, size_t bytes, int level)
{
    size_t cap = ZSTD_compressBound(bytes), len;
    void *dst = malloc(cap);

    len = dst ? ZSTD_compress(dst, cap, src, bytes, level) : 0;
    free(dst);
    return dst && !ZSTD_isError(len) ? (double)bytes / (double)len : 0;
}

/* What is timed, once per round; the rounds interleave them, so a burst of
 * load on the machine hits all alike, and the ratios against the baseline
 * are taken within each round before the median. */
enum op { ZSTD3_C, ZSTD3_D, V1_ENC, V2_ENC, V2_DEC, V2_DEC_NOVERIFY, V2_FWD, V2_INV, SIGN, OPS };
static const char *const op_names[OPS] = {
    "zstd3-compress", "zstd3-decompress", "wire-v1-encode", "wire-v2-encode", "wire-v2-decode",
    "wire-v2-decode-noverify", "wire-v2-predict", "wire-v2-unpredict", "ed25519-sign" };

struct bench {
    const struct set *s;
    struct wire_meta m, pm;
    struct wire_view v;
    const uint8_t *sk, *pk;
    size_t bytes, scap, ocap, dcap, len, z3len, v1len, rec, side;
    uint8_t *scratch, *env, *dscratch, *out, *z3, *v1env, *v1scratch;
    ZSTD_CCtx *cc, *cc1, *cc3;
    ZSTD_DCtx *dc, *dc3;
};

static int bench_open(struct bench *b, const struct set *s, const uint8_t *sk, const uint8_t *pk)
{
    memset(b, 0, sizeof *b);
    b->s = s;
    b->sk = sk;
    b->pk = pk;
    b->bytes = set_bytes(s);
    meta_for(s, &b->m);
    b->scap = wire_encode_v2_scratch_bound(&b->m);
    b->ocap = wire_encode_v2_bound(&b->m);
    b->scratch = malloc(b->scap);
    b->env = malloc(b->ocap);
    b->out = malloc(b->bytes);
    b->z3 = malloc(ZSTD_compressBound(b->bytes));
    b->v1env = malloc(wire_encode_bound(b->bytes));
    b->v1scratch = malloc(b->bytes);
    b->cc = ZSTD_createCCtx();
    b->cc1 = ZSTD_createCCtx();
    b->cc3 = ZSTD_createCCtx();
    b->dc = ZSTD_createDCtx();
    b->dc3 = ZSTD_createDCtx();
    if (!b->scratch || !b->env || !b->out || !b->z3 || !b->v1env || !b->v1scratch ||
        wire_encode_v2_ctx(b->cc, &b->m, s->planar, sk, 0, WIRE_FLAGS_V2_DEFAULT, b->scratch,
                           b->scap, b->env, b->ocap, &b->len) != WIRE_OK ||
        wire_parse(b->env, b->len, &b->pm, &b->v) != WIRE_OK)
        return -1;
    b->dcap = wire_decode_scratch_bound(&b->pm);
    b->dscratch = malloc(b->dcap);
    b->rec = wire__blocks(s->n, WIRE_BLOCK_LOG_DEFAULT) * WIRE_BLOCK_HDR_LEN;
    b->side = b->rec * s->channels;
    return b->dscratch ? 0 : -1;
}

static void bench_close(struct bench *b)
{
    free(b->scratch), free(b->env), free(b->out), free(b->z3), free(b->v1env);
    free(b->v1scratch), free(b->dscratch);
    ZSTD_freeCCtx(b->cc), ZSTD_freeCCtx(b->cc1), ZSTD_freeCCtx(b->cc3);
    ZSTD_freeDCtx(b->dc), ZSTD_freeDCtx(b->dc3);
}

/* One run of op; returns seconds, or a negative value on failure. */
static double bench_op(struct bench *b, enum op op)
{
    const struct set *s = b->s;
    size_t size = wire_sample_size(s->type), r;
    uint8_t sig[WIRE_SIG_LEN];
    double t0 = now_s();
    int ok = 1;

    switch (op) {
    case ZSTD3_C:
        b->z3len = ZSTD_compressCCtx(b->cc3, b->z3, ZSTD_compressBound(b->bytes), s->planar,
                                     b->bytes, 3);
        ok = !ZSTD_isError(b->z3len);
        break;
    case ZSTD3_D:
        r = ZSTD_decompressDCtx(b->dc3, b->out, b->bytes, b->z3, b->z3len);
        ok = r == b->bytes;
        break;
    case V1_ENC:
        ok = wire_encode_ctx(b->cc1, &b->m, s->planar, b->sk, 3, WIRE_FLAGS_DEFAULT, b->v1scratch,
                             b->bytes, b->v1env, wire_encode_bound(b->bytes), &b->v1len) == 0;
        break;
    case V2_ENC:
        ok = wire_encode_v2_ctx(b->cc, &b->m, s->planar, b->sk, 0, WIRE_FLAGS_V2_DEFAULT,
                                b->scratch, b->scap, b->env, b->ocap, &b->len) == 0;
        break;
    case V2_DEC:
    case V2_DEC_NOVERIFY:
        ok = wire_parse(b->env, b->len, &b->pm, &b->v) == 0 &&
             (op == V2_DEC_NOVERIFY || wire_verify(b->env, b->len, b->pk) == 0) &&
             wire_decode_samples_scratch(b->dc, &b->pm, &b->v, b->dscratch, b->dcap, b->out,
                                         b->bytes) == 0;
        break;
    case V2_FWD:
        for (unsigned c = 0; c < s->channels; c++)
            wire__predict_plane((const uint8_t *)s->planar + c * s->n * size, s->n, NULL, s->n,
                                s->type, WIRE_BLOCK_LOG_DEFAULT, WIRE__LAYOUT_BITSHUFFLE,
                                WIRE_ENCODE_ORDER, b->scratch + c * b->rec,
                                b->scratch + b->side + c * s->n * size, b->dscratch);
        break;
    case V2_INV:
        /* the decoder's own path: int16 channels rebuilt eight at a time */
        ok = wire__unpredict_planes(b->scratch, s->channels, s->n, s->type,
                                    WIRE_BLOCK_LOG_DEFAULT, WIRE__LAYOUT_BITSHUFFLE, b->out,
                                    b->dscratch + ((b->side + b->bytes + 15) & ~(size_t)15)) == 0;
        break;
    case SIGN:
        crypto_sign_ed25519_detached(sig, NULL, b->env, b->len - WIRE_SIG_LEN, b->sk);
        break;
    default:
        ok = 0;
    }
    if (!ok)
        return -1;
    if ((op == ZSTD3_D || op == V2_DEC || op == V2_INV) && memcmp(b->out, s->planar, b->bytes)) {
        fprintf(stderr, "bench-codec: %s: %s does not give back the input\n", s->name,
                op_names[op]);
        return -1;
    }
    return now_s() - t0;
}

static int bench_set(const struct set *s, const uint8_t *sk, const uint8_t *pk, const char *dir)
{
    static double t[OPS][MAX_RUNS], rel[4][MAX_RUNS];
    struct bench b;
    uint8_t *shuf = malloc(set_bytes(s));
    double z3, z19, z19s, mbps[OPS];

    if (!shuf || bench_open(&b, s, sk, pk) < 0)
        return -1;
    shuffle(s, shuf);
    if (dir && dump(s, dir, shuf) < 0)
        return -1;
    for (int r = 0; r < g_runs; r++)
        for (int op = 0; op < OPS; op++)
            if ((t[op][r] = bench_op(&b, (enum op)op)) < 0) {
                fprintf(stderr, "bench-codec: %s: %s failed\n", s->name, op_names[op]);
                return -1;
            }
    for (int r = 0; r < g_runs; r++) {
        rel[0][r] = t[ZSTD3_C][r] / t[V2_ENC][r];
        rel[1][r] = t[ZSTD3_D][r] / t[V2_DEC][r];
        rel[2][r] = t[ZSTD3_D][r] / t[V2_DEC_NOVERIFY][r];
        rel[3][r] = t[ZSTD3_C][r] / t[V1_ENC][r];
    }
    z3 = (double)b.bytes / (double)b.z3len;
    z19 = zstd_ratio(s->planar, b.bytes, 19);
    z19s = zstd_ratio(shuf, b.bytes, 19);
    for (int op = 0; op < OPS; op++)
        mbps[op] = b.bytes / 1e6 / median(t[op], g_runs);
    line(s->name, "zstd3-compress", z3, mbps[ZSTD3_C]);
    line(s->name, "zstd3-decompress", z3, mbps[ZSTD3_D]);
    line(s->name, "zstd19-raw", z19, 0);
    line(s->name, "zstd19-shuffled", z19s, 0);
    line(s->name, "wire-v1-encode", (double)b.bytes / (double)b.v1len, mbps[V1_ENC]);
    for (int op = V2_ENC; op < OPS; op++)
        line(s->name, op_names[op], op < V2_FWD ? (double)b.bytes / (double)b.len : 0, mbps[op]);
    printf("%s v2/zstd3 encode=%.3f decode=%.3f decode-noverify=%.3f ratio=%.3f "
           "(v1/zstd3 encode=%.3f); v2/zstd19-shuffled ratio=%.3f\n", s->name,
           median(rel[0], g_runs), median(rel[1], g_runs), median(rel[2], g_runs),
           (double)b.bytes / (double)b.len / z3, median(rel[3], g_runs),
           (double)b.bytes / (double)b.len / z19s);
    fflush(stdout);
    bench_close(&b);
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
