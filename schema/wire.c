/* wire.c - wire formats v1 and v2: encode + sign, parse + bound-check,
 * verify, decode.  The v2 predictors themselves are in wire_predict.c.
 *
 * The byte layout is in schema/WIRE.md; the table below is its summary.  All
 * integers are little-endian.  Every length read from an envelope is checked
 * against a limit and against the bytes actually present before it is used:
 * the parser runs on bytes that arrived from the network.
 *
 *   off  size  field
 *     0     4  magic "PRSN"
 *     4     1  version major (1)
 *     5     1  version minor (0)
 *     6     2  flags (WIRE_FLAG_*)
 *     8     4  header_len: offset of the payload
 *    12     4  payload_len: bytes of the zstd frame
 *    16     8  seq
 *    24     8  trigger_time_us (signed)
 *    32     8  sample_rate (IEEE 754 binary64)
 *    40     4  pre_samples
 *    44     4  post_samples
 *    48     4  score (IEEE 754 binary32)
 *    52     1  sample_type
 *    53     1  channel_count
 *    54     2  reserved, written 0, ignored by v1 readers
 *    56     .  strings: u8 length + bytes, for device_id, detector, then each
 *              channel's name and unit; then extension bytes up to header_len
 *  header_len  payload_len bytes: one zstd frame (planar samples, transformed)
 *   len - 64  64  Ed25519 signature over bytes [0, len - 64)
 *
 * v2 (major 2) keeps this layout and adds: byte 54 = block_log; after the
 * strings, per channel scale and offset (binary64 each); a payload frame
 * that holds one predictor record per block and channel before the planes of
 * zigzagged residuals (flag PREDICT).
 */
#define ZSTD_STATIC_LINKING_ONLY  /* ZSTD_getFrameHeader, ZSTD_d_windowLogMax */
#include "schema/wire.h"
#include "schema/wire_int.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Error table: one place for names and messages. */
#define WIRE_ERRORS(X)                                                       \
    X(WIRE_OK, "wire_ok", "ok")                                              \
    X(WIRE_ETRUNCATED, "wire_truncated", "envelope shorter than its own lengths say") \
    X(WIRE_EMAGIC, "wire_magic", "not a wire envelope (bad magic)")          \
    X(WIRE_EVERSION, "wire_version", "unknown major version")                \
    X(WIRE_EFIELD, "wire_field", "a field out of its documented range")      \
    X(WIRE_ETOOBIG, "wire_too_big", "a length beyond a limit")               \
    X(WIRE_ESIGNATURE, "wire_signature", "signature does not verify")        \
    X(WIRE_EFRAME, "wire_frame", "bad zstd frame, no declared content size, or wrong size") \
    X(WIRE_ENOMEM, "wire_nomem", "out of memory")                            \
    X(WIRE_EINTERNAL, "wire_internal", "internal error")                     \
    X(WIRE_EIO, "wire_io", "the envelope's file could not be written, or read back differently")

const char *wire_strerror(int err)
{
    switch (err) {
#define X(code, name, msg) case code: return msg;
    WIRE_ERRORS(X)
#undef X
    default: return "unknown wire error";
    }
}

const char *wire_errcode(int err)
{
    switch (err) {
#define X(code, name, msg) case code: return name;
    WIRE_ERRORS(X)
#undef X
    default: return "wire_unknown";
    }
}

size_t wire_sample_size(uint8_t sample_type)
{
    switch (sample_type) {
    case WIRE_I16: return 2;
    case WIRE_I32: return 4;
    case WIRE_F32: return 4;
    default: return 0;
    }
}

const char *wire_sample_type_name(uint8_t sample_type)
{
    switch (sample_type) {
    case WIRE_I16: return "i16";
    case WIRE_I32: return "i32";
    case WIRE_F32: return "f32";
    default: return "?";
    }
}

size_t wire_samples_bytes(const struct wire_meta *m)
{
    size_t size = wire_sample_size(m->sample_type);
    uint64_t n, bytes;

    if (size == 0 || m->channel_count < 1 || m->channel_count > WIRE_MAX_CHANNELS ||
        m->post_samples < 1)
        return 0;
    /* 64-bit arithmetic: 2^33 samples * 64 channels * 4 bytes fits in 2^41. */
    n = (uint64_t)m->pre_samples + m->post_samples;
    bytes = n * m->channel_count * size;
    if (bytes > WIRE_MAX_SAMPLES_BYTES)
        return 0;
    return (size_t)bytes;
}

/* --- little-endian helpers ---------------------------------------------- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* --- field checks -------------------------------------------------------- */

/* Strictly valid UTF-8 without control characters: the server puts these
 * strings into JSON and the labeling UI shows them. */
static int text_ok(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t need;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        i += need + 1;
    }
    return 1;
}

static int device_id_ok(const uint8_t *s, size_t len)
{
    if (len < 1 || len > WIRE_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Which strings may be empty: only a channel's unit (a count has none). */
enum str_kind { STR_DEVICE, STR_NAME, STR_UNIT };

static int string_ok(enum str_kind kind, const uint8_t *s, size_t len)
{
    if (kind == STR_DEVICE)
        return device_id_ok(s, len);
    if (len > WIRE_MAX_NAME || (kind == STR_NAME && len == 0))
        return 0;
    return text_ok(s, len);
}

/* Range checks on the numeric fields shared by encoder and parser. */
static int numbers_check(const struct wire_meta *m)
{
    if (wire_sample_size(m->sample_type) == 0 || m->channel_count < 1 ||
        m->channel_count > WIRE_MAX_CHANNELS || m->post_samples < 1 ||
        m->seq < 1 || m->seq > WIRE_MAX_SEQ)
        return WIRE_EFIELD;
    if (!isfinite(m->sample_rate) || !(m->sample_rate > 0))
        return WIRE_EFIELD;
    if (!(m->score >= 0.0f && m->score <= 1.0f))   /* false for NaN too */
        return WIRE_EFIELD;
    if (wire_samples_bytes(m) == 0)
        return WIRE_ETOOBIG;
    return WIRE_OK;
}

/* Length of a NUL-terminated string in a fixed array, bounded by the array. */
static size_t bounded_len(const char *s)
{
    const char *nul = memchr(s, '\0', WIRE_MAX_NAME + 1);
    return nul ? (size_t)(nul - s) : WIRE_MAX_NAME + 1;
}

/* --- payload transforms -------------------------------------------------- */

/* Forward transform of one channel: host order -> little-endian, then delta
 * (wrapping difference for integers, XOR of the bit pattern for float32 so
 * that every bit pattern, NaNs included, survives), then the byte shuffle
 * (all first bytes of the plane, then all second bytes, ...).  One loop per
 * sample width keeps this at memory speed; the flag tests are loop-invariant. */
static void transform_plane(const uint8_t *in, uint8_t *out, size_t n, uint8_t type,
                            uint16_t flags)
{
    int delta = (flags & WIRE_FLAG_DELTA) != 0, shuffle = (flags & WIRE_FLAG_SHUFFLE) != 0;

    if (type == WIRE_I16) {
        uint16_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            uint16_t u, d;
            memcpy(&u, in + i * 2, 2);
            d = delta ? (uint16_t)(u - prev) : u;
            prev = u;
            if (shuffle) {
                out[i] = (uint8_t)d;
                out[n + i] = (uint8_t)(d >> 8);
            } else {
                put16(out + i * 2, d);
            }
        }
        return;
    }
    uint32_t prev = 0;
    int xor = type == WIRE_F32;
    for (size_t i = 0; i < n; i++) {
        uint32_t u, d;
        memcpy(&u, in + i * 4, 4);
        d = !delta ? u : xor ? u ^ prev : u - prev;
        prev = u;
        if (shuffle) {
            out[i] = (uint8_t)d;
            out[n + i] = (uint8_t)(d >> 8);
            out[2 * n + i] = (uint8_t)(d >> 16);
            out[3 * n + i] = (uint8_t)(d >> 24);
        } else {
            put32(out + i * 4, d);
        }
    }
}

/* Inverse of transform_plane.  src holds the wire bytes of the plane; it may
 * be dst itself when not shuffled, as sample i is read before it is written. */
static void untransform_plane(const uint8_t *src, uint8_t *dst, size_t n, uint8_t type,
                              uint16_t flags)
{
    int delta = (flags & WIRE_FLAG_DELTA) != 0, shuffle = (flags & WIRE_FLAG_SHUFFLE) != 0;

    if (type == WIRE_I16) {
        uint16_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            uint16_t d = shuffle ? (uint16_t)(src[i] | src[n + i] << 8) : get16(src + i * 2);
            uint16_t u = delta ? (uint16_t)(d + prev) : d;
            prev = u;
            memcpy(dst + i * 2, &u, 2);
        }
        return;
    }
    uint32_t prev = 0;
    int xor = type == WIRE_F32;
    for (size_t i = 0; i < n; i++) {
        uint32_t d = shuffle ? ((uint32_t)src[i] | (uint32_t)src[n + i] << 8 |
                                (uint32_t)src[2 * n + i] << 16 | (uint32_t)src[3 * n + i] << 24)
                             : get32(src + i * 4);
        uint32_t u = !delta ? d : xor ? d ^ prev : d + prev;
        prev = u;
        memcpy(dst + i * 4, &u, 4);
    }
}

