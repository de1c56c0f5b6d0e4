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

struct decimate_pyramid;

/* Planar sample buffer of one snapshot, borrowed. */
struct decimate_src {
    const void *samples;    /* channel 0's n samples, then channel 1's, ... */
    uint8_t sample_type;    /* enum wire_sample_type */
    size_t n;               /* samples per channel */
    unsigned channels;
    /* NULL, or decimate_pyramid_build's of these samples: min/max of wide
     * columns then reads whole blocks instead of every sample. */
    const struct decimate_pyramid *pyr;
};

/* ---- min/max pyramid ------------------------------------------------------
 * Per channel, the min and max of every block of DECIMATE_PYR_BLOCK samples,
 * then of every DECIMATE_PYR_FANOUT blocks of that level, and so on: built
 * once per snapshot (one pass over the samples), it makes a column of w
 * samples cost about w / B block reads at the coarsest level B <= w / 4
 * plus the ragged ends at finer levels, instead of w sample reads, so any
 * zoom costs about one level's worth.  Answers are exactly those of the
 * sample scan (NaN included: a column starting with NaN is NaN, other NaNs
 * are skipped, as the scan does). */
#define DECIMATE_PYR_BLOCK 64
#define DECIMATE_PYR_FANOUT 8
#define DECIMATE_PYR_MIN_N (16 * DECIMATE_PYR_BLOCK)   /* shorter: no pyramid */

/* The pyramid of s's samples (s->pyr ignored), or NULL when s->n is below
 * DECIMATE_PYR_MIN_N, the type is unknown or memory is short.  *bytes (may
 * be NULL) gets its size.  It borrows nothing from s. */
struct decimate_pyramid *decimate_pyramid_build(const struct decimate_src *s, size_t *bytes);
void decimate_pyramid_free(struct decimate_pyramid *p);

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

/* ---- compact binary answer (schema/SAMPLES.md) ----------------------------
 * A little-endian header of DECIMATE_BIN_HEADER bytes, then the times of the
 * points as f64, then per channel the values (min then max per column, or
 * the raw samples) as f32 (i16 and f32 snapshots: exact) or f64 (i32).  The
 * header is a multiple of 8 bytes and the times are 8 bytes each, so a
 * browser can view every array in place with typed arrays. */
#define DECIMATE_BIN_MAGIC "PRSS"
#define DECIMATE_BIN_VERSION 1
#define DECIMATE_BIN_HEADER 64
enum decimate_bin_mode { DECIMATE_BIN_MINMAX = 0, DECIMATE_BIN_RAW = 1 };
enum decimate_bin_value { DECIMATE_BIN_F32 = 1, DECIMATE_BIN_F64 = 2 };

/* What the answer describes besides the samples. */
struct decimate_bin_info {
    double sample_rate;
    uint32_t pre_samples;       /* trigger_s = pre_samples / sample_rate */
};

/* Bytes of the answer for [i0, i1) at px columns (raw or min/max as
 * decimate_is_raw decides), or 0 when the arguments are out of range. */
size_t decimate_bin_size(const struct decimate_src *s, size_t i0, size_t i1, unsigned px);

/* Write that answer into out (cap >= decimate_bin_size).  Bytes written, or
 * 0 when the arguments are out of range or cap is short. */
size_t decimate_bin_write(const struct decimate_src *s, const struct decimate_bin_info *info,
                          size_t i0, size_t i1, unsigned px, uint8_t *out, size_t cap);

#endif
