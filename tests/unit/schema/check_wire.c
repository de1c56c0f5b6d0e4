/* check_wire.c - wire format v1: round trips, hostile input, golden vectors.
 *
 * The golden vectors in tests/vectors/ (read relative to the current
 * directory: the runner is started from the repository root) are checked
 * three ways: decoded metadata and samples match the .txt beside each file;
 * re-encoding the decoded content gives the identical bytes; regenerating
 * them from the spec below gives the identical bytes.  With
 * WIRE_REGEN_VECTORS=<dir> the vectors test writes fresh files to <dir>
 * instead (see tests/vectors/README.md). */
#define ZSTD_STATIC_LINKING_ONLY
#include "schema/wire.h"

#include <check.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "tests/unit/schema/testwire.h"

#define CORPUS_DIR "tests/fuzz/corpus/wire"

/* ---- helpers ------------------------------------------------------------ */

static void meta_fill(struct wire_meta *m, uint8_t type, uint8_t channels, uint32_t pre,
                      uint32_t post)
{
    memset(m, 0, sizeof *m);
    strcpy(m->device_id, "dev-01");
    strcpy(m->detector, "rms");
    m->seq = 1;
    m->trigger_time_us = 1700000000123456;
    m->sample_rate = 10000.0;
    m->sample_type = type;
    m->channel_count = channels;
    m->pre_samples = pre;
    m->post_samples = post;
    m->score = 0.5f;
    for (unsigned c = 0; c < channels; c++) {
        snprintf(m->channels[c].name, sizeof m->channels[c].name, "ch%u", c);
        strcpy(m->channels[c].unit, "g");
    }
}

/* Sample data that exercises wrap-around in the deltas and every bit of
 * the sample, plus the extreme values of each type. */
static void *samples_make(const struct wire_meta *m, uint64_t seed)
{
    size_t bytes = wire_samples_bytes(m), size = wire_sample_size(m->sample_type);
    size_t total = bytes / size;
    uint8_t *buf = malloc(bytes);

    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < total; i++) {
        uint64_t r = lcg(&seed);
        if (m->sample_type == WIRE_I16) {
            int16_t v = (int16_t)((int)(i % 97) * 300 - 14000 + (int)(r % 64));
            if (i % 13 == 0)
                v = (i % 26) ? INT16_MIN : INT16_MAX;
            memcpy(buf + i * 2, &v, 2);
        } else if (m->sample_type == WIRE_I32) {
            int32_t v = (int32_t)((int64_t)(i % 1001) * 2000000 - 1000000000 + (int64_t)(r % 4096));
            if (i % 11 == 0)
                v = (i % 22) ? INT32_MIN : INT32_MAX;
            memcpy(buf + i * 4, &v, 4);
        } else {
            static const uint32_t special[] = {
                0x7f800000u, 0xff800000u, 0x80000000u, 0x7fc00001u, /* inf, -inf, -0, NaN */
                0x7f7fffffu, 0x00000001u, 0xffffffffu, 0x00000000u  /* max, denormal, NaN */
            };
            float f = (float)((int)(i % 203) - 101 + (int)(r % 32)) / 1024.0f;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            if (i % 17 == 0)
                bits = special[(i / 17) % 8];
            memcpy(buf + i * 4, &bits, 4);
        }
    }
    return buf;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A small valid envelope. */
static uint8_t *env_make(struct wire_meta *m, uint16_t flags, size_t *len, void **samples)
{
    uint8_t *env = NULL;
    void *s;

    meta_fill(m, WIRE_I16, 2, 20, 30);
    s = samples_make(m, 42);
    ck_assert_int_eq(wire_encode_flags(m, s, g_sk, 0, flags, &env, len), WIRE_OK);
    if (samples)
        *samples = s;
    else
        free(s);
    return env;
}

/* env with its payload replaced by frame (and the lengths fixed), re-signed. */
static uint8_t *env_splice(const uint8_t *env, size_t len, const uint8_t *frame,
                           size_t frame_len, size_t *out_len)
{
    uint32_t header_len = rd32(env + 8);
    size_t n = header_len + frame_len + WIRE_SIG_LEN;
    uint8_t *out = malloc(n);

    (void)len;
    ck_assert_ptr_nonnull(out);
    memcpy(out, env, header_len);
    memcpy(out + header_len, frame, frame_len);
    wr32(out + 12, (uint32_t)frame_len);
    resign(out, n);
    *out_len = n;
    return out;
}

/* A hand-made zstd frame: explicit window descriptor (windowLog = 10 + exp),
 * 8-byte declared content size, then data as raw blocks (no compression). */
