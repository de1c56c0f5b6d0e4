/* bin.c - raw interleaved little-endian frames (i16le or f32le), no header.
 *
 * Time is synthesised: frame k is at start_us + k / rate.  Reads go through
 * one buffer of whole frames; a partial frame at the end of the input is an
 * error naming the frame, never silently dropped or padded. */
#include "agent/source/source.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_BYTES (64 * 1024)

struct bin {
    FILE *f;
    int own;
    int f32;                    /* else i16 */
    size_t frame_bytes;
    int64_t start_us;
    uint64_t frames;            /* frames handed out so far */
    int fd;                     /* fileno(f): read directly, stdio would wait for a full block */
    size_t have;                /* bytes of an incomplete frame kept at buf[0] */
    int eof;
    int failed;
    char name[128];             /* the file, or "stdin": errors name it as the CSV source's do */
    unsigned char buf[BUF_BYTES];
};

static float f32le(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float f;

    memcpy(&f, &u, sizeof(f));
    return f;
}

static int bin_next(struct source *s, float *samples, int64_t *t_us, size_t cap, size_t *n)
{
    struct bin *b = s->impl;
    size_t want, got, frames, i, k;

    if (b->failed)
        return b->failed;
    if (b->eof && b->have == 0)
        return SOURCE_EOF;
    if (!samples || !t_us || !n || cap == 0) {
        snprintf(s->err, sizeof(s->err), "next: no room for frames");
        return SOURCE_EARG;
    }
    want = BUF_BYTES / b->frame_bytes;
    if (want > cap)
        want = cap;
    want *= b->frame_bytes;
    /* read(2), not fread: a sample must be scored as soon as it arrives.
     * fread would wait on a pipe until the whole block is filled (a second
     * at 1 kHz), delaying the trigger and its local action.  So block only
     * until one whole frame is here and take whatever else is ready; a
     * regular file still fills the block in one read. */
    got = b->have;
    while (got < b->frame_bytes) {
        ssize_t r = read(b->fd, b->buf + got, want - got);

        if (r == 0) {
            b->eof = 1;
            break;
        }
        if (r < 0 && errno == EINTR) {
            /* The agent's only handled signals ask it to stop: hand back
             * control with the partial frame kept for a later call. */
            b->have = got;
            return SOURCE_EOF;
        }
        if (r < 0) {
            snprintf(s->err, sizeof(s->err), "%s: read failed: %s", b->name, strerror(errno));
            b->failed = SOURCE_EIO;
            return b->failed;
        }
        got += (size_t)r;
    }
    frames = got / b->frame_bytes;
    if (frames == 0) {
        if (got > 0) {
            snprintf(s->err, sizeof(s->err),
                     "%s: truncated frame %llu at the end: %zu of %zu bytes", b->name,
                     (unsigned long long)b->frames, got, b->frame_bytes);
            b->failed = SOURCE_EFORMAT;
            return b->failed;
        }
        return SOURCE_EOF;
    }
    for (i = 0; i < frames; i++) {
        const unsigned char *p = b->buf + i * b->frame_bytes;

        for (k = 0; k < s->channels; k++) {
            float v;

            if (b->f32) {
                v = f32le(p + 4 * k);
            } else {
                int16_t x = (int16_t)(uint16_t)((unsigned)p[2 * k] | (unsigned)p[2 * k + 1] << 8);
                v = (float)x;
            }
            samples[i * s->channels + k] = v;
        }
        t_us[i] = b->start_us + (int64_t)llround((double)(b->frames + i) * 1e6 / s->rate);
    }
    /* Keep the tail of a frame split across reads for the next call. */
    b->have = got - frames * b->frame_bytes;
    memmove(b->buf, b->buf + frames * b->frame_bytes, b->have);
    b->frames += frames;
    *n = frames;
    return 0;
}

static void bin_close(struct source *s)
{
    struct bin *b;

    if (!s)
        return;
    b = s->impl;
    if (b) {
        if (b->own && b->f)
            fclose(b->f);
        free(b);
    }
    free(s);
}

int source_bin_open(const char *path, const char *format, unsigned channels,
                    double rate, int64_t start_us, struct source **out)
{
    struct source *s;
    struct bin *b;
    int f32;
    unsigned k;
    char msg[256];

    if (!out || !format || (strcmp(format, "i16le") && strcmp(format, "f32le"))) {
        source_set_open_error("bin: format must be i16le or f32le");
        return SOURCE_EARG;
    }
    if (channels < 1 || channels > WIRE_MAX_CHANNELS) {
        snprintf(msg, sizeof(msg), "bin: channels must be 1..%d", WIRE_MAX_CHANNELS);
        source_set_open_error(msg);
        return SOURCE_EARG;
    }
    if (!(rate > 0.0 && rate <= 1e9)) {
        source_set_open_error("bin: rate must be > 0 Hz");
        return SOURCE_EARG;
    }
    f32 = !strcmp(format, "f32le");
    s = calloc(1, sizeof(*s));
    b = calloc(1, sizeof(*b));
    if (!s || !b) {
        free(s);
        free(b);
        source_set_open_error("bin: out of memory");
        return SOURCE_ENOMEM;
    }
    if (!path || !strcmp(path, "-")) {
        b->f = stdin;
    } else {
        b->f = fopen(path, "rb");
        if (!b->f) {
            snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(errno));
            source_set_open_error(msg);
            free(s);
            free(b);
            return SOURCE_EIO;
        }
        b->own = 1;
    }
    snprintf(b->name, sizeof(b->name), "%s", b->own ? path : "stdin");
    b->fd = fileno(b->f);
    b->f32 = f32;
    b->frame_bytes = (size_t)channels * (f32 ? 4u : 2u);
    b->start_us = start_us;
    s->channels = channels;
    s->rate = rate;
    s->wire_type = f32 ? WIRE_F32 : WIRE_I16;
    for (k = 0; k < channels; k++)
        snprintf(s->chan[k].name, sizeof(s->chan[k].name), "ch%u", k);
    s->next = bin_next;
    s->close = bin_close;
    s->ts_text = NULL;
    s->impl = b;
    source_set_open_error("");
    *out = s;
    return 0;
}
