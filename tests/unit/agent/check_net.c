/* check_net.c - the agent's HTTP/1.1 client (agent/net): the answer parser
 * and the chunked decoder on well-formed, malformed and oversized input, and
 * the client against a scripted server on loopback (raw sockets, in a thread
 * of this process): keep-alive reuse, a kept connection the server closed,
 * chunked and close-delimited bodies, bodies over the caller's bound, the
 * whole-request timeout, the abort flag, the send-rate cap, refused
 * connections and a plain proxy (absolute-form request line). */
#include <arpa/inet.h>
#include <netdb.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/net/net.h"

Suite *net_suite(void);

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- parser ---- */

static int head(const char *s, struct net_head *h)
{
    long n = net_head_length(s, strlen(s));

    if (n <= 0)
        return n == 0 ? -100 : (int)n;
    return net_parse_head(s, (size_t)n, h);
}

START_TEST(test_head_good)
{
    struct net_head h;
    const char *s = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 12\r\n"
                    "Retry-After: 7\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "X-Other:  spaced value \r\n\r\nbody bytes..";

    ck_assert_int_eq(net_head_length(s, strlen(s)), (long)(strstr(s, "body") - s));
    ck_assert_int_eq(head(s, &h), 0);
    ck_assert_int_eq(h.status, 429);
    ck_assert_int_eq(h.minor, 1);
    ck_assert_int_eq(h.content_length, 12);
    ck_assert_int_eq(h.chunked, 0);
    ck_assert_int_eq(h.close, 0);
    ck_assert_int_eq(h.retry_after, 7);
    ck_assert_int_eq(h.date, 784111777);

    ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: keep-alive, Close\r\n\r\n", &h), 0);
    ck_assert_int_eq(h.chunked, 1);
    ck_assert_int_eq(h.close, 1);
    ck_assert_int_eq(h.content_length, -1);
    /* HTTP/1.0 closes unless it says keep-alive; no reason phrase is fine */
    ck_assert_int_eq(head("HTTP/1.0 204\r\n\r\n", &h), 0);
    ck_assert_int_eq(h.status, 204);
    ck_assert_int_eq(h.close, 1);
    ck_assert_int_eq(head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", &h), 0);
    ck_assert_int_eq(h.close, 0);
    /* chunked and a length: the coding wins, the connection is not reused */
    ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n", &h), 0);
    ck_assert_int_eq(h.chunked, 1);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert_int_eq(h.close, 1);
    /* Retry-After as a date is treated as absent */
    ck_assert_int_eq(head("HTTP/1.1 503 x\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
                          &h), 0);
    ck_assert_int_eq(h.retry_after, -1);
}
END_TEST

START_TEST(test_head_malformed)
{
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 600 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\nX: y\r\n\r\n",      /* bare LF */
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",               /* obs-fold */
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n",   /* 19 digits */
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\001b\r\n\r\n",                   /* control byte */
        "HTTP/1.1 200 O\001K\r\n\r\n",
    };
    struct net_head h = { .status = 1234 };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(head(bad[i], &h) == NET_EPROTO, "accepted: %s", bad[i]);
    ck_assert_int_eq(h.status, 1234);       /* untouched on error */
    /* the same length twice is one length */
    ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h), 0);
    ck_assert_int_eq(h.content_length, 5);
}
END_TEST

