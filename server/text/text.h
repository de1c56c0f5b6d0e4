/* text.h - small pure helpers for the text the API reads and writes:
 * standard base64, RFC 3339 times, decimal ids and pagination cursors.  No
 * I/O, no database: everything here is unit-tested directly. */
#ifndef PRECURSOR_TEXT_H
#define PRECURSOR_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Standard base64 (with padding) of len bytes into out; out_cap must be at
 * least ((len + 2) / 3) * 4 + 1.  0 or -1. */
int text_b64_encode(const uint8_t *in, size_t len, char *out, size_t out_cap);

/* Decode standard base64 that must yield exactly want bytes.  0 or -1. */
int text_b64_decode_exact(const char *in, uint8_t *out, size_t want);

/* Unix microseconds -> "2024-05-01T12:00:00.123456Z" (microseconds always
 * shown).  out_cap >= 32.  0 or -1 (year outside 0001..9999). */
int text_rfc3339(int64_t us, char *out, size_t out_cap);

/* A positive decimal int64 without sign, leading zeros or junk, at most 19
 * digits.  0 or -1. */
int text_parse_id(const char *s, int64_t *out);

/* Pagination cursor: the last id of the previous page, as a decimal string.
 * NULL or "" means "from the start" (0).  0 or -1. */
int text_parse_cursor(const char *s, int64_t *after);

/* limit query value: NULL -> def; 1..max accepted; else -1. */
int text_parse_limit(const char *s, int def, int max, int *out);

/* Device ids: [A-Za-z0-9._-]{1,64}, as in the wire format. */
int text_valid_device_id(const char *s);

/* Names the operators give things that end up in URLs, exports and C
 * identifiers (equipment types, failure classes): [a-z0-9_]{1,64}. */
#define TEXT_NAME_MAX 64
int text_valid_name(const char *s);

#endif
