/* decimate.h - min/max per pixel column, so a waveform of any length can be
 * drawn at any width without losing a one-sample spike.
 *
 * The samples of [i0, i1) are split into px columns whose boundaries are
 * computed by integer arithmetic (column c holds samples
 * i0 + floor(c*len/px) .. i0 + floor((c+1)*len/px) - 1), so every sample
 * lands in exactly one column and the extremes of each column are exact.
 * When the range holds no more than DECIMATE_RAW_FACTOR * px samples, the
 * caller sends the samples themselves: min/max would not be smaller. */
#ifndef PRECURSOR_DECIMATE_H
#define PRECURSOR_DECIMATE_H

#include <stddef.h>
#include <stdint.h>

#define DECIMATE_PX_MIN 1
#define DECIMATE_PX_MAX 8192        /* wider than any screen we expect */
#define DECIMATE_RAW_FACTOR 2       /* min and max: two values per column */

/* Planar sample buffer of one snapshot, borrowed. */
struct decimate_src {
    const void *samples;    /* channel 0's n samples, then channel 1's, ... */
    uint8_t sample_type;    /* enum wire_sample_type */
    size_t n;               /* samples per channel */
    unsigned channels;
};

/* Value of sample i of channel ch (no bounds check: callers bound first). */
double decimate_value(const struct decimate_src *s, unsigned ch, size_t i);

/* Clamp a time range in seconds from the first sample to sample indices
 * [*i0, *i1) within [0, n).  from_s/to_s must be finite, to_s > from_s and
 * rate > 0.  0, or -1 when the range is invalid or holds no sample. */
int decimate_range(double from_s, double to_s, double rate, size_t n,
                   size_t *i0, size_t *i1);

/* 1 when [i0, i1) is narrow enough to send raw at px columns. */
int decimate_is_raw(size_t i0, size_t i1, unsigned px);

/* First sample index of column c (c = px gives i1). */
size_t decimate_col_start(size_t i0, size_t i1, unsigned px, unsigned c);

/* Min and max of channel ch over each of px columns of [i0, i1) into
 * mn[0..px) and mx[0..px).  Requires i1 - i0 >= px (every column holds at
 * least one sample) and px within [DECIMATE_PX_MIN, DECIMATE_PX_MAX].
 * 0 or -1. */
int decimate_minmax(const struct decimate_src *s, unsigned ch, size_t i0, size_t i1,
                    unsigned px, double *mn, double *mx);

#endif
