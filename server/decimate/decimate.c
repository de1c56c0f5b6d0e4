/* decimate.c - see decimate.h.  Pure functions: no I/O, no allocation.
 * Built with -O3 (Makefile): the ragged-end loops below are most of a
 * samples answer, and only -O3 vectorises them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/decimate/decimate.h"

double decimate_value(const struct decimate_src *s, unsigned ch, size_t i)
{
    size_t k = (size_t)ch * s->n + i;

    switch (s->sample_type) {
    case WIRE_I16: {
        int16_t v;
        memcpy(&v, (const uint8_t *)s->samples + k * sizeof v, sizeof v);
        return v;
    }
    case WIRE_I32: {
        int32_t v;
        memcpy(&v, (const uint8_t *)s->samples + k * sizeof v, sizeof v);
        return v;
    }
    case WIRE_F32: {
        float v;
        memcpy(&v, (const uint8_t *)s->samples + k * sizeof v, sizeof v);
        return v;
    }
    default:
        return NAN;
    }
}

/* Min and max of samples [a, b) of channel ch (b > a): the type switch
 * outside the loop, since this runs over every sample of a view. */
#define COL_SCAN(T)                                                             \
    do {                                                                        \
        const uint8_t *p = (const uint8_t *)s->samples + ((size_t)ch * s->n + a) * sizeof(T); \
        T v, lo, hi;                                                            \
        size_t i;                                                               \
        memcpy(&lo, p, sizeof lo);                                              \
        hi = lo;                                                                \
        for (i = 1; i < b - a; i++) {                                           \
            memcpy(&v, p + i * sizeof v, sizeof v);                             \
            lo = v < lo ? v : lo;                                               \
            hi = v > hi ? v : hi;                                               \
        }                                                                       \
        *mn = lo;                                                               \
        *mx = hi;                                                               \
    } while (0)

static void pyr_minmax(const struct decimate_src *s, unsigned ch, size_t a, size_t b,
                       double *mn, double *mx);

static void col_minmax(const struct decimate_src *s, unsigned ch, size_t a, size_t b,
                       double *mn, double *mx)
{
    if (s->pyr && b - a >= 4 * DECIMATE_PYR_BLOCK) {
        pyr_minmax(s, ch, a, b, mn, mx);
        return;
    }
    switch (s->sample_type) {
    case WIRE_I16: COL_SCAN(int16_t); break;
    case WIRE_I32: COL_SCAN(int32_t); break;
    case WIRE_F32: COL_SCAN(float); break;
    default: *mn = *mx = NAN; break;
    }
}

/* ---- min/max pyramid ------------------------------------------------------ */

#define PYR_LEVELS_MAX 10

/* Level l: count[l] whole blocks of block[l] samples per channel, their
 * NaN-skipping min and max at lo[l][ch * count[l] + k] (NaN: all NaN). */
struct decimate_pyramid {
    unsigned channels, levels;
    size_t n;
    size_t count[PYR_LEVELS_MAX], block[PYR_LEVELS_MAX];
    double *lo[PYR_LEVELS_MAX], *hi[PYR_LEVELS_MAX];
};

/* Fold l, h into *lo, *hi skipping NaN (strict comparisons: the first of
 * equal values stays, as in the scan). */
static inline void nan_fold(double *lo, double *hi, double l, double h)
{
    if (l < *lo || *lo != *lo)
        *lo = l;
    if (h > *hi || *hi != *hi)
        *hi = h;
}

/* Extremes of samples [a, b) (b > a) in the samples' own type, folded in
 * once: the ragged ends of every column come here, so the loop stays in
 * the narrow type (integers need no NaN test and vectorize). */
#define RAW_FOLD_INT(T)                                                         \
    do {                                                                        \
        const T *x = (const T *)s->samples + (size_t)ch * s->n;                 \
        T l = x[a], h = x[a];                                                   \
        size_t i;                                                               \
        for (i = a + 1; i < b; i++) {                                           \
            l = x[i] < l ? x[i] : l;                                            \
            h = x[i] > h ? x[i] : h;                                            \
        }                                                                       \
        nan_fold(lo, hi, (double)l, (double)h);                                 \
    } while (0)