static size_t frame_craft(uint8_t *dst, unsigned window_exp, uint64_t fcs, const uint8_t *data,
                          size_t n)
{
    size_t p = 0, off = 0;

    wr32(dst, 0xFD2FB528u);
    p = 4;
    dst[p++] = 3u << 6;                 /* FCS 8 bytes, not single segment, no checksum */
    dst[p++] = (uint8_t)(window_exp << 3);
    for (int i = 0; i < 8; i++)
        dst[p++] = (uint8_t)(fcs >> (8 * i));
    do {
        size_t chunk = n - off > 100000 ? 100000 : n - off;
        uint32_t last = off + chunk == n;
        uint32_t hdr = last | (0u << 1) | (uint32_t)chunk << 3;
        dst[p++] = (uint8_t)hdr;
        dst[p++] = (uint8_t)(hdr >> 8);
        dst[p++] = (uint8_t)(hdr >> 16);
        memcpy(dst + p, data + off, chunk);
        p += chunk;
        off += chunk;
    } while (off < n);
    return p;
}

/* Transformed payload bytes of an envelope (decompressed, transforms kept). */
static uint8_t *payload_raw(const uint8_t *env, size_t len, size_t *n)
{
    struct wire_meta m;
    struct wire_view v;
    uint8_t *out;

    ck_assert_int_eq(wire_parse(env, len, &m, &v), WIRE_OK);
    *n = (size_t)v.content_size;
    out = malloc(*n);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(ZSTD_decompress(out, *n, v.payload, v.payload_len), *n);
    return out;
}

static void meta_eq(const struct wire_meta *a, const struct wire_meta *b)
{
    ck_assert_str_eq(a->device_id, b->device_id);
    ck_assert_uint_eq(a->seq, b->seq);
    ck_assert_int_eq(a->trigger_time_us, b->trigger_time_us);
    ck_assert(memcmp(&a->sample_rate, &b->sample_rate, sizeof a->sample_rate) == 0);
    ck_assert_uint_eq(a->sample_type, b->sample_type);
    ck_assert_uint_eq(a->channel_count, b->channel_count);
    ck_assert_uint_eq(a->pre_samples, b->pre_samples);
    ck_assert_uint_eq(a->post_samples, b->post_samples);
    ck_assert_str_eq(a->detector, b->detector);
    ck_assert(memcmp(&a->score, &b->score, sizeof a->score) == 0);
    for (unsigned c = 0; c < a->channel_count; c++) {
        ck_assert_str_eq(a->channels[c].name, b->channels[c].name);
        ck_assert_str_eq(a->channels[c].unit, b->channels[c].unit);
    }
}

/* The full reader path gives back what was encoded: m's metadata and the
 * samples s.  *got is the metadata read (for the caller's own checks). */
static void decodes_to(const uint8_t *env, size_t len, const struct wire_meta *m, const void *s,
                       struct wire_meta *got)
{
    void *out = decode_all(env, len, got);

    meta_eq(m, got);
    ck_assert(memcmp(out, s, wire_samples_bytes(m)) == 0);
    free(out);
}

/* ---- round trips -------------------------------------------------------- */

START_TEST(test_roundtrip)
{
    static const uint8_t types[] = { WIRE_I16, WIRE_I32, WIRE_F32 };
    uint8_t type = types[_i / 4];
    uint16_t flags = (uint16_t)(_i % 4);
    struct wire_meta m, got;
    uint8_t *env = NULL;
    size_t len;
    void *s;

    keys_init();
    meta_fill(&m, type, 3, 1000, 1234);
    strcpy(m.channels[1].unit, "");          /* empty unit is allowed */
    strcpy(m.channels[2].unit, "m/s\xc2\xb2");  /* UTF-8 */
    m.score = 1.0f;
    m.seq = WIRE_MAX_SEQ;
    m.trigger_time_us = INT64_MIN;
    s = samples_make(&m, 7 + (uint64_t)_i);
    ck_assert_int_eq(wire_encode_flags(&m, s, g_sk, 0, flags, &env, &len), WIRE_OK);
    decodes_to(env, len, &m, s, &got);
    ck_assert_uint_eq(got.flags, flags);
    free(env);
    free(s);
}
END_TEST

/* The reusable-context encoder: a fresh context gives wire_encode_flags'
 * bytes; a small-window context (what the agent uses) still round-trips, and
 * decodes through a reused decompression context; short buffers are refused. */
