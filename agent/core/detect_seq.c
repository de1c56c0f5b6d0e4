/* detect_seq.c - sequence novelty of one channel (detect_seq.h). */
#include "agent/core/detect_seq.h"

#include <string.h>

#define ROW_BITS (DETECT_SEQ_ROW == 1024u ? 10u : DETECT_SEQ_ROW == 512u ? 9u : \
                  DETECT_SEQ_ROW == 128u ? 7u : DETECT_SEQ_ROW == 64u ? 6u : 8u)
#define HIST_BITS (3u * DETECT_SEQ_ORDERS)

void detect_seq_init(struct detect_seq *s)
{
    memset(s, 0, sizeof(*s));
}

/* Every count halves, rounded up (8 bytes at a time, no bit crossing into
 * the next): an n-gram once seen stays seen (a plateau's run of one symbol
 * fills its count within a day of 5-minute data, and rounding down forgot
 * every transition seen once each day), only its weight fades.  The totals
 * and singletons are counted again. */
static void halve_counts(struct detect_seq *s)
{
    unsigned k, i;

    for (i = 0; i < DETECT_SEQ_SLOTS; i += 8) {
        uint64_t v;

        memcpy(&v, &s->cnt[i], 8);
        v = ((v >> 1) & UINT64_C(0x7F7F7F7F7F7F7F7F)) + (v & UINT64_C(0x0101010101010101));
        memcpy(&s->cnt[i], &v, 8);
    }
    for (k = 0; k < DETECT_SEQ_ORDERS; k++) {
        const uint8_t *row = &s->cnt[k * DETECT_SEQ_ROW];
        uint32_t total = 0;
        unsigned once = 0;

        for (i = 0; i < DETECT_SEQ_ROW; i++) {
            total += row[i];
            once += row[i] == 1u;
        }
        s->total[k] = total;
        s->once[k] = (uint16_t)once;
    }
    s->since = 0;
}

/* The symbols' scale from the range of the last one to two blocks: a range
 * that does not follow the level, so a cycle's values keep their symbols
 * (CAD OSE quantises by the file's range, which a stream does not have).
 * At least 8 resolution steps wide. */
static void rescale(struct detect_seq *s, float floor)
{
    float lo = s->lo < s->prev_lo ? s->lo : s->prev_lo;
    float hi = s->hi > s->prev_hi ? s->hi : s->prev_hi;
    float width = hi - lo;

    if (width < 8.0f * floor)
        width = 8.0f * floor;
    s->all_lo = lo;
    s->scale = width > 0.0f ? 8.0f / width : 0.0f;
    s->floor = floor;
}

/* The sample's eighth of that range; the scale is recomputed only when it
 * changes (a value beyond the range, a new block, a new resolution). */
static unsigned symbol_of(struct detect_seq *s, float x, float floor)
{
    int q;

    if (s->seen == 0) {
        s->lo = s->hi = s->prev_lo = s->prev_hi = x;
        rescale(s, floor);
    }
    if (x < s->lo || x > s->hi || floor != s->floor) {
        if (x < s->lo)
            s->lo = x;
        if (x > s->hi)
            s->hi = x;
        rescale(s, floor);
    }
    if (++s->age >= DETECT_SEQ_BLOCK) {
        s->prev_lo = s->lo;
        s->prev_hi = s->hi;
        s->lo = s->hi = x;
        s->age = 0;
        rescale(s, floor);
    }
    q = (int)((x - s->all_lo) * s->scale);
    return q < 0 ? 0u : q > 7 ? 7u : (unsigned)q;
}

float detect_seq_step(struct detect_seq *s, float x, float floor)
{
    uint32_t gram = (s->hist << 3) | symbol_of(s, x, floor);
    float p = 1.0f;

    if (s->seen >= DETECT_SEQ_ORDERS) {
        int judged = 0, full = 0;
        unsigned k;

        /* Unrolled: the masks and rows become constants (about a third of
         * the instructions of the loop). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 8
#elif defined(__clang__)
#pragma unroll
#endif
        for (k = 0; k < DETECT_SEQ_ORDERS; k++) {
            /* The n-gram of k + 2 symbols, in its length's row. */
            uint32_t key = gram & ((UINT32_C(1) << (3u * k + 6u)) - 1u);
            uint8_t *cell = &s->cnt[k * DETECT_SEQ_ROW +
                                    (unsigned)((key * 2654435761u) >> (32u - ROW_BITS))];
            unsigned c = *cell;

            if (c <= 1u) {
                if (c == 1u) {
                    s->once[k]--;
                } else {
                    if (!judged) {
                        /* Good-Turing: the chance that the next n-gram of
                         * this length is one never seen is about the share
                         * of the counts held by n-grams seen once (plus
                         * one, so a stream that has shown none yet is not
                         * certain of it). */
                        p = ((float)s->once[k] + 1.0f) /
                            ((float)(s->total[k] + s->since) + 1.0f);
                        if (p > 1.0f)
                            p = 1.0f;
                        judged = 1;
                    }
                    s->once[k]++;
                }
            }
            if (c == 255u)
                full = 1;
            else
                *cell = (uint8_t)(c + 1u);
        }
        s->since++;
        if (full)
            halve_counts(s);
        /* A run of samples each new at some length: the chance of the run
         * is the product of theirs (a day that keeps its shape but not its
         * level makes n-grams new sample after sample, each about as often
         * as a noisy stream does).  A sample new only at a length where
         * new n-grams are the usual thing (p >= 1/e, the bound below which
         * the calibration sees any surprise at all, as for the context
         * detector) continues the run and adds nothing: a young table on
         * plain noise made runs of p ~ 0.5 that multiplied to 1e-6. */
        if (judged) {
            float f = p < 0.36787944f ? p : 1.0f;

            s->run = s->run > 0.0f ? s->run * f : f;
            if (s->run < 1e-30f)
                s->run = 1e-30f;
            p = s->run;
        } else {
            s->run = 0.0f;
        }
    }
    s->hist = gram & ((UINT32_C(1) << HIST_BITS) - 1u);
    if (s->seen < UINT32_MAX)
        s->seen++;
    return p;
}
