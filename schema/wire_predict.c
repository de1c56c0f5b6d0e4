/* wire_predict.c - wire format v2 payload transforms: per-block predictors.
 *
 * Each channel is cut in blocks of 1 << block_log samples.  For each block
 * the encoder tries the fixed predictors (none, first and second difference,
 * and for float32 the XOR of successive bit patterns) and a quantised linear
 * predictor fitted to the block (Levinson-Durbin on its windowed
 * autocorrelation, as FLAC does), and keeps the one whose residuals take the
 * fewest bits.  Its record (WIRE.md, "Block records") goes in the payload
 * before the residuals.  Prediction reads the samples before the block too
 * (the channel's history), so a block does not pay for a warm-up.
 *
 * The arithmetic the decoder repeats is integer and defined for every input:
 * 16-bit samples predict modulo 2^32 (an int16 times an int16 coefficient
 * always fits an int32), 32-bit ones modulo 2^64, and residuals wrap to the
 * sample width.  A hostile record gives wrong samples, never undefined
 * behaviour.  Only the encoder's analysis uses floating point; its result is
 * stored, so the decoder never depends on it.  No allocation here: the
 * caller hands in wire__work_bytes() of working memory.  (Earlier samples are
 * read as (x - d)[i], not x[i - d]: i is unsigned, and i - d would wrap.) */
#include "schema/wire.h"
#include "schema/wire_int.h"

#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* Hand-written AVX2 code (the int16 lanes, the 4-byte bit unshuffle) is
 * compiled with target("avx2") and called only where the CPU has it; TSan
 * builds (WIRE_NO_CLONES) leave it out with the clones. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(WIRE_NO_CLONES)
#include <immintrin.h>
#define WIRE_GROUP_AVX2 1
#endif

#define HIST WIRE_MAX_ORDER              /* history samples kept before a block */

/* The per-sample loops are plain C the compiler vectorises; on x86-64 a
 * second copy for AVX2 (8 lanes, a 32-bit multiply SSE2 lacks) is picked at
 * load time where the CPU has it.  Same results either way: integer
 * arithmetic, and the float analysis in a fixed order without contraction. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && !defined(WIRE_NO_CLONES)
#define WIRE_HOT __attribute__((target_clones("avx2", "default")))
#else
#define WIRE_HOT
#endif
#define QLP_PRECISION 14                 /* bits of a quantised coefficient, sign included */

struct work {
    int32_t *x;         /* HIST history samples, then the block */
    uint32_t *best;     /* residuals of the best predictor so far */
    uint32_t *trial;    /* residuals of the one being tried */
    float *win;         /* the analysis window's taper for a full block (a quarter) */
    float *y;           /* windowed block, HIST zeros before it */
};

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t wire__blocks(size_t n, unsigned block_log)
{
    return (n + ((size_t)1 << block_log) - 1) >> block_log;
}

size_t wire__work_bytes(unsigned block_log)
{
    size_t b = (size_t)1 << block_log;
    return 2 * align16((HIST + b) * 4) + 2 * align16(b * 4) + align16(b) + 16;
}

static struct work work_carve(void *mem, unsigned block_log)
{
    size_t b = (size_t)1 << block_log;
    uint8_t *p = (uint8_t *)(((uintptr_t)mem + 15) & ~(uintptr_t)15);
    struct work w;

    w.x = (int32_t *)p;
    p += align16((HIST + b) * 4);
    w.best = (uint32_t *)p;
    p += align16(b * 4);
    w.trial = (uint32_t *)p;
    p += align16(b * 4);
    w.win = (float *)p;
    p += align16(b);
    /* HIST zeros before the windowed block: autocorr reads y[i - k] */
    memset(p, 0, HIST * sizeof(float));
    w.y = (float *)p + HIST;
    return w;
}

/* --- integer helpers: defined for every input ----------------------------- */

static int32_t to_i32(uint32_t u) { return u <= INT32_MAX ? (int32_t)u : -(int32_t)~u - 1; }
static int64_t to_i64(uint64_t u) { return u <= INT64_MAX ? (int64_t)u : -(int64_t)~u - 1; }
static int32_t sext16(uint32_t u) { return (int32_t)((u & 0xffff) ^ 0x8000) - 0x8000; }
/* Arithmetic shift right (floor division by 2^s), portable.  The branch is
 * the fast form: the sign of a prediction follows the signal's, the branch
 * predictor guesses it, and the decoder's serial chain gets shorter (a
 * branchless form measured 30 % slower). */
static int32_t asr32(int32_t v, unsigned s) { return v >= 0 ? v >> s : ~(~v >> s); }
static int64_t asr64(int64_t v, unsigned s) { return v >= 0 ? v >> s : ~(~v >> s); }

static uint32_t zigzag(uint32_t r, int wide)
{
    if (wide)
        return (r << 1) ^ (0u - (r >> 31));
    r &= 0xffff;
    return ((r << 1) ^ (0u - (r >> 15))) & 0xffff;
}

static uint32_t unzigzag(uint32_t z) { return (z >> 1) ^ (0u - (z & 1)); }

/* A sample of the plane as the predictors see it: 16-bit samples sign
 * extended, 32-bit ones (float32 too) as their bit pattern. */
WIRE_HOT static void load_block(const uint8_t *in, size_t from, size_t len, int wide, int32_t *x)
{
    if (!wide) {
        const int16_t *s = (const int16_t *)(const void *)in + from;
        for (size_t i = 0; i < len; i++)
            x[i] = s[i];
    } else {
        for (size_t i = 0; i < len; i++) {
            uint32_t u;
            memcpy(&u, in + (from + i) * 4, 4);
            x[i] = to_i32(u);
        }
    }
}

static void store_block(const int32_t *x, size_t len, int wide, uint8_t *out, size_t from)
{
    if (!wide) {
        int16_t *d = (int16_t *)(void *)out + from;
        for (size_t i = 0; i < len; i++)
            d[i] = (int16_t)x[i];   /* x holds sign-extended 16-bit values */
    } else {
        memcpy(out + from * 4, x, len * 4);
    }
}

/* --- residuals (encoder) --------------------------------------------------- */

struct pred {
    uint8_t kind, order, shift;
    int32_t q[WIRE_MAX_ORDER];
};

/* LPC residuals with the order a constant, so the compiler unrolls the taps
 * and vectorises over samples. */
#define LPC_RES16(ORDER)                                                        \
    for (size_t i = 0; i < len; i++) {                                          \
        uint32_t acc = 0;                                                       \
        for (unsigned k = 0; k < (ORDER); k++)                                  \
            acc += (uint32_t)(q[k] * (x - 1 - k)[i]);                             \
        r[i] = zigzag((uint32_t)x[i] - (uint32_t)asr32(to_i32(acc), sh), 0);    \
    }

/* (restrict and the local copy of the taps: r is uint32_t, which may alias
 * int32_t, and the compiler would otherwise reload every tap per sample.) */
