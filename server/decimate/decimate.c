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
        size_t a = decimate_col_start(i0, i1, px, c);
        size_t b = decimate_col_start(i0, i1, px, c + 1);
        double lo = decimate_value(s, ch, a), hi = lo;
        size_t i;

        for (i = a + 1; i < b; i++) {
            double v = decimate_value(s, ch, i);

            if (v < lo)
                lo = v;
            if (v > hi)
                hi = v;
        }
        mn[c] = lo;
        mx[c] = hi;
    }
    return 0;
}
