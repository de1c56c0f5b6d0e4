/* source.h - where the agent's samples come from.
 *
 * A source hands out blocks of frames (one sample per channel, interleaved)
 * as float, with a timestamp per frame.  Reads are buffered inside the source:
 * the sample path never makes a system call per sample.  Implementations:
 * source_sim (built-in simulator), source_csv (CSV text), source_bin (raw
 * interleaved i16le/f32le). */
#ifndef PRECURSOR_SOURCE_H
#define PRECURSOR_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "schema/wire.h"

#define SOURCE_EOF 1

/* Errors (negative); the text is in err[] (next) or source_open_error() (open). */
#define SOURCE_EIO     (-1)     /* reading failed */
#define SOURCE_EFORMAT (-2)     /* input not in the format (with its line number) */
#define SOURCE_ENOMEM  (-3)
#define SOURCE_EARG    (-4)     /* bad argument: channels, rate, format name */

struct source {
    unsigned channels;          /* 1..WIRE_MAX_CHANNELS, fixed once opened */
    double rate;                /* Hz (nominal; CSV: estimated from timestamps if not given) */
    struct wire_channel chan[WIRE_MAX_CHANNELS];
    uint8_t wire_type;          /* sample type snapshots should use (WIRE_F32 default) */

    /* Fill up to cap frames: samples[i * channels + c], t_us[i].  Returns 0
     * with *n >= 1, SOURCE_EOF at end of input, or a negative error with a
     * message in err[]. */
    int (*next)(struct source *s, float *samples, int64_t *t_us,
                size_t cap, size_t *n);
    void (*close)(struct source *s);   /* frees impl and s itself */
    /* CSV sources only, NULL for the others: the timestamp text of frame i
     * (0-based) of the block the last next() returned, exactly as it was in
     * the input, NUL-terminated, so replay can write it back unchanged.
     * Valid until the next call to next() or close(); NULL if i is out of
     * range. */
    const char *(*ts_text)(struct source *s, size_t i);
    void *impl;
    char err[256];
};

/* Simulator: see agent/source/sim.c for the equipment types and faults. */
struct sim_config {
    const char *equipment;      /* "bearing" (default), "motor", "pump" */
    double rate;                /* Hz, default 2000 */
    uint64_t seed;              /* faults and noise are reproducible from it */
    double fault_every_s;       /* mean seconds between injected faults (default 20) */
    double speed;               /* 1 = real time; 0 = as fast as possible */
    double duration_s;          /* 0 = forever */
    int64_t start_us;           /* timestamp of the first frame; 0 = now */
    FILE *fault_log;            /* if set, one line per injected fault: "t_us,kind" */
    /* > 0: the sensor chain as a 16-bit ADC: samples are int16 codes (in the
     * float block, whole numbers), snapshots are int16 with each channel's
     * scale (vibration: adc_full_scale / 32768 g per code).  The bearing
     * then uses the full kinematic model (sim.c).  0: float32 in units. */
    double adc_full_scale;
};
int source_sim_open(const struct sim_config *cfg, struct source **out);

/* CSV "timestamp,<channel>,...": header row names the channels (a unit may
 * follow in brackets, "accel_x[g]"); timestamps are unix seconds (decimal)
 * or "YYYY-MM-DD HH:MM:SS[.fff]" (NAB).  path NULL or "-" = stdin. */
int source_csv_open(const char *path, double rate_hint, struct source **out);
/* The same over an open stream (borrowed: close() does not fclose it), e.g.
 * fmemopen() in tests and fuzzing.  name is used in messages. */
int source_csv_fopen(FILE *f, const char *name, double rate_hint, struct source **out);

/* Why the last source_*_open() in this thread failed ("" if none did). */
const char *source_open_error(void);
/* For source implementations: record why an open failed. */
void source_set_open_error(const char *msg);

/* Raw interleaved little-endian frames without timestamps; time advances by
 * 1/rate from start_us.  format "i16le" or "f32le". */
int source_bin_open(const char *path, const char *format, unsigned channels,
                    double rate, int64_t start_us, struct source **out);

#endif