WIRE_HOT static void lpc_residuals16(const int32_t *qin, unsigned order, unsigned sh,
                            const int32_t *restrict x, size_t len, uint32_t *restrict r)
{
    int32_t q[WIRE_MAX_ORDER];

    memcpy(q, qin, sizeof q);
    switch (order) {
    case 8: LPC_RES16(8); break;
    case 12: LPC_RES16(12); break;
    default: LPC_RES16(order); break;
    }
}

static void lpc_residuals32(const int32_t *q, unsigned order, unsigned sh, const int32_t *x,
                            size_t len, uint32_t *r)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t acc = 0;
        for (unsigned k = 0; k < order; k++)
            acc += (uint64_t)((int64_t)q[k] * (x - 1 - k)[i]);
        r[i] = zigzag((uint32_t)x[i] - (uint32_t)asr64(to_i64(acc), sh), 1);
    }
}

/* Residuals of predictor p over x[0, len) (history before x[0]) into r,
 * zigzagged except XOR's. */
WIRE_HOT static void residuals(const struct pred *p, const int32_t *x, size_t len, int wide, uint32_t *r)
{
    switch (p->kind) {
    case WIRE_PRED_NONE:
        for (size_t i = 0; i < len; i++)
            r[i] = zigzag((uint32_t)x[i], wide);
        break;
    case WIRE_PRED_DIFF1:
        for (size_t i = 0; i < len; i++)
            r[i] = zigzag((uint32_t)x[i] - (uint32_t)(x - 1)[i], wide);
        break;
    case WIRE_PRED_DIFF2:
        for (size_t i = 0; i < len; i++)
            r[i] = zigzag((uint32_t)x[i] - 2u * (uint32_t)(x - 1)[i] + (uint32_t)(x - 2)[i], wide);
        break;
    case WIRE_PRED_XOR:
        for (size_t i = 0; i < len; i++)
            r[i] = ((uint32_t)x[i] ^ (uint32_t)(x - 1)[i]) & (wide ? 0xffffffffu : 0xffffu);
        break;
    default:    /* WIRE_PRED_LPC */
        if (wide)
            lpc_residuals32(p->q, p->order, p->shift, x, len, r);
        else
            lpc_residuals16(p->q, p->order, p->shift, x, len, r);
        break;
    }
}

/* The encoder's measure of residuals: the sum of their magnitudes (zigzag
 * values), which orders predictors as their coded size does (FLAC's too). */
WIRE_HOT static uint64_t magnitude(const uint32_t *r, size_t len)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum += r[i];
    return sum;
}

/* The three fixed integer predictors' magnitudes in one pass. */
WIRE_HOT static void fixed_magnitudes(const int32_t *x, size_t len, int wide, uint64_t sums[3])
{
    uint64_t s0 = 0, s1 = 0, s2 = 0;

    if (!wide) {
        /* 16-bit zigzags of a block (<= 2^16 of them) sum within 32 bits,
         * which the vector units add twice as wide */
        uint32_t t0 = 0, t1 = 0, t2 = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t u = (uint32_t)x[i], u1 = (uint32_t)(x - 1)[i], u2 = (uint32_t)(x - 2)[i];
            t0 += zigzag(u, 0);
            t1 += zigzag(u - u1, 0);
            t2 += zigzag(u - 2u * u1 + u2, 0);
        }
        sums[0] = t0, sums[1] = t1, sums[2] = t2;
        return;
    }
    for (size_t i = 0; i < len; i++) {
        uint32_t u = (uint32_t)x[i], u1 = (uint32_t)(x - 1)[i], u2 = (uint32_t)(x - 2)[i];
        s0 += zigzag(u, wide);
        s1 += zigzag(u - u1, wide);
        s2 += zigzag(u - 2u * u1 + u2, wide);
    }
    sums[0] = s0, sums[1] = s1, sums[2] = s2;
}

/* --- linear prediction analysis (encoder only) ------------------------------ */

/* Tukey(0.5) window, FLAC's default apodisation: a cosine taper over the
 * first and last quarter, 1 between; only the taper is kept (n / 4 values). */
static void window_make(float *taper, size_t n)
{
    size_t t = n / 4;

    for (size_t i = 0; i < t; i++)
        taper[i] = (float)(0.5 - 0.5 * cos(M_PI * (double)i / (double)t));
}

/* Autocorrelation at lags 0..order of y[0, n) (y[-order, 0) are zeros).
 * Samples outer, lags inner, four partial sums per lag: the lags are
 * independent chains the CPU overlaps, each a vector of four; the sums are
 * added in a fixed order, so the result is the same on every IEEE 754
 * machine.  (Eight partial sums, or lags outer, measured slower.) */
#define AUTOCORR(ORDER)                                                         \
    for (; i + 4 <= n; i += 4)                                                  \
        for (unsigned k = 0; k <= (ORDER); k++)                                 \
            for (unsigned j = 0; j < 4; j++)                                    \
                s[k][j] += y[i + j] * (y - k)[i + j];

WIRE_HOT static void autocorr(const float *restrict y, size_t n, unsigned order, double *ac)
{
    float s[WIRE_MAX_ORDER + 1][4];
    size_t i = 0;

    memset(s, 0, sizeof s);
    if (order == WIRE_ENCODE_ORDER) {
        AUTOCORR(WIRE_ENCODE_ORDER)
    } else {
        AUTOCORR(order)
    }
    for (; i < n; i++)
        for (unsigned k = 0; k <= order; k++)
            s[k][0] += y[i] * (y - k)[i];
    for (unsigned k = 0; k <= order; k++)
        ac[k] = (double)s[k][0] + s[k][1] + s[k][2] + s[k][3];
}

/* Levinson-Durbin: predictor coefficients a[0, order) (x[i] ~ sum a[k]
 * x[i-1-k]) from ac.  Returns the order reached (less when the error
 * vanishes). */
static unsigned levinson(const double *ac, unsigned order, double *a)
{
    double err = ac[0], tmp[WIRE_MAX_ORDER];
    unsigned m;

    if (!(err > 0))
        return 0;
    for (m = 0; m < order; m++) {
        double k = ac[m + 1];
        for (unsigned j = 0; j < m; j++)
            k -= a[j] * ac[m - j];
        k /= err;
        for (unsigned j = 0; j < m; j++)
            tmp[j] = a[j] - k * a[m - 1 - j];
        memcpy(a, tmp, m * sizeof *a);
        a[m] = k;
        err *= 1.0 - k * k;
        if (!(err > 1e-9 * ac[0]))
            return m + 1;
    }
    return order;
}

/* Quantises a[0, order) to QLP_PRECISION-bit integers and a shift, carrying
 * each rounding error into the next coefficient (as FLAC does). */
static int quantise(const double *a, unsigned order, struct pred *p)
{
    double cmax = 0, err = 0;
    int log2c, shift;
    const int32_t qmax = (1 << (QLP_PRECISION - 1)) - 1;

    for (unsigned k = 0; k < order; k++)
        cmax = fabs(a[k]) > cmax ? fabs(a[k]) : cmax;
    if (!(cmax > 0) || !isfinite(cmax))
        return -1;
    frexp(cmax, &log2c);
    shift = QLP_PRECISION - 1 - log2c;
    if (shift > 15)
        shift = 15;
    if (shift < 0)
        return -1;      /* coefficients beyond 2^13: not a useful predictor */
    for (unsigned k = 0; k < order; k++) {
        double v = a[k] * (double)(1 << shift) + err;
        long q = lround(v);
        q = q > qmax ? qmax : q < -qmax ? -qmax : q;
        err = v - (double)q;
        p->q[k] = (int32_t)q;
    }
    p->kind = WIRE_PRED_LPC;
    p->order = (uint8_t)order;
    p->shift = (uint8_t)shift;
    return 0;
}

