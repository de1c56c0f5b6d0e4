/* http.c - see http.h.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers, then once per chunk of body, then once with no data.
 * The first call matches the route and refuses an over-long Content-Length
 * (413) before a byte of the body is read; the body calls copy into a buffer
 * that never grows past the route's limit; the last call authenticates and
 * runs the handler.  One log line per request is written when libmicrohttpd
 * reports the request complete. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/http/http.h"
#include "server/http/http_int.h"
#include "server/srv/srv.h"
#include "server/tls/tls.h"

#define HTTP_CONN_TIMEOUT_S 30      /* default idle timeout and slow-body deadline */
#define HTTP_MIN_BODY_RATE 1024     /* bytes/s a body must average past the deadline */
#define HTTP_CONN_LIMIT 1024
#define HTTP_HEADER_TIMEOUT_S 10    /* headers complete within this of connecting */
#define HTTP_BODY_WINDOW_S 10       /* a body keeps HTTP_MIN_BODY_RATE over each window */
#define HTTP_BODY_MEMORY (256u << 20)
/* Per connection: request line, headers and query parameters.  libmicrohttpd
 * answers 431 (or closes) past it; 64 KiB keeps a 64 KiB header refused and
 * lets hundreds of parameters reach query_refused for a JSON 400. */
#define HTTP_CONN_MEMORY (64u * 1024u)
#define HTTP_QUERY_MAX 32           /* query parameters per request */
#define HTTP_QUERY_VALUE_MAX 1024
#define HTTP_PATH_MAX 2048
#define HTTP_UNAVAIL_RETRY_S 5      /* Retry-After of a 503 while the database is away */

struct http_server {
    struct MHD_Daemon *d;
    const struct srv_config *cfg;
    unsigned port;
    /* Connections parked while their upload waits for the group committer;
     * libmicrohttpd refuses to stop with any left, so http_stop waits.
     * parking counts requests between deciding to park and parking; once
     * stopping is set no request decides to park (it is answered on its
     * thread instead), so parking and parked only fall. */
    atomic_uint parked;
    atomic_uint parking;
    atomic_int stopping;
    struct http_conns conns;
};

struct http_req {
    struct http_server *srv;
    struct MHD_Connection *mc;
    const struct srv_route *route;
    int route_err;
    char allow[64];         /* 405: the path's methods, sent as Allow */
    const char *params[SRV_MAX_PARAMS];
    char *caps;
    uint8_t *body;
    size_t len, cap, limit;
    int overflow;
    int refused;            /* an envelope whose header disagrees with its length */
    size_t discarded;       /* body bytes read past once refused */
    uint64_t declared;      /* Content-Length, when sent */
    size_t reserved;        /* bytes of the body budget held */
    struct http_conn *conn; /* the connection's deadlines */
    int responded;
    void *job;              /* parked (suspended) by the route's start, see srv_park */
    const char *set_cookie; /* from the handler's response (login, logout) */
    unsigned retry_after;   /* from the handler's response, for 429/503 */
    const char *cache_control;  /* from the handler's response; NULL: no-store */
    const char *etag;           /* from the handler's response; NULL: none */
    const char *ignored_keys;   /* SRV_IGNORED_HEADER's value while answering; NULL: none */
    unsigned status;
    size_t out_bytes;
    struct timespec t0;
    char method[16];
    char *path;
};

static const char *lookup_header(const struct srv_request *rq, const char *key)
{
    const struct http_req *r = rq->conn;
    return MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, key);
}

static const char *lookup_query(const struct srv_request *rq, const char *key)
{
    const struct http_req *r = rq->conn;
    return MHD_lookup_connection_value(r->mc, MHD_GET_ARGUMENT_KIND, key);
}

/* What every answer of ours carries.  HTML gets only what its <meta> policy
 * cannot say (framing, base, plugins, form targets), so the page's own
 * policy keeps governing scripts and styles; everything else is data and
 * may load nothing.  HSTS only when we speak TLS ourselves. */