START_TEST(test_head_bounds)
{
    char *big = malloc(NET_HEAD_MAX + 64);
    struct net_head h;

    /* incomplete: more input needed, until the bound */
    ck_assert_int_eq(net_head_length("HTTP/1.1 200 OK\r\n", 17), 0);
    memset(big, 'a', NET_HEAD_MAX + 64);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    ck_assert_int_eq(net_head_length(big, NET_HEAD_MAX - 1), 0);
    ck_assert_int_eq(net_head_length(big, NET_HEAD_MAX), NET_EPROTO);
    ck_assert_int_eq(net_head_length(big, NET_HEAD_MAX + 64), NET_EPROTO);
    /* a blank line just past the bound is not looked for */
    memcpy(big + NET_HEAD_MAX - 2, "\r\n\r\n", 4);
    ck_assert_int_eq(net_head_length(big, NET_HEAD_MAX + 2), NET_EPROTO);
    /* just within: accepted */
    memcpy(big + NET_HEAD_MAX - 4, "\r\n\r\n", 4);
    ck_assert_int_eq(net_head_length(big, NET_HEAD_MAX), NET_HEAD_MAX);
    ck_assert_int_eq(net_parse_head(big, NET_HEAD_MAX, &h), 0);
    ck_assert_int_eq(net_parse_head(big, NET_HEAD_MAX + 1, &h), NET_EPROTO);
    free(big);
}
END_TEST

/* Decode s fed in pieces of `step` bytes; the payload in out. */
static int chunked(const char *s, size_t step, char *out, size_t *olen, size_t *rest)
{
    struct net_chunked c = { 0 };
    size_t len = strlen(s), at = 0;
    uint8_t buf[256];

    *olen = 0;
    while (at < len) {
        size_t k = len - at < step ? len - at : step, used, n;
        int r;

        memcpy(buf, s + at, k);
        r = net_chunked_feed(&c, buf, k, &used, &n);
        if (r < 0)
            return r;
        ck_assert_uint_le(used, k);
        memcpy(out + *olen, buf, n);
        *olen += n;
        at += used;
        if (r == 1) {
            *rest = len - at;
            return 1;
        }
        ck_assert_uint_eq(used, k);     /* all input taken while not done */
    }
    return 0;
}

START_TEST(test_chunked)
{
    const char *s = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    char out[128];
    size_t olen, rest;

    for (size_t step = 1; step <= strlen(s); step++) {
        ck_assert_int_eq(chunked(s, step, out, &olen, &rest), 1);
        ck_assert_uint_eq(olen, 12);
        ck_assert(memcmp(out, "hello, world", 12) == 0);
        ck_assert_uint_eq(rest, 4);     /* the next answer's bytes stay */
    }
    ck_assert_int_eq(chunked("A\r\n0123456789\r\n0\r\n\r\n", 3, out, &olen, &rest), 1);
    ck_assert_uint_eq(olen, 10);
    ck_assert_int_eq(chunked("5\r\nhel", 64, out, &olen, &rest), 0);     /* needs more */
}
END_TEST

START_TEST(test_chunked_malformed)
{
    static const char *bad[] = {
        "x\r\n",                            /* not hex */
        "\r\n",                             /* no size */
        "1000000000000000\r\n",             /* 16 hex digits */
        "5\r\nhelloX\r\n",                  /* no CRLF after the data */
        "5\nhello\r\n",                     /* bare LF */
        "0\r\nTrailer\nx\r\n\r\n",
        "0\r\n\rx",
    };
    char out[4096], ext[600];
    size_t olen, rest;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(chunked(bad[i], 2, out, &olen, &rest) == NET_EPROTO, "accepted %zu", i);
    /* an extension beyond its bound */
    snprintf(ext, sizeof ext, "1;%0300d\r\n", 0);
    ck_assert_int_eq(chunked(ext, 64, out, &olen, &rest), NET_EPROTO);
}
END_TEST

