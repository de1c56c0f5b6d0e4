/* testsynth.h - the synthetic source the pipeline suites run the real
 * sample path on (check_pipeline.c, check_action.c): two channels, "flow"
 * and "vib", at 1 kHz, replaying a prepared interleaved buffer in blocks of
 * a chosen size, optionally paced like real-time arrival; and the
 * deterministic low-noise fill both start from.  Static functions, included
 * by each suite. */
#ifndef PRECURSOR_TESTSYNTH_H
#define PRECURSOR_TESTSYNTH_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/source/source.h"
#include "schema/wire.h"

#define TESTSYNTH_CH 2
#define TESTSYNTH_RATE 1000.0
#define TESTSYNTH_T0 1700000000000000LL     /* first frame's time, us */

struct testsynth {
    const float *data;          /* interleaved, frames x TESTSYNTH_CH (borrowed) */
    size_t frames, frame, block;
    const long *pace_ms;        /* sleep per block when > 0; read live (may be NULL) */
};

static int testsynth_next(struct source *s, float *samples, int64_t *t_us, size_t cap, size_t *n)
{
    struct testsynth *y = s->impl;
    size_t want = cap < y->block ? cap : y->block;

    if (y->frame >= y->frames)
        return SOURCE_EOF;
    if (y->pace_ms && *y->pace_ms > 0) {
        struct timespec ts = { 0, *y->pace_ms * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (want > y->frames - y->frame)
        want = y->frames - y->frame;
    memcpy(samples, y->data + y->frame * TESTSYNTH_CH, want * TESTSYNTH_CH * sizeof(float));
    for (size_t i = 0; i < want; i++)
        t_us[i] = TESTSYNTH_T0 + (int64_t)(y->frame + i) * 1000;
    y->frame += want;
    *n = want;
    return 0;
}

static void testsynth_close(struct source *s)
{
    free(s->impl);
    free(s);
}

/* A source over data (frames frames) in blocks of block frames; channel
 * units are left empty for the caller to set when it needs them. */
static struct source *testsynth_open(const float *data, size_t frames, size_t block,
                                     const long *pace_ms)
{
    struct source *s = calloc(1, sizeof(*s));
    struct testsynth *y = calloc(1, sizeof(*y));

    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(y);
    y->data = data;
    y->frames = frames;
    y->block = block;
    y->pace_ms = pace_ms;
    s->impl = y;
    s->channels = TESTSYNTH_CH;
    s->rate = TESTSYNTH_RATE;
    s->wire_type = WIRE_F32;
    s->next = testsynth_next;
    s->close = testsynth_close;
    snprintf(s->chan[0].name, sizeof(s->chan[0].name), "flow");
    snprintf(s->chan[1].name, sizeof(s->chan[1].name), "vib");
    return s;
}

/* Deterministic noise (LCG from seed), amplitude about 0.1, over n values. */
static void testsynth_noise(float *data, size_t n, uint32_t seed)
{
    uint32_t x = seed;

    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        data[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
}

#endif
