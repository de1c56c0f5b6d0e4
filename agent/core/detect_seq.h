/* detect_seq.h - sequence novelty of one channel: contexts never seen.
 *
 * The context detector (detect_ctx.h) asks how likely a symbol is after the
 * three before it.  What CAD OSE scores is different: how many of the
 * contexts the stream forms now it has never formed before, over contexts
 * of several lengths (its left semi-contexts reach 7 steps back).  A cycle
 * that skips its dip, or a shape that changes, makes sequences that are new
 * at some length even when every value and every short step is familiar.
 *
 * Here each sample becomes one of 8 symbols, its eighth of the range of the
 * last one to two blocks of DETECT_SEQ_BLOCK frames (a range that does not
 * follow the level, so a cycle keeps its symbols), and closes
 * DETECT_SEQ_ORDERS n-grams: the symbol with the 1, 2, ... DETECT_SEQ_ORDERS
 * symbols before it.  Each length has a row of DETECT_SEQ_ROW byte counts,
 * the n-gram hashed into it; a count of 0 is an n-gram never seen.  A new
 * n-gram is no surprise in itself (a noisy stream makes new long n-grams
 * all the time): its chance is the Good-Turing estimate, the share of that
 * length's counts held by n-grams seen once.  n-grams nest, so a sample new
 * at length k is new at every longer one: its p is that of the shortest
 * length at which it is new.  A run of novel samples multiplies their p
 * (those at least 1/e add nothing), and the run's product is the p-value.
 *
 * Bounded memory: a count that reaches 255 halves every count of the
 * channel, rounded up (an n-gram once seen stays seen; its weight fades).
 *
 * Portable core: no heap, no I/O; sizeof(struct detect_seq) =
 * DETECT_SEQ_SLOTS + 48 + 6 DETECT_SEQ_ORDERS bytes per channel (1620 with
 * the defaults), held by the caller.  docs/DETECTORS.md has why and what
 * it was measured to do. */
#ifndef PRECURSOR_DETECT_SEQ_H
#define PRECURSOR_DETECT_SEQ_H

#include <stdint.h>

#ifndef DETECT_SEQ_ORDERS
#define DETECT_SEQ_ORDERS 6u    /* n-grams of 2 .. 7 symbols (CAD OSE: 7 semi-contexts) */
#endif
#ifndef DETECT_SEQ_ROW
#define DETECT_SEQ_ROW 256u     /* hashed counts per length, a power of 2 */
#endif
#define DETECT_SEQ_SLOTS (DETECT_SEQ_ORDERS * DETECT_SEQ_ROW)

#ifndef DETECT_SEQ_BLOCK
#define DETECT_SEQ_BLOCK 50000u /* frames per block of the range (two are kept) */
#endif

struct detect_seq {
    float lo, hi, prev_lo, prev_hi;     /* the range of this block and of the last one */
    float all_lo, scale;                /* the two together: symbol = (x - all_lo) scale */
    float floor;                        /* the resolution the scale was set with */
    uint32_t age;                       /* frames in this block */
    float run;                          /* product of the p-values of the novel run so far */
    uint32_t hist;                      /* the last DETECT_SEQ_ORDERS symbols, 3 bits each */
    uint32_t seen;                      /* symbols so far (saturates) */
    /* Per length: the sum of its counts (at the last halving, plus the
     * samples since, one count each) and how many of them are 1. */
    uint32_t total[DETECT_SEQ_ORDERS];
    uint32_t since;
    uint16_t once[DETECT_SEQ_ORDERS];
    uint8_t cnt[DETECT_SEQ_SLOTS];      /* DETECT_SEQ_ROW per length */
};

void detect_seq_init(struct detect_seq *s);
/* One sample x, floor the channel's resolution.  Returns the p-value of its
 * novelty (in (0, 1]; 1 when no n-gram is new or the history is not yet
 * full), then learns it. */
float detect_seq_step(struct detect_seq *s, float x, float floor);

#endif