START_TEST(test_small_parsers)
{
    ck_assert_int_eq(net_parse_retry_after("120", 3), 120);
    ck_assert_int_eq(net_parse_retry_after(" 5 ", 3), 5);
    ck_assert_int_eq(net_parse_retry_after("", 0), -1);
    ck_assert_int_eq(net_parse_retry_after("5s", 2), -1);
    ck_assert_int_eq(net_parse_retry_after("1234567890", 10), -1);
    ck_assert_int_eq(net_parse_date("Thu, 01 Jan 1970 00:00:10 GMT", 29), 10);
    ck_assert_int_eq(net_parse_date("Thu, 01 Jan 1970 00:00:10 PST", 29), 0);
    ck_assert_int_eq(net_parse_date("yesterday", 9), 0);
    ck_assert(net_pin_valid("sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    ck_assert(net_pin_valid("sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;"
                            "sha256//BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="));
    ck_assert(!net_pin_valid("sha256//AAAA="));
    ck_assert(!net_pin_valid("sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    ck_assert(!net_pin_valid(""));
    ck_assert_str_ne(net_strerror(NET_EPROTO), net_strerror(NET_ETIMEDOUT));
}
END_TEST

/* ---- a scripted server ---- */

#define MAX_ANS 8

static struct {
    int lfd;
    uint16_t port;
    const char *ans[MAX_ANS];       /* the answer to request i (then the last again) */
    int close_after[MAX_ANS];       /* close the connection after answer i */
    int nans;
    int silent;                     /* read requests, never answer */
    int early;                      /* answer after the head, read no body, close */
    size_t split;                   /* write answers in pieces of this many bytes */
    int accepts, requests;
    char first_line[4][256];        /* request lines seen */
    size_t body_bytes;              /* request body bytes read */
    uint64_t body_sum;              /* and their sum (srv_sum) */
    pthread_t th;
} srv;

static uint64_t srv_sum(const uint8_t *p, size_t n)
{
    uint64_t t = 0;

    for (size_t i = 0; i < n; i++)
        t += (uint64_t)p[i] * (i % 251 + 1);
    return t;
}

/* Read one request (head and Content-Length body); 0 at EOF. */
static int read_request(int fd)
{
    char buf[65536];
    size_t len = 0;
    long hl = 0, cl = 0;
    char *p;

    while (hl == 0) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if ((p = strstr(buf, "\r\n\r\n")) != NULL)
            hl = p + 4 - buf;
    }
    if (srv.requests < 4)
        snprintf(srv.first_line[srv.requests], sizeof srv.first_line[0], "%.*s",
                 (int)strcspn(buf, "\r"), buf);
    if ((p = strcasestr(buf, "\r\nContent-Length: ")) != NULL && p < buf + hl)
        cl = atol(p + 18);
    if (srv.early) {
        srv.requests++;
        return 1;
    }
    srv.body_bytes += len - (size_t)hl;
    for (size_t i = (size_t)hl; i < len; i++)
        srv.body_sum += (uint64_t)(uint8_t)buf[i] * ((i - (size_t)hl) % 251 + 1);
    for (long got = (long)len - hl; got < cl;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return 0;
        for (ssize_t i = 0; i < n; i++)
            srv.body_sum += (uint64_t)(uint8_t)buf[i] * ((size_t)(got + i) % 251 + 1);
        got += n;
        srv.body_bytes += (size_t)n;
    }
    srv.requests++;
    return 1;
}

static void *serve(void *arg)
{
    for (;;) {
        int fd = accept(srv.lfd, NULL, NULL);

        if (fd < 0)
            return NULL;
        srv.accepts++;
        while (read_request(fd)) {
            int i = srv.requests - 1 < srv.nans ? srv.requests - 1 : srv.nans - 1;
            const char *a = srv.ans[i];
            size_t len = strlen(a), step = srv.split ? srv.split : len;

            if (srv.silent) {
                sleep(5);
                break;
            }
            for (size_t at = 0; at < len; at += step) {
                if (send(fd, a + at, len - at < step ? len - at : step, MSG_NOSIGNAL) < 0)
                    break;
                if (srv.split)
                    usleep(1000);
            }
            if (srv.close_after[i] || srv.early)
                break;
        }
        close(fd);
    }
}

static void srv_start(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;

    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(srv.lfd, 0);
    ck_assert_int_eq(bind(srv.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(srv.lfd, 8), 0);
    ck_assert_int_eq(getsockname(srv.lfd, (struct sockaddr *)&sa, &sl), 0);
    srv.port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&srv.th, NULL, serve, NULL), 0);
    pthread_detach(srv.th);
}

