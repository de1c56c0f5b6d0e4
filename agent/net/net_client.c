/* net_client.c - one kept-alive HTTP/1.1 connection, plain or TLS (mbed
 * TLS), with deadlines, an abort flag, a send-rate cap and proxies.
 *
 * The socket is non-blocking; every read and write waits in poll() slices of
 * at most 100 ms, so the whole-request deadline and the caller's abort flag
 * are seen however the peer behaves.  mbed TLS reads and writes through the
 * same two functions (its BIO callbacks), so plain and TLS connections share
 * every timeout.  The CA chain is parsed for a handshake and freed after it:
 * the system bundle is about 0.45 MB once parsed, and a kept-alive
 * connection needs it only at its start. */
#include "agent/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define HOST_MAX 255
#define IO_BUF 4096                 /* socket reads; TLS records are buffered by mbed TLS */
#define SLICE_MS 100                /* longest poll() before the abort flag is looked at */
#define EARLY_ANSWER 1              /* send_body: the server answered before the body's end */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define SYSTEM_CA_DIR "/etc/ssl/certs"

struct url {
    int tls;
    char host[HOST_MAX + 1];        /* without brackets */
    char port[8];
    const char *path;               /* into the URL string, "/" when empty */
    char auth[128];                 /* proxy only: "user:pass" from the URL */
};

struct net_client {
    char *ca_file, *pin;
    int fd;                         /* -1: no connection */
    int tls;                        /* TLS set up on fd */
    char ident[2 * HOST_MAX + 64];  /* what fd is connected to, for reuse */
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_x509_crt ca;
    /* per request */
    int64_t deadline_ms;
    const atomic_bool *abort;
    int fail;                       /* NET_E* of the last I/O failure */
    uint8_t in[IO_BUF];
    size_t in_pos, in_len;
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- URLs and proxies ---- */

static int parse_url(const char *s, struct url *u, int want_path)
{
    const char *h, *he, *hostend, *at;
    size_t hl;

    memset(u, 0, sizeof *u);
    if (strncasecmp(s, "https://", 8) == 0) {
        u->tls = 1;
        s += 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        s += 7;
    } else {
        return NET_EINVAL;
    }
    he = s + strcspn(s, "/?#");
    at = memchr(s, '@', (size_t)(he - s));
    if (at) {
        if (want_path || (size_t)(at - s) >= sizeof u->auth)
            return NET_EINVAL;  /* credentials only in a proxy's URL */
        memcpy(u->auth, s, (size_t)(at - s));
        s = at + 1;
    }
    if (*s == '[') {
        h = s + 1;
        hostend = memchr(h, ']', (size_t)(he - h));
        if (!hostend)
            return NET_EINVAL;
        s = hostend + 1;
    } else {
        h = s;
        hostend = memchr(s, ':', (size_t)(he - s));
        if (!hostend)
            hostend = he;
        s = hostend;
    }
    hl = (size_t)(hostend - h);
    if (hl == 0 || hl > HOST_MAX)
        return NET_EINVAL;
    memcpy(u->host, h, hl);
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)u->host[i] <= ' ' || u->host[i] == '/' || u->host[i] == '\\')
            return NET_EINVAL;
    if (*s == ':') {
        size_t pl = (size_t)(he - s - 1);
        if (pl == 0 || pl > 5 || strspn(s + 1, "0123456789") < pl)
            return NET_EINVAL;
        memcpy(u->port, s + 1, pl);
        if (atoi(u->port) < 1 || atoi(u->port) > 65535)
            return NET_EINVAL;
    } else if (s != he) {
        return NET_EINVAL;
    } else {
        strcpy(u->port, u->tls ? "443" : "80");
    }
    u->path = *he ? he : "/";
    for (const char *q = u->path; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return NET_EINVAL;  /* a request line cannot carry them */
    return 0;
}

int net_url_valid(const char *url)
{
    struct url u;

    return url != NULL && parse_url(url, &u, 1) == 0;
}

static const char *env_either(const char *a, const char *b)
{
    const char *v = getenv(a);

    if ((!v || !*v) && b)
        v = getenv(b);
    return v && *v ? v : NULL;
}

