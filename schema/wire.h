/* wire.h - the snapshot envelope, wire formats v1 and v2.
 *
 * One implementation of the format, linked by both the agent (which encodes
 * and signs) and the server (which parses, verifies and decodes).  The byte
 * layout is documented in schema/WIRE.md; this file knows nothing of HTTP,
 * PostgreSQL or files.
 *
 * Every function returns 0 on success or a negative WIRE_E* code; out
 * parameters are written only on success. */
#ifndef PRECURSOR_WIRE_H
#define PRECURSOR_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC "PRSN"
#define WIRE_VERSION_MAJOR 1       /* what wire_encode* write */
#define WIRE_VERSION_MINOR 0
#define WIRE_VERSION2_MAJOR 2      /* what wire_encode_v2* write; both are read */

#define WIRE_SIG_LEN 64
#define WIRE_PK_LEN 32            /* Ed25519 public key */
#define WIRE_SK_LEN 64            /* libsodium Ed25519 secret key (seed || pk) */

#define WIRE_MAX_CHANNELS 64
#define WIRE_MAX_NAME 64          /* device id, detector, channel name and unit */
#define WIRE_MAX_SAMPLES_BYTES (64u << 20)  /* decoded payload, all channels */
#define WIRE_MAX_WINDOW_LOG 23    /* zstd window we accept: 8 MiB */

/* Payload transforms (header flags). */
#define WIRE_FLAG_DELTA   0x0001  /* per-channel delta of successive samples */
#define WIRE_FLAG_SHUFFLE 0x0002  /* byte shuffle: all first bytes, then all second bytes, ... */
#define WIRE_FLAG_PREDICT 0x0004  /* v2 only: per-block predictors, zigzag residuals */
#define WIRE_FLAG_BITSHUFFLE 0x0008  /* v2 only, with PREDICT: residual bits by plane per block */

enum wire_sample_type {
    WIRE_I16 = 1,
    WIRE_I32 = 2,
    WIRE_F32 = 3
};

enum wire_error {
    WIRE_OK = 0,
    WIRE_ETRUNCATED = -1,   /* shorter than its own lengths say */
    WIRE_EMAGIC = -2,       /* not an envelope */
    WIRE_EVERSION = -3,     /* unknown major version */
    WIRE_EFIELD = -4,       /* a field out of its documented range */
    WIRE_ETOOBIG = -5,      /* a length beyond a limit */
    WIRE_ESIGNATURE = -6,   /* signature does not verify */
    WIRE_EFRAME = -7,       /* zstd frame bad, no declared content size, or wrong size */
    WIRE_ENOMEM = -8,
    WIRE_EINTERNAL = -9,
    WIRE_EIO = -10          /* the caller's file (struct wire_file) failed, or read back changed */
};

/* physical = code * scale + offset, in unit.  v2 carries scale and offset on
 * the wire; a v1 envelope reads as scale 1, offset 0.  The encoder takes a
 * scale of 0 as 1, so a zeroed channel means "the codes are the unit". */
struct wire_channel {
    char name[WIRE_MAX_NAME + 1];
    char unit[WIRE_MAX_NAME + 1];
    double scale;
    double offset;
};

/* Everything but the samples.  Strings are NUL-terminated, at most
 * WIRE_MAX_NAME bytes, and for the device id restricted to [A-Za-z0-9._-]. */
struct wire_meta {
    char device_id[WIRE_MAX_NAME + 1];
    uint64_t seq;               /* per device, starts at 1 */
    int64_t trigger_time_us;    /* unix time of the trigger sample, microseconds */
    double sample_rate;         /* Hz, > 0 */
    uint8_t sample_type;        /* enum wire_sample_type */
    uint8_t channel_count;      /* 1..WIRE_MAX_CHANNELS */
    uint16_t flags;             /* WIRE_FLAG_*; set by the encoder */
    uint8_t version;            /* major version read by wire_parse (1 or 2) */
    uint8_t block_log;          /* v2: log2 of the predictor block length */
    uint32_t pre_samples;       /* per channel, before the trigger sample */
    uint32_t post_samples;      /* per channel, from the trigger sample on */
    char detector[WIRE_MAX_NAME + 1];
    float score;                /* detector score in [0, 1] */
    struct wire_channel channels[WIRE_MAX_CHANNELS];
};

