/* srv.h - the server's core vocabulary: error codes, the request and
 * response a handler sees, the route table and the run-time configuration.
 *
 * Handlers know nothing of libmicrohttpd: the http module turns a connection
 * into a struct srv_request, calls the handler the route table names, and
 * turns the struct srv_response (or the error code the handler returned) into
 * bytes on the wire.  Every error code maps to one HTTP status and one short
 * machine code through a single table (srv_err_*). */
#ifndef PRECURSOR_SRV_H
#define PRECURSOR_SRV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Error codes: 0 is success, everything else negative.  Keep in step with
 * the table in srv_err.c (a unit test checks every code has an entry). */
enum srv_error {
    SRV_OK = 0,
    SRV_EBADREQ = -1,       /* 400 malformed request */
    SRV_EUNAUTH = -2,       /* 401 missing or invalid credentials */
    SRV_EFORBIDDEN = -3,    /* 403 authenticated but not allowed */
    SRV_ENOTFOUND = -4,     /* 404 no such resource */
    SRV_EMETHOD = -5,       /* 405 route exists, method does not */
    SRV_ECONFLICT = -6,     /* 409 conflicts with what is stored */
    SRV_ETOOBIG = -7,       /* 413 body over the limit */
    SRV_EENVELOPE = -8,     /* 400 envelope malformed (wire_parse) */
    SRV_ESIGNATURE = -9,    /* 403 signature does not verify */
    SRV_EUNKNOWNDEV = -10,  /* 403 device not registered */
    SRV_EFRAME = -11,       /* 400 zstd frame refused or undecodable */
    SRV_EENROLL = -12,      /* 403 enrollment secret wrong or enrollment off */
    SRV_EMEDIA = -13,       /* 415 wrong content type */
    SRV_EUNAVAIL = -14,     /* 503 database (or another dependency) down */
    SRV_EDB = -15,          /* 500 database error */
    SRV_ENOMEM = -16,       /* 500 out of memory */
    SRV_EINTERNAL = -17,    /* 500 a bug */
    SRV_EDEVSTATE = -18,    /* 403 device pending or revoked */
    SRV_ESCHEMA = -19,      /* 500 database schema newer than this binary */
    SRV_EMIGRATION = -20,   /* 500 a migration failed or is unreadable */
    SRV_ERATELIMIT = -21,   /* 429 device over its upload rate (Retry-After) */
    SRV_EOVERLOAD = -22,    /* 503 ingest queue full (Retry-After) */
    SRV_ESEQRANGE = -23,    /* 422 sequence number far ahead of the device's last */
    SRV_EUNPROCESSABLE = -24, /* 422 well-formed but cannot be honoured (e.g. a split) */
    SRV_ECODE_MIN = -24     /* lowest code in use */
};

int srv_err_status(int err);            /* HTTP status; 500 for unknown codes */
const char *srv_err_code(int err);      /* "bad_request", ...; never NULL */
const char *srv_err_message(int err);   /* default human message; never NULL */
/* {"error":{"code":code,"message":message}} as a malloc'd string, or NULL. */
char *srv_err_body(const char *code, const char *message);

#define SRV_MAX_PARAMS 2                /* {id}-style captures per route */
#define SRV_JSON_BODY_MAX (64u * 1024u) /* JSON request bodies */

enum srv_auth {
    SRV_AUTH_NONE,          /* anyone */
    SRV_AUTH_TOKEN,         /* Authorization: Bearer <api token>, or a session */
    SRV_AUTH_DEVICE         /* proven by the handler: signature, enroll secret or token */
};

enum srv_body {
    SRV_BODY_NONE,          /* a body is refused (413 if declared) */
    SRV_BODY_JSON,          /* up to SRV_JSON_BODY_MAX */
    SRV_BODY_ENVELOPE       /* up to --max-body */
};

enum srv_role { SRV_ROLE_NONE = 0, SRV_ROLE_ML, SRV_ROLE_OPERATOR, SRV_ROLE_ADMIN };

struct srv_request;
struct srv_route;