START_TEST(test_encode_ctx)
{
    struct wire_meta m, got;
    struct wire_view v;
    uint8_t *ref = NULL, *out;
    size_t ref_len, out_len = 0, bytes, bound;
    void *s, *scratch, *dec;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_DCtx *dctx = ZSTD_createDCtx();

    keys_init();
    ck_assert_ptr_nonnull(cctx);
    ck_assert_ptr_nonnull(dctx);
    meta_fill(&m, WIRE_F32, 4, 5000, 77);
    s = samples_make(&m, 99);
    bytes = wire_samples_bytes(&m);
    bound = wire_encode_bound(bytes);
    ck_assert_uint_gt(bound, bytes);
    scratch = malloc(bytes);
    out = malloc(bound);
    dec = malloc(bytes);
    ck_assert(scratch && out && dec);

    ck_assert_int_eq(wire_encode_flags(&m, s, g_sk, 3, WIRE_FLAGS_DEFAULT, &ref, &ref_len), WIRE_OK);
    ck_assert_int_eq(wire_encode_ctx(cctx, &m, s, g_sk, 3, WIRE_FLAGS_DEFAULT, scratch, bytes,
                                     out, bound, &out_len), WIRE_OK);
    ck_assert_uint_eq(out_len, ref_len);
    ck_assert(memcmp(out, ref, ref_len) == 0);

    /* Reused, with the agent's small window: other bytes, same samples. */
    ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 14)));
    ck_assert_int_eq(wire_encode_ctx(cctx, &m, s, g_sk, 3, WIRE_FLAGS_DEFAULT, scratch, bytes,
                                     out, bound, &out_len), WIRE_OK);
    ck_assert_int_eq(wire_parse(out, out_len, &got, &v), WIRE_OK);
    ck_assert_int_eq(wire_verify(out, out_len, g_pk), WIRE_OK);
    meta_eq(&m, &got);
    for (int round = 0; round < 2; round++) {
        memset(dec, 0, bytes);
        ck_assert_int_eq(wire_decode_samples_ctx(dctx, &got, &v, dec, bytes), WIRE_OK);
        ck_assert(memcmp(dec, s, bytes) == 0);
    }

    /* Buffers too small are an error, not an overflow. */
    ck_assert_int_eq(wire_encode_ctx(cctx, &m, s, g_sk, 3, WIRE_FLAGS_DEFAULT, scratch, bytes,
                                     out, 64, &out_len), WIRE_ETOOBIG);
    ck_assert_int_eq(wire_encode_ctx(cctx, &m, s, g_sk, 3, WIRE_FLAGS_DEFAULT, scratch,
                                     bytes - 1, out, bound, &out_len), WIRE_ETOOBIG);

    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
    free(ref);
    free(out);
    free(scratch);
    free(dec);
    free(s);
}
END_TEST

START_TEST(test_roundtrip_default_and_levels)
{
    struct wire_meta m, got;
    uint8_t *env = NULL;
    size_t len;
    void *s;

    keys_init();
    meta_fill(&m, WIRE_F32, WIRE_MAX_CHANNELS, 0, 5000);
    strcpy(m.device_id, "0123456789012345678901234567890123456789012345678901234567890._-");
    ck_assert_uint_eq(strlen(m.device_id), 64);
    s = samples_make(&m, 99);
    for (int level = -5; level <= 19; level += 6) {
        ck_assert_int_eq(wire_encode(&m, s, g_sk, level, &env, &len), WIRE_OK);
        decodes_to(env, len, &m, s, &got);
        ck_assert_uint_eq(got.flags, WIRE_FLAGS_DEFAULT);
        free(env);
    }
    free(s);
}
END_TEST

/* Level 20 on 10 MiB would pick a 16 MiB window; the encoder caps it so the
 * envelope is still accepted by every reader. */
START_TEST(test_large_payload_window_capped)
{
    struct wire_meta m, got;
    struct wire_view v;
    ZSTD_frameHeader zfh;
    uint8_t *env = NULL;
    size_t len;
    void *s, *out;

    keys_init();
    meta_fill(&m, WIRE_I16, 1, 0, 5u << 20);
    ck_assert_uint_gt(ZSTD_getCParams(20, wire_samples_bytes(&m), 0).windowLog,
                      WIRE_MAX_WINDOW_LOG);
    s = samples_make(&m, 5);
    ck_assert_int_eq(wire_encode(&m, s, g_sk, 20, &env, &len), WIRE_OK);
    ck_assert_int_eq(wire_parse(env, len, &got, &v), WIRE_OK);
    ck_assert_uint_eq(ZSTD_getFrameHeader(&zfh, v.payload, v.payload_len), 0);
    ck_assert_uint_le(zfh.windowSize, (uint64_t)1 << WIRE_MAX_WINDOW_LOG);
    out = decode_all(env, len, &got);
    ck_assert(memcmp(out, s, wire_samples_bytes(&m)) == 0);
    free(out);
    free(env);
    free(s);
}
END_TEST

START_TEST(test_samples_bytes_limits)
{
    struct wire_meta m;

    meta_fill(&m, WIRE_I16, 2, 10, 10);
    ck_assert_uint_eq(wire_samples_bytes(&m), 80);
    m.post_samples = 0;
    ck_assert_uint_eq(wire_samples_bytes(&m), 0);
    meta_fill(&m, WIRE_F32, 64, UINT32_MAX, UINT32_MAX);   /* would overflow 32 bits */
    ck_assert_uint_eq(wire_samples_bytes(&m), 0);
    meta_fill(&m, WIRE_I16, 1, 0, WIRE_MAX_SAMPLES_BYTES / 2);
    ck_assert_uint_eq(wire_samples_bytes(&m), WIRE_MAX_SAMPLES_BYTES);
    m.post_samples++;
    ck_assert_uint_eq(wire_samples_bytes(&m), 0);
    m.sample_type = 9;
    ck_assert_uint_eq(wire_sample_size(9), 0);
    ck_assert_uint_eq(wire_samples_bytes(&m), 0);
    ck_assert_str_eq(wire_sample_type_name(WIRE_F32), "f32");
}
END_TEST

