/* fuzz_text.c - libFuzzer target for the server's small parsers of
 * request text: ids, pagination cursors, limits, device ids, base64 fields
 * (public keys, signatures) and the error body builder, which echoes text a
 * client chose.
 *
 * The input is split at its first NUL: the part before is the text under
 * test (as a C string, the way query values and headers arrive); the part
 * after, if any, is fed to srv_err_body as the message.  Properties
 * checked beyond "no crash": an accepted id is positive, a decoded base64
 * field re-encodes to the same text, and the error body is valid JSON that
 * carries the message back (unchanged when it is UTF-8, each other byte as '?').  Seeds: tests/fuzz/corpus/text/.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv/srv.h"
#include "server/text/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_b64(const char *s, size_t want)
{
    uint8_t raw[64];
    char back[128];

    if (text_b64_decode_exact(s, raw, want) != 0)
        return;
    if (text_b64_encode(raw, want, back, sizeof back) != 0 || strcmp(back, s) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;
    const char *msg;
    size_t slen;
    int64_t v;
    int lim;
    char *err;

    if (size > 4096)
        return 0;
    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    slen = strlen(s);
    msg = slen < size ? s + slen + 1 : NULL;

    if (text_parse_id(s, &v) == 0 && v <= 0)
        abort();
    if (text_parse_cursor(s, &v) == 0 && v < 0)
        abort();
    if (text_parse_limit(s, 50, 1000, &lim) == 0 && (lim < 1 || lim > 1000))
        abort();
    if (text_valid_device_id(s) && (slen == 0 || slen > 64))
        abort();
    check_b64(s, 32);
    check_b64(s, 64);

    /* Every message makes a JSON error body (bytes that are not UTF-8
     * become '?'); valid UTF-8 comes back unchanged, as jansson judges it. */
    err = srv_err_body("bad_request", s);
    if (err) {
        json_t *j = json_loads(err, 0, NULL), *probe = json_string(s);
        const char *back;

        if (!j)
            abort();
        back = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        if (!back || strlen(back) != slen || (probe && strcmp(back, s) != 0))
            abort();
        json_decref(probe);
        json_decref(j);
        free(err);
    }
    /* The bytes after the NUL: a microsecond time for the RFC 3339 writer. */
    if (msg) {
        uint64_t us = 0;
        char tbuf[40];
        const char *k;

        for (k = msg; k < s + size && k < msg + 8; k++)
            us = us << 8 | (uint8_t)*k;
        (void)text_rfc3339((int64_t)us, tbuf, sizeof tbuf);
    }
    free(s);
    return 0;
}