struct srv_config {
    const char *database_url;   /* libpq conninfo or URI */
    const char *version;        /* this build's, for /healthz; static; may be NULL */
    unsigned port;              /* 0: ephemeral (tests) */
    unsigned threads;
    size_t max_body;
    const char *ui_dir;         /* may be NULL */
    const char *schema_dir;     /* where openapi.json lives; may be NULL */
    /* Enrollment secret, borrowed; enrollment refused when NULL. */
    const uint8_t *enroll_secret;
    size_t enroll_secret_len;
    /* schema/openapi.json, loaded at start (borrowed; NULL if not found). */
    const char *openapi;
    size_t openapi_len;
    /* Seconds a connection may stay idle, and a request may take before its
     * body must be arriving at a minimum rate (slow clients); 0: the http
     * layer's default. */
    unsigned conn_timeout_s;
    /* Slow and greedy clients (0: the http layer's defaults, except
     * max_conns_per_ip where 0 is no limit): the headers deadline, open
     * connections in all and per address, bytes of request bodies held at
     * once.  tls is set when the server speaks HTTPS itself. */
    unsigned header_timeout_s;
    unsigned max_conns;
    unsigned max_conns_per_ip;
    size_t body_memory;
    int tls;
    /* The length an envelope says it has, from its first bytes: 0 with *len,
     * 1 when more bytes are needed, -1 when they are no envelope.  Lets the
     * http layer hold an upload to its own header before buffering it. */
    int (*envelope_len)(const uint8_t *prefix, size_t n, uint64_t *len);
    /* What the http layer serves: the route table and how a token route's
     * caller is recognised (bearer token or session); both from the top of
     * the server (server/routes.h), so http knows no module. */
    const struct srv_route *routes;
    size_t nroutes;
    int (*authenticate)(struct srv_request *rq, const char *authorization);
};

typedef const char *(*srv_lookup_fn)(const struct srv_request *rq, const char *key);

struct srv_request {
    const char *method;
    const char *path;
    const char *params[SRV_MAX_PARAMS];     /* captures, in pattern order */
    const uint8_t *body;                    /* borrowed; NULL when empty */
    size_t body_len;
    const struct srv_config *cfg;
    enum srv_role role;                     /* set for SRV_AUTH_TOKEN routes */
    int64_t token_id;
    char token_name[129];                   /* that token's name (api_tokens.name), for who did what */
    srv_lookup_fn header;                   /* NULL when absent */
    srv_lookup_fn query;
    void *conn;                             /* owned by the http layer */
    int64_t user_id;                        /* > 0 when a session cookie authenticated */
    char user_name[65];                     /* that session's username */
    char client_addr[64];                   /* peer address ("" unknown), for rate limits */
    const char *auth_message;               /* static: why authenticate refused; NULL: the
                                             * error code's own message */
};

/* What a handler answers on success.  body is malloc'd and taken by the http
 * layer unless body_static is set.  On error the handler returns a negative
 * code and may set err_message (static or malloc'd per err_message_owned). */
struct srv_response {
    unsigned status;
    const char *content_type;
    char *body;
    size_t body_len;
    int body_static;
    const char *err_message;
    char *err_message_owned;
    char set_cookie[256];       /* sent as Set-Cookie when not empty */
    unsigned retry_after;       /* seconds; sent as Retry-After when > 0 */
    /* Caching: an answer is "no-store" unless the handler names a
     * Cache-Control (static files: "no-cache", kept and revalidated), and
     * carries etag (a quoted validator) when not empty. */
    const char *cache_control;
    char etag[72];
    /* Streamed body (optional, e.g. dataset exports): when stream is set,
     * body is ignored and the http layer pulls the answer in chunks, so
     * memory does not grow with its size.  stream writes up to max bytes at
     * offset pos into buf and returns how many, SRV_STREAM_END when done or
     * SRV_STREAM_ERROR to cut the connection; it runs on the connection's
     * pool thread.  stream_free(stream_ctx) is called exactly once, also when
     * the client goes away.  stream_size: SRV_STREAM_SIZE_UNKNOWN (chunked)
     * or the exact length. */
    ssize_t (*stream)(void *ctx, uint64_t pos, char *buf, size_t max);
    void (*stream_free)(void *ctx);
    void *stream_ctx;
    uint64_t stream_size;
    /* Keys of the request body the handler did not use (srv_json_ignored;
     * a JSON array, owned; NULL: none).  A success answer names them once:
     * as the member "ignored" of a JSON object body, else (a 204) in the
     * SRV_IGNORED_HEADER header.  Error answers leave them out. */
    struct json_t *ignored;
};

/* Bounds of what an ignored-keys list names, so a body of 64 KiB of keys
 * makes neither a long answer nor a long log line: the first
 * SRV_IGNORED_MAX keys, each cut to SRV_IGNORED_KEY_MAX bytes (at a UTF-8
 * character); the header holds as many whole names as fit in
 * SRV_IGNORED_HEADER_MAX bytes. */
#define SRV_IGNORED_MAX 16
#define SRV_IGNORED_KEY_MAX 64
#define SRV_IGNORED_HEADER "Precursor-Ignored-Keys"
#define SRV_IGNORED_HEADER_MAX 1024

#define SRV_STREAM_END ((ssize_t)-1)
#define SRV_STREAM_ERROR ((ssize_t)-2)
#define SRV_STREAM_SIZE_UNKNOWN UINT64_MAX

typedef int (*srv_handler_fn)(struct srv_request *rq, struct srv_response *rs);

/* Who may call a route: the x-roles of its operation in schema/openapi.json
 * (tests/unit/server/check_routes.c holds the two to each other). */