/* no_proxy: "*" or host names and suffixes separated by commas, as libcurl reads it. */
static int no_proxy_for(const char *host)
{
    const char *np = env_either("no_proxy", "NO_PROXY");
    size_t hl = strlen(host);

    if (!np)
        return 0;
    while (*np) {
        size_t n;
        const char *e;

        while (*np == ' ' || *np == ',')
            np++;
        e = np + strcspn(np, ", ");
        n = (size_t)(e - np);
        if (n == 1 && *np == '*')
            return 1;
        if (n && *np == '.') {
            np++;
            n--;
        }
        if (n && n <= hl && strncasecmp(host + hl - n, np, n) == 0 &&
            (n == hl || host[hl - n - 1] == '.'))
            return 1;
        np = e;
    }
    return 0;
}

/* The proxy for a target, 1 if there is one (*px filled), 0 if none, <0 bad proxy URL.
 * As libcurl: the lower-case http_proxy only (HTTP_PROXY can be set by a CGI
 * client), https_proxy or HTTPS_PROXY, then all_proxy or ALL_PROXY. */
static int proxy_for(const struct url *target, struct url *px)
{
    const char *v = target->tls ? env_either("https_proxy", "HTTPS_PROXY") : getenv("http_proxy");

    if (!v || !*v)
        v = env_either("all_proxy", "ALL_PROXY");
    if (!v || no_proxy_for(target->host))
        return 0;
    if (!strstr(v, "://")) {
        char tmp[512];

        if (snprintf(tmp, sizeof tmp, "http://%s", v) >= (int)sizeof tmp)
            return NET_EINVAL;
        if (parse_url(tmp, px, 0) != 0)
            return NET_EINVAL;
    } else if (parse_url(v, px, 0) != 0 || px->tls) {
        return NET_EINVAL;      /* a proxy spoken to over TLS is not supported */
    }
    return 1;
}

/* ---- socket I/O with deadlines ---- */

/* Wait for fd to be ready for ev; 0, or NET_ETIMEDOUT / NET_EABORTED / NET_EIO. */
static int wait_fd(struct net_client *c, int fd, short ev, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = ev };
        int64_t left = deadline - mono_ms();
        int r;

        if (c->abort && atomic_load(c->abort))
            return NET_EABORTED;
        if (left <= 0)
            return NET_ETIMEDOUT;
        r = poll(&pfd, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return NET_EIO;
    }
}

/* Move some bytes through the socket, reading into rbuf or writing wbuf
 * (the other NULL), waiting for readiness up to the deadline: >0, 0 at the
 * peer's close (reading), <0 NET_E*. */
static long sock_io(struct net_client *c, void *rbuf, const void *wbuf, size_t len)
{
    for (;;) {
        ssize_t n = rbuf ? recv(c->fd, rbuf, len, 0) : send(c->fd, wbuf, len, MSG_NOSIGNAL);
        int w;

        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return NET_EIO;
        if ((w = wait_fd(c, c->fd, rbuf ? POLLIN : POLLOUT, c->deadline_ms)) != 0)
            return w;
    }
}

static long sock_read(struct net_client *c, void *buf, size_t len)
{
    return sock_io(c, buf, NULL, len);
}

static long sock_write(struct net_client *c, const void *buf, size_t len)
{
    return sock_io(c, NULL, buf, len);
}

/* mbed TLS's BIO: the same waits; the reason is kept in c->fail. */
static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct net_client *c = ctx;
    long n = sock_read(c, buf, len);

    if (n < 0) {
        c->fail = (int)n;
        return MBEDTLS_ERR_NET_RECV_FAILED;
    }
    return (int)n;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct net_client *c = ctx;
    long n = sock_write(c, buf, len);

    if (n < 0) {
        c->fail = (int)n;
        return MBEDTLS_ERR_NET_SEND_FAILED;
    }
    return (int)n;
}

/* Read through TLS or not: >0, 0 at a clean end, <0 NET_E*. */
static long conn_read(struct net_client *c, void *buf, size_t len)
{
    if (!c->tls) {
        long n = sock_read(c, buf, len);
        if (n < 0)
            c->fail = (int)n;
        return n;
    }
    for (;;) {
        int r = mbedtls_ssl_read(&c->ssl, buf, len);

        if (r >= 0)
            return r;
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF)
            return 0;
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (!c->fail)
            c->fail = NET_EIO;
        return c->fail;
    }
}

