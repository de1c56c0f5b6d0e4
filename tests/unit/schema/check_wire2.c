/* check_wire2.c - wire format v2: round trips of every predictor and type,
 * calibration and physical units, hostile payloads, golden vectors.
 *
 * The v2 golden vectors (tests/vectors/v2_*.prsn) are checked as the v1 ones
 * are in check_wire.c: they decode to the spec's samples and metadata, and
 * re-encoding and regenerating give the identical bytes.  With
 * WIRE_REGEN_VECTORS=<dir> they are written afresh instead. */
#include "schema/wire.h"
#include "schema/wire_int.h"

#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "tests/unit/schema/testwire.h"

#define VEC_LEVEL 3

static void meta_fill(struct wire_meta *m, uint8_t type, uint8_t channels, uint32_t pre,
                      uint32_t post)
{
    memset(m, 0, sizeof *m);
    strcpy(m->device_id, "dev-02");
    strcpy(m->detector, "kurtosis");
    m->seq = 7;
    m->trigger_time_us = 1700000000123456;
    m->sample_rate = 48000.0;
    m->sample_type = type;
    m->channel_count = channels;
    m->pre_samples = pre;
    m->post_samples = post;
    m->score = 0.25f;
    for (unsigned c = 0; c < channels; c++) {
        snprintf(m->channels[c].name, sizeof m->channels[c].name, "acc%u", c);
        strcpy(m->channels[c].unit, "g");
        m->channels[c].scale = 1.0 / 2048;
        m->channels[c].offset = c * 0.5;
    }
}

/* Integer-only signals (bit-identical everywhere): a resonance rung by an
 * integer oscillator, LCG noise; styles pick what each predictor wins on,
 * and the last adds the extreme codes and, for float32, special values. */
static void *samples_make(const struct wire_meta *m, uint64_t seed, int style)
{
    size_t bytes = wire_samples_bytes(m), size = wire_sample_size(m->sample_type);
    size_t n = (size_t)m->pre_samples + m->post_samples;
    uint8_t *buf = malloc(bytes);

    ck_assert_ptr_nonnull(buf);
    for (unsigned c = 0; c < m->channel_count; c++) {
        int64_t y1 = 0, y2 = 3000 + 500 * c;   /* oscillator state */
        for (size_t i = 0; i < n; i++) {
            int64_t y = (2 * 15800 * y1) / 16384 - y2, noise = (int64_t)(lcg(&seed) % 257) - 128;
            int64_t v;
            y2 = y1;
            y1 = y;
            switch (style) {
            case 0: v = y + noise / 8; break;                       /* smooth: LPC */
            case 1: v = (int64_t)(i * 37 % 5000) + noise; break;    /* ramps: differences */
            case 2: v = (int64_t)(lcg(&seed) % 65536) - 32768; break;   /* white: none */
            default:
                v = y + noise;
                if (i % 97 == 5)
                    v = (i % 2) ? 40000 : -40000;
                break;
            }
            size_t at = c * n + i;
            if (m->sample_type == WIRE_I16) {
                int16_t s = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
                memcpy(buf + at * 2, &s, 2);
            } else if (m->sample_type == WIRE_I32) {
                int32_t s = (int32_t)(v * 65536 + noise);
                if (style == 3 && i % 101 == 7)
                    s = (i % 2) ? INT32_MAX : INT32_MIN;
                memcpy(buf + at * 4, &s, 4);
            } else {
                static const uint32_t special[] = { 0x7f800000u, 0xff800000u, 0x80000000u,
                                                    0x7fc00001u, 0x00000001u, 0xffffffffu };
                float f = (float)v / 2048.0f;
                uint32_t bits;
                memcpy(&bits, &f, 4);
                if (style == 3 && i % 89 == 3)
                    bits = special[(i / 89) % 6];
                memcpy(buf + at * 4, &bits, 4);
            }
        }
    }
    (void)size;
    return buf;
}

/* ---- round trips ---------------------------------------------------------- */

static const uint8_t types[] = { WIRE_I16, WIRE_I32, WIRE_F32 };

/* loop index: type (3) x style (4) x layout (3) */
START_TEST(test_roundtrip)
{
    static const uint16_t layouts[] = { WIRE_FLAGS_V2_DEFAULT,
                                        WIRE_FLAG_PREDICT | WIRE_FLAG_SHUFFLE, WIRE_FLAG_PREDICT };
    uint8_t type = types[_i % 3];
    int style = (_i / 3) % 4;
    uint16_t flags = layouts[_i / 12];
    /* lengths that end in a partial block, and one shorter than the history */
    static const uint32_t posts[] = { 5000, 9, 4096, 12289 };
    struct wire_meta m, got;
    uint8_t *env;
    size_t len;
    void *s, *out;

    keys_init();
    meta_fill(&m, type, 3, 100, posts[style]);
    s = samples_make(&m, 11 + (uint64_t)_i, style);
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, flags, &env, &len), WIRE_OK);
    ck_assert_uint_eq(env[4], 2);
    {
        /* what a server holds an upload to before reading it (wire_declared_len) */
        uint64_t declared = 0;
        ck_assert_int_eq(wire_declared_len(env, len, &declared), 0);
        ck_assert_uint_eq(declared, len);
        ck_assert_int_eq(wire_declared_len(env, 15, &declared), 1);
    }
    out = decode_all(env, len, &got);
    ck_assert_uint_eq(got.version, 2);
    ck_assert_uint_eq(got.flags, flags);
    ck_assert_uint_eq(got.block_log, WIRE_BLOCK_LOG_DEFAULT);
    ck_assert_msg(memcmp(out, s, wire_samples_bytes(&m)) == 0, "type %u style %d", type, style);
    for (unsigned c = 0; c < 3; c++) {
        ck_assert(got.channels[c].scale == 1.0 / 2048);
        ck_assert(got.channels[c].offset == c * 0.5);
    }
    free(out);
    free(env);
    free(s);
}
END_TEST

/* Every block length the format allows, with and without shuffle, and the
 * no-predictor form: all decode to the input. */
