/* detect_ctx.c - contextual (sequence) novelty of one channel (detect_ctx.h). */
#include "agent/core/detect_ctx.h"

#include <string.h>

#define HIST_MASK ((1u << (3u * DETECT_CTX_LEN)) - 1u)
/* Weight of the symbol's overall frequency in P(symbol | context): a context
 * seen a few times predicts little on its own (a Dirichlet prior centred on
 * the marginal, worth this many observations). */
#ifndef PRIOR_W
#define PRIOR_W 1.0f
#endif
#define MARG_MAX 60000u

void detect_ctx_init(struct detect_ctx *c)
{
    memset(c, 0, sizeof(*c));
}

/* The sample's eighth of the channel's recent range.  The range is
 * stretched at once by a sample beyond it and otherwise shrinks toward the
 * level at the level's own rate, so a spike's extent is forgotten over the
 * baseline's memory, not kept for ever.  It is at least DETECT_CTX_Q
 * resolution steps wide (flat counts must not turn noise into symbols). */
static unsigned symbol_of(struct detect_ctx *c, float x, float centre, float floor, float alpha)
{
    float width, u;
    int s;

    if (c->seen == 0)
        c->lo = c->hi = x;
    if (x > c->hi)
        c->hi = x;
    else
        c->hi -= alpha * (c->hi - centre);
    if (x < c->lo)
        c->lo = x;
    else
        c->lo -= alpha * (c->lo - centre);
    width = c->hi - c->lo;
    if (width < (float)DETECT_CTX_Q * floor)
        width = (float)DETECT_CTX_Q * floor;
    u = width > 0.0f ? (x - c->lo) / width : 0.5f;
    s = (int)(u * (float)DETECT_CTX_Q);
    return s < 0 ? 0u : (s >= (int)DETECT_CTX_Q ? DETECT_CTX_Q - 1u : (unsigned)s);
}

/* The DETECT_CTX_Q counts of one context's successors share a row of the
 * table: one hash and one 8-byte row a sample instead of a hash and a load
 * per symbol.  Fibonacci hashing of the context into DETECT_CTX_ROWS rows
 * (two contexts that share a row predict as their mixture). */
#define DETECT_CTX_ROWS (DETECT_CTX_SLOTS / DETECT_CTX_Q)
#define ROW_BITS 7u             /* log2(DETECT_CTX_ROWS) */

static uint8_t *row_of(struct detect_ctx *c, unsigned hist)
{
    unsigned row = (unsigned)(((uint32_t)hist * 2654435761u) >> (32u - ROW_BITS));

    return &c->cnt[row * DETECT_CTX_Q];
}

/* Every count halves: 8 bytes at a time, no bit crossing into the next. */
static void halve_counts(struct detect_ctx *c)
{
    unsigned i;

    for (i = 0; i < DETECT_CTX_SLOTS; i += 8) {
        uint64_t v;

        memcpy(&v, &c->cnt[i], 8);
        v = (v >> 1) & UINT64_C(0x7F7F7F7F7F7F7F7F);
        memcpy(&c->cnt[i], &v, 8);
    }
}

float detect_ctx_step(struct detect_ctx *c, float x, float centre, float floor, float alpha)
{
    unsigned sym = symbol_of(c, x, centre, floor, alpha), s;
    float p = 1.0f;

    if (c->seen >= DETECT_CTX_LEN) {
        uint8_t *row = row_of(c, c->hist);
        /* P(s | context) = a[s] / n_ctx with a[s] = n(context, s) + PRIOR_W
         * p0(s), p0(s) = (marg[s] + 1) / (marg_total + Q): the priors sum to
         * PRIOR_W, so n_ctx is the row's count plus PRIOR_W. */
        float inv = PRIOR_W / (float)(c->marg_total + DETECT_CTX_Q);
        float a_sym = (float)row[sym] + (float)(c->marg[sym] + 1u) * inv;
        unsigned n_row = 0;

        for (s = 0; s < DETECT_CTX_Q; s++)
            n_row += row[s];
        /* p-value: the chance of a symbol at most as likely as this one,
         * which is at least P(sym | context).  The usual sample, one of the
         * likely successors, is settled there: p >= 1/e, which the
         * calibration treats as no surprise, and is returned as 1. */
        if (a_sym * 2.7182818f < (float)n_row + PRIOR_W) {
            float tail = 0.0f;

            for (s = 0; s < DETECT_CTX_Q; s++) {
                float a = (float)row[s] + (float)(c->marg[s] + 1u) * inv;

                if (a <= a_sym)
                    tail += a;
            }
            p = tail / ((float)n_row + PRIOR_W);
            if (p > 1.0f)
                p = 1.0f;
        }
        if (row[sym] == 255u)
            halve_counts(c);
        row[sym]++;
    }
    if (c->marg[sym] >= MARG_MAX) {
        c->marg_total = 0;
        for (s = 0; s < DETECT_CTX_Q; s++) {
            c->marg[s] >>= 1;
            c->marg_total += c->marg[s];
        }
    }
    c->marg[sym]++;
    c->marg_total++;
    c->hist = (uint16_t)(((c->hist << 3) | sym) & HIST_MASK);
    if (c->seen < UINT16_MAX)
        c->seen++;
    return p;
}
