/* fuzz_devmsg.c - libFuzzer target for what devices sign besides envelopes:
 * heartbeats (fleet_heartbeat_verify: device id, X-Precursor-Timestamp,
 * X-Precursor-Signature, body) and key rotation bodies (fleet_rotate_parse).
 *
 * The first byte picks the message: 'h' heartbeat, anything else rotation.
 * Heartbeat: the rest is split at NULs into device id, timestamp header,
 * signature header and body (the rest, NULs included).  An empty signature
 * is replaced by a genuine one over the fuzzed fields, so the checks after
 * the signature (freshness) are reached too.  Rotation: device id, NUL, the
 * body; a body whose "signature" is "" gets a genuine one over its own
 * public_key and timestamp.  Properties beyond "no crash": an accepted
 * heartbeat's timestamp is the header's and within the freshness window; a
 * genuine heartbeat is refused only for its timestamp or device id; an
 * accepted rotation is fresh and to a key other than the current one.
 * Seeds: tests/fuzz/corpus/devmsg/. */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema/devmsg.h"
#include "server/fleet/fleet.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

#define NOW_MS 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t pk[32], sk[64];

static void keys_init(void)
{
    static int done;
    uint8_t seed[32];

    if (done)
        return;
    if (sodium_init() < 0)
        abort();
    memset(seed, 7, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    done = 1;
}

/* Next NUL-terminated field of [*p, end), or NULL when none is left. */
static const char *field(const char **p, const char *end)
{
    const char *f = *p, *z = memchr(f, '\0', (size_t)(end - f));

    if (!z)
        return NULL;
    *p = z + 1;
    return f;
}

static void heartbeat(const char *in, const char *end)
{
    const char *p = in, *dev = field(&p, end), *ts = dev ? field(&p, end) : NULL;
    const char *sig64 = ts ? field(&p, end) : NULL;
    char genuine[128];
    struct srv_response rs;
    uint8_t sig[64], *msg;
    size_t mlen;
    int64_t parsed, got = -1;
    int err, signed_here = 0;

    if (!sig64)
        return;
    if (!*sig64 && devmsg_parse_ts(ts, &parsed) == 0 &&
        devmsg_heartbeat(dev, parsed, (const uint8_t *)p, (size_t)(end - p), &msg, &mlen) == 0) {
        crypto_sign_detached(sig, NULL, msg, mlen, sk);
        free(msg);
        text_b64_encode(sig, sizeof sig, genuine, sizeof genuine);
        sig64 = genuine;
        signed_here = 1;
    }
    memset(&rs, 0, sizeof rs);
    err = fleet_heartbeat_verify(dev, ts, sig64, (const uint8_t *)p, (size_t)(end - p), pk,
                                 NOW_MS, &got, &rs);
    if (err == SRV_OK && (devmsg_parse_ts(ts, &parsed) != 0 || parsed != got ||
                          !devmsg_fresh(got, NOW_MS)))
        abort();
    if (signed_here && err != SRV_OK && devmsg_fresh(parsed, NOW_MS))
        abort();
    srv_response_release(&rs);
}

/* Replace an empty "signature" by a genuine one over the body's own key
 * and timestamp; a new malloc'd body, or NULL to use the input as is. */
static char *sign_rotation(const char *dev, const char *body, size_t len)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *k64 = json_string_value(json_object_get(j, "public_key"));
    const char *s = json_string_value(json_object_get(j, "signature"));
    json_t *ts = json_object_get(j, "timestamp");
    char msg[256], b64[128];
    uint8_t sig[64];
    size_t mlen;
    char *out = NULL;

    if (k64 && s && !*s && json_is_integer(ts) && json_integer_value(ts) >= 0 &&
        devmsg_rotate(dev, k64, (int64_t)json_integer_value(ts), msg, sizeof msg, &mlen) == 0) {
        crypto_sign_detached(sig, NULL, (const uint8_t *)msg, mlen, sk);
        text_b64_encode(sig, sizeof sig, b64, sizeof b64);
        json_object_set_new(j, "signature", json_string(b64));
        out = json_dumps(j, JSON_COMPACT);
    }
    json_decref(j);
    return out;
}

static void rotation(const char *in, const char *end)
{
    const char *p = in, *dev = field(&p, end);
    struct fleet_rotation rot;
    struct srv_response rs;
    char *signed_body;
    const char *body;
    size_t len;
    int err;

    if (!dev)
        return;
    signed_body = sign_rotation(dev, p, (size_t)(end - p));
    body = signed_body ? signed_body : p;
    len = signed_body ? strlen(signed_body) : (size_t)(end - p);
    memset(&rs, 0, sizeof rs);
    err = fleet_rotate_parse(dev, (const uint8_t *)body, len, pk, NOW_MS, &rot, &rs);
    if (err == SRV_OK && (memcmp(rot.new_pk, pk, 32) == 0 || !devmsg_fresh(rot.ts_ms, NOW_MS)))
        abort();
    srv_response_release(&rs);
    free(signed_body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;

    if (size < 1 || size > 8192)
        return 0;
    keys_init();
    /* A copy with a NUL after it, so the last field is a string too. */
    buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (buf[0] == 'h')
        heartbeat(buf + 1, buf + size);
    else
        rotation(buf + 1, buf + size);
    free(buf);
    return 0;
}
