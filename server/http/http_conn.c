/* http_conn.c - see http_int.h.
 *
 * libmicrohttpd's connection timeout counts idleness only: a client that
 * sends one header line every few seconds, or a body one byte at a time
 * after a fast start, is never idle and holds its connection for hours.  So
 * each connection carries a phase and a clock, and a reaper thread closes
 * those past their deadline the way Apache's mod_reqtimeout and nginx's
 * client_header_timeout do: the headers of a request must be complete
 * within header_timeout of the connection (or of the previous answer), and
 * a body must bring at least min_rate bytes a second in every window.
 *
 * The reaper closes with shutdown(2), never close(2): libmicrohttpd owns the
 * descriptor, sees the end of stream and cleans up as for a client that
 * left.  Entries leave the list (under the lock) when libmicrohttpd reports
 * the connection closed, which it does before it closes the descriptor, so
 * a shutdown never reaches a descriptor number reused by a newer
 * connection. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/http/http_int.h"
#include "server/srv/srv.h"

#define REAPER_TICK_MS 250


static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Past its deadline?  Writes why into why (for the log). */
static int conn_late(struct http_conns *cs, struct http_conn *c, double now, const char **why)
{
    double age = now - c->since;

    switch (c->phase) {
    case HTTP_CONN_HEADERS:
        *why = "headers not complete in time";
        return age > (double)cs->header_timeout_s;
    case HTTP_CONN_BODY:
        if (age < (double)cs->body_window_s)
            return 0;
        *why = "body under the minimum rate";
        if (c->bytes - c->window_bytes < (uint64_t)(age * cs->min_rate))
            return 1;
        c->since = now;
        c->window_bytes = c->bytes;
        return 0;
    default:
        return 0;
    }
}

static void reap(struct http_conns *cs)
{
    double now = now_s();
    struct http_conn *c;
    const char *why = "";
    unsigned cut = 0;

    for (c = cs->head.next; c != &cs->head; c = c->next) {
        if (c->cut || !conn_late(cs, c, now, &why))
            continue;
        c->cut = 1;
        shutdown(c->fd, SHUT_RDWR);
        if (cut++ < 3)
            srv_log("warn", "http: closing a connection: %s", why);
    }
    if (cut > 3)
        srv_log("warn", "http: closed %u slow connections in all", cut);
    cs->cut_total += cut;
}

static void *reaper_main(void *arg)
{
    struct http_conns *cs = arg;
    struct timespec until;

    pthread_mutex_lock(&cs->lock);
    while (!cs->stop) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += REAPER_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cs->wake, &cs->lock, &until);
        if (!cs->stop)
            reap(cs);
    }
    pthread_mutex_unlock(&cs->lock);
    return NULL;
}

int http_conns_start(struct http_conns *cs)
{
    pthread_condattr_t ca;

    cs->head.next = cs->head.prev = &cs->head;
    pthread_mutex_init(&cs->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cs->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&cs->reaper, NULL, reaper_main, cs) != 0) {
        pthread_cond_destroy(&cs->wake);
        pthread_mutex_destroy(&cs->lock);
        return SRV_EINTERNAL;
    }
    return SRV_OK;
}

void http_conns_stop(struct http_conns *cs)
{
    struct http_conn *c, *next;

    pthread_mutex_lock(&cs->lock);
    cs->stop = 1;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->lock);
    pthread_join(cs->reaper, NULL);
    for (c = cs->head.next; c != &cs->head; c = next) {
        next = c->next;
        free(c);
    }
    cs->head.next = cs->head.prev = &cs->head;
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->lock);
}

struct http_conn *http_conn_open(struct http_conns *cs, int fd)
{
    struct http_conn *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    c->fd = fd;
    c->phase = HTTP_CONN_HEADERS;
    c->since = now_s();
    pthread_mutex_lock(&cs->lock);
    c->next = cs->head.next;
    c->prev = &cs->head;
    cs->head.next->prev = c;
    cs->head.next = c;
    pthread_mutex_unlock(&cs->lock);
    return c;
}

void http_conn_close(struct http_conns *cs, struct http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    pthread_mutex_unlock(&cs->lock);
    free(c);
}

void http_conn_phase(struct http_conns *cs, struct http_conn *c, enum http_conn_phase p)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    c->phase = p;
    c->since = now_s();
    c->bytes = c->window_bytes = 0;
    pthread_mutex_unlock(&cs->lock);
}

void http_conn_body(struct http_conns *cs, struct http_conn *c, size_t n)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    c->bytes += n;
    pthread_mutex_unlock(&cs->lock);
}

int http_body_reserve(struct http_conns *cs, size_t n)
{
    int ok;

    pthread_mutex_lock(&cs->lock);
    ok = n <= cs->body_budget - cs->body_reserved;
    if (ok)
        cs->body_reserved += n;
    pthread_mutex_unlock(&cs->lock);
    return ok ? SRV_OK : SRV_EOVERLOAD;
}

void http_body_release(struct http_conns *cs, size_t n)
{
    pthread_mutex_lock(&cs->lock);
    cs->body_reserved -= n <= cs->body_reserved ? n : cs->body_reserved;
    pthread_mutex_unlock(&cs->lock);
}