static int get(struct net_client *c, const char *path, struct net_response *rs, int timeout_s,
               int truncate)
{
    char url[128];
    struct net_request rq = { .method = "GET", .url = url, .timeout_s = (uint32_t)timeout_s,
                              .truncate = truncate };

    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", srv.port, path);
    return net_request(c, &rq, rs);
}

START_TEST(test_keep_alive_reuse)
{
    struct net_client *c;
    uint8_t body[64];
    struct net_response rs = { .body = body, .body_cap = sizeof body };

    srv.ans[0] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    srv.nans = 1;
    srv_start();
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get(c, "/a", &rs, 5, 0), 0);
        ck_assert_int_eq(rs.status, 200);
        ck_assert_str_eq((char *)body, "ok");
    }
    ck_assert_int_eq(srv.requests, 3);
    ck_assert_int_eq(srv.accepts, 1);   /* one connection for all three */
    ck_assert_str_eq(srv.first_line[0], "GET /a HTTP/1.1");
    net_client_free(c);
}
END_TEST

START_TEST(test_server_closes_kept_connection)
{
    struct net_client *c;
    uint8_t body[64];
    struct net_response rs = { .body = body, .body_cap = sizeof body };

    /* The server closes after each answer without saying so: the client
     * finds the kept connection dead and sends again on a new one. */
    srv.ans[0] = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    srv.close_after[0] = 1;
    srv.nans = 1;
    srv_start();
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(get(c, "/1", &rs, 5, 0), 0);
    usleep(100 * 1000);
    ck_assert_int_eq(get(c, "/2", &rs, 5, 0), 0);
    ck_assert_int_eq(rs.status, 201);
    ck_assert_int_eq(srv.accepts, 2);
    ck_assert_int_eq(srv.requests, 2);
    net_client_free(c);
}
END_TEST

START_TEST(test_chunked_and_close_delimited)
{
    struct net_client *c;
    uint8_t body[64];
    struct net_response rs = { .body = body, .body_cap = sizeof body };

    srv.ans[0] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    srv.ans[1] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
    srv.close_after[1] = 1;
    srv.nans = 2;
    srv.split = 3;                      /* in 3-byte pieces */
    srv_start();
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(get(c, "/", &rs, 5, 0), 0);
    ck_assert_str_eq((char *)body, "abcdefg");
    ck_assert_int_eq(get(c, "/", &rs, 5, 0), 0);
    ck_assert_str_eq((char *)body, "until the end");
    ck_assert_int_eq(srv.accepts, 1);
    net_client_free(c);
}
END_TEST

START_TEST(test_body_bound)
{
    struct net_client *c;
    uint8_t body[8];
    struct net_response rs = { .body = body, .body_cap = sizeof body };

    srv.ans[0] = "HTTP/1.1 409 Conflict\r\nContent-Length: 20\r\n\r\n01234567890123456789";
    srv.nans = 1;
    srv_start();
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    /* truncate: the start is kept and the connection still serves */
    ck_assert_int_eq(get(c, "/", &rs, 5, 1), 0);
    ck_assert_int_eq(rs.status, 409);
    ck_assert_int_eq(rs.truncated, 1);
    ck_assert_str_eq((char *)body, "0123456");
    ck_assert_int_eq(get(c, "/", &rs, 5, 1), 0);
    ck_assert_int_eq(srv.accepts, 1);
    /* no buffer at all: the body is read and dropped */
    struct net_response none = { 0 };
    ck_assert_int_eq(get(c, "/", &none, 5, 1), 0);
    ck_assert_int_eq(none.status, 409);
    ck_assert_int_eq(none.truncated, 1);
    ck_assert_uint_eq(none.body_len, 0);
    /* without: an error, no status */
    ck_assert_int_eq(get(c, "/", &rs, 5, 0), NET_ETOOBIG);
    ck_assert_int_eq(rs.status, 0);
    net_client_free(c);
}
END_TEST