/* The linear predictor for the block x[0, len), or -1 if none is found. */
static int lpc_fit(struct work *w, size_t len, size_t full, unsigned max_order, struct pred *p)
{
    double ac[WIRE_MAX_ORDER + 1], a[WIRE_MAX_ORDER];
    unsigned order;

    if (len <= max_order * 2)
        return -1;
    if (len == full) {
        size_t t = full / 4;
        for (size_t i = 0; i < len; i++)
            w->y[i] = (float)w->x[HIST + i];
        for (size_t i = 0; i < t; i++) {
            w->y[i] *= w->win[i];
            w->y[len - 1 - i] *= w->win[i];
        }
    } else
        for (size_t i = 0; i < len; i++)
            w->y[i] = (float)w->x[HIST + i];
    autocorr(w->y, len, max_order, ac);
    ac[0] *= 1.0 + 1e-6;    /* a little white noise: keeps the fit stable */
    order = levinson(ac, max_order, a);
    if (order == 0)
        return -1;
    return quantise(a, order, p);
}

/* --- records and planes ---------------------------------------------------- */

static void record_put(uint8_t *rec, const struct pred *p)
{
    memset(rec, 0, WIRE_BLOCK_HDR_LEN);
    rec[0] = p->kind;
    if (p->kind != WIRE_PRED_LPC)
        return;
    rec[1] = p->order;
    rec[2] = p->shift;
    for (unsigned k = 0; k < p->order; k++) {
        uint16_t u = (uint16_t)(p->q[k] & 0xffff);
        rec[4 + 2 * k] = (uint8_t)u;
        rec[5 + 2 * k] = (uint8_t)(u >> 8);
    }
}

/* Reads and checks a record: only what the format allows is decoded. */
static int record_get(const uint8_t *rec, struct pred *p)
{
    unsigned used = 1;

    memset(p, 0, sizeof *p);
    p->kind = rec[0];
    if (p->kind > WIRE_PRED_XOR)
        return WIRE_EFRAME;
    if (p->kind == WIRE_PRED_LPC) {
        p->order = rec[1];
        p->shift = rec[2];
        if (p->order < 1 || p->order > WIRE_MAX_ORDER || p->shift > 15 || rec[3] != 0)
            return WIRE_EFRAME;
        for (unsigned k = 0; k < p->order; k++)
            p->q[k] = (int16_t)(uint16_t)(rec[4 + 2 * k] | rec[5 + 2 * k] << 8);
        used = 4 + 2 * p->order;
    }
    for (unsigned i = used; i < WIRE_BLOCK_HDR_LEN; i++)
        if (rec[i] != 0)
            return WIRE_EFRAME;
    return WIRE_OK;
}

/* 8 x 8 bit matrix transpose (Hacker's Delight 7-3): bit j of byte i goes
 * to bit i of byte j.  Its own inverse. */
static uint64_t transpose8(uint64_t x)
{
    uint64_t t;

    t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
    x ^= t ^ (t << 28);
    return x;
}

/* Bit shuffle over a channel's whole plane of n residuals of size bytes:
 * for the first n8 = n & ~7, bit plane b (b = 0 .. 8 size - 1, least
 * significant first) is n8 / 8 bytes at b * n8 / 8, bit t of its byte j
 * being bit b of residual 8 j + t; the n - n8 last residuals follow,
 * little-endian, at n8 * size.  Written and read a block at a time: a block
 * starts at a multiple of 8, so its residuals fill whole bytes of every
 * plane (long planes: the high ones, mostly zeros, are what zstd shrinks). */
#if defined(__SSE2__)
/* 16-bit residuals, 16 at a time: each byte lane's most significant bits are
 * one movemask, then the lane shifts left a bit (SSE2, every x86-64).  Does
 * groups j (8 samples each) from j0 while two remain before j1; returns the
 * group it stopped at, for the portable loop to finish. */
static size_t bitshuffle16_sse2(const uint32_t *r, size_t from, size_t j0, size_t j1, size_t g,
                                uint8_t *plane)
{
    size_t j = j0;

    for (; j + 2 <= j1; j += 2) {
        const uint32_t *v = r + 8 * j - from;
        uint8_t lo[16], hi[16];
        for (unsigned t = 0; t < 16; t++) {
            lo[t] = (uint8_t)v[t];
            hi[t] = (uint8_t)(v[t] >> 8);
        }
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)lo);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)hi);
        for (int bit = 7; bit >= 0; bit--) {
            unsigned ma = (unsigned)_mm_movemask_epi8(a), mb = (unsigned)_mm_movemask_epi8(b);
            plane[(size_t)bit * g + j] = (uint8_t)ma;
            plane[(size_t)bit * g + j + 1] = (uint8_t)(ma >> 8);
            plane[(size_t)(8 + bit) * g + j] = (uint8_t)mb;
            plane[(size_t)(8 + bit) * g + j + 1] = (uint8_t)(mb >> 8);
            a = _mm_add_epi8(a, a);
            b = _mm_add_epi8(b, b);
        }
    }
    return j;
}
#endif

WIRE_HOT static void bitshuffle_put(const uint32_t *r, size_t from, size_t len, size_t n, size_t size,
                           uint8_t *plane)
{
    size_t n8 = n & ~(size_t)7, g = n8 / 8, end8 = from + len < n8 ? from + len : n8;
    size_t j = from / 8;

#if defined(__SSE2__)
    if (size == 2 && end8 > from)
        j = bitshuffle16_sse2(r, from, j, end8 / 8, g, plane);
#endif
    for (; j < end8 / 8; j++) {
        const uint32_t *v = r + 8 * j - from;
        for (size_t k = 0; k < size; k++) {
            uint64_t x = 0;
            for (unsigned t = 0; t < 8; t++)
                x |= (uint64_t)((v[t] >> (8 * k)) & 0xff) << (8 * t);
            x = transpose8(x);
            for (unsigned b = 0; b < 8; b++)
                plane[(8 * k + b) * g + j] = (uint8_t)(x >> (8 * b));
        }
    }
    for (size_t i = end8 > from ? end8 : from; i < from + len; i++)
        for (size_t k = 0; k < size; k++)
            plane[n8 * size + (i - n8) * size + k] = (uint8_t)(r[i - from] >> (8 * k));
}

#if defined(__SSE2__)
/* The inverse, 16 samples at a time: byte b + 8 h of v is plane b's byte
 * for samples 8 h .. 8 h + 7, so a movemask takes bit 7 of each, which is
 * the low (or high) byte of samples 7 and 15; shifting v left a bit gives 6
 * and 14, and so on. */
