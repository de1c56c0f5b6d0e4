/* testnoise.h - reproducible noise for the detector suites: xorshift64 for
 * uniforms and Box-Muller for Gaussians, without libc's rand state.  The
 * state is the caller's, so each suite keeps its own seed and its sequence.
 * Static functions, included by each suite. */
#ifndef PRECURSOR_TESTNOISE_H
#define PRECURSOR_TESTNOISE_H

#include <math.h>
#include <stdint.h>

/* The next 53 random bits as a double in [0, 1). */
static inline double testnoise_uniform(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* A standard normal deviate (two uniforms; the first kept off 0 for log). */
static inline double testnoise_gauss(uint64_t *s)
{
    double u1, u2;

    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    u1 = ((*s >> 11) + 1.0) / 9007199254740993.0;
    u2 = testnoise_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

#endif