static int conn_write_all(struct net_client *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        long n;

        if (c->tls) {
            int r = mbedtls_ssl_write(&c->ssl, p, len);
            if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
                continue;
            n = r >= 0 ? r : (c->fail ? c->fail : NET_EIO);
        } else {
            n = sock_write(c, p, len);
        }
        if (n < 0) {
            c->fail = (int)n;
            return (int)n;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One buffered byte source for the parser. */
static long buf_fill(struct net_client *c)
{
    long n;

    if (c->in_pos < c->in_len)
        return (long)(c->in_len - c->in_pos);
    c->in_pos = c->in_len = 0;
    n = conn_read(c, c->in, sizeof c->in);
    if (n > 0)
        c->in_len = (size_t)n;
    return n;
}

void net_client_close(struct net_client *c)
{
    if (c->tls) {
        mbedtls_ssl_free(&c->ssl);
        c->tls = 0;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->ident[0] = '\0';
    c->in_pos = c->in_len = 0;
}

/* ---- name lookup that a deadline and the abort flag can cut short ----
 *
 * getaddrinfo() blocks for as long as the resolver likes (resolv.conf's
 * timeouts and attempts: 10 s and more with a dead name server), and nothing
 * interrupts it.  A name is therefore looked up on a thread of its own while
 * the caller waits in SLICE_MS slices; a caller that gives up leaves, and the
 * lookup's thread frees what it found when it ends.  An address given as
 * digits needs no lookup and no thread. */

static net_resolver_fn resolver = getaddrinfo;

void net_set_resolver(net_resolver_fn fn)
{
    resolver = fn ? fn : getaddrinfo;
}

struct lookup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                       /* the caller and the thread; last one out frees */
    int done, rc;
    struct addrinfo *res;
    net_resolver_fn fn;
    char host[HOST_MAX + 1], port[8];
};

static void lookup_unref(struct lookup *l)
{
    int last;

    pthread_mutex_lock(&l->mu);
    last = --l->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (!last)
        return;
    if (l->res)
        freeaddrinfo(l->res);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void *lookup_run(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = l->fn(l->host, l->port, &hints, &res);

    pthread_mutex_lock(&l->mu);
    l->rc = rc;
    l->res = rc == 0 ? res : NULL;
    l->done = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    lookup_unref(l);
    return NULL;
}

/* The finished lookup's answer, handed to the caller; l is released. */
static int resolve_result(struct lookup *l, const char *host, struct addrinfo **out,
                          char *err, size_t errlen)
{
    int rc = l->rc;

    *out = l->res;
    l->res = NULL;
    if (rc != 0)
        snprintf(err, errlen, "%.64s: %s", host, gai_strerror(rc));
    lookup_unref(l);
    return rc == 0 ? 0 : NET_ERESOLVE;
}

/* 0 with *out (freeaddrinfo it), NET_ERESOLVE, NET_ETIMEDOUT or NET_EABORTED. */
static int resolve(struct net_client *c, const char *host, const char *port, int64_t deadline,
                   struct addrinfo **out, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct lookup *l;
    pthread_attr_t attr;
    pthread_t th;
    int rc = 0;

    if (getaddrinfo(host, port, &hints, out) == 0)
        return 0;
    if (strlen(host) > HOST_MAX || strlen(port) >= sizeof l->port || !(l = calloc(1, sizeof *l))) {
        snprintf(err, errlen, "%.64s: cannot look up", host);
        return NET_ERESOLVE;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->refs = 2;
    l->fn = resolver;
    strcpy(l->host, host);
    strcpy(l->port, port);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 128 * 1024);   /* glibc's lookups need well under this */
    if (pthread_create(&th, &attr, lookup_run, l) != 0) {
        pthread_attr_destroy(&attr);
        lookup_run(l);              /* no thread to spare: look up here, uninterruptibly */
        return resolve_result(l, host, out, err, errlen);
    }
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&l->mu);
    while (!l->done) {
        int64_t left = deadline - mono_ms();
        struct timespec ts;

        if (c->abort && atomic_load(c->abort)) {
            rc = NET_EABORTED;
            break;
        }
        if (left <= 0) {
            rc = NET_ETIMEDOUT;
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        left = left < SLICE_MS ? left : SLICE_MS;
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        ts.tv_sec += (time_t)(left / 1000) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    pthread_mutex_unlock(&l->mu);
    if (rc != 0) {
        snprintf(err, errlen, "looking up %.64s: %s", host, net_strerror(rc));
        lookup_unref(l);
        return rc;
    }
    return resolve_result(l, host, out, err, errlen);
}

static int tcp_connect(struct net_client *c, const char *host, const char *port,
                       int64_t connect_deadline, char *err, size_t errlen)
{
    int64_t dl = connect_deadline < c->deadline_ms ? connect_deadline : c->deadline_ms;
    struct addrinfo *res, *a;
    int rc, last = NET_ECONNECT;

    rc = resolve(c, host, port, dl, &res, err, errlen);
    if (rc != 0)
        return rc;
    for (a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        int one = 1, soerr = 0;
        socklen_t sl = sizeof soerr;

        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            snprintf(err, errlen, "connect %.64s:%s: %s", host, port, strerror(errno));
            close(fd);
            continue;
        }
        c->fd = fd;
        rc = wait_fd(c, fd, POLLOUT, dl);
        if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)) {
            snprintf(err, errlen, "connect %.64s:%s: %s", host, port, strerror(soerr ? soerr : errno));
            rc = NET_ECONNECT;
        }
        if (rc == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(res);
            return 0;
        }
        c->fd = -1;
        close(fd);
        last = rc;
        if (rc == NET_EABORTED || rc == NET_ETIMEDOUT) {
            snprintf(err, errlen, "connect %.64s:%s: %s", host, port, net_strerror(rc));
            break;
        }
    }
    freeaddrinfo(res);
    return last;
}

/* Read one head from the connection into hb (NET_HEAD_MAX + 1); the bytes
 * after it stay in the input buffer.  *got: whether any byte came. */
static int read_head(struct net_client *c, char *hb, struct net_head *h, int *got)
{
    size_t hl = 0;

    for (;;) {
        long n = buf_fill(c), k;
        size_t take;

        if (n < 0)
            return (int)n;
        if (n == 0)
            return hl ? NET_EPROTO : NET_EIO;
        *got = 1;
        /* Copy byte ranges up to the end of a head, never past it. */
        take = (size_t)n;
        if (take > NET_HEAD_MAX - hl)
            take = NET_HEAD_MAX - hl;
        memcpy(hb + hl, c->in + c->in_pos, take);
        k = net_head_length(hb, hl + take);
        if (k < 0)
            return NET_EPROTO;
        if (k > 0) {
            c->in_pos += (size_t)k - hl;
            return net_parse_head(hb, (size_t)k, h);
        }
        c->in_pos += take;
        hl += take;
    }
}

/* ---- TLS ---- */

static int rng(void *ctx, unsigned char *out, size_t len)
{
    randombytes_buf(out, len);
    return 0;
}

static int load_ca(struct net_client *c, char *err, size_t errlen)
{
    int r;

    mbedtls_x509_crt_init(&c->ca);
    if (c->ca_file) {
        r = mbedtls_x509_crt_parse_file(&c->ca, c->ca_file);
    } else {
        r = mbedtls_x509_crt_parse_file(&c->ca, SYSTEM_CA_FILE);
        if (r < 0)
            r = mbedtls_x509_crt_parse_path(&c->ca, SYSTEM_CA_DIR);
    }
    /* A positive count is certificates that did not parse: the others serve. */
    if (r < 0 || c->ca.version == 0) {
        char e[96];
        mbedtls_strerror(r, e, sizeof e);
        snprintf(err, errlen, "CA file %s: %s", c->ca_file ? c->ca_file : SYSTEM_CA_FILE, e);
        mbedtls_x509_crt_free(&c->ca);
        return NET_ETLS;
    }
    return 0;
}

/* The iPAddress entries of the certificate's subjectAltName (mbed TLS 2.28
 * lists only its DNS names): 1 if one equals ip (4 or 16 bytes). */
static int san_has_ip(const mbedtls_x509_crt *crt, const uint8_t *ip, size_t iplen)
{
    unsigned char *p = crt->v3_ext.p, *end = p + crt->v3_ext.len;
    size_t len;

    if (!p || p == end)
        return 0;
    /* v3_ext is the extensions' SEQUENCE (mbed TLS 2.28 skips the [3] around it;
     * take either) */
    if (*p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3) &&
        mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONTEXT_SPECIFIC |
                             MBEDTLS_ASN1_CONSTRUCTED | 3) != 0)
        return 0;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return 0;
    end = p + len;
    while (p < end) {
        unsigned char *ext_end, *q;
        mbedtls_x509_buf oid;
        int critical = 0;

        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
            return 0;
        ext_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0)
            return 0;
        oid.p = p;
        p += oid.len;
        (void)mbedtls_asn1_get_bool(&p, ext_end, &critical);
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
            return 0;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) == 0) {
            unsigned char *se;

            q = p;
            if (mbedtls_asn1_get_tag(&q, p + len, &len,
                                     MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
                return 0;
            se = q + len;
            while (q < se) {
                unsigned char tag = *q++;
                size_t gl;

                if (mbedtls_asn1_get_len(&q, se, &gl) != 0)
                    return 0;
                if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && gl == iplen &&
                    memcmp(q, ip, iplen) == 0)
                    return 1;
                q += gl;
            }
            return 0;
        }
        p = ext_end;
    }
    return 0;
}