static size_t unbitshuffle16_sse2(const uint8_t *plane, size_t from, size_t j0, size_t j1,
                                  size_t g, uint32_t *r, size_t stride)
{
    size_t j = j0;

    const __m128i low = _mm_set1_epi16(0xff);

    for (; j + 2 <= j1; j += 2) {
        uint32_t *v = r + (8 * j - from) * stride;
        __m128i a = _mm_setzero_si128(), c = _mm_setzero_si128();
        /* plane b's two bytes for groups j and j + 1 in 16-bit lane b, then
         * the even bytes to the low half and the odd ones to the high half
         * (filling a byte array instead stalls on the 16-byte reload) */
#define PLANE_PAIR(B)                                                           \
        do {                                                                    \
            uint16_t u_, w_;                                                    \
            memcpy(&u_, plane + (B) * g + j, 2);                                \
            memcpy(&w_, plane + (8 + (B)) * g + j, 2);                          \
            a = _mm_insert_epi16(a, u_, (B));   /* the lane: a constant */      \
            c = _mm_insert_epi16(c, w_, (B));                                   \
        } while (0)
        PLANE_PAIR(0); PLANE_PAIR(1); PLANE_PAIR(2); PLANE_PAIR(3);
        PLANE_PAIR(4); PLANE_PAIR(5); PLANE_PAIR(6); PLANE_PAIR(7);
#undef PLANE_PAIR
        a = _mm_packus_epi16(_mm_and_si128(a, low), _mm_srli_epi16(a, 8));
        c = _mm_packus_epi16(_mm_and_si128(c, low), _mm_srli_epi16(c, 8));
        for (int t = 7; t >= 0; t--) {
            unsigned ma = (unsigned)_mm_movemask_epi8(a), mc = (unsigned)_mm_movemask_epi8(c);
            v[t * stride] = (ma & 0xff) | (mc & 0xff) << 8;
            v[(t + 8) * stride] = (ma >> 8) | (mc >> 8) << 8;
            a = _mm_add_epi8(a, a);
            c = _mm_add_epi8(c, c);
        }
    }
    return j;
}
#endif

#if defined(WIRE_GROUP_AVX2)
static int have_avx2(void)
{
    static int have = -1;

    if (have < 0)
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
    return have;
}

/* 4-byte residuals, 32 at a time (four groups), all 32 planes in one pass
 * (the SSE2 way is two 16-bit passes and a join).  Plane p's bytes for the
 * four groups are one dword; the planes of sample byte k (8 k .. 8 k + 7)
 * make register m[k], arranged so that byte 8 h + b is plane 8 k + b's byte
 * for group j + h.  Its movemask then holds, in byte h, bit 7 of each of
 * them: byte k of sample 8 h + 7 of the four groups.  A byte shuffle of the
 * four masks gives those four samples whole; adding each byte to itself
 * moves bit 6 up for samples 8 h + 6, and so on.  The eight steps' samples
 * are transposed to rows of 8 in order.  Returns the group it stopped at
 * (fewer than four left before j1), for the code after it. */
__attribute__((target("avx2")))
static size_t unbitshuffle32_avx2(const uint8_t *plane, size_t from, size_t j0, size_t j1, size_t g,
                                  uint32_t *r)
{
    /* in each 128-bit half, dword b (plane b, group h in byte h) to byte 4 h + b */
    const __m256i by_group = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                              0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    /* then group h's planes 0-3 (low half) and 4-7 (high half) side by side */
    const __m256i halves = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    /* masks m0..m3 as dwords to dword h = byte h of each, i.e. sample 8 h + t */
    const __m128i join = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    size_t j = j0;

    for (; j + 4 <= j1; j += 4) {
        uint32_t *v = r + 8 * j - from;
        __m256i m[4];
        __m128i x[8];

        for (unsigned k = 0; k < 4; k++) {
            uint32_t d[8];
            for (unsigned b = 0; b < 8; b++)
                memcpy(&d[b], plane + (size_t)(8 * k + b) * g + j, 4);
            /* from registers, not a reload of d (which stalls the store forwarding) */
            __m256i y = _mm256_setr_epi32((int)d[0], (int)d[1], (int)d[2], (int)d[3], (int)d[4],
                                          (int)d[5], (int)d[6], (int)d[7]);
            m[k] = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(y, by_group), halves);
        }
        for (int t = 7; t >= 0; t--) {
            __m128i q = _mm_setr_epi32(_mm256_movemask_epi8(m[0]), _mm256_movemask_epi8(m[1]),
                                       _mm256_movemask_epi8(m[2]), _mm256_movemask_epi8(m[3]));
            x[t] = _mm_shuffle_epi8(q, join);
            for (unsigned k = 0; k < 4; k++)
                m[k] = _mm256_add_epi8(m[k], m[k]);
        }
        /* x[t]'s dword h is sample 8 h + t: rows t = 0-3 | 4-7 transposed,
         * each 128-bit half on its own, give samples 8 h .. 8 h + 7 */
        __m256i y0 = _mm256_set_m128i(x[4], x[0]), y1 = _mm256_set_m128i(x[5], x[1]);
        __m256i y2 = _mm256_set_m128i(x[6], x[2]), y3 = _mm256_set_m128i(x[7], x[3]);
        __m256i a0 = _mm256_unpacklo_epi32(y0, y1), a1 = _mm256_unpackhi_epi32(y0, y1);
        __m256i a2 = _mm256_unpacklo_epi32(y2, y3), a3 = _mm256_unpackhi_epi32(y2, y3);
        _mm256_storeu_si256((__m256i *)(void *)(v + 0), _mm256_unpacklo_epi64(a0, a2));
        _mm256_storeu_si256((__m256i *)(void *)(v + 8), _mm256_unpackhi_epi64(a0, a2));
        _mm256_storeu_si256((__m256i *)(void *)(v + 16), _mm256_unpacklo_epi64(a1, a3));
        _mm256_storeu_si256((__m256i *)(void *)(v + 24), _mm256_unpackhi_epi64(a1, a3));
    }
    return j;
}
#endif

/* The portable transpose, groups [j, j1) (and then the samples after n8). */
static void bitshuffle_get_rest(const uint8_t *plane, size_t from, size_t len, size_t n, size_t size,
                                size_t j, uint32_t *r)
{
    size_t n8 = n & ~(size_t)7, g = n8 / 8, end8 = from + len < n8 ? from + len : n8;

    for (; j < end8 / 8; j++) {
        uint32_t v[8] = { 0 };
        for (size_t k = 0; k < size; k++) {
            uint64_t x = 0;
            for (unsigned b = 0; b < 8; b++)
                x |= (uint64_t)plane[(8 * k + b) * g + j] << (8 * b);
            x = transpose8(x);
            for (unsigned t = 0; t < 8; t++)
                v[t] |= (uint32_t)((x >> (8 * t)) & 0xff) << (8 * k);
        }
        memcpy(r + 8 * j - from, v, sizeof v);
    }
    for (size_t i = end8 > from ? end8 : from; i < from + len; i++) {
        uint32_t u = 0;
        for (size_t k = 0; k < size; k++)
            u |= (uint32_t)plane[n8 * size + (i - n8) * size + k] << (8 * k);
        r[i - from] = u;
    }
}