/* --- encode -------------------------------------------------------------- */

static uint8_t *put_string(uint8_t *p, const char *s, size_t len)
{
    *p++ = (uint8_t)len;
    memcpy(p, s, len);
    return p + len;
}

/* The scale written for a channel: 0 means "codes are the unit". */
static double scale_of(const struct wire_channel *c) { return c->scale == 0 ? 1.0 : c->scale; }

static int calibration_ok(double scale, double offset)
{
    return isfinite(scale) && scale != 0 && isfinite(offset);
}

/* Checks m as the parser would, and returns the header length it needs
 * (with the v2 calibration table if version is 2). */
static int meta_check(const struct wire_meta *m, unsigned version, size_t *header_len)
{
    size_t len = WIRE_FIXED_LEN, l;
    int rc = numbers_check(m);

    if (rc < 0)
        return rc;
    l = bounded_len(m->device_id);
    if (!string_ok(STR_DEVICE, (const uint8_t *)m->device_id, l))
        return WIRE_EFIELD;
    len += 1 + l;
    l = bounded_len(m->detector);
    if (!string_ok(STR_NAME, (const uint8_t *)m->detector, l))
        return WIRE_EFIELD;
    len += 1 + l;
    for (unsigned c = 0; c < m->channel_count; c++) {
        l = bounded_len(m->channels[c].name);
        if (!string_ok(STR_NAME, (const uint8_t *)m->channels[c].name, l))
            return WIRE_EFIELD;
        len += 1 + l;
        l = bounded_len(m->channels[c].unit);
        if (!string_ok(STR_UNIT, (const uint8_t *)m->channels[c].unit, l))
            return WIRE_EFIELD;
        len += 1 + l;
        if (version == 2 && !calibration_ok(scale_of(&m->channels[c]), m->channels[c].offset))
            return WIRE_EFIELD;
    }
    if (version == 2)
        len += WIRE_CALIBRATION_LEN * m->channel_count;
    *header_len = len;
    return WIRE_OK;
}

static void write_header(const struct wire_meta *m, uint16_t flags, unsigned version,
                         unsigned block_log, size_t header_len, uint8_t *p)
{
    uint64_t rate_bits;
    uint32_t score_bits;

    memcpy(&rate_bits, &m->sample_rate, 8);
    memcpy(&score_bits, &m->score, 4);
    memcpy(p, WIRE_MAGIC, 4);
    p[4] = (uint8_t)version;
    p[5] = WIRE_VERSION_MINOR;
    put16(p + 6, flags);
    put32(p + 8, (uint32_t)header_len);
    put32(p + 12, 0);   /* payload_len, known after compression */
    put64(p + 16, m->seq);
    put64(p + 24, (uint64_t)m->trigger_time_us);
    put64(p + 32, rate_bits);
    put32(p + 40, m->pre_samples);
    put32(p + 44, m->post_samples);
    put32(p + 48, score_bits);
    p[52] = m->sample_type;
    p[53] = m->channel_count;
    put16(p + 54, version == 2 ? (uint16_t)block_log : 0);

    uint8_t *s = p + WIRE_FIXED_LEN;
    s = put_string(s, m->device_id, bounded_len(m->device_id));
    s = put_string(s, m->detector, bounded_len(m->detector));
    for (unsigned c = 0; c < m->channel_count; c++) {
        s = put_string(s, m->channels[c].name, bounded_len(m->channels[c].name));
        s = put_string(s, m->channels[c].unit, bounded_len(m->channels[c].unit));
    }
    for (unsigned c = 0; version == 2 && c < m->channel_count; c++) {
        double scale = scale_of(&m->channels[c]);
        uint64_t bits;
        memcpy(&bits, &scale, 8);
        put64(s, bits);
        memcpy(&bits, &m->channels[c].offset, 8);
        put64(s + 8, bits);
        s += WIRE_CALIBRATION_LEN;
    }
}

static int layout_of(uint16_t flags);

/* How an envelope is written: version, transforms, block length, and for v2
 * the linear predictor's largest order. */
struct enc_plan {
    unsigned version, block_log, max_order;
    uint16_t flags;
};

/* Planar samples in one piece. */
static struct wire_planes whole(const struct wire_meta *m, const void *samples)
{
    size_t n = (size_t)m->pre_samples + m->post_samples;
    struct wire_planes p = { samples, NULL, n, n };

    return p;
}

/* The payload's content before compression into tmp (v2: the predictor
 * records, then the planes; work is the predictors' working memory).
 * Returns its size. */
static size_t payload_build(const struct wire_meta *m, const struct wire_planes *src,
                            const struct enc_plan *pl, uint8_t *tmp, void *work)
{
    size_t bytes = wire_samples_bytes(m), size = wire_sample_size(m->sample_type);
    size_t n = bytes / size / m->channel_count, side = 0, stride = src->stride * size;
    const uint8_t *first = src->first, *second = src->second;

    if (pl->version == 2 && (pl->flags & WIRE_FLAG_PREDICT)) {
        size_t rec = wire__blocks(n, pl->block_log) * WIRE_BLOCK_HDR_LEN;
        side = rec * m->channel_count;
        for (unsigned c = 0; c < m->channel_count; c++)
            wire__predict_plane(first + c * stride, src->first_len,
                                second ? second + c * stride : NULL, n, m->sample_type,
                                pl->block_log, layout_of(pl->flags),
                                pl->max_order, tmp + c * rec, tmp + side + c * n * size, work);
        return side + bytes;
    }
    /* encode_check made sure the samples are in one piece here */
    for (unsigned c = 0; c < m->channel_count; c++)
        transform_plane(first + c * stride, tmp + c * n * size, n, m->sample_type, pl->flags);
    return bytes;
}