/* The float case: NaN never replaces an extreme, and an extreme that is
 * NaN (the first sample) is replaced by the next number. */
static void raw_fold_f32(const struct decimate_src *s, unsigned ch, size_t a, size_t b,
                         double *lo, double *hi)
{
    const float *x = (const float *)s->samples + (size_t)ch * s->n;
    float l = x[a], h = x[a];
    size_t i;

    for (i = a + 1; i < b; i++) {
        l = x[i] < l || l != l ? x[i] : l;
        h = x[i] > h || h != h ? x[i] : h;
    }
    nan_fold(lo, hi, (double)l, (double)h);
}

/* Fold samples [a, b) of channel ch in, skipping NaN. */
static void raw_fold(const struct decimate_src *s, unsigned ch, size_t a, size_t b,
                     double *lo, double *hi)
{
    if (a >= b)
        return;
    switch (s->sample_type) {
    case WIRE_I16: RAW_FOLD_INT(int16_t); break;
    case WIRE_I32: RAW_FOLD_INT(int32_t); break;
    default: raw_fold_f32(s, ch, a, b, lo, hi); break;
    }
}

/* Fold [a, b) of channel ch in from level l down: whole blocks of l, the
 * ragged ends from the levels below, the last ones from the samples. */
static void pyr_fold(const struct decimate_src *s, unsigned ch, int l, size_t a, size_t b,
                     double *lo, double *hi)
{
    const struct decimate_pyramid *p = s->pyr;
    size_t bs, ka, kb, k, base;

    if (a >= b)
        return;
    if (l < 0) {
        raw_fold(s, ch, a, b, lo, hi);
        return;
    }
    bs = p->block[l];
    ka = (a + bs - 1) / bs;
    kb = b / bs < p->count[l] ? b / bs : p->count[l];
    if (ka >= kb) {
        pyr_fold(s, ch, l - 1, a, b, lo, hi);
        return;
    }
    pyr_fold(s, ch, l - 1, a, ka * bs, lo, hi);
    base = (size_t)ch * p->count[l];
    for (k = ka; k < kb; k++)
        nan_fold(lo, hi, p->lo[l][base + k], p->hi[l][base + k]);
    pyr_fold(s, ch, l - 1, kb * bs, b, lo, hi);
}

/* The scan's answer for [a, b), from the pyramid: NaN when the first
 * sample is NaN (the scan starts from it and no comparison replaces it),
 * else the NaN-skipping extremes. */
static void pyr_minmax(const struct decimate_src *s, unsigned ch, size_t a, size_t b,
                       double *mn, double *mx)
{
    const struct decimate_pyramid *p = s->pyr;
    double first = decimate_value(s, ch, a), lo = NAN, hi = NAN;
    int l = (int)p->levels - 1;

    if (first != first) {
        *mn = *mx = first;
        return;
    }
    while (l > 0 && p->block[l] > (b - a) / 4)
        l--;
    pyr_fold(s, ch, l, a, b, &lo, &hi);
    *mn = lo;
    *mx = hi;
}

/* Level 0 of channel ch from the samples. */
static void pyr_level0(const struct decimate_src *s, struct decimate_pyramid *p, unsigned ch)
{
    size_t k, base = (size_t)ch * p->count[0];

    for (k = 0; k < p->count[0]; k++) {
        double lo = NAN, hi = NAN;

        raw_fold(s, ch, k * DECIMATE_PYR_BLOCK, (k + 1) * DECIMATE_PYR_BLOCK, &lo, &hi);
        p->lo[0][base + k] = lo;
        p->hi[0][base + k] = hi;
    }
}

void decimate_pyramid_free(struct decimate_pyramid *p)
{
    unsigned l;

    if (!p)
        return;
    for (l = 0; l < p->levels; l++) {
        free(p->lo[l]);
        free(p->hi[l]);
    }
    free(p);
}

struct decimate_pyramid *decimate_pyramid_build(const struct decimate_src *s, size_t *bytes)
{
    struct decimate_pyramid *p;
    size_t total = 0, k, j;
    unsigned l, ch;