WIRE_HOT static void bitshuffle_get(const uint8_t *plane, size_t from, size_t len, size_t n, size_t size,
                           uint32_t *r)
{
    size_t n8 = n & ~(size_t)7, g = n8 / 8, end8 = from + len < n8 ? from + len : n8;
    size_t j = from / 8;

#if defined(WIRE_GROUP_AVX2)
    if (size == 4 && end8 > from && have_avx2())
        j = unbitshuffle32_avx2(plane, from, j, end8 / 8, g, r);
#endif
#if defined(__SSE2__)
    if (size == 2 && end8 > from)
        j = unbitshuffle16_sse2(plane, from, j, end8 / 8, g, r, 1);
    /* 4-byte samples: planes 0-15 hold the low halves and planes 16-31 the
     * high ones, each a 16-bit bit shuffle of its own; two passes of the
     * 16-bit transpose, a chunk of groups at a time, joined by a shift. */
    while (size == 4 && end8 > from && j + 2 <= end8 / 8) {
        uint32_t hi[8 * 32];
        size_t stop = j + 32 < end8 / 8 ? j + 32 : end8 / 8;
        size_t done = unbitshuffle16_sse2(plane, from, j, stop, g, r, 1);

        (void)unbitshuffle16_sse2(plane + 16 * g, 8 * j, j, done, g, hi, 1);
        for (size_t i = 0; i < 8 * (done - j); i++)
            r[8 * j - from + i] |= hi[i] << 16;
        j = done;
        if (done < stop)
            break;                      /* one group left: the loop below */
    }
#endif
    bitshuffle_get_rest(plane, from, len, n, size, j, r);
}

void wire__bitshuffle_get(const uint8_t *plane, size_t from, size_t len, size_t n, size_t size,
                          uint32_t *r)
{
    bitshuffle_get(plane, from, len, n, size, r);
}

void wire__bitshuffle_get_portable(const uint8_t *plane, size_t from, size_t len, size_t n,
                                   size_t size, uint32_t *r)
{
    bitshuffle_get_rest(plane, from, len, n, size, from / 8, r);
}

/* Residuals r[0, len) to plane positions [from, from + len) of an n-sample
 * plane in the given layout: little-endian; byte shuffle over the plane
 * (byte k of sample i at k * n + i); bit shuffle over the plane. */
static void residuals_put(const uint32_t *r, size_t len, int wide, int layout, size_t n,
                          size_t from, uint8_t *plane)
{
    size_t size = wide ? 4 : 2;

    if (layout == WIRE__LAYOUT_BITSHUFFLE) {
        bitshuffle_put(r, from, len, n, size, plane);
    } else if (layout == WIRE__LAYOUT_SHUFFLE && !wide) {
        uint8_t *b0 = plane + from, *b1 = plane + n + from;
        for (size_t i = 0; i < len; i++) {
            b0[i] = (uint8_t)r[i];
            b1[i] = (uint8_t)(r[i] >> 8);
        }
    } else if (layout == WIRE__LAYOUT_SHUFFLE) {
        uint8_t *b0 = plane + from, *b1 = b0 + n, *b2 = b1 + n, *b3 = b2 + n;
        for (size_t i = 0; i < len; i++) {
            b0[i] = (uint8_t)r[i];
            b1[i] = (uint8_t)(r[i] >> 8);
            b2[i] = (uint8_t)(r[i] >> 16);
            b3[i] = (uint8_t)(r[i] >> 24);
        }
    } else {
        uint8_t *d = plane + from * size;
        for (size_t i = 0; i < len; i++)
            for (size_t k = 0; k < size; k++)
                d[i * size + k] = (uint8_t)(r[i] >> (8 * k));
    }
}

static void residuals_get(const uint8_t *plane, size_t len, int wide, int layout, size_t n,
                          size_t from, uint32_t *r)
{
    size_t size = wide ? 4 : 2;

    if (layout == WIRE__LAYOUT_BITSHUFFLE) {
        bitshuffle_get(plane, from, len, n, size, r);
    } else if (layout == WIRE__LAYOUT_SHUFFLE && !wide) {
        const uint8_t *b0 = plane + from, *b1 = plane + n + from;
        for (size_t i = 0; i < len; i++)
            r[i] = (uint32_t)b0[i] | (uint32_t)b1[i] << 8;
    } else if (layout == WIRE__LAYOUT_SHUFFLE) {
        const uint8_t *b0 = plane + from, *b1 = b0 + n, *b2 = b1 + n, *b3 = b2 + n;
        for (size_t i = 0; i < len; i++)
            r[i] = (uint32_t)b0[i] | (uint32_t)b1[i] << 8 | (uint32_t)b2[i] << 16 |
                   (uint32_t)b3[i] << 24;
    } else {
        const uint8_t *src = plane + from * size;
        for (size_t i = 0; i < len; i++) {
            uint32_t v = 0;
            for (size_t k = 0; k < size; k++)
                v |= (uint32_t)src[i * size + k] << (8 * k);
            r[i] = v;
        }
    }
}

/* --- forward --------------------------------------------------------------- */

/* The cheapest predictor for the block in w->x (residuals left in w->best).
 * The fixed predictors are measured without writing their residuals, and
 * only the winner's are written.  The linear predictor is fitted afresh when
 * refit is set (every 4th block) or when the last fit, kept in *fit, loses
 * to the fixed predictors on this block: fitting is most of the encoder's
 * time, and on the simulator's vibration the kept fit did better (0.3 % at
 * 48 kHz, 0.4 % at 12 kHz: a fit to one block overfits its transients). */
static struct pred choose(struct work *w, size_t len, size_t full, int wide, int is_float,
                          unsigned max_order, struct pred *fit, int refit)
{
    const int32_t *x = w->x + HIST;
    struct pred best = { 0 }, xor = { 0 };
    uint64_t sums[3], best_sum;
    uint32_t *swap;

    fixed_magnitudes(x, len, wide, sums);
    best.kind = WIRE_PRED_NONE;
    best_sum = sums[0];
    if (sums[1] < best_sum)
        best.kind = WIRE_PRED_DIFF1, best_sum = sums[1];
    if (sums[2] < best_sum)
        best.kind = WIRE_PRED_DIFF2, best_sum = sums[2];
    if (is_float) {
        xor.kind = WIRE_PRED_XOR;
        residuals(&xor, x, len, wide, w->trial);
        if (magnitude(w->trial, len) < best_sum) {
            swap = w->best, w->best = w->trial, w->trial = swap;
            return xor;
        }
    }
    for (int attempt = 0; !is_float && max_order > 0 && attempt < 2; attempt++) {
        int fresh = refit || fit->kind != WIRE_PRED_LPC || attempt == 1;
        if (fresh && lpc_fit(w, len, full, max_order, fit) != 0) {
            fit->kind = WIRE_PRED_NONE;
            break;
        }
        residuals(fit, x, len, wide, w->trial);
        if (magnitude(w->trial, len) < best_sum) {
            swap = w->best, w->best = w->trial, w->trial = swap;
            return *fit;
        }
        if (fresh)
            break;
    }
    residuals(&best, x, len, wide, w->best);
    return best;
}