/* Does the SHA-256 of the certificate's SubjectPublicKeyInfo match a pin? */
static int pin_matches(const char *pins, const mbedtls_x509_crt *crt)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    const char *p = pins;

    crypto_hash_sha256(h, crt->pk_raw.p, crt->pk_raw.len);
    sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
    for (;;) {
        p += 8;                 /* "sha256//", checked by net_pin_valid */
        if (strncmp(p, b64, 44) == 0)
            return 1;
        p += 44;
        if (*p++ != ';')
            return 0;
    }
}

static int tls_start(struct net_client *c, const char *host, char *err, size_t errlen)
{
    uint8_t ip[16];
    size_t iplen = 0;
    const mbedtls_x509_crt *peer;
    uint32_t flags;
    int r, rc;

    if (inet_pton(AF_INET, host, ip) == 1)
        iplen = 4;
    else if (inet_pton(AF_INET6, host, ip) == 1)
        iplen = 16;
    if ((rc = load_ca(c, err, errlen)) != 0)
        return rc;
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
    mbedtls_ssl_init(&c->ssl);
    c->tls = 1;
    if ((r = mbedtls_ssl_setup(&c->ssl, &c->conf)) != 0 ||
        /* A name is checked by mbed TLS (and sent as SNI); an address below. */
        (!iplen && (r = mbedtls_ssl_set_hostname(&c->ssl, host)) != 0)) {
        rc = r == MBEDTLS_ERR_SSL_ALLOC_FAILED ? NET_ENOMEM : NET_ETLS;
        snprintf(err, errlen, "TLS set-up failed (-0x%04x)", (unsigned)-r);
        goto out;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    c->fail = 0;
    while ((r = mbedtls_ssl_handshake(&c->ssl)) != 0) {
        char e[100];

        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (c->fail == NET_ETIMEDOUT || c->fail == NET_EABORTED) {
            rc = c->fail;
            snprintf(err, errlen, "TLS handshake with %.64s: %s", host, net_strerror(rc));
            goto out;
        }
        flags = mbedtls_ssl_get_verify_result(&c->ssl);
        if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags) {
            char v[160];
            mbedtls_x509_crt_verify_info(v, sizeof v, "", flags);
            v[strcspn(v, "\n")] = '\0';
            snprintf(err, errlen, "TLS: certificate of %.64s not trusted: %.60s", host, v);
        } else {
            mbedtls_strerror(r, e, sizeof e);
            snprintf(err, errlen, "TLS handshake with %.64s: %.60s", host, e);
        }
        rc = NET_ETLS;
        goto out;
    }
    peer = mbedtls_ssl_get_peer_cert(&c->ssl);
    if (!peer) {
        snprintf(err, errlen, "TLS: %.64s sent no certificate", host);
        rc = NET_ETLS;
    } else if (iplen && !san_has_ip(peer, ip, iplen)) {
        snprintf(err, errlen, "TLS: the certificate does not name %.64s", host);
        rc = NET_ETLS;
    } else if (c->pin && !pin_matches(c->pin, peer)) {
        snprintf(err, errlen, "TLS: the public key of %.64s matches no --pin-sha256", host);
        rc = NET_EPIN;
    } else {
        rc = 0;
    }
out:
    /* The chain was needed for the handshake only (renegotiation is off). */
    mbedtls_ssl_conf_ca_chain(&c->conf, NULL, NULL);
    mbedtls_x509_crt_free(&c->ca);
    /* The parsed chain and the handshake's state were many small blocks
     * among longer-lived ones: give the whole pages they leave free back to
     * the kernel (glibc trims only the heap's top by itself). */
    malloc_trim(0);
    return rc;
}