START_TEST(test_block_lengths_and_forms)
{
    struct wire_meta m, got;
    uint8_t *env;
    size_t len;
    void *s, *out;

    keys_init();
    for (unsigned bl = WIRE_BLOCK_LOG_MIN; bl <= WIRE_BLOCK_LOG_MAX; bl++)
        for (uint16_t flags = 0; flags <= 15; flags++) {
            meta_fill(&m, types[bl % 3], 2, 1000, 70000 + bl);
            m.block_log = (uint8_t)bl;
            s = samples_make(&m, bl, 0);
            if (!wire_v2_flags_ok(flags)) {   /* DELTA, both shuffles, bits without predictors */
                ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 1, flags, &env, &len), WIRE_EFIELD);
                free(s);
                continue;
            }
            ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 1, flags, &env, &len), WIRE_OK);
            out = decode_all(env, len, &got);
            ck_assert_uint_eq(got.block_log, bl);
            ck_assert(memcmp(out, s, wire_samples_bytes(&m)) == 0);
            free(out);
            free(env);
            free(s);
        }
    meta_fill(&m, WIRE_I16, 1, 0, 100);
    m.block_log = WIRE_BLOCK_LOG_MAX + 1;
    s = samples_make(&m, 1, 0);
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len),
                     WIRE_EFIELD);
    m.block_log = 0;
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAG_DELTA, &env, &len), WIRE_EFIELD);
    m.channels[0].scale = NAN;
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len),
                     WIRE_EFIELD);
    m.channels[0].scale = 0;   /* zero: written as 1 */
    m.channels[0].offset = INFINITY;
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len),
                     WIRE_EFIELD);
    m.channels[0].offset = 0;
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len), WIRE_OK);
    out = decode_all(env, len, &got);
    ck_assert(got.channels[0].scale == 1.0);
    free(out);
    free(env);
    free(s);
}
END_TEST

/* The caller-buffer encoder and decoder give the same bytes and samples as
 * the allocating ones, reusing contexts across envelopes of several sizes. */
START_TEST(test_ctx_buffers)
{
    struct wire_meta big, m, got;
    struct wire_view v;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    size_t scap, ocap, dcap, len, len2;
    uint8_t *scratch, *outbuf, *env, *dscratch;
    void *s, *dec;

    keys_init();
    meta_fill(&big, WIRE_I16, 4, 2000, 20000);
    scap = wire_encode_v2_scratch_bound(&big);
    ocap = wire_encode_v2_bound(&big);
    dcap = wire_decode_scratch_bound(&big);
    ck_assert_uint_eq(dcap, 0);   /* not parsed: no predictor flag yet */
    scratch = malloc(scap);
    outbuf = malloc(ocap);
    for (uint32_t post = 22000; post >= 1000; post /= 3) {
        meta_fill(&m, WIRE_I16, 4, 0, post);
        ck_assert_uint_le(wire_encode_v2_scratch_bound(&m), scap);
        s = samples_make(&m, post, 3);
        ck_assert_int_eq(wire_encode_v2_ctx(cctx, &m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, scratch,
                                            scap, outbuf, ocap, &len), WIRE_OK);
        ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len2),
                         WIRE_OK);
        ck_assert_uint_eq(len, len2);
        ck_assert(memcmp(env, outbuf, len) == 0);
        ck_assert_int_eq(wire_parse(outbuf, len, &got, &v), WIRE_OK);
        dcap = wire_decode_scratch_bound(&got);
        ck_assert_uint_gt(dcap, wire_samples_bytes(&got));
        dscratch = malloc(dcap);
        dec = malloc(wire_samples_bytes(&got));
        ck_assert_int_eq(wire_decode_samples_scratch(dctx, &got, &v, dscratch, dcap - 1, dec,
                                                     wire_samples_bytes(&got)), WIRE_ETOOBIG);
        ck_assert_int_eq(wire_decode_samples_scratch(dctx, &got, &v, dscratch, dcap, dec,
                                                     wire_samples_bytes(&got)), WIRE_OK);
        ck_assert(memcmp(dec, s, wire_samples_bytes(&m)) == 0);
        free(dec);
        free(dscratch);
        free(env);
        free(s);
    }
    ck_assert_int_eq(wire_encode_v2_ctx(cctx, &big, outbuf, g_sk, 0, WIRE_FLAGS_V2_DEFAULT,
                                        scratch, scap - 1, outbuf, ocap, &len), WIRE_ETOOBIG);
    free(scratch);
    free(outbuf);
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
}
END_TEST

/* On signals that need it, the predictors beat v1's delta: the point of v2. */
START_TEST(test_smaller_than_v1_on_resonance)
{
    struct wire_meta m;
    uint8_t *e1, *e2;
    size_t l1, l2;
    void *s;

    keys_init();
    meta_fill(&m, WIRE_I16, 2, 0, 48000);
    s = samples_make(&m, 5, 0);
    ck_assert_int_eq(wire_encode(&m, s, g_sk, 0, &e1, &l1), WIRE_OK);
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &e2, &l2), WIRE_OK);
    ck_assert_msg(l2 * 10 < l1 * 9, "v2 %zu bytes, v1 %zu", l2, l1);
    free(e1);
    free(e2);
    free(s);
}
END_TEST

/* ---- physical units --------------------------------------------------------- */

START_TEST(test_physical)
{
    struct wire_meta m, got;
    uint8_t *env;
    size_t len, n;
    float *phys;
    void *s, *out;

    keys_init();
    for (size_t t = 0; t < 3; t++) {
        meta_fill(&m, types[t], 2, 10, 90);
        m.channels[1].scale = 0.001;
        m.channels[1].offset = -2.5;
        s = samples_make(&m, 3, 1);
        ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len),
                         WIRE_OK);
        out = decode_all(env, len, &got);
        ck_assert_int_eq(wire_is_identity_calibration(&got), 0);
        n = 100;
        phys = malloc(2 * n * sizeof *phys);
        ck_assert_int_eq(wire_to_physical(&got, out, phys), WIRE_OK);
        for (size_t i = 0; i < n; i++) {
            double c0, c1;
            if (types[t] == WIRE_I16) {
                c0 = ((int16_t *)s)[i];
                c1 = ((int16_t *)s)[n + i];
            } else if (types[t] == WIRE_I32) {
                c0 = ((int32_t *)s)[i];
                c1 = ((int32_t *)s)[n + i];
            } else {
                c0 = ((float *)s)[i];
                c1 = ((float *)s)[n + i];
            }
            ck_assert_double_eq_tol(phys[i], c0 / 2048, 1e-6 * (1 + fabs(c0 / 2048)));
            ck_assert_double_eq_tol(phys[n + i], c1 * 0.001 - 2.5, 1e-5 * (1 + fabs(c1 * 0.001)));
            /* The agent's model step converts one value at a time with
             * wire_value_physical: the server's arrays must agree to the bit. */
            {
                float one = wire_value_physical(types[t], c1, 0.001, -2.5);
                ck_assert_msg(memcmp(&one, &phys[n + i], sizeof one) == 0,
                              "type %d sample %zu: %.9g one at a time, %.9g as a channel",
                              (int)types[t], i, (double)one, (double)phys[n + i]);
            }
        }
        ck_assert_int_eq(wire_channel_physical(&got, out, 2, phys), WIRE_EFIELD);
        free(phys);
        free(out);
        free(env);
        free(s);
    }
}
END_TEST

