/* devmsg.c - see devmsg.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/devmsg.h"

int devmsg_heartbeat(const char *device_id, int64_t ts_ms, const uint8_t *body, size_t len,
                     uint8_t **out, size_t *out_len)
{
    char head[256];
    int n;
    uint8_t *m;

    if (!device_id || !*device_id || strchr(device_id, '\n') || ts_ms < 0 || (!body && len))
        return -1;
    n = snprintf(head, sizeof head, DEVMSG_HEARTBEAT_CONTEXT "\n%s\n%" PRId64 "\n", device_id,
                 ts_ms);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    m = malloc((size_t)n + len + 1);
    if (!m)
        return -1;
    memcpy(m, head, (size_t)n);
    if (len)
        memcpy(m + n, body, len);
    *out = m;
    *out_len = (size_t)n + len;
    return 0;
}

int devmsg_rotate(const char *device_id, const char *new_key_b64, int64_t ts_ms, char *out,
                  size_t cap, size_t *len)
{
    int n;

    if (!device_id || !*device_id || strchr(device_id, '\n') || !new_key_b64 ||
        strchr(new_key_b64, '\n') || ts_ms < 0)
        return -1;
    n = snprintf(out, cap, DEVMSG_ROTATE_CONTEXT "\n%s\n%s\n%" PRId64 "\n", device_id,
                 new_key_b64, ts_ms);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    *len = (size_t)n;
    return 0;
}

int devmsg_parse_ts(const char *s, int64_t *ms)
{
    int64_t v = 0;
    size_t i;

    if (!s || !*s)
        return -1;
    for (i = 0; s[i]; i++) {
        if (i >= DEVMSG_TS_MAX_DIGITS || s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *ms = v;
    return 0;
}

int devmsg_fresh(int64_t ts_ms, int64_t now_ms)
{
    int64_t d = ts_ms - now_ms;

    return d <= (int64_t)DEVMSG_FRESH_S * 1000 && d >= -(int64_t)DEVMSG_FRESH_S * 1000;
}
