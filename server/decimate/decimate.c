/* decimate.c - see decimate.h.  Pure functions: no I/O, no allocation. */
#include <math.h>
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

static void col_minmax(const struct decimate_src *s, unsigned ch, size_t a, size_t b,
                       double *mn, double *mx)
{
    switch (s->sample_type) {
    case WIRE_I16: COL_SCAN(int16_t); break;
    case WIRE_I32: COL_SCAN(int32_t); break;
    case WIRE_F32: COL_SCAN(float); break;
    default: *mn = *mx = NAN; break;
    }
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