/* The encoder proper, shared by wire_encode_flags (fresh context and
 * buffers per call) and wire_encode_ctx (the caller's, reused).  tmp holds
 * wire_samples_bytes(m), buf cap bytes; on success the envelope is in buf.
 * Parameters the caller set on cctx (hash and chain sizes, a smaller window)
 * are kept: only the ones the format needs are set here, and the window is
 * held within WIRE_MAX_WINDOW_LOG. */
static int encode_into(ZSTD_CCtx *cctx, const struct wire_meta *m, const struct wire_planes *src,
                       const uint8_t sk[WIRE_SK_LEN], int level, const struct enc_plan *pl,
                       size_t header_len, uint8_t *tmp, void *work, uint8_t *buf, size_t cap,
                       size_t *out_len)
{
    size_t bytes, z;
    int wlog = 0;

    bytes = payload_build(m, src, pl, tmp, work);
    write_header(m, pl->flags, pl->version, pl->block_log, header_len, buf);
    /* The content size must be in the frame header (the parser refuses a
     * frame without it) and the window must stay within what readers accept;
     * zstd shrinks the window further for small inputs. */
    if (ZSTD_isError(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only)) ||
        ZSTD_isError(ZSTD_CCtx_getParameter(cctx, ZSTD_c_windowLog, &wlog)))
        return WIRE_EINTERNAL;
    if (wlog == 0 || wlog > WIRE_MAX_WINDOW_LOG)
        wlog = WIRE_MAX_WINDOW_LOG;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, wlog)))
        return WIRE_EINTERNAL;
    z = ZSTD_compress2(cctx, buf + header_len, cap - header_len - WIRE_SIG_LEN, tmp, bytes);
    if (ZSTD_isError(z) || z > WIRE_MAX_PAYLOAD_LEN)
        return WIRE_EINTERNAL;
    put32(buf + 12, (uint32_t)z);
    if (crypto_sign_ed25519_detached(buf + header_len + z, NULL, buf, header_len + z, sk) != 0)
        return WIRE_EINTERNAL;
    *out_len = header_len + z + WIRE_SIG_LEN;
    return WIRE_OK;
}

/* Checks shared by the encoders; *level is made concrete. */
static int encode_check(const struct wire_meta *m, const void *samples, const uint8_t *sk,
                        int *level, const struct enc_plan *pl, size_t *header_len)
{
    int rc;

    if (!m || !samples || !sk ||
        (pl->version == 2 ? !wire_v2_flags_ok(pl->flags) : (pl->flags & ~WIRE_FLAGS_KNOWN) != 0))
        return WIRE_EFIELD;
    if (pl->version == 2 &&
        (pl->block_log < WIRE_BLOCK_LOG_MIN || pl->block_log > WIRE_BLOCK_LOG_MAX))
        return WIRE_EFIELD;
    rc = meta_check(m, pl->version, header_len);
    if (rc < 0)
        return rc;
    if (*level == 0)
        *level = WIRE_DEFAULT_LEVEL;
    if (*level < ZSTD_minCLevel() || *level > ZSTD_maxCLevel())
        return WIRE_EFIELD;
    if (sodium_init() < 0)
        return WIRE_EINTERNAL;
    return WIRE_OK;
}

/* The signature wire_encode_ctx and wire_encode_v2_ctx share. */
typedef int ctx_encoder(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m, const void *samples,
                        const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags, void *scratch,
                        size_t scratch_cap, uint8_t *out, size_t out_cap, size_t *out_len);

/* The allocating encoders (wire_encode_flags, wire_encode_v2) are their
 * _ctx form given a zstd context, scratch_cap bytes of scratch and out_cap
 * of output for one call; *out is the caller's only when it succeeded. */
static int encode_alloc(ctx_encoder *encode, const struct wire_meta *m, const void *samples,
                        const uint8_t *sk, int level, uint16_t flags, size_t scratch_cap,
                        size_t out_cap, uint8_t **out, size_t *out_len)
{
    void *scratch = malloc(scratch_cap);
    uint8_t *buf = malloc(out_cap);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t len = 0;
    int rc;

    if (!scratch || !buf || !cctx) {
        rc = WIRE_ENOMEM;
        goto out;
    }
    rc = encode(cctx, m, samples, sk, level, flags, scratch, scratch_cap, buf, out_cap, &len);
    if (rc < 0)
        goto out;
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    ZSTD_freeCCtx(cctx);
    free(scratch);
    free(buf);
    return rc;
}

int wire_encode_flags(const struct wire_meta *m, const void *samples,
                      const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                      uint8_t **out, size_t *out_len)
{
    struct enc_plan pl = { 1, 0, 0, flags };
    size_t header_len, bytes;
    int rc;

    if (!out || !out_len)
        return WIRE_EFIELD;
    /* checked here too: the buffers are sized by the header's length */
    rc = encode_check(m, samples, sk, &level, &pl, &header_len);
    if (rc < 0)
        return rc;
    bytes = wire_samples_bytes(m);
    return encode_alloc(wire_encode_ctx, m, samples, sk, level, flags, bytes,
                        header_len + ZSTD_compressBound(bytes) + WIRE_SIG_LEN, out, out_len);
}

size_t wire_encode_bound(size_t samples_bytes)
{
    if (samples_bytes > WIRE_MAX_SAMPLES_BYTES)
        return 0;
    return WIRE_MAX_HEADER_LEN + ZSTD_compressBound(samples_bytes) + WIRE_SIG_LEN;
}

int wire_encode_ctx(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m, const void *samples,
                    const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                    void *scratch, size_t scratch_cap, uint8_t *out, size_t out_cap,
                    size_t *out_len)
{
    size_t header_len, bytes, len = 0;
    struct enc_plan pl = { 1, 0, 0, flags };
    int rc;

    if (!cctx || !scratch || !out || !out_len)
        return WIRE_EFIELD;
    rc = encode_check(m, samples, sk, &level, &pl, &header_len);
    if (rc < 0)
        return rc;
    bytes = wire_samples_bytes(m);
    /* Room for zstd's worst case, so compression never fails for space. */
    if (scratch_cap < bytes || out_cap < header_len + ZSTD_compressBound(bytes) + WIRE_SIG_LEN)
        return WIRE_ETOOBIG;
    struct wire_planes src = whole(m, samples);
    rc = encode_into(cctx, m, &src, sk, level, &pl, header_len, scratch, NULL, out, out_cap,
                     &len);
    if (rc < 0)
        return rc;
    *out_len = len;
    return WIRE_OK;
}

int wire_encode(const struct wire_meta *m, const void *samples,
                const uint8_t sk[WIRE_SK_LEN], int level,
                uint8_t **out, size_t *out_len)
{
    return wire_encode_flags(m, samples, sk, level, WIRE_FLAGS_DEFAULT, out, out_len);
}

/* --- encode v2 ------------------------------------------------------------ */

int wire_v2_flags_ok(uint16_t flags)
{
    if (flags & ~WIRE_FLAGS_V2_KNOWN)
        return 0;
    if ((flags & WIRE_FLAG_BITSHUFFLE) &&
        ((flags & WIRE_FLAG_SHUFFLE) || !(flags & WIRE_FLAG_PREDICT)))
        return 0;
    return 1;
}

static int layout_of(uint16_t flags)
{
    return (flags & WIRE_FLAG_BITSHUFFLE) ? WIRE__LAYOUT_BITSHUFFLE
         : (flags & WIRE_FLAG_SHUFFLE) ? WIRE__LAYOUT_SHUFFLE : WIRE__LAYOUT_LE;
}

