/* fuzz_http.c - libFuzzer target for the agent's HTTP answer parser
 * (agent/net): the head (net_head_length, net_parse_head) and the chunked
 * decoder (net_chunked_feed), which read what a server or anything on the
 * path sends.  The first byte sets the piece size the body is fed in (1 to
 * 32 bytes, so state carried between pieces is exercised); the rest is the
 * answer.  Properties beyond "no crash": a head is found only within
 * NET_HEAD_MAX and ends with a blank line; a parsed head has a status in
 * 100..599 and a length within 18 digits; the decoder never reports more
 * bytes used or produced than it was given, never produces more than it
 * consumed, and once done stays done.
 * Seeds: tests/fuzz/corpus/http/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct net_head h;
    struct net_chunked ch = { 0 };
    size_t step, at;
    long hl;
    uint8_t *buf;

    if (size < 1)
        return 0;
    step = (size_t)(data[0] % 32) + 1;
    data++;
    size--;
    hl = net_head_length((const char *)data, size);
    if (hl > 0) {
        if (hl > NET_HEAD_MAX || memcmp(data + hl - 4, "\r\n\r\n", 4) != 0)
            abort();
        if (net_parse_head((const char *)data, (size_t)hl, &h) == 0 &&
            (h.status < 100 || h.status > 599 || h.content_length < -1 ||
             h.content_length > 999999999999999999LL || h.retry_after < -1))
            abort();
    } else if (hl < 0 && size < NET_HEAD_MAX) {
        abort();                /* "too long" only past the bound */
    }
    /* The body: whatever follows the head (or all of it), as chunked. */
    at = hl > 0 ? (size_t)hl : 0;
    buf = malloc(step);
    if (!buf)
        return 0;
    while (at < size) {
        size_t k = size - at < step ? size - at : step, used = 0, out = 0;
        int r;

        memcpy(buf, data + at, k);
        r = net_chunked_feed(&ch, buf, k, &used, &out);
        if (r < 0)
            break;
        if (used > k || out > used)
            abort();
        at += used;
        if (r == 1) {
            /* done: further input is not taken */
            if (at < size && (net_chunked_feed(&ch, buf, 1, &used, &out) != 1 || used || out))
                abort();
            break;
        }
        if (used != k)
            abort();
    }
    free(buf);
    return 0;
}