START_TEST(test_error_names)
{
    for (int e = WIRE_OK; e >= WIRE_EIO; e--) {
        ck_assert_ptr_nonnull(wire_strerror(e));
        ck_assert(strncmp(wire_errcode(e), "wire_", 5) == 0);
    }
    ck_assert_str_eq(wire_errcode(WIRE_ETRUNCATED), "wire_truncated");
    ck_assert_str_eq(wire_errcode(-1000), "wire_unknown");
    ck_assert_ptr_nonnull(wire_strerror(12345));
}
END_TEST

/* ---- hostile input ------------------------------------------------------ */

START_TEST(test_every_truncation_refused)
{
    struct wire_meta m, got;
    struct wire_view v;
    size_t len;
    uint8_t *env;

    keys_init();
    env = env_make(&m, WIRE_FLAGS_DEFAULT, &len, NULL);
    for (size_t n = 0; n < len; n++) {
        /* an exact-size copy so the sanitizer sees any read past the end */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, env, n);
        ck_assert_int_lt(wire_parse(cut, n, &got, &v), 0);
        ck_assert_int_lt(wire_verify(cut, n, g_pk), 0);
        free(cut);
    }
    ck_assert_int_eq(wire_parse(env, len, &got, &v), WIRE_OK);
    free(env);
}
END_TEST

START_TEST(test_trailing_byte_refused)
{
    struct wire_meta m, got;
    struct wire_view v;
    size_t len;
    uint8_t *env, *big;

    keys_init();
    env = env_make(&m, WIRE_FLAGS_DEFAULT, &len, NULL);
    big = calloc(1, len + 1);
    memcpy(big, env, len);
    ck_assert_int_lt(wire_parse(big, len + 1, &got, &v), 0);
    free(big);
    free(env);
}
END_TEST

START_TEST(test_every_bit_flip_fails_verify)
{
    struct wire_meta m;
    size_t len;
    uint8_t *env;

    keys_init();
    env = env_make(&m, WIRE_FLAGS_DEFAULT, &len, NULL);
    ck_assert_int_eq(wire_verify(env, len, g_pk), WIRE_OK);
    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            env[i] ^= (uint8_t)(1u << b);
            ck_assert_int_eq(wire_verify(env, len, g_pk), WIRE_ESIGNATURE);
            env[i] ^= (uint8_t)(1u << b);
        }
    }
    free(env);
}
END_TEST

START_TEST(test_wrong_key)
{
    struct wire_meta m;
    uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];
    size_t len;
    uint8_t *env;

    keys_init();
    env = env_make(&m, WIRE_FLAGS_DEFAULT, &len, NULL);
    crypto_sign_ed25519_keypair(pk, sk);
    ck_assert_int_eq(wire_verify(env, len, pk), WIRE_ESIGNATURE);
    ck_assert_int_eq(wire_verify(env, len, g_pk), WIRE_OK);
    free(env);
}
END_TEST

START_TEST(test_versions)
{
    struct wire_meta m, got;
    struct wire_view v;
    size_t len, len2;
    uint8_t *env, *ext;
    void *s;

    keys_init();
    env = env_make(&m, WIRE_FLAGS_DEFAULT, &len, &s);

    env[4] = 3;                                       /* major 3 */
    resign(env, len);
    ck_assert_int_eq(wire_verify(env, len, g_pk), WIRE_OK);
    ck_assert_int_eq(wire_parse(env, len, &got, &v), WIRE_EVERSION);
    /* major 2 over a v1 body: its DELTA flag is no v2 transform, so it is
     * refused rather than misread */
    env[4] = 2;
    resign(env, len);
    ck_assert_int_eq(wire_parse(env, len, &got, &v), WIRE_EFIELD);
    env[4] = 0;
    resign(env, len);
    ck_assert_int_eq(wire_parse(env, len, &got, &v), WIRE_EVERSION);
    env[4] = 1;

    env[5] = 9;                                       /* minor 9: still read */
    env[54] = 0xab;                                   /* reserved bytes it may use */
    resign(env, len);
    decodes_to(env, len, &m, s, &got);

    /* a later minor's extension bytes after the strings are skipped */
    {
        uint32_t hl = rd32(env + 8);
        len2 = len + 5;
        ext = malloc(len2);
        memcpy(ext, env, hl);
        memcpy(ext + hl, "\x01\x02\x03\x04\x05", 5);
        memcpy(ext + hl + 5, env + hl, len - hl);
        wr32(ext + 8, hl + 5);
        resign(ext, len2);
        decodes_to(ext, len2, &m, s, &got);
        free(ext);
    }

    memcpy(env, "PRSX", 4);
    ck_assert_int_eq(wire_parse(env, len, &got, &v), WIRE_EMAGIC);
    free(env);
    free(s);
}
END_TEST

