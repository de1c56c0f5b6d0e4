/* capture.h - which frames a snapshot holds, and cutting them out of the ring
 * (portable core: no heap, no libc I/O, no system calls).
 *
 * A trigger starts a pending capture whose window runs from pre frames
 * before the trigger frame to post frames after it.  A trigger while one is
 * pending either extends its window (merge, up to the longest window) or is
 * held off: it gets no snapshot of its own.  Once the ring holds the
 * window's last frame the capture is due; closing it describes the window,
 * and capture_cut() copies it out of the ring into the caller's buffer.
 * Frames are counted as the ring counts them (struct ring.total). */
#ifndef PRECURSOR_CAPTURE_H
#define PRECURSOR_CAPTURE_H

#include <stdint.h>

#include "agent/core/detect.h"
#include "agent/core/ring.h"

struct capture_window {
    uint64_t trigger;               /* absolute frame of the trigger */
    uint64_t first, end;            /* window [first, end) */
    int64_t t_us;                   /* time of the trigger frame */
    float score;                    /* highest score of the triggers merged into it */
    uint16_t channel;               /* of the first trigger */
    uint8_t detector;
};

struct capture {
    uint32_t pre_n, post_n, max_n;  /* frames */
    int merge;
    int pending;
    struct capture_window w;        /* valid while pending */
};

enum capture_outcome {
    CAPTURE_STARTED = 0,            /* a new pending capture */
    CAPTURE_MERGED = 1,             /* folded into the pending one */
    CAPTURE_HELD_OFF = 2            /* a capture was pending: no snapshot of its own */
};

/* pre_n and post_n frames around each trigger (post_n >= 1); max_n, at least
 * pre_n + post_n, caps a merged window.  merge 0: hold triggers off while a
 * capture is pending. */
void capture_init(struct capture *c, uint32_t pre_n, uint32_t post_n, uint32_t max_n, int merge);
/* A trigger at frame (time t_us) with the detector's result. */
enum capture_outcome capture_trigger(struct capture *c, uint64_t frame, int64_t t_us,
                                     const struct detect_result *r);
int capture_pending(const struct capture *c);
/* Drops the pending capture, if any, without a window. */
void capture_cancel(struct capture *c);
/* 1 when a capture is pending and the ring (total frames) holds its window. */
int capture_due(const struct capture *c, uint64_t total);
/* Ends the pending capture: its window ends at its planned end or at total,
 * whichever comes first (end of input cuts it short).  *w describes it. */
void capture_close(struct capture *c, uint64_t total, struct capture_window *w);
/* Frames in w. */
uint32_t capture_frames(const struct capture_window *w);
/* Copies w's frames out of the ring, planar (ring.channels * capture_frames
 * floats).  0, or -1 when the ring no longer holds all of them. */
int capture_cut(const struct ring *r, const struct capture_window *w, float *out);

#endif
