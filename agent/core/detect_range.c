/* detect_range.c - a value beyond the range this channel has shown (detect_range.h). */
#include "agent/core/detect_range.h"

#include <math.h>
#include <string.h>

#define MIN_WIDTH_STEPS 8.0f    /* the range is at least this many resolution steps */
#ifndef BETA_PRIOR
#define BETA_PRIOR 0.05f        /* overshoot share before any record: NAB's tolerance */
#endif
#define BETA_PRIOR_N 4.0f       /* the prior is worth this many records */
#define BETA_MEM 64.0f          /* records in the memory of the mean overshoot */
/* Records while the range is that of a few samples say nothing about the
 * tail: the overshoot is learned from the 32nd frame on (the level
 * detector's warm-up, for the same reason). */
#ifndef BETA_CLIP
#define BETA_CLIP 3.0f
#endif
/* Records of a value that creeps beyond the range (a slow drift, a machine
 * cooling a little further every sample) come in clusters, and only the
 * cluster's first record is a chance of 2 / (n + 1): the next ones follow
 * from the data's autocorrelation (extreme-value theory's runs
 * declustering).  A record fewer than RANGE_RUN frames after the last one
 * counts by its overshoot alone; RANGE_RUN is the level detector's run of
 * samples that makes a new level (SHIFT_RUN). */
#ifndef RANGE_RUN
#define RANGE_RUN 8u
#endif
#ifndef BETA_AFTER
#define BETA_AFTER 32.0f
#endif

void detect_range_init(struct detect_range *r)
{
    memset(r, 0, sizeof(*r));
    r->beta = BETA_PRIOR;
    r->since = 255u;            /* no record yet: the first one starts a cluster */
}

/* A value beyond the range: -ln p of its overshoot, learned afterwards. */
static float record(struct detect_range *r, float x, float floor, uint32_t half)
{
    float width = r->all_hi - r->all_lo, over = 0.0f, u = 0.0f;

    if (width < MIN_WIDTH_STEPS * floor)
        width = MIN_WIDTH_STEPS * floor;
    if (width > 0.0f)
        over = (x > r->all_hi ? x - r->all_hi : r->all_lo - x) / width;
    if (over > 0.0f) {
        float n = (float)r->age + (r->have_prev ? (float)half : 0.0f);
        float w = 1.0f / ((float)r->records + 1.0f + BETA_PRIOR_N);

        /* -ln p: 2 / (n + 1) to be a record at all (not for the later
         * records of a cluster), e^(-over / beta) to overshoot this far;
         * judged before the overshoot is learned. */
        u = (r->since < RANGE_RUN ? 0.0f : logf(0.5f * (n + 1.0f))) + over / r->beta;
        if (n >= BETA_AFTER) {
            if (w < 1.0f / BETA_MEM)
                w = 1.0f / BETA_MEM;
            else if (r->records < UINT16_MAX)
                r->records++;
            /* Clipped at BETA_CLIP means, as the level's baseline is: one
             * wild record (the range still forming) cannot set the scale. */
            r->beta += w * ((over < BETA_CLIP * r->beta ? over : BETA_CLIP * r->beta) - r->beta);
        }
    }
    if (x < r->all_lo)
        r->all_lo = x;
    if (x > r->all_hi)
        r->all_hi = x;
    return u;
}

float detect_range_step(struct detect_range *r, float x, float floor, uint32_t half)
{
    float u = 0.0f;

    if (r->age == 0 && !r->have_prev) {
        r->lo = r->hi = r->all_lo = r->all_hi = x;     /* the first sample */
        r->age = 1;
        return 0.0f;
    }
    if (r->since < 255u)
        r->since++;
    if (x > r->all_hi || x < r->all_lo) {
        u = record(r, x, floor, half);
        r->since = 0;
    }
    if (x < r->lo)
        r->lo = x;
    if (x > r->hi)
        r->hi = x;
    if (++r->age >= half) {     /* the block is complete: it becomes the last one */
        r->prev_lo = r->all_lo = r->lo;
        r->prev_hi = r->all_hi = r->hi;
        r->have_prev = 1;
        r->lo = r->hi = x;
        r->age = 0;
    }
    return u;
}