/* Where things are inside a parsed envelope (borrowed pointers into it). */
struct wire_view {
    const uint8_t *payload;     /* the zstd frame */
    size_t payload_len;
    const uint8_t *signature;   /* last 64 bytes */
    size_t signed_len;          /* bytes covered by the signature: all before it */
    uint64_t content_size;      /* the frame's declared decompressed size */
};

size_t wire_sample_size(uint8_t sample_type);      /* 0 for an unknown type */
/* Decoded payload size for meta; 0 if meta is out of range. */
size_t wire_samples_bytes(const struct wire_meta *m);

/* Encode and sign.  samples are planar: channel 0's pre+post samples, then
 * channel 1's, ... in host order of the sample type.  On success *out is a
 * malloc'd buffer the caller frees.  level is a zstd level (0 = default). */
int wire_encode(const struct wire_meta *m, const void *samples,
                const uint8_t sk[WIRE_SK_LEN], int level,
                uint8_t **out, size_t *out_len);

/* The whole length an envelope declares in its first 16 bytes (header_len +
 * payload_len + signature), so a server can hold an upload to it before
 * reading the rest: 0 with *len; 1 when fewer than 16 bytes were given (and
 * those could start an envelope); -1 when the bytes are no v1 or v2 envelope or a
 * length is beyond its bound.  Nothing is verified: wire_parse still runs. */
int wire_declared_len(const uint8_t *buf, size_t n, uint64_t *len);

/* Parse and bound-check the header and the zstd frame header, without
 * verifying the signature and without decompressing: declared content size
 * must be present, equal wire_samples_bytes(m), and the frame window must be
 * within WIRE_MAX_WINDOW_LOG. */
int wire_parse(const uint8_t *buf, size_t len, struct wire_meta *m,
               struct wire_view *v);

/* Pure Ed25519 (RFC 8032) over every byte before the last 64. */
int wire_verify(const uint8_t *buf, size_t len, const uint8_t pk[WIRE_PK_LEN]);

/* Decompress and undo the transforms into out (planar, host order); out_cap
 * must be at least wire_samples_bytes(m). */
int wire_decode_samples(const struct wire_meta *m, const struct wire_view *v,
                        void *out, size_t out_cap);

const char *wire_strerror(int err);   /* "truncated", ... never NULL */
const char *wire_errcode(int err);    /* short machine code: "wire_truncated" */

/* --- Additions (v1.0): limits and helpers the layout in WIRE.md implies. --- */

#define WIRE_FIXED_LEN 56         /* fixed part of the header, before the strings */
#define WIRE_MAX_HEADER_LEN 65536u  /* header_len field: fixed part + strings + extensions */
/* Compressed payload: zstd's worst case for WIRE_MAX_SAMPLES_BYTES is
 * 64 MiB + 256 KiB + a few bytes, so 1 MiB of slack is ample. */
#define WIRE_MAX_PAYLOAD_LEN (WIRE_MAX_SAMPLES_BYTES + (1u << 20))
/* Largest envelope a conforming v1 writer can produce: a server may refuse a
 * body above this from Content-Length alone. */
#define WIRE_MAX_ENVELOPE_LEN (WIRE_MAX_HEADER_LEN + WIRE_MAX_PAYLOAD_LEN + WIRE_SIG_LEN)

/* seq is 1..WIRE_MAX_SEQ so that it fits a signed 64-bit column (PostgreSQL bigint). */
#define WIRE_MAX_SEQ ((uint64_t)INT64_MAX)

#define WIRE_FLAGS_KNOWN   (WIRE_FLAG_DELTA | WIRE_FLAG_SHUFFLE)
/* What wire_encode applies; chosen by measurement (WIRE.md, "Transforms"). */
#define WIRE_FLAGS_DEFAULT (WIRE_FLAG_DELTA | WIRE_FLAG_SHUFFLE)
#define WIRE_DEFAULT_LEVEL 3      /* zstd level used when level is 0 */

