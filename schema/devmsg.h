/* devmsg.h - what a device signs besides its envelopes: heartbeats and key
 * rotations.  Shared by the agent (which signs) and the server (which
 * verifies), so both build the same bytes.
 *
 * A heartbeat's Ed25519 signature covers
 *     "precursor-heartbeat-v1\n" <device id> "\n" <timestamp> "\n" <body bytes>
 * where the timestamp is the X-Precursor-Timestamp header (Unix time in
 * milliseconds, decimal) and the body is every byte sent, whatever fields it
 * holds, so fields added later need no change here.  A rotation's covers
 *     "precursor-rotate-v2\n" <device id> "\n" <base64 new key> "\n" <timestamp> "\n".
 * The server takes a timestamp only within DEVMSG_FRESH_S of its clock and
 * only above the last one it accepted from that device, so a captured
 * message cannot be replayed. */
#ifndef PRECURSOR_DEVMSG_H
#define PRECURSOR_DEVMSG_H

#include <stddef.h>
#include <stdint.h>

#define DEVMSG_HEARTBEAT_CONTEXT "precursor-heartbeat-v1"
#define DEVMSG_ROTATE_CONTEXT "precursor-rotate-v2"
#define DEVMSG_FRESH_S 300          /* accepted skew between device and server */
#define DEVMSG_TS_MAX_DIGITS 15     /* milliseconds until the year 33658 */

/* The bytes a heartbeat signature covers, malloc'd into *out (the caller
 * frees).  0, or -1 on a malformed id or out of memory. */
int devmsg_heartbeat(const char *device_id, int64_t ts_ms, const uint8_t *body, size_t len,
                     uint8_t **out, size_t *out_len);
/* The text a rotation signature covers, into out.  0, or -1 when it does not
 * fit or an argument is malformed. */
int devmsg_rotate(const char *device_id, const char *new_key_b64, int64_t ts_ms, char *out,
                  size_t cap, size_t *len);
/* A timestamp as sent: 1..DEVMSG_TS_MAX_DIGITS decimal digits, nothing else.
 * 0 with *ms, or -1. */
int devmsg_parse_ts(const char *s, int64_t *ms);
/* Is ts_ms within DEVMSG_FRESH_S of now_ms?  1 or 0. */
int devmsg_fresh(int64_t ts_ms, int64_t now_ms);

#endif