START_TEST(test_malformed_answers)
{
    struct net_client *c;
    uint8_t body[64];
    struct net_response rs = { .body = body, .body_cap = sizeof body };
    static char huge[NET_HEAD_MAX + 100];

    memset(huge, 'a', sizeof huge - 1);
    memcpy(huge, "HTTP/1.1 200 OK\r\nX: ", 20);
    srv.ans[0] = "HTTP/1.1 200 OK\r\nContent-Length: 9x\r\n\r\n";
    srv.close_after[0] = 1;
    srv.ans[1] = huge;                  /* a head that never ends */
    srv.close_after[1] = 1;
    srv.ans[2] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
    srv.close_after[2] = 1;             /* closed before the length */
    srv.nans = 3;
    srv_start();
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(get(c, "/", &rs, 5, 0), NET_EPROTO);
    ck_assert_int_eq(get(c, "/", &rs, 5, 0), NET_EPROTO);
    ck_assert_int_eq(get(c, "/", &rs, 5, 0), NET_EIO);
    ck_assert_int_eq(rs.status, 0);
    ck_assert(rs.err[0] != '\0');
    net_client_free(c);
}
END_TEST

START_TEST(test_timeout)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    int64_t t0;

    srv.silent = 1;
    srv.ans[0] = "";
    srv.nans = 1;
    srv_start();
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    t0 = now_ms();
    ck_assert_int_eq(get(c, "/", &rs, 1, 0), NET_ETIMEDOUT);
    ck_assert_int_ge(now_ms() - t0, 900);
    ck_assert_int_lt(now_ms() - t0, 4000);
    net_client_free(c);
}
END_TEST

static atomic_bool abort_flag;

static void *set_abort(void *arg)
{
    usleep(300 * 1000);
    atomic_store(&abort_flag, 1);
    return NULL;
}

START_TEST(test_abort)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    char url[64];
    struct net_request rq = { .method = "GET", .url = url, .timeout_s = 30, .abort = &abort_flag };
    pthread_t th;
    int64_t t0;

    srv.silent = 1;
    srv.ans[0] = "";
    srv.nans = 1;
    srv_start();
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", srv.port);
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    t0 = now_ms();
    pthread_create(&th, NULL, set_abort, NULL);
    ck_assert_int_eq(net_request(c, &rq, &rs), NET_EABORTED);
    ck_assert_int_lt(now_ms() - t0, 3000);  /* not the 30 s timeout */
    pthread_join(th, NULL);
    net_client_free(c);
}
END_TEST

START_TEST(test_rate_cap)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    static uint8_t payload[30000];
    char url[64];
    struct net_request rq = { .method = "POST", .url = url, .body = payload,
                              .body_len = sizeof payload, .timeout_s = 30,
                              .max_send_bps = 20000 };
    int64_t t0;

    srv.ans[0] = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    srv.nans = 1;
    srv_start();
    snprintf(url, sizeof url, "http://127.0.0.1:%u/up", srv.port);
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    t0 = now_ms();
    ck_assert_int_eq(net_request(c, &rq, &rs), 0);
    ck_assert_int_eq(rs.status, 201);
    /* 30,000 bytes at 20,000 B/s: at least about 1.5 s (a 2,000-byte burst allowed) */
    ck_assert_int_ge(now_ms() - t0, 1300);
    ck_assert_uint_eq(srv.body_bytes, sizeof payload);
    ck_assert_str_eq(srv.first_line[0], "POST /up HTTP/1.1");
    net_client_free(c);
}
END_TEST

/* A body sent from a file at an offset, a piece at a time, and sent again
 * from the same offset when the kept connection turns out closed. */