/* wire_encode with an explicit choice of transforms (any subset of
 * WIRE_FLAGS_KNOWN); wire_encode(...) is wire_encode_flags(..., WIRE_FLAGS_DEFAULT, ...). */
int wire_encode_flags(const struct wire_meta *m, const void *samples,
                      const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                      uint8_t **out, size_t *out_len);

const char *wire_sample_type_name(uint8_t sample_type);  /* "i16", "i32", "f32"; "?" if unknown */

/* --- Reusable contexts: for a long-running encoder or decoder that should
 * not allocate per envelope (the agent's emitter thread, a server worker).
 * Same format, same checks; the zstd contexts are the caller's
 * (ZSTD_createCCtx / ZSTD_createDCtx, from <zstd.h>) and are reused. --- */

struct ZSTD_CCtx_s;               /* ZSTD_CCtx */
struct ZSTD_DCtx_s;               /* ZSTD_DCtx */

/* Bytes wire_encode_ctx may need for out, for any envelope carrying
 * samples_bytes of samples (largest header included); 0 above
 * WIRE_MAX_SAMPLES_BYTES. */
size_t wire_encode_bound(size_t samples_bytes);

/* wire_encode_flags into the caller's buffers with the caller's context:
 * scratch (the transformed samples) holds at least wire_samples_bytes(m),
 * out at least wire_encode_bound(wire_samples_bytes(m)) (WIRE_ETOOBIG
 * otherwise).  On success the envelope is out[0, *out_len).  The level,
 * content size and checksum are set on cctx here; compression parameters the
 * caller set on it (ZSTD_c_windowLog, _hashLog, _chainLog: less memory) are
 * kept, the window capped at WIRE_MAX_WINDOW_LOG.  With a context on which
 * nothing was set, the bytes equal wire_encode_flags'. */
int wire_encode_ctx(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m, const void *samples,
                    const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                    void *scratch, size_t scratch_cap, uint8_t *out, size_t out_cap,
                    size_t *out_len);

/* wire_decode_samples with the caller's decompression context. */
int wire_decode_samples_ctx(struct ZSTD_DCtx_s *dctx, const struct wire_meta *m,
                            const struct wire_view *v, void *out, size_t out_cap);

/* --- Wire format v2 (WIRE.md, "Version 2"): per-channel scale and offset,
 * per-block predictors (none, first and second difference, quantised linear
 * prediction), zigzag residuals, byte shuffle, one zstd frame.  Parsed and
 * decoded by the same wire_parse / wire_decode_samples* as v1. --- */

/* Known v2 flags; SHUFFLE and BITSHUFFLE exclude each other, and BITSHUFFLE
 * needs PREDICT (wire_v2_flags_ok). */
#define WIRE_FLAGS_V2_KNOWN   (WIRE_FLAG_SHUFFLE | WIRE_FLAG_PREDICT | WIRE_FLAG_BITSHUFFLE)
/* What the agent writes; chosen by measurement (WIRE.md, "Version 2"). */
#define WIRE_FLAGS_V2_DEFAULT (WIRE_FLAG_PREDICT | WIRE_FLAG_BITSHUFFLE)
#define WIRE_BLOCK_LOG_MIN 10
#define WIRE_BLOCK_LOG_MAX 16
#define WIRE_BLOCK_LOG_DEFAULT 12      /* 4096 samples, as FLAC's blocks */
#define WIRE_MAX_ORDER 12              /* linear predictor taps */
#define WIRE_BLOCK_HDR_LEN 28          /* one block's predictor record */
#define WIRE_CALIBRATION_LEN 16        /* per channel in the header: scale, offset */
#define WIRE_ENCODE_ORDER 8            /* largest linear predictor the encoder tries */

/* Predictors (block record byte 0). */
enum wire_predictor {
    WIRE_PRED_NONE = 0,
    WIRE_PRED_DIFF1 = 1,        /* x[i-1] */
    WIRE_PRED_DIFF2 = 2,        /* 2 x[i-1] - x[i-2] */
    WIRE_PRED_LPC = 3,          /* (sum q[k] x[i-1-k]) >> shift */
    WIRE_PRED_XOR = 4           /* float32 only: bits XOR the previous bits */
};

