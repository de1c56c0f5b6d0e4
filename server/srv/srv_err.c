/* srv_err.c - the one table from server error codes to HTTP status, machine
 * code and default message.  Clients switch on "code", people read
 * "message"; the status is what HTTP middleboxes see. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv/srv.h"

struct err_row {
    int err;
    int status;
    const char *code;
    const char *message;
};

static const struct err_row err_table[] = {
    { SRV_OK, 200, "ok", "ok" },
    { SRV_EBADREQ, 400, "bad_request", "malformed request" },
    { SRV_EUNAUTH, 401, "unauthorized", "missing or invalid bearer token" },
    { SRV_EFORBIDDEN, 403, "forbidden", "not allowed for this role" },
    { SRV_ENOTFOUND, 404, "not_found", "no such resource" },
    { SRV_EMETHOD, 405, "method_not_allowed", "method not allowed on this route" },
    { SRV_ECONFLICT, 409, "conflict", "conflicts with what is stored" },
    { SRV_ETOOBIG, 413, "too_large", "request body over the limit" },
    { SRV_EENVELOPE, 400, "bad_envelope", "envelope malformed" },
    { SRV_ESIGNATURE, 403, "bad_signature", "signature does not verify" },
    { SRV_EUNKNOWNDEV, 403, "unknown_device", "device is not registered" },
    { SRV_EFRAME, 400, "bad_frame", "zstd frame refused" },
    { SRV_EENROLL, 403, "enrollment_refused", "enrollment secret wrong or enrollment disabled" },
    { SRV_EMEDIA, 415, "unsupported_media_type", "unsupported content type" },
    { SRV_EUNAVAIL, 503, "unavailable", "database unavailable" },
    { SRV_EDB, 500, "database_error", "database error" },
    { SRV_ENOMEM, 500, "out_of_memory", "out of memory" },
    { SRV_EINTERNAL, 500, "internal", "internal error" },
    { SRV_EDEVSTATE, 403, "device_not_active", "device is pending or revoked" },
    { SRV_ESCHEMA, 500, "schema_newer", "database schema is newer than this server" },
    { SRV_EMIGRATION, 500, "migration_failed", "a migration failed" },
    { SRV_ERATELIMIT, 429, "rate_limited", "device over its upload rate; retry after Retry-After" },
    { SRV_EOVERLOAD, 503, "overloaded", "ingest queue full; retry after Retry-After" },
    { SRV_ESEQRANGE, 422, "seq_out_of_range", "sequence number far ahead of the device's last" },
    { SRV_EUNPROCESSABLE, 422, "unprocessable", "the request cannot be honoured with the data stored" },
};

static const struct err_row *err_find(int err)
{
    size_t i;

    for (i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].err == err)
            return &err_table[i];
    return NULL;
}

int srv_err_status(int err)
{
    const struct err_row *r = err_find(err);
    return r ? r->status : 500;
}

const char *srv_err_code(int err)
{
    const struct err_row *r = err_find(err);
    return r ? r->code : "internal";
}

const char *srv_err_message(int err)
{
    const struct err_row *r = err_find(err);
    return r ? r->message : "internal error";
}

/* Length of the valid UTF-8 sequence at p (1..4), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p)
{
    size_t n, i;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;   /* overlong, surrogate, beyond U+10FFFF */
    return n;
}

/* message with every byte that is not valid UTF-8 (a multi-byte character
 * cut by a fixed-size buffer, bytes echoed from the request) as '?': an
 * error must always reach the client as JSON. */
static char *utf8_safe(const char *message)
{
    const unsigned char *p = (const unsigned char *)message;
    char *out = malloc(strlen(message) + 1), *o = out;
    size_t n;

    if (!out)
        return NULL;
    while (*p) {
        n = utf8_seq(p);
        if (n == 0) {
            *o++ = '?';
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return out;
}

char *srv_err_body(const char *code, const char *message)
{
    char *safe = utf8_safe(message ? message : "");
    json_t *j = safe ? json_pack("{s:{s:s,s:s}}", "error", "code", code ? code : "internal",
                                 "message", safe) : NULL;
    char *s;

    free(safe);
    if (!j)
        return NULL;
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}