/* ---- hostile input ------------------------------------------------------------ */

/* Parse and decode whatever comes; sanitizers watch. */
static int try_decode(const uint8_t *env, size_t len)
{
    struct wire_meta m;
    struct wire_view v;
    int rc = wire_parse(env, len, &m, &v);
    void *out;

    if (rc != WIRE_OK)
        return rc;
    out = malloc(wire_samples_bytes(&m));
    rc = wire_decode_samples(&m, &v, out, wire_samples_bytes(&m));
    free(out);
    return rc;
}

START_TEST(test_hostile_header)
{
    struct wire_meta m;
    uint8_t *env, *copy;
    size_t len, hl;
    void *s;

    keys_init();
    meta_fill(&m, WIRE_I16, 2, 50, 300);
    s = samples_make(&m, 9, 3);
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len), WIRE_OK);
    hl = rd32(env + 8);
    copy = malloc(len);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_ne(try_decode(env, cut), WIRE_OK);
    /* block_log out of range, unknown flag, DELTA (a v1 transform) */
    static const struct { size_t at; uint8_t val; int want; } pokes[] = {
        { 54, WIRE_BLOCK_LOG_MIN - 1, WIRE_EFIELD }, { 54, WIRE_BLOCK_LOG_MAX + 1, WIRE_EFIELD },
        { 6, 0x0008 | 0x06, WIRE_EFIELD }, { 6, 0x07, WIRE_EFIELD }, { 4, 3, WIRE_EVERSION },
        { 6, 0x0008, WIRE_EFIELD }, { 6, 0x0010 | 0x0c, WIRE_EFIELD },
    };
    for (size_t k = 0; k < sizeof pokes / sizeof pokes[0]; k++) {
        memcpy(copy, env, len);
        copy[pokes[k].at] = pokes[k].val;
        resign(copy, len);
        ck_assert_int_eq(try_decode(copy, len), pokes[k].want);
    }
    /* calibration: a NaN scale, a zero scale, an infinite offset */
    for (int k = 0; k < 3; k++) {
        double bad = k == 0 ? NAN : k == 1 ? 0.0 : INFINITY;
        memcpy(copy, env, len);
        memcpy(copy + hl - WIRE_CALIBRATION_LEN * 2 + (k == 2 ? 8 : 0), &bad, 8);
        resign(copy, len);
        ck_assert_int_eq(try_decode(copy, len), WIRE_EFIELD);
    }
    /* the calibration table cut by a short header_len */
    memcpy(copy, env, len);
    copy[8] = (uint8_t)(hl - 1);   /* header_len one less: lengths no longer add up */
    resign(copy, len);
    ck_assert_int_ne(try_decode(copy, len), WIRE_OK);
    free(copy);
    free(env);
    free(s);
}
END_TEST

/* Block records changed inside the frame (recompressed, re-signed): a record
 * the format does not allow fails with wire_frame; an allowed one decodes to
 * other samples; nothing crashes. */
START_TEST(test_hostile_records)
{
    struct wire_meta m, got;
    struct wire_view v;
    uint8_t *env, *content, *frame, *env2;
    size_t len, hl, clen, flen, len2;
    void *s;
    uint64_t rng = 77;

    keys_init();
    meta_fill(&m, WIRE_I16, 2, 0, 9000);
    s = samples_make(&m, 4, 0);
    ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, 0, WIRE_FLAGS_V2_DEFAULT, &env, &len), WIRE_OK);
    ck_assert_int_eq(wire_parse(env, len, &got, &v), WIRE_OK);
    hl = rd32(env + 8);
    clen = wire_content_bytes(&got);
    content = malloc(clen);
    ck_assert_uint_eq(ZSTD_decompress(content, clen, v.payload, v.payload_len), clen);
    frame = malloc(ZSTD_compressBound(clen));
    env2 = malloc(hl + ZSTD_compressBound(clen) + WIRE_SIG_LEN);
    for (int round = 0; round < 400; round++) {
        uint8_t *c = malloc(clen);
        size_t at = lcg(&rng) % (3 * WIRE_BLOCK_HDR_LEN * 2);   /* the records */
        int rc;
        memcpy(c, content, clen);
        c[at % (clen < 168 ? clen : 168)] = (uint8_t)lcg(&rng);
        if (round % 4 == 0)   /* an LPC record of any order and shift */
            c[0] = WIRE_PRED_LPC, c[1] = (uint8_t)(lcg(&rng) % 14), c[2] = (uint8_t)(lcg(&rng) % 17);
        flen = ZSTD_compress(frame, ZSTD_compressBound(clen), c, clen, 1);
        ck_assert(!ZSTD_isError(flen));
        memcpy(env2, env, hl);
        env2[12] = (uint8_t)flen, env2[13] = (uint8_t)(flen >> 8);
        env2[14] = (uint8_t)(flen >> 16), env2[15] = (uint8_t)(flen >> 24);
        memcpy(env2 + hl, frame, flen);
        len2 = hl + flen + WIRE_SIG_LEN;
        resign(env2, len2);
        rc = try_decode(env2, len2);
        ck_assert(rc == WIRE_OK || rc == WIRE_EFRAME);
        free(c);
    }
    free(env2);
    free(frame);
    free(content);
    free(env);
    free(s);
}
END_TEST

/* ---- golden vectors ------------------------------------------------------------ */

struct vec2 {
    const char *name, *device;
    uint8_t type, channels;
    uint32_t pre, post;
    double rate;
    uint64_t seq;
    double scale[2], offset[2];
    int style;
};

static const struct vec2 vecs[] = {
    { "v2_i16_2ch", "bearing-v2", WIRE_I16, 2, 1000, 8000, 48000.0, 1,
      { 1.0 / 2048, 0.00048828125 }, { 0, -0.25 }, 0 },
    { "v2_i32_1ch", "press-v2", WIRE_I32, 1, 100, 5000, 1000.0, 3, { 1e-6, 0 }, { 101.325, 0 }, 3 },
    { "v2_f32_2ch", "fan-v2", WIRE_F32, 2, 256, 4000, 25600.0, 5, { 1, 1 }, { 0, 0 }, 3 },
};

