/* detect_seq.h - sequence novelty of one channel: contexts never seen.
 *
 * The context detector (detect_ctx.h) asks how likely a symbol is after the
 * three before it.  What CAD OSE scores is different: how many of the
 * contexts the stream forms now it has never formed before, over contexts
 * of several lengths (its left semi-contexts reach 7 steps back).  A cycle
 * that skips its dip, or a shape that changes, makes sequences that are new
 * at some length even when every value and every short step is familiar.
 *
 * Here each sample's symbol (the context detector's eighth of the channel's
 * recent range, passed in) closes DETECT_SEQ_ORDERS n-grams: the symbol
 * with the 1, 2, ... DETECT_SEQ_ORDERS symbols before it.  Each n-gram is
 * hashed with its length into one table of DETECT_SEQ_SLOTS byte counts; an
 * n-gram whose count is 0 is new.  A new n-gram is no surprise in itself (a
 * noisy stream makes new long n-grams all the time): the surprise is its
 * chance in this stream, the share of past samples whose n-gram of that
 * length was new, which needs no scale and no distribution (as the range
 * detector's record chance).  n-grams nest, so a sample new at length k is
 * new at every longer length: its p-value is the novelty share of the
 * shortest length at which it is new (1 if it is new at none).
 *
 * Bounded memory: a count that reaches 255 halves every count, so an n-gram
 * seen once is forgotten after a halving or two and a busy stream forgets
 * faster; the shares remember DETECT_SEQ_MEM samples.
 *
 * Portable core: no heap, no I/O; sizeof(struct detect_seq) bytes per
 * channel (DETECT_SEQ_SLOTS + 4 DETECT_SEQ_ORDERS + 8), held by the caller. */
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
    uint32_t age;                       /* frames in this block */
    float run;                          /* product of the p-values of the novel run so far */
    uint32_t hist;                      /* the last DETECT_SEQ_ORDERS symbols, 3 bits each */
    uint32_t seen;                      /* symbols so far (saturates) */
    /* Per length: the sum of its counts and how many of them are 1. */
    uint32_t total[DETECT_SEQ_ORDERS];
    uint16_t once[DETECT_SEQ_ORDERS];
    uint8_t cnt[DETECT_SEQ_SLOTS];      /* DETECT_SEQ_ROW per length */
};

void detect_seq_init(struct detect_seq *s);
/* One sample x, floor the channel's resolution.  Returns the p-value of its
 * novelty (in (0, 1]; 1 when no n-gram is new or the history is not yet
 * full), then learns it. */
float detect_seq_step(struct detect_seq *s, float x, float floor);

#endif