START_TEST(test_body_from_file)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    char path[] = "/tmp/net-body-XXXXXX", url[64];
    static uint8_t data[50000];
    int fd = mkstemp(path);
    struct net_request rq = { .method = "POST", .url = url, .body_len = 40000, .timeout_s = 10 };

    ck_assert_int_ge(fd, 0);
    unlink(path);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13);
    ck_assert_int_eq(write(fd, data, sizeof data), (ssize_t)sizeof data);
    srv.ans[0] = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    srv.close_after[0] = 1;             /* every connection serves one request */
    srv.nans = 1;
    srv_start();
    snprintf(url, sizeof url, "http://127.0.0.1:%u/up", srv.port);
    rq.body_fd = fd;
    rq.body_offset = 7000;
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(net_request(c, &rq, &rs), 0);
    ck_assert_int_eq(rs.status, 201);
    usleep(100 * 1000);
    ck_assert_int_eq(net_request(c, &rq, &rs), 0);
    ck_assert_int_eq(rs.status, 201);
    ck_assert_uint_eq(srv.body_bytes, 2 * 40000);
    ck_assert_uint_eq(srv.body_sum, 2 * srv_sum(data + 7000, 40000));
    /* a file shorter than promised: an error, not a short body */
    rq.body_offset = 20000;
    ck_assert_int_eq(net_request(c, &rq, &rs), NET_EIO);
    close(fd);
    net_client_free(c);
}
END_TEST

/* A server that answers 413 as soon as it has the head, reads none of a
 * 4 MB body and closes (sent slowly, so the close comes mid-body): the client stops sending and returns the 413 (the
 * uploader dead-letters on it), not a broken connection. */
START_TEST(test_early_answer)
{
    struct net_client *c;
    uint8_t body[128];
    struct net_response rs = { .body = body, .body_cap = sizeof body };
    size_t len = 4u << 20;
    uint8_t *payload = calloc(1, len);
    char url[64];
    /* at 2 MB/s the server's close comes while the body is still going out */
    struct net_request rq = { .method = "POST", .url = url, .body = payload, .body_len = len,
                              .timeout_s = 20, .truncate = 1, .max_send_bps = 2u << 20 };

    ck_assert_ptr_nonnull(payload);
    srv.ans[0] = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 15\r\n\r\n{\"error\":\"big\"}";
    srv.nans = 1;
    srv.early = 1;
    srv_start();
    snprintf(url, sizeof url, "http://127.0.0.1:%u/up", srv.port);
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    int64_t t0 = now_ms();
    ck_assert_int_eq(net_request(c, &rq, &rs), 0);
    ck_assert_int_eq(rs.status, 413);
    ck_assert_str_eq((char *)body, "{\"error\":\"big\"}");
    ck_assert_int_lt(now_ms() - t0, 1500);      /* stopped, not 2 s of sending */
    net_client_free(c);
    free(payload);
}
END_TEST

/* The connect timeout, on loopback: a listener whose accept queue is full
 * drops new SYNs, so a connect hangs until connect_timeout_s, well before
 * the whole-request timeout. */
START_TEST(test_connect_timeout)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[8], nfill = 0, hung = 0;
    struct net_client *c;
    struct net_response rs = { 0 };
    char url[64];
    struct net_request rq = { .method = "GET", .url = url, .connect_timeout_s = 1, .timeout_s = 20 };
    int64_t t0;
    int rc;

    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    /* fill the queue (backlog 0 holds one or two) with connections nobody accepts */
    for (; nfill < 8; nfill++) {
        struct pollfd pfd;
        fill[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[nfill], (struct sockaddr *)&sa, sizeof sa);
        pfd.fd = fill[nfill];
        pfd.events = POLLOUT;
        if (poll(&pfd, 1, 300) == 0) {
            nfill++;
            hung = 1;
            break;              /* this one hangs: the queue is full */
        }
    }
    /* a kernel that accepts past the backlog cannot show it: say so, loudly */
    ck_assert_msg(hung, "the listener accepted 8 connections past a backlog of 0");
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", ntohs(sa.sin_port));
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    t0 = now_ms();
    rc = net_request(c, &rq, &rs);
    ck_assert_int_eq(rc, NET_ETIMEDOUT);
    ck_assert_int_ge(now_ms() - t0, 900);
    ck_assert_int_lt(now_ms() - t0, 5000);
    ck_assert(strstr(rs.err, "connect") != NULL);
    net_client_free(c);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
}
END_TEST

/* Stand-in resolvers: one that hangs like a dead name server (it returns
 * only when the test releases it), one that maps every name to loopback. */