static void vec_meta(const struct vec2 *vs, struct wire_meta *m)
{
    meta_fill(m, vs->type, vs->channels, vs->pre, vs->post);
    strcpy(m->device_id, vs->device);
    m->seq = vs->seq;
    m->sample_rate = vs->rate;
    for (unsigned c = 0; c < vs->channels; c++) {
        m->channels[c].scale = vs->scale[c];
        m->channels[c].offset = vs->offset[c];
    }
}

static char *describe(const struct vec2 *vs, const struct wire_meta *m, const void *s,
                      const uint8_t *env, size_t len)
{
    char *t = malloc(8192), pkhex[65], sum[65], esum[65];
    uint8_t h[32];
    size_t p = 0;

    hex(g_pk, 32, pkhex);
    crypto_hash_sha256(h, s, wire_samples_bytes(m));
    hex(h, 32, sum);
    crypto_hash_sha256(h, env, len);
    hex(h, 32, esum);
    p += (size_t)snprintf(t + p, 8192 - p,
        "# golden wire v2 envelope; see tests/vectors/README.md\n"
        "file=%s.prsn\nbytes=%zu\nenvelope_sha256=%s\npublic_key=%s\nzstd_level=%d\n"
        "version=2\nblock_log=%u\n"
        "device_id=%s\nseq=%llu\ntrigger_time_us=%lld\nsample_rate=%.17g\nsample_type=%s\n"
        "channel_count=%u\nflags=%u\npre_samples=%u\npost_samples=%u\ndetector=%s\nscore=%.9g\n",
        vs->name, len, esum, pkhex, VEC_LEVEL, m->block_log, m->device_id,
        (unsigned long long)m->seq, (long long)m->trigger_time_us, m->sample_rate,
        wire_sample_type_name(m->sample_type), m->channel_count, m->flags, m->pre_samples,
        m->post_samples, m->detector, (double)m->score);
    for (unsigned c = 0; c < m->channel_count; c++)
        p += (size_t)snprintf(t + p, 8192 - p,
                              "channel.%u.name=%s\nchannel.%u.unit=%s\nchannel.%u.scale=%.17g\n"
                              "channel.%u.offset=%.17g\n", c, m->channels[c].name, c,
                              m->channels[c].unit, c, m->channels[c].scale, c,
                              m->channels[c].offset);
    snprintf(t + p, 8192 - p, "samples_bytes=%zu\nsamples_sha256=%s\n", wire_samples_bytes(m),
             sum);
    return t;
}

START_TEST(test_vectors_v2)
{
    const char *regen = getenv("WIRE_REGEN_VECTORS");

    keys_init();
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const struct vec2 *vs = &vecs[i];
        struct wire_meta m, got;
        uint8_t *env, *file, *again;
        size_t len, flen, alen;
        char *txt, *ftxt, *gtxt;
        void *s, *out;

        vec_meta(vs, &m);
        s = samples_make(&m, 1000 + i, vs->style);
        ck_assert_int_eq(wire_encode_v2(&m, s, g_sk, VEC_LEVEL, WIRE_FLAGS_V2_DEFAULT, &env, &len),
                         WIRE_OK);
        m.flags = WIRE_FLAGS_V2_DEFAULT;
        m.block_log = WIRE_BLOCK_LOG_DEFAULT;
        txt = describe(vs, &m, s, env, len);
        if (regen && *regen) {
            vector_write(regen, vs->name, env, len, txt);
            free(txt), free(env), free(s);
            continue;
        }
        file = vector_read(vs->name, "prsn", &flen);
        out = decode_all(file, flen, &got);
        ck_assert(memcmp(out, s, wire_samples_bytes(&m)) == 0);
        ftxt = (char *)vector_read(vs->name, "txt", &alen);
        gtxt = describe(vs, &got, out, file, flen);
        ck_assert_str_eq(ftxt, gtxt);
        ck_assert_int_eq(wire_encode_v2(&got, out, g_sk, VEC_LEVEL, got.flags, &again, &alen),
                         WIRE_OK);
        ck_assert_uint_eq(alen, flen);
        ck_assert_msg(memcmp(again, file, flen) == 0, "%s: re-encoding differs", vs->name);
        ck_assert_msg(len == flen && memcmp(env, file, flen) == 0,
                      "%s: regenerated vector differs", vs->name);
        free(again), free(gtxt), free(ftxt), free(out), free(file), free(txt), free(env);
        free(s);
    }
}
END_TEST

/* The decoder rebuilds int16 channels eight at a time in SIMD lanes and
 * falls back to the one-channel code for a block some channel predicts with
 * more than 8 taps or XOR: both must give the per-channel result bit for bit,
 * history carried across blocks that switch between them, for channel counts
 * around the lane width. */
