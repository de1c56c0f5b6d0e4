/* srv_log.c - one line per event on stderr.  The line is formatted into a
 * buffer first and written with one call so lines from worker threads do not
 * interleave. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/srv/srv.h"

/* Copy msg after line[0, n), control bytes written as \xNN: a path, a
 * username or a device id with %0a in it must not start a line of its own
 * and pass for the server's.  Returns the new length (at most cap). */
static int escape_controls(char *line, size_t n, size_t cap, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p;

    for (p = (const unsigned char *)msg; *p && n < cap; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            line[n++] = (char)*p;
        } else if (n + 4 <= cap) {
            line[n++] = '\\';
            line[n++] = 'x';
            line[n++] = hex[*p >> 4];
            line[n++] = hex[*p & 15];
        } else {
            break;
        }
    }
    return (int)n;
}

int srv_log_debug(void)
{
    /* Read once: the environment does not change under a running server.
     * Every thread may ask first; they all compute the same answer. */
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    const char *e;

    if (v < 0) {
        e = getenv("PRECURSOR_LOG_DEBUG");
        v = e && *e && strcmp(e, "0") != 0;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

void srv_log(const char *level, const char *fmt, ...)
{
    char line[2048], msg[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n, m;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, level);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    va_start(ap, fmt);
    m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n = escape_controls(line, (size_t)n, sizeof line - 1, msg);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