static atomic_int hung_calls;
static atomic_bool hung_release;

static int resolver_hangs(const char *host, const char *port, const struct addrinfo *hints,
                          struct addrinfo **res)
{
    (void)host, (void)port, (void)hints, (void)res;
    atomic_fetch_add(&hung_calls, 1);
    while (!atomic_load(&hung_release))
        usleep(10 * 1000);
    return EAI_AGAIN;
}

static int resolver_loopback(const char *host, const char *port, const struct addrinfo *hints,
                             struct addrinfo **res)
{
    (void)host;
    return getaddrinfo("127.0.0.1", port, hints, res);
}

/* A lookup that never answers is cut by connect_timeout_s and by the abort
 * flag, as a connect is; the agent's stop is not held by a dead resolver. */
START_TEST(test_lookup_bounded)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    struct net_request rq = { .method = "GET", .url = "http://collector.invalid:8080/",
                              .connect_timeout_s = 1, .timeout_s = 30 };
    pthread_t th;
    int64_t t0, took;

    atomic_store(&hung_calls, 0);
    atomic_store(&hung_release, 0);
    net_set_resolver(resolver_hangs);
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    t0 = now_ms();
    ck_assert_int_eq(net_request(c, &rq, &rs), NET_ETIMEDOUT);
    took = now_ms() - t0;
    ck_assert_int_ge(took, 900);
    ck_assert_msg(took < 5000, "a hung lookup held the request %lld ms", (long long)took);
    ck_assert_ptr_nonnull(strstr(rs.err, "looking up collector.invalid"));

    rq.connect_timeout_s = 20;
    rq.abort = &abort_flag;
    atomic_store(&abort_flag, 0);
    t0 = now_ms();
    pthread_create(&th, NULL, set_abort, NULL);
    ck_assert_int_eq(net_request(c, &rq, &rs), NET_EABORTED);
    ck_assert_int_lt(now_ms() - t0, 3000);
    pthread_join(th, NULL);
    ck_assert_int_eq(atomic_load(&hung_calls), 2);
    /* the abandoned lookups end later and free what they hold (ASan: no leak) */
    atomic_store(&hung_release, 1);
    usleep(100 * 1000);
    net_client_free(c);
    net_set_resolver(NULL);
}
END_TEST

/* A name goes through the resolver and its answer is used; an address
 * written as digits never reaches it. */