START_TEST(test_lanes_match_scalar)
{
    static const unsigned counts[] = { 2, 3, 8, 9, 11 };
    const unsigned bl = WIRE_BLOCK_LOG_DEFAULT;
    const size_t n = 5 * ((size_t)1 << bl) + 77, nb = wire__blocks(n, bl);
    const size_t rec = nb * WIRE_BLOCK_HDR_LEN;
    uint64_t seed = 99;

    for (size_t t = 0; t < sizeof counts / sizeof counts[0]; t++) {
        unsigned ch = counts[t];
        size_t side = rec * ch, plane = n * 2;
        int16_t *in = malloc(ch * plane), *a = malloc(ch * plane), *b = malloc(ch * plane);
        uint8_t *content = malloc(side + ch * plane);
        size_t wb = wire__decode_work_bytes(bl) > wire__work_bytes(bl) ? wire__decode_work_bytes(bl)
                                                                      : wire__work_bytes(bl);
        void *work = malloc(wb);

        ck_assert(in && a && b && content && work);
        for (unsigned c = 0; c < ch; c++) {
            double ph = 0;
            for (size_t i = 0; i < n; i++) {
                ph += 0.05 + 0.01 * c;
                /* a ringing tone, noise, and a full-scale step: wraps in the sums */
                double v = 9000 * sin(ph) * exp(-(double)(i % 3000) / 900) +
                           (double)(lcg(&seed) % 200) - 100 + (i > n / 2 && c == 1 ? 30000 : 0);
                in[c * n + i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
            }
            /* orders 12 (fallback blocks), 8 (lanes) and none (fixed predictors) */
            unsigned order = c % 3 == 0 ? 12 : c % 3 == 1 ? 8 : 0;
            wire__predict_plane(in + c * n, n, NULL, n, WIRE_I16, bl, WIRE__LAYOUT_BITSHUFFLE,
                                order,
                                content + c * rec, content + side + c * plane, work);
        }
        ck_assert_int_eq(wire__unpredict_planes(content, ch, n, WIRE_I16, bl,
                                                WIRE__LAYOUT_BITSHUFFLE, a, work), WIRE_OK);
        ck_assert(memcmp(a, in, ch * plane) == 0);
        /* a hostile XOR record on an int16 channel: wrong samples, the same either way */
        memset(content + 1 * rec + 2 * WIRE_BLOCK_HDR_LEN, 0, WIRE_BLOCK_HDR_LEN);
        content[1 * rec + 2 * WIRE_BLOCK_HDR_LEN] = WIRE_PRED_XOR;
        ck_assert_int_eq(wire__unpredict_planes(content, ch, n, WIRE_I16, bl,
                                                WIRE__LAYOUT_BITSHUFFLE, a, work), WIRE_OK);
        for (unsigned c = 0; c < ch; c++)
            ck_assert_int_eq(wire__unpredict_plane(content + c * rec, content + side + c * plane, n,
                                                   WIRE_I16, bl, WIRE__LAYOUT_BITSHUFFLE,
                                                   b + c * n, work), WIRE_OK);
        ck_assert(memcmp(a, b, ch * plane) == 0);
        ck_assert(memcmp(a, in, ch * plane) != 0);
        /* a record the format refuses fails the group as it fails one channel */
        content[(ch - 1) * rec + WIRE_BLOCK_HDR_LEN] = 9;
        ck_assert_int_eq(wire__unpredict_planes(content, ch, n, WIRE_I16, bl,
                                                WIRE__LAYOUT_BITSHUFFLE, a, work), WIRE_EFRAME);
        free(in), free(a), free(b), free(content), free(work);
    }
}
END_TEST

/* The bit unshuffle has SIMD paths (SSE2 for 2-byte samples; for 4-byte
 * ones AVX2 where the CPU has it, else two SSE2 passes): over random planes,
 * for both sample sizes, plane lengths with and without a tail past the last
 * multiple of 8, and every block position and length a decode asks for
 * (whole blocks, the last partial one, a run of few groups), they must give
 * the portable transpose's residuals bit for bit. */
START_TEST(test_bitshuffle_simd_matches_portable)
{
    static const size_t ns[] = { 8, 16, 24, 33, 64, 255, 256, 1000, 4096 + 7, 3 * 4096 };
    static const size_t blocks[] = { 8, 16, 24, 32, 40, 256, 4096 };
    uint64_t seed = 7;

    for (size_t s = 2; s <= 4; s += 2)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
            size_t n = ns[a];
            uint8_t *plane = malloc(n * s);
            uint32_t *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);

            ck_assert(plane && want && got);
            for (size_t i = 0; i < n * s; i++)
                plane[i] = (uint8_t)(lcg(&seed) >> 24);
            for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
                for (size_t from = 0; from < n; from += blocks[b]) {
                    size_t len = n - from < blocks[b] ? n - from : blocks[b];

                    memset(want, 0xa5, n * sizeof *want);
                    memset(got, 0x5a, n * sizeof *got);
                    wire__bitshuffle_get_portable(plane, from, len, n, s, want);
                    wire__bitshuffle_get(plane, from, len, n, s, got);
                    ck_assert_msg(memcmp(want, got, len * sizeof *got) == 0,
                                  "size %zu, n %zu, [%zu, +%zu) differ", s, n, from, len);
                }
            free(plane), free(want), free(got);
        }
}
END_TEST

/* The agent encodes straight from its ring: samples in two pieces per
 * channel, wrapped at any point (a block boundary, inside a block, one
 * sample from either end), give the very bytes the planar copy gives. */
START_TEST(test_planes_from_ring)
{
    static const uint8_t kinds[] = { WIRE_I16, WIRE_F32 };
    const uint32_t n = 3 * 4096 + 100, cap = n + 37;
    const size_t splits[] = { 1, 100, 4096, 8193, n - 1, n };
    ZSTD_CCtx *cctx = ZSTD_createCCtx();

    keys_init();
    for (size_t t = 0; t < 2; t++) {
        struct wire_meta m;
        meta_fill(&m, kinds[t], 3, 1000, n - 1000);
        size_t size = wire_sample_size(kinds[t]), scap = wire_encode_v2_scratch_bound(&m);
        size_t ocap = wire_encode_v2_bound(&m), len, len2;
        uint8_t *planar = samples_make(&m, 5, 3), *ring = malloc(3 * cap * size);
        uint8_t *scratch = malloc(scap), *a = malloc(ocap), *b = malloc(ocap);

        ck_assert(ring && scratch && a && b);
        ck_assert_int_eq(wire_encode_v2_ctx(cctx, &m, planar, g_sk, 0, WIRE_FLAGS_V2_DEFAULT,
                                            scratch, scap, a, ocap, &len), WIRE_OK);
        for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
            size_t head = splits[k], start = cap - head;
            memset(ring, 0xA5, 3 * cap * size);
            /* channel c's window: cap - head .. cap - 1, then 0 .. n - head - 1 */
            for (unsigned c = 0; c < 3; c++) {
                memcpy(ring + (c * cap + start) * size, planar + c * n * size, head * size);
                memcpy(ring + c * cap * size, planar + (c * n + head) * size, (n - head) * size);
            }
            struct wire_planes src = { ring + start * size, ring, head, cap };
            ck_assert_int_eq(wire_encode_v2_planes(cctx, &m, &src, g_sk, 0, WIRE_FLAGS_V2_DEFAULT,
                                                   scratch, scap, b, ocap, &len2), WIRE_OK);
            ck_assert_uint_eq(len, len2);
            ck_assert_msg(memcmp(a, b, len) == 0, "split at %zu differs", head);
            /* v1's transforms read one piece only */
            if (head < n)
                ck_assert_int_eq(wire_encode_v2_planes(cctx, &m, &src, g_sk, 0, WIRE_FLAG_SHUFFLE,
                                                       scratch, scap, b, ocap, &len2),
                                 WIRE_EFIELD);
        }
        free(planar), free(ring), free(scratch), free(a), free(b);
    }
    ZSTD_freeCCtx(cctx);
}
END_TEST

/* Two envelopes of the same snapshot: the same header (but the payload
 * length), the same samples decoded bit for bit, compressed sizes within 1 %. */
static void same_snapshot(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    struct wire_meta ma, mb;
    struct wire_view va, vb;
    void *sa, *sb;

    ck_assert_int_eq(wire_parse(a, la, &ma, &va), WIRE_OK);
    ck_assert_int_eq(wire_parse(b, lb, &mb, &vb), WIRE_OK);
    ck_assert_uint_eq(va.payload - a, vb.payload - b);
    ck_assert(memcmp(a, b, 12) == 0);
    ck_assert(memcmp(a + 16, b + 16, (size_t)(va.payload - a) - 16) == 0);
    ck_assert_uint_le(lb > la ? lb - la : la - lb, la / 100 + 64);
    sa = decode_all(a, la, &ma);
    sb = decode_all(b, lb, &mb);
    ck_assert(memcmp(sa, sb, wire_samples_bytes(&ma)) == 0);
    free(sa);
    free(sb);
}

