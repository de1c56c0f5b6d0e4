/* net.h - the agent's HTTP/1.1 client: one kept-alive connection over a
 * socket, TLS through mbed TLS, for uploads, heartbeats, config polls and
 * registration.
 *
 * Why its own: libcurl brought about thirty shared libraries into the agent
 * (libcrypto, gnutls, krb5, ldap, ssh2, ...) whose relocated pages alone were
 * about 1 MB of the device's private memory, and OpenSSL 3's SSL_CTX another
 * 0.8 MB of heap once TLS was used; the agent needs a small part of HTTP:
 * GET and POST to one server, Content-Length or chunked answers, keep-alive.
 *
 * What it keeps from libcurl's behaviour: certificates verified against the
 * system CAs or a CA file (host name or IP address checked against the
 * certificate), optional pins of the server's public key ("sha256//BASE64",
 * libcurl's CURLOPT_PINNEDPUBLICKEY format, several joined by ';'), a connect
 * timeout and a whole-request timeout, a cap on the bytes sent per second,
 * proxies from http_proxy / https_proxy / all_proxy / no_proxy (CONNECT for
 * https), one connection reused while the server keeps it open (a request
 * that finds a reused connection closed by the server is sent once more on a
 * new one, before any byte of an answer), plain http for tests on loopback.
 *
 * Answers are parsed with bounds first: a head of at most NET_HEAD_MAX bytes,
 * Content-Length of at most 18 digits, chunk sizes of at most 15 hex digits,
 * bodies kept up to the caller's buffer.  The parser functions are public
 * for the unit tests and the fuzz target (tests/fuzz/fuzz_http.c).
 *
 * Functions return 0 or a negative NET_E* code. */
#ifndef PRECURSOR_NET_H
#define PRECURSOR_NET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum net_error {
    NET_OK = 0,
    NET_EINVAL = -1,        /* bad URL or arguments */
    NET_ENOMEM = -2,
    NET_ERESOLVE = -3,      /* host name not resolved */
    NET_ECONNECT = -4,      /* no TCP connection */
    NET_ETLS = -5,          /* handshake failed or certificate not trusted */
    NET_EPIN = -6,          /* the server's key matches no pin */
    NET_ETIMEDOUT = -7,     /* connect or whole-request timeout */
    NET_EABORTED = -8,      /* the caller's abort flag was set */
    NET_EIO = -9,           /* the connection failed or closed mid-request */
    NET_EPROTO = -10,       /* malformed answer */
    NET_ETOOBIG = -11,      /* the body exceeds the caller's buffer */
    NET_EPROXY = -12        /* the proxy refused the tunnel */
};

const char *net_strerror(int err);

#define NET_HEAD_MAX 8192           /* status line and headers of one answer */

/* ---- parsing (no I/O) ---- */

struct net_head {
    int status;                 /* 100..599 */
    int minor;                  /* HTTP/1.<minor> */
    int64_t content_length;     /* -1: none */
    int chunked;                /* Transfer-Encoding: chunked */
    int close;                  /* the server closes after this answer */
    long retry_after;           /* seconds, -1: absent or an HTTP date */
    int64_t date;               /* Date header as Unix seconds, 0: absent or unreadable */
};

/* Length of the head (through the blank line) at the start of buf, 0 when
 * not complete yet, NET_EPROTO when NET_HEAD_MAX bytes hold no blank line. */
long net_head_length(const char *buf, size_t len);

/* Parse a complete head of len bytes (as net_head_length found it).
 * 0 or NET_EPROTO; *h written only on success. */
int net_parse_head(const char *buf, size_t len, struct net_head *h);

/* Seconds in a Retry-After value ("120"); -1 when not a number. */
long net_parse_retry_after(const char *v, size_t len);

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as Unix seconds, 0 if not one. */
int64_t net_parse_date(const char *v, size_t len);

/* Chunked transfer coding, decoded in place. */
struct net_chunked {
    int state;
    uint64_t left;              /* bytes left in the current chunk */
    unsigned digits;            /* hex digits of the size line */
    unsigned line;              /* bytes of an extension or trailer line */
    unsigned trailer;           /* trailer bytes in all */
};

/* Decode buf[0..len): payload bytes are moved to the front of buf (*out of
 * them), *used bytes of input consumed.  Returns 1 when the last chunk and
 * the trailer are complete (input after it is left unconsumed), 0 when more
 * input is needed, NET_EPROTO on malformed input. */
int net_chunked_feed(struct net_chunked *c, uint8_t *buf, size_t len, size_t *used, size_t *out);

/* Is pin one or more "sha256//" + 44 base64 characters, joined by ';'? */
int net_pin_valid(const char *pin);

/* Is url one the client can request: http[s]://host[:port][/path], the port
 * 1..65535, no credentials, no blanks or control characters?  1 or 0. */
int net_url_valid(const char *url);

/* ---- the client ---- */

struct net_client;

/* ca_file: PEM bundle for the server's certificate (NULL: the system's);
 * pin: as net_pin_valid or NULL.  Both copied.  Nothing is opened yet. */
int net_client_new(const char *ca_file, const char *pin, struct net_client **out);
/* Close the connection and free. */
void net_client_free(struct net_client *c);
/* Close the kept connection (the next request opens a new one). */
void net_client_close(struct net_client *c);

struct net_request {
    const char *method;         /* "GET" or "POST" */
    const char *url;            /* http[s]://host[:port]/path */
    const char *headers;        /* extra header lines, each ending "\r\n"; may be NULL */
    const void *body;           /* POST body (Content-Length is always sent) */
    size_t body_len;
    /* body NULL and body_len > 0: the body is read from body_fd at
     * body_offset (pread, so a second attempt can send it again), a piece at a
     * time: a file is sent without holding it in memory. */
    int body_fd;
    long long body_offset;
    uint32_t connect_timeout_s; /* name lookup and TCP connect; 0 -> 10 */
    uint32_t timeout_s;         /* the whole request; 0 -> 60 */
    uint64_t max_send_bps;      /* 0 = unlimited */
    const atomic_bool *abort;   /* set -> NET_EABORTED within ~0.1 s; may be NULL */
    int truncate;               /* keep the start of a body longer than the buffer */
};

struct net_response {
    uint8_t *body;              /* caller's buffer, NUL-terminated after body_len */
    size_t body_cap;            /* its size; at most body_cap - 1 body bytes kept */
    size_t body_len;
    int status;
    int truncated;              /* the body was longer and only its start was kept */
    long retry_after;           /* -1 when absent */
    int64_t date;               /* server's Date (Unix seconds), 0 when absent */
    char err[160];              /* what failed, for logs */
};

/* One request; an answer of any status returns 0 with rs->status set. */
int net_request(struct net_client *c, const struct net_request *rq, struct net_response *rs);

/* How host names are looked up: getaddrinfo, unless a test puts a slow or
 * failing stand-in here to show that connect_timeout_s and the abort flag
 * bound the lookup too.  NULL restores getaddrinfo.  Not thread-safe: set it
 * before requests run. */
struct addrinfo;
typedef int (*net_resolver_fn)(const char *host, const char *port, const struct addrinfo *hints,
                               struct addrinfo **res);
void net_set_resolver(net_resolver_fn fn);

#endif