enum srv_roles {
    SRV_ANYONE = 1u << 0,       /* no credentials */
    SRV_DEVICE = 1u << 1,       /* a device, proven by the handler */
    SRV_ML = 1u << 2,           /* a user or token of that role */
    SRV_OPERATOR = 1u << 3,
    SRV_ADMIN = 1u << 4
};
#define SRV_USERS (SRV_ADMIN | SRV_OPERATOR | SRV_ML)

/* A handler that may park its connection instead of its pool thread while it
 * waits for another thread (the upload waiting for the group committer).
 * start answers like a handler, or returns SRV_OK with *job set after
 * calling w->suspend(w->ctx); the other thread later calls w->resume(w->ctx)
 * and the http layer calls finish(job) for the answer, or abandon(job) when
 * the client left in between.  Either frees the job. */
struct srv_waker {
    void (*suspend)(void *ctx);
    void (*resume)(void *ctx);
    void *ctx;
};
struct srv_park {
    int (*start)(struct srv_request *rq, struct srv_response *rs,
                 const struct srv_waker *w, void **job);
    int (*finish)(struct srv_request *rq, struct srv_response *rs, void *job);
    void (*abandon)(void *job);
};

struct srv_route {
    const char *method;
    const char *pattern;        /* "/api/v1/snapshots/{id}/raw" */
    srv_handler_fn handler;     /* the whole answer (also for parking routes) */
    unsigned roles;             /* enum srv_roles bits */
    enum srv_body body;
    const struct srv_park *park; /* NULL: the handler answers on its thread */
};

/* How the caller of a route proves itself, from its roles. */
enum srv_auth srv_route_auth(const struct srv_route *r);

/* Match method and path against a table.  Returns the route and fills
 * params (pointers into caps_buf, which must hold at least strlen(path)+1
 * bytes); on a miss returns NULL with *err SRV_ENOTFOUND or SRV_EMETHOD. */
const struct srv_route *srv_route_match(const struct srv_route *table, size_t n,
                                        const char *method, const char *path,
                                        char *caps_buf, size_t caps_cap,
                                        const char *params[SRV_MAX_PARAMS],
                                        int *err);

/* The methods the table serves on path, as an Allow header's value
 * ("GET, HEAD, POST"; HEAD wherever GET is), into out (NUL-terminated,
 * only whole names when cap is short); caps_buf as for srv_route_match.
 * Returns the length written, 0 when no route has that path. */
size_t srv_route_allow(const struct srv_route *table, size_t n, const char *path,
                       char *caps_buf, size_t caps_cap, char *out, size_t cap);

/* The role gate, then the handler: SRV_EFORBIDDEN (the handler not called)
 * when a token route's roles leave out rq->role. */
int srv_route_allows(const struct srv_route *r, enum srv_role role);
int srv_route_call(const struct srv_route *r, struct srv_request *rq, struct srv_response *rs);

/* The error helper of every handler: sets the message (static), returns
 * err, so `return srv_fail(rs, SRV_EBADREQ, "why");`. */
int srv_fail(struct srv_response *rs, int err, const char *message);
/* The same with a message made for this request (printf; the response owns
 * it). */
