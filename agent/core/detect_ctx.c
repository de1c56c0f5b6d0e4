/* detect_ctx.c - contextual (sequence) novelty of one channel (detect_ctx.h). */
#include "agent/core/detect_ctx.h"

#include <string.h>

/* Breakpoints of 8 equiprobable symbols of a standard normal (SAX). */
static const float sax_cut[DETECT_CTX_Q - 1] = { -1.1503f, -0.6745f, -0.3186f, 0.0f,
                                                 0.3186f, 0.6745f, 1.1503f };
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

static unsigned symbol_of(float z)
{
    unsigned s = 0;

    while (s < DETECT_CTX_Q - 1 && z > sax_cut[s])
        s++;
    return s;
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

float detect_ctx_step(struct detect_ctx *c, float z)
{
    unsigned sym = symbol_of(z), s, slot[DETECT_CTX_Q];
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