START_TEST(test_frame_without_content_size)
{
    struct wire_meta m, got;
    struct wire_view v;
    size_t len, rawn, n2, zn;
    uint8_t *env, *raw, *env2, *z;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();

    keys_init();
    env = env_make(&m, 0, &len, NULL);
    raw = payload_raw(env, len, &rawn);
    z = malloc(ZSTD_compressBound(rawn));

    /* control: the same bytes with the size declared are accepted */
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    zn = ZSTD_compress2(cctx, z, ZSTD_compressBound(rawn), raw, rawn);
    ck_assert(!ZSTD_isError(zn));
    env2 = env_splice(env, len, z, zn, &n2);
    ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_OK);
    free(env2);

    /* streamed without a pledged size: zstd leaves the size out */
    {
        ZSTD_inBuffer in = { raw, rawn, 0 };
        ZSTD_outBuffer o = { z, ZSTD_compressBound(rawn), 0 };
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
        size_t r = ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_continue);
        ck_assert(!ZSTD_isError(r));
        do {
            r = ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_end);
            ck_assert(!ZSTD_isError(r));
        } while (r != 0);
        zn = o.pos;
    }
    ck_assert_uint_eq(ZSTD_getFrameContentSize(z, zn), ZSTD_CONTENTSIZE_UNKNOWN);
    env2 = env_splice(env, len, z, zn, &n2);
    ck_assert_int_eq(wire_verify(env2, n2, g_pk), WIRE_OK);
    ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_EFRAME);
    free(env2);

    ZSTD_freeCCtx(cctx);
    free(z);
    free(raw);
    free(env);
}
END_TEST

START_TEST(test_frame_size_and_window)
{
    struct wire_meta m, got;
    struct wire_view v;
    size_t len, rawn, n2, fn;
    uint8_t *env, *raw, *env2, *frame;
    void *s, *out;

    keys_init();
    env = env_make(&m, WIRE_FLAGS_DEFAULT, &len, &s);
    raw = payload_raw(env, len, &rawn);
    frame = malloc(rawn + 64);

    /* a foreign but valid frame (raw blocks, 8 MiB window) decodes */
    fn = frame_craft(frame, WIRE_MAX_WINDOW_LOG - 10, rawn, raw, rawn);
    env2 = env_splice(env, len, frame, fn, &n2);
    out = decode_all(env2, n2, &got);
    ck_assert(memcmp(out, s, rawn) == 0);
    free(out);
    free(env2);

    /* window one step beyond the limit */
    fn = frame_craft(frame, WIRE_MAX_WINDOW_LOG - 9, rawn, raw, rawn);
    env2 = env_splice(env, len, frame, fn, &n2);
    ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_ETOOBIG);
    free(env2);

    /* declares more than the limit */
    fn = frame_craft(frame, 13, (uint64_t)WIRE_MAX_SAMPLES_BYTES + 1, raw, rawn);
    env2 = env_splice(env, len, frame, fn, &n2);
    ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_ETOOBIG);
    free(env2);
    fn = frame_craft(frame, 13, UINT64_C(1) << 40, raw, rawn);
    env2 = env_splice(env, len, frame, fn, &n2);
    ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_ETOOBIG);
    free(env2);

    /* declares a size other than the metadata's */
    fn = frame_craft(frame, 13, rawn + 2, raw, rawn);
    env2 = env_splice(env, len, frame, fn, &n2);
    ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_EFRAME);
    free(env2);

    /* declares the right size but holds less: caught at decode */
    fn = frame_craft(frame, 13, rawn, raw, rawn - 2);
    env2 = env_splice(env, len, frame, fn, &n2);
    ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_OK);
    out = malloc(rawn);
    ck_assert_int_eq(wire_decode_samples(&got, &v, out, rawn), WIRE_EFRAME);
    ck_assert_int_eq(wire_decode_samples(&got, &v, out, rawn - 1), WIRE_ETOOBIG);
    free(out);
    free(env2);

    /* two frames in one payload */
    fn = frame_craft(frame, 13, rawn, raw, rawn);
    {
        uint8_t *two = malloc(2 * fn);
        memcpy(two, frame, fn);
        memcpy(two + fn, frame, fn);
        env2 = env_splice(env, len, two, 2 * fn, &n2);
        ck_assert_int_eq(wire_parse(env2, n2, &got, &v), WIRE_EFRAME);
        free(env2);
        free(two);
    }
    free(frame);
    free(raw);
    free(env);
    free(s);
}
END_TEST