/* The streaming encoder (one plane of scratch) writes the same snapshot as
 * the whole-content one: the same header and samples; zstd's frame differs
 * by a few bytes (input fed a plane at a time is buffered and cut into blocks
 * differently).  From one piece and from a ring split at every interesting
 * point, int16 and float32, 1 and 8 channels, every v2 flag set; a window
 * shorter than the longest (the agent's buffers are sized once); a scratch
 * one byte short is refused. */
START_TEST(test_stream_matches_whole)
{
    static const uint8_t kinds[] = { WIRE_I16, WIRE_F32 };
    static const uint16_t flagsets[] = { WIRE_FLAGS_V2_DEFAULT, WIRE_FLAG_PREDICT,
                                         WIRE_FLAG_PREDICT | WIRE_FLAG_SHUFFLE, WIRE_FLAG_SHUFFLE, 0 };
    static const unsigned chans[] = { 1, 8 };
    const uint32_t n = 3 * 4096 + 100, cap = n + 37;
    const size_t splits[] = { 1, 4096, 8193, n };
    ZSTD_CCtx *cctx = ZSTD_createCCtx();

    keys_init();
    for (size_t t = 0; t < 2; t++)
        for (size_t ci = 0; ci < 2; ci++) {
            unsigned C = chans[ci];
            struct wire_meta m;
            meta_fill(&m, kinds[t], C, 1000, n - 1000);
            size_t size = wire_sample_size(kinds[t]), scap = wire_encode_v2_scratch_bound(&m);
            size_t sscap = wire_encode_v2_stream_scratch_bound(&m);
            size_t ocap = wire_encode_v2_bound(&m), len, len2;
            uint8_t *planar = samples_make(&m, 7, 3), *ring = malloc(C * cap * size);
            uint8_t *scratch = malloc(scap), *sscratch = malloc(sscap);
            uint8_t *a = malloc(ocap), *b = malloc(ocap);

            ck_assert(ring && scratch && sscratch && a && b);
            ck_assert(C > 1 ? sscap < scap : sscap == scap);
            for (size_t f = 0; f < sizeof flagsets / sizeof flagsets[0]; f++) {
                uint16_t fl = flagsets[f];
                struct wire_planes whole_src = { planar, NULL, n, n };

                ck_assert_int_eq(wire_encode_v2_ctx(cctx, &m, planar, g_sk, 0, fl, scratch, scap,
                                                    a, ocap, &len), WIRE_OK);
                ck_assert_int_eq(wire_encode_v2_planes_stream(cctx, &m, &whole_src, g_sk, 0, fl,
                                                              sscratch, sscap, b, ocap, &len2),
                                 WIRE_OK);
                same_snapshot(a, len, b, len2);
                for (size_t k = 0; (fl & WIRE_FLAG_PREDICT) && k < sizeof splits / sizeof splits[0]; k++) {
                    size_t head = splits[k], start = cap - head;
                    for (unsigned c = 0; c < C; c++) {
                        memcpy(ring + (c * cap + start) * size, planar + c * n * size, head * size);
                        memcpy(ring + c * cap * size, planar + (c * n + head) * size,
                               (n - head) * size);
                    }
                    struct wire_planes src = { ring + start * size, ring, head, cap };
                    ck_assert_int_eq(wire_encode_v2_planes_stream(cctx, &m, &src, g_sk, 0, fl,
                                                                  sscratch, sscap, b, ocap, &len2),
                                     WIRE_OK);
                    same_snapshot(a, len, b, len2);
                }
            }
            struct wire_planes whole_src = { planar, NULL, n, n };
            ck_assert_int_eq(wire_encode_v2_planes_stream(cctx, &m, &whole_src, g_sk, 0,
                                                          WIRE_FLAGS_V2_DEFAULT, sscratch,
                                                          sscap - 1, b, ocap, &len2),
                             WIRE_ETOOBIG);
            /* a shorter window into buffers sized for this one */
            struct wire_meta m2 = m;
            uint8_t *shortw = malloc((size_t)C * 6000 * size);
            ck_assert(shortw != NULL);
            m2.post_samples = 5000;
            for (unsigned c = 0; c < C; c++)
                memcpy(shortw + (size_t)c * 6000 * size, planar + (size_t)c * n * size, 6000 * size);
            ck_assert_int_eq(wire_encode_v2_ctx(cctx, &m2, shortw, g_sk, 0, WIRE_FLAGS_V2_DEFAULT,
                                                scratch, scap, a, ocap, &len), WIRE_OK);
            struct wire_planes short_src = { planar, NULL, 6000, n };
            ck_assert_int_eq(wire_encode_v2_planes_stream(cctx, &m2, &short_src, g_sk, 0,
                                                          WIRE_FLAGS_V2_DEFAULT, sscratch, sscap,
                                                          b, ocap, &len2), WIRE_OK);
            same_snapshot(a, len, b, len2);
            free(shortw);
            free(planar), free(ring), free(scratch), free(sscratch), free(a), free(b);
        }
    ZSTD_freeCCtx(cctx);
}
END_TEST

/* ---- envelopes written to a file ----------------------------------------- */

/* A wire_file in memory, with the failures a disk has: an append, a patch or
 * a read that fails, and a second reading that differs from the first. */
struct memfile {
    uint8_t *buf;
    size_t len, cap;
    size_t max_chunk;               /* largest append seen */
    int appends, fail_append_at;    /* fail the n-th append (1-based); 0 = never */
    int fail_patch, fail_read;
    int reads, flip_read_at;        /* flip a bit of the n-th read (1-based); 0 = never */
};

static int mf_append(void *ctx, const void *p, size_t len)
{
    struct memfile *f = ctx;

    if (++f->appends == f->fail_append_at)
        return -1;
    if (f->len + len > f->cap) {
        f->cap = (f->len + len) * 2;
        f->buf = realloc(f->buf, f->cap);
        ck_assert_ptr_nonnull(f->buf);
    }
    memcpy(f->buf + f->len, p, len);
    f->len += len;
    if (len > f->max_chunk)
        f->max_chunk = len;
    return 0;
}