static void add_security_headers(const struct http_req *r, struct MHD_Response *resp,
                                 const char *ctype)
{
    int html = ctype && strncmp(ctype, "text/html", 9) == 0;

    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            html ? "frame-ancestors 'none'; base-uri 'none'; object-src 'none';"
                                   " form-action 'self'"
                                 : "default-src 'none'; frame-ancestors 'none'");
    if (r->srv->cfg->tls)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
}

/* Queue a response; takes body (malloc'd) unless is_static. */
static enum MHD_Result send_bytes(struct http_req *r, unsigned status, const char *ctype,
                                  char *body, size_t len, int is_static)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, body,
                                           is_static ? MHD_RESPMEM_PERSISTENT
                                                     : MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        if (!is_static)
            free(body);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Cache-Control", r->cache_control ? r->cache_control : "no-store");
    if (r->etag)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    add_security_headers(r, resp, ctype);
    if (r->set_cookie)
        MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
    if (r->ignored_keys)
        MHD_add_response_header(resp, SRV_IGNORED_HEADER, r->ignored_keys);
    if (status == 405 && r->allow[0])
        MHD_add_response_header(resp, "Allow", r->allow);
    /* RFC 7235: a 401 names the scheme it wants; Bearer does not make a
     * browser prompt for a password, as Basic would. */
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"precursor\"");
    if (r->retry_after) {
        char ra[16];

        snprintf(ra, sizeof ra, "%u", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    ret = MHD_queue_response(r->mc, status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->out_bytes = len;
    r->responded = 1;
    return ret;
}

/* Queue a streamed response: libmicrohttpd pulls the body through
 * rs->stream and frees its context through rs->stream_free (also when the
 * queueing fails), so the handler's state lives exactly as long as needed. */
static enum MHD_Result send_stream(struct http_req *r, struct srv_response *rs)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    unsigned status = rs->status ? rs->status : 200;

    resp = MHD_create_response_from_callback(rs->stream_size == SRV_STREAM_SIZE_UNKNOWN
                                                 ? MHD_SIZE_UNKNOWN : rs->stream_size,
                                             64 * 1024, rs->stream, rs->stream_ctx,
                                             rs->stream_free);
    if (!resp) {
        if (rs->stream_free)
            rs->stream_free(rs->stream_ctx);
        return MHD_NO;
    }
    if (rs->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rs->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    add_security_headers(r, resp, rs->content_type);
    ret = MHD_queue_response(r->mc, status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->responded = 1;
    return ret;
}

static enum MHD_Result send_error(struct http_req *r, int err, const char *message)
{
    char *body = srv_err_body(srv_err_code(err), message ? message : srv_err_message(err));

    if (!body)
        return MHD_NO;
    return send_bytes(r, (unsigned)srv_err_status(err), "application/json", body,
                      strlen(body), 0);
}

static size_t route_limit(const struct http_req *r)
{
    if (!r->route)
        return 0;
    switch (r->route->body) {
    case SRV_BODY_JSON: return SRV_JSON_BODY_MAX;
    case SRV_BODY_ENVELOPE: return r->srv->cfg->max_body;
    default: return 0;
    }
}

/* 413 naming the route's limit, so the client knows what to cut to. */
static enum MHD_Result send_too_big(struct http_req *r)
{
    char msg[96];

    snprintf(msg, sizeof msg, "request body over this route's limit of %zu bytes", r->limit);
    return send_error(r, SRV_ETOOBIG, msg);
}

struct query_count {
    unsigned n;
    int too_long;
};

static enum MHD_Result count_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct query_count *q = cls;

    (void)kind;
    q->n++;
    if (strlen(key) > HTTP_QUERY_VALUE_MAX || (value && strlen(value) > HTTP_QUERY_VALUE_MAX))
        q->too_long = 1;
    return MHD_YES;
}

/* Every parameter a handler may read is bounded here once, so a handler
 * never sees a truncated value or misses one among hundreds. */
static int query_refused(struct http_req *r, const char **why)
{
    struct query_count q = { 0, 0 };

    MHD_get_connection_values(r->mc, MHD_GET_ARGUMENT_KIND, count_query, &q);
    if (q.n > HTTP_QUERY_MAX)
        *why = "too many query parameters";
    else if (q.too_long)
        *why = "a query parameter is too long";
    else
        return 0;
    return 1;
}

/* Bytes the body may take, held against the server's budget before any is
 * read: the declared length, or the route's limit for a chunked body. */
static enum MHD_Result reserve_body(struct http_req *r, int has_length)
{
    const char *te = MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    size_t want = has_length ? (size_t)r->declared : (te ? r->limit : 0);

    if (want == 0)
        return MHD_YES;
    if (http_body_reserve(&r->srv->conns, want) != SRV_OK) {
        r->retry_after = 1;
        return send_error(r, SRV_EOVERLOAD, "too many request bodies in flight: retry later");
    }
    r->reserved = want;
    return MHD_YES;
}

static enum MHD_Result first_call(struct http_req *r)
{
    const char *cl = MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *why = NULL;

    http_conn_phase(&r->srv->conns, r->conn, HTTP_CONN_BODY);
    r->route = srv_route_match(r->srv->cfg->routes, r->srv->cfg->nroutes, r->method, r->path,
                               r->caps, strlen(r->path) + 1, r->params, &r->route_err);
    if (!r->route && r->route_err == SRV_EMETHOD) {
        char takes[128];

        /* RFC 9110 wants a 405 to say what the resource does take. */
        srv_route_allow(r->srv->cfg->routes, r->srv->cfg->nroutes, r->path, r->caps,
                        strlen(r->path) + 1, r->allow, sizeof r->allow);
        snprintf(takes, sizeof takes, "method not allowed on this route; it takes %s", r->allow);
        return send_error(r, SRV_EMETHOD, takes);
    }
    if (!r->route)
        return send_error(r, r->route_err, NULL);
    if (query_refused(r, &why))
        return send_error(r, SRV_EBADREQ, why);
    r->limit = route_limit(r);
    if (cl) {
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);

        /* libmicrohttpd has parsed it already; refuse before reading. */
        if (end == cl || *end != '\0' || v > r->limit)
            return send_too_big(r);
        r->declared = v;
    }
    return reserve_body(r, cl != NULL);
}

/* An envelope says its own length in its first 16 bytes: one that
 * disagrees with Content-Length, or is no envelope, is refused there and
 * the rest of it is read past, never buffered. */
static void check_envelope_start(struct http_req *r)
{
    uint64_t want;
    int rc;

    if (!r->route || r->route->body != SRV_BODY_ENVELOPE || !r->srv->cfg->envelope_len)
        return;
    rc = r->srv->cfg->envelope_len(r->body, r->len, &want);
    if (rc < 0 || (rc == 0 && r->declared && want != r->declared))
        r->refused = 1;
}

static enum MHD_Result body_chunk(struct http_req *r, const char *data, size_t n)
{
    size_t before = r->len;

    http_conn_body(&r->srv->conns, r->conn, n);
    if (r->refused) {
        /* read past, not kept; an over-long one still answers 413 */
        r->discarded += n;
        if (r->discarded > r->limit - r->len)
            r->overflow = 1;
        return MHD_YES;
    }
    if (r->overflow || n > r->limit - r->len) {
        /* No Content-Length (chunked) and over the limit: drop the rest
         * and answer 413 at the end. */
        r->overflow = 1;
        return MHD_YES;
    }
    if (r->len + n > r->cap) {
        size_t ncap = r->cap ? r->cap : 16384;
        uint8_t *nb;

        /* With a Content-Length (already within the limit and the budget),
         * one buffer of that size: no copies, and pages the client never
         * sends are never touched.  Chunked bodies double as they come. */
        if (!r->cap && r->declared >= r->len + n)
            ncap = (size_t)r->declared;
        while (ncap < r->len + n)
            ncap = ncap > r->limit / 2 ? r->limit : ncap * 2;
        nb = realloc(r->body, ncap);
        if (!nb)
            return MHD_NO;
        r->body = nb;
        r->cap = ncap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    if (before < 16)
        check_envelope_start(r);
    return MHD_YES;
}

/* The peer's address as text (no port), for per-client login limits.  The
 * TCP peer, not X-Forwarded-For: a header is the client's to forge. */
static void client_addr(struct MHD_Connection *mc, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

static void request_init(struct http_req *r, struct srv_request *rq)
{
    memset(rq, 0, sizeof *rq);
    rq->method = r->method;
    rq->path = r->path;
    memcpy(rq->params, r->params, sizeof rq->params);
    rq->body = r->len ? r->body : NULL;
    rq->body_len = r->len;
    rq->cfg = r->srv->cfg;
    rq->header = lookup_header;
    rq->query = lookup_query;
    rq->conn = r;
    client_addr(r->mc, rq->client_addr, sizeof rq->client_addr);
}

/* A parking route (the upload waiting for the group committer) parks the
 * connection, not the thread: a few pool threads then serve every device.
 * suspend runs on this connection's pool thread inside the route's start
 * (under the waited-for party's lock, so its resume always follows); resume
 * runs on the other thread, and libmicrohttpd calls on_request again. */
static void park(void *ctx)
{
    struct http_req *r = ctx;

    atomic_fetch_add(&r->srv->parked, 1);
    MHD_suspend_connection(r->mc);
}

static void unpark(void *ctx)
{
    struct http_req *r = ctx;

    MHD_resume_connection(r->mc);
}

static enum MHD_Result respond(struct http_req *r, int err, struct srv_response *rs);

/* Called again after unpark: the other thread is done with the job. */
static enum MHD_Result parked_call(struct http_req *r)
{
    struct srv_request rq;
    struct srv_response rs;
    void *job = r->job;

    r->job = NULL;
    atomic_fetch_sub(&r->srv->parked, 1);
    request_init(r, &rq);
    memset(&rs, 0, sizeof rs);
    return respond(r, r->route->park->finish(&rq, &rs, job), &rs);
}

/* May this request park?  Not once http_stop has begun: it then waits on
 * its pool thread like any handler.  1 holds a count that the caller drops
 * once start has returned. */
static int park_begin(struct http_server *s)
{
    atomic_fetch_add(&s->parking, 1);
    if (!atomic_load(&s->stopping))
        return 1;
    atomic_fetch_sub(&s->parking, 1);
    return 0;
}

static enum MHD_Result final_call(struct http_req *r)
{
    struct srv_request rq;
    struct srv_response rs;
    int err;

    http_conn_phase(&r->srv->conns, r->conn, HTTP_CONN_BUSY);
    if (r->overflow)
        return send_too_big(r);
    if (r->refused)
        return send_error(r, SRV_EENVELOPE, "the envelope's own length is not its Content-Length");
    request_init(r, &rq);
    memset(&rs, 0, sizeof rs);
    if (srv_route_auth(r->route) == SRV_AUTH_TOKEN) {
        const char *authz = lookup_header(&rq, MHD_HTTP_HEADER_AUTHORIZATION);

        err = r->srv->cfg->authenticate ? r->srv->cfg->authenticate(&rq, authz) : SRV_EUNAUTH;
        if (err != SRV_OK)
            return send_error(r, err, rq.auth_message);
    }
    if (r->route->park && srv_route_allows(r->route, rq.role) && park_begin(r->srv)) {
        const struct srv_waker w = { park, unpark, r };

        err = r->route->park->start(&rq, &rs, &w, &r->job);
        atomic_fetch_sub(&r->srv->parking, 1);
        if (err == SRV_OK && r->job)
            return MHD_YES;     /* parked: answered from parked_call */
    } else {
        err = srv_route_call(r->route, &rq, &rs);
    }
    return respond(r, err, &rs);
}

static enum MHD_Result respond(struct http_req *r, int err, struct srv_response *rs)
{
    char ignored_keys[SRV_IGNORED_HEADER_MAX];
    enum MHD_Result ret;

    if (err != SRV_OK) {
        r->retry_after = rs->retry_after;
        /* The database away: come back in a few seconds (the pool
         * reconnects by itself), as every 503 of ours says when. */
        if (err == SRV_EUNAVAIL && !r->retry_after)
            r->retry_after = HTTP_UNAVAIL_RETRY_S;
        ret = send_error(r, err, rs->err_message_owned ? rs->err_message_owned
                                                       : rs->err_message);
        srv_response_release(rs);
        return ret;
    }
    free(rs->err_message_owned);
    /* Body keys the handler ignored: into its JSON object answer, or else
     * (a 204) into a header (schema/openapi.json, info). */
    if (srv_response_take_ignored(rs, ignored_keys, sizeof ignored_keys) > 0)
        r->ignored_keys = ignored_keys;
    if (rs->stream) {
        ret = send_stream(r, rs);
    } else {
        r->set_cookie = rs->set_cookie[0] ? rs->set_cookie : NULL;
        r->cache_control = rs->cache_control;
        r->etag = rs->etag[0] ? rs->etag : NULL;
        ret = send_bytes(r, rs->status ? rs->status : 200, rs->content_type,
                         rs->body ? rs->body : (char *)"", rs->body ? rs->body_len : 0,
                         rs->body_static || !rs->body);
    }
    r->ignored_keys = NULL;
    return ret;
}

/* Past the connection timeout, a body that has averaged under
 * HTTP_MIN_BODY_RATE is cut (connection closed, nothing handled); a large
 * upload over a slow but working link keeps going. */
static int body_too_slow(const struct http_req *r, size_t n)
{
    unsigned limit = r->srv->cfg->conn_timeout_s ? r->srv->cfg->conn_timeout_s
                                                 : HTTP_CONN_TIMEOUT_S;
    struct timespec now;
    double s;

    clock_gettime(CLOCK_MONOTONIC, &now);
    s = (double)(now.tv_sec - r->t0.tv_sec) + (double)(now.tv_nsec - r->t0.tv_nsec) / 1e9;
    if (s < (double)limit || (double)(r->len + n) >= s * HTTP_MIN_BODY_RATE)
        return 0;
    srv_log("warn", "http %s %s: body at %.0f bytes/s after %.0f s, closing", r->method,
            r->path ? r->path : "-", (double)(r->len + n) / s, s);
    return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_req *r = *con_cls;
    const union MHD_ConnectionInfo *ci;
    size_t plen;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        r->srv = cls;
        r->mc = mc;
        ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->conn = ci ? ci->socket_context : NULL;
        snprintf(r->method, sizeof r->method, "%s", method);
        plen = strnlen(url, HTTP_PATH_MAX + 1);
        r->path = strndup(url, HTTP_PATH_MAX);
        r->caps = malloc(plen + 1);
        if (!r->path || !r->caps)
            return MHD_NO;
        if (plen > HTTP_PATH_MAX)
            return send_error(r, SRV_ENOTFOUND, "path too long");
        return first_call(r);
    }
    if (r->job)
        return parked_call(r);
    if (r->responded) {
        *upload_data_size = 0;  /* discard whatever still arrives */
        return MHD_YES;
    }
    if (*upload_data_size) {
        enum MHD_Result ret;

        /* libmicrohttpd's timeout is for idleness only: a byte a second
         * would hold a connection and its pool slot forever. */
        if (body_too_slow(r, *upload_data_size))
            return MHD_NO;
        ret = body_chunk(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ret;
    }
    return final_call(r);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_req *r = *con_cls;
    struct timespec t1;
    double ms;

    if (!r)
        return;
    http_body_release(&r->srv->conns, r->reserved);
    /* Keep-alive: the next request's headers are on the clock now. */
    http_conn_phase(&r->srv->conns, r->conn, HTTP_CONN_HEADERS);
    if (r->job) {
        /* Resumed, then closed before the handler ran again (the client
         * left): the other thread is done with the job; drop the answer. */
        r->route->park->abandon(r->job);
        r->job = NULL;
        atomic_fetch_sub(&r->srv->parked, 1);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - r->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e6;
    srv_log("info", "http %s %s %u %.1fms in=%zu out=%zu%s", r->method,
            r->path ? r->path : "-", r->status, ms, r->len, r->out_bytes,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
    free(r->body);
    free(r->caps);
    free(r->path);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    const union MHD_ConnectionInfo *ci;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? http_conn_open(&s->conns, ci->connect_fd) : NULL;
    } else {
        http_conn_close(&s->conns, *socket_context);
        *socket_context = NULL;
    }
}

/* libmicrohttpd's own unescaping, except that a %00 in the path or a query
 * value empties it: "/ui/index.html%00.js" must not quietly become
 * "/ui/index.html" (tests/security/catalogue.py). */
static size_t unescape_strict(void *cls, struct MHD_Connection *c, char *s)
{
    size_t n = MHD_http_unescape(s);

    (void)cls;
    (void)c;
    if (strlen(s) != n) {
        s[0] = '\0';
        return 0;
    }
    return n;
}

/* libmicrohttpd's messages are printf formats of its own. */
__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    srv_log("warn", "http: %s", msg);
}

/* Deadlines and the body budget, from the configuration or the defaults. */
static int conns_start(struct http_server *s, const struct srv_config *cfg)
{
    unsigned idle = cfg->conn_timeout_s ? cfg->conn_timeout_s : HTTP_CONN_TIMEOUT_S;

    s->conns.header_timeout_s = cfg->header_timeout_s ? cfg->header_timeout_s
                                                      : HTTP_HEADER_TIMEOUT_S;
    s->conns.body_window_s = idle < HTTP_BODY_WINDOW_S ? idle : HTTP_BODY_WINDOW_S;
    s->conns.min_rate = HTTP_MIN_BODY_RATE;
    s->conns.body_budget = cfg->body_memory ? cfg->body_memory : HTTP_BODY_MEMORY;
    return http_conns_start(&s->conns);
}

int http_start(const struct srv_config *cfg, struct http_server **out)
{
    struct http_server *s = calloc(1, sizeof *s);
    const union MHD_DaemonInfo *info;
    unsigned threads = cfg->threads ? cfg->threads : 4;

    if (!s)
        return SRV_ENOMEM;
    s->cfg = cfg;
    if (conns_start(s, cfg) != SRV_OK) {
        free(s);
        return SRV_EINTERNAL;
    }
    /* HTTPS when server/tls loaded a pair; the array ends at once otherwise. */
    struct MHD_OptionItem tls_opts[] = {
        { tls_cert_pem() ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)tls_cert_pem() },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)tls_key_pem() },
        { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls_priorities() },
        { MHD_OPTION_END, 0, NULL },
    };
    if (tls_cert_pem() && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        srv_log("error", "http: this libmicrohttpd was built without TLS");
        http_conns_stop(&s->conns);
        free(s);
        return SRV_EINTERNAL;
    }
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | (tls_cert_pem() ? MHD_USE_TLS : 0),
                            (uint16_t)cfg->port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_THREAD_POOL_SIZE, threads,
                            MHD_OPTION_CONNECTION_TIMEOUT,
                            cfg->conn_timeout_s ? cfg->conn_timeout_s
                                                : (unsigned)HTTP_CONN_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_LIMIT,
                            cfg->max_conns ? cfg->max_conns : (unsigned)HTTP_CONN_LIMIT,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_conns_per_ip,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape_strict, NULL,
                            MHD_OPTION_ARRAY, tls_opts,
                            MHD_OPTION_END);
    if (!s->d) {
        srv_log("error", "http: cannot listen on port %u", cfg->port);
        http_conns_stop(&s->conns);
        free(s);
        return SRV_EINTERNAL;
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return SRV_OK;
}

unsigned http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    unsigned i;

    if (!s)
        return;
    /* Let parked uploads be answered first: the committer still runs (it
     * stops after us) and resumes each, and no new upload parks.  (No
     * MHD_quiesce_daemon: with epoll and a thread pool it races a worker
     * that takes the listen socket out of its epoll set itself, and
     * libmicrohttpd aborts.) */
    atomic_store(&s->stopping, 1);
    for (i = 0; (atomic_load(&s->parking) || atomic_load(&s->parked)) && i < 3000; i++) {
        struct timespec ms10 = { 0, 10 * 1000 * 1000 };

        nanosleep(&ms10, NULL);
    }
    if (atomic_load(&s->parked))
        srv_log("error", "http: %u upload(s) still waiting at stop", atomic_load(&s->parked));
    MHD_stop_daemon(s->d);
    http_conns_stop(&s->conns);
    free(s);
}