static unsigned block_log_of(const struct wire_meta *m)
{
    return m->block_log ? m->block_log : WIRE_BLOCK_LOG_DEFAULT;
}

size_t wire_content_bytes(const struct wire_meta *m)
{
    size_t bytes = wire_samples_bytes(m), n;
    unsigned bl = block_log_of(m);

    if (bytes == 0 || bl < WIRE_BLOCK_LOG_MIN || bl > WIRE_BLOCK_LOG_MAX)
        return 0;
    n = (size_t)m->pre_samples + m->post_samples;
    return bytes + wire__blocks(n, bl) * WIRE_BLOCK_HDR_LEN * m->channel_count;
}

size_t wire_encode_v2_scratch_bound(const struct wire_meta *m)
{
    size_t content = wire_content_bytes(m);

    return content ? ((content + 15) & ~(size_t)15) + wire__work_bytes(block_log_of(m)) : 0;
}

size_t wire_encode_v2_bound(const struct wire_meta *m)
{
    size_t content = wire_content_bytes(m);

    return content ? WIRE_MAX_HEADER_LEN + ZSTD_compressBound(content) + WIRE_SIG_LEN : 0;
}

int wire_encode_v2_planes(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m,
                          const struct wire_planes *src, const uint8_t sk[WIRE_SK_LEN], int level,
                          uint16_t flags, void *scratch, size_t scratch_cap, uint8_t *out,
                          size_t out_cap, size_t *out_len)
{
    struct enc_plan pl = { 2, 0, WIRE_ENCODE_ORDER, flags };
    size_t header_len, content, len = 0, n;
    int rc;

    if (!cctx || !scratch || !out || !out_len || !m || !src)
        return WIRE_EFIELD;
    pl.block_log = block_log_of(m);
    rc = encode_check(m, src->first, sk, &level, &pl, &header_len);
    if (rc < 0)
        return rc;
    /* two pieces only where the predictors read them (v1's transforms do not) */
    n = (size_t)m->pre_samples + m->post_samples;
    if ((src->first_len < n && (!src->second || !(flags & WIRE_FLAG_PREDICT))) ||
        (m->channel_count > 1 && src->stride < (src->first_len < n ? src->first_len : n)))
        return WIRE_EFIELD;
    content = (wire_content_bytes(m) + 15) & ~(size_t)15;
    if (scratch_cap < wire_encode_v2_scratch_bound(m) ||
        out_cap < header_len + ZSTD_compressBound(content) + WIRE_SIG_LEN)
        return WIRE_ETOOBIG;
    rc = encode_into(cctx, m, src, sk, level, &pl, header_len, scratch,
                     (uint8_t *)scratch + content, out, out_cap, &len);
    if (rc < 0)
        return rc;
    *out_len = len;
    return WIRE_OK;
}

/* Where the streaming encoders' zstd frame goes: into a buffer with room
 * for all of it (zstd writes there directly: ZSTD_c_stableOutBuffer), or
 * through a chunk appended to a wire_file each time it fills. */
struct frame_out {
    ZSTD_outBuffer ob;
    const struct wire_file *f;      /* NULL: ob has room for the whole frame */
    uint64_t appended;              /* bytes of ob appended to f so far */
    size_t block, room;             /* through a chunk: zstd's block, its compressed bound */
};

static int frame_flush(struct frame_out *o)
{
    if (o->f == NULL || o->ob.pos == 0)
        return WIRE_OK;
    if (o->f->append(o->f->ctx, o->ob.dst, o->ob.pos) != 0)
        return WIRE_EIO;
    o->appended += o->ob.pos;
    o->ob.pos = 0;
    return WIRE_OK;
}

/* Feed in to the stream; mode ZSTD_e_end also flushes the frame's end.
 * Through a chunk, the input goes a block at a time (zstd then compresses
 * at most one block per call) and the chunk is emptied before a call when
 * a block's bound does not fit: zstd compresses straight into the chunk
 * and never touches the output buffer it would otherwise keep in its
 * context, which would stay resident there between snapshots. */
static int stream_feed(ZSTD_CCtx *cctx, struct frame_out *o, const void *p, size_t len,
                       ZSTD_EndDirective mode)
{
    size_t done = 0;

    for (;;) {
        size_t give = len - done, r;
        int rc;

        if (o->f != NULL) {
            if (give > o->block)
                give = o->block;
            if (o->ob.size - o->ob.pos < o->room && (rc = frame_flush(o)) != 0)
                return rc;
        }
        ZSTD_inBuffer in = { give ? (const uint8_t *)p + done : p, give, 0 };
        ZSTD_EndDirective m = done + give == len ? mode : ZSTD_e_continue;

        r = ZSTD_compressStream2(cctx, &o->ob, &in, m);
        if (ZSTD_isError(r))
            return WIRE_EINTERNAL;
        done += in.pos;
        if (done == len && (mode != ZSTD_e_end || r == 0))
            return WIRE_OK;
        if (o->ob.pos == o->ob.size) {
            if (o->f == NULL)
                return WIRE_EINTERNAL;  /* cannot happen: the buffer holds zstd's bound */
            if ((rc = frame_flush(o)) != 0)
                return rc;
        }
    }
}

size_t wire_encode_v2_stream_scratch_bound(const struct wire_meta *m)
{
    size_t content = wire_content_bytes(m), bytes = wire_samples_bytes(m), side, plane;

    if (!content)
        return 0;
    side = (content - bytes + 15) & ~(size_t)15;
    plane = (bytes / m->channel_count + 15) & ~(size_t)15;
    return side + plane + wire__work_bytes(block_log_of(m));
}

size_t wire_encode_v2_file_scratch_bound(const struct wire_meta *m)
{
    size_t stream = wire_encode_v2_stream_scratch_bound(m);

    return stream ? stream + WIRE_FILE_CHUNK : 0;
}

/* One streamed encode, checked and laid out by stream_prepare, run by
 * stream_run into either kind of frame_out. */
struct stream_job {
    const struct wire_meta *m;
    const struct wire_planes *src;
    struct enc_plan pl;
    int level, predict;
    size_t header_len, content, n, size, rec, side, stride, bytes;
    uint8_t *recs, *plane;
    void *work;
};

static int stream_prepare(struct stream_job *j, const struct wire_meta *m,
                          const struct wire_planes *src, const uint8_t *sk, int level,
                          uint16_t flags, void *scratch, size_t scratch_cap, size_t scratch_need)
{
    int rc;

    memset(j, 0, sizeof *j);
    j->pl = (struct enc_plan){ 2, block_log_of(m), WIRE_ENCODE_ORDER, flags };
    j->m = m;
    j->src = src;
    j->level = level;
    rc = encode_check(m, src->first, sk, &j->level, &j->pl, &j->header_len);
    if (rc < 0)
        return rc;
    j->predict = (flags & WIRE_FLAG_PREDICT) != 0;
    j->n = (size_t)m->pre_samples + m->post_samples;
    if ((src->first_len < j->n && (!src->second || !j->predict)) ||
        (m->channel_count > 1 && src->stride < (src->first_len < j->n ? src->first_len : j->n)))
        return WIRE_EFIELD;
    if (scratch_cap < scratch_need)
        return WIRE_ETOOBIG;
    j->content = wire_content_bytes(m);
    j->bytes = wire_samples_bytes(m);
    j->size = wire_sample_size(m->sample_type);
    j->side = j->predict ? j->content - j->bytes : 0;  /* v1's transforms have no records */
    if (j->predict)
        j->rec = wire__blocks(j->n, j->pl.block_log) * WIRE_BLOCK_HDR_LEN;
    j->recs = scratch;
    j->plane = j->recs + ((j->side + 15) & ~(size_t)15);
    j->work = j->plane + ((j->bytes / m->channel_count + 15) & ~(size_t)15);
    j->stride = src->stride * j->size;
    return WIRE_OK;
}

