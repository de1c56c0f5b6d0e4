/* sim.h - what tests and demos may know of the simulator's injected faults.
 *
 * source.h is the interface every source implements; this adds the
 * simulator's ground truth: when each fault started and ended, and its kind. */
#ifndef PRECURSOR_SIM_H
#define PRECURSOR_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "agent/source/source.h"

/* One injected fault.  Frames are counted from 0. */
struct sim_fault {
    uint64_t start_frame, end_frame;    /* [start, end) */
    int64_t start_us, end_us;
    int kind;
    const char *name;
};

const char *sim_fault_name(int kind);
/* Copy up to cap of the most recent faults (oldest first); returns how many. */
size_t sim_faults(const struct source *s, struct sim_fault *out, size_t cap);

#endif