/* Whether flags is a v2 combination a reader can undo. */
int wire_v2_flags_ok(uint16_t flags);

/* Bytes of the decompressed v2 payload: predictor records + samples; 0 if
 * meta is out of range. */
size_t wire_content_bytes(const struct wire_meta *m);

/* Encoder working memory, in bytes, for samples_bytes of samples: what
 * wire_encode_v2_ctx needs in scratch (the zigzag residuals, the predictor
 * records and per-channel trial buffers). */
size_t wire_encode_v2_scratch_bound(const struct wire_meta *m);

/* Bytes wire_encode_v2_ctx may need for out (largest header included). */
size_t wire_encode_v2_bound(const struct wire_meta *m);

/* Encode and sign as v2.  Like wire_encode_flags (flags: a subset of
 * WIRE_FLAGS_V2_KNOWN; level as there), m->channels[c].scale/offset go on
 * the wire (scale 0 is written as 1). */
int wire_encode_v2(const struct wire_meta *m, const void *samples,
                   const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                   uint8_t **out, size_t *out_len);

/* wire_encode_v2 into the caller's buffers and zstd context: scratch holds
 * wire_encode_v2_scratch_bound(m), out wire_encode_v2_bound(m) bytes; both
 * bounds grow with the samples, so buffers sized for the longest window serve
 * every shorter one.  m->block_log 0 means WIRE_BLOCK_LOG_DEFAULT.  Nothing is allocated here (zstd allocates inside cctx once, on its
 * first use, as for v1). */
int wire_encode_v2_ctx(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m, const void *samples,
                       const uint8_t sk[WIRE_SK_LEN], int level, uint16_t flags,
                       void *scratch, size_t scratch_cap, uint8_t *out, size_t out_cap,
                       size_t *out_len);

/* Samples as a ring holds them: channel c's first first_len samples start at
 * first + c * stride samples, the rest (if any) at second + c * stride.
 * Planar samples in one piece are { samples, NULL, n, n }. */
struct wire_planes {
    const void *first, *second;
    size_t first_len, stride;
};

/* wire_encode_v2_ctx reading the samples where they are (an agent's ring,
 * without copying the window out first): the same bytes as from the same
 * samples in one piece.  Two pieces need WIRE_FLAG_PREDICT in flags. */
int wire_encode_v2_planes(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m,
                          const struct wire_planes *src, const uint8_t sk[WIRE_SK_LEN], int level,
                          uint16_t flags, void *scratch, size_t scratch_cap, uint8_t *out,
                          size_t out_cap, size_t *out_len);

/* wire_encode_v2_planes with one channel's plane of scratch instead of the
 * whole content (wire_encode_v2_stream_scratch_bound(m) bytes: the predictor
 * records, one plane, the predictors' working memory): the planes are made
 * one at a time and streamed into zstd, the records by a first pass.  The
 * same envelope, byte for byte; out as for wire_encode_v2_planes.  For a
 * device, whose memory is the ring plus little: about 1/channels of the
 * content buffer, for a second run of the predictors. */
size_t wire_encode_v2_stream_scratch_bound(const struct wire_meta *m);
int wire_encode_v2_planes_stream(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m,
                                 const struct wire_planes *src, const uint8_t sk[WIRE_SK_LEN],
                                 int level, uint16_t flags, void *scratch, size_t scratch_cap,
                                 uint8_t *out, size_t out_cap, size_t *out_len);

/* An envelope written to a file as it is made, instead of into a buffer
 * that holds it whole: the caller's storage (the agent's spool file), seen
 * through three calls.  Offsets count from the envelope's first byte.  Each
 * returns 0 on success, anything else on failure (the caller says why, e.g.
 * in its log, as only it knows the errno). */
struct wire_file {
    int (*append)(void *ctx, const void *p, size_t len);        /* at the end */
    int (*patch)(void *ctx, uint64_t off, const void *p, size_t len);  /* bytes written before */
    int (*read)(void *ctx, uint64_t off, void *p, size_t len);  /* bytes written before */
    void *ctx;
};