/* ---- connection set-up ---- */

static int open_conn(struct net_client *c, const struct url *u, const struct url *px,
                     uint32_t connect_timeout_s, char *err, size_t errlen)
{
    int64_t cdl = mono_ms() + (int64_t)connect_timeout_s * 1000;
    int rc;

    rc = px ? tcp_connect(c, px->host, px->port, cdl, err, errlen)
            : tcp_connect(c, u->host, u->port, cdl, err, errlen);
    if (rc != 0)
        return rc;
    if (px && u->tls) {
        /* A tunnel: CONNECT host:port, then TLS to the server through it. */
        char auth[256] = "", req[2 * HOST_MAX + sizeof auth + 128], hb[NET_HEAD_MAX + 1];
        const char *h6 = strchr(u->host, ':') ? "[" : "", *h6e = *h6 ? "]" : "";
        struct net_head h;
        int got = 0, n;

        if (px->auth[0]) {
            char b64[sodium_base64_ENCODED_LEN(sizeof px->auth, sodium_base64_VARIANT_ORIGINAL)];
            sodium_bin2base64(b64, sizeof b64, (const unsigned char *)px->auth, strlen(px->auth),
                              sodium_base64_VARIANT_ORIGINAL);
            n = snprintf(auth, sizeof auth, "Proxy-Authorization: Basic %s\r\n", b64);
            if (n < 0 || (size_t)n >= sizeof auth) {
                snprintf(err, errlen, "proxy %.64s: credentials too long", px->host);
                return NET_EINVAL;
            }
        }
        /* Sized for two hosts of HOST_MAX and the credentials: a truncated
         * request would be a different request, so it is refused instead. */
        n = snprintf(req, sizeof req, "CONNECT %s%s%s:%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n%s\r\n",
                     h6, u->host, h6e, u->port, h6, u->host, h6e, u->port, auth);
        if (n < 0 || (size_t)n >= sizeof req) {
            snprintf(err, errlen, "proxy %.64s: CONNECT request too long", px->host);
            return NET_EINVAL;
        }
        if ((rc = conn_write_all(c, req, strlen(req))) != 0 ||
            (rc = read_head(c, hb, &h, &got)) != 0) {
            snprintf(err, errlen, "proxy %.64s: %s", px->host, net_strerror(rc));
            return rc;
        }
        if (h.status < 200 || h.status > 299 || c->in_pos != c->in_len) {
            snprintf(err, errlen, "proxy %.64s answered CONNECT with %d", px->host, h.status);
            return NET_EPROXY;
        }
    }
    if (u->tls)
        return tls_start(c, u->host, err, errlen);
    return 0;
}