START_TEST(test_lookup_answer_used)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    uint8_t body[64];
    char url[96];
    struct net_request rq = { .method = "GET", .url = url, .timeout_s = 10 };

    srv.ans[0] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    srv.nans = 1;
    srv_start();
    net_set_resolver(resolver_hangs);   /* would hang: digits must not reach it */
    atomic_store(&hung_calls, 0);
    atomic_store(&hung_release, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", srv.port);
    rs.body = body;
    rs.body_cap = sizeof body;
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(net_request(c, &rq, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_int_eq(atomic_load(&hung_calls), 0);
    atomic_store(&hung_release, 1);
    net_client_close(c);

    net_set_resolver(resolver_loopback);
    snprintf(url, sizeof url, "http://collector.invalid:%u/", srv.port);
    ck_assert_int_eq(net_request(c, &rq, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_str_eq((char *)rs.body, "ok");
    net_client_free(c);
    net_set_resolver(NULL);
}
END_TEST

START_TEST(test_refused_and_bad_url)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    struct net_request rq = { .method = "GET", .timeout_s = 5 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    char url[64];

    /* a port bound but not listening refuses */
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", ntohs(sa.sin_port));
    rq.url = url;
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(net_request(c, &rq, &rs), NET_ECONNECT);
    ck_assert(strstr(rs.err, "refused") != NULL);
    close(fd);
    static const char *bad[] = { "ftp://h/", "http://", "http://h:0/", "http://h:99999/",
                                 "http://h:12x/", "http://user@h/", "http://h/a b",
                                 "http://[::1/" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rq.url = bad[i];
        ck_assert_msg(net_request(c, &rq, &rs) == NET_EINVAL, "accepted %s", bad[i]);
    }
    ck_assert_int_eq(net_client_new(NULL, "sha256//short", &c), NET_EINVAL);
    net_client_free(c);
}
END_TEST

START_TEST(test_plain_proxy)
{
    struct net_client *c;
    uint8_t body[64];
    struct net_response rs = { .body = body, .body_cap = sizeof body };
    struct net_request rq = { .method = "GET", .url = "http://device-server.invalid:8080/x",
                              .timeout_s = 5 };
    char px[64];

    srv.ans[0] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nvia";
    srv.nans = 1;
    srv_start();
    snprintf(px, sizeof px, "127.0.0.1:%u", srv.port);
    setenv("http_proxy", px, 1);        /* this test runs in a child of its own */
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(net_request(c, &rq, &rs), 0);
    ck_assert_str_eq((char *)body, "via");
    ck_assert_str_eq(srv.first_line[0], "GET http://device-server.invalid:8080/x HTTP/1.1");
    /* no_proxy names the host: straight there, which does not resolve */
    setenv("no_proxy", "localhost,.invalid", 1);
    ck_assert_int_eq(net_request(c, &rq, &rs), NET_ERESOLVE);
    ck_assert_int_eq(srv.requests, 1);
    net_client_free(c);
}
END_TEST

/* https through a proxy: a CONNECT tunnel; a proxy that refuses it is an error of its own. */
START_TEST(test_connect_proxy_refused)
{
    struct net_client *c;
    struct net_response rs = { 0 };
    struct net_request rq = { .method = "POST", .url = "https://device-server.invalid:8443/x",
                              .body = "{}", .body_len = 2, .timeout_s = 5 };
    char px[64];

    srv.ans[0] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    srv.close_after[0] = 1;
    srv.nans = 1;
    srv_start();
    snprintf(px, sizeof px, "http://user:secret@127.0.0.1:%u", srv.port);
    setenv("https_proxy", px, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    ck_assert_int_eq(net_client_new(NULL, NULL, &c), 0);
    ck_assert_int_eq(net_request(c, &rq, &rs), NET_EPROXY);
    ck_assert_int_eq(rs.status, 0);
    ck_assert(strstr(rs.err, "403") != NULL);
    ck_assert_str_eq(srv.first_line[0], "CONNECT device-server.invalid:8443 HTTP/1.1");
    ck_assert_uint_eq(srv.body_bytes, 0);       /* nothing of the request went to the proxy */
    net_client_free(c);
}
END_TEST

Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *parse = tcase_create("parse");
    TCase *io = tcase_create("io");

    tcase_add_test(parse, test_head_good);
    tcase_add_test(parse, test_head_malformed);
    tcase_add_test(parse, test_head_bounds);
    tcase_add_test(parse, test_chunked);
    tcase_add_test(parse, test_chunked_malformed);
    tcase_add_test(parse, test_small_parsers);
    suite_add_tcase(s, parse);
    tcase_set_timeout(io, 30);
    tcase_add_test(io, test_keep_alive_reuse);
    tcase_add_test(io, test_server_closes_kept_connection);
    tcase_add_test(io, test_chunked_and_close_delimited);
    tcase_add_test(io, test_body_bound);
    tcase_add_test(io, test_malformed_answers);
    tcase_add_test(io, test_timeout);
    tcase_add_test(io, test_connect_timeout);
    tcase_add_test(io, test_abort);
    tcase_add_test(io, test_rate_cap);
    tcase_add_test(io, test_body_from_file);
    tcase_add_test(io, test_early_answer);
    tcase_add_test(io, test_refused_and_bad_url);
    tcase_add_test(io, test_plain_proxy);
    tcase_add_test(io, test_connect_proxy_refused);
    tcase_add_test(io, test_lookup_bounded);
    tcase_add_test(io, test_lookup_answer_used);
    suite_add_tcase(s, io);
    return s;
}
