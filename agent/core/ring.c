/* ring.c - per-channel ring buffer of the last N frames (portable core).
 *
 * Planar storage so a snapshot window is one or two memcpy per channel.  The
 * caller hands in the arena; nothing here allocates, locks or does I/O, so
 * the file builds unchanged for a Cortex-M4. */
#include "agent/core/ring.h"

#include <string.h>

/* Timestamps first: int64 wants 8-byte alignment, floats only 4. */
size_t ring_arena_size(unsigned channels, uint32_t capacity)
{
    if (channels == 0 || capacity == 0)
        return 0;
    return (size_t)capacity * sizeof(int64_t) +
           (size_t)channels * capacity * sizeof(float);
}

int ring_init(struct ring *r, unsigned channels, uint32_t capacity,
              void *arena, size_t arena_len)
{
    size_t need = ring_arena_size(channels, capacity);

    if (r == NULL || arena == NULL || need == 0 || arena_len < need)
        return -1;
    if (((uintptr_t)arena & (sizeof(int64_t) - 1)) != 0)
        return -1;
    r->channels = channels;
    r->capacity = capacity;
    r->total = 0;
    r->t_us = arena;
    r->data = (float *)((char *)arena + (size_t)capacity * sizeof(int64_t));
    return 0;
}

void ring_push(struct ring *r, const float *frame, int64_t t_us)
{
    uint32_t slot = (uint32_t)(r->total % r->capacity);

    for (unsigned c = 0; c < r->channels; c++)
        r->data[(size_t)c * r->capacity + slot] = frame[c];
    r->t_us[slot] = t_us;
    r->total++;
}

/* A frame is held while it is among the last `capacity` pushed. */
static int ring_holds(const struct ring *r, uint64_t first, uint64_t count)
{
    uint64_t oldest = r->total > r->capacity ? r->total - r->capacity : 0;

    if (count > r->capacity || first < oldest)
        return 0;
    return first <= r->total && count <= r->total - first;
}

int ring_copy(const struct ring *r, uint64_t first, uint32_t count, float *out)
{
    uint32_t start, head;

    if (count == 0)
        return 0;
    if (!ring_holds(r, first, count))
        return -1;
    start = (uint32_t)(first % r->capacity);
    /* At most two pieces per channel: up to the end of the slots, then from 0. */
    head = r->capacity - start;
    if (head > count)
        head = count;
    for (unsigned c = 0; c < r->channels; c++) {
        const float *src = r->data + (size_t)c * r->capacity;
        float *dst = out + (size_t)c * count;

        memcpy(dst, src + start, (size_t)head * sizeof(float));
        if (head < count)
            memcpy(dst + head, src, (size_t)(count - head) * sizeof(float));
    }
    return 0;
}

int ring_span(const struct ring *r, uint64_t first, uint32_t count, const float **a,
              uint32_t *head, const float **b)
{
    uint32_t start, h;

    if (count == 0 || !ring_holds(r, first, count))
        return -1;
    start = (uint32_t)(first % r->capacity);
    h = r->capacity - start;
    *a = r->data + start;
    *head = h > count ? count : h;
    *b = r->data;
    return 0;
}

/* INT64_MIN for a frame not held: no timestamp is that small in practice. */
int64_t ring_time(const struct ring *r, uint64_t frame)
{
    if (!ring_holds(r, frame, 1))
        return INT64_MIN;
    return r->t_us[frame % r->capacity];
}