/* Has the server closed the kept connection (or sent what nobody asked)? */
static int conn_stale(struct net_client *c)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

    return c->in_pos != c->in_len || poll(&pfd, 1, 0) != 0;
}

/* ---- the request ---- */

static int send_body(struct net_client *c, const struct net_request *rq)
{
    const uint8_t *p = rq->body;
    uint8_t piece[16384];
    size_t left = rq->body_len, chunk = sizeof piece, sent = 0;
    int64_t t0 = mono_ms();
    int rc;

    if (rq->max_send_bps) {
        /* About ten writes a second, so the rate holds over short spans too. */
        uint64_t c10 = rq->max_send_bps / 10;
        chunk = c10 < 1 ? 1 : c10 < chunk ? (size_t)c10 : chunk;
    }
    while (left > 0) {
        size_t k = left < chunk ? left : chunk;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

        /* An answer before the whole body (413 for a body over the server's
         * limit, sent before it reads the body) ends the sending, as libcurl
         * does: the answer is read, and the connection is not reused. */
        if (poll(&pfd, 1, 0) > 0)
            return EARLY_ANSWER;
        if (rq->max_send_bps) {
            /* Wait until sending k more keeps the average at the cap. */
            int64_t due = t0 + (int64_t)((sent + k) * 1000 / rq->max_send_bps);
            for (;;) {
                int64_t now = mono_ms(), wait = due - now;

                if (c->abort && atomic_load(c->abort))
                    return NET_EABORTED;
                if (wait <= 0)
                    break;
                if (now >= c->deadline_ms)
                    return NET_ETIMEDOUT;
                if (wait > SLICE_MS)
                    wait = SLICE_MS;
                poll(NULL, 0, (int)wait);
            }
        }
        if (!rq->body) {
            ssize_t r = pread(rq->body_fd, piece, k, (off_t)(rq->body_offset + (long long)sent));
            if (r != (ssize_t)k)
                return NET_EIO;     /* the file is shorter than promised or unreadable */
            rc = conn_write_all(c, piece, k);
        } else {
            rc = conn_write_all(c, p, k);
            p += k;
        }
        if (rc != 0)
            return rc;
        left -= k;
        sent += k;
    }
    return 0;
}

