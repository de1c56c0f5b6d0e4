/* text.c - see text.h.  Parsers are strict on purpose: an id or a
 * cursor is either exactly well formed or the request is a 400, so nothing
 * half-parsed reaches SQL. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/text/text.h"

int text_b64_encode(const uint8_t *in, size_t len, char *out, size_t out_cap)
{
    if (len > (SIZE_MAX / 4) - 3 || out_cap < ((len + 2) / 3) * 4 + 1)
        return -1;
    sodium_bin2base64(out, out_cap, in, len, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

int text_b64_decode_exact(const char *in, uint8_t *out, size_t want)
{
    uint8_t tmp[512];
    size_t got = 0;
    const char *end = NULL;
    size_t inlen;

    if (!in || want > sizeof tmp)
        return -1;
    inlen = strlen(in);
    if (inlen == 0 || inlen > ((sizeof tmp + 2) / 3) * 4)
        return -1;
    /* libsodium decodes some bytes >= 0x80 as if they were '/' (found by
     * tests/fuzz/fuzz_text.c): only the alphabet itself is accepted. */
    if (strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != inlen)
        return -1;
    if (sodium_base642bin(tmp, sizeof tmp, in, inlen, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    if (end != in + inlen || got != want)
        return -1;
    memcpy(out, tmp, want);
    return 0;
}

int text_rfc3339(int64_t us, char *out, size_t out_cap)
{
    /* Floor division so times before 1970 keep a positive fraction. */
    int64_t sec = us / 1000000, frac = us % 1000000;
    struct tm tm;
    time_t t;

    if (frac < 0) {
        frac += 1000000;
        sec -= 1;
    }
    if (out_cap < 32 || sec < -62135596800LL || sec > 253402300799LL)
        return -1;
    t = (time_t)sec;
    if (!gmtime_r(&t, &tm))
        return -1;
    snprintf(out, out_cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return 0;
}

int text_parse_id(const char *s, int64_t *out)
{
    size_t i, n;
    uint64_t v = 0;

    if (!s)
        return -1;
    n = strlen(s);
    if (n == 0 || n > 19 || s[0] == '0')
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int text_parse_cursor(const char *s, int64_t *after)
{
    if (!s || !*s) {
        *after = 0;
        return 0;
    }
    return text_parse_id(s, after);
}

int text_parse_limit(const char *s, int def, int max, int *out)
{
    int64_t v;

    if (!s) {
        *out = def;
        return 0;
    }
    if (text_parse_id(s, &v) != 0 || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int text_valid_device_id(const char *s)
{
    size_t i, n;

    if (!s)
        return 0;
    n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int text_valid_name(const char *s)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > TEXT_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}