    if (!s || s->n < DECIMATE_PYR_MIN_N || s->channels == 0 ||
        (s->sample_type != WIRE_I16 && s->sample_type != WIRE_I32 && s->sample_type != WIRE_F32) ||
        !(p = calloc(1, sizeof *p)))
        return NULL;
    p->channels = s->channels;
    p->n = s->n;
    for (l = 0; l < PYR_LEVELS_MAX; l++) {
        size_t cnt = l == 0 ? s->n / DECIMATE_PYR_BLOCK : p->count[l - 1] / DECIMATE_PYR_FANOUT;

        if (cnt < 2 && l > 0)
            break;
        p->count[l] = cnt;
        p->block[l] = l == 0 ? DECIMATE_PYR_BLOCK : p->block[l - 1] * DECIMATE_PYR_FANOUT;
        p->lo[l] = malloc(cnt * s->channels * sizeof(double));
        p->hi[l] = malloc(cnt * s->channels * sizeof(double));
        p->levels = l + 1;
        if (!p->lo[l] || !p->hi[l]) {
            decimate_pyramid_free(p);
            return NULL;
        }
        total += 2 * cnt * s->channels * sizeof(double);
        for (ch = 0; ch < s->channels; ch++) {
            size_t base = (size_t)ch * cnt, below = (size_t)ch * (l ? p->count[l - 1] : 0);

            if (l == 0) {
                pyr_level0(s, p, ch);
                continue;
            }
            for (k = 0; k < cnt; k++) {
                double lo = NAN, hi = NAN;

                for (j = k * DECIMATE_PYR_FANOUT; j < (k + 1) * DECIMATE_PYR_FANOUT; j++)
                    nan_fold(&lo, &hi, p->lo[l - 1][below + j], p->hi[l - 1][below + j]);
                p->lo[l][base + k] = lo;
                p->hi[l][base + k] = hi;
            }
        }
    }
    if (bytes)
        *bytes = total + sizeof *p;
    return p;
}

int decimate_range(double from_s, double to_s, double rate, size_t n,
                   size_t *i0, size_t *i1)
{
    double a, b;

    if (!isfinite(from_s) || !isfinite(to_s) || !isfinite(rate) || rate <= 0 ||
        to_s <= from_s || n == 0)
        return -1;
    /* Sample i sits at i / rate; the range takes every sample whose time is
     * in [from_s, to_s], clamped to the snapshot. */
    a = ceil(from_s * rate - 1e-9);
    b = floor(to_s * rate + 1e-9) + 1;
    if (a < 0)
        a = 0;
    if (b > (double)n)
        b = (double)n;
    if (a >= b)
        return -1;
    *i0 = (size_t)a;
    *i1 = (size_t)b;
    return 0;
}

int decimate_is_raw(size_t i0, size_t i1, unsigned px)
{
    return i1 - i0 <= (size_t)px * DECIMATE_RAW_FACTOR;
}

size_t decimate_col_start(size_t i0, size_t i1, unsigned px, unsigned c)
{
    /* len * c fits: len <= WIRE_MAX_SAMPLES_BYTES and c <= DECIMATE_PX_MAX. */
    return i0 + (size_t)(((uint64_t)(i1 - i0) * c) / px);
}

int decimate_minmax(const struct decimate_src *s, unsigned ch, size_t i0, size_t i1,
                    unsigned px, double *mn, double *mx)
{
    unsigned c;

    if (px < DECIMATE_PX_MIN || px > DECIMATE_PX_MAX || ch >= s->channels ||
        i1 > s->n || i0 >= i1 || i1 - i0 < px)
        return -1;
    for (c = 0; c < px; c++) {
        col_minmax(s, ch, decimate_col_start(i0, i1, px, c),
                   decimate_col_start(i0, i1, px, c + 1), &mn[c], &mx[c]);
    }
    return 0;
}

/* ---- compact binary answer ------------------------------------------------ */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, (uint16_t)v);
    put_u16(p + 2, (uint16_t)(v >> 16));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t v;

    memcpy(&v, &d, sizeof v);
    put_u64(p, v);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;

    memcpy(&v, &f, sizeof v);
    put_u32(p, v);
}

