/* fleet_devmsg.c - the checks of what a device signs besides envelopes
 * (schema/devmsg.h): a heartbeat's signature over device id, timestamp and
 * body, and a rotation request's body.  Pure: no database, so the fuzz
 * target (tests/fuzz/fuzz_devmsg.c) and the unit tests call them directly;
 * the stored "last accepted timestamp" comparison is the caller's SQL. */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "schema/devmsg.h"
#include "server/fleet/fleet.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

static int fresh_or_fail(int64_t ts, int64_t now_ms, struct srv_response *rs)
{
    if (devmsg_fresh(ts, now_ms))
        return SRV_OK;
    return srv_failf(rs, SRV_ESIGNATURE,
                     "timestamp is %lld s from the server's clock (at most %d s accepted):"
                     " set the device's clock", (long long)((ts - now_ms) / 1000),
                     DEVMSG_FRESH_S);
}

int fleet_heartbeat_verify(const char *dev, const char *ts_header, const char *sig64,
                           const uint8_t *body, size_t len, const uint8_t pk[FLEET_PK_LEN],
                           int64_t now_ms, int64_t *ts_ms, struct srv_response *rs)
{
    uint8_t sig[64], *msg = NULL;
    size_t mlen;
    int64_t ts;
    int ok;

    if (text_b64_decode_exact(sig64, sig, sizeof sig) != 0)
        return srv_fail(rs, SRV_EBADREQ, "X-Precursor-Signature must be base64 of 64 bytes");
    if (devmsg_parse_ts(ts_header, &ts) != 0)
        return srv_fail(rs, SRV_EBADREQ, "X-Precursor-Timestamp must be Unix time in"
                        " milliseconds; agents older than signed timestamps must be upgraded");
    if (devmsg_heartbeat(dev, ts, body, len, &msg, &mlen) != 0)
        return srv_fail(rs, SRV_EBADREQ, "X-Precursor-Device malformed");
    ok = crypto_sign_verify_detached(sig, msg, mlen, pk) == 0;
    free(msg);
    if (!ok)
        return srv_fail(rs, SRV_ESIGNATURE, "heartbeat signature does not verify over"
                        " device id, timestamp and body");
    if (fresh_or_fail(ts, now_ms, rs) != SRV_OK)
        return SRV_ESIGNATURE;
    *ts_ms = ts;
    return SRV_OK;
}

int fleet_rotate_parse(const char *dev, const uint8_t *body, size_t len,
                       const uint8_t old_pk[FLEET_PK_LEN], int64_t now_ms,
                       struct fleet_rotation *out, struct srv_response *rs)
{
    json_t *j = body ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const char *k64 = json_string_value(json_object_get(j, "public_key"));
    json_t *ts = json_object_get(j, "timestamp");
    char msg[256];
    size_t mlen;
    int err = SRV_OK;

    if (!json_is_object(j) || !k64 ||
        text_b64_decode_exact(k64, out->new_pk, sizeof out->new_pk) != 0 ||
        text_b64_decode_exact(json_string_value(json_object_get(j, "signature")), out->sig,
                              sizeof out->sig) != 0 ||
        !json_is_integer(ts) || json_integer_value(ts) < 0) {
        err = srv_fail(rs, SRV_EBADREQ, "body must be {\"public_key\",\"signature\"} in base64"
                       " and \"timestamp\" in Unix milliseconds");
        goto out;
    }
    out->ts_ms = (int64_t)json_integer_value(ts);
    if (devmsg_rotate(dev, k64, out->ts_ms, msg, sizeof msg, &mlen) != 0) {
        err = srv_fail(rs, SRV_EBADREQ, "device id or key malformed");
        goto out;
    }
    if (crypto_sign_verify_detached(out->sig, (const uint8_t *)msg, mlen, old_pk) != 0) {
        err = srv_fail(rs, SRV_ESIGNATURE, "rotation must be signed by the current key over"
                       " " DEVMSG_ROTATE_CONTEXT ", device id, new key and timestamp");
        goto out;
    }
    if (sodium_memcmp(out->new_pk, old_pk, FLEET_PK_LEN) == 0) {
        err = srv_fail(rs, SRV_ECONFLICT, "the new key is the current key: keys must be fresh");
        goto out;
    }
    err = fresh_or_fail(out->ts_ms, now_ms, rs);
out:
    json_decref(j);
    return err;
}