/* Keep body bytes in the caller's buffer (or count them past its end). */
static int keep(const struct net_request *rq, struct net_response *rs, const uint8_t *p, size_t n)
{
    size_t room = rs->body_cap ? rs->body_cap - 1 - rs->body_len : 0;

    if (n > room) {
        if (!rq->truncate)
            return NET_ETOOBIG;
        rs->truncated = 1;
        n = room;
    }
    if (n == 0)
        return 0;
    memcpy(rs->body + rs->body_len, p, n);
    rs->body_len += n;
    if (rs->body_cap)
        rs->body[rs->body_len] = '\0';
    return 0;
}

static int read_body(struct net_client *c, const struct net_request *rq, const struct net_head *h,
                     struct net_response *rs)
{
    struct net_chunked ch = { 0 };
    uint64_t left = h->content_length >= 0 ? (uint64_t)h->content_length : 0;
    int rc;

    if (h->status == 204 || h->status == 304 || (h->content_length == 0 && !h->chunked))
        return 0;
    for (;;) {
        long n = buf_fill(c);
        uint8_t *p = c->in + c->in_pos;
        size_t avail;

        if (n < 0)
            return (int)n;
        avail = (size_t)n;
        if (n == 0) {
            /* A clean end is the body's end only when nothing framed it. */
            return !h->chunked && h->content_length < 0 ? 0 : NET_EIO;
        }
        if (h->chunked) {
            size_t used, out;
            int done = net_chunked_feed(&ch, p, avail, &used, &out);

            if (done < 0)
                return NET_EPROTO;
            c->in_pos += used;
            if ((rc = keep(rq, rs, p, out)) != 0)
                return rc;
            if (done)
                return 0;
        } else if (h->content_length >= 0) {
            size_t k = avail < left ? avail : (size_t)left;

            c->in_pos += k;
            if ((rc = keep(rq, rs, p, k)) != 0)
                return rc;
            left -= k;
            if (left == 0)
                return 0;
        } else {
            c->in_pos += avail;
            if ((rc = keep(rq, rs, p, avail)) != 0)
                return rc;
        }
    }
}