/* The zstd frame of the job's content into o.  The content is every
 * channel's predictor records, then every channel's residual plane: the
 * records are made first (the planes thrown away), then each plane again,
 * one at a time, into the stream.  The predictor is deterministic, so the
 * records match the planes; one plane of scratch instead of the whole
 * content. */
static int stream_run(ZSTD_CCtx *cctx, const struct stream_job *j, struct frame_out *o)
{
    const struct wire_meta *m = j->m;
    const uint8_t *first = j->src->first, *second = j->src->second;
    int wlog = 0, rc;

    for (unsigned c = 0; j->predict && c < m->channel_count; c++)
        wire__predict_plane(first + c * j->stride, j->src->first_len,
                            second ? second + c * j->stride : NULL, j->n, m->sample_type,
                            j->pl.block_log, layout_of(j->pl.flags), j->pl.max_order,
                            j->recs + c * j->rec, j->plane, j->work);
    /* The same frame parameters as encode_into; the pledged size puts the
     * content size in the frame header as the one-shot call does. */
    if (ZSTD_isError(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only)) ||
        ZSTD_isError(ZSTD_CCtx_getParameter(cctx, ZSTD_c_windowLog, &wlog)))
        return WIRE_EINTERNAL;
    if (wlog == 0 || wlog > WIRE_MAX_WINDOW_LOG)
        wlog = WIRE_MAX_WINDOW_LOG;
    /* zstd's blocks are at most its window (smaller ones for small inputs) */
    o->block = (size_t)1 << wlog < ZSTD_BLOCKSIZE_MAX ? (size_t)1 << wlog : ZSTD_BLOCKSIZE_MAX;
    o->room = ZSTD_compressBound(o->block);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, j->level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, wlog)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, j->side + j->bytes)) ||
        /* A buffer with room for the frame stays the same for the whole
         * frame: zstd writes into it directly and keeps no output buffer of
         * its own.  A chunk is emptied between calls, which zstd's stable
         * mode forbids. */
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_stableOutBuffer, o->f == NULL)))
        return WIRE_EINTERNAL;
    if (j->side && (rc = stream_feed(cctx, o, j->recs, j->side, ZSTD_e_continue)) != 0)
        return rc;
    for (unsigned c = 0; c < m->channel_count; c++) {
        if (j->predict)
            wire__predict_plane(first + c * j->stride, j->src->first_len,
                                second ? second + c * j->stride : NULL, j->n, m->sample_type,
                                j->pl.block_log, layout_of(j->pl.flags), j->pl.max_order,
                                j->recs + c * j->rec, j->plane, j->work);
        else
            transform_plane(first + c * j->stride, j->plane, j->n, m->sample_type, j->pl.flags);
        if ((rc = stream_feed(cctx, o, j->plane, j->n * j->size, ZSTD_e_continue)) != 0)
            return rc;
    }
    /* The frame is ended by a call with no input, into an emptied chunk:
     * zstd compresses the input of an ending call straight from the
     * caller's memory when the output has room for all of it (always, for a
     * buffer) and through its own input buffer otherwise, and the two find
     * different matches.  Ended like this, both kinds of frame_out get the
     * same bytes. */
    if ((rc = frame_flush(o)) != 0 || (rc = stream_feed(cctx, o, NULL, 0, ZSTD_e_end)) != 0)
        return rc;
    /* the one-shot encoders may get this context next: leave it as found */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_stableOutBuffer, 0)))
        return WIRE_EINTERNAL;
    return WIRE_OK;
}

int wire_encode_v2_planes_stream(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m,
                                 const struct wire_planes *src, const uint8_t sk[WIRE_SK_LEN],
                                 int level, uint16_t flags, void *scratch, size_t scratch_cap,
                                 uint8_t *buf, size_t out_cap, size_t *out_len)
{
    struct stream_job j;
    struct frame_out o;
    size_t z;
    int rc;

    if (!cctx || !scratch || !buf || !out_len || !m || !src)
        return WIRE_EFIELD;
    rc = stream_prepare(&j, m, src, sk, level, flags, scratch, scratch_cap,
                        wire_encode_v2_stream_scratch_bound(m));
    if (rc != 0)
        return rc;
    if (out_cap < j.header_len + ZSTD_compressBound((j.content + 15) & ~(size_t)15) + WIRE_SIG_LEN)
        return WIRE_ETOOBIG;
    write_header(m, flags, j.pl.version, j.pl.block_log, j.header_len, buf);
    o = (struct frame_out){ .ob = { buf + j.header_len, out_cap - j.header_len - WIRE_SIG_LEN, 0 } };
    if ((rc = stream_run(cctx, &j, &o)) != 0)
        return rc;
    z = o.ob.pos;
    if (z > WIRE_MAX_PAYLOAD_LEN)
        return WIRE_EINTERNAL;
    put32(buf + 12, (uint32_t)z);
    if (crypto_sign_ed25519_detached(buf + j.header_len + z, NULL, buf, j.header_len + z, sk) != 0)
        return WIRE_EINTERNAL;
    *out_len = j.header_len + z + WIRE_SIG_LEN;
    return WIRE_OK;
}

/* The largest header (every string at its longest, 64 channels) fits the
 * chunk it is written through. */
_Static_assert(WIRE_FIXED_LEN + 2 * (1 + WIRE_MAX_NAME) +
                   WIRE_MAX_CHANNELS * (2 * (1 + WIRE_MAX_NAME) + WIRE_CALIBRATION_LEN) <=
               WIRE_FILE_CHUNK, "a v2 header does not fit WIRE_FILE_CHUNK");

int wire_encode_v2_planes_file(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m,
                               const struct wire_planes *src, const uint8_t sk[WIRE_SK_LEN],
                               int level, uint16_t flags, void *scratch, size_t scratch_cap,
                               const struct wire_file *f, size_t *out_len)
{
    struct stream_job j;
    struct frame_out o;
    uint8_t *chunk, z_le[4], sig[WIRE_SIG_LEN];
    uint64_t z;
    int rc;

    if (!cctx || !scratch || !f || !f->append || !f->patch || !f->read || !out_len || !m || !src)
        return WIRE_EFIELD;
    rc = stream_prepare(&j, m, src, sk, level, flags, scratch, scratch_cap,
                        wire_encode_v2_file_scratch_bound(m));
    if (rc != 0)
        return rc;
    chunk = (uint8_t *)scratch + wire_encode_v2_stream_scratch_bound(m);
    /* The header goes out first, through the chunk, with a payload length
     * of 0: the frame's length is known at its end, then patched in. */
    write_header(m, flags, j.pl.version, j.pl.block_log, j.header_len, chunk);
    o = (struct frame_out){ .ob = { chunk, WIRE_FILE_CHUNK, j.header_len }, .f = f };
    if ((rc = stream_run(cctx, &j, &o)) != 0 || (rc = frame_flush(&o)) != 0)
        return rc;
    z = o.appended - j.header_len;
    if (z > WIRE_MAX_PAYLOAD_LEN)
        return WIRE_EINTERNAL;
    put32(z_le, (uint32_t)z);
    if (f->patch(f->ctx, 12, z_le, 4) != 0)
        return WIRE_EIO;
    rc = wire_sign_file(f, j.header_len + z, sk, chunk, WIRE_FILE_CHUNK, sig);
    if (rc == 0 && f->append(f->ctx, sig, WIRE_SIG_LEN) != 0)
        rc = WIRE_EIO;
    if (rc != 0)
        return rc;
    *out_len = j.header_len + z + WIRE_SIG_LEN;
    return WIRE_OK;
}

