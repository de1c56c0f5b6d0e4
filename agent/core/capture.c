/* capture.c - pending capture, merge or hold-off, and the cut.  See
 * capture.h. */
#include "agent/core/capture.h"

#include <string.h>

void capture_init(struct capture *c, uint32_t pre_n, uint32_t post_n, uint32_t max_n, int merge)
{
    memset(c, 0, sizeof(*c));
    c->pre_n = pre_n;
    c->post_n = post_n;
    c->max_n = max_n;
    c->merge = merge;
}

enum capture_outcome capture_trigger(struct capture *c, uint64_t frame, int64_t t_us,
                                     const struct detect_result *r)
{
    if (c->pending) {
        uint64_t want = frame + c->post_n, limit = c->w.first + c->max_n;

        if (!c->merge || want <= c->w.end)
            return CAPTURE_HELD_OFF;
        c->w.end = want < limit ? want : limit;
        if (r->score > c->w.score)
            c->w.score = r->score;
        return CAPTURE_MERGED;
    }
    c->w.trigger = frame;
    c->w.first = frame >= c->pre_n ? frame - c->pre_n : 0;
    c->w.end = frame + c->post_n;
    c->w.t_us = t_us;
    c->w.score = r->score;
    c->w.channel = r->channel;
    c->w.detector = r->detector;
    c->pending = 1;
    return CAPTURE_STARTED;
}

int capture_pending(const struct capture *c)
{
    return c->pending;
}

void capture_cancel(struct capture *c)
{
    c->pending = 0;
}

int capture_due(const struct capture *c, uint64_t total)
{
    return c->pending && total >= c->w.end;
}

void capture_close(struct capture *c, uint64_t total, struct capture_window *w)
{
    *w = c->w;
    if (w->end > total)
        w->end = total;
    c->pending = 0;
}

uint32_t capture_frames(const struct capture_window *w)
{
    return (uint32_t)(w->end - w->first);
}

int capture_cut(const struct ring *r, const struct capture_window *w, float *out)
{
    return ring_copy(r, w->first, capture_frames(w), out);
}