START_TEST(test_encode_refuses_bad_fields)
{
    struct wire_meta m;
    uint8_t *env = NULL;
    size_t len = 0;
    void *s;

    keys_init();
    meta_fill(&m, WIRE_I16, 2, 4, 4);
    s = samples_make(&m, 1);
#define REFUSED(stmt, err)                                                          \
    do {                                                                            \
        meta_fill(&m, WIRE_I16, 2, 4, 4);                                           \
        stmt;                                                                       \
        ck_assert_int_eq(wire_encode(&m, s, g_sk, 0, &env, &len), err);             \
        ck_assert_ptr_null(env);                                                    \
    } while (0)
    REFUSED(m.device_id[0] = '\0', WIRE_EFIELD);
    REFUSED(memset(m.device_id, 'a', sizeof m.device_id), WIRE_EFIELD);   /* 65, no NUL */
    REFUSED(strcpy(m.device_id, "a/b"), WIRE_EFIELD);
    REFUSED(strcpy(m.device_id, "a b"), WIRE_EFIELD);
    REFUSED(strcpy(m.device_id, "caf\xc3\xa9"), WIRE_EFIELD);
    REFUSED(m.detector[0] = '\0', WIRE_EFIELD);
    REFUSED(strcpy(m.detector, "tab\there"), WIRE_EFIELD);
    REFUSED(strcpy(m.channels[1].name, "bad\xff"), WIRE_EFIELD);
    REFUSED(strcpy(m.channels[1].unit, "\xc0\xaf"), WIRE_EFIELD);      /* overlong */
    REFUSED(strcpy(m.channels[1].unit, "\xed\xa0\x80"), WIRE_EFIELD);  /* surrogate */
    REFUSED(memset(m.channels[0].unit, 'u', sizeof m.channels[0].unit), WIRE_EFIELD);
    REFUSED(m.channels[0].name[0] = '\0', WIRE_EFIELD);
    REFUSED(m.channel_count = 0, WIRE_EFIELD);
    REFUSED(m.channel_count = WIRE_MAX_CHANNELS + 1, WIRE_EFIELD);
    REFUSED(m.sample_type = 0, WIRE_EFIELD);
    REFUSED(m.sample_type = 4, WIRE_EFIELD);
    REFUSED(m.sample_rate = 0, WIRE_EFIELD);
    REFUSED(m.sample_rate = -1, WIRE_EFIELD);
    REFUSED(m.sample_rate = INFINITY, WIRE_EFIELD);
    REFUSED(m.sample_rate = NAN, WIRE_EFIELD);
    REFUSED(m.score = 1.0001f, WIRE_EFIELD);
    REFUSED(m.score = -0.1f, WIRE_EFIELD);
    REFUSED(m.score = NAN, WIRE_EFIELD);
    REFUSED(m.seq = 0, WIRE_EFIELD);
    REFUSED(m.seq = WIRE_MAX_SEQ + 1, WIRE_EFIELD);
    REFUSED(m.post_samples = 0, WIRE_EFIELD);
    REFUSED(m.post_samples = WIRE_MAX_SAMPLES_BYTES, WIRE_ETOOBIG);
#undef REFUSED
    meta_fill(&m, WIRE_I16, 2, 4, 4);
    ck_assert_int_eq(wire_encode_flags(&m, s, g_sk, 0, 0x4, &env, &len), WIRE_EFIELD);
    ck_assert_int_eq(wire_encode(&m, s, g_sk, 1000, &env, &len), WIRE_EFIELD);
    ck_assert_ptr_null(env);
    ck_assert_int_eq(wire_encode(&m, s, g_sk, 0, &env, &len), WIRE_OK);
    free(env);
    free(s);
}
END_TEST

/* Fields edited in the bytes of a signed envelope: the parser must refuse
 * them even though the signature is valid. */
START_TEST(test_parse_refuses_bad_fields)
{
    struct wire_meta m, got;
    struct wire_view v;
    size_t len;
    uint8_t *env, *e;
    size_t dev = WIRE_FIXED_LEN;   /* length byte of the device id */

    keys_init();
    env = env_make(&m, WIRE_FLAGS_DEFAULT, &len, NULL);
    e = malloc(len);
#define EDITED(stmt, err)                                                  \
    do {                                                                   \
        memcpy(e, env, len);                                               \
        stmt;                                                              \
        resign(e, len);                                                    \
        ck_assert_int_eq(wire_verify(e, len, g_pk), WIRE_OK);              \
        ck_assert_int_eq(wire_parse(e, len, &got, &v), err);               \
    } while (0)
    EDITED((void)0, WIRE_OK);
    EDITED(e[dev + 1] = '/', WIRE_EFIELD);
    EDITED(e[dev + 1] = 0, WIRE_EFIELD);
    EDITED(e[dev] = 0, WIRE_EFIELD);                  /* empty device id */
    EDITED(e[dev] = WIRE_MAX_NAME + 1, WIRE_EFIELD);
    EDITED(e[dev] = 200, WIRE_EFIELD);
    EDITED(e[53] = 0, WIRE_EFIELD);                   /* channel count */
    EDITED(e[53] = WIRE_MAX_CHANNELS + 1, WIRE_EFIELD);
    EDITED(e[53] = 3, WIRE_ETRUNCATED);               /* strings run past header_len */
    EDITED(e[52] = 7, WIRE_EFIELD);                   /* sample type */
    EDITED(e[6] = 0x04, WIRE_EFIELD);                 /* unknown transform */
    EDITED(memset(e + 16, 0, 8), WIRE_EFIELD);        /* seq 0 */
    EDITED(memset(e + 16, 0xff, 8), WIRE_EFIELD);     /* seq beyond int64 */
    EDITED(memset(e + 32, 0, 8), WIRE_EFIELD);        /* rate 0 */
    EDITED(memset(e + 32, 0xff, 8), WIRE_EFIELD);     /* rate NaN */
    EDITED(wr32(e + 48, 0x3f800001u), WIRE_EFIELD);   /* score just above 1 */
    EDITED(wr32(e + 48, 0x7fc00000u), WIRE_EFIELD);   /* score NaN */
    EDITED(wr32(e + 44, 0), WIRE_EFIELD);             /* no post samples */
    EDITED(wr32(e + 44, 31), WIRE_EFRAME);            /* size disagrees with frame */
    EDITED(wr32(e + 44, 0x7fffffffu), WIRE_ETOOBIG);
    EDITED(wr32(e + 8, 10), WIRE_EFIELD);             /* header_len below fixed part */
    EDITED(wr32(e + 8, WIRE_MAX_HEADER_LEN + 1), WIRE_ETOOBIG);
    EDITED(wr32(e + 8, rd32(e + 8) + 1), WIRE_ETRUNCATED);
    EDITED(wr32(e + 8, rd32(e + 8) - 1), WIRE_EFIELD);
    EDITED(wr32(e + 12, 0xffffffffu), WIRE_ETOOBIG);
    EDITED(wr32(e + 12, rd32(e + 12) + 1), WIRE_ETRUNCATED);
#undef EDITED
    free(e);
    free(env);
}
END_TEST

