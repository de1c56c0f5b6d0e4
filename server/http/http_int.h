/* http_int.h - inside the http module: the deadlines of slow clients and
 * the memory budget of request bodies (http_conn.c), which libmicrohttpd
 * does not keep itself. */
#ifndef PRECURSOR_HTTP_INT_H
#define PRECURSOR_HTTP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum http_conn_phase {
    HTTP_CONN_HEADERS,  /* waiting for a request's headers: header deadline */
    HTTP_CONN_BODY,     /* reading a body: minimum rate per window */
    HTTP_CONN_BUSY      /* handler, parked upload or answer: no deadline here */
};

/* One TCP connection, from libmicrohttpd's connection notification to
 * its close; fields under the owning http_conns' lock. */
struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    enum http_conn_phase phase;
    double since;               /* when the phase or the body window began */
    uint64_t bytes;             /* body bytes of the current request */
    uint64_t window_bytes;      /* bytes at the start of the window */
    int cut;
};

struct http_conns {
    /* settings, fixed before http_conns_start */
    unsigned header_timeout_s;
    unsigned body_window_s;
    double min_rate;            /* body bytes a second, over each window */
    size_t body_budget;         /* bytes of bodies reserved at once */
    /* state, under lock */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t reaper;
    int stop;
    size_t body_reserved;
    unsigned long cut_total;
    struct http_conn head;      /* sentinel of the list of open connections */
};

int http_conns_start(struct http_conns *cs);    /* 0 or SRV_EINTERNAL */
void http_conns_stop(struct http_conns *cs);
/* Track a new connection (NULL when out of memory: it then has no deadline
 * beyond libmicrohttpd's own); forget it before its descriptor closes. */
struct http_conn *http_conn_open(struct http_conns *cs, int fd);
void http_conn_close(struct http_conns *cs, struct http_conn *c);
void http_conn_phase(struct http_conns *cs, struct http_conn *c, enum http_conn_phase p);
void http_conn_body(struct http_conns *cs, struct http_conn *c, size_t n);
/* Hold n bytes of the body budget for a request: 0, or SRV_EOVERLOAD when
 * the bodies already held leave no room (answer 503, Retry-After). */
int http_body_reserve(struct http_conns *cs, size_t n);
void http_body_release(struct http_conns *cs, size_t n);

#endif