/* Hashes the first len bytes of f into the SHA-512 state hs and into a
 * 16-byte BLAKE2b check of what was read. */
static int hash_file(const struct wire_file *f, uint64_t len, uint8_t *buf, size_t cap,
                     crypto_hash_sha512_state *hs, uint8_t check[16])
{
    crypto_generichash_state gs;

    if (crypto_generichash_init(&gs, NULL, 0, 16) != 0)
        return WIRE_EINTERNAL;
    for (uint64_t at = 0; at < len;) {
        size_t k = len - at < cap ? (size_t)(len - at) : cap;

        if (f->read(f->ctx, at, buf, k) != 0)
            return WIRE_EIO;
        crypto_hash_sha512_update(hs, buf, k);
        crypto_generichash_update(&gs, buf, k);
        at += k;
    }
    return crypto_generichash_final(&gs, check, 16) == 0 ? WIRE_OK : WIRE_EINTERNAL;
}

int wire_sign_file(const struct wire_file *f, uint64_t len, const uint8_t sk[WIRE_SK_LEN],
                   void *buf, size_t buf_cap, uint8_t sig[WIRE_SIG_LEN])
{
    crypto_hash_sha512_state hs;
    uint8_t az[64], nonce[64], r[32], hram[64], k[32], ka[32], check1[16], check2[16];
    int rc;

    if (!f || !f->read || !sk || !buf || buf_cap < 64 || !sig)
        return WIRE_EFIELD;
    if (sodium_init() < 0)
        return WIRE_EINTERNAL;
    /* RFC 8032 5.1.6, in libsodium's order (ed25519_ref10's sign, the
     * deterministic variant): az = SHA-512(seed), the secret scalar the
     * clamped first half, the nonce r = SHA-512(az[32..64] || M) mod L,
     * R = r B, k = SHA-512(R || A || M) mod L, S = r + k a mod L. */
    crypto_hash_sha512(az, sk, 32);
    crypto_hash_sha512_init(&hs);
    crypto_hash_sha512_update(&hs, az + 32, 32);
    if ((rc = hash_file(f, len, buf, buf_cap, &hs, check1)) != 0)
        goto out;
    crypto_hash_sha512_final(&hs, nonce);
    crypto_core_ed25519_scalar_reduce(r, nonce);
    /* R = r B; fails only for r = 0 mod L (a nonce hash of probability
     * 2^-252), where no signature is better than a wrong one */
    if (crypto_scalarmult_ed25519_base_noclamp(sig, r) != 0) {
        rc = WIRE_EINTERNAL;
        goto out;
    }
    memcpy(sig + 32, sk + 32, 32);
    crypto_hash_sha512_init(&hs);
    crypto_hash_sha512_update(&hs, sig, 64);
    if ((rc = hash_file(f, len, buf, buf_cap, &hs, check2)) != 0)
        goto out;
    if (sodium_memcmp(check1, check2, sizeof check1) != 0) {
        rc = WIRE_EIO;          /* the two readings differ: give out nothing signed */
        goto out;
    }
    crypto_hash_sha512_final(&hs, hram);
    crypto_core_ed25519_scalar_reduce(k, hram);
    az[0] &= 248;
    az[31] &= 127;
    az[31] |= 64;
    crypto_core_ed25519_scalar_mul(ka, k, az);
    crypto_core_ed25519_scalar_add(sig + 32, ka, r);
    rc = WIRE_OK;
out:
    if (rc != 0)
        sodium_memzero(sig, WIRE_SIG_LEN);
    sodium_memzero(az, sizeof az);
    sodium_memzero(nonce, sizeof nonce);
    sodium_memzero(r, sizeof r);
    sodium_memzero(ka, sizeof ka);
    sodium_memzero(&hs, sizeof hs);
    return rc;
}

int wire_encode_v2_ctx(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m, const void *samples,
                       const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                       void *scratch, size_t scratch_cap, uint8_t *out, size_t out_cap,
                       size_t *out_len)
{
    struct wire_planes src;

    if (!m)
        return WIRE_EFIELD;
    src = whole(m, samples);
    return wire_encode_v2_planes(cctx, m, &src, sk, level, flags, scratch, scratch_cap, out,
                                 out_cap, out_len);
}

int wire_encode_v2(const struct wire_meta *m, const void *samples,
                   const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                   uint8_t **out, size_t *out_len)
{
    size_t scap, ocap;

    if (!m || !out || !out_len)
        return WIRE_EFIELD;
    scap = wire_encode_v2_scratch_bound(m);
    ocap = wire_encode_v2_bound(m);
    if (scap == 0 || ocap == 0)
        return wire_samples_bytes(m) == 0 ? WIRE_ETOOBIG : WIRE_EFIELD;
    return encode_alloc(wire_encode_v2_ctx, m, samples, sk, level, flags, scap, ocap, out,
                        out_len);
}

/* --- parse --------------------------------------------------------------- */

/* Reads one length-prefixed string at *pos (bounded by end) into dst. */
static int take_string(const uint8_t *buf, size_t *pos, size_t end, enum str_kind kind,
                       char dst[WIRE_MAX_NAME + 1])
{
    size_t len;

    if (*pos >= end)
        return WIRE_ETRUNCATED;
    len = buf[*pos];
    if (len > WIRE_MAX_NAME)
        return WIRE_EFIELD;
    if (end - *pos - 1 < len)
        return WIRE_ETRUNCATED;
    if (!string_ok(kind, buf + *pos + 1, len))
        return WIRE_EFIELD;
    memcpy(dst, buf + *pos + 1, len);
    dst[len] = '\0';
    *pos += 1 + len;
    return WIRE_OK;
}

/* Largest decompressed v2 payload: the samples and their block records (at
 * most 32 Mi samples in blocks of >= 1024, plus one partial block per
 * channel, 28 bytes each: under 1 MiB). */
#define WIRE_MAX_CONTENT_BYTES (WIRE_MAX_SAMPLES_BYTES + (1u << 20))

/* What the payload frame must declare: v2 with predictors adds the records. */
static size_t content_expected(const struct wire_meta *m)
{
    if (m->version == 2 && (m->flags & WIRE_FLAG_PREDICT))
        return wire_content_bytes(m);
    return wire_samples_bytes(m);
}

static int frame_check(const uint8_t *p, size_t len, size_t expect, size_t limit,
                       uint64_t *content_size)
{
    ZSTD_frameHeader zfh;
    size_t r;

    if (len == 0)
        return WIRE_EFRAME;
    r = ZSTD_getFrameHeader(&zfh, p, len);
    if (r != 0)                      /* error, or header longer than the payload */
        return WIRE_EFRAME;
    if (zfh.frameType != ZSTD_frame || zfh.dictID != 0)
        return WIRE_EFRAME;
    if (zfh.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN ||
        zfh.frameContentSize == ZSTD_CONTENTSIZE_ERROR)
        return WIRE_EFRAME;
    if (zfh.frameContentSize > limit)
        return WIRE_ETOOBIG;
    if (zfh.windowSize > ((uint64_t)1 << WIRE_MAX_WINDOW_LOG))
        return WIRE_ETOOBIG;
    if (zfh.frameContentSize != expect)
        return WIRE_EFRAME;
    /* Exactly one frame, no trailing bytes: walks the block headers only. */
    r = ZSTD_findFrameCompressedSize(p, len);
    if (ZSTD_isError(r) || r != len)
        return WIRE_EFRAME;
    *content_size = zfh.frameContentSize;
    return WIRE_OK;
}

