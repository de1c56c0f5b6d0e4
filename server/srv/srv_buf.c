/* srv_buf.c - see srv.h: the one growable byte buffer of the server.  An
 * allocation failure is remembered instead of returned at every call, so a
 * caller appends freely and checks once, at srv_buf_take. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv/srv.h"

static int grow(struct srv_buf *b, size_t more)
{
    size_t nc;
    char *np;

    if (b->oom)
        return -1;
    if (more < b->cap - b->len)     /* room for the bytes and the NUL */
        return 0;
    if (more > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
    nc = b->cap ? b->cap : 256;
    while (nc <= b->len + more)
        nc *= 2;
    if (!(np = realloc(b->p, nc))) {
        b->oom = 1;
        return -1;
    }
    b->p = np;
    b->cap = nc;
    return 0;
}

void srv_buf_put(struct srv_buf *b, const void *data, size_t n)
{
    if (grow(b, n) != 0)
        return;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void srv_buf_puts(struct srv_buf *b, const char *s)
{
    srv_buf_put(b, s, strlen(s));
}

void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (grow(b, 0) != 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (grow(b, (size_t)n) != 0)
            return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *srv_buf_take(struct srv_buf *b, size_t *len)
{
    char *p;

    if (b->oom || grow(b, 0) != 0) {
        srv_buf_free(b);
        return NULL;
    }
    p = b->p;
    p[b->len] = '\0';
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

void srv_buf_free(struct srv_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