/* i32 samples do not all fit a float's 24-bit mantissa; the others do. */
static unsigned value_bytes(const struct decimate_src *s)
{
    return s->sample_type == WIRE_I32 ? 8 : 4;
}

static int bin_args_ok(const struct decimate_src *s, size_t i0, size_t i1, unsigned px)
{
    return px >= DECIMATE_PX_MIN && px <= DECIMATE_PX_MAX && i0 < i1 && i1 <= s->n &&
           s->channels >= 1 && s->channels <= WIRE_MAX_CHANNELS &&
           (decimate_is_raw(i0, i1, px) || i1 - i0 >= px) &&
           (s->sample_type == WIRE_I16 || s->sample_type == WIRE_I32 ||
            s->sample_type == WIRE_F32);
}

size_t decimate_bin_size(const struct decimate_src *s, size_t i0, size_t i1, unsigned px)
{
    size_t points, per_ch;

    if (!bin_args_ok(s, i0, i1, px))
        return 0;
    /* Raw points are at most 2 * DECIMATE_PX_MAX, columns at most
     * DECIMATE_PX_MAX: no product below can overflow. */
    points = decimate_is_raw(i0, i1, px) ? i1 - i0 : px;
    per_ch = points * value_bytes(s) * (decimate_is_raw(i0, i1, px) ? 1 : 2);
    return DECIMATE_BIN_HEADER + points * 8 + per_ch * s->channels;
}

static uint8_t *put_value(uint8_t *p, double v, unsigned vb)
{
    if (vb == 8)
        put_f64(p, v);
    else
        put_f32(p, (float)v);
    return p + vb;
}

size_t decimate_bin_write(const struct decimate_src *s, const struct decimate_bin_info *info,
                          size_t i0, size_t i1, unsigned px, uint8_t *out, size_t cap)
{
    size_t need = decimate_bin_size(s, i0, i1, px), points, i;
    int raw = decimate_is_raw(i0, i1, px);
    unsigned vb = value_bytes(s), ch, c;
    uint8_t *p = out;

    if (need == 0 || cap < need || !(info->sample_rate > 0))
        return 0;
    points = raw ? i1 - i0 : px;
    memset(p, 0, DECIMATE_BIN_HEADER);
    memcpy(p, DECIMATE_BIN_MAGIC, 4);
    put_u16(p + 4, DECIMATE_BIN_VERSION);
    p[6] = raw ? DECIMATE_BIN_RAW : DECIMATE_BIN_MINMAX;
    p[7] = vb == 8 ? DECIMATE_BIN_F64 : DECIMATE_BIN_F32;
    put_u32(p + 8, s->channels);
    put_u32(p + 12, (uint32_t)points);
    put_u64(p + 16, i0);
    put_u64(p + 24, i1);
    put_u64(p + 32, s->n);
    put_f64(p + 40, info->sample_rate);
    put_f64(p + 48, info->pre_samples / info->sample_rate);
    put_u32(p + 56, info->pre_samples);
    p += DECIMATE_BIN_HEADER;
    for (i = 0; i < points; i++, p += 8)
        put_f64(p, (double)(raw ? i0 + i : decimate_col_start(i0, i1, px, (unsigned)i)) /
                       info->sample_rate);
    for (ch = 0; ch < s->channels; ch++) {
        if (raw) {
            for (i = i0; i < i1; i++)
                p = put_value(p, decimate_value(s, ch, i), vb);
            continue;
        }
        /* Min of every column, then max of every column: one pass per
         * column, the max written at its place further on. */
        for (c = 0; c < px; c++) {
            double lo, hi;

            col_minmax(s, ch, decimate_col_start(i0, i1, px, c),
                       decimate_col_start(i0, i1, px, c + 1), &lo, &hi);
            put_value(p + (size_t)c * vb, lo, vb);
            put_value(p + ((size_t)px + c) * vb, hi, vb);
        }
        p += (size_t)px * 2 * vb;
    }
    return (size_t)(p - out);
}