/* v2: each channel's scale and offset after the strings; v1 reads as the
 * identity (codes are the unit). */
static int take_calibration(const uint8_t *buf, size_t pos, size_t end, struct wire_meta *t)
{
    for (unsigned c = 0; c < t->channel_count; c++) {
        t->channels[c].scale = 1.0;
        t->channels[c].offset = 0.0;
    }
    if (t->version != 2)
        return WIRE_OK;
    if (end - pos < (size_t)WIRE_CALIBRATION_LEN * t->channel_count)
        return WIRE_ETRUNCATED;
    for (unsigned c = 0; c < t->channel_count; c++) {
        uint64_t sb = get64(buf + pos), ob = get64(buf + pos + 8);
        memcpy(&t->channels[c].scale, &sb, 8);
        memcpy(&t->channels[c].offset, &ob, 8);
        if (!calibration_ok(t->channels[c].scale, t->channels[c].offset))
            return WIRE_EFIELD;
        pos += WIRE_CALIBRATION_LEN;
    }
    return WIRE_OK;
}

int wire_parse(const uint8_t *buf, size_t len, struct wire_meta *m,
               struct wire_view *v)
{
    struct wire_meta t;
    size_t header_len, payload_len, pos;
    uint64_t rate_bits, content_size = 0;
    uint32_t score_bits;
    int rc;

    if (!buf || !m || !v)
        return WIRE_EFIELD;
    if (len < 6)
        return len >= 4 && memcmp(buf, WIRE_MAGIC, 4) != 0 ? WIRE_EMAGIC : WIRE_ETRUNCATED;
    if (memcmp(buf, WIRE_MAGIC, 4) != 0)
        return WIRE_EMAGIC;
    if (buf[4] != WIRE_VERSION_MAJOR && buf[4] != WIRE_VERSION2_MAJOR)
        return WIRE_EVERSION;
    /* Any minor version is read: later minors only add fields in the
     * reserved bytes or after the strings, which header_len skips. */
    if (len < WIRE_FIXED_LEN + WIRE_SIG_LEN)
        return WIRE_ETRUNCATED;

    memset(&t, 0, sizeof t);
    t.version = buf[4];
    t.flags = get16(buf + 6);
    header_len = get32(buf + 8);
    payload_len = get32(buf + 12);
    if (header_len < WIRE_FIXED_LEN)
        return WIRE_EFIELD;
    if (header_len > WIRE_MAX_HEADER_LEN || payload_len > WIRE_MAX_PAYLOAD_LEN)
        return WIRE_ETOOBIG;
    /* Both are bounded above, so the sum cannot overflow. */
    if (len < header_len + payload_len + WIRE_SIG_LEN)
        return WIRE_ETRUNCATED;
    if (len > header_len + payload_len + WIRE_SIG_LEN)
        return WIRE_EFIELD;   /* trailing bytes: the signature must be last */

    t.seq = get64(buf + 16);
    t.trigger_time_us = (int64_t)get64(buf + 24);
    rate_bits = get64(buf + 32);
    memcpy(&t.sample_rate, &rate_bits, 8);
    t.pre_samples = get32(buf + 40);
    t.post_samples = get32(buf + 44);
    score_bits = get32(buf + 48);
    memcpy(&t.score, &score_bits, 4);
    t.sample_type = buf[52];
    t.channel_count = buf[53];
    /* a transform we cannot undo */
    if (t.version == 2 ? !wire_v2_flags_ok(t.flags) : (t.flags & ~WIRE_FLAGS_KNOWN) != 0)
        return WIRE_EFIELD;
    if (t.version == 2) {
        t.block_log = buf[54];
        if (t.block_log < WIRE_BLOCK_LOG_MIN || t.block_log > WIRE_BLOCK_LOG_MAX)
            return WIRE_EFIELD;
    }
    rc = numbers_check(&t);
    if (rc < 0)
        return rc;

    pos = WIRE_FIXED_LEN;
    if ((rc = take_string(buf, &pos, header_len, STR_DEVICE, t.device_id)) < 0 ||
        (rc = take_string(buf, &pos, header_len, STR_NAME, t.detector)) < 0)
        return rc;
    for (unsigned c = 0; c < t.channel_count; c++) {
        if ((rc = take_string(buf, &pos, header_len, STR_NAME, t.channels[c].name)) < 0 ||
            (rc = take_string(buf, &pos, header_len, STR_UNIT, t.channels[c].unit)) < 0)
            return rc;
    }
    rc = take_calibration(buf, pos, header_len, &t);
    if (rc < 0)
        return rc;
    /* Bytes after these up to header_len are extensions of a later minor. */

    rc = frame_check(buf + header_len, payload_len, content_expected(&t),
                     t.version == 2 ? WIRE_MAX_CONTENT_BYTES : WIRE_MAX_SAMPLES_BYTES,
                     &content_size);
    if (rc < 0)
        return rc;

    *m = t;
    v->payload = buf + header_len;
    v->payload_len = payload_len;
    v->signature = buf + len - WIRE_SIG_LEN;
    v->signed_len = len - WIRE_SIG_LEN;
    v->content_size = content_size;
    return WIRE_OK;
}

/* --- verify -------------------------------------------------------------- */

int wire_verify(const uint8_t *buf, size_t len, const uint8_t pk[WIRE_PK_LEN])
{
    if (!buf || !pk)
        return WIRE_EFIELD;
    if (len < WIRE_FIXED_LEN + WIRE_SIG_LEN)
        return WIRE_ETRUNCATED;
    if (len > WIRE_MAX_ENVELOPE_LEN)
        return WIRE_ETOOBIG;
    if (sodium_init() < 0)
        return WIRE_EINTERNAL;
    if (crypto_sign_ed25519_verify_detached(buf + len - WIRE_SIG_LEN, buf, len - WIRE_SIG_LEN,
                                            pk) != 0)
        return WIRE_ESIGNATURE;
    return WIRE_OK;
}

/* --- decode -------------------------------------------------------------- */

static int predicted(const struct wire_meta *m)
{
    return m->version == 2 && (m->flags & WIRE_FLAG_PREDICT);
}

size_t wire_decode_scratch_bound(const struct wire_meta *m)
{
    size_t content, work;

    if (!m || !predicted(m) || (content = wire_content_bytes(m)) == 0)
        return 0;
    work = wire__work_bytes(m->block_log);
    if (m->sample_type == WIRE_I16 && wire__decode_work_bytes(m->block_log) > work)
        work = wire__decode_work_bytes(m->block_log);
    return ((content + 15) & ~(size_t)15) + work;
}

/* v2 with predictors: the frame into scratch (records, then residual
 * planes), then each channel rebuilt into out. */
static int decode_predicted(ZSTD_DCtx *dctx, const struct wire_meta *m,
                            const struct wire_view *v, uint8_t *scratch, uint8_t *out)
{
    size_t content = wire_content_bytes(m), n = (size_t)m->pre_samples + m->post_samples, r;
    void *work = scratch + ((content + 15) & ~(size_t)15);

    r = ZSTD_decompressDCtx(dctx, scratch, content, v->payload, v->payload_len);
    if (ZSTD_isError(r) || r != content)
        return WIRE_EFRAME;
    return wire__unpredict_planes(scratch, m->channel_count, n, m->sample_type, m->block_log,
                                  layout_of(m->flags), out, work);
}

