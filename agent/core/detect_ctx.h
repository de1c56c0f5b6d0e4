/* detect_ctx.h - contextual (sequence) novelty of one channel.
 *
 * Level and spread miss an anomaly that stays inside the usual range: a
 * daily cycle that skips its dip, a periodic signal that changes its shape.
 * The NAB leaders that catch those (CAD OSE, HTM) learn which short
 * sequences of quantised values the stream produces and score a value by how
 * unexpected it is after the values before it.  This is the smallest form of
 * that: each sample becomes one of DETECT_CTX_Q symbols, its eighth of the
 * channel's recent range (CAD OSE's 3 value bits over the value's range; the
 * range here forgets at the level's rate, see symbol_of), the last
 * DETECT_CTX_LEN symbols are the context, and a table of counts of
 * (context, next symbol), hashed into DETECT_CTX_SLOTS bytes, gives
 * P(symbol | context) (backed off to the symbol's overall
 * frequency for contexts seen rarely).  The p-value of a sample is the
 * model's probability of any symbol at most as likely as the one seen.
 * Counts saturate at 255, and then every count of the channel is halved:
 * bounded memory that forgets in proportion to how busy the stream is.
 *
 * Portable core: no heap, no I/O; the state is a fixed struct
 * (sizeof(struct detect_ctx), about 1.1 KB) that the caller holds. */
#ifndef PRECURSOR_DETECT_CTX_H
#define PRECURSOR_DETECT_CTX_H

#include <stdint.h>

#define DETECT_CTX_Q 8u         /* symbols (3 bits, as CAD OSE's value bits) */
#ifndef DETECT_CTX_LEN
#define DETECT_CTX_LEN 3u       /* symbols of context */
#endif
#define DETECT_CTX_SLOTS 1024u  /* hashed (context, symbol) counts */

struct detect_ctx {
    float lo, hi;               /* the channel's recent range */
    uint16_t hist;              /* the last DETECT_CTX_LEN symbols, 3 bits each */
    uint16_t seen;              /* symbols seen so far (saturates) */
    uint16_t marg[DETECT_CTX_Q];        /* counts of each symbol, halved alike */
    uint32_t marg_total;                /* their sum */
    uint8_t cnt[DETECT_CTX_SLOTS];
};

void detect_ctx_init(struct detect_ctx *c);
/* One sample x; centre is the level's baseline (the range shrinks toward
 * it), floor the channel's resolution, alpha the level's weight per sample.
 * Returns the p-value of its symbol given the context (in (0, 1]; 1 while
 * the context is not yet full), then learns it.  The caller takes the log
 * once a frame (of the smallest over channels), not once a channel. */
float detect_ctx_step(struct detect_ctx *c, float x, float centre, float floor, float alpha);

#endif