/* Samples [from, from + len) of a plane held in two pieces: the first n0
 * at in0, the rest at in1 (a ring's wrap). */
static void load_split(const uint8_t *in0, size_t n0, const uint8_t *in1, size_t from,
                       size_t len, int wide, int32_t *x)
{
    size_t head = from < n0 ? n0 - from : 0;

    if (head > len)
        head = len;
    if (head)
        load_block(in0, from, head, wide, x);
    if (head < len)
        load_block(in1, from + head - n0, len - head, wide, x + head);
}

void wire__predict_plane(const void *in0, size_t n0, const void *in1, size_t n, uint8_t type,
                         unsigned block_log, int layout, unsigned max_order, uint8_t *records,
                         uint8_t *plane, void *work)
{
    struct work w = work_carve(work, block_log);
    size_t full = (size_t)1 << block_log, nb = wire__blocks(n, block_log);
    int wide = wire_sample_size(type) == 4, is_float = type == WIRE_F32;
    struct pred fit;

    if (max_order > WIRE_MAX_ORDER)
        max_order = WIRE_MAX_ORDER;
    memset(&fit, 0, sizeof fit);
    memset(w.x, 0, HIST * sizeof *w.x);
    window_make(w.win, full);
    for (size_t b = 0; b < nb; b++) {
        size_t from = b * full, len = n - from < full ? n - from : full;
        struct pred p;

        load_split(in0, n0, in1, from, len, wide, w.x + HIST);
        p = choose(&w, len, full, wide, is_float, max_order, &fit, (b & 3) == 0);
        record_put(records + b * WIRE_BLOCK_HDR_LEN, &p);
        residuals_put(w.best, len, wide, layout, n, from, plane);
        memmove(w.x, w.x + len, HIST * sizeof *w.x);
    }
}

/* --- inverse --------------------------------------------------------------- */

/* The recursion is serial; what helps is the order as a constant (the taps
 * unrolled, held in registers) and the newest sample added last, so the
 * chain from one sample to the next is one multiply-add. */
#define LPC_REC16(ORDER)                                                        \
    for (size_t i = 0; i < len; i++) {                                          \
        uint32_t acc = 0;                                                       \
        for (unsigned k = (ORDER); k-- > 0;)                                    \
            acc += (uint32_t)(q[k] * (x - 1 - k)[i]);                             \
        x[i] = sext16(unzigzag(r[i]) + (uint32_t)asr32(to_i32(acc), sh));       \
    }

/* Order 8, the encoder's: the last eight samples live in registers, so the
 * newest does not go through a store and a load (store forwarding would add
 * its latency to every sample's chain). */
static void lpc_rebuild16_8(const int32_t *q, unsigned sh, const uint32_t *restrict r,
                            size_t len, int32_t *restrict x)
{
    int32_t x1 = x[-1], x2 = x[-2], x3 = x[-3], x4 = x[-4], x5 = x[-5], x6 = x[-6],
            x7 = x[-7], x8 = x[-8];
    const int32_t q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3], q4 = q[4], q5 = q[5], q6 = q[6],
                  q7 = q[7];

    for (size_t i = 0; i < len; i++) {
        uint32_t acc = (uint32_t)(q7 * x8) + (uint32_t)(q6 * x7) + (uint32_t)(q5 * x6) +
                       (uint32_t)(q4 * x5) + (uint32_t)(q3 * x4) + (uint32_t)(q2 * x3) +
                       (uint32_t)(q1 * x2);
        acc += (uint32_t)(q0 * x1);
        int32_t v = sext16(unzigzag(r[i]) + (uint32_t)asr32(to_i32(acc), sh));
        x[i] = v;
        x8 = x7, x7 = x6, x6 = x5, x5 = x4, x4 = x3, x3 = x2, x2 = x1, x1 = v;
    }
}

static void lpc_rebuild16(const struct pred *p, const uint32_t *restrict r, size_t len,
                          int32_t *restrict x)
{
    int32_t q[WIRE_MAX_ORDER];
    unsigned sh = p->shift;

    memcpy(q, p->q, sizeof q);
    switch (p->order) {
    case 8: lpc_rebuild16_8(q, sh, r, len, x); break;
    case 12: LPC_REC16(12); break;
    default: LPC_REC16(p->order); break;
    }
}

/* Rebuilds x[0, len) from residuals r (history before x[0]). */
static void reconstruct(const struct pred *p, const uint32_t *r, size_t len, int wide, int32_t *x)
{
    switch (p->kind) {
    case WIRE_PRED_NONE:
        for (size_t i = 0; i < len; i++) {
            uint32_t u = unzigzag(r[i]);
            x[i] = wide ? to_i32(u) : sext16(u);
        }
        break;
    case WIRE_PRED_DIFF1:
        for (size_t i = 0; i < len; i++) {
            uint32_t u = unzigzag(r[i]) + (uint32_t)(x - 1)[i];
            x[i] = wide ? to_i32(u) : sext16(u);
        }
        break;
    case WIRE_PRED_DIFF2:
        for (size_t i = 0; i < len; i++) {
            uint32_t u = unzigzag(r[i]) + 2u * (uint32_t)(x - 1)[i] - (uint32_t)(x - 2)[i];
            x[i] = wide ? to_i32(u) : sext16(u);
        }
        break;
    case WIRE_PRED_XOR:
        for (size_t i = 0; i < len; i++) {
            uint32_t u = r[i] ^ (uint32_t)(x - 1)[i];
            x[i] = wide ? to_i32(u) : sext16(u);
        }
        break;
    default:    /* WIRE_PRED_LPC */
        if (!wide) {
            lpc_rebuild16(p, r, len, x);
        } else {
            for (size_t i = 0; i < len; i++) {
                uint64_t acc = 0;
                for (unsigned k = 0; k < p->order; k++)
                    acc += (uint64_t)((int64_t)p->q[k] * (x - 1 - k)[i]);
                x[i] = to_i32(unzigzag(r[i]) + (uint32_t)asr64(to_i64(acc), p->shift));
            }
        }
        break;
    }
}

int wire__unpredict_plane(const uint8_t *records, const uint8_t *plane, size_t n, uint8_t type,
                          unsigned block_log, int layout, void *out, void *work)
{
    struct work w = work_carve(work, block_log);
    size_t full = (size_t)1 << block_log, nb = wire__blocks(n, block_log);
    int wide = wire_sample_size(type) == 4;

    memset(w.x, 0, HIST * sizeof *w.x);
    for (size_t b = 0; b < nb; b++) {
        size_t from = b * full, len = n - from < full ? n - from : full;
        struct pred p;

        if (record_get(records + b * WIRE_BLOCK_HDR_LEN, &p) != WIRE_OK)
            return WIRE_EFRAME;
        residuals_get(plane, len, wide, layout, n, from, w.best);
        reconstruct(&p, w.best, len, wide, w.x + HIST);
        store_block(w.x + HIST, len, wide, out, from);
        memmove(w.x, w.x + len, HIST * sizeof *w.x);
    }
    return WIRE_OK;
}

