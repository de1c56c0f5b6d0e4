/* detect_range.h - a value beyond the range this channel has shown.
 *
 * Level, spread and sequence are all judged against a scale learned from
 * the data, and a stream whose scale once was tiny (a flat signal that
 * jumped now and then) has seen huge z since: a later drop to a level it
 * never had can then look ordinary to them.  The range of values itself
 * does not depend on any scale.  Of n + 1 values in random order, the
 * chance that the last is the largest or the smallest is 2 / (n + 1); the
 * further a new record overshoots the range, the rarer, exponentially in
 * the overshoot as a share of the range, with the mean overshoot of this
 * channel's past records as the scale (NAB's "spatial anomaly" rule calls a
 * value 5 % beyond the range seen an anomaly; that share is the prior).
 * Records of autocorrelated data come in clusters (a slow drift makes one
 * every few samples): a record fewer than 8 frames after the last one is
 * judged by its overshoot alone (detect_range.c).
 *
 * Bounded memory: the range is that of two blocks of `half` frames, the
 * current and the last complete one, so it covers between `half` and
 * 2 `half` frames and forgets without shrinking gradually (a range that
 * shrinks a little every frame makes every value near its edge a record).
 *
 * Portable core: no heap, no I/O; 36 bytes of state per channel. */
#ifndef PRECURSOR_DETECT_RANGE_H
#define PRECURSOR_DETECT_RANGE_H

#include <stdint.h>

struct detect_range {
    float lo, hi;               /* range of the current block */
    float prev_lo, prev_hi;     /* range of the last complete block */
    float all_lo, all_hi;       /* the two together: what a value is judged by */
    float beta;                 /* mean overshoot of past records, share of the range */
    uint32_t age;               /* frames in the current block */
    uint16_t records;           /* records so far (saturates): prior weight while few */
    uint8_t have_prev;
    uint8_t since;              /* frames since the last record (saturates at 255) */
};

void detect_range_init(struct detect_range *r);
/* One sample x, floor the channel's resolution (the range is at least 8 of
 * them wide), half the block length in frames.  Returns -ln p of a record
 * this far beyond the range (0 inside it, or before any range exists), then
 * learns x. */
float detect_range_step(struct detect_range *r, float x, float floor, uint32_t half);

#endif