static int mf_patch(void *ctx, uint64_t off, const void *p, size_t len)
{
    struct memfile *f = ctx;

    ck_assert_uint_le(off + len, f->len);
    if (f->fail_patch)
        return -1;
    memcpy(f->buf + off, p, len);
    return 0;
}

static int mf_read(void *ctx, uint64_t off, void *p, size_t len)
{
    struct memfile *f = ctx;

    ck_assert_uint_le(off + len, f->len);
    if (f->fail_read)
        return -1;
    memcpy(p, f->buf + off, len);
    if (++f->reads == f->flip_read_at && len > 0)
        ((uint8_t *)p)[len - 1] ^= 1;   /* this reading differs; the file does not */
    return 0;
}

static struct wire_file mf_file(struct memfile *f)
{
    struct wire_file wf = { mf_append, mf_patch, mf_read, f };
    return wf;
}

/* wire_sign_file gives crypto_sign_ed25519_detached's bytes: many keys
 * (random seeds), messages of every length around the pieces' edges and
 * random ones up to 300 KB, read back in pieces of 64 bytes to 32 KB. */
START_TEST(test_sign_file_matches_libsodium)
{
    static const size_t pieces[] = { 64, 65, 1000, 4096, WIRE_FILE_CHUNK };
    size_t lens[40], nlens = 0;
    uint64_t seed = 0x5eed;
    uint8_t *piece = malloc(WIRE_FILE_CHUNK);

    ck_assert_int_ge(sodium_init(), 0);
    ck_assert_ptr_nonnull(piece);
    for (size_t l = 0; l <= 3; l++)
        lens[nlens++] = l;
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        lens[nlens++] = pieces[p] - 1;
        lens[nlens++] = pieces[p];
        lens[nlens++] = pieces[p] + 1;
        lens[nlens++] = 2 * pieces[p];
    }
    while (nlens < sizeof lens / sizeof lens[0])
        lens[nlens++] = (size_t)(lcg(&seed) % 300000);
    for (int key = 0; key < 64; key++) {
        uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN], want[WIRE_SIG_LEN], got[WIRE_SIG_LEN];
        uint8_t kseed[32];
        size_t len = lens[key % nlens];
        struct memfile mf = { 0 };
        struct wire_file wf = mf_file(&mf);

        for (int i = 0; i < 32; i++)
            kseed[i] = (uint8_t)lcg(&seed);
        crypto_sign_ed25519_seed_keypair(pk, sk, kseed);
        mf.buf = malloc(len + 1);
        mf.len = mf.cap = len;
        ck_assert_ptr_nonnull(mf.buf);
        for (size_t i = 0; i < len; i++)
            mf.buf[i] = (uint8_t)lcg(&seed);
        ck_assert_int_eq(crypto_sign_ed25519_detached(want, NULL, mf.buf, len, sk), 0);
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
            memset(got, 0xa5, sizeof got);
            ck_assert_int_eq(wire_sign_file(&wf, len, sk, piece, pieces[p], got), WIRE_OK);
            ck_assert_msg(memcmp(got, want, WIRE_SIG_LEN) == 0,
                          "key %d, %zu bytes, pieces of %zu: not libsodium's signature", key,
                          len, pieces[p]);
        }
        ck_assert_int_eq(crypto_sign_ed25519_verify_detached(got, mf.buf, len, pk), 0);
        free(mf.buf);
    }
    /* every length of the remaining keys' messages, one piece size each */
    for (size_t i = 0; i < nlens; i++) {
        uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN], want[WIRE_SIG_LEN], got[WIRE_SIG_LEN];
        struct memfile mf = { 0 };
        struct wire_file wf = mf_file(&mf);

        crypto_sign_ed25519_keypair(pk, sk);
        mf.buf = malloc(lens[i] + 1);
        mf.len = mf.cap = lens[i];
        ck_assert_ptr_nonnull(mf.buf);
        randombytes_buf(mf.buf, lens[i]);
        ck_assert_int_eq(crypto_sign_ed25519_detached(want, NULL, mf.buf, lens[i], sk), 0);
        ck_assert_int_eq(wire_sign_file(&wf, lens[i], sk, piece, pieces[i % 5], got), WIRE_OK);
        ck_assert(memcmp(got, want, WIRE_SIG_LEN) == 0);
        free(mf.buf);
    }
    free(piece);
}
END_TEST

/* A reading that fails, or a second reading that differs from the first
 * (the nonce would come from one message and the challenge from another):
 * no signature, the output zeroed; a piece shorter than 64 bytes refused. */
START_TEST(test_sign_file_refuses_unsteady_reads)
{
    uint8_t piece[4096], sig[WIRE_SIG_LEN], zero[WIRE_SIG_LEN] = { 0 };
    struct memfile mf = { 0 };
    struct wire_file wf = mf_file(&mf);
    size_t len = 20000;

    keys_init();
    mf.buf = malloc(len);
    mf.len = mf.cap = len;
    ck_assert_ptr_nonnull(mf.buf);
    memset(mf.buf, 7, len);
    mf.flip_read_at = 7;            /* pieces of 4096: the second reading's second */
    memset(sig, 1, sizeof sig);
    ck_assert_int_eq(wire_sign_file(&wf, len, g_sk, piece, sizeof piece, sig), WIRE_EIO);
    ck_assert(memcmp(sig, zero, sizeof sig) == 0);
    mf.flip_read_at = 0;
    mf.fail_read = 1;
    ck_assert_int_eq(wire_sign_file(&wf, len, g_sk, piece, sizeof piece, sig), WIRE_EIO);
    mf.fail_read = 0;
    ck_assert_int_eq(wire_sign_file(&wf, len, g_sk, piece, 63, sig), WIRE_EFIELD);
    ck_assert_int_eq(wire_sign_file(&wf, len, g_sk, piece, sizeof piece, sig), WIRE_OK);
    ck_assert_int_eq(crypto_sign_ed25519_verify_detached(sig, mf.buf, len, g_pk), 0);
    free(mf.buf);
}
END_TEST

/* The file encoder writes exactly the bytes the streaming encoder writes
 * into a buffer (header, frame and signature), through appends no larger
 * than its chunk: int16 and float32, 1 and 8 channels, every v2 flag set,
 * from one piece and from a wrapped ring, with zstd's own sizes and with the
 * agent's small window (16 KiB blocks); an append, a patch or a read that
 * fails is WIRE_EIO; a scratch one byte short is refused. */