/* The chunk of scratch the file encoder hands zstd's output through, and
 * the piece it reads the envelope back in to sign it. */
#define WIRE_FILE_CHUNK (32u * 1024u)

/* wire_encode_v2_planes_stream into a file: the header is appended with a
 * payload length of 0, the zstd frame a chunk at a time as zstd makes it,
 * then the payload length is patched in, the envelope so far read back and
 * signed (wire_sign_file) and the signature appended.  The same envelope,
 * byte for byte, as wire_encode_v2_planes_stream writes into a buffer; no
 * buffer of the envelope's size anywhere.  scratch holds
 * wire_encode_v2_file_scratch_bound(m) bytes; *out_len is the envelope's
 * length (the file holds exactly that many bytes when this returns 0).  On
 * failure the file holds a partial envelope, which the caller discards. */
size_t wire_encode_v2_file_scratch_bound(const struct wire_meta *m);
int wire_encode_v2_planes_file(struct ZSTD_CCtx_s *cctx, const struct wire_meta *m,
                               const struct wire_planes *src, const uint8_t sk[WIRE_SK_LEN],
                               int level, uint16_t flags, void *scratch, size_t scratch_cap,
                               const struct wire_file *f, size_t *out_len);

/* The pure Ed25519 signature (RFC 8032; the same bytes as libsodium's
 * crypto_sign_ed25519_detached) of the first len bytes of f, read back in
 * pieces of buf_cap bytes (at least 64) instead of held whole.  Pure Ed25519
 * hashes the message twice (the nonce from the key's prefix and the message,
 * then the challenge from R, the public key and the message), so the file
 * is read twice; both readings are also hashed with BLAKE2b and must agree
 * (WIRE_EIO otherwise, and sig is zeroed), because a signature whose nonce
 * came from one message and challenge from another gives away the secret
 * key to whoever also sees the honest signature of the first.  The public
 * key is sk's second half, as libsodium takes it. */
int wire_sign_file(const struct wire_file *f, uint64_t len, const uint8_t sk[WIRE_SK_LEN],
                   void *buf, size_t buf_cap, uint8_t sig[WIRE_SIG_LEN]);

/* Decoder scratch for m: the decompressed payload (0 for v1, whose decoder
 * needs one channel plane and allocates it). */
size_t wire_decode_scratch_bound(const struct wire_meta *m);

/* wire_decode_samples_ctx with the caller's scratch (at least
 * wire_decode_scratch_bound(m) bytes): no allocation for v2. */
int wire_decode_samples_scratch(struct ZSTD_DCtx_s *dctx, const struct wire_meta *m,
                                const struct wire_view *v, void *scratch, size_t scratch_cap,
                                void *out, size_t out_cap);

/* Decoded samples (planar, as wire_decode_samples wrote them) of a meta
 * wire_parse filled (its version says whether scale and offset apply) in physical
 * units: out[c * n + i] = code * scale + offset of channel c, as float, for
 * every channel (n = pre + post samples).  out holds channel_count * n
 * floats.  The one place that turns codes into physical values: exports,
 * features and the samples endpoint call it. */
int wire_to_physical(const struct wire_meta *m, const void *samples, float *out);

/* One channel of the same: out holds pre + post floats. */
int wire_channel_physical(const struct wire_meta *m, const void *samples, unsigned channel,
                          float *out);

/* One value of the same rule, for a caller that holds one sample at a time
 * (the agent's model step): a code of sample_type times scale
 * plus offset.  int16 codes are scaled in float, as wire_channel_physical's
 * vectorised loop does; wider types in double, then rounded once.  The
 * server trains on wire_channel_physical's values and the device scores
 * these: the two must agree to the bit. */
static inline float wire_value_physical(unsigned sample_type, double code, double scale,
                                        double offset)
{
    if (sample_type == WIRE_I16)
        return (float)code * (float)scale + (float)offset;
    return (float)(code * scale + offset);
}

/* True when every channel's scale is 1 and offset 0 (codes are physical). */
int wire_is_identity_calibration(const struct wire_meta *m);

#endif
