/* routes.h - the top of the server: every route it answers (method, path,
 * handler, who may call it, body limit, whether it parks) in one table, and
 * how a token route's caller is recognised.  Only this file and main.c may
 * know every module; the http layer gets both through struct srv_config. */
#ifndef PRECURSOR_ROUTES_H
#define PRECURSOR_ROUTES_H

#include <stddef.h>

#include "server/srv/srv.h"

const struct srv_route *routes_table(size_t *n);

/* Bearer token (Authorization header) or, without one, a browser session
 * (cookie + CSRF): fills rq->role and the caller's ids, or returns
 * SRV_EUNAUTH / SRV_EFORBIDDEN. */
int routes_authenticate(struct srv_request *rq, const char *authorization);

/* Point cfg at the table and the authenticator. */
void routes_configure(struct srv_config *cfg);

#endif