/* --- inverse, several int16 channels at once ------------------------------ */

/* One channel's LPC recursion is a serial chain (each sample waits for the
 * one before: a multiply, an add, a shift, an add, a sign extension), and
 * eight taps are eight multiplies per sample on the one scalar multiplier.
 * The channels' chains are independent and their blocks line up (same n,
 * same block_log), so up to WIRE__LANES channels are rebuilt together, one
 * channel per 32-bit lane of an AVX2 register: each step does eight lanes'
 * multiplies in eight instructions and its chain is as long as one
 * channel's.  Every int16 predictor but XOR is an LPC of order <= 8 with the
 * same modulo-2^32 arithmetic (none: no taps; first difference: q = 1; second:
 * q = 2, -1; shift 0), so one loop serves a block whatever each channel
 * chose; a block where some channel needs more (order 9-12, or XOR, which
 * only a hostile int16 record carries) is rebuilt channel by channel with the
 * scalar code above.  Same results bit for bit: the unit suite compares both.
 *
 * Layout in the work area: rows of WIRE__LANES int32, row i holding sample i
 * of every channel of the group; HIST rows of history before the block. */
#define WIRE__LANES 8

struct group {
    int32_t *x8;        /* HIST + block rows of samples */
    uint32_t *r8;       /* block rows of residuals (zigzagged) */
    int32_t *hist;      /* one channel's history and block, for the scalar fallback */
    uint32_t *r;        /* one channel's residuals */
};

size_t wire__decode_work_bytes(unsigned block_log)
{
    size_t b = (size_t)1 << block_log;
    return align16((HIST + b) * 4 * WIRE__LANES) + align16(b * 4 * WIRE__LANES) +
           align16((HIST + b) * 4) + align16(b * 4) + 32;
}

static struct group group_carve(void *mem, unsigned block_log)
{
    size_t b = (size_t)1 << block_log;
    uint8_t *p = (uint8_t *)(((uintptr_t)mem + 31) & ~(uintptr_t)31);
    struct group g;

    g.x8 = (int32_t *)(void *)p;
    p += align16((HIST + b) * 4 * WIRE__LANES);
    g.r8 = (uint32_t *)(void *)p;
    p += align16(b * 4 * WIRE__LANES);
    g.hist = (int32_t *)(void *)p;
    p += align16((HIST + b) * 4);
    g.r = (uint32_t *)(void *)p;
    return g;
}

/* The taps of p as an order-8 LPC (the table above), or -1 if it is not one. */
static int as_lpc8(const struct pred *p, int32_t q[8], int32_t *shift)
{
    memset(q, 0, 8 * sizeof *q);
    *shift = 0;
    switch (p->kind) {
    case WIRE_PRED_NONE: return 0;
    case WIRE_PRED_DIFF1: q[0] = 1; return 0;
    case WIRE_PRED_DIFF2: q[0] = 2, q[1] = -1; return 0;
    case WIRE_PRED_LPC:
        if (p->order > 8)
            return -1;
        memcpy(q, p->q, p->order * sizeof *q);
        *shift = p->shift;
        return 0;
    default: return -1;
    }
}

#if defined(WIRE_GROUP_AVX2)
/* taps[k][c]: tap k of lane c; rows x8[-8 .. -1] hold the history. */
__attribute__((target("avx2")))
static void lpc_rebuild16_lanes(const int32_t taps[8][WIRE__LANES], const int32_t *shifts,
                                const uint32_t *restrict r8, size_t len, int32_t *restrict x8)
{
    const __m256i q0 = _mm256_loadu_si256((const __m256i *)(const void *)taps[0]);
    const __m256i q1 = _mm256_loadu_si256((const __m256i *)(const void *)taps[1]);
    const __m256i q2 = _mm256_loadu_si256((const __m256i *)(const void *)taps[2]);
    const __m256i q3 = _mm256_loadu_si256((const __m256i *)(const void *)taps[3]);
    const __m256i q4 = _mm256_loadu_si256((const __m256i *)(const void *)taps[4]);
    const __m256i q5 = _mm256_loadu_si256((const __m256i *)(const void *)taps[5]);
    const __m256i q6 = _mm256_loadu_si256((const __m256i *)(const void *)taps[6]);
    const __m256i q7 = _mm256_loadu_si256((const __m256i *)(const void *)taps[7]);
    const __m256i sh = _mm256_loadu_si256((const __m256i *)(const void *)shifts);
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
#define ROW(i) _mm256_loadu_si256((const __m256i *)(const void *)(x8 + (ptrdiff_t)(i) * WIRE__LANES))
    __m256i x1 = ROW(-1), x2 = ROW(-2), x3 = ROW(-3), x4 = ROW(-4), x5 = ROW(-5), x6 = ROW(-6),
            x7 = ROW(-7), xo = ROW(-8);
#undef ROW

    for (size_t i = 0; i < len; i++) {
        __m256i z = _mm256_loadu_si256((const __m256i *)(const void *)(r8 + i * WIRE__LANES));
        __m256i u = _mm256_xor_si256(_mm256_srli_epi32(z, 1),
                                     _mm256_sub_epi32(zero, _mm256_and_si256(z, one)));
        __m256i acc = _mm256_add_epi32(
            _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(q7, xo), _mm256_mullo_epi32(q6, x7)),
                             _mm256_add_epi32(_mm256_mullo_epi32(q5, x6), _mm256_mullo_epi32(q4, x5))),
            _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(q3, x4), _mm256_mullo_epi32(q2, x3)),
                             _mm256_mullo_epi32(q1, x2)));
        /* the newest sample last: its multiply is the only one on the chain */
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(q0, x1));
        __m256i v = _mm256_add_epi32(u, _mm256_srav_epi32(acc, sh));
        v = _mm256_srai_epi32(_mm256_slli_epi32(v, 16), 16);
        _mm256_storeu_si256((__m256i *)(void *)(x8 + i * WIRE__LANES), v);
        xo = x7, x7 = x6, x6 = x5, x5 = x4, x4 = x3, x3 = x2, x2 = x1, x1 = v;
    }
}

int wire__group16_available(void)
{
    return have_avx2();
}
#else
int wire__group16_available(void) { return 0; }
#endif

/* Channel c's residuals for [from, from + len) into lane c of r8: the bit
 * planes straight into the lane where SSE2 reads them, the rest through r. */
static void lanes_residuals(const uint8_t *plane, size_t len, int layout, size_t n, size_t from,
                            struct group *g, unsigned c)
{
    size_t done = 0;

#if defined(__SSE2__)
    size_t n8 = n & ~(size_t)7, end8 = from + len < n8 ? from + len : n8;
    if (layout == WIRE__LAYOUT_BITSHUFFLE && end8 > from)
        done = 8 * unbitshuffle16_sse2(plane, from, from / 8, end8 / 8, n8 / 8, g->r8 + c,
                                       WIRE__LANES) - from;
#endif
    if (done == len)
        return;
    residuals_get(plane, len, 0, layout, n, from, g->r);
    for (size_t i = done; i < len; i++)
        g->r8[i * WIRE__LANES + c] = g->r[i];
}

