/* fleet_int.h - what the fleet module's files share among themselves. */
#ifndef PRECURSOR_FLEET_INT_H
#define PRECURSOR_FLEET_INT_H

#include <stdint.h>

/* Monotonic milliseconds. */
int64_t fleet__now_ms(void);
/* FNV-1a of a NUL-terminated string: slot choice for cache and buckets. */
uint32_t fleet__hash(const char *s);

#endif