/* The committed fuzz corpus replays without a crash (ASan/UBSan watch). */
START_TEST(test_fuzz_corpus_replay)
{
    DIR *d = opendir(CORPUS_DIR);
    struct dirent *de;
    int files = 0;

    keys_init();
    ck_assert_msg(d != NULL, "cannot open %s (run from the repository root)", CORPUS_DIR);
    while ((de = readdir(d)) != NULL) {
        char path[512];
        FILE *f;
        uint8_t *buf;
        long n;
        struct wire_meta m;
        struct wire_view v;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, de->d_name);
        f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        buf = malloc(n > 0 ? (size_t)n : 1);
        ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        (void)wire_verify(buf, (size_t)n, g_pk);
        if (wire_parse(buf, (size_t)n, &m, &v) == WIRE_OK) {
            size_t bytes = wire_samples_bytes(&m);
            void *out = malloc(bytes);
            (void)wire_decode_samples(&m, &v, out, bytes);
            free(out);
        }
        free(buf);
        files++;
    }
    closedir(d);
    ck_assert_int_gt(files, 0);
}
END_TEST

/* ---- golden vectors ----------------------------------------------------- */

struct vec_spec {
    const char *name;          /* file stem in tests/vectors */
    uint8_t type, channels;
    uint32_t pre, post;
    double rate;
    float score;
    uint64_t seq;
    int64_t time_us;
    const char *device, *detector;
    const char *ch_names[4], *ch_units[4];
    uint64_t data_seed;
};

#define VEC_LEVEL 3

static const struct vec_spec vecs[] = {
    { "i16_2ch", WIRE_I16, 2, 300, 700, 10000.0, 0.75f, 1, 1700000000000000,
      "pump-07", "rms", { "axial", "radial" }, { "g", "g" }, 1 },
    { "f32_4ch", WIRE_F32, 4, 256, 768, 25600.0, 0.875f, 42, 1712345678901234,
      "fan_B.2", "kurtosis", { "x", "y", "z", "temp" }, { "m/s\xc2\xb2", "m/s\xc2\xb2", "m/s\xc2\xb2", "\xc2\xb0" "C" }, 2 },
    { "i32_1ch", WIRE_I32, 1, 0, 2000, 1000.0, 0.0f, 4294967297ull, -1,
      "press-1", "threshold", { "force" }, { "" }, 3 },
};

static void vec_meta(const struct vec_spec *vs, struct wire_meta *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->device_id, vs->device);
    strcpy(m->detector, vs->detector);
    m->seq = vs->seq;
    m->trigger_time_us = vs->time_us;
    m->sample_rate = vs->rate;
    m->sample_type = vs->type;
    m->channel_count = vs->channels;
    m->pre_samples = vs->pre;
    m->post_samples = vs->post;
    m->score = vs->score;
    for (unsigned c = 0; c < vs->channels; c++) {
        strcpy(m->channels[c].name, vs->ch_names[c]);
        strcpy(m->channels[c].unit, vs->ch_units[c]);
    }
}

/* SHA-256 of the samples as little-endian bytes (the host order here is
 * little-endian on every platform we build for; checked below). */
static void samples_sha256(const void *s, size_t bytes, char out[65])
{
    uint8_t h[32];
    uint16_t one = 1;

    ck_assert_msg(*(uint8_t *)&one == 1, "vector checksums assume a little-endian host");
    crypto_hash_sha256(h, s, bytes);
    hex(h, 32, out);
}

