/* detect_ctx.c - contextual (sequence) novelty of one channel (detect_ctx.h). */
#include "agent/core/detect_ctx.h"

#include <string.h>

#define HIST_MASK ((1u << (3u * DETECT_CTX_LEN)) - 1u)
/* Weight of the symbol's overall frequency in P(symbol | context): a context
 * seen a few times predicts little on its own (a Dirichlet prior centred on
 * the marginal, worth this many observations). */
#define PRIOR_W 1.0f
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

/* Fibonacci hashing of the 12-bit key (context, symbol) into the table. */
static unsigned slot_of(unsigned hist, unsigned sym)
{
    uint32_t key = ((uint32_t)hist << 3) | sym;

    return (unsigned)((key * 2654435761u) >> 22) & (DETECT_CTX_SLOTS - 1u);
}

static void halve_counts(struct detect_ctx *c)
{
    unsigned i;

    for (i = 0; i < DETECT_CTX_SLOTS; i++)
        c->cnt[i] >>= 1;
}

float detect_ctx_step(struct detect_ctx *c, float x, float centre, float floor, float alpha)
{
    unsigned sym = symbol_of(c, x, centre, floor, alpha), s, slot[DETECT_CTX_Q];
    float n_marg = (float)DETECT_CTX_Q, a[DETECT_CTX_Q], n_ctx = 0.0f, tail = 0.0f, inv;
    float p = 1.0f;

    if (c->seen >= DETECT_CTX_LEN) {
        for (s = 0; s < DETECT_CTX_Q; s++)
            n_marg += (float)c->marg[s];
        inv = PRIOR_W / n_marg;
        /* P(s | context) = a[s] / sum(a): every p shares that denominator,
         * so the p-value needs one division, not one per symbol. */
        for (s = 0; s < DETECT_CTX_Q; s++) {
            slot[s] = slot_of(c->hist, s);
            a[s] = (float)c->cnt[slot[s]] + ((float)c->marg[s] + 1.0f) * inv;
            n_ctx += a[s];
        }
        /* p-value: the chance of a symbol at most as likely as this one. */
        for (s = 0; s < DETECT_CTX_Q; s++)
            if (a[s] <= a[sym])
                tail += a[s];
        p = tail < n_ctx ? tail / n_ctx : 1.0f;
        if (c->cnt[slot[sym]] == 255u)
            halve_counts(c);
        c->cnt[slot[sym]]++;
    }
    if (c->marg[sym] >= MARG_MAX)
        for (s = 0; s < DETECT_CTX_Q; s++)
            c->marg[s] >>= 1;
    c->marg[sym]++;
    c->hist = (uint16_t)(((c->hist << 3) | sym) & HIST_MASK);
    if (c->seen < UINT16_MAX)
        c->seen++;
    return p;
}