/* Lane c's block rebuilt by the one-channel code: history and samples go
 * through g->hist, the residuals are lane c of r8. */
static void rebuild_lane(struct group *g, unsigned c, const struct pred *p, size_t len)
{
    for (size_t i = 0; i < HIST + len; i++)
        g->hist[i] = g->x8[i * WIRE__LANES + c];
    for (size_t i = 0; i < len; i++)
        g->r[i] = g->r8[i * WIRE__LANES + c];
    reconstruct(p, g->r, len, 0, g->hist + HIST);
    for (size_t i = 0; i < len; i++)
        g->x8[(HIST + i) * WIRE__LANES + c] = g->hist[HIST + i];
}

/* The block's rows out to the channels' planes (channel c at out + c * n):
 * row after row, so the 32-byte rows are read once, in order (column by
 * column they were read count times over, from L2). */
static void lanes_store(const struct group *g, unsigned count, size_t len, int16_t *out, size_t n)
{
    const int32_t *row = g->x8 + HIST * WIRE__LANES;
    size_t i = 0;

#if defined(__SSE2__)
    /* 8 rows at a time: each packed to 8 int16 (exact: the values are
     * sign-extended int16), then an 8 x 8 transpose gives each channel 8
     * consecutive samples */
    for (; i + 8 <= len; i += 8, row += 8 * WIRE__LANES) {
        __m128i r[8], a[8], b[8];
        for (unsigned k = 0; k < 8; k++)
            r[k] = _mm_packs_epi32(
                _mm_loadu_si128((const __m128i *)(const void *)(row + k * WIRE__LANES)),
                _mm_loadu_si128((const __m128i *)(const void *)(row + k * WIRE__LANES + 4)));
        for (unsigned k = 0; k < 4; k++) {
            a[2 * k] = _mm_unpacklo_epi16(r[2 * k], r[2 * k + 1]);
            a[2 * k + 1] = _mm_unpackhi_epi16(r[2 * k], r[2 * k + 1]);
        }
        for (unsigned k = 0; k < 2; k++) {
            b[4 * k] = _mm_unpacklo_epi32(a[4 * k], a[4 * k + 2]);
            b[4 * k + 1] = _mm_unpackhi_epi32(a[4 * k], a[4 * k + 2]);
            b[4 * k + 2] = _mm_unpacklo_epi32(a[4 * k + 1], a[4 * k + 3]);
            b[4 * k + 3] = _mm_unpackhi_epi32(a[4 * k + 1], a[4 * k + 3]);
        }
        /* b[0..3]: rows 0-3 of channels (0,1), (2,3), (4,5), (6,7); b[4..7]: rows 4-7 */
        for (unsigned c = 0; c < count; c++) {
            __m128i v = c & 1 ? _mm_unpackhi_epi64(b[c / 2], b[4 + c / 2])
                              : _mm_unpacklo_epi64(b[c / 2], b[4 + c / 2]);
            _mm_storeu_si128((__m128i *)(void *)(out + c * n + i), v);
        }
    }
#endif
    for (; i < len; i++, row += WIRE__LANES)
        for (unsigned c = 0; c < count; c++)
            out[c * n + i] = (int16_t)row[c];
}

/* The block in all lanes at once; 0 if this build has no lane code. */
static int lanes_rebuild(const int32_t taps[8][WIRE__LANES], const int32_t *shifts,
                         struct group *g, size_t len)
{
#if defined(WIRE_GROUP_AVX2)
    lpc_rebuild16_lanes(taps, shifts, g->r8, len, g->x8 + HIST * WIRE__LANES);
    return 1;
#else
    (void)taps, (void)shifts, (void)g, (void)len;
    return 0;
#endif
}

int wire__unpredict_group16(const uint8_t *records, size_t rec_stride, const uint8_t *planes,
                            unsigned count, size_t n, unsigned block_log, int layout,
                            int16_t *out, void *work)
{
    struct group g = group_carve(work, block_log);
    size_t full = (size_t)1 << block_log, nb = wire__blocks(n, block_log);
    struct pred p[WIRE__LANES];
    int32_t taps[8][WIRE__LANES], shifts[WIRE__LANES], q[8], s;

    if (count == 0 || count > WIRE__LANES)
        return WIRE_EFRAME;
    /* samples before the first count as 0; unused lanes rebuild zeros from
     * zeros (harmless, and defined memory) */
    memset(g.x8, 0, (count < WIRE__LANES ? HIST + full : HIST) * WIRE__LANES * sizeof *g.x8);
    if (count < WIRE__LANES)
        memset(g.r8, 0, full * WIRE__LANES * sizeof *g.r8);
    for (size_t b = 0; b < nb; b++) {
        size_t from = b * full, len = n - from < full ? n - from : full;
        int lanes_ok = wire__group16_available();

        memset(taps, 0, sizeof taps);
        memset(shifts, 0, sizeof shifts);
        for (unsigned c = 0; c < count; c++) {
            if (record_get(records + c * rec_stride + b * WIRE_BLOCK_HDR_LEN, &p[c]) != WIRE_OK)
                return WIRE_EFRAME;
            if (as_lpc8(&p[c], q, &s) != 0)
                lanes_ok = 0;
            for (unsigned k = 0; k < 8; k++)
                taps[k][c] = q[k];
            shifts[c] = s;
            lanes_residuals(planes + c * n * 2, len, layout, n, from, &g, c);
        }
        if (!lanes_ok || !lanes_rebuild(taps, shifts, &g, len))
            for (unsigned c = 0; c < count; c++)
                rebuild_lane(&g, c, &p[c], len);
        lanes_store(&g, count, len, out + from, n);
        memmove(g.x8, g.x8 + len * WIRE__LANES, HIST * WIRE__LANES * sizeof *g.x8);
    }
    return WIRE_OK;
}

int wire__unpredict_planes(const uint8_t *content, unsigned channels, size_t n, uint8_t type,
                           unsigned block_log, int layout, void *out, void *work)
{
    size_t size = wire_sample_size(type), rec = wire__blocks(n, block_log) * WIRE_BLOCK_HDR_LEN;
    const uint8_t *planes = content + rec * channels;
    uint8_t *o = out;

    /* one channel alone is as fast through the scalar code */
    if (type == WIRE_I16 && channels > 1 && wire__group16_available()) {
        for (unsigned c = 0; c < channels; c += WIRE__LANES) {
            unsigned k = channels - c < WIRE__LANES ? channels - c : WIRE__LANES;
            if (wire__unpredict_group16(content + c * rec, rec, planes + c * n * size, k, n,
                                        block_log, layout, (int16_t *)(void *)(o + c * n * size),
                                        work) != WIRE_OK)
                return WIRE_EFRAME;
        }
        return WIRE_OK;
    }
    for (unsigned c = 0; c < channels; c++)
        if (wire__unpredict_plane(content + c * rec, planes + c * n * size, n, type, block_log,
                                  layout, o + c * n * size, work) != WIRE_OK)
            return WIRE_EFRAME;
    return WIRE_OK;
}