START_TEST(test_file_matches_stream)
{
    static const uint8_t kinds[] = { WIRE_I16, WIRE_F32 };
    static const uint16_t flagsets[] = { WIRE_FLAGS_V2_DEFAULT, WIRE_FLAG_PREDICT,
                                         WIRE_FLAG_PREDICT | WIRE_FLAG_SHUFFLE, WIRE_FLAG_SHUFFLE, 0 };
    static const unsigned chans[] = { 1, 8 };
    const uint32_t n = 3 * 4096 + 100, cap = n + 37;

    keys_init();
    for (int small = 0; small < 2; small++) {
        ZSTD_CCtx *cctx = ZSTD_createCCtx();

        ck_assert_ptr_nonnull(cctx);
        if (small) {
            ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 14)));
            ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, 12)));
            ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_chainLog, 12)));
        }
        for (size_t t = 0; t < 2; t++)
            for (size_t ci = 0; ci < 2; ci++) {
                unsigned C = chans[ci];
                struct wire_meta m;
                meta_fill(&m, kinds[t], C, 1000, n - 1000);
                size_t size = wire_sample_size(kinds[t]);
                size_t sscap = wire_encode_v2_stream_scratch_bound(&m);
                size_t fscap = wire_encode_v2_file_scratch_bound(&m);
                size_t ocap = wire_encode_v2_bound(&m), len, len2;
                uint8_t *planar = samples_make(&m, 11 + t, 3), *ring = malloc(C * cap * size);
                uint8_t *sscratch = malloc(sscap), *fscratch = malloc(fscap), *a = malloc(ocap);

                ck_assert(ring && sscratch && fscratch && a);
                ck_assert_uint_eq(fscap, sscap + WIRE_FILE_CHUNK);
                /* the ring split at 4096: the window's head at the ring's end */
                size_t head = 4096, start = cap - head;
                for (unsigned c = 0; c < C; c++) {
                    memcpy(ring + (c * cap + start) * size, planar + c * n * size, head * size);
                    memcpy(ring + c * cap * size, planar + (c * n + head) * size,
                           (n - head) * size);
                }
                for (size_t fi = 0; fi < sizeof flagsets / sizeof flagsets[0]; fi++) {
                    uint16_t fl = flagsets[fi];
                    struct wire_planes whole_src = { planar, NULL, n, n };
                    struct wire_planes ring_src = { ring + start * size, ring, head, cap };
                    const struct wire_planes *src =
                        (fl & WIRE_FLAG_PREDICT) ? &ring_src : &whole_src;
                    struct memfile mf = { 0 };
                    struct wire_file wf = mf_file(&mf);

                    ck_assert_int_eq(wire_encode_v2_planes_stream(cctx, &m, src, g_sk, 0, fl,
                                                                  sscratch, sscap, a, ocap, &len),
                                     WIRE_OK);
                    ck_assert_int_eq(wire_encode_v2_planes_file(cctx, &m, src, g_sk, 0, fl,
                                                                fscratch, fscap, &wf, &len2),
                                     WIRE_OK);
                    ck_assert_msg(len2 == len && mf.len == len,
                                  "file %zu (%zu written) and buffer %zu bytes (type %u, %u "
                                  "channels, flags %#x, small window %d)", len2, mf.len, len,
                                  kinds[t], C, fl, small);
                    ck_assert_msg(memcmp(mf.buf, a, len) == 0,
                                  "file and buffer envelopes differ (type %u, %u channels, "
                                  "flags %#x, small window %d)", kinds[t], C, fl, small);
                    ck_assert_uint_le(mf.max_chunk, WIRE_FILE_CHUNK);
                    /* streamed a chunk at a time, then the signature */
                    ck_assert_int_ge(mf.appends, (len - WIRE_SIG_LEN + WIRE_FILE_CHUNK - 1) /
                                                     WIRE_FILE_CHUNK + 1);
                    free(mf.buf);
                }
                struct wire_planes whole_src = { planar, NULL, n, n };
                struct memfile mf = { 0 };
                struct wire_file wf = mf_file(&mf);
                ck_assert_int_eq(wire_encode_v2_planes_file(cctx, &m, &whole_src, g_sk, 0,
                                                            WIRE_FLAGS_V2_DEFAULT, fscratch,
                                                            fscap - 1, &wf, &len2),
                                 WIRE_ETOOBIG);
                for (int fail = 0; fail < 4; fail++) {
                    mf = (struct memfile){ 0 };
                    if (fail == 0)
                        mf.fail_append_at = 1;      /* the header's chunk */
                    else if (fail == 1)
                        mf.fail_patch = 1;
                    else if (fail == 2)
                        mf.fail_read = 1;
                    else
                        mf.flip_read_at = 1;        /* first reading differs from the second */
                    ck_assert_int_eq(wire_encode_v2_planes_file(cctx, &m, &whole_src, g_sk, 0,
                                                                WIRE_FLAGS_V2_DEFAULT, fscratch,
                                                                fscap, &wf, &len2),
                                     WIRE_EIO);
                    free(mf.buf);
                }
                /* the context is usable by the buffer encoder after a failure */
                ck_assert_int_eq(wire_encode_v2_planes_stream(cctx, &m, &whole_src, g_sk, 0,
                                                              WIRE_FLAGS_V2_DEFAULT, sscratch,
                                                              sscap, a, ocap, &len),
                                 WIRE_OK);
                free(planar), free(ring), free(sscratch), free(fscratch), free(a);
            }
        ZSTD_freeCCtx(cctx);
    }
}
END_TEST

Suite *wire2_suite(void);

Suite *wire2_suite(void)
{
    Suite *s = suite_create("wire2");
    TCase *tc = tcase_create("codec");
    TCase *hostile = tcase_create("hostile");
    TCase *golden = tcase_create("golden");

    tcase_set_timeout(tc, 120);
    tcase_set_timeout(hostile, 120);
    tcase_add_loop_test(tc, test_roundtrip, 0, 36);
    tcase_add_test(tc, test_block_lengths_and_forms);
    tcase_add_test(tc, test_ctx_buffers);
    tcase_add_test(tc, test_smaller_than_v1_on_resonance);
    tcase_add_test(tc, test_physical);
    tcase_add_test(tc, test_lanes_match_scalar);
    tcase_add_test(tc, test_bitshuffle_simd_matches_portable);
    tcase_add_test(tc, test_planes_from_ring);
    tcase_add_test(tc, test_stream_matches_whole);
    tcase_add_test(tc, test_file_matches_stream);
    tcase_add_test(tc, test_sign_file_matches_libsodium);
    tcase_add_test(tc, test_sign_file_refuses_unsteady_reads);
    tcase_add_test(hostile, test_hostile_header);
    tcase_add_test(hostile, test_hostile_records);
    tcase_add_test(golden, test_vectors_v2);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, hostile);
    suite_add_tcase(s, golden);
    return s;
}
