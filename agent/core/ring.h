/* ring.h - per-channel ring buffer of the last N frames (portable core).
 *
 * All memory comes from the caller at init; ring_push() is a copy and an
 * index increment, no allocation, lock or system call.  Frames are counted
 * from 0 since start (a uint64 that never wraps in practice), so a snapshot
 * can be cut by absolute frame number once its post-trigger samples arrived. */
#ifndef PRECURSOR_RING_H
#define PRECURSOR_RING_H

#include <stddef.h>
#include <stdint.h>

struct ring {
    unsigned channels;
    uint32_t capacity;          /* frames */
    uint64_t total;             /* frames pushed since init */
    float *data;                /* planar: data[c * capacity + (frame % capacity)] */
    int64_t *t_us;              /* timestamp per slot */
};

size_t ring_arena_size(unsigned channels, uint32_t capacity);
int ring_init(struct ring *r, unsigned channels, uint32_t capacity,
              void *arena, size_t arena_len);
void ring_push(struct ring *r, const float *frame, int64_t t_us);
/* Copy frames [first, first+count) planar into out (channels*count floats).
 * Returns 0, or -1 if any of them is no longer (or not yet) in the ring. */
int ring_copy(const struct ring *r, uint64_t first, uint32_t count, float *out);
/* Where frames [first, first+count) are, without copying: channel c's first
 * *head frames at *a + c * capacity, the rest at *b + c * capacity.  Returns
 * 0, or -1 as ring_copy.  The caller reads them before ring_push() reaches
 * frame first + capacity (which overwrites frame first). */
int ring_span(const struct ring *r, uint64_t first, uint32_t count, const float **a,
              uint32_t *head, const float **b);
int64_t ring_time(const struct ring *r, uint64_t frame);

#endif
