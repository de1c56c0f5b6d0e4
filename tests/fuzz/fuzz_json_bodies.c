/* fuzz_json_bodies.c - libFuzzer target for every JSON request body the
 * server accepts.
 *
 * The input is one request body.  It is handed, as the http layer would hand
 * it, to the handler of every route in the route table that takes a JSON
 * body (SRV_BODY_JSON), so a route another module adds is fuzzed as soon as
 * it is in the table, without a change here.  There is no database: db_exec
 * answers SRV_EUNAVAIL, so each handler runs its parsing and validation,
 * which by the house rule come before any query.  The request carries an
 * admin role, a device header with a well-formed signature and "1" for every
 * path parameter, so a handler does not stop at its preamble.
 *
 * What counts as a bug: a crash or sanitizer report, a handler returning a
 * positive code or success without a status, or an error code outside the
 * error table.  Seeds: tests/fuzz/corpus/json_bodies/.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv/srv.h"
#include "server/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 64 zero bytes in base64: well-formed, so a handler reaches its body. */
#define FUZZ_SIG64 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="

static const char *fuzz_header(const struct srv_request *rq, const char *key)
{
    (void)rq;
    if (strcasecmp(key, "X-Precursor-Device") == 0)
        return "fuzz-dev-1";
    if (strcasecmp(key, "X-Precursor-Signature") == 0)
        return FUZZ_SIG64;
    if (strcasecmp(key, "Content-Type") == 0)
        return "application/json";
    return NULL;
}

static const char *fuzz_query(const struct srv_request *rq, const char *key)
{
    (void)rq;
    (void)key;
    return NULL;
}

static const uint8_t fuzz_secret[] = "fuzz-enroll-secret";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct srv_config cfg;
    size_t i, n;
    const struct srv_route *routes = routes_table(&n);

    /* The http layer refuses larger JSON bodies before any handler runs. */
    if (size > SRV_JSON_BODY_MAX)
        return 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.threads = 1;
    cfg.max_body = SRV_JSON_BODY_MAX;
    cfg.enroll_secret = fuzz_secret;
    cfg.enroll_secret_len = sizeof fuzz_secret - 1;
    for (i = 0; i < n; i++) {
        struct srv_request rq;
        struct srv_response rs;
        int rc;

        if (routes[i].body != SRV_BODY_JSON)
            continue;
        memset(&rq, 0, sizeof rq);
        memset(&rs, 0, sizeof rs);
        rq.method = routes[i].method;
        rq.path = routes[i].pattern;
        rq.params[0] = "1";
        rq.params[1] = "1";
        /* A copy per handler: a handler that wrote into its body would
         * otherwise hide from the next one what the fuzzer sent. */
        uint8_t *body = malloc(size ? size : 1);
        if (!body)
            return 0;
        if (size)
            memcpy(body, data, size);
        rq.body = size ? body : NULL;
        rq.body_len = size;
        rq.cfg = &cfg;
        rq.role = SRV_ROLE_ADMIN;
        rq.token_id = 1;
        rq.header = fuzz_header;
        rq.query = fuzz_query;
        rc = srv_route_call(&routes[i], &rq, &rs);
        if (rc > 0 || (rc < 0 && (rc < SRV_ECODE_MIN || srv_err_code(rc)[0] == '\0')))
            abort();
        if (rc == 0 && (rs.status < 100 || rs.status > 599))
            abort();
        if (rc == 0) {
            /* As the http layer answers: the keys the handler ignored go
             * into its JSON answer (which must stay JSON) or a header. */
            char hdr[SRV_IGNORED_HEADER_MAX];
            json_t *back;

            srv_response_take_ignored(&rs, hdr, sizeof hdr);
            if (rs.body && rs.content_type && strstr(rs.content_type, "json")) {
                if (!(back = json_loadb(rs.body, rs.body_len, 0, NULL)))
                    abort();
                json_decref(back);
            }
        }
        srv_response_release(&rs);
        free(body);
    }
    return 0;
}
