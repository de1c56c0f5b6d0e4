/* http.h - the libmicrohttpd front: a daemon with an internal thread pool
 * that turns each request into a struct srv_request, runs the route's
 * handler and writes the response or the JSON error.  The only module that
 * knows libmicrohttpd types. */
#ifndef PRECURSOR_HTTP_H
#define PRECURSOR_HTTP_H

#include "server/srv/srv.h"

struct http_server;

/* Start listening on cfg->port (0: an ephemeral port).  cfg is borrowed and
 * must outlive the server.  0 or SRV_EINTERNAL (logged). */
int http_start(const struct srv_config *cfg, struct http_server **out);
unsigned http_port(const struct http_server *s);
/* Stop accepting, finish in-flight requests, join the pool (whose threads
 * close their database connections on exit) and free s. */
void http_stop(struct http_server *s);

#endif