static int once(struct net_client *c, const struct net_request *rq, const struct url *u,
                const struct url *px, struct net_response *rs, int *reused, int *got)
{
    char ident[sizeof c->ident], head[3 * HOST_MAX + 1024], auth[256] = "";
    char hb[NET_HEAD_MAX + 1];
    const char *h6 = strchr(u->host, ':') ? "[" : "", *h6e = *h6 ? "]" : "";
    struct net_head h;
    int rc, n, early;

    snprintf(ident, sizeof ident, "%d|%s|%s|%s|%s", u->tls, u->host, u->port,
             px ? px->host : "", px ? px->port : "");
    *reused = 0;
    *got = 0;
    if (c->fd >= 0 && (strcmp(ident, c->ident) != 0 || conn_stale(c)))
        net_client_close(c);
    if (c->fd >= 0) {
        *reused = 1;
    } else {
        rc = open_conn(c, u, px, rq->connect_timeout_s ? rq->connect_timeout_s : 10, rs->err,
                       sizeof rs->err);
        if (rc != 0)
            return rc;
        snprintf(c->ident, sizeof c->ident, "%s", ident);
    }
    if (px && !u->tls && px->auth[0]) {
        char b64[sodium_base64_ENCODED_LEN(sizeof px->auth, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)px->auth, strlen(px->auth),
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(auth, sizeof auth, "Proxy-Authorization: Basic %s\r\n", b64);
    }
    /* Through a plain proxy the request line carries the absolute URL. */
    n = snprintf(head, sizeof head,
                 "%s %s%s%s%s%s%s%s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n%s"
                 "User-Agent: precursor-agent\r\nAccept: */*\r\n",
                 rq->method, px && !u->tls ? "http://" : "", px && !u->tls ? h6 : "",
                 px && !u->tls ? u->host : "", px && !u->tls ? h6e : "",
                 px && !u->tls ? ":" : "", px && !u->tls ? u->port : "", u->path,
                 h6, u->host, h6e, strcmp(u->port, u->tls ? "443" : "80") ? ":" : "",
                 strcmp(u->port, u->tls ? "443" : "80") ? u->port : "", auth);
    if (rq->body || strcmp(rq->method, "POST") == 0)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", rq->body_len);
    if (n + 3 > (int)sizeof head)
        return NET_EINVAL;
    c->fail = 0;
    if ((rc = conn_write_all(c, head, (size_t)n)) != 0 ||
        (rq->headers && (rc = conn_write_all(c, rq->headers, strlen(rq->headers))) != 0) ||
        (rc = conn_write_all(c, "\r\n", 2)) != 0 ||
        (rq->body_len && (rc = send_body(c, rq)) < 0))
        return rc;
    early = rc == EARLY_ANSWER;
    do {                        /* interim 1xx answers are skipped */
        if ((rc = read_head(c, hb, &h, got)) != 0)
            return rc;
    } while (h.status < 200 && !early);
    if (h.status < 200) {
        /* a 100 Continue in the middle of the body (no Expect was sent): the
         * body cannot be finished on this connection */
        snprintf(rs->err, sizeof rs->err, "interim answer %d before the body's end", h.status);
        return NET_EPROTO;
    }
    rs->status = h.status;
    rs->retry_after = h.retry_after;
    rs->date = h.date;
    if ((rc = read_body(c, rq, &h, rs)) != 0)
        return rc;
    if (early || h.close || (!h.chunked && h.content_length < 0))
        net_client_close(c);
    return 0;
}

int net_request(struct net_client *c, const struct net_request *rq, struct net_response *rs)
{
    struct url u, px;
    int has_px, rc, reused, got;

    rs->status = 0;
    rs->body_len = 0;
    rs->truncated = 0;
    rs->retry_after = -1;
    rs->date = 0;
    rs->err[0] = '\0';
    if (rs->body_cap)
        rs->body[0] = '\0';
    if (!c || !rq->method || !rq->url || (rq->body_len && !rq->body && rq->body_fd < 0) ||
        (rs->body_cap && !rs->body) || parse_url(rq->url, &u, 1) != 0) {
        snprintf(rs->err, sizeof rs->err, "invalid request or URL");
        return NET_EINVAL;
    }
    has_px = proxy_for(&u, &px);
    if (has_px < 0) {
        snprintf(rs->err, sizeof rs->err, "the proxy variable holds no http:// URL");
        return NET_EINVAL;
    }
    c->abort = rq->abort;
    c->deadline_ms = mono_ms() + (int64_t)(rq->timeout_s ? rq->timeout_s : 60) * 1000;
    rc = once(c, rq, &u, has_px ? &px : NULL, rs, &reused, &got);
    if (rc != 0 && reused && !got && rc != NET_EABORTED && rc != NET_ETIMEDOUT) {
        /* The server closed the kept connection as we sent: once more, on a new one. */
        net_client_close(c);
        rs->body_len = 0;
        rc = once(c, rq, &u, has_px ? &px : NULL, rs, &reused, &got);
    }
    if (rc != 0) {
        if (!rs->err[0])
            snprintf(rs->err, sizeof rs->err, "%s", net_strerror(rc));
        rs->status = 0;
        net_client_close(c);
    }
    c->abort = NULL;
    return rc;
}

int net_client_new(const char *ca_file, const char *pin, struct net_client **out)
{
    struct net_client *c;

    if (!out || (pin && !net_pin_valid(pin)))
        return NET_EINVAL;
    if (sodium_init() < 0)
        return NET_ENOMEM;
    c = calloc(1, sizeof *c);
    if (!c)
        return NET_ENOMEM;
    c->fd = -1;
    c->ca_file = ca_file ? strdup(ca_file) : NULL;
    c->pin = pin ? strdup(pin) : NULL;
    mbedtls_ssl_config_init(&c->conf);
    if ((ca_file && !c->ca_file) || (pin && !c->pin) ||
        mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
        net_client_free(c);
        return NET_ENOMEM;
    }
    /* Verification is required, as libcurl's default was; TLS 1.2 is the
     * oldest accepted (the server refuses older too). */
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_rng(&c->conf, rng, NULL);
    *out = c;
    return 0;
}

void net_client_free(struct net_client *c)
{
    if (!c)
        return;
    net_client_close(c);
    mbedtls_ssl_config_free(&c->conf);
    free(c->ca_file);
    free(c->pin);
    free(c);
}