/* Decompress with dctx (the caller's or a fresh one) and undo the transforms;
 * scratch (wire_decode_scratch_bound(m) bytes) may be NULL: then it is
 * allocated here if needed. */
static int decode_with(ZSTD_DCtx *dctx, const struct wire_meta *m, const struct wire_view *v,
                       void *pscratch, size_t pscratch_cap, void *out, size_t out_cap)
{
    uint8_t *scratch = NULL, *o = out;
    size_t bytes, size, n, r, need;
    int rc;

    if (!m || !v || !out || !v->payload)
        return WIRE_EFIELD;
    if ((m->version != 1 && m->version != 2) ||
        (m->version == 2 ? !wire_v2_flags_ok(m->flags) : (m->flags & ~WIRE_FLAGS_KNOWN) != 0))
        return WIRE_EFIELD;
    bytes = wire_samples_bytes(m);
    if (bytes == 0 || (m->version == 2 && (m->block_log < WIRE_BLOCK_LOG_MIN ||
                                            m->block_log > WIRE_BLOCK_LOG_MAX)))
        return WIRE_EFIELD;
    if (v->content_size != content_expected(m) || v->payload_len > WIRE_MAX_PAYLOAD_LEN)
        return WIRE_EFRAME;
    if (out_cap < bytes)
        return WIRE_ETOOBIG;
    size = wire_sample_size(m->sample_type);
    n = bytes / size / m->channel_count;

    /* Set on every call: a reused context may have been changed since. */
    if (ZSTD_isError(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, WIRE_MAX_WINDOW_LOG))) {
        rc = WIRE_EINTERNAL;
        goto out;
    }
    if (predicted(m)) {
        need = wire_decode_scratch_bound(m);
        if (pscratch && pscratch_cap < need)
            return WIRE_ETOOBIG;
        if (!pscratch && !(scratch = malloc(need)))
            return WIRE_ENOMEM;
        rc = decode_predicted(dctx, m, v, pscratch ? pscratch : scratch, o);
        goto out;
    }
    /* out_cap may exceed bytes; decompressing into exactly bytes means a frame
     * that holds more than it declared fails instead of writing past it. */
    r = ZSTD_decompressDCtx(dctx, o, bytes, v->payload, v->payload_len);
    if (ZSTD_isError(r) || r != bytes) {
        rc = WIRE_EFRAME;
        goto out;
    }
    if (m->flags & WIRE_FLAG_SHUFFLE) {
        scratch = malloc(n * size);
        if (!scratch) {
            rc = WIRE_ENOMEM;
            goto out;
        }
    }
    for (unsigned c = 0; c < m->channel_count; c++) {
        uint8_t *plane = o + c * n * size;
        if (scratch) {
            memcpy(scratch, plane, n * size);
            untransform_plane(scratch, plane, n, m->sample_type, m->flags);
        } else {
            untransform_plane(plane, plane, n, m->sample_type, m->flags);
        }
    }
    rc = WIRE_OK;
out:
    free(scratch);
    return rc;
}

int wire_decode_samples(const struct wire_meta *m, const struct wire_view *v,
                        void *out, size_t out_cap)
{
    ZSTD_DCtx *dctx;
    int rc;

    if (!m || !v || !out || !v->payload)
        return WIRE_EFIELD;
    dctx = ZSTD_createDCtx();
    if (!dctx)
        return WIRE_ENOMEM;
    rc = decode_with(dctx, m, v, NULL, 0, out, out_cap);
    ZSTD_freeDCtx(dctx);
    return rc;
}

int wire_decode_samples_ctx(struct ZSTD_DCtx_s *dctx, const struct wire_meta *m,
                            const struct wire_view *v, void *out, size_t out_cap)
{
    if (!dctx)
        return WIRE_EFIELD;
    return decode_with(dctx, m, v, NULL, 0, out, out_cap);
}

int wire_decode_samples_scratch(struct ZSTD_DCtx_s *dctx, const struct wire_meta *m,
                                const struct wire_view *v, void *scratch, size_t scratch_cap,
                                void *out, size_t out_cap)
{
    if (!dctx || (!scratch && scratch_cap))
        return WIRE_EFIELD;
    return decode_with(dctx, m, v, scratch, scratch_cap, out, out_cap);
}

/* --- physical units ------------------------------------------------------ */

int wire_channel_physical(const struct wire_meta *m, const void *samples, unsigned channel,
                          float *out)
{
    size_t n;
    double scale, offset;

    if (!m || !samples || !out || wire_samples_bytes(m) == 0 || channel >= m->channel_count)
        return WIRE_EFIELD;
    n = (size_t)m->pre_samples + m->post_samples;
    scale = m->version == 2 ? m->channels[channel].scale : 1.0;
    offset = m->version == 2 ? m->channels[channel].offset : 0.0;
    if (m->version == 2 && !calibration_ok(scale, offset))
        return WIRE_EFIELD;
    /* float arithmetic: a 16-bit code times its scale loses nothing a
     * float export keeps, and the loop vectorises */
    switch (m->sample_type) {
    case WIRE_I16: {
        const int16_t *s = (const int16_t *)samples + channel * n;
        for (size_t i = 0; i < n; i++)
            out[i] = wire_value_physical(WIRE_I16, s[i], scale, offset);
        break;
    }
    case WIRE_I32: {
        const int32_t *s = (const int32_t *)samples + channel * n;
        for (size_t i = 0; i < n; i++)
            out[i] = wire_value_physical(WIRE_I32, s[i], scale, offset);
        break;
    }
    default: {
        const float *s = (const float *)samples + channel * n;
        if (scale == 1.0 && offset == 0.0) {
            memcpy(out, s, n * sizeof *out);
            break;
        }
        for (size_t i = 0; i < n; i++)
            out[i] = wire_value_physical(WIRE_F32, s[i], scale, offset);
        break;
    }
    }
    return WIRE_OK;
}

int wire_to_physical(const struct wire_meta *m, const void *samples, float *out)
{
    size_t n;
    int rc;

    if (!m || wire_samples_bytes(m) == 0)
        return WIRE_EFIELD;
    n = (size_t)m->pre_samples + m->post_samples;
    for (unsigned c = 0; c < m->channel_count; c++)
        if ((rc = wire_channel_physical(m, samples, c, out + c * n)) != WIRE_OK)
            return rc;
    return WIRE_OK;
}

int wire_is_identity_calibration(const struct wire_meta *m)
{
    if (m->version != 2)
        return 1;
    for (unsigned c = 0; c < m->channel_count && c < WIRE_MAX_CHANNELS; c++)
        if (m->channels[c].scale != 1.0 || m->channels[c].offset != 0.0)
            return 0;
    return 1;
}

int wire_declared_len(const uint8_t *buf, size_t n, uint64_t *len)
{
    uint32_t header_len, payload_len;

    if (n < 16)
        return n >= 4 && memcmp(buf, WIRE_MAGIC, 4) != 0 ? -1 : 1;
    if (memcmp(buf, WIRE_MAGIC, 4) != 0 || (buf[4] != WIRE_VERSION_MAJOR && buf[4] != WIRE_VERSION2_MAJOR))
        return -1;
    header_len = get32(buf + 8);
    payload_len = get32(buf + 12);
    if (header_len < WIRE_FIXED_LEN || header_len > WIRE_MAX_HEADER_LEN ||
        payload_len > WIRE_MAX_PAYLOAD_LEN)
        return -1;
    *len = (uint64_t)header_len + payload_len + WIRE_SIG_LEN;
    return 0;
}