/* The .txt beside each vector: `key=value` lines, `#` comments. */
static char *describe(const struct vec_spec *vs, const struct wire_meta *m, const void *s,
                      const uint8_t *env, size_t len)
{
    char *t = malloc(8192), pkhex[65], sum[65], esum[65];
    uint8_t h[32];
    size_t p = 0;

    hex(g_pk, 32, pkhex);
    samples_sha256(s, wire_samples_bytes(m), sum);
    crypto_hash_sha256(h, env, len);
    hex(h, 32, esum);
    p += (size_t)snprintf(t + p, 8192 - p,
        "# golden wire v1 envelope; see tests/vectors/README.md\n"
        "file=%s.prsn\nbytes=%zu\nenvelope_sha256=%s\npublic_key=%s\nzstd_level=%d\n"
        "device_id=%s\nseq=%llu\ntrigger_time_us=%lld\nsample_rate=%.17g\nsample_type=%s\n"
        "channel_count=%u\nflags=%u\npre_samples=%u\npost_samples=%u\ndetector=%s\nscore=%.9g\n",
        vs->name, len, esum, pkhex, VEC_LEVEL, m->device_id, (unsigned long long)m->seq,
        (long long)m->trigger_time_us, m->sample_rate, wire_sample_type_name(m->sample_type),
        m->channel_count, m->flags, m->pre_samples, m->post_samples, m->detector,
        (double)m->score);
    for (unsigned c = 0; c < m->channel_count; c++)
        p += (size_t)snprintf(t + p, 8192 - p, "channel.%u.name=%s\nchannel.%u.unit=%s\n", c,
                              m->channels[c].name, c, m->channels[c].unit);
    snprintf(t + p, 8192 - p, "samples_bytes=%zu\nsamples_sha256=%s\n", wire_samples_bytes(m),
             sum);
    return t;
}

START_TEST(test_vectors)
{
    const char *regen = getenv("WIRE_REGEN_VECTORS");

    keys_init();
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const struct vec_spec *vs = &vecs[i];
        struct wire_meta m, got;
        uint8_t *env = NULL, *file, *again = NULL;
        size_t len, flen, alen;
        char *txt, *ftxt;
        void *s, *out;

        vec_meta(vs, &m);
        s = samples_make(&m, vs->data_seed);
        ck_assert_int_eq(wire_encode(&m, s, g_sk, VEC_LEVEL, &env, &len), WIRE_OK);
        m.flags = WIRE_FLAGS_DEFAULT;
        txt = describe(vs, &m, s, env, len);

        if (regen && *regen) {
            vector_write(regen, vs->name, env, len, txt);
            free(txt);
            free(env);
            free(s);
            continue;
        }

        /* (a) the file decodes to the described metadata and samples */
        file = vector_read(vs->name, "prsn", &flen);
        out = decode_all(file, flen, &got);
        meta_eq(&m, &got);
        ck_assert(memcmp(out, s, wire_samples_bytes(&m)) == 0);
        ftxt = (char *)vector_read(vs->name, "txt", &alen);
        {
            char *gtxt = describe(vs, &got, out, file, flen);
            ck_assert_str_eq(ftxt, gtxt);   /* metadata and checksums as described */
            free(gtxt);
        }
        /* (b) re-encoding the decoded content reproduces the bytes */
        ck_assert_int_eq(wire_encode_flags(&got, out, g_sk, VEC_LEVEL, got.flags, &again, &alen),
                         WIRE_OK);
        ck_assert_uint_eq(alen, flen);
        ck_assert_msg(memcmp(again, file, flen) == 0, "%s: re-encoding differs", vs->name);
        /* and so does generating it from the spec */
        ck_assert_uint_eq(len, flen);
        ck_assert_msg(memcmp(env, file, flen) == 0, "%s: regenerated vector differs", vs->name);
        ck_assert_str_eq(txt, ftxt);

        free(again);
        free(ftxt);
        free(out);
        free(file);
        free(txt);
        free(env);
        free(s);
    }
}
END_TEST

Suite *wire_suite(void);  /* called by the generated runner */

Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("codec");
    TCase *hostile = tcase_create("hostile");
    TCase *golden = tcase_create("golden");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_roundtrip, 0, 12);
    tcase_add_test(tc, test_roundtrip_default_and_levels);
    tcase_add_test(tc, test_encode_ctx);
    tcase_add_test(tc, test_large_payload_window_capped);
    tcase_add_test(tc, test_samples_bytes_limits);
    tcase_add_test(tc, test_error_names);
    suite_add_tcase(s, tc);

    tcase_set_timeout(hostile, 60);
    tcase_add_test(hostile, test_every_truncation_refused);
    tcase_add_test(hostile, test_trailing_byte_refused);
    tcase_add_test(hostile, test_every_bit_flip_fails_verify);
    tcase_add_test(hostile, test_wrong_key);
    tcase_add_test(hostile, test_versions);
    tcase_add_test(hostile, test_frame_without_content_size);
    tcase_add_test(hostile, test_frame_size_and_window);
    tcase_add_test(hostile, test_encode_refuses_bad_fields);
    tcase_add_test(hostile, test_parse_refuses_bad_fields);
    tcase_add_test(hostile, test_fuzz_corpus_replay);
    suite_add_tcase(s, hostile);

    tcase_add_test(golden, test_vectors);
    suite_add_tcase(s, golden);
    return s;
}
