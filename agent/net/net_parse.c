/* net_parse.c - HTTP/1.1 answers read strictly: status line and headers
 * within NET_HEAD_MAX, CRLF line ends, no folded lines, one Content-Length,
 * chunked as the only transfer coding; and the chunked decoder.  No I/O, so
 * the unit tests and the fuzz target call it directly. */
#include "agent/net/net.h"

#include <string.h>
#include <strings.h>
#include <time.h>

long net_head_length(const char *buf, size_t len)
{
    size_t n = len < NET_HEAD_MAX ? len : NET_HEAD_MAX;

    for (size_t i = 3; i < n; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return (long)(i + 1);
    return len >= NET_HEAD_MAX ? NET_EPROTO : 0;
}

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int name_is(const char *name, size_t nlen, const char *want)
{
    return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

/* Does the comma-separated list v contain the token tok (any case)? */
static int list_has(const char *v, size_t len, const char *tok)
{
    size_t tl = strlen(tok), i = 0;

    while (i < len) {
        size_t s, e;

        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < len && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* The last coding of a Transfer-Encoding list: 1 chunked, 0 other. */
static int last_is_chunked(const char *v, size_t len)
{
    size_t e = len, s;

    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
    s = e;
    while (s > 0 && v[s - 1] != ',' && v[s - 1] != ' ' && v[s - 1] != '\t')
        s--;
    return e - s == 7 && strncasecmp(v + s, "chunked", 7) == 0;
}

long net_parse_retry_after(const char *v, size_t len)
{
    size_t i = 0;
    long n = 0;
    int digits = 0;

    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
        if (++digits > 9)
            return -1;          /* beyond any sensible wait: treat as absent */
        n = n * 10 + (v[i] - '0');
    }
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    return digits > 0 && i == len ? n : -1;
}

int64_t net_parse_date(const char *v, size_t len)
{
    char tmp[64];
    struct tm tm;
    const char *end;
    time_t t;

    if (len >= sizeof tmp)
        return 0;
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    memset(&tm, 0, sizeof tm);
    end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0')
        return 0;
    t = timegm(&tm);
    return t > 0 ? (int64_t)t : 0;
}

int net_parse_head(const char *buf, size_t len, struct net_head *out)
{
    struct net_head h = { .content_length = -1, .retry_after = -1 };
    const char *p = buf, *end = buf + len, *eol;
    int keep_alive = 0, has_te = 0;

    if (len < 16 || len > NET_HEAD_MAX || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)
        return NET_EPROTO;
    /* "HTTP/1.x SSS[ reason]" */
    if (memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
        (p[12] != ' ' && p[12] != '\r'))
        return NET_EPROTO;
    h.minor = p[7] - '0';
    h.status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || eol[-1] != '\r')
        return NET_EPROTO;
    for (const char *q = p + 12; q < eol - 1; q++)
        if ((unsigned char)*q < 0x20 && *q != '\t')
            return NET_EPROTO;  /* a reason phrase holds no control bytes */
    p = eol + 1;
    while (p < end - 2) {       /* the head ends with the empty line */
        const char *colon, *v, *ve;
        size_t nlen;

        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol || eol == p || eol[-1] != '\r')
            return NET_EPROTO;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return NET_EPROTO;  /* also a folded line, which starts with a space */
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return NET_EPROTO;
        nlen = (size_t)(colon - p);
        v = colon + 1;
        ve = eol - 1;
        for (const char *q = v; q < ve; q++)
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
                return NET_EPROTO;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (name_is(p, nlen, "content-length")) {
            int64_t n = 0;
            int digits = 0;

            for (const char *q = v; q < ve; q++) {
                if (*q < '0' || *q > '9' || ++digits > 18)
                    return NET_EPROTO;
                n = n * 10 + (*q - '0');
            }
            if (!digits || (h.content_length >= 0 && h.content_length != n))
                return NET_EPROTO;
            h.content_length = n;
        } else if (name_is(p, nlen, "transfer-encoding")) {
            if (has_te || !last_is_chunked(v, (size_t)(ve - v)))
                return NET_EPROTO; /* a coding we cannot undo: refuse, not guess */
            has_te = 1;
            h.chunked = 1;
        } else if (name_is(p, nlen, "connection")) {
            if (list_has(v, (size_t)(ve - v), "close"))
                h.close = 1;
            if (list_has(v, (size_t)(ve - v), "keep-alive"))
                keep_alive = 1;
        } else if (name_is(p, nlen, "retry-after")) {
            h.retry_after = net_parse_retry_after(v, (size_t)(ve - v));
        } else if (name_is(p, nlen, "date")) {
            h.date = net_parse_date(v, (size_t)(ve - v));
        }
        p = eol + 1;
    }
    if (h.minor == 0 && !keep_alive)
        h.close = 1;
    if (h.chunked && h.content_length >= 0) {
        /* Both: the coding wins and the connection is not reused (RFC 9112 6.3). */
        h.content_length = -1;
        h.close = 1;
    }
    *out = h;
    return 0;
}

enum {
    CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
    CH_TRAILER, CH_TRAILER_LINE, CH_TRAILER_LF, CH_END_LF, CH_DONE
};

#define CH_EXT_MAX 256
#define CH_TRAILER_MAX NET_HEAD_MAX

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int net_chunked_feed(struct net_chunked *c, uint8_t *buf, size_t len, size_t *used, size_t *out)
{
    size_t i = 0, o = 0;

    while (i < len && c->state != CH_DONE) {
        uint8_t ch = buf[i];

        switch (c->state) {
        case CH_SIZE:
            if (hexval(ch) >= 0) {
                if (++c->digits > 15)
                    return NET_EPROTO;
                c->left = c->left * 16 + (uint64_t)hexval(ch);
            } else if (c->digits && (ch == ';' || ch == ' ' || ch == '\t')) {
                c->state = CH_EXT;
                c->line = 0;
            } else if (c->digits && ch == '\r') {
                c->state = CH_SIZE_LF;
            } else {
                return NET_EPROTO;
            }
            i++;
            break;
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (++c->line > CH_EXT_MAX || ch == '\n')
                return NET_EPROTO;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return NET_EPROTO;
            i++;
            c->digits = 0;
            if (c->left == 0) {
                c->state = CH_TRAILER;
                c->trailer = 0;
            } else {
                c->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t k = len - i;

            if (k > c->left)
                k = (size_t)c->left;
            memmove(buf + o, buf + i, k);
            o += k;
            i += k;
            c->left -= k;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return NET_EPROTO;
            c->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return NET_EPROTO;
            c->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:        /* at a line start: the empty line ends the body */
            if (ch == '\r') {
                c->state = CH_END_LF;
            } else {
                c->state = CH_TRAILER_LINE;
                continue;       /* the same byte belongs to the trailer line */
            }
            i++;
            break;
        case CH_TRAILER_LINE:
            if (++c->trailer > CH_TRAILER_MAX || ch == '\n')
                return NET_EPROTO;
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                return NET_EPROTO;
            c->state = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return NET_EPROTO;
            c->state = CH_DONE;
            i++;
            break;
        }
    }
    *used = i;
    *out = o;
    return c->state == CH_DONE ? 1 : 0;
}

int net_pin_valid(const char *pin)
{
    static const char pre[] = "sha256//";
    const char *p = pin;

    if (!p || !*p)
        return 0;
    for (;;) {
        size_t k;

        if (strncmp(p, pre, sizeof pre - 1) != 0)
            return 0;
        p += sizeof pre - 1;
        /* 32 bytes in padded base64: 43 symbols and one '='. */
        for (k = 0; k < 43; k++)
            if (!((p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= 'a' && p[k] <= 'z') ||
                  (p[k] >= '0' && p[k] <= '9') || p[k] == '+' || p[k] == '/'))
                return 0;
        if (p[43] != '=')
            return 0;
        p += 44;
        if (*p == '\0')
            return 1;
        if (*p++ != ';')
            return 0;
    }
}

const char *net_strerror(int err)
{
    switch (err) {
    case NET_OK: return "ok";
    case NET_EINVAL: return "invalid URL or argument";
    case NET_ENOMEM: return "out of memory";
    case NET_ERESOLVE: return "host name not resolved";
    case NET_ECONNECT: return "could not connect";
    case NET_ETLS: return "TLS handshake or certificate check failed";
    case NET_EPIN: return "the server's public key matches no pin";
    case NET_ETIMEDOUT: return "timed out";
    case NET_EABORTED: return "aborted";
    case NET_EIO: return "connection failed";
    case NET_EPROTO: return "malformed HTTP answer";
    case NET_ETOOBIG: return "answer larger than allowed";
    case NET_EPROXY: return "the proxy refused the tunnel";
    }
    return "unknown network error";
}