int srv_failf(struct srv_response *rs, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Helpers for handlers building responses. */
struct json_t;
/* Serialise j into rs->body (compact, srv_json_dumps) and drop the
 * reference to j. */
int srv_respond_json_take(struct srv_response *rs, unsigned status, struct json_t *j);
/* json_dumps(j, flags) with every real in its shortest form that reads back
 * as the same double: 0.1, not jansson's 0.10000000000000001 (it prints 17
 * digits, which round-trips but shows a client the binary fraction).  A
 * real keeps a '.' or an exponent, so it stays a real.  malloc'd; NULL when
 * memory ran out. */
char *srv_json_dumps(const struct json_t *j, size_t flags);
/* 200 {"items": [...]} for a listing whose statement builds its items as
 * one JSON array (json_agg; items_json is read, not kept).  SRV_ENOMEM when
 * it does not parse. */
int srv_respond_items(struct srv_response *rs, const char *items_json);
/* A copy of len bytes at p as the whole answer (a stored blob, header or
 * column; the caller may free its source at once).  SRV_OK or SRV_ENOMEM. */
int srv_respond_copy(struct srv_response *rs, unsigned status, const char *content_type,
                     const void *p, size_t len);
/* The request body as JSON (duplicate keys refused); NULL when empty or not
 * JSON.  The caller decrefs. */
struct json_t *srv_body_json(const struct srv_request *rq);
/* An optional string member of a JSON object: 0 with *out NULL when absent
 * or null, 0 with *out borrowed from obj when a string of at most max
 * bytes, -1 otherwise. */
int srv_json_opt_string(const struct json_t *obj, const char *key, size_t max,
                        const char **out);
/* Whether key is one of known (NULL-terminated). */
int srv_json_known(const char *key, const char *const *known);
/* The first member of obj not named in known (NULL-terminated), borrowed
 * from obj; NULL when every member is known.  For bodies where a misspelt
 * field would silently change what is made (an enrollment token without
 * its expiry). */
const char *srv_json_unknown_key(const struct json_t *obj, const char *const *known);
/* The keys of body not named in known (NULL-terminated), as a new JSON
 * array of at most SRV_IGNORED_MAX names, or NULL when there are none (or
 * body is no object, or memory ran out).  A known entry "a.b" says the
 * member "a" is an object with a fixed key set, so its members are checked
 * too and named "a.b"; a member without such entries is taken whole.  When
 * some are found they are logged once, at warn, with the route and the
 * caller.  The policy of every JSON body that does not refuse them
 * (schema/openapi.json, info): store the result in rs->ignored. */
struct json_t *srv_json_ignored(const struct srv_request *rq, const struct json_t *body,
                                const char *const *known);
/* The same for a handler that reads its body elsewhere or not at all:
 * parses rq's body (nothing when it is empty or no JSON object) into
 * rs->ignored. */
void srv_body_ignored(const struct srv_request *rq, struct srv_response *rs,
                      const char *const *known);
/* The SRV_IGNORED_HEADER value for ignored: a compact JSON array, ASCII
 * only, of as many whole names as fit in cap - 1 bytes, into out.  0 when
 * not even one fits or ignored is empty. */
size_t srv_ignored_header(const struct json_t *ignored, char *out, size_t cap);
/* For the http layer answering rs without error: a 2xx answer with
 * rs->ignored names them as "ignored" in its JSON object body, or else
 * returns the SRV_IGNORED_HEADER value written into out (0: no header).
 * Drops rs->ignored either way. */
size_t srv_response_take_ignored(struct srv_response *rs, char *out, size_t cap);
/* The demo= query parameter of the listings that leave the demo history out
 * unless asked (queue, snapshots, devices, operational metrics): absent,
 * "exclude", "0" or "false" -> "0"; "include", "1" or "true" -> "1"; "only" -> "2", as
 * the statements' ($N::int = 1 OR demo = ($N::int = 2)) takes it.  0 with
 * *sql_mode static, or SRV_EBADREQ with the message set. */
int srv_query_demo(const struct srv_request *rq, struct srv_response *rs,
                   const char **sql_mode);
void srv_response_release(struct srv_response *rs);

/* The one growable buffer: zero-initialise, append, then take the bytes
 * (always NUL-terminated) or free them.  An allocation failure is sticky:
 * later appends do nothing and srv_buf_take returns NULL (and frees). */
struct srv_buf {
    char *p;
    size_t len, cap;
    int oom;
};
void srv_buf_put(struct srv_buf *b, const void *data, size_t n);
void srv_buf_puts(struct srv_buf *b, const char *s);
void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *srv_buf_take(struct srv_buf *b, size_t *len);     /* len may be NULL */
void srv_buf_free(struct srv_buf *b);

/* Find a project folder: the flag value when given; else rel under the
 * working directory; else rel under each of the first few parents of the
 * running binary (so build/bin/x and build/NAME/bin/x both find the repo
 * root).  marker is a file inside rel that must exist.  0 or -ENOENT. */
int srv_find_dir(const char *flag, const char *rel, const char *marker,
                 char *out, size_t cap);

/* One log line on stderr: time, level, message.  printf-style. */
/* 1 when PRECURSOR_LOG_DEBUG is set (to anything but "" or "0"): lines
 * too many for every day, e.g. each upload's stage timings. */
/* A listing paged by a cursor (the query parameter `cursor`: after,
 * before) refuses an offset: an unknown parameter is ignored elsewhere, but
 * there every page would be the first and a client looping until a short
 * page would never end.  SRV_OK, or SRV_EBADREQ saying how to page. */
int srv_query_no_offset(const struct srv_request *rq, struct srv_response *rs,
                        const char *cursor);

/* A finite real as every JSON answer spells it (schema/openapi.json, info):
 * the shortest decimal that reads back as d, keeping a '.' or an exponent
 * (3.0, 1e-05 as 1e-5); into out, at least 32 bytes; returns its length.
 * For answers written by hand rather than through srv_json_dumps. */
size_t srv_json_real(double d, char *out);

/* The 95% Wilson score interval of hits out of n (z = 1.96); n = 0 gives
 * [0, 1].  Its ends are exact where the formula's are: 0 when no hit, 1
 * when every one (rounding would say 0.9999999999999999). */
void srv_wilson95(uint64_t hits, uint64_t n, double *lo, double *hi);

int srv_log_debug(void);
void srv_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
